"""Weights: hub repos at pinned revisions in the standard Hugging Face cache, or local dirs.

``resolve_weights`` never downloads when offline (``HF_HUB_OFFLINE=1`` or
``SEGMENTKIT_OFFLINE=1``); any failure becomes one
:class:`~segmentkit.errors.WeightsUnavailableError` naming the model, the repository,
``segmentkit pull`` and the ``--weights DIR`` alternative. Artefacts derived from weights
(ONNX exports) are keyed by :func:`weights_identity` under :func:`derived_cache_root`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from .cards import ModelCard
from .errors import WeightsUnavailableError

log = logging.getLogger(__name__)


# A checkpoint's files for weights_identity: config, tensors and the index of sharded tensors.
CHECKPOINT_FILES = ("config.json", "*.safetensors", "*.safetensors.index.json", "pytorch_model.bin")


def derived_cache_root(kind: str) -> Path:
    """Where artefacts derived from weights (e.g. ``kind="onnx"`` exports) are kept:
    ``$SEGMENTKIT_CACHE/<kind>``, or ``~/.cache/segmentkit/<kind>``."""
    base = os.environ.get("SEGMENTKIT_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "segmentkit") / kind


def weights_identity(folder: str | Path) -> str:
    """What a derived artefact is keyed by: the hub commit of a snapshot folder, else a
    BLAKE2 hash of the checkpoint's files (names and bytes)."""
    folder = Path(folder).resolve()
    if folder.parent.name == "snapshots" and len(folder.name) == 40:
        return f"rev-{folder.name}"
    digest = hashlib.blake2b(digest_size=16)
    for path in sorted({p for pattern in CHECKPOINT_FILES for p in folder.glob(pattern) if p.is_file()}):
        digest.update(path.name.encode())
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return f"sha-{digest.hexdigest()}"


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in chunks (checkpoints, exported graphs, batch inputs)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def offline() -> bool:
    """True when the hub must not be contacted."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("SEGMENTKIT_OFFLINE", "HF_HUB_OFFLINE"))


def resolve_weights(card: ModelCard, local: str | Path | None = None, *, download: bool = True) -> Path:
    """Directory holding ``card``'s weights: ``local`` if given, else the hub snapshot.

    The cache is tried first; the hub is contacted only when ``download`` is true and
    segmentkit is not offline.
    """
    if local is not None:
        path = Path(local).expanduser()
        if not path.is_dir():
            raise WeightsUnavailableError(
                f"weights for {card.id!r}: {path} is not a directory (pass the folder holding "
                "config.json and the weight files)"
            )
        return path
    source = card.weights
    if source is None:
        raise WeightsUnavailableError(f"model {card.id!r} has no hub weights; pass a local directory (--weights DIR)")
    from huggingface_hub import snapshot_download  # deferred: keeps `import segmentkit` light

    patterns = list(source.files) or None
    try:
        return Path(snapshot_download(source.repo_id, revision=source.revision, allow_patterns=patterns,
                                      local_files_only=True))
    except Exception as cached_exc:  # not (fully) in the cache
        if not download or offline():
            raise _unavailable(card, "not in the local cache and segmentkit is offline", cached_exc) from None
    try:
        log.info("downloading %s@%s", source.repo_id, source.revision)
        return Path(snapshot_download(source.repo_id, revision=source.revision, allow_patterns=patterns))
    except Exception as exc:
        raise _unavailable(card, _download_problem(source.repo_id, exc), exc) from None


def pull(card: ModelCard, revision: str | None = None) -> Path:
    """Fetch ``card``'s weights into the cache now (`segmentkit pull`), at the card's pinned
    revision or at ``revision`` (a commit hash, branch or tag of the hub repository)."""
    if card.weights is None:
        raise WeightsUnavailableError(f"model {card.id!r} needs no weights (nothing to pull)")
    if revision is not None:
        card = card.model_copy(update={"weights": card.weights.model_copy(update={"revision": revision})})
    return resolve_weights(card, download=True)


def _download_problem(repo_id: str, exc: BaseException) -> str:
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError

    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, GatedRepoError) or (isinstance(exc, HfHubHTTPError) and status in (401, 403)):
        what = "is gated" if isinstance(exc, GatedRepoError) else f"refused access (HTTP {status}; gated repos do)"
        return (f"the hub repository {repo_id} {what}: accept its licence on "
                f"https://huggingface.co/{repo_id} (signed in to the hub), then log in on this machine "
                "with `hf auth login` (or set HF_TOKEN) and pull again")
    return f"download failed ({type(exc).__name__}: {exc})"


def _unavailable(card: ModelCard, why: str, exc: BaseException) -> WeightsUnavailableError:
    src = card.weights
    if src is None:
        raise ValueError("weights source required")
    return WeightsUnavailableError(
        f"weights for {card.id!r} ({src.repo_id}@{src.revision[:12]}) are unavailable: {why}. "
        f"Fetch them with `segmentkit pull {card.id}` on a connected machine, "
        "or pass a local checkpoint directory with --weights DIR (weights=...)."
    )
