"""Find, check and load SAM-family checkpoints (hub snapshot or local directory).

The hub checkpoints are transformers weights of the family's video model type (SAM 2:
``model_type: sam2_video``); the image model (``Sam2Model``) is built from the image parts
of that config and loads the same file, ignoring the video-only tensors. The card's family
(:mod:`.family`) names the classes. Anything wrong with the directory becomes one
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

from .family import SamFamily, family_of

log = logging.getLogger(__name__)

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def weights_dir(card: ModelCard, options: ModelOptions) -> Path:
    """The checkpoint directory for ``card``: ``options.weights`` or the pinned hub snapshot."""
    return resolve_weights(card, options.weights)


def read_config(card: ModelCard, path: Path) -> dict[str, Any]:
    """Parse and check ``path/config.json`` of the card's family; raise a clear error if unusable."""
    family = family_of(card)
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
    if model_type not in family.model_types:
        raise _bad(card, path, f"config.json has model_type {model_type!r}, "
                               f"expected one of {family.model_types}")
    missing = [k for k in family.image_parts if not isinstance(config.get(k), dict)]
    if missing:
        raise _bad(card, path, f"config.json lacks {', '.join(missing)}")
    if not any((path / name).is_file() for name in _WEIGHT_FILES):
        raise _bad(card, path, f"no weight file ({' or '.join(_WEIGHT_FILES)})")
    return config


def image_config(family: SamFamily, config: dict[str, Any]) -> Any:
    """The family's image config (``Sam2Config``) built from the image parts of a checkpoint config."""
    parts = {}
    for key in family.image_parts:
        part = dict(config[key])
        part.pop("model_type", None)  # the video sub-types carry the same fields
        parts[key] = part
    extra = {k: config[k] for k in ("initializer_range",) if k in config}
    return family.load("image_config")(**parts, **extra)


def load_image_model(card: ModelCard, options: ModelOptions) -> Any:
    """The family's image model (``Sam2Model``) in eval mode on ``options.device`` (fp32 weights)."""
    family = family_of(card)
    path = weights_dir(card, options)
    config = read_config(card, path)
    return _load(card, options, path, family.load("image_model"), config=image_config(family, config))


def load_video_model(card: ModelCard, options: ModelOptions) -> Any:
    """The family's video model (``Sam2VideoModel``) in eval mode on ``options.device``."""
    family = family_of(card)
    path = weights_dir(card, options)
    config = read_config(card, path)
    if config.get("model_type") != family.video_model_type:
        raise WeightsUnavailableError(
            f"weights for {card.id!r} in {path} are an image-only {family.label} checkpoint (model_type "
            f"{config.get('model_type')!r}); tracking needs the video checkpoint (model_type "
            f"{family.video_model_type!r}), as published in the hub repository "
            f"{card.weights.repo_id if card.weights else ''}".rstrip()
        )
    return _load(card, options, path, family.load("video_model"))


def _load(card: ModelCard, options: ModelOptions, path: Path, cls: Any, **kwargs: Any) -> Any:
    try:
        model, info = cls.from_pretrained(path, output_loading_info=True, **kwargs)
    except Exception as exc:
        raise _bad(card, path, f"the weights cannot be loaded ({type(exc).__name__}: {_first_line(exc)})") from None
    missing = list(info.get("missing_keys") or [])
    mismatched = list(info.get("mismatched_keys") or [])
    if missing or mismatched:
        names = ", ".join(str(k[0] if isinstance(k, tuple) else k) for k in (missing + mismatched)[:3])
        raise _bad(card, path, f"the weights do not match the config ({len(missing) + len(mismatched)} "
                               f"tensors missing or mis-shaped, e.g. {names})")
    log.debug("loaded %s (%s) from %s", card.id, cls.__name__, path)
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
        f"weights for {card.id!r} in {path} are unusable: {why}. Pass a {family_of(card).label} "
        f"transformers checkpoint directory (config.json + model.safetensors) or fetch it with "
        f"`segmentkit pull {card.id}`."
    )
