/** COCO run-length encoding, byte-compatible with pycocotools and `segmentkit.rle`. */

/** A COCO RLE: `size` is [height, width]; `counts` column-major run lengths, compressed (string) or not. */
export interface Rle {
  size: [number, number] | number[];
  counts: string | number[];
}

/** A COCO RLE with compressed (string) counts, as `encodeRle` returns it. */
export interface CompressedRle {
  size: [number, number];
  counts: string;
}

/** Run lengths from a compressed COCO counts string (pycocotools' rleFrString). */
export function countsFromString(text: string): number[];
/** The compressed counts string of run lengths (pycocotools' rleToString). */
export function countsToString(counts: ArrayLike<number>): string;
/** Decode to a row-major mask (index y * width + x) of 0 and 1; throws on a malformed RLE. */
export function decodeRle(rle: Rle): Uint8Array;
/** Encode a row-major mask of `height` x `width` (non-zero: foreground) as compressed COCO RLE. */
export function encodeRle(mask: ArrayLike<number>, height: number, width: number): CompressedRle;
/** Foreground pixel count and tight box [x0, y0, x1, y1] (x1, y1 exclusive) of a row-major mask. */
export function maskStats(mask: ArrayLike<number>, height: number, width: number): {
  area: number;
  box: [number, number, number, number];
};
