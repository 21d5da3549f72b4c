// Prompts: clicks, boxes and text become prompts of the selected object (image) or of the tracked object (video).

import { addObject, findObject, promptTarget } from "../objects.js";
import { $, overlay } from "../page.js";
import { notify, state } from "../store.js";
import { askModel } from "./image.js";
import { selectObject } from "./objects.js";
import { refuseWhileBusy, setStatus, showError } from "./status.js";
import { record } from "./undo.js";
import { newVideoObject, promptVideo, showFrame, videoObjectIds } from "./video.js";

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

export function addPrompt(prompt) {
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
  notify();
  askModel(obj.id);
}

/** Start a new object: the next prompts make it. */
export function newObject() {
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
    notify();
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
  notify();
}

export function setNegative(negative) {
  overlay.negative = negative;
  $("mode-pos").setAttribute("aria-pressed", String(!negative));
  $("mode-neg").setAttribute("aria-pressed", String(negative));
}

/** Wire this controller's controls. */
export function init() {
  overlay.addEventListener("point", (e) => {
    const { x, y, positive } = e.detail;
    if (selectMaskAt(x, y, positive)) return;
    addPrompt({ kind: "point", x, y, positive });
  });
  overlay.addEventListener("box", (e) => addPrompt({ kind: "box", ...e.detail }));
  for (const type of ["keydown", "keyup"]) {
    window.addEventListener(type, (e) => {
      modifierHeld = e.ctrlKey || e.metaKey;
    });
  }
  window.addEventListener("blur", () => {
    modifierHeld = false;
  });
  $("text-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("text").value.trim();
    if (text) addPrompt({ kind: "text", text });
  });
  $("new-object").addEventListener("click", newObject);
  $("clear-prompts").addEventListener("click", clearPrompts);
  $("mode-pos").addEventListener("click", () => setNegative(false));
  $("mode-neg").addEventListener("click", () => setNegative(true));
}
