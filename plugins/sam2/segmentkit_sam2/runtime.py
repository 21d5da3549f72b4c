"""Pick the image engine for a model's options: lean torch (fp32 / bf16), the plain transformers
forward (``engine="reference"``) or ONNX Runtime (fp32), for the card's SAM family."""

from __future__ import annotations

from typing import Any

from segmentkit.cards import ModelCard, ModelOptions
from segmentkit.errors import OptionsError

from .engine import Sam2Engine
from .family import family_of
from .loading import load_image_model, weights_dir


def build_engine(card: ModelCard, options: ModelOptions) -> Any:
    """A :class:`Sam2Engine`, a :class:`~.reference_engine.ReferenceEngine` or an
    :class:`~.ort_engine.OrtSam2Engine` (same interface)."""
    family = family_of(card)
    runtime = options.runtime or card.runtimes[0]
    if runtime not in card.runtimes:
        raise OptionsError(f"{card.id!r} runs on {', '.join(card.runtimes)}, not {runtime!r}")
    if options.engine == "reference":
        from .reference_engine import ReferenceEngine

        return ReferenceEngine(load_image_model(card, options), options)
    if runtime == "torch":
        return Sam2Engine(load_image_model(card, options), options, family)
    if options.precision == "bf16":
        raise OptionsError(f"{card.id!r}: the onnxruntime runtime runs in fp32 only (bf16 is a torch path)")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise OptionsError(
            "runtime='onnxruntime' needs onnx and onnxruntime: pip install 'segmentkit-sam2[onnx]'"
        ) from None
    from .ort_engine import load_ort_engine

    model = load_image_model(card, options.model_copy(update={"device": "cpu"}))
    return load_ort_engine(card.id, weights_dir(card, options), model, family=family, device=options.device,
                           intra_op_threads=getattr(options, "ort_threads", None))

