"""The store contract in SQL that both backends run (see :mod:`.sql_dialogue` for the
dialect rules). Each backend adds its connection and transactions, its schema, and its
spatial index: the candidate search and keeping the index in step with ``volumes``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import orjson
import shapely

from ..core.minima import Minima
from ..core.volumes import VolumeSet
from ..errors import AlreadyExists
from .contract import ActivityRow, ConflictRow, ConflictUpsert, PartyRow, StoredVolumes
from .sql_dialogue import LIVE, SQLDialogue
from .sql_dss import SQLDss
from .sql_tracks import SQLTracks

VOLUME_COLUMNS = ("id, owner_id, is_zone, feature_id, kind, geom, radius, alt_lo, alt_hi, "
                  "t0, t1, minx, miny, maxx, maxy")
VOL_COLS = "v.id, v.owner_id, v.feature_id, v.kind, v.geom, v.radius, v.alt_lo, v.alt_hi, " \
           "v.t0, v.t1, v.minx, v.miny, v.maxx, v.maxy, o.party, o.ext_id, o.restriction, " \
           "o.applies_to"


# Counters of changes that caches compare (the live-position monitor's): any change to
# a zone bumps 'zones_version'; a replaced, cancelled or ended plan bumps
# 'plans_version'. (SQLite needs the WHERE to read ON CONFLICT as an upsert after a
# SELECT.)
def _bump(key: str, where: str = "1 = 1") -> str:
    return (f"INSERT INTO meta (key, value) SELECT '{key}', '1' WHERE {where} "
            "ON CONFLICT (key) DO UPDATE SET value = "
            "CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)")


def _json_list(values: Sequence[str] | None) -> str | None:
    return orjson.dumps(list(values)).decode() if values is not None else None


class SQLStore(SQLDialogue, SQLDss, SQLTracks):
    """What both stores share. Subclasses set ``conn`` and ``TEMP`` (the schema of
    temporary tables) and implement the methods below that raise."""

    TEMP: ClassVar[str]

    def require(self) -> None:
        """Refuse a database that is not detente's, of this schema."""
        raise NotImplementedError

    def _index_volumes(self, ids: np.ndarray, vols: VolumeSet, zone: bool) -> None:
        """Add new volumes to the spatial index (if it is not maintained by the database)."""
        raise NotImplementedError

    def _unindex_owners(self, tmp: str, zone: bool) -> None:
        """Remove the volumes of the owners in temporary table ``tmp`` from the index."""
        raise NotImplementedError

    # -- parties and tokens ----------------------------------------------------
    def add_party(self, name: str, contact: str | None, now: str) -> PartyRow:
        if self.find_party(name) is not None:
            raise AlreadyExists(f"a party named '{name}' exists already")
        pid = self.conn.execute("INSERT INTO parties (name, contact, created_at) VALUES "
                                "(?, ?, ?) RETURNING id", (name, contact, now)).fetchone()[0]
        return PartyRow(int(pid), name, contact, now)

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
        cur = self.conn.execute("UPDATE tokens SET revoked_at=? WHERE party_id IS NOT "
                                "DISTINCT FROM ? AND revoked_at IS NULL", (now, party_id))
        return int(cur.rowcount)

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

    def get_minima(self) -> Minima:
        self.require()
        row = self.conn.execute("SELECT value FROM meta WHERE key='minima'").fetchone()
        return Minima.from_json(orjson.loads(row[0]))

    def set_minima(self, minima: Minima) -> None:
        self.set_setting("minima", orjson.dumps(minima.to_json()).decode())

    # -- owners (activities and zones) -------------------------------------------
    def _owner_row(self, r: Sequence[Any]) -> ActivityRow:
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
        """A table of keys to join against (big IN lists are slow), to be named with an
        alias in the query (``JOIN {tmp} k``, ``FROM {tmp} t``)."""
        self.conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {name} ({columns})")
        self.conn.execute(f"DELETE FROM {self.TEMP}.{name}")
        marks = ", ".join("?" * len(columns.split(",")))
        self.conn.insert_many(f"INSERT INTO {self.TEMP}.{name} VALUES ({marks}) "
                              "ON CONFLICT DO NOTHING", rows)
        return f"{self.TEMP}.{name}"

    def _temp_ids(self, name: str, ids: Sequence[int]) -> str:
        return self._temp_table(name, "id BIGINT PRIMARY KEY", [(int(i),) for i in ids])

    def find_owners(self, keys: Sequence[tuple[str, str]], *, zone: bool
                    ) -> dict[tuple[str, str], ActivityRow]:
        self.require()
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
        self.conn.insert_many(
            "INSERT INTO owners (id, is_zone, party, ext_id, kind, restriction, applies_to, "
            "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(i, int(zone), p, e, k, r, _json_list(a), now, now)
             for i, (p, e, k, r, a) in zip(ids, rows, strict=True)])
        return ids

    def set_state(self, owner_id: int, state: str, now: str) -> None:
        self.conn.execute("UPDATE owners SET state=?, version = version + 1, updated_at=? "
                          "WHERE id=?", (state, now, owner_id))
        self.conn.execute(_bump("plans_version"))
        self.conn.execute(_bump("zones_version", "EXISTS (SELECT 1 FROM owners WHERE id = ? "
                                "AND is_zone = 1)"), (owner_id,))

    def change_counts(self) -> tuple[int, int]:
        """Two numbers: the first changes whenever a plan is replaced, cancelled or
        ended, the second whenever any zone changes (caches compare them)."""
        rows = dict(self.conn.execute("SELECT key, value FROM meta WHERE key IN "
                                      "('plans_version', 'zones_version')").fetchall())
        return int(rows.get("plans_version", 0)), int(rows.get("zones_version", 0))

    def owner_rows(self, owner_ids: Sequence[int]) -> dict[int, ActivityRow]:
        tmp = self._temp_ids("owner_ids", owner_ids)
        rows = self.conn.execute(self._owner_sql(False) + f" JOIN {tmp} k ON k.id = o.id"
                                 ).fetchall()
        return {int(r[0]): self._owner_row(r) for r in rows}

    def replace_owners(self, rows: Sequence[tuple[int, str | None, str | None,
                                                  Sequence[str] | None]],
                       *, zone: bool, now: str) -> None:
        """New versions of (id, kind, restriction, applies_to): old volumes and red-line
        entries go; a cancelled one comes back as planned."""
        ids = [r[0] for r in rows]
        if not ids:
            return
        tmp = self._temp_ids("replaced", ids)
        self._unindex_owners(tmp, zone)
        self.conn.execute(f"DELETE FROM volumes WHERE owner_id IN (SELECT id FROM {tmp} t)")
        col = "zone_id" if zone else "activity_id"
        self.conn.execute(f"DELETE FROM violations WHERE {col} IN (SELECT id FROM {tmp} t)")
        self.conn.executemany(
            "UPDATE owners SET version = version + 1, kind=?, restriction=?, applies_to=?, "
            "state = CASE state WHEN 'cancelled' THEN 'planned' ELSE state END, "
            "updated_at=? WHERE id=?",
            [(k, r, _json_list(a), now, i) for i, k, r, a in rows])
        self.conn.execute(_bump("zones_version" if zone else "plans_version"))

    # -- volumes ---------------------------------------------------------------
    def insert_volumes(self, owner_ids: np.ndarray, vols: VolumeSet, *, zone: bool
                       ) -> np.ndarray:
        n = len(vols)
        if n == 0:
            return np.empty(0, dtype=np.int64)
        if zone:
            self.conn.execute(_bump("zones_version"))
        row = self.conn.execute("SELECT coalesce(max(id), 0) FROM volumes").fetchone()
        ids = np.arange(row[0] + 1, row[0] + 1 + n, dtype=np.int64)
        wkb = vols.wkb()
        fids = [orjson.dumps(f).decode() for f in vols.ids]
        b = vols.bounds
        self._insert_volume_rows(list(zip(
            ids.tolist(), np.asarray(owner_ids).tolist(), [int(zone)] * n, fids,
            vols.kind.tolist(), wkb.tolist(), vols.radius.tolist(), vols.alt_lo.tolist(),
            vols.alt_hi.tolist(), vols.t0.tolist(), vols.t1.tolist(), b[:, 0].tolist(),
            b[:, 1].tolist(), b[:, 2].tolist(), b[:, 3].tolist(), strict=True)))
        self._index_volumes(ids, vols, zone)
        return ids

    def _insert_volume_rows(self, rows: list[tuple[Any, ...]]) -> None:
        self.conn.insert_many(f"INSERT INTO volumes ({VOLUME_COLUMNS}) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)

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
        self.require()
        rows: list[tuple[Any, ...]] = []
        ids = list(owner_ids)
        for k in range(0, len(ids), 500):
            part = ids[k:k + 500]
            rows += self.conn.execute(
                f"SELECT {VOL_COLS} FROM volumes v JOIN owners o ON o.id = v.owner_id "
                f"WHERE v.owner_id IN ({','.join('?' * len(part))}) ORDER BY v.id",
                part).fetchall()
        return self._load(rows, zone)

    def live_count(self, *, zone: bool) -> int:
        return int(self.conn.execute(
            "SELECT count(*) FROM volumes v JOIN owners o ON o.id = v.owner_id "
            "WHERE v.is_zone=? AND o.state NOT IN ('cancelled', 'ended')",
            (int(zone),)).fetchone()[0])

    def live_volumes(self, *, zone: bool) -> StoredVolumes:
        """Every live stored volume (for bulk detection in memory)."""
        self.require()
        rows = self.conn.execute(
            f"SELECT {VOL_COLS} FROM volumes v JOIN owners o ON o.id = v.owner_id "
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
        # A stored conflict's later activity is at most the highest stored, so a pair
        # whose later one is newer (an activity created in this transaction: an import's
        # every pair) has no row to look up.
        top = self.conn.execute("SELECT coalesce(max(activity_b), 0) FROM conflicts"
                                ).fetchone()[0]
        keys = [(a, b) for a, b, _, _ in norm if b <= top]
        existing: dict[tuple[int, int], tuple[Any, ...]] = {}
        if keys:
            tmp = self._temp_table("conflict_keys", "a BIGINT, b BIGINT", keys)
            existing = {(r[1], r[2]): (r[0], r[3], r[4]) for r in self.conn.execute(
                "SELECT c.id, c.activity_a, c.activity_b, c.status, c.pairs FROM conflicts "
                f"c JOIN {tmp} k ON k.a = c.activity_a AND k.b = c.activity_b")}
        first = self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM conflicts").fetchone()[0]
        out: list[tuple[int, str | None]] = []
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        for a, b, body, c in norm:
            old = existing.get((a, b))
            change: str | None
            if old is None:
                cid, change = first + len(inserts), "opened"
                inserts.append((cid, a, b, body, now, now, c.starts, c.ends, c.deadline,
                                c.deadline))
            else:
                cid = old[0]
                change = ("reopened" if old[1] not in LIVE else
                          "changed" if old[2] != body or c.moved else None)
                if change is not None:
                    updates.append((body, now, c.starts, c.ends, c.deadline, c.deadline,
                                    cid))
            out.append((cid, change))
        self.conn.insert_many("INSERT INTO conflicts (id, activity_a, activity_b, status, pairs, "
                              "opened_at, updated_at, starts, ends, deadline, escalate_at) "
                              "VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?)", inserts)
        self.conn.executemany("UPDATE conflicts SET status='open', pairs=?, updated_at=?, "
                              "starts=?, ends=?, deadline=?, escalate_at=? WHERE id=?",
                              updates)
        self.reset_sides([u[-1] for u in updates])
        return out

    def resolve_conflicts(self, owner_ids: Sequence[int], keep: set[int], now: str
                          ) -> list[int]:
        if not owner_ids:
            return []
        tmp = self._temp_ids("resolving", owner_ids)
        # Two lookups, one per side's index (PostgreSQL scans the table for an OR of the
        # two: 12 ms a submission with 50,000 conflicts stored).
        live = "status IN ('open', 'acknowledged', 'accepted')"
        rows = self.conn.execute(
            f"SELECT id FROM conflicts WHERE {live} AND activity_a IN (SELECT id FROM {tmp} t) "
            f"UNION SELECT id FROM conflicts WHERE {live} AND activity_b IN (SELECT id FROM "
            f"{tmp} t) ORDER BY id").fetchall()
        gone = [r[0] for r in rows if r[0] not in keep]
        self.conn.executemany("UPDATE conflicts SET status='resolved', updated_at=? WHERE id=?",
                              [(now, c) for c in gone])
        return gone

    def record_violations(self, rows: list[dict[str, Any]], now: str) -> None:
        self.conn.insert_many(
            "INSERT INTO violations (activity_id, zone_id, volume, zone_volume, restriction, "
            "overridden, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(r["activity_id"], r["zone_id"], orjson.dumps(r["volume"]).decode(),
              orjson.dumps(r["zone_volume"]).decode(), r["restriction"], int(r["overridden"]),
              now) for r in rows])

    def clear_violations(self, owner_id: int, *, zone: bool) -> None:
        col = "zone_id" if zone else "activity_id"
        self.conn.execute(f"DELETE FROM violations WHERE {col}=?", (owner_id,))

    # -- listings ----------------------------------------------------------------
    def list_owners(self, *, party: str | None, zone: bool, live: bool = False,
                    after_id: int | None = None, limit: int | None = None
                    ) -> list[ActivityRow]:
        self.require()
        sql = self._owner_sql(True) + " WHERE o.is_zone=?"
        args: list[Any] = [int(zone)]
        if party is not None:
            sql += " AND o.party=?"
            args.append(party)
        if live:
            sql += " AND o.state <> 'cancelled'"
        if after_id is not None:
            sql += " AND o.id > ?"
            args.append(after_id)
        sql += " ORDER BY o.id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [self._owner_row(r) for r in self.conn.execute(sql, args)]

    def list_conflicts(self, *, party: str | None, status: str | None,
                       conflict_id: int | None = None,
                       conflict_ids: Sequence[int] | None = None,
                       after: int | None = None, limit: int | None = None
                       ) -> list[ConflictRow]:
        self.require()
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
            sql += f" AND c.id IN (SELECT id FROM {self._temp_ids('wanted', conflict_ids)} t)"
        if after is not None:
            sql += " AND c.id > ?"
            args.append(min(after, 2**63 - 1))
        sql += " ORDER BY c.id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        rows = self.conn.execute(sql, args).fetchall()
        sides = self.conflict_sides([r[0] for r in rows])
        return [ConflictRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], orjson.loads(r[8]),
                            r[9], r[10], r[11], r[12], r[13], sides.get(r[0], {}))
                for r in rows]

    def list_violations(self, *, party: str | None) -> list[dict[str, Any]]:
        self.require()
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
