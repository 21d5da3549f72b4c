"""The one path from an image to a result document, shared by every face.

CLI, batch workers and the IPC service call these with a loaded handle; each returns
the core result and its :class:`~segmentkit.results.ResultDocument` (with the model's
time under ``timing``), so every face answers with the same document.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .handles import Prompter, Segmenter
from .results import ResultDocument, build, model_info
from .roles import Embedding
from .types import Masks, Segmentation


def segment(
    segmenter: Segmenter, image: Any, *, task: str | None = None, path: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> tuple[Segmentation, ResultDocument]:
    """Segment ``image`` (``path``: the file it came from, recorded in the document)."""
    rgb = segmenter.image(image)
    started = time.perf_counter()
    result = segmenter.segment(rgb, task=task, **dict(options or {}))
    seconds = time.perf_counter() - started
    return result, build(result, model=model_info(segmenter), image=_where(path), timing={"model_s": seconds})


def prompt(
    prompter: Prompter, image: Any, prompt_sets: Sequence[Sequence[Any]], *, multimask: bool = False,
    path: str | None = None, options: Mapping[str, Any] | None = None,
    embed: Callable[[np.ndarray], Embedding] | None = None,
) -> tuple[Masks, ResultDocument]:
    """Masks of the objects of ``image``, one per prompt set (``object_id`` k = set k, from 1).

    ``embed``: how to get the image's embedding (default ``prompter.embed``; a service passes its cache).
    """
    rgb = prompter.image(image)
    size = rgb.shape[:2]
    sets = [prompter.prompts(s, size) for s in prompt_sets]  # bad prompts fail before the model runs
    started = time.perf_counter()
    masks = prompter.predict_objects((embed or prompter.embed)(rgb), sets, multimask=multimask, **dict(options or {}))
    seconds = time.perf_counter() - started
    document = build(masks, model=model_info(prompter), image=_where(path), kind="prompt", prompts=sets,
                     timing={"model_s": seconds})
    return masks, document


def attach_files(document: ResultDocument, result: Any, image: Any, names: Sequence[str],
                 registry: Any = None) -> ResultDocument:
    """Add the files of the output formats ``names`` to ``document.files`` (name -> base64)."""
    import base64

    from .formats import choose, collect

    if names:
        files = collect(result, choose(names, registry=registry), source=image, document=document.dump())
        document.files = {name: base64.b64encode(data).decode("ascii") for name, data in files.items()}
    return document


def _where(path: str | None) -> dict[str, Any]:
    return {} if path is None else {"path": str(path)}
