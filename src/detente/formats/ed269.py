"""EUROCAE ED-269 UAS geographical zones, read into detente red lines.

An ED-269 feature becomes one detente zone (its ``identifier``); each of its
``geometry`` volumes, in each time window its ``applicability`` gives, becomes one
zone volume. The mapping tables are in ``docs/formats.md``; in short:

- ``restriction``: PROHIBITED and REQ_AUTHORISATION -> ``prohibited`` (entering needs
  an override, which is the authorisation); CONDITIONAL -> ``notify``; NO_RESTRICTION
  zones are informational and are left out (counted in the summary).
- limits: FT -> metres (x 0.3048); AMSL -> above the WGS 84 ellipsoid by adding the
  geoid height, if given; if not, the band is widened by the geoid's extremes on Earth
  (-107 m .. +86 m): the zone can only grow, never shrink. AGL needs the ground's
  elevation (AMSL): without it an AGL upper limit is refused; a lower limit of 0 AGL is
  the surface, taken as 1,000 m below the ellipsoid (below any ground).
- applicability: ``permanent`` YES or no dates -> the import horizon; start/end
  dates -> that window; a weekly ``schedule`` -> one window per matching day within
  the horizon (times in ``hh:mmZ`` or ``hh:mm:ss.ssZ``, any UTC offset; an end at or
  before the start runs past midnight).
- coordinates: [longitude, latitude], as GeoJSON and national publications write them;
  a ``Circle`` has ``center`` and ``radius`` (metres).

Written back out (:func:`write_ed269`): a party's zones, in metres AMSL.

The ED-269 field names and enumerations come from the ``uas-standards`` package.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson
from uas_standards.eurocae_ed269 import (
    ED269TimeType,
    HorizontalProjectionType,
    Restriction,
    UomDimensions,
    VerticalReferenceType,
    WeekDateType,
)

from ..core.geometry_json import volume_geometry
from ..core.instants import InstantError, format_instant, parse_instant
from ..core.volumes import Volume, VolumeSet
from ..errors import InputError
from ..store.contract import ActivityRow

FT_M = 0.3048
GEOID_MIN_M = -107.0  # the geoid's lowest and highest heights above the ellipsoid
GEOID_MAX_M = 86.0
SURFACE_M = -1000.0  # "from the surface": below any ground on Earth
RESTRICTIONS = {Restriction.PROHIBITED: "prohibited",
                Restriction.REQ_AUTHORISATION: "prohibited",
                Restriction.CONDITIONAL: "notify"}
_DAYS = [WeekDateType.MON, WeekDateType.TUE, WeekDateType.WED, WeekDateType.THU,
         WeekDateType.FRI, WeekDateType.SAT, WeekDateType.SUN]


@dataclass(frozen=True)
class Ed269Options:
    """What the file cannot say: the horizon for permanent and scheduled zones, the
    ground's elevation for AGL limits, the geoid height for AMSL ones."""

    horizon_start: datetime
    horizon_days: int = 14
    ground_elevation_m: float | None = None  # metres AMSL
    geoid_height_m: float | None = None  # the geoid above the ellipsoid, here

    @property
    def horizon(self) -> tuple[datetime, datetime]:
        return self.horizon_start, self.horizon_start + timedelta(days=self.horizon_days)


@dataclass(frozen=True)
class Ed269Import:
    scenario: dict[str, Any]  # a detente scenario of zones (FeatureCollection)
    zones: int
    volumes: int
    skipped: list[str]  # identifiers of NO_RESTRICTION zones
    widened: bool  # AMSL limits widened by the geoid's extremes (no geoid height given)


def _enum(cls: Any, value: Any, item: str, field: str) -> Any:
    try:
        return cls(value)
    except ValueError:
        raise InputError(f"one of {', '.join(m.value for m in cls)}, not {value!r}",
                         item=item, field=field) from None


def _number(value: Any, item: str, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError("a number", item=item, field=field)
    return float(value)


def _height(limit: float, ref: VerticalReferenceType, *, upper: bool, opts: Ed269Options,
            item: str, field: str) -> tuple[float, bool]:
    """A limit (metres) as metres above the ellipsoid, and whether it was widened."""
    if ref is VerticalReferenceType.AGL:
        if not upper and limit == 0:
            return SURFACE_M, False
        if opts.ground_elevation_m is None:
            raise InputError("an AGL limit needs the ground's elevation (give it: "
                             "ground_elevation_m / --ground-elevation, metres AMSL)",
                             item=item, field=field)
        limit += opts.ground_elevation_m
    if opts.geoid_height_m is not None:
        return limit + opts.geoid_height_m, False
    return limit + (GEOID_MAX_M if upper else GEOID_MIN_M), True


def read_instant(value: Any, item: str, field: str) -> datetime:
    if not isinstance(value, str):
        raise InputError("an RFC 3339 date-time", item=item, field=field)
    try:
        ns = parse_instant(value)
    except InstantError as exc:
        raise InputError(str(exc), item=item, field=field) from None
    return datetime.fromtimestamp(ns // 10**9, UTC) + timedelta(microseconds=ns % 10**9 // 1000)


def _clock(value: Any, item: str, field: str) -> time:
    try:
        clock: time = ED269TimeType(value).time
        return clock
    except Exception:
        raise InputError("a time of day: hh:mmZ or hh:mm:ss.ssZ (or another UTC offset)",
                         item=item, field=field) from None


def _windows(periods: Any, opts: Ed269Options, item: str) -> list[tuple[datetime, datetime]]:
    if not isinstance(periods, list) or not periods:
        raise InputError("at least one period", item=item, field="applicability")
    out: list[tuple[datetime, datetime]] = []
    h0, h1 = opts.horizon
    for k, p in enumerate(periods):
        f = f"applicability[{k}]"
        if not isinstance(p, dict):
            raise InputError("an object", item=item, field=f)
        permanent = p.get("permanent", "NO") == "YES"
        start = read_instant(p["startDateTime"], item, f"{f}.startDateTime") \
            if p.get("startDateTime") and not permanent else h0
        end = read_instant(p["endDateTime"], item, f"{f}.endDateTime") \
            if p.get("endDateTime") and not permanent else h1
        if end <= start:
            raise InputError("endDateTime must be after startDateTime", item=item,
                             field=f"{f}.endDateTime")
        schedule = p.get("schedule") or []
        if not schedule:
            out.append((start, end))
            continue
        first, last = max(start, h0), min(end, h1)  # a schedule repeats: bound it
        for j, daily in enumerate(schedule):
            g = f"{f}.schedule[{j}]"
            days = daily.get("day") if isinstance(daily, dict) else None
            if not isinstance(days, list) or not days:
                raise InputError("a list of days (MON..SUN or ANY)", item=item, field=f"{g}.day")
            wanted = {_enum(WeekDateType, d, item, f"{g}.day") for d in days}
            t0 = _clock(daily.get("startTime"), item, f"{g}.startTime")
            t1 = _clock(daily.get("endTime"), item, f"{g}.endTime")
            day: date = (first - timedelta(days=1)).date()
            while datetime.combine(day, time(0), UTC) < last:
                if WeekDateType.ANY in wanted or _DAYS[day.weekday()] in wanted:
                    w0 = datetime.combine(day, t0)
                    w1 = datetime.combine(day, t1)
                    if w1 <= w0:
                        w1 += timedelta(days=1)
                    w0, w1 = max(w0, start), min(w1, end)
                    if w0 < w1:
                        out.append((w0, w1))
                day += timedelta(days=1)
    return out


def _footprint(proj: Any, item: str, field: str) -> tuple[dict[str, Any], float | None]:
    if not isinstance(proj, dict):
        raise InputError("an object", item=item, field=field)
    kind = _enum(HorizontalProjectionType, proj.get("type"), item, f"{field}.type")
    if kind is HorizontalProjectionType.Circle:
        centre = proj.get("center")
        if not (isinstance(centre, list) and len(centre) == 2):
            raise InputError("[longitude, latitude]", item=item, field=f"{field}.center")
        radius = _number(proj.get("radius"), item, f"{field}.radius")
        return {"type": "Point", "coordinates": centre}, radius
    return {"type": "Polygon", "coordinates": proj.get("coordinates")}, None


def _instant_text(t: datetime) -> str:
    return format_instant(int(t.timestamp()) * 10**9 + t.microsecond * 1000)


def read_ed269(doc: Any, *, party: str, opts: Ed269Options) -> Ed269Import:
    """An ED-269 document as a detente scenario of zones (all or nothing: the first
    problem raises :class:`InputError` naming the feature and the field)."""
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise InputError("an ED-269 document: an object with a 'features' list",
                         field="features")
    features: list[dict[str, Any]] = []
    skipped: list[str] = []
    widened = False
    zones = 0
    for i, z in enumerate(doc["features"]):
        item = f"feature {i}"
        if not isinstance(z, dict):
            raise InputError("an object", item=item)
        ident = z.get("identifier")
        if not isinstance(ident, str) or not ident:
            raise InputError("a non-empty string", item=item, field="identifier")
        item = f"feature {i} ({ident})"
        restriction = _enum(Restriction, z.get("restriction"), item, "restriction")
        if restriction is Restriction.NO_RESTRICTION:
            skipped.append(ident)
            continue
        geometry = z.get("geometry")
        if not isinstance(geometry, list) or not geometry:
            raise InputError("at least one volume", item=item, field="geometry")
        windows = _windows(z.get("applicability"), opts, item)
        zones += 1
        for g, vol in enumerate(geometry):
            f = f"geometry[{g}]"
            if not isinstance(vol, dict):
                raise InputError("an object", item=item, field=f)
            unit = _enum(UomDimensions, vol.get("uomDimensions", "M"), item, f"{f}.uomDimensions")
            scale = FT_M if unit is UomDimensions.FT else 1.0
            bounds = []
            for upper, key in ((False, "lowerLimit"), (True, "upperLimit")):
                ref = _enum(VerticalReferenceType, vol.get(f"{key[:5]}VerticalReference",
                                                           "AMSL"),
                            item, f"{f}.{key[:5]}VerticalReference")
                limit = _number(vol.get(key, 0), item, f"{f}.{key}") * scale
                height, wide = _height(limit, ref, upper=upper, opts=opts, item=item,
                                       field=f"{f}.{key}")
                widened |= wide
                bounds.append(height)
            shape, radius = _footprint(vol.get("horizontalProjection"), item,
                                       f"{f}.horizontalProjection")
            for w, (t0, t1) in enumerate(windows):
                props: dict[str, Any] = {
                    "party": party, "activity": ident, "zone": True,
                    "restriction": RESTRICTIONS[restriction],
                    "alt_lower_m": bounds[0], "alt_upper_m": bounds[1],
                    "time_start": _instant_text(t0), "time_end": _instant_text(t1)}
                if radius is not None:
                    props["radius_m"] = radius
                features.append({"type": "Feature", "id": f"{ident}/{g}/{w}",
                                 "geometry": shape, "properties": props})
    if not features:
        raise InputError("no zone to import (none, or all without restriction)",
                         field="features")
    return Ed269Import({"type": "FeatureCollection", "features": features}, zones,
                       len(features), skipped, widened)


def write_ed269(owners: Iterable[tuple[ActivityRow, VolumeSet]], *, country: str,
                geoid_height_m: float | None, title: str) -> dict[str, Any]:
    """A party's zones as an ED-269 document: metres AMSL (exact with the geoid height;
    without it the band is widened by the geoid's extremes), limits rounded outwards,
    one applicability period per time window. A zone whose volumes are every footprint
    in every window is one feature; otherwise each footprint is a feature of its own
    (identifier ``zone-k``)."""
    features = []
    for owner, vols in owners:
        if not owner.is_zone:
            continue
        shapes: dict[str, tuple[dict[str, Any], list[tuple[int, int]]]] = {}
        for v in vols:
            vol = _volume_ed269(v, geoid_height_m)
            key = orjson.dumps(vol, option=orjson.OPT_SORT_KEYS).decode()
            shapes.setdefault(key, (vol, []))[1].append((v.time_start_ns, v.time_end_ns))
        windows = [sorted(set(w)) for _, w in shapes.values()]
        groups = ([(owner.ext_id, [vol for vol, _ in shapes.values()], windows[0])]
                  if all(w == windows[0] for w in windows) else
                  [(f"{owner.ext_id}-{k}", [vol], sorted(set(w)))
                   for k, (vol, w) in enumerate(shapes.values())])
        for ident, volumes, spans in groups:
            features.append({
                "identifier": ident, "country": country, "name": owner.ext_id,
                "type": "COMMON",
                "restriction": "PROHIBITED" if owner.restriction == "prohibited"
                else "CONDITIONAL",
                "zoneAuthority": [{"name": owner.party}],
                "applicability": [{"permanent": "NO", "startDateTime": format_instant(t0),
                                   "endDateTime": format_instant(t1)} for t0, t1 in spans],
                "geometry": volumes})
    return {"title": title, "features": features}


def _volume_ed269(v: Volume, geoid_height_m: float | None) -> dict[str, Any]:
    lo, hi = v.alt_lower_m, v.alt_upper_m
    if geoid_height_m is not None:
        lo, hi = lo - geoid_height_m, hi - geoid_height_m
    else:
        lo, hi = lo - GEOID_MAX_M, hi - GEOID_MIN_M
    geometry = volume_geometry(v.geometry)
    projection: dict[str, Any] = (
        {"type": "Circle", "center": geometry["coordinates"], "radius": v.radius_m}
        if v.is_circle else {"type": "Polygon", "coordinates": geometry["coordinates"]})
    surface = v.alt_lower_m <= SURFACE_M
    return {"uomDimensions": "M",
            "lowerLimit": 0 if surface else math.floor(lo),
            "lowerVerticalReference": "AGL" if surface else "AMSL",
            "upperLimit": math.ceil(hi), "upperVerticalReference": "AMSL",
            "horizontalProjection": projection}
