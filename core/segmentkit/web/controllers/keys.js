// Keyboard: the shortcuts, the help dialog, and prompting at the keyboard cursor.

import { findObject } from "../objects.js";
import { $, overlay } from "../page.js";
import { Shortcuts } from "../shortcuts.js";
import { notify, state } from "../store.js";
import { askModel } from "./image.js";
import { chooseCandidate, deleteObject, toggleSelected } from "./objects.js";
import { addPrompt, newObject, setNegative } from "./prompts.js";
import { cancelTasks, refuseWhileBusy, setStatus } from "./status.js";
import { record, redo, undo } from "./undo.js";
import { showFrame } from "./video.js";
import { updateZoomLabel, zoom } from "./zoom.js";

function imageStep(big) {
  const step = Math.max(1, Math.round(Math.max(overlay.width, overlay.height) / (100 * overlay.zoom)));
  return big ? step * 10 : step;
}

/** Arrows: move the selected point (and ask again), else the keyboard cursor. */
function arrow(e) {
  if (!overlay.hasImage) return;
  const step = imageStep(e.shiftKey);
  const dx = { ArrowLeft: -step, ArrowRight: step }[e.key] || 0;
  const dy = { ArrowUp: -step, ArrowDown: step }[e.key] || 0;
  const obj = !state.video && findObject(state.doc, state.doc.selected);
  const point = obj && state.selectedPoint !== null ? obj.prompts[state.selectedPoint] : null;
  if (point && point.kind === "point") {
    if (refuseWhileBusy()) return;
    if (!movePending) record("move a point");
    point.x = Math.min(overlay.width, Math.max(0, point.x + dx));
    point.y = Math.min(overlay.height, Math.max(0, point.y + dy));
    overlay.cursor = point;
    overlay.reveal(point.x, point.y);
    notify();
    clearTimeout(movePending);
    movePending = setTimeout(() => {
      movePending = null;
      askModel(obj.id);
    }, 350);
    return;
  }
  const c = overlay.cursor || { x: overlay.width / 2, y: overlay.height / 2 };
  overlay.cursor = overlay.cursor ? { x: c.x + dx, y: c.y + dy } : c;
  overlay.reveal(overlay.cursor.x, overlay.cursor.y);
}

let movePending = null;

function cursorOrCentre() {
  if (!overlay.cursor) overlay.cursor = { x: overlay.width / 2, y: overlay.height / 2 };
  return overlay.cursor;
}

/** Enter / Space on the canvas: a point at the cursor (Shift: the other kind). */
function pointAtCursor(e) {
  if (!overlay.hasImage) return;
  if (!overlay.cursor) {
    cursorOrCentre();
    return;
  }
  const { x, y } = overlay.cursor;
  addPrompt({ kind: "point", x, y, positive: e.shiftKey === overlay.negative });
}

/** B on the canvas: the first press marks a corner at the cursor, the second draws the box. */
function boxAtCursor() {
  if (!overlay.hasImage) return;
  const c = cursorOrCentre();
  if (!state.boxCorner) {
    state.boxCorner = { ...c };
    setStatus("Box: move the cursor to the opposite corner and press B again (Esc to cancel).");
    return;
  }
  const a = state.boxCorner;
  state.boxCorner = null;
  const box = { x0: Math.min(a.x, c.x), y0: Math.min(a.y, c.y), x1: Math.max(a.x, c.x), y1: Math.max(a.y, c.y) };
  if (box.x1 - box.x0 < 2 || box.y1 - box.y0 < 2) {
    setStatus("Box too small: move the cursor further from the first corner.");
    return;
  }
  addPrompt({ kind: "box", ...box });
}

/** [ / ]: select the previous / next point of the selected object. */
function cyclePoint(delta) {
  const obj = !state.video && findObject(state.doc, state.doc.selected);
  const points = obj ? obj.prompts.map((p, k) => [p, k]).filter(([p]) => p.kind === "point") : [];
  if (!points.length) return;
  const at = points.findIndex(([, k]) => k === state.selectedPoint);
  const next = points[(at + delta + points.length) % points.length];
  state.selectedPoint = next[1];
  overlay.cursor = next[0];
  notify();
}

/** Delete: the selected point, else the selected object. */
function deleteSelected() {
  if (refuseWhileBusy()) return;
  const obj = !state.video && findObject(state.doc, state.doc.selected);
  if (obj && state.selectedPoint !== null && obj.prompts[state.selectedPoint]) {
    record("delete a point");
    obj.prompts.splice(state.selectedPoint, 1);
    state.selectedPoint = null;
    if (obj.prompts.length) {
      notify();
      askModel(obj.id);
    } else {
      obj.candidates = [];
      notify();
    }
    return;
  }
  const id = state.video ? state.video.object : state.doc.selected;
  if (id !== null && id !== undefined) deleteObject(id);
}

function escape() {
  if ($("help").open) return $("help").close();
  if (cancelTasks()) return undefined;
  if (state.boxCorner) {
    state.boxCorner = null;
    setStatus("Box cancelled");
  } else if (state.selectedPoint !== null) {
    state.selectedPoint = null;
    notify();
  } else {
    overlay.cursor = null;
  }
  return undefined;
}

const onCanvas = (e) => e.target === overlay.canvas;
const shortcuts = new Shortcuts([
  { keys: ["Control+z", "Meta+z"], label: "Ctrl+Z", help: "Undo", run: undo },
  { keys: ["Control+Shift+z", "Meta+Shift+z", "Control+y"], label: "Ctrl+Shift+Z, Ctrl+Y", help: "Redo", run: redo },
  { keys: ["Escape"], label: "Esc", help: "Cancel the running request; close this help; drop the point selection", run: escape },
  { keys: ["Delete", "Backspace"], label: "Delete", help: "Delete the selected point, else the selected object", run: deleteSelected },
  { keys: ["n"], label: "N", help: "New object", run: newObject },
  { keys: ["p"], label: "P", help: "Positive points", run: () => setNegative(false) },
  { keys: ["m"], label: "M", help: "Negative points", run: () => setNegative(true) },
  { keys: ["o"], label: "O", help: "Open an image", run: () => $("open-image").click() },
  { keys: ["h"], label: "H", help: "Hide / show the selected object", run: () => toggleSelected() },
  { keys: ["1", "2", "3"], label: "1, 2, 3", help: "Choose candidate mask 1, 2 or 3", run: (e) => chooseCandidate(Number(e.key) - 1) },
  { keys: ["+", "="], label: "+ / −", help: "Zoom in / out (at the cursor)", run: () => zoom(1.5) },
  { keys: ["-"], label: "", run: () => zoom(1 / 1.5) },
  { keys: ["0"], label: "0", help: "Fit the image", run: () => {
    overlay.resetView();
    updateZoomLabel();
  } },
  { keys: ["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Shift+ArrowLeft", "Shift+ArrowRight", "Shift+ArrowUp",
    "Shift+ArrowDown"], label: "Arrows (Shift: ×10)",
  help: "On the image: move the selected point, else the cursor (the view follows)", when: onCanvas, run: arrow },
  { keys: ["Enter", " ", "Shift+Enter", "Shift+ "], label: "Enter, Space (Shift: other kind)",
    help: "On the image: add a point at the cursor", when: onCanvas, run: pointAtCursor },
  { keys: ["b"], label: "B", help: "On the image: box corner at the cursor (press twice)", when: onCanvas, run: boxAtCursor },
  { keys: ["[", "]"], label: "[ ]", help: "Select the previous / next point", run: (e) => cyclePoint(e.key === "]" ? 1 : -1) },
  { keys: [",", "."], label: ", .", help: "Video: previous / next frame", run: (e) => state.video && showFrame(state.frame + (e.key === "." ? 1 : -1)) },
  { keys: ["?"], label: "?", help: "This help", run: () => openHelp() },
]);
function openHelp() {
  const table = $("help-keys");
  table.replaceChildren(...shortcuts.rows().map(([keys, help]) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = keys;
    const td = document.createElement("td");
    td.textContent = help;
    tr.append(th, td);
    return tr;
  }));
  $("help").showModal();
}

/** Wire this controller's controls. */
export function init() {
  document.addEventListener("keydown", (e) => shortcuts.handle(e));
  $("help-button").addEventListener("click", openHelp);
  // Focused from the keyboard (not by a click), the image shows its cursor.
  overlay.canvas.addEventListener("focus", () => {
    if (overlay.hasImage && !overlay.cursor && overlay.canvas.matches(":focus-visible")) cursorOrCentre();
  });
}
