"""What a transaction says: its audit entries and its events, written inside it.

Every use case that changes state runs in :func:`transaction`, which yields a
:class:`Journal`. The journal's audit entries (chained by SHA-256) and outbox events
are written just before the commit, so a change, its audit trail and its
notifications are one atomic step: none exists without the others. After the commit
the bus wakes whoever delivers events.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson

from ..store.contract import Store
from ..store.dialogue_contract import AuditRow


def canonical(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def digest(obj: Any) -> str | None:
    """SHA-256 of an object's canonical JSON (None stays None: nothing before/after)."""
    return None if obj is None else hashlib.sha256(canonical(obj)).hexdigest()


def chain_hash(prev: str, seq: int, at: str, actor: str, action: str, subject: str,
               before: str | None, after: str | None, detail: str) -> str:
    """An entry's hash covers the previous entry's hash and every field of its own."""
    return hashlib.sha256(canonical([prev, seq, at, actor, action, subject, before, after,
                                     detail])).hexdigest()


SYSTEM = "detente"  # the actor of what the service does by itself (escalate, deliver)


class Bus:
    """Wakes event deliverers in this process after a commit that wrote events (other
    processes' events are found by polling)."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)

    def notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()


class Journal:
    def __init__(self, store: Store, now: str, actor: str):
        self.store = store
        self.now = now
        self.actor = actor
        self._audit: list[tuple[str, str, str | None, str | None, str, str]] = []
        self._by_subject: dict[str, list[int]] = {}  # subject -> its entries' indices
        self._events: list[tuple[str, str, int | None, str]] = []
        self.event_ids: list[int] = []

    def audit(self, action: str, subject: str, detail: dict[str, Any], *,
              before: Any = None, after: Any = None, before_digest: str | None = None,
              after_digest: str | None = None, actor: str | None = None) -> None:
        """Record a state change: the digests of the states before and after (objects,
        or digests made already), and a small readable detail. ``actor`` names who made
        this change when a transaction carries several parties' (a combined batch of
        submissions); otherwise the transaction's actor."""
        self._by_subject.setdefault(subject, []).append(len(self._audit))
        self._audit.append((action, subject, before_digest or digest(before),
                            after_digest or digest(after), canonical(detail).decode(),
                            actor or self.actor))

    def event(self, party: str, type_: str, body: dict[str, Any],
              conflict_id: int | None = None) -> None:
        """Tell one party (the body is what that party may see)."""
        self._events.append((party, type_, conflict_id,
                             orjson.dumps({"type": type_, **body}).decode()))

    def last_after(self, subject: str, actions: Sequence[str] | None = None
                   ) -> str | None:
        """The digest the subject's newest audit entry (of these ``actions``) left it
        in: its "before" now. (Looked up by subject: a journal can hold many thousand
        entries, and a scan of them all per entry is quadratic.)"""
        for k in reversed(self._by_subject.get(subject, ())):
            entry = self._audit[k]
            if actions is None or entry[0] in actions:
                return entry[3]
        return self.store.audit_last_after(subject, actions)

    def flush(self) -> None:
        seq, prev = self.store.audit_head()
        rows = []
        for action, subject, before, after, detail, actor in self._audit:
            seq += 1
            h = chain_hash(prev, seq, self.now, actor, action, subject, before, after, detail)
            rows.append(AuditRow(seq, self.now, actor, action, subject, before, after,
                                 detail, prev, h))
            prev = h
        self.store.append_audit(rows)
        self.event_ids = self.store.add_events(self._events, self.now, time.time())


@contextmanager
def transaction(store: Store, clock: Callable[[], str], actor: str,
                bus: Bus | None = None) -> Iterator[Journal]:
    """One write transaction with its journal; the bus is told after the commit."""
    with store.write():
        journal = Journal(store, clock(), actor)
        yield journal
        journal.flush()
    if journal.event_ids and bus is not None:
        bus.notify()
