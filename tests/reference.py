"""A slow, independent brute-force reference for SEMANTICS.md, used by the property tests.

Written from the contract alone, sharing no code with ``detente.core``: its own
parsing and unwrapping, an azimuthal equidistant projection centred on each pair
(recentred on the nearest points found), edges densified 20x finer than the engine,
and Karney's geodesic for the final distance. It checks every pair (O(n^2)).
Altitudes, times and minima are exact: decimals as written, and fractions of seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import numpy as np
import shapely
from pyproj import Geod, Transformer
from shapely.ops import nearest_points

GEOD = Geod(ellps="WGS84")
FINE_DEG = 0.0005


@dataclass
class RefVolume:
    fid: object
    party: str
    kind: str | None
    ring_sets: list[list[list[float]]] | None  # unwrapped rings, or None for circle
    centre: tuple[float, float] | None
    radius: float
    lo: Decimal
    hi: Decimal
    t0: Fraction  # seconds since the epoch, exactly
    t1: Fraction
    zone: bool
    restriction: str | None
    applies_to: list[str] | None


def _seconds(s: str) -> Fraction:
    d = datetime.fromisoformat(s.replace("Z", "+00:00")) - datetime(1970, 1, 1, tzinfo=UTC)
    return Fraction(d.days * 86_400 + d.seconds) + Fraction(d.microseconds, 10**6)


def exact(x: float | int) -> Decimal:
    """A number from JSON as the decimal it was written as (its shortest repr)."""
    return Decimal(repr(x))


def _unwrap(ring: list[list[float]]) -> list[list[float]]:
    out = [list(ring[0][:2])]
    for lon, lat in (p[:2] for p in ring[1:]):
        prev = out[-1][0]
        d = lon - prev
        while d > 180:
            d -= 360
        while d < -180:
            d += 360
        out.append([prev + d, lat])
    return out


def parse(fc: dict) -> list[RefVolume]:
    vols = []
    for f in fc["features"]:
        p = f["properties"]
        g = f["geometry"]
        if g["type"] == "Polygon":
            rings = [_unwrap(r) for r in g["coordinates"]]
            # Holes sit next to the exterior, not a turn of the globe away.
            x0 = rings[0][0][0]
            rings = [rings[0]] + [[[x + 360.0 * round((x0 - r[0][0]) / 360.0), y]
                                   for x, y in r] for r in rings[1:]]
            centre, radius = None, 0.0
        else:
            rings, centre, radius = None, tuple(g["coordinates"][:2]), float(p["radius_m"])
        vols.append(RefVolume(
            f["id"], p["party"], p.get("kind"), rings, centre, radius,
            exact(p["alt_lower_m"]), exact(p["alt_upper_m"]),
            _seconds(p["time_start"]), _seconds(p["time_end"]), bool(p.get("zone")),
            p.get("restriction"), p.get("applies_to")))
    return vols


def _poly(rings: list[list[list[float]]], shift: float) -> shapely.Polygon:
    return shapely.Polygon([(x + shift, y) for x, y in rings[0]],
                           [[(x + shift, y) for x, y in r] for r in rings[1:]])


def _geom(v: RefVolume, shift: float = 0.0) -> shapely.Geometry:
    if v.ring_sets is not None:
        return _poly(v.ring_sets, shift)
    return shapely.Point(v.centre[0] + shift, v.centre[1])


def _aeqd(lon0: float, lat0: float) -> Transformer:
    return Transformer.from_pipeline(
        "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
        f"+step +proj=aeqd +lon_0={lon0} +lat_0={lat0} +ellps=WGS84")


def _align(a: shapely.Geometry, b: RefVolume) -> shapely.Geometry:
    ca = a.centroid.x
    gb = _geom(b)
    shift = 360.0 * round((ca - gb.centroid.x) / 360.0)
    return _geom(b, shift)


def _distance_sets(ga: shapely.Geometry, gb: shapely.Geometry) -> float:
    """Geodesic distance between two lon/lat sets with straight lon/lat edges."""
    if ga.intersects(gb):
        return 0.0
    fa = shapely.segmentize(ga, FINE_DEG)
    fb = shapely.segmentize(gb, FINE_DEG)
    pa, pb = nearest_points(fa, fb)
    for _ in range(2):
        lon0, lat0 = (pa.x + pb.x) / 2, (pa.y + pb.y) / 2
        tr = _aeqd(lon0, lat0)
        proj = shapely.transform(np.array([fa, fb], dtype=object),
                                 lambda xy, tr=tr: np.column_stack(tr.transform(xy[:, 0],
                                                                               xy[:, 1])))
        qa, qb = nearest_points(proj[0], proj[1])
        back = tr.transform([qa.x, qb.x], [qa.y, qb.y], direction="INVERSE")
        # The inverse answers in [-180, 180]: bring it back next to the centre.
        lons = [x + 360.0 * round((lon0 - x) / 360.0) for x in back[0]]
        pa, pb = shapely.Point(lons[0], back[1][0]), shapely.Point(lons[1], back[1][1])
    return float(GEOD.inv(pa.x, pa.y, pb.x, pb.y)[2])


def horizontal(a: RefVolume, b: RefVolume) -> tuple[float, bool, float]:
    """(h, overlaps_h, clearance) by brute force.

    ``clearance`` is the signed distance between the centre(s) and the other footprint
    less the radii (negative: a circle reaches into the other footprint); for two
    polygons it is ``h``.
    """
    if a.ring_sets is None and b.ring_sets is None:
        d = GEOD.inv(a.centre[0], a.centre[1], b.centre[0], b.centre[1])[2]
        c = d - a.radius - b.radius
        return max(0.0, c), c < 0, c
    ga = _geom(a)
    gb = _align(ga, b)
    if a.ring_sets is not None and b.ring_sets is not None:
        overlap = ga.intersects(gb) and not ga.touches(gb)
        h = _distance_sets(ga, gb)
        return h, overlap, h
    c = _distance_sets(ga, gb) - a.radius - b.radius
    return max(0.0, c), c < 0, c


def gaps(a: RefVolume, b: RefVolume) -> tuple[Decimal, bool, Fraction, bool]:
    v = max(Decimal(0), b.lo - a.hi, a.lo - b.hi)
    t = max(Fraction(0), b.t0 - a.t1, a.t0 - b.t1)
    return v, min(a.hi, b.hi) > max(a.lo, b.lo), t, min(a.t1, b.t1) > max(a.t0, b.t0)


def minima_for(minima: dict, a: RefVolume, b: RefVolume) -> tuple[float, Decimal, Fraction]:
    """H (a float: the accuracy clause applies), V and T exactly."""
    d = minima["default"]
    for o in minima.get("overrides", []):
        if sorted(o["kinds"]) == sorted([a.kind or "", b.kind or ""]) and a.kind and b.kind:
            d = o
            break
    return d["horizontal_m"], exact(d["vertical_m"]), Fraction(exact(d["time_s"]))
