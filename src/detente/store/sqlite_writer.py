"""Write transactions of one process on one SQLite file, with group commit.

Every write transaction of this process runs on one shared connection, taken in
arrival order (:class:`FairLock`). Each is a savepoint inside a transaction that
stays open while others wait their turn; the last of such a group (or one that finds
the group too old or too big) commits, and every member returns only once that
commit is on disk. So N submissions arriving together pay for one fsync instead of N,
each still sees everything before it, and a failed one rolls back alone. (Measured
here, 8 threads submitting one-volume activities in-process: 612 -> 670 per second;
the gain grows with the cost of an fsync, which is small on this machine.)
"""

from __future__ import annotations

import collections
import itertools
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from ..errors import DetenteError

MAX_GROUP = 32  # transactions per commit, at most
MAX_GROUP_AGE_S = 0.02  # a group older than this commits even if others wait
BUSY_FIRST_PAUSE_S = 0.0005  # waits between tries for another process's write lock:
BUSY_MAX_PAUSE_S = 0.002  # doubling from the first, at most the last (see Writer._begin)


class FairLock:
    """A lock taken in arrival order. ``threading.Lock`` lets a thread that releases
    take it straight back, so one writer (the webhook deliverer recording a delivery)
    could wait behind a stream of submissions without bound; in order, every wait is
    bounded by the writers ahead of it. It also tells whether anyone waits, which is
    what decides when a group commits."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: collections.deque[threading.Event] = collections.deque()
        self._held = False

    def acquire(self) -> None:
        with self._guard:
            if not self._held:
                self._held = True
                return
            turn = threading.Event()
            self._waiting.append(turn)
        turn.wait()  # the releasing thread hands the lock over

    def release(self) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().set()
            else:
                self._held = False

    def contended(self) -> bool:
        return bool(self._waiting)


class _Group:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.size = 0
        self.done = threading.Event()
        self.error: BaseException | None = None


def _identity_adapters() -> None:
    """Bind None and bytes without the adapter search. The sqlite3 module binds int,
    float and str as they are, but sends any other value (None and bytes among them)
    through its adapter lookup first; finding none, it asks two objects for attributes
    they lack, formatting an AttributeError each time: about 3,300 instructions per
    value (callgrind). An adapter registered for the exact type is found at once; these
    return the value itself, so what is bound does not change. Adapters are per
    process, as sqlite3 keeps them; one registered by other code is left in place."""
    # (builtins, not lambdas: cheaper to call than a Python function)
    same: list[tuple[type[Any], Callable[[Any], Any]]] = [
        (bytes, bytes), (type(None), {}.get)]  # {}.get(None) is None
    for kind, adapter in same:
        if (kind, sqlite3.PrepareProtocol) not in sqlite3.adapters:
            sqlite3.register_adapter(kind, adapter)


ROWS_PER_STATEMENT = 64  # rows one INSERT of insert_many carries: at most 15 columns
# here, 960 parameters, within the 999 that SQLite allowed before 3.32 (32,766 since)


class Connection(sqlite3.Connection):
    """sqlite3's connection with :meth:`insert_many`."""

    def insert_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """``executemany(sql, rows)`` for an ``INSERT ... VALUES (...)``, with up to
        ROWS_PER_STATEMENT rows per execution of one statement of that many groups.
        Each execution of a statement opens its table's and indexes' cursors, seeks
        from the root and closes them again; the Python driver resets and steps it
        and releases the GIL around the step. Carrying 64 rows at a time pays that
        once per 64 (callgrind, an import of 20,000 volumes: 5,764 -> 5,300 million
        instructions past start-up, -8%). Rows go in the order given."""
        head, sep, rest = sql.partition(" VALUES (")
        group, paren, tail = rest.partition(")")  # (tail: e.g. ON CONFLICT DO NOTHING)
        if not (sep and paren):
            raise ValueError("insert_many takes an INSERT ... VALUES (...) statement")
        group = f"({group})"
        rows = list(rows)
        width = group.count("?")
        if set(map(len, rows)) - {width}:  # (else values would shift columns)
            raise ValueError(f"insert_many: a row without {width} values")
        full = len(rows) - len(rows) % ROWS_PER_STATEMENT
        if full:
            flat = itertools.chain.from_iterable(rows[:full])
            groups = ", ".join([group] * ROWS_PER_STATEMENT)
            self.executemany(f"{head} VALUES {groups}{tail}",
                             zip(*[flat] * (width * ROWS_PER_STATEMENT), strict=True))
        if full < len(rows):
            self.executemany(sql, rows[full:])


def connect(path: str, timeout_s: float) -> Connection:
    _identity_adapters()
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None,
                           check_same_thread=False, factory=Connection)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Writer:
    """The shared write connection of one database file in this process."""

    def __init__(self, path: str, timeout_s: float):
        self.conn = connect(path, timeout_s)
        # Waiting for another process's write is :meth:`_begin`'s; only BEGIN
        # IMMEDIATE waits (in WAL, nothing inside a write transaction does).
        self.conn.execute("PRAGMA busy_timeout = 0")
        self.timeout_s = timeout_s
        self.lock = FairLock()
        self.group: _Group | None = None
        self.users = 0

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A write transaction (a savepoint of the group's); durable when it returns."""
        self.lock.acquire()
        try:
            if self.group is None:
                self._begin()
                self.group = _Group()
            group = self.group
            group.size += 1
            self.conn.execute("SAVEPOINT member")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK TO member")
                self.conn.execute("RELEASE member")
                raise
            else:
                self.conn.execute("RELEASE member")
            finally:
                if (not self.lock.contended() or group.size >= MAX_GROUP
                        or time.monotonic() - group.started > MAX_GROUP_AGE_S):
                    self._commit(group)
        finally:
            self.lock.release()
        group.done.wait()
        if group.error is not None:
            raise DetenteError(f"the write was not saved: {group.error}")

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, waiting while another process writes. SQLite's own busy
        handler sleeps 1, 2, 5, 10, 15, 20, 25, ... 50, 100 ms between tries, so a
        process that waits past a few short writes oversleeps the lock's release: two
        `serve` processes on one file showed a p99 of 114-140 ms. Here a try comes
        every 0.25-2 ms (with jitter, so that waiters do not try in step) until the
        timeout."""
        deadline = time.monotonic() + self.timeout_s
        pause = BUSY_FIRST_PAUSE_S
        while True:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if (exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY
                        or time.monotonic() > deadline):
                    raise
            time.sleep(pause * (0.5 + random.random()))
            pause = min(2 * pause, BUSY_MAX_PAUSE_S)

    def _commit(self, group: _Group) -> None:
        try:
            self.conn.execute("COMMIT")
        except BaseException as exc:  # e.g. disk full: every member must hear of it
            group.error = exc
            with suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
        finally:
            self.group = None
            group.done.set()


_WRITERS: dict[tuple[int, int], Writer] = {}
_GUARD = threading.Lock()


def writer_for(path: str, timeout_s: float) -> tuple[Writer, tuple[int, int]]:
    """This process's writer of the file (by device and inode: a file deleted and made
    again at the same path is another database)."""
    st = os.stat(path)
    key = (st.st_dev, st.st_ino)
    with _GUARD:
        w = _WRITERS.get(key)
        if w is None:
            w = _WRITERS[key] = Writer(path, timeout_s)
        w.users += 1
        return w, key


def release_writer(key: tuple[int, int]) -> None:
    with _GUARD:
        w = _WRITERS.get(key)
        if w is not None:
            w.users -= 1
            if w.users <= 0:
                del _WRITERS[key]
                w.conn.close()
