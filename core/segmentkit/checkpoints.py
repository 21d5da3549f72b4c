"""Reading a transformers checkpoint's ``config.json`` and ``preprocessor_config.json``
without importing transformers.

Plugins use it to check a weights folder holds the model they expect (one clear
:class:`~segmentkit.errors.WeightsUnavailableError` otherwise), to name class ids and to
read the preprocessing they must reproduce.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from .cards import ModelCard
from .errors import WeightsUnavailableError

log = logging.getLogger(__name__)

_PLACEHOLDER_LABEL = re.compile(r"^LABEL_\d+$")
BILINEAR = 2  # PIL.Image.Resampling.BILINEAR, the ``resample`` value image processors store


def read_config(folder: Path, model_id: str, model_type: str, name: str) -> dict[str, Any]:
    """``folder/config.json`` as a dict; its ``model_type`` must be ``model_type`` (shown as ``name``)."""
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WeightsUnavailableError(f"weights for {model_id!r}: cannot read {path}: {exc}") from None
    if config.get("model_type") != model_type:
        raise WeightsUnavailableError(
            f"weights for {model_id!r}: {path} is a {config.get('model_type')!r} model, not a {name}"
        )
    return config


def labels_from_config(config: dict[str, Any], card: ModelCard) -> dict[int, str]:
    """The checkpoint's ``id2label``, unless it holds only placeholder names; then the card's labels."""
    raw = config.get("id2label") or {}
    id2label = {int(k): str(v) for k, v in raw.items()}
    if id2label and not all(_PLACEHOLDER_LABEL.match(v) for v in id2label.values()):
        return id2label
    count = len(id2label) or int(config.get("num_labels", len(card.labels)))
    if count == len(card.labels):
        return dict(enumerate(card.labels))
    log.warning("%s: checkpoint has %d unnamed labels, card lists %d", card.id, count, len(card.labels))
    return id2label or {i: f"LABEL_{i}" for i in range(count)}


def read_preprocessor_config(folder: Path) -> dict[str, Any]:
    """``folder/preprocessor_config.json`` as a dict (empty when absent: the processor's
    defaults apply); its ``resample`` must be bilinear, the only kernel plugins reproduce."""
    path = folder / "preprocessor_config.json"
    raw: dict[str, Any] = {}
    if path.is_file():
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise WeightsUnavailableError(f"{path} is not valid JSON: {exc}") from None
    resample = raw.get("resample", BILINEAR)
    if resample != BILINEAR:
        raise WeightsUnavailableError(f"{path}: resample={resample!r} is not supported (only bilinear, 2)")
    return raw
