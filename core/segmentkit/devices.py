"""Which device a model runs on: ``"auto"`` resolved once, here, for every face.

``"auto"`` (the default of :class:`~segmentkit.cards.ModelOptions`) means CUDA when torch
sees a GPU, else Apple's MPS, else the CPU. A model on the ``numpy`` runtime runs on the
CPU without torch being imported. Any other name (``"cpu"``, ``"cuda:1"``, ...) is passed
through for the plugin to use or refuse.
"""

from __future__ import annotations

import importlib.util

AUTO = "auto"


def resolve_device(requested: str, runtime: str = "torch") -> str:
    """The concrete device for ``requested`` on a model running on ``runtime``."""
    if requested != AUTO:
        return requested
    if runtime == "numpy" or importlib.util.find_spec("torch") is None:
        return "cpu"
    import torch  # deferred: only a model that runs on torch or ONNX Runtime gets here

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"
