// <canvas> component: an image, coloured masks with outlines, and prompt markers.
//
// The drawing engine of <segmentkit-overlay>; pages that manage their own DOM use it directly.
//
//   import { MaskOverlay } from "@segmentkit/components";
//   const overlay = new MaskOverlay(document.querySelector("#view"));
//   overlay.setImage(imgElement);
//   overlay.addEventListener("point", (e) => console.log(e.detail)); // {x, y, positive}
//   overlay.addEventListener("box", (e) => console.log(e.detail));   // {x0, y0, x1, y1}
//   overlay.setMasks([{ rle: {size: [h, w], counts: "..."}, label: "cat", score: 0.9 }]);
//
// Coordinates in events, prompts and masks are pixels of the image (not of the screen).
// A click or tap emits "point" (positive; negative with Shift, a right click, a long
// press, or while `overlay.negative` is true); a drag emits "box". With `fit` the view
// zooms and pans (wheel, two-finger pinch, middle-button drag, `zoomBy` / `panBy`)
// without changing those coordinates. Colours follow segmentkit.render: object id, else
// class id, else the mask's index picks from the same palette.

import { decodeRle, maskStats } from "../codecs/rle.js";

// Same palette as segmentkit/render.py (Sasha Trubetskoy's 20 distinct colours).
export const PALETTE = [
  [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
  [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255],
  [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195], [128, 128, 0], [255, 215, 180],
  [0, 0, 128], [128, 128, 128],
];

/** The colour [r, g, b] of mask, object or class `index` (matches segmentkit.render.color). */
export function colorFor(index) {
  const i = Math.trunc(index);
  if (i >= 0 && i < PALETTE.length) return PALETTE[i].slice();
  const hue = (((i * 0.618033988749895) % 1) + 1) % 1;
  const sat = 0.65 + (0.35 * (((i * 7) % 3 + 3) % 3)) / 2;
  return hsvToRgb(hue, sat, 0.95);
}

function hsvToRgb(h, s, v) {
  const i = Math.floor(h * 6);
  const f = h * 6 - i;
  const p = v * (1 - s);
  const q = v * (1 - s * f);
  const t = v * (1 - s * (1 - f));
  const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][i % 6];
  return [Math.round(r * 255), Math.round(g * 255), Math.round(b * 255)];
}

/** "#rrggbb" for [r, g, b]. */
export function cssColor(rgb) {
  return `#${rgb.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
}

const CLICK_SLOP = 4; // CSS pixels a pointer may move and still count as a click
const MIN_BOX = 2; // image pixels: smaller drags are clicks
const LONG_PRESS_MS = 550; // a touch held this long without moving is a negative point
const MAX_ZOOM = 32;
const decoded = new WeakMap(); // rle object -> {data, area, box, edge}: redraws don't decode again

export class MaskOverlay extends EventTarget {
  /**
   * @param {HTMLElement} container  the element the overlay is appended to
   * @param {{opacity?: number, outlines?: boolean, interactive?: boolean, fit?: boolean}} [options]
   *   `fit`: scale the overlay (up or down) to fit `container`, which needs a size of its
   *   own (the overlay is centred in it); with `fit: false` size `overlay.element` yourself.
   */
  constructor(container, { opacity = 0.5, outlines = true, interactive = true, fit = true } = {}) {
    super();
    this.container = container;
    this.fit = fit;
    /** The element to place and size: holds the picture canvas and the marker canvas. */
    this.element = document.createElement("div");
    this.element.className = "sk-overlay-frame";
    this.element.style.cssText = "position: relative; display: inline-block; line-height: 0; touch-action: none;";
    /** The picture (image, mask fills, outlines) at image resolution: read it for pixels. */
    this.canvas = document.createElement("canvas");
    this.canvas.className = "sk-overlay";
    this.canvas.width = 1;
    this.canvas.height = 1;
    this.canvas.tabIndex = 0;
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", "image with mask overlay");
    this.canvas.style.cssText = `display: block; cursor: crosshair; ${fit ? "width: 100%; height: 100%;" : "max-width: 100%;"}`;
    // Prompt markers and the box being dragged, drawn at screen resolution on top.
    this._markers = document.createElement("canvas");
    this._markers.className = "sk-overlay-markers";
    this._markers.style.cssText = "position: absolute; inset: 0; width: 100%; height: 100%; pointer-events: none;";
    this.element.append(this.canvas);
    // Fitted, the markers cover the container (a zoomed picture may be far larger than it);
    // otherwise they cover the picture.
    container.appendChild(this.element);
    (fit ? container : this.element).appendChild(this._markers);
    this._ctx = this.canvas.getContext("2d");
    this._base = document.createElement("canvas");
    this._fill = document.createElement("canvas");
    this._edge = document.createElement("canvas");
    this._masks = []; // {id, data, area, box, edge, color, label, score, visible, info}
    this._nextId = 1;
    this._prompts = [];
    this._drag = null;
    this._pointers = new Map(); // pointer id -> {x, y} (client), for pinch
    this._pinch = null;
    this._zoom = 1;
    this._pan = { x: 0, y: 0 }; // CSS pixels from the container's centre to the picture's
    this._cursor = null;
    this._highlight = null;
    this._selected = null;
    this._hasImage = false;
    this._opacity = opacity;
    this._outlines = outlines;
    /** When true, plain clicks place negative points (Shift then places positive ones). */
    this.negative = false;
    /** When false, pointer input is ignored (e.g. while a request is running). */
    this.interactive = interactive;
    /** When true, a drag pans the view instead of drawing a box (a click is still a point). */
    this.dragPans = false;
    /** Fill colours of positive and negative point markers (CSS colours). */
    this.markerColors = { positive: "#3cb44b", negative: "#e6194b" };
    this._bind();
  }

  // ------------------------------------------------------------------ image

  get width() {
    return this._base.width;
  }

  get height() {
    return this._base.height;
  }

  get hasImage() {
    return this._hasImage;
  }

  /**
   * Show an image: an <img>, <video> (its current frame), <canvas>, ImageBitmap or ImageData.
   * Masks are kept when the size is unchanged (video frames), cleared otherwise.
   */
  setImage(source) {
    const w = source.naturalWidth || source.videoWidth || source.width;
    const h = source.naturalHeight || source.videoHeight || source.height;
    if (!w || !h) throw new Error("the image has no size (not loaded yet?)");
    const resized = w !== this.width || h !== this.height || !this._hasImage;
    for (const c of [this._base, this.canvas]) {
      if (c.width !== w || c.height !== h) {
        c.width = w;
        c.height = h;
      }
    }
    const ctx = this._base.getContext("2d");
    if (source instanceof ImageData) ctx.putImageData(source, 0, 0);
    else {
      ctx.clearRect(0, 0, w, h);
      ctx.drawImage(source, 0, 0, w, h);
    }
    this._hasImage = true;
    if (resized) {
      this._masks = [];
      this._prompts = [];
      this._cursor = null;
      this._zoom = 1;
      this._pan = { x: 0, y: 0 };
      this._composite();
      this._fit();
    }
    this.render();
  }

  /** RGBA pixels of the image alone (no masks), as ImageData. */
  imageData() {
    return this._base.getContext("2d").getImageData(0, 0, this.width, this.height);
  }

  // ------------------------------------------------------------------ masks

  /**
   * Add one mask and return its id.
   * @param {{id?: any, rle?: {size: number[], counts: string|number[]}, mask?: Uint8Array,
   *          color?: number[], colorIndex?: number, label?: string, score?: number,
   *          visible?: boolean, info?: any}} spec
   *   `rle` is COCO RLE (as returned by the service), or `mask` a row-major 0/1 array at
   *   image size. `colorIndex` picks a palette colour (object id, class id, ...); `info`
   *   is kept as is for the host.
   */
  addMask(spec) {
    const entry = this._entry(spec, this._masks.length);
    this._masks.push(entry);
    this._composite();
    this.render();
    return entry.id;
  }

  /** Replace every mask with `specs` (one composite, one redraw). Returns their ids. */
  setMasks(specs) {
    this._masks = specs.map((spec, i) => this._entry(spec, i));
    this._composite();
    this.render();
    return this._masks.map((m) => m.id);
  }

  /** Remove the mask `id` (no-op if absent). */
  removeMask(id) {
    const before = this._masks.length;
    this._masks = this._masks.filter((m) => m.id !== id);
    if (this._masks.length !== before) {
      this._composite();
      this.render();
    }
  }

  clearMasks() {
    this.setMasks([]);
  }

  /** Show or hide the mask `id`. */
  setMaskVisible(id, visible) {
    const m = this._masks.find((e) => e.id === id);
    if (m && m.visible !== !!visible) {
      m.visible = !!visible;
      this._composite();
      this.render();
    }
  }

  /** One mask's record: {id, data (row-major 0/1), area, box, color, label, score, visible, info}. */
  getMask(id) {
    return this._masks.find((m) => m.id === id) || null;
  }

  /** Every mask's record, in drawing order. */
  get masks() {
    return this._masks.slice();
  }

  /** Id of the smallest visible mask covering image pixel (x, y), or null. */
  maskAt(x, y) {
    const xi = Math.floor(x);
    const yi = Math.floor(y);
    if (xi < 0 || yi < 0 || xi >= this.width || yi >= this.height) return null;
    let best = null;
    for (const m of this._masks) {
      if (m.visible && m.data[yi * this.width + xi] && (!best || m.area < best.area)) best = m;
    }
    return best ? best.id : null;
  }

  _entry(spec, index) {
    const w = this.width;
    const h = this.height;
    let pixels = spec.rle && typeof spec.rle === "object" ? decoded.get(spec.rle) : null;
    if (!pixels || pixels.data.length !== w * h) {
      let data = spec.mask;
      if (!data && spec.rle) {
        const [rh, rw] = spec.rle.size;
        if (rh !== h || rw !== w) throw new Error(`mask is ${rw}x${rh}, image is ${w}x${h}`);
        data = decodeRle(spec.rle);
      }
      if (!data || data.length !== w * h) throw new Error(`a mask needs rle or ${w}x${h} mask data`);
      const { area, box } = maskStats(data, h, w);
      pixels = { data, area, box, edge: boundary(data, w, h, box, Math.max(1, Math.round(Math.min(w, h) / 400))) };
      if (spec.rle && !spec.mask) decoded.set(spec.rle, pixels);
    }
    const color = spec.color ? spec.color.slice(0, 3) : colorFor(spec.colorIndex ?? index);
    const id = spec.id ?? `m${this._nextId++}`;
    return {
      id, ...pixels, color,
      label: spec.label ?? null,
      score: spec.score ?? null,
      visible: spec.visible ?? true,
      info: spec.info ?? null,
    };
  }

  // Fill and outline layers of the visible masks, large masks first so small ones stay on top.
  _composite() {
    const w = this.width;
    const h = this.height;
    for (const c of [this._fill, this._edge]) {
      c.width = w;
      c.height = h;
    }
    const visible = this._masks.filter((m) => m.visible && m.area > 0);
    if (!visible.length) return;
    const fill = new ImageData(w, h);
    const edge = new ImageData(w, h);
    for (const m of visible.slice().sort((a, b) => b.area - a.area)) {
      const [r, g, b] = m.color;
      const [x0, y0, x1, y1] = m.box;
      for (let y = y0; y < y1; y++) {
        for (let x = x0; x < x1; x++) {
          const i = y * w + x;
          if (m.data[i]) {
            const o = i * 4;
            fill.data[o] = r;
            fill.data[o + 1] = g;
            fill.data[o + 2] = b;
            fill.data[o + 3] = 255;
          }
        }
      }
    }
    for (const m of visible) {
      const [r, g, b] = m.color;
      for (const i of m.edge) {
        const o = i * 4;
        edge.data[o] = r;
        edge.data[o + 1] = g;
        edge.data[o + 2] = b;
        edge.data[o + 3] = 255;
      }
    }
    this._fill.getContext("2d").putImageData(fill, 0, 0);
    this._edge.getContext("2d").putImageData(edge, 0, 0);
  }

  // ------------------------------------------------------------------ prompts and style

  /** Markers to draw: [{kind: "point", x, y, positive} | {kind: "box", x0, y0, x1, y1}]. */
  setPrompts(prompts) {
    this._prompts = prompts.slice();
    this.render();
  }

  get prompts() {
    return this._prompts.slice();
  }

  /** A keyboard cursor {x, y} in image pixels (drawn as a crosshair), or null. */
  get cursor() {
    return this._cursor ? { ...this._cursor } : null;
  }

  set cursor(point) {
    this._cursor = point ? {
      x: Math.min(this.width, Math.max(0, point.x)), y: Math.min(this.height, Math.max(0, point.y)),
    } : null;
    this._renderMarkers();
  }

  /** Id of a mask drawn emphasised (e.g. under the pointer in a list), or null. */
  get highlight() {
    return this._highlight;
  }

  set highlight(id) {
    if (this._highlight === id) return;
    this._highlight = id;
    this.render();
  }

  /** Id of the selected mask (outlined on top, thicker), or null. */
  get selected() {
    return this._selected;
  }

  set selected(id) {
    if (this._selected === id) return;
    this._selected = id;
    this.render();
  }

  get opacity() {
    return this._opacity;
  }

  /** Fill opacity of the masks, 0..1 (outlines stay opaque). */
  set opacity(value) {
    this._opacity = Math.min(1, Math.max(0, Number(value)));
    this.render();
  }

  get outlines() {
    return this._outlines;
  }

  set outlines(value) {
    this._outlines = !!value;
    this.render();
  }

  // ------------------------------------------------------------------ drawing

  /** Redraw: image, mask fills at `opacity`, outlines; then markers and the box being dragged. */
  render() {
    const ctx = this._ctx;
    const { width: w, height: h } = this.canvas;
    ctx.clearRect(0, 0, w, h);
    if (this._hasImage) {
      ctx.drawImage(this._base, 0, 0);
      ctx.globalAlpha = this._opacity;
      ctx.drawImage(this._fill, 0, 0);
      ctx.globalAlpha = 1;
      if (this._outlines) ctx.drawImage(this._edge, 0, 0);
      for (const id of new Set([this._selected, this._highlight])) {
        const m = id === null ? null : this.getMask(id);
        if (m && m.visible && m.area > 0) this._emphasise(ctx, m, id === this._highlight);
      }
    }
    this._renderMarkers();
  }

  // The highlighted mask filled more strongly; the selected one outlined in white over its colour.
  _emphasise(ctx, m, strong) {
    const [x0, y0, x1, y1] = m.box;
    const w = x1 - x0;
    const h = y1 - y0;
    const img = ctx.getImageData(x0, y0, w, h);
    const [r, g, b] = m.color;
    const a = strong ? Math.max(0.75, this._opacity) : 0;
    const edge = new Set(m.edge);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = (y + y0) * this.width + x + x0;
        if (!m.data[i]) continue;
        const o = (y * w + x) * 4;
        if (edge.has(i)) {
          img.data[o] = img.data[o + 1] = img.data[o + 2] = 255;
        } else if (a) {
          img.data[o] = Math.round(img.data[o] * (1 - a) + r * a);
          img.data[o + 1] = Math.round(img.data[o + 1] * (1 - a) + g * a);
          img.data[o + 2] = Math.round(img.data[o + 2] * (1 - a) + b * a);
        }
      }
    }
    ctx.putImageData(img, x0, y0);
  }

  // Markers keep their on-screen size whatever the image's scale: the marker canvas has
  // its CSS size times the device pixel ratio.
  _renderMarkers() {
    const m = this._markers;
    const box = m.getBoundingClientRect();
    const dpr = globalThis.devicePixelRatio || 1;
    const bw = Math.max(1, Math.round(box.width * dpr));
    const bh = Math.max(1, Math.round(box.height * dpr));
    if (m.width !== bw || m.height !== bh) {
      m.width = bw;
      m.height = bh;
    }
    const ctx = m.getContext("2d");
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, bw, bh);
    if (!this._hasImage || !box.width) return;
    const pic = this.canvas.getBoundingClientRect();
    const sx = (pic.width / this.width) * (bw / box.width);
    const sy = (pic.height / this.height) * (bh / box.height);
    ctx.setTransform(sx, 0, 0, sy, (pic.left - box.left) * (bw / box.width), (pic.top - box.top) * (bh / box.height));
    const s = dpr / sx; // image pixels per CSS pixel
    for (const p of this._prompts) {
      if (p.kind === "box") drawBox(ctx, p, s, false);
    }
    for (const p of this._prompts) {
      if (p.kind === "point") drawPoint(ctx, p, s, p.selected, this.markerColors);
    }
    if (this._drag && this._drag.box) drawBox(ctx, this._drag.box, s, true);
    if (this._cursor) drawCursor(ctx, this._cursor, s);
  }

  /** Image coordinates of a pointer event (clamped to the image). */
  toImagePoint(event) {
    const rect = this.canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * this.width;
    const y = ((event.clientY - rect.top) / rect.height) * this.height;
    return { x: Math.min(this.width, Math.max(0, x)), y: Math.min(this.height, Math.max(0, y)) };
  }

  // ------------------------------------------------------------------ zoom and pan

  /** The zoom factor over the fitted size (1 = the whole image fits). */
  get zoom() {
    return this._zoom;
  }

  /**
   * Zoom by `factor` keeping the image point under client (x, y) in place (default: the
   * centre of the container). Prompts and masks stay in image pixels.
   */
  zoomBy(factor, clientX, clientY) {
    if (!this.fit || !this._hasImage) return;
    const box = this.container.getBoundingClientRect();
    const cx = clientX ?? box.left + box.width / 2;
    const cy = clientY ?? box.top + box.height / 2;
    const zoom = Math.min(MAX_ZOOM, Math.max(1, this._zoom * factor));
    const ratio = zoom / this._zoom;
    // The picture's centre moves away from (cx, cy) by the same ratio.
    const centreX = box.left + box.width / 2 + this._pan.x;
    const centreY = box.top + box.height / 2 + this._pan.y;
    this._zoom = zoom;
    this._pan = { x: cx + (centreX - cx) * ratio - box.left - box.width / 2, y: cy + (centreY - cy) * ratio - box.top - box.height / 2 };
    this._fit();
  }

  /** Move the picture by (dx, dy) CSS pixels. */
  panBy(dx, dy) {
    if (!this.fit || !this._hasImage) return;
    this._pan = { x: this._pan.x + dx, y: this._pan.y + dy };
    this._fit();
  }

  /** Back to the whole image, centred. */
  resetView() {
    this._zoom = 1;
    this._pan = { x: 0, y: 0 };
    this._fit();
  }

  /** Pan so image point (x, y) is inside the visible part of the container. */
  reveal(x, y) {
    if (!this.fit || this._zoom === 1) return;
    const box = this.container.getBoundingClientRect();
    const pic = this.canvas.getBoundingClientRect();
    const px = pic.left + (x / this.width) * pic.width;
    const py = pic.top + (y / this.height) * pic.height;
    const margin = 24;
    const dx = Math.min(0, box.right - margin - px) + Math.max(0, box.left + margin - px);
    const dy = Math.min(0, box.bottom - margin - py) + Math.max(0, box.top + margin - py);
    if (dx || dy) this.panBy(dx, dy);
  }

  // ------------------------------------------------------------------ input

  _bind() {
    const c = this.canvas;
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener("pointerdown", (e) => {
      if (!this._hasImage) return;
      this._pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      c.setPointerCapture?.(e.pointerId);
      if (this._pointers.size === 2) return this._startPinch();
      if (this._pointers.size > 2) return;
      if (e.button === 1) {
        e.preventDefault();
        this._drag = { pan: true, cx: e.clientX, cy: e.clientY };
        return;
      }
      if (!this.interactive || (e.button !== 0 && e.button !== 2)) return;
      e.preventDefault();
      const d = {
        start: this.toImagePoint(e), cx: e.clientX, cy: e.clientY, moved: false,
        negative: e.button === 2 || e.shiftKey !== this.negative, box: null, done: false,
      };
      if (e.pointerType === "touch") {
        d.timer = setTimeout(() => {
          if (this._drag !== d || d.moved) return;
          d.done = true; // a long press: a negative point, now
          this._emitPoint(d.start, false);
        }, LONG_PRESS_MS);
      }
      this._drag = d;
    });
    c.addEventListener("pointermove", (e) => {
      if (this._pointers.has(e.pointerId)) this._pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (this._pinch) return this._movePinch();
      const d = this._drag;
      if (!d) return;
      if (d.pan) {
        this.panBy(e.clientX - d.cx, e.clientY - d.cy);
        d.cx = e.clientX;
        d.cy = e.clientY;
        return;
      }
      if (d.done) return;
      if (!d.moved && Math.hypot(e.clientX - d.cx, e.clientY - d.cy) > CLICK_SLOP) d.moved = true;
      if (d.moved && this.dragPans) { // from the press on, so the picture follows the pointer exactly
        clearTimeout(d.timer);
        d.pan = true;
        this.panBy(e.clientX - d.cx, e.clientY - d.cy);
        d.cx = e.clientX;
        d.cy = e.clientY;
      } else if (d.moved) {
        clearTimeout(d.timer);
        d.box = ordered(d.start, this.toImagePoint(e));
        this._renderMarkers();
      }
    });
    const finish = (e) => {
      this._pointers.delete(e.pointerId);
      if (this._pinch) {
        if (this._pointers.size < 2) this._pinch = null;
        return;
      }
      const d = this._drag;
      if (!d) return;
      this._drag = null;
      clearTimeout(d.timer);
      this._renderMarkers();
      if (d.pan || d.done || e.type === "pointercancel") return;
      const box = d.moved ? ordered(d.start, this.toImagePoint(e)) : null;
      if (box && box.x1 - box.x0 >= MIN_BOX && box.y1 - box.y0 >= MIN_BOX) {
        this.dispatchEvent(new CustomEvent("box", { detail: box }));
      } else {
        this._emitPoint(d.start, !d.negative);
      }
    };
    c.addEventListener("pointerup", finish);
    c.addEventListener("pointercancel", finish);
    c.addEventListener("wheel", (e) => {
      if (!this.fit || !this._hasImage) return;
      e.preventDefault();
      const lines = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1;
      this.zoomBy(Math.exp(-e.deltaY * lines * 0.002), e.clientX, e.clientY);
    }, { passive: false });
    // Refit to the container, and redraw the markers at their on-screen size, on layout changes.
    if (typeof ResizeObserver !== "undefined") {
      this._observers = [new ResizeObserver(() => this._fit()), new ResizeObserver(() => this._renderMarkers())];
      this._observers[0].observe(this.container);
      this._observers[1].observe(this.element);
    }
  }

  _emitPoint({ x, y }, positive) {
    this.dispatchEvent(new CustomEvent("point", { detail: { x, y, positive } }));
  }

  // Two fingers: whatever one finger started is dropped; the view zooms with the spread
  // and follows the midpoint.
  _startPinch() {
    if (this._drag) clearTimeout(this._drag.timer);
    this._drag = null;
    const [a, b] = [...this._pointers.values()];
    this._pinch = { dist: Math.hypot(a.x - b.x, a.y - b.y) || 1, mid: midpoint(a, b) };
    this._renderMarkers();
  }

  _movePinch() {
    const [a, b] = [...this._pointers.values()];
    const dist = Math.hypot(a.x - b.x, a.y - b.y) || 1;
    const mid = midpoint(a, b);
    const p = this._pinch;
    this.panBy(mid.x - p.mid.x, mid.y - p.mid.y);
    this.zoomBy(dist / p.dist, mid.x, mid.y);
    this._pinch = { dist, mid };
  }

  // Scale the overlay to fit the container, centred, keeping the aspect ratio, then apply
  // zoom and pan (the pan is bounded so some of the picture stays in view); enlarged
  // pictures are drawn with hard pixel edges so mask borders stay exact.
  _fit() {
    if (!this.fit || !this._hasImage) return;
    const cw = this.container.clientWidth;
    const ch = this.container.clientHeight;
    if (!cw || !ch) return;
    if (getComputedStyle(this.container).position === "static") this.container.style.position = "relative";
    const scale = Math.min(cw / this.width, ch / this.height) * this._zoom;
    const w = Math.floor(this.width * scale);
    const h = Math.floor(this.height * scale);
    const room = (size, view) => Math.max(0, (size - view) / 2);
    this._pan = {
      x: Math.min(room(w, cw), Math.max(-room(w, cw), this._pan.x)),
      y: Math.min(room(h, ch), Math.max(-room(h, ch), this._pan.y)),
    };
    Object.assign(this.element.style, {
      position: "absolute", left: `${Math.round((cw - w) / 2 + this._pan.x)}px`,
      top: `${Math.round((ch - h) / 2 + this._pan.y)}px`, transform: "none", width: `${w}px`, height: `${h}px`,
    });
    this.canvas.style.imageRendering = scale >= 2 ? "pixelated" : "auto";
    this._renderMarkers();
  }

  /** Remove the overlay from the page and stop watching its size. */
  destroy() {
    for (const o of this._observers || []) o.disconnect();
    this.element.remove();
  }
}

function ordered(a, b) {
  return {
    x0: Math.min(a.x, b.x), y0: Math.min(a.y, b.y), x1: Math.max(a.x, b.x), y1: Math.max(a.y, b.y),
  };
}

function midpoint(a, b) {
  return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
}

function drawPoint(ctx, p, s, selected, colors) {
  const r = 8 * s;
  if (selected) {
    ctx.beginPath();
    ctx.arc(p.x, p.y, r + 2 * s, 0, 2 * Math.PI);
    ctx.lineWidth = 1.5 * s;
    ctx.strokeStyle = "#2563eb";
    ctx.stroke();
  }
  ctx.beginPath();
  ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
  ctx.fillStyle = p.positive === false ? colors.negative : colors.positive;
  ctx.fill();
  ctx.lineWidth = 2 * s;
  ctx.strokeStyle = "#ffffff";
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(p.x - r / 2, p.y);
  ctx.lineTo(p.x + r / 2, p.y);
  if (p.positive !== false) {
    ctx.moveTo(p.x, p.y - r / 2);
    ctx.lineTo(p.x, p.y + r / 2);
  }
  ctx.lineWidth = 1.5 * s;
  ctx.stroke();
}

// The keyboard cursor: a black-and-white crosshair with a gap at the centre.
function drawCursor(ctx, p, s) {
  ctx.save();
  for (const [colour, width] of [["#000000", 3], ["#ffffff", 1.5]]) {
    ctx.beginPath();
    for (const [dx, dy] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
      ctx.moveTo(p.x + dx * 4 * s, p.y + dy * 4 * s);
      ctx.lineTo(p.x + dx * 11 * s, p.y + dy * 11 * s);
    }
    ctx.lineWidth = width * s;
    ctx.strokeStyle = colour;
    ctx.stroke();
  }
  ctx.restore();
}

function drawBox(ctx, b, s, dashed) {
  ctx.save();
  ctx.lineWidth = 2 * s;
  ctx.setLineDash(dashed ? [6 * s, 4 * s] : []);
  ctx.strokeStyle = "#000000";
  ctx.strokeRect(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
  ctx.setLineDash(dashed ? [6 * s, 4 * s] : [4 * s, 4 * s]);
  ctx.lineDashOffset = 0;
  ctx.strokeStyle = "#ffffff";
  ctx.lineWidth = 1 * s;
  ctx.strokeRect(b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
  ctx.restore();
}

// Indices of mask pixels within `width` pixels of the mask's edge (inside the mask),
// as segmentkit.render draws outlines: erode `width` times, edge-padded, keep mask - eroded.
function boundary(mask, w, h, box, width) {
  const [x0, y0, x1, y1] = box;
  if (x1 <= x0 || y1 <= y0) return new Int32Array(0);
  const bw = x1 - x0;
  const bh = y1 - y0;
  let inner = new Uint8Array(bw * bh);
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < bw; x++) inner[y * bw + x] = mask[(y + y0) * w + x + x0];
  }
  // Outside the box is background unless it is the image border (edge padding keeps it).
  const at = (a, x, y) => {
    if (x < 0 || y < 0 || x >= bw || y >= bh) {
      const ix = x + x0;
      const iy = y + y0;
      if (ix < 0 || iy < 0 || ix >= w || iy >= h) {
        return a[Math.min(bh - 1, Math.max(0, y)) * bw + Math.min(bw - 1, Math.max(0, x))];
      }
      return 0;
    }
    return a[y * bw + x];
  };
  for (let k = 0; k < width; k++) {
    const next = new Uint8Array(bw * bh);
    for (let y = 0; y < bh; y++) {
      for (let x = 0; x < bw; x++) {
        const i = y * bw + x;
        next[i] = inner[i] && at(inner, x - 1, y) && at(inner, x + 1, y) && at(inner, x, y - 1) && at(inner, x, y + 1)
          ? 1 : 0;
      }
    }
    inner = next;
  }
  const out = [];
  for (let y = 0; y < bh; y++) {
    for (let x = 0; x < bw; x++) {
      if (mask[(y + y0) * w + x + x0] && !inner[y * bw + x]) out.push((y + y0) * w + x + x0);
    }
  }
  return Int32Array.from(out);
}
