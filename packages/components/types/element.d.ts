/** The <segmentkit-overlay> element and its drawing engine, MaskOverlay. */
import type { Rle } from "./codecs.js";

/** A mask for `<segmentkit-overlay>.masks`: COCO RLE of the image's size plus what to show. */
export interface OverlayMask {
  rle: Rle;
  label?: string | null;
  score?: number | null;
  /** Picks the colour (segmentkit.render's palette), before `classId` and the index. */
  objectId?: number | null;
  classId?: number | null;
}

export type OverlayPrompt =
  | { kind: "point"; x: number; y: number; positive?: boolean; selected?: boolean }
  | { kind: "box"; x0: number; y0: number; x1: number; y1: number };

export type OverlayMode = "point" | "box" | "none";

export type OverlayImage =
  | HTMLImageElement | HTMLVideoElement | HTMLCanvasElement | OffscreenCanvas | ImageBitmap | ImageData;

export interface SkPointDetail { x: number; y: number; positive: boolean }
export interface SkBoxDetail { x0: number; y0: number; x1: number; y1: number }
export interface SkSelectDetail { index: number | null; objectId: number | null }
export interface SkLoadDetail { width: number; height: number }
export interface SkErrorDetail { message: string }

export interface SegmentkitOverlayEventMap extends HTMLElementEventMap {
  "sk-point": CustomEvent<SkPointDetail>;
  "sk-box": CustomEvent<SkBoxDetail>;
  "sk-select": CustomEvent<SkSelectDetail>;
  "sk-load": CustomEvent<SkLoadDetail>;
  "sk-error": CustomEvent<SkErrorDetail>;
}

/** An image with coloured masks and prompt markers; events carry image pixels. */
export class SegmentkitOverlay extends HTMLElement {
  static readonly observedAttributes: string[];
  /** URL of the image (the `src` attribute). */
  src: string;
  /** The image shown; a new size clears masks and prompts. */
  image: OverlayImage | null;
  readonly imageWidth: number;
  readonly imageHeight: number;
  masks: OverlayMask[];
  prompts: OverlayPrompt[];
  mode: OverlayMode;
  negative: boolean;
  /** Index into `masks` of the selected mask, or null. */
  selected: number | null;
  readonly zoom: number;
  zoomBy(factor: number, clientX?: number, clientY?: number): void;
  panBy(dx: number, dy: number): void;
  resetView(): void;
  /** Index of the smallest mask covering image pixel (x, y), or null. */
  maskAt(x: number, y: number): number | null;

  addEventListener<K extends keyof SegmentkitOverlayEventMap>(type: K,
    listener: (this: SegmentkitOverlay, ev: SegmentkitOverlayEventMap[K]) => any,
    options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject,
    options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof SegmentkitOverlayEventMap>(type: K,
    listener: (this: SegmentkitOverlay, ev: SegmentkitOverlayEventMap[K]) => any,
    options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject,
    options?: boolean | EventListenerOptions): void;
}

declare global {
  interface HTMLElementTagNameMap {
    "segmentkit-overlay": SegmentkitOverlay;
  }
}

/** A mask as MaskOverlay keeps it. */
export interface MaskRecord {
  id: unknown;
  data: Uint8Array;
  area: number;
  box: [number, number, number, number];
  edge: Int32Array;
  color: [number, number, number];
  label: string | null;
  score: number | null;
  visible: boolean;
  info: unknown;
}

export interface MaskSpec {
  id?: unknown;
  rle?: Rle;
  mask?: Uint8Array;
  color?: number[];
  colorIndex?: number;
  label?: string | null;
  score?: number | null;
  visible?: boolean;
  info?: unknown;
}

/** The drawing engine of <segmentkit-overlay>, for pages that manage their own DOM. */
export class MaskOverlay extends EventTarget {
  constructor(container: HTMLElement,
    options?: { opacity?: number; outlines?: boolean; interactive?: boolean; fit?: boolean });
  readonly container: HTMLElement;
  readonly element: HTMLDivElement;
  readonly canvas: HTMLCanvasElement;
  fit: boolean;
  negative: boolean;
  interactive: boolean;
  dragPans: boolean;
  markerColors: { positive: string; negative: string };
  readonly width: number;
  readonly height: number;
  readonly hasImage: boolean;
  readonly masks: MaskRecord[];
  readonly prompts: OverlayPrompt[];
  readonly zoom: number;
  cursor: { x: number; y: number } | null;
  highlight: unknown;
  selected: unknown;
  opacity: number;
  outlines: boolean;
  setImage(source: OverlayImage): void;
  imageData(): ImageData;
  addMask(spec: MaskSpec): unknown;
  setMasks(specs: MaskSpec[]): unknown[];
  removeMask(id: unknown): void;
  clearMasks(): void;
  setMaskVisible(id: unknown, visible: boolean): void;
  getMask(id: unknown): MaskRecord | null;
  maskAt(x: number, y: number): unknown;
  setPrompts(prompts: OverlayPrompt[]): void;
  render(): void;
  toImagePoint(event: { clientX: number; clientY: number }): { x: number; y: number };
  zoomBy(factor: number, clientX?: number, clientY?: number): void;
  panBy(dx: number, dy: number): void;
  resetView(): void;
  reveal(x: number, y: number): void;
  destroy(): void;
}

/** segmentkit.render's 20 colours, [r, g, b]. */
export const PALETTE: number[][];
/** The colour [r, g, b] of mask, object or class `index` (as segmentkit.render.color). */
export function colorFor(index: number): [number, number, number];
/** "#rrggbb" of [r, g, b]. */
export function cssColor(rgb: number[]): string;
