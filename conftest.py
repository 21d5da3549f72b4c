"""Repository-wide test set-up: ``precision="auto"`` resolves the same on every CPU.

The suite runs on machines whose CPUs differ: some compute bf16 natively (AVX512-BF16, AMX),
some do not (AMD Zen 3). Unless the caller sets it, ``SEGMENTKIT_CAPABILITIES=bf16=off`` makes
``auto`` mean fp32 everywhere (subprocesses inherit it), so parity tests compare fp32 with fp32;
the bf16 tests turn bf16 on themselves with the ``native_bf16`` fixture (skipped
where the CPU has no bf16), and the tests of
``auto`` force what they need with ``force_capabilities``.
"""

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("SEGMENTKIT_CAPABILITIES", "bf16=off")
