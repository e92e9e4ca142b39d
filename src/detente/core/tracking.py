"""Live positions against declared volumes, red lines and each other, a batch at a time.

Everything here works on columns (one array element per position report), so a batch
of a thousand reports costs a handful of vectorised GEOS and PROJ calls, not a thousand
Python iterations. The service keeps the state between batches; this module only
measures.

Where a measurement is approximate it errs towards telling:

* **Conformance** allows a report's stated accuracy inwards only: a position counts as
  inside a declared footprint if it lies within its horizontal accuracy of it, with
  the accuracy turned into degrees by the *largest* metres-per-degree anywhere (so
  the allowance is never more than stated). A doubtful position is nonconforming.
* **Red lines** allow the accuracy outwards: a position within its horizontal
  accuracy of a zone, turned into degrees by the *smallest* metres-per-degree at its
  latitude, counts as inside.
* **Proximity** subtracts both positions' accuracies from the measured separation
  before comparing it with the minima.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from .candidates import ranges
from .geodesy import GEOD, metres_to_dlat, metres_to_dlon
from .volumes import VolumeSet

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
IdxArray = NDArray[np.intp]
BoolArray = NDArray[np.bool_]

# Metres per degree in any direction are at most this anywhere on WGS 84 (a degree of
# latitude at the poles: 111,694 m).
M_PER_DEG_MAX = 111_700.0
MAX_ALT_M = 100_000.0
MIN_ALT_M = -1_000.0
MAX_ACCURACY_M = 100_000.0
MAX_SPEED_MPS = 3_000.0


@dataclass
class Fixes:
    """Position reports as columns. ``speed`` and ``heading`` are NaN where not given."""

    t: IntArray  # ns since the epoch
    lon: FloatArray
    lat: FloatArray
    alt: FloatArray  # metres above the WGS 84 ellipsoid
    hacc: FloatArray  # horizontal accuracy, metres (0: exact)
    vacc: FloatArray  # vertical accuracy, metres
    speed: FloatArray  # ground speed, m/s
    heading: FloatArray  # track over the ground, degrees clockwise from true north

    def __len__(self) -> int:
        return len(self.t)

    def take(self, idx: IdxArray) -> Fixes:
        return Fixes(self.t[idx], self.lon[idx], self.lat[idx], self.alt[idx],
                     self.hacc[idx], self.vacc[idx], self.speed[idx], self.heading[idx])


def first_problem(f: Fixes, latest_ns: int) -> tuple[int, str, str] | None:
    """The first bad report, as (index, field, reason); None when all are sound."""
    checks: list[tuple[str, BoolArray, str]] = [
        ("lon", ~(np.isfinite(f.lon) & (np.abs(f.lon) <= 180)),
         "must be a finite longitude in [-180, 180]"),
        ("lat", ~(np.isfinite(f.lat) & (np.abs(f.lat) <= 90)),
         "must be a finite latitude in [-90, 90]"),
        ("alt_m", ~(np.isfinite(f.alt) & (f.alt >= MIN_ALT_M) & (f.alt <= MAX_ALT_M)),
         f"must be a finite altitude in metres above WGS 84, in [{MIN_ALT_M:,.0f}, "
         f"{MAX_ALT_M:,.0f}]"),
        ("horizontal_accuracy_m",
         ~(np.isfinite(f.hacc) & (f.hacc >= 0) & (f.hacc <= MAX_ACCURACY_M)),
         f"must be a finite number of metres in [0, {MAX_ACCURACY_M:,.0f}]"),
        ("vertical_accuracy_m",
         ~(np.isfinite(f.vacc) & (f.vacc >= 0) & (f.vacc <= MAX_ACCURACY_M)),
         f"must be a finite number of metres in [0, {MAX_ACCURACY_M:,.0f}]"),
        ("speed_mps", ~(np.isnan(f.speed) | ((f.speed >= 0) & (f.speed <= MAX_SPEED_MPS))),
         f"must be a finite speed in m/s in [0, {MAX_SPEED_MPS:,.0f}]"),
        ("heading_deg", ~(np.isnan(f.heading) | ((f.heading >= 0) & (f.heading < 360))),
         "must be a finite heading in degrees in [0, 360)"),
        ("time", f.t > latest_ns, "is too far in the future"),
    ]
    first: tuple[int, str, str] | None = None
    for name, bad, reason in checks:
        hits = np.flatnonzero(bad)
        if len(hits) and (first is None or hits[0] < first[0]):
            first = (int(hits[0]), name, reason)
    # speed and heading come together: a velocity needs both.
    half = np.flatnonzero(np.isnan(f.speed) != np.isnan(f.heading))
    if len(half) and (first is None or half[0] < first[0]):
        first = (int(half[0]), "heading_deg" if np.isnan(f.heading[half[0]]) else "speed_mps",
                 "speed_mps and heading_deg go together: give both or neither")
    return first


def _on_footprint(vols: VolumeSet, v: IdxArray, lon: FloatArray, lat: FloatArray,
                  allow_deg: FloatArray, allow_m: FloatArray) -> BoolArray:
    """Whether each point ``(lon, lat)`` lies within the allowance of footprint ``v``:
    a circle by geodesic distance (``allow_m``), a polygon by planar lon/lat distance
    (``allow_deg``; its edges are straight there), trying the point a turn east and
    west too, as footprints across the antimeridian are unwrapped."""
    out = np.zeros(len(v), dtype=bool)
    circle = vols.radius[v] > 0
    if circle.any():
        c = np.flatnonzero(circle)
        centres = vols.geom[v[c]]
        _, _, d = GEOD.inv(shapely.get_x(centres), shapely.get_y(centres), lon[c], lat[c])
        out[c] = np.asarray(d) <= vols.radius[v[c]] + allow_m[c]
    poly = np.flatnonzero(~circle)
    if len(poly):
        geoms = vols.geom[v[poly]]
        for shift in (0.0, 360.0, -360.0):
            todo = poly[~out[poly]]
            if not len(todo):
                break
            pts = shapely.points(lon[todo] + shift, lat[todo])
            sel = np.searchsorted(poly, todo)
            out[todo] = shapely.dwithin(geoms[sel], pts, allow_deg[todo])
    return out


def inside_declared(f: Fixes, fix_idx: IdxArray, vols: VolumeSet, vol_idx: IdxArray
                    ) -> BoolArray:
    """For pairs (report ``fix_idx[k]``, volume ``vol_idx[k]``): whether the report lies
    in the volume, allowing its stated accuracy (inwards-conservative, see above)."""
    t, alt, vacc = f.t[fix_idx], f.alt[fix_idx], f.vacc[fix_idx]
    ok = ((t >= vols.t0[vol_idx]) & (t <= vols.t1[vol_idx])
          & (alt >= vols.alt_lo[vol_idx] - vacc) & (alt <= vols.alt_hi[vol_idx] + vacc))
    k = np.flatnonzero(ok)
    if len(k):
        hacc = f.hacc[fix_idx[k]]
        ok[k] = _on_footprint(vols, vol_idx[k], f.lon[fix_idx[k]], f.lat[fix_idx[k]],
                              hacc / M_PER_DEG_MAX, hacc)
    return ok


def outward_deg(lat: FloatArray, metres: FloatArray) -> FloatArray:
    """Degrees that certainly cover ``metres`` in any direction at latitude ``lat``."""
    dlat = np.asarray(metres_to_dlat(metres), dtype=np.float64)
    dlon = metres_to_dlon(metres, np.minimum(np.abs(lat) + dlat, 90.0))
    out: FloatArray = np.maximum(dlat, dlon)
    return out


def zone_hits(f: Fixes, zones: VolumeSet, tree: shapely.STRtree, applies: BoolArray
              ) -> tuple[IdxArray, IdxArray]:
    """Pairs (report, zone volume) where the report is inside a zone volume that applies
    to the reporting party (``applies[z]``), allowing its accuracy outwards."""
    if len(zones) == 0 or len(f) == 0:
        return np.empty(0, np.intp), np.empty(0, np.intp)
    allow = outward_deg(f.lat, f.hacc)
    found: list[tuple[IdxArray, IdxArray]] = []
    for shift in (0.0, 360.0, -360.0):
        pts = shapely.points(f.lon + shift, f.lat)
        # A box query widened by the allowance plus the circles' radii (their boxes are
        # conservative already), then the exact test below.
        fi, zi = tree.query(pts, predicate="dwithin", distance=allow)
        found.append((fi.astype(np.intp), zi.astype(np.intp)))
    fi = np.concatenate([p[0] for p in found])
    zi = np.concatenate([p[1] for p in found])
    if not len(fi):
        return fi, zi
    pair = np.unique(np.column_stack([fi, zi]), axis=0)
    fi, zi = pair[:, 0], pair[:, 1]
    keep = applies[zi]
    fi, zi = fi[keep], zi[keep]
    t, alt, vacc = f.t[fi], f.alt[fi], f.vacc[fi]
    ok = ((t >= zones.t0[zi]) & (t <= zones.t1[zi])
          & (alt >= zones.alt_lo[zi] - vacc) & (alt <= zones.alt_hi[zi] + vacc))
    k = np.flatnonzero(ok)
    if len(k):
        ok[k] = _on_footprint(zones, zi[k], f.lon[fi[k]], f.lat[fi[k]], allow[fi[k]],
                              f.hacc[fi[k]])
    return fi[ok], zi[ok]


def zone_tree(zones: VolumeSet) -> shapely.STRtree:
    """An index of zone footprints for :func:`zone_hits`: polygons as they are, circles
    as their (conservative) boxes."""
    geoms = np.array([shapely.box(*zones.bounds[i]) if zones.radius[i] > 0 else zones.geom[i]
                      for i in range(len(zones))], dtype=object)
    return shapely.STRtree(geoms)


def near_pairs(lon: FloatArray, lat: FloatArray, query: IdxArray, reach_m: FloatArray
               ) -> tuple[IdxArray, IdxArray, FloatArray]:
    """Pairs (i in ``query``, j any other point) whose geodesic distance is at most
    ``reach_m[i]``, with that distance.

    Candidates come from a uniform lon/lat grid whose cells are at least the largest
    reach wide in degrees (conservatively, at the highest latitude a query reaches), so
    every point within reach lies in a query's cell or one of its eight neighbours;
    longitude cells wrap round the antimeridian. Distances are then exact (Karney).
    """
    empty = np.empty(0, np.intp), np.empty(0, np.intp), np.empty(0)
    if len(query) == 0 or len(lon) < 2:
        return empty
    r = reach_m[query]
    dlat = float(np.max(metres_to_dlat(r)))
    top = float(np.minimum(np.max(np.abs(lat[query])) + dlat, 90.0))
    dlon = float(np.max(metres_to_dlon(r, top)))
    cs_lat = max(dlat, 1e-9)
    n_lon = max(int(360.0 // max(dlon, 1e-9)), 1)  # equal cells, each at least dlon wide
    cs_lon = 360.0 / n_lon
    ix = np.minimum(((lon + 180.0) / cs_lon).astype(np.int64), n_lon - 1)
    iy = ((lat + 90.0) / cs_lat).astype(np.int64)
    key = iy * n_lon + ix
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    qi: list[IdxArray] = []
    qj: list[IdxArray] = []
    for dy in (-1, 0, 1):
        for dx in ({-1, 0, 1} if n_lon >= 3 else set(range(n_lon))):
            nkey = (iy[query] + dy) * n_lon + (ix[query] + dx) % n_lon
            lo = np.searchsorted(sorted_key, nkey, side="left")
            hi = np.searchsorted(sorted_key, nkey, side="right")
            counts = hi - lo
            if not counts.any():
                continue
            qi.append(np.repeat(query, counts))
            qj.append(order[ranges(lo, counts)].astype(np.intp))
    if not qi:
        return empty
    i = np.concatenate(qi)
    j = np.concatenate(qj)
    keep = i != j
    i, j = i[keep], j[keep]
    if not len(i):
        return empty
    if n_lon < 3:  # (neighbour cells may repeat when the grid is that coarse)
        pair = np.unique(np.column_stack([i, j]), axis=0)
        i, j = pair[:, 0], pair[:, 1]
    _, _, d = GEOD.inv(lon[i], lat[i], lon[j], lat[j])
    dist = np.asarray(d, dtype=np.float64)
    ok = dist <= reach_m[i]
    return i[ok], j[ok], dist[ok]


def velocity_en(speed: FloatArray, heading: FloatArray) -> tuple[FloatArray, FloatArray]:
    """East and north components (m/s) of a ground speed along a heading."""
    rad = np.radians(heading)
    return speed * np.sin(rad), speed * np.cos(rad)


def velocity_between(lon0: FloatArray, lat0: FloatArray, t0: IntArray, lon1: FloatArray,
                     lat1: FloatArray, t1: IntArray) -> tuple[FloatArray, FloatArray]:
    """The mean velocity (east, north, m/s) from one fix to the next; NaN when the
    two are not strictly ordered in time."""
    az, _, d = GEOD.inv(lon0, lat0, lon1, lat1)
    dt = (np.asarray(t1, dtype=np.float64) - np.asarray(t0, dtype=np.float64)) / 1e9
    with np.errstate(divide="ignore", invalid="ignore"):
        speed = np.where(dt > 0, np.asarray(d) / dt, np.nan)
    return velocity_en(speed, np.mod(np.asarray(az), 360.0))


def closing_speed(lon_a: FloatArray, lat_a: FloatArray, ve_a: FloatArray, vn_a: FloatArray,
                  lon_b: FloatArray, lat_b: FloatArray, ve_b: FloatArray, vn_b: FloatArray
                  ) -> FloatArray:
    """How fast (m/s) each pair's horizontal separation shrinks: positive when closing,
    negative when opening, NaN when a velocity is unknown or the two coincide."""
    az, _, d = GEOD.inv(lon_a, lat_a, lon_b, lat_b)
    rad = np.radians(np.asarray(az))
    ue, un = np.sin(rad), np.cos(rad)  # unit vector from a towards b
    rel_e, rel_n = np.asarray(ve_b) - ve_a, np.asarray(vn_b) - vn_a
    out: FloatArray = np.where(np.asarray(d) > 0, -(rel_e * ue + rel_n * un), np.nan)
    return out


def round_m(x: float) -> float | None:
    """A measurement for a message: centimetres, or None when unknown."""
    return None if not math.isfinite(x) else round(x, 2)
