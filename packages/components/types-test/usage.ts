// Compiled by `npm run check` (tsc --strict): the declarations in use, as a host app writes them.
import { VisionClient, VisionError, decodeRle, encodeRle } from "../types/index.js";
import type { OverlayMask, SkPointDetail } from "../types/index.js";

const overlay = document.createElement("segmentkit-overlay");
overlay.mode = "box";
overlay.addEventListener("sk-point", (e) => {
  const p: SkPointDetail = e.detail;
  console.log(p.x + p.y, p.positive);
});
overlay.addEventListener("sk-select", (e) => console.log(e.detail.index ?? -1, e.detail.objectId));

async function ask(client: VisionClient): Promise<void> {
  const controller = new AbortController();
  try {
    const doc = await client.maskFromPrompt({ image: { base64: "" }, point: { x: 1, y: 2 } });
    const masks: OverlayMask[] = doc.masks.map((m) => ({ rle: m.rle, label: m.label, objectId: m.object_id }));
    overlay.masks = masks;
    const session = await client.videoStart({ stream: true });
    await client.videoPropagate({ session: session.session }, {
      signal: controller.signal,
      onProgress: ({ done, total, frame }) => console.log(done / total, frame.masks.length),
    });
  } catch (err) {
    if (err instanceof VisionError) console.log(err.code, err.reason);
  }
}

const bits: Uint8Array = decodeRle(encodeRle(new Uint8Array(4), 2, 2));
void ask(new VisionClient("http://127.0.0.1:8765/?token=x", { token: "y" }));
void bits;
