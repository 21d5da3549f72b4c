"""Errors map to CLI exit statuses and IPC codes from one table (segmentkit.errors.FAILURES)."""

from __future__ import annotations

import pytest
from segmentkit import errors
from segmentkit.cli.common import describe
from segmentkit.ipc.errors import ERROR_NAMES, ErrorCode, from_exception


def _every_error() -> list[type[errors.SegmentkitError]]:
    found, todo = [], [errors.SegmentkitError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return [c for c in found if c.__module__ == "segmentkit.errors"]


def _instance(cls: type[errors.SegmentkitError]) -> errors.SegmentkitError:
    exc = cls.__new__(cls)
    Exception.__init__(exc, "boom")
    if isinstance(exc, errors.PluginContractError):
        exc.model = exc.plugin = exc.distribution = "x"
    return exc


@pytest.mark.parametrize("cls", _every_error(), ids=lambda c: c.__name__)
def test_cli_and_ipc_agree(cls: type[errors.SegmentkitError]) -> None:
    exc = _instance(cls)
    name, exit_status = errors.classify(exc)
    rpc = from_exception(exc)
    assert ERROR_NAMES[rpc.rpc_code] == name and rpc.data["code"] == exc.code
    assert describe(exc)[0] == exit_status
    plugin_fault = isinstance(exc, errors.PluginError)
    want = (1, True) if plugin_fault else (2, False)
    assert (exit_status, rpc.rpc_code == ErrorCode.PLUGIN_ERROR) == want


def test_every_table_entry_is_an_rpc_error() -> None:
    assert {name for name, _ in errors.FAILURES.values()} <= set(ERROR_NAMES.values())
