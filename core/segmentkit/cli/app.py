"""The typer application and the error boundary every command runs behind."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import typer

app = typer.Typer(
    name="segmentkit",
    help="Images and video to pixel masks; every model a plugin.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module registers its commands on `app` when imported.
COMMAND_MODULES = ("models", "segment", "prompt", "serve", "batch", "track", "doctor")


@app.callback()
def _global_options(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print nothing but errors (and requested output)."),
) -> None:
    """Images and video to pixel masks; every model a plugin."""
    from .common import setup_logging

    setup_logging(quiet=quiet)


def load_commands() -> typer.Typer:
    """Import every command module (each registers on ``app``) and return ``app``."""
    for name in COMMAND_MODULES:
        importlib.import_module(f"segmentkit.cli.{name}")
    return app


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: run a command; exit 2 with one line on bad input, never a traceback."""
    from .common import run_app

    sys.exit(run_app(load_commands(), argv))
