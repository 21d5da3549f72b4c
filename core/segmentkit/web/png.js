// A minimal PNG writer for 8-bit single-channel images: greyscale (mode "L") masks and
// palette (mode "P") label maps, which a canvas cannot produce (it only writes RGBA).
// Compression uses the browser's CompressionStream("deflate"), which emits the zlib
// stream PNG's IDAT expects.

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

async function deflate(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * Encode an 8-bit single-channel image as a PNG Blob.
 * @param {{width: number, height: number, data: Uint8Array, palette?: number[][]}} image
 *   `data` is row-major, one byte per pixel; with `palette` ([[r, g, b], ...], at most 256)
 *   the PNG is a palette image whose pixel values index it, otherwise greyscale.
 */
export async function encodePng({ width, height, data, palette }) {
  if (data.length !== width * height) throw new Error(`PNG data has ${data.length} bytes, expected ${width * height}`);
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header[8] = 8; // bit depth
  header[9] = palette ? 3 : 0; // colour type: palette or greyscale
  const raw = new Uint8Array((width + 1) * height);
  for (let y = 0; y < height; y++) raw.set(data.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
  const parts = [new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]), chunk("IHDR", header)];
  if (palette) {
    if (palette.length > 256) throw new Error("a PNG palette holds at most 256 colours");
    parts.push(chunk("PLTE", new Uint8Array(palette.flat())));
  }
  parts.push(chunk("IDAT", await deflate(raw)), chunk("IEND", new Uint8Array(0)));
  return new Blob(parts, { type: "image/png" });
}
