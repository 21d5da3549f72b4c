// The page served by `segmentkit serve`: VisionClient + MaskOverlay, composed.
// Images: prompt objects (points, boxes, text) or segment the whole image; objects are
// listed, selectable, renamable, hideable, reorderable; every change can be undone.
// Videos: frames are decoded here, pushed to a tracker session, prompted on any frame and
// propagated both ways. Mouse, touch and keyboard all work (press ? for the keys).

import { cocoDocument, cutoutPng, download, labelPng, maskPng, objectsDocument, ytvisDocument } from "./export.js";
import { History } from "./history.js";
import { MaskOverlay, colorFor, cssColor } from "./components/element/mask-overlay.js";
import {
  addObject, chosenMask, displayName, emptyDoc, findObject, moveObject, overlaySpecs, promptParams, promptTarget,
  removeObject,
} from "./objects.js";
import { Shortcuts } from "./shortcuts.js";
import { StreamTracker } from "./stream-tracker.js";
import { VisionClient, VisionError, imageFromBlob, imageFromCanvas } from "./components/client/vision-client.js";
import { readVideoFrames } from "./video-frames.js";

const $ = (id) => document.getElementById(id);

const client = VisionClient.fromLocation();
const overlay = new MaskOverlay($("view"), { opacity: Number($("opacity").value) });
overlay.element.hidden = true;
overlay.canvas.setAttribute("role", "application");
overlay.canvas.setAttribute("aria-roledescription", "image to annotate");
overlay.canvas.setAttribute("aria-label",
  "Image. Arrow keys move the cursor or the selected point, Enter adds a point, B draws a box, ? lists the keys.");

const ROLE_GROUPS = [
  ["prompter", "Prompt: points, boxes, text"],
  ["segmenter", "Segment"],
  ["tracker", "Track video"],
];
const MODE_NAMES = { prompter: "Prompt", tracker: "Track video" };
const SHOW_CANCEL_MS = 1000; // requests running longer show their time and a Cancel button

const state = {
  models: new Map(), // card id -> {card, roles}
  modes: new Map(), // "role|id|task" -> {role, id, task, card}
  choice: null,
  limits: null, // {max_pixels, max_request_bytes} of the service, when it says
  media: null, // {kind: "image", name, image, width, height} | {kind: "video", name, frames, width, height, fps}
  generation: 0, // bumps when the media changes, so late answers for old media are dropped
  doc: emptyDoc(), // the image's objects (objects.js)
  history: new History(),
  selectedPoint: null, // index in the selected object's prompts (keyboard moves it)
  boxCorner: null, // first corner of a box drawn with the keyboard
  video: null, // {tracker, markers: Map<"frame:object", prompts>, names, hidden, removed, object}
  frame: 0,
  tasks: new Set(), // running tasks: {label, controller, started}
};

// ------------------------------------------------------------------ status, errors, tasks

function setStatus(text) {
  $("status").textContent = text;
  $("status").classList.toggle("busy", state.tasks.size > 0);
  document.body.dataset.busy = state.tasks.size > 0 ? "1" : "0";
}

function showError(err) {
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
async function busy(label, task, { onFail } = {}) {
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

function cancelTasks() {
  for (const t of state.tasks) t.controller.abort();
  return state.tasks.size > 0;
}

/** Refuse a new request while one is running (clicks must not queue up). */
function refuseWhileBusy() {
  if (!state.tasks.size) return false;
  setStatus("Still working on the last request: wait, or Cancel (Esc).");
  return true;
}

// ------------------------------------------------------------------ models

async function loadModels() {
  const [result, stats] = await Promise.all([
    busy("Loading models…", () => client.models()),
    client.call("vision.stats", {}).catch(() => null),
  ]);
  if (stats && stats.limits) state.limits = stats.limits;
  if (!result) return;
  const select = $("model");
  select.replaceChildren();
  state.models.clear();
  state.modes.clear();
  const groups = new Map(); // label -> <optgroup>
  for (const [role, title] of ROLE_GROUPS) {
    for (const entry of result.models) {
      const card = entry.card;
      if (!entry.roles.includes(role)) continue;
      const tasks = role === "segmenter" ? card.tasks.filter((t) => !["prompt", "track", "ground"].includes(t)) : [null];
      for (const task of tasks) {
        state.modes.set([role, card.id, task || ""].join("|"), { role, id: card.id, task, card });
      }
      if (state.models.has(card.id) || !tasks.length) continue; // each model once, under its first role
      state.models.set(card.id, { card, roles: entry.roles });
      if (!groups.has(title)) {
        groups.set(title, document.createElement("optgroup"));
        groups.get(title).label = title;
      }
      const option = new Option(role === "prompter" ? `${card.id} (${card.prompt_kinds.join(", ")})` : card.id, card.id);
      option.title = card.description || "";
      groups.get(title).appendChild(option);
    }
  }
  for (const g of groups.values()) select.appendChild(g);
  if (!state.modes.size) {
    showError(new Error("no models are installed that this page can use (install a segmentkit plugin)"));
    return;
  }
  chooseModel(select.value);
}

/** Modes of model `id`: [value, label] for its roles and segmentation tasks. */
function modesOf(id) {
  return [...state.modes].filter(([, m]) => m.id === id)
    .map(([value, m]) => [value, m.role === "segmenter" ? `Segment · ${m.task}` : MODE_NAMES[m.role]]);
}

function chooseModel(id, preferred) {
  const modes = modesOf(id);
  if (!modes.length) return;
  $("model").value = id;
  const select = $("mode");
  select.replaceChildren(...modes.map(([value, label]) => new Option(label, value)));
  const want = preferred || (state.choice && `${state.choice.role}|${id}|${state.choice.task || ""}`);
  const fits = (value) => {
    const role = state.modes.get(value).role;
    return !state.media || (state.media.kind === "video") === (role === "tracker");
  };
  const pick = modes.find(([v]) => v === want && fits(v)) || modes.find(([v]) => fits(v)) || modes[0];
  chooseMode(pick[0]);
}

function chooseMode(value) {
  const choice = state.modes.get(value);
  if (!choice) return;
  const previous = state.choice;
  state.choice = choice;
  const { role, card } = choice;
  $("mode").value = value;
  const facts = [card.family, card.labels.length ? `${card.labels.length} labels` : "", card.description]
    .filter(Boolean);
  $("model-info").textContent = facts.join(" · ");
  $("prompt-tools").hidden = role === "segmenter";
  $("segment-tools").hidden = role !== "segmenter";
  $("text-form").hidden = !(card.prompt_kinds || []).includes("text");
  $("multimask").disabled = role !== "prompter";
  if (previous && (previous.id !== choice.id || previous.role !== choice.role)) {
    if (state.video) newVideoObject();
    else state.selectedPoint = null;
  }
  updateVideoHint();
  refresh();
}

/** After opening media: switch to a mode of the same model that fits it, if there is one. */
function fitModeToMedia() {
  if (state.choice) chooseModel(state.choice.id);
}

// ------------------------------------------------------------------ opening media

function confirmReplace() {
  const n = state.media ? (state.video ? videoObjectIds().length : state.doc.objects.length) : 0;
  return !n || window.confirm(`Open another file? The ${n} object(s) of ${state.media.name} will be lost (export them first).`);
}

/** The reason the service will refuse an image of `pixels` pixels and `bytes` bytes, or null. */
function tooLarge(name, width, height, bytes) {
  const limits = state.limits;
  if (!limits) return null;
  if (width * height > limits.max_pixels) {
    return `${name} is ${width}×${height} = ${(width * height).toLocaleString("en")} pixels; this service takes at most `
      + `${limits.max_pixels.toLocaleString("en")} (start segmentkit serve with a larger --max-pixels, or SEGMENTKIT_MAX_PIXELS, to open it) [image_too_large]`;
  }
  const request = Math.ceil(bytes / 3) * 4 + 1024; // base64 plus the JSON around it
  if (bytes && request > limits.max_request_bytes) {
    const mb = (n) => (n / 2 ** 20).toFixed(1);
    return `${name} is ${mb(bytes)} MB; a request to this service may be at most ${mb(limits.max_request_bytes)} MB `
      + "(start segmentkit serve with a larger --max-request-mb to open it) [payload_too_large]";
  }
  return null;
}

async function openFile(file) {
  if (!file) return;
  if (file.type.startsWith("video/")) return openVideo(file);
  if (file.type.startsWith("image/") || !file.type) return openImage(file);
  showError(new Error(`${file.name || "this file"} is neither an image nor a video (${file.type})`));
}

async function openImage(file) {
  if (!confirmReplace()) return;
  await busy(`Opening ${file.name}…`, async () => {
    const url = URL.createObjectURL(file);
    const img = new Image();
    img.src = url;
    try {
      await img.decode();
    } catch {
      throw new Error(`the browser cannot show ${file.name} as an image`);
    } finally {
      URL.revokeObjectURL(url);
    }
    const { naturalWidth: width, naturalHeight: height } = img;
    if (!width || !height) throw new Error(`${file.name} has no pixel size`);
    const refusal = tooLarge(file.name, width, height, file.size);
    if (refusal) throw new Error(refusal);
    await closeMedia();
    state.media = { kind: "image", name: file.name || "pasted.png", image: await imageFromBlob(file), width, height };
    showCanvas();
    overlay.setImage(img);
    $("timeline").hidden = true;
    $("video-tools").hidden = true;
    fitModeToMedia();
    refresh();
  });
}

async function openVideo(file) {
  if (!confirmReplace()) return;
  await busy(`Reading ${file.name}…`, async (signal) => {
    const fps = Math.max(1, Number($("fps").value) || 5);
    const maxFrames = Math.max(1, Number($("max-frames").value) || 100);
    const decoded = await readVideoFrames(file, {
      fps, maxFrames, onProgress: (done, total) => setStatus(`Reading frames ${done}/${total}…`),
    });
    if (signal.aborted) throw new VisionError(-32096, "request aborted");
    const refusal = tooLarge(`${file.name} (a frame)`, decoded.width, decoded.height, 0);
    if (refusal) throw new Error(refusal);
    await closeMedia();
    state.media = { kind: "video", name: file.name, ...decoded };
    state.video = { tracker: null, markers: new Map(), names: new Map(), hidden: new Set(), removed: new Set(), object: 1 };
    showCanvas();
    const slider = $("frame");
    slider.max = String(decoded.frames.length - 1);
    slider.value = "0";
    $("timeline").hidden = false;
    $("video-tools").hidden = false;
    fitModeToMedia();
    showFrame(0);
    updateVideoHint();
  });
}

function showCanvas() {
  $("placeholder").hidden = true;
  overlay.element.hidden = false;
  // On a phone the view takes the picture's shape (style.css); elsewhere it fills the stage.
  $("view").style.setProperty("--aspect", String(state.media.width / state.media.height));
}

async function closeMedia() {
  state.generation += 1;
  cancelTasks();
  await closeTracker();
  for (const f of state.media?.frames || []) f.close?.();
  state.media = null;
  state.video = null;
  state.doc = emptyDoc();
  state.history.clear();
  state.selectedPoint = null;
  state.boxCorner = null;
  overlay.setPrompts([]);
  overlay.clearMasks();
}

// ------------------------------------------------------------------ the image document and undo

/** The undoable state of the open media. */
function snapshot() {
  if (state.video) {
    const v = state.video;
    return { video: { markers: v.markers, names: v.names, hidden: v.hidden, removed: v.removed, object: v.object,
      log: v.tracker ? v.tracker.log : new Map() } };
  }
  return { doc: state.doc };
}

/** Record the state before a change called `label` (undo goes back to it). */
function record(label) {
  state.history.record(label, snapshot());
}

async function restore(snap) {
  state.selectedPoint = null;
  if (snap.doc) {
    state.doc = snap.doc;
    refresh();
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

const undo = () => travel(false);
const redo = () => travel(true);

/** Draw the image document (masks, markers) and the lists. */
function refresh() {
  if (!state.video && state.media) {
    overlay.setMasks(overlaySpecs(state.doc));
    overlay.selected = state.doc.selected === null ? null : `object-${state.doc.selected}`;
    const obj = findObject(state.doc, state.doc.selected);
    const prompts = obj ? obj.prompts : [];
    overlay.setPrompts(prompts.map((p, k) => ({ ...p, selected: k === state.selectedPoint })));
  }
  renderList();
  $("undo").disabled = !state.history.undoLabel;
  $("redo").disabled = !state.history.redoLabel;
  $("undo").title = state.history.undoLabel ? `Undo: ${state.history.undoLabel}` : "";
  $("redo").title = state.history.redoLabel ? `Redo: ${state.history.redoLabel}` : "";
}

// ------------------------------------------------------------------ prompts

overlay.addEventListener("point", (e) => {
  const { x, y, positive } = e.detail;
  if (selectMaskAt(x, y, positive)) return;
  addPrompt({ kind: "point", x, y, positive });
});
overlay.addEventListener("box", (e) => addPrompt({ kind: "box", ...e.detail }));

/**
 * A positive click on another prompted object's mask selects that object (a segmenter's
 * masks: any click). Negative points, Ctrl / Cmd-clicks and clicks for a new object
 * (one without prompts yet, e.g. after N) always prompt.
 */
function selectMaskAt(x, y, positive) {
  if (!state.media || !state.choice || modifierHeld) return false;
  const segmenter = state.choice.role === "segmenter";
  if (!segmenter && (!positive || currentIsNew())) return false;
  const id = overlay.maskAt(x, y);
  if (id === null) return false;
  const objectId = overlay.getMask(id).info?.object_id;
  const current = state.video ? state.video.object : state.doc.selected;
  if (objectId === current && !segmenter) return false;
  if (!state.video && !segmenter && findObject(state.doc, objectId)?.source !== "prompt") return false;
  selectObject(objectId);
  return true;
}

/** Whether the object being prompted exists and has no prompts yet. */
function currentIsNew() {
  if (state.video) return !videoObjectIds().includes(state.video.object);
  const obj = findObject(state.doc, state.doc.selected);
  return !!obj && obj.source === "prompt" && !obj.prompts.length;
}

let modifierHeld = false; // Ctrl / Cmd held: a click always places a point
for (const type of ["keydown", "keyup"]) {
  window.addEventListener(type, (e) => {
    modifierHeld = e.ctrlKey || e.metaKey;
  });
}
window.addEventListener("blur", () => {
  modifierHeld = false;
});

/** Why `kind` can't be prompted now (shown in the banner), or null. */
function promptRefusal(kind) {
  if (!state.media) return "open an image or a video first";
  if (!state.choice) return "no model is chosen";
  const { role, id } = state.choice;
  if (role === "segmenter") return `${id} labels the whole image: press “Segment image”, or pick a prompter to click`;
  if (state.media.kind === "video" && role !== "tracker") return `prompting a video needs a tracker model; ${id} is a ${role}`;
  if (state.media.kind === "image" && role !== "prompter") return `${id} tracks videos: open a video, or pick a prompter for images`;
  const kinds = state.choice.card.prompt_kinds || [];
  if (!kinds.includes(kind)) return `${id} takes ${kinds.join(", ") || "no"} prompts, not a ${kind}`;
  return null;
}

function addPrompt(prompt) {
  if (refuseWhileBusy()) return;
  const refusal = promptRefusal(prompt.kind);
  if (refusal) {
    showError(new Error(refusal));
    return;
  }
  if (state.video) {
    promptVideo(prompt);
    return;
  }
  record(`add a ${prompt.kind}`);
  const obj = promptTarget(state.doc);
  // One box and one text per object: a new one replaces the old.
  if (prompt.kind !== "point") obj.prompts = obj.prompts.filter((p) => p.kind !== prompt.kind);
  obj.prompts.push(prompt);
  state.selectedPoint = prompt.kind === "point" ? obj.prompts.length - 1 : null;
  refresh();
  askModel(obj.id);
}

/** Ask the model for object `id`'s masks; on failure or cancel the recorded change is undone. */
async function askModel(id) {
  const generation = state.generation;
  const obj = findObject(state.doc, id);
  const params = promptParams(obj.prompts);
  const multimask = $("multimask").checked;
  const model = state.choice.id;
  let failed = false;
  const result = await busy("Segmenting…", (signal) => client.maskFromPrompt(
    { image: state.media.image, model, multimask, ...params }, { signal },
  ), {
    onFail: () => {
      failed = true;
    },
  });
  if (generation !== state.generation) return;
  if (failed) {
    // The prompt that failed is not kept (nor sent again with the next one).
    const before = state.history.drop();
    if (before) state.doc = before.doc;
    state.selectedPoint = null;
    refresh();
    return;
  }
  if (!result) return;
  const size = [result.image.height, result.image.width];
  if (size[0] !== state.media.height || size[1] !== state.media.width) {
    showError(new Error(`the service read the image as ${size[1]}x${size[0]}, the browser as ${state.media.width}x${state.media.height}`));
    return;
  }
  const target = findObject(state.doc, id); // still there (undo is refused while busy)
  const masks = result.masks.map((m) => ({ rle: m.rle, score: m.score, label: m.label ?? null, class_id: m.class_id ?? null }));
  if (multimask || masks.length <= 1) {
    target.candidates = masks;
    target.chosen = masks.reduce((b, m, k) => ((m.score ?? 0) > (masks[b].score ?? 0) ? k : b), 0);
  } else {
    // A text query may find several objects: the first is this one, the others new ones.
    target.candidates = [masks[0]];
    target.chosen = 0;
    for (const m of masks.slice(1)) addObject(state.doc, { candidates: [m], label: m.label, model, prompts: [] });
    state.doc.selected = target.id;
  }
  target.label = masks[0] ? masks[0].label : target.label;
  target.model = result.model?.id ?? null;
  refresh();
}

$("text-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (text) addPrompt({ kind: "text", text });
});

/** Start a new object: the next prompts make it. */
function newObject() {
  if (refuseWhileBusy()) return;
  state.selectedPoint = null;
  if (state.video) {
    newVideoObject();
    showFrame(state.frame);
  } else if (state.media) {
    const current = findObject(state.doc, state.doc.selected);
    if (!current || current.prompts.length || current.candidates.length) {
      record("new object");
      addObject(state.doc);
    }
    refresh();
  }
  setStatus(`Now prompting object ${state.video ? state.video.object : state.doc.selected}`);
}

function clearPrompts() {
  if (refuseWhileBusy() || !state.media) return;
  if (state.video) {
    const key = `${state.frame}:${state.video.object}`;
    if (!state.video.markers.has(key)) return;
    record("clear prompts");
    state.video.markers.delete(key); // the tracker keeps what it was sent; only the markers go
    showFrame(state.frame);
    return;
  }
  const obj = findObject(state.doc, state.doc.selected);
  if (!obj || obj.source !== "prompt" || (!obj.prompts.length && !obj.candidates.length)) return;
  record("clear prompts");
  obj.prompts = [];
  obj.candidates = [];
  state.selectedPoint = null;
  refresh();
}

$("new-object").addEventListener("click", newObject);
$("clear-prompts").addEventListener("click", clearPrompts);

// ------------------------------------------------------------------ keyboard prompting

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
    refresh();
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
  refresh();
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
      refresh();
      askModel(obj.id);
    } else {
      obj.candidates = [];
      refresh();
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
    refresh();
  } else {
    overlay.cursor = null;
  }
  return undefined;
}

function setNegative(negative) {
  overlay.negative = negative;
  $("mode-pos").setAttribute("aria-pressed", String(!negative));
  $("mode-neg").setAttribute("aria-pressed", String(negative));
}

function chooseCandidate(k) {
  const obj = !state.video && findObject(state.doc, state.doc.selected);
  if (!obj || k >= obj.candidates.length || obj.chosen === k) return;
  record("choose a candidate");
  obj.chosen = k;
  refresh();
}

function zoom(factor) {
  const c = overlay.cursor;
  if (c) {
    const pic = overlay.canvas.getBoundingClientRect();
    overlay.zoomBy(factor, pic.left + (c.x / overlay.width) * pic.width, pic.top + (c.y / overlay.height) * pic.height);
  } else {
    overlay.zoomBy(factor);
  }
  updateZoomLabel();
}

function updateZoomLabel() {
  $("zoom-label").textContent = `${Math.round(overlay.zoom * 100)} %`;
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
document.addEventListener("keydown", (e) => shortcuts.handle(e));

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

$("help-button").addEventListener("click", openHelp);
// Focused from the keyboard (not by a click), the image shows its cursor.
overlay.canvas.addEventListener("focus", () => {
  if (overlay.hasImage && !overlay.cursor && overlay.canvas.matches(":focus-visible")) cursorOrCentre();
});

// ------------------------------------------------------------------ whole-image segmentation

$("run-segment").addEventListener("click", async () => {
  if (refuseWhileBusy()) return;
  if (!state.media) {
    showError(new Error("open an image first"));
    return;
  }
  if (state.media.kind !== "image") {
    showError(new Error("whole-image segmentation runs on images; open an image"));
    return;
  }
  const generation = state.generation;
  const { id, task, card } = state.choice;
  const result = await busy("Segmenting the image…", (signal) => client.segment(
    { image: state.media.image, model: id, task: task || undefined }, { signal },
  ));
  if (!result || generation !== state.generation) return;
  record("segment the image");
  // The prompted objects stay; the masks of an earlier "Segment image" are replaced.
  const doc = state.doc;
  const kept = doc.objects.filter((o) => o.source !== "segment");
  doc.objects = kept;
  for (const spec of segmentSpecs(result, card)) addObject(doc, { source: "segment", model: result.model?.id ?? null, ...spec });
  doc.selected = null;
  refresh();
  const added = doc.objects.length - kept.length;
  setStatus(`${added} masks added${kept.length ? `; your ${kept.length} prompted object(s) are kept` : ""}`);
});

function segmentSpecs(result, card) {
  const fixed = card.labels.length > 0;
  const classId = (m) => (m.class_id === null || m.class_id === undefined ? null : m.class_id);
  if (result.kind === "semantic") { // one mask per class present
    return result.masks.map((m) => ({
      label: m.label ?? `class ${m.class_id}`, colorIndex: m.class_id,
      candidates: [{ rle: m.rle, score: null, label: m.label ?? null, class_id: m.class_id }],
    }));
  }
  return result.masks.map((m, i) => ({
    label: m.label ?? (classId(m) !== null ? `class ${m.class_id}` : `mask ${i + 1}`),
    colorIndex: fixed && classId(m) !== null ? m.class_id : i,
    candidates: [{ rle: m.rle, score: m.score, label: m.label ?? null, class_id: classId(m) }],
  }));
}

// ------------------------------------------------------------------ video

function updateVideoHint() {
  if (!state.video) return;
  const trackers = [...state.modes.values()].filter((c) => c.role === "tracker").map((c) => c.id);
  let hint = "Click on any frame to prompt the object, then Propagate (either way). Click on another frame to correct it.";
  if (!state.choice || state.choice.role !== "tracker") {
    hint = trackers.length ? `Pick a tracker (${trackers.join(", ")}) to prompt the video.`
      : "No tracker model is installed: frames can be viewed but not tracked.";
  }
  $("video-hint").textContent = hint;
}

const frameCache = new Map();

async function frameImage(index) {
  if (!frameCache.has(index)) {
    const bitmap = state.media.frames[index];
    const canvas = document.createElement("canvas");
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    canvas.getContext("2d").drawImage(bitmap, 0, 0);
    frameCache.set(index, await imageFromCanvas(canvas));
  }
  return frameCache.get(index);
}

/** The tracker of the open video for the chosen model (a new one after a model change). */
function tracker() {
  const video = state.video;
  if (!video.tracker || video.tracker.model !== state.choice.id) {
    if (video.tracker) video.tracker.close();
    video.tracker = new StreamTracker(client, state.choice.id, { frameCount: state.media.frames.length, frameImage });
    video.markers.clear();
  }
  return video.tracker;
}

async function closeTracker() {
  frameCache.clear();
  const video = state.video;
  if (!video || !video.tracker) return;
  const old = video.tracker;
  video.tracker = null;
  await old.close();
}

function newVideoObject() {
  const v = state.video;
  if (!v) return;
  const used = videoObjectIds().includes(v.object) || [...v.markers.keys()].some((k) => k.endsWith(`:${v.object}`));
  if (used) {
    record("new object");
    v.object = Math.max(v.object, ...videoObjectIds()) + 1;
  }
}

async function promptVideo(prompt) {
  const video = state.video;
  const frame = state.frame;
  const t = tracker(); // first: a new tracker (another model) starts without markers
  const key = `${frame}:${video.object}`;
  let prompts = (video.markers.get(key) || []).slice();
  if (prompt.kind !== "point") prompts = prompts.filter((p) => p.kind !== prompt.kind);
  prompts.push(prompt);
  record(`add a ${prompt.kind}`);
  video.markers.set(key, prompts);
  video.removed.delete(video.object);
  overlay.setPrompts(prompts);
  let failed = false;
  await busy("Segmenting…", () => t.prompt(frame, video.object, promptParams(prompts), { onStatus: setStatus }), {
    onFail: () => {
      failed = true;
    },
  });
  if (state.video !== video) return;
  if (failed) {
    const before = state.history.drop();
    if (before) Object.assign(video, { markers: before.video.markers });
  }
  if (state.frame === frame) showFrame(frame);
  updateProgress();
}

function videoMasks(index) {
  const t = state.video.tracker;
  return t ? t.masksAt(index) : [];
}

/** Ids of the objects prompted or tracked (on any frame), not deleted. */
function videoObjectIds() {
  const t = state.video && state.video.tracker;
  if (!t) return [];
  const ids = new Set([...t.log.values()].map((e) => e.object));
  for (const f of t.frames()) for (const m of t.masksAt(f)) ids.add(m.object_id);
  return [...ids].filter((id) => !state.video.removed.has(id)).sort((a, b) => a - b);
}

function showFrame(index) {
  const frames = state.media.frames;
  state.frame = Math.max(0, Math.min(frames.length - 1, index));
  $("frame").value = String(state.frame);
  const time = frameTime(state.frame);
  $("frame-label").textContent = `frame ${state.frame + 1} / ${frames.length} · ${time.toFixed(2)} s`;
  overlay.setImage(frames[state.frame]);
  overlay.setPrompts(state.video.markers.get(`${state.frame}:${state.video.object}`) || []);
  showFrameMasks();
}

/** The time (seconds) of sampled frame `index` in the video. */
function frameTime(index) {
  return (index + 0.5) / state.media.fps;
}

function showFrameMasks() {
  const v = state.video;
  const masks = videoMasks(state.frame).filter((m) => !v.removed.has(m.object_id));
  overlay.setMasks(masks.map((m) => ({
    id: `object-${m.object_id}`,
    rle: m.rle,
    colorIndex: m.object_id,
    label: v.names.get(m.object_id) || m.label || `object ${m.object_id}`,
    score: m.score,
    visible: !v.hidden.has(m.object_id),
    info: { object_id: m.object_id, class_id: m.class_id, name: v.names.get(m.object_id) || null },
  })));
  overlay.selected = `object-${v.object}`;
  refresh();
}

function updateProgress() {
  const t = state.video && state.video.tracker;
  const progress = $("progress");
  progress.hidden = !t;
  if (t) progress.value = t.pushed / t.frameCount;
}

$("frame").addEventListener("input", (e) => showFrame(Number(e.target.value)));
$("prev-frame").addEventListener("click", () => state.video && showFrame(state.frame - 1));
$("next-frame").addEventListener("click", () => state.video && showFrame(state.frame + 1));

async function propagate(backward) {
  const video = state.video;
  if (!video || refuseWhileBusy()) return;
  if (!state.choice || state.choice.role !== "tracker") {
    showError(new Error("propagation needs a tracker model"));
    return;
  }
  const t = video.tracker;
  if (!t || !t.prompted) {
    showError(new Error("prompt an object on a frame first (click on it)"));
    return;
  }
  const label = backward ? "Propagating back…" : "Propagating…";
  const result = await busy(label, (signal) => t[backward ? "trackBackward" : "track"]({
    signal,
    onFrame: (index, masks, done, total) => {
      updateProgress();
      setStatus(`${label} ${done}/${total}`);
      if (state.video === video && index === state.frame) showFrameMasks();
    },
  }));
  if (result) setStatus(`${result.cancelled ? "Cancelled after" : "Tracked"} ${result.framesDone} frames${backward ? " back" : ""}`);
  if (state.video === video) showFrameMasks();
}

$("propagate").addEventListener("click", () => propagate(false));
$("propagate-back").addEventListener("click", () => propagate(true));
$("cancel-request").addEventListener("click", cancelTasks);

// ------------------------------------------------------------------ the object list

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

function renderList() {
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

function selectObject(id) {
  if (state.video) {
    state.video.object = id;
    showFrame(state.frame);
  } else {
    state.doc.selected = id;
    state.selectedPoint = null;
    refresh();
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
  refresh();
}

function reorder(id, delta) {
  const snap = structuredClone(snapshot());
  if (!moveObject(state.doc, id, delta)) return;
  state.history.record("reorder", snap);
  refresh();
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
  refresh();
}

function toggleSelected() {
  const id = state.video ? state.video.object : state.doc.selected;
  const row = listRows().find((r) => r.id === id);
  if (row) setVisible(id, !row.visible);
}

/** Delete an object (undoable; for video, the tracker forgets it on every frame). */
async function deleteObject(id) {
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
    refresh();
  }
  setStatus(`Deleted object ${id} (Ctrl+Z to undo)`);
}

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

// ------------------------------------------------------------------ exports

function stem() {
  const name = (state.media && state.media.name) || "image";
  const base = name.replace(/\.[^.]+$/, "") || "image";
  return state.media && state.media.kind === "video" ? `${base}-frame${state.frame}` : base;
}

const videoStem = () => stem().replace(/-frame\d+$/, "");
const visibleMasks = () => overlay.masks.filter((m) => m.visible && m.area > 0);

$("export-png").addEventListener("click", () => busy("Exporting…", async () => {
  const masks = visibleMasks();
  if (!masks.length) throw new Error("no visible masks to export");
  const blob = masks.length === 1 ? await maskPng(masks[0], overlay.width, overlay.height)
    : await labelPng(masks, overlay.width, overlay.height);
  download(blob, `${stem()}-masks.png`);
}));

$("export-cutout").addEventListener("click", () => busy("Exporting…", async () => {
  const masks = visibleMasks();
  if (!masks.length) throw new Error("no visible masks to export");
  download(await cutoutPng(overlay.imageData(), masks), `${stem()}-cutout.png`);
}));

/** Every frame's visible masks, named: frame index -> [{rle, area, box, score, label, info}]. */
function videoExportMasks() {
  const v = state.video;
  const t = v.tracker;
  const out = new Map();
  for (const frame of t ? t.frames() : []) {
    out.set(frame, t.masksAt(frame).filter((m) => !v.removed.has(m.object_id) && !v.hidden.has(m.object_id))
      .map((m) => ({ rle: m.rle, area: m.area, box: m.bbox, score: m.score, label: v.names.get(m.object_id) || m.label,
        info: { class_id: m.class_id, object_id: m.object_id, name: v.names.get(m.object_id) || null } })));
  }
  return out;
}

const frameFile = (frame) => `frame_${String(frame).padStart(6, "0")}.png`;

$("export-coco").addEventListener("click", () => busy("Exporting…", async () => {
  let images;
  if (state.media.kind === "video") {
    const { width, height } = state.media;
    images = [...videoExportMasks()].map(([frame, masks]) => ({
      file_name: frameFile(frame), frame, time: frameTime(frame), width, height, masks,
    }));
  } else {
    images = [{ file_name: state.media.name, width: overlay.width, height: overlay.height, masks: visibleMasks() }];
  }
  const text = JSON.stringify(cocoDocument(images));
  download(new Blob([text], { type: "application/json" }), `${videoStem()}-coco.json`);
}));

$("export-ytvis").addEventListener("click", () => busy("Exporting…", async () => {
  const { width, height, frames, name } = state.media;
  const video = { name, width, height, frames: frames.map((_, k) => ({ file_name: frameFile(k), time: frameTime(k) })) };
  const text = JSON.stringify(ytvisDocument(video, videoExportMasks()));
  download(new Blob([text], { type: "application/json" }), `${videoStem()}-ytvis.json`);
}));

$("export-objects").addEventListener("click", () => busy("Exporting…", async () => {
  const objects = state.doc.objects.filter((o) => o.visible && chosenMask(o)).map((o) => {
    const m = overlay.getMask(`object-${o.id}`);
    const chosen = chosenMask(o);
    return { id: o.id, name: o.name, label: o.label, classId: chosen.class_id, rle: chosen.rle, box: m.box,
      area: m.area, score: chosen.score, prompts: o.prompts };
  });
  const doc = objectsDocument({ file_name: state.media.name, width: overlay.width, height: overlay.height }, objects);
  download(new Blob([JSON.stringify(doc)], { type: "application/json" }), `${stem()}-objects.json`);
}));

// ------------------------------------------------------------------ wiring

$("model").addEventListener("change", (e) => chooseModel(e.target.value));
$("mode").addEventListener("change", (e) => chooseMode(e.target.value));
$("open-image-button").addEventListener("click", () => $("open-image").click());
$("open-video-button").addEventListener("click", () => $("open-video").click());
for (const id of ["open-image", "open-video"]) {
  $(id).addEventListener("change", (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (file) (id === "open-image" ? openImage : openVideo)(file);
  });
}
// Drop a file on the image area, or paste one anywhere.
const stage = document.querySelector(".stage");
stage.addEventListener("dragover", (e) => {
  e.preventDefault();
  stage.classList.add("dropping");
});
stage.addEventListener("dragleave", () => stage.classList.remove("dropping"));
stage.addEventListener("drop", (e) => {
  e.preventDefault();
  stage.classList.remove("dropping");
  openFile(e.dataTransfer && e.dataTransfer.files[0]);
});
document.addEventListener("paste", (e) => {
  const file = [...(e.clipboardData ? e.clipboardData.files : [])][0];
  if (!file) return;
  e.preventDefault();
  openFile(file);
});
$("opacity").addEventListener("input", (e) => {
  overlay.opacity = Number(e.target.value);
});
$("outlines").addEventListener("change", (e) => {
  overlay.outlines = e.target.checked;
});
$("mode-pos").addEventListener("click", () => setNegative(false));
$("mode-neg").addEventListener("click", () => setNegative(true));
$("undo").addEventListener("click", undo);
$("redo").addEventListener("click", redo);
$("zoom-in").addEventListener("click", () => zoom(1.5));
$("zoom-out").addEventListener("click", () => zoom(1 / 1.5));
$("zoom-reset").addEventListener("click", () => {
  overlay.resetView();
  updateZoomLabel();
});
overlay.canvas.addEventListener("wheel", updateZoomLabel);
overlay.canvas.addEventListener("pointermove", updateZoomLabel);
$("error-close").addEventListener("click", clearError);

// For debugging from the console (and for the browser tests).
window.segmentkit = {
  client, overlay, state,
  /** The prompts of the object being prompted (on this frame, for a video). */
  prompts: () => (state.video ? state.video.markers.get(`${state.frame}:${state.video.object}`) || []
    : findObject(state.doc, state.doc.selected)?.prompts || []),
};

setStatus("");
loadModels();
