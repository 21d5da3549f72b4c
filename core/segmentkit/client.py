"""Python client for `segmentkit serve`, over stdio or HTTP + WebSocket.

>>> from segmentkit.client import Client
>>> with Client.stdio() as sk:                                  # doctest: +SKIP
...     result = sk.mask_from_prompt("photo.jpg", point=(320, 240))
...     mask = result.masks[0].to_array()                     # bool (H, W)

>>> sk = Client.http("http://127.0.0.1:8765", token)           # doctest: +SKIP
>>> session = sk.video_start("clip.mp4")                        # doctest: +SKIP
>>> sk.video_add_prompt(session, frame=0, object_id=1, box=(40, 60, 200, 220))  # doctest: +SKIP
>>> for frame in sk.video_propagate(session): ...              # doctest: +SKIP

Methods mirror the ``vision.*`` RPC methods and return the response models of
:mod:`segmentkit.ipc.schemas`. A refused or failed call raises :class:`RpcError`
(``.rpc_code``: the JSON-RPC code, ``.code``: its stable name). Images may be paths,
bytes, numpy arrays or PIL images; prompts may be core prompts, tuples or dicts.
Over HTTP, ``video_propagate`` streams through the WebSocket (needs ``websockets``).
"""

from __future__ import annotations

import base64
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
    FrameResult,
    ModelEntry,
    ModelsResult,
    ObjectsResult,
    PromptResult,
    SaveResult,
    SegmentResult,
    StatsResult,
    VideoProgress,
    VideoStartResult,
)

__all__ = ["Client", "ClientError", "RpcError"]


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


def _point(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if hasattr(value, "x") and hasattr(value, "y"):
        return {"x": float(value.x), "y": float(value.y), "positive": bool(getattr(value, "positive", True))}
    x, y, *rest = value
    return {"x": float(x), "y": float(y), "positive": bool(rest[0]) if rest else True}


def _box(value: Any) -> dict[str, float]:
    if isinstance(value, dict):
        return value
    if hasattr(value, "xyxy"):
        value = value.xyxy
    x0, y0, x1, y1 = (float(v) for v in value)
    return {"x0": x0, "y0": y0, "x1": x1, "y1": y1}


def _mask(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    from . import rle

    return rle.encode(getattr(value, "mask", value))


def _prompts(point: Any = None, points: Any = None, box: Any = None, text: str | None = None,
             mask: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if point is not None:
        out["point"] = _point(point)
    if points is not None:
        out["points"] = [_point(p) for p in points]
    if box is not None:
        out["box"] = _box(box)
    if mask is not None:
        out["mask"] = _mask(mask)
    if text is not None:
        out["text"] = text
    return out


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
            try:
                self.proc.stdin.close()  # end of input: the server answers what is in flight and exits
            except OSError:
                pass
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
            base = [str(script)] if script.exists() else [sys.executable, "-c", "from segmentkit.cli import main; main()"]
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

    def segment(self, image: Any, *, model: str | None = None, task: str | None = None,
                include_png: bool = False) -> SegmentResult:
        """Whole-image segmentation."""
        params = _drop_none(image=image_ref(image), model=model, task=task, include_png=include_png or None)
        return SegmentResult.model_validate(self.call("vision.segment", params))

    def mask_from_prompt(self, image: Any, *, point: Any = None, points: Any = None, box: Any = None,
                         text: str | None = None, model: str | None = None, multimask: bool = False,
                         include_png: bool = False) -> PromptResult:
        """Masks of one object from clicks (``(x, y)`` or ``(x, y, positive)``), a box and / or text."""
        params = {"image": image_ref(image), **_prompts(point, points, box, text),
                  **_drop_none(model=model, multimask=multimask or None, include_png=include_png or None)}
        return PromptResult.model_validate(self.call("vision.mask_from_prompt", params))

    # ------------------------------------------------------------------ video

    def video_start(self, source: Any = None, *, stream: bool = False, model: str | None = None) -> str:
        """Open a tracking session over a video file / frame folder, or a live one; returns its id."""
        return self.video_start_info(source, stream=stream, model=model).session

    def video_start_info(self, source: Any = None, *, stream: bool = False,
                         model: str | None = None) -> VideoStartResult:
        """Like :meth:`video_start`, returning the whole answer (frame count, size)."""
        params = _drop_none(source=None if source is None else image_ref(source), stream=stream or None, model=model)
        return VideoStartResult.model_validate(self.call("vision.segment_video_start", params))

    def video_add_prompt(self, session: str, frame: int, object_id: int, *, point: Any = None, points: Any = None,
                         box: Any = None, mask: Any = None, text: str | None = None) -> FrameResult:
        """Prompt ``object_id`` on ``frame``; returns that frame's masks."""
        params = {"session": session, "frame": frame, "object_id": object_id,
                  **_prompts(point, points, box, text, mask)}
        return FrameResult.model_validate(self.call("vision.segment_video_add_prompt", params))

    def video_push_frame(self, session: str, image: Any) -> FrameResult:
        """Send a live camera frame; returns its masks."""
        params = {"session": session, "image": image_ref(image, camera=True)}
        return FrameResult.model_validate(self.call("vision.segment_video_push_frame", params))

    def video_propagate(self, session: str, *, start: int | None = None, direction: str | None = None,
                        max_frames: int | None = None) -> Iterator[FrameResult]:
        """Yield each frame's masks as the server computes them (``direction``: forward, backward, both).

        Leaving the loop early cancels the propagation on the server.
        """
        params = _drop_none(session=session, start=start, direction=direction, max_frames=max_frames)
        messages = self._transport.stream("vision.segment_video_propagate", params, self.timeout)
        try:
            for message in messages:
                if message.get("method") == PROGRESS:
                    yield VideoProgress.model_validate(message["params"]).frame
                elif "method" not in message:
                    _result(message)
        except GeneratorExit:
            self.video_cancel(session)
            for _ in messages:  # drain to the response, so the session is idle again
                pass
            raise

    def video_cancel(self, session: str) -> bool:
        """Stop a running propagation; True if one was running."""
        return CancelResult.model_validate(self.call("vision.segment_video_cancel", {"session": session})).cancelled

    def video_close(self, session: str) -> None:
        """Close the session and free its memory."""
        CloseResult.model_validate(self.call("vision.segment_video_close", {"session": session}))

    def video_remove_object(self, session: str, object_id: int) -> list[int]:
        """Stop tracking ``object_id``; returns the objects left."""
        params = {"session": session, "object_id": object_id}
        return ObjectsResult.model_validate(self.call("vision.segment_video_remove_object", params)).object_ids

    def video_reset(self, session: str) -> None:
        """Forget every object and prompt of the session."""
        ObjectsResult.model_validate(self.call("vision.segment_video_reset", {"session": session}))

    def video_save(self, session: str, path: str | Path) -> str:
        """Save the session to ``path`` on the server's machine (inside the app's grants)."""
        params = {"session": session, "path": str(path)}
        return SaveResult.model_validate(self.call("vision.segment_video_save", params)).path

    def video_export(self, session: str, folder: str | Path, formats: Sequence[str] | None = None) -> list[str]:
        """Write the session's masks in video formats into ``folder`` on the server's machine."""
        params = _drop_none(session=session, dir=str(folder), formats=None if formats is None else list(formats))
        return ExportResult.model_validate(self.call("vision.segment_video_export", params)).paths

    def video_restore(self, path: str | Path, *, model: str | None = None) -> str:
        """Open a saved session again; returns the new session's id."""
        params = _drop_none(path=str(path), model=model)
        return VideoStartResult.model_validate(self.call("vision.segment_video_restore", params)).session

    def stats(self) -> StatsResult:
        """Loaded models and open sessions of this app (diagnostics)."""
        return StatsResult.model_validate(self.call("vision.stats"))
