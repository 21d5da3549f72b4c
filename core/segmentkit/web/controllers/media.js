// Opening files (buttons, drop, paste), the service's size limits, and closing the open media.

import { emptyDoc } from "../objects.js";
import { $, overlay } from "../page.js";
import { state } from "../store.js";
import { openImage } from "./image.js";
import { cancelTasks, showError } from "./status.js";
import { closeTracker, openVideo, videoObjectIds } from "./video.js";

export function confirmReplace() {
  const n = state.media ? (state.video ? videoObjectIds().length : state.doc.objects.length) : 0;
  return !n || window.confirm(`Open another file? The ${n} object(s) of ${state.media.name} will be lost (export them first).`);
}

/** The reason the service will refuse an image of `pixels` pixels and `bytes` bytes, or null. */
export function tooLarge(name, width, height, bytes) {
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
export function showCanvas() {
  $("placeholder").hidden = true;
  overlay.element.hidden = false;
  // On a phone the view takes the picture's shape (style.css); elsewhere it fills the stage.
  $("view").style.setProperty("--aspect", String(state.media.width / state.media.height));
}

export async function closeMedia() {
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

/** Wire this controller's controls. */
export function init() {
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
}
