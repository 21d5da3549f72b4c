// A video: its frames, the tracker session, prompting on any frame, propagation.

import { imageFromCanvas, VisionError } from "../components/client/vision-client.js";
import { promptParams } from "../objects.js";
import { $, client, overlay } from "../page.js";
import { notify, state } from "../store.js";
import { StreamTracker } from "../stream-tracker.js";
import { readVideoFrames } from "../video-frames.js";
import { closeMedia, confirmReplace, showCanvas, tooLarge } from "./media.js";
import { fitModeToMedia } from "./models.js";
import { busy, refuseWhileBusy, setStatus, showError } from "./status.js";
import { record } from "./undo.js";

export async function openVideo(file) {
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

export function updateVideoHint() {
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

export async function closeTracker() {
  frameCache.clear();
  const video = state.video;
  if (!video || !video.tracker) return;
  const old = video.tracker;
  video.tracker = null;
  await old.close();
}

export function newVideoObject() {
  const v = state.video;
  if (!v) return;
  const used = videoObjectIds().includes(v.object) || [...v.markers.keys()].some((k) => k.endsWith(`:${v.object}`));
  if (used) {
    record("new object");
    v.object = Math.max(v.object, ...videoObjectIds()) + 1;
  }
}

export async function promptVideo(prompt) {
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
export function videoObjectIds() {
  const t = state.video && state.video.tracker;
  if (!t) return [];
  const ids = new Set([...t.log.values()].map((e) => e.object));
  for (const f of t.frames()) for (const m of t.masksAt(f)) ids.add(m.object_id);
  return [...ids].filter((id) => !state.video.removed.has(id)).sort((a, b) => a - b);
}

export function showFrame(index) {
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
export function frameTime(index) {
  return (index + 0.5) / state.media.fps;
}

export function showFrameMasks() {
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
  notify();
}

function updateProgress() {
  const t = state.video && state.video.tracker;
  const progress = $("progress");
  progress.hidden = !t;
  if (t) progress.value = t.pushed / t.frameCount;
}

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

/** Wire this controller's controls. */
export function init() {
  $("frame").addEventListener("input", (e) => showFrame(Number(e.target.value)));
  $("prev-frame").addEventListener("click", () => state.video && showFrame(state.frame - 1));
  $("next-frame").addEventListener("click", () => state.video && showFrame(state.frame + 1));
  $("propagate").addEventListener("click", () => propagate(false));
  $("propagate-back").addEventListener("click", () => propagate(true));
}
