"""The catalog of installed models: the specs plugins returned, with clashes quarantined.

:func:`build_catalog` takes every spec the hooks returned and sets aside only the specs
that cannot be served unambiguously: one model id offered by two plugins, an alias that
names two models, a card whose roles are not the hooks that return it. Each such clash
becomes a :class:`PluginProblem` naming every plugin involved; every other model of those
plugins stays available.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .cards import ROLES, ModelSpec
from .errors import DuplicateModelError, PluginError, SpecError, validation_details


@dataclass(frozen=True)
class PluginProblem:
    """A plugin, or some of its models, that could not be used, and why."""

    plugin: str
    distribution: str
    stage: str  # "import", "register", a hook name, "duplicate-id", "alias", "card-roles" or "loader"
    error: str
    models: tuple[str, ...] = ()  # the model ids set aside, where the problem is about models


def problem_text(exc: BaseException) -> str:
    """``exc`` as one line for a :class:`PluginProblem`: a pydantic error lists each field's message,
    not pydantic's multi-line report."""
    errors = getattr(exc, "errors", None)
    if callable(errors) and hasattr(exc, "title"):  # a pydantic ValidationError
        return f"invalid {exc.title}: {validation_details(exc)}"
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class PluginCheck:
    """What ``segmentkit plugins --check`` verified (:meth:`Registry.verify`), and the problems found."""

    plugins: int
    models: int  # model ids served: valid cards whose roles are the hooks that return them
    loaders: int  # (model, role) loaders imported and checked
    problems: list[PluginProblem]

    @property
    def summary(self) -> str:
        """One line: what was verified, or how many problems were found."""
        if self.problems:
            return f"{len(self.problems)} plugin problem(s) found"
        return (f"checked {self.plugins} plugin(s), {self.models} model(s): all {self.loaders} loaders import and "
                "have their role's methods; options classes are strict and their defaults valid; cards valid; "
                "every card's roles match the hooks that return it")


@dataclass(frozen=True)
class RegisteredSpec:
    """A spec plus where it came from (recorded by the core, not claimed by the plugin)."""

    spec: ModelSpec
    plugin: str
    distribution: str
    version: str

    @property
    def origin(self) -> str:
        return f"{self.distribution} (plugin {self.plugin!r})"


@dataclass
class Catalog:
    """Servable specs by (model id, role), aliases, and why each set-aside name is unusable."""

    specs: dict[tuple[str, str], RegisteredSpec] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    quarantined: dict[str, PluginError] = field(default_factory=dict)
    problems: list[PluginProblem] = field(default_factory=list)

    def set_aside(self, entries: list[RegisteredSpec], stage: str, error: PluginError) -> None:
        """Quarantine the models of ``entries`` (ids and aliases) and report ``error`` per plugin."""
        ids = tuple(sorted({e.spec.card.id for e in entries}))
        for entry in entries:
            for name in (entry.spec.card.id, *entry.spec.card.aliases):
                self.quarantined.setdefault(name, error)
        seen = set()
        for entry in entries:
            if entry.plugin not in seen:
                seen.add(entry.plugin)
                self.problems.append(PluginProblem(entry.plugin, entry.distribution, stage,
                                                   f"{type(error).__name__}: {error}", ids))


def build_catalog(entries: Iterable[RegisteredSpec]) -> Catalog:
    """Index ``entries`` by (id, role), quarantining duplicate ids, alias clashes and bad cards."""
    catalog = Catalog()
    by_id: dict[str, list[RegisteredSpec]] = {}
    for entry in entries:
        by_id.setdefault(entry.spec.card.id, []).append(entry)
    for model_id, group in by_id.items():
        clash = _id_clash(model_id, group)
        if clash is not None:
            catalog.set_aside(group, *clash)
    for name, group in _names(by_id).items():
        if len({e.spec.card.id for e in group}) > 1:
            catalog.set_aside(group, "alias", DuplicateModelError(_alias_message(name, group)))
    for model_id, group in by_id.items():
        if model_id in catalog.quarantined:
            continue
        for entry in group:
            catalog.specs[(model_id, entry.spec.role)] = entry
        catalog.aliases.update((alias, model_id) for alias in group[0].spec.card.aliases if alias != model_id)
    return catalog


def _id_clash(model_id: str, group: list[RegisteredSpec]) -> tuple[str, PluginError] | None:
    """Why ``group`` (every spec with ``model_id``) cannot be served, or None."""
    origins = list(dict.fromkeys(e.origin for e in group))
    if len(origins) > 1:
        return "duplicate-id", DuplicateModelError(
            f"model id {model_id!r} is registered by both {' and '.join(origins)}; neither is served "
            "until one of them is uninstalled or renames it"
        )
    where = f"model {model_id!r} of {origins[0]}"
    roles = [e.spec.role for e in group]
    if len(set(roles)) < len(roles):
        return "duplicate-id", SpecError(f"{where} is returned twice for one role ({', '.join(roles)})")
    if any(e.spec.card != group[0].spec.card for e in group):
        return "card-roles", SpecError(f"{where} comes with different cards from different hooks")
    card_roles = [r for r in ROLES if r in group[0].spec.card.roles]
    served = [r for r in ROLES if r in roles]
    if card_roles != served:
        return "card-roles", SpecError(
            f"{where}: its card lists roles {', '.join(card_roles)} but the plugin's hooks return it "
            f"as {', '.join(served)}; card roles must match the hooks that return the card"
        )
    return None


def _names(by_id: dict[str, list[RegisteredSpec]]) -> dict[str, list[RegisteredSpec]]:
    """Every id and alias, with the specs (first per plugin and model) that claim it."""
    names: dict[str, list[RegisteredSpec]] = {}
    for group in by_id.values():
        firsts = list({e.plugin: e for e in reversed(group)}.values())
        for entry in firsts:
            for name in {entry.spec.card.id, *entry.spec.card.aliases}:
                names.setdefault(name, []).append(entry)
    return names


def _alias_message(name: str, group: list[RegisteredSpec]) -> str:
    claims = [
        f"{'the id' if e.spec.card.id == name else 'an alias'} of model {e.spec.card.id!r} from {e.origin}"
        for e in group
    ]
    return f"name {name!r} is {' and '.join(claims)}; the models it names are not served until one changes"
