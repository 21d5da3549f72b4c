// The page's one store: the state every controller reads and writes, and the views that
// redraw when a controller says it changed (`notify`). No framework: a plain object and a list.

import { History } from "./history.js";
import { emptyDoc } from "./objects.js";

export const state = {
  models: new Map(), // card id -> {card, roles}
  modes: new Map(), // "role|id|task" -> {role, id, task, card}
  choice: null,
  limits: null, // {max_pixels, max_request_bytes} of the service, when it says
  media: null, // {kind: "image", name, image, width, height} | {kind: "video", name, frames, width, height, fps}
  generation: 0, // bumps when the media changes, so late answers for old media are dropped
  doc: emptyDoc(), // the image's objects (objects.js)
  history: new History(),
  selectedPoint: null, // index in the selected object's prompts (keyboard moves it)
  boxCorner: null, // first corner of a box drawn with the keyboard
  video: null, // {tracker, markers: Map<"frame:object", prompts>, names, hidden, removed, object}
  frame: 0,
  tasks: new Set(), // running tasks: {label, controller, started}
};

const views = [];

/** Call `view(state)` after every change, in the order the views subscribed. */
export function subscribe(view) {
  views.push(view);
}

/** Say that the state changed: every view redraws. */
export function notify() {
  for (const view of views) view(state);
}
