"""One volume that covers several: what an implicit F3548 subscription watches.

The reference DSS covers an operational intent's volumes with one set of S2 cells and
one altitude and time span; detente keeps one footprint instead. It is exact for a
single volume (the common case) and otherwise the convex hull of the footprints, each
circle replaced by a polygon drawn outside it: a superset, so a subscriber may be told
of a change that misses its volumes, never left untold of one that meets them.
"""

from __future__ import annotations

import math

import numpy as np
import shapely

from .geodesy import GEOD
from .volumes import VolumeSet

CIRCLE_SIDES = 64


def circle_polygon(centre: shapely.Point, radius_m: float) -> shapely.Polygon:
    """A polygon containing the circle: vertices on a circumscribed circle widened by
    1 % + 1 m (edges are straight in lon/lat, not geodesics)."""
    reach = radius_m / math.cos(math.pi / CIRCLE_SIDES) * 1.01 + 1.0
    az = np.linspace(0.0, 360.0, CIRCLE_SIDES, endpoint=False)
    n = len(az)
    lon, lat, _ = GEOD.fwd(np.full(n, centre.x), np.full(n, centre.y), az, np.full(n, reach))
    lon = centre.x + (np.asarray(lon) - centre.x + 180.0) % 360.0 - 180.0
    return shapely.Polygon(np.column_stack([lon, lat]))


def enclosing(vols: VolumeSet) -> tuple[shapely.Geometry, float, float, float, int, int]:
    """(footprint, radius, alt_lo, alt_hi, t0, t1) covering every volume of the set."""
    alt = (float(vols.alt_lo.min()), float(vols.alt_hi.max()))
    span = (int(vols.t0.min()), int(vols.t1.max()))
    if len(vols) == 1:
        return vols.geom[0], float(vols.radius[0]), *alt, *span
    pieces = []
    ref_x = float(vols.bounds[0, 0] + vols.bounds[0, 2]) / 2
    for g, r, b in zip(vols.geom, vols.radius, vols.bounds, strict=True):
        # The same turn of longitude as the first volume, so the hull does not wrap.
        shift = 360.0 * round((ref_x - (b[0] + b[2]) / 2) / 360.0)
        piece = circle_polygon(g, float(r)) if r > 0 else g
        pieces.append(shapely.transform(piece, lambda xy, s=shift: xy + np.array([s, 0.0])))
    hull = shapely.convex_hull(shapely.union_all(pieces))
    return hull, 0.0, *alt, *span
