"""segmentkit.sessions: the session table (limits, owners, idle eviction) and per-session pieces."""

from __future__ import annotations

import json
import threading
import uuid

import numpy as np
import pytest
from PIL import Image
from segmentkit.cards import ModelCard
from segmentkit.errors import PromptError, SessionError
from segmentkit.io.video import FrameStream, open_video
from segmentkit.ipc.session_table import SessionTable
from segmentkit.session_files import read_session, restore_session
from segmentkit.sessions import ObjectIndex, TrackingSession, check_frame, check_object_id
from segmentkit.types import Box, FrameMasks, MaskPrompt, Masks, Point


class FakeSession:
    def __init__(self):
        self.id = uuid.uuid4().hex
        self.closed = False
        self.close_calls = 0

    def close(self):
        self.closed = True
        self.close_calls += 1


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_add_get_close():
    table = SessionTable()
    s = FakeSession()
    assert table.add(s) == s.id
    assert table.get(s.id) is s and s.id in table and len(table) == 1
    table.close(s.id)
    assert s.closed and s.close_calls == 1 and len(table) == 0
    with pytest.raises(SessionError, match=f"session '{s.id}' was closed; start a new one"):
        table.get(s.id)
    with pytest.raises(SessionError, match="was closed"):
        table.close(s.id)
    with pytest.raises(SessionError, match="unknown session 'nope'"):
        table.get("nope")
    with pytest.raises(SessionError, match="already registered"):
        t = FakeSession()
        table.add(t)
        table.add(t)


def test_max_sessions_after_evicting_idle_ones():
    clock = Clock()
    table = SessionTable(max_sessions=2, idle_timeout_s=10, clock=clock)
    a, b = FakeSession(), FakeSession()
    table.add(a)
    clock.now = 5
    table.add(b)
    with pytest.raises(SessionError, match=r"too many open sessions \(2 of 2\)"):
        table.add(FakeSession())
    clock.now = 12  # a idle 12 s > 10, b idle 7 s
    c = FakeSession()
    table.add(c)
    assert a.closed and not b.closed and sorted(table.ids()) == sorted([b.id, c.id])
    with pytest.raises(SessionError, match="closed after 10 s idle"):
        table.get(a.id)


def test_get_touches_and_evict_idle_returns_ids():
    clock = Clock()
    table = SessionTable(idle_timeout_s=10, clock=clock)
    a, b = FakeSession(), FakeSession()
    table.add(a)
    table.add(b)
    clock.now = 8
    table.get(a.id)
    clock.now = 15
    assert table.evict_idle() == [b.id]
    assert b.closed and not a.closed
    assert table.evict_idle() == []
    clock.now = 18.5
    assert table.evict_idle() == [a.id]
    assert len(table) == 0


def test_owners():
    table = SessionTable()
    mine, theirs, anyone = FakeSession(), FakeSession(), FakeSession()
    table.add(mine, owner="app-a")
    table.add(theirs, owner="app-b")
    table.add(anyone)
    assert table.ids(owner="app-a") == [mine.id]
    assert len(table.ids()) == 3
    with pytest.raises(SessionError, match="belongs to another client"):
        table.get(mine.id, owner="app-b")
    with pytest.raises(SessionError, match="belongs to another client"):
        table.get(mine.id)  # an owned session needs its owner
    with pytest.raises(SessionError, match="belongs to another client"):
        table.close(mine.id, owner="app-b")
    assert not mine.closed
    assert table.get(anyone.id, owner="app-b") is anyone  # no owner: open to all
    table.close(mine.id, owner="app-a")
    assert mine.closed


def test_session_closed_directly_is_reported_closed():
    table = SessionTable()
    s = FakeSession()
    table.add(s)
    s.close()
    with pytest.raises(SessionError, match="was closed"):
        table.get(s.id)
    assert len(table) == 0


def test_close_all():
    table = SessionTable()
    sessions = [FakeSession() for _ in range(3)]
    for s in sessions:
        table.add(s)
    table.close_all()
    assert all(s.closed and s.close_calls == 1 for s in sessions) and len(table) == 0


def test_thread_safe_add_and_close():
    table = SessionTable(max_sessions=1000)
    sessions = [FakeSession() for _ in range(400)]

    def work(chunk):
        for s in chunk:
            table.add(s)
            table.get(s.id)
            table.close(s.id)

    threads = [threading.Thread(target=work, args=(sessions[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(table) == 0 and all(s.close_calls == 1 for s in sessions)


def test_bad_limits():
    with pytest.raises(ValueError):
        SessionTable(max_sessions=0)
    with pytest.raises(ValueError):
        SessionTable(idle_timeout_s=0)


def test_object_index():
    objects = ObjectIndex(max_objects=3)
    assert objects.add(7) == 0 and objects.add(2) == 1 and objects.add(7) == 0
    assert objects.ids == [7, 2] and len(objects) == 2 and 7 in objects
    assert objects.index(2) == 1 and objects.id_of(1) == 2
    objects.add(9)
    with pytest.raises(SessionError, match="at most 3"):
        objects.add(10)
    assert objects.remove(7) == 0
    assert objects.ids == [2, 9] and objects.index(9) == 1  # later indices shift down
    with pytest.raises(SessionError, match="object id 7 was removed"):
        objects.add(7)
    with pytest.raises(SessionError, match=r"unknown object id 7 \(objects in this session: 2, 9\)"):
        objects.index(7)
    objects.reset()
    assert objects.ids == [] and objects.add(7) == 0


@pytest.mark.parametrize("bad", [-1, 1.0, True, "3", None])
def test_check_object_id(bad):
    with pytest.raises(SessionError, match="object id must be an integer >= 0"):
        check_object_id(bad)
    assert check_object_id(0) == 0


def test_check_frame():
    assert check_frame(3, 10) == 3
    with pytest.raises(SessionError, match="frame 10 is out of range: the video has frames 0..9"):
        check_frame(10, 10)
    with pytest.raises(SessionError, match="frame -1 is out of range"):
        check_frame(-1, 10)
    with pytest.raises(SessionError, match="frame index must be an integer"):
        check_frame(1.0, 10)
    with pytest.raises(SessionError, match="no frames yet"):
        check_frame(0, 0, what="stream")
    with pytest.raises(SessionError, match="frame 2 is no longer held: the stream keeps frames 5..9"):
        check_frame(2, 10, first=5, what="stream")


# --------------------------------------------------------------------------- the TrackingSession base


class Blob(TrackingSession):
    """A test tracker whose maths is trivial and order-dependent, so the base's bookkeeping shows.

    Each object's mask on a frame is a square whose side is ``1 +`` the number of frames
    the object has been tracked through since it was last prompted, in this pass order:
    a frame computed from a different history gives a different mask.
    """

    def __init__(self, frames, **kw):
        super().__init__(frames, **kw)
        self.age: dict[int, int] = {}
        self.calls: list[tuple[int, bool]] = []

    def _masks(self, frame):
        h, w = self.frame_size
        ids = self.object_ids
        stack = np.zeros((len(ids), h, w), bool)
        for k, i in enumerate(ids):
            side = 1 + self.age[i] % min(h, w)
            stack[k, :side, i : i + side] = True
        return FrameMasks(frame, Masks(stack, object_ids=np.asarray(ids, np.int64)))

    def _prompt(self, frame, index, prompts):
        self.age[self.objects.id_of(index)] = 0
        return self._masks(frame)

    def _track(self, frame, reverse):
        self.calls.append((frame, reverse))
        for i in self.age:
            self.age[i] += 1
        return self._masks(frame)

    def _remove(self, object_id, index):
        del self.age[object_id]

    def _clear(self):
        self.age.clear()

    def _state(self):
        ids = sorted(self.age)
        return {"ids": ids}, {"age": np.asarray([self.age[i] for i in ids], np.int64)}

    def _load_state(self, meta, arrays):
        self.age = dict(zip(meta["ids"], arrays["age"].tolist()))


class BlobTracker:
    card = ModelCard(id="blob", family="test", roles=("tracker",), tasks=("track",), license="MIT")

    def start(self, source=None, *, stream=False):
        return Blob(FrameStream() if stream else open_video(source), model_id=self.card.id, max_objects=3)

    def restore(self, path, source=None):
        return restore_session(self, path, source)


@pytest.fixture
def blob_frames(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(8):
        Image.fromarray(np.full((12, 16, 3), 10 * i, np.uint8)).save(folder / f"{i}.png")
    return folder


def _order(results):
    return [r.frame_index for r in results]


def test_propagate_directions_and_defaults(blob_frames):
    with BlobTracker().start(blob_frames) as s:
        s.add_prompts(3, 1, [Point(1, 1)])
        both = s.propagate(direction="both")
        assert both.total == 8
        assert _order(both) == [3, 4, 5, 6, 7, 2, 1, 0]
        assert s.calls[-1] == (0, True) and s.calls[0] == (3, False)
        assert _order(s.propagate(direction="backward", max_frames=2)) == [3, 2]
        assert _order(s.propagate(5, direction="both", max_frames=2)) == [5, 6, 4]
        assert _order(s.propagate(0, direction="both")) == list(range(8))
        with pytest.raises(SessionError, match="direction must be one of"):
            s.propagate(direction="sideways")
        with pytest.raises(SessionError, match="out of range"):
            s.propagate(8)
        with pytest.raises(SessionError, match="max_frames"):
            s.propagate(max_frames=0)


def test_a_correction_repropagates_only_the_frames_it_can_change(blob_frames):
    with BlobTracker().start(blob_frames) as s:
        s.add_prompts(0, 1, [Point(1, 1)])
        first = {r.frame_index: r for r in s.propagate()}
        assert _order(first.values()) == list(range(8))
        s.add_prompts(5, 1, [Point(2, 2)])  # a correction on frame 5
        again = list(s.propagate())
        assert _order(again) == [5, 6, 7]  # frames 0..4 cannot change going forwards
        s.add_prompts(5, 1, [Point(3, 3)])
        assert _order(s.propagate(direction="both")) == [5, 6, 7, 4, 3, 2, 1, 0]
        # nothing prompted since: the next call starts from the prompted frames again
        assert _order(s.propagate(direction="backward")) == [5, 4, 3, 2, 1, 0]
        assert s.frame_masks(7) is not None and s.frame_masks(7).object_ids == [1]
        assert [f for f, _, _ in s.prompts] == [0, 5]  # the second prompt on 5 replaced the first


def test_remove_reset_and_bookkeeping(blob_frames):
    with BlobTracker().start(blob_frames) as s:
        s.add_prompts(0, 4, [Point(1, 1)])
        s.add_prompts(2, 9, [Point(1, 1)])
        assert s.object_ids == [4, 9]
        with pytest.raises(PromptError):  # validated before the object is registered
            s.add_prompts(0, 5, [Point(100, 1)])
        assert s.object_ids == [4, 9]
        list(s.propagate(0))
        s.remove_object(4)
        assert s.object_ids == [9] and s.frame_masks(1).object_ids == [9]
        assert [o for _, o, _ in s.prompts] == [9]
        with pytest.raises(SessionError, match="was removed"):
            s.add_prompts(0, 4, [Point(1, 1)])
        assert _order(s.propagate()) == list(range(2, 8))  # object 9's prompted frame
        s.reset()
        assert s.object_ids == [] and s.prompts == [] and s.frame_masks(1) is None
        with pytest.raises(SessionError, match="no objects"):
            s.propagate()
        s.add_prompts(1, 4, [Point(1, 1)])  # ids are free again after reset
        for _ in range(2):
            s.add_prompts(1, len(s.object_ids) + 10, [Point(1, 1)])
        with pytest.raises(SessionError, match="at most 3"):
            s.add_prompts(1, 99, [Point(1, 1)])
    assert s.closed
    for call in (lambda: s.add_prompts(0, 1, [Point(1, 1)]), s.propagate, s.reset, lambda: s.remove_object(4)):
        with pytest.raises(SessionError, match="closed"):
            call()
    s.close()


def test_streams_push_and_keep_only_held_results(blob_frames):
    with BlobTracker().start(stream=True) as s:
        with pytest.raises(SessionError, match="push_frame"):
            s.propagate()
        frame = np.zeros((12, 16, 3), np.uint8)
        assert len(s.push_frame(frame).masks) == 0
        s.add_prompts(0, 1, [Point(1, 1)])
        for _ in range(40):
            s.push_frame(frame)
        assert s.num_frames == 41 and len(s._results) <= s.frames.max_held
    with BlobTracker().start(blob_frames) as s, pytest.raises(SessionError, match="live session"):
        s.push_frame(frame)


def test_save_and_restore_continue_like_an_uninterrupted_session(blob_frames, tmp_path):
    tracker = BlobTracker()
    with tracker.start(blob_frames) as s:
        s.add_prompts(2, 1, [Point(1, 1), Point(3, 3, positive=False)])
        s.add_prompts(2, 7, [MaskPrompt(np.eye(12, 16, dtype=bool))])
        s.add_prompts(0, 3, [Box(0, 0, 4, 4)])
        s.remove_object(3)
        list(s.propagate(direction="forward", max_frames=3))
        s.add_prompts(4, 1, [Point(2, 2)])  # pending correction, saved before propagating it
        path = s.save(tmp_path / "session.npz")
        rest = [r.masks.masks for r in s.propagate(direction="both")]
        before = [s.frame_masks(f).masks.masks for f in range(8)]
    with tracker.restore(path) as r:
        assert r.object_ids == [1, 7] and r.model_id == "blob"
        assert [(f, o) for f, o, _ in r.prompts] == [(2, 1), (2, 7), (4, 1)]
        assert np.array_equal(r.prompts[1][2][0].mask, np.eye(12, 16, dtype=bool))
        with pytest.raises(SessionError, match="was removed"):
            r.add_prompts(0, 3, [Point(1, 1)])
        again = [m.masks.masks for m in r.propagate(direction="both")]
        after = [r.frame_masks(f).masks.masks for f in range(8)]
    assert len(again) == len(rest) and all(np.array_equal(a, b) for a, b in zip(again, rest))
    assert all(np.array_equal(a, b) for a, b in zip(after, before))


def test_saved_files_are_checked(blob_frames, tmp_path):
    tracker = BlobTracker()
    with tracker.start(blob_frames) as s:
        s.add_prompts(0, 1, [Point(1, 1)])
        path = s.save(tmp_path / "s.npz")
    saved = read_session(path)
    assert saved.manifest["format"] == "segmentkit.session" and saved.manifest["version"] == 1
    newer = dict(saved.manifest, version=99)
    np.savez(tmp_path / "newer.npz", manifest=np.frombuffer(json.dumps(newer).encode(), np.uint8))
    with pytest.raises(SessionError, match="newer"):
        tracker.restore(tmp_path / "newer.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(SessionError, match="not a saved session"):
        tracker.restore(tmp_path / "junk.npz")
    short = tmp_path / "short"
    short.mkdir()
    Image.fromarray(np.zeros((12, 16, 3), np.uint8)).save(short / "0.png")
    with pytest.raises(SessionError, match="not the video it was saved over"):
        tracker.restore(path, short)
    with pytest.raises(SessionError, match="cannot save"):
        TrackingSession(FrameStream()).save(tmp_path / "x.npz")
