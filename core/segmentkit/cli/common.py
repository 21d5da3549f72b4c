"""What every `segmentkit` command shares: the error boundary, option types, prompt parsing,
model loading and output helpers.

Commands reuse these so that every command fails the same way (exit 2 and one line
``error: ...`` on stderr for bad input, exit 1 plus a ``SEGMENTKIT_DEBUG=1`` hint for bugs)
and spells its options the same way. Nothing here imports torch, Pillow or a plugin.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import math
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import ValidationError

from ..errors import BUG_EXIT, USAGE_EXIT, PromptError, SegmentkitError, classify, validation_details

F = TypeVar("F", bound=Callable[..., Any])

DEBUG_ENV = "SEGMENTKIT_DEBUG"

# --------------------------------------------------------------------------- error boundary


def debug() -> bool:
    """True when ``SEGMENTKIT_DEBUG`` asks for tracebacks."""
    return os.environ.get(DEBUG_ENV, "").lower() not in ("", "0", "false", "no")


def one_line(text: str) -> str:
    """Collapse a message onto one line (newlines and runs of spaces become one space)."""
    return " ".join(str(text).split())


def fail(message: str, code: int = USAGE_EXIT) -> typer.Exit:
    """Print ``error: message`` on stderr and return the ``typer.Exit`` to raise."""
    sys.stderr.write(f"error: {one_line(message)}\n")
    sys.stderr.flush()
    return typer.Exit(code)


def describe(exc: BaseException) -> tuple[int, str]:
    """Exit code and one-line message for an exception escaping a command."""
    if isinstance(exc, SegmentkitError):  # a plugin's fault exits 1, the user's 2 (errors.FAILURES)
        return classify(exc)[1], str(exc) or type(exc).__name__
    if isinstance(exc, ValidationError):
        return USAGE_EXIT, f"invalid {exc.title}: {validation_details(exc)}"
    if _is_usage_error(exc):  # bad option, missing argument, no such command
        return USAGE_EXIT, str(exc.format_message() or "").replace("Value error, ", "")  # type: ignore[attr-defined]
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError,
                        FileExistsError)):
        where = f"{exc.filename}: " if exc.filename else ""
        return USAGE_EXIT, f"{where}{exc.strerror or exc}"
    name = type(exc).__name__
    return BUG_EXIT, f"unexpected {name}: {exc} (set {DEBUG_ENV}=1 to see the traceback)"


def _is_usage_error(exc: BaseException) -> bool:
    # typer vendors click (its ClickException subclasses typer.TyperException); older typer
    # releases raise click's own exceptions, which exist only if click was imported.
    if isinstance(exc, typer.TyperException):
        return True
    click = sys.modules.get("click")
    return click is not None and isinstance(exc, click.ClickException)


@contextlib.contextmanager
def error_boundary() -> Iterator[None]:
    """Turn exceptions into an exit code and one line on stderr; never a traceback.

    ``SegmentkitError``, pydantic ``ValidationError``, usage errors (bad option, missing
    argument) and missing files exit 2; a ``PluginError`` (a plugin's fault, named) exits 1;
    anything else exits 1 with a hint to set ``SEGMENTKIT_DEBUG=1``, which also prints the
    traceback. ``typer.Exit`` passes through.
    """
    try:
        yield
    except (typer.Exit, SystemExit):
        raise
    except KeyboardInterrupt:
        sys.stderr.write("error: interrupted\n")
        raise typer.Exit(130) from None
    except typer.Abort:
        sys.stderr.write("error: aborted\n")
        raise typer.Exit(BUG_EXIT) from None
    except BrokenPipeError:  # `segmentkit models | head`
        with contextlib.suppress(Exception):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        raise typer.Exit(BUG_EXIT) from None
    except Exception as exc:
        if debug():
            traceback.print_exception(exc, file=sys.stderr)
        code, message = describe(exc)
        if not message.strip():  # e.g. no command given: the usage text was printed already
            raise typer.Exit(code) from None
        raise fail(message, code) from None


def guarded(command: F) -> F:
    """Decorator: run a command inside :func:`error_boundary` (works under CliRunner too)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with error_boundary():
            return command(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = one_line(record.getMessage())
        if record.exc_info and debug():
            text += "\n" + self.formatException(record.exc_info)
        return f"{record.levelname.lower()}: {text}"


# Third-party progress bars and chatter (transformers' "Loading weights" bar, the hub's download
# bars, transformers' advisory warnings): the CLI shows only its own progress display.
_THIRD_PARTY_QUIET = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TRANSFORMERS_VERBOSITY": "error",
                      "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
_quiet = False


def setup_logging(quiet: bool = False) -> None:
    """Log records as one ``warning: ...`` line each on stderr (everything with SEGMENTKIT_DEBUG=1;
    errors only with ``quiet``); third-party progress bars and warnings off unless debugging."""
    global _quiet
    _quiet = quiet
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug() else logging.ERROR if quiet else logging.WARNING)
    if not debug():
        _silence_third_party()


def _silence_third_party() -> None:
    for name, value in _THIRD_PARTY_QUIET.items():
        os.environ.setdefault(name, value)
    if "huggingface_hub" in sys.modules:  # imported before the variables were set
        importlib.import_module("huggingface_hub.utils").disable_progress_bars()
    if "transformers" in sys.modules:
        hf_logging = importlib.import_module("transformers.utils.logging")
        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


def run_app(app: typer.Typer, args: Sequence[str] | None = None) -> int:
    """Run ``app`` behind the error boundary (parse errors included); return the exit code."""
    setup_logging()
    try:
        with error_boundary():
            result = app(args=args, standalone_mode=False, prog_name="segmentkit")
    except typer.Exit as exc:
        return int(exc.exit_code)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else BUG_EXIT)
    return result if isinstance(result, int) else 0


# --------------------------------------------------------------------------- common options

ModelOpt = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Model id or alias (default: the registry default, `classic`)."),
]
WeightsOpt = Annotated[
    Path | None,
    typer.Option("--weights", metavar="DIR", exists=True, file_okay=False,
                 help="Local checkpoint directory instead of the hub cache."),
]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="auto (the default: CUDA, else MPS, else CPU), cpu, cuda, cuda:1, ...")
]
RuntimeOpt = Annotated[
    Literal["torch", "onnxruntime", "numpy"] | None,
    typer.Option("--runtime", help="Runtime (default: the model card's first)."),
]
PrecisionOpt = Annotated[
    Literal["auto", "fp32", "bf16", "int8"] | None,
    typer.Option("--precision", help="auto (the default: bf16 where the device computes it natively and the "
                                     "model lists it, else fp32), fp32, bf16, int8."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", metavar="DIR", file_okay=False,
                 help="Write overlay, masks and JSON per image into DIR."),
]

OptionOpt = Annotated[
    list[str] | None,
    typer.Option("--option", "-O", metavar="KEY=VALUE",
                 help="A model-specific option (repeatable), e.g. -O points_per_side=16; "
                      "values are read as JSON when they parse, else as text."),
]


def parse_model_options(pairs: Sequence[str] | None) -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``; the model's options class validates them."""
    parsed: dict[str, Any] = {}
    for pair in pairs or ():
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--option takes KEY=VALUE, got {pair!r}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        parsed[key.strip().replace("-", "_")] = value
    return parsed


def load_options(
    *, weights: Path | None = None, device: str | None = None, runtime: str | None = None,
    precision: str | None = None, option: Sequence[str] | None = None, **extra: Any,
) -> dict[str, Any]:
    """``registry.load`` keyword options from the common flags: only those the user set."""
    given = {"weights": weights, "device": device, "runtime": runtime, "precision": precision,
             **parse_model_options(option), **extra}
    return {key: value for key, value in given.items() if value is not None}


def load_model(model_id: str | None, role: str, *, task: str | None = None, objects: Sequence[Any] = (),
               **options: Any) -> Any:
    """Plan the request (task, prompt kinds, options checked), then load the model from the default registry."""
    from ..registry import default_registry

    registry = default_registry()
    return registry.load(registry.plan(model_id, role, task=task, objects=objects, **options))


# --------------------------------------------------------------------------- prompt parsing

_FRAME = re.compile(r"^\s*(-?\d+)\s*:(.*)$")


def parse_numbers(text: str, count: int, what: str) -> tuple[float, ...]:
    """``"1,2"`` -> ``(1.0, 2.0)``; exactly ``count`` finite numbers or :class:`PromptError`."""
    parts = [p.strip() for p in str(text).split(",")]
    shape = ",".join("XY"[i % 2] + (str(i // 2) if count > 2 else "") for i in range(count))
    if len(parts) != count:
        raise PromptError(f"{what} {text!r} must be {count} comma-separated numbers ({shape})")
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise PromptError(f"{what} {text!r} must be {count} comma-separated numbers ({shape})") from None
    if not all(math.isfinite(v) for v in values):
        raise PromptError(f"{what} {text!r} has a coordinate that is not a finite number")
    return values


def parse_point(text: str, positive: bool = True) -> Any:
    """``"X,Y"`` -> :class:`~segmentkit.types.Point` (``positive=False`` for ``--neg``)."""
    from ..types import Point

    x, y = parse_numbers(text, 2, "--point" if positive else "--neg")
    return Point(x, y, positive=positive)


def parse_box(text: str) -> Any:
    """``"X0,Y0,X1,Y1"`` -> :class:`~segmentkit.types.Box` (x0 < x1 and y0 < y1 required)."""
    from ..types import Box

    return Box(*parse_numbers(text, 4, "--box"))


def split_frame(text: str, default: int | None = None) -> tuple[int, str]:
    """``"F:rest"`` -> ``(F, "rest")``; without a prefix ``default`` or :class:`PromptError`."""
    match = _FRAME.match(str(text))
    if match:
        frame = int(match.group(1))
        if frame < 0:
            raise PromptError(f"frame index in {text!r} must be >= 0")
        return frame, match.group(2)
    if default is None:
        raise PromptError(f"{text!r} needs a frame prefix, e.g. 0:{text}")
    return default, str(text)


# --------------------------------------------------------------------------- outputs


def output_dir(path: Path) -> Path:
    """Create ``path`` (and parents) for writing; a clear error if it is a file."""
    if path.exists() and not path.is_dir():
        raise FileExistsError(17, "exists and is not a directory", str(path))
    path.mkdir(parents=True, exist_ok=True)
    return path


def unique_stems(paths: Sequence[Path]) -> list[str]:
    """Output stems for input files: the file stem, suffixed ``-2``, ``-3`` on collisions."""
    seen: dict[str, int] = {}
    stems = []
    for path in paths:
        stem = Path(path).stem or "image"
        count = seen.get(stem, 0) + 1
        seen[stem] = count
        stems.append(stem if count == 1 else f"{stem}-{count}")
    return stems


def emit_json(document: Any) -> None:
    """Write one JSON document on one line of stdout (JSON Lines when called repeatedly)."""
    sys.stdout.write(json.dumps(document, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def stdout_console() -> Any:
    """A rich console on stdout; wide when piped, so tables are not folded at 80 columns."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200)


def stderr_console() -> Any:
    """A rich console on stderr, for progress and notes that must not pollute stdout (silent
    with ``segmentkit --quiet``; errors are written apart, by :func:`fail`)."""
    from rich.console import Console

    return Console(stderr=True, quiet=_quiet)


@contextlib.contextmanager
def progress(total: int, description: str, enabled: bool = True,
             unit: str = "items") -> Iterator[Callable[[], None]]:
    """A rich progress bar on stderr (done/total, ``unit``/s, ETA); yields ``advance()``.

    Disabled for a single item.
    """
    if not enabled or total <= 1:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    rate = TextColumn(f"{{task.fields[rate]}} {unit}/s")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), rate,
                  TimeRemainingColumn(), console=stderr_console(), transient=True) as bar:
        task = bar.add_task(description, total=total, rate="-")

        def advance() -> None:
            bar.advance(task)
            speed = bar.tasks[0].speed
            bar.update(task, rate="-" if speed is None else f"{speed:.2f}")

        yield advance


def check_inputs(paths: Sequence[Path]) -> None:
    """Fail early, before a model loads, if an input file is missing or a directory."""
    from ..errors import ImageError

    for path in paths:
        if not path.exists():
            raise ImageError(f"{path}: no such file")
        if path.is_dir():
            raise ImageError(f"{path} is a directory, not an image")


def choose_formats(text: str, media: str = "image") -> list[Any]:
    """``"png,json"`` -> the output formats of that name (built-in or from plugins); unknown -> exit 2."""
    from ..formats import choose
    from ..registry import default_registry

    return choose(str(text).split(","), media, default_registry())  # type: ignore[arg-type]


def deliver(document: Any, *, stem: str, image: Any, result: Any, out: Path | None,
            formats: Sequence[Any], json_out: bool) -> None:
    """Write one image's outputs into ``out`` (if set) in ``formats``, then print JSON or a table."""
    from ..formats import Target, write

    doc = document.dump()
    written = [] if out is None else write(Target(out, stem, result, doc, image), formats)
    if json_out:
        emit_json(doc)
    elif not _quiet:  # --quiet: the files are the output
        print_summary(doc, written)


def print_summary(document: dict[str, Any], written: Sequence[Path]) -> None:
    """A rich table of one result's masks (label, score, area, box) and the files written."""
    from rich.table import Table

    image = document["image"]
    console = stdout_console()
    console.print(f"{image.get('path', 'image')} ({image['width']}x{image['height']}): "
                  f"{len(document['masks'])} mask(s), {document['kind']}", soft_wrap=True, highlight=False)
    table = Table()
    for column in ("#", "label", "score", "area", "box (x0,y0,x1,y1)"):
        table.add_column(column, justify="right" if column in ("#", "score", "area") else "left")
    for mask in document["masks"]:
        label = mask["label"] or (f"object {mask['object_id']}" if mask["object_id"] is not None else "-")
        score = "-" if mask["score"] is None else f"{mask['score']:.3f}"
        box = ",".join(f"{v:g}" for v in mask["bbox"])
        table.add_row(str(mask["index"]), label, score, str(mask["area"]), box)
    console.print(table)
    if written:
        console.print(f"wrote {len(written)} file(s): " + ", ".join(str(p) for p in written), soft_wrap=True)
    else:
        console.print("(pass --out DIR to write the overlay, masks and JSON)")
