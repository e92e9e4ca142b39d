"""ASTM F3548-21 wire format: request bodies in, entity references and subscriptions out.

Bodies are parsed with the standard's own data types (the ``uas-standards`` package:
required fields, enumerations, unknown fields ignored), then their volumes go through
the same scenario reader as every other format, so a USS's footprint is validated and
measured exactly as a native party's.
"""

from __future__ import annotations

import copy
import functools
import re
import typing
from typing import Any, TypeVar

import implicitdict
import orjson
from implicitdict import ImplicitDict
from uas_standards.astm.f3548.v21 import api as f3548
from uas_standards.astm.f3548.v21.constants import DSSMaxSubscriptionDurationHours

from ..core.instants import format_instant, parse_instant
from ..core.scenario import Scenario, read_scenario
from ..core.volumes import VolumeSet
from ..errors import InputError
from ..store.dss_contract import DssRef, DssSubscription

T = TypeVar("T", bound=ImplicitDict)

# implicitdict resolves a type's hints again for every object it parses (each vertex of
# a footprint, each time): two thirds of parsing an intent's body, a tenth of the
# server's work per F3548 write. A class's hints do not change; they are kept.
implicitdict.get_type_hints = functools.cache(typing.get_type_hints)

NO_OVN = "Available from USS"  # what others see of an entity's OVN (as the reference DSS)
NULL_SUBSCRIPTION = "00000000-0000-4000-8000-000000000000"
# Where a query leaves time or altitude open: the whole range the standard allows.
OPEN_START, OPEN_END = "1700-01-01T00:00:00Z", "2200-01-01T00:00:00Z"
ALT_MIN, ALT_MAX = -8000.0, 100000.0
MAX_SUBSCRIPTION_NS = DSSMaxSubscriptionDurationHours * 3600 * 10**9
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                   r"[0-9a-fA-F]{12}$")
# The scenario reader's field names, in the standard's words.
_FIELDS = {"properties.alt_lower_m": "volume.altitude_lower",
           "properties.alt_upper_m": "volume.altitude_upper",
           "properties.time_start": "time_start", "properties.time_end": "time_end",
           "properties.radius_m": "volume.outline_circle.radius",
           "geometry.coordinates": "volume"}


def parse(body: bytes, cls: type[T], what: str, *, with_key: bool = False) -> T:
    """A request body as the standard's type; InputError (400) naming the field.

    ``with_key``: the body has a ``key`` (a list of OVNs). A list of strings is taken
    as it is, which is all the standard's type makes of it: parsed item by item, the
    key of an intent in a crowd (hundreds of OVNs) cost more than the rest of the body.
    """
    try:
        data = orjson.loads(body) if body else None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"the body is not JSON: {exc}", item=what) from None
    if not isinstance(data, dict):
        raise InputError("the body must be a JSON object", item=what)
    key = data.get("key") if with_key else None
    if isinstance(key, list) and all(type(k) is str for k in key):
        data = {k: v for k, v in data.items() if k != "key"}
    else:
        key = None  # (anything else: the standard's type decides)
    try:
        parsed: T = ImplicitDict.parse(data, cls)
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(str(exc), item=what) from None
    if key is not None:
        parsed["key"] = key
    return parsed


def check_id(value: str, what: str) -> str:
    """Entity and subscription ids are UUIDs (400 otherwise, as the reference DSS)."""
    if not _UUID.match(value or ""):
        raise InputError(f"'{value}' is not a UUID", item=what, field="id")
    return value.lower()


def _feature(k: int, v: f3548.Volume4D, props: dict[str, Any], *, need_bounds: bool
             ) -> dict[str, Any]:
    where = f"extents[{k}]"
    vol = v.volume
    p = dict(props)
    for name, key, default in (("altitude_lower", "alt_lower_m", ALT_MIN),
                               ("altitude_upper", "alt_upper_m", ALT_MAX)):
        alt = vol.get(name)
        if alt is None and need_bounds:
            raise InputError("is required", item=where, field=f"volume.{name}")
        p[key] = float(alt.value) if alt is not None else default
    for name, open_end in (("time_start", OPEN_START), ("time_end", OPEN_END)):
        t = v.get(name)
        if t is None and need_bounds:
            raise InputError("is required", item=where, field=name)
        p[name] = str(t.value) if t is not None else open_end
    polygon, circle = vol.get("outline_polygon"), vol.get("outline_circle")
    if (polygon is None) == (circle is None):
        raise InputError("give exactly one of outline_polygon and outline_circle",
                         item=where, field="volume")
    if polygon is not None:
        ring = [[float(x.lng), float(x.lat)] for x in polygon.vertices]
        if len(ring) < 3:
            raise InputError("a polygon needs at least 3 vertices", item=where,
                             field="volume.outline_polygon.vertices")
        if ring[0] != ring[-1]:
            ring.append(ring[0])
        geometry: dict[str, Any] = {"type": "Polygon", "coordinates": [ring]}
    else:
        if circle.get("center") is None or circle.get("radius") is None:
            raise InputError("a circle needs a center and a radius", item=where,
                             field="volume.outline_circle")
        geometry = {"type": "Point", "coordinates": [float(circle.center.lng),
                                                     float(circle.center.lat)]}
        p["radius_m"] = float(circle.radius.value)
    return {"type": "Feature", "id": where, "geometry": geometry, "properties": p}


def scenario(extents: list[f3548.Volume4D], *, party: str, entity: str, zone: bool = False,
             need_bounds: bool = True) -> Scenario:
    """The extents as one activity (or a notify zone) of ``party`` named ``entity``."""
    if not extents:
        raise InputError("at least one volume is required", field="extents")
    props: dict[str, Any] = {"party": party, "activity": entity, "kind": "uas"}
    if zone:
        props = {"party": party, "activity": entity, "zone": True, "restriction": "notify"}
    features = [_feature(k, v, props, need_bounds=need_bounds) for k, v in enumerate(extents)]
    try:
        return read_scenario({"type": "FeatureCollection", "features": features})
    except InputError as exc:
        item = (exc.item or "").removeprefix("feature ").strip("'")
        field = _FIELDS.get(exc.field or "", exc.field)
        raise type(exc)(exc.reason, item=item or None, field=field) from None


def area(aoi: f3548.Volume4D | None) -> VolumeSet:
    """A search's area of interest (time and altitude may be left open)."""
    if aoi is None:
        raise InputError("is required", field="area_of_interest")
    return scenario([aoi], party="query", entity="area", need_bounds=False).activities


def subscription_area(extents: f3548.Volume4D, now: str) -> VolumeSet:
    """A subscription's volume: starting now and lasting the longest a DSS keeps one
    (24 hours) unless the extents say otherwise; altitude open unless given."""
    v = copy.copy(extents)  # (the request's own object stays as it was sent)
    if v.get("time_start") is None:
        v["time_start"] = ImplicitDict.parse({"value": now, "format": "RFC3339"}, f3548.Time)
    if v.get("time_end") is None:
        end = format_instant(parse_instant(v.time_start.value) + MAX_SUBSCRIPTION_NS)
        v["time_end"] = ImplicitDict.parse({"value": end, "format": "RFC3339"}, f3548.Time)
    return scenario([v], party="subscriber", entity="subscription",
                    need_bounds=False).activities


def time_json(ns: int) -> dict[str, str]:
    return {"value": format_instant(ns), "format": "RFC3339"}


def reference_json(ref: DssRef, caller: str, availability: str) -> dict[str, Any]:
    """An operational intent or constraint reference; only its manager sees the OVN."""
    out: dict[str, Any] = {
        "id": ref.id, "manager": ref.manager, "uss_availability": availability,
        "version": ref.version, "ovn": ref.ovn if ref.manager == caller else NO_OVN,
        "time_start": time_json(ref.t0), "time_end": time_json(ref.t1),
        "uss_base_url": ref.uss_base_url}
    if not ref.is_constraint:
        out["state"] = ref.state
        out["subscription_id"] = ref.subscription_id or NULL_SUBSCRIPTION
    return out


def subscription_json(sub: DssSubscription, dependents: list[str]) -> dict[str, Any]:
    return {"id": sub.id, "version": sub.version, "notification_index": sub.notification_index,
            "time_start": time_json(sub.t0), "time_end": time_json(sub.t1),
            "uss_base_url": sub.uss_base_url,
            "notify_for_operational_intents": sub.notify_intents,
            "notify_for_constraints": sub.notify_constraints,
            "implicit_subscription": sub.implicit,
            "dependent_operational_intents": dependents}


def subscribers_json(found: dict[str, list[tuple[str, int]]]) -> list[dict[str, Any]]:
    """``SubscriberToNotify`` per base URL, from {url: [(subscription, index)]}."""
    return [{"uss_base_url": url, "subscriptions": [
        {"subscription_id": sid, "notification_index": n} for sid, n in sorted(subs)]}
        for url, subs in sorted(found.items())]
