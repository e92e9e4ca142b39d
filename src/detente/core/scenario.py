"""Reading scenario files: a GeoJSON FeatureCollection, one volume per Feature.

Validation follows SEMANTICS.md. The first problem found raises an
:class:`~detente.errors.InputError` that names the feature, the field and the
reason; nothing is returned half-read. The per-feature loop only collects
columns; geometry is checked in bulk (:mod:`detente.core.footprints`).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import orjson
import shapely

from ..errors import InputError, TooLarge
from .bulkread import MAX_ID_INT, Columns, read_columns
from .candidates import Parallel
from .footprints import FootprintError, build_polygons, check_circles
from .gcpause import no_gc
from .instants import InstantError, parse_instant
from .volumes import RESTRICTIONS, FeatureId, VolumeSet


@dataclass
class Scenario:
    """Activity volumes and zone volumes of one file, each in file order."""

    activities: VolumeSet
    zones: VolumeSet
    activity_pos: np.ndarray  # position of each activity volume in the file
    zone_pos: np.ndarray


def loads_json(data: bytes | str) -> Any:
    """Parse JSON strictly (no NaN/Infinity), with a clear error on failure."""
    try:
        with no_gc():
            return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        for token in ("NaN", "Infinity"):
            if token in text:
                where = _locate_constant(text)
                if where is not None:
                    raise where from None
        raise InputError(f"invalid JSON: {exc}") from None


def _locate_constant(text: str) -> InputError | None:
    """Name the feature and field that hold a NaN or Infinity literal."""

    class _Const(float):
        pass

    try:
        doc = json.loads(text, parse_constant=lambda c: _Const(float(c)))
    except ValueError:
        return None
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        return InputError("invalid JSON: NaN and Infinity are not JSON numbers")
    for i, feat in enumerate(features):
        path = _find_const(feat, _Const, "")
        if path is not None:
            fid = feat.get("id") if isinstance(feat, dict) else None
            return InputError(
                "NaN and Infinity are not allowed (not JSON numbers)",
                item=_item(fid, i),
                field=path.lstrip("."),
            )
    return InputError("invalid JSON: NaN and Infinity are not JSON numbers")


def _find_const(value: Any, kind: type, path: str) -> str | None:
    if isinstance(value, kind):
        return path
    if isinstance(value, dict):
        for k, v in value.items():
            found = _find_const(v, kind, f"{path}.{k}")
            if found is not None:
                return found
    if isinstance(value, list):
        for k, v in enumerate(value):
            found = _find_const(v, kind, f"{path}[{k}]")
            if found is not None:
                return found
    return None


def _item(fid: Any, index: int) -> str:
    if isinstance(fid, str | int | float) and not isinstance(fid, bool):
        return f"feature '{fid}'"
    return f"feature #{index} (no id)"


# The shape of a scenario, decoded straight into slots (no dicts). Values stay
# untyped (Any): _Reader checks them and names the feature and field of a problem.
class _Properties(msgspec.Struct):
    party: Any = None
    activity: Any = None
    kind: Any = None
    alt_lower_m: Any = None
    alt_upper_m: Any = None
    time_start: Any = None
    time_end: Any = None
    radius_m: Any = None
    zone: Any = None
    restriction: Any = None
    applies_to: Any = None


class _Geometry(msgspec.Struct):
    type: Any = None
    coordinates: Any = None


class _Feature(msgspec.Struct):
    type: Any = None
    id: Any = None
    geometry: _Geometry | None = None
    properties: _Properties | None = None


class _Document(msgspec.Struct):
    type: Any = None
    features: list[_Feature] | None = None


_DECODER = msgspec.json.Decoder(_Document)
_AT = re.compile(r"(.*) - at `\$\.features\[(\d+)\]\.?(.*)`")


def _decode(data: bytes | str) -> _Document:
    try:
        with no_gc():
            return _DECODER.decode(data)
    except msgspec.ValidationError as exc:
        m = _AT.fullmatch(str(exc))
        if m is None:
            raise InputError("a scenario must be a GeoJSON FeatureCollection with a list of "
                             f"features ({exc})") from None
        index = int(m.group(2))
        doc = loads_json(data)
        feat = doc["features"][index]
        fid = feat.get("id") if isinstance(feat, dict) else None
        field = m.group(3) or "type"
        raise InputError(m.group(1).replace("`", "'"), item=_item(fid, index),
                         field=field) from None
    except msgspec.DecodeError:
        loads_json(data)  # raises with the precise message (NaN and where it is, or syntax)
        raise


def read_scenario(
    data: bytes | str | dict[str, Any],
    *,
    default_party: str | None = None,
    progress: Callable[[int], None] | None = None,
    parallel: Parallel = map,
) -> Scenario:
    """Read and validate a scenario. ``default_party`` fills a missing ``party``;
    ``parallel`` is a ``map`` for independent checks (e.g. a thread pool's).

    A well-formed file is read in bulk (:mod:`.bulkread`); any other is read again
    feature by feature, which names the first problem.
    """
    raw = data if isinstance(data, bytes | str) else _dumps(data)
    cols = read_columns(raw, default_party)
    if cols is None:
        doc = _decode(raw)
        if doc.type != "FeatureCollection":
            raise InputError(
                "a scenario must be a GeoJSON FeatureCollection (type: FeatureCollection)")
        if doc.features is None:
            raise InputError("field 'features' must be a list of Features")
        with no_gc():
            cols = _Reader(default_party, progress).read(doc.features)
    elif progress is not None:
        progress(len(cols.ids))
    with no_gc():
        return _assemble(cols, parallel)


def read_scenarios(docs: Sequence[Any], *, parallel: Parallel = map
                   ) -> list[Scenario | InputError]:
    """Several documents read at once: each one's scenario, or the error reading it
    alone raises. (One bulk read of all costs about what one of a single feature
    does: what many small submissions arriving together need.)

    A document goes into the common read when each of its features names its party
    and activity and has a unique string or integer id (the common read renumbers
    ids); any other, and all of them if the common read fails, are read alone.
    """
    out: list[Scenario | InputError | None] = [None] * len(docs)
    merged: list[dict[str, Any]] = []
    ids: list[FeatureId] = []  # each merged feature's own id
    doc_of: list[int] = []
    start: list[int] = []  # each document's first merged feature
    for d, doc in enumerate(docs):
        start.append(len(merged))
        feats = doc.get("features") if isinstance(doc, dict) else None
        if (not isinstance(doc, dict) or doc.get("type") != "FeatureCollection"
                or not isinstance(feats, list) or not feats
                or not all(_mergeable(f) for f in feats)
                or len({(type(f["id"]), f["id"]) for f in feats}) != len(feats)):
            continue
        for f in feats:
            ids.append(f["id"])
            doc_of.append(d)
            merged.append({**f, "id": len(merged)})
    together = sorted(set(doc_of))
    read: Scenario | None = None
    if len(together) > 1:
        with contextlib.suppress(InputError):  # each alone, below, names its own problem
            read = read_scenario({"type": "FeatureCollection", "features": merged},
                                 parallel=parallel)
    if read is not None:
        which = np.asarray(doc_of, dtype=np.intp)
        first = np.asarray(start, dtype=np.intp)
        parts = []
        for vols in (read.activities, read.zones):
            at = np.asarray(vols.ids, dtype=np.intp)  # merged positions
            parts.append((vols, at, which[at] if len(at) else at))
        for d in together:
            sets = []
            for vols, at, doc in parts:
                idx = np.flatnonzero(doc == d)
                one = vols.take(idx)
                one.ids = [ids[k] for k in at[idx].tolist()]
                sets.append((one, at[idx] - first[d]))
            out[d] = Scenario(sets[0][0], sets[1][0], sets[0][1], sets[1][1])
    for d, doc in enumerate(docs):
        if out[d] is None:
            try:
                out[d] = read_scenario(doc, parallel=parallel)
            except InputError as exc:
                out[d] = exc
    return [x for x in out if x is not None]


def _mergeable(f: Any) -> bool:
    if not isinstance(f, dict):
        return False
    fid, props = f.get("id"), f.get("properties")
    return ((isinstance(fid, str) or (type(fid) is int and abs(fid) <= MAX_ID_INT))
            and isinstance(props, dict) and isinstance(props.get("party"), str)
            and isinstance(props.get("activity"), str))


_NUMBER = (int, float)


def _dumps(doc: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    except TypeError:  # an integer beyond 64 bits: the stdlib writes it, the reader refuses
        return json.dumps(doc).encode()


class _Reader:
    def __init__(self, default_party: str | None, progress: Callable[[int], None] | None):
        self.default_party = default_party
        self.progress = progress
        self.times: dict[tuple[str, bool], int] = {}

    def instant(self, value: Any, item: str, field: str, round_up: bool) -> int:
        key = (value, round_up) if isinstance(value, str) else None
        if key is not None:
            cached = self.times.get(key)
            if cached is not None:
                return cached
        try:
            ns = parse_instant(value, round_up=round_up)
        except InstantError as exc:
            raise InputError(str(exc), item=item, field=field) from None
        if key is not None:
            self.times[key] = ns
        return ns

    def read(self, features: list[_Feature]) -> Columns:
        ids: list[FeatureId] = []
        party: list[str] = []
        activity: list[str] = []
        kind: list[str | None] = []
        alt_lo: list[float] = []
        alt_hi: list[float] = []
        t0: list[int] = []
        t1: list[int] = []
        restriction: list[str | None] = []
        applies: list[tuple[str, ...] | None] = []
        is_zone: list[bool] = []
        is_point: list[bool] = []
        radius: list[float] = []
        # polygons, flattened
        coords: list[Any] = []
        ring_offsets = [0]
        poly_offsets = [0]
        poly_owner: list[int] = []
        point_lon: list[Any] = []
        point_lat: list[Any] = []
        point_owner: list[int] = []
        seen: set[Any] = set()
        report_every = 10_000

        for i, feat in enumerate(features):
            if self.progress is not None and i % report_every == 0 and i:
                self.progress(report_every)
            if feat.type != "Feature":
                raise InputError("each item of 'features' must be a GeoJSON Feature",
                                 item=f"feature #{i}", field="type")
            fid = feat.id
            if fid is None:
                raise InputError("every feature needs an 'id' (string or number)",
                                 item=f"feature #{i}", field="id")
            if isinstance(fid, bool) or not isinstance(fid, str | int | float) or (
                isinstance(fid, float) and not math.isfinite(fid)
            ):
                raise InputError("an id must be a string or a number",
                                 item=f"feature #{i}", field="id")
            if isinstance(fid, int) and abs(fid) > MAX_ID_INT:
                raise InputError("a numeric id must be at most 2^53 in size (use a string)",
                                 item=f"feature #{i}", field="id")
            item = f"feature '{fid}'"
            key = (type(fid) is str, fid)
            if key in seen:
                raise InputError(f"duplicate id: another feature already has id {fid!r}",
                                 item=item, field="id")
            seen.add(key)
            props = feat.properties
            if props is None:
                raise InputError("properties must be an object", item=item, field="properties")
            p = props.party if props.party is not None else self.default_party
            if p is None:
                raise InputError("missing: every volume needs the party that declares it",
                                 item=item, field="properties.party")
            if not isinstance(p, str) or not p.strip():
                raise InputError("party must be a non-empty string", item=item,
                                 field="properties.party")
            if self.default_party is not None and p != self.default_party:
                raise InputError(
                    f"party is '{p}' but this submission is made as '{self.default_party}'",
                    item=item, field="properties.party")
            act = props.activity if props.activity is not None else fid
            if isinstance(act, bool) or not isinstance(act, str | int | float):
                raise InputError("activity must be a string or a number", item=item,
                                 field="properties.activity")
            act_s = str(act)
            k = props.kind
            if k is not None and not isinstance(k, str):
                raise InputError("kind must be a string", item=item, field="properties.kind")
            lo = _altitude(props.alt_lower_m, item, "alt_lower_m")
            hi = _altitude(props.alt_upper_m, item, "alt_upper_m")
            if lo > hi:
                raise InputError(f"alt_lower_m ({lo}) is above alt_upper_m ({hi})",
                                 item=item, field="properties.alt_lower_m")
            for name, value in (("time_start", props.time_start), ("time_end", props.time_end)):
                if value is None:
                    raise InputError("missing: an RFC 3339 instant with an offset",
                                     item=item, field=f"properties.{name}")
            s = self.instant(props.time_start, item, "properties.time_start", False)
            e = self.instant(props.time_end, item, "properties.time_end", True)
            if e <= s:
                raise InputError("time_end must be after time_start", item=item,
                                 field="properties.time_end")
            zone = props.zone
            if zone not in (True, False, None):
                raise InputError("zone must be true or false", item=item, field="properties.zone")
            if zone:
                r = props.restriction
                if r not in RESTRICTIONS:
                    raise InputError(f"a zone's restriction must be one of {list(RESTRICTIONS)}",
                                     item=item, field="properties.restriction")
                ap = props.applies_to
                if ap is not None and (not isinstance(ap, list) or not all(
                        isinstance(x, str) and x for x in ap)):
                    raise InputError("applies_to must be a list of party names", item=item,
                                     field="properties.applies_to")
                restriction.append(r)
                applies.append(tuple(ap) if ap is not None else None)
            else:
                restriction.append(None)
                applies.append(None)
            geom = feat.geometry
            if geom is None:
                raise InputError("geometry must be a Polygon or a Point", item=item,
                                 field="geometry")
            gtype = geom.type
            gc = geom.coordinates
            n = len(ids)
            if gtype == "Polygon":
                if not isinstance(gc, list):
                    raise InputError("Polygon coordinates must be a list of rings", item=item,
                                     field="geometry.coordinates")
                for ring in gc:
                    if not isinstance(ring, list):
                        raise InputError("each ring must be a list of positions", item=item,
                                         field="geometry.coordinates")
                    coords.extend(ring)
                    ring_offsets.append(len(coords))
                poly_offsets.append(len(ring_offsets) - 1)
                poly_owner.append(n)
                radius.append(0.0)
                if props.radius_m is not None:
                    raise InputError("radius_m goes with a Point footprint only", item=item,
                                     field="properties.radius_m")
                is_point.append(False)
            elif gtype == "Point":
                if (not isinstance(gc, list) or len(gc) not in (2, 3) or not all(
                        isinstance(c, _NUMBER) and not isinstance(c, bool) for c in gc)):
                    raise InputError("Point coordinates must be [longitude, latitude]",
                                     item=item, field="geometry.coordinates")
                rad = props.radius_m
                if rad is None:
                    raise InputError("missing: a Point footprint needs radius_m (metres)",
                                     item=item, field="properties.radius_m")
                if isinstance(rad, bool) or not isinstance(rad, _NUMBER):
                    raise InputError(f"radius_m must be a number, not {rad!r}", item=item,
                                     field="properties.radius_m")
                point_lon.append(gc[0])
                point_lat.append(gc[1])
                point_owner.append(n)
                radius.append(float(rad))
                is_point.append(True)
            else:
                raise InputError(
                    f"unsupported geometry type {gtype!r}: use Polygon, or Point with radius_m",
                    item=item, field="geometry.type")
            ids.append(fid)
            party.append(p)
            activity.append(act_s)
            kind.append(k)
            alt_lo.append(lo)
            alt_hi.append(hi)
            t0.append(s)
            t1.append(e)
            is_zone.append(bool(zone))

        if self.progress is not None:
            self.progress(len(ids) % report_every or (report_every if ids else 0))
        flat = _positions(coords, ring_offsets, poly_offsets, poly_owner, ids)
        return Columns(
            ids=ids, party=party, activity=activity, kind=kind, alt_lo=alt_lo,
            alt_hi=alt_hi, t0=t0, t1=t1, restriction=restriction, applies=applies,
            is_zone=np.asarray(is_zone, dtype=bool),
            radius=np.asarray(radius, dtype=np.float64), positions=flat,
            ring_offsets=np.asarray(ring_offsets, dtype=np.intp),
            poly_offsets=np.asarray(poly_offsets, dtype=np.intp),
            poly_owner=np.asarray(poly_owner, dtype=np.intp),
            point_lon=np.asarray(point_lon, dtype=np.float64),
            point_lat=np.asarray(point_lat, dtype=np.float64),
            point_owner=np.asarray(point_owner, dtype=np.intp),
        )


def _assemble(c: Columns, parallel: Parallel) -> Scenario:
    """Build and check the footprints of read columns, then split activities and zones."""
    n = len(c.ids)
    geoms = np.empty(n, dtype=object)
    if len(c.poly_owner):
        try:
            geoms[c.poly_owner] = build_polygons(c.positions, c.ring_offsets, c.poly_offsets,
                                                 parallel=parallel)
        except FootprintError as exc:
            pr = exc.problem
            k = int(c.poly_owner[pr.index])
            raise (TooLarge if pr.too_large else InputError)(
                pr.reason, item=_item(c.ids[k], k), field=pr.field) from None
    if len(c.point_owner):
        try:
            check_circles(c.point_lon, c.point_lat, c.radius[c.point_owner])
        except FootprintError as exc:
            pr = exc.problem
            k = int(c.point_owner[pr.index])
            raise (TooLarge if pr.too_large else InputError)(
                pr.reason, item=_item(c.ids[k], k), field=pr.field) from None
        geoms[c.point_owner] = shapely.points(c.point_lon, c.point_lat)
    all_vols = VolumeSet.from_columns(
        ids=c.ids, party=c.party, activity=c.activity, kind=c.kind, geom=geoms,
        radius=c.radius, alt_lo=c.alt_lo, alt_hi=c.alt_hi, t0=c.t0, t1=c.t1,
        restriction=c.restriction, applies_to=c.applies,
    )
    act_pos = np.flatnonzero(~c.is_zone)
    zone_pos = np.flatnonzero(c.is_zone)
    return Scenario(
        activities=all_vols.take(act_pos) if len(zone_pos) else all_vols,
        zones=all_vols.take(zone_pos),
        activity_pos=act_pos,
        zone_pos=zone_pos,
    )


def _altitude(val: Any, item: str, name: str) -> float:
    if val is None:
        raise InputError("missing: metres above the WGS 84 ellipsoid", item=item,
                         field=f"properties.{name}")
    if isinstance(val, bool) or not isinstance(val, _NUMBER):
        raise InputError(f"must be a number (metres), not {val!r}", item=item,
                         field=f"properties.{name}")
    if not math.isfinite(val):
        raise InputError("must be a finite number", item=item, field=f"properties.{name}")
    return float(val)


def _positions(
    coords: list[Any], ring_offsets: list[int], poly_offsets: list[int],
    poly_owner: list[int], ids: list[FeatureId],
) -> np.ndarray:
    """Positions as an ``(m, 2)`` float array; a malformed one is named precisely."""
    if not coords:
        return np.empty((0, 2), dtype=np.float64)
    try:
        arr = np.array(coords)
        if arr.ndim == 2 and arr.shape[1] in (2, 3) and arr.dtype.kind in "fi":
            return np.ascontiguousarray(arr[:, :2], dtype=np.float64)
    except (ValueError, TypeError):
        pass
    # Slow path, for bad input (the first malformed position is named) and for
    # positions with and without a third element (an altitude, ignored) in one file.
    ring_poly = np.repeat(np.arange(len(poly_owner)), np.diff(poly_offsets))
    for r in range(len(ring_offsets) - 1):
        for j in range(ring_offsets[r], ring_offsets[r + 1]):
            pos = coords[j]
            if not (isinstance(pos, list) and len(pos) in (2, 3) and all(
                    isinstance(c, _NUMBER) and not isinstance(c, bool) for c in pos)):
                p = int(ring_poly[r])
                k = r - poly_offsets[p]
                raise InputError(
                    f"position {j - ring_offsets[r]} must be [longitude, latitude] numbers, "
                    f"not {pos!r}",
                    item=_item(ids[poly_owner[p]], poly_owner[p]),
                    field=f"geometry.coordinates[{k}]")
    return np.array([pos[:2] for pos in coords], dtype=np.float64)
