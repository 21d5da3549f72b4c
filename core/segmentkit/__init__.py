"""segmentkit: images and video to pixel masks, every model a plugin.

>>> import segmentkit as sk
>>> sk.models(role="prompter")                     # doctest: +SKIP
>>> sam = sk.load("sam2.1-hiera-tiny")             # doctest: +SKIP

Importing this package loads no model code (no torch, transformers or onnxruntime).
"""

from __future__ import annotations

from typing import Any

from .cards import CallOptions, ModelCard, ModelOptions, ModelSpec, WeightsSource
from .errors import PluginContractError, SegmentkitError
from .handles import Grounder, Handle, Prompter, Segmenter, Session, Tracker
from .hookspecs import hookimpl
from .registry import ModelInfo, Registry, default_registry
from .roles import Detections, Embedding, TrackingSession
from .types import Box, FrameMasks, Mask, MaskPrompt, Masks, Point, Segmentation, Text

__version__ = "0.1.0"


def models(role: str | None = None, task: str | None = None, prompt_kind: str | None = None) -> list[ModelInfo]:
    """Cards of the installed models, filtered by role, task or prompt kind."""
    return default_registry().models(role=role, task=task, prompt_kind=prompt_kind)


def load(model_id: str | None = None, role: str | None = None, **options: Any) -> Handle:
    """Load a model by id (default: the weightless ``classic``) in a role.

    Returns the core handle of that role (:class:`Prompter`, :class:`Segmenter`,
    :class:`Tracker` or :class:`Grounder`), which checks every input and every answer.
    Plugin authors implement the Protocols of :mod:`segmentkit.roles` instead.
    """
    return default_registry().load(model_id, role=role, **options)


__all__ = [
    "Box", "CallOptions", "Detections", "Embedding", "FrameMasks", "Grounder", "Handle", "Mask",
    "MaskPrompt", "Masks", "ModelCard", "ModelInfo", "ModelOptions", "ModelSpec", "PluginContractError",
    "Point", "Prompter", "Registry", "Segmentation", "Segmenter", "SegmentkitError", "Session", "Text",
    "Tracker", "TrackingSession",
    "WeightsSource", "hookimpl", "load", "models",
]


def __getattr__(name: str) -> Any:
    # Submodules that import Pillow are loaded on first use: `sk.render.overlay(...)`.
    if name in ("render", "export", "io", "weights", "sessions"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'segmentkit' has no attribute {name!r}")
