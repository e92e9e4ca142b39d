"""The embedded store: one SQLite file in WAL mode, boxes in SQLite's R*Tree module.

Atomicity: ``write()`` opens ``BEGIN IMMEDIATE``, which takes the database's single
write lock before anything is read, so detection always sees every committed
volume and two submitters are serialised (the later one sees the earlier one).

The R*Tree stores float32 rounded outwards, so it only ever adds false candidates.
Its split heuristics compare extents across dimensions, so every axis is scaled to
comparable units (about a kilometre each): degrees x 111.32, altitude / 100 m, time
in 20 minute steps from 2020.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from importlib import resources
from typing import Any

import numpy as np
import orjson

from ..core.geodesy import expand_bounds
from ..core.minima import Minima, Separation
from ..core.volumes import VolumeSet
from ..errors import DetenteError
from . import rtree_bulk
from .contract import StoredVolumes
from .dss_contract import DssSubscription
from .sql_dialogue import ESCALATE_BACKFILL
from .sql_store import VOL_COLS, SQLStore
from .sqlite_writer import connect, release_writer, writer_for

SCHEMA_VERSION = 7
KM_PER_DEG = 111.32
ALT_UNIT_M = 100.0
T_EPOCH_NS = 1_577_836_800 * 10**9  # 2020-01-01T00:00:00Z
T_UNIT_NS = 1_200 * 10**9  # 20 minutes

def scaled_boxes(bounds: np.ndarray, alt_lo: np.ndarray, alt_hi: np.ndarray,
                 t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """Boxes ``(n, 8)`` in the R*Tree's units: x0, x1, y0, y1, z0, z1, t0, t1."""
    return np.column_stack([
        bounds[:, 0] * KM_PER_DEG, bounds[:, 2] * KM_PER_DEG,
        bounds[:, 1] * KM_PER_DEG, bounds[:, 3] * KM_PER_DEG,
        alt_lo / ALT_UNIT_M, alt_hi / ALT_UNIT_M,
        # In floats: int64 nanoseconds minus the epoch overflow before 1678 + 50 years
        # (the error, ~1 us at the extremes, is far below the query margin of 1 s).
        (np.asarray(t0, dtype=np.float64) - T_EPOCH_NS) / T_UNIT_NS,
        (np.asarray(t1, dtype=np.float64) - T_EPOCH_NS) / T_UNIT_NS,
    ])


def _wrapped(boxes: np.ndarray) -> list[tuple[int, np.ndarray]]:
    """(copy number, boxes) for the box itself and its copy across the antimeridian."""
    out = [(0, boxes)]
    half = 180 * KM_PER_DEG
    over = boxes[:, 1] > half
    under = boxes[:, 0] < -half
    shift = np.zeros_like(boxes)
    shift[over, 0:2] = -2 * half
    shift[under, 0:2] = 2 * half
    out.append((1, boxes + shift))
    return out


def _morton_order(boxes: np.ndarray, bits: int = 10) -> np.ndarray:
    """Box order along a Z curve over (x, y, t) centres: the R*Tree takes boxes that
    arrive near each other about a third faster (measured: 51k/s against 38k/s)."""
    if len(boxes) < 64:  # no gain worth 30 NumPy calls (0.2 ms) for a few boxes
        return np.arange(len(boxes))
    centre = (boxes[:, [0, 2, 6]] + boxes[:, [1, 3, 7]]) / 2
    span = np.ptp(centre, axis=0)
    top = (1 << bits) - 1
    q = ((centre - centre.min(axis=0)) / np.where(span > 0, span, 1) * top).astype(np.uint64)
    key = np.zeros(len(boxes), dtype=np.uint64)
    for b in range(bits):
        for k in range(3):
            key |= ((q[:, k] >> np.uint64(b)) & np.uint64(1)) << np.uint64(3 * b + k)
    return np.argsort(key, kind="stable")


def _read(name: str) -> str:
    return resources.files("detente.store").joinpath(name).read_text()


def _statements(script: str) -> Iterator[str]:
    """The script's statements (a trigger body holds semicolons of its own)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


class SQLiteStore(SQLStore):
    """The store contract on one SQLite file."""

    TEMP = "temp"
    # A write of at least bulk_min boxes, and at least 1 / bulk_share of those already
    # indexed, rebuilds the R*Tree whole (:mod:`.rtree_bulk`) instead of inserting them
    # one by one (measured at a million: 40,000 inserts/s, 200,000 boxes/s rebuilt).
    bulk_min = 20_000
    bulk_share = 4

    def __init__(self, path: str, *, timeout_s: float = 60.0):
        self.path = path
        self.conn = connect(path, timeout_s)  # reads; writes go through the writer
        self._in_write = False
        self._checked = False
        self._writer, self._writer_key = writer_for(path, timeout_s)
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.conn.close()
            release_writer(self._writer_key)

    # -- schema and settings -------------------------------------------------
    def initialise(self, minima: Minima) -> None:
        with self.write():
            self._schema()
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('minima', ?)",
                              (orjson.dumps(minima.to_json()).decode(),))

    def upgrade(self) -> list[str]:
        if not self.is_initialised():
            raise DetenteError(f"{self.path} is not a detente database: run "
                               f"'detente init --db {self.path}'")
        with self.write():
            return self._schema()

    def _schema(self) -> list[str]:
        """Create the schema, or bring an older one to this version (the script is
        idempotent); returns the versions it went through."""
        script = _read("schema.sql")
        version = SCHEMA_VERSION
        if self.is_initialised():
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'"
                                    ).fetchone()
            version = int(row[0]) if row else SCHEMA_VERSION
            if version == 2:  # (the script below makes the tables version 3 added)
                self._upgrade_2()
            elif version == 3:
                self.conn.execute("ALTER TABLE webhooks ADD COLUMN lease_until REAL")
            if version < 7:
                self._upgrade_6(version)
        for stmt in _statements(script + "\n" + _read("dss.sql")):
            self.conn.execute(stmt)
        self.conn.execute("INSERT INTO meta VALUES ('schema_version', ?) ON CONFLICT (key) "
                          "DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))
        return [str(v) for v in range(version + 1, SCHEMA_VERSION + 1)]

    def _upgrade_2(self) -> None:
        """Version 2 had no deadlines, escalation contacts or conflict time spans."""
        for column in ("starts INTEGER NOT NULL DEFAULT 0", "ends INTEGER NOT NULL "
                       "DEFAULT 0", "deadline TEXT"):
            self.conn.execute(f"ALTER TABLE conflicts ADD COLUMN {column}")
        self.conn.execute("ALTER TABLE parties ADD COLUMN escalation TEXT")
        # Existing conflicts span their two activities (wider than their volume
        # pairs: they expire late, never early); they have no deadline.
        self.conn.execute(
            "UPDATE conflicts SET "
            "starts = (SELECT min(t0) FROM volumes WHERE owner_id IN (activity_a, "
            "activity_b)), "
            "ends = (SELECT max(t1) FROM volumes WHERE owner_id IN (activity_a, "
            "activity_b))")

    def _upgrade_6(self, version: int) -> None:
        """Version 7 keeps what is left to escalate in conflicts.escalate_at."""
        self.conn.execute("ALTER TABLE conflicts ADD COLUMN escalate_at TEXT")
        self.conn.execute("DROP INDEX IF EXISTS conflicts_deadline")
        if version > 2:  # (version 2 had no deadlines, nor sides)
            self.conn.execute(ESCALATE_BACKFILL)

    def is_initialised(self) -> bool:
        row = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        return row is not None

    @contextmanager
    def write(self) -> Iterator[None]:
        """One write transaction, on this process's shared write connection (see
        :mod:`.sqlite_writer`: threads queue in order, groups commit together). Other
        processes serialise on SQLite's own write lock."""
        if self._in_write:
            yield
            return
        with self._writer.transaction() as conn:
            own, self.conn = self.conn, conn
            self._in_write = True
            try:
                yield
            finally:
                self.conn = own
                self._in_write = False

    def require(self) -> None:
        """Refuse a file that is not a detente database of this schema (checked once per
        connection: a database does not change its schema under a running process)."""
        if self._checked:
            return
        if not self.is_initialised():
            raise DetenteError(
                f"{self.path} is not a detente database: run 'detente init --db {self.path}'")
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None or int(row[0]) != SCHEMA_VERSION:
            raise DetenteError(
                f"{self.path} was made by another version of detente (schema "
                f"{row[0] if row else '?'}, this one reads {SCHEMA_VERSION}): "
                + (f"run 'detente db upgrade --db {self.path}' to upgrade it" if row and
                   int(row[0]) in (2, 3, 4, 5, 6) else "export it with that version and submit the "
                   "export to a new database"))
        self._checked = True

    # -- the R*Tree ----------------------------------------------------------------
    def _index(self, zone: bool) -> str:
        return "zone_index" if zone else "activity_index"

    def _unindex_owners(self, tmp: str, zone: bool) -> None:
        # By rid (the R*Tree's rowid: a volume's box and its antimeridian copy), so
        # SQLite looks each one up; "rid >> 1 IN (...)" scanned the whole tree (16 ms
        # per replace at 100,000 stored volumes).
        self.conn.execute(f"DELETE FROM {self._index(zone)} WHERE rid IN (SELECT 2 * v.id + c "
                          f"FROM volumes v, (SELECT 0 AS c UNION ALL SELECT 1) WHERE "
                          f"v.owner_id IN (SELECT id FROM {tmp} t))")

    def _index_subscription(self, sub: DssSubscription) -> None:
        rid = self.conn.execute("SELECT rowid FROM dss_subscriptions WHERE id = ?",
                                (sub.id,)).fetchone()[0]
        x0, y0, x1, y1 = sub.box
        self.conn.execute("INSERT OR REPLACE INTO dss_sub_index VALUES (?, ?, ?, ?, ?)",
                          (rid, x0, x1, y0, y1))

    def _unindex_subscription(self, sub_id: str) -> None:
        self.conn.execute("DELETE FROM dss_sub_index WHERE rid IN (SELECT rowid FROM "
                          "dss_subscriptions WHERE id = ?)", (sub_id,))

    def _subscription_box_sql(self) -> str:
        return ("rowid IN (SELECT rid FROM dss_sub_index WHERE x1 >= ? AND y1 >= ? AND "
                "x0 <= ? AND y0 <= ?)")

    def _index_volumes(self, ids: np.ndarray, vols: VolumeSet, zone: bool) -> None:
        boxes = scaled_boxes(vols.bounds, vols.alt_lo, vols.alt_hi, vols.t0, vols.t1)
        idx = self._index(zone)
        # (copy number, which boxes have one, the boxes): every box, then those
        # shifted across the antimeridian
        copies = [(copy, np.full(len(boxes), True) if copy == 0
                   else (bx != boxes).any(axis=1), bx) for copy, bx in _wrapped(boxes)]
        count = sum(int(has.sum()) for _, has, _ in copies)
        if count >= self.bulk_min and count * self.bulk_share >= self.conn.execute(
                f"SELECT count(*) FROM {idx}_rowid").fetchone()[0]:
            old_ids, old_boxes = rtree_bulk.entries(self.conn, idx)
            rtree_bulk.load(self.conn, idx, np.concatenate(
                [old_ids, *(2 * ids[has] + copy for copy, has, _ in copies)]),
                np.concatenate([old_boxes, *(bx[has] for _, has, bx in copies)]))
            return
        order = _morton_order(boxes)
        for copy, has, bx in copies:
            sel = order[has[order]]
            rids = (2 * ids[sel] + copy).tolist()
            self.conn.executemany(f"INSERT INTO {idx} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                  zip(rids, *bx[sel].T.tolist(), strict=True))

    def _hits(self, query: VolumeSet, widen: Separation, zone: bool, cols: str, *,
              join: str = "", where: str = "", args: tuple[Any, ...] = ()
              ) -> Iterator[tuple[int, tuple[Any, ...]]]:
        """(query index, row of ``cols``) for each live stored volume whose R*Tree box
        meets a query box widened by ``widen``, or that box's antimeridian copy (and
        ``where``, of ``args``, over the tables ``join`` adds)."""
        # Margins (1 m, 1 cm, 1 s) keep float rounding in the scaled units from shaving
        # off a candidate whose gap is a hair under the minimum.
        qb = expand_bounds(query.bounds, widen.horizontal_m + 1.0)
        dt = int(widen.time_s * 1e9) + 10**9
        boxes = scaled_boxes(qb, query.alt_lo - widen.vertical_m - 0.01,
                             query.alt_hi + widen.vertical_m + 0.01, query.t0 - dt, query.t1 + dt)
        # One statement per box: the R*Tree lookup joined to the live volumes it names.
        sql = (f"SELECT {cols} FROM {self._index(zone)} r "
               f"JOIN volumes v ON v.id = r.rid >> 1 JOIN owners o ON o.id = v.owner_id {join} "
               "WHERE r.x1 >= ? AND r.x0 <= ? AND r.y1 >= ? AND r.y0 <= ? AND r.z1 >= ? "
               "AND r.z0 <= ? AND r.t1 >= ? AND r.t0 <= ? "
               f"AND o.state NOT IN ('cancelled', 'ended') {where}")
        for copy, bx in _wrapped(boxes):
            for i in range(len(query)) if copy == 0 else np.flatnonzero(
                    (bx != boxes).any(axis=1)):
                for row in self.conn.execute(sql, (*bx[i].tolist(), *args)):
                    yield int(i), row

    def candidates(self, query: VolumeSet, widen: Separation, *, zone: bool
                   ) -> tuple[StoredVolumes, np.ndarray, np.ndarray]:
        """R*Tree candidates; queries each box and its antimeridian copy."""
        self.require()
        if len(query) == 0:
            return self._load([], zone), np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
        rows: list[tuple[Any, ...]] = []
        pos: dict[int, int] = {}
        qi: list[int] = []
        si: list[int] = []
        seen: set[tuple[int, int]] = set()
        for i, row in self._hits(query, widen, zone, VOL_COLS):
            at = pos.get(row[0])
            if at is None:
                at = pos[row[0]] = len(rows)
                rows.append(row)
            if (i, at) not in seen:
                seen.add((i, at))
                qi.append(i)
                si.append(at)
        return self._load(rows, zone), np.asarray(qi, dtype=np.intp), np.asarray(si,
                                                                                   dtype=np.intp)

    def dss_lacking(self, query: VolumeSet, widen: Separation, *, zone: bool,
                    key: Collection[str], but: str | None) -> list[int]:
        self.require()
        return sorted({row[0] for _, row in self._hits(
            query, widen, zone, "d.owner_id", join="JOIN dss_refs d ON d.owner_id = v.owner_id",
            where="AND d.id IS NOT ? AND d.ovn NOT IN (SELECT value FROM json_each(?))",
            args=(but, orjson.dumps(list(key)).decode()))})
