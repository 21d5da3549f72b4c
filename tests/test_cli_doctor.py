"""`segmentkit doctor`: CPU features, torch build, fast paths and what precision 'auto' picks."""

import json

from segmentkit import capabilities
from segmentkit.cli.app import load_commands
from segmentkit.cli.common import run_app


def doctor_json(capsys) -> dict:
    assert run_app(load_commands(), ["doctor", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_doctor_reports_this_machine(capsys):
    found = doctor_json(capsys)
    flags = capabilities.cpu_flags()
    assert found["cpu"]["features"] == {f: f in flags for f in capabilities.CPU_FLAGS_OF_INTEREST}
    assert found["cpu"]["native_bf16"] == ("avx512_bf16" in flags or "amx_bf16" in flags)
    assert found["torch"]["version"].startswith("2.") and found["device"] == "cpu"
    assert set(found["fast_paths"]) >= {"onednn_linear/float32", "onednn_linear/bfloat16", "bf16"}
    classic = next(m for m in found["models"] if m["id"] == "classic")
    assert classic == {"id": "classic", "precisions": ["fp32"], "auto": "fp32"}


def test_doctor_shows_auto_following_the_capabilities(capsys, force_capabilities):
    force_capabilities(bf16=True)
    found = doctor_json(capsys)
    assert found["forced"]["bf16"] is True and found["fast_paths"]["bf16"] is True
    autos = {m["id"]: m["auto"] for m in found["models"]}
    assert all(auto == ("bf16" if "bf16" in m["precisions"] else "fp32")
               for m, auto in zip(found["models"], autos.values()))
    assert "bf16" in autos.values(), "no installed model lists bf16: the test shows nothing"
    force_capabilities(bf16=False)
    assert {m["auto"] for m in doctor_json(capsys)["models"]} == {"fp32"}


def test_doctor_table(capsys):
    assert run_app(load_commands(), ["doctor"]) == 0
    out = capsys.readouterr().out
    assert "native bf16" in out and "onednn_linear/float32" in out and "precision 'auto'" in out
