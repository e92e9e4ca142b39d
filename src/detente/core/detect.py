"""Conflict and red-line detection: candidate search that never misses, then exact tests.

Candidates come from boxes in (lon, lat, time) widened by half the largest minima
(conservatively, in degrees; see :mod:`.candidates`).
Each candidate then goes through the exact predicates of SEMANTICS.md:
``(overlaps_h or h < H) and (overlaps_v or v < V) and (overlaps_t or t < T)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from .candidates import Parallel, box_pairs
from .gcpause import no_gc
from .geodesy import expand_bounds
from .minima import Minima, Separation
from .separation import horizontal
from .volumes import VolumeSet

IntArray = NDArray[np.intp]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
NS_PER_S = 1e9
CHUNK = 25_000  # candidate pairs per exact-test task (tasks run in ``parallel``)
TIE = 1e-9  # relative: vertical gaps this near the minimum are compared as decimals


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


@dataclass
class Violations:
    """Columnar red-line entries: activity volume ``volume[k]`` enters zone volume ``zone[k]``."""

    volume: IntArray
    zone: IntArray

    def __len__(self) -> int:
        return len(self.volume)


def search_boxes(vols: VolumeSet, widen: Separation, t_origin: int
            ) -> tuple[FloatArray, FloatArray]:
    """(lon, lat, seconds, metres) boxes widened by half the minima each, conservatively."""
    b = expand_bounds(vols.bounds, widen.horizontal_m / 2)
    half_t = widen.time_s / 2 + 1.0  # +1 s: float seconds never shave a candidate
    # In floats: int64 differences overflow across the supported years (1678 to 2261).
    t0 = (vols.t0.astype(np.float64) - t_origin) / NS_PER_S - half_t
    t1 = (vols.t1.astype(np.float64) - t_origin) / NS_PER_S + half_t
    half_v = widen.vertical_m / 2 + 0.01  # +1 cm: rounding never shaves a candidate
    lo = np.column_stack([b[:, 0], b[:, 1], t0, vols.alt_lo - half_v])
    hi = np.column_stack([b[:, 2], b[:, 3], t1, vols.alt_hi + half_v])
    return lo, hi


def gaps_vt(a: VolumeSet, ia: IntArray, b: VolumeSet, ib: IntArray
            ) -> tuple[FloatArray, BoolArray, FloatArray, BoolArray]:
    """Vertical and time gaps, and whether each axis overlaps (positive shared extent)."""
    lo_a, hi_a, lo_b, hi_b = a.alt_lo[ia], a.alt_hi[ia], b.alt_lo[ib], b.alt_hi[ib]
    v = np.maximum(0.0, np.maximum(lo_b - hi_a, lo_a - hi_b))
    ov_v = (np.minimum(hi_a, hi_b) - np.maximum(lo_a, lo_b)) > 0
    s_a, e_a, s_b, e_b = a.t0[ia], a.t1[ia], b.t0[ib], b.t1[ib]
    # Compare, then subtract only the positive gap, in uint64: an int64 difference
    # overflows between windows more than 292 years apart (and once hid a conflict).
    later, first = np.where(s_b > e_a, s_b, s_a), np.where(s_b > e_a, e_a, e_b)
    gap_ns = np.where(later > first, later.view(np.uint64) - first.view(np.uint64), 0)
    ov_t = np.minimum(e_a, e_b) > np.maximum(s_a, s_b)
    return v, ov_v, gap_ns.astype(np.float64) / NS_PER_S, ov_t


def vertical_below(a: VolumeSet, ia: IntArray, b: VolumeSet, ib: IntArray, v: FloatArray,
                   V: FloatArray) -> BoolArray:
    """``v < V`` for the vertical gaps of these pairs, as the decimal numbers written.

    Altitudes and minima are written as decimals, and binary floats cannot hold most of
    them: 302.4 - 152.4 is 149.99999999999997 in floats, and a gap exactly equal to a
    150 m minimum would be a conflict. Where a gap lies this near the minimum, it is
    worked out again from the shortest decimals that the floats stand for (what was
    written, or the same float).
    """
    below: BoolArray = v < V
    tie = np.flatnonzero((V > 0) & (np.abs(v - V) <= TIE * np.maximum(1.0, V)))
    if len(tie) == 0:
        return below

    def dec(x: FloatArray) -> list[Decimal]:
        return [Decimal(repr(float(y))) for y in x]

    lo_a, hi_a = dec(a.alt_lo[ia[tie]]), dec(a.alt_hi[ia[tie]])
    lo_b, hi_b = dec(b.alt_lo[ib[tie]]), dec(b.alt_hi[ib[tie]])
    for k, m, la, ha, lb, hb in zip(tie.tolist(), dec(V[tie]), lo_a, hi_a, lo_b, hi_b,
                                    strict=True):
        below[k] = max(Decimal(0), lb - ha, la - hb) < m
    return below


def _horizontal_in_chunks(a: VolumeSet, ia: IntArray, b: VolumeSet, ib: IntArray,
                          reach: FloatArray, parallel: Parallel
                          ) -> tuple[FloatArray, BoolArray]:
    def task(s: slice) -> tuple[FloatArray, BoolArray]:
        return horizontal(a.geom[ia[s]], a.radius[ia[s]], b.geom[ib[s]], b.radius[ib[s]],
                          reach=reach[s])

    if len(ia) <= CHUNK:
        return task(slice(None))
    parts = list(parallel(task, [slice(k, k + CHUNK) for k in range(0, len(ia), CHUNK)]))
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))


def evaluate_conflicts(a: VolumeSet, ia: IntArray, b: VolumeSet, ib: IntArray,
                       minima: Minima, *, parallel: Parallel = map) -> Pairs:
    """Keep the candidate pairs that conflict, with their gaps. Same-party pairs never do."""
    ia = np.asarray(ia, dtype=np.intp)
    ib = np.asarray(ib, dtype=np.intp)
    keep = a.party[ia] != b.party[ib]
    ia, ib = ia[keep], ib[keep]
    H, V, T = minima.per_pair(a.kind[ia], b.kind[ib])
    v, ov_v, t, ov_t = gaps_vt(a, ia, b, ib)
    ok = (ov_v | vertical_below(a, ia, b, ib, v, V)) & (ov_t | (t < T))
    ia, ib, H, v, t = ia[ok], ib[ok], H[ok], v[ok], t[ok]
    if len(ia) == 0:  # the common case when checking one volume: skip the geometry
        return Pairs(ia, ib, v.copy(), v, t)
    h, ov_h = _horizontal_in_chunks(a, ia, b, ib, H, parallel)
    hit = np.where(H > 0, h < H, ov_h)
    return Pairs(ia[hit], ib[hit], h[hit], v[hit], t[hit])


def evaluate_intersections(a: VolumeSet, ia: IntArray, b: VolumeSet, ib: IntArray,
                           precision_m: float = 0.01, *, parallel: Parallel = map) -> Pairs:
    """Keep the candidate pairs that intersect as closed sets, whoever owns them.

    ASTM F3548's intersection (no separation): touching counts, and the horizontal test
    is within ``precision_m`` (the standard asks for 1 cm), erring towards "intersects".
    """
    ia = np.asarray(ia, dtype=np.intp)
    ib = np.asarray(ib, dtype=np.intp)
    v, _, t, _ = gaps_vt(a, ia, b, ib)
    ok = (v <= 0) & (t <= 0)
    ia, ib, v, t = ia[ok], ib[ok], v[ok], t[ok]
    if len(ia) == 0:
        return Pairs(ia, ib, v.copy(), v, t)
    h, _ = _horizontal_in_chunks(a, ia, b, ib, np.full(len(ia), precision_m), parallel)
    hit = h < precision_m
    return Pairs(ia[hit], ib[hit], h[hit], v[hit], t[hit])


def zone_applies(party: NDArray[np.object_], zones: VolumeSet, iz: IntArray) -> BoolArray:
    """Whether each zone applies to each party (default: everyone but its owner)."""
    out = np.empty(len(iz), dtype=bool)
    for k, (p, z) in enumerate(zip(party, iz, strict=True)):
        applies = zones.applies_to[z]
        out[k] = (p != zones.party[z]) if applies is None else (p in applies)
    return out


def evaluate_violations(acts: VolumeSet, ia: IntArray, zones: VolumeSet, iz: IntArray,
                        *, parallel: Parallel = map) -> Violations:
    """Keep the (volume, zone) candidates where the volume enters the zone on all three axes."""
    ia = np.asarray(ia, dtype=np.intp)
    iz = np.asarray(iz, dtype=np.intp)
    keep = zone_applies(acts.party[ia], zones, iz)
    ia, iz = ia[keep], iz[keep]
    _, ov_v, _, ov_t = gaps_vt(acts, ia, zones, iz)
    ok = ov_v & ov_t
    ia, iz = ia[ok], iz[ok]
    _, ov_h = _horizontal_in_chunks(acts, ia, zones, iz, np.zeros(len(ia)), parallel)
    return Violations(ia[ov_h], iz[ov_h])


def _vt_prefilter(a: VolumeSet, ia: IntArray, b: VolumeSet, ib: IntArray,
                  widen: Separation) -> BoolArray:
    v, ov_v, t, ov_t = gaps_vt(a, ia, b, ib)
    out: BoolArray = (ov_v | (v < widen.vertical_m)) & (ov_t | (t < widen.time_s))
    return out


def _codes(values: NDArray[np.object_]) -> IntArray:
    """A small integer per distinct value, in order of first appearance."""
    seen: dict[object, int] = {}
    return np.fromiter((seen.setdefault(v, len(seen)) for v in values), dtype=np.intp,
                       count=len(values))


def candidates_within(vols: VolumeSet, widen: Separation, *, parallel: Parallel = map
                      ) -> tuple[IntArray, IntArray]:
    """Candidate pairs ``i < j`` of different parties within one set (a superset of conflicts)."""
    if len(vols) < 2:
        e = np.empty(0, dtype=np.intp)
        return e, e.copy()
    lo, hi = search_boxes(vols, widen, int(vols.t0.min()))
    i, j = box_pairs(lo, hi, parallel=parallel)
    code = _codes(vols.party)  # integers compare much faster than strings
    m = code[i] != code[j]
    i, j = i[m], j[m]
    m = _vt_prefilter(vols, i, vols, j, widen)
    return i[m], j[m]


def candidates_between(a: VolumeSet, b: VolumeSet, widen: Separation, *,
                       parallel: Parallel = map) -> tuple[IntArray, IntArray]:
    """Candidate pairs ``(i in a, j in b)`` (a superset of the conflicts or entries)."""
    if len(a) == 0 or len(b) == 0:
        e = np.empty(0, dtype=np.intp)
        return e, e.copy()
    origin = int(min(a.t0.min(), b.t0.min()))
    lo_a, hi_a = search_boxes(a, widen, origin)
    lo_b, hi_b = search_boxes(b, widen, origin)
    i, j = box_pairs(lo_a, hi_a, lo_b, hi_b, parallel=parallel)
    m = _vt_prefilter(a, i, b, j, widen)
    return i[m], j[m]


@dataclass
class Detection:
    conflicts: Pairs
    violations: Violations


def detect(activities: VolumeSet, zones: VolumeSet, minima: Minima, *,
           parallel: Parallel = map) -> Detection:
    """Every conflict between activity volumes of different parties, and every zone entry.

    ``parallel`` is a ``map`` for independent pieces of work: pass a thread pool's to
    use several cores (shapely, pyproj and NumPy release the GIL while they compute).
    """
    with no_gc():  # 0.07 s of 0.51 at 100,000 volumes went to collections finding nothing
        i, j = candidates_within(activities, minima.widest, parallel=parallel)
        conflicts = evaluate_conflicts(activities, i, activities, j, minima,
                                       parallel=parallel)
        zi, zj = candidates_between(activities, zones, Separation(0.0, 0.0, 0.0),
                                    parallel=parallel)
        violations = evaluate_violations(activities, zi, zones, zj, parallel=parallel)
    return Detection(conflicts, violations)
