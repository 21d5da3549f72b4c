"""Helpers of the @segmentkit/components tests: a static host site on its own origin, npm.

The host site is a plain HTTP server on loopback (another port, so another origin than
`segmentkit serve`) serving ``tests/web/host`` and the package's ``src`` at ``/components/``,
as any web app would host the modules.

Tests that need Node (npm pack, tsc, the React example's build) skip with the reason when
``node_modules`` are missing, unless ``SEGMENTKIT_REQUIRE_NODE=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "packages" / "components"
HOST = Path(__file__).parent / "host"
REACT = ROOT / "examples" / "react"


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript"}

    def log_message(self, *args: object) -> None:  # keep pytest's output clean
        pass


@contextmanager
def static_site(folder: Path) -> Iterator[str]:
    """Serve ``folder`` on 127.0.0.1 (a free port) until the block ends; yields the origin."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def host_folder(tmp: Path) -> Path:
    """``tests/web/host`` plus the package's modules at ``components/`` (a link to the one source)."""
    site = tmp / "site"
    shutil.copytree(HOST, site)
    (site / "components").symlink_to(PACKAGE / "src", target_is_directory=True)
    return site


def require_node(*needed: Path) -> str:
    """The npm executable, or skip (fail under SEGMENTKIT_REQUIRE_NODE=1) naming what is missing."""
    npm = shutil.which("npm")
    missing = [] if npm else ["npm"]
    missing += [str(p.relative_to(ROOT)) for p in needed if not p.exists()]
    if missing:
        reason = f"missing {', '.join(missing)} (run `npm ci` there, as .ci/run does)"
        if os.environ.get("SEGMENTKIT_REQUIRE_NODE", "") not in ("", "0"):
            pytest.fail(f"{reason}, and SEGMENTKIT_REQUIRE_NODE is set")
        pytest.skip(reason)
    return str(npm)
