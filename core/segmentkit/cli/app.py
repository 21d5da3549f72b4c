"""The typer application and the error boundary every command runs behind."""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="segmentkit",
    help="Images and video to pixel masks; every model a plugin.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module registers its commands on `app` when imported.
COMMAND_MODULES = ("models",)


def main() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(f"segmentkit.cli.{name}")
    app()
