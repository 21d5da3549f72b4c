// <segmentkit-overlay>: an image with coloured masks and prompt markers, as a custom element.
//
//   <segmentkit-overlay src="photo.png" mode="point"></segmentkit-overlay>
//   overlay.addEventListener("sk-point", (e) => ask(e.detail));   // {x, y, positive}
//   overlay.masks = result.masks;                                   // [{rle, label?, score?, objectId?, classId?}]
//
// Coordinates in events and prompts are pixels of the image, whatever the zoom and pan.

import { MaskOverlay } from "./mask-overlay.js";

const MODES = new Set(["point", "box", "none"]);
const KEY_STEP = 1; // image pixels an arrow key moves the cursor (x10 with Shift)

const STYLE = `
:host { display: block; position: relative; min-height: 120px; contain: content;
  background: var(--sk-overlay-background, #1f2937); }
:host([hidden]) { display: none; }
.view { position: absolute; inset: 0; overflow: hidden; }
canvas:focus { outline: none; }
canvas:focus-visible { outline: var(--sk-overlay-focus-width, 3px) solid var(--sk-overlay-focus-color, #2563eb);
  outline-offset: -3px; }
.status { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
`;

/**
 * An image with coloured masks and prompt markers. Clicks, taps, drags and keys become
 * `sk-point` / `sk-box` / `sk-select` events in image pixels, under any zoom and pan.
 *
 * Keyboard (the element is focusable): arrow keys move a crosshair (Shift: 10 pixels),
 * Enter or Space places a point there (Shift: negative) or, in `box` mode, a box corner
 * (the second corner emits `sk-box`), Escape drops a half-made box, `+` / `-` zoom,
 * `0` shows the whole image, `n` / `p` select the next / previous mask.
 * Touch: a tap is a point, a long press a negative point, a drag a box (in `box` mode;
 * it pans in `point` mode), two fingers pinch-zoom.
 *
 * @tag segmentkit-overlay
 * @summary Click an object, see its mask: an image with COCO-RLE masks and prompt markers.
 *
 * @attr {string} src - URL of the image to show (same origin, or served with CORS).
 * @attr {"point"|"box"|"none"} mode - What a click or drag does: place a point, draw a box, or only select masks. Default `point`.
 * @attr {boolean} negative - Clicks place negative points (Shift or a right click flips it).
 * @attr {number} opacity - Fill opacity of the masks, 0..1 (default 0.5); outlines stay opaque.
 * @attr {boolean} no-outlines - Draw the masks without their outlines.
 * @attr {string} label - Accessible name of the picture (default "image with masks").
 *
 * @fires {CustomEvent<{x: number, y: number, positive: boolean}>} sk-point - A point was placed (image pixels).
 * @fires {CustomEvent<{x0: number, y0: number, x1: number, y1: number}>} sk-box - A box was drawn (image pixels, x0 <= x1, y0 <= y1).
 * @fires {CustomEvent<{index: number|null, objectId: number|null}>} sk-select - A mask was selected (`index` into `masks`), or none (null).
 * @fires {CustomEvent<{width: number, height: number}>} sk-load - The image is shown and its size known.
 * @fires {CustomEvent<{message: string}>} sk-error - The image or a mask could not be shown.
 *
 * @csspart view - The box the picture is fitted, zoomed and panned in.
 * @csspart canvas - The picture: the image, mask fills and outlines, at image resolution (focusable).
 * @csspart markers - Prompt markers, the box being drawn and the keyboard crosshair.
 * @csspart status - A visually hidden live region announcing the masks and the selection.
 *
 * @cssprop [--sk-overlay-background=#1f2937] - Background around the picture.
 * @cssprop [--sk-overlay-focus-color=#2563eb] - Focus ring colour.
 * @cssprop [--sk-overlay-focus-width=3px] - Focus ring width.
 * @cssprop [--sk-overlay-positive=#3cb44b] - Fill of positive point markers.
 * @cssprop [--sk-overlay-negative=#e6194b] - Fill of negative point markers.
 */
export class SegmentkitOverlay extends HTMLElement {
  static observedAttributes = ["src", "mode", "negative", "opacity", "no-outlines", "label"];

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open", delegatesFocus: true });
    const style = document.createElement("style");
    style.textContent = STYLE;
    const view = document.createElement("div");
    view.className = "view";
    view.setAttribute("part", "view");
    this._status = document.createElement("div");
    this._status.className = "status";
    this._status.setAttribute("part", "status");
    this._status.setAttribute("role", "status");
    root.append(style, view, this._status);
    this._engine = new MaskOverlay(view);
    this._engine.canvas.setAttribute("part", "canvas");
    this._engine._markers.setAttribute("part", "markers");
    this._masks = [];
    this._selected = null;
    this._corner = null; // first corner of a keyboard box
    this._image = null;
    this._load = 0; // the latest image load, so a slow earlier one cannot win
    this._engine.addEventListener("point", (e) => this._onPoint(e.detail));
    this._engine.addEventListener("box", (e) => this._emit("sk-box", e.detail));
    this._engine.canvas.addEventListener("keydown", (e) => this._onKey(e));
    this._engine.canvas.addEventListener("blur", () => {
      this._engine.cursor = null;
    });
    this._applyMode();
    this._applyLabel();
  }

  connectedCallback() {
    const css = getComputedStyle(this);
    this._engine.markerColors = {
      positive: css.getPropertyValue("--sk-overlay-positive").trim() || "#3cb44b",
      negative: css.getPropertyValue("--sk-overlay-negative").trim() || "#e6194b",
    };
    this._engine._fit();
  }

  attributeChangedCallback(name, _old, value) {
    if (name === "src") {
      if (value) this._loadSrc(value);
    } else if (name === "mode") {
      this._applyMode();
    } else if (name === "negative") {
      this._engine.negative = value !== null;
    } else if (name === "opacity") {
      const opacity = Number(value ?? 0.5);
      this._engine.opacity = Number.isFinite(opacity) ? opacity : 0.5;
    } else if (name === "no-outlines") {
      this._engine.outlines = value === null;
    } else if (name === "label") {
      this._applyLabel();
    }
  }

  // ------------------------------------------------------------------ inputs

  /** URL of the image (reflects the `src` attribute). @type {string} */
  get src() {
    return this.getAttribute("src") ?? "";
  }

  set src(value) {
    this.setAttribute("src", value);
  }

  /**
   * The image shown: an `HTMLImageElement` (loaded or loading), `HTMLVideoElement` (its
   * current frame), `HTMLCanvasElement`, `OffscreenCanvas`, `ImageBitmap` or `ImageData`.
   * Setting a new image of another size clears the masks and prompts.
   * @type {HTMLImageElement|HTMLVideoElement|HTMLCanvasElement|OffscreenCanvas|ImageBitmap|ImageData|null}
   */
  get image() {
    return this._image;
  }

  set image(source) {
    this._image = source;
    const load = ++this._load;
    if (!source) return;
    if (source instanceof HTMLImageElement && !(source.complete && source.naturalWidth)) {
      source.addEventListener("load", () => load === this._load && this._show(source), { once: true });
      source.addEventListener("error", () => load === this._load && this._fail(`cannot load ${source.src}`),
        { once: true });
      return;
    }
    this._show(source);
  }

  /** Width of the image in pixels (0 before one is shown). @type {number} */
  get imageWidth() {
    return this._engine.hasImage ? this._engine.width : 0;
  }

  /** Height of the image in pixels (0 before one is shown). @type {number} */
  get imageHeight() {
    return this._engine.hasImage ? this._engine.height : 0;
  }

  /**
   * The masks drawn, in order: `{rle, label?, score?, objectId?, classId?}` with `rle` a
   * COCO RLE `{size: [height, width], counts}` of the image's size, as segmentkit's result
   * document has them. The colour follows `objectId`, else `classId`, else the index.
   * @type {Array<{rle: {size: number[], counts: string|number[]}, label?: string|null, score?: number|null, objectId?: number|null, classId?: number|null}>}
   */
  get masks() {
    return this._masks.slice();
  }

  set masks(list) {
    this._masks = Array.from(list ?? []);
    this._selected = null;
    this._engine.selected = null;
    this._drawMasks();
  }

  /**
   * Prompt markers: `{kind: "point", x, y, positive}` and `{kind: "box", x0, y0, x1, y1}`, in image pixels.
   * @type {Array<{kind: "point", x: number, y: number, positive?: boolean} | {kind: "box", x0: number, y0: number, x1: number, y1: number}>}
   */
  get prompts() {
    return this._engine.prompts;
  }

  set prompts(list) {
    this._engine.setPrompts(Array.from(list ?? []));
  }

  /** What a click or drag does: "point", "box" or "none" (reflects `mode`). @type {"point"|"box"|"none"} */
  get mode() {
    const mode = this.getAttribute("mode") ?? "point";
    return MODES.has(mode) ? /** @type {"point"|"box"|"none"} */ (mode) : "point";
  }

  set mode(value) {
    this.setAttribute("mode", value);
  }

  /** Clicks place negative points (reflects `negative`). @type {boolean} */
  get negative() {
    return this.hasAttribute("negative");
  }

  set negative(value) {
    this.toggleAttribute("negative", !!value);
  }

  /** Index into `masks` of the selected mask, or null. @type {number|null} */
  get selected() {
    return this._selected;
  }

  set selected(index) {
    const valid = index !== null && index !== undefined && index >= 0 && index < this._masks.length;
    this._selected = valid ? Number(index) : null;
    this._engine.selected = this._selected;
    this._announce();
  }

  /** The zoom factor over the fitted size (1: the whole image fits). @type {number} */
  get zoom() {
    return this._engine.zoom;
  }

  /** Zoom by `factor` around client point (clientX, clientY) (default: the centre). */
  zoomBy(factor, clientX, clientY) {
    this._engine.zoomBy(factor, clientX, clientY);
  }

  /** Move the picture by (dx, dy) CSS pixels. */
  panBy(dx, dy) {
    this._engine.panBy(dx, dy);
  }

  /** Show the whole image, centred. */
  resetView() {
    this._engine.resetView();
  }

  /** Index of the smallest mask covering image pixel (x, y), or null. */
  maskAt(x, y) {
    return this._engine.maskAt(x, y);
  }

  // ------------------------------------------------------------------ internals

  _loadSrc(url) {
    const img = new Image();
    if (this.hasAttribute("crossorigin")) img.crossOrigin = this.getAttribute("crossorigin") || "anonymous";
    img.decoding = "async";
    img.src = url;
    this.image = img;
  }

  _show(source) {
    try {
      this._engine.setImage(source);
    } catch (err) {
      this._fail(err.message);
      return;
    }
    this._drawMasks();
    this._emit("sk-load", { width: this._engine.width, height: this._engine.height });
  }

  _drawMasks() {
    if (!this._engine.hasImage) return;
    try {
      this._engine.setMasks(this._masks.map((m, i) => ({
        id: i, rle: m.rle, label: m.label ?? null, score: m.score ?? null,
        colorIndex: m.objectId ?? m.classId ?? i,
      })));
    } catch (err) {
      this._engine.setMasks([]);
      this._fail(err.message);
    }
    this._announce();
  }

  _fail(message) {
    this._emit("sk-error", { message });
  }

  _applyMode() {
    const mode = this.mode;
    this._engine.interactive = true;
    this._engine.dragPans = mode !== "box";
    this._corner = null;
    this._engine.canvas.style.cursor = mode === "none" ? "default" : "crosshair";
  }

  _applyLabel() {
    this._engine.canvas.setAttribute("aria-label", this.getAttribute("label") || "image with masks");
    this._engine.canvas.setAttribute("aria-roledescription", "segmentation canvas");
  }

  _announce() {
    const n = this._masks.length;
    let text = n === 1 ? "1 mask" : `${n} masks`;
    if (this._selected !== null) {
      const m = this._masks[this._selected];
      text += `; selected: ${m.label ?? `mask ${this._selected + 1}`}`;
    }
    this._status.textContent = text;
  }

  _onPoint({ x, y, positive }) {
    if (this.mode === "point") {
      this._emit("sk-point", { x, y, positive });
      return;
    }
    this._select(this._engine.maskAt(x, y));
  }

  _select(index) {
    this.selected = index;
    const m = this._selected === null ? null : this._masks[this._selected];
    this._emit("sk-select", { index: this._selected, objectId: m?.objectId ?? null });
  }

  _onKey(e) {
    const engine = this._engine;
    if (!engine.hasImage || e.altKey || e.ctrlKey || e.metaKey) return;
    const step = e.shiftKey ? 10 * KEY_STEP : KEY_STEP;
    const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
    const here = engine.cursor ?? { x: engine.width / 2, y: engine.height / 2 };
    let handled = true;
    if (e.key in moves) {
      const [dx, dy] = moves[e.key];
      engine.cursor = engine.cursor ? { x: here.x + dx, y: here.y + dy } : here;
      engine.reveal(engine.cursor.x, engine.cursor.y);
    } else if (e.key === "Enter" || e.key === " ") {
      engine.cursor = here;
      const at = engine.cursor;
      if (this.mode === "point") {
        this._emit("sk-point", { x: at.x, y: at.y, positive: e.shiftKey === this.negative });
      } else if (this.mode === "box" && !this._corner) {
        this._corner = at;
      } else if (this.mode === "box") {
        const a = this._corner;
        this._corner = null;
        this._emit("sk-box", {
          x0: Math.min(a.x, at.x), y0: Math.min(a.y, at.y), x1: Math.max(a.x, at.x), y1: Math.max(a.y, at.y),
        });
      } else {
        this._select(engine.maskAt(at.x, at.y));
      }
    } else if (e.key === "Escape" && this._corner) {
      this._corner = null;
    } else if (e.key === "+" || e.key === "=") {
      engine.zoomBy(1.25);
    } else if (e.key === "-") {
      engine.zoomBy(0.8);
    } else if (e.key === "0") {
      engine.resetView();
    } else if ((e.key === "n" || e.key === "p") && this._masks.length) {
      const n = this._masks.length;
      const from = this._selected ?? (e.key === "n" ? -1 : 0);
      this._select((from + (e.key === "n" ? 1 : n - 1)) % n);
    } else {
      handled = false;
    }
    if (handled) e.preventDefault();
  }

  _emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail, bubbles: true, composed: true }));
  }
}

if (!customElements.get("segmentkit-overlay")) customElements.define("segmentkit-overlay", SegmentkitOverlay);
