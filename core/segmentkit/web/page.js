// What every controller of the page shares: its elements, the service client and the overlay.

import { VisionClient } from "./components/client/vision-client.js";
import { MaskOverlay } from "./components/element/mask-overlay.js";

export const $ = (id) => document.getElementById(id);

export const client = VisionClient.fromLocation();
export const overlay = new MaskOverlay($("view"), { opacity: Number($("opacity").value) });
overlay.element.hidden = true;
overlay.canvas.setAttribute("role", "application");
overlay.canvas.setAttribute("aria-roledescription", "image to annotate");
overlay.canvas.setAttribute("aria-label",
  "Image. Arrow keys move the cursor or the selected point, Enter adds a point, B draws a box, ? lists the keys.");
