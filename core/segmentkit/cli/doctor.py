"""`segmentkit doctor`: this machine's CPU features, torch build, fast paths and auto precisions."""

from __future__ import annotations

from .app import app
from .common import JsonOpt, emit_json, guarded, stdout_console


@app.command("doctor")
@guarded
def doctor_command(json_out: JsonOpt = False) -> None:
    """Show the CPU and its features, the torch build, which fast paths run here and what
    precision 'auto' picks for each installed model."""
    from ..doctor import report
    from ..registry import default_registry

    found = report(default_registry())
    if json_out:
        emit_json(found)
        return
    from rich.table import Table

    cpu, torch_info = found["cpu"], found["torch"]
    console = stdout_console()
    features = " ".join(name for name, present in cpu["features"].items() if present) or "-"
    console.print(f"cpu: {cpu['model']} ({cpu['machine']}); features: {features}; "
                  f"native bf16: {'yes' if cpu['native_bf16'] else 'no'}", markup=False)
    if torch_info is None:
        console.print("torch: not installed (only numpy models run)", markup=False)
    else:
        console.print(f"torch {torch_info['version']}: {torch_info['cpu_capability']} kernels, "
                      f"{torch_info['threads']} threads, CUDA {torch_info['cuda'] or 'no'}, "
                      f"MPS {'yes' if torch_info['mps'] else 'no'}; auto device: {found['device']}", markup=False)
    if found["forced"]:
        console.print(f"forced by SEGMENTKIT_CAPABILITIES: {found['forced']}", markup=False)
    paths = Table(title="fast paths", title_justify="left")
    paths.add_column("path")
    paths.add_column("runs here")
    for name, runs in found["fast_paths"].items():
        paths.add_row(name, "yes" if runs else "no (public ops)")
    console.print(paths)
    models = Table(title="precision 'auto'", title_justify="left")
    for column in ("model", "precisions", "auto"):
        models.add_column(column)
    for model in found["models"]:
        models.add_row(model["id"], ", ".join(model["precisions"]), model["auto"])
    console.print(models)
