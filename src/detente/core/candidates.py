"""Candidate search that never misses: a hierarchical grid over (lon, lat, time).

Boxes are widened by half the minima each (a pair closer than the minimum then has
intersecting boxes: the midpoint of the gap lies in both). Each box has a level in
space and one in time: the grid whose cells are at least as large as the box, so it
touches at most 2 x 2 x 2 cells there. Two boxes are joined on the cells of the
coarser of their two levels, dimension by dimension, and a pair is kept only in the cell at the maximum of their first cells,
so each pair is produced once. Time is a dimension of the grid: traffic spread over
a week does not produce pairs that only share a footprint.

Every step is NumPy over whole arrays; nothing loops over volumes in Python.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

IntArray = NDArray[np.intp]
FloatArray = NDArray[np.float64]

_BITS = 21
_MAX_CELLS = 1 << (_BITS - 1)
_PAIR_CHUNK = 4_000_000
GROWTH = 8.0  # cell size ratio between levels


def _wrap_copies(lo: FloatArray, hi: FloatArray) -> tuple[FloatArray, FloatArray, IntArray]:
    """Boxes across the antimeridian enter again, shifted by a turn."""
    over = np.flatnonzero(hi[:, 0] > 180)
    under = np.flatnonzero(lo[:, 0] < -180)
    turn = np.array([360.0, 0.0, 0.0])
    lo2 = np.concatenate([lo, lo[over] - turn, lo[under] + turn])
    hi2 = np.concatenate([hi, hi[over] - turn, hi[under] + turn])
    owner = np.concatenate([np.arange(len(lo)), over, under]).astype(np.intp)
    return lo2, hi2, owner


def _base_cells(ext: FloatArray, lo: FloatArray, hi: FloatArray) -> FloatArray:
    """Finest cell size per dimension: about the typical box, with a bounded cell count."""
    span = np.maximum(hi.max(axis=0) - lo.min(axis=0), 1e-9)
    typical = np.maximum(np.median(ext, axis=0), 1e-9)
    base: FloatArray = np.maximum(typical, span / _MAX_CELLS)
    return base


def _levels(ext: FloatArray, base: FloatArray) -> IntArray:
    """Per box, a level for space (lon and lat together) and one for time.

    Separate levels keep a small site that lasts for days out of huge spatial cells.
    """
    ratio = np.column_stack([np.maximum(ext[:, 0] / base[0], ext[:, 1] / base[1]),
                             ext[:, 2] / base[2]])
    lv: IntArray = np.maximum(
        0, np.ceil(np.log(np.maximum(ratio, 1e-300)) / np.log(GROWTH))).astype(np.intp)
    # Guard against rounding in the logarithm: the box must fit one cell of its level.
    lv[ratio > GROWTH ** lv] += 1
    return lv


def _pack(cx: NDArray[np.int64], cy: NDArray[np.int64], ct: NDArray[np.int64]
          ) -> NDArray[np.int64]:
    out: NDArray[np.int64] = (cx << (2 * _BITS)) | (cy << _BITS) | ct
    return out


def _groups(levels: IntArray) -> tuple[IntArray, list[IntArray]]:
    """Distinct level vectors and the members of each."""
    uniq, inverse = np.unique(levels, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(uniq) + 1))
    return uniq, [order[bounds[g]:bounds[g + 1]].astype(np.intp) for g in range(len(uniq))]


def _keys(c0: NDArray[np.int64], c1: NDArray[np.int64]) -> tuple[NDArray[np.int64], IntArray]:
    """Cell keys of boxes spanning at most 2 cells per dimension, and the box of each key."""
    keys = []
    rows = []
    idx = np.arange(len(c0))
    for dx in (0, 1):
        for dy in (0, 1):
            for dt in (0, 1):
                m = (c0[:, 0] + dx <= c1[:, 0]) & (c0[:, 1] + dy <= c1[:, 1]) & (
                    c0[:, 2] + dt <= c1[:, 2])
                c = c0[m] + np.array([dx, dy, dt])
                keys.append(_pack(c[:, 0], c[:, 1], c[:, 2]))
                rows.append(idx[m])
    return np.concatenate(keys), np.concatenate(rows).astype(np.intp)


class _Cells:
    """A group of boxes laid on one grid: their first cells and sorted cell keys."""

    def __init__(self, lo: FloatArray, hi: FloatArray, origin: FloatArray, cell: FloatArray):
        self.c0 = np.floor((lo - origin) / cell).astype(np.int64)
        c1 = np.floor((hi - origin) / cell).astype(np.int64)
        keys, rows = _keys(self.c0, c1)
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.rows = rows[order]
        self.uniq, self.start, self.count = np.unique(self.keys, return_index=True,
                                                      return_counts=True)


def _join_equal(a: _Cells, b: _Cells) -> tuple[IntArray, IntArray]:
    """All (a, b) positions in the sorted key lists with equal keys."""
    _, ia, ib = np.intersect1d(a.uniq, b.uniq, assume_unique=True, return_indices=True)
    na, nb = a.count[ia], b.count[ib]
    tot = na * nb
    total = int(tot.sum())
    if total == 0:
        e = np.empty(0, dtype=np.intp)
        return e, e.copy()
    g = np.repeat(np.arange(len(tot)), tot)
    p = np.arange(total) - np.repeat(np.cumsum(tot) - tot, tot)
    return (a.start[ia][g] + p // nb[g]).astype(np.intp), (b.start[ib][g] + p % nb[g]).astype(
        np.intp)


def box_pairs(lo_a: FloatArray, hi_a: FloatArray, lo_b: FloatArray | None = None,
              hi_b: FloatArray | None = None) -> tuple[IntArray, IntArray]:
    """Pairs of intersecting closed boxes ``[lo, hi]`` in (lon, lat, time).

    With one set: every ``i < j``. With two: every ``(i in a, j in b)``. Longitudes may
    run past +-180 (unwrapped); such boxes are matched across the antimeridian too.
    """
    same = lo_b is None
    if lo_b is None or hi_b is None:
        lo_b, hi_b = lo_a, hi_a
    e = np.empty(0, dtype=np.intp)
    if len(lo_a) == 0 or len(lo_b) == 0:
        return e, e.copy()
    la, ha, own_a = _wrap_copies(lo_a, hi_a)
    if same:
        lb, hb, own_b = la, ha, own_a
    else:
        lb, hb, own_b = _wrap_copies(lo_b, hi_b)
    wrapped = len(la) > len(lo_a) or len(lb) > len(lo_b)
    all_lo = np.concatenate([la, lb])
    all_hi = np.concatenate([ha, hb])
    origin = all_lo.min(axis=0)
    base = _base_cells(all_hi - all_lo, all_lo, all_hi)
    lo_a_d = [np.ascontiguousarray(la[:, d]) for d in range(3)]
    hi_a_d = [np.ascontiguousarray(ha[:, d]) for d in range(3)]
    lo_b_d = lo_a_d if same else [np.ascontiguousarray(lb[:, d]) for d in range(3)]
    hi_b_d = hi_a_d if same else [np.ascontiguousarray(hb[:, d]) for d in range(3)]
    lev_a = _levels(ha - la, base)
    lev_b = lev_a if same else _levels(hb - lb, base)
    groups_a, member_a = _groups(lev_a)
    groups_b, member_b = (groups_a, member_a) if same else _groups(lev_b)
    out_i: list[IntArray] = []
    out_j: list[IntArray] = []
    cache: dict[tuple[int, int, int, int], _Cells] = {}

    def cells(side: int, g: int, top: IntArray) -> _Cells:
        key = (side, g, int(top[0]), int(top[1]))
        if key not in cache:
            sel = (member_a if side == 0 else member_b)[g]
            lo, hi = (la, ha) if side == 0 else (lb, hb)
            cell = base * GROWTH ** np.array([top[0], top[0], top[1]])
            cache[key] = _Cells(lo[sel], hi[sel], origin, cell)
        return cache[key]

    side_b = 0 if same else 1
    for ga, levels_a in enumerate(groups_a):
        sel_a = member_a[ga]
        for gb, levels_b in enumerate(groups_b):
            if same and gb < ga:
                continue
            sel_b = member_b[gb]
            top = np.maximum(levels_a, levels_b)
            ca, cb = cells(0, ga, top), cells(side_b, gb, top)
            c0a, c0b = ca.c0, cb.c0
            pa, pb = _join_equal(ca, cb)
            ka, ra, rb = ca.keys, ca.rows, cb.rows
            for s in range(0, len(pa), _PAIR_CHUNK):
                qa, qb = pa[s:s + _PAIR_CHUNK], pb[s:s + _PAIR_CHUNK]
                i, j = ra[qa], rb[qb]
                if same and ga == gb:
                    m = i < j
                    i, j, qa = i[m], j[m], qa[m]
                # Keep each pair in one cell only: the one at the max of their first cells.
                key = ka[qa]
                keep = key == _pack(np.maximum(c0a[i, 0], c0b[j, 0]),
                                    np.maximum(c0a[i, 1], c0b[j, 1]),
                                    np.maximum(c0a[i, 2], c0b[j, 2]))
                gi, gj = sel_a[i[keep]], sel_b[j[keep]]
                hit = np.ones(len(gi), dtype=bool)
                for d in range(3):
                    hit &= (lo_a_d[d][gi] <= hi_b_d[d][gj]) & (lo_b_d[d][gj] <= hi_a_d[d][gi])
                gi, gj = own_a[gi[hit]], own_b[gj[hit]]
                if same:
                    m = gi != gj
                    gi, gj = np.minimum(gi[m], gj[m]), np.maximum(gi[m], gj[m])
                out_i.append(gi)
                out_j.append(gj)
    if not out_i:
        return e, e.copy()
    i = np.concatenate(out_i)
    j = np.concatenate(out_j)
    if wrapped:
        n_b = np.int64(len(lo_b))
        key = np.unique(i.astype(np.int64) * n_b + j)
        i, j = (key // n_b).astype(np.intp), (key % n_b).astype(np.intp)
    return i, j
