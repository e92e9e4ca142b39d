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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any

import numpy as np
import orjson
import shapely

from ..core.geodesy import expand_bounds
from ..core.minima import Minima, Separation
from ..core.volumes import VolumeSet
from ..errors import AlreadyExists, DetenteError
from .contract import ActivityRow, ConflictRow, ConflictUpsert, PartyRow, StoredVolumes
from .sqlite_dialogue import LIVE, SQLiteDialogue
from .sqlite_writer import connect, release_writer, writer_for

SCHEMA_VERSION = 3
KM_PER_DEG = 111.32
ALT_UNIT_M = 100.0
T_EPOCH_NS = 1_577_836_800 * 10**9  # 2020-01-01T00:00:00Z
T_UNIT_NS = 1_200 * 10**9  # 20 minutes
_VOL_COLS = "v.id, v.owner_id, v.feature_id, v.kind, v.geom, v.radius, v.alt_lo, v.alt_hi, " \
            "v.t0, v.t1, v.minx, v.miny, v.maxx, v.maxy, o.party, o.ext_id, o.restriction, " \
            "o.applies_to"


def scaled_boxes(bounds: np.ndarray, alt_lo: np.ndarray, alt_hi: np.ndarray,
                 t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """Boxes ``(n, 8)`` in the R*Tree's units: x0, x1, y0, y1, z0, z1, t0, t1."""
    return np.column_stack([
        bounds[:, 0] * KM_PER_DEG, bounds[:, 2] * KM_PER_DEG,
        bounds[:, 1] * KM_PER_DEG, bounds[:, 3] * KM_PER_DEG,
        alt_lo / ALT_UNIT_M, alt_hi / ALT_UNIT_M,
        (np.asarray(t0, dtype=np.int64) - T_EPOCH_NS) / T_UNIT_NS,
        (np.asarray(t1, dtype=np.int64) - T_EPOCH_NS) / T_UNIT_NS,
    ])


def _json_list(values: Sequence[str] | None) -> str | None:
    return orjson.dumps(list(values)).decode() if values is not None else None


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
    centre = (boxes[:, [0, 2, 6]] + boxes[:, [1, 3, 7]]) / 2
    span = np.ptp(centre, axis=0)
    top = (1 << bits) - 1
    q = ((centre - centre.min(axis=0)) / np.where(span > 0, span, 1) * top).astype(np.uint64)
    key = np.zeros(len(boxes), dtype=np.uint64)
    for b in range(bits):
        for k in range(3):
            key |= ((q[:, k] >> np.uint64(b)) & np.uint64(1)) << np.uint64(3 * b + k)
    return np.argsort(key, kind="stable")


def _statements(script: str) -> Iterator[str]:
    """The script's statements (a trigger body holds semicolons of its own)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


class SQLiteStore(SQLiteDialogue):
    """The store contract on one SQLite file."""

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
        script = resources.files("detente.store").joinpath("schema.sql").read_text()
        with self.write():
            if self.is_initialised():
                self._upgrade()
            for stmt in _statements(script):
                self.conn.execute(stmt)
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                              (str(SCHEMA_VERSION),))
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('minima', ?)",
                              (orjson.dumps(minima.to_json()).decode(),))

    def _upgrade(self) -> None:
        """Bring an older database to this schema (the rest of the script is idempotent)."""
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = int(row[0]) if row else SCHEMA_VERSION
        if version == 2:
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
            self.conn.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                              (str(SCHEMA_VERSION),))

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

    # -- parties and tokens ----------------------------------------------------
    def add_party(self, name: str, contact: str | None, now: str) -> PartyRow:
        try:
            cur = self.conn.execute(
                "INSERT INTO parties (name, contact, created_at) VALUES (?, ?, ?)",
                (name, contact, now))
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"a party named '{name}' exists already") from None
        return PartyRow(int(cur.lastrowid or 0), name, contact, now)

    def list_parties(self) -> list[PartyRow]:
        rows = self.conn.execute("SELECT id, name, contact, created_at, escalation FROM "
                                 "parties ORDER BY name").fetchall()
        return [PartyRow(*r) for r in rows]

    def find_party(self, name: str) -> PartyRow | None:
        r = self.conn.execute("SELECT id, name, contact, created_at, escalation FROM parties "
                              "WHERE name=?", (name,)).fetchone()
        return PartyRow(*r) if r else None

    def add_token(self, token_hash: str, party_id: int | None, now: str) -> None:
        self.conn.execute("INSERT INTO tokens (hash, party_id, created_at) VALUES (?, ?, ?)",
                          (token_hash, party_id, now))

    def revoke_tokens(self, party_id: int | None, now: str) -> int:
        cur = self.conn.execute(
            "UPDATE tokens SET revoked_at=? WHERE party_id IS ? AND revoked_at IS NULL",
            (now, party_id))
        return cur.rowcount

    def token_owner(self, token_hash: str) -> tuple[bool, PartyRow | None]:
        """(known and not revoked, its party or None for an admin token)."""
        r = self.conn.execute(
            "SELECT t.party_id, p.id, p.name, p.contact, p.created_at, p.escalation FROM tokens t "
            "LEFT JOIN parties p ON p.id = t.party_id "
            "WHERE t.hash=? AND t.revoked_at IS NULL", (token_hash,)).fetchone()
        if r is None:
            return False, None
        return True, (PartyRow(*r[1:]) if r[0] is not None else None)

    def set_details(self, owner_id: int, notes: str | None, contact: str | None) -> None:
        self.conn.execute("UPDATE owners SET notes=?, contact=? WHERE id=?",
                          (notes, contact, owner_id))

    def details(self, owner_id: int) -> tuple[str | None, str | None]:
        r = self.conn.execute("SELECT notes, contact FROM owners WHERE id=?",
                              (owner_id,)).fetchone()
        return (r[0], r[1]) if r else (None, None)

    def owner_extents(self, owner_ids: Sequence[int]
                      ) -> dict[int, tuple[float, float, float, float, int, int]]:
        out: dict[int, tuple[float, float, float, float, int, int]] = {}
        ids = list(owner_ids)
        for k in range(0, len(ids), 500):
            part = ids[k:k + 500]
            for r in self.conn.execute(
                    "SELECT owner_id, min(minx), min(miny), max(maxx), max(maxy), min(t0), "
                    f"max(t1) FROM volumes WHERE owner_id IN ({','.join('?' * len(part))}) "
                    "GROUP BY owner_id", part):
                out[r[0]] = tuple(r[1:])
        return out

    def _require(self) -> None:
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
                + (f"run 'detente init --db {self.path}' to upgrade it" if row and
                   int(row[0]) == 2 else "export it with that version and submit the "
                   "export to a new database"))
        self._checked = True

    def get_minima(self) -> Minima:
        self._require()
        row = self.conn.execute("SELECT value FROM meta WHERE key='minima'").fetchone()
        return Minima.from_json(orjson.loads(row[0]))

    def set_minima(self, minima: Minima) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('minima', ?)",
                          (orjson.dumps(minima.to_json()).decode(),))

    # -- owners (activities and zones) -------------------------------------------
    def _owner_row(self, r: sqlite3.Row | tuple[Any, ...]) -> ActivityRow:
        return ActivityRow(
            id=r[0], party=r[1], ext_id=r[2], kind=r[3], state=r[4], version=r[5],
            created_at=r[6], updated_at=r[7], volume_count=r[8], is_zone=bool(r[9]),
            restriction=r[10], applies_to=tuple(orjson.loads(r[11])) if r[11] else None)

    @staticmethod
    def _owner_sql(count_volumes: bool) -> str:
        """Owner rows; counting volumes is for listings only (a subquery per row)."""
        count = "(SELECT count(*) FROM volumes v WHERE v.owner_id = o.id)" if count_volumes \
            else "0"
        return ("SELECT o.id, o.party, o.ext_id, o.kind, o.state, o.version, o.created_at, "
                f"o.updated_at, {count}, o.is_zone, o.restriction, o.applies_to FROM owners o")

    def find_owner(self, party: str, ext_id: str, *, zone: bool) -> ActivityRow | None:
        return self.find_owners([(party, ext_id)], zone=zone).get((party, ext_id))

    def _temp_table(self, name: str, columns: str, rows: Sequence[Sequence[Any]]) -> str:
        """A temporary table of keys to join against (big IN lists are slow)."""
        self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({columns})")
        self.conn.execute(f"DELETE FROM temp.{name}")
        marks = ", ".join("?" * len(columns.split(",")))
        self.conn.executemany(f"INSERT OR IGNORE INTO temp.{name} VALUES ({marks})", rows)
        return f"temp.{name}"

    def _temp_ids(self, name: str, ids: Sequence[int]) -> str:
        return self._temp_table(name, "id INTEGER PRIMARY KEY", [(int(i),) for i in ids])

    def find_owners(self, keys: Sequence[tuple[str, str]], *, zone: bool
                    ) -> dict[tuple[str, str], ActivityRow]:
        self._require()
        tmp = self._temp_table("owner_keys", "party TEXT, ext_id TEXT", keys)
        rows = self.conn.execute(
            self._owner_sql(False)
            + f" JOIN {tmp} k ON k.party = o.party AND k.ext_id = o.ext_id "
            "WHERE o.is_zone=?", (int(zone),)).fetchall()
        return {(r[1], r[2]): self._owner_row(r) for r in rows}

    def create_owners(self, rows: Sequence[tuple[str, str, str | None, str | None,
                                                 Sequence[str] | None]],
                      *, zone: bool, now: str) -> list[int]:
        """Insert (party, ext_id, kind, restriction, applies_to) rows; returns their ids."""
        first = self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM owners").fetchone()[0]
        ids = list(range(first, first + len(rows)))
        self.conn.executemany(
            "INSERT INTO owners (id, is_zone, party, ext_id, kind, restriction, applies_to, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(i, int(zone), p, e, k, r, _json_list(a), now, now)
             for i, (p, e, k, r, a) in zip(ids, rows, strict=True)])
        return ids

    def replace_owners(self, rows: Sequence[tuple[int, str | None, str | None,
                                                  Sequence[str] | None]],
                       *, zone: bool, now: str) -> None:
        """New versions of (id, kind, restriction, applies_to): old volumes and red-line
        entries go; a cancelled one comes back as planned."""
        ids = [r[0] for r in rows]
        if not ids:
            return
        tmp = self._temp_ids("replaced", ids)
        idx = self._index(zone)
        self.conn.execute(f"DELETE FROM {idx} WHERE rid >> 1 IN (SELECT v.id FROM volumes v "
                          f"WHERE v.owner_id IN (SELECT id FROM {tmp}))")
        self.conn.execute(f"DELETE FROM volumes WHERE owner_id IN (SELECT id FROM {tmp})")
        col = "zone_id" if zone else "activity_id"
        self.conn.execute(f"DELETE FROM violations WHERE {col} IN (SELECT id FROM {tmp})")
        self.conn.executemany(
            "UPDATE owners SET version = version + 1, kind=?, restriction=?, applies_to=?, "
            "state = CASE state WHEN 'cancelled' THEN 'planned' ELSE state END, "
            "updated_at=? WHERE id=?",
            [(k, r, _json_list(a), now, i) for i, k, r, a in rows])

    def set_state(self, owner_id: int, state: str, now: str) -> None:
        self.conn.execute("UPDATE owners SET state=?, version = version + 1, updated_at=? "
                          "WHERE id=?", (state, now, owner_id))

    # -- volumes ---------------------------------------------------------------
    def _index(self, zone: bool) -> str:
        return "zone_index" if zone else "activity_index"

    def insert_volumes(self, owner_ids: np.ndarray, vols: VolumeSet, *, zone: bool
                       ) -> np.ndarray:
        n = len(vols)
        if n == 0:
            return np.empty(0, dtype=np.int64)
        row = self.conn.execute("SELECT coalesce(max(id), 0) FROM volumes").fetchone()
        ids = np.arange(row[0] + 1, row[0] + 1 + n, dtype=np.int64)
        wkb = shapely.to_wkb(vols.geom)
        fids = [orjson.dumps(f).decode() for f in vols.ids]
        b = vols.bounds
        self.conn.executemany(
            "INSERT INTO volumes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            zip(ids.tolist(), np.asarray(owner_ids).tolist(), [int(zone)] * n, fids,
                vols.kind.tolist(), wkb.tolist(), vols.radius.tolist(), vols.alt_lo.tolist(),
                vols.alt_hi.tolist(), vols.t0.tolist(), vols.t1.tolist(), b[:, 0].tolist(),
                b[:, 1].tolist(), b[:, 2].tolist(), b[:, 3].tolist(), strict=True))
        boxes = scaled_boxes(b, vols.alt_lo, vols.alt_hi, vols.t0, vols.t1)
        idx = self._index(zone)
        order = _morton_order(boxes)
        for copy, bx in _wrapped(boxes):
            sel = order if copy == 0 else order[(bx[order] != boxes[order]).any(axis=1)]
            rids = (2 * ids[sel] + copy).tolist()
            self.conn.executemany(f"INSERT INTO {idx} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                  zip(rids, *bx[sel].T.tolist(), strict=True))
        return ids

    def _load(self, rows: list[tuple[Any, ...]], zone: bool) -> StoredVolumes:
        if not rows:
            return StoredVolumes(VolumeSet.empty(), np.empty(0, dtype=np.int64),
                                 np.empty(0, dtype=np.int64))
        cols = list(zip(*rows, strict=True))
        geom = shapely.from_wkb(np.array(cols[4], dtype=object))
        vs = VolumeSet.from_columns(
            ids=[orjson.loads(f) for f in cols[2]],
            party=cols[14],
            activity=cols[15],
            kind=cols[3],
            geom=geom,
            radius=cols[5],
            alt_lo=cols[6], alt_hi=cols[7], t0=cols[8], t1=cols[9],
            bounds=np.column_stack([cols[10], cols[11], cols[12], cols[13]]),
            restriction=cols[16] if zone else None,
            applies_to=[tuple(orjson.loads(a)) if a else None for a in cols[17]] if zone
            else None,
        )
        return StoredVolumes(vs, np.asarray(cols[0], dtype=np.int64),
                             np.asarray(cols[1], dtype=np.int64))

    def volumes_of(self, owner_ids: Sequence[int], *, zone: bool) -> StoredVolumes:
        self._require()
        rows: list[tuple[Any, ...]] = []
        ids = list(owner_ids)
        for k in range(0, len(ids), 500):
            part = ids[k:k + 500]
            rows += self.conn.execute(
                f"SELECT {_VOL_COLS} FROM volumes v JOIN owners o ON o.id = v.owner_id "
                f"WHERE v.owner_id IN ({','.join('?' * len(part))}) ORDER BY v.id",
                part).fetchall()
        return self._load(rows, zone)

    def live_count(self, *, zone: bool) -> int:
        return int(self.conn.execute(
            "SELECT count(*) FROM volumes v JOIN owners o ON o.id = v.owner_id "
            "WHERE v.is_zone=? AND o.state NOT IN ('cancelled', 'ended')",
            (int(zone),)).fetchone()[0])

    def candidates(self, query: VolumeSet, widen: Separation, *, zone: bool
                   ) -> tuple[StoredVolumes, np.ndarray, np.ndarray]:
        """R*Tree candidates; queries each box and its antimeridian copy."""
        self._require()
        n = len(query)
        if n == 0:
            return self._load([], zone), np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
        # Margins (1 m, 1 cm, 1 s) keep float rounding in the scaled units from shaving
        # off a candidate whose gap is a hair under the minimum.
        qb = expand_bounds(query.bounds, widen.horizontal_m + 1.0)
        dt = int(widen.time_s * 1e9) + 10**9
        boxes = scaled_boxes(qb, query.alt_lo - widen.vertical_m - 0.01,
                             query.alt_hi + widen.vertical_m + 0.01, query.t0 - dt, query.t1 + dt)
        # One statement per box: the R*Tree lookup joined to the live volumes it names.
        sql = (f"SELECT {_VOL_COLS} FROM {self._index(zone)} r "
               "JOIN volumes v ON v.id = r.rid >> 1 JOIN owners o ON o.id = v.owner_id "
               "WHERE r.x1 >= ? AND r.x0 <= ? AND r.y1 >= ? AND r.y0 <= ? AND r.z1 >= ? "
               "AND r.z0 <= ? AND r.t1 >= ? AND r.t0 <= ? "
               "AND o.state NOT IN ('cancelled', 'ended')")
        rows: list[tuple[Any, ...]] = []
        pos: dict[int, int] = {}
        qi: list[int] = []
        si: list[int] = []
        seen: set[tuple[int, int]] = set()
        for copy, bx in _wrapped(boxes):
            for i in range(n) if copy == 0 else np.flatnonzero((bx != boxes).any(axis=1)):
                for row in self.conn.execute(sql, tuple(bx[i].tolist())):
                    at = pos.get(row[0])
                    if at is None:
                        at = pos[row[0]] = len(rows)
                        rows.append(row)
                    if (int(i), at) not in seen:
                        seen.add((int(i), at))
                        qi.append(int(i))
                        si.append(at)
        return self._load(rows, zone), np.asarray(qi, dtype=np.intp), np.asarray(si,
                                                                                   dtype=np.intp)

    def live_volumes(self, *, zone: bool) -> StoredVolumes:
        """Every live stored volume (for bulk detection in memory)."""
        self._require()
        rows = self.conn.execute(
            f"SELECT {_VOL_COLS} FROM volumes v JOIN owners o ON o.id = v.owner_id "
            "WHERE v.is_zone=? AND o.state NOT IN ('cancelled', 'ended') ORDER BY v.id",
            (int(zone),)).fetchall()
        return self._load(rows, zone)

    # -- conflicts and violations ----------------------------------------------
    def upsert_conflicts(self, items: Sequence[ConflictUpsert], now: str
                         ) -> list[tuple[int, str | None]]:
        if not items:
            return []
        norm = [(min(c.owner_a, c.owner_b), max(c.owner_a, c.owner_b),
                 orjson.dumps(c.pairs).decode(), c) for c in items]
        tmp = self._temp_table("conflict_keys", "a INTEGER, b INTEGER",
                               [(a, b) for a, b, _, _ in norm])
        existing = {(r[1], r[2]): (r[0], r[3], r[4]) for r in self.conn.execute(
            "SELECT c.id, c.activity_a, c.activity_b, c.status, c.pairs FROM conflicts c "
            f"JOIN {tmp} k ON k.a = c.activity_a AND k.b = c.activity_b")}
        first = self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM conflicts").fetchone()[0]
        out: list[tuple[int, str | None]] = []
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for a, b, body, c in norm:
            old = existing.get((a, b))
            change: str | None
            if old is None:
                cid, change = first + len(inserts), "opened"
                inserts.append((cid, a, b, body, now, now, c.starts, c.ends, c.deadline))
            else:
                cid = old[0]
                change = ("reopened" if old[1] not in LIVE else
                          "changed" if old[2] != body or c.moved else None)
                if change is not None:
                    updates.append((body, now, c.starts, c.ends, c.deadline, cid))
            out.append((cid, change))
        self.conn.executemany("INSERT INTO conflicts (id, activity_a, activity_b, status, pairs, "
                              "opened_at, updated_at, starts, ends, deadline) "
                              "VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?)", inserts)
        self.conn.executemany("UPDATE conflicts SET status='open', pairs=?, updated_at=?, "
                              "starts=?, ends=?, deadline=? WHERE id=?", updates)
        self.reset_sides([u[-1] for u in updates])
        return out

    def resolve_conflicts(self, owner_ids: Sequence[int], keep: set[int], now: str
                          ) -> list[int]:
        if not owner_ids:
            return []
        tmp = self._temp_ids("resolving", owner_ids)
        rows = self.conn.execute(
            "SELECT id FROM conflicts WHERE status IN ('open', 'acknowledged', 'accepted') "
            f"AND (activity_a IN (SELECT id FROM {tmp}) OR activity_b IN (SELECT id FROM "
            f"{tmp})) ORDER BY id").fetchall()
        gone = [r[0] for r in rows if r[0] not in keep]
        self.conn.executemany("UPDATE conflicts SET status='resolved', updated_at=? WHERE id=?",
                              [(now, c) for c in gone])
        return gone

    def record_violations(self, rows: list[dict[str, Any]], now: str) -> None:
        self.conn.executemany(
            "INSERT INTO violations (activity_id, zone_id, volume, zone_volume, restriction, "
            "overridden, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(r["activity_id"], r["zone_id"], orjson.dumps(r["volume"]).decode(),
              orjson.dumps(r["zone_volume"]).decode(), r["restriction"], int(r["overridden"]),
              now) for r in rows])

    def clear_violations(self, owner_id: int, *, zone: bool) -> None:
        col = "zone_id" if zone else "activity_id"
        self.conn.execute(f"DELETE FROM violations WHERE {col}=?", (owner_id,))

    # -- listings ----------------------------------------------------------------
    def list_owners(self, *, party: str | None, zone: bool) -> list[ActivityRow]:
        self._require()
        sql = self._owner_sql(True) + " WHERE o.is_zone=?"
        args: list[Any] = [int(zone)]
        if party is not None:
            sql += " AND o.party=?"
            args.append(party)
        return [self._owner_row(r) for r in self.conn.execute(sql + " ORDER BY o.id", args)]

    def list_conflicts(self, *, party: str | None, status: str | None,
                       conflict_id: int | None = None,
                       conflict_ids: Sequence[int] | None = None) -> list[ConflictRow]:
        self._require()
        sql = ("SELECT c.id, a.ext_id, a.party, b.ext_id, b.party, c.status, c.opened_at, "
               "c.updated_at, c.pairs, a.id, b.id, c.starts, c.ends, c.deadline "
               "FROM conflicts c "
               "JOIN owners a ON a.id = c.activity_a "
               "JOIN owners b ON b.id = c.activity_b WHERE 1=1")
        args: list[Any] = []
        if party is not None:
            sql += " AND (a.party=? OR b.party=?)"
            args += [party, party]
        if status == "live":
            sql += " AND c.status IN ('open', 'acknowledged', 'accepted')"
        elif status is not None:
            sql += " AND c.status=?"
            args.append(status)
        if conflict_id is not None:
            if not 0 < conflict_id < 2**63:  # beyond SQLite's integers: no such row
                return []
            sql += " AND c.id=?"
            args.append(conflict_id)
        if conflict_ids is not None:
            sql += f" AND c.id IN (SELECT id FROM {self._temp_ids('wanted', conflict_ids)})"
        rows = self.conn.execute(sql + " ORDER BY c.id", args).fetchall()
        sides = self.conflict_sides([r[0] for r in rows])
        return [ConflictRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], orjson.loads(r[8]),
                            r[9], r[10], r[11], r[12], r[13], sides.get(r[0], {}))
                for r in rows]

    def list_violations(self, *, party: str | None) -> list[dict[str, Any]]:
        self._require()
        sql = ("SELECT x.id, a.ext_id, a.party, z.ext_id, z.party, x.volume, x.zone_volume, "
               "x.restriction, x.overridden, x.created_at FROM violations x "
               "JOIN owners a ON a.id = x.activity_id JOIN owners z ON z.id = x.zone_id")
        args: list[Any] = []
        if party is not None:
            sql += " WHERE a.party=? OR z.party=?"
            args += [party, party]
        return [{"id": r[0], "activity": r[1], "party": r[2], "zone": r[3], "zone_party": r[4],
                 "volume": orjson.loads(r[5]), "zone_volume": orjson.loads(r[6]),
                 "restriction": r[7], "overridden": bool(r[8]), "created_at": r[9]}
                for r in self.conn.execute(sql + " ORDER BY x.id", args)]

    def iter_export(self, *, party: str | None) -> Iterator[tuple[ActivityRow, VolumeSet]]:
        for zone in (False, True):
            for owner in self.list_owners(party=party, zone=zone):
                if owner.state == "cancelled":
                    continue
                yield owner, self.volumes_of([owner.id], zone=zone).volumes
