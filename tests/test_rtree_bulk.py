"""The R*Tree bulk load (store/rtree_bulk.py) writes the tree SQLite's module would
hold: the same boxes, rounded the same way, answering the same queries, accepted by
``rtreecheck()``, and still a tree the module can insert into and delete from."""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detente.core.minima import Minima, Separation
from detente.core.scenario import read_scenario
from detente.service import Deconfliction
from detente.store import rtree_bulk
from detente.store.sqlite import SQLiteStore
from detente.store.sqlite_writer import Connection

from .conftest import collection, feature, square

COLS = "id, x0, x1, y0, y1, z0, z1, t0, t1"
QUERY = ("SELECT id FROM r WHERE x1 >= ? AND x0 <= ? AND y1 >= ? AND y0 <= ? AND z1 >= ? "
         "AND z0 <= ? AND t1 >= ? AND t0 <= ? ORDER BY id")


def tree(page_size: int = 4096) -> Connection:
    conn = sqlite3.connect(":memory:", factory=Connection)
    conn.execute(f"PRAGMA page_size = {page_size}")
    conn.execute(f"CREATE VIRTUAL TABLE r USING rtree({COLS})")
    return conn


def random_boxes(rng: np.random.Generator, n: int) -> np.ndarray:
    """Boxes at every scale, both signs, many not exact in float32."""
    centre = rng.normal(0, 1000, (n, 4)) * rng.choice([1e-6, 1e-3, 1.0, 1e3, 1e6], (n, 1))
    half = rng.exponential(5, (n, 4)) * rng.choice([0.0, 1e-4, 1.0], (n, 1))
    boxes = np.empty((n, 8))
    boxes[:, 0::2], boxes[:, 1::2] = centre - half, centre + half
    return boxes


def inserted(conn: sqlite3.Connection, ids: np.ndarray, boxes: np.ndarray) -> None:
    conn.executemany("INSERT INTO r VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [(int(i), *b) for i, b in zip(ids.tolist(), boxes.tolist(), strict=True)])


def contents(conn: sqlite3.Connection) -> list[tuple[float, ...]]:
    return conn.execute("SELECT * FROM r ORDER BY id").fetchall()


def check(conn: sqlite3.Connection) -> None:
    assert conn.execute("SELECT rtreecheck('r')").fetchone() == ("ok",)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 3_000), seed=st.integers(0, 2**32 - 1),
       page_size=st.sampled_from([512, 1024, 4096]))
def test_bulk_load_is_the_tree_inserts_make(n: int, seed: int, page_size: int) -> None:
    """Same rows back, same answers to box queries, a consistent tree; then the module
    inserts into it and deletes from it as into its own. (Small pages make trees of
    three and four levels from a few thousand boxes.)"""
    rng = np.random.default_rng(seed)
    ids = rng.choice(2**40, n, replace=False).astype(np.int64)
    boxes = random_boxes(rng, n)
    by_rows, bulk = tree(page_size), tree(page_size)
    inserted(by_rows, ids, boxes)
    rtree_bulk.load(bulk, "r", ids, boxes)
    check(bulk)
    assert contents(bulk) == contents(by_rows)
    for q in random_boxes(rng, 30).tolist():
        assert bulk.execute(QUERY, q).fetchall() == by_rows.execute(QUERY, q).fetchall()

    more = np.arange(2**41, 2**41 + 300, dtype=np.int64)
    more_boxes = random_boxes(rng, 300)
    gone = ids[: n // 2].tolist()
    for conn in (bulk, by_rows):
        inserted(conn, more, more_boxes)
        conn.executemany("DELETE FROM r WHERE id = ?", [(i,) for i in gone])
    check(bulk)
    assert contents(bulk) == contents(by_rows)
    ids_back, boxes_back = rtree_bulk.entries(bulk, "r")
    order = np.argsort(ids_back)
    assert [(int(i), *b) for i, b in zip(ids_back[order].tolist(),
                                         boxes_back[order].tolist(), strict=True)] \
        == contents(by_rows)


def test_depth_and_fill() -> None:
    """Nodes hold between half and all of the load's fill (9 of 11 cells), above the
    module's minimum of a third; the root records the depth."""
    conn = tree(512)  # 448-byte nodes: 11 cells of 40 bytes
    rng = np.random.default_rng(7)
    rtree_bulk.load(conn, "r", np.arange(5_000), random_boxes(rng, 5_000))
    check(conn)
    blobs = dict(conn.execute("SELECT nodeno, data FROM r_node").fetchall())
    counts = {no: int.from_bytes(b[2:4], "big") for no, b in blobs.items()}
    depth = int.from_bytes(blobs[1][:2], "big")
    assert depth == 3  # 5,000 / 9 per leaf = 556 leaves, 62, 7, then the root
    below_root = [c for no, c in counts.items() if no != 1]
    assert min(below_root) >= 9 // 2 >= 11 // 3  # half a load's fill; the module's minimum
    assert max(below_root) <= 9
    assert conn.execute("SELECT count(*) FROM r_rowid").fetchone() == (5_000,)
    assert conn.execute("SELECT count(*) FROM r_parent").fetchone() == (len(blobs) - 1,)


def test_rounding_is_the_modules() -> None:
    """Lower bounds round down and upper bounds up, as the module's INSERT does (which
    nudges by a relative step: too little below float32's normal range, as here)."""
    values = np.array([0.1, -0.1, 1 / 3, -1 / 3, 16777217.0, -16777217.0, 2.5, 1e-40])
    assert (rtree_bulk.round_down(values[:-1]).astype(np.float64) <= values[:-1]).all()
    assert (rtree_bulk.round_up(values[:-1]).astype(np.float64) >= values[:-1]).all()
    conn = tree()
    boxes = np.column_stack([values] * 8)
    inserted(conn, np.arange(len(values)), boxes)
    stored = np.array(contents(conn))[:, 1:]
    assert (stored[:, 0::2] == rtree_bulk.round_down(values)[:, None]).all()
    assert (stored[:, 1::2] == rtree_bulk.round_up(values)[:, None]).all()


def test_bulk_load_refuses_an_inverted_box() -> None:
    with pytest.raises(ValueError):
        rtree_bulk.load(tree(), "r", np.arange(1), np.array([[1.0, 0.0] * 4]))


def _import(path: str, bulk_min: int, batches: list[dict[str, Any]]) -> SQLiteStore:
    store = SQLiteStore(path)
    store.bulk_min = bulk_min
    store.initialise(Minima(Separation(500.0, 50.0, 60.0)))
    svc = Deconfliction(store)
    for data in batches:
        svc.submit(read_scenario(data))
    return store


def test_store_rebuilds_the_index_with_what_it_held(tmp_path) -> None:
    """An import over the threshold builds the tree whole, and a later large one
    rebuilds it with the boxes already there (antimeridian copies included): the index
    then holds what row-by-row inserts would, and the conflicts are the same."""
    rng = np.random.default_rng(3)

    def batch(party: str, n: int) -> dict[str, Any]:
        """Small squares near the meridian and across the antimeridian."""
        feats = []
        for k in range(n):
            y = float(rng.uniform(-0.5, 0.5))
            if k % 3:
                x = float(rng.uniform(-0.5, 0.5))
                ring = square(x, y, 0.01)
            else:  # from 179.99 E to 179.99 W
                ring = {"type": "Polygon", "coordinates": [[[179.99, y], [-179.99, y],
                        [-179.99, y + 0.01], [179.99, y + 0.01], [179.99, y]]]}
            feats.append(feature(f"{party}-{k}", party, ring))
        return collection(*feats)

    batches = [batch("a", 300), batch("b", 200), batch("c", 5)]
    bulk = _import(str(tmp_path / "bulk.db"), 100, batches)
    rows = _import(str(tmp_path / "rows.db"), 10**9, batches)
    sql = "SELECT * FROM activity_index ORDER BY rid"
    assert bulk.conn.execute(sql).fetchall() == rows.conn.execute(sql).fetchall()
    assert bulk.conn.execute("SELECT rtreecheck('activity_index')").fetchone() == ("ok",)
    copies = bulk.conn.execute("SELECT count(*) FROM activity_index WHERE rid % 2 = 1"
                               ).fetchone()[0]
    assert copies > 0

    def pairs(store: SQLiteStore) -> set[tuple[str, str]]:
        return {(c.activity_a, c.activity_b) for c in store.list_conflicts(party=None,
                                                                           status="open")}
    assert pairs(bulk) == pairs(rows) != set()
