"""Suite set-up: the IPC tests' shared helpers are importable as ``test_ipc_support``.

Tests import with ``--import-mode=importlib`` (no test folder on ``sys.path``), so the
helper module is registered here once instead of by each test file.
"""

import importlib.util
import sys
from pathlib import Path

if "test_ipc_support" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("test_ipc_support", Path(__file__).with_name("test_ipc_support.py"))
    assert _spec is not None and _spec.loader is not None
    sys.modules["test_ipc_support"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["test_ipc_support"])
