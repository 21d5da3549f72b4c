"""SAM 2 video tracking through a real `segmentkit serve --stdio` process, tiny random weights.

The server loads a tiny random-weight ``sam2_video`` checkpoint (``--weights MODEL=DIR``);
its streamed masks must equal the same tracker run in this process on the same frames
and prompts (both single-threaded, so the arithmetic is the same).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import test_ipc_support as support  # registered by tests/conftest.py
from segmentkit.client import Client
from segmentkit.registry import Registry
from segmentkit.types import Box, Point

pytest.importorskip("segmentkit_sam2.tracker", reason="needs the SAM 2 plugin: pip install -e plugins/sam2")
torch = pytest.importorskip("torch")

MODEL = "sam2.1-hiera-tiny"


def test_sam2_video_over_stdio_matches_in_process(tmp_path: Path) -> None:
    from segmentkit_sam2.video_testing import build_tiny_video_checkpoint, moving_frames

    checkpoint = build_tiny_video_checkpoint(tmp_path / "ckpt")
    frames = moving_frames(5, (72, 96))
    for i, frame in enumerate(frames):
        support.save_png(tmp_path / "clip" / f"{i:03d}.png", frame)
    point, box = (0.3 * 96, 0.45 * 72), (60.0, 38.0, 84.0, 62.0)

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        tracker = Registry().load(MODEL, role="tracker", weights=checkpoint)
        with tracker.start(str(tmp_path / "clip")) as session:
            session.add_prompts(0, 1, [Point(*point)])
            session.add_prompts(0, 2, [Box(*box)])
            expected = [(f.frame_index, f.object_ids, f.masks.masks.copy()) for f in session.propagate()]
    finally:
        torch.set_num_threads(before)

    env = support.server_env(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = support.serve_cmd("--stdio", "--weights", f"{MODEL}={checkpoint}", "--workers", "1")
    with Client.stdio(cmd, env=env, timeout=300) as sk:
        session_id = sk.video_start(tmp_path / "clip", model=MODEL)
        sk.video_add_prompt(session_id, 0, 1, point=point)
        sk.video_add_prompt(session_id, 0, 2, box=box)
        got = list(sk.video_propagate(session_id))
        sk.video_close(session_id)

    assert [f.frame_index for f in got] == [e[0] for e in expected] == [0, 1, 2, 3, 4]
    for frame, (_, object_ids, masks) in zip(got, expected):
        assert frame.object_ids == object_ids == [1, 2]
        for mask, want in zip(frame.masks.masks, masks):
            assert 0 < want.sum() < want.size  # the tiny model's masks are not trivial
            assert np.array_equal(mask, want)
