// COCO run-length encoding in the browser, byte-compatible with pycocotools.
//
// A COCO RLE is {size: [H, W], counts} where counts are run lengths over the mask in
// column-major (Fortran) order, starting with a run of zeros. "Compressed" counts are
// the string form of pycocotools' rleToString / rleFrString: each count (after the
// third, as a difference to the count two before) is written as LEB128-like groups of
// 5 bits, 0x20 = "more groups follow", 0x10 in the last group = negative, plus 48.
// Masks in this module are Uint8Array(H * W) in row-major order (index y * W + x), 0 or 1.

/** Counts (numbers) from a compressed COCO counts string (pycocotools' rleFrString). */
export function countsFromString(text) {
  const counts = [];
  let p = 0;
  while (p < text.length) {
    let x = 0;
    let k = 0;
    let more = true;
    while (more) {
      if (p >= text.length) throw new Error("truncated COCO RLE counts string");
      const c = text.charCodeAt(p) - 48;
      if (c < 0 || c > 63) throw new Error("bad character in COCO RLE counts");
      x += (c & 0x1f) * 2 ** (5 * k);
      more = (c & 0x20) !== 0;
      p += 1;
      k += 1;
      if (!more && (c & 0x10)) x -= 2 ** (5 * k);
    }
    if (counts.length > 2) x += counts[counts.length - 2];
    counts.push(x);
  }
  return counts;
}

/** The compressed counts string of run lengths (pycocotools' rleToString). */
export function countsToString(counts) {
  let out = "";
  for (let i = 0; i < counts.length; i++) {
    let x = counts[i];
    if (i > 2) x -= counts[i - 2];
    let more = true;
    while (more) {
      let c = x & 0x1f;
      x >>= 5; // arithmetic shift, as in C on a signed long
      more = (c & 0x10) ? x !== -1 : x !== 0;
      if (more) c |= 0x20;
      out += String.fromCharCode(c + 48);
    }
  }
  return out;
}

/** Decode a COCO RLE (compressed string or list counts) to a row-major Uint8Array mask. */
export function decodeRle(rle) {
  const [h, w] = rle.size;
  const counts = typeof rle.counts === "string" ? countsFromString(rle.counts) : rle.counts;
  const mask = new Uint8Array(h * w);
  const total = h * w;
  let pos = 0; // position in column-major order
  let value = 0;
  for (const run of counts) {
    if (run < 0 || pos + run > total) throw new Error(`COCO RLE runs exceed the ${w}x${h} mask`);
    if (value) {
      let x = Math.floor(pos / h);
      let y = pos - x * h;
      for (let n = 0; n < run; n++) {
        mask[y * w + x] = 1;
        if (++y === h) {
          y = 0;
          x += 1;
        }
      }
    }
    pos += run;
    value ^= 1;
  }
  if (pos !== total) throw new Error(`COCO RLE covers ${pos} of ${total} pixels`);
  return mask;
}

/** Encode a row-major mask of (h, w) as compressed COCO RLE {size, counts: string}. */
export function encodeRle(mask, h, w) {
  const counts = [];
  let value = 0;
  let run = 0;
  for (let x = 0; x < w; x++) {
    for (let y = 0; y < h; y++) {
      const v = mask[y * w + x] ? 1 : 0;
      if (v !== value) {
        counts.push(run);
        run = 0;
        value = v;
      }
      run += 1;
    }
  }
  counts.push(run);
  return { size: [h, w], counts: countsToString(counts) };
}

/** Number of foreground pixels and the tight XYXY box (x1, y1 exclusive) of a mask. */
export function maskStats(mask, h, w) {
  let area = 0;
  let x0 = w;
  let y0 = h;
  let x1 = 0;
  let y1 = 0;
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      if (mask[row + x]) {
        area += 1;
        if (x < x0) x0 = x;
        if (x >= x1) x1 = x + 1;
        if (y < y0) y0 = y;
        y1 = y + 1;
      }
    }
  }
  return area ? { area, box: [x0, y0, x1, y1] } : { area: 0, box: [0, 0, 0, 0] };
}
