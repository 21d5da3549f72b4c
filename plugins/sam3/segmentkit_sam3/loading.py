"""Load a SAM 3 checkpoint once and serve every SAM 3 model class from it.

The hub checkpoint (``facebook/sam3``) is a transformers ``sam3_video`` checkpoint: a
concept detector (``Sam3Model``: ViT, FPN neck, CLIP text encoder, DETR encoder/decoder,
mask decoder), the SAM 3 tracker (prompt encoder, mask decoder, video memory) and the
tracker's own FPN neck over the same ViT. We load ``Sam3VideoModel`` once and build
``Sam3TrackerModel`` (points/boxes on an image) and ``Sam3TrackerVideoModel`` (points/boxes
through a video) from its modules, shared rather than copied: one ViT in memory, and every
forward is transformers' own code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import torch
from segmentkit.cards import ModelCard
from segmentkit.devices import resolve_device
from segmentkit.errors import WeightsUnavailableError
from segmentkit.weights import resolve_weights

from .options import Sam3Options
from .roi_align import install as install_roi_align

MODEL_TYPE = "sam3_video"
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
_TOKENIZER_FILES = ("tokenizer.json", "vocab.json")


@dataclass
class Sam3Models:
    """The transformers modules of one checkpoint, sharing their weights."""

    video: Any  # Sam3VideoModel: text-prompted concept tracking
    detector: Any  # Sam3Model (video.detector_model): concept segmentation on an image
    tracker: Any  # Sam3TrackerModel: points / boxes on an image
    tracker_video: Any  # Sam3TrackerVideoModel: points / boxes through a video
    tokenizer: Any
    device: torch.device
    image_size: int


def load_models(card: ModelCard, options: Sam3Options) -> Sam3Models:
    """Resolve ``card``'s weights (hub or ``options.weights``) and load them on ``options.device``."""
    from transformers import AutoTokenizer, Sam3TrackerModel, Sam3TrackerVideoModel, Sam3VideoModel

    path = resolve_weights(card, options.weights)
    check_checkpoint(card, path)
    install_roi_align()
    device = torch.device(resolve_device(options.device))
    try:
        video = Sam3VideoModel.from_pretrained(path, dtype=torch.float32).to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as exc:
        raise _bad(card, path, f"transformers could not load it ({type(exc).__name__}: {exc})") from None
    config = video.config
    vision = _shared(_meta(_vision_class(), config.detector_config.vision_config),
                     {"backbone": video.detector_model.vision_encoder.backbone, "neck": video.tracker_neck})
    donor = video.tracker_model
    tracker = _shared(_meta(Sam3TrackerModel, config.tracker_config), _parts_of(donor, vision))
    tracker_video = _shared(_meta(Sam3TrackerVideoModel, config.tracker_config), _parts_of(donor, vision))
    return Sam3Models(video=video, detector=video.detector_model, tracker=tracker, tracker_video=tracker_video,
                      tokenizer=tokenizer, device=device, image_size=int(config.image_size))


def check_checkpoint(card: ModelCard, path: Path) -> None:
    """Refuse a directory that is not a SAM 3 (``sam3_video``) checkpoint with its tokenizer."""
    config_file = path / "config.json"
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _bad(card, path, "no config.json") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(card, path, f"config.json is not valid JSON ({exc})") from None
    if not isinstance(config, dict) or config.get("model_type") != MODEL_TYPE:
        found = config.get("model_type") if isinstance(config, dict) else None
        raise _bad(card, path, f"config.json has model_type {found!r}, expected {MODEL_TYPE!r}")
    if not any((path / name).is_file() for name in _WEIGHT_FILES):
        raise _bad(card, path, f"no weight file ({' or '.join(_WEIGHT_FILES)})")
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise _bad(card, path, f"no tokenizer ({' or '.join(_TOKENIZER_FILES)})")


def _vision_class() -> type:
    from transformers.models.sam3.modeling_sam3 import Sam3VisionModel

    return Sam3VisionModel


def _meta(cls: type, config: Any) -> Any:
    """An instance of ``cls`` with no storage: its parts are filled in from the loaded model."""
    with torch.device("meta"):
        return cls(config)


def _parts_of(donor: Any, vision: Any) -> dict[str, Any]:
    """The loaded tracker's modules and parameters, with ``vision`` as the image encoder."""
    parts: dict[str, Any] = {name: module for name, module in donor.named_children() if module is not None}
    parts.update(dict(donor.named_parameters(recurse=False)))
    parts["vision_encoder"] = vision
    return parts


def _shared(shell: Any, parts: dict[str, Any]) -> Any:
    """``shell`` with its top-level modules and parameters replaced by ``parts``; none left empty."""
    names = [n for n, _ in shell.named_children()] + [n for n, _ in shell.named_parameters(recurse=False)]
    for name in names:
        if name in parts:
            setattr(shell, name, parts[name])
    empty = [n for n, t in chain(shell.named_parameters(), shell.named_buffers()) if t.is_meta]
    if empty:
        raise RuntimeError(f"{type(shell).__name__} parts not found in the checkpoint: {', '.join(empty[:5])}")
    return shell.eval()


def _bad(card: ModelCard, path: Path, why: str) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        f"weights for {card.id!r} in {path} are not a usable SAM 3 checkpoint: {why}. Pass the folder of a "
        f"transformers sam3_video checkpoint (e.g. a snapshot of facebook/sam3) with --weights DIR, "
        f"or fetch it with `segmentkit pull {card.id}`."
    )
