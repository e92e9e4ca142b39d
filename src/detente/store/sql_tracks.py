"""The live-position half of the store (see :mod:`.track_contract`), in SQL both
backends run; a backend may bulk-load positions its own way (``_insert_positions``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .track_contract import PositionRow, ShareRow, TrackingRow

POSITION_COLUMNS = ("owner_id, prev_id, t, lon, lat, alt, hacc, vacc, speed, heading, "
                    "received")
_SHARE_COLS = "id, owner_id, party, reason, subject, since, opened_at, closed_at"


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


def _share(r: Sequence[Any]) -> ShareRow:
    return ShareRow(int(r[0]), int(r[1]), r[2], r[3], r[4], int(r[5]), r[6], r[7])


class SQLTracks:
    conn: Any

    def _insert_positions(self, first_id: int, rows: Sequence[PositionRow]) -> None:
        self.conn.executemany(
            f"INSERT INTO positions (id, {POSITION_COLUMNS}) VALUES ({', '.join('?' * 12)})",
            [(first_id + k, *r) for k, r in enumerate(rows)])

    def next_position_id(self) -> int:
        return int(self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM positions"
                                     ).fetchone()[0])

    def add_positions(self, first_id: int, rows: Sequence[PositionRow]) -> None:
        if rows:
            self._insert_positions(first_id, rows)

    def track(self, head: int, since: int, limit: int) -> list[PositionRow]:
        if head <= 0 or limit <= 0:
            return []
        rows = self.conn.execute(
            "WITH RECURSIVE chain (id, prev, n) AS ("
            " SELECT id, prev_id, 1 FROM positions WHERE id = ? AND t >= ?"
            " UNION ALL SELECT p.id, p.prev_id, c.n + 1 FROM positions p JOIN chain c"
            " ON p.id = c.prev WHERE c.n < ? AND p.t >= ?)"
            f" SELECT {', '.join('p.' + c.strip() for c in POSITION_COLUMNS.split(','))}"
            " FROM chain c JOIN positions p ON p.id = c.id ORDER BY p.t, p.id",
            (head, since, limit, since)).fetchall()
        return [(int(r[0]), int(r[1]), int(r[2]), float(r[3]), float(r[4]), float(r[5]),
                 float(r[6]), float(r[7]), _float(r[8]), _float(r[9]), float(r[10]))
                for r in rows]

    def prune_positions(self, received_before: float) -> int:
        """Ids follow arrival, so the cut is found by bisection on the id (no index on
        the receipt time, which would slow every insert)."""
        lo_hi = self.conn.execute("SELECT min(id), max(id) FROM positions").fetchone()
        if lo_hi[0] is None:
            return 0
        lo, hi = int(lo_hi[0]), int(lo_hi[1]) + 1  # the cut lies in [lo, hi]
        while lo < hi:
            mid = (lo + hi) // 2
            r = self.conn.execute("SELECT id, received FROM positions WHERE id >= ? "
                                  "ORDER BY id LIMIT 1", (mid,)).fetchone()
            if r is not None and float(r[1]) < received_before:
                lo = int(r[0]) + 1
            else:
                hi = mid
        cur = self.conn.execute("DELETE FROM positions WHERE id < ?", (lo,))
        return int(cur.rowcount or 0)

    def set_heads(self, rows: Sequence[tuple[int, int]], upto: int) -> None:
        self.conn.executemany("UPDATE tracking SET head = ? WHERE owner_id = ?",
                              [(h, o) for o, h in rows])
        self.conn.execute("INSERT INTO meta (key, value) VALUES ('track_heads_at', ?) "
                          "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                          (str(upto),))

    def heads(self) -> tuple[dict[int, int], list[tuple[int, int]]]:
        saved = {int(o): int(h) for o, h in self.conn.execute(
            "SELECT owner_id, head FROM tracking WHERE head > 0").fetchall()}
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'track_heads_at'"
                                ).fetchone()
        upto = int(row[0]) if row else 0
        after = [(int(i), int(o)) for i, o in self.conn.execute(
            "SELECT id, owner_id FROM positions WHERE id > ? ORDER BY id", (upto,))]
        return saved, after

    def set_tracking(self, rows: Sequence[TrackingRow], now: str) -> None:
        self.conn.executemany(
            "INSERT INTO tracking (owner_id, status, since, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (owner_id) DO UPDATE SET status = excluded.status, "
            "since = excluded.since, updated_at = excluded.updated_at",
            [(r.owner_id, r.status, r.since, now) for r in rows])

    def tracking_rows(self) -> list[TrackingRow]:
        rows = self.conn.execute(
            "SELECT k.owner_id, k.status, k.since FROM tracking k JOIN owners o "
            "ON o.id = k.owner_id WHERE o.state IN ('planned', 'active') ORDER BY k.owner_id"
        ).fetchall()
        return [TrackingRow(int(r[0]), r[1], int(r[2])) for r in rows]

    def open_shares(self, rows: Sequence[tuple[int, str, str, str, int]], now: str
                    ) -> list[int]:
        if not rows:
            return []
        first = int(self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM track_shares"
                                      ).fetchone()[0])
        ids = list(range(first, first + len(rows)))
        self.conn.executemany(
            "INSERT INTO track_shares (id, owner_id, party, reason, subject, since, "
            "opened_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(i, *r, now) for i, r in zip(ids, rows, strict=True)])
        return ids

    def close_shares(self, share_ids: Sequence[int], now: str) -> None:
        self.conn.executemany("UPDATE track_shares SET closed_at = ? WHERE id = ? AND "
                              "closed_at IS NULL", [(now, int(i)) for i in share_ids])

    def open_share_rows(self) -> list[ShareRow]:
        rows = self.conn.execute(f"SELECT {_SHARE_COLS} FROM track_shares WHERE closed_at "
                                 "IS NULL ORDER BY id").fetchall()
        return [_share(r) for r in rows]

    def share(self, share_id: int) -> ShareRow | None:
        r = self.conn.execute(f"SELECT {_SHARE_COLS} FROM track_shares WHERE id = ?",
                              (share_id,)).fetchone()
        return _share(r) if r else None

    def active_owner_ids(self) -> list[int]:
        # is_zone is tested here, not in SQL: given "AND is_zone = 0", SQLite's planner
        # took the (is_zone, party, ext_id) index and read every activity, once a second
        # (0.4 s of CPU a tick with 643,146 stored), instead of the partial index of the
        # active ones.
        return [int(r[0]) for r in self.conn.execute(
            "SELECT id, is_zone FROM owners WHERE state = 'active'").fetchall() if not r[1]]
