"""Importing a spec's ``"package.module:Class"`` loader, and checking it without loading a model.

Import failures are told apart by whose fault they are: a package that is not installed
is a :class:`MissingDependencyError` with the ``pip install`` line; a module or class that
does not exist in an installed package (a typo in the plugin) is a
:class:`PluginLoadError` naming the distribution.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import typing
from typing import Any

from pydantic import BaseModel

from .catalog import RegisteredSpec
from .errors import MissingDependencyError, PluginLoadError, SegmentkitError


def import_loader(entry: RegisteredSpec) -> Any:
    """The loader class of ``entry`` (its module imported now)."""
    spec = entry.spec
    module_name, _, attr = spec.loader.partition(":")
    where = f"loader {spec.loader!r} of model {spec.card.id!r} from {entry.origin}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        top = missing.split(".")[0]
        if not _installed(top):
            raise MissingDependencyError(top, f"pip install {top}", purpose=f"model {spec.card.id!r}") from exc
        raise PluginLoadError(f"{where} failed to import: no module named {missing!r}",
                              distribution=entry.distribution) from exc
    except Exception as exc:
        raise PluginLoadError(f"{where} failed to import: {type(exc).__name__}: {exc}",
                              distribution=entry.distribution) from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PluginLoadError(f"{where}: module {module_name!r} has no attribute {attr!r}",
                              distribution=entry.distribution) from None


def check_loader(entry: RegisteredSpec) -> str | None:
    """What is wrong with ``entry``'s loader class and option classes, or None if nothing is."""
    from .roles import ROLE_PROTOCOLS

    spec = entry.spec
    try:
        factory = import_loader(entry)
    except SegmentkitError as exc:
        return f"{type(exc).__name__}: {exc}"
    if not isinstance(factory, type):
        return f"loader {spec.loader!r} is a {type(factory).__name__}, not a class"
    protocol = ROLE_PROTOCOLS[spec.role]
    missing = [name for name in _methods(protocol) if not callable(getattr(factory, name, None))]
    if missing:
        return f"loader {spec.loader!r} lacks {', '.join(missing)} of a {spec.role} ({protocol.__name__})"
    for options in _option_classes(spec):
        error = _check_options(options)
        if error:
            return f"options class {options.__module__}.{options.__qualname__} {error}"
    return _check_restore(factory) if spec.role == "tracker" else None


def _check_restore(tracker: type) -> str | None:
    """A tracker whose sessions save (their class implements ``_state``) needs ``restore``; the
    session class is read from ``start``'s return annotation (none there: nothing to check)."""
    from .sessions import TrackingSession

    try:
        session = typing.get_type_hints(tracker.start).get("return")
    except Exception:  # an annotation that does not resolve here
        return None
    saves = (isinstance(session, type) and issubclass(session, TrackingSession)
             and session._state is not TrackingSession._state)
    if saves and not callable(getattr(tracker, "restore", None)):
        return (f"tracker {tracker.__qualname__} has no restore(path, source=None), but its sessions "
                f"({session.__qualname__}) save their state: add one that returns "
                "segmentkit.session_files.restore_session(self, path, source)")
    return None


def _installed(top_level: str) -> bool:
    if top_level in sys.modules:
        return True
    try:
        return importlib.util.find_spec(top_level) is not None
    except (ImportError, ValueError):
        return False


def _methods(protocol: type) -> list[str]:
    """The public methods a role protocol (and its protocol bases) declares."""
    names: dict[str, None] = {}
    for base in reversed(protocol.__mro__):
        if getattr(base, "_is_protocol", False):
            names.update((n, None) for n, v in vars(base).items() if callable(v) and not n.startswith("_"))
    return list(names)


def _option_classes(spec: Any) -> list[type[BaseModel]]:
    """Every pydantic class a spec declares (its options; any per-call options class too)."""
    return [v for v in vars(spec).values() if isinstance(v, type) and issubclass(v, BaseModel)]


def _check_options(options: type[BaseModel]) -> str | None:
    if options.model_config.get("extra") != "forbid":
        return "must refuse unknown options (model_config extra='forbid')"
    try:
        options.model_json_schema()
        defaults = {n: f.get_default(call_default_factory=True)
                    for n, f in options.model_fields.items() if not f.is_required()}
        options.model_validate(defaults)
    except Exception as exc:
        return f"is invalid: {type(exc).__name__}: {' '.join(str(exc).split())}"
    return None
