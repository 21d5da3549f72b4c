// The object list: rows, the selected object's editor, select / rename / reorder / hide / delete, legend.

import { colorFor, cssColor } from "../components/element/mask-overlay.js";
import { chosenMask, displayName, findObject, moveObject, removeObject } from "../objects.js";
import { $, overlay } from "../page.js";
import { notify, state } from "../store.js";
import { busy, refuseWhileBusy, setStatus } from "./status.js";
import { record, snapshot } from "./undo.js";
import { showFrame, showFrameMasks, videoObjectIds } from "./video.js";

/** Rows of the list: image objects, or the video's objects (on any frame). */
function listRows() {
  if (state.video) {
    const v = state.video;
    const onFrame = new Map(overlay.masks.map((m) => [m.info.object_id, m]));
    return videoObjectIds().map((id) => {
      const m = onFrame.get(id);
      return { id, name: v.names.get(id) || "", label: m ? m.label : v.names.get(id) || `object ${id}`,
        score: m ? m.score : null, visible: !v.hidden.has(id), selected: id === v.object, colorIndex: id,
        area: m ? m.area : 0, candidates: [], chosen: 0 };
    });
  }
  return state.doc.objects.map((o) => {
    const m = chosenMask(o);
    return { id: o.id, name: o.name, label: displayName(o), score: m ? m.score : null, visible: o.visible,
      selected: o.id === state.doc.selected, colorIndex: o.colorIndex, area: overlay.getMask(`object-${o.id}`)?.area ?? 0,
      candidates: o.candidates, chosen: o.chosen, pending: !m };
  });
}

function button(text, className, label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  if (label) b.setAttribute("aria-label", label);
  b.addEventListener("click", onClick);
  return b;
}

export function renderList() {
  const list = $("mask-list");
  // Redrawing the rows must not lose the keyboard focus: the same control of the same row gets it back.
  const active = document.activeElement;
  const focused = active && list.contains(active)
    ? [active.closest("li")?.dataset.objectId, active.classList[0] || "name"] : null;
  const rows = listRows();
  list.replaceChildren(...rows.map((row, k) => {
    const li = document.createElement("li");
    li.dataset.objectId = String(row.id);
    li.dataset.maskId = `object-${row.id}`;
    li.classList.toggle("hidden-mask", !row.visible);
    li.classList.toggle("selected", row.selected);
    const head = button("", "name", null, () => selectObject(row.id));
    head.setAttribute("aria-pressed", String(row.selected));
    head.title = `${row.label} · ${row.area} px`;
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = cssColor(colorFor(row.colorIndex));
    head.append(swatch, document.createTextNode(row.label));
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = row.score === null || row.score === undefined ? "" : row.score.toFixed(2);
    const toggle = button(row.visible ? "Hide" : "Show", "toggle", `${row.visible ? "Hide" : "Show"} ${row.label}`,
      () => setVisible(row.id, !row.visible));
    const remove = button("×", "delete", `Delete ${row.label}`, () => deleteObject(row.id));
    li.append(head, score, toggle, remove);
    li.addEventListener("mouseenter", () => {
      overlay.highlight = `object-${row.id}`;
    });
    li.addEventListener("mouseleave", () => {
      overlay.highlight = null;
    });
    li.addEventListener("focusin", () => {
      overlay.highlight = `object-${row.id}`;
    });
    li.addEventListener("focusout", () => {
      overlay.highlight = null;
    });
    if (row.selected) li.append(objectEditor(row, k, rows.length));
    return li;
  }));
  if (focused) {
    const li = list.querySelector(`li[data-object-id="${focused[0]}"]`);
    const again = li && (li.querySelector(`.${focused[1]}`) || li.querySelector(".name"));
    if (again) again.focus();
  }
  $("no-masks").hidden = rows.length > 0;
  const anyVisible = overlay.masks.some((m) => m.visible && m.area > 0);
  for (const id of ["export-png", "export-cutout"]) $(id).disabled = !anyVisible;
  $("export-objects").disabled = !anyVisible || !!state.video;
  $("export-coco").disabled = state.video ? !videoObjectIds().length : !anyVisible;
  $("export-ytvis").hidden = !state.video;
  $("export-ytvis").disabled = !state.video || !videoObjectIds().length;
  refreshLegend(overlay.masks);
}

// The selected object's details: class name, order, candidates.
function objectEditor(row, index, count) {
  const box = document.createElement("div");
  box.className = "editor";
  const label = document.createElement("label");
  label.textContent = "Class ";
  const input = document.createElement("input");
  input.type = "text";
  input.className = "class-name";
  input.value = row.name;
  input.placeholder = row.label;
  input.setAttribute("aria-label", `Class name of ${row.label}`);
  input.addEventListener("change", () => renameObject(row.id, input.value.trim()));
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") input.blur();
  });
  label.append(input);
  box.append(label);
  if (!state.video) {
    const order = document.createElement("div");
    order.className = "row";
    const up = button("↑", "up", `Move ${row.label} up`, () => reorder(row.id, -1));
    const down = button("↓", "down", `Move ${row.label} down`, () => reorder(row.id, 1));
    up.disabled = index === 0;
    down.disabled = index === count - 1;
    order.append(up, down);
    box.append(order);
  }
  if (row.candidates.length > 1) {
    const group = document.createElement("fieldset");
    group.className = "candidates";
    const legend = document.createElement("legend");
    legend.textContent = "Candidate masks";
    group.append(legend);
    row.candidates.forEach((c, k) => {
      const option = document.createElement("label");
      option.className = "check";
      const radio = document.createElement("input");
      radio.type = "radio";
      radio.name = `candidate-${row.id}`;
      radio.checked = k === row.chosen;
      radio.addEventListener("change", () => chooseCandidate(k));
      option.append(radio, document.createTextNode(` ${k + 1}: score ${c.score === null ? "–" : c.score.toFixed(2)}`));
      group.append(option);
    });
    box.append(group);
  }
  return box;
}

export function selectObject(id) {
  if (state.video) {
    state.video.object = id;
    showFrame(state.frame);
  } else {
    state.doc.selected = id;
    state.selectedPoint = null;
    notify();
  }
  const row = $("mask-list").querySelector(`li[data-object-id="${id}"]`);
  if (row) row.scrollIntoView({ block: "nearest" });
  const name = row ? row.querySelector(".name").textContent : `object ${id}`;
  setStatus(`Selected ${name}`);
}

function renameObject(id, name) {
  if (state.video) {
    if ((state.video.names.get(id) || "") === name) return;
    record("rename");
    if (name) state.video.names.set(id, name);
    else state.video.names.delete(id);
    showFrameMasks();
    return;
  }
  const obj = findObject(state.doc, id);
  if (!obj || obj.name === name) return;
  record("rename");
  obj.name = name;
  notify();
}

function reorder(id, delta) {
  const snap = structuredClone(snapshot());
  if (!moveObject(state.doc, id, delta)) return;
  state.history.record("reorder", snap);
  notify();
}

function setVisible(id, visible) {
  record(visible ? "show" : "hide");
  if (state.video) {
    if (visible) state.video.hidden.delete(id);
    else state.video.hidden.add(id);
    showFrameMasks();
    return;
  }
  const obj = findObject(state.doc, id);
  if (obj) obj.visible = visible;
  notify();
}

export function toggleSelected() {
  const id = state.video ? state.video.object : state.doc.selected;
  const row = listRows().find((r) => r.id === id);
  if (row) setVisible(id, !row.visible);
}

/** Delete an object (undoable; for video, the tracker forgets it on every frame). */
export async function deleteObject(id) {
  if (refuseWhileBusy()) return;
  record("delete an object");
  const t = state.video && state.video.tracker;
  if (t) {
    const done = await busy("Removing the object…", () => t.removeObject(id).then(() => true));
    if (!done) {
      state.history.drop(); // nothing was deleted
      return;
    }
    for (const key of [...state.video.markers.keys()]) if (key.endsWith(`:${id}`)) state.video.markers.delete(key);
    showFrame(state.frame);
  } else if (state.video) {
    state.video.removed.add(id);
    showFrameMasks();
  } else {
    removeObject(state.doc, id);
    state.selectedPoint = null;
    notify();
  }
  setStatus(`Deleted object ${id} (Ctrl+Z to undo)`);
}

export function chooseCandidate(k) {
  const obj = !state.video && findObject(state.doc, state.doc.selected);
  if (!obj || k >= obj.candidates.length || obj.chosen === k) return;
  record("choose a candidate");
  obj.chosen = k;
  notify();
}

function refreshLegend(masks) {
  const card = state.choice && state.choice.card;
  const entries = new Map();
  if (card && card.labels.length) {
    for (const m of masks) {
      const classId = m.info && m.info.class_id;
      if (classId !== null && classId !== undefined && !entries.has(classId)) entries.set(classId, m);
    }
  }
  const legend = $("legend");
  legend.replaceChildren();
  for (const [classId, m] of [...entries].sort((a, b) => a[0] - b[0])) {
    const li = document.createElement("li");
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = cssColor(colorFor(classId));
    const name = document.createElement("span");
    name.textContent = card.labels[classId] ?? m.label ?? `class ${classId}`;
    li.append(swatch, name);
    legend.appendChild(li);
  }
  $("legend-box").hidden = entries.size === 0;
}

/** Wire this controller's controls. */
export function init() {
  // Hovering a mask on the canvas highlights its row (and the mask).
  overlay.canvas.addEventListener("pointermove", (e) => {
    if (!overlay.hasImage || e.buttons) return;
    const { x, y } = overlay.toImagePoint(e);
    const id = overlay.maskAt(x, y);
    overlay.highlight = id;
    for (const li of $("mask-list").children) li.classList.toggle("hover", li.dataset.maskId === id);
  });
  overlay.canvas.addEventListener("pointerleave", () => {
    overlay.highlight = null;
    for (const li of $("mask-list").children) li.classList.remove("hover");
  });
}
