// An image: opening it, drawing its objects, asking the model for masks, whole-image segmentation.

import { imageFromBlob } from "../components/client/vision-client.js";
import { addObject, findObject, overlaySpecs, promptParams } from "../objects.js";
import { $, client, overlay } from "../page.js";
import { notify, state } from "../store.js";
import { closeMedia, confirmReplace, showCanvas, tooLarge } from "./media.js";
import { fitModeToMedia } from "./models.js";
import { busy, refuseWhileBusy, setStatus, showError } from "./status.js";
import { record } from "./undo.js";

export async function openImage(file) {
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
    notify();
  });
}

/** Draw the image document: its masks, and the selected object's prompts. */
export function drawDoc() {
  if (!state.video && state.media) {
    overlay.setMasks(overlaySpecs(state.doc));
    overlay.selected = state.doc.selected === null ? null : `object-${state.doc.selected}`;
    const obj = findObject(state.doc, state.doc.selected);
    const prompts = obj ? obj.prompts : [];
    overlay.setPrompts(prompts.map((p, k) => ({ ...p, selected: k === state.selectedPoint })));
  }
}

/** Ask the model for object `id`'s masks; on failure or cancel the recorded change is undone. */
export async function askModel(id) {
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
    notify();
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
  notify();
}

/** Segment the whole image with the chosen segmenter (its earlier masks are replaced). */
async function segmentImage() {
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
  notify();
  const added = doc.objects.length - kept.length;
  setStatus(`${added} masks added${kept.length ? `; your ${kept.length} prompted object(s) are kept` : ""}`);
}

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

/** Wire this controller's controls. */
export function init() {
  $("run-segment").addEventListener("click", segmentImage);
}
