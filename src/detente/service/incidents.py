"""Incidents: what happened, where and to whom; linked to activities and conflicts.

An incident is seen by its reporter and the parties it names, who are told when it
is reported and whenever its status moves (open -> under-review -> closed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import shapely.geometry

from ..core.instants import InstantError, format_instant, parse_instant
from ..errors import InputError, NotFound
from ..store.contract import Store
from ..store.dialogue_contract import IncidentRow
from .journal import Bus, transaction

SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("open", "under-review", "closed")
GEOMETRIES = ("Point", "MultiPoint", "LineString", "MultiLineString", "Polygon",
              "MultiPolygon")


def incident_json(i: IncidentRow) -> dict[str, Any]:
    return {"id": i.id, "reporter": i.reporter, "status": i.status, "severity": i.severity,
            "occurred_at": i.occurred_at, "location": orjson.loads(i.location),
            "description": i.description, "parties": list(i.parties),
            "activities": orjson.loads(i.activities), "conflicts": list(i.conflicts),
            "created_at": i.created_at, "updated_at": i.updated_at}


def _location(value: Any) -> str:
    def bad(reason: str) -> InputError:
        return InputError(reason, item="incident", field="location")

    if not isinstance(value, dict) or value.get("type") not in GEOMETRIES:
        raise bad(f"a GeoJSON geometry: one of {', '.join(GEOMETRIES)}")
    try:
        geom = shapely.geometry.shape(value)
    except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise bad(f"not a readable GeoJSON {value['type']}: {exc}") from None
    x0, y0, x1, y1 = geom.bounds
    if geom.is_empty or not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise bad("an empty geometry or one with non-finite coordinates")
    if x0 < -180 or x1 > 180 or y0 < -90 or y1 > 90:
        raise bad("longitudes in [-180, 180] and latitudes in [-90, 90]")
    return orjson.dumps(value).decode()


class Incidents:
    def __init__(self, store: Store, clock: Callable[[], str], bus: Bus | None = None):
        self.store = store
        self.clock = clock
        self.bus = bus

    def report(self, party: str, *, location: Any, occurred_at: str, description: str,
               severity: str, parties: Sequence[str] = (), activities: Sequence[str] = (),
               conflicts: Sequence[int] = ()) -> dict[str, Any]:
        """Report an incident; the parties named are told. ``activities`` are the
        reporter's own (ids), ``conflicts`` ones the reporter is party to."""
        where = _location(location)
        try:
            when = format_instant(parse_instant(occurred_at))
        except (InstantError, TypeError) as exc:
            raise InputError(str(exc), item="incident", field="occurred_at") from None
        if not isinstance(description, str) or not description.strip() or \
                len(description) > 20_000:
            raise InputError("a description of 1 to 20,000 characters", item="incident",
                             field="description")
        if severity not in SEVERITIES:
            raise InputError(f"one of {', '.join(SEVERITIES)}", item="incident",
                             field="severity")
        st = self.store
        named = list(dict.fromkeys(p for p in parties if p != party))
        for k, p in enumerate(named):
            if st.find_party(p) is None:
                raise InputError(f"no party '{p}'", item="incident", field=f"parties[{k}]")
        for k, a in enumerate(activities):
            owner = st.find_owner(party, a, zone=False)
            if owner is None or owner.state == "cancelled":
                raise InputError(f"no activity '{a}' of yours", item="incident",
                                 field=f"activities[{k}]")
        for k, c in enumerate(conflicts):
            if not st.list_conflicts(party=party, status=None, conflict_id=c):
                raise InputError(f"no conflict {c} of yours", item="incident",
                                 field=f"conflicts[{k}]")
        with transaction(st, self.clock, party, self.bus) as j:
            row = st.add_incident(party, where, when, description, severity, named,
                                  orjson.dumps([{"party": party, "activity": a}
                                                for a in activities]).decode(),
                                  list(conflicts), j.now)
            out = incident_json(row)
            j.audit("incident.reported", f"incident/{row.id}",
                    {"severity": severity, "parties": named}, after=out)
            for p in named:
                j.event(p, "incident.reported", {"incident": out})
        return out

    def _visible(self, party: str, incident_id: int) -> IncidentRow:
        found = self.store.list_incidents(party, incident_id)
        if not found:
            raise NotFound(f"no incident {incident_id}")
        return found[0]

    def get(self, party: str, incident_id: int) -> dict[str, Any]:
        return incident_json(self._visible(party, incident_id))

    def list(self, party: str) -> list[dict[str, Any]]:
        return [incident_json(i) for i in self.store.list_incidents(party)]

    def set_status(self, party: str, incident_id: int, status: str) -> dict[str, Any]:
        """Move an incident's status (its reporter or any party it names may)."""
        if status not in STATUSES:
            raise InputError(f"one of {', '.join(STATUSES)}", item="incident", field="status")
        st = self.store
        with transaction(st, self.clock, party, self.bus) as j:
            before = self._visible(party, incident_id)
            st.set_incident_status(incident_id, status, j.now)
            out = incident_json(st.list_incidents(None, incident_id)[0])
            j.audit("incident.updated", f"incident/{incident_id}",
                    {"from": before.status, "to": status}, before=incident_json(before),
                    after=out)
            for p in {before.reporter, *before.parties} - {party}:
                j.event(p, "incident.updated", {"incident": out, "by": party})
        return out
