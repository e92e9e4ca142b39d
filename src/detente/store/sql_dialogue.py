"""The dialogue half of the store (see :mod:`.dialogue_contract`), in SQL that SQLite
and PostgreSQL both run: ``?`` placeholders (the PostgreSQL connection translates them),
``ON CONFLICT`` rather than ``INSERT OR``, ``RETURNING`` rather than ``lastrowid``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson

from .dialogue_contract import (
    Attempt,
    AuditRow,
    Due,
    EventRow,
    IncidentRow,
    MessageRow,
    Side,
    ThreadRow,
    WebhookRow,
)

LIVE = ("open", "acknowledged", "accepted")
_SIDE_FIELDS = ("acked_at", "accepted_at", "escalated_at")
_RECEIPT_FIELDS = ("delivered_at", "read_at")
_EVENT_COLS = "id, party, type, conflict_id, body, created_at"
_WEBHOOK_COLS = "id, party, url, secret, types, created_at"
_INCIDENT_COLS = ("id, reporter, location, occurred_at, description, severity, status, "
                  "parties, activities, conflicts, created_at, updated_at")


def _prefixed(alias: str, cols: str) -> str:
    return ", ".join(f"{alias}.{c}" for c in cols.split(", "))


def _webhook(r: Sequence[Any]) -> WebhookRow:
    types = tuple(orjson.loads(r[4])) if r[4] is not None else None
    return WebhookRow(r[0], r[1], r[2], r[3], types, r[5])


def _incident(r: Sequence[Any]) -> IncidentRow:
    return IncidentRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], tuple(orjson.loads(r[7])),
                       r[8], tuple(orjson.loads(r[9])), r[10], r[11])


# How many of a conflict's sides have acknowledged it or been escalated: while fewer
# than both, conflicts.escalate_at holds its deadline (else NULL), so that a sweep finds
# what is left to escalate through an index instead of reading every overdue conflict.
_SIDES_DONE = ("(SELECT count(*) FROM conflict_parties s WHERE s.conflict_id = conflicts.id "
               "AND (s.acked_at IS NOT NULL OR s.escalated_at IS NOT NULL))")
ESCALATE_BACKFILL = ("UPDATE conflicts SET escalate_at = deadline WHERE status = 'open' "
                     f"AND {_SIDES_DONE} < 2")


class SQLDialogue:
    """Mixed into both stores; uses their connection (sqlite3's, or one that speaks
    its interface over psycopg)."""

    conn: Any
    _temp_ids: Callable[[str, Sequence[int]], str]  # (SQLStore's)

    # -- conflict sides and lifecycle -------------------------------------------
    def reset_sides(self, conflict_ids: Sequence[int]) -> None:
        """Forget the sides of conflicts that open again or change: each party must
        acknowledge what the conflict is now."""
        self.conn.executemany("DELETE FROM conflict_parties WHERE conflict_id=?",
                              [(c,) for c in conflict_ids])

    def conflict_sides(self, conflict_ids: Sequence[int]) -> dict[int, dict[str, Side]]:
        out: dict[int, dict[str, Side]] = {}
        ids = list(conflict_ids)
        for k in range(0, len(ids), 500):
            part = ids[k:k + 500]
            for r in self.conn.execute(
                    "SELECT conflict_id, party, acked_at, accepted_at, escalated_at FROM "
                    f"conflict_parties WHERE conflict_id IN ({','.join('?' * len(part))})",
                    part):
                out.setdefault(r[0], {})[r[1]] = Side(r[2], r[3], r[4])
        return out

    def mark_side(self, conflict_id: int, party: str, field: str, now: str) -> None:
        if field not in _SIDE_FIELDS:
            raise ValueError(field)
        self.conn.execute("INSERT INTO conflict_parties (conflict_id, party) VALUES (?, ?) "
                          "ON CONFLICT DO NOTHING", (conflict_id, party))
        self.conn.execute(f"UPDATE conflict_parties SET {field}=coalesce({field}, ?) "
                          "WHERE conflict_id=? AND party=?", (now, conflict_id, party))
        if field != "accepted_at":
            self.conn.execute("UPDATE conflicts SET escalate_at = NULL WHERE id = ? AND "
                              f"escalate_at IS NOT NULL AND {_SIDES_DONE} >= 2",
                              (conflict_id,))

    def set_conflict_status(self, conflict_id: int, status: str, now: str) -> None:
        self.conn.execute("UPDATE conflicts SET status=?, updated_at=? WHERE id=?",
                          (status, now, conflict_id))

    # These two run every second: they sort in Python, since with "ORDER BY id" SQLite
    # read every conflict in id order instead of its partial index (35-40 ms a run with
    # 236,047 conflicts, against under 0.1 ms).
    def overdue(self, now: str, conflict_ids: Sequence[int] | None = None
                ) -> list[tuple[int, str]]:
        sql = ("SELECT c.id, a.party, b.party FROM conflicts c "
               "JOIN owners a ON a.id = c.activity_a JOIN owners b ON b.id = c.activity_b "
               "WHERE c.status='open' AND c.escalate_at < ?")
        if conflict_ids is not None:
            sql += f" AND c.id IN (SELECT id FROM {self._temp_ids('due', conflict_ids)} t)"
        rows = sorted(self.conn.execute(sql, (now,)).fetchall())
        sides = self.conflict_sides([r[0] for r in rows])
        out = []
        for cid, pa, pb in rows:
            for p in (pa, pb):
                side = sides.get(cid, {}).get(p, Side())
                if side.acked_at is None and side.escalated_at is None:
                    out.append((cid, p))
        return out

    def expiring(self, now_ns: int, conflict_ids: Sequence[int] | None = None) -> list[int]:
        sql = ("SELECT id FROM conflicts WHERE status IN ('open', 'acknowledged', 'accepted') "
               "AND ends <= ?")
        if conflict_ids is not None:
            sql += f" AND id IN (SELECT id FROM {self._temp_ids('ending', conflict_ids)} t)"
        return sorted(r[0] for r in self.conn.execute(sql, (now_ns,)))

    # -- outbox and webhooks ----------------------------------------------------
    def add_events(self, rows: Sequence[tuple[str, str, int | None, str]], now: str,
                   now_unix: float) -> list[int]:
        if not rows:
            return []
        first = self.conn.execute("SELECT coalesce(max(id), 0) + 1 FROM events").fetchone()[0]
        ids = list(range(first, first + len(rows)))
        self.conn.insert_many(
            "INSERT INTO events (id, party, type, conflict_id, body, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(i, p, t, c, b, now) for i, (p, t, c, b) in zip(ids, rows, strict=True)])
        hooks: dict[str, list[WebhookRow]] = {}
        for w in self.list_webhooks(None):
            hooks.setdefault(w.party, []).append(w)
        if hooks:
            self.conn.insert_many(
                "INSERT INTO deliveries (webhook_id, event_id, next_at) VALUES (?, ?, ?)",
                [(w.id, i, now_unix) for i, (p, t, _, _) in zip(ids, rows, strict=True)
                 for w in hooks.get(p, ()) if w.types is None or t in w.types])
        return ids

    def events_after(self, party: str, after: int, limit: int) -> list[EventRow]:
        rows = self.conn.execute(f"SELECT {_EVENT_COLS} FROM events WHERE party=? AND "
                                 "id > ? ORDER BY id LIMIT ?", (party, after, limit))
        return [EventRow(*r) for r in rows]

    def events_for(self, parties: Sequence[str], after: int, upto: int, limit: int
                   ) -> list[EventRow]:
        marks = ",".join("?" * len(parties))
        rows = self.conn.execute(f"SELECT {_EVENT_COLS} FROM events WHERE party IN ({marks}) "
                                 "AND id > ? AND id <= ? ORDER BY id LIMIT ?",
                                 (*parties, after, upto, limit))
        return [EventRow(*r) for r in rows]

    def last_event_id(self, party: str | None = None) -> int:
        if party is None:
            row = self.conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
        else:
            row = self.conn.execute("SELECT coalesce(max(id), 0) FROM events WHERE party=?",
                                    (party,)).fetchone()
        return int(row[0])

    def conflict_events(self, conflict_id: int
                        ) -> list[tuple[EventRow, list[tuple[int, str | None, int]]]]:
        events = [EventRow(*r) for r in self.conn.execute(
            f"SELECT {_EVENT_COLS} FROM events WHERE conflict_id=? ORDER BY id",
            (conflict_id,))]
        out = []
        for e in events:
            out.append((e, [(int(r[0]), r[1], int(r[2])) for r in self.conn.execute(
                "SELECT webhook_id, delivered_at, attempts FROM deliveries WHERE event_id=? "
                "ORDER BY webhook_id", (e.id,))]))
        return out

    def add_webhook(self, party: str, url: str, secret: str,
                    types: Sequence[str] | None, now: str) -> WebhookRow:
        text = orjson.dumps(list(types)).decode() if types is not None else None
        wid = self.conn.execute("INSERT INTO webhooks (party, url, secret, types, created_at) "
                                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                                (party, url, secret, text, now)).fetchone()[0]
        return WebhookRow(int(wid), party, url, secret,
                          tuple(types) if types is not None else None, now)

    def list_webhooks(self, party: str | None) -> list[WebhookRow]:
        sql = f"SELECT {_WEBHOOK_COLS} FROM webhooks WHERE deleted_at IS NULL"
        args: tuple[Any, ...] = ()
        if party is not None:
            sql += " AND party=?"
            args = (party,)
        return [_webhook(r) for r in self.conn.execute(sql + " ORDER BY id", args)]

    def delete_webhook(self, party: str, webhook_id: int, now: str) -> bool:
        if not 0 < webhook_id < 2**63:
            return False
        cur = self.conn.execute("UPDATE webhooks SET deleted_at=? WHERE id=? AND party=? AND "
                                "deleted_at IS NULL", (now, webhook_id, party))
        if cur.rowcount:
            self.conn.execute("UPDATE deliveries SET failed_at=? WHERE webhook_id=? AND "
                              "delivered_at IS NULL AND failed_at IS NULL", (now, webhook_id))
        return bool(cur.rowcount)

    def due(self, now_unix: float, busy: Sequence[int], limit: int) -> list[list[Due]]:
        heads = self.conn.execute(
            "SELECT d.webhook_id FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id "
            "WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND (w.lease_until IS NULL "
            "OR w.lease_until < ?) GROUP BY d.webhook_id ORDER BY d.webhook_id",
            (now_unix,)).fetchall()
        out = []
        skip = set(busy)
        for (wid,) in heads:
            if wid in skip:
                continue
            rows = self.conn.execute(
                f"SELECT d.attempts, d.next_at, {_prefixed('w', _WEBHOOK_COLS)}, "
                f"{_prefixed('e', _EVENT_COLS)} FROM deliveries d "
                "JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id "
                "WHERE d.webhook_id=? AND d.delivered_at IS NULL AND d.failed_at IS NULL "
                "ORDER BY d.event_id LIMIT ?", (wid, limit)).fetchall()
            if rows and rows[0][1] <= now_unix:
                out.append([Due(_webhook(r[2:8]), EventRow(*r[8:]), r[0]) for r in rows])
        return out

    def claim(self, leases: Sequence[tuple[int, float | None]], until: float, now: float
              ) -> list[int]:
        claimed = []
        for wid, held in leases:
            cur = self.conn.execute(
                "UPDATE webhooks SET lease_until=? WHERE id=? AND (lease_until IS NULL OR "
                "lease_until < ? OR lease_until = ?)", (until, wid, now, held))
            if cur.rowcount:
                claimed.append(wid)
        return claimed

    def next_due(self) -> float | None:
        r = self.conn.execute("SELECT min(next_at) FROM deliveries WHERE delivered_at IS NULL "
                              "AND failed_at IS NULL").fetchone()
        return None if r[0] is None else float(r[0])

    def record_attempts(self, attempts: Sequence[Attempt], now: str) -> None:
        self.conn.executemany(
            "INSERT INTO attempts (webhook_id, event_id, at, status, error, ms) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(a.webhook_id, a.event_id, now, a.status, a.error, a.ms) for a in attempts])
        self.conn.executemany(
            "UPDATE deliveries SET attempts=attempts+1, delivered_at=?, "
            "next_at=coalesce(?, next_at), failed_at=? WHERE webhook_id=? AND event_id=?",
            [(now if a.delivered else None, a.next_at,
              now if not a.delivered and a.next_at is None else None, a.webhook_id,
              a.event_id) for a in attempts])
        self.conn.executemany("UPDATE webhooks SET lease_until=NULL WHERE id=?",
                              [(w,) for w in sorted({a.webhook_id for a in attempts})])

    def requeue(self, webhook: WebhookRow, after: int, everything: bool, now_unix: float
                ) -> int:
        if not everything:
            return int(self.conn.execute(
                "UPDATE deliveries SET attempts = 0, next_at = ?, failed_at = NULL WHERE "
                "webhook_id = ? AND event_id > ? AND failed_at IS NOT NULL",
                (now_unix, webhook.id, after)).rowcount)
        types = list(webhook.types) if webhook.types else None
        kinds = f" AND e.type IN ({','.join('?' * len(types))})" if types else ""
        return int(self.conn.execute(
            "INSERT INTO deliveries (webhook_id, event_id, attempts, next_at) "
            f"SELECT ?, e.id, 0, ? FROM events e WHERE e.party = ? AND e.id > ?{kinds} "
            "ON CONFLICT (webhook_id, event_id) DO UPDATE SET attempts = 0, "
            "next_at = excluded.next_at, failed_at = NULL, delivered_at = NULL",
            (webhook.id, now_unix, webhook.party, after, *(types or ()))).rowcount)

    def list_attempts(self, webhook_id: int, limit: int) -> list[dict[str, object]]:
        rows = self.conn.execute(
            "SELECT a.id, a.event_id, e.type, a.at, a.status, a.error, a.ms FROM attempts a "
            "JOIN events e ON e.id = a.event_id WHERE a.webhook_id=? ORDER BY a.id DESC "
            "LIMIT ?", (webhook_id, limit))
        return [{"id": r[0], "event_id": r[1], "type": r[2], "at": r[3], "status": r[4],
                 "error": r[5], "ms": r[6]} for r in rows]

    # -- hotline ----------------------------------------------------------------
    def thread(self, conflict_id: int | None, party_a: str, party_b: str, now: str
               ) -> ThreadRow:
        a, b = sorted((party_a, party_b))
        if conflict_id is not None:
            r = self.conn.execute("SELECT id, conflict_id, party_a, party_b, created_at FROM "
                                  "threads WHERE conflict_id=?", (conflict_id,)).fetchone()
        else:
            r = self.conn.execute("SELECT id, conflict_id, party_a, party_b, created_at FROM "
                                  "threads WHERE conflict_id IS NULL AND party_a=? AND "
                                  "party_b=?", (a, b)).fetchone()
        if r is not None:
            return ThreadRow(*r)
        tid = self.conn.execute("INSERT INTO threads (conflict_id, party_a, party_b, "
                                "created_at) VALUES (?, ?, ?, ?) RETURNING id",
                                (conflict_id, a, b, now)).fetchone()[0]
        return ThreadRow(int(tid), conflict_id, a, b, now)

    def find_thread(self, thread_id: int) -> ThreadRow | None:
        if not 0 < thread_id < 2**63:
            return None
        r = self.conn.execute("SELECT id, conflict_id, party_a, party_b, created_at FROM "
                              "threads WHERE id=?", (thread_id,)).fetchone()
        return ThreadRow(*r) if r else None

    def list_threads(self, party: str) -> list[tuple[ThreadRow, int, int]]:
        rows = self.conn.execute(
            "SELECT t.id, t.conflict_id, t.party_a, t.party_b, t.created_at, "
            "(SELECT count(*) FROM messages m WHERE m.thread_id = t.id), "
            "(SELECT count(*) FROM messages m JOIN receipts r ON r.message_id = m.id "
            " WHERE m.thread_id = t.id AND r.party = ? AND r.read_at IS NULL) "
            "FROM threads t WHERE t.party_a=? OR t.party_b=? ORDER BY t.id",
            (party, party, party))
        return [(ThreadRow(*r[:5]), r[5], r[6]) for r in rows]

    def add_message(self, thread_id: int, sender: str, body: str, corrects: int | None,
                    recipients: Sequence[str], now: str) -> MessageRow:
        mid = int(self.conn.execute("INSERT INTO messages (thread_id, sender, body, corrects, "
                                    "created_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
                                    (thread_id, sender, body, corrects, now)).fetchone()[0])
        self.conn.executemany("INSERT INTO receipts (message_id, party) VALUES (?, ?)",
                              [(mid, p) for p in recipients])
        return MessageRow(mid, thread_id, sender, body, corrects, now,
                          {p: (None, None) for p in recipients})

    def list_messages(self, thread_id: int) -> list[MessageRow]:
        receipts: dict[int, dict[str, tuple[str | None, str | None]]] = {}
        for r in self.conn.execute(
                "SELECT r.message_id, r.party, r.delivered_at, r.read_at FROM receipts r "
                "JOIN messages m ON m.id = r.message_id WHERE m.thread_id=?", (thread_id,)):
            receipts.setdefault(r[0], {})[r[1]] = (r[2], r[3])
        return [MessageRow(r[0], r[1], r[2], r[3], r[4], r[5], receipts.get(r[0], {}))
                for r in self.conn.execute(
                    "SELECT id, thread_id, sender, body, corrects, created_at FROM messages "
                    "WHERE thread_id=? ORDER BY id", (thread_id,))]

    def mark_receipts(self, message_ids: Sequence[int], party: str, field: str, now: str
                      ) -> list[int]:
        if field not in _RECEIPT_FIELDS:
            raise ValueError(field)
        changed = []
        # A message read was delivered too (one assignment per column: PostgreSQL).
        also = ", delivered_at=coalesce(delivered_at, ?)" if field == "read_at" else ""
        for mid in message_ids:
            cur = self.conn.execute(
                f"UPDATE receipts SET {field}=?{also} WHERE message_id=? AND party=? AND "
                f"{field} IS NULL", (now, now, mid, party) if also else (now, mid, party))
            if cur.rowcount:
                changed.append(mid)
        return changed

    # -- incidents --------------------------------------------------------------
    def add_incident(self, reporter: str, location: str, occurred_at: str, description: str,
                     severity: str, parties: Sequence[str], activities: str,
                     conflicts: Sequence[int], now: str) -> IncidentRow:
        iid = int(self.conn.execute(
            "INSERT INTO incidents (reporter, location, occurred_at, description, severity, "
            "status, parties, activities, conflicts, created_at, updated_at) VALUES "
            "(?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?) RETURNING id",
            (reporter, location, occurred_at, description, severity,
             orjson.dumps(list(parties)).decode(), activities,
             orjson.dumps(list(conflicts)).decode(), now, now)).fetchone()[0])
        self.conn.executemany("INSERT INTO incident_parties VALUES (?, ?) "
                              "ON CONFLICT DO NOTHING",
                              [(iid, p) for p in {reporter, *parties}])
        return self.list_incidents(None, iid)[0]

    def list_incidents(self, party: str | None, incident_id: int | None = None
                       ) -> list[IncidentRow]:
        sql = f"SELECT {_prefixed('i', _INCIDENT_COLS)} FROM incidents i"
        args: list[Any] = []
        where = []
        if party is not None:
            where.append("i.id IN (SELECT incident_id FROM incident_parties WHERE party=?)")
            args.append(party)
        if incident_id is not None:
            if not 0 < incident_id < 2**63:
                return []
            where.append("i.id=?")
            args.append(incident_id)
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_incident(r) for r in self.conn.execute(sql + " ORDER BY i.id", args)]

    def set_incident_status(self, incident_id: int, status: str, now: str) -> None:
        self.conn.execute("UPDATE incidents SET status=?, updated_at=? WHERE id=?",
                          (status, now, incident_id))

    # -- audit ------------------------------------------------------------------
    def audit_head(self) -> tuple[int, str]:
        r = self.conn.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
        return (r[0], r[1]) if r else (0, "")

    def append_audit(self, rows: Sequence[AuditRow]) -> None:
        self.conn.insert_many(
            "INSERT INTO audit (seq, at, actor, action, subject, before, after, detail, prev, "
            "hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            # (plain tuples: sqlite3 reads any other sequence an item at a time, through
            # the sequence protocol, ~770 instructions an item for a NamedTuple)
            map(tuple, rows))

    def audit_last_after(self, subject: str, actions: Sequence[str] | None = None
                         ) -> str | None:
        sql, args = "SELECT after FROM audit WHERE subject=?", [subject]
        if actions is not None:
            sql += f" AND action IN ({','.join('?' * len(actions))})"
            args += actions
        r = self.conn.execute(sql + " ORDER BY seq DESC LIMIT 1", args).fetchone()
        return r[0] if r else None

    def iter_audit(self, subjects: Sequence[str] | None = None) -> Iterator[AuditRow]:
        cols = "seq, at, actor, action, subject, before, after, detail, prev, hash"
        if subjects is None:
            cur = self.conn.execute(f"SELECT {cols} FROM audit ORDER BY seq")
        else:
            marks = ",".join("?" * len(subjects))
            cur = self.conn.execute(f"SELECT {cols} FROM audit WHERE subject IN ({marks}) "
                                    "ORDER BY seq", list(subjects))
        for r in cur:
            yield AuditRow(*r)

    # -- settings and parties ---------------------------------------------------
    def get_setting(self, key: str) -> str | None:
        r = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return r[0] if r else None

    def set_setting(self, key: str, value: str) -> None:
        self.conn.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                          "SET value = excluded.value", (key, value))

    def set_escalation(self, party_id: int, contact: str | None) -> None:
        self.conn.execute("UPDATE parties SET escalation=? WHERE id=?", (contact, party_id))
