"""The conflict lifecycle: open -> acknowledged by each party -> resolved | accepted |
expired, with acknowledgement deadlines and escalation.

A conflict is *open* until both parties have acknowledged it, then *acknowledged*;
*accepted* once both agree to proceed as planned. It is *resolved* when a change makes
it disappear and *expired* when all its volumes have ended. A change to its volume
pairs opens it again and resets both sides: each party must acknowledge what it is
now. Every step is an audit entry and an event to both parties.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ..core.instants import format_instant, parse_instant
from ..errors import InputError, NotFound, Refused
from ..store.contract import ConflictRow, Store
from .journal import SYSTEM, Bus, Journal, transaction

LIVE = ("open", "acknowledged", "accepted")
SWEEP_CHUNK = 200  # conflicts per write transaction of a sweep (about 20 ms of work)
NS = 10**9


@dataclass(frozen=True)
class AckPolicy:
    """Time to acknowledge by lead time (how soon the conflict starts): the first rule
    whose ``lead_s`` is at least the lead time applies, else ``otherwise_s``."""

    rules: tuple[tuple[float, float], ...] = ((3_600, 300), (6 * 3_600, 900),
                                              (24 * 3_600, 3_600))
    otherwise_s: float = 4 * 3_600

    def ack_seconds(self, lead_s: float) -> float:
        for lead, ack in self.rules:
            if lead_s <= lead:
                return ack
        return self.otherwise_s

    def deadline(self, now_ns: int, starts_ns: int) -> str:
        return format_instant(now_ns + int(self.ack_seconds((starts_ns - now_ns) / NS) * NS))

    def to_json(self) -> dict[str, Any]:
        return {"rules": [{"lead_s": lead, "ack_s": ack} for lead, ack in self.rules],
                "otherwise_ack_s": self.otherwise_s}

    @classmethod
    def from_json(cls, data: Any) -> AckPolicy:
        def seconds(x: Any, where: str) -> float:
            if isinstance(x, bool) or not isinstance(x, int | float) or not 0 < x < 10**8:
                raise InputError("a positive number of seconds (under 10^8)", field=where)
            return float(x)

        if not isinstance(data, dict) or not isinstance(data.get("rules", []), list):
            raise InputError("an object with 'rules' (a list) and 'otherwise_ack_s'",
                             item="policy")
        rules = []
        for k, r in enumerate(data.get("rules", [])):
            if not isinstance(r, dict):
                raise InputError("an object with lead_s and ack_s", field=f"rules[{k}]")
            rules.append((seconds(r.get("lead_s"), f"rules[{k}].lead_s"),
                          seconds(r.get("ack_s"), f"rules[{k}].ack_s")))
        if [r[0] for r in rules] != sorted({r[0] for r in rules}):
            raise InputError("rules go by increasing lead_s, each once", field="rules")
        return cls(tuple(rules), seconds(data.get("otherwise_ack_s"), "otherwise_ack_s"))


def read_policy(store: Store) -> AckPolicy:
    text = store.get_setting("ack_policy")
    return AckPolicy() if text is None else AckPolicy.from_json(orjson.loads(text))


def brief(c: ConflictRow, party: str, shared: dict[str, Any] | None = None
          ) -> dict[str, Any]:
    """A conflict as one of its parties sees it in a listing or an event (``shared``:
    the part both parties see alike, from :func:`_shared`, when made already)."""
    mine_is_a = c.party_a == party
    return {
        "id": c.id, "status": c.status, "opened_at": c.opened_at, "updated_at": c.updated_at,
        "activity": c.activity_a if mine_is_a else c.activity_b,
        "counterpart_party": c.party_b if mine_is_a else c.party_a,
        **(shared or _shared(c)),
    }


def _shared(c: ConflictRow) -> dict[str, Any]:
    return {
        "starts": format_instant(c.starts) if c.starts else None,
        "ends": format_instant(c.ends) if c.ends else None,
        "deadline": c.deadline,
        "acknowledged_by": sorted(p for p, s in c.sides.items() if s.acked_at),
        "accepted_by": sorted(p for p, s in c.sides.items() if s.accepted_at),
        "escalated": sorted(p for p, s in c.sides.items() if s.escalated_at),
        "volume_pairs": len(c.pairs),
        "min_horizontal_m": min(p["horizontal_m"] for p in c.pairs),
    }


def announce(journal: Journal, c: ConflictRow, type_: str, **extra: Any) -> None:
    """Tell both parties of a conflict, each in its own terms."""
    shared = _shared(c)
    for party in (c.party_a, c.party_b):
        journal.event(party, type_, {"conflict": brief(c, party, shared), **extra}, c.id)


def conflict_state(c: ConflictRow) -> dict[str, Any]:
    """What the audit digests of a conflict."""
    return {"status": c.status, "pairs": c.pairs, "deadline": c.deadline,
            "sides": {p: [s.acked_at, s.accepted_at, s.escalated_at]
                      for p, s in sorted(c.sides.items())}}


def audit_conflict(journal: Journal, c: ConflictRow, action: str, detail: dict[str, Any],
                   *, first: bool = False, actor: str | None = None) -> None:
    """A conflict's audit entry: from the state its last entry left it in (none when it
    is ``first`` found) to the state it is in now."""
    subject = f"conflict/{c.id}"
    journal.audit(action, subject, detail,
                  before_digest=None if first else journal.last_after(subject),
                  after=conflict_state(c), actor=actor)


def record_changes(store: Store, journal: Journal, changed: Sequence[tuple[int, str]],
                   resolved: Sequence[int],
                   actor_of: Callable[[ConflictRow], str | None] | None = None,
                   known: Mapping[int, ConflictRow] | None = None
                   ) -> dict[int, ConflictRow]:
    """Audit entries and events for conflicts a change opened, changed or resolved;
    returns their rows (read from the store, but those ``known`` already as they
    stand). ``actor_of`` names who changed each (default: the journal's actor)."""
    known = known or {}
    rows = dict(known)
    wanted = [cid for cid, _ in changed if cid not in known] + list(resolved)
    if wanted:
        rows.update((c.id, c) for c in store.list_conflicts(party=None, status=None,
                                                            conflict_ids=wanted))
    who = actor_of or (lambda _c: None)
    for cid, change in changed:
        c = rows[cid]
        audit_conflict(journal, c, f"conflict.{change}", {"status": "open"},
                       first=change == "opened", actor=who(c))
        announce(journal, c, "conflict.opened" if change != "changed" else "conflict.changed",
                 change=change)
    for cid in resolved:
        audit_conflict(journal, rows[cid], "conflict.resolved", {"status": "resolved"},
                       actor=who(rows[cid]))
        announce(journal, rows[cid], "conflict.resolved")
    return rows


class Lifecycle:
    """Acknowledge, accept, and the sweep that escalates and expires."""

    def __init__(self, store: Store, clock: Callable[[], str], bus: Bus | None = None):
        self.store = store
        self.clock = clock
        self.bus = bus

    def policy(self) -> AckPolicy:
        return read_policy(self.store)

    def set_policy(self, policy: AckPolicy, actor: str) -> None:
        with transaction(self.store, self.clock, actor, self.bus) as j:
            old = read_policy(self.store)
            self.store.set_setting("ack_policy", orjson.dumps(policy.to_json()).decode())
            j.audit("policy.replaced", "ack_policy", policy.to_json(), before=old.to_json(),
                    after=policy.to_json())

    def _mine(self, party: str, conflict_id: int) -> ConflictRow:
        found = self.store.list_conflicts(party=party, status=None, conflict_id=conflict_id)
        if not found:
            raise NotFound(f"no conflict {conflict_id}")
        return found[0]

    def _side(self, party: str, conflict_id: int, accept: bool) -> dict[str, Any]:
        st = self.store
        with transaction(st, self.clock, party, self.bus) as j:
            c = self._mine(party, conflict_id)
            if c.status not in LIVE:
                raise Refused(f"conflict {conflict_id} is {c.status}: there is nothing to "
                              f"{'accept' if accept else 'acknowledge'}")
            st.mark_side(conflict_id, party, "acked_at", j.now)
            if accept:
                st.mark_side(conflict_id, party, "accepted_at", j.now)
            sides = st.conflict_sides([conflict_id]).get(conflict_id, {})
            both = (c.party_a, c.party_b)
            status = c.status
            if accept and all(sides.get(p) and sides[p].accepted_at for p in both):
                status = "accepted"
            elif status == "open" and all(sides.get(p) and sides[p].acked_at for p in both):
                status = "acknowledged"
            if status != c.status:
                st.set_conflict_status(conflict_id, status, j.now)
            after = st.list_conflicts(party=party, status=None, conflict_id=conflict_id)[0]
            action = "conflict.accepted" if accept else "conflict.acknowledged"
            audit_conflict(j, after, action, {"party": party, "status": status})
            announce(j, after, action, by=party)
        return brief(after, party)

    def acknowledge(self, party: str, conflict_id: int) -> dict[str, Any]:
        """The party has seen the conflict (each party separately)."""
        return self._side(party, conflict_id, accept=False)

    def accept(self, party: str, conflict_id: int) -> dict[str, Any]:
        """The party agrees to proceed as planned; both agreeing accepts the conflict."""
        return self._side(party, conflict_id, accept=True)

    def sweep(self, progress: Callable[[int, int], None] | None = None
              ) -> dict[str, list[Any]]:
        """Escalate sides past their deadline, expire conflicts whose volumes have all
        ended. Run periodically by the server (and by ``detente sweep``).

        The work is found first, then done in write transactions of at most
        ``SWEEP_CHUNK`` conflicts, each checking again what it changes: a big import's
        conflicts share one deadline, and escalating all of them in one transaction
        would hold every other writer back until it ends. ``progress`` hears (conflicts
        done, conflicts found) after each transaction."""
        st = self.store
        now = self.clock()
        overdue = sorted({cid for cid, _ in st.overdue(now)})
        ending = st.expiring(parse_instant(now))
        escalated: list[list[Any]] = []
        expired: list[int] = []
        total = len(overdue) + len(ending)
        for k in range(0, len(overdue), SWEEP_CHUNK):
            escalated += self._escalate(overdue[k:k + SWEEP_CHUNK])
            if progress is not None:
                progress(min(k + SWEEP_CHUNK, len(overdue)), total)
        for k in range(0, len(ending), SWEEP_CHUNK):
            expired += self._expire(ending[k:k + SWEEP_CHUNK])
            if progress is not None:
                progress(len(overdue) + min(k + SWEEP_CHUNK, len(ending)), total)
        return {"escalated": escalated, "expired": expired}

    def _escalate(self, conflict_ids: Sequence[int]) -> list[list[Any]]:
        st = self.store
        with transaction(st, self.clock, SYSTEM, self.bus) as j:
            due = st.overdue(j.now, conflict_ids)
            for cid, party in due:
                st.mark_side(cid, party, "escalated_at", j.now)
            rows = {c.id: c for c in st.list_conflicts(
                party=None, status=None, conflict_ids=sorted({cid for cid, _ in due}))}
            for cid, party in due:
                c = rows[cid]
                audit_conflict(j, c, "conflict.escalated", {"party": party,
                                                            "deadline": c.deadline})
                found = st.find_party(party)
                announce(j, c, "conflict.escalated", party=party,
                         escalation_contact=found.escalation if found else None)
        return [list(x) for x in due]

    def _expire(self, conflict_ids: Sequence[int]) -> list[int]:
        st = self.store
        with transaction(st, self.clock, SYSTEM, self.bus) as j:
            ended = st.expiring(parse_instant(j.now), conflict_ids)
            for cid in ended:
                st.set_conflict_status(cid, "expired", j.now)
            for c in st.list_conflicts(party=None, status=None, conflict_ids=ended):
                audit_conflict(j, c, "conflict.expired", {"status": "expired"})
                announce(j, c, "conflict.expired")
        return ended
