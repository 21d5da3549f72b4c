/** A typed client for the `vision.*` JSON-RPC methods of `segmentkit serve` (HTTP + WebSocket). */
import type { CompressedRle } from "./codecs.js";

/** An image parameter: base64 file bytes, a path the app may read, or a camera frame. */
export type ImageParam =
  | { base64: string }
  | { path: string }
  | { camera: Record<string, unknown> };

export interface Point {
  x: number;
  y: number;
  /** false: a negative (background) point. Default true. */
  positive?: boolean;
}

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** One mask of a result document. */
export interface ResultMask {
  /** Position in the result. */
  index: number;
  rle: CompressedRle;
  /** Tight XYXY box (x1, y1 exclusive). */
  bbox: [number, number, number, number];
  /** Pixels in the mask. */
  area: number;
  score: number | null;
  label?: string | null;
  class_id?: number | null;
  object_id?: number | null;
  quality?: Record<string, unknown>;
}

/** segmentkit's result document (`vision.segment`, `vision.mask_from_prompt`, video frames). */
export interface ResultDocument {
  masks: ResultMask[];
  image?: { width: number; height: number; [key: string]: unknown };
  model?: Record<string, unknown> | null;
  kind?: string;
  labels?: Record<string, string>;
  files?: Record<string, string> | null;
  frame_index?: number;
  [key: string]: unknown;
}

export interface ModelInfo {
  card: { id: string; [key: string]: unknown };
  roles: string[];
  plugin?: string;
  distribution?: string | null;
  version?: string | null;
  [key: string]: unknown;
}

export interface SegmentParams {
  image: ImageParam;
  model?: string;
  task?: string;
  formats?: string[];
  [key: string]: unknown;
}

export interface MaskFromPromptParams {
  image: ImageParam;
  point?: Point;
  points?: Point[];
  box?: Box;
  text?: string;
  model?: string;
  multimask?: boolean;
  [key: string]: unknown;
}

export interface VideoStartParams {
  source?: { path: string };
  stream?: boolean;
  model?: string;
  [key: string]: unknown;
}

export interface VideoStartResult {
  session: string;
  model: string;
  stream: boolean;
  num_frames: number;
  frame_size?: number[] | null;
  [key: string]: unknown;
}

export interface SessionParams {
  session: string;
}

export interface VideoAddPromptParams extends SessionParams {
  frame: number;
  object_id: number;
  point?: Point;
  points?: Point[];
  box?: Box;
  mask?: CompressedRle;
  text?: string;
  [key: string]: unknown;
}

export interface VideoPropagateParams extends SessionParams {
  start?: number;
  direction?: "forward" | "backward" | "both";
  max_frames?: number;
}

export interface VideoPropagateResult {
  session: string;
  frames_done: number;
  cancelled: boolean;
  [key: string]: unknown;
}

export interface Progress {
  /** The frame's result document (its `frame_index` and masks). */
  frame: ResultDocument;
  /** Frames done so far, and in all. */
  done: number;
  total: number;
}

export interface CallOptions {
  /** Abort the request (it rejects with a VisionError of reason "aborted"). */
  signal?: AbortSignal;
}

export interface PropagateOptions extends CallOptions {
  /** Called once per tracked frame, as it arrives. */
  onProgress?: (progress: Progress) => void;
}

/** Stable string names of the error codes (`VisionError.reason`). */
export type ErrorReason =
  | "parse_error" | "invalid_request" | "method_not_found" | "invalid_params" | "internal_error"
  | "model_denied" | "path_denied" | "camera_denied" | "payload_too_large" | "unauthorized" | "forbidden"
  | "bad_image" | "bad_prompt" | "unknown_model" | "image_too_large" | "unsupported_task"
  | "invalid_options" | "bad_video" | "weights_unavailable" | "missing_dependency" | "plugin_error"
  | "session_error" | "session_busy" | "deadline_exceeded" | "segmentkit_error"
  | "network_error" | "bad_response" | "aborted" | (string & {});

/** Every failure of a call: a JSON-RPC error, an HTTP refusal, a lost connection or an abort. */
export class VisionError extends Error {
  constructor(code: number, message: string, data?: Record<string, unknown>);
  readonly name: "VisionError";
  /** The JSON-RPC error code (docs: IPC reference, error codes). */
  readonly code: number;
  /** Its stable string name, e.g. "bad_image" (the service's `data.code`). */
  readonly reason: ErrorReason;
  /** The error's details as the service sent them. */
  readonly data: Record<string, unknown>;
}

/** Codes the client raises itself. */
export const CLIENT_ERRORS: {
  readonly NETWORK: -32098;
  readonly BAD_RESPONSE: -32097;
  readonly ABORTED: -32096;
};

export interface VisionClientOptions {
  /** The per-launch token (overrides the URL's `?token=`). */
  token?: string | null;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

export class VisionClient {
  /**
   * @param url the address `segmentkit serve` prints (`http://127.0.0.1:8765/?token=...`);
   *   default: this page's origin with its `?token=`.
   */
  constructor(url?: string | URL, options?: VisionClientOptions);
  /** A client for the page's own server, with the token of its `?token=`. */
  static fromLocation(location?: Location | URL): VisionClient;
  readonly baseUrl: string;
  token: string | null;

  /** Call any method over HTTP; resolves with its `result`, rejects with VisionError. */
  call<T = unknown>(method: string, params?: object, options?: CallOptions): Promise<T>;
  /** Call a method over the WebSocket; `onProgress` gets its progress notifications' params. */
  stream<T = unknown>(method: string, params: object,
    options?: CallOptions & { onProgress?: (params: any) => void }): Promise<T>;

  models(params?: { role?: string; task?: string }, options?: CallOptions): Promise<{ models: ModelInfo[] }>;
  segment(params: SegmentParams, options?: CallOptions): Promise<ResultDocument>;
  maskFromPrompt(params: MaskFromPromptParams, options?: CallOptions): Promise<ResultDocument>;
  stats(params?: object, options?: CallOptions): Promise<Record<string, unknown>>;

  videoStart(params: VideoStartParams, options?: CallOptions): Promise<VideoStartResult>;
  videoAddPrompt(params: VideoAddPromptParams, options?: CallOptions): Promise<ResultDocument>;
  videoPushFrame(params: SessionParams & { image: ImageParam }, options?: CallOptions): Promise<ResultDocument>;
  /** Track every object over the WebSocket; aborting `signal` also cancels it on the service. */
  videoPropagate(params: VideoPropagateParams, options?: PropagateOptions): Promise<VideoPropagateResult>;
  videoCancel(params: SessionParams, options?: CallOptions): Promise<{ session: string; cancelled: boolean }>;
  videoClose(params: SessionParams, options?: CallOptions): Promise<{ session: string; closed: boolean }>;
  videoRemoveObject(params: SessionParams & { object_id: number }, options?: CallOptions):
    Promise<{ session: string; object_ids: number[] }>;
  videoReset(params: SessionParams, options?: CallOptions): Promise<{ session: string; object_ids: number[] }>;
  videoSave(params: SessionParams & { path: string }, options?: CallOptions): Promise<Record<string, unknown>>;
  videoExport(params: SessionParams & { dir: string; formats?: string[] }, options?: CallOptions):
    Promise<Record<string, unknown>>;
  videoRestore(params: { path: string; model?: string }, options?: CallOptions):
    Promise<VideoStartResult>;

  /** Open a tracking session as a VideoSession object. */
  startVideo(params: VideoStartParams): Promise<VideoSession>;
  /** Close the WebSocket (HTTP calls keep working). */
  close(): void;
}

/** One tracking session, as an object. */
export class VideoSession {
  constructor(client: VisionClient, info: VideoStartResult);
  readonly client: VisionClient;
  readonly id: string;
  readonly model: string;
  readonly stream: boolean;
  numFrames: number;
  readonly frameSize: number[] | null | undefined;
  addPrompt(frame: number, objectId: number,
    prompt: { point?: Point; points?: Point[]; box?: Box; mask?: CompressedRle; text?: string }): Promise<ResultDocument>;
  pushFrame(image: ImageParam): Promise<ResultDocument>;
  propagate(options?: {
    start?: number | null;
    direction?: "forward" | "backward" | "both";
    maxFrames?: number;
    onFrame?: (frame: ResultDocument, progress: { done: number; total: number }) => void;
    signal?: AbortSignal;
  }): Promise<VideoPropagateResult>;
  removeObject(objectId: number): Promise<{ session: string; object_ids: number[] }>;
  cancel(): Promise<{ session: string; cancelled: boolean }>;
  close(): Promise<{ session: string; closed: boolean }>;
}

/** Base64 (no data: prefix) of a Blob or File. */
export function blobToBase64(blob: Blob): Promise<string>;
/** An image parameter from a Blob or File (its own bytes). */
export function imageFromBlob(blob: Blob): Promise<{ base64: string }>;
/** An image parameter of a canvas's pixels (PNG by default: lossless). */
export function imageFromCanvas(canvas: HTMLCanvasElement, type?: string, quality?: number):
  Promise<{ base64: string }>;
