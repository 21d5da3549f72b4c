"""segmentkit.sessions: the session table (limits, owners, idle eviction) and per-session pieces."""

from __future__ import annotations

import threading
import uuid

import pytest
from segmentkit.errors import SessionError
from segmentkit.sessions import ObjectIndex, SessionTable, check_frame, check_object_id


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
