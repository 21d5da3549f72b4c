// Status line, error banner and running requests (busy indicator, elapsed time, Cancel).

import { VisionError } from "../components/client/vision-client.js";
import { $ } from "../page.js";
import { state } from "../store.js";

const SHOW_CANCEL_MS = 1000; // requests running longer show their time and a Cancel button

export function setStatus(text) {
  $("status").textContent = text;
  $("status").classList.toggle("busy", state.tasks.size > 0);
  document.body.dataset.busy = state.tasks.size > 0 ? "1" : "0";
}

export function showError(err) {
  let text = err && err.message ? err.message : String(err);
  if (err instanceof VisionError) {
    text = `${text} [${err.reason}]`;
    if (err.reason === "unauthorized") text += " — open the address printed by `segmentkit serve` (with its ?token=).";
  }
  console.error(err);
  $("error-text").textContent = text;
  $("error").hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error-text").textContent = "";
}

const cancelled = (err) => err instanceof VisionError && err.reason === "aborted";

/**
 * Run `task(signal)` with a busy indicator; after a second it shows the elapsed time and
 * a Cancel button (Esc) that aborts `signal`. Errors go to the banner; returns the task's
 * result, or undefined when it failed or was cancelled (`onFail` runs then).
 */
export async function busy(label, task, { onFail } = {}) {
  const entry = { label, controller: new AbortController(), started: performance.now() };
  state.tasks.add(entry);
  setStatus(label);
  tickElapsed();
  try {
    const result = await task(entry.controller.signal);
    clearError();
    return result;
  } catch (err) {
    if (onFail) onFail(err);
    if (cancelled(err) || entry.controller.signal.aborted) {
      entry.cancelled = true;
    } else {
      showError(err);
    }
    return undefined;
  } finally {
    state.tasks.delete(entry);
    const rest = [...state.tasks];
    setStatus(rest.length ? rest[rest.length - 1].label : entry.cancelled ? `Cancelled: ${label}` : "");
    tickElapsed();
  }
}

let elapsedTimer = null;

function tickElapsed() {
  const oldest = [...state.tasks].reduce((a, t) => (a && a.started <= t.started ? a : t), null);
  const ms = oldest ? performance.now() - oldest.started : 0;
  const show = !!oldest && ms >= SHOW_CANCEL_MS;
  $("elapsed").hidden = !show;
  $("cancel-request").hidden = !show;
  if (show) $("elapsed").textContent = `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  clearTimeout(elapsedTimer);
  if (oldest) elapsedTimer = setTimeout(tickElapsed, show ? 200 : SHOW_CANCEL_MS - ms + 5);
}

export function cancelTasks() {
  for (const t of state.tasks) t.controller.abort();
  return state.tasks.size > 0;
}

/** Refuse a new request while one is running (clicks must not queue up). */
export function refuseWhileBusy() {
  if (!state.tasks.size) return false;
  setStatus("Still working on the last request: wait, or Cancel (Esc).");
  return true;
}

/** Wire this controller's controls. */
export function init() {
  $("cancel-request").addEventListener("click", cancelTasks);
  $("error-close").addEventListener("click", clearError);
}
