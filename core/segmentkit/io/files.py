"""Files named by someone else: open only regular files inside the allowed folders, capped
in size before reading; write secrets to a fresh private file, never through a link."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from ..errors import ImageError, ImageTooLargeError, PathDeniedError, SegmentkitError

Roots = Sequence[Path] | None  # None: anywhere


def check_inside(real: Path, roots: Roots, name: str) -> None:
    """Refuse the resolved path ``real`` unless it lies inside one of ``roots``."""
    if roots is not None and not any(real.is_relative_to(root) for root in roots):
        raise PathDeniedError(f"{name} resolves to {real}, outside the granted files and folders")


def open_input(path: str | Path, *, max_bytes: int, roots: Roots = None,
               error: type[SegmentkitError] = ImageError) -> BinaryIO:
    """Open ``path`` for reading after resolving it: a regular file inside ``roots`` of at
    most ``max_bytes``. A FIFO or a device is refused without blocking on it; other
    refusals raise ``error``."""
    name = str(path)
    try:
        real = Path(path).resolve(strict=True)
    except FileNotFoundError:
        raise error(f"{name}: no such file") from None
    except (OSError, RuntimeError, ValueError) as exc:  # a link loop, no permission, an unencodable name
        raise error(f"{name} cannot be opened: {exc}") from None
    check_inside(real, roots, name)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:  # a link swapped in after resolving, no permission
        raise error(f"{name} cannot be opened: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise error(f"{name} is a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{name} is not a regular file")
        if info.st_size == 0:
            raise error(f"{name} is empty (0 bytes)")
        if info.st_size > max_bytes:
            raise ImageTooLargeError(f"{name} is {info.st_size:,} bytes, over the {max_bytes:,} bytes an image "
                                     "within the pixel limit can need (--max-pixels / SEGMENTKIT_MAX_PIXELS)")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def write_private(path: str | Path, text: str) -> None:
    """Write ``text`` to a new file only the user can read (0600), then rename it over ``path``.

    An existing file is replaced, never reused with its old mode; a symbolic link at
    ``path`` is refused rather than followed.
    """
    path = Path(path)
    if path.is_symlink():
        raise SegmentkitError(f"{path} is a symbolic link; refusing to write a secret through it")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
