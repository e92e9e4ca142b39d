"""The periodic review: per party, how the dialogue went over a period.

Everything comes from the audit log (so the review shows what can be proven) and the
incidents: conflicts opened, how fast each was acknowledged, escalations, incidents.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

import orjson

from ..core.instants import parse_instant
from ..store.contract import Store

NS = 10**9


def review(store: Store, start: str, end: str) -> dict[str, Any]:
    """Per party, over [start, end): conflicts opened, acknowledged and how fast
    (median seconds from the conflict opening, or last changing, to the party's
    acknowledgement), escalations and incidents."""
    t0, t1 = parse_instant(start), parse_instant(end)
    parties: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "conflicts_opened": 0, "acknowledged": 0, "ack_seconds": [], "escalations": 0,
        "incidents_reported": 0, "incidents_named_in": 0})
    pair = {c.id: (c.party_a, c.party_b)
            for c in store.list_conflicts(party=None, status=None)}
    opened_at: dict[int, int] = {}
    acked: set[tuple[int, str]] = set()
    for e in store.iter_audit():
        if not e.subject.startswith("conflict/"):
            continue
        cid = int(e.subject.split("/", 1)[1])
        at = parse_instant(e.at)
        detail = orjson.loads(e.detail)
        inside = t0 <= at < t1
        if e.action in ("conflict.opened", "conflict.reopened", "conflict.changed"):
            opened_at[cid] = at
            if inside and e.action != "conflict.changed":
                for p in pair.get(cid, ()):
                    parties[p]["conflicts_opened"] += 1
            acked -= {(cid, p) for p in pair.get(cid, ())}
        elif e.action in ("conflict.acknowledged", "conflict.accepted"):
            p = detail["party"]
            if (cid, p) not in acked:  # the first of ack and accept counts
                acked.add((cid, p))
                if inside:
                    parties[p]["acknowledged"] += 1
                    parties[p]["ack_seconds"].append((at - opened_at.get(cid, at)) / NS)
        elif e.action == "conflict.escalated" and inside:
            parties[detail["party"]]["escalations"] += 1
    for i in store.list_incidents(None):
        at = parse_instant(i.created_at)
        if t0 <= at < t1:
            parties[i.reporter]["incidents_reported"] += 1
            for p in i.parties:
                parties[p]["incidents_named_in"] += 1
    rows = []
    for name in sorted(parties):
        r = parties[name]
        secs = r.pop("ack_seconds")
        rows.append({"party": name, **r,
                     "median_ack_s": round(statistics.median(secs), 3) if secs else None})
    return {"from": start, "to": end, "parties": rows}


def review_markdown(data: dict[str, Any]) -> str:
    lines = [f"# detente review: {data['from']} to {data['to']}", "",
             "| Party | Conflicts opened | Acknowledged | Median time to acknowledge "
             "| Escalations | Incidents reported | Incidents named in |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in data["parties"]:
        med = "n/a" if r["median_ack_s"] is None else _duration(r["median_ack_s"])
        lines.append(f"| {r['party']} | {r['conflicts_opened']} | {r['acknowledged']} | "
                     f"{med} | {r['escalations']} | {r['incidents_reported']} | "
                     f"{r['incidents_named_in']} |")
    if not data["parties"]:
        lines.append("| (no activity in this period) | | | | | | |")
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
