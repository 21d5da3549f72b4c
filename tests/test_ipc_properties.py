"""Property-based: whatever arrives, the service answers with a valid JSON-RPC message in time.

Hypothesis generates envelopes (any JSON value, any unicode including lone surrogates,
batches, numbers JSON cannot hold), every method's params (wrong types, extremes,
huge lists, plausible values that reach the handlers), mask RLE strings and image
bytes. Every answer must be a well-formed response (or none, for a valid
notification), keep the request's id, encode as UTF-8, never be an internal error,
and come within a deadline; the service must still answer afterwards. The examples are
bounded and derandomized so the suite takes well under a minute on a loaded 2-core CI.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import subprocess
from collections import Counter
from typing import Any

import numpy as np
import pytest
import test_ipc_support as support  # registered by tests/conftest.py
from segmentkit.ipc.errors import ErrorCode
from segmentkit.ipc.protocol import dumps
from segmentkit.ipc.schemas import METHODS

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402 - after importorskip: skip, not error, without it
from hypothesis import strategies as st  # noqa: E402 - after importorskip: skip, not error, without it

ipc = support.load_sibling("test_ipc_service")

DEADLINE_S = 60.0  # generous: the machine is shared; a stall is minutes, not seconds
BOUNDED = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                          HealthCheck.function_scoped_fixture])


def _png(image: np.ndarray, fmt: str = "PNG") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


PNG = _png(ipc.SCENE.image)
JPEG = _png(ipc.SCENE.image, "JPEG")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("properties")
    granted = tmp / "granted"
    support.save_png(granted / "in.png", ipc.SCENE.image)
    support.write_frames(granted / "clip", count=3)
    (tmp / "outside.png").write_bytes(PNG)
    manifest = support.write_manifest(tmp / "app.json", "com.example.fuzz", ["toy"], [granted], True)
    app = ipc.load_manifest(manifest)
    service = ipc.make_service([app], max_request_bytes=2**20, request_timeout_s=DEADLINE_S)
    sessions = [ipc.result(ipc.run(ipc.call(service, "vision.segment_video_start",
                                            {"source": {"path": str(granted / "clip")}}, app=app)))["session"]
                for _ in range(2)]
    # "session" is for the fuzzer (which may close it); "rle_session" only takes mask prompts
    return {"service": service, "app": app, "granted": granted, "tmp": tmp, "session": sessions[0],
            "rle_session": sessions[1]}


# --------------------------------------------------------------------------- strategies

any_text = st.text(st.characters() | st.characters(categories=["Cs"]), max_size=40)  # lone surrogates too
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63), 1e308, -0.0, 5e-324]), any_text,
)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(any_text, inner,
                                                                                                max_size=5),
                           max_leaves=20)
ids = st.one_of(st.integers(-(2**64), 2**64), any_text, st.none(), st.booleans(), st.floats(allow_nan=False),
                st.lists(st.integers(), max_size=2))
numbers = st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=False, allow_infinity=False),
                    st.sampled_from([0, 1, 17.5, 47.9, 48, 64, -1, 1e308]))
# Numbers Python's JSON reads but no field may take (inf, -inf, a 30-digit int).
RAW_NUMBERS = ["1e999", "-1e999", "1e-999", "123456789012345678901234567890", "-0"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@st.composite
def image_bytes(draw: Any) -> bytes:
    """Valid images, random bytes, and valid images truncated or with bytes flipped."""
    base = draw(st.sampled_from([PNG, JPEG]))
    kind = draw(st.sampled_from(["valid", "random", "truncated", "flipped"]))
    if kind == "valid":
        return base
    if kind == "random":
        return draw(st.binary(max_size=300))
    if kind == "truncated":
        return base[: draw(st.integers(0, len(base)))]
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    return bytes(data)


def images(world: dict[str, Any]) -> st.SearchStrategy[Any]:
    granted, tmp = world["granted"], world["tmp"]
    paths = [str(granted / "in.png"), str(granted / "clip"), str(tmp / "outside.png"), str(granted / ".."),
             "/dev/zero", "/proc/self/mem", str(granted / "nope.png"), ""]
    return st.one_of(
        st.builds(lambda b: {"base64": _b64(b)}, image_bytes()),
        st.builds(lambda b: {"camera": _b64(b)}, image_bytes()),
        st.builds(lambda p: {"path": p}, st.sampled_from(paths) | any_text),
        st.builds(lambda b: {"base64": "data:image/png;base64," + b}, any_text),
        json_values,
    )


rle_counts = st.one_of(
    st.text(st.characters(min_codepoint=0, max_codepoint=130), max_size=300),
    st.text(st.sampled_from("0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmno"), max_size=3000),
    st.lists(st.integers(-(2**64), 2**64), max_size=50), st.lists(st.integers(0, 3072), max_size=3000),
)
rles = st.fixed_dictionaries({"size": st.one_of(st.just([48, 64]), st.lists(numbers, max_size=3), json_values),
                              "counts": rle_counts})


def field_values(world: dict[str, Any]) -> dict[str, st.SearchStrategy[Any]]:
    """Plausible values per param name, to get past validation into the handlers."""
    point = st.fixed_dictionaries({"x": numbers, "y": numbers}, optional={"positive": scalars})
    return {
        "image": images(world),
        "point": point | json_values,
        "points": st.lists(point, max_size=1100) | json_values,  # the limit is 1024
        "box": st.fixed_dictionaries({"x0": numbers, "y0": numbers, "x1": numbers, "y1": numbers}) | json_values,
        "mask": rles | json_values,
        "session": st.sampled_from([world["session"], "nope"]) | any_text,
        "source": st.builds(lambda p: {"path": p}, st.sampled_from([str(world["granted"] / "clip"),
                                                                   str(world["tmp"]), "/dev/zero"])) | json_values,
        "model": st.sampled_from(["toy", "toy-color", "classic", ""]) | any_text,
        "role": st.sampled_from(["prompter", "segmenter", "tracker"]) | any_text,
        "task": st.sampled_from(["semantic", "track", "prompt"]) | any_text,
    }


def params_for(world: dict[str, Any], method: str) -> st.SearchStrategy[Any]:
    model = METHODS[method][0]
    known = field_values(world)
    optional = {name: st.one_of(known.get(name, scalars), json_values) for name in model.model_fields}
    return st.one_of(st.fixed_dictionaries({}, optional=optional), json_values)


# --------------------------------------------------------------------------- the properties


def _check_one(answer: Any) -> None:
    assert isinstance(answer, dict) and answer.get("jsonrpc") == "2.0", answer
    assert set(answer) in ({"jsonrpc", "id", "result"}, {"jsonrpc", "id", "error"}), answer
    if "error" in answer:
        error = answer["error"]
        assert isinstance(error["code"], int) and isinstance(error["message"], str) and error["message"]
        assert error["code"] != ErrorCode.INTERNAL_ERROR, error


def _valid_id(value: Any) -> bool:
    return value is None or isinstance(value, str) or (type(value) in (int, float) and abs(value) < float("inf"))


def exchange(world: dict[str, Any], raw: str, message: Any = None) -> Any:
    """Send ``raw``; check the answer is a valid response that keeps every request's id; return it."""
    service, app = world["service"], world["app"]
    answer = ipc.run(asyncio.wait_for(service.handle(raw, app), DEADLINE_S + 30))
    if answer is not None:
        json.loads(dumps(answer).encode("utf-8"))  # sendable on every transport
        for one in answer if isinstance(answer, list) else [answer]:
            _check_one(one)
        assert not (isinstance(answer, list) and not answer)
    members = message if isinstance(message, list) and 0 < len(message) <= 32 else [message]
    wanted = Counter(json.dumps(m["id"] if "id" in m and _valid_id(m["id"]) else None) for m in members
                     if isinstance(m, dict) and ("id" in m or not _notification(m)))
    got = Counter(json.dumps(a["id"]) for a in (answer if isinstance(answer, list) else [answer] if answer else []))
    assert not wanted - got, (wanted, got)
    return answer


def _notification(m: dict[str, Any]) -> bool:
    """A valid JSON-RPC notification (no answer due), as opposed to an invalid request."""
    return m.get("jsonrpc") == "2.0" and isinstance(m.get("method"), str) and set(m) <= {"jsonrpc", "method", "params"}


def still_up(world: dict[str, Any]) -> None:
    answer = ipc.run(ipc.call(world["service"], "vision.models", {}, app=world["app"]))
    assert [m["card"]["id"] for m in ipc.result(answer)["models"]] == ["toy-color"]


def message(method: Any, params: Any, request_id: Any, has_id: bool) -> dict[str, Any]:
    out = {"jsonrpc": "2.0", "method": method, "params": params}
    if has_id:
        out["id"] = request_id
    return out


@BOUNDED
@given(value=json_values | st.lists(json_values, max_size=40))
def test_any_json_value_is_answered(world: dict[str, Any], value: Any) -> None:
    exchange(world, json.dumps(value), value)
    still_up(world)


@BOUNDED
@given(text=any_text | st.binary(max_size=100).map(lambda b: b.decode("latin-1")),
       raw=st.sampled_from(RAW_NUMBERS))
def test_any_text_and_raw_numbers_are_answered(world: dict[str, Any], text: str, raw: str) -> None:
    answer = exchange(world, text)
    assert answer is None or "error" in answer or isinstance(answer, list)
    for template in ('{"jsonrpc": "2.0", "id": 1, "method": "vision.segment_video_propagate", '
                     '"params": {"session": "s", "max_frames": %s}}', '{"jsonrpc": "2.0", "id": %s, "method": 1}'):
        answer = exchange(world, template % raw)
        assert "error" in answer
    still_up(world)


@BOUNDED
@given(data=st.data())
def test_every_method_answers_any_params(world: dict[str, Any], data: Any) -> None:
    method = data.draw(st.sampled_from(sorted(METHODS)) | any_text, label="method")
    params = data.draw(params_for(world, method) if method in METHODS else json_values, label="params")
    request = message(method, params, data.draw(ids, label="id"), data.draw(st.booleans(), label="has id"))
    exchange(world, json.dumps(request), request)


@BOUNDED
@given(batch=st.lists(st.builds(message, st.sampled_from(sorted(METHODS)) | any_text, json_values, ids,
                                st.booleans()) | json_values, min_size=1, max_size=40))
def test_batches_answer_every_member(world: dict[str, Any], batch: list[Any]) -> None:
    exchange(world, json.dumps(batch), batch)


@BOUNDED
@given(mask=rles)
def test_rle_prompts_are_answered(world: dict[str, Any], mask: dict[str, Any]) -> None:
    params = {"session": world["rle_session"], "frame": 0, "object_id": 1, "mask": mask}
    answer = exchange(world, json.dumps({"jsonrpc": "2.0", "id": 1, "method": "vision.segment_video_add_prompt",
                                         "params": params}))
    if "error" in answer:
        assert answer["error"]["code"] in (ErrorCode.BAD_PROMPT, ErrorCode.INVALID_PARAMS)


@BOUNDED
@given(data=image_bytes(), method=st.sampled_from(["vision.segment", "vision.mask_from_prompt"]))
def test_image_bytes_are_answered(world: dict[str, Any], data: bytes, method: str) -> None:
    params: dict[str, Any] = {"image": {"base64": _b64(data)}}
    if method == "vision.mask_from_prompt":
        params["point"] = {"x": 17, "y": 20}
    answer = exchange(world, json.dumps({"jsonrpc": "2.0", "id": 2, "method": method, "params": params}))
    if "error" in answer:
        assert answer["error"]["code"] in (ErrorCode.BAD_IMAGE, ErrorCode.IMAGE_TOO_LARGE) or data == b"", answer
    still_up(world)


@settings(max_examples=2, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(values=st.lists(json_values | st.builds(message, st.sampled_from(sorted(METHODS)) | any_text, json_values,
                                               ids, st.booleans()), min_size=1, max_size=25))
def test_every_parsed_line_is_answered_over_stdio(values: list[Any]) -> None:
    """The same envelopes through a real ``serve --stdio`` process, one line each."""
    lines = [json.dumps(v).encode() + b"\n" for v in values]
    proc = subprocess.run(support.serve_cmd("--stdio"), input=b"".join(lines), capture_output=True,
                          env=support.server_env(), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    flat = [one for answer in answers for one in (answer if isinstance(answer, list) else [answer])]
    for one in flat:
        _check_one(one)
    wanted = Counter(json.dumps(v["id"] if "id" in v and _valid_id(v["id"]) else None) for v in values
                     if isinstance(v, dict) and ("id" in v or not _notification(v)))
    assert not wanted - Counter(json.dumps(one["id"]) for one in flat)
