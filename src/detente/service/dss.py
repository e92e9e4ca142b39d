"""detente as an ASTM F3548-21 DSS: operational intents, constraints, subscriptions.

An operational intent reference is an activity of the USS's party (``uss:<sub>``), a
constraint reference a ``notify`` zone of it; each write goes through the same atomic
submission as any party's, under the same write lock, so a USS's plan meets native
activities (with separation minima) and red lines (a prohibited one refuses it) in the
same step as F3548's own checks: the key must hold the OVN of every intersecting
entity, intersection being exact (closed sets, to 1 cm) rather than S2 cells.
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from uas_standards.astm.f3548.v21.constants import DSSMaxSubscriptionDurationHours

from ..core.detect import candidates_between, evaluate_intersections
from ..core.envelope import circle_polygon, enclosing
from ..core.geodesy import GEOD
from ..core.instants import parse_instant
from ..core.minima import Separation
from ..core.scenario import Scenario
from ..core.volumes import VolumeSet
from ..errors import (
    AirspaceConflict,
    AlreadyExists,
    Forbidden,
    InputError,
    NotFound,
    StaleVersion,
    Unavailable,
)
from ..store.contract import Store
from ..store.dss_contract import DssRef, DssSubscription
from .deconfliction import Deconfliction, utc_now
from .journal import Bus, Journal, transaction

SC = "utm.strategic_coordination"
CM = "utm.constraint_management"
CP = "utm.constraint_processing"
CMSA = "utm.conformance_monitoring_sa"
AA = "utm.availability_arbitration"
STATES = ("Accepted", "Activated", "Nonconforming", "Contingent")
OFF_NOMINAL = ("Nonconforming", "Contingent")
AVAILABILITY = ("Unknown", "Normal", "Down")
MAX_SUBSCRIPTION_NS = DSSMaxSubscriptionDurationHours * 3600 * 10**9
SUFFIX_SKEW_NS = 300 * 10**9  # a requested OVN suffix's UUIDv7 time: within 5 minutes
INTERSECT = Separation(0.01, 0.01, 0.0)  # candidate widening for the 1 cm intersection

Subscribers = dict[str, list[tuple[str, int]]]  # base URL -> [(subscription, index)]


def party_of(manager: str) -> str:
    """The detente party a USS (a token's ``sub``) plans as."""
    return f"uss:{manager}"


@dataclass
class Changed:
    ref: DssRef
    subscribers: Subscribers


@dataclass
class IntentPut:
    entity_id: str
    ovn: str | None  # None: create
    scenario: Scenario
    state: str
    uss_base_url: str
    key: frozenset[str]
    subscription_id: str | None
    new_subscription: tuple[str, bool] | None  # (base URL, notify for constraints)
    ovn_suffix: str | None


@dataclass
class SubscriptionPut:
    sub_id: str
    version: str | None  # None: create
    area: VolumeSet  # one volume
    uss_base_url: str
    notify_intents: bool
    notify_constraints: bool


def _sub_volumes(subs: Sequence[DssSubscription]) -> VolumeSet:
    return VolumeSet.from_columns(
        ids=[s.id for s in subs], party=[s.manager for s in subs],
        activity=[s.id for s in subs], kind=[None] * len(subs),
        geom=shapely.from_wkb([s.geom for s in subs]), radius=[s.radius for s in subs],
        alt_lo=[s.alt_lo for s in subs], alt_hi=[s.alt_hi for s in subs],
        t0=[s.t0 for s in subs], t1=[s.t1 for s in subs])


def _covers(sub: DssSubscription, vols: VolumeSet) -> bool:
    """Whether a subscription covers these volumes in space, altitude and time (when in
    doubt: no, so the USS is asked for a subscription that surely does)."""
    if sub.t0 > int(vols.t0.min()) or sub.t1 < int(vols.t1.max()):
        return False
    if sub.alt_lo > float(vols.alt_lo.min()) or sub.alt_hi < float(vols.alt_hi.max()):
        return False
    outer = shapely.from_wkb(sub.geom)
    inner, inner_r, *_ = enclosing(vols)
    if sub.radius > 0:
        centre = (outer.x, outer.y)
        points = shapely.get_coordinates(inner)  # a circle's: its centre
        n = len(points)
        _, _, d = GEOD.inv(np.full(n, centre[0]), np.full(n, centre[1]), points[:, 0],
                           points[:, 1])
        return bool(np.all(np.asarray(d) + inner_r <= sub.radius * 0.999))
    if inner_r > 0:
        inner = circle_polygon(inner, inner_r)
    return bool(shapely.covers(outer, inner))


class Dss:
    """The F3548 DSS use cases over one store."""

    def __init__(self, store: Store, deconfliction: Deconfliction,
                 clock: Callable[[], str] = utc_now, bus: Bus | None = None):
        self.store = store
        self.deconfliction = deconfliction
        self.clock = clock
        self.bus = bus

    # -- reads -----------------------------------------------------------------
    def availability(self, uss: str) -> tuple[str, str]:
        return self.store.dss_availability(uss) or ("Unknown", "")

    def get_ref(self, ref_id: str, *, constraint: bool) -> DssRef:
        ref = self.store.dss_ref(ref_id)
        if ref is None or ref.is_constraint != constraint:
            raise NotFound(f"no {'constraint' if constraint else 'operational intent'} "
                           f"reference '{ref_id}'")
        return ref

    def query_refs(self, area: VolumeSet, *, constraint: bool) -> list[DssRef]:
        now = parse_instant(self.clock())
        return [r for r in self._intersecting(area, constraint) if r.t1 >= now]

    def _intersecting(self, vols: VolumeSet, constraint: bool,
                      key: frozenset[str] | None = None, but: str | None = None
                      ) -> list[DssRef]:
        """References whose volumes meet these (closed sets, 1 cm), whoever owns them;
        with ``key``, only those whose OVN it lacks, but for reference ``but`` (a key
        check: the store rules out the references the key holds, usually all of
        hundreds, and only the rest are read and tested)."""
        st = self.store
        if key is None:
            stored, i, j = st.candidates(vols, INTERSECT, zone=constraint)
        else:
            stored = st.volumes_of(st.dss_lacking(vols, INTERSECT, zone=constraint, key=key,
                                                  but=but), zone=constraint)
            i, j = candidates_between(vols, stored.volumes, INTERSECT)
        if len(i) == 0:
            return []
        hit = evaluate_intersections(vols, i, stored.volumes, j)
        refs = st.dss_refs_of(np.unique(stored.owner_id[hit.b]).tolist())
        return sorted((r for r in refs.values() if r.is_constraint == constraint),
                      key=lambda r: r.id)

    def _subscriptions_meeting(self, vols: VolumeSet, now: int) -> list[DssSubscription]:
        b = vols.bounds
        box = (float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()),
               float(b[:, 3].max()))
        near = self.store.dss_subscriptions_near(
            box, float(vols.alt_lo.min()), float(vols.alt_hi.max()), int(vols.t0.min()),
            int(vols.t1.max()), now)
        if not near:
            return []
        subs = _sub_volumes(near)
        i, j = candidates_between(vols, subs, INTERSECT)
        hit = evaluate_intersections(vols, i, subs, j)
        return [near[k] for k in sorted(set(hit.b.tolist()))]

    def _notify(self, vols: VolumeSet, now: int, *, constraint: bool) -> Subscribers:
        """Bump the index of each subscription that asked to hear of this change."""
        subs = [s for s in self._subscriptions_meeting(vols, now)
                if (s.notify_constraints if constraint else s.notify_intents)]
        bumped = self.store.dss_bump([s.id for s in subs])
        out: Subscribers = {}
        for s in subs:
            out.setdefault(s.uss_base_url, []).append((s.id, bumped[s.id]))
        return out

    # -- operational intents -----------------------------------------------------
    def put_intent(self, manager: str, scopes: frozenset[str], req: IntentPut) -> Changed:
        vols = req.scenario.activities
        if req.state not in STATES:
            raise InputError(f"'{req.state}' is not a state a DSS stores", field="state")
        if req.state in OFF_NOMINAL and CMSA not in scopes:
            raise Forbidden(f"the {req.state} state needs the {CMSA} scope")
        if req.state not in OFF_NOMINAL and SC not in scopes:
            raise Forbidden(f"the {req.state} state needs the {SC} scope")
        if req.ovn is None and req.state != "Accepted":
            raise InputError(f"an operational intent is created Accepted, not {req.state}",
                             field="state")
        if req.subscription_id and req.new_subscription:
            raise InputError("give subscription_id or new_subscription, not both",
                             field="subscription_id")
        if (req.state != "Accepted" and not req.subscription_id
                and req.new_subscription is None):
            raise InputError(f"the {req.state} state needs a subscription: subscription_id "
                             "or new_subscription", field="subscription_id")
        st = self.store
        with transaction(st, self.clock, f"uss:{manager}", self.bus) as j:
            now = parse_instant(j.now)
            _not_past(vols, now)
            ovn = self._new_ovn(req.entity_id, req.ovn_suffix, now)
            if req.state in ("Accepted", "Activated") and self.availability(manager)[0] == "Down":
                raise Unavailable("this USS is marked Down: it may not plan Accepted or "
                                  "Activated operational intents")
            old = self._check_owner(req.entity_id, req.ovn, manager, constraint=False)
            chosen, covered = self._chosen(manager, req, vols)
            if req.state not in OFF_NOMINAL:
                # Before any write (in a crowd most keys are refused), after every check
                # of the subscription (the reference DSS's order of answers).
                self._check_key(req.entity_id, vols, req.key, manager, constraints=(
                    req.new_subscription[1] if req.new_subscription is not None
                    else chosen is not None and chosen.notify_constraints))
            attached = self._attach(manager, req, vols, chosen, covered, now)
            old_vols = (st.volumes_of([old.owner_id], zone=False).volumes if old else None)
            # Off-nominal intents describe a flight as it is: a red line cannot refuse it.
            self.deconfliction.submit(req.scenario, override=req.state in OFF_NOMINAL,
                                      actor=f"uss:{manager}")
            owner = st.find_owner(party_of(manager), req.entity_id, zone=False)
            assert owner is not None
            if req.state != "Accepted" and owner.state == "planned":
                st.set_state(owner.id, "active", j.now)
            subscribers = self._notify(_with(vols, old_vols), now, constraint=False)
            ref = DssRef(req.entity_id, False, owner.id, manager,
                         old.version + 1 if old else 1, ovn, req.state, req.uss_base_url,
                         attached.id if attached else None, int(vols.t0.min()),
                         int(vols.t1.max()))
            st.dss_put_ref(ref)
            if old and old.subscription_id and old.subscription_id != ref.subscription_id:
                self._drop_implicit(old.subscription_id)
            _audit(j, "intent", "created" if old is None else "updated", ref)
        return Changed(ref, subscribers)

    def delete_ref(self, manager: str, ref_id: str, ovn: str, *, constraint: bool
                   ) -> Changed:
        """Delete an operational intent (cancel its activity; drop an implicit
        subscription no other intent relies on) or a constraint (retire its zone)."""
        st = self.store
        with transaction(st, self.clock, f"uss:{manager}", self.bus) as j:
            old = self._check_owner(ref_id, ovn, manager, constraint=constraint,
                                    deleting=True)
            assert old is not None
            vols = st.volumes_of([old.owner_id], zone=constraint).volumes
            subscribers = self._notify(vols, parse_instant(j.now), constraint=constraint)
            if constraint:
                self.deconfliction.delete_zone(party_of(manager), ref_id,
                                               actor=f"uss:{manager}")
            else:
                self.deconfliction.cancel(party_of(manager), ref_id, actor=f"uss:{manager}")
            st.dss_delete_ref(ref_id)
            if old.subscription_id:
                self._drop_implicit(old.subscription_id)
            _audit(j, "constraint" if constraint else "intent", "deleted", old)
        return Changed(old, subscribers)

    # -- constraints -------------------------------------------------------------
    def put_constraint(self, manager: str, ref_id: str, ovn: str | None, scen: Scenario,
                       uss_base_url: str) -> Changed:
        vols = scen.zones
        st = self.store
        with transaction(st, self.clock, f"uss:{manager}", self.bus) as j:
            now = parse_instant(j.now)
            _not_past(vols, now)
            old = self._check_owner(ref_id, ovn, manager, constraint=True)
            old_vols = st.volumes_of([old.owner_id], zone=True).volumes if old else None
            self.deconfliction.submit(scen, actor=f"uss:{manager}")
            owner = st.find_owner(party_of(manager), ref_id, zone=True)
            assert owner is not None
            subscribers = self._notify(_with(vols, old_vols), now, constraint=True)
            ref = DssRef(ref_id, True, owner.id, manager, old.version + 1 if old else 1,
                         str(uuid.uuid4()), None, uss_base_url, None, int(vols.t0.min()),
                         int(vols.t1.max()))
            st.dss_put_ref(ref)
            _audit(j, "constraint", "created" if old is None else "updated", ref)
        return Changed(ref, subscribers)

    # -- subscriptions -------------------------------------------------------------
    def put_subscription(self, manager: str, scopes: frozenset[str], req: SubscriptionPut
                         ) -> tuple[DssSubscription, list[DssRef], list[DssRef]]:
        if not (req.notify_intents or req.notify_constraints):
            raise InputError("a subscription must ask for operational intents, constraints "
                             "or both", field="notify_for_operational_intents")
        if req.notify_intents and SC not in scopes:
            raise Forbidden(f"notify_for_operational_intents needs the {SC} scope")
        if req.notify_constraints and CP not in scopes:
            raise Forbidden(f"notify_for_constraints needs the {CP} scope")
        area = req.area
        t0, t1 = int(area.t0[0]), int(area.t1[0])
        st = self.store
        with transaction(st, self.clock, f"uss:{manager}", self.bus) as j:
            now = parse_instant(j.now)
            if t1 < now:
                raise InputError("the subscription ends in the past", field="extents.time_end")
            if t1 - max(t0, now) > MAX_SUBSCRIPTION_NS:
                raise InputError("a subscription lasts at most 24 hours",
                                 field="extents.time_end")
            old = st.dss_subscription(req.sub_id)
            if old is None and req.version is not None:
                raise NotFound(f"no subscription '{req.sub_id}'")
            if old is not None:
                if old.manager != manager:
                    raise Forbidden(f"subscription '{req.sub_id}' belongs to another USS")
                if req.version is None:
                    raise AlreadyExists(f"subscription '{req.sub_id}' exists already")
                if req.version != old.version:
                    raise StaleVersion(f"subscription '{req.sub_id}' is at version "
                                       f"{old.version}, not {req.version}")
            sub = DssSubscription(
                id=req.sub_id, manager=manager, version=secrets.token_hex(8),
                notification_index=old.notification_index if old else 0,
                uss_base_url=req.uss_base_url, notify_intents=req.notify_intents,
                notify_constraints=req.notify_constraints,
                implicit=old.implicit if old else False, **_watching(area))
            if old is not None:
                for dep in st.dss_dependents(old.id):
                    ref = st.dss_ref(dep)
                    if ref and not _covers(sub, st.volumes_of([ref.owner_id],
                                                              zone=False).volumes):
                        raise InputError(f"the subscription would no longer cover operational "
                                         f"intent '{dep}', which relies on it",
                                         field="extents")
            st.dss_put_subscription(sub)
            j.audit(f"f3548.subscription.{'created' if old is None else 'updated'}",
                    f"f3548/subscription/{sub.id}", {"version": sub.version})
            intents = self._intersecting(area, False) if req.notify_intents else []
            constraints = self._intersecting(area, True) if req.notify_constraints else []
        return sub, intents, constraints

    def get_subscription(self, manager: str, sub_id: str) -> DssSubscription:
        sub = self.store.dss_subscription(sub_id)
        if sub is None or sub.manager != manager:  # another's: hidden, not forbidden
            raise NotFound(f"no subscription '{sub_id}'")
        return sub

    def dependents(self, sub_id: str) -> list[str]:
        return self.store.dss_dependents(sub_id)

    def query_subscriptions(self, manager: str, area: VolumeSet) -> list[DssSubscription]:
        now = parse_instant(self.clock())
        return sorted((s for s in self._subscriptions_meeting(area, now)
                       if s.manager == manager), key=lambda s: s.id)

    def delete_subscription(self, manager: str, sub_id: str, version: str) -> DssSubscription:
        st = self.store
        with transaction(st, self.clock, f"uss:{manager}", self.bus) as j:
            sub = self.get_subscription(manager, sub_id)
            if sub.version != version:
                raise StaleVersion(f"subscription '{sub_id}' is at version {sub.version}, "
                                   f"not {version}")
            if st.dss_dependents(sub_id):
                raise InputError("operational intents rely on this subscription: move them "
                                 "to another first", item=f"subscription '{sub_id}'")
            st.dss_delete_subscription(sub_id)
            j.audit("f3548.subscription.deleted", f"f3548/subscription/{sub_id}",
                    {"version": sub.version})
        return sub

    # -- availability and reports ------------------------------------------------------
    def set_availability(self, uss: str, availability: str, old_version: str
                         ) -> tuple[str, str]:
        if availability not in AVAILABILITY:
            raise InputError(f"'{availability}' is not one of {', '.join(AVAILABILITY)}",
                             field="availability")
        with transaction(self.store, self.clock, "f3548", self.bus) as j:
            current = self.availability(uss)
            if old_version != current[1]:
                raise StaleVersion(f"the availability of '{uss}' is at version "
                                   f"'{current[1]}', not '{old_version}'")
            version = secrets.token_hex(8)
            self.store.dss_set_availability(uss, availability, version)
            j.audit("f3548.availability.set", f"f3548/uss/{uss}",
                    {"availability": availability, "version": version})
        return availability, version

    def report(self, reporter: str, body: str) -> str:
        report_id = str(uuid.uuid4())
        with transaction(self.store, self.clock, f"uss:{reporter}", self.bus) as j:
            self.store.dss_add_report(report_id, reporter, body, j.now)
            j.audit("f3548.report", f"f3548/report/{report_id}", {"reporter": reporter})
        return report_id

    # -- helpers ---------------------------------------------------------------------
    def _check_owner(self, ref_id: str, ovn: str | None, manager: str, *, constraint: bool,
                     deleting: bool = False) -> DssRef | None:
        """The reference being changed (None for a create), checked: exists, same kind,
        the caller's, and at the OVN the caller names."""
        old = self.store.dss_ref(ref_id)
        noun = "constraint" if constraint else "operational intent"
        if old is not None and old.is_constraint != constraint:
            raise AlreadyExists(f"'{ref_id}' names another kind of entity")
        if old is None:
            if ovn is not None:
                raise (NotFound if deleting else InputError)(
                    f"no {noun} '{ref_id}' to change at OVN {ovn}")
            return None
        if old.manager != manager:
            raise Forbidden(f"{noun} '{ref_id}' is managed by another USS")
        if ovn is None:
            raise AlreadyExists(f"{noun} '{ref_id}' exists already: update it with its OVN")
        if ovn != old.ovn:
            raise StaleVersion(f"{noun} '{ref_id}' is not at OVN {ovn}")
        return old

    def _new_ovn(self, ref_id: str, suffix: str | None, now: int) -> str:
        if suffix is None:
            return str(uuid.uuid4())
        try:
            u = uuid.UUID(suffix)
        except ValueError:
            raise InputError("is not a UUID", field="requested_ovn_suffix") from None
        if u.version != 7:
            raise InputError("must be a version 7 UUID", field="requested_ovn_suffix")
        at = (u.int >> 80) * 10**6  # its first 48 bits: Unix milliseconds
        if abs(at - now) > SUFFIX_SKEW_NS:
            raise InputError("its time is more than 5 minutes from now",
                             field="requested_ovn_suffix")
        return f"{ref_id}_{suffix}"

    def _chosen(self, manager: str, req: IntentPut, vols: VolumeSet
                ) -> tuple[DssSubscription | None, bool]:
        """The existing subscription the intent names, if it names one, checked (the
        caller's; covering the intent unless implicit, which can be widened), and
        whether it covers the intent."""
        if not req.subscription_id:
            return None, False
        sub = self.store.dss_subscription(req.subscription_id)
        if sub is None:
            raise InputError(f"no subscription '{req.subscription_id}'",
                             field="subscription_id")
        if sub.manager != manager:
            raise Forbidden("the subscription belongs to another USS")
        covered = _covers(sub, vols)
        if not covered and not sub.implicit:
            raise InputError("the subscription does not cover the operational intent",
                             field="subscription_id")
        return sub, covered

    def _attach(self, manager: str, req: IntentPut, vols: VolumeSet,
                sub: DssSubscription | None, covered: bool, now: int
                ) -> DssSubscription | None:
        """The subscription the intent will rely on: ``sub`` (the one it names, checked
        by ``_chosen``), widened if it does not cover the intent, or one made as asked."""
        st = self.store
        if req.new_subscription is not None:
            url, for_constraints = req.new_subscription
            watched = _watching(vols)
            watched["t0"] = min(watched["t0"], now)
            made = DssSubscription(
                id=str(uuid.uuid4()), manager=manager, version=secrets.token_hex(8),
                notification_index=0, uss_base_url=url, notify_intents=True,
                notify_constraints=for_constraints, implicit=True, **watched)
            st.dss_put_subscription(made)
            return made
        if sub is None or covered:
            return sub
        wider = dataclasses.replace(sub, version=secrets.token_hex(8),
                                    **_watching(_with(vols, _sub_volumes([sub]))))
        st.dss_put_subscription(wider)
        return wider

    def _check_key(self, ref_id: str, vols: VolumeSet, key: frozenset[str], manager: str, *,
                   constraints: bool) -> None:
        """A 409 unless the key holds the OVN of every other intersecting intent (and
        constraint, when the intent's subscription asks for constraints)."""
        missing = self._intersecting(vols, False, key, but=ref_id)
        missing_c = self._intersecting(vols, True, key) if constraints else []
        if missing or missing_c:
            raise AirspaceConflict(
                f"the key lacks the OVNs of {len(missing)} operational intent(s) and "
                f"{len(missing_c)} constraint(s) that intersect this one",
                {"caller": manager,
                 "intents": [(r, self.availability(r.manager)[0]) for r in missing],
                 "constraints": [(r, self.availability(r.manager)[0]) for r in missing_c]})

    def _drop_implicit(self, sub_id: str) -> None:
        """Delete an implicit subscription no intent relies on any more."""
        sub = self.store.dss_subscription(sub_id)
        if sub is not None and sub.implicit and not self.store.dss_dependents(sub_id):
            self.store.dss_delete_subscription(sub_id)


def _watching(vols: VolumeSet) -> dict[str, Any]:
    """A subscription's fields for what it watches: one footprint covering these
    volumes (exact for one), its box, and the altitude and time spans."""
    geom, radius, alt_lo, alt_hi, t0, t1 = enclosing(vols)
    b = vols.bounds[0] if len(vols) == 1 else shapely.bounds(geom)
    return {"geom": shapely.to_wkb(geom, hex=True), "radius": radius, "alt_lo": alt_lo,
            "alt_hi": alt_hi, "t0": t0, "t1": t1,
            "box": (float(b[0]), float(b[1]), float(b[2]), float(b[3]))}


def _not_past(vols: VolumeSet, now: int) -> None:
    past = np.flatnonzero(vols.t1 < now)
    if len(past):
        raise InputError("ends in the past", item=f"extents[{int(past[0])}]",
                         field="time_end")


def _with(vols: VolumeSet, more: VolumeSet | None) -> VolumeSet:
    return vols if more is None or len(more) == 0 else VolumeSet.concat([vols, more])


def _audit(j: Journal, noun: str, verb: str, ref: DssRef) -> None:
    j.audit(f"f3548.{noun}.{verb}", f"f3548/{noun}/{ref.id}",
            {"manager": ref.manager, "version": ref.version, "state": ref.state,
             "ovn": ref.ovn, "subscription": ref.subscription_id})
