"""SAM 2 tracking sessions: the tracker contract, lifecycle, limits, bad input, bounded memory."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import segmentkit as sk
import torch
from segmentkit.errors import PromptError, SessionError, VideoError, WeightsUnavailableError
from segmentkit.ipc.session_table import SessionTable
from segmentkit.registry import Registry
from segmentkit.roles import Tracker, TrackingSession
from segmentkit.testing.conformance import TrackerContract
from segmentkit_sam2.video_testing import build_tiny_video_checkpoint, moving_frames, write_video

MODEL = "sam2.1-hiera-tiny"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return build_tiny_video_checkpoint(tmp_path_factory.mktemp("sam2-video-tiny"))


@pytest.fixture(scope="module")
def tracker(checkpoint):
    return Registry().load(MODEL, role="tracker", weights=checkpoint, cache_frames=4)


@pytest.fixture(scope="module")
def tiny_tracker(tmp_path_factory):
    """The narrow test architecture at input size 64: for many frames."""
    path = build_tiny_video_checkpoint(tmp_path_factory.mktemp("sam2-video-64"), image_size=64)
    return Registry().load(MODEL, role="tracker", weights=path, cache_frames=4)


@pytest.fixture(scope="module")
def frames():
    return moving_frames(12)


class TestSam2TrackerContract(TrackerContract):
    level = "geometry"  # random weights (object-score head biased: masks are not empty)

    @pytest.fixture
    def model(self, tracker):
        return tracker


def run(session, prompts):
    for frame, obj, prompt in prompts:
        session.add_prompts(frame, obj, prompt)
    return [(r.frame_index, r.object_ids, r.masks.masks.copy()) for r in session.propagate()]


def same(a, b) -> bool:
    return len(a) == len(b) and all(
        fa == fb and ia == ib and np.array_equal(ma, mb) for (fa, ia, ma), (fb, ib, mb) in zip(a, b)
    )


# --------------------------------------------------------------------------- loading


def test_registry_loads_a_tracker(tracker):
    assert isinstance(tracker, Tracker)
    assert tracker.card.id == MODEL and "track" in tracker.card.tasks
    assert MODEL in [m.card.id for m in sk.models(role="tracker")]


def test_image_only_checkpoint_is_refused(checkpoint, tmp_path):
    import json
    import shutil

    image_only = tmp_path / "image-only"
    shutil.copytree(checkpoint, image_only)
    config = json.loads((image_only / "config.json").read_text())
    config["model_type"] = "sam2"
    (image_only / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsUnavailableError, match="image-only"):
        Registry().load(MODEL, role="tracker", weights=image_only)


def test_unknown_option_is_an_error(checkpoint):
    with pytest.raises(sk.SegmentkitError, match="no_such_option"):
        Registry().load(MODEL, role="tracker", weights=checkpoint, no_such_option=1)


# --------------------------------------------------------------------------- lifecycle


def test_session_table_limits_and_eviction(tracker, frames):
    clock = [0.0]
    table = SessionTable(max_sessions=2, idle_timeout_s=60, clock=lambda: clock[0])
    a, b = tracker.start(frames), tracker.start(frames)
    table.add(a, owner="app")
    table.add(b, owner="app")
    assert isinstance(a.raw, TrackingSession) and a.id != b.id and len(a.id) == 32
    with pytest.raises(SessionError, match="too many open sessions"):
        table.add(tracker.start(frames))
    table.get(a.id, owner="app").add_prompts(0, 1, [sk.Point(30, 32)])
    with pytest.raises(SessionError, match="another client"):
        table.get(a.id, owner="intruder")
    clock[0] = 45.0
    table.get(b.id, owner="app")  # b is used, a is not
    clock[0] = 90.0
    c = tracker.start(frames)
    table.add(c)  # evicts a (idle 90 s), keeps b (idle 45 s)
    assert a.closed and not b.closed
    assert a.raw._memory is None  # its memory is gone
    with pytest.raises(SessionError, match="closed after 60 s idle"):
        table.get(a.id, owner="app")
    with pytest.raises(SessionError, match="is closed"):
        a.add_prompts(0, 1, [sk.Point(30, 32)])
    table.close(b.id, owner="app")
    assert b.closed
    with pytest.raises(SessionError, match="was closed"):
        table.get(b.id, owner="app")
    with pytest.raises(SessionError, match="unknown session"):
        table.get("0" * 32)
    table.close_all()
    assert c.closed and len(table) == 0


def test_closing_frees_the_state(tracker, frames):
    session = tracker.start(frames)
    session.add_prompts(0, 1, [sk.Point(30, 32)])
    list(session.propagate())
    state = session.raw._memory
    assert state.held_outputs() > 0
    session.close()
    assert state.held_outputs() == 0 and not state._pixels
    session.close()  # twice is fine
    with pytest.raises(SessionError):
        session.push_frame(frames[0])


def test_concurrent_sessions_do_not_mix(tracker, frames):
    prompts_a = [(0, 1, [sk.Point(30, 32)])]
    prompts_b = [(3, 1, [sk.Box(50, 30, 90, 70)]), (3, 2, [sk.Point(20, 20)])]
    with tracker.start(frames) as s:
        alone_a = run(s, prompts_a)
    with tracker.start(frames[::-1]) as s:
        alone_b = run(s, prompts_b)
    # interleaved step by step in one thread
    with tracker.start(frames) as sa, tracker.start(frames[::-1]) as sb:
        for frame, obj, prompt in prompts_a:
            sa.add_prompts(frame, obj, prompt)
        for frame, obj, prompt in prompts_b:
            sb.add_prompts(frame, obj, prompt)
        got: dict[str, list] = {"a": [], "b": []}
        running = {"a": sa.propagate(), "b": sb.propagate()}
        while running:
            for name, it in list(running.items()):
                r = next(it, None)
                if r is None:
                    del running[name]
                else:
                    got[name].append((r.frame_index, r.object_ids, r.masks.masks.copy()))
    assert same(got["a"], alone_a) and same(got["b"], alone_b)
    # and in two threads at once
    results: dict[str, list] = {}

    def work(name, source, prompts):
        with tracker.start(source) as s:
            results[name] = run(s, prompts)

    threads = [threading.Thread(target=work, args=("a", frames, prompts_a)),
               threading.Thread(target=work, args=("b", frames[::-1], prompts_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert same(results["a"], alone_a) and same(results["b"], alone_b)


def test_remove_object_and_reset(tracker, frames):
    only_b = None
    with tracker.start(frames) as s:
        only_b = run(s, [(0, 9, [sk.Box(50, 30, 90, 70)])])
    with tracker.start(frames) as s:
        s.add_prompts(0, 4, [sk.Point(30, 32)])
        s.remove_object(4)
        assert s.object_ids == []
        assert same(run(s, [(0, 9, [sk.Box(50, 30, 90, 70)])]), only_b)
        with pytest.raises(SessionError, match="was removed"):
            s.add_prompts(0, 4, [sk.Point(30, 32)])
        with pytest.raises(SessionError, match="unknown object id 5"):
            s.remove_object(5)
        s.reset()
        assert s.object_ids == []
        with pytest.raises(SessionError, match="no objects"):
            list(s.propagate())
        assert same(run(s, [(0, 9, [sk.Box(50, 30, 90, 70)])]), only_b)
        s.add_prompts(0, 4, [sk.Point(30, 32)])  # after reset the id is free again


# --------------------------------------------------------------------------- bad input


def test_unreadable_videos(tracker, tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"nonsense" * 100)
    with pytest.raises(VideoError, match="garbage.mp4"):
        tracker.start(garbage)
    with pytest.raises(VideoError, match="no such file"):
        tracker.start(tmp_path / "missing.mp4")
    with pytest.raises(VideoError, match="no frame images"):
        tracker.start(tmp_path)
    with pytest.raises(SessionError, match="needs a video"):
        tracker.start()
    with pytest.raises(SessionError, match="takes no source"):
        tracker.start(tmp_path, stream=True)


def test_frame_index_out_of_range(tracker, frames):
    with tracker.start(frames) as s:
        for bad in (12, -1, 99):
            with pytest.raises(SessionError, match=f"frame {bad} is out of range: the video has frames 0..11"):
                s.add_prompts(bad, 1, [sk.Point(3, 3)])
        with pytest.raises(SessionError, match="integer"):
            s.add_prompts(1.5, 1, [sk.Point(3, 3)])
        s.add_prompts(0, 1, [sk.Point(30, 32)])
        with pytest.raises(SessionError, match="out of range"):
            s.propagate(12)
        with pytest.raises(SessionError, match="max_frames"):
            s.propagate(0, max_frames=0)
        with pytest.raises(SessionError, match="push_frame\\(\\) needs a live session"):
            s.push_frame(frames[0])


def test_bad_object_ids_and_prompts(tracker, frames):
    with tracker.start(frames) as s:
        for bad in (-1, True, "a", 1.0):
            with pytest.raises(SessionError, match="object id must be an integer"):
                s.add_prompts(0, bad, [sk.Point(3, 3)])
        with pytest.raises(PromptError, match="not text"):
            s.add_prompts(0, 1, [sk.Text("a dog")])
        with pytest.raises(PromptError, match="mask prompt cannot be combined"):
            s.add_prompts(0, 1, [sk.MaskPrompt(np.ones((72, 96), bool)), sk.Point(3, 3)])
        with pytest.raises(PromptError, match="outside"):
            s.add_prompts(0, 1, [sk.Box(0, 0, 500, 10)])
        assert s.object_ids == []  # nothing half-registered


def test_stream_bad_input(tracker, frames):
    with tracker.start(stream=True) as s:
        assert s.frame_size is None and s.num_frames == 0
        with pytest.raises(SessionError, match="no frames yet"):
            s.add_prompts(0, 1, [sk.Point(3, 3)])
        s.push_frame(frames[0])
        with pytest.raises(VideoError, match="is 48x32, the stream's frames are 96x72"):
            s.push_frame(np.zeros((32, 48, 3), np.uint8))
        assert s.num_frames == 1  # the bad frame was not taken
        s.add_prompts(0, 1, [sk.Point(30, 32)])
        for frame in frames[1:6]:
            s.push_frame(frame)
        with pytest.raises(SessionError, match="frame 0 is no longer held: the stream keeps frames 2..5"):
            s.add_prompts(0, 1, [sk.Point(30, 32)])
        with pytest.raises(SessionError, match="out of range"):
            s.add_prompts(6, 1, [sk.Point(30, 32)])
        with pytest.raises(SessionError, match="push_frame"):
            list(s.propagate())
        s.add_prompts(5, 2, [sk.Point(60, 40)])  # a held frame can still be prompted


# --------------------------------------------------------------------------- bounded memory


def test_stream_memory_is_bounded(tracker, frames):
    """Held outputs stop growing once the window is full: only prompt frames and the last
    ``window`` frames stay (RSS over 1,000 frames is measured by bench/sam2_video.py)."""
    held = []
    with tracker.start(stream=True) as s:
        s.push_frame(frames[0])
        s.add_prompts(0, 1, [sk.Point(30, 32)])
        s.push_frame(frames[1])
        s.add_prompts(1, 2, [sk.Box(50, 30, 90, 70)])
        window = s.raw._memory.window
        for i in range(2, 60):
            s.push_frame(frames[i % len(frames)])
            held.append(s.raw._memory.held_outputs())
            tracked = sum(len(t) for t in s.raw._memory.frames_tracked_per_obj.values())
            assert tracked <= 2 * 4  # frames still held by the stream (cache_frames=4) per object
            assert len(s.raw._memory._pixels) <= 2
        outputs = [o for objs in s.raw._memory.output_dict_per_obj.values()
                   for kind in objs.values() for o in kind.values()]
    assert all("high_res_masks" not in o for o in outputs)
    # per object: its prompt frame + the current frame and the `window` frames before it
    assert max(held) == held[-1] == 2 * (1 + window + 1)
    assert held[-20:] == [held[-1]] * 20


def test_file_memory_is_bounded(tracker, tmp_path):
    path = write_video(tmp_path / "long.mp4", moving_frames(60, (36, 48)))
    with tracker.start(path) as s:
        s.add_prompts(0, 1, [sk.Point(15, 16)])
        held = [s.raw._memory.held_outputs() for _ in s.propagate()]
        window = s.raw._memory.window
        assert len(s.frames._cache) <= 4
    # the prompt frame with `window` frames each side of it, then the current frame's window
    assert max(held) <= 2 * window + 2
    assert held[-1] == (window + 1) + (window + 1)


def test_save_and_restore_continue_exactly(tracker, frames, tmp_path):
    """A session saved mid-way and restored gives the masks the uninterrupted session gives."""
    path = write_video(tmp_path / "clip.mp4", frames)
    with tracker.start(path) as s:
        s.add_prompts(0, 1, [sk.Point(30, 32)])
        s.add_prompts(0, 2, [sk.Box(58, 38, 84, 62)])
        list(s.propagate(max_frames=6))
        s.add_prompts(4, 1, [sk.Point(35, 30), sk.Point(10, 60, positive=False)])  # a correction, not yet run
        saved = s.save(tmp_path / "session.npz")
        rest = [(r.frame_index, r.masks.masks.copy()) for r in s.propagate(direction="both")]
        s.add_prompts(9, 2, [sk.Point(70, 45)])
        more = [(r.frame_index, r.masks.masks.copy()) for r in s.propagate()]
    with tracker.restore(saved) as r:
        assert r.object_ids == [1, 2] and r.frame_masks(5).object_ids == [1, 2]
        again = [(f.frame_index, f.masks.masks.copy()) for f in r.propagate(direction="both")]
        r.add_prompts(9, 2, [sk.Point(70, 45)])
        again_more = [(f.frame_index, f.masks.masks.copy()) for f in r.propagate()]
    assert [f for f, _ in again] == [f for f, _ in rest] == [4, 5, 6, 7, 8, 9, 10, 11, 3, 2, 1, 0]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(again + again_more, rest + more))
    assert any(not np.array_equal(a, b) for (_, a), (_, b) in zip(rest, rest[1:]))  # not constant masks


def _held_bytes(root) -> int:
    """Bytes of every tensor and array reachable from ``root``'s attributes (each counted once)."""
    seen, total, todo = set(), 0, [root]
    while todo:
        item = todo.pop()
        if (id(item) in seen or isinstance(item, (torch.nn.Module, type))
                or callable(item) and not hasattr(item, "__dict__")):
            continue
        seen.add(id(item))
        if isinstance(item, torch.Tensor):
            total += item.untyped_storage().nbytes()
        elif isinstance(item, np.ndarray):
            total += item.nbytes
        elif isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)) or type(item).__name__ == "deque":
            todo.extend(item)
        elif hasattr(item, "__dict__"):
            todo.extend(vars(item).values())
    return total


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def test_a_long_stream_stays_flat(tiny_tracker):
    """200 streamed frames: the tensors and arrays the session holds stop growing once its
    windows are full (so do the per-frame results it keeps), and the process's memory with
    them: the slope over the second half, extrapolated to 1,000 frames, is under 5 % of the
    process's size."""
    clip = moving_frames(30, (48, 64))
    held, rss = {}, {}
    with tiny_tracker.start(stream=True) as s:
        for i in range(200):
            s.push_frame(clip[i % len(clip)])
            if i == 0:
                s.add_prompts(0, 1, [sk.Point(20, 20)])
                s.add_prompts(0, 2, [sk.Box(35, 20, 60, 40)])
            if i % 50 == 49:
                held[i + 1], rss[i + 1] = _held_bytes(s), _rss_mb()
            assert len(s.raw._results) <= s.frames.max_held
    assert held[100] == held[150] == held[200] > 0, held
    slope = (rss[200] - rss[100]) / 100 * 1000
    assert slope <= 0.05 * rss[200], (rss, slope)
