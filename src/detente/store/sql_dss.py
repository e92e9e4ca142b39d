"""The F3548 DSS half of the store (see :mod:`.dss_contract`), in SQL both backends run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .dss_contract import DssRef, DssSubscription

_REF_COLS = ("id, is_constraint, owner_id, manager, version, ovn, state, uss_base_url, "
             "subscription_id, t0, t1")
_SUB_COLS = ("id, manager, version, notification_index, uss_base_url, notify_intents, "
             "notify_constraints, implicit, geom, radius, alt_lo, alt_hi, t0, t1, minx, miny, "
             "maxx, maxy")


def _ref(r: Sequence[Any]) -> DssRef:
    return DssRef(r[0], bool(r[1]), int(r[2]), r[3], int(r[4]), r[5], r[6], r[7], r[8],
                  int(r[9]), int(r[10]))


def _sub(r: Sequence[Any]) -> DssSubscription:
    return DssSubscription(r[0], r[1], r[2], int(r[3]), r[4], bool(r[5]), bool(r[6]),
                           bool(r[7]), r[8], float(r[9]), float(r[10]), float(r[11]),
                           int(r[12]), int(r[13]), (r[14], r[15], r[16], r[17]))


class SQLDss:
    """Subscriptions are found by box through a backend's spatial index: the hooks
    ``_index_subscription``, ``_unindex_subscription`` and ``_subscription_box_sql``."""

    conn: Any
    _temp_table: Callable[[str, str, Sequence[Sequence[Any]]], str]  # (SQLStore's)

    def _index_subscription(self, sub: DssSubscription) -> None:
        raise NotImplementedError

    def _unindex_subscription(self, sub_id: str) -> None:
        raise NotImplementedError

    def _subscription_box_sql(self) -> str:
        """SQL true for a subscription whose box meets (?, ?, ?, ?) = x0, y0, x1, y1."""
        raise NotImplementedError

    def dss_ref(self, ref_id: str) -> DssRef | None:
        r = self.conn.execute(f"SELECT {_REF_COLS} FROM dss_refs WHERE id = ?",
                              (ref_id,)).fetchone()
        return _ref(r) if r else None

    def dss_refs_of(self, owner_ids: Sequence[int]) -> dict[int, DssRef]:
        out: dict[int, DssRef] = {}
        ids = sorted({int(i) for i in owner_ids})
        for k in range(0, len(ids), 500):
            part = ids[k:k + 500]
            marks = ", ".join("?" * len(part))
            for r in self.conn.execute(f"SELECT {_REF_COLS} FROM dss_refs WHERE owner_id IN "
                                       f"({marks})", part):
                ref = _ref(r)
                out[ref.owner_id] = ref
        return out

    def dss_put_ref(self, ref: DssRef) -> None:
        self.conn.execute(
            f"INSERT INTO dss_refs ({_REF_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET owner_id = excluded.owner_id, "
            "version = excluded.version, ovn = excluded.ovn, state = excluded.state, "
            "uss_base_url = excluded.uss_base_url, subscription_id = excluded.subscription_id, "
            "t0 = excluded.t0, t1 = excluded.t1",
            (ref.id, int(ref.is_constraint), ref.owner_id, ref.manager, ref.version, ref.ovn,
             ref.state, ref.uss_base_url, ref.subscription_id, ref.t0, ref.t1))

    def dss_delete_ref(self, ref_id: str) -> None:
        self.conn.execute("DELETE FROM dss_refs WHERE id = ?", (ref_id,))

    def dss_dependents(self, subscription_id: str) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT id FROM dss_refs WHERE subscription_id = ? AND is_constraint = 0 "
            "ORDER BY id", (subscription_id,))]

    def dss_subscription(self, sub_id: str) -> DssSubscription | None:
        r = self.conn.execute(f"SELECT {_SUB_COLS} FROM dss_subscriptions WHERE id = ?",
                              (sub_id,)).fetchone()
        return _sub(r) if r else None

    def dss_put_subscription(self, sub: DssSubscription) -> None:
        marks = ", ".join("?" * 18)
        self.conn.execute(
            f"INSERT INTO dss_subscriptions ({_SUB_COLS}) VALUES ({marks}) "
            "ON CONFLICT (id) DO UPDATE SET version = excluded.version, "
            "uss_base_url = excluded.uss_base_url, notify_intents = excluded.notify_intents, "
            "notify_constraints = excluded.notify_constraints, geom = excluded.geom, "
            "radius = excluded.radius, alt_lo = excluded.alt_lo, alt_hi = excluded.alt_hi, "
            "t0 = excluded.t0, t1 = excluded.t1, minx = excluded.minx, miny = excluded.miny, "
            "maxx = excluded.maxx, maxy = excluded.maxy",
            (sub.id, sub.manager, sub.version, sub.notification_index, sub.uss_base_url,
             int(sub.notify_intents), int(sub.notify_constraints), int(sub.implicit), sub.geom,
             sub.radius, sub.alt_lo, sub.alt_hi, sub.t0, sub.t1, *sub.box))
        self._index_subscription(sub)

    def dss_delete_subscription(self, sub_id: str) -> None:
        self._unindex_subscription(sub_id)
        self.conn.execute("DELETE FROM dss_subscriptions WHERE id = ?", (sub_id,))

    def dss_subscriptions_near(self, box: tuple[float, float, float, float], alt_lo: float,
                               alt_hi: float, t0: int, t1: int, now: int
                               ) -> list[DssSubscription]:
        x0, y0, x1, y1 = box
        # Boxes are in unwrapped longitude: look also one turn east and west.
        shifts = " OR ".join([f"({self._subscription_box_sql()})"] * 3)
        params: list[Any] = []
        for d in (0.0, 360.0, -360.0):
            params += [x0 + d, y0, x1 + d, y1]
        rows = self.conn.execute(
            f"SELECT {_SUB_COLS} FROM dss_subscriptions WHERE ({shifts}) AND t1 >= ? "
            "AND t0 <= ? AND alt_hi >= ? AND alt_lo <= ?",
            (*params, max(now, t0), t1, alt_lo, alt_hi))  # unexpired, and meets [t0, t1]
        return [_sub(r) for r in rows]

    def dss_bump(self, sub_ids: Sequence[str]) -> dict[str, int]:
        if not sub_ids:
            return {}
        # One statement for all (a write in a crowded area meets hundreds: one UPDATE
        # each was a ninth of such a write's time).
        tmp = self._temp_table("bumped", "id TEXT PRIMARY KEY", [(i,) for i in sub_ids])
        rows = self.conn.execute("UPDATE dss_subscriptions SET notification_index = "
                                 f"notification_index + 1 WHERE id IN (SELECT id FROM {tmp} t) "
                                 "RETURNING id, notification_index").fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def dss_availability(self, uss: str) -> tuple[str, str] | None:
        r = self.conn.execute("SELECT availability, version FROM dss_availability WHERE "
                              "uss = ?", (uss,)).fetchone()
        return (r[0], r[1]) if r else None

    def dss_set_availability(self, uss: str, availability: str, version: str) -> None:
        self.conn.execute("INSERT INTO dss_availability (uss, availability, version) VALUES "
                          "(?, ?, ?) ON CONFLICT (uss) DO UPDATE SET availability = "
                          "excluded.availability, version = excluded.version",
                          (uss, availability, version))

    def dss_add_report(self, report_id: str, reporter: str, body: str, now: str) -> None:
        self.conn.execute("INSERT INTO dss_reports (id, reporter, body, created_at) VALUES "
                          "(?, ?, ?, ?)", (report_id, reporter, body, now))
