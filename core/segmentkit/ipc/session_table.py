"""Open tracking sessions by id, as the IPC service keeps them per app: limits, ownership
and idle eviction. It needs only a session's ``id``, ``close()`` and (optionally) ``closed``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import SessionError, UnknownSessionError

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
            raise UnknownSessionError(f"unknown session {session_id!r}")
        if entry.owner is not None and owner != entry.owner:
            raise SessionError(f"session {session_id!r} belongs to another client")
        return entry

    def _remember(self, session_id: str, why: str) -> None:
        self._gone[session_id] = why
        while len(self._gone) > _FORGET_AFTER:
            self._gone.popitem(last=False)
