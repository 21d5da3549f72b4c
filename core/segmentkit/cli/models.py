"""`segmentkit models`, `segmentkit plugins` and `segmentkit pull`: what is installed.

These commands read model cards only; they import no model code (no torch).
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

import typer

from .app import app
from .common import BUG_EXIT, JsonOpt, emit_json, fail, guarded, stderr_console, stdout_console


def _registry() -> Any:
    from ..registry import default_registry

    return default_registry()


@app.command("models")
@guarded
def models_command(
    role: Annotated[str | None, typer.Option("--role", help="Only models with this role.")] = None,
    task: Annotated[str | None, typer.Option("--task", help="Only models performing this task.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """List installed models (cards: roles, tasks, prompt kinds, weights, distribution)."""
    from ..cards import ROLES

    if role is not None and role not in ROLES:
        raise typer.BadParameter(f"{role!r} is not a role; choose from {', '.join(ROLES)}",
                                 param_hint="'--role'")
    infos = _registry().models(role=role, task=task)
    if json_out:
        emit_json([info.entry().model_dump(mode="json") for info in infos])
        return
    from rich.table import Table

    table = Table(title="installed models", title_justify="left")
    table.add_column("id", no_wrap=True)
    for column in ("roles", "tasks", "prompts", "weights", "distribution"):
        table.add_column(column, overflow="fold")
    for info in infos:
        card = info.card
        weights = f"{card.weights.repo_id}@{card.weights.revision[:12]}" if card.weights else "none"
        table.add_row(card.id, ", ".join(info.roles), ", ".join(card.tasks),
                      ", ".join(card.prompt_kinds) or "-", weights,
                      f"{info.distribution} {info.version}".strip())
    console = stdout_console()
    if infos:
        console.print(table)
    else:
        what = " matching the filters" if role or task else ""
        console.print(f"no models installed{what} (install a plugin, e.g. pip install -e plugins/classic)")


@app.command("plugins")
@guarded
def plugins_command(
    json_out: JsonOpt = False,
    check: Annotated[bool, typer.Option(
        "--check", help="Also import every model's loader and validate its options; exit 1 on any problem.")] = False,
) -> None:
    """List registered plugins with distribution and version, and plugins or models that failed to load."""
    registry = _registry()
    report = registry.verify() if check else None
    problems = report.problems if report else registry.problems  # collects specs: hook failures count
    plugins = registry.plugins()
    if json_out:
        emit_json({"plugins": [{"name": n, "distribution": d, "version": v} for n, d, v in plugins],
                   "problems": [dataclasses.asdict(p) for p in problems]})
    else:
        from rich.table import Table

        console = stdout_console()
        tables = [("plugins", ("name", "distribution", "version"), plugins),
                  ("plugin problems", ("plugin", "distribution", "stage", "models", "error"),
                   [(p.plugin, p.distribution, p.stage, ", ".join(p.models), p.error) for p in problems])]
        for title, columns, rows in tables:
            table = Table(*columns, title=title, title_justify="left")
            for row in rows:
                table.add_row(*row)
            if rows or title == "plugins":
                console.print(table if rows else "no plugins registered")
        if report and not problems:
            console.print(report.summary, soft_wrap=True)
    if check and problems:
        raise fail(f"{len(problems)} plugin problem(s) found; see the report above", BUG_EXIT)


@app.command("pull")
@guarded
def pull_command(
    model: Annotated[str, typer.Argument(help="Model id whose weights to fetch into the cache.")],
    revision: Annotated[str | None, typer.Option(
        "--revision", help="Hub commit, branch or tag to fetch instead of the card's pinned revision.")] = None,
) -> None:
    """Fetch a model's weights into the Hugging Face cache now (needs network); prints the folder."""
    from ..errors import WeightsUnavailableError
    from ..weights import offline, pull

    card = _registry().resolve(model).spec.card
    if card.weights is None:
        stderr_console().print(f"{card.id} needs no weights; nothing to pull")
        return
    source = f"{card.weights.repo_id}@{(revision or card.weights.revision)[:12]}"
    if offline():
        raise WeightsUnavailableError(
            f"cannot pull {card.id!r} ({source}): segmentkit is offline (SEGMENTKIT_OFFLINE or "
            "HF_HUB_OFFLINE is set); run `segmentkit pull` on a connected machine, or use a local "
            "checkpoint with --weights DIR"
        )
    with stderr_console().status(f"pulling {source} for {card.id} ..."):
        path = pull(card, revision)
    typer.echo(str(path))
