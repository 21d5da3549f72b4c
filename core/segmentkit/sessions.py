"""Tracking-session bookkeeping shared by every tracker and host.

:class:`SessionTable` is what a host (the IPC service, a web app) keeps: open sessions
by id, per-owner access, a cap on how many are open and eviction of idle ones. The
pieces a tracker's session object uses are here too, so every tracker enforces the
same rules with the same messages: :class:`ObjectIndex` (user object ids <-> the
model's contiguous indices) and :func:`check_frame` (frame indices in range).

Sessions themselves are :class:`segmentkit.roles.TrackingSession` objects made by a
tracker; the table only needs their ``id`` and ``close()``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import SessionError

__all__ = ["ObjectIndex", "SessionTable", "check_frame", "check_object_id"]

_FORGET_AFTER = 1024  # how many closed ids the table remembers, for clearer errors


@dataclass
class _Entry:
    session: Any
    owner: str | None
    last_used: float


class SessionTable:
    """Open tracking sessions by id: limits, ownership and idle eviction (thread-safe).

    ``max_sessions`` caps how many sessions are open at once; a session unused for
    ``idle_timeout_s`` seconds is closed by :meth:`evict_idle` (called on every
    :meth:`add`). ``owner`` (an app or client id) scopes access: a session added with
    an owner can only be used by that owner.
    """

    def __init__(self, *, max_sessions: int = 8, idle_timeout_s: float = 600.0,
                 clock: Callable[[], float] = time.monotonic):
        if max_sessions < 1:
            raise ValueError(f"max_sessions must be >= 1, got {max_sessions}")
        if idle_timeout_s <= 0:
            raise ValueError(f"idle_timeout_s must be > 0, got {idle_timeout_s}")
        self.max_sessions = max_sessions
        self.idle_timeout_s = float(idle_timeout_s)
        self._clock = clock
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._gone: OrderedDict[str, str] = OrderedDict()  # id -> "closed" | "evicted after ..."

    def add(self, session: Any, owner: str | None = None) -> str:
        """Register ``session``; returns its id. Full after evicting idle ones -> :class:`SessionError`."""
        sid = str(session.id)
        self.evict_idle()
        with self._lock:
            if sid in self._entries:
                raise SessionError(f"session {sid!r} is already registered")
            if len(self._entries) >= self.max_sessions:
                raise SessionError(
                    f"too many open sessions ({len(self._entries)} of {self.max_sessions}); "
                    "close one first or wait for idle sessions to expire"
                )
            self._entries[sid] = _Entry(session, owner, self._clock())
            self._gone.pop(sid, None)
        return sid

    def get(self, session_id: str, owner: str | None = None) -> Any:
        """The session with ``session_id`` (marks it used); unknown, closed or not yours -> error."""
        with self._lock:
            entry = self._entry(session_id, owner)
            if getattr(entry.session, "closed", False):  # closed directly, not through the table
                del self._entries[session_id]
                self._remember(session_id, "closed")
                raise SessionError(f"session {session_id!r} was closed; start a new one")
            entry.last_used = self._clock()
            return entry.session

    def close(self, session_id: str, owner: str | None = None) -> None:
        """Close the session and free it."""
        with self._lock:
            entry = self._entry(session_id, owner)
            del self._entries[session_id]
            self._remember(session_id, "closed")
        entry.session.close()

    def evict_idle(self) -> list[str]:
        """Close every session idle for longer than ``idle_timeout_s``; returns their ids."""
        now = self._clock()
        with self._lock:
            idle = [sid for sid, e in self._entries.items() if now - e.last_used > self.idle_timeout_s]
            entries = [self._entries.pop(sid) for sid in idle]
            for sid in idle:
                self._remember(sid, f"closed after {self.idle_timeout_s:g} s idle")
        for entry in entries:
            entry.session.close()
        return idle

    def close_all(self) -> None:
        """Close every session (host shutdown)."""
        with self._lock:
            entries = list(self._entries.items())
            self._entries.clear()
            for sid, _ in entries:
                self._remember(sid, "closed")
        for _, entry in entries:
            entry.session.close()

    def ids(self, owner: str | None = None) -> list[str]:
        """Ids of open sessions (only ``owner``'s when given)."""
        with self._lock:
            return [sid for sid, e in self._entries.items() if owner is None or e.owner == owner]

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __contains__(self, session_id: object) -> bool:
        with self._lock:
            return session_id in self._entries

    def _entry(self, session_id: str, owner: str | None) -> _Entry:
        entry = self._entries.get(session_id)
        if entry is None:
            why = self._gone.get(session_id)
            if why is not None:
                raise SessionError(f"session {session_id!r} was {why}; start a new one")
            raise SessionError(f"unknown session {session_id!r}")
        if entry.owner is not None and owner != entry.owner:
            raise SessionError(f"session {session_id!r} belongs to another client")
        return entry

    def _remember(self, session_id: str, why: str) -> None:
        self._gone[session_id] = why
        while len(self._gone) > _FORGET_AFTER:
            self._gone.popitem(last=False)


# --------------------------------------------------------------------------- per-session pieces


def check_object_id(object_id: Any) -> int:
    """A user object id: an int >= 0 (bools are refused)."""
    if isinstance(object_id, bool) or not isinstance(object_id, int) or object_id < 0:
        raise SessionError(f"object id must be an integer >= 0, got {object_id!r}")
    return int(object_id)


def check_frame(frame: Any, num_frames: int, *, first: int = 0, what: str = "video") -> int:
    """``frame`` as an int in ``[first, num_frames)``, else a :class:`SessionError` saying the range.

    ``first`` > 0 describes a live stream that only holds its most recent frames.
    """
    if isinstance(frame, bool) or not isinstance(frame, int):
        raise SessionError(f"frame index must be an integer, got {frame!r}")
    if num_frames <= 0:
        raise SessionError(f"frame {frame} is out of range: the {what} has no frames yet")
    if not first <= frame < num_frames:
        if first and 0 <= frame < first:
            raise SessionError(
                f"frame {frame} is no longer held: the {what} keeps frames {first}..{num_frames - 1}"
            )
        raise SessionError(f"frame {frame} is out of range: the {what} has frames {first}..{num_frames - 1}")
    return frame


class ObjectIndex:
    """User-chosen object ids <-> contiguous internal indices ``0..n-1`` (in order of arrival).

    Removing an object shifts the indices after it down by one. A removed id cannot
    come back in the same session until :meth:`reset`: results already handed out under
    that id would otherwise describe two different objects.
    """

    def __init__(self, max_objects: int | None = None):
        self.max_objects = max_objects
        self._ids: list[int] = []
        self._removed: set[int] = set()

    def add(self, object_id: int) -> int:
        """Index of ``object_id``, registering it if new."""
        object_id = check_object_id(object_id)
        if object_id in self._ids:
            return self._ids.index(object_id)
        if object_id in self._removed:
            raise SessionError(
                f"object id {object_id} was removed from this session; ids are not reused "
                "(pick a new id, or reset() the session)"
            )
        if self.max_objects is not None and len(self._ids) >= self.max_objects:
            raise SessionError(f"too many objects: a session tracks at most {self.max_objects}")
        self._ids.append(object_id)
        return len(self._ids) - 1

    def index(self, object_id: int) -> int:
        """Index of a registered ``object_id``; unknown -> :class:`SessionError`."""
        try:
            return self._ids.index(object_id)
        except ValueError:
            known = ", ".join(map(str, self._ids)) or "none"
            raise SessionError(f"unknown object id {object_id!r} (objects in this session: {known})") from None

    def id_of(self, index: int) -> int:
        return self._ids[index]

    def remove(self, object_id: int) -> int:
        """Forget ``object_id``; returns the index it had."""
        index = self.index(object_id)
        del self._ids[index]
        self._removed.add(object_id)
        return index

    def reset(self) -> None:
        self._ids.clear()
        self._removed.clear()

    @property
    def ids(self) -> list[int]:
        return list(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._ids
