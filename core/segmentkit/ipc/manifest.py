"""App manifests and the grants they give: which models, which files, the camera.

A manifest is a JSON file::

    {"app": {"id": "com.example.photos", "name": "Photos"},
     "capabilities": {"models": ["classic", "sam2.1-hiera-tiny"],
                      "fs": {"user-selected": ["/home/me/Pictures/trip"]},
                      "device": {"camera": true}}}

``device`` may also sit at the top level. A manifest grants nothing it does not list:
no ``models`` means no model (``"*"`` means every installed one), no ``fs`` no file,
no ``camera`` no camera. Without any manifest the service runs as the unrestricted
``local`` app (for a host that spawns ``segmentkit serve --stdio`` itself).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import SegmentkitError, validation_details
from .errors import ErrorCode, rpc_error

ALL_MODELS = "*"


class ManifestError(SegmentkitError, ValueError):
    """An app manifest is missing, not JSON, or not a valid manifest."""

    code = "bad_manifest"


class AppInfo(BaseModel):
    """Who the app is; further fields (publisher, homepage, ...) are kept as given."""

    model_config = ConfigDict(extra="allow", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", description="Stable app id.")
    name: str = Field(default="", description="Name shown to people.")
    version: str = Field(default="", description="App version.")


class FsGrants(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    user_selected: tuple[str, ...] = Field(
        default=(), alias="user-selected", description="Files and folders the user picked."
    )


class DeviceGrants(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    camera: bool = Field(default=False, description="May send camera frames and open live sessions.")


class Capabilities(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: tuple[str, ...] = Field(default=(), description="Model ids (or aliases) the app may use; '*' = all.")
    fs: FsGrants = Field(default_factory=FsGrants)
    device: DeviceGrants = Field(default_factory=DeviceGrants)


class Manifest(BaseModel):
    """An app manifest as written by the app's developer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app: AppInfo
    capabilities: Capabilities = Field(default_factory=Capabilities)
    device: DeviceGrants | None = Field(default=None, description="Same as capabilities.device.")


@dataclass(frozen=True)
class App:
    """The grants one app runs with. ``None`` for models / roots means unrestricted."""

    id: str
    name: str = ""
    models: tuple[str, ...] | None = None
    roots: tuple[Path, ...] | None = None
    camera: bool = True

    @classmethod
    def local(cls) -> App:
        """The unrestricted app used when no manifest is given."""
        return cls(id="local", name="local (no manifest)")

    @classmethod
    def from_manifest(cls, manifest: Manifest, base_dir: Path | None = None) -> App:
        """Grants of ``manifest``; relative grant paths are taken from ``base_dir``."""
        caps = manifest.capabilities
        base = base_dir or Path.cwd()
        roots = tuple((base / p).resolve(strict=False) for p in caps.fs.user_selected)
        camera = caps.device.camera or bool(manifest.device and manifest.device.camera)
        models = None if ALL_MODELS in caps.models else tuple(caps.models)
        return cls(id=manifest.app.id, name=manifest.app.name, models=models, roots=roots, camera=camera)

    # ------------------------------------------------------------------ checks

    def allows_model(self, names: Iterable[str]) -> bool:
        """True if any of ``names`` (a model's id and aliases) is granted."""
        return self.models is None or any(n in self.models for n in names)

    def check_path(self, raw: str) -> Path:
        """The real path of ``raw`` if it lies inside a grant; else a ``path_denied`` error.

        Symlinks and ``..`` are resolved first, so neither can lead out of a grant. A
        path inside a grant that does not exist is a ``bad_image`` error; one outside is
        denied whether or not it exists.
        """
        path = Path(raw)
        if "\x00" in raw:
            raise rpc_error(ErrorCode.PATH_DENIED, "path contains a NUL byte")
        try:
            real: Path | None = path.resolve(strict=True)
        except FileNotFoundError:
            real = None
        except (OSError, RuntimeError) as exc:  # symlink loop, permission
            raise rpc_error(ErrorCode.PATH_DENIED, f"{raw}: cannot be resolved ({exc})", path=raw) from None
        target = real if real is not None else path.resolve(strict=False)
        if self.roots is not None and not any(target.is_relative_to(root) for root in self.roots):
            raise rpc_error(
                ErrorCode.PATH_DENIED,
                f"{raw} is outside the files and folders app {self.id!r} was granted "
                "(capabilities.fs.user-selected)", path=raw,
            )
        if real is None:
            raise rpc_error(ErrorCode.BAD_IMAGE, f"{raw}: no such file", path=raw)
        return real

    def check_camera(self, what: str) -> None:
        """Refuse ``what`` unless the app holds the ``device.camera`` grant."""
        if not self.camera:
            raise rpc_error(
                ErrorCode.CAMERA_DENIED, f"{what} needs the device.camera grant, which app {self.id!r} lacks"
            )


def load_manifest(path: str | Path) -> App:
    """Read and validate a manifest file; its relative grant paths are from its folder."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such manifest file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not a readable JSON manifest ({exc})") from None
    try:
        manifest = Manifest.model_validate(document)
    except ValidationError as exc:
        raise ManifestError(f"{path}: invalid app manifest: {validation_details(exc)}") from None
    return App.from_manifest(manifest, path.resolve().parent)


def apps_from_manifests(paths: Iterable[str | Path]) -> list[App]:
    """One :class:`App` per manifest, or the unrestricted local app when there is none."""
    apps = [load_manifest(p) for p in paths]
    ids = [a.id for a in apps]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ManifestError(f"two manifests declare the same app id: {', '.join(duplicates)}")
    return apps or [App.local()]
