"""What a party may read: need-to-know views of stored objects.

A party sees its own activities and zones in full. Of another party it sees only
what conflicts with its own: in a conflict, the counterpart's party name, contact,
kind and the footprint, altitude band and time window of each of the counterpart's
volumes that is in conflict; never its other volumes, its ids, notes or other fields.
Anything else answers "not found", exactly as if it did not exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.geodesy import expand_bounds
from ..core.geometry_json import volume_geometry
from ..core.instants import format_instant, parse_instant
from ..core.volumes import VolumeSet
from ..errors import InputError, NotFound
from ..store.contract import ActivityRow, ConflictRow, Store
from .lifecycle import brief


@dataclass(frozen=True)
class Window:
    """A query's area and time: a lon/lat box in [-180, 180] and [start, end) in ns."""

    bbox: tuple[float, float, float, float] | None = None
    start: int | None = None
    end: int | None = None

    def meets(self, minx: float, miny: float, maxx: float, maxy: float, t0: int, t1: int
              ) -> bool:
        """Whether a box (longitudes possibly unwrapped past +-180) and window meet it."""
        if self.start is not None and t1 <= self.start:
            return False
        if self.end is not None and t0 >= self.end:
            return False
        if self.bbox is None:
            return True
        x0, y0, x1, y1 = self.bbox
        if maxy < y0 or miny > y1:
            return False
        return any(maxx + s >= x0 and minx + s <= x1 for s in (-360.0, 0.0, 360.0))


EVERYWHERE = Window()
PAGE_READ = 1_000  # conflicts read at a time for a windowed page


def volume_json(vols: VolumeSet, k: int, *, with_id: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if with_id:
        out["id"] = vols.ids[k]
    out.update({
        "geometry": volume_geometry(vols.geom[k]),
        "alt_lower_m": float(vols.alt_lo[k]), "alt_upper_m": float(vols.alt_hi[k]),
        "time_start": format_instant(int(vols.t0[k])),
        "time_end": format_instant(int(vols.t1[k])),
    })
    if vols.radius[k] > 0:
        out["radius_m"] = float(vols.radius[k])
    return out


class Disclosure:
    """Read use cases, filtered by need-to-know."""

    def __init__(self, store: Store):
        self.store = store

    def _own(self, party: str, ext_id: str, zone: bool) -> ActivityRow:
        row = self.store.find_owner(party, ext_id, zone=zone)
        if row is None or row.state == "cancelled":
            raise NotFound(f"no {'zone' if zone else 'activity'} '{ext_id}'")
        return row

    def own(self, party: str, ext_id: str, *, zone: bool) -> dict[str, Any]:
        """One of the caller's activities (or zones), in full."""
        row = self._own(party, ext_id, zone)
        vols = self.store.volumes_of([row.id], zone=zone).volumes
        return self.as_written(row, vols, *self.store.details(row.id))

    @staticmethod
    def as_written(row: ActivityRow, vols: VolumeSet, notes: str | None,
                   contact: str | None) -> dict[str, Any]:
        """An activity just written, in full, from its row and the volumes submitted
        (what :meth:`own` would read back)."""
        return owner_json(row, notes, contact, [volume_json(vols, k) for k in range(len(vols))])

    def own_list(self, party: str, *, zone: bool, after: str | None = None,
                 limit: int | None = None) -> tuple[list[dict[str, Any]], bool]:
        """The caller's activities (or zones) in the order they were first declared;
        with ``limit``, up to that many after the one named ``after``, and whether more
        follow."""
        after_id = None
        if after is not None:
            row = self.store.find_owner(party, after, zone=zone)
            if row is None:  # (a cancelled one still marks its place)
                raise InputError(f"no {'zone' if zone else 'activity'} '{after}' of yours "
                                 "to list after", field="after")
            after_id = row.id
        rows = self.store.list_owners(party=party, zone=zone, live=True, after_id=after_id,
                                      limit=None if limit is None else limit + 1)
        more = limit is not None and len(rows) > limit
        return [owner_json(r) for r in rows[:limit]], more

    def conflicts(self, party: str, status: str | None = None,
                  window: Window = EVERYWHERE) -> list[dict[str, Any]]:
        """The caller's conflicts; ``window`` keeps those where both activities' extents
        meet it (a conflict lies where the two activities come together)."""
        return self.conflicts_page(party, status, window)[0]

    def conflicts_page(self, party: str, status: str | None = None,
                       window: Window = EVERYWHERE, *, after: int | None = None,
                       limit: int | None = None, read: int = PAGE_READ
                       ) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``limit`` of those with ids above ``after``, in id order, and whether
        more follow. The store is read in pages too (of at least ``read`` when a window
        drops some), so a page costs about its own size whatever the caller has in all."""
        found: list[ConflictRow] = []
        cursor = after
        while True:
            want = None if limit is None else limit + 1 - len(found)
            if want is not None and window != EVERYWHERE:  # (some rows will not be kept)
                want = max(want, read)
            rows = self.store.list_conflicts(party=party, status=status, after=cursor,
                                             limit=want)
            exhausted = want is None or len(rows) < want
            if rows:
                cursor = rows[-1].id
            if window != EVERYWHERE:
                meet = self._meeting([o for c in rows for o in (c.owner_a, c.owner_b)],
                                     window)
                rows = [c for c in rows if c.owner_a in meet and c.owner_b in meet]
            found += rows
            if exhausted or (limit is not None and len(found) > limit):
                break
        more = limit is not None and len(found) > limit
        return [brief(c, party) for c in found[:limit]], more

    def airspace(self, party: str, window: Window) -> dict[str, Any]:
        """Everything the caller may see in a window, as GeoJSON: its own activities
        and zones, the zones that apply to it, and its conflicts' counterpart volumes."""
        feats: list[dict[str, Any]] = []

        def add(vols: VolumeSet, keep: list[int], props: dict[str, Any],
                with_id: bool) -> None:
            for k in keep:
                v = volume_json(vols, k, with_id=with_id)
                geometry = v.pop("geometry")
                feats.append({"type": "Feature", "geometry": geometry,
                              "properties": {**props, **v}})

        def inside(vols: VolumeSet) -> list[int]:
            b = vols.bounds.tolist()
            return [k for k in range(len(vols)) if window.meets(
                b[k][0], b[k][1], b[k][2], b[k][3], int(vols.t0[k]), int(vols.t1[k]))]

        for zone in (False, True):
            owners = [r for r in self.store.list_owners(party=party, zone=zone)
                      if r.state != "cancelled"]
            for r, vols in self._volumes_meeting(owners, window, zone):
                add(vols, inside(vols), {"role": "own-zone" if zone else "own-activity",
                                         "activity": r.ext_id, "kind": r.kind,
                                         "state": r.state}, True)
        others = [r for r in self.store.list_owners(party=None, zone=True)
                  if r.state != "cancelled" and r.party != party
                  and (r.applies_to is None or party in r.applies_to)]
        for r, vols in self._volumes_meeting(others, window, True):
            add(vols, inside(vols), {"role": "zone", "party": r.party, "zone": r.ext_id,
                                     "restriction": r.restriction}, False)
        live = self.store.list_conflicts(party=party, status="live")
        if window != EVERYWHERE:  # (a counterpart volume lies inside its activity's box)
            theirs = [c.owner_b if c.party_a == party else c.owner_a for c in live]
            meet = self._meeting(theirs, window)
            live = [c for c, o in zip(live, theirs, strict=True) if o in meet]
        for c, (their, _) in zip(live, self._counterparts(live, party), strict=True):
            for v in their["volumes"]:
                b = _geometry_bounds(v["geometry"], v.get("radius_m", 0.0))
                t0, t1 = parse_instant(v["time_start"]), parse_instant(v["time_end"])
                if window.meets(*b, t0, t1):
                    feats.append({"type": "Feature", "geometry": v["geometry"],
                                  "properties": {"role": "counterpart", "conflict": c.id,
                                                 "party": their["party"],
                                                 "kind": their["kind"],
                                                 **{k: x for k, x in v.items()
                                                    if k != "geometry"}}})
        return {"type": "FeatureCollection", "features": feats}

    def conflict(self, party: str, conflict_id: int) -> dict[str, Any]:
        """One conflict of the caller's, with the counterpart's conflicting volumes."""
        found = self.store.list_conflicts(party=party, status=None, conflict_id=conflict_id)
        if not found:
            raise NotFound(f"no conflict {conflict_id}")
        return self._conflict_view(found[0], party)

    def _meeting(self, owner_ids: list[int], window: Window) -> set[int]:
        """The activities or zones whose extent (all their volumes) meets the window."""
        ext = self.store.owner_extents(sorted(set(owner_ids)))
        return {o for o, e in ext.items() if window.meets(*e)}

    def _volumes_meeting(self, owners: list[ActivityRow], window: Window, zone: bool
                         ) -> list[tuple[ActivityRow, VolumeSet]]:
        """Each owner whose extent meets the window, with its volumes: read in one go
        (a query per owner took 21 s for a party with 64,000 activities)."""
        if window != EVERYWHERE:
            meet = self._meeting([r.id for r in owners], window)
            owners = [r for r in owners if r.id in meet]
        stored = self.store.volumes_of([r.id for r in owners], zone=zone)
        order = np.argsort(stored.owner_id, kind="stable")
        owner_of = stored.owner_id[order]
        out = []
        for r in owners:
            lo, hi = np.searchsorted(owner_of, [r.id, r.id + 1])
            out.append((r, stored.volumes.take(order[lo:hi])))
        return out

    def _counterparts(self, rows: list[ConflictRow], party: str
                      ) -> list[tuple[dict[str, Any], list[str]]]:
        """Per conflict, what the caller may see of the other side (party, contact, kind
        and the conflicting volumes only) and those volumes' ids; read for all the
        conflicts at once."""
        keys = [(c.party_b, c.activity_b) if c.party_a == party else
                (c.party_a, c.activity_a) for c in rows]
        found = self.store.find_owners(sorted(set(keys)), zone=False)
        stored = self.store.volumes_of(sorted({r.id for r in found.values()}), zone=False)
        at = {(int(o), v): k for k, (o, v) in enumerate(zip(stored.owner_id.tolist(),
                                                            stored.volumes.ids,
                                                            strict=True))}
        contacts: dict[int, str | None] = {}
        parties: dict[str, Any] = {}
        out = []
        for c, key in zip(rows, keys, strict=True):
            row = found.get(key)
            mine_is_a = c.party_a == party
            wanted = list(dict.fromkeys(p["b" if mine_is_a else "a"] for p in c.pairs))
            volumes: list[dict[str, Any]] = []
            contact = None
            if row is not None:
                volumes = [volume_json(stored.volumes, at[(row.id, v)], with_id=False)
                           for v in wanted if (row.id, v) in at]
                if row.id not in contacts:
                    contacts[row.id] = self.store.details(row.id)[1]
                contact = contacts[row.id]
            if key[0] not in parties:
                parties[key[0]] = self.store.find_party(key[0])
            party_row = parties[key[0]]
            out.append(({"party": key[0],
                         "contact": contact or (party_row.contact if party_row else None),
                         "kind": row.kind if row is not None else None,
                         "volumes": volumes}, wanted))
        return out

    def _conflict_view(self, c: ConflictRow, party: str) -> dict[str, Any]:
        out = brief(c, party)
        mine_is_a = c.party_a == party
        out["counterpart"], wanted = self._counterparts([c], party)[0]
        index = {v: k for k, v in enumerate(wanted)}
        out["pairs"] = [{"own_volume": p["a" if mine_is_a else "b"],
                         "their_volume": index[p["b" if mine_is_a else "a"]],
                         "horizontal_m": p["horizontal_m"], "vertical_m": p["vertical_m"],
                         "time_s": p["time_s"]} for p in c.pairs]
        return out

    def caused(self, party: str, conflicts: list[dict[str, Any]],
               rows: Mapping[int, ConflictRow] | None = None) -> list[dict[str, Any]]:
        """The conflicts a submission caused, as the caller sees them (from ``rows``,
        the submission's own reading of them, when it holds them all)."""
        ids = [c["id"] for c in conflicts]
        if rows is not None and all(i in rows for i in ids):
            return [brief(rows[i], party) for i in sorted(ids)]
        found = self.store.list_conflicts(party=party, status=None, conflict_ids=ids)
        return [brief(r, party) for r in found]


def _geometry_bounds(geometry: dict[str, Any], radius_m: float
                     ) -> tuple[float, float, float, float]:
    """A GeoJSON footprint's box, generously covering a circle's radius."""
    if geometry["type"] == "Point":
        x, y = geometry["coordinates"][:2]
        b = expand_bounds(np.array([[x, y, x, y]], dtype=np.float64), radius_m)[0]
        return float(b[0]), float(b[1]), float(b[2]), float(b[3])
    xs = [p[0] for p in geometry["coordinates"][0]]
    ys = [p[1] for p in geometry["coordinates"][0]]
    if max(xs) - min(xs) > 180:  # across the antimeridian: unwrap
        xs = [x + 360 if x < 0 else x for x in xs]
    return min(xs), min(ys), max(xs), max(ys)


def owner_json(row: ActivityRow, notes: str | None = None, contact: str | None = None,
               volumes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row.ext_id, "kind": row.kind, "state": row.state,
                           "version": row.version, "created_at": row.created_at,
                           "updated_at": row.updated_at}
    if row.is_zone:
        out["restriction"] = row.restriction
        out["applies_to"] = list(row.applies_to) if row.applies_to is not None else None
    if volumes is not None:
        out["notes"] = notes
        out["contact"] = contact
        out["volumes"] = volumes
    else:
        out["volume_count"] = row.volume_count
    return out
