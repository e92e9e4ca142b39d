"""Two real processes submitting conflicting activities at the same instant against one
SQLite file: the conflict must be recorded every time."""

from __future__ import annotations

import multiprocessing as mp

import pytest

from detente.core.minima import Minima, Separation
from detente.core.scenario import read_scenario
from detente.service import Deconfliction
from detente.store.sqlite import SQLiteStore

from .conftest import collection, feature, square

ROUNDS = 60


def _submitter(path: str, party: str, barrier, rounds: int) -> None:
    svc = Deconfliction(SQLiteStore(path))
    for i in range(rounds):
        # Round i: both parties plan the same square, far from every other round's.
        scen = read_scenario(collection(feature(f"{party}-{i}", None,
                                                square(i * 0.5, 10.0, 0.01))),
                             default_party=party)
        barrier.wait()
        svc.submit(scen)


@pytest.mark.slow
def test_simultaneous_conflicting_submissions(tmp_path) -> None:
    path = str(tmp_path / "race.db")
    store = SQLiteStore(path)
    store.initialise(Minima(Separation(0.0, 0.0, 0.0)))
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_submitter, args=(path, p, barrier, ROUNDS)) for p in "AB"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
        assert p.exitcode == 0
    rows = store.list_conflicts(party=None, status="open")
    pairs = {frozenset({c.activity_a, c.activity_b}) for c in rows}
    assert pairs == {frozenset({f"A-{i}", f"B-{i}"}) for i in range(ROUNDS)}
    assert len(rows) == ROUNDS


def test_a_write_waits_for_another_process_and_gives_up_at_its_timeout(tmp_path) -> None:
    """Another connection (as another process would) holds the write lock: a write
    waits for it, goes through once it is released, and past its timeout fails with
    SQLite's own error instead of waiting for ever."""
    import sqlite3
    import threading

    path = str(tmp_path / "held.db")
    made = SQLiteStore(path)
    made.initialise(Minima(Separation(0.0, 0.0, 0.0)))
    made.close()  # (its writer, with the default timeout, would be shared)
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    patient = SQLiteStore(path, timeout_s=30.0)
    done = threading.Event()

    def write() -> None:
        with patient.write():
            patient.conn.execute("INSERT INTO meta VALUES ('waited', 'yes')")
        done.set()

    t = threading.Thread(target=write)
    t.start()
    assert not done.wait(0.3)  # held: still waiting
    other.execute("COMMIT")
    t.join(10)
    assert done.is_set()
    assert patient.conn.execute("SELECT value FROM meta WHERE key = 'waited'").fetchone() == (
        "yes",)
    patient.close()

    other.execute("BEGIN IMMEDIATE")
    hasty = SQLiteStore(path, timeout_s=0.2)
    with pytest.raises(sqlite3.OperationalError, match="locked"), hasty.write():
        pass
    other.execute("ROLLBACK")
    with hasty.write():  # free again
        hasty.conn.execute("INSERT INTO meta VALUES ('later', 'yes')")
    hasty.close()
    other.close()
