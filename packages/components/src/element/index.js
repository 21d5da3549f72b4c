// The element part of @segmentkit/components: <segmentkit-overlay> and the canvas engine under it.
export { SegmentkitOverlay } from "./segmentkit-overlay.js";
export { MaskOverlay, PALETTE, colorFor, cssColor } from "./mask-overlay.js";
