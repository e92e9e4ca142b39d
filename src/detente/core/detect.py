"""Conflict and red-line detection: candidate search that never misses, then exact tests.

Candidates come from boxes widened by the largest minima (conservatively, in
degrees), in a frame where boxes that cross the antimeridian are entered twice.
Each candidate then goes through the exact predicates of SEMANTICS.md:
``(overlaps_h or h < H) and (overlaps_v or v < V) and (overlaps_t or t < T)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from .geodesy import expand_bounds
from .minima import Minima, Separation
from .separation import horizontal
from .volumes import VolumeSet

IntArray = NDArray[np.intp]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
NS_PER_S = 1e9


@dataclass
class Pairs:
    """Columnar pairs ``(a[k], b[k])`` with their gaps (metres, metres, seconds)."""

    a: IntArray
    b: IntArray
    h: FloatArray
    v: FloatArray
    t: FloatArray

    def __len__(self) -> int:
        return len(self.a)

    @classmethod
    def empty(cls) -> Pairs:
        e = np.empty(0, dtype=np.intp)
        f = np.empty(0)
        return cls(e, e.copy(), f, f.copy(), f.copy())


@dataclass
class Violations:
    """Columnar red-line entries: activity volume ``volume[k]`` enters zone volume ``zone[k]``."""

    volume: IntArray
    zone: IntArray

    def __len__(self) -> int:
        return len(self.volume)


def _boxes_with_wraps(bounds: FloatArray) -> tuple[FloatArray, IntArray]:
    """Boxes in [-180, 180] longitude: a box beyond the antimeridian is entered again, shifted."""
    over = np.flatnonzero(bounds[:, 2] > 180)
    under = np.flatnonzero(bounds[:, 0] < -180)
    shifted_over = bounds[over] - np.array([360.0, 0, 360.0, 0])
    shifted_under = bounds[under] + np.array([360.0, 0, 360.0, 0])
    all_b = np.concatenate([bounds, shifted_over, shifted_under])
    owner = np.concatenate([np.arange(len(bounds)), over, under]).astype(np.intp)
    return all_b, owner


def _box_pairs(tree_bounds: FloatArray, query_bounds: FloatArray) -> tuple[IntArray, IntArray]:
    """All (query, tree) index pairs whose boxes intersect (touching counts)."""
    if len(tree_bounds) == 0 or len(query_bounds) == 0:
        e = np.empty(0, dtype=np.intp)
        return e, e.copy()
    tb, t_owner = _boxes_with_wraps(tree_bounds)
    qb, q_owner = _boxes_with_wraps(query_bounds)
    tree = shapely.STRtree(shapely.box(tb[:, 0], tb[:, 1], tb[:, 2], tb[:, 3]))
    qi, ti = tree.query(shapely.box(qb[:, 0], qb[:, 1], qb[:, 2], qb[:, 3]),
                        predicate="intersects")
    q = q_owner[qi]
    t = t_owner[ti]
    if len(tb) != len(tree_bounds) or len(qb) != len(query_bounds):
        key = np.unique(q.astype(np.int64) * (len(tree_bounds) + 1) + t)
        q = (key // (len(tree_bounds) + 1)).astype(np.intp)
        t = (key % (len(tree_bounds) + 1)).astype(np.intp)
    return q, t


def gaps_vt(a: VolumeSet, ia: IntArray, b: VolumeSet, ib: IntArray
            ) -> tuple[FloatArray, BoolArray, FloatArray, BoolArray]:
    """Vertical and time gaps, and whether each axis overlaps (positive shared extent)."""
    lo_a, hi_a, lo_b, hi_b = a.alt_lo[ia], a.alt_hi[ia], b.alt_lo[ib], b.alt_hi[ib]
    v = np.maximum(0.0, np.maximum(lo_b - hi_a, lo_a - hi_b))
    ov_v = (np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b)) > 0
    s_a, e_a, s_b, e_b = a.t0[ia], a.t1[ia], b.t0[ib], b.t1[ib]
    gap_ns = np.maximum(0, np.maximum(s_b - e_a, s_a - e_b))
    ov_t = (np.minimum(e_a, e_b) - np.maximum(s_a, s_b)) > 0
    return v, ov_v, gap_ns / NS_PER_S, ov_t


def evaluate_conflicts(a: VolumeSet, ia: IntArray, b: VolumeSet, ib: IntArray,
                       minima: Minima) -> Pairs:
    """Keep the candidate pairs that conflict, with their gaps. Same-party pairs never do."""
    ia = np.asarray(ia, dtype=np.intp)
    ib = np.asarray(ib, dtype=np.intp)
    keep = a.party[ia] != b.party[ib]
    ia, ib = ia[keep], ib[keep]
    H, V, T = minima.per_pair(a.kind[ia], b.kind[ib])
    v, ov_v, t, ov_t = gaps_vt(a, ia, b, ib)
    ok = (ov_v | (v < V)) & (ov_t | (t < T))
    ia, ib, H, v, t = ia[ok], ib[ok], H[ok], v[ok], t[ok]
    h, ov_h = horizontal(a.geom[ia], a.radius[ia], b.geom[ib], b.radius[ib], reach=H)
    hit = np.where(H > 0, h < H, ov_h)
    return Pairs(ia[hit], ib[hit], h[hit], v[hit], t[hit])


def zone_applies(party: NDArray[np.object_], zones: VolumeSet, iz: IntArray) -> BoolArray:
    """Whether each zone applies to each party (default: everyone but its owner)."""
    out = np.empty(len(iz), dtype=bool)
    for k, (p, z) in enumerate(zip(party, iz, strict=True)):
        applies = zones.applies_to[z]
        out[k] = (p != zones.party[z]) if applies is None else (p in applies)
    return out


def evaluate_violations(acts: VolumeSet, ia: IntArray, zones: VolumeSet, iz: IntArray
                        ) -> Violations:
    """Keep the (volume, zone) candidates where the volume enters the zone on all three axes."""
    ia = np.asarray(ia, dtype=np.intp)
    iz = np.asarray(iz, dtype=np.intp)
    keep = zone_applies(acts.party[ia], zones, iz)
    ia, iz = ia[keep], iz[keep]
    _, ov_v, _, ov_t = gaps_vt(acts, ia, zones, iz)
    ok = ov_v & ov_t
    ia, iz = ia[ok], iz[ok]
    _, ov_h = horizontal(acts.geom[ia], acts.radius[ia], zones.geom[iz], zones.radius[iz],
                         reach=np.zeros(len(ia)))
    return Violations(ia[ov_h], iz[ov_h])


def _vt_prefilter(a: VolumeSet, ia: IntArray, b: VolumeSet, ib: IntArray,
                  widen: Separation) -> BoolArray:
    v, ov_v, t, ov_t = gaps_vt(a, ia, b, ib)
    out: BoolArray = (ov_v | (v < widen.vertical_m)) & (ov_t | (t < widen.time_s))
    return out


def candidates_within(vols: VolumeSet, widen: Separation, chunk: int = 200_000
                      ) -> tuple[IntArray, IntArray]:
    """Candidate pairs ``i < j`` of different parties within one set (a superset of conflicts)."""
    n = len(vols)
    if n < 2:
        e = np.empty(0, dtype=np.intp)
        return e, e.copy()
    q_bounds = expand_bounds(vols.bounds, max(widen.horizontal_m, 0.0))
    out_a: list[IntArray] = []
    out_b: list[IntArray] = []
    tb, t_owner = _boxes_with_wraps(vols.bounds)
    tree = shapely.STRtree(shapely.box(tb[:, 0], tb[:, 1], tb[:, 2], tb[:, 3]))
    for start in range(0, n, chunk):
        qb, q_owner = _boxes_with_wraps(q_bounds[start:start + chunk])
        qi, ti = tree.query(shapely.box(qb[:, 0], qb[:, 1], qb[:, 2], qb[:, 3]),
                            predicate="intersects")
        i = q_owner[qi] + start
        j = t_owner[ti]
        m = i < j
        i, j = i[m], j[m]
        m = vols.party[i] != vols.party[j]
        i, j = i[m], j[m]
        m = _vt_prefilter(vols, i, vols, j, widen)
        out_a.append(i[m])
        out_b.append(j[m])
    i = np.concatenate(out_a)
    j = np.concatenate(out_b)
    if len(tb) != n:
        key = np.unique(i.astype(np.int64) * n + j)
        i, j = (key // n).astype(np.intp), (key % n).astype(np.intp)
    return i, j


def candidates_between(a: VolumeSet, b: VolumeSet, widen: Separation
                       ) -> tuple[IntArray, IntArray]:
    """Candidate pairs ``(i in a, j in b)`` (a superset of the conflicts or entries)."""
    i, j = _box_pairs(b.bounds, expand_bounds(a.bounds, max(widen.horizontal_m, 0.0)))
    m = _vt_prefilter(a, i, b, j, widen)
    return i[m], j[m]


@dataclass
class Detection:
    conflicts: Pairs
    violations: Violations


def detect(activities: VolumeSet, zones: VolumeSet, minima: Minima) -> Detection:
    """Every conflict between activity volumes of different parties, and every zone entry."""
    i, j = candidates_within(activities, minima.widest)
    conflicts = evaluate_conflicts(activities, i, activities, j, minima)
    zi, zj = candidates_between(activities, zones, Separation(0.0, 0.0, 0.0))
    violations = evaluate_violations(activities, zi, zones, zj)
    return Detection(conflicts, violations)
