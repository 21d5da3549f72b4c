"""Run every benchmark under ``bench/`` and print one table of the ratios they report.

Each script runs in its own subprocess (one after the other, so they do not compete for
the CPU); its full output goes to ``--log-dir``. Every line that reports a ratio against
the reference (``x1.23``, ``1.23x``) lands in the summary table, and every line that
reports how well a fast path agrees with its reference (mask IoU, equal pixels, matched
segments) lands in the agreement table below it: a fast path that disagrees is a bug. Last,
one line per speed goal (issues 19 and 29): the figure measured in this run, the goal, whether
it is reached, the fraction of the CPU's measured peak FLOP/s it amounts to (where the goal's
work per item is counted: see ``_machine.py``), and the agreement of the path that gave the
figure. ``--quick`` passes light settings to each script (fewer repetitions, smaller inputs).

    python bench/run_all.py [--quick] [--only sam2_fast_paths,batch] [--timeout 1800]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Light settings per script for --quick (every flag exists in that script's argparse).
QUICK: dict[str, list[str]] = {
    "sam2_fast_paths": ["--quick"],
    "sam2_encoder_stages": ["--reps", "1"],
    "sam2_image": ["--reps", "2", "--points-per-side", "8"],
    "sam2_video": ["--frames", "4", "--stream-frames", "100"],
    "edgetam": ["--reps", "1", "--frames", "3", "--track-reps", "1"],
    "fixed_label": ["--reps", "1", "--sizes", "640x480"],
    "eomt": ["--reps", "1", "--sizes", "640x480"],
    "batch": ["--images", "20"],
    "ipc_load": ["--requests", "100", "--clients", "2"],
    "serve_ray": ["--clicks", "2", "--reps", "2"],
}
RATIO = re.compile(r"(?:\bx\s?(\d+(?:\.\d+)?)\b|\b(\d+(?:\.\d+)?)\s?x\b)")
AGREEMENT = re.compile(r"IoU|agree|pixels equal|matched", re.IGNORECASE)
MS = re.compile(r"(\d+(?:\.\d+)?) ms")
RATE = re.compile(r"^\s*segmentkit (?:fp32|bf16)\s+(\d+(?:\.\d+)?)")  # frames/s, the first figure of the row
OURS_SECONDS = re.compile(r"\bours\s+(\d+(?:\.\d+)?)s\b")
PERCENT = re.compile(r"([+-]?\d+(?:\.\d+)?) %\s*$")


@dataclass(frozen=True)
class Goal:
    """A speed goal read from one script's output: the best of the lines matching ``lines``
    (highest ratio, lowest milliseconds when ``max_ms`` is set, or the percentage at the end of
    the line when ``max_percent`` is), with the agreement line
    of the path that gave it (the same line, or the first line matching ``agreement`` that
    names the path)."""

    name: str
    script: str
    lines: str
    min_ratio: float | None = None
    max_ms: float | None = None
    max_percent: float | None = None
    min_rate: float | None = None  # items per second (frames/s)
    agreement: str | None = None
    work: str | None = None  # key of _machine.py's GFLOP per item, for the fraction of peak

    def check(self, output: str, machine: dict | None = None) -> str:
        """``name: figure (goal) REACHED / not reached``, the fraction of peak, and the agreement
        line, for this run's output (``machine``: _machine.py's peak and work per item)."""
        rows = [" ".join(line.split()) for line in output.splitlines() if re.search(self.lines, line)]
        if not rows:
            return f"{self.name}: not measured in this run"
        seconds = None  # per item, for the fraction of peak
        if self.min_rate is not None:
            row = max(rows, key=lambda r: float(RATE.search(r).group(1)) if RATE.search(r) else 0.0)
            found = RATE.search(row)
            value = float(found.group(1)) if found else 0.0
            figure, reached = f"{value:.2f} /s (goal >= {self.min_rate:g} /s)", value >= self.min_rate
            seconds = 1 / value if value else None
        elif self.max_percent is not None:
            found = PERCENT.search(rows[-1])
            value = float(found.group(1)) if found else float("inf")
            row, figure, reached = (rows[-1], f"{value:+.1f} % (goal <= {self.max_percent:g} %)",
                                    value <= self.max_percent)
        elif self.max_ms is not None:
            row = min(rows, key=lambda r: float(MS.search(r).group(1)) if MS.search(r) else float("inf"))
            found = MS.search(row)
            value = float(found.group(1)) if found else float("inf")
            figure, reached = f"{value:.1f} ms (goal <= {self.max_ms:g} ms)", value <= self.max_ms
            seconds = value / 1000 if found else None
        else:
            row = max(rows, key=lambda r: max((_ratio(m) for m in RATIO.finditer(r)), default=0.0))
            value = max((_ratio(m) for m in RATIO.finditer(row)), default=0.0)
            figure, reached = f"x{value:.2f} (goal >= x{self.min_ratio:g})", value >= (self.min_ratio or 0)
            found = OURS_SECONDS.search(row)
            seconds = float(found.group(1)) if found else None
        agreement = row
        if self.agreement:
            path = re.search(r"ours [\w ]*?(?:fp32|bf16)", row)
            candidates = [" ".join(line.split()) for line in output.splitlines() if re.search(self.agreement, line)]
            named = [c for c in candidates if path and path.group(0) in c]
            agreement = (named or candidates or ["(no agreement line)"])[0]
        verdict = "REACHED" if reached else "not reached"
        return (f"{self.name}: {figure} {verdict}{self._of_peak(row, seconds, machine)}\n    from: {row[:120]}"
                f"\n    agreement: {agreement[:140]}")

    def _of_peak(self, row: str, seconds: float | None, machine: dict | None) -> str:
        if not (self.work and seconds and machine):
            return ""
        gflop = machine["gflop_per_item"].get(self.work)
        peak = machine["peak_gflops"].get("bf16" if "bf16" in row else "fp32")
        if not (gflop and peak):
            return ""
        rate = gflop / seconds
        return f"; {gflop:.1f} GFLOP/item = {rate:.0f} GFLOP/s, {rate / peak:.0%} of the measured peak ({peak:.0f})"


def _ratio(match: re.Match[str]) -> float:
    return float(match.group(1) or match.group(2))


GOALS = (
    Goal("SAM 2.1-tiny encoder 1024^2 vs transformers", "sam2_fast_paths", r"^\s*encoder ours", min_ratio=3,
         agreement=r"mask IoU min|mask IoU ours fp32"),
    Goal("a click on a cached SAM 2 embedding (issue 29)", "sam2_fast_paths", r"^\s*decode ours", max_ms=15,
         agreement=r"mask IoU min|mask IoU ours fp32", work="sam2 click"),
    Goal("Mask2Former swin-t panoptic 640x480 vs pipeline", "fixed_label", r"^mask2former-t\s+640x480", min_ratio=1.5,
         work="mask2former panoptic 640x480"),
    Goal("Mask2Former swin-t panoptic 1920x1080 vs pipeline", "fixed_label", r"^mask2former-t\s+1920x1080",
         min_ratio=1.5, work="mask2former panoptic 1920x1080"),
    Goal("SegFormer-b0 1920x1080 vs pipeline (best runtime)", "fixed_label", r"^segformer-b0\s+1920x1080", min_ratio=5),
    Goal("EoMT-L panoptic 640x480 vs pipeline (best precision)", "eomt", r"^eomt-l\s+640x480\s+ours", min_ratio=1.5),
    Goal("automatic masks 32x32 vs transformers' mask-generation", "sam2_image", r"^automatic masks \(32x32",
         min_ratio=5, agreement=r"best-match IoU"),
    Goal("SAM 2 video tracking frames/s vs transformers (issue 16)", "sam2_video",
         r"^segmentkit (fp32|bf16)\s", min_ratio=2),  # not the 3-memory-frame row: it trades masks for speed
    Goal("SAM 2 stream RSS growth (issue 16)", "sam2_video", r"^segmentkit: .* frames/s, growth", max_percent=5),
    Goal("EdgeTAM image encoder 1024^2 vs transformers (issue 17)", "edgetam", r"^image encoder", min_ratio=1.5,
         agreement=r"mask IoU ours"),
    Goal("EdgeTAM tracking frames/s at 1024 vs transformers (issue 17)", "edgetam", r"^segmentkit (fp32|bf16)\s",
         min_ratio=1.5),
    Goal("EdgeTAM tracking at 1024, frames/s (issue 29; 2 Zen 4 cores)", "edgetam", r"^segmentkit (fp32|bf16)\s",
         min_rate=3, work="edgetam tracked frame"),
)


def scripts() -> list[str]:
    """Benchmark scripts in this folder (every ``*.py`` but this one and private modules)."""
    return sorted(p.stem for p in HERE.glob("*.py") if p.stem != "run_all" and not p.stem.startswith("_"))


def ratio_lines(output: str) -> list[tuple[str, str]]:
    """(label, ratio) for each output line that reports a ratio."""
    rows = []
    for line in output.splitlines():
        match = RATIO.search(line)
        if match:
            rows.append((" ".join(line.split())[:90], match.group(1) or match.group(2)))
    return rows


def agreement_lines(output: str) -> list[str]:
    """Output lines that report agreement with a reference."""
    return [" ".join(line.split())[:140] for line in output.splitlines() if AGREEMENT.search(line)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="light settings for every script")
    parser.add_argument("--only", default="", help="comma-separated script names (default: all)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per script")
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp/segmentkit-bench-logs"))
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n] or scripts()
    args.log_dir.mkdir(parents=True, exist_ok=True)
    summary: list[tuple[str, str, str]] = []
    agreement: list[tuple[str, str]] = []
    outputs: dict[str, str] = {}
    for name in names:
        cmd = [sys.executable, str(HERE / f"{name}.py"), *(QUICK.get(name, []) if args.quick else [])]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=False)
            output, status = proc.stdout + proc.stderr, ("ok" if proc.returncode == 0 else f"exit {proc.returncode}")
        except subprocess.TimeoutExpired as exc:
            output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            status = f"timeout {args.timeout:.0f} s"
        log = args.log_dir / f"{name}.log"
        log.write_text(output, encoding="utf-8")
        outputs[name] = output
        rows = ratio_lines(output)
        print(f"   {status} in {time.perf_counter() - start:.0f} s, {len(rows)} ratios, log {log}", flush=True)
        summary += [(name, label, ratio) for label, ratio in rows] or [(name, f"(no ratio: {status})", "-")]
        agreement += [(name, line) for line in agreement_lines(output)]
    cpu = next((line for line in _lscpu().splitlines() if line.startswith("Model name")), "Model name: ?")
    print(f"\n{cpu.split(':', 1)[1].strip()}")
    print(f"{'script':<16} {'ratio':>7}  line")
    for name, label, ratio in summary:
        print(f"{name:<16} {ratio:>7}  {label}")
    print(f"\n{'script':<16} agreement with the reference")
    for name, line in agreement:
        print(f"{name:<16} {line}")
    machine = measure_machine(args.timeout)
    if machine:
        print(f"\nmeasured peak ({machine['threads']} threads, best 2048^3 torch.mm): "
              + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in machine["peak_gflops"].items()))
    print(f"\nspeed goals (load average now {' '.join(Path('/proc/loadavg').read_text().split()[:3])})")
    for goal in GOALS:
        print(goal.check(outputs.get(goal.script, ""), machine))


def measure_machine(timeout: float) -> dict | None:
    """_machine.py's JSON (peak FLOP/s, GFLOP per goal item), or None where it failed."""
    try:
        proc = subprocess.run([sys.executable, str(HERE / "_machine.py")], capture_output=True, text=True,
                              timeout=timeout, check=True)
        return json.loads(proc.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError) as exc:
        print(f"\n(no fraction of peak: bench/_machine.py failed: {exc})")
        return None


def _lscpu() -> str:
    try:
        return subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


if __name__ == "__main__":
    main()
