"""What a batch run reads: image folders, list files and JSONL / CSV manifests with prompts.

A manifest row names one image and, optionally, its prompts::

    {"image": "cats/1.jpg", "boxes": [[10, 20, 200, 220]]}
    {"image": "cats/2.jpg", "points": [[50, 60], [5, 5]], "labels": [1, 0]}
    {"image": "cats/3.jpg", "text": "a cat"}
    {"image": "cats/4.jpg", "prompts": [[{"kind": "box", "x0": 1, "y0": 2, "x1": 30, "y1": 40},
                                        {"kind": "point", "x": 15, "y": 20}]]}

``boxes``, ``points`` (labels 1 = foreground, 0 = background) and ``text`` are grouped
into objects by the one rule of :mod:`segmentkit.prompts` (a box with points is one
object, several boxes alone are one object each, boxes next to a text are exemplars);
``prompts`` lists objects explicitly in the core prompt JSON. CSV manifests have the same
columns, list values written as JSON. Relative image paths are relative to the manifest
or list file.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import PromptError, SegmentkitError
from ..jobs.records import Item, PromptSets
from ..prompts import decode_objects, encode_objects, flat, group

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
MANIFEST_KEYS = ("image", "boxes", "points", "labels", "text", "prompts")


class InputError(SegmentkitError, ValueError):
    """A source of images (folder, list file, manifest) is missing or malformed."""

    code = "bad_input"


def collect(sources: Sequence[str | Path], *, glob: str | None = None,
            exclude: Iterable[str | Path] = ()) -> list[Item]:
    """Every item of ``sources`` (folders, image files, list files, manifests), in order."""
    skip = [Path(p).absolute() for p in exclude]
    items: list[Item] = []
    for source in sources:
        items.extend(_from_source(Path(source), glob, skip))
    return items


def _from_source(source: Path, glob: str | None, skip: list[Path]) -> Iterator[Item]:
    if source.is_dir():
        yield from _folder(source, glob, skip)
        return
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    suffix = source.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        yield Item(str(source.absolute()), str(source))
    elif suffix in LIST_SUFFIXES:
        yield from _list_file(source)
    elif suffix in JSONL_SUFFIXES:
        yield from _jsonl(source)
    elif suffix == ".csv":
        yield from _csv(source)
    else:
        raise InputError(
            f"{source}: cannot tell what this is; give a folder, an image, a list file "
            f"({', '.join(sorted(LIST_SUFFIXES))}) or a manifest (.jsonl, .csv)"
        )


def _folder(root: Path, glob: str | None, skip: list[Path]) -> Iterator[Item]:
    """Files under ``root`` (recursive, sorted), hidden ones and ``skip`` folders left out."""
    found = []
    for path in root.rglob(glob or "*"):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        if glob is None and path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        absolute = path.absolute()
        if any(absolute.is_relative_to(s) for s in skip):
            continue
        found.append((rel.as_posix(), absolute))
    for rel, absolute in sorted(found):
        yield Item(str(absolute), rel)


def _resolve(base: Path, name: str) -> str:
    path = Path(os.path.expanduser(name))
    return str(path if path.is_absolute() else (base.parent / path).absolute())


def _list_file(source: Path) -> Iterator[Item]:
    for line in _read_text(source).splitlines():
        name = line.strip()
        if name and not name.startswith("#"):
            yield Item(_resolve(source, name), name)


def _jsonl(source: Path) -> Iterator[Item]:
    for number, line in enumerate(_read_text(source).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{source} line {number}: not valid JSON ({exc.msg})") from None
        yield _row_item(source, number, row, from_csv=False)


def _csv(source: Path) -> Iterator[Item]:
    reader = csv.DictReader(_read_text(source).splitlines())
    if not reader.fieldnames or "image" not in reader.fieldnames:
        raise InputError(f"{source}: a CSV manifest needs a header row with an 'image' column")
    for number, row in enumerate(reader, start=2):
        yield _row_item(source, number, {k: v for k, v in row.items() if v not in (None, "")}, from_csv=True)


def _read_text(source: Path) -> str:
    try:
        return source.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{source}: not UTF-8 text") from None


def _row_item(source: Path, number: int, row: Any, *, from_csv: bool) -> Item:
    where = f"{source} line {number}"
    if not isinstance(row, dict):
        raise InputError(f"{where}: expected an object with an 'image' field")
    unknown = sorted(set(row) - set(MANIFEST_KEYS))
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}; use {', '.join(MANIFEST_KEYS)}")
    name = row.get("image")
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where}: 'image' must be a non-empty path")
    fields = {k: _cell(v, where, k) if from_csv and k not in ("image", "text") else v
              for k, v in row.items()}
    try:
        prompts = parse_prompts(fields)
    except PromptError as exc:
        raise InputError(f"{where}: {exc}") from None
    return Item(_resolve(source, name), name, prompts)


def _cell(value: str, where: str, key: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise InputError(f"{where}: column {key!r} must hold JSON, e.g. [[10, 20, 110, 120]]") from None


def parse_prompts(fields: dict[str, Any]) -> PromptSets | None:
    """Objects (prompt JSON) from manifest fields; None when the row has none."""
    loose: list[Any] = []
    boxes = fields.get("boxes")
    if boxes is not None:
        loose += flat(boxes=[_numbers(b, 4, "box") for b in _list_of(_nested(boxes), "boxes", "[x0, y0, x1, y1]")])
    points, labels = fields.get("points"), fields.get("labels")
    if points is not None:
        points = _list_of(_nested(points), "points", "[x, y]")
        labels = [1] * len(points) if labels is None else _list_of(labels, "labels", "1 or 0")
        if len(labels) != len(points):
            raise PromptError(f"{len(points)} points but {len(labels)} labels")
        if any(label not in (0, 1) for label in labels):
            raise PromptError("labels must be 1 (foreground) or 0 (background)")
        loose += flat(points=[(*_numbers(p, 2, "point"), bool(label)) for p, label in zip(points, labels, strict=True)])
    elif labels is not None:
        raise PromptError("'labels' given without 'points'")
    text = fields.get("text")
    if text is not None:
        if not isinstance(text, str):
            raise PromptError("'text' must be a string")
        loose += flat(texts=[text])
    objects = group(loose) if loose else []
    if fields.get("prompts") is not None:
        objects += decode_objects(fields["prompts"])
    return tuple(tuple(p) for p in encode_objects(objects)) or None


def _nested(value: Any) -> Any:
    """One ``[numbers]`` item may stand for a list of one."""
    return [value] if isinstance(value, list) and value and all(_is_number(v) for v in value) else value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _list_of(value: Any, what: str, shape: str) -> list[Any]:
    if not isinstance(value, list):
        raise PromptError(f"{what!r} must be a list of {shape}, got {value!r}")
    return value


def _numbers(value: Any, count: int, what: str) -> list[float]:
    if not (isinstance(value, list) and len(value) == count and all(_is_number(v) for v in value)):
        raise PromptError(f"a {what} must be {count} numbers, got {value!r}")
    return [float(v) for v in value]
