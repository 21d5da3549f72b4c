"""A SAM-family session's memory as JSON + arrays, for ``session.save`` / ``tracker.restore``.

The state is the parts of :class:`~.video_state.TrackState` that propagation reads:
each object's prompts (point and mask inputs), its memory bank (conditioning and
recent outputs: memory features and their position encodings, object pointers, object
scores, low-res masks), which frames it was tracked into and in which direction, and
which objects have prompts not yet run, as JSON trees of arrays
(:func:`segmentkit.session_files.pack_tree`); tensors are stored exactly, so a restored
session computes the same masks as one that was never interrupted. Cached image features
are not saved (they are recomputed from the frames).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from segmentkit.session_files import pack_tree, unpack_tree

FIELDS = ("point_inputs_per_obj", "mask_inputs_per_obj", "output_dict_per_obj", "frames_tracked_per_obj",
          "obj_with_new_inputs")


def state_of(state: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The saved form of a :class:`~.video_state.TrackState`."""
    arrays: dict[str, np.ndarray] = {}
    return {name: pack_tree(getattr(state, name), arrays) for name in FIELDS}, arrays


def load_into(state: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Give a fresh :class:`~.video_state.TrackState` (objects registered) the saved memory."""
    for name in FIELDS:
        value = unpack_tree(meta[name], arrays, state.inference_device)
        current = getattr(state, name)
        if isinstance(current, dict):
            current.clear()
            current.update(value)
        else:
            setattr(state, name, value)
    state.obj_ids = state.objects.ids
