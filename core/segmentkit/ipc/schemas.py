"""Params and results of every IPC method, as pydantic models.

The service validates requests with these models and builds responses from them; the
Python client parses responses with them; ``docs/ipc.schema.json`` is generated from
them (:mod:`segmentkit.ipc.schema_doc`). Coordinates are pixels of the input image,
boxes are XYXY, sizes are ``[height, width]``, masks are COCO compressed RLE. Every
result of an image or a frame is the core :class:`~segmentkit.results.ResultDocument`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StrictInt, Tag, model_validator

from ..cards import Role, Task
from ..registry import ModelEntry
from ..results import ResultDocument

SegmentTask = Literal["semantic", "instance", "panoptic", "automatic"]
RequestId = int | str | None


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)  # no coercion


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# --------------------------------------------------------------------------- inputs


class PathRef(_In):
    """A file (or, for videos, a frame folder) on the server's machine."""

    path: str = Field(min_length=1, description="Path inside the app's granted files / folders.")


class Base64Ref(_In):
    """Image file bytes (PNG, JPEG, WebP, ...) in standard base64."""

    base64: str = Field(min_length=1, description="Base64 of the file bytes; a 'data:' URL prefix is accepted.")


class CameraRef(_In):
    """A camera frame as base64 image bytes; needs the app's device.camera grant."""

    camera: str = Field(min_length=1, description="Base64 of the encoded frame (PNG, JPEG, ...).")


def _image_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((key for key in ("path", "base64", "camera") if key in value), None)
    return {PathRef: "path", Base64Ref: "base64", CameraRef: "camera"}.get(type(value))


ImageRef = Annotated[
    Annotated[PathRef, Tag("path")] | Annotated[Base64Ref, Tag("base64")] | Annotated[CameraRef, Tag("camera")],
    Discriminator(
        _image_kind, custom_error_type="image_ref",
        custom_error_message='an image is {"path": ...}, {"base64": ...} or {"camera": ...}',
    ),
]


class PointIn(_In):
    """A click at pixel (x, y); ``positive: false`` marks background."""

    x: float = Field(description="Column in pixels.")
    y: float = Field(description="Row in pixels.")
    positive: bool = Field(default=True, description="Foreground (true) or background (false).")


class BoxIn(_In):
    """A box in XYXY pixels."""

    x0: float = Field(description="Left edge.")
    y0: float = Field(description="Top edge.")
    x1: float = Field(description="Right edge (> x0).")
    y1: float = Field(description="Bottom edge (> y0).")


class RleIn(_In):
    """A mask as COCO RLE: compressed (``counts`` a string) or uncompressed (a list)."""

    size: tuple[StrictInt, StrictInt] = Field(strict=False, description="[height, width].")  # a JSON array
    counts: str | list[int] = Field(description="Run lengths, column-major, starting with zeros.")


PromptJson = dict[str, Any]
PROMPTS_DOC = ('Prompts as {"kind": "point" | "box" | "text" | "mask", ...} objects (segmentkit.prompts; '
               'a mask is {"kind": "mask", "rle": {...}}).')


class _Prompts(_In):
    """The single-object fields (kept for older callers; ``prompts`` says the same and more)."""

    point: PointIn | None = Field(default=None, description="One click.")
    points: list[PointIn] | None = Field(
        default=None, min_length=1, max_length=1024, description="Several clicks, one object."
    )
    box: BoxIn | None = Field(default=None, description="A box around the object.")
    text: str | None = Field(default=None, min_length=1, description="A text query (text-capable models).")

    @model_validator(mode="after")
    def _one_way(self) -> _Prompts:
        single = any(getattr(self, n, None) is not None for n in ("point", "points", "box", "text", "mask"))
        if single == (getattr(self, "prompts", None) is not None):
            raise ValueError("give prompts, or the single-object fields point, points, box, mask or text (not both)")
        return self


class ModelsParams(_In):
    """Filters for ``vision.models``."""

    role: Role | None = Field(default=None, description="Only models serving this role.")
    task: Task | None = Field(default=None, description="Only models performing this task.")


class SegmentParams(_In):
    """Segment a whole image."""

    image: ImageRef
    model: str | None = Field(default=None, description="Segmenter id; default: the app's first segmenter.")
    task: SegmentTask | None = Field(default=None, description="Task; default: the model card's first.")
    formats: list[str] = Field(default_factory=list, max_length=16,
                               description="Output formats (e.g. png, labels, overlay) to add as base64 files.")


class MaskFromPromptParams(_Prompts):
    """Masks of the objects described by ``prompts`` (or of one object from clicks, a box and / or text)."""

    image: ImageRef
    prompts: list[list[PromptJson]] | None = Field(
        default=None, min_length=1, max_length=256, description="One list of prompts per object. " + PROMPTS_DOC)
    image_id: str | None = Field(
        default=None, min_length=1, max_length=256,
        description=("Your name for the image. Under `serve --engine ray` requests with the same image_id go to "
                     "the replica holding its embedding (default key: a hash of `image`). The embedding cache "
                     "itself is keyed by the decoded pixels, so a wrong id costs speed, never correctness."),
    )
    model: str | None = Field(default=None, description="Prompter id; default: the app's first prompter.")
    multimask: bool = Field(default=False, description="Return 3 candidate masks with scores instead of 1.")
    formats: list[str] = Field(default_factory=list, max_length=16,
                               description="Output formats (e.g. png, labels, overlay) to add as base64 files.")


class VideoStartParams(_In):
    """Open a tracking session over a video file / frame folder, or a live stream."""

    source: PathRef | None = Field(default=None, description="Video file or folder of frames.")
    stream: bool = Field(default=False, description="A live session fed by push_frame (needs device.camera).")
    model: str | None = Field(default=None, description="Tracker id; default: the app's first tracker.")

    @model_validator(mode="after")
    def _one_source(self) -> VideoStartParams:
        if (self.source is None) == (not self.stream):
            raise ValueError("give exactly one of source or stream: true")
        return self


class VideoAddPromptParams(_Prompts):
    """Prompt one object on one frame."""

    session: str = Field(min_length=1, description="Session id from segment_video_start.")
    frame: int = Field(ge=0, description="Frame index.")
    object_id: int = Field(ge=0, description="Your id for the object; reuse it to refine the object.")
    mask: RleIn | None = Field(default=None, description="A mask of the object on this frame.")
    prompts: list[PromptJson] | None = Field(
        default=None, min_length=1, max_length=1024, description="The object's prompts. " + PROMPTS_DOC)


class VideoPushFrameParams(_In):
    """Append a live frame to a stream session (needs device.camera)."""

    session: str = Field(min_length=1)
    image: ImageRef


class VideoPropagateParams(_In):
    """Track every prompted object through the video."""

    session: str = Field(min_length=1)
    start: int | None = Field(default=None, ge=0, description="First frame; default: the frames prompted since "
                              "the last propagation, else the prompted frames.")
    direction: Literal["forward", "backward", "both"] | None = Field(
        default=None, description="forward (default; towards the last frame), backward or both.")
    reverse: bool = Field(default=False, description="Older spelling of direction: backward.")
    max_frames: int | None = Field(default=None, ge=1, description="Stop each direction after this many frames.")

    @property
    def walk(self) -> str:
        return self.direction or ("backward" if self.reverse else "forward")


class VideoObjectParams(_In):
    """One object of a session."""

    session: str = Field(min_length=1)
    object_id: int = Field(ge=0)


class VideoSaveParams(_In):
    """Where to save a session (inside the app's file grants)."""

    session: str = Field(min_length=1)
    path: str = Field(min_length=1, description="File to write (its folder must be granted); a .npz file.")


# A video format's name: the built-in ones (davis, youtube-vis, mots, overlay, json) or one a plugin
# adds; the export checks it against the service registry's format table.
VideoFormat = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]


class VideoExportParams(_In):
    """Write what a session tracked in standard video formats (segmentkit.video_export)."""

    session: str = Field(min_length=1)
    dir: str = Field(min_length=1, description="An existing folder inside the app's file grants.")
    formats: list[VideoFormat] | None = Field(
        default=None, min_length=1, max_length=16,
        description="Built-in davis, youtube-vis, mots, overlay, json, or a plugin's video format. "
                    "Default: davis, json and, where PyAV is installed, overlay."
    )


class VideoRestoreParams(_In):
    """A saved session to open again (the file and its video must be inside the app's grants)."""

    path: str = Field(min_length=1, description="A file written by segment_video_save.")
    model: str | None = Field(default=None, description="Default: the model that saved it.")


class SessionParams(_In):
    """A session id."""

    session: str = Field(min_length=1)


class StatsParams(_In):
    """No parameters."""


# --------------------------------------------------------------------------- outputs


class ModelsResult(_Out):
    models: list[ModelEntry]


class VideoStartResult(_Out):
    session: str
    model: str
    stream: bool
    num_frames: int = Field(description="Frames so far (grows with push_frame).")
    frame_size: tuple[int, int] | None = None


class VideoProgress(_Out):
    """Params of the ``vision.segment_video_progress`` notification: one frame done."""

    session: str
    request_id: RequestId = Field(description="The id of the propagate request this belongs to.")
    done: int = Field(description="Frames done so far, this one included.")
    total: int | None = Field(description="Upper bound of frames this propagation visits, if known.")
    frame: ResultDocument


class PropagateResult(_Out):
    session: str
    frames_done: int
    cancelled: bool = Field(description="True when segment_video_cancel / close stopped it early.")
    frames: list[ResultDocument] | None = Field(
        description="Every frame (plain HTTP); null where frames went out as progress notifications."
    )


class CancelResult(_Out):
    session: str
    cancelled: bool = Field(description="True if a running propagation was stopped.")


class CloseResult(_Out):
    session: str
    closed: bool


class ObjectsResult(_Out):
    session: str
    object_ids: list[int] = Field(description="Objects the session tracks now.")


class SaveResult(_Out):
    session: str
    path: str


class ExportResult(_Out):
    session: str
    paths: list[str] = Field(description="Files written (for davis: its folder of PNGs).")


class LoadedModel(_Out):
    model: str
    role: Role
    loads: int = Field(description="Times this model was loaded since the server started (1 when shared).")
    calls: int


class CacheStats(_Out):
    hits: int = Field(description="Prompts answered from a cached image embedding.")
    misses: int = Field(description="Prompts that ran the image encoder.")
    entries: int = Field(description="Embeddings held now.")


class MethodStats(_Out):
    calls: int
    errors: int
    p50_ms: float | None = Field(description="Median time of the latest successful calls (null: none yet).")
    p99_ms: float | None


class ReplicaStats(_Out):
    replica: str
    embedding_cache: CacheStats
    methods: dict[str, MethodStats]


class StatsResult(_Out):
    app: str
    loaded: list[LoadedModel]
    sessions: int = Field(description="Open sessions of this app.")
    limits: dict[str, int] = Field(description="The service's max_pixels and max_request_bytes.")
    embedding_cache: CacheStats = Field(description="The service's image-embedding cache (all apps; all replicas).")
    methods: dict[str, MethodStats] = Field(
        description="Per method, over all apps; under --engine ray, timed at the ingress (end to end).")
    replicas: list[ReplicaStats] = Field(
        default_factory=list,
        description="Under --engine ray: each replica's figures as of its latest answer; empty for one process.")


# --------------------------------------------------------------------------- the method table

METHODS: dict[str, tuple[type[BaseModel], type[BaseModel], str]] = {
    "vision.models": (ModelsParams, ModelsResult, "Cards of the installed models this app may use."),
    "vision.segment": (SegmentParams, ResultDocument, "Whole-image segmentation: the result document."),
    "vision.mask_from_prompt": (MaskFromPromptParams, ResultDocument, "Masks of one prompted object."),
    "vision.segment_video_start": (VideoStartParams, VideoStartResult, "Open a tracking session."),
    "vision.segment_video_add_prompt": (VideoAddPromptParams, ResultDocument, "Prompt an object on a frame."),
    "vision.segment_video_push_frame": (VideoPushFrameParams, ResultDocument, "Append a live frame."),
    "vision.segment_video_propagate": (
        VideoPropagateParams, PropagateResult,
        ("Track the objects; frames stream as vision.segment_video_progress notifications "
         "(stdio, WebSocket) or come back together (HTTP POST)."),
    ),
    "vision.segment_video_cancel": (SessionParams, CancelResult, "Stop a running propagation cleanly."),
    "vision.segment_video_close": (SessionParams, CloseResult, "Close a session and free its memory."),
    "vision.segment_video_remove_object": (VideoObjectParams, ObjectsResult, "Stop tracking one object."),
    "vision.segment_video_reset": (SessionParams, ObjectsResult, "Forget every object and prompt."),
    "vision.segment_video_save": (VideoSaveParams, SaveResult, "Save a session (prompts, masks, state) to a file."),
    "vision.segment_video_export": (
        VideoExportParams, ExportResult,
        "Write the tracked masks as DAVIS PNGs, YouTube-VIS, MOTS, overlay.mp4 or JSON.",
    ),
    "vision.segment_video_restore": (VideoRestoreParams, VideoStartResult, "Open a saved session again."),
    "vision.stats": (StatsParams, StatsResult, "Loaded models and open sessions (diagnostics)."),
}

PROGRESS = "vision.segment_video_progress"
NOTIFICATIONS: dict[str, tuple[type[BaseModel], str]] = {
    PROGRESS: (VideoProgress, "One frame of a running segment_video_propagate."),
}
