"""What a plugin's answer must look like: the checks the core handles run on every output.

Each check raises :class:`Violation` with what was expected and what came back; the
handle that called the plugin turns it into a
:class:`~segmentkit.errors.PluginContractError` naming the model, plugin and distribution.
Sizes are ``(height, width)`` of the image the host gave.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import PluginError
from .types import Detections, Embedding, FrameMasks, Masks, Segmentation

SEGMENTATION_KINDS = ("semantic", "instance", "panoptic", "automatic")


class Violation(PluginError):
    """One way a plugin's answer breaks the contract (message: what is wrong); a handle turns it
    into a :class:`~segmentkit.errors.PluginContractError` naming the plugin."""


def check_masks(masks: Any, size: tuple[int, int], what: str = "masks") -> Masks:
    """``masks`` is a :class:`Masks` of (N, H, W) bool at ``size`` with consistent, finite columns."""
    if not isinstance(masks, Masks):
        raise Violation(f"{what} must be segmentkit.Masks, got {type(masks).__name__}")
    array = masks.masks
    if not isinstance(array, np.ndarray) or array.ndim != 3:
        raise Violation(f"{what}.masks must be an (N, H, W) array, got shape {np.shape(array)}")
    if array.dtype != bool:
        raise Violation(f"{what}.masks must be bool, got {array.dtype}")
    if tuple(array.shape[1:]) != tuple(size):
        raise Violation(f"{what} are {tuple(array.shape[1:])} (H, W), the image is {tuple(size)}")
    n = array.shape[0]
    _column(masks.scores, n, f"{what}.scores", finite=True)
    _column(masks.class_ids, n, f"{what}.class_ids", optional=True)
    _column(masks.object_ids, n, f"{what}.object_ids", optional=True)
    boxes = np.asarray(masks.boxes)
    if boxes.shape != (n, 4):
        raise Violation(f"{what}.boxes must be ({n}, 4), got {boxes.shape}")
    if not np.all(np.isfinite(boxes)):
        raise Violation(f"{what}.boxes has NaN or infinite values")
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise Violation(f"{what}.boxes must be XYXY with x0 <= x1 and y0 <= y1")
    h, w = size
    outside = (boxes[:, :2] < 0).any(axis=1) | (boxes[:, 2] > w) | (boxes[:, 3] > h)
    if outside.any():
        raise Violation(f"{what}.boxes leave the {w}x{h} image: {boxes[outside].tolist()[:3]}")
    for key, value in masks.data.items():
        if np.shape(value)[:1] != (n,):
            raise Violation(f"{what}.data[{key!r}] must have {n} rows, got shape {np.shape(value)}")
    return masks


def _column(value: Any, n: int, what: str, *, finite: bool = False, optional: bool = False) -> None:
    if value is None:
        if optional:
            return
        raise Violation(f"{what} is missing")
    arr = np.asarray(value)
    if arr.shape != (n,):
        raise Violation(f"{what} must have shape ({n},), got {arr.shape}")
    if finite and arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise Violation(f"{what} has NaN or infinite values")


def check_segmentation(result: Any, size: tuple[int, int], task: str | None) -> Segmentation:
    """A :class:`Segmentation` at ``size`` of a known kind (``task`` when one was asked for)."""
    if not isinstance(result, Segmentation):
        raise Violation(f"segment() must return segmentkit.Segmentation, got {type(result).__name__}")
    if result.kind not in SEGMENTATION_KINDS:
        raise Violation(f"segmentation kind {result.kind!r} is not one of {', '.join(SEGMENTATION_KINDS)}")
    if task is not None and task in SEGMENTATION_KINDS and result.kind != task:
        raise Violation(f"asked for {task!r} segmentation, got {result.kind!r}")
    if tuple(result.image_size) != tuple(size):
        raise Violation(f"segmentation says the image is {tuple(result.image_size)}, it is {tuple(size)}")
    check_masks(result.masks, size, "segmentation masks")
    if result.kind == "semantic" and result.label_map is None:
        raise Violation("a semantic segmentation needs a label_map")
    if result.label_map is not None:
        label_map = np.asarray(result.label_map)
        if label_map.shape != tuple(size):
            raise Violation(f"label map is {label_map.shape}, the image is {tuple(size)}")
        if label_map.dtype.kind not in "iu":
            raise Violation(f"label map must hold integer ids, got {label_map.dtype}")
    return result


def check_embedding(embedding: Any, size: tuple[int, int]) -> Embedding:
    if not isinstance(embedding, Embedding):
        raise Violation(f"embed() must return segmentkit.Embedding, got {type(embedding).__name__}")
    if tuple(embedding.image_size) != tuple(size):
        raise Violation(f"embedding says the image is {tuple(embedding.image_size)}, it is {tuple(size)}")
    return embedding


def check_frame(result: Any, size: tuple[int, int] | None, num_frames: int, frame: int | None = None, *,
                stream: bool = False, object_ids: list[int] | None = None, complete: bool = False) -> FrameMasks:
    """A :class:`FrameMasks` of a frame in ``[0, num_frames)`` (``frame`` if given) at ``size``,
    with at most one mask per object of ``object_ids`` (if given), in that order (a text-prompted
    tracker may find an object on some frames only); with ``complete``, exactly one per object.

    A live stream may also answer for the next frame to come (a prompt given ahead of it),
    with no masks while it has no frame size yet.
    """
    if not isinstance(result, FrameMasks):
        raise Violation(f"a session must return segmentkit.FrameMasks, got {type(result).__name__}")
    index = result.frame_index
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise Violation(f"frame_index must be an int, got {index!r}")
    if frame is not None and index != frame:
        raise Violation(f"asked for frame {frame}, got frame {index}")
    if not 0 <= index < num_frames + stream:
        raise Violation(f"frame {index} is out of range: the video has frames 0..{num_frames - 1}")
    if size is None:
        if stream and len(result.masks) == 0:
            return result
        raise Violation("a session returned masks but reports no frame_size")
    check_masks(result.masks, size, f"frame {index} masks")
    ids = result.masks.object_ids
    if len(result.masks) and ids is None:
        raise Violation(f"frame {index} masks have no object_ids")
    if ids is not None and len(set(ids.tolist())) != len(ids):
        raise Violation(f"frame {index} has one object id twice: {ids.tolist()}")
    got = [] if ids is None else [int(i) for i in ids]
    if object_ids is not None and got != [i for i in object_ids if complete or i in set(got)]:
        missing = [i for i in object_ids if i not in set(got)] if complete else []
        lost = f": none for {', '.join(map(str, missing))}" if missing else ""
        raise Violation(f"frame {index} has masks for objects {got}; the session tracks {list(object_ids)} "
                        f"(one mask per object, in object_ids order{lost})")
    return result


def check_detections(result: Any, size: tuple[int, int]) -> Detections:
    if not isinstance(result, Detections):
        raise Violation(f"detect() must return segmentkit.Detections, got {type(result).__name__}")
    if tuple(result.image_size) != tuple(size):
        raise Violation(f"detections say the image is {tuple(result.image_size)}, it is {tuple(size)}")
    n = len(result.labels)
    if np.shape(result.boxes) != (n, 4) or np.shape(result.scores) != (n,):
        raise Violation(f"detections need ({n}, 4) boxes and ({n},) scores, got {np.shape(result.boxes)} "
                        f"and {np.shape(result.scores)}")
    if not (np.all(np.isfinite(result.boxes)) and np.all(np.isfinite(result.scores))):
        raise Violation("detections have NaN or infinite boxes or scores")
    boxes, scores = np.asarray(result.boxes), np.asarray(result.scores)
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise Violation(f"detection boxes must be XYXY with x0 <= x1 and y0 <= y1, got {boxes.tolist()[:3]}")
    if np.any((scores < 0) | (scores > 1)):
        raise Violation(f"detection scores must be in [0, 1], got {scores.tolist()[:5]}")
    return result
