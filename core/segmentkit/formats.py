"""Output formats: one table of name -> writer, used by every face.

``segment``, ``prompt``, ``batch``, ``track`` and the IPC service pick formats by name
from :func:`table`; a plugin adds its own with the ``segmentkit_formats`` hook::

    @segmentkit.hookimpl
    def segmentkit_formats():
        return [OutputFormat("npy", write_npy, "masks as one .npy array")]

An image format's ``write(target)`` writes one result through ``target.write(suffix,
bytes)``. A video format (``media="video"``) is a writer class that takes frames one by one
(:class:`segmentkit.video_export.FrameWriter`). Files are written atomically and follow
the umask.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .errors import OptionsError
from .types import FrameMasks, Masks, Segmentation

log = logging.getLogger(__name__)

Media = Literal["image", "video"]


# --------------------------------------------------------------------------- files


def atomic_write(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    The file is created with mode 0666 less the umask, like ``open(path, "wb")``.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def png_bytes(picture: Any) -> bytes:
    """PNG bytes of a PIL image, or of a uint8 (H, W) / (H, W, 3|4) array."""
    from PIL import Image

    if isinstance(picture, np.ndarray):
        picture = Image.fromarray(picture)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def label_map_png(label_map: np.ndarray) -> bytes:
    """The one label-map PNG encoding: a palette PNG for ids 0-255, else a 16-bit grey PNG."""
    from .render import palette_label_map

    arr = np.asarray(label_map)
    if arr.size == 0 or (arr.min() >= 0 and arr.max() <= 255):
        return png_bytes(palette_label_map(arr))
    if arr.min() < 0 or arr.max() > 65535:
        raise ValueError(f"label ids {arr.min()}..{arr.max()} do not fit a 16-bit PNG")
    return png_bytes(arr.astype(np.uint16))


def mask_png(mask: np.ndarray) -> bytes:
    """A bool (H, W) mask as a grey PNG: 255 inside, 0 outside."""
    return png_bytes(np.asarray(mask, dtype=np.uint8) * 255)


def label_map_of(result: Any) -> np.ndarray:
    """A result's (H, W) label map: its own, else each mask's object id (or index + 1), later on top."""
    if isinstance(result, Segmentation) and result.label_map is not None:
        return result.label_map
    masks = masks_of(result)
    ids = masks.object_ids if masks.object_ids is not None else np.arange(1, len(masks) + 1)
    label_map = np.zeros(masks.image_size, dtype=np.int32)
    for mask, ident in zip(masks.masks, ids):
        label_map[mask] = int(ident)
    return label_map


def masks_of(result: Any) -> Masks:
    if isinstance(result, (Segmentation, FrameMasks)):
        return result.masks
    if isinstance(result, Masks):
        return result
    raise TypeError(f"cannot write {type(result).__name__}; pass Segmentation, Masks or FrameMasks")


# --------------------------------------------------------------------------- targets


@dataclass
class Target:
    """Where one result goes: ``<out>/<stem><suffix>`` files, and what they are made of.

    ``document`` is the result's JSON document (:mod:`segmentkit.results`); ``source`` the
    image (or video) it came from. ``sink`` writes bytes under a relative name (default:
    an atomic file under ``out``; batch workers collect bytes instead).
    """

    out: Path
    stem: str
    result: Any
    document: Mapping[str, Any] = field(default_factory=dict)
    source: Any = None
    sink: Callable[[str, bytes], Any] | None = None
    written: list[Any] = field(default_factory=list)
    _rgb: np.ndarray | None = field(default=None, repr=False)

    def write(self, suffix: str, data: bytes) -> None:
        """Write ``<stem><suffix>`` (``suffix`` may hold a folder: ``"/000001.png"``)."""
        name = f"{self.stem}{suffix}"
        if self.sink is not None:
            self.written.append(self.sink(name, data))
            return
        path = Path(self.out) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.written.append(atomic_write(path, data))

    def rgb(self) -> np.ndarray:
        """The source image as (H, W, 3) uint8 (decoded once)."""
        if self._rgb is None:
            from .io.image import load_image

            self._rgb = load_image(self.source)
        return self._rgb


@dataclass(frozen=True)
class OutputFormat:
    """One output format: its name, the function that writes it, and one line of help."""

    name: str
    write: Callable[[Target], Any]
    description: str = ""
    media: Media = "image"


# --------------------------------------------------------------------------- image formats


def _overlay(target: Target) -> None:
    from .render import overlay

    target.write(".overlay.png", png_bytes(overlay(target.rgb(), target.result)))


def _png(target: Target) -> None:
    if isinstance(target.result, Segmentation) and target.result.label_map is not None:
        _labels(target)
        return
    for i, mask in enumerate(masks_of(target.result).masks):
        target.write(f".mask-{i}.png", mask_png(mask))


def _labels(target: Target) -> None:
    target.write(".labels.png", label_map_png(label_map_of(target.result)))


def _json(target: Target) -> None:
    target.write(".json", json.dumps(target.document, indent=1, allow_nan=False).encode())


def _rle(target: Target) -> None:
    target.write(".rle.json", json.dumps(masks_of(target.result).to_coco_rle()).encode())


def _coco(target: Target) -> None:
    from .export import to_coco

    image = dict(target.document.get("image", {}))
    if not (image.get("file_name") or image.get("path")):
        image["file_name"] = f"{Path(target.stem).name}.png"
    target.write(".coco.json", json.dumps(to_coco(target.result, image), allow_nan=False).encode())


def _cutout(target: Target) -> None:
    from .render import cutout

    for i, mask in enumerate(masks_of(target.result).masks):
        target.write(f".cutout-{i}.png", png_bytes(cutout(target.rgb(), mask)))


BUILTIN: tuple[OutputFormat, ...] = (
    OutputFormat("overlay", _overlay, "<stem>.overlay.png: the image with its masks tinted"),
    OutputFormat("png", _png, "<stem>.labels.png (label map) or <stem>.mask-<i>.png (0/255 per mask)"),
    OutputFormat("labels", _labels, "<stem>.labels.png: a palette label map (16-bit above 255 ids)"),
    OutputFormat("json", _json, "<stem>.json: the result document"),
    OutputFormat("rle", _rle, "<stem>.rle.json: the masks as COCO RLE"),
    OutputFormat("coco", _coco, "<stem>.coco.json: a one-image COCO dataset"),
    OutputFormat("cutout", _cutout, "<stem>.cutout-<i>.png: the image cut out by each mask (RGBA)"),
)


def table(media: Media = "image", registry: Any = None) -> dict[str, OutputFormat]:
    """Every format for ``media``: the built-in ones, then those plugins add (never replacing one).

    The built-in video formats are :data:`segmentkit.video_export.VIDEO_WRITERS` (DAVIS,
    YouTube-VIS, MOTS, overlay.mp4, track.json), whose writers take frames one by one.
    """
    if media == "video":
        from .video_export import VIDEO_WRITERS

        formats = {name: OutputFormat(name, writer, (writer.__doc__ or "").strip().split("\n")[0], "video")
                   for name, writer in VIDEO_WRITERS.items()}
    else:
        formats = {f.name: f for f in BUILTIN}
    extra: Iterable[Any] = () if registry is None else registry.output_formats()
    for fmt in extra:
        if fmt.media != media:
            continue
        if fmt.name in formats:
            log.warning("output format %r is defined twice; keeping the first", fmt.name)
            continue
        formats[fmt.name] = fmt
    return formats


def choose(names: Iterable[str], media: Media = "image", registry: Any = None) -> list[OutputFormat]:
    """The formats named (in order, without repeats); an unknown name is an :class:`OptionsError`."""
    known = table(media, registry)
    wanted = list(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
    unknown = [n for n in wanted if n not in known]
    if unknown or not wanted:
        raise OptionsError(f"unknown format {', '.join(unknown) or '(none)'}; "
                           f"choose from {', '.join(known)}")
    return [known[n] for n in wanted]


def collect(result: Any, formats: Iterable[OutputFormat], *, stem: str = "image", source: Any = None,
            document: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """The files of ``formats`` as ``{name: bytes}``, in memory (batch workers, IPC answers)."""
    files: dict[str, bytes] = {}

    def keep(name: str, data: bytes) -> str:
        files[name] = data
        return name

    write(Target(Path(), stem, result, dict(document or {}), source, sink=keep), formats)
    return files


def write(target: Target, formats: Iterable[OutputFormat]) -> list[Any]:
    """Write ``target`` in every image format of ``formats``; return what was written."""
    for fmt in formats:
        fmt.write(target)
    return target.written
