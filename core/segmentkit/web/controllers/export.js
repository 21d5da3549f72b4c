// The export buttons: PNG masks, cutout, COCO, YouTube-VIS and the objects document.

import { cocoDocument, cutoutPng, download, labelPng, maskPng, objectsDocument, ytvisDocument } from "../export.js";
import { chosenMask } from "../objects.js";
import { $, overlay } from "../page.js";
import { state } from "../store.js";
import { busy } from "./status.js";
import { frameTime } from "./video.js";

function stem() {
  const name = (state.media && state.media.name) || "image";
  const base = name.replace(/\.[^.]+$/, "") || "image";
  return state.media && state.media.kind === "video" ? `${base}-frame${state.frame}` : base;
}

const videoStem = () => stem().replace(/-frame\d+$/, "");
const visibleMasks = () => overlay.masks.filter((m) => m.visible && m.area > 0);

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

/** Wire this controller's controls. */
export function init() {
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
}
