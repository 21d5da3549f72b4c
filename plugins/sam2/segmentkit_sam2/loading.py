"""Find, check and load SAM 2 checkpoints (hub snapshot or local directory).

The hub checkpoints are transformers weights with ``model_type: sam2_video``; the image
model (``Sam2Model``) is built from the image parts of that config and loads the same
file, ignoring the video-only tensors. Anything wrong with the directory becomes one
:class:`~segmentkit.errors.WeightsUnavailableError` naming the model and the problem.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from segmentkit.cards import ModelCard, ModelOptions
from segmentkit.errors import OptionsError, WeightsUnavailableError
from segmentkit.weights import resolve_weights

log = logging.getLogger(__name__)

MODEL_TYPES = ("sam2", "sam2_video")
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_IMAGE_PARTS = ("vision_config", "prompt_encoder_config", "mask_decoder_config")


def weights_dir(card: ModelCard, options: ModelOptions) -> Path:
    """The checkpoint directory for ``card``: ``options.weights`` or the pinned hub snapshot."""
    return resolve_weights(card, options.weights)


def read_config(card: ModelCard, path: Path) -> dict[str, Any]:
    """Parse and check ``path/config.json`` of a SAM 2 checkpoint; raise a clear error if unusable."""
    config_file = path / "config.json"
    if not config_file.is_file():
        raise _bad(card, path, "no config.json")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(card, path, f"config.json is not valid JSON ({exc})") from None
    if not isinstance(config, dict):
        raise _bad(card, path, "config.json does not hold a JSON object")
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        raise _bad(card, path, f"config.json has model_type {model_type!r}, expected one of {MODEL_TYPES}")
    missing = [k for k in _IMAGE_PARTS if not isinstance(config.get(k), dict)]
    if missing:
        raise _bad(card, path, f"config.json lacks {', '.join(missing)}")
    if not any((path / name).is_file() for name in _WEIGHT_FILES):
        raise _bad(card, path, f"no weight file ({' or '.join(_WEIGHT_FILES)})")
    return config


def image_config(config: dict[str, Any]) -> Any:
    """A transformers ``Sam2Config`` built from the image parts of a sam2 / sam2_video config."""
    from transformers import Sam2Config

    parts = {}
    for key in _IMAGE_PARTS:
        part = dict(config[key])
        part.pop("model_type", None)  # sam2_video_* sub-types carry the same fields
        parts[key] = part
    extra = {k: config[k] for k in ("initializer_range",) if k in config}
    return Sam2Config(**parts, **extra)


def load_sam2_config_and_weights(card: ModelCard, options: ModelOptions) -> tuple[Path, dict[str, Any]]:
    """Resolve the checkpoint directory of ``card`` and return it with its checked config dict."""
    path = weights_dir(card, options)
    return path, read_config(card, path)


def load_image_model(card: ModelCard, options: ModelOptions) -> Any:
    """A ``transformers.Sam2Model`` in eval mode on ``options.device`` (fp32 weights)."""
    from transformers import Sam2Model

    path, config = load_sam2_config_and_weights(card, options)
    try:
        model, info = Sam2Model.from_pretrained(path, config=image_config(config), output_loading_info=True)
    except Exception as exc:  # noqa: BLE001 - truncated file, wrong shapes, unreadable tensors...
        raise _bad(card, path, f"the weights cannot be loaded ({type(exc).__name__}: {_first_line(exc)})") from None
    missing = list(info.get("missing_keys") or [])
    mismatched = list(info.get("mismatched_keys") or [])
    if missing or mismatched:
        names = ", ".join(str(k[0] if isinstance(k, tuple) else k) for k in (missing + mismatched)[:3])
        raise _bad(card, path, f"the weights do not match the config ({len(missing) + len(mismatched)} "
                               f"tensors missing or mis-shaped, e.g. {names})")
    log.debug("loaded %s from %s", card.id, path)
    try:
        return model.eval().to(options.device)
    except (RuntimeError, AssertionError) as exc:
        raise OptionsError(
            f"{card.id!r}: cannot move the model to device {options.device!r} ({_first_line(exc)})"
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _bad(card: ModelCard, path: Path, why: str) -> WeightsUnavailableError:
    return WeightsUnavailableError(
        f"weights for {card.id!r} in {path} are unusable: {why}. Pass a SAM 2 transformers checkpoint "
        f"directory (config.json + model.safetensors) or fetch it with `segmentkit pull {card.id}`."
    )
