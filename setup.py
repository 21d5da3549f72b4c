"""Build step of the core wheel: copy the npm package's modules into segmentkit/web/components.

`segmentkit serve`'s page is built on `@segmentkit/components` (packages/components/src).
The repository keeps one copy; the wheel (and the sdist, through MANIFEST.in) gets it here.
In a source checkout the server reads the folder itself (segmentkit.ipc.http.components_dir).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

COMPONENTS = Path(__file__).resolve().parent / "packages" / "components" / "src"


class BuildPyWithComponents(build_py):
    """build_py, then packages/components/src -> <build>/segmentkit/web/components."""

    def run(self) -> None:
        super().run()
        if not (COMPONENTS / "index.js").is_file():
            raise SystemExit(f"{COMPONENTS} is missing: the page's components cannot be packaged")
        target = Path(self.build_lib) / "segmentkit" / "web" / "components"
        shutil.copytree(COMPONENTS, target, dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithComponents})
