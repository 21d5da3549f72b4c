// @segmentkit/components: the <segmentkit-overlay> element, the VisionClient and the COCO RLE codec.
export { MaskOverlay, PALETTE, SegmentkitOverlay, colorFor, cssColor } from "./element/index.js";
export {
  CLIENT_ERRORS, VideoSession, VisionClient, VisionError, blobToBase64, imageFromBlob, imageFromCanvas,
} from "./client/vision-client.js";
export { countsFromString, countsToString, decodeRle, encodeRle, maskStats } from "./codecs/rle.js";
