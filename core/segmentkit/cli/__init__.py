"""`segmentkit` command line (typer + rich). One module per command group.

Bad input exits with code 2 and a one-line message, never a traceback.
"""

from __future__ import annotations

from .app import app, main

__all__ = ["app", "main"]
