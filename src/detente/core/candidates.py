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


def _wrap_copies(lo: FloatArray, hi: FloatArray) -> tuple[FloatArray, FloatArray, IntArray]:
    """Boxes across the antimeridian enter again, shifted by a turn."""
    over = np.flatnonzero(hi[:, 0] > 180)
    under = np.flatnonzero(lo[:, 0] < -180)
    turn = np.array([360.0, 0.0, 0.0])
    lo2 = np.concatenate([lo, lo[over] - turn, lo[under] + turn])
    hi2 = np.concatenate([hi, hi[over] - turn, hi[under] + turn])
    owner = np.concatenate([np.arange(len(lo)), over, under]).astype(np.intp)
    return lo2, hi2, owner


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


def _boxes(lo: FloatArray, hi: FloatArray, parallel: Parallel) -> NDArray[np.object_]:
    """shapely boxes, built in pieces (GEOS releases the GIL)."""
    pieces = [slice(k, k + 100_000) for k in range(0, len(lo), 100_000)]
    built = (parallel if len(pieces) > 1 else map)(
        lambda s: shapely.box(lo[s, 0], lo[s, 1], hi[s, 0], hi[s, 1]), pieces)
    return np.concatenate([np.empty(0, dtype=object), *built])


def box_pairs(lo_a: FloatArray, hi_a: FloatArray, lo_b: FloatArray | None = None,
              hi_b: FloatArray | None = None, *, parallel: Parallel = map
              ) -> tuple[IntArray, IntArray]:
    """Pairs of intersecting closed boxes ``[lo, hi]`` in (lon, lat, time).

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
    la, ha, own_a = _wrap_copies(lo_a, hi_a)
    lb, hb, own_b = (la, ha, own_a) if same else _wrap_copies(lo_b, hi_b)
    wrapped = len(la) > len(lo_a) or len(lb) > len(lo_b)
    origin = float(min(la[:, 2].min(), lb[:, 2].min()))
    dur_a, dur_b = ha[:, 2] - la[:, 2], hb[:, 2] - lb[:, 2]
    span = float(max(ha[:, 2].max(), hb[:, 2].max())) - origin
    base = max(float(np.median(np.concatenate([dur_a, dur_b]))), span / MAX_CELLS, 1e-9)
    lev_a = _levels(dur_a, base)
    lev_b = lev_a if same else _levels(dur_b, base)
    n_a, n_b = len(lo_a), len(lo_b)
    # Every box is built once; each time cell gets its own small tree.
    boxes_a = _boxes(la, ha, parallel)
    boxes_b = boxes_a if same else _boxes(lb, hb, parallel)

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
        if same:  # a pair of two rows at ``top`` comes out both ways: keep one
            m = (gi < gj) | (lev_a[gi] < top)
            gi, gj = gi[m], gj[m]
        hit = (la[gi, 2] <= hb[gj, 2]) & (lb[gj, 2] <= ha[gi, 2])
        gi, gj = gi[hit], gj[hit]
        ca_, cb_ = gi >= n_a, gj >= n_b
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
