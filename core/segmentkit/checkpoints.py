"""Reading a transformers checkpoint's ``config.json`` without importing transformers.

Plugins use it to check a weights folder holds the model they expect (one clear
:class:`~segmentkit.errors.WeightsUnavailableError` otherwise) and to name class ids.
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
