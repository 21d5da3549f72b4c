"""Plugin discovery and model lookup.

A :class:`Registry` owns a pluggy ``PluginManager``. It walks the ``segmentkit``
entry-point group one entry at a time, so a plugin that fails to import or whose hook
raises becomes a recorded :class:`PluginProblem` while every other plugin keeps
serving. Hooks are called one implementation at a time, so the registry knows which
distribution every spec came from.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import logging
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy
from pydantic import ValidationError

from . import hookspecs
from .cards import ROLES, ModelCard, ModelSpec
from .devices import resolve_device
from .errors import (
    DuplicateModelError,
    MissingDependencyError,
    OptionsError,
    PluginLoadError,
    SpecError,
    UnknownModelError,
)

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "segmentkit"
DEFAULT_MODEL = "classic"
IN_PROCESS = "<in-process>"


@dataclass(frozen=True)
class PluginProblem:
    """A plugin that could not be used, and why."""

    plugin: str
    distribution: str
    stage: str  # "import", "register" or a hook name
    error: str


@dataclass(frozen=True)
class RegisteredSpec:
    """A spec plus where it came from (recorded by the core, not claimed by the plugin)."""

    spec: ModelSpec
    plugin: str
    distribution: str
    version: str


@dataclass(frozen=True)
class ModelInfo:
    """A model id with every role installed for it; what `segmentkit models` lists."""

    card: ModelCard
    roles: tuple[str, ...]
    plugin: str
    distribution: str
    version: str


class Registry:
    """Finds plugins, answers queries about their models and loads them."""

    def __init__(self, *, entry_points: bool = True, allow: Iterable[str] | None = None):
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._dists: dict[str, tuple[str, str]] = {}
        self._problems: list[PluginProblem] = []
        self._specs: dict[tuple[str, str], RegisteredSpec] | None = None
        self._aliases: dict[str, str] = {}
        self._lock = threading.RLock()
        if allow is None and os.environ.get("SEGMENTKIT_LOAD_PLUGINS"):
            allow = [n.strip() for n in os.environ["SEGMENTKIT_LOAD_PLUGINS"].split(",") if n.strip()]
        self._allow = None if allow is None else set(allow)
        if os.environ.get("SEGMENTKIT_TRACE"):
            self._pm.trace.root.setwriter(log.debug)
            self._pm.enable_tracing()
        if entry_points:
            self._load_entry_points()

    # ------------------------------------------------------------------ plugins

    def _load_entry_points(self) -> None:
        for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else "?"
            if self._allow is not None and ep.name not in self._allow:
                continue
            if self._pm.has_plugin(ep.name):
                continue
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not take the others down
                self._record(ep.name, dist, "import", exc)
                continue
            self._add(module, ep.name, dist, version)

    def register(self, plugin: Any, name: str | None = None) -> str:
        """Register a plugin object or module in-process (hosts, tests). Returns its name."""
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        with self._lock:
            self._add(plugin, name, IN_PROCESS, "")
            if name not in self._dists:
                raise PluginLoadError(f"plugin {name!r} could not be registered: {self._problems[-1].error}")
        return name

    def unregister(self, name: str) -> None:
        with self._lock:
            self._pm.unregister(name=name)
            self._dists.pop(name, None)
            self._specs = None

    def _add(self, plugin: Any, name: str, dist: str, version: str) -> None:
        try:
            self._pm.register(plugin, name=name)
            self._pm.check_pending()
        except Exception as exc:
            if self._pm.has_plugin(name):
                self._pm.unregister(name=name)
            self._record(name, dist, "register", exc)
            return
        self._dists[name] = (dist, version)
        self._specs = None

    def _record(self, plugin: str, dist: str, stage: str, exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}"
        log.warning("segmentkit plugin %r (%s) failed at %s: %s", plugin, dist, stage, text)
        self._problems.append(PluginProblem(plugin, dist, stage, text))

    @property
    def problems(self) -> list[PluginProblem]:
        """Plugins that failed to import, register or answer a hook."""
        self._collected()
        return list(self._problems)

    def plugins(self) -> list[tuple[str, str, str]]:
        """(name, distribution, version) of every plugin registered."""
        return [(name, *self._dists[name]) for name in sorted(self._dists)]

    # ------------------------------------------------------------------ specs

    def _collected(self) -> dict[tuple[str, str], RegisteredSpec]:
        with self._lock:
            if self._specs is None:
                self._specs, self._aliases = self._collect()
            return self._specs

    def _collect(self) -> tuple[dict[tuple[str, str], RegisteredSpec], dict[str, str]]:
        specs: dict[tuple[str, str], RegisteredSpec] = {}
        owner: dict[str, RegisteredSpec] = {}
        broken: set[str] = set()
        self._problems = [p for p in self._problems if p.stage in ("import", "register")]
        for hook_name, role in hookspecs.HOOK_ROLES.items():
            for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                plugin = impl.plugin_name
                if plugin in broken:
                    continue
                dist, version = self._dists.get(plugin, (IN_PROCESS, ""))
                try:
                    entries = [RegisteredSpec(spec, plugin, dist, version)
                               for spec in _check_specs(impl.function(), role)]
                    for entry in entries:
                        _check_unique(entry, specs, owner)
                except Exception as exc:
                    self._record(plugin, dist, hook_name, exc)
                    broken.add(plugin)
                    continue
                for entry in entries:
                    specs[(entry.spec.card.id, role)] = entry
                    owner[entry.spec.card.id] = entry
        # A plugin with one bad hook is dropped whole, so no half-registered model remains.
        specs = {k: v for k, v in specs.items() if v.plugin not in broken}
        aliases = {a: s.spec.card.id for s in specs.values() for a in s.spec.card.aliases}
        return specs, aliases

    def models(
        self, role: str | None = None, task: str | None = None, prompt_kind: str | None = None
    ) -> list[ModelInfo]:
        """Installed models, filtered by role, task and accepted prompt kind."""
        by_id: dict[str, list[RegisteredSpec]] = {}
        for (model_id, _), entry in self._collected().items():
            by_id.setdefault(model_id, []).append(entry)
        infos = []
        for model_id in sorted(by_id):
            entries = by_id[model_id]
            roles = tuple(r for r in ROLES if any(e.spec.role == r for e in entries))
            first = entries[0]
            info = ModelInfo(first.spec.card, roles, first.plugin, first.distribution, first.version)
            if role and role not in roles:
                continue
            if task and task not in info.card.tasks:
                continue
            if prompt_kind and prompt_kind not in info.card.prompt_kinds:
                continue
            infos.append(info)
        return infos

    def resolve(self, model_id: str | None, role: str | None = None) -> RegisteredSpec:
        """The spec for ``model_id`` (an id or alias) in ``role`` (default: its first role).

        ``model_id=None`` picks the default model for the role: ``$SEGMENTKIT_DEFAULT_MODEL``,
        else ``classic``, else the only installed model of that role.
        """
        specs = self._collected()
        if model_id is None:
            model_id = self.default_model_id(role)
        model_id = self._aliases.get(model_id, model_id)
        if role is not None:
            if role not in ROLES:
                raise UnknownModelError(model_id, role=role)
            entry = specs.get((model_id, role))
            if entry is None:
                raise UnknownModelError(model_id, self._close(model_id, role), role=role)
            return entry
        for r in ROLES:
            if (model_id, r) in specs:
                return specs[(model_id, r)]
        raise UnknownModelError(model_id, self._close(model_id, None))

    def default_model_id(self, role: str | None) -> str:
        candidates = [m.card.id for m in self.models(role=role)]
        wanted = os.environ.get("SEGMENTKIT_DEFAULT_MODEL", DEFAULT_MODEL)
        if wanted in candidates or wanted in self._aliases:
            return wanted
        if len(candidates) == 1:
            return candidates[0]
        what = f"{role} model" if role else "model"
        found = f"installed: {', '.join(candidates)}" if candidates else "none is installed"
        raise UnknownModelError(
            wanted, candidates, role=role,
            message=f"no default {what} ({found}); name one with --model / model=",
        )

    def _close(self, model_id: str, role: str | None) -> list[str]:
        names = {k[0] for k in self._collected() if role is None or k[1] == role} | set(self._aliases)
        return difflib.get_close_matches(model_id, sorted(names), n=3, cutoff=0.5)

    def load(self, model_id: str | None = None, role: str | None = None, **options: Any) -> Any:
        """Load a model: validate options, import the loader, return the role object."""
        entry = self.resolve(model_id, role)
        spec = entry.spec
        try:
            opts = spec.options.model_validate(options)
        except ValidationError as exc:
            details = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise OptionsError(f"invalid options for {spec.card.id!r}: {details}") from None
        runtime = opts.runtime or spec.card.runtimes[0]
        opts = opts.model_copy(update={"device": resolve_device(opts.device, runtime)})
        if runtime not in spec.card.runtimes:
            raise OptionsError(
                f"{spec.card.id!r} runs on {', '.join(spec.card.runtimes)}, not {runtime!r}"
            )
        if opts.precision not in spec.card.precisions:
            raise OptionsError(
                f"{spec.card.id!r} supports precision {', '.join(spec.card.precisions)}, not {opts.precision!r}"
            )
        factory = _import_loader(spec.loader, entry.distribution)
        log.debug("loading %s as %s from %s", spec.card.id, spec.role, entry.distribution)
        return factory(spec.card, opts)


def _check_specs(result: Any, role: str) -> list[ModelSpec]:
    if result is None:
        return []
    if isinstance(result, ModelSpec):
        result = [result]
    specs = list(result)
    for spec in specs:
        if not isinstance(spec, ModelSpec):
            raise SpecError(f"hook returned {type(spec).__name__}, expected segmentkit.ModelSpec")
        if spec.role != role:
            raise SpecError(f"spec {spec.card.id!r} has role {spec.role!r} but came from the {role} hook")
    return specs


def _check_unique(
    entry: RegisteredSpec,
    specs: dict[tuple[str, str], RegisteredSpec],
    owner: dict[str, RegisteredSpec],
) -> None:
    spec = entry.spec
    key = (spec.card.id, spec.role)
    other = specs.get(key) or owner.get(spec.card.id)
    if other is not None and (key in specs or other.plugin != entry.plugin):
        raise DuplicateModelError(
            f"model id {spec.card.id!r} ({spec.role}) is registered by both "
            f"{other.distribution} (plugin {other.plugin!r}) and {entry.distribution} (plugin {entry.plugin!r})"
        )


def _import_loader(loader: str, distribution: str) -> Any:
    module_name, _, attr = loader.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or module_name).split(".")[0]
        raise MissingDependencyError(
            missing, f"pip install {distribution if missing == module_name.split('.')[0] else missing}",
            purpose=f"loader {loader!r}",
        ) from exc
    except Exception as exc:
        raise PluginLoadError(f"loader {loader!r} failed to import: {type(exc).__name__}: {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise PluginLoadError(f"loader {loader!r}: module has no attribute {attr!r}") from None


@functools.cache
def default_registry() -> Registry:
    """The process-wide registry built from installed entry points (created on first use)."""
    return Registry()
