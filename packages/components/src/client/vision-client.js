// A small client for segmentkit's `vision.*` JSON-RPC methods, for browser pages.
//
//   import { VisionClient, imageFromBlob } from "@segmentkit/components";
//   const client = new VisionClient("http://127.0.0.1:8765/?token=...");  // what `segmentkit serve` prints
//   const { models } = await client.models();
//   const result = await client.maskFromPrompt({ image: await imageFromBlob(file),
//                                                point: { x: 120, y: 80 } });
//
// Every `vision.*` method has a camelCase method (`vision.segment_video_add_prompt` ->
// `videoAddPrompt`); `startVideo` wraps a session in a VideoSession object.
// Requests go as HTTP POST /rpc with `Authorization: Bearer <token>`; video propagation
// streams over the WebSocket /ws?token=..., one `vision.segment_video_progress`
// notification per frame. Every failure (a JSON-RPC error, HTTP refusal, lost
// connection) rejects with a VisionError carrying `code` (the JSON-RPC integer code),
// `name` (its stable string, e.g. "bad_image") and `message`.

/** A failed call: `code` is the JSON-RPC error code, `reason` its stable name, `data` the details. */
export class VisionError extends Error {
  constructor(code, message, data = {}) {
    super(message);
    this.name = "VisionError";
    this.code = code;
    this.data = data || {};
    this.reason = this.data.code || REASONS[code] || "error";
  }
}

// Codes the client itself raises (the service's own codes are in segmentkit/ipc/errors.py).
export const CLIENT_ERRORS = {
  NETWORK: -32098, // the service could not be reached or the connection dropped
  BAD_RESPONSE: -32097, // an answer that is not JSON-RPC
  ABORTED: -32096, // the caller aborted the request
};

const REASONS = {
  [-32098]: "network_error",
  [-32097]: "bad_response",
  [-32096]: "aborted",
  [-32005]: "unauthorized",
  [-32006]: "forbidden",
  [-32004]: "payload_too_large",
};

const PROGRESS = "vision.segment_video_progress";

export class VisionClient {
  /**
   * @param {string|URL} [url]  the address `segmentkit serve` prints (`http://127.0.0.1:8765/?token=...`);
   *   default: this page's origin, with the token of this page's `?token=`.
   * @param {{token?: string|null, fetch?: Function}} [options]  `token` overrides the URL's.
   */
  constructor(url, { token, fetch: fetchImpl } = {}) {
    const where = new URL(url ?? globalThis.location?.href ?? "", globalThis.location?.href);
    /** The service's address, without the token: `http://127.0.0.1:8765`. */
    this.baseUrl = `${where.origin}${where.pathname}`.replace(/\/$/, "");
    /** The per-launch token sent with every request (null: none). */
    this.token = token !== undefined ? token : where.searchParams.get("token");
    this._fetch = fetchImpl || globalThis.fetch.bind(globalThis);
    this._nextId = 1;
    this._socket = null; // Promise<WebSocket>
    this._pending = new Map(); // request id -> {resolve, reject, onProgress}
  }

  /** A client for the page's own server, with the token from `?token=` in its URL. */
  static fromLocation(location = globalThis.location) {
    return new VisionClient(location.origin, { token: new URL(location.href).searchParams.get("token") });
  }

  /**
   * Call one method over HTTP and return its `result`; rejects with VisionError.
   * @param {string} method  e.g. "vision.segment"
   * @param {object} [params]
   * @param {{signal?: AbortSignal}} [options]
   */
  async call(method, params = {}, { signal } = {}) {
    const id = this._nextId++;
    const headers = { "Content-Type": "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let response;
    try {
      response = await this._fetch(`${this.baseUrl}/rpc`, {
        method: "POST", headers, signal, body: JSON.stringify({ jsonrpc: "2.0", id, method, params }),
      });
    } catch (err) {
      if (err && err.name === "AbortError") throw new VisionError(CLIENT_ERRORS.ABORTED, "request aborted");
      throw new VisionError(CLIENT_ERRORS.NETWORK, `cannot reach segmentkit serve at ${this.baseUrl}: ${err.message || err}`);
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      body = null;
    }
    if (body && body.error) throw toError(body.error);
    if (!response.ok) {
      throw new VisionError(
        response.status === 401 ? -32005 : CLIENT_ERRORS.BAD_RESPONSE,
        `segmentkit serve answered HTTP ${response.status} ${response.statusText}`.trim(),
      );
    }
    if (!body || body.jsonrpc !== "2.0" || !("result" in body)) {
      throw new VisionError(CLIENT_ERRORS.BAD_RESPONSE, `not a JSON-RPC answer to ${method}`);
    }
    return body.result;
  }

  // ------------------------------------------------------------------ images

  /** `vision.models`: {models: [{card, roles, plugin, distribution, version}]}. */
  models(params = {}, options) {
    return this.call("vision.models", params, options);
  }

  /** `vision.segment({image, model?, task?, formats?})`: the result document (masks; files for formats). */
  segment(params, options) {
    return this.call("vision.segment", params, options);
  }

  /** `vision.mask_from_prompt({image, point | points | box | text, model?, multimask?})`. */
  maskFromPrompt(params, options) {
    return this.call("vision.mask_from_prompt", params, options);
  }

  /** `vision.stats`: loaded models and open sessions (diagnostics). */
  stats(params = {}, options) {
    return this.call("vision.stats", params, options);
  }

  // ------------------------------------------------------------------ video

  /** `vision.segment_video_start({source?: {path}, stream?, model?})`: {session, model, num_frames, ...}. */
  videoStart(params, options) {
    return this.call("vision.segment_video_start", params, options);
  }

  /** `vision.segment_video_add_prompt({session, frame, object_id, point | points | box | mask | text})`. */
  videoAddPrompt(params, options) {
    return this.call("vision.segment_video_add_prompt", params, options);
  }

  /** `vision.segment_video_push_frame({session, image})`: the new frame's masks. */
  videoPushFrame(params, options) {
    return this.call("vision.segment_video_push_frame", params, options);
  }

  /**
   * `vision.segment_video_propagate({session, start?, direction?, max_frames?})` over the
   * WebSocket: `onProgress({frame, done, total})` per frame; aborting `signal` cancels the
   * propagation on the service too (it then resolves or rejects as the service answers).
   */
  async videoPropagate(params, { onProgress, signal } = {}) {
    const cancel = () => this.videoCancel({ session: params.session }).catch(() => {});
    signal?.addEventListener("abort", cancel, { once: true });
    try {
      return await this.stream("vision.segment_video_propagate", params, {
        signal,
        onProgress: onProgress && ((p) => onProgress({ frame: p.frame, done: p.done, total: p.total })),
      });
    } finally {
      signal?.removeEventListener("abort", cancel);
    }
  }

  /** `vision.segment_video_cancel({session})`: stop a running propagation. */
  videoCancel(params, options) {
    return this.call("vision.segment_video_cancel", params, options);
  }

  /** `vision.segment_video_close({session})`: close the session and free its memory. */
  videoClose(params, options) {
    return this.call("vision.segment_video_close", params, options);
  }

  /** `vision.segment_video_remove_object({session, object_id})`: the remaining object ids. */
  videoRemoveObject(params, options) {
    return this.call("vision.segment_video_remove_object", params, options);
  }

  /** `vision.segment_video_reset({session})`: forget every object and prompt. */
  videoReset(params, options) {
    return this.call("vision.segment_video_reset", params, options);
  }

  /** `vision.segment_video_save({session, path})`: save the session to a file. */
  videoSave(params, options) {
    return this.call("vision.segment_video_save", params, options);
  }

  /** `vision.segment_video_export({session, ...})`: write the session's masks in a format. */
  videoExport(params, options) {
    return this.call("vision.segment_video_export", params, options);
  }

  /** `vision.segment_video_restore({path, ...})`: open a saved session again. */
  videoRestore(params, options) {
    return this.call("vision.segment_video_restore", params, options);
  }

  /**
   * `vision.segment_video_start`: open a tracking session and return a VideoSession.
   * @param {{source?: {path: string}, stream?: boolean, model?: string}} params
   */
  async startVideo(params) {
    return new VideoSession(this, await this.videoStart(params));
  }

  /**
   * Call `method` over the WebSocket; `onProgress(params)` gets each progress notification
   * of this request. Resolves with the final result.
   */
  async stream(method, params, { onProgress, signal } = {}) {
    if (signal?.aborted) throw new VisionError(CLIENT_ERRORS.ABORTED, "request aborted");
    const ws = await this._openSocket();
    const id = this._nextId++;
    return new Promise((resolve, reject) => {
      this._pending.set(id, { resolve, reject, onProgress });
      if (signal) {
        signal.addEventListener("abort", () => {
          this._pending.delete(id);
          reject(new VisionError(CLIENT_ERRORS.ABORTED, "request aborted"));
        }, { once: true });
      }
      ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params }));
    });
  }

  _openSocket() {
    if (this._socket) return this._socket;
    const url = new URL(`${this.baseUrl}/ws`);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (this.token) url.searchParams.set("token", this.token);
    this._socket = new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      let opened = false;
      ws.onopen = () => {
        opened = true;
        resolve(ws);
      };
      ws.onmessage = (event) => this._onMessage(event.data);
      ws.onerror = () => {}; // the close event that follows carries the outcome
      ws.onclose = async (event) => {
        this._socket = null;
        let err = new VisionError(
          event.code === 4401 || event.code === 1008 ? -32005 : CLIENT_ERRORS.NETWORK,
          `the connection to segmentkit serve closed (${event.code}${event.reason ? `: ${event.reason}` : ""})`,
        );
        // A refused handshake looks like a lost connection (1006) to a page: ask over HTTP why.
        if (!opened) err = await this.call("vision.stats").then(() => err, (e) => e);
        reject(err);
        for (const entry of this._pending.values()) entry.reject(err);
        this._pending.clear();
      };
    });
    return this._socket;
  }

  _onMessage(text) {
    let msg;
    try {
      msg = JSON.parse(text);
    } catch {
      return;
    }
    if (msg.method === PROGRESS && msg.params) {
      const entry = this._pending.get(msg.params.request_id);
      if (entry && entry.onProgress) entry.onProgress(msg.params);
      return;
    }
    if (msg.id === undefined || msg.id === null) {
      if (msg.error) for (const entry of this._pending.values()) entry.reject(toError(msg.error));
      return;
    }
    const entry = this._pending.get(msg.id);
    if (!entry) return;
    this._pending.delete(msg.id);
    if (msg.error) entry.reject(toError(msg.error));
    else entry.resolve(msg.result);
  }

  /** Close the WebSocket (HTTP calls keep working). */
  close() {
    if (this._socket) this._socket.then((ws) => ws.close(), () => {});
    this._socket = null;
  }
}

/** One tracking session: prompts, pushed frames, propagation (streamed), cancel, close. */
export class VideoSession {
  constructor(client, info) {
    this.client = client;
    this.id = info.session;
    this.model = info.model;
    this.stream = info.stream;
    this.numFrames = info.num_frames;
    this.frameSize = info.frame_size;
  }

  /**
   * Prompt `objectId` on `frame`: `prompt` holds point | points | box | mask | text.
   * Resolves with that frame's masks: {frame, masks: [...]}.
   */
  addPrompt(frame, objectId, prompt) {
    return this.client.videoAddPrompt({ session: this.id, frame, object_id: objectId, ...prompt });
  }

  /** Append a frame (`{base64}` / `{camera}` image) to a stream session; resolves with its masks. */
  async pushFrame(image) {
    const result = await this.client.videoPushFrame({ session: this.id, image });
    this.numFrames = Math.max(this.numFrames, result.frame_index + 1);
    return result;
  }

  /**
   * Track every object from `start` in `direction` ("forward", "backward" or "both"):
   * `onFrame(frameResult, {done, total})` is called per frame as it arrives (WebSocket).
   * Resolves with {session, frames_done, cancelled}.
   */
  propagate({ start, direction = "forward", maxFrames, onFrame, signal } = {}) {
    const params = { session: this.id, direction };
    if (start !== undefined && start !== null) params.start = start;
    if (maxFrames) params.max_frames = maxFrames;
    return this.client.stream("vision.segment_video_propagate", params, {
      signal,
      onProgress: (p) => onFrame && onFrame(p.frame, { done: p.done, total: p.total }),
    });
  }

  /** Stop tracking `objectId` (its prompts and masks go); resolves with the remaining object ids. */
  removeObject(objectId) {
    return this.client.videoRemoveObject({ session: this.id, object_id: objectId });
  }

  /** Stop a running propagation; it resolves with `cancelled: true`. */
  cancel() {
    return this.client.videoCancel({ session: this.id });
  }

  close() {
    return this.client.videoClose({ session: this.id });
  }
}

function toError(error) {
  if (!error || typeof error !== "object") return new VisionError(CLIENT_ERRORS.BAD_RESPONSE, "malformed error");
  return new VisionError(error.code, error.message || "unknown error", error.data);
}

/** Base64 (no data: prefix) of a Blob / File. */
export async function blobToBase64(blob) {
  const bytes = new Uint8Array(await blob.arrayBuffer());
  let binary = "";
  const step = 0x8000;
  for (let i = 0; i < bytes.length; i += step) binary += String.fromCharCode(...bytes.subarray(i, i + step));
  return btoa(binary);
}

/** An image param `{base64}` from a Blob / File (the file's own bytes, not re-encoded). */
export async function imageFromBlob(blob) {
  return { base64: await blobToBase64(blob) };
}

/** An image param `{base64}` of a canvas's pixels, encoded as PNG (lossless). */
export async function imageFromCanvas(canvas, type = "image/png", quality) {
  const blob = await new Promise((resolve, reject) =>
    canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("canvas could not be encoded"))), type, quality));
  return imageFromBlob(blob);
}
