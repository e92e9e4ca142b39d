"""What the ASTM F3548 DSS needs from a store, beyond activities and zones.

An entity reference (an operational intent or a constraint) names the activity or zone
that holds its volumes, so detection, need-to-know and the audit log treat it like any
other plan; the reference adds what F3548 versions and exchanges: OVN, state, base URL,
subscription. Subscriptions are stored as one volume each.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..core.minima import Separation
from ..core.volumes import VolumeSet


@dataclass(frozen=True)
class DssRef:
    id: str
    is_constraint: bool
    owner_id: int  # the activity's (or zone's) store id
    manager: str
    version: int
    ovn: str
    state: str | None  # operational intents only
    uss_base_url: str
    subscription_id: str | None
    t0: int  # ns: the earliest start and latest end of its extents
    t1: int


@dataclass(frozen=True)
class DssSubscription:
    id: str
    manager: str
    version: str
    notification_index: int
    uss_base_url: str
    notify_intents: bool
    notify_constraints: bool
    implicit: bool
    geom: str  # the footprint as hex WKB (unwrapped lon/lat); a point for a circle
    radius: float
    alt_lo: float
    alt_hi: float
    t0: int
    t1: int
    box: tuple[float, float, float, float]  # minx, miny, maxx, maxy (unwrapped)


class DssStore(Protocol):
    def dss_ref(self, ref_id: str) -> DssRef | None: ...

    def dss_refs_of(self, owner_ids: Sequence[int]) -> dict[int, DssRef]: ...

    def dss_lacking(self, query: VolumeSet, widen: Separation, *, zone: bool,
                    key: Collection[str], but: str | None) -> list[int]:
        """The owners (sorted ids) of live references, other than reference ``but``,
        whose OVN the key lacks, among those ``candidates`` would return (a superset of
        the intersecting): a key check, where the key usually holds all of hundreds,
        reads and tests only the rest."""
        ...

    def dss_put_ref(self, ref: DssRef) -> None: ...

    def dss_delete_ref(self, ref_id: str) -> None: ...

    def dss_dependents(self, subscription_id: str) -> list[str]:
        """The operational intents that rely on a subscription."""

    def dss_subscription(self, sub_id: str) -> DssSubscription | None: ...

    def dss_put_subscription(self, sub: DssSubscription) -> None: ...

    def dss_delete_subscription(self, sub_id: str) -> None: ...

    def dss_subscriptions_near(self, box: tuple[float, float, float, float], alt_lo: float,
                               alt_hi: float, t0: int, t1: int, now: int
                               ) -> list[DssSubscription]:
        """Unexpired subscriptions whose boxes meet this one (a superset: the caller
        tests the footprints)."""

    def dss_bump(self, sub_ids: Sequence[str]) -> dict[str, int]:
        """Increment these subscriptions' notification indices; the new ones."""

    def dss_availability(self, uss: str) -> tuple[str, str] | None:
        """(availability, version) as set, None if never set."""

    def dss_set_availability(self, uss: str, availability: str, version: str) -> None: ...

    def dss_add_report(self, report_id: str, reporter: str, body: str, now: str) -> None: ...
