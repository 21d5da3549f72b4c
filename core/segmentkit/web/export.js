// Client-side exports of masks: PNGs, COCO JSON, RGBA cut-outs, and the download helper.
// "Masks" here are MaskOverlay records: {data (row-major 0/1), area, box, color, label,
// score, info}; `info.class_id` / `info.object_id` carry what the service said. COCO
// export also takes the service's own masks ({rle, area, box, score, label, info}).

import { encodePng } from "./png.js";
import { encodeRle } from "./rle.js";

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
 * score, object_id; a mask without a class gets category 1 "object".
 * @param {{file_name: string, width: number, height: number, masks: object[], frame?: number}[]} images
 */
export function cocoDocument(images) {
  const categories = new Map();
  const annotations = [];
  const outImages = images.map((img, n) => {
    const imageId = n + 1;
    for (const m of img.masks) {
      const info = m.info || {};
      const hasClass = info.class_id !== undefined && info.class_id !== null;
      const categoryId = hasClass ? info.class_id : 1;
      if (!categories.has(categoryId)) categories.set(categoryId, hasClass ? (m.label ?? String(categoryId)) : "object");
      const [x0, y0, x1, y1] = m.box;
      const annotation = {
        id: annotations.length + 1,
        image_id: imageId,
        category_id: categoryId,
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
    return entry;
  });
  return {
    images: outImages,
    annotations,
    categories: [...categories].sort((a, b) => a[0] - b[0]).map(([id, name]) => ({ id, name })),
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
