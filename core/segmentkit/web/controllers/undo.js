// Undo and redo of the open media's objects (snapshots in the store's History).

import { $ } from "../page.js";
import { notify, state } from "../store.js";
import { busy, refuseWhileBusy, setStatus } from "./status.js";
import { showFrame } from "./video.js";

/** The undoable state of the open media. */
export function snapshot() {
  if (state.video) {
    const v = state.video;
    return { video: { markers: v.markers, names: v.names, hidden: v.hidden, removed: v.removed, object: v.object,
      log: v.tracker ? v.tracker.log : new Map() } };
  }
  return { doc: state.doc };
}

/** Record the state before a change called `label` (undo goes back to it). */
export function record(label) {
  state.history.record(label, snapshot());
}

async function restore(snap) {
  state.selectedPoint = null;
  if (snap.doc) {
    state.doc = snap.doc;
    notify();
    return;
  }
  const v = state.video;
  Object.assign(v, { markers: snap.video.markers, names: snap.video.names, hidden: snap.video.hidden,
    removed: snap.video.removed, object: snap.video.object });
  const log = snap.video.log;
  const t = v.tracker;
  if (t && !sameLog(t.log, log)) {
    await busy("Tracking again…", () => t.restore(log, state.frame));
  }
  showFrame(state.frame);
}

function sameLog(a, b) {
  return a.size === b.size && [...a].every(([k, e]) => b.has(k) && JSON.stringify(b.get(k)) === JSON.stringify(e));
}

/** Undo (or redo) the last change: restore the state recorded before (after) it. */
async function travel(forward) {
  if (refuseWhileBusy()) return;
  const h = state.history;
  const label = forward ? h.redoLabel : h.undoLabel;
  const snap = forward ? h.redo(snapshot()) : h.undo(snapshot());
  if (!snap) return;
  await restore(snap);
  setStatus(`${forward ? "Redid" : "Undid"}: ${label}`);
}

export function undo() {
  return travel(false);
}

export function redo() {
  return travel(true);
}

/** The Undo / Redo buttons say what they would undo / redo. */
export function renderUndo() {
  $("undo").disabled = !state.history.undoLabel;
  $("redo").disabled = !state.history.redoLabel;
  $("undo").title = state.history.undoLabel ? `Undo: ${state.history.undoLabel}` : "";
  $("redo").title = state.history.redoLabel ? `Redo: ${state.history.redoLabel}` : "";
}

/** Wire this controller's controls. */
export function init() {
  $("undo").addEventListener("click", undo);
  $("redo").addEventListener("click", redo);
}
