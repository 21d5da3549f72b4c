"""Test helpers for segmentkit and its plugins (numpy only; no torch).

- :func:`synthetic_scene` / :func:`synthetic_frames` / :func:`synthetic_pair_frames`: images with
  known object masks.
- :func:`iou` / :func:`best_iou`: compare masks.
- :mod:`segmentkit.testing.conformance`: the contract classes a plugin's tests subclass.
"""

from .compare import best_iou, iou
from .scenes import Scene, synthetic_frames, synthetic_pair_frames, synthetic_scene

__all__ = ["Scene", "best_iou", "iou", "synthetic_frames", "synthetic_pair_frames", "synthetic_scene"]
