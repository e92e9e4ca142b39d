"""Reading the audit log: verify its chain, and tell a conflict's story from it.

Each entry's hash covers the previous entry's hash and all of its own fields, so
altering, inserting or deleting an entry breaks the chain from there on. Truncating
the tail leaves a valid shorter chain: keep the head hash (``detente audit verify``
prints it) somewhere else to detect that too.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import NotFound
from ..store.contract import Store
from .journal import chain_hash


def verify(store: Store) -> dict[str, Any]:
    """Recompute the chain; name the first entry that does not hold."""
    prev, expected, count = "", 1, 0
    for e in store.iter_audit():
        reason = None
        if e.seq != expected:
            reason = f"entry {expected} is missing (the next one is {e.seq})"
        elif e.prev != prev:
            reason = "its link to the previous entry does not match that entry's hash"
        elif chain_hash(prev, e.seq, e.at, e.actor, e.action, e.subject, e.before, e.after,
                        e.detail) != e.hash:
            reason = "its contents do not match its hash: it was altered"
        if reason is not None:
            return {"ok": False, "entries": count, "broken": expected if e.seq != expected
                    else e.seq, "reason": reason, "head": prev}
        prev, expected, count = e.hash, expected + 1, count + 1
    return {"ok": True, "entries": count, "broken": None, "reason": None, "head": prev}


def timeline(store: Store, conflict_id: int, party: str | None = None
             ) -> list[dict[str, Any]]:
    """Who was told, who acknowledged, and when: a conflict's audit entries, its
    thread's, its events and their deliveries, in time order. With ``party``, only if
    that party is in the conflict."""
    found = store.list_conflicts(party=party, status=None, conflict_id=conflict_id)
    if not found:
        raise NotFound(f"no conflict {conflict_id}")
    c = found[0]
    thread = next((t for t, _, _ in store.list_threads(c.party_a)
                   if t.conflict_id == conflict_id), None)
    subjects = [f"conflict/{conflict_id}"] + ([f"thread/{thread.id}"] if thread else [])
    out: list[dict[str, Any]] = [
        {"at": e.at, "what": e.action, "actor": e.actor, "audit_seq": e.seq,
         **orjson.loads(e.detail)} for e in store.iter_audit(subjects)]
    for event, deliveries in store.conflict_events(conflict_id):
        out.append({"at": event.created_at, "what": "told", "party": event.party,
                    "event": event.id, "type": event.type})
        for webhook, delivered_at, attempts in deliveries:
            if delivered_at is not None:
                out.append({"at": delivered_at, "what": "delivered", "party": event.party,
                            "event": event.id, "webhook": webhook, "attempts": attempts})
    out.sort(key=lambda x: (x["at"], x.get("audit_seq", 0), x.get("event", 0)))
    return out
