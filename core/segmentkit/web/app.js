// The page served by `segmentkit serve`: VisionClient + MaskOverlay, composed.
// Images: prompt (points, boxes, text) or segment the whole image. Videos: frames are
// decoded here, pushed to a tracker session, prompted on any frame and propagated.

import { cocoDocument, cutoutPng, download, labelPng, maskPng } from "./export.js";
import { MaskOverlay, colorFor, cssColor } from "./mask-overlay.js";
import { VisionClient, VisionError, imageFromBlob, imageFromCanvas } from "./vision-client.js";
import { StreamTracker } from "./stream-tracker.js";
import { readVideoFrames } from "./video-frames.js";

const $ = (id) => document.getElementById(id);

const client = VisionClient.fromLocation();
const overlay = new MaskOverlay($("view"), { opacity: Number($("opacity").value) });
overlay.element.hidden = true;

const ROLE_GROUPS = [
  ["prompter", "Prompt: points, boxes, text"],
  ["segmenter", "Segment"],
  ["tracker", "Track video"],
];

const state = {
  choices: new Map(), // option value -> {role, id, task, card}
  choice: null,
  media: null, // {kind: "image", name, image} | {kind: "video", name, frames, width, height}
  generation: 0, // bumps when the media changes, so late answers for old media are dropped
  object: 1, // the object being prompted
  prompts: [], // prompts of that object (on this frame, for video)
  current: [], // overlay ids of that object's masks (images)
  video: null, // {tracker, markers: Map<"frame:object", prompts>, hidden, removed, frameImages, abort}
  frame: 0,
  busy: 0,
};

// ------------------------------------------------------------------ status and errors

function setStatus(text) {
  $("status").textContent = text;
  $("status").classList.toggle("busy", state.busy > 0);
  document.body.dataset.busy = state.busy > 0 ? "1" : "0";
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

/** Run `task` with a busy indicator; errors go to the banner. Returns its result or undefined. */
async function busy(label, task) {
  state.busy += 1;
  setStatus(label);
  try {
    const result = await task();
    clearError();
    return result;
  } catch (err) {
    showError(err);
    return undefined;
  } finally {
    state.busy -= 1;
    setStatus(state.busy ? $("status").textContent : "");
  }
}

// ------------------------------------------------------------------ models

async function loadModels() {
  const result = await busy("Loading models…", () => client.models());
  if (!result) return;
  const select = $("model");
  select.replaceChildren();
  state.choices.clear();
  const groups = new Map(); // label -> <optgroup>
  const group = (label) => {
    if (!groups.has(label)) {
      const g = document.createElement("optgroup");
      g.label = label;
      groups.set(label, g);
    }
    return groups.get(label);
  };
  for (const [role, title] of ROLE_GROUPS) {
    for (const entry of result.models) {
      const card = entry.card;
      if (!entry.roles.includes(role)) continue;
      const tasks = role === "segmenter" ? card.tasks.filter((t) => !["prompt", "track", "ground"].includes(t)) : [null];
      for (const task of tasks) {
        const value = [role, card.id, task || ""].join("|");
        state.choices.set(value, { role, id: card.id, task, card });
        const option = new Option(role === "prompter" ? `${card.id} (${card.prompt_kinds.join(", ")})` : card.id, value);
        option.title = card.description || "";
        group(task ? `${title} · ${task}` : title).appendChild(option);
      }
    }
  }
  for (const g of groups.values()) select.appendChild(g);
  if (!state.choices.size) {
    showError(new Error("no models are installed that this page can use (install a segmentkit plugin)"));
    return;
  }
  chooseModel(select.value);
}

function chooseModel(value) {
  const choice = state.choices.get(value);
  if (!choice) return;
  const previous = state.choice;
  state.choice = choice;
  const { role, card } = choice;
  $("model").value = value;
  const facts = [card.family, card.labels.length ? `${card.labels.length} labels` : "", card.description]
    .filter(Boolean);
  $("model-info").textContent = facts.join(" · ");
  $("prompt-tools").hidden = role === "segmenter";
  $("segment-tools").hidden = role !== "segmenter";
  $("text-form").hidden = !(card.prompt_kinds || []).includes("text");
  $("multimask").disabled = role !== "prompter";
  if (previous && (previous.id !== choice.id || previous.role !== choice.role)) {
    commitObject();
    if (state.video) showFrame(state.frame); // a different tracker starts its own session on the next prompt
  }
  updateVideoHint();
  refreshMasks();
}

// ------------------------------------------------------------------ opening media

async function openImage(file) {
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
    if (!img.naturalWidth || !img.naturalHeight) throw new Error(`${file.name} has no pixel size`);
    await closeMedia();
    state.media = { kind: "image", name: file.name, image: await imageFromBlob(file) };
    showCanvas();
    overlay.setImage(img);
    resetObjects();
    $("timeline").hidden = true;
    $("video-tools").hidden = true;
  });
}

async function openVideo(file) {
  await busy(`Reading ${file.name}…`, async () => {
    const fps = Math.max(1, Number($("fps").value) || 5);
    const maxFrames = Math.max(1, Number($("max-frames").value) || 100);
    const decoded = await readVideoFrames(file, {
      fps, maxFrames, onProgress: (done, total) => setStatus(`Reading frames ${done}/${total}…`),
    });
    await closeMedia();
    state.media = { kind: "video", name: file.name, ...decoded };
    state.video = {
      tracker: null, markers: new Map(), hidden: new Set(), removed: new Set(), frameImages: new Map(), abort: null,
    };
    showCanvas();
    const slider = $("frame");
    slider.max = String(decoded.frames.length - 1);
    slider.value = "0";
    $("timeline").hidden = false;
    $("video-tools").hidden = false;
    resetObjects();
    showFrame(0);
    updateVideoHint();
  });
}

function showCanvas() {
  $("placeholder").hidden = true;
  overlay.element.hidden = false;
}

async function closeMedia() {
  state.generation += 1;
  if (state.video && state.video.abort) state.video.abort.abort();
  await closeTracker();
  for (const f of state.media?.frames || []) f.close?.();
  state.media = null;
  state.video = null;
}

function resetObjects() {
  state.object = 1;
  state.prompts = [];
  state.current = [];
  overlay.setPrompts([]);
  overlay.clearMasks();
  refreshMasks();
}

// ------------------------------------------------------------------ prompts

overlay.addEventListener("point", (e) => addPrompt({ kind: "point", ...e.detail }));
overlay.addEventListener("box", (e) => addPrompt({ kind: "box", ...e.detail }));

function addPrompt(prompt) {
  if (!state.media || !state.choice) return;
  const { role } = state.choice;
  if (role === "segmenter") {
    showError(new Error(`${state.choice.id} labels the whole image: press “Segment image”, or pick a prompter to click`));
    return;
  }
  if (state.media.kind === "video" && role !== "tracker") {
    showError(new Error(`prompting a video needs a tracker model; ${state.choice.id} is a ${role}`));
    return;
  }
  if (state.media.kind === "image" && role !== "prompter") {
    showError(new Error(`${state.choice.id} tracks videos: open a video, or pick a prompter for images`));
    return;
  }
  const kinds = state.choice.card.prompt_kinds || [];
  if (!kinds.includes(prompt.kind)) {
    showError(new Error(`${state.choice.id} takes ${kinds.join(", ") || "no"} prompts, not a ${prompt.kind}`));
    return;
  }
  // One box and one text per object: a new one replaces the old.
  if (prompt.kind !== "point") state.prompts = state.prompts.filter((p) => p.kind !== prompt.kind);
  state.prompts.push(prompt);
  overlay.setPrompts(state.prompts);
  schedulePrompt();
}

function promptParams(prompts) {
  const params = {};
  const points = prompts.filter((p) => p.kind === "point").map(({ x, y, positive }) => ({ x, y, positive }));
  if (points.length) params.points = points;
  const box = prompts.find((p) => p.kind === "box");
  if (box) params.box = { x0: box.x0, y0: box.y0, x1: box.x1, y1: box.y1 };
  const text = prompts.find((p) => p.kind === "text");
  if (text) params.text = text.text;
  return params;
}

// One request at a time; prompts added meanwhile are sent together in the next one.
let promptRun = null;
let promptAgain = false;

function schedulePrompt() {
  if (promptRun) {
    promptAgain = true;
    return promptRun;
  }
  promptRun = (async () => {
    do {
      promptAgain = false;
      await busy("Segmenting…", () => (state.media.kind === "video" ? promptVideo() : promptImage()));
    } while (promptAgain);
  })().finally(() => {
    promptRun = null;
  });
  return promptRun;
}

async function promptImage() {
  const params = promptParams(state.prompts);
  if (!Object.keys(params).length) return;
  const generation = state.generation;
  const multimask = $("multimask").checked;
  const result = await client.maskFromPrompt({ image: state.media.image, model: state.choice.id, multimask, ...params });
  if (generation !== state.generation) return;
  checkSize([result.image.height, result.image.width]);
  for (const id of state.current) overlay.removeMask(id);
  // Candidates (multimask) show the best-scoring one; a text query may find several objects.
  const best = result.masks.reduce((b, m, k) => ((m.score ?? 0) > (result.masks[b].score ?? 0) ? k : b), 0);
  const n = result.masks.length;
  state.current = result.masks.map((m, k) => overlay.addMask({
    rle: m.rle,
    colorIndex: multimask ? state.object : state.object + k,
    label: (m.label || params.text || `object ${state.object}`) + (n > 1 ? ` · ${k + 1}/${n}` : ""),
    score: m.score,
    visible: !multimask || k === best,
    info: { class_id: m.class_id, object_id: state.object, model: result.model },
  }));
  refreshMasks();
}

function checkSize(size) {
  const [h, w] = size;
  if (h !== overlay.height || w !== overlay.width) {
    throw new Error(`the service read the image as ${w}x${h}, the browser as ${overlay.width}x${overlay.height}`);
  }
}

$("text-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("text").value.trim();
  if (!text) return;
  if (!state.media) {
    showError(new Error("open an image or a video first"));
    return;
  }
  addPrompt({ kind: "text", text });
});

/** Keep the current object's masks, start a new object (unless this one has nothing yet). */
function commitObject() {
  const video = state.video;
  const used = state.prompts.length > 0 || state.current.length > 0
    || (video && [...video.markers.keys()].some((key) => key.endsWith(`:${state.object}`)));
  if (used) state.object += 1;
  state.prompts = [];
  state.current = [];
  overlay.setPrompts([]);
}

$("new-object").addEventListener("click", () => {
  commitObject();
  if (state.media && state.media.kind === "video") showFrame(state.frame);
  setStatus(`Now prompting object ${state.object}`);
});

$("clear-prompts").addEventListener("click", () => {
  state.prompts = [];
  overlay.setPrompts([]);
  if (state.media && state.media.kind === "video") {
    // The tracker keeps what it was sent; only the markers go.
    state.video.markers.delete(`${state.frame}:${state.object}`);
    return;
  }
  for (const id of state.current) overlay.removeMask(id);
  state.current = [];
  refreshMasks();
});

// ------------------------------------------------------------------ whole-image segmentation

$("run-segment").addEventListener("click", async () => {
  if (!state.media) {
    showError(new Error("open an image first"));
    return;
  }
  if (state.media.kind !== "image") {
    showError(new Error("whole-image segmentation runs on images; open an image"));
    return;
  }
  await busy("Segmenting the image…", async () => {
    const generation = state.generation;
    const { id, task, card } = state.choice;
    const result = await client.segment({ image: state.media.image, model: id, task: task || undefined });
    if (generation !== state.generation) return;
    checkSize([result.image.height, result.image.width]);
    state.prompts = [];
    state.current = [];
    overlay.setPrompts([]);
    overlay.setMasks(segmentSpecs(result, card));
    refreshMasks();
  });
});

function segmentSpecs(result, card) {
  const fixed = card.labels.length > 0;
  if (result.kind === "semantic") { // one mask per class present
    return result.masks.map((m) => ({
      rle: m.rle, colorIndex: m.class_id, label: m.label ?? `class ${m.class_id}`, score: null,
      info: { class_id: m.class_id },
    }));
  }
  return result.masks.map((m, i) => ({
    rle: m.rle,
    colorIndex: fixed && m.class_id !== null && m.class_id !== undefined ? m.class_id : i,
    label: m.label ?? (m.class_id !== null && m.class_id !== undefined ? `class ${m.class_id}` : `mask ${i + 1}`),
    score: m.score,
    info: { class_id: m.class_id, object_id: m.object_id },
  }));
}

// ------------------------------------------------------------------ video

function updateVideoHint() {
  if (!state.video) return;
  const trackers = [...state.choices.values()].filter((c) => c.role === "tracker").map((c) => c.id);
  let hint = "Click on any frame to prompt the object, then Propagate. Click on a later frame to correct it.";
  if (!state.choice || state.choice.role !== "tracker") {
    hint = trackers.length ? `Pick a tracker (${trackers.join(", ")}) to prompt the video.`
      : "No tracker model is installed: frames can be viewed but not tracked.";
  }
  $("video-hint").textContent = hint;
}

async function frameImage(index) {
  const cache = state.video.frameImages;
  if (!cache.has(index)) {
    const bitmap = state.media.frames[index];
    const canvas = document.createElement("canvas");
    canvas.width = bitmap.width;
    canvas.height = bitmap.height;
    canvas.getContext("2d").drawImage(bitmap, 0, 0);
    cache.set(index, await imageFromCanvas(canvas));
  }
  return cache.get(index);
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
  const video = state.video;
  if (!video || !video.tracker) return;
  const old = video.tracker;
  video.tracker = null;
  video.markers.clear();
  await old.close();
}

async function promptVideo() {
  const params = promptParams(state.prompts);
  if (!Object.keys(params).length) return;
  const video = state.video;
  const frame = state.frame;
  const t = tracker();
  video.markers.set(`${frame}:${state.object}`, state.prompts.slice());
  await t.prompt(frame, state.object, params, { onStatus: setStatus });
  if (state.video === video && state.frame === frame) showFrameMasks();
  updateProgress();
}

function videoResults() {
  return state.video.tracker ? state.video.tracker.results : new Map();
}

function showFrame(index) {
  const frames = state.media.frames;
  state.frame = Math.max(0, Math.min(frames.length - 1, index));
  $("frame").value = String(state.frame);
  $("frame-label").textContent = `frame ${state.frame + 1} / ${frames.length}`;
  overlay.setImage(frames[state.frame]);
  state.prompts = (state.video.markers.get(`${state.frame}:${state.object}`) || []).slice();
  overlay.setPrompts(state.prompts);
  showFrameMasks();
}

function showFrameMasks() {
  const video = state.video;
  const masks = (videoResults().get(state.frame) || []).filter((m) => !video.removed.has(m.object_id));
  overlay.setMasks(masks.map((m) => ({
    id: `object-${m.object_id}`,
    rle: m.rle,
    colorIndex: m.object_id,
    label: m.label || `object ${m.object_id}`,
    score: m.score,
    visible: !video.hidden.has(m.object_id),
    info: { object_id: m.object_id, class_id: m.class_id },
  })));
  refreshMasks();
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

$("propagate").addEventListener("click", async () => {
  const video = state.video;
  if (!video) return;
  if (!state.choice || state.choice.role !== "tracker") {
    showError(new Error("propagation needs a tracker model"));
    return;
  }
  const t = video.tracker;
  if (!t || !t.prompted) {
    showError(new Error("prompt an object on a frame first (click on it)"));
    return;
  }
  video.abort = new AbortController();
  $("cancel").disabled = false;
  $("propagate").disabled = true;
  const result = await busy("Propagating…", () => t.track({
    signal: video.abort.signal,
    onFrame: (index, masks, done, total) => {
      updateProgress();
      setStatus(`Propagating… ${done}/${total}`);
      if (state.video === video && index === state.frame) showFrameMasks();
    },
  }));
  $("cancel").disabled = true;
  $("propagate").disabled = false;
  if (result) setStatus(`${result.cancelled ? "Cancelled after" : "Tracked"} ${result.framesDone} frames`);
  if (state.video === video) showFrameMasks();
});

$("cancel").addEventListener("click", () => {
  if (state.video && state.video.abort) state.video.abort.abort();
});

// ------------------------------------------------------------------ mask list and legend

function refreshMasks() {
  const list = $("mask-list");
  list.replaceChildren();
  const masks = overlay.masks;
  for (const m of masks) {
    const li = document.createElement("li");
    li.dataset.maskId = m.id;
    li.classList.toggle("hidden-mask", !m.visible);
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = cssColor(m.color);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = m.label || m.id;
    name.title = `${m.label || m.id} · ${m.area} px`;
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = m.score === null || m.score === undefined ? "" : m.score.toFixed(2);
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "toggle";
    toggle.textContent = m.visible ? "Hide" : "Show";
    toggle.setAttribute("aria-label", `${m.visible ? "Hide" : "Show"} ${m.label || m.id}`);
    toggle.addEventListener("click", () => setVisible(m, !m.visible));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "delete";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `Delete ${m.label || m.id}`);
    remove.addEventListener("click", () => deleteMask(m));
    li.append(swatch, name, score, toggle, remove);
    list.appendChild(li);
  }
  $("no-masks").hidden = masks.length > 0;
  const anyVisible = masks.some((m) => m.visible && m.area > 0);
  for (const id of ["export-png", "export-coco", "export-cutout"]) $(id).disabled = !anyVisible;
  if (state.media && state.media.kind === "video") $("export-coco").disabled = !videoResults().size;
  refreshLegend(masks);
}

function setVisible(m, visible) {
  if (state.media && state.media.kind === "video" && m.info && m.info.object_id !== undefined) {
    if (visible) state.video.hidden.delete(m.info.object_id);
    else state.video.hidden.add(m.info.object_id);
  }
  overlay.setMaskVisible(m.id, visible);
  refreshMasks();
}

function deleteMask(m) {
  if (state.media && state.media.kind === "video" && m.info && m.info.object_id !== undefined) {
    state.video.removed.add(m.info.object_id);
  }
  overlay.removeMask(m.id);
  state.current = state.current.filter((id) => id !== m.id);
  refreshMasks();
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

// ------------------------------------------------------------------ exports

function stem() {
  const name = (state.media && state.media.name) || "image";
  const base = name.replace(/\.[^.]+$/, "") || "image";
  return state.media && state.media.kind === "video" ? `${base}-frame${state.frame}` : base;
}

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

$("export-coco").addEventListener("click", () => busy("Exporting…", async () => {
  let images;
  if (state.media.kind === "video") {
    const { width, height } = state.media;
    const video = state.video;
    const results = videoResults();
    images = [...results.keys()].sort((a, b) => a - b).map((frame) => ({
      file_name: `frame_${String(frame).padStart(6, "0")}.png`, frame, width, height,
      masks: results.get(frame).filter((m) => !video.removed.has(m.object_id) && !video.hidden.has(m.object_id))
        .map((m) => ({ rle: m.rle, area: m.area, box: m.bbox, score: m.score, label: m.label,
          info: { class_id: m.class_id, object_id: m.object_id } })),
    }));
  } else {
    images = [{ file_name: state.media.name, width: overlay.width, height: overlay.height, masks: visibleMasks() }];
  }
  const text = JSON.stringify(cocoDocument(images));
  download(new Blob([text], { type: "application/json" }), `${stem().replace(/-frame\d+$/, "")}-coco.json`);
}));

// ------------------------------------------------------------------ wiring

$("model").addEventListener("change", (e) => chooseModel(e.target.value));
$("open-image").addEventListener("change", (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  if (file) openImage(file);
});
$("open-video").addEventListener("change", (e) => {
  const file = e.target.files[0];
  e.target.value = "";
  if (file) openVideo(file);
});
$("opacity").addEventListener("input", (e) => {
  overlay.opacity = Number(e.target.value);
});
$("outlines").addEventListener("change", (e) => {
  overlay.outlines = e.target.checked;
});
for (const [id, negative] of [["mode-pos", false], ["mode-neg", true]]) {
  $(id).addEventListener("click", () => {
    overlay.negative = negative;
    $("mode-pos").setAttribute("aria-pressed", String(!negative));
    $("mode-neg").setAttribute("aria-pressed", String(negative));
  });
}
$("error-close").addEventListener("click", clearError);

// For debugging from the console (and for the browser tests).
window.segmentkit = { client, overlay, state };

setStatus("");
loadModels();
