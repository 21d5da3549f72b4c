"""Build every distribution, check the results, and run the README's first command from wheels.

1. ``python -m build`` (sdist, then the wheel from the sdist) for the core and every plugin.
2. ``twine check --strict`` on everything built.
3. The core wheel holds every file of ``core/segmentkit/web`` and ``core/segmentkit/samples``,
   and the ``@segmentkit/components`` modules (``packages/components/src``) in
   ``segmentkit/web/components``, where the page and ``segmentkit serve`` find them.
4. A fresh venv (``--system-site-packages`` for numpy, OpenCV, ...) gets the core and
   ``classic`` wheels (not editable; the check fails unless both import from the venv) and
   runs the segmentkit command of the README's first set-up command, which must write the
   files the README promises.

Run from anywhere: ``python .ci/check_wheels.py``. Exits non-zero naming what is wrong.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE_ASSETS = ("web", "samples")  # folders of core/segmentkit the core wheel must carry whole
COMPONENTS = ROOT / "packages" / "components" / "src"  # copied to segmentkit/web/components by setup.py
README_OUTPUTS = ("chelsea.overlay.png", "chelsea.mask-0.png", "chelsea.json")


def run(*cmd: str | Path, **kw) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return done


def build_all(out: Path) -> list[Path]:
    dists = [ROOT, *sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))]
    for folder in dists:
        run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, folder)
    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != len(dists) or len(list(out.glob("*.tar.gz"))) != len(dists):
        raise SystemExit(f"expected a wheel and an sdist for each of {len(dists)} distributions, got "
                         f"{sorted(p.name for p in out.iterdir())}")
    return wheels


def check_core_assets(wheel: Path) -> None:
    source = ROOT / "core" / "segmentkit"
    wanted = {
        path.relative_to(source.parent).as_posix()
        for folder in CORE_ASSETS for path in (source / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    } | {f"segmentkit/web/components/{path.relative_to(COMPONENTS).as_posix()}"
         for path in COMPONENTS.rglob("*") if path.is_file()}
    missing = sorted(wanted - set(zipfile.ZipFile(wheel).namelist()))
    if missing:
        raise SystemExit(f"{wheel.name} lacks {len(missing)} asset(s): {', '.join(missing)}")


def readme_command() -> str:
    """The segmentkit part of the README's first set-up command (after `pip install ... &&`)."""
    block = re.search(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text(), re.S)
    if block is None or "&&" not in block.group(1):
        raise SystemExit("README.md: the first ```bash block is not `pip install ... && segmentkit ...`")
    return block.group(1).split("&&", 1)[1].strip()


def run_readme_command_from_wheels(wheels: list[Path], tmp: Path) -> None:
    venv = tmp / "venv"
    run(sys.executable, "-m", "venv", "--system-site-packages", venv)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    chosen = [w for w in wheels if re.match(r"segmentkit(_classic)?-\d", w.name)]
    run(bin_dir / "python", "-m", "pip", "install", "--quiet", "--no-index", "--force-reinstall", "--no-deps",
        *chosen, env=env)
    where = run(bin_dir / "python", "-c",
                "import json, segmentkit, segmentkit_classic as c; "
                "print(json.dumps([segmentkit.__file__, c.__file__]))",
                env=env, cwd=tmp)
    for module_file in json.loads(where.stdout):
        if not Path(module_file).resolve().is_relative_to(venv.resolve()):
            raise SystemExit(f"the venv imports {module_file}, not the installed wheel")
    work = tmp / "readme"
    sample = work / "core" / "segmentkit" / "samples"
    sample.mkdir(parents=True)
    shutil.copy(ROOT / "core" / "segmentkit" / "samples" / "chelsea.png", sample)
    command = readme_command()
    run("bash", "-c", command, env=env, cwd=work)
    missing = [name for name in README_OUTPUTS if not (work / "out" / name).is_file()]
    if missing:
        raise SystemExit(f"`{command}` from the wheels did not write {', '.join(missing)}")
    if not json.loads((work / "out" / "chelsea.json").read_text())["masks"]:
        raise SystemExit(f"`{command}` from the wheels wrote no mask")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        wheels = build_all(tmp / "dist")
        run(sys.executable, "-m", "twine", "check", "--strict", *sorted((tmp / "dist").iterdir()))
        check_core_assets(next(w for w in wheels if w.name.startswith("segmentkit-")))
        run_readme_command_from_wheels(wheels, tmp)
        print(f"built and checked {len(wheels)} wheels; the README command ran from the wheels")
    return 0


if __name__ == "__main__":
    sys.exit(main())
