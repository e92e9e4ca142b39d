"""Horizontal separation between footprints, within SEMANTICS.md's accuracy clause.

The contract: ``h`` is the geodesic distance on WGS 84 between the closest points of
two footprints whose edges are straight in longitude/latitude. We compute a lower
bound ``h_low`` with ``true h - (0.03 % of h + 0.2 m) <= h_low <= true h``, so a
decision ``h_low < H`` never misses and false alarms stay inside the clause.

How:
* First, a flat lower bound for every pair at once: with metres per degree held at
  their smallest over the latitudes the pair (and any geodesic shorter than the
  reach between them) can touch, every path on the ellipsoid is at least as long as
  in that flat metric, where lon/lat edges stay straight (no densifying, no
  projection). Its error is the spread of metres per degree over those latitudes:
  where that is within ``FLAT_EXCESS``, as for most pairs of small footprints, the
  bound is the answer; pairs it rules out (``h_low >= reach``) are done too.
* The others: polygons are densified in lon/lat (edges are straight there) and projected to a
  transverse Mercator whose central meridian lies on a 0.25 degree grid next to the
  pair (transformers are cached: creating one costs ~0.1 ms).
* Transverse Mercator with k0 = 1 has scale k >= 1 everywhere, so planar distances
  never undercount; dividing by the largest scale over the pair's extent, ``K``,
  gives a lower bound. Densified chords stand at most ``SAGITTA_M`` from the true
  edge image; that is subtracted too.
* Pairs too wide for one projection are clipped to where they can be near each
  other, then cut into longitude strips, each pair of strips measured on its own;
  strips too far apart east-west for even that are measured point by point
  (``_far_pair``).
* Circle to circle is measured exactly (Karney's geodesic); circle to polygon is
  ``max(0, d(centre, polygon) - r)``, exact on a geodesic surface: ``d`` is 0 where the
  centre is on or in the polygon (point in polygon is exact in lon/lat), otherwise
  measured in an azimuthal equidistant projection around the centre (distances from it are
  geodesic, however far: a transverse Mercator's scale error grows with the radius,
  and a circle of 50 km was 4 m off at a gap of 1.2 km).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer

from .geodesy import E2, GEOD, M_PER_DEG_LAT_MIN, A, expand_bounds, geodesic_distance

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
ObjArray = NDArray[np.object_]

DENSIFY_DEG = 0.01  # longest densified chord, degrees of lon/lat
SAGITTA_M = 0.05  # bound on the gap between a chord and the true edge image (measured max 0.024 m)
FLAT_EXCESS = 2.5e-4  # largest spread of metres per degree for a flat bound to stand
FLAT_SLACK_M = 0.001  # taken off flat bounds, for rounding
GRID_DEG = 0.25  # central meridians lie on this grid
R_SCALE = 6.33e6  # k <= 1 + x^2 / (2 R^2) (smallest radius seen: 6.355e6 m)
MAX_SCALE_EXCESS = 3e-4  # above this, a pair is cut into strips
STRIP_DEG = 1.0
SEED_DEG = 0.1  # first spacing of samples on a far pair's boundary
REFINE_REL = 2e-4  # a far pair's bound is refined to within this share of its best sample
REFINE_ROUNDS = 40
POINT_PAIRS = 1_000_000  # point-vertex pairs measured at a time in a far pair


@lru_cache(maxsize=4096)
def _transformer(lon0: float) -> Transformer:
    return Transformer.from_pipeline(
        "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
        f"+step +proj=tmerc +lon_0={lon0!r} +k_0=1 +ellps=WGS84"
    )


def scale_bound(x_max: FloatArray) -> FloatArray:
    """Largest transverse Mercator scale within ``|x| <= x_max`` metres (conservative)."""
    q = (np.asarray(x_max, dtype=np.float64) / R_SCALE) ** 2
    out: FloatArray = 1.0 + 0.5 * q * (1.0 + q) * 1.01
    return out


def densify(geoms: ObjArray, step: float = DENSIFY_DEG) -> ObjArray:
    """Densify polygon edges in lon/lat (points, and footprints smaller than a step,
    pass through unchanged: none of their edges is longer)."""
    b = shapely.bounds(geoms)
    big = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) > step
    out = geoms.copy()
    if big.any():
        out[big] = shapely.segmentize(geoms[big], step)
    return out


def _project(geoms: ObjArray, lon0: float) -> ObjArray:
    tr = _transformer(lon0)

    def fwd(xy: FloatArray) -> FloatArray:
        x, y = tr.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    out: ObjArray = shapely.transform(geoms, fwd)
    return out


def _shift(geoms: ObjArray, dlon: FloatArray) -> ObjArray:
    """Translate each geometry by its own longitude offset (multiples of 360)."""
    out = geoms.copy()
    for d in np.unique(dlon):
        if d == 0:
            continue
        m = dlon == d
        out[m] = shapely.transform(geoms[m], lambda xy, d=d: xy + np.array([d, 0.0]))
    return out


def align_offsets(bounds_a: FloatArray, bounds_b: FloatArray) -> FloatArray:
    """Longitude offsets (multiples of 360) that bring each B next to its A."""
    ca = (bounds_a[:, 0] + bounds_a[:, 2]) / 2
    cb = (bounds_b[:, 0] + bounds_b[:, 2]) / 2
    out: FloatArray = 360.0 * np.round((ca - cb) / 360.0)
    return out


def horizontal(
    geom_a: ObjArray,
    rad_a: FloatArray,
    geom_b: ObjArray,
    rad_b: FloatArray,
    reach: FloatArray,
) -> tuple[FloatArray, BoolArray]:
    """For each pair, ``(h_low, overlap)``.

    ``h_low`` is a lower bound of the horizontal gap ``h`` (metres) that is within the
    accuracy clause wherever ``h < reach``; where ``h >= reach`` it may be any value
    ``>= reach`` (including ``inf``). ``overlap`` is True where the footprints may
    share area, erring towards True; it is exact for two polygons where ``reach`` is 0,
    the only place a caller needs it (elsewhere ``h = 0 < reach`` already decides).
    """
    n = len(geom_a)
    h = np.full(n, np.inf)
    overlap = np.zeros(n, dtype=bool)
    if n == 0:
        return h, overlap
    rad_a = np.asarray(rad_a, dtype=np.float64)
    rad_b = np.asarray(rad_b, dtype=np.float64)
    reach = np.broadcast_to(np.asarray(reach, dtype=np.float64), (n,))
    ba = shapely.bounds(geom_a)
    bb = shapely.bounds(geom_b)
    off = align_offsets(ba, bb)
    geom_b = _shift(geom_b, off)
    bb = bb + np.column_stack([off, np.zeros(n), off, np.zeros(n)])
    circ_a = rad_a > 0
    circ_b = rad_b > 0

    # Circle to circle: exact.
    cc = circ_a & circ_b
    if cc.any():
        d = geodesic_distance(ba[cc, 0], ba[cc, 1], bb[cc, 0], bb[cc, 1])
        rs = rad_a[cc] + rad_b[cc]
        h[cc] = np.maximum(0.0, d - rs)
        overlap[cc] = d < rs

    # Two polygons, or a circle's centre and a polygon: meeting is exact in lon/lat, where
    # edges are straight, and what meets is at h = 0. A circle about a centre on or in a
    # polygon overlaps it; two polygons that meet overlap where their interiors do.
    pp = ~circ_a & ~circ_b
    meet = np.zeros(n, dtype=bool)
    if (~cc).any():
        meet[~cc] = shapely.intersects(geom_a[~cc], geom_b[~cc])
        overlap[meet] = True
        m = np.flatnonzero(meet & pp & (reach <= 0))
        overlap[m] = shapely.relate_pattern(geom_a[m], geom_b[m], "T********")
    h[meet] = 0.0
    rest = np.flatnonzero(~cc & ~meet)
    if len(rest) == 0:
        return h, overlap
    ra, rb = rad_a[rest], rad_b[rest]
    # Pass 1, flat: the answer for pairs apart or small enough; the rest go on.
    low, exact = _flat_low(geom_a[rest], geom_b[rest], ba[rest], bb[rest], ra, rb,
                           reach[rest])
    h[rest] = np.maximum(0.0, low)
    near = (low < reach[rest]) & ~exact
    rest = rest[near]
    mixed = circ_a[rest] != circ_b[rest]
    if mixed.any():
        # A circle and a polygon: from the circle's centre, exactly (nothing is wide).
        m = rest[mixed]
        h[m] = np.maximum(0.0, _centred_low(geom_a[m], rad_a[m], geom_b[m], rad_b[m]))
        rest = rest[~mixed]
    if len(rest):
        # Pass 2, two polygons: fine chords, for the pairs that may be within reach.
        low, k = _projected_low(densify(geom_a[rest]), densify(geom_b[rest]), ba[rest],
                                bb[rest], with_scale=True)
        h[rest] = np.maximum(0.0, low)
        wide = (k - 1.0 > MAX_SCALE_EXCESS) & (low < reach[rest])
        for i in rest[wide]:
            h[i] = _wide_pair(geom_a[i], geom_b[i], max(float(reach[i]), 1.0))
    # A circle overlaps where its centre is nearer than its radius (lower bound: errs to True).
    circ = np.flatnonzero(~cc & (circ_a | circ_b))
    overlap[circ] = h[circ] <= 0.0
    return h, overlap


def _per_degree(lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Metres per degree of latitude (meridian) and of longitude (parallel) at ``lat``."""
    phi = np.radians(lat)
    w = 1.0 - E2 * np.sin(phi) ** 2
    rad = math.pi / 180
    return A * (1 - E2) / w ** 1.5 * rad, A / np.sqrt(w) * np.cos(phi) * rad


def _flat_low(ga: ObjArray, gb: ObjArray, ba: FloatArray, bb: FloatArray, ra: FloatArray,
              rb: FloatArray, reach: FloatArray) -> tuple[FloatArray, BoolArray]:
    """Flat lower bounds of ``h``, and where they are within the accuracy clause.

    A geodesic shorter than ``reach + ra + rb`` strays from its ends' latitudes by at
    most half its length: the band allows that. Meridian metres per degree grow with
    |latitude| and parallel ones shrink, so the smallest of each lie at the band's
    edges. A straight lon/lat line between the flat closest points is at most the
    spread of scales longer on the ellipsoid: that bounds the error.
    """
    n = len(ga)
    ext = (reach + ra + rb) / 2 / M_PER_DEG_LAT_MIN + 1e-9
    south = np.maximum(np.minimum(ba[:, 1], bb[:, 1]) - ext, -90.0)
    north = np.minimum(np.maximum(ba[:, 3], bb[:, 3]) + ext, 90.0)
    far = np.maximum(np.abs(south), np.abs(north))
    near = np.where((south < 0) & (north > 0), 0.0, np.minimum(np.abs(south), np.abs(north)))
    m_min, p_max = _per_degree(near)
    m_max, p_min = _per_degree(far)
    m_min, p_min = m_min * (1 - 1e-12), p_min * (1 - 1e-12)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.maximum(m_max / m_min, np.where(p_min > 0, p_max / p_min, np.inf)) - 1.0
    lon0 = (np.minimum(ba[:, 0], bb[:, 0]) + np.maximum(ba[:, 2], bb[:, 2])) / 2
    lat0 = (south + north) / 2

    def flat(g: ObjArray) -> ObjArray:
        k = np.repeat(np.arange(n), shapely.get_num_coordinates(g))
        out: ObjArray = shapely.transform(g, lambda xy: np.column_stack(
            [(xy[:, 0] - lon0[k]) * p_min[k], (xy[:, 1] - lat0[k]) * m_min[k]]))
        return out

    low = shapely.distance(flat(ga), flat(gb)) - ra - rb - FLAT_SLACK_M
    low = np.where(p_min > 0, low, -np.inf)  # a band reaching a pole: no flat bound
    return low, spread <= FLAT_EXCESS


def _projected_low(da: ObjArray, db: ObjArray, ba: FloatArray, bb: FloatArray,
                   with_scale: bool = False) -> Any:
    """Lower bounds of ``h`` between chorded polygons projected next to each pair.

    Returns the bounds, and with ``with_scale`` also each pair's scale bound ``K``.
    """
    west = np.minimum(ba[:, 0], bb[:, 0])
    east = np.maximum(ba[:, 2], bb[:, 2])
    lon0 = np.round(((west + east) / 2) / GRID_DEG) * GRID_DEG
    low = np.empty(len(da))
    k = np.empty(len(da))
    for l0 in np.unique(lon0):
        m = np.flatnonzero(lon0 == l0)
        pa = _project(da[m], float(l0))
        pb = _project(db[m], float(l0))
        d = shapely.distance(pa, pb)
        bpa = shapely.bounds(pa)
        bpb = shapely.bounds(pb)
        x_max = np.max(np.abs(np.column_stack([bpa[:, 0], bpa[:, 2], bpb[:, 0], bpb[:, 2]])),
                       axis=1)
        k[m] = scale_bound(x_max)
        low[m] = d / k[m] - 2 * SAGITTA_M
    return (low, k) if with_scale else low


def _centred_low(ga: ObjArray, ra: FloatArray, gb: ObjArray, rb: FloatArray) -> FloatArray:
    """Lower bounds of ``h`` for pairs of a circle and a polygon (either way round):
    the distance from the centre (see ``_from_points``) less the radius."""
    circle_a = ra > 0
    centres = shapely.get_coordinates(np.where(circle_a, ga, gb))
    polys = densify(np.where(circle_a, gb, ga))
    low: FloatArray = _from_points(centres, polys) - SAGITTA_M - np.where(circle_a, ra, rb)
    return low


def _from_points(xy: FloatArray, polys: ObjArray) -> FloatArray:
    """Distance from each point ``xy[i]`` to the chorded polygon ``polys[i]``.

    The polygon is put in an azimuthal equidistant projection around its point: each
    vertex at its geodesic distance from the point, along its azimuth (Karney's inverse,
    all vertices in one call). Distances from the point are then geodesic however far,
    so the result is within ``SAGITTA_M`` of the true distance to the densified polygon.
    """
    owner = np.repeat(np.arange(len(polys)), shapely.get_num_coordinates(polys))

    def fwd(c: FloatArray) -> FloatArray:
        az, _, dist = GEOD.inv(xy[owner, 0], xy[owner, 1], c[:, 0], c[:, 1])
        az = np.radians(az)
        return np.column_stack([dist * np.sin(az), dist * np.cos(az)])

    out: FloatArray = shapely.distance(shapely.points(0.0, 0.0), shapely.transform(polys, fwd))
    return out


def _wide_pair(ga: shapely.Geometry, gb: shapely.Geometry, reach: float) -> float:
    """The slow path for two polygons too wide for one projection; ``inf`` if
    ``h >= reach``."""
    # Keep only the parts that can lie within ``reach`` of the other footprint.
    box_a = expand_bounds(np.array([shapely.bounds(ga)]), reach)[0]
    box_b = expand_bounds(np.array([shapely.bounds(gb)]), reach)[0]
    ga = shapely.intersection(ga, shapely.box(*box_b))
    gb = shapely.intersection(gb, shapely.box(*box_a))
    if shapely.is_empty(ga) or shapely.is_empty(gb):
        return math.inf
    strips_a = _strips(ga)
    strips_b = _strips(gb)
    ba = shapely.bounds(strips_a)
    bb = shapely.bounds(strips_b)
    ea = expand_bounds(ba, reach)
    # Pairs of strips whose boxes come within reach, each measured in its own projection.
    apart = ((bb[None, :, 0] > ea[:, None, 2]) | (bb[None, :, 2] < ea[:, None, 0])
             | (bb[None, :, 1] > ea[:, None, 3]) | (bb[None, :, 3] < ea[:, None, 1]))
    near_a, near_b = np.nonzero(~apart)
    if len(near_a) == 0:
        return math.inf
    low, k = _projected_low(densify(strips_a[near_a]), densify(strips_b[near_b]), ba[near_a],
                            bb[near_b], with_scale=True)
    # Strips far apart east-west stretch one projection too much: those that may hold the
    # nearest points are measured point by point instead.
    far = k - 1.0 > MAX_SCALE_EXCESS
    best = float(np.min(low[~far])) if not far.all() else math.inf
    for i in np.flatnonzero(far)[np.argsort(low[far])]:
        if low[i] >= min(best, reach):
            break
        best = min(best, _far_pair(strips_a[near_a[i]], strips_b[near_b[i]]))
    return max(0.0, best)


def _far_pair(ga: shapely.Geometry, gb: shapely.Geometry) -> float:
    """A lower bound of ``h`` between two disjoint footprints, within ``REFINE_REL``.

    ``h`` is the least ``d(p, B)`` over the points ``p`` of A's boundary, and
    ``d(p, B)`` is measured from ``p`` (``_from_points``) with no scale error. It
    changes no faster than ``p`` moves, so an edge of true length at most ``l`` between
    samples ``f0`` and ``f1`` holds nothing below ``(f0 + f1 - l) / 2``. Edges whose
    bound is not yet within ``REFINE_REL`` of the best sample are halved (in lon/lat,
    where they are straight) until every bound is.
    """
    da, b = densify(np.array([ga, gb], dtype=object))
    if shapely.get_num_coordinates(da) < shapely.get_num_coordinates(b):
        ga, b = gb, da  # each sample costs a pass over B's vertices: B is the smaller
    p0, p1 = _boundary_edges(ga)
    f = _distances_to(np.concatenate([p0, p1]), b) - SAGITTA_M
    f0, f1 = f[: len(p0)], f[len(p0):]
    upper = float(np.min(f)) + 2 * SAGITTA_M
    settled = math.inf
    for _ in range(REFINE_ROUNDS):
        bound = np.minimum((f0 + f1 - _edge_length_up(p0, p1)) / 2, np.minimum(f0, f1))
        open_ = bound < upper * (1.0 - REFINE_REL)
        if (~open_).any():
            settled = min(settled, float(np.min(bound[~open_])))
        if not open_.any():
            return settled
        p0, p1, f0, f1 = p0[open_], p1[open_], f0[open_], f1[open_]
        mid = (p0 + p1) / 2
        fm = _distances_to(mid, b) - SAGITTA_M
        upper = min(upper, float(np.min(fm)) + 2 * SAGITTA_M)
        p0, p1 = np.concatenate([p0, mid]), np.concatenate([mid, p1])
        f0, f1 = np.concatenate([f0, fm]), np.concatenate([fm, f1])
    bound = np.minimum((f0 + f1 - _edge_length_up(p0, p1)) / 2, np.minimum(f0, f1))
    return min(settled, float(np.min(bound)))


def _distances_to(xy: FloatArray, b: shapely.Geometry) -> FloatArray:
    """``_from_points`` from many points to one footprint, in pieces of at most
    ``POINT_PAIRS`` point-vertex pairs (two long footprints side by side can ask for
    thousands of samples against thousands of vertices)."""
    step = max(1, POINT_PAIRS // max(1, int(shapely.get_num_coordinates(b))))
    out: FloatArray = np.concatenate([np.empty(0)] + [
        _from_points(xy[k:k + step], np.full(len(xy[k:k + step]), b, dtype=object))
        for k in range(0, len(xy), step)])
    return out


def _boundary_edges(g: shapely.Geometry) -> tuple[FloatArray, FloatArray]:
    """Start and end points of every boundary edge of ``g``, edges at most ``SEED_DEG``
    long (a point part is an edge of length 0)."""
    lines: list[Any] = []
    for part in shapely.get_parts(g):
        if shapely.get_type_id(part) == 3:  # Polygon
            lines.extend(shapely.get_rings(part))
        else:
            lines.append(part)
    starts, ends = [], []
    for line in lines:
        c = shapely.get_coordinates(shapely.segmentize(line, SEED_DEG))
        starts.append(c[:-1] if len(c) > 1 else c)
        ends.append(c[1:] if len(c) > 1 else c)
    return np.concatenate(starts), np.concatenate(ends)


def _edge_length_up(p0: FloatArray, p1: FloatArray) -> FloatArray:
    """Upper bounds of the true lengths of edges straight in lon/lat: metres per degree
    of latitude at their largest (the higher end), of longitude at their largest (the
    end nearer the equator, or the equator)."""
    lat0, lat1 = np.abs(p0[:, 1]), np.abs(p1[:, 1])
    nearest = np.where(p0[:, 1] * p1[:, 1] <= 0, 0.0, np.minimum(lat0, lat1))
    m_max, _ = _per_degree(np.maximum(lat0, lat1))
    _, p_max = _per_degree(nearest)
    out: FloatArray = np.hypot((p1[:, 1] - p0[:, 1]) * m_max,
                               (p1[:, 0] - p0[:, 0]) * p_max) * (1 + 1e-9) + 1e-6
    return out


def _strips(g: shapely.Geometry) -> ObjArray:
    """Cut a footprint into longitude strips of ``STRIP_DEG`` (exact: edges are straight)."""
    x0, y0, x1, y1 = shapely.bounds(g)
    if x1 - x0 <= STRIP_DEG:
        return np.array([g], dtype=object)
    edges = np.arange(x0, x1, STRIP_DEG)
    boxes = shapely.box(edges, y0 - 1, np.minimum(edges + STRIP_DEG, x1), y1 + 1)
    parts = shapely.intersection(g, boxes)
    out: ObjArray = parts[~shapely.is_empty(parts)]
    return out
