"""The hooks a segmentkit plugin implements (pluggy).

A plugin module decorates functions with :data:`hookimpl`; each hook returns the
:class:`~segmentkit.cards.ModelSpec` objects of that plugin for one role. Hooks must be
cheap: no model import, no I/O.
"""

from __future__ import annotations

from typing import Any

import pluggy

from .cards import ModelSpec

PROJECT = "segmentkit"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def segmentkit_segmenters() -> list[ModelSpec]:
    """Return specs of models that segment a whole image without prompts.

    Each spec's role is ``"segmenter"``; its loader class implements
    :class:`segmentkit.roles.Segmenter` (semantic, instance, panoptic or automatic).
    """


@hookspec
def segmentkit_prompters() -> list[ModelSpec]:
    """Return specs of models that turn prompts (points, boxes, masks, text) into masks.

    Each spec's role is ``"prompter"``; its loader class implements
    :class:`segmentkit.roles.Prompter`.
    """


@hookspec
def segmentkit_trackers() -> list[ModelSpec]:
    """Return specs of models that track prompted objects across video frames.

    Each spec's role is ``"tracker"``; its loader class implements
    :class:`segmentkit.roles.Tracker`.
    """


@hookspec
def segmentkit_grounders() -> list[ModelSpec]:
    """Return specs of open-vocabulary detectors that turn text into labelled boxes.

    Each spec's role is ``"grounder"``; its loader class implements
    :class:`segmentkit.roles.Grounder`.
    """


@hookspec
def segmentkit_formats() -> list[Any]:
    """Return output formats (:class:`segmentkit.formats.OutputFormat`) this plugin adds.

    Faces offer them by name next to the built-in ones (``--format NAME``); a name that is
    already taken is ignored with a warning. Import heavy writers inside the writer, not here.
    An image format's ``write`` takes a :class:`segmentkit.formats.Target`; a video format
    (``media="video"``) is a :class:`segmentkit.video_export.FrameWriter` class, which tracking
    exports (``segmentkit track --format``, ``export_session``) build like the built-in ones.
    """


HOOK_ROLES: dict[str, str] = {
    "segmentkit_segmenters": "segmenter",
    "segmentkit_prompters": "prompter",
    "segmentkit_trackers": "tracker",
    "segmentkit_grounders": "grounder",
}
