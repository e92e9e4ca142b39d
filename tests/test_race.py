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
