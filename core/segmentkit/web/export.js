// Client-side exports of masks: PNGs, COCO JSON, RGBA cut-outs, and the download helper.
// "Masks" here are MaskOverlay records: {data (row-major 0/1), area, box, color, label,
// score, info}; `info.class_id` / `info.object_id` carry what the service said. COCO
// export also takes the service's own masks ({rle, area, box, score, label, info}).

import { encodePng } from "./png.js";
import { encodeRle } from "./components/codecs/rle.js";

/** A greyscale PNG of one mask: 255 inside, 0 outside. */
export function maskPng(mask, width, height) {
  const data = new Uint8Array(width * height);
  for (let i = 0; i < data.length; i++) data[i] = mask.data[i] ? 255 : 0;
  return encodePng({ width, height, data });
}

/**
 * A palette PNG of several masks: pixel value k + 1 where masks[k] is (0 = background),
 * larger masks drawn first so smaller ones stay on top, as on screen. At most 255 masks.
 */
export function labelPng(masks, width, height) {
  if (masks.length > 255) throw new Error(`a label PNG holds at most 255 masks, got ${masks.length}`);
  const data = new Uint8Array(width * height);
  const order = masks.map((m, k) => [m, k]).sort((a, b) => b[0].area - a[0].area);
  for (const [m, k] of order) {
    for (let i = 0; i < data.length; i++) if (m.data[i]) data[i] = k + 1;
  }
  const palette = [[0, 0, 0], ...masks.map((m) => m.color)];
  return encodePng({ width, height, data, palette });
}

/** An RGBA PNG of the image with alpha 255 inside the union of `masks` and 0 outside. */
export function cutoutPng(imageData, masks) {
  const { width, height } = imageData;
  const out = new ImageData(new Uint8ClampedArray(imageData.data), width, height);
  for (let i = 0; i < width * height; i++) {
    const keep = masks.some((m) => m.data[i]);
    out.data[i * 4 + 3] = keep ? 255 : 0;
    if (!keep) out.data[i * 4] = out.data[i * 4 + 1] = out.data[i * 4 + 2] = 0;
  }
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").putImageData(out, 0, 0);
  return new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("could not encode the cut-out"))), "image/png"));
}

/**
 * A COCO document ({images, annotations, categories}) in the shape of
 * segmentkit.export.to_coco: compressed RLE segmentation, XYWH bbox, area, iscrowd 0,
 * score, object_id. Categories: a mask's class name (`info.name`, given by the user) if
 * any, else its model class (`info.class_id`, keeping that id, named by `label`), else
 * "object"; names that are not model classes get ids after the largest class id.
 * An image may carry `frame` (index) and `time` (seconds) of a video frame.
 * @param {{file_name: string, width: number, height: number, masks: object[], frame?: number, time?: number}[]} images
 */
export function cocoDocument(images) {
  const category = categoryTable(images.flatMap((img) => img.masks));
  const annotations = [];
  const outImages = images.map((img, n) => {
    const imageId = n + 1;
    for (const m of img.masks) {
      const info = m.info || {};
      const [x0, y0, x1, y1] = m.box;
      const annotation = {
        id: annotations.length + 1,
        image_id: imageId,
        category_id: category.of(m),
        segmentation: m.rle || encodeRle(m.data, img.height, img.width),
        area: m.area,
        bbox: [x0, y0, x1 - x0, y1 - y0],
        iscrowd: 0,
        score: m.score,
      };
      if (info.object_id !== undefined && info.object_id !== null) annotation.object_id = info.object_id;
      annotations.push(annotation);
    }
    const entry = { id: imageId, width: img.width, height: img.height, file_name: img.file_name };
    if (img.frame !== undefined) entry.frame_index = img.frame;
    if (img.time !== undefined) entry.time = img.time;
    return entry;
  });
  return { images: outImages, annotations, categories: category.list() };
}

// Category ids and names of `masks` (see cocoDocument).
function categoryTable(masks) {
  const hasClass = (m) => m.info && m.info.class_id !== undefined && m.info.class_id !== null;
  const classes = new Map(); // class id -> name
  for (const m of masks) {
    if (hasClass(m) && !m.info.name && !classes.has(m.info.class_id)) {
      classes.set(m.info.class_id, m.label ?? String(m.info.class_id));
    }
  }
  const byName = new Map([...classes].map(([id, name]) => [name, id]));
  let next = classes.size ? Math.max(...classes.keys()) + 1 : 1;
  const of = (m) => {
    if (hasClass(m) && !m.info.name) return m.info.class_id;
    const name = (m.info && m.info.name) || "object";
    if (!byName.has(name)) {
      byName.set(name, next);
      classes.set(next, name);
      next += 1;
    }
    return byName.get(name);
  };
  for (const m of masks) of(m);
  return { of, list: () => [...classes].sort((a, b) => a[0] - b[0]).map(([id, name]) => ({ id, name })) };
}

/**
 * One JSON document of an image's objects, in the shape of segmentkit.export.to_json
 * (XYXY `bbox`, RLE, area, score, label, class_id, object_id) plus each object's class
 * `name` (given by the user, or null) and the `prompts` that made it.
 */
export function objectsDocument({ file_name, width, height }, objects) {
  return {
    image: { file_name, width, height },
    kind: "objects",
    masks: objects.map((o, index) => ({
      index,
      object_id: o.id,
      name: o.name || null,
      label: o.label ?? null,
      class_id: o.classId ?? null,
      rle: o.rle,
      bbox: o.box,
      area: o.area,
      score: o.score ?? null,
      prompts: o.prompts,
    })),
  };
}

/**
 * A YouTube-VIS style document of a tracked video: one `video` (file names and times of
 * the frames) and per object its RLE on every frame (null where it is absent), its
 * category (named as in cocoDocument) and mean score.
 * @param {{name: string, width: number, height: number, frames: {file_name: string, time: number}[]}} video
 * @param {Map<number, object[]>} perFrame  frame index -> masks ({rle, area, box, score, label, info})
 */
export function ytvisDocument(video, perFrame) {
  const all = [...perFrame.values()].flat();
  const category = categoryTable(all);
  const tracks = new Map(); // object id -> annotation
  for (const [frame, masks] of perFrame) {
    for (const m of masks) {
      const id = m.info.object_id;
      if (!tracks.has(id)) {
        tracks.set(id, {
          id, video_id: 1, category_id: category.of(m), object_id: id, iscrowd: 0,
          segmentations: video.frames.map(() => null), areas: video.frames.map(() => null),
          bboxes: video.frames.map(() => null), scores: [],
        });
      }
      const t = tracks.get(id);
      const [x0, y0, x1, y1] = m.box;
      t.segmentations[frame] = m.rle;
      t.areas[frame] = m.area;
      t.bboxes[frame] = [x0, y0, x1 - x0, y1 - y0];
      if (m.score !== null && m.score !== undefined) t.scores.push(m.score);
    }
  }
  const annotations = [...tracks.values()].sort((a, b) => a.id - b.id).map(({ scores, ...t }) => ({
    ...t, score: scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : null,
  }));
  return {
    videos: [{
      id: 1, name: video.name, width: video.width, height: video.height, length: video.frames.length,
      file_names: video.frames.map((f) => f.file_name), times: video.frames.map((f) => f.time),
    }],
    annotations,
    categories: category.list(),
  };
}

/** Save `blob` as `filename` through the browser's download. */
export function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
