"""Resolve every distribution's own metadata against torch versions other than the test pin.

Library metadata must admit any torch in its declared range (a user's CUDA build, a newer
release); only requirements-test.txt pins the CPU build. pip resolves the core and every
plugin together with ``torch==V`` for each V below, without installing: V is a
metadata-only stand-in wheel, and everything else must already be installed (``--no-index``),
so the check is offline and takes seconds. A stray ``torch==2.13.0`` in a pyproject.toml
makes the resolution impossible and this script exit non-zero.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OTHER_TORCH = ("2.6.0", "2.14.1")  # the bottom of the declared range and a release newer than the pin


def stand_in_wheel(folder: Path, version: str) -> Path:
    """A torch wheel holding only metadata (no code, no dependencies)."""
    dist_info = f"torch-{version}.dist-info"
    path = folder / f"torch-{version}-py3-none-any.whl"
    files = {
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n",
        f"{dist_info}/WHEEL": ("Wheel-Version: 1.0\nGenerator: segmentkit-ci\n"
                               "Root-Is-Purelib: true\nTag: py3-none-any\n"),
    }
    files[f"{dist_info}/RECORD"] = "".join(f"{name},,\n" for name in [*files, f"{dist_info}/RECORD"])
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


def main() -> int:
    dists = [str(ROOT), *sorted(str(p.parent) for p in (ROOT / "plugins").glob("*/pyproject.toml"))]
    failed = []
    for version in OTHER_TORCH:
        with tempfile.TemporaryDirectory() as tmp:
            stand_in_wheel(Path(tmp), version)
            cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--no-index",
                   "--no-build-isolation", "--find-links", tmp, *dists, f"torch=={version}"]
            done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            failed.append(version)
            print(f"torch=={version}: the distributions' metadata does not resolve:\n{done.stderr[-3000:]}",
                  file=sys.stderr)
        else:
            print(f"torch=={version}: core and {len(dists) - 1} plugins resolve")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
