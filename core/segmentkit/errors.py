"""One hierarchy of errors for everything segmentkit raises at users and hosts.

Each error carries a stable ``code`` (used by the CLI's exit messages and by the
IPC service's JSON-RPC error data) and a one-line message a person can act on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class SegmentkitError(Exception):
    """Base class: a problem the user or the host can fix."""

    code = "segmentkit_error"


class UnknownModelError(SegmentkitError, LookupError):
    """No installed plugin provides the requested model id."""

    code = "unknown_model"

    def __init__(
        self, model_id: str, close_matches: Iterable[str] = (), role: str | None = None,
        message: str | None = None,
    ):
        self.model_id = model_id
        self.close_matches = list(close_matches)
        what = f"model {model_id!r}" + (f" with role {role!r}" if role else "")
        hint = f"; did you mean {', '.join(map(repr, self.close_matches))}?" if self.close_matches else ""
        super().__init__(message or f"unknown {what}{hint} (`segmentkit models` lists installed models)")


class PluginError(SegmentkitError):
    """A plugin broke the rules: the plugin's fault, not the user's (the CLI exits 1).

    The message names the distribution to blame; ``distribution`` holds it where known.
    """

    code = "plugin_error"

    def __init__(self, message: str, *, distribution: str | None = None):
        self.distribution = distribution
        super().__init__(message)


class DuplicateModelError(PluginError):
    """Two plugins claim one model id, or one alias names two models."""

    code = "duplicate_model"


class PluginLoadError(PluginError):
    """A plugin, or a model's loader, failed to import or to register."""

    code = "plugin_load_error"


class SpecError(PluginError, ValueError):
    """A plugin returned an invalid model spec or card."""

    code = "spec_error"


class OptionsError(SegmentkitError, ValueError):
    """Unknown or invalid per-model options."""

    code = "invalid_options"


class MissingDependencyError(SegmentkitError, ImportError):
    """An optional package a model needs is not installed."""

    code = "missing_dependency"

    def __init__(self, package: str, install: str, purpose: str = ""):
        self.package = package
        self.install = install
        why = f" for {purpose}" if purpose else ""
        super().__init__(f"{package} is needed{why}; install it with: {install}")


class WeightsUnavailableError(SegmentkitError):
    """Weights for a model are neither cached nor downloadable, or are corrupt."""

    code = "weights_unavailable"


class ImageError(SegmentkitError, ValueError):
    """An image could not be read: not an image, truncated, empty or unsupported."""

    code = "bad_image"


class ImageTooLargeError(ImageError):
    """An image has more pixels than the configured limit."""

    code = "image_too_large"


class PathDeniedError(SegmentkitError):
    """A file resolves outside the folders it may be read from (a grant)."""

    code = "path_denied"


class VideoError(SegmentkitError, ValueError):
    """A video source could not be opened or read."""

    code = "bad_video"


class PromptError(SegmentkitError, ValueError):
    """A prompt is malformed, not finite, or outside the image."""

    code = "bad_prompt"


class TaskError(SegmentkitError, ValueError):
    """The model does not support the requested task."""

    code = "unsupported_task"


class SessionError(SegmentkitError):
    """A tracking session is unknown, closed, over its limits or misused."""

    code = "session_error"


class UnknownSessionError(SessionError):
    """No session with this id was ever open here (or this process restarted since)."""


class ExportError(SegmentkitError, ValueError):
    """Results cannot be written in the requested format (e.g. an object id the format cannot hold)."""

    code = "bad_export"


class PluginContractError(PluginError):
    """A plugin broke the role contract (e.g. a mask not at the input image's size).

    Raised by the core handles that stand between hosts and plugins; it names the model,
    the plugin and the distribution to report it to. A plugin fault, not a user error:
    the CLI exits 1, the IPC service answers ``plugin_error`` with the plugin in ``data``.
    """

    code = "plugin_contract"

    def __init__(self, problem: str, *, model: str, plugin: str, distribution: str):
        self.problem = problem
        self.model = model
        self.plugin = plugin
        super().__init__(
            f"plugin {plugin!r} (distribution {distribution}) broke the segmentkit contract for model "
            f"{model!r}: {problem}; report it to the {distribution} maintainers",
            distribution=distribution,
        )


# --------------------------------------------------------------------------- one table for every face

USAGE_EXIT = 2  # the input's fault: options, files, images, prompts, unknown models
BUG_EXIT = 1  # a plugin's fault, or a bug

# ``SegmentkitError.code`` -> (the IPC error it answers with, the CLI's exit status). Batch
# records keep the code itself. A code not listed: ``segmentkit_error``, exit 2.
FAILURES: dict[str, tuple[str, int]] = {
    **{code: (code, USAGE_EXIT) for code in (
        "bad_image", "image_too_large", "bad_prompt", "unknown_model", "unsupported_task", "invalid_options",
        "bad_video", "weights_unavailable", "missing_dependency", "session_error", "path_denied")},
    **{code: ("plugin_error", BUG_EXIT) for code in (
        "plugin_error", "plugin_load_error", "spec_error", "duplicate_model", "plugin_contract")},
}


def classify(exc: SegmentkitError) -> tuple[str, int]:
    """The IPC error name and the CLI exit status of ``exc``, from :data:`FAILURES`."""
    default = ("plugin_error", BUG_EXIT) if isinstance(exc, PluginError) else ("segmentkit_error", USAGE_EXIT)
    return FAILURES.get(exc.code, default)


def validation_details(exc: Any, where: str = "") -> str:
    """A pydantic ``ValidationError`` on one line: ``loc: message; ...`` (``where`` leads each loc)."""
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in (where, *error.get("loc", ())) if p != "" and not str(p).startswith("function-"))
        msg = str(error.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)
