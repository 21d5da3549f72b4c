"""pytest11 entry point: markers and fixtures for segmentkit and plugin test suites.

Loaded by every pytest run where segmentkit is installed, so it imports nothing heavy
(numpy only; the conformance contracts are imported by the tests that use them).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest

from .scenes import Scene
from .scenes import synthetic_scene as _synthetic_scene


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "weights: needs real hub weights (skipped offline)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


@pytest.fixture
def synthetic_scene() -> Scene:
    """A 96x128 striped image with a red ellipse: ``.image``, ``.mask``, ``.box``, ``.inside``."""
    return _synthetic_scene()


@contextlib.contextmanager
def capabilities_forced(**capabilities: bool) -> Iterator[None]:
    """Within the block, ``capabilities_forced(bf16=True, onednn_linear=False)`` forces those
    capabilities (through ``SEGMENTKIT_CAPABILITIES``, which subprocesses inherit); the others
    keep their values. Models resolve precision and probe fast paths when they load."""
    from ..capabilities import ENV, forced

    merged = {**forced(), **capabilities}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(ENV, ",".join(f"{name}={'on' if on else 'off'}" for name, on in merged.items()))
        yield


@pytest.fixture
def force_capabilities() -> Iterator[Callable[..., None]]:
    """``force_capabilities(bf16=False)`` forces capabilities until the test ends."""
    with contextlib.ExitStack() as stack:
        yield lambda **capabilities: stack.enter_context(capabilities_forced(**capabilities))


def require_native_bf16() -> None:
    """Skip the test where the CPU has no bf16 instructions: there ``precision="bf16"`` is refused
    (emulated bf16 is several times slower than fp32 and rounds differently)."""
    from ..capabilities import cpu_flags, cpu_native_bf16

    if not cpu_native_bf16():
        vector = "AVX-512" if "avx512f" in cpu_flags() else "AVX2"
        pytest.skip(f"this CPU ({vector}) has no AVX512-BF16 or AMX: bf16 paths are refused here, not run")


@pytest.fixture
def native_bf16() -> Iterator[None]:
    """For a test of a bf16 path: skipped where the CPU has no bf16 instructions; elsewhere
    ``precision="bf16"`` loads (the suite's conftest may turn bf16 off for ``auto``)."""
    require_native_bf16()
    with capabilities_forced(bf16=True):
        yield


@contextlib.contextmanager
def fast_paths_off() -> Iterator[None]:
    """Within the block, the capabilities of a CPU with neither bf16 nor a working fused oneDNN
    linear (an AMD Zen 3), on any machine: models loaded there take the public-op paths, ``auto``
    means fp32, and a call of torch's private oneDNN linear raises ``AssertionError``."""
    import torch

    def refused(*_: object, **__: object) -> None:
        raise AssertionError("torch.ops.mkldnn._linear_pointwise was called with the fast path forced off")

    refused.binary = refused  # type: ignore[attr-defined]
    with pytest.MonkeyPatch.context() as patch, capabilities_forced(bf16=False, onednn_linear=False):
        patch.setattr(torch.ops.mkldnn, "_linear_pointwise", refused, raising=False)
        yield


@pytest.fixture
def without_fast_paths() -> Iterator[None]:
    """:func:`fast_paths_off` for the whole test (fixtures of wider scope were set up before it)."""
    with fast_paths_off():
        yield
