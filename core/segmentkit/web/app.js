// The page served by `segmentkit serve`: VisionClient + MaskOverlay, composed.
// Images: prompt objects (points, boxes, text) or segment the whole image; objects are
// listed, selectable, renamable, hideable, reorderable; every change can be undone.
// Videos: frames are decoded here, pushed to a tracker session, prompted on any frame and
// propagated both ways. Mouse, touch and keyboard all work (press ? for the keys).
//
// This file only composes: the state lives in store.js, each part of the page is a controller
// in controllers/ that wires its own controls and changes the state through the store.

import * as exportButtons from "./controllers/export.js";
import * as image from "./controllers/image.js";
import * as keys from "./controllers/keys.js";
import * as media from "./controllers/media.js";
import * as models from "./controllers/models.js";
import * as objects from "./controllers/objects.js";
import * as prompts from "./controllers/prompts.js";
import * as status from "./controllers/status.js";
import * as undo from "./controllers/undo.js";
import * as video from "./controllers/video.js";
import * as zoom from "./controllers/zoom.js";
import { findObject } from "./objects.js";
import { client, overlay } from "./page.js";
import { state, subscribe } from "./store.js";

// After each change: the image's masks and prompts, then the object list, then Undo / Redo.
subscribe(image.drawDoc);
subscribe(objects.renderList);
subscribe(undo.renderUndo);

for (const controller of [prompts, keys, image, video, status, objects, exportButtons, models, media, zoom, undo]) {
  controller.init();
}

// For debugging from the console (and for the browser tests).
window.segmentkit = {
  client, overlay, state,
  /** The prompts of the object being prompted (on this frame, for a video). */
  prompts: () => (state.video ? state.video.markers.get(`${state.frame}:${state.video.object}`) || []
    : findObject(state.doc, state.doc.selected)?.prompts || []),
};

status.setStatus("");
models.loadModels();
