"""Task files from Label Studio: uploads and URLs over HTTP, local-files storage by path.

- ``/data/upload/...`` and other relative URLs: fetched from ``LABEL_STUDIO_URL`` with
  ``Authorization: Token LABEL_STUDIO_API_KEY``;
- ``/data/local-files/?d=REL``: read from ``LOCAL_FILES_DOCUMENT_ROOT``/REL, inside the
  app's file grants (the IPC service's rule);
- ``http(s)://`` URLs: fetched (with the token when they point at Label Studio);
- ``data:`` URIs: decoded.

Every download stops at the service's request size limit; decoding applies its pixel
limit, so a task file is held to the same bounds as an IPC request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import numpy as np

from ..errors import ImageError
from ..ipc.inputs import decode_b64
from ..ipc.manifest import App

LOCAL_FILES_PREFIX = "/data/local-files/"


@dataclass(frozen=True)
class TaskFiles:
    """Where task files come from and the bounds they are read with."""

    app: App
    max_bytes: int
    max_pixels: int
    url: str | None = None  # Label Studio's address (LABEL_STUDIO_URL)
    api_key: str | None = None  # LABEL_STUDIO_API_KEY
    document_root: Path | None = None  # LOCAL_FILES_DOCUMENT_ROOT
    timeout_s: float = 60.0

    @classmethod
    def from_env(cls, app: App, max_bytes: int, max_pixels: int, **fallback: str | None) -> TaskFiles:
        """From the environment; ``fallback`` (``url``, ``api_key``) fills what it does not set."""
        root = os.environ.get("LOCAL_FILES_DOCUMENT_ROOT")
        return cls(
            app,
            max_bytes,
            max_pixels,
            url=os.environ.get("LABEL_STUDIO_URL") or fallback.get("url"),
            api_key=os.environ.get("LABEL_STUDIO_API_KEY") or fallback.get("api_key"),
            document_root=Path(root) if root else None,
        )

    def local_path(self, ref: str) -> Path | None:
        """The granted file behind a local-files URL, or None if ``ref`` is not one."""
        parts = urlsplit(ref)
        if not parts.path.startswith(LOCAL_FILES_PREFIX):
            return None
        relative = (parse_qs(parts.query).get("d") or [""])[0]
        if not relative or self.document_root is None:
            raise ImageError(f"{ref}: a local-files task needs LOCAL_FILES_DOCUMENT_ROOT set for the backend")
        return self.app.check_path(str(self.document_root / relative))

    def read(self, ref: str) -> bytes:
        """The bytes of a task file URL (not local files), at most ``max_bytes``."""
        if ref.startswith("data:"):
            return decode_b64(ref, "task data URI")
        parts = urlsplit(ref)
        if parts.scheme not in ("http", "https", ""):
            raise ImageError(
                f"{ref}: cannot read {parts.scheme}:// task files; let Label Studio serve them "
                "(cloud storage with presigned URLs) or use local files"
            )
        if not parts.scheme:
            if not self.url:
                raise ImageError(
                    f"{ref} is a Label Studio file: set LABEL_STUDIO_URL (and LABEL_STUDIO_API_KEY)"
                )
            ref = urljoin(self.url.rstrip("/") + "/", ref.lstrip("/"))
        return self._get(ref)

    def _get(self, url: str) -> bytes:
        import httpx

        headers = {}
        if self.api_key and self.url and urlsplit(url).netloc == urlsplit(self.url).netloc:
            headers["Authorization"] = f"Token {self.api_key}"
        try:
            with httpx.stream(
                "GET", url, headers=headers, timeout=self.timeout_s, follow_redirects=True
            ) as reply:
                if reply.status_code != 200:
                    raise ImageError(
                        f"{url}: Label Studio answered HTTP {reply.status_code}"
                        + (" (check LABEL_STUDIO_API_KEY)" if reply.status_code in (401, 403) else "")
                    )
                data = bytearray()
                for chunk in reply.iter_bytes():
                    data += chunk
                    if len(data) > self.max_bytes:
                        raise ImageError(
                            f"{url} is larger than the backend's limit of {self.max_bytes:,} bytes"
                        )
                return bytes(data)
        except httpx.HTTPError as exc:
            raise ImageError(f"{url}: cannot be fetched ({type(exc).__name__}: {exc})") from None

    def image(self, ref: Any) -> np.ndarray:
        """A task image as (H, W, 3) uint8, within the pixel limit."""
        from ..io.image import load_image

        if not isinstance(ref, str) or not ref:
            raise ImageError(f"task image must be a URL or path string, got {ref!r}")
        path = self.local_path(ref)
        if path is not None:
            return load_image(path, max_pixels=self.max_pixels, roots=self.app.roots)
        return load_image(self.read(ref), max_pixels=self.max_pixels)
