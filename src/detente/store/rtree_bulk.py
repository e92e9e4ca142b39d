"""Bulk loading of an SQLite R*Tree: the whole tree written at once.

SQLite's R*Tree module has no bulk load: each INSERT walks the tree, and overflowing
nodes are split or partly reinserted. A million 4D boxes took 22-25 s that way, the
largest part of importing a million volumes. For a large load this module instead
packs every box of the index (those already there and the new ones) into a tree,
level by level (:func:`partition`), and writes the module's three shadow tables
directly, as GDAL does for GeoPackage spatial indexes.

The shadow tables' format is SQLite's on-disk file format (documented at the top of
``ext/rtree/rtree.c``; files written in 2008 still open today):

* ``%_node(nodeno, data)``: node 1 is the root; every node's blob has the root's size.
  Bytes 0-1 hold the tree's depth in the root (unused elsewhere), bytes 2-3 the cell
  count; then cells of an 8-byte integer (a rowid in a leaf, a child's node number
  above) and 2 x dimensions 4-byte floats, all big-endian;
* ``%_parent(nodeno, parentnode)`` for every node but the root;
* ``%_rowid(rowid, nodeno)``: the leaf holding each entry.

Coordinates are rounded to float32 exactly as the module rounds an INSERT's values
(lower bounds down, upper bounds up), so a packed tree holds the same boxes as one
built row by row; ``rtreecheck()`` accepts it (tests compare both ways).
"""

from __future__ import annotations

import math
import sqlite3

import numpy as np

from .sqlite_writer import Connection

# The module's own rounding towards or away from zero (rtreeValueDown, rtreeValueUp).
_TOWARDS = 1.0 - 1.0 / 8388608.0
_AWAY = 1.0 + 1.0 / 8388608.0
FILL = 0.875  # of a node's capacity: room for later inserts before nodes split


def round_down(d: np.ndarray) -> np.ndarray:
    """float32 lower bounds as the R*Tree module stores them (never above ``d``)."""
    f = d.astype(np.float32)
    over = f.astype(np.float64) > d
    if over.any():
        dd = d[over]
        f[over] = (dd * np.where(dd < 0, _AWAY, _TOWARDS)).astype(np.float32)
    return f


def round_up(d: np.ndarray) -> np.ndarray:
    """float32 upper bounds as the R*Tree module stores them (never below ``d``)."""
    f = d.astype(np.float32)
    under = f.astype(np.float64) < d
    if under.any():
        dd = d[under]
        f[under] = (dd * np.where(dd < 0, _TOWARDS, _AWAY)).astype(np.float32)
    return f


def partition(lo: np.ndarray, hi: np.ndarray, per_node: int, ways: int = 4
              ) -> tuple[np.ndarray, np.ndarray]:
    """An order of boxes ``(n, d)`` and the sizes of the nodes that take them in runs.

    Top down, like a k-d tree: each group of boxes is cut into up to ``ways`` parts
    along the corner coordinate (a lower or an upper bound of some axis) that spreads
    widest relative to a typical box's extent on that axis (its median, plus one unit).
    Nodes thus come out about as wide as what is looked up in them along every axis,
    in dense and sparse places alike, and cutting on corners rather than centres keeps
    long boxes apart from short ones, as the module's own R*-tree does. Measured on a
    million benchmark boxes (2,000 spread queries): a query meets 14 leaves at the
    median like the module's tree (16 on average, against 23); cutting on centres met
    49, and sorting every axis alike (plain Sort-Tile-Recursive) 28 to 69. Four ways
    met fewer than two, three or eight. Each part gets a whole number of nodes' worth
    of its group's boxes, so nodes hold between half and all of ``per_node``.
    """
    n = len(lo)
    leaves = max(1, math.ceil(n / per_node))
    # Corners and their ranks axis by axis, (2 x dimensions, n): each level reorders
    # them one row at a time, a row (4 MB for a million boxes) staying in the
    # processor's cache. Box by box, (n, 2 x dimensions), every reordering reached
    # across the whole 64 MB: 0.96 s of the 2.35 s a million took, against 0.24-0.36.
    corners = np.concatenate([lo.T, hi.T]).astype(np.float32)
    unit = np.tile(np.median(hi - lo, axis=0) + 1.0, 2).astype(np.float32)[:, None]
    dims = corners.shape[0]
    rank = np.empty((dims, n), dtype=np.int32 if n < 2**31 else np.int64)
    for k in range(dims):
        rank[k, np.argsort(corners[k])] = np.arange(n)
    order = np.arange(n)
    starts = np.zeros(1, dtype=np.int64)  # of each group, in ``order``
    budget = np.array([leaves], dtype=np.int64)  # nodes for each group
    while (budget > 1).any():
        sizes = np.diff(np.r_[starts, n])
        spread = (np.maximum.reduceat(corners, starts, axis=1)
                  - np.minimum.reduceat(corners, starts, axis=1)) / unit
        group = np.repeat(np.arange(len(starts)), sizes)
        by = np.argsort(group * n + rank[np.argmax(spread, axis=0)[group], np.arange(n)])
        order = order[by]
        corners, rank = corners.take(by, axis=1), rank.take(by, axis=1)
        # Cut group g into parts of near-equal node counts, boxes in proportion.
        parts = np.minimum(budget, ways)
        part_of = np.repeat(np.arange(len(starts)), parts)
        j = np.arange(len(part_of)) - np.repeat(np.cumsum(parts) - parts, parts)
        g_budget, g_parts = budget[part_of], parts[part_of]
        first_node = j * g_budget // g_parts
        budget = (j + 1) * g_budget // g_parts - first_node
        starts = starts[part_of] + sizes[part_of] * first_node // g_budget
    return order, np.diff(np.r_[starts, n])


def _layout(conn: sqlite3.Connection, table: str, dims2: int
            ) -> tuple[int, np.dtype[np.void], int]:
    """The table's node size (the root's: all nodes have it), its cell type and the
    cells a node holds."""
    node_size: int = conn.execute(f'SELECT length(data) FROM "{table}_node" WHERE nodeno = 1'
                                  ).fetchone()[0]
    cell = np.dtype([("id", ">i8"), ("box", ">f4", (dims2,))])
    return node_size, cell, (node_size - 4) // cell.itemsize


def load(conn: Connection, table: str, rowids: np.ndarray, boxes: np.ndarray
         ) -> None:
    """Replace everything in R*Tree ``table`` with ``rowids`` and their ``boxes``
    (``(n, 2 x dims)`` in the table's column order: min, max of each axis). Runs in
    the caller's transaction; the rowids must be distinct."""
    node_size, cell, capacity = _layout(conn, table, boxes.shape[1])
    per_node = max(capacity // 3 * 2, int(capacity * FILL))
    lo = round_down(np.asarray(boxes[:, 0::2], dtype=np.float64))
    hi = round_up(np.asarray(boxes[:, 1::2], dtype=np.float64))
    if (lo > hi).any():
        raise ValueError("a box's lower bound is above its upper bound")
    ids = np.asarray(rowids, dtype=np.int64)
    for part in ("node", "parent", "rowid"):
        conn.execute(f'DELETE FROM "{table}_{part}"')

    next_no = 2
    parent_rows: list[tuple[int, int]] = []
    level = 0
    while True:
        n = len(ids)
        root = n <= capacity
        if root:
            sizes = np.array([n], dtype=np.int64)
        else:
            order, sizes = partition(lo.astype(np.float64), hi.astype(np.float64), per_node)
            ids, lo, hi = ids[order], lo[order], hi[order]
        k = len(sizes)
        numbers = np.array([1]) if root else np.arange(next_no, next_no + k)
        next_no += 0 if root else k
        owner = np.repeat(np.arange(k), sizes)
        slot = np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        cells = np.zeros((k, capacity), dtype=cell)
        cells["id"][owner, slot] = ids
        cells["box"][owner, slot, 0::2] = lo
        cells["box"][owner, slot, 1::2] = hi
        head = np.zeros((k, 2), dtype=">u2")
        head[:, 1] = sizes
        if root:
            head[0, 0] = level
        blobs = np.zeros((k, node_size), dtype=np.uint8)
        blobs[:, :4] = head.view(np.uint8).reshape(k, 4)
        blobs[:, 4:4 + capacity * cell.itemsize] = cells.view(np.uint8).reshape(k, -1)
        conn.insert_many(f'INSERT INTO "{table}_node" VALUES (?, ?)',
                         zip(numbers.tolist(), map(bytes, blobs), strict=True))
        if level == 0:  # (in rowid order: B-tree appends, not inserts all over)
            by_id = np.argsort(ids)
            conn.insert_many(f'INSERT INTO "{table}_rowid" (rowid, nodeno) VALUES (?, ?)',
                             zip(ids[by_id].tolist(), numbers[owner][by_id].tolist(),
                                 strict=True))
        else:
            parent_rows.extend(zip(ids.tolist(), numbers[owner].tolist(), strict=True))
        if root:
            break
        starts = np.cumsum(sizes) - sizes
        ids = numbers
        lo = np.minimum.reduceat(lo, starts, axis=0)
        hi = np.maximum.reduceat(hi, starts, axis=0)
        level += 1
    conn.insert_many(f'INSERT INTO "{table}_parent" VALUES (?, ?)', parent_rows)


def entries(conn: sqlite3.Connection, table: str) -> tuple[np.ndarray, np.ndarray]:
    """Every (rowid, box) in R*Tree ``table``, boxes as the table's columns (read from
    the leaves' blobs: scanning the table through the module took six times as long,
    2.0 s against 0.3 s for a million)."""
    dims2 = len(conn.execute(f'SELECT * FROM "{table}" LIMIT 0').description) - 1
    node_size, cell, capacity = _layout(conn, table, dims2)
    leaves = [data for (data,) in conn.execute(  # the nodes that are no node's parent
        f'SELECT data FROM "{table}_node" WHERE nodeno NOT IN '
        f'(SELECT parentnode FROM "{table}_parent")')]
    nodes = np.frombuffer(b"".join(leaves), dtype=np.uint8).reshape(len(leaves), node_size)
    counts = nodes[:, 2].astype(np.int64) * 256 + nodes[:, 3]
    cells = nodes[:, 4:4 + capacity * cell.itemsize].copy().view(cell).reshape(
        len(leaves), capacity)
    used = np.arange(capacity) < counts[:, None]
    found = cells[used]
    return found["id"].astype(np.int64), found["box"].astype(np.float64)
