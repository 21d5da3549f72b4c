"""Plugin discovery and model lookup.

A :class:`Registry` owns a pluggy ``PluginManager``. It walks the ``segmentkit``
entry-point group one entry at a time, so a plugin that fails to import or whose hook
raises becomes a recorded :class:`PluginProblem` while every other plugin keeps
serving. Each hook implementation is called on its own through pluggy's hook caller
(so ``SEGMENTKIT_TRACE=1`` traces it), so the registry knows which distribution every
spec came from; :mod:`segmentkit.catalog` then sets aside only the specs that clash.
"""

from __future__ import annotations

import copy
import difflib
import functools
import logging
import os
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy
from pydantic import BaseModel, ConfigDict

from . import hookspecs
from .capabilities import resolve_precision
from .cards import ROLES, ModelCard, ModelSpec, Role
from .catalog import Catalog, PluginCheck, PluginProblem, RegisteredSpec, build_catalog, problem_text
from .devices import resolve_device
from .errors import PluginLoadError, SpecError, UnknownModelError
from .handles import Handle, wrap
from .loaders import check_loader, import_loader
from .plan import Plan, make_plan

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "segmentkit"
DEFAULT_MODEL = "classic"
IN_PROCESS = "<in-process>"
PLUGIN_STAGES = ("import", "register")  # problems found before any hook runs


class ModelEntry(BaseModel):
    """An installed model: what ``segmentkit models --json`` prints and ``vision.models`` answers."""

    model_config = ConfigDict(extra="forbid")

    card: ModelCard
    roles: list[Role]
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

    def entry(self) -> ModelEntry:
        """This model as the one JSON shape every face gives (card nested, not flattened)."""
        return ModelEntry(card=self.card, roles=list(self.roles), plugin=self.plugin,  # type: ignore[arg-type]
                          distribution=self.distribution, version=self.version)


class Registry:
    """Finds plugins, answers queries about their models and loads them."""

    def __init__(self, *, entry_points: bool = True, allow: Iterable[str] | None = None):
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._dists: dict[str, tuple[str, str]] = {}
        self._problems: list[PluginProblem] = []
        self._catalog: Catalog | None = None
        self._lock = threading.RLock()
        if allow is None and os.environ.get("SEGMENTKIT_LOAD_PLUGINS"):
            allow = [n.strip() for n in os.environ["SEGMENTKIT_LOAD_PLUGINS"].split(",") if n.strip()]
        self._allow = None if allow is None else set(allow)
        if os.environ.get("SEGMENTKIT_TRACE"):  # pluggy's hook-call trace, on stderr
            self._pm.trace.root.setwriter(lambda line: sys.stderr.write(f"segmentkit trace: {line}"))
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
            self._catalog = None

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
        self._catalog = None

    def _record(self, plugin: str, dist: str, stage: str, exc: BaseException) -> None:
        text = problem_text(exc)
        log.warning("segmentkit plugin %r (%s) failed at %s: %s", plugin, dist, stage, text)
        self._problems.append(PluginProblem(plugin, dist, stage, text))

    @property
    def problems(self) -> list[PluginProblem]:
        """Plugins that failed to import, register or answer a hook, and models set aside."""
        self._collected()
        return list(self._problems)

    def check(self) -> list[PluginProblem]:
        """:attr:`problems`, plus every served model whose loader or option classes are broken.

        Imports each loader (model code, so torch and friends may load).
        """
        return self.verify().problems

    def verify(self) -> PluginCheck:
        """:meth:`check`'s problems with what was checked: what ``segmentkit plugins --check`` reports."""
        found = self.problems
        specs = sorted(self._collected().items())
        for (model_id, role), entry in specs:
            error = check_loader(entry)
            if error:
                found.append(PluginProblem(entry.plugin, entry.distribution, "loader", f"{role}: {error}", (model_id,)))
        return PluginCheck(plugins=len(self._dists), models=len({model_id for (model_id, _), _ in specs}),
                           loaders=len(specs), problems=found)

    def plugins(self) -> list[tuple[str, str, str]]:
        """(name, distribution, version) of every plugin registered."""
        return [(name, *self._dists[name]) for name in sorted(self._dists)]

    # ------------------------------------------------------------------ specs

    def _collected(self) -> dict[tuple[str, str], RegisteredSpec]:
        return self._cataloged().specs

    def _cataloged(self) -> Catalog:
        with self._lock:
            if self._catalog is None:
                self._problems = [p for p in self._problems if p.stage in PLUGIN_STAGES]
                self._catalog = build_catalog(self._call_hooks())
                for error in dict.fromkeys(p.error for p in self._catalog.problems):  # once per clash
                    log.warning("segmentkit models set aside: %s", error)
                self._problems += self._catalog.problems
            return self._catalog

    def _call_hooks(self) -> list[RegisteredSpec]:
        """Every spec every hook implementation returns; a plugin whose hook raises is dropped whole."""
        entries: list[RegisteredSpec] = []
        broken: set[str] = set()
        for hook_name, role in hookspecs.HOOK_ROLES.items():
            for impl in getattr(self._pm.hook, hook_name).get_hookimpls():
                plugin = impl.plugin_name
                if plugin in broken:
                    continue
                dist, version = self._dists.get(plugin, (IN_PROCESS, ""))
                try:
                    specs = _check_specs(self._call_one(hook_name, impl), role)
                except Exception as exc:  # a raising hook must not take the other plugins down
                    self._record(plugin, dist, hook_name, exc)
                    broken.add(plugin)
                    continue
                entries += [RegisteredSpec(spec, plugin, dist, version) for spec in specs]
        # No half-registered plugin: one whose hook raised serves nothing.
        return [e for e in entries if e.plugin not in broken]

    def _call_one(self, hook_name: str, impl: pluggy.HookImpl) -> list[Any]:
        """Call one plugin's implementation of ``hook_name`` through pluggy (traced, monitored).

        This is what ``HookCaller.__call__`` does with one implementation instead of all;
        ``subset_hook_caller`` would do too, but needs hashable plugin objects.
        """
        hook = getattr(self._pm.hook, hook_name)
        results = hook._hookexec(hook_name, [impl], {}, False)
        return [spec for result in results for spec in _as_list(result)]

    def output_formats(self) -> list[Any]:
        """Output formats added by plugins (the ``segmentkit_formats`` hook), in registration order."""
        from .formats import OutputFormat

        found: list[Any] = []
        for impl in self._pm.hook.segmentkit_formats.get_hookimpls():
            dist, _ = self._dists.get(impl.plugin_name, (IN_PROCESS, ""))
            try:
                formats = self._call_one("segmentkit_formats", impl)
                bad = [f for f in formats if not isinstance(f, OutputFormat)]
                if bad:
                    raise SpecError(f"segmentkit_formats returned {type(bad[0]).__name__}, expected OutputFormat")
            except Exception as exc:  # one plugin's broken hook must not take the formats away
                self._record(impl.plugin_name, dist, "segmentkit_formats", exc)
                continue
            found.extend(formats)
        return found

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
        catalog = self._cataloged()
        specs = catalog.specs
        if model_id is None:
            model_id = self.default_model_id(role)
        model_id = catalog.aliases.get(model_id, model_id)
        if model_id in catalog.quarantined:
            raise copy.copy(catalog.quarantined[model_id])
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
        if wanted in candidates or wanted in self._cataloged().aliases:
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
        catalog = self._cataloged()
        names = {k[0] for k in catalog.specs if role is None or k[1] == role} | set(catalog.aliases)
        return difflib.get_close_matches(model_id, sorted(names), n=3, cutoff=0.5)

    def plan(self, model_id: str | None = None, role: str | None = None, *, task: str | None = None,
             objects: Sequence[Sequence[Any]] = (), **options: Any) -> Plan:
        """Check a request (model, role, task, prompt kinds, load options) before anything loads."""
        return make_plan(self.resolve(model_id, role), task=task, objects=objects, options=options)

    def load(self, model_id: str | Plan | None = None, role: str | None = None, **options: Any) -> Handle:
        """Load a model (or a :class:`~segmentkit.prompts.Plan`): import the loader, return the role's handle."""
        plan = model_id if isinstance(model_id, Plan) else self.plan(model_id, role, **options)
        spec = plan.entry.spec
        runtime = plan.options.runtime or spec.card.runtimes[0]
        device = resolve_device(plan.options.device, runtime)
        precision = resolve_precision(plan.options.precision, plan.options.precisions(spec.card), device, runtime,
                                      spec.card.id)
        opts = plan.options.model_copy(update={"device": device, "precision": precision})
        factory = import_loader(plan.entry)
        log.debug("loading %s as %s from %s", spec.card.id, spec.role, plan.entry.distribution)
        return wrap(factory(spec.card, opts), plan.entry, opts)


def _as_list(result: Any) -> list[Any]:
    if result is None:
        return []
    return [result] if isinstance(result, ModelSpec) else list(result)


def _check_specs(specs: list[Any], role: str) -> list[ModelSpec]:
    for spec in specs:
        if not isinstance(spec, ModelSpec):
            raise SpecError(f"hook returned {type(spec).__name__}, expected segmentkit.ModelSpec")
        if spec.role != role:
            raise SpecError(f"spec {spec.card.id!r} has role {spec.role!r} but came from the {role} hook")
    return specs


@functools.cache
def default_registry() -> Registry:
    """The process-wide registry built from installed entry points (created on first use)."""
    return Registry()
