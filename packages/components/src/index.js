// @segmentkit/components: the <segmentkit-overlay> element, the VisionClient and the COCO RLE codec.
export { SegmentkitOverlay } from "./element/segmentkit-overlay.js";
export { MaskOverlay, PALETTE, colorFor, cssColor } from "./element/mask-overlay.js";
export {
  CLIENT_ERRORS, VideoSession, VisionClient, VisionError, blobToBase64, imageFromBlob, imageFromCanvas,
} from "./client/vision-client.js";
export { countsFromString, countsToString, decodeRle, encodeRle, maskStats } from "./codecs/rle.js";
