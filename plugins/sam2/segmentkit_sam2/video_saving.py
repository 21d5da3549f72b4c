"""A SAM-family session's memory as JSON + arrays, for ``session.save`` / ``tracker.restore``.

The state is the parts of :class:`~.video_state.TrackState` that propagation reads:
each object's prompts (point and mask inputs), its memory bank (conditioning and
recent outputs: memory features and their position encodings, object pointers, object
scores, low-res masks), which frames it was tracked into and in which direction, and
which objects have prompts not yet run. Nested dicts and lists become a JSON tree whose
leaves name arrays (``{"tensor": key, "dtype": ...}``) or hold plain values; tensors
are stored exactly (bf16 as its 16-bit pattern), so a restored session computes the
same masks as one that was never interrupted. Cached image features are not saved
(they are recomputed from the frames).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

FIELDS = ("point_inputs_per_obj", "mask_inputs_per_obj", "output_dict_per_obj", "frames_tracked_per_obj",
          "obj_with_new_inputs")


def pack(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """``value`` as a JSON tree; its tensors go into ``arrays`` under fresh keys."""
    if isinstance(value, torch.Tensor):
        key = str(len(arrays))
        tensor = value.detach().cpu().contiguous()
        arrays[key] = (tensor.view(torch.int16) if tensor.dtype == torch.bfloat16 else tensor).numpy()
        return {"tensor": key, "dtype": str(tensor.dtype).removeprefix("torch.")}
    if isinstance(value, dict):
        return {"dict": [[k, pack(v, arrays)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"list": [pack(v, arrays) for v in value]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(f"cannot save a {type(value).__name__} in a SAM-family session state")


def unpack(tree: Any, arrays: dict[str, np.ndarray], device: torch.device) -> Any:
    """The inverse of :func:`pack`."""
    if "tensor" in tree:
        tensor = torch.from_numpy(np.array(arrays[tree["tensor"]]))
        if tree["dtype"] == "bfloat16":
            tensor = tensor.view(torch.bfloat16)
        return tensor.to(device)
    if "dict" in tree:
        return {k: unpack(v, arrays, device) for k, v in tree["dict"]}
    if "list" in tree:
        return [unpack(v, arrays, device) for v in tree["list"]]
    return tree["value"]


def state_of(state: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The saved form of a :class:`~.video_state.TrackState`."""
    arrays: dict[str, np.ndarray] = {}
    return {name: pack(getattr(state, name), arrays) for name in FIELDS}, arrays


def load_into(state: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Give a fresh :class:`~.video_state.TrackState` (objects registered) the saved memory."""
    for name in FIELDS:
        value = unpack(meta[name], arrays, state.inference_device)
        current = getattr(state, name)
        if isinstance(current, dict):
            current.clear()
            current.update(value)
        else:
            setattr(state, name, value)
    state.obj_ids = state.objects.ids
