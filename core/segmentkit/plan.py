"""The plan: a request checked against its model's card before anything loads.

:func:`make_plan` checks the role (by resolving the spec), the task, the prompt kinds of
the objects (:mod:`segmentkit.prompts`) and the load options; :meth:`Registry.plan
<segmentkit.registry.Registry.plan>` resolves a model and makes one, and
:meth:`Registry.load <segmentkit.registry.Registry.load>` loads it. Every face plans
instead of checking cards itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .cards import ModelCard, ModelOptions
from .handles import check_load_options, check_prompt_kinds, check_task, parse_options

if TYPE_CHECKING:
    from .catalog import RegisteredSpec

__all__ = ["Plan", "make_plan"]


@dataclass(frozen=True)
class Plan:
    """A request checked against its model's card; nothing is loaded yet."""

    entry: RegisteredSpec
    options: ModelOptions
    task: str | None = None
    objects: tuple[tuple[Any, ...], ...] = ()

    @property
    def card(self) -> ModelCard:
        return self.entry.spec.card

    @property
    def role(self) -> str:
        return self.entry.spec.role


def make_plan(entry: RegisteredSpec, *, task: str | None = None, objects: Sequence[Sequence[Any]] = (),
              options: Mapping[str, Any] | None = None) -> Plan:
    """Check ``task``, the prompt kinds of ``objects`` and the load ``options`` against ``entry``'s card."""
    card = entry.spec.card
    check_task(card, task)
    check_prompt_kinds(card, (_kind(p) for prompts in objects for p in prompts))
    parsed = parse_options(entry.spec.options, card, dict(options or {}))
    check_load_options(card, parsed)
    return Plan(entry, parsed, task, tuple(tuple(p) for p in objects))


def _kind(prompt: Any) -> str:
    return str(prompt["kind"] if isinstance(prompt, Mapping) else prompt.kind)
