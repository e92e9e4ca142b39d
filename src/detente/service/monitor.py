"""Live positions: conformance, red-line crossings, proximity and silence, as reported.

One :class:`Monitor` per server process keeps every tracked activity's last position,
declared volumes and alert state in memory (columns, so that a batch of reports is a
few vectorised calls; see :mod:`detente.core.tracking`), and writes each batch's
positions, state changes, shares and events in one transaction: an alert exists if and
only if the positions that caused it were stored.

What a report can set off:

* **conformance**: outside every declared volume of its activity (allowing its stated
  accuracy) or outside its time window -> ``activity.nonconforming`` to the owner;
  still out ``grace_s`` later -> ``activity.contingent`` to the owner and to every
  party with an activity within the separation minima of the actual position, who may
  then see the track; back inside -> ``activity.conforming`` to all of them;
* **red lines**: inside a zone that applies to the reporting party ->
  ``zone.crossed`` to the party and the zone's owner (who may then see the track),
  and ``zone.exited`` when it leaves;
* **proximity**: two live positions of different parties closer than the minima for
  their kinds -> ``proximity.started`` to both with the separation and the closing
  speed (each may then see the other's track), ``proximity.ended`` when apart again
  or when one falls silent;
* **silence**: an active activity (state ``active``, or reporting within its time
  window) that reports nothing for ``silence_s`` -> ``activity.silent`` to its owner,
  ``activity.reporting`` when it reports again.

A share (who may see whose track) lasts exactly as long as the event that opened it.
State survives a restart: conformance status and open shares are stored, and the
monitor rebuilds its alerts from them; last positions come back with the next report.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import shapely

from ..core.candidates import ranges
from ..core.geodesy import geodesic_distance
from ..core.instants import NS_PER_S, format_instant
from ..core.minima import Minima
from ..core.tracking import (
    Fixes,
    closing_speed,
    first_problem,
    inside_declared,
    near_pairs,
    round_m,
    velocity_between,
    velocity_en,
    zone_hits,
    zone_tree,
)
from ..core.volumes import VolumeSet
from ..errors import InputError
from ..store.contract import ActivityRow, Store
from ..store.track_contract import TrackingRow
from .deconfliction import Deconfliction
from .journal import SYSTEM, Bus
from .monitor_batches import (
    CONFORMING,
    CONTINGENT,
    NONCONFORMING,
    Batch,
    BatchWriter,
    IngestResult,
    MonitorSettings,
    Share,
    Tracked,
    position_json,
    subject,
)

__all__ = ["IngestResult", "Monitor", "MonitorSettings"]

NEVER = -(2**62)  # the time of a position never reported


class Monitor(BatchWriter):
    """Live-position monitoring for one process (see the module's docstring)."""

    def __init__(self, settings: MonitorSettings | None = None,
                 clock: Callable[[], float] = time.time, bus: Bus | None = None):
        self.settings = settings or MonitorSettings()
        self.clock = clock
        self.bus = bus
        self.lock = threading.RLock()
        # Batches are written in the order they were worked out (see monitor_batches).
        self.turn = threading.Condition()
        self.tickets = 0  # batches worked out
        self.written = 0  # batches written (or failed)
        self._forget()

    def _forget(self) -> None:
        """(Re)start from nothing: the state is rebuilt from the store on first use."""
        self.loaded = False
        self.acts: list[Tracked] = []
        self.slot: dict[int, int] = {}  # owner id -> slot
        # Per slot, as columns: its last position and velocity, its party and kind,
        # where its volumes are in ``vols``.
        self.lon = self.lat = self.alt = self.hacc = self.vacc = np.zeros(0)
        self.ve = self.vn = np.zeros(0)
        self.t = np.zeros(0, dtype=np.int64)
        self.party = self.kind = np.zeros(0, dtype=object)
        self.vol_start = self.vol_count = self.owner_id = np.zeros(0, dtype=np.intp)
        self.heard = np.zeros(0)
        self.head = np.zeros(0, dtype=np.int64)
        self.last_id = 0  # the newest report written
        self.heads_dirty: set[int] = set()  # slots whose head moved since last saved
        self.silent = np.zeros(0, dtype=bool)
        self._grow(1024)
        self.vols = VolumeSet.empty()
        self.vols_live = 0
        self.zones_version = -1
        self.plans_version = -1
        self.counts = (0, 0)  # the store's change counts (plans, zones), read per batch
        self.by_key: dict[str, dict[str, int]] = {}  # party -> activity id -> slot
        self.zones = VolumeSet.empty()
        self.zone_owner = np.empty(0, dtype=np.int64)
        self.zone_rows: dict[int, ActivityRow] = {}
        self.zone_tree: shapely.STRtree | None = None
        self.applies: dict[str, np.ndarray] = {}  # party -> which zone volumes apply
        self.minima: Minima | None = None
        self.pairs: set[tuple[int, int]] = set()  # slots in proximity (lower first)
        self.shares: dict[tuple[int, str, str, str], Share] = {}  # open ones, by key
        self.expected: dict[int, float] = {}  # active, never heard: owner id -> since
        self.last_prune = 0.0
        self.heads_at = 0.0  # when the heads were last saved

    # -- state --------------------------------------------------------------------
    def _load(self, st: Store) -> None:
        """Rebuild alerts from the store once: tracked activities' status, open shares."""
        if self.loaded:
            return
        rows = st.tracking_rows()
        owners = st.owner_rows([r.owner_id for r in rows])
        self._track(st, [owners[r.owner_id] for r in rows if r.owner_id in owners])
        saved, after = st.heads()
        for oid, head in [*saved.items(), *((o, i) for i, o in after)]:
            if oid in self.slot:
                self.head[self.slot[oid]] = head
        self.last_id = after[-1][0] if after else st.next_position_id() - 1
        self.heads_dirty = {self.slot[o] for _, o in after if o in self.slot}
        now = self.clock()
        for r in rows:
            s = self.slot.get(r.owner_id)
            if s is not None:
                a = self.acts[s]
                a.status, a.since = r.status, r.since
                self.heard[s] = now
        for sh in st.open_share_rows():
            key = (sh.owner_id, sh.party, sh.reason, sh.subject)
            self.shares[key] = Share(*key, sh.since, sh.id)
            s = self.slot.get(sh.owner_id)
            if s is None:
                continue
            kind, _, ref = sh.subject.partition("/")
            if sh.reason == "zone" and kind == "zone":
                self.acts[s].zones.add(int(ref))
            elif sh.reason == "proximity" and int(ref) in self.slot:
                o = self.slot[int(ref)]
                self.pairs.add((min(s, o), max(s, o)))
            elif sh.reason == "contingent":
                self.acts[s].told.add(sh.party)
        self.loaded = True

    _COLUMNS: tuple[tuple[str, Any, Any], ...] = (
        ("lon", np.float64, 0.0), ("lat", np.float64, 0.0), ("alt", np.float64, 0.0),
        ("hacc", np.float64, 0.0), ("vacc", np.float64, 0.0), ("ve", np.float64, np.nan),
        ("vn", np.float64, np.nan), ("t", np.int64, NEVER), ("party", object, None),
        ("kind", object, None), ("vol_start", np.intp, 0), ("vol_count", np.intp, 0),
        ("owner_id", np.int64, 0),
        ("head", np.int64, 0),  # its newest stored report (0: none)
        ("heard", np.float64, 0.0),  # Unix time its newest report arrived (0: never)
        ("silent", np.bool_, False))

    def _grow(self, n: int) -> None:
        cap = len(self.t)
        if n <= cap:
            return
        new = max(n, 2 * cap)
        for name, dtype, fill in self._COLUMNS:
            arr = np.full(new, fill, dtype=dtype)
            arr[:cap] = getattr(self, name)
            setattr(self, name, arr)

    def _track(self, st: Store, rows: Sequence[ActivityRow]) -> list[int]:
        """Slots for these activities, loading the volumes of new or changed ones."""
        load = [r for r in rows if r.id not in self.slot
                or self.acts[self.slot[r.id]].owner.version != r.version]
        if load:
            stored = st.volumes_of([r.id for r in load], zone=False)
            order = np.argsort(stored.owner_id, kind="stable")
            vols = stored.volumes.take(order)
            owner_of = stored.owner_id[order]
            base = len(self.vols)
            self.vols = VolumeSet.concat([self.vols, vols])
            starts = np.searchsorted(owner_of, [r.id for r in load], side="left")
            ends = np.searchsorted(owner_of, [r.id for r in load], side="right")
            for r, a, b in zip(load, starts.tolist(), ends.tolist(), strict=True):
                t_first = int(vols.t0[a:b].min()) if b > a else 0
                t_last = int(vols.t1[a:b].max()) if b > a else 0
                s = self.slot.get(r.id)
                if s is None:
                    s = len(self.acts)
                    self._grow(s + 1)
                    self.acts.append(Tracked(r, t_first, t_last))
                    self.slot[r.id] = s
                else:
                    act = self.acts[s]
                    self.vols_live -= int(self.vol_count[s])
                    act.owner, act.t_first, act.t_last = r, t_first, t_last
                self.vol_start[s], self.vol_count[s] = base + a, b - a
                self.party[s], self.kind[s], self.owner_id[s] = r.party, r.kind, r.id
                self.vols_live += b - a
            if len(self.vols) > 4 * max(self.vols_live, 1024):
                self._compact()
        return [self.slot[r.id] for r in rows]

    def _compact(self) -> None:
        """Drop the volumes of replaced versions from the column set."""
        n = len(self.acts)
        counts = self.vol_count[:n]
        keep = ranges(self.vol_start[:n], counts)
        self.vols = self.vols.take(keep)
        self.vol_start[:n] = np.cumsum(counts) - counts
        self.vols_live = len(self.vols)

    def _refresh_zones(self, st: Store) -> None:
        version = self.counts[1]
        if version == self.zones_version:
            return
        stored = st.live_volumes(zone=True)
        self.zones = stored.volumes
        self.zone_owner = stored.owner_id
        self.zone_rows = st.owner_rows(sorted(set(stored.owner_id.tolist())))
        self.zone_tree = zone_tree(self.zones) if len(self.zones) else None
        self.applies = {}
        self.zones_version = version

    def status(self, owner_id: int) -> dict[str, Any] | None:
        """An activity's monitoring status, if it has reported."""
        with self.lock:
            s = self.slot.get(owner_id)
            if s is None:
                return None
            a = self.acts[s]
            return {"status": a.status, "since": format_instant(a.since) if a.since else None,
                    "silent": bool(self.silent[s]), "inside_zones": len(a.zones),
                    "last_report": format_instant(int(self.t[s])) if self.heard[s] else None}

    def latest(self, st: Store, party: str) -> list[dict[str, Any]]:
        """What a party may see live, as GeoJSON points: the last position of each of
        its tracked activities, and of each other party's activity whose track is
        shared with it now (with the reason and the track's link)."""
        with self.lock:
            self._load(st)
            out = []
            n = len(self.acts)
            mine = (self.party[:n] == party) & (self.heard[:n] > 0)
            for k in np.flatnonzero(mine).tolist():
                a = self.acts[k]
                out.append(self._point(k, {
                    "role": "own-position", "activity": a.owner.ext_id,
                    "status": a.status, "silent": bool(self.silent[k])}))
            for share in self.shares.values():
                slot = self.slot.get(share.owner_id)
                if share.party != party or slot is None or not share.id:
                    continue
                owner = self.acts[slot].owner
                out.append(self._point(slot, {
                    "role": "counterpart-position", "party": owner.party,
                    "kind": owner.kind, "reason": share.reason,
                    "track": f"/v1/tracks/{share.id}"}))
            return out

    def _point(self, slot: int, props: dict[str, Any]) -> dict[str, Any]:
        p = self._position(slot)
        return {"type": "Feature",
                "geometry": {"type": "Point", "coordinates": [p.pop("lon"), p.pop("lat")]},
                "properties": {**props, **p}}

    # -- ingest -------------------------------------------------------------------
    def ingest(self, st: Store, party: str, activity: Sequence[str], f: Fixes
               ) -> IngestResult:
        """Check and store one party's batch of reports (all or nothing)."""
        n = len(f)
        if n > self.settings.max_batch:
            raise InputError(f"a batch holds at most {self.settings.max_batch:,} reports "
                             f"(this one {n:,}); split it", item="positions")
        if n == 0:
            return IngestResult(0, 0)
        with self.lock:
            self._load(st)
            now = self.clock()
            bad = first_problem(f, int((now + self.settings.max_future_s) * NS_PER_S))
            if bad is not None:
                k, name, reason = bad
                if name == "time":
                    reason = (f"{format_instant(int(f.t[k]))} is more than "
                              f"{self.settings.max_future_s:g} s in the future")
                raise InputError(reason, item=f"position {k}", field=f"positions[{k}].{name}")
            self.counts = st.change_counts()
            new = self._resolve(st, party, activity)
            slot_of = self.by_key[party]
            s = np.fromiter((slot_of[e] for e in activity), dtype=np.intp, count=n)
            order = np.lexsort((f.t, s))
            s, f = s[order], f.take(order)
            batch = Batch()
            # (s is sorted: an activity's first report is its earliest)
            batch.tracking += [TrackingRow(r.id, CONFORMING,
                                           int(f.t[np.searchsorted(s, self.slot[r.id])]))
                               for r in new]
            self._refresh_zones(st)
            self.minima = st.get_minima()
            # Reports older than their activity's last one are stored, but the state
            # has moved on: only fresh ones are walked.
            fresh = f.t >= self.t[s]
            heard = self._hear(s, f, now, batch)
            self._conformance(st, s, f, fresh, batch)
            self._crossings(party, s, f, fresh, batch)
            self._proximity(heard, now, batch)
            ticket = self._ticket()
        return IngestResult(n, self._write(st, party, batch, (s, f, now), ticket))

    def _resolve(self, st: Store, party: str, activity: Sequence[str]) -> list[ActivityRow]:
        """Map the batch's activity ids to slots (cached until a plan is replaced,
        cancelled or ended anywhere); refuse unknown or cancelled ones. Returns the
        activities tracked for the first time."""
        if self.counts[0] != self.plans_version:
            self.by_key.clear()
            self.plans_version = self.counts[0]
        known = self.by_key.setdefault(party, {})
        first_at: dict[str, int] = {}
        for k, e in enumerate(activity):
            if e not in known:
                first_at.setdefault(e, k)
        if not first_at:
            return []
        found = st.find_owners([(party, e) for e in first_at], zone=False)
        for e, k in first_at.items():
            row = found.get((party, e))
            if row is None or row.state == "cancelled":
                raise InputError(f"no activity {e!r} of yours", item=f"position {k}",
                                 field=f"positions[{k}].activity")
        rows = [found[(party, e)] for e in first_at]
        new = [r for r in rows if r.id not in self.slot]
        known.update(zip(first_at, self._track(st, rows), strict=True))
        return new

    def _hear(self, s: np.ndarray, f: Fixes, now: float, batch: Batch) -> np.ndarray:
        """Take each activity's newest report as its last position (reports older than
        the last one are stored but move nothing); returns the slots that moved."""
        last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
        slots, k = s[last], last
        newer = f.t[k] >= self.t[slots]
        slots, k = slots[newer], k[newer]
        # Velocity: as reported, else from the previous position (this batch's or the
        # last one's), else unknown.
        ve, vn = velocity_en(f.speed[k], f.heading[k])
        prev = k - 1
        same = (prev >= 0) & (s[np.maximum(prev, 0)] == slots)
        p_lon = np.where(same, f.lon[np.maximum(prev, 0)], self.lon[slots])
        p_lat = np.where(same, f.lat[np.maximum(prev, 0)], self.lat[slots])
        p_t = np.where(same, f.t[np.maximum(prev, 0)], self.t[slots])
        de, dn = velocity_between(p_lon, p_lat, p_t, f.lon[k], f.lat[k], f.t[k])
        known_before = same | (self.t[slots] > NEVER)
        de = np.where(known_before, de, np.nan)
        dn = np.where(known_before, dn, np.nan)
        self.ve[slots] = np.where(np.isnan(ve), de, ve)
        self.vn[slots] = np.where(np.isnan(vn), dn, vn)
        self.lon[slots], self.lat[slots], self.alt[slots] = f.lon[k], f.lat[k], f.alt[k]
        self.hacc[slots], self.vacc[slots], self.t[slots] = f.hacc[k], f.vacc[k], f.t[k]
        for slot in slots[self.silent[slots]].tolist():
            a = self.acts[slot]
            self.silent[slot] = False
            batch.tell(a.owner.party, "activity.reporting", {
                "activity": a.owner.ext_id, "position": self._position(slot),
                "silent_for_s": round(now - float(self.heard[slot]), 1)})
            batch.audit.append(("activity.reporting", subject(a.owner), {}))
        self.heard[slots] = now
        if self.expected:
            for oid in self.owner_id[slots].tolist():
                self.expected.pop(oid, None)
        moved: np.ndarray = slots
        return moved

    def _position(self, slot: int) -> dict[str, Any]:
        """A slot's last position, with the velocity it is known to have (rounded)."""
        ve, vn = float(self.ve[slot]), float(self.vn[slot])
        return position_json(int(self.t[slot]), self.lon[slot], self.lat[slot],
                             self.alt[slot], self.hacc[slot], self.vacc[slot],
                             round(math.hypot(ve, vn), 2),
                             round(math.degrees(math.atan2(ve, vn)) % 360.0, 1))

    @staticmethod
    def _fix(f: Fixes, k: int) -> dict[str, Any]:
        """Report ``k`` of a batch, as reported."""
        return position_json(int(f.t[k]), f.lon[k], f.lat[k], f.alt[k], f.hacc[k],
                             f.vacc[k], f.speed[k], f.heading[k])

    # -- conformance ----------------------------------------------------------------
    def _conformance(self, st: Store, s: np.ndarray, f: Fixes, fresh: np.ndarray,
                     batch: Batch) -> None:
        counts = self.vol_count[s]
        fix_idx = np.repeat(np.arange(len(s)), counts)
        vol_idx = ranges(self.vol_start[s], counts)
        inside_pair = inside_declared(f, fix_idx, self.vols, vol_idx)
        inside = np.bincount(fix_idx[inside_pair], minlength=len(s)) > 0
        # Only activities that are out now, or were, need a closer look.
        look = set(s[fresh & ~inside].tolist())
        look |= {i for i in np.unique(s).tolist() if self.acts[i].status != CONFORMING}
        for slot in sorted(look):
            a = self.acts[slot]
            ks = np.flatnonzero((s == slot) & fresh).tolist()
            near_at = self._near_lazily(st, a, f, [k for k in ks if not inside[k]])
            for k in ks:
                self._step(st, slot, a, bool(inside[k]), f, k, batch, near_at)

    def _step(self, st: Store, slot: int, a: Tracked, inside: bool, f: Fixes, k: int,
              batch: Batch, near_at: Callable[[int], dict[str, set[str]]]) -> None:
        """One fresh report through the conformance states, in time order. Every report
        of a contingent activity is checked for parties near it: one that passes within
        the minima of another's plan between two checks would otherwise tell no one."""
        t = int(f.t[k])
        if inside and a.status != CONFORMING:
            self._conform(a, t, self._fix(f, k), batch)
        elif not inside and a.status == CONFORMING:
            a.status, a.since = NONCONFORMING, t
            batch.tracking.append(TrackingRow(a.owner.id, a.status, t))
            batch.tell(a.owner.party, "activity.nonconforming", {
                "activity": a.owner.ext_id, "position": self._fix(f, k),
                "reason": self._why_out(a, f, k),
                "contingent_after_s": self.settings.grace_s})
            batch.audit.append(("activity.nonconforming", subject(a.owner),
                                {"time": format_instant(t)}))
        elif (not inside and a.status == NONCONFORMING
              and t - a.since >= self.settings.grace_s * NS_PER_S):
            self._contingent(a, t, self._fix(f, k), near_at(k), batch)
        elif not inside and a.status == CONTINGENT:
            told = self._tell_near(a, self._fix(f, k), near_at(k), batch)
            if told:
                batch.audit.append(("activity.contingent", subject(a.owner),
                                    {"time": format_instant(t), "told": told}))

    def _why_out(self, a: Tracked, f: Fixes, k: int) -> str:
        t = int(f.t[k])
        if t < a.t_first or t > a.t_last:
            return "outside its time window"
        return "outside its declared volumes"

    def _conform(self, a: Tracked, t: int, position: dict[str, Any], batch: Batch) -> None:
        was = a.status
        a.status, a.since = CONFORMING, t
        batch.tracking.append(TrackingRow(a.owner.id, a.status, t))
        batch.tell(a.owner.party, "activity.conforming", {
            "activity": a.owner.ext_id, "position": position, "was": was})
        for p in sorted(a.told):
            batch.tell(p, "activity.conforming", {"counterpart": {
                "party": a.owner.party, "kind": a.owner.kind, "position": position},
                "was": was})
            self._unshare(batch, a.owner.id, p, "contingent", "contingent")
        a.told.clear()
        batch.audit.append(("activity.conforming", subject(a.owner),
                            {"time": format_instant(t), "was": was}))

    def _contingent(self, a: Tracked, t: int, position: dict[str, Any],
                    near: dict[str, set[str]], batch: Batch) -> None:
        """Contingent: the owner is told, and so is every party with an activity within
        the minima of where it actually is (they may see its track until it conforms)."""
        a.status = CONTINGENT
        batch.tracking.append(TrackingRow(a.owner.id, a.status, a.since))
        batch.tell(a.owner.party, "activity.contingent", {
            "activity": a.owner.ext_id, "position": position,
            "nonconforming_since": format_instant(a.since)})
        told = self._tell_near(a, position, near, batch)
        batch.audit.append(("activity.contingent", subject(a.owner),
                            {"time": format_instant(t), "told": told}))

    def _tell_near(self, a: Tracked, position: dict[str, Any], near: dict[str, set[str]],
                   batch: Batch) -> list[str]:
        """Tell the parties ``near`` a contingent activity's position (their activities
        within the minima of it) that have not been told yet; returns them."""
        near = {p: mine for p, mine in near.items() if p not in a.told}
        for p, mine in sorted(near.items()):
            a.told.add(p)
            key = self._share(batch, a.owner.id, p, "contingent", "contingent", a.since)
            batch.tell(p, "activity.contingent", {
                "activity": sorted(mine), "counterpart": {
                    "party": a.owner.party, "kind": a.owner.kind, "position": position},
                "nonconforming_since": format_instant(a.since)}, key)
        return sorted(near)

    def _near_lazily(self, st: Store, a: Tracked, f: Fixes, ks: list[int]
                     ) -> Callable[[int], dict[str, set[str]]]:
        """:meth:`_near_plans` of reports ``ks`` by report, looked up for all of them in
        one query at the first need (most batches never need it)."""
        near: dict[int, dict[str, set[str]]] = {}

        def at(k: int) -> dict[str, set[str]]:
            if not near:
                near.update(zip(ks, self._near_plans(st, a, f, ks), strict=True))
            return near[k]

        return at

    def _near_plans(self, st: Store, a: Tracked, f: Fixes, ks: Sequence[int],
                    until: int | None = None) -> list[dict[str, set[str]]]:
        """For each report ``k`` of ``ks`` (of activity ``a``): the other parties'
        activities within the minima of it, a small circle (its accuracy) x its altitude
        (+- accuracy) x its instant (or from it ``until`` then, for the last known
        position), through the same detection as submissions (one query for them all)."""
        if not ks:
            return []
        idx = np.asarray(ks, dtype=np.intp)
        n = len(idx)
        t1 = f.t[idx] + 1 if until is None else np.maximum(f.t[idx], until) + 1
        here = VolumeSet.from_columns(
            ids=[str(k) for k in ks], party=[a.owner.party] * n,
            activity=[a.owner.ext_id] * n, kind=[a.owner.kind] * n,
            geom=shapely.points(f.lon[idx], f.lat[idx]),
            radius=np.maximum(f.hacc[idx], 0.01), alt_lo=f.alt[idx] - f.vacc[idx],
            alt_hi=f.alt[idx] + f.vacc[idx], t0=f.t[idx], t1=t1)
        found = Deconfliction(st).preview(here, self.minima)
        out: dict[str, dict[str, set[str]]] = {str(k): {} for k in ks}
        for c in found:
            if c["party"] != a.owner.party:
                out[c["volume"]].setdefault(c["party"], set()).add(c["activity"])
        return [out[str(k)] for k in ks]

    # -- red lines ----------------------------------------------------------------
    def _crossings(self, party: str, s: np.ndarray, f: Fixes, fresh: np.ndarray,
                   batch: Batch) -> None:
        hits: dict[int, set[int]] = {}
        if self.zone_tree is not None:
            applies = self.applies.get(party)
            if applies is None:  # (as for plans: every party but the owner, or the list)
                applies = self.applies[party] = np.array(
                    [party in at if at is not None else p != party
                     for p, at in zip(self.zones.party, self.zones.applies_to, strict=True)],
                    dtype=bool)
            fi, zi = zone_hits(f, self.zones, self.zone_tree, applies)
            for k, z in zip(fi.tolist(), self.zone_owner[zi].tolist(), strict=True):
                hits.setdefault(k, set()).add(int(z))
        touched = {int(s[k]) for k in hits if fresh[k]} | {i for i in np.unique(s).tolist()
                                              if self.acts[i].zones}
        for slot in sorted(touched):
            a = self.acts[slot]
            for k in np.flatnonzero((s == slot) & fresh).tolist():
                now_in = hits.get(k, set())
                for z in sorted(now_in - a.zones):
                    self._crossed(a, z, f, k, batch)
                for z in sorted(a.zones - now_in):
                    self._exited(a, z, f, k, batch)
                a.zones = set(now_in)

    def _zone_json(self, z: int) -> dict[str, Any]:
        row = self.zone_rows.get(z)
        return {"party": row.party if row else None,
                "restriction": row.restriction if row else None}

    def _crossed(self, a: Tracked, z: int, f: Fixes, k: int, batch: Batch) -> None:
        row = self.zone_rows.get(z)
        if row is None:
            return
        position = self._fix(f, k)
        batch.tell(a.owner.party, "zone.crossed", {
            "activity": a.owner.ext_id, "position": position, "zone": self._zone_json(z)})
        key = self._share(batch, a.owner.id, row.party, "zone", f"zone/{z}", int(f.t[k]))
        batch.tell(row.party, "zone.crossed", {
            "zone": row.ext_id, "counterpart": {
                "party": a.owner.party, "kind": a.owner.kind, "position": position}}, key)
        batch.audit.append(("zone.crossed", subject(a.owner),
                            {"zone": subject(row), "time": position["time"]}))

    def _exited(self, a: Tracked, z: int, f: Fixes, k: int, batch: Batch) -> None:
        row = self.zone_rows.get(z)
        position = self._fix(f, k)
        batch.tell(a.owner.party, "zone.exited", {
            "activity": a.owner.ext_id, "position": position, "zone": self._zone_json(z)})
        if row is not None:
            batch.tell(row.party, "zone.exited", {
                "zone": row.ext_id, "counterpart": {
                    "party": a.owner.party, "kind": a.owner.kind, "position": position}})
            self._unshare(batch, a.owner.id, row.party, "zone", f"zone/{z}")
            batch.audit.append(("zone.exited", subject(a.owner),
                                {"zone": subject(row), "time": position["time"]}))

    # -- proximity ----------------------------------------------------------------
    def _live(self, now: float) -> np.ndarray:
        n = len(self.acts)
        return self.t[:n] >= int((now - self.settings.stale_s) * NS_PER_S)

    def _proximity(self, moved: np.ndarray, now: float, batch: Batch) -> None:
        if self.minima is None or not len(moved):
            return
        n = len(self.acts)
        live = self._live(now)
        idx = np.flatnonzero(live)
        if not len(idx):
            return
        widest = self.minima.widest.horizontal_m
        # Reach: the widest minimum plus both accuracies (the other's at most the
        # largest live one); every pair closer than its own minimum is within it.
        reach = np.zeros(n)
        reach[idx] = widest + self.hacc[idx] + float(self.hacc[idx].max())
        local = np.full(n, -1, dtype=np.intp)
        local[idx] = np.arange(len(idx))
        q = local[moved[live[moved]]]
        i, j, dist = near_pairs(self.lon[idx], self.lat[idx], q, reach[idx])
        i, j = idx[i], idx[j]
        close_now: dict[tuple[int, int], tuple[float, float]] = {}
        if len(i):
            other = self.party[i] != self.party[j]
            i, j, dist = i[other], j[other], dist[other]
            h_min, v_min, _ = self.minima.per_pair(self.kind[i], self.kind[j])
            h_eff = dist - self.hacc[i] - self.hacc[j]
            v_gap = np.abs(self.alt[i] - self.alt[j])
            v_eff = v_gap - self.vacc[i] - self.vacc[j]
            close = (h_eff < h_min) & (v_eff < v_min)
            for a, b, d, v in zip(i[close].tolist(), j[close].tolist(), dist[close].tolist(),
                                  v_gap[close].tolist(), strict=True):
                close_now[(min(a, b), max(a, b))] = (d, v)
        moved_set = set(moved.tolist())
        for pair in sorted(close_now.keys() - self.pairs):
            self._pair_started(pair, *close_now[pair], batch)
        for pair in sorted(p for p in self.pairs - close_now.keys()
                           if p[0] in moved_set or p[1] in moved_set):
            self._pair_ended(pair, "apart", batch)

    def _pair_started(self, pair: tuple[int, int], dist: float, vgap: float,
                      batch: Batch) -> None:
        self.pairs.add(pair)
        a, b = pair
        lon, lat = self.lon, self.lat
        closing = float(closing_speed(lon[[a]], lat[[a]], self.ve[[a]], self.vn[[a]],
                                      lon[[b]], lat[[b]], self.ve[[b]], self.vn[[b]])[0])
        since = int(max(self.t[a], self.t[b]))
        for me, them in ((a, b), (b, a)):
            mine, theirs = self.acts[me].owner, self.acts[them].owner
            key = self._share(batch, theirs.id, mine.party, "proximity",
                              f"activity/{mine.id}", since)
            batch.tell(mine.party, "proximity.started", {
                "activity": mine.ext_id, "position": self._position(me),
                "counterpart": {"party": theirs.party, "kind": theirs.kind,
                                "position": self._position(them)},
                "separation_m": round_m(dist), "vertical_m": round_m(vgap),
                "closing_speed_mps": round_m(closing)}, key)
        batch.audit.append(("proximity.started", subject(self.acts[a].owner),
                            {"other": subject(self.acts[b].owner),
                             "separation_m": round_m(dist)}))

    def _pair_ended(self, pair: tuple[int, int], reason: str, batch: Batch) -> None:
        self.pairs.discard(pair)
        a, b = pair
        d = geodesic_distance(self.lon[[a]], self.lat[[a]], self.lon[[b]], self.lat[[b]])
        for me, them in ((a, b), (b, a)):
            mine, theirs = self.acts[me].owner, self.acts[them].owner
            batch.tell(mine.party, "proximity.ended", {
                "activity": mine.ext_id,
                "counterpart": {"party": theirs.party, "kind": theirs.kind},
                "separation_m": round_m(float(d[0])), "reason": reason})
            self._unshare(batch, theirs.id, mine.party, "proximity", f"activity/{mine.id}")
        batch.audit.append(("proximity.ended", subject(self.acts[a].owner),
                            {"other": subject(self.acts[b].owner), "reason": reason}))

    # -- shares ---------------------------------------------------------------------
    def _share(self, batch: Batch, owner_id: int, party: str, reason: str, subject: str,
               since: int) -> Share:
        key = (owner_id, party, reason, subject)
        share = self.shares.get(key)
        if share is None:
            share = self.shares[key] = Share(*key, since)
            batch.open.append(share)
        return share

    def _unshare(self, batch: Batch, owner_id: int, party: str, reason: str,
                 subject: str) -> None:
        share = self.shares.pop((owner_id, party, reason, subject), None)
        if share is not None:
            batch.close.append(share)

    # -- the clock ------------------------------------------------------------------
    def tick(self, st: Store) -> int:
        """What the passing of time sets off: contingent after the grace period, silence,
        proximity that went stale; old positions pruned. Returns the events written."""
        with self.lock:
            self._load(st)
            now = self.clock()
            now_ns = int(now * NS_PER_S)
            batch = Batch()
            self.minima = st.get_minima()
            grace = self.settings.grace_s * NS_PER_S
            for slot, a in enumerate(self.acts):
                if a.status == NONCONFORMING and now_ns - a.since >= grace and self.heard[slot]:
                    nan = np.full(1, np.nan)  # (speed and heading: not needed here)
                    at = [slot]
                    last = Fixes(self.t[at], self.lon[at], self.lat[at], self.alt[at],
                                 self.hacc[at], self.vacc[at], nan, nan)
                    near = self._near_plans(st, a, last, [0], until=now_ns)[0]
                    self._contingent(a, now_ns, self._position(slot), near, batch)
            self._silence(st, now, batch)
            live = self._live(now)
            for pair in sorted(p for p in self.pairs if not (live[p[0]] and live[p[1]])):
                self._pair_ended(pair, "silent", batch)
            ticket = self._ticket()
            prune = now - self.last_prune >= 60.0
            if prune:
                self.last_prune = now
            save = now - self.heads_at >= self.settings.heads_every_s
            if save:
                self.heads_at = now
        events = self._write(st, SYSTEM, batch, None, ticket, save)
        if prune:
            with st.write():
                st.prune_positions(now - self.settings.retention_s)
        return events

    def _silence(self, st: Store, now: float, batch: Batch) -> None:
        limit = self.settings.silence_s
        now_ns = int(now * NS_PER_S)
        active = set(st.active_owner_ids())
        n = len(self.acts)
        quiet = (self.heard[:n] > 0) & ~self.silent[:n] & (now - self.heard[:n] >= limit)
        for slot in np.flatnonzero(quiet).tolist():
            a = self.acts[slot]
            if not (a.owner.id in active or a.t_first <= now_ns <= a.t_last):
                continue
            self.silent[slot] = True
            batch.tell(a.owner.party, "activity.silent", {
                "activity": a.owner.ext_id, "last_position": self._position(slot),
                "silent_for_s": round(now - float(self.heard[slot]), 1)})
            batch.audit.append(("activity.silent", subject(a.owner),
                                {"last_report": format_instant(int(self.t[slot]))}))
        # Active activities that have never reported.
        never = sorted(active - self.slot.keys())
        for oid in never:
            self.expected.setdefault(oid, now)
        for oid in list(self.expected):
            if oid not in active:
                del self.expected[oid]
        due = [oid for oid in never if now - self.expected[oid] >= limit]
        if due:
            rows = st.owner_rows(due)
            for oid in due:
                row = rows.get(oid)
                if row is None:
                    continue
                self.expected[oid] = float("inf")  # told once
                batch.tell(row.party, "activity.silent", {
                    "activity": row.ext_id, "last_position": None,
                    "silent_for_s": None})
                batch.audit.append(("activity.silent", subject(row), {"last_report": None}))

    def head_of(self, st: Store, owner_id: int) -> int:
        """An activity's newest stored report (0: none)."""
        with self.lock:
            self._load(st)
            slot = self.slot.get(owner_id)
            return 0 if slot is None else int(self.head[slot])
