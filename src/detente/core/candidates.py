"""Candidate search that never misses: boxes in (lon, lat, time), joined by STRtree.

Boxes are widened by half the minima each (a pair closer than the minimum then has
intersecting boxes: the midpoint of the gap lies in both). Time must prune as well
as space: traffic spread over a week should not pair volumes that only share a
footprint. Boxes are grouped by duration (levels a factor ``GROWTH`` apart); for two
levels, time is cut into cells as long as the longer level, so each box touches at
most two cells, and each cell is joined in (lon, lat) by its own shapely STRtree.
A pair is kept only in the later of the two boxes' first cells, so it comes out once.
Every box is built once (building GEOS geometries, not querying them, was the cost);
the trees are queried without a predicate: for boxes, closed-envelope overlap is the
exact test, and skipping GEOS's prepared predicate makes the join about 8x faster.

Altitude, an optional fourth column, prunes too: without it nine in ten joined pairs
of realistic traffic (aircraft corridors over drones and convoys) failed only the
vertical test afterwards. Altitude is cut into a few slabs (edges where they part
many boxes and few boxes cross them); a box enters the trees once per slab it
touches, moved north by ``SLAB_OFFSET`` degrees per slab, so boxes of different
slabs never meet in a tree. A pair is kept only in the slab of the higher of the two
lower altitudes (both boxes touch it).

A few boxes against many (a file's red lines against its activities) skip the trees:
building a GEOS box for every one of the many cost more than the whole search.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

IntArray = NDArray[np.intp]
FloatArray = NDArray[np.float64]
# A ``map``: the builtin, or a thread pool's (shapely and NumPy release the GIL).
Parallel = Callable[..., Iterable[Any]]

GROWTH = 4.0  # duration ratio between levels
MAX_CELLS = 10_000  # cells at the finest level, at most: bounds the per-cell loop
SMALL = 5_000  # boxes: below this, joins stay on the calling thread
ALL_PAIRS = 2_048  # pairs: up to this many, compare them all (no trees to build)
FEW = 2_000  # boxes: a set this small is swept against a sorted larger one, no trees
SWEEP_CHUNK = 4_000_000  # box comparisons per step of a sweep
MAX_SLABS = 16  # altitude slabs, at most
SLAB_CANDIDATES = 64  # altitudes tried as slab edges
PAIR_WEIGHT = 4.0  # in choosing slabs: the cost of pairs among n boxes, in boxes, per n
SLAB_OFFSET = 200.0  # degrees north per slab: latitudes span 180, so slabs never meet


def _wrap_copies(lo: FloatArray, hi: FloatArray) -> tuple[FloatArray, FloatArray, IntArray]:
    """Boxes across the antimeridian, or touching it, enter again, shifted by a turn
    (a box ending at 180 meets one starting at -180)."""
    over = np.flatnonzero(hi[:, 0] >= 180)
    under = np.flatnonzero(lo[:, 0] <= -180)
    turn = np.zeros(lo.shape[1])
    turn[0] = 360.0
    lo2 = np.concatenate([lo, lo[over] - turn, lo[under] + turn])
    hi2 = np.concatenate([hi, hi[over] - turn, hi[under] + turn])
    owner = np.concatenate([np.arange(len(lo)), over, under]).astype(np.intp)
    return lo2, hi2, owner


def ranges(starts: IntArray, counts: IntArray) -> IntArray:
    """The concatenation of ``range(starts[k], starts[k] + counts[k])`` for every k."""
    first = np.cumsum(counts) - counts  # where each range begins in the output
    offsets = np.arange(int(counts.sum()), dtype=np.intp) - np.repeat(first, counts)
    out: IntArray = np.repeat(starts, counts) + offsets
    return out


def _slab_edges(lo: FloatArray, hi: FloatArray) -> FloatArray:
    """Altitude slab edges (none without an altitude column), chosen greedily.

    A slab costs its boxes once each (tree entries) and, roughly, pairs among them in
    proportion to their square: an edge is worth it where it splits many boxes apart
    and few boxes cross it (aircraft corridors over ground traffic), not where it
    only cuts a dense layer in two.
    """
    n = len(lo)
    if lo.shape[1] < 4 or n < 2:
        return np.empty(0)
    lo_s, hi_s = np.sort(lo[:, 3]), np.sort(hi[:, 3])
    candidates = np.unique(np.quantile(np.concatenate([lo_s, hi_s]),
                                       np.linspace(0.0, 1.0, SLAB_CANDIDATES)))

    def cost(edges: FloatArray) -> float:
        # boxes touching slab k: lower end below its top edge, upper end at/above its bottom
        below_top = np.append(np.searchsorted(lo_s, edges, side="right"), n)
        under_bottom = np.insert(np.searchsorted(hi_s, edges, side="left"), 0, 0)
        touching = (below_top - under_bottom).astype(np.float64)
        return float(touching.sum() + PAIR_WEIGHT * (touching ** 2).sum() / n)

    edges: FloatArray = np.empty(0)
    best = cost(edges)
    while len(edges) < MAX_SLABS - 1:
        trials = [np.sort(np.append(edges, c)) for c in candidates if c not in edges]
        if not trials:
            break
        costs = [cost(t) for t in trials]
        k = int(np.argmin(costs))
        if costs[k] >= best * 0.98:
            break
        edges, best = trials[k], costs[k]
    return edges


def _slabs(lo: FloatArray, hi: FloatArray, edges: FloatArray) -> tuple[IntArray, IntArray]:
    """Each box's first and last altitude slab."""
    if len(edges) == 0:
        z = np.zeros(len(lo), dtype=np.intp)
        return z, z.copy()
    return (np.searchsorted(edges, lo[:, 3], side="right").astype(np.intp),
            np.searchsorted(edges, hi[:, 3], side="right").astype(np.intp))


def _units(lo: FloatArray, hi: FloatArray, edges: FloatArray
           ) -> tuple[IntArray, IntArray, IntArray]:
    """Each box once per slab it touches: the box's row, the slab, the box's first slab."""
    s0, s1 = _slabs(lo, hi, edges)
    count = s1 - s0 + 1
    row = np.repeat(np.arange(len(lo), dtype=np.intp), count)
    return row, ranges(s0, count), s0[row]


def _levels(duration: FloatArray, base: float) -> IntArray:
    ratio = np.maximum(duration / base, 1e-300)
    lv: IntArray = np.maximum(0, np.ceil(np.log(ratio) / np.log(GROWTH))).astype(np.intp)
    lv[ratio > GROWTH ** lv] += 1  # rounding in the logarithm: a box fits its level's cell
    return lv


def _in_cells(sel: IntArray, lo: FloatArray, hi: FloatArray, origin: float, cell: float
              ) -> tuple[IntArray, NDArray[np.int64], NDArray[np.int64]]:
    """Each box once per time cell it touches (at most two): rows, cell, first cell."""
    c0 = np.floor((lo[sel, 2] - origin) / cell).astype(np.int64)
    c1 = np.floor((hi[sel, 2] - origin) / cell).astype(np.int64)
    two = c1 > c0
    return (np.concatenate([sel, sel[two]]), np.concatenate([c0, c0[two] + 1]),
            np.concatenate([c0, c0[two]]))


def _by_cell(cells: NDArray[np.int64]) -> tuple[IntArray, NDArray[np.int64], IntArray]:
    """Entries sorted by cell: the order, each distinct cell, and where each starts."""
    order = np.argsort(cells, kind="stable")
    distinct, start = np.unique(cells[order], return_index=True)
    return order, distinct, np.append(start, len(cells)).astype(np.intp)


def _cell_join(boxes_a: NDArray[np.object_], cells_a: NDArray[np.int64],
               boxes_b: NDArray[np.object_], cells_b: NDArray[np.int64], parallel: Parallel
               ) -> tuple[IntArray, IntArray]:
    """Entries ``(p, q)`` of the same time cell whose boxes meet in (lon, lat)."""
    order_a, distinct_a, start_a = _by_cell(cells_a)
    order_b, distinct_b, start_b = _by_cell(cells_b)
    _, ka, kb = np.intersect1d(distinct_a, distinct_b, assume_unique=True,
                               return_indices=True)

    def one_cell(x: int, y: int) -> tuple[IntArray, IntArray]:
        p = order_a[start_a[x]:start_a[x + 1]]
        q = order_b[start_b[y]:start_b[y + 1]]
        hit_p, hit_q = shapely.STRtree(boxes_b[q]).query(boxes_a[p])
        return p[hit_p], q[hit_q]

    # Handing small work to other threads costs more than it saves: under load a
    # handoff may wait a whole GIL switch interval (5 ms).
    spread = parallel if len(ka) > 1 and len(cells_a) + len(cells_b) > SMALL else map
    found = list(spread(one_cell, ka.tolist(), kb.tolist()))
    e = np.empty(0, dtype=np.intp)
    return (np.concatenate([e, *(f[0] for f in found)]),
            np.concatenate([e, *(f[1] for f in found)]))


def _boxes(lo: FloatArray, hi: FloatArray, north: FloatArray, parallel: Parallel
           ) -> NDArray[np.object_]:
    """shapely boxes, moved ``north`` degrees each, built in pieces (GEOS releases the GIL)."""
    pieces = [slice(k, k + 100_000) for k in range(0, len(lo), 100_000)]
    built = (parallel if len(pieces) > 1 else map)(
        lambda s: shapely.box(lo[s, 0], lo[s, 1] + north[s], hi[s, 0], hi[s, 1] + north[s]),
        pieces)
    return np.concatenate([np.empty(0, dtype=object), *built])


def box_pairs(lo_a: FloatArray, hi_a: FloatArray, lo_b: FloatArray | None = None,
              hi_b: FloatArray | None = None, *, parallel: Parallel = map
              ) -> tuple[IntArray, IntArray]:
    """Pairs of intersecting closed boxes ``[lo, hi]`` in (lon, lat, time[, altitude]).

    With one set: every ``i < j``. With two: every ``(i in a, j in b)``. Longitudes may
    run past +-180 (unwrapped); such boxes are matched across the antimeridian too.
    ``parallel`` maps the per-cell joins (e.g. a thread pool's ``map``).
    """
    same = lo_b is None or hi_b is None
    if lo_b is None or hi_b is None:
        lo_b, hi_b = lo_a, hi_a
    e = np.empty(0, dtype=np.intp)
    if len(lo_a) == 0 or len(lo_b) == 0:
        return e, e.copy()
    if len(lo_a) * len(lo_b) <= ALL_PAIRS:  # one submission's few volumes: 400 -> 30 us
        return _all_pairs(lo_a, hi_a, lo_b, hi_b, same)
    if not same and len(lo_b) <= FEW:  # red lines against every activity
        return _swept_pairs(lo_a, hi_a, lo_b, hi_b)
    if not same and len(lo_a) <= FEW:
        j, i = _swept_pairs(lo_b, hi_b, lo_a, hi_a)
        return i, j
    la, ha, own_a = _wrap_copies(lo_a, hi_a)
    lb, hb, own_b = (la, ha, own_a) if same else _wrap_copies(lo_b, hi_b)
    wrapped = len(la) > len(lo_a) or len(lb) > len(lo_b)
    origin = float(min(la[:, 2].min(), lb[:, 2].min()))
    span = float(max(ha[:, 2].max(), hb[:, 2].max())) - origin
    base = max(float(np.median(np.concatenate([ha[:, 2] - la[:, 2], hb[:, 2] - lb[:, 2]]))),
               span / MAX_CELLS, 1e-9)
    edges = (_slab_edges(la, ha) if same
             else _slab_edges(np.concatenate([la, lb]), np.concatenate([ha, hb])))
    # From here on, a "row" is one box (or antimeridian copy) in one altitude slab.
    row_a, slab_a, first_a = _units(la, ha, edges)
    copy_a = row_a >= len(lo_a)
    la, ha, own_a = la[row_a], ha[row_a], own_a[row_a]
    if same:
        lb, hb, own_b, slab_b, first_b, copy_b = la, ha, own_a, slab_a, first_a, copy_a
    else:
        row_b, slab_b, first_b = _units(lb, hb, edges)
        copy_b = row_b >= len(lo_b)
        lb, hb, own_b = lb[row_b], hb[row_b], own_b[row_b]
    lev_a = _levels(ha[:, 2] - la[:, 2], base)
    lev_b = lev_a if same else _levels(hb[:, 2] - lb[:, 2], base)
    # Every box is built once; each time cell gets its own small tree.
    boxes_a = _boxes(la, ha, SLAB_OFFSET * slab_a.astype(np.float64), parallel)
    boxes_b = boxes_a if same else _boxes(lb, hb, SLAB_OFFSET * slab_b.astype(np.float64), parallel)

    def join(task: tuple[IntArray, IntArray | None, int]) -> tuple[IntArray, ...]:
        """Pairs between rows ``sel_a`` and ``sel_b`` in time cells of level ``top``.
        Within one set, ``sel_b`` is None: the rows of ``sel_a`` at level ``top``."""
        sel_a, sel_b, top = task
        cell = base * GROWTH ** top
        ra, ca, fa = _in_cells(sel_a, la, ha, origin, cell)
        if sel_b is None:  # the rows at ``top`` are among ``a``'s
            sub = np.flatnonzero(lev_a[ra] == top)
            rb, cb, fb = ra[sub], ca[sub], fa[sub]
        else:
            rb, cb, fb = _in_cells(sel_b, lb, hb, origin, cell)
        qi, ti = _cell_join(boxes_a[ra], ca, boxes_b[rb], cb, parallel)
        keep = ca[qi] == np.maximum(fa[qi], fb[ti])
        gi, gj = ra[qi[keep]], rb[ti[keep]]
        # Rows that met share a slab; keep the pair in one slab only.
        m = slab_a[gi] == np.maximum(first_a[gi], first_b[gj])
        if same:  # a pair of two rows at ``top`` comes out both ways: keep one
            m &= (gi < gj) | (lev_a[gi] < top)
        gi, gj = gi[m], gj[m]
        hit = np.all((la[gi, 2:] <= hb[gj, 2:]) & (lb[gj, 2:] <= ha[gi, 2:]), axis=1)
        gi, gj = gi[hit], gj[hit]
        ca_, cb_ = copy_a[gi], copy_b[gj]
        gi, gj = own_a[gi], own_b[gj]
        if same:
            m = gi != gj
            gi, gj, ca_, cb_ = gi[m], gj[m], ca_[m], cb_[m]
            swap = gi > gj
            gi, gj = np.where(swap, gj, gi), np.where(swap, gi, gj)
            ca_, cb_ = np.where(swap, cb_, ca_), np.where(swap, ca_, cb_)
        return gi, gj, ca_, cb_

    # Each pair is joined once, at the higher of its two levels ``top``: rows of ``a``
    # up to ``top`` against rows of ``b`` at ``top``, then rows of ``a`` at ``top``
    # against rows of ``b`` below it (within one set the first join covers both).
    tasks: list[tuple[IntArray, IntArray | None, int]] = []
    for top in np.union1d(lev_a, lev_b).tolist():
        if same:
            tasks.append((np.flatnonzero(lev_a <= top), None, top))
        else:
            tasks.append((np.flatnonzero(lev_a <= top), np.flatnonzero(lev_b == top), top))
            tasks.append((np.flatnonzero(lev_a == top), np.flatnonzero(lev_b < top), top))
    out_i, out_j, via_a, via_b = zip(*map(join, tasks), strict=True)
    i = np.concatenate(out_i)
    j = np.concatenate(out_j)
    if wrapped:
        i, j = _dedupe_wrapped(i, j, np.concatenate(via_a), np.concatenate(via_b),
                               lo_a, hi_a, lo_b, hi_b)
    return i, j


def _swept_pairs(lo_a: FloatArray, hi_a: FloatArray, lo_b: FloatArray, hi_b: FloatArray
                 ) -> tuple[IntArray, IntArray]:
    """:func:`box_pairs` of many boxes ``a`` against few ``b``: ``a`` sorted by west
    edge (in groups of similar width, so one wide box does not widen every search),
    each ``b`` compared on all axes with the ``a`` whose west edge can reach it."""
    la, ha, own_a = _wrap_copies(lo_a, hi_a)
    lb, hb, own_b = _wrap_copies(lo_b, hi_b)
    lo_cols, hi_cols = list(la.T.copy()), list(ha.T.copy())  # contiguous columns
    lo_cols_b, hi_cols_b = list(lb.T.copy()), list(hb.T.copy())
    width = ha[:, 0] - la[:, 0]
    group = np.clip(np.ceil(np.log2(np.maximum(width, 1e-6) / 0.25)), 0, 8)
    found: list[tuple[IntArray, IntArray]] = []
    for g in np.unique(group).tolist():
        order = np.flatnonzero(group == g)
        order = order[np.argsort(la[order, 0], kind="stable")]
        west = la[order, 0]
        # A west edge this far back can still reach: widths are rounded differences, so
        # step back a little more (a rounded bound once missed boxes that just touch).
        widest = float(width[order].max())
        back = lb[:, 0] - widest
        back -= 1e-9 * (1.0 + np.abs(back) + widest)
        first = np.searchsorted(west, back, side="left")
        stop = np.searchsorted(west, hb[:, 0], side="right")
        count = stop - first
        ends = np.cumsum(count)
        k0 = 0
        while k0 < len(lb):  # in steps of about SWEEP_CHUNK comparisons
            base = int(ends[k0 - 1]) if k0 else 0
            k1 = max(k0 + 1, int(np.searchsorted(ends, base + SWEEP_CHUNK, side="right")))
            c = count[k0:k1]
            kb = np.repeat(np.arange(k0, k1, dtype=np.intp), c)
            ka = order[ranges(first[k0:k1], c)]
            for axis in range(la.shape[1]):  # axis by axis: most fail on the first ones
                hit = (lo_cols[axis][ka] <= hi_cols_b[axis][kb]) & (
                    lo_cols_b[axis][kb] <= hi_cols[axis][ka])
                ka, kb = ka[hit], kb[hit]
            found.append((ka, kb))
            k0 = k1
    e = np.empty(0, dtype=np.intp)
    qa = np.concatenate([e, *(f[0] for f in found)])
    qb = np.concatenate([e, *(f[1] for f in found)])
    i, j = own_a[qa], own_b[qb]
    if len(la) > len(lo_a) or len(lb) > len(lo_b):
        i, j = _dedupe_wrapped(i, j, qa >= len(lo_a), qb >= len(lo_b), lo_a, hi_a, lo_b, hi_b)
    return i, j


def _all_pairs(lo_a: FloatArray, hi_a: FloatArray, lo_b: FloatArray, hi_b: FloatArray,
               same: bool) -> tuple[IntArray, IntArray]:
    """:func:`box_pairs` by comparing every pair of boxes (and antimeridian copies)."""
    la, ha, own_a = _wrap_copies(lo_a, hi_a)
    lb, hb, own_b = (la, ha, own_a) if same else _wrap_copies(lo_b, hi_b)
    hit = np.all((la[:, None, :] <= hb[None, :, :]) & (lb[None, :, :] <= ha[:, None, :]),
                 axis=2)
    qi, qj = np.nonzero(hit)
    i, j = own_a[qi], own_b[qj]
    if same:  # (the test is symmetric: each pair is also found as i < j)
        keep = i < j
        i, j = i[keep], j[keep]
    n_b = np.int64(len(lo_b))
    key = np.unique(i.astype(np.int64) * n_b + j)
    return (key // n_b).astype(np.intp), (key % n_b).astype(np.intp)


def _dedupe_wrapped(i: IntArray, j: IntArray, via_a: NDArray[np.bool_],
                    via_b: NDArray[np.bool_], lo_a: FloatArray, hi_a: FloatArray,
                    lo_b: FloatArray, hi_b: FloatArray) -> tuple[IntArray, IntArray]:
    """A pair found through an antimeridian copy is dropped when the originals meet
    (that pair is there already); the rest found twice are made unique."""
    copy = via_a | via_b
    orig_meet = (lo_a[i, 0] <= hi_b[j, 0]) & (lo_b[j, 0] <= hi_a[i, 0])
    keep = ~copy | ~orig_meet
    plain = ~copy & keep
    n_b = np.int64(len(lo_b))
    key = np.unique(i[copy & keep].astype(np.int64) * n_b + j[copy & keep])
    return (np.concatenate([i[plain], (key // n_b).astype(np.intp)]),
            np.concatenate([j[plain], (key % n_b).astype(np.intp)]))
