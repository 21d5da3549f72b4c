"""CORS of `segmentkit serve --allow-origin`: exactly the listed origins, none by default, token needed."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

pytest.importorskip("starlette", reason="segmentkit[serve] is not installed")
from segmentkit.errors import OptionsError
from segmentkit.ipc.http import cors_origins, create_app
from segmentkit.ipc.manifest import App
from segmentkit.ipc.service import Service
from segmentkit.registry import Registry
from starlette.testclient import TestClient

TOKEN = "t0ken"
HOST_APP = "http://localhost:5173"
OTHER = "https://evil.example"
RPC = {"jsonrpc": "2.0", "id": 1, "method": "vision.models", "params": {}}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _client(origins: list[str]) -> Any:
    service = Service(Registry(entry_points=False), [App.local()])
    app = create_app(service, {TOKEN: App.local()}, allow_origins=origins)
    return TestClient(app, base_url="http://127.0.0.1:8765")


def _preflight(client: Any, origin: str) -> Any:
    return client.options("/rpc", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})


def test_no_cors_by_default() -> None:
    with _client([]) as client:
        assert "access-control-allow-origin" not in _preflight(client, HOST_APP).headers
        answer = client.post("/rpc", json=RPC, headers={"Origin": HOST_APP, **AUTH})
        assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


def test_exactly_the_listed_origins_and_the_token_is_still_required() -> None:
    with _client([HOST_APP, "http://127.0.0.1:9000/"]) as client:
        ok = _preflight(client, HOST_APP)
        assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == HOST_APP
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        assert _preflight(client, "http://127.0.0.1:9000").headers["access-control-allow-origin"] == \
            "http://127.0.0.1:9000"
        for origin in (OTHER, "http://localhost:5174", "https://localhost:5173"):
            refused = _preflight(client, origin)
            assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
        answer = client.post("/rpc", json=RPC, headers={"Origin": HOST_APP, **AUTH})
        assert answer.status_code == 200 and answer.json()["result"] == {"models": []}
        assert answer.headers["access-control-allow-origin"] == HOST_APP
        # Without the token the listed origin is refused, readably (the page can show why).
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = client.post("/rpc", json=RPC, headers={"Origin": HOST_APP, **headers})
            assert refused.status_code == 403 and refused.json()["error"]["data"]["code"] == "forbidden"
            assert refused.headers["access-control-allow-origin"] == HOST_APP
        other = client.post("/rpc", json=RPC, headers={"Origin": OTHER, **AUTH})
        assert "access-control-allow-origin" not in other.headers


@pytest.mark.parametrize("bad", ["localhost:5173", "*", "http://host/app", "ftp://host", "http://host:99999",
                                 "http://user@host", "http://host/?q=1", ""])
def test_bad_origins_are_refused(bad: str) -> None:
    with pytest.raises(OptionsError, match="is not an origin"):
        cors_origins([bad])


def test_origins_are_normalised() -> None:
    assert cors_origins(["http://LocalHost:5173/", "https://app.example"]) == [
        "http://localhost:5173", "https://app.example"]


def test_the_command_refuses_a_bad_origin() -> None:
    command = [sys.executable, "-c", "from segmentkit.cli import main; main()", "serve", "--port", "0",
               "--allow-origin", "localhost:5173"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "error: --allow-origin 'localhost:5173' is not an origin" in done.stderr
