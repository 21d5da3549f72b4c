"""Python client for `segmentkit serve`, over stdio or HTTP + WebSocket.

>>> from segmentkit.client import Client
>>> with Client.stdio() as sk:                                  # doctest: +SKIP
...     masks = sk.mask_from_prompt("photo.jpg", point=(320, 240))   # segmentkit.Masks
...     mask = masks.masks[0]                                   # bool (H, W)

>>> sk = Client.http("http://127.0.0.1:8765", token)           # doctest: +SKIP
>>> with sk.video_start("clip.mp4") as session:                 # doctest: +SKIP
...     session.add_prompts(0, 1, [segmentkit.Box(40, 60, 200, 220)])
...     for frame in session.propagate(): ...                   # segmentkit.FrameMasks

Methods mirror the ``vision.*`` RPC methods and return core values: ``segment`` a
:class:`~segmentkit.types.Segmentation`, ``mask_from_prompt`` :class:`~segmentkit.types.Masks`,
``video_start`` a :class:`RemoteSession` with the methods of a local tracking session
(the ``video_*`` methods take it or its id); :meth:`Client.call` returns the raw result
document. A refused or failed call raises :class:`RpcError`
(``.rpc_code``: the JSON-RPC code, ``.code``: its stable name). Images may be paths,
bytes, numpy arrays or PIL images; prompts are core prompts (or their JSON, :mod:`segmentkit.prompts`),
the keyword prompts also tuples.
Over HTTP, ``video_propagate`` streams through the WebSocket (needs ``websockets``).
"""

from __future__ import annotations

import base64
import contextlib
import io
import itertools
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Self

from .errors import SegmentkitError
from .ipc.errors import RpcError
from .ipc.schemas import (
    PROGRESS,
    CancelResult,
    CloseResult,
    ExportResult,
    ModelEntry,
    ModelsResult,
    ObjectsResult,
    SaveResult,
    StatsResult,
    VideoProgress,
    VideoStartResult,
)
from .prompts import encode_prompt, flat, group
from .results import ResultDocument
from .types import FrameMasks, Masks, Segmentation

__all__ = ["Client", "ClientError", "RemoteSession", "RpcError"]


class ClientError(SegmentkitError):
    """The server could not be reached, died, or answered with something that is not JSON-RPC."""

    code = "ipc_unavailable"


# --------------------------------------------------------------------------- value conversion


def image_ref(image: Any, *, camera: bool = False) -> dict[str, str]:
    """An image argument as the RPC's image object (paths are made absolute)."""
    if isinstance(image, dict):
        return image
    if isinstance(image, (str, os.PathLike)) and not camera:
        return {"path": os.path.abspath(os.fspath(image))}
    if isinstance(image, (str, os.PathLike)):
        data = Path(image).read_bytes()
    elif isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
    else:
        data = _png_bytes(image)
    return {"camera" if camera else "base64": base64.b64encode(data).decode("ascii")}


def _png_bytes(image: Any) -> bytes:
    from PIL import Image

    if not isinstance(image, Image.Image):
        from .io.image import load_image

        image = Image.fromarray(load_image(image))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _objects(objects: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Objects of core prompts (or prompt JSON) as the RPC's ``prompts``."""
    return [[p if isinstance(p, dict) else encode_prompt(p) for p in prompts] for prompts in objects]


def _loose(point: Any = None, points: Any = None, box: Any = None, text: str | None = None,
           mask: Any = None) -> list[Any]:
    """The keyword prompts (tuples or core prompts) as core prompts, for one object."""
    found = [*([] if point is None else [point]), *(points or ())]
    return flat(points=found, boxes=[] if box is None else [box], texts=[] if text is None else [text],
                masks=[] if mask is None else [mask])


def _session_id(session: Any) -> str:
    return session.id if isinstance(session, RemoteSession) else str(session)


def _drop_none(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _result(message: dict[str, Any]) -> Any:
    if "error" in message:
        error = message["error"] or {}
        raise RpcError(int(error.get("code", -32603)), str(error.get("message", "")), error.get("data"))
    if "result" not in message:
        raise ClientError(f"not a JSON-RPC response: {str(message)[:200]}")
    return message["result"]


# --------------------------------------------------------------------------- transports


class _Stdio:
    """A spawned `segmentkit serve --stdio`; a reader thread routes responses by id."""

    def __init__(self, cmd: Sequence[str], env: dict[str, str] | None):
        self.proc = subprocess.Popen(list(cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self._ids = itertools.count(1)
        self._pending: dict[int, queue.Queue[Any]] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        self._reader = threading.Thread(target=self._read, daemon=True, name="segmentkit-client")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            key = message.get("id") if "method" not in message else (message.get("params") or {}).get("request_id")
            with self._lock:
                inbox = self._pending.get(key)
            if inbox is not None:
                inbox.put(message)
        with self._lock:
            self._closed = True
            waiting = list(self._pending.values())
        for inbox in waiting:
            inbox.put(None)

    def start(self, method: str, params: dict[str, Any]) -> tuple[int, queue.Queue[Any]]:
        request_id = next(self._ids)
        inbox: queue.Queue[Any] = queue.Queue()
        line = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}) + "\n"
        with self._lock:
            if self._closed:
                raise ClientError(f"the segmentkit server exited (code {self.proc.poll()})")
            self._pending[request_id] = inbox
        try:
            with self._write_lock:  # not self._lock: the reader must keep routing while we write
                assert self.proc.stdin is not None
                self.proc.stdin.write(line.encode("utf-8"))
                self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            with self._lock:
                self._pending.pop(request_id, None)
            raise ClientError(f"the segmentkit server is gone ({exc})") from None
        return request_id, inbox

    def messages(self, request_id: int, inbox: queue.Queue[Any], timeout: float | None) -> Iterator[dict[str, Any]]:
        """Notifications for ``request_id``, then its response (last)."""
        try:
            while True:
                try:
                    message = inbox.get(timeout=timeout)
                except queue.Empty:
                    raise ClientError(f"no answer within {timeout} s") from None
                if message is None:
                    raise ClientError(f"the segmentkit server exited (code {self.proc.poll()})")
                yield message
                if "method" not in message:
                    return
        finally:
            with self._lock:
                self._pending.pop(request_id, None)

    def call(self, method: str, params: dict[str, Any], timeout: float | None) -> Any:
        request_id, inbox = self.start(method, params)
        for message in self.messages(request_id, inbox, timeout):
            if "method" not in message:
                return _result(message)
        raise ClientError("no response")  # pragma: no cover - messages() always ends with one

    def stream(self, method: str, params: dict[str, Any], timeout: float | None) -> Iterator[dict[str, Any]]:
        request_id, inbox = self.start(method, params)
        return self.messages(request_id, inbox, timeout)

    def close(self) -> None:
        if self.proc.stdin and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()  # end of input: the server answers what is in flight and exits
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()


class _Http:
    """``POST /rpc`` for calls, ``/ws`` for streams."""

    def __init__(self, url: str, token: str, timeout: float | None):
        import httpx

        self.base = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._http = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    def call(self, method: str, params: dict[str, Any], timeout: float | None) -> Any:
        import httpx

        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = self._http.post(f"{self.base}/rpc", json=body, timeout=timeout)
        except httpx.HTTPError as exc:
            raise ClientError(f"cannot reach {self.base}: {exc}") from None
        try:
            message = response.json()
        except ValueError:
            raise ClientError(f"HTTP {response.status_code} from {self.base}/rpc: {response.text[:200]}") from None
        return _result(message)

    def stream(self, method: str, params: dict[str, Any], timeout: float | None) -> Iterator[dict[str, Any]]:
        try:
            from websockets.exceptions import ConnectionClosed
            from websockets.sync.client import connect
        except ImportError:
            from .errors import MissingDependencyError

            raise MissingDependencyError("websockets", 'pip install "segmentkit[serve]"',
                                         purpose="streaming over HTTP") from None
        ws_url = "ws" + self.base.removeprefix("http") + "/ws"
        request_id = next(self._ids)
        connection = connect(ws_url, additional_headers={"Authorization": f"Bearer {self.token}"},
                             max_size=None, open_timeout=timeout)

        def messages() -> Iterator[dict[str, Any]]:
            with connection:
                connection.send(json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}))
                while True:
                    try:
                        message = json.loads(connection.recv(timeout=timeout))
                    except TimeoutError:
                        raise ClientError(f"no answer within {timeout} s") from None
                    except (ConnectionClosed, OSError) as exc:
                        raise ClientError(f"WebSocket closed: {exc}") from None
                    yield message
                    if "method" not in message and message.get("id") == request_id:
                        return

        return messages()

    def close(self) -> None:
        self._http.close()


# --------------------------------------------------------------------------- the client


class Client:
    """A connection to a segmentkit server; use :meth:`stdio` or :meth:`http`."""

    def __init__(self, transport: Any, timeout: float | None = None):
        self._transport = transport
        self.timeout = timeout

    @classmethod
    def stdio(cls, cmd: Sequence[str] | None = None, *, manifest: str | Path | None = None,
              env: dict[str, str] | None = None, timeout: float | None = None) -> Client:
        """Spawn ``cmd`` (default: ``segmentkit serve --stdio [--manifest M]``) and talk over its pipes."""
        if cmd is None:
            script = Path(sys.executable).with_name("segmentkit")
            base = [str(script)] if script.exists() else [sys.executable, "-m", "segmentkit"]
            cmd = [*base, "serve", "--stdio", *(["--manifest", str(manifest)] if manifest else [])]
        return cls(_Stdio(cmd, env), timeout)

    @classmethod
    def http(cls, url: str, token: str, *, timeout: float | None = 300.0) -> Client:
        """Talk to ``segmentkit serve --port N`` at ``url`` (e.g. ``http://127.0.0.1:8765``)."""
        return cls(_Http(url, token, timeout), timeout)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (a spawned server exits)."""
        self._transport.close()

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Call any method; returns the raw ``result`` object."""
        return self._transport.call(method, params or {}, self.timeout)

    # ------------------------------------------------------------------ images

    def models(self, role: str | None = None, task: str | None = None) -> list[ModelEntry]:
        """Cards of the models this app may use."""
        return ModelsResult.model_validate(self.call("vision.models", _drop_none(role=role, task=task))).models

    def segment(self, image: Any, *, model: str | None = None, task: str | None = None) -> Segmentation:
        """Whole-image segmentation (the label map is rebuilt from the masks)."""
        params = _drop_none(image=image_ref(image), model=model, task=task)
        return ResultDocument.model_validate(self.call("vision.segment", params)).to_segmentation()

    def mask_from_prompt(self, image: Any, *, point: Any = None, points: Any = None, box: Any = None,
                         text: str | None = None, prompts: Sequence[Sequence[Any]] | None = None,
                         model: str | None = None, multimask: bool = False) -> Masks:
        """Masks of the objects ``prompts`` (one list of prompts each), or of one object from clicks
        (``(x, y)`` or ``(x, y, positive)``), a box and / or text."""
        objects = group(_loose(point, points, box, text)) if prompts is None else prompts
        params = {"image": image_ref(image), "prompts": _objects(objects),
                  **_drop_none(model=model, multimask=multimask or None)}
        return ResultDocument.model_validate(self.call("vision.mask_from_prompt", params)).to_masks()

    # ------------------------------------------------------------------ video

    def video_start(self, source: Any = None, *, stream: bool = False, model: str | None = None) -> RemoteSession:
        """Open a tracking session over a video file / frame folder, or a live one."""
        params = _drop_none(source=None if source is None else image_ref(source), stream=stream or None, model=model)
        started = VideoStartResult.model_validate(self.call("vision.segment_video_start", params))
        return RemoteSession(self, started)

    def video_add_prompt(self, session: Any, frame: int, object_id: int, *, point: Any = None, points: Any = None,
                         box: Any = None, mask: Any = None, text: str | None = None,
                         prompts: Sequence[Any] | None = None) -> FrameMasks:
        """Prompt ``object_id`` on ``frame`` (``prompts``, or the keywords); returns that frame's masks."""
        found = _loose(point, points, box, text, mask) if prompts is None else prompts
        params = {"session": _session_id(session), "frame": frame, "object_id": object_id,
                  "prompts": _objects([found])[0]}
        return ResultDocument.model_validate(self.call("vision.segment_video_add_prompt", params)).to_frame()

    def video_push_frame(self, session: Any, image: Any) -> FrameMasks:
        """Send a live camera frame; returns its masks."""
        params = {"session": _session_id(session), "image": image_ref(image, camera=True)}
        return ResultDocument.model_validate(self.call("vision.segment_video_push_frame", params)).to_frame()

    def video_propagate(self, session: Any, *, start: int | None = None, direction: str | None = None,
                        max_frames: int | None = None) -> Iterator[FrameMasks]:
        """Yield each frame's masks as the server computes them (``direction``: forward, backward, both).

        Leaving the loop early cancels the propagation on the server.
        """
        session = _session_id(session)
        params = _drop_none(session=session, start=start, direction=direction, max_frames=max_frames)
        messages = self._transport.stream("vision.segment_video_propagate", params, self.timeout)
        try:
            for message in messages:
                if message.get("method") == PROGRESS:
                    yield VideoProgress.model_validate(message["params"]).frame.to_frame()
                elif "method" not in message:
                    _result(message)
        except GeneratorExit:
            self.video_cancel(session)
            for _ in messages:  # drain to the response, so the session is idle again
                pass
            raise

    def video_cancel(self, session: Any) -> bool:
        """Stop a running propagation; True if one was running."""
        params = {"session": _session_id(session)}
        return CancelResult.model_validate(self.call("vision.segment_video_cancel", params)).cancelled

    def video_close(self, session: Any) -> None:
        """Close the session and free its memory."""
        CloseResult.model_validate(self.call("vision.segment_video_close", {"session": _session_id(session)}))

    def video_remove_object(self, session: Any, object_id: int) -> list[int]:
        """Stop tracking ``object_id``; returns the objects left."""
        params = {"session": _session_id(session), "object_id": object_id}
        return ObjectsResult.model_validate(self.call("vision.segment_video_remove_object", params)).object_ids

    def video_reset(self, session: Any) -> None:
        """Forget every object and prompt of the session."""
        ObjectsResult.model_validate(self.call("vision.segment_video_reset", {"session": _session_id(session)}))

    def video_save(self, session: Any, path: str | Path) -> str:
        """Save the session to ``path`` on the server's machine (inside the app's grants)."""
        params = {"session": _session_id(session), "path": str(path)}
        return SaveResult.model_validate(self.call("vision.segment_video_save", params)).path

    def video_export(self, session: Any, folder: str | Path, formats: Sequence[str] | None = None) -> list[str]:
        """Write the session's masks in video formats into ``folder`` on the server's machine."""
        params = _drop_none(session=_session_id(session), dir=str(folder),
                            formats=None if formats is None else list(formats))
        return ExportResult.model_validate(self.call("vision.segment_video_export", params)).paths

    def video_restore(self, path: str | Path, *, model: str | None = None) -> RemoteSession:
        """Open a saved session again."""
        params = _drop_none(path=str(path), model=model)
        return RemoteSession(self, VideoStartResult.model_validate(self.call("vision.segment_video_restore", params)))

    def stats(self) -> StatsResult:
        """Loaded models and open sessions of this app (diagnostics)."""
        return StatsResult.model_validate(self.call("vision.stats"))


class RemoteSession:
    """A tracking session on the server, with the methods of a local one (:class:`segmentkit.Session`)."""

    def __init__(self, client: Client, started: VideoStartResult):
        self.client = client
        self.id = started.session
        self.model = started.model
        self.stream = started.stream
        self._frames = started.num_frames
        self.frame_size = started.frame_size
        self.closed = False

    def __repr__(self) -> str:
        return f"<segmentkit RemoteSession {self.id!r} ({self.model})>"

    @property
    def num_frames(self) -> int:
        """Frames of the video (at start; a stream grows with push_frame)."""
        return self._frames

    def add_prompts(self, frame: int, object_id: int, prompts: Sequence[Any]) -> FrameMasks:
        """Prompt ``object_id`` on ``frame`` with core prompts; returns that frame's masks."""
        return self.client.video_add_prompt(self, frame, object_id, prompts=prompts)

    def propagate(self, start: int | None = None, *, direction: str | None = None,
                  max_frames: int | None = None) -> Iterator[FrameMasks]:
        return self.client.video_propagate(self, start=start, direction=direction, max_frames=max_frames)

    def push_frame(self, image: Any) -> FrameMasks:
        frame = self.client.video_push_frame(self, image)
        self._frames = max(self._frames, frame.frame_index + 1)
        return frame

    def remove_object(self, object_id: int) -> None:
        self.client.video_remove_object(self, object_id)

    def reset(self) -> None:
        self.client.video_reset(self)

    def save(self, path: str | Path) -> str:
        return self.client.video_save(self, path)

    def cancel(self) -> bool:
        return self.client.video_cancel(self)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.client.video_close(self)

    def __enter__(self) -> RemoteSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
