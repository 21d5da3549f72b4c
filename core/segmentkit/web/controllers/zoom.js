// The view: zoom buttons and label, mask opacity and outlines.

import { $, overlay } from "../page.js";

export function zoom(factor) {
  const c = overlay.cursor;
  if (c) {
    const pic = overlay.canvas.getBoundingClientRect();
    overlay.zoomBy(factor, pic.left + (c.x / overlay.width) * pic.width, pic.top + (c.y / overlay.height) * pic.height);
  } else {
    overlay.zoomBy(factor);
  }
  updateZoomLabel();
}

export function updateZoomLabel() {
  $("zoom-label").textContent = `${Math.round(overlay.zoom * 100)} %`;
}

/** Wire this controller's controls. */
export function init() {
  $("opacity").addEventListener("input", (e) => {
    overlay.opacity = Number(e.target.value);
  });
  $("outlines").addEventListener("change", (e) => {
    overlay.outlines = e.target.checked;
  });
  $("zoom-in").addEventListener("click", () => zoom(1.5));
  $("zoom-out").addEventListener("click", () => zoom(1 / 1.5));
  $("zoom-reset").addEventListener("click", () => {
    overlay.resetView();
    updateZoomLabel();
  });
  overlay.canvas.addEventListener("wheel", updateZoomLabel);
  overlay.canvas.addEventListener("pointermove", updateZoomLabel);
}
