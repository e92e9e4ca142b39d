"""WGS 84 constants and conservative conversions between metres and degrees.

Every conversion here errs outwards: a box widened by "d metres" in degrees
contains every point within geodesic distance d of the original box.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from pyproj import Geod

A = 6_378_137.0  # semi-major axis (m)
F = 1 / 298.257223563
E2 = F * (2 - F)
# The smallest meridional radius of curvature (at the equator): a (1 - e^2).
M_MIN = A * (1 - E2)
# Metres per degree of latitude are at least this anywhere on the ellipsoid.
M_PER_DEG_LAT_MIN = M_MIN * math.pi / 180 * (1 - 1e-9)
# Metres per degree of longitude are at least this times cos(latitude) (N >= a).
M_PER_DEG_LON_EQ = A * math.pi / 180 * (1 - 1e-9)

GEOD = Geod(ellps="WGS84")

# Beyond this latitude the accuracy clause no longer holds: footprints are refused.
MAX_ABS_LAT = 80.0
# Footprints wider than this (metres) are refused.
MAX_ACROSS_M = 1_000_000.0

FloatArray = NDArray[np.float64]


def metres_to_dlat(d: FloatArray | float) -> FloatArray | float:
    """Degrees of latitude that certainly cover ``d`` metres."""
    return np.asarray(d, dtype=np.float64) / M_PER_DEG_LAT_MIN


def metres_to_dlon(d: FloatArray | float, max_abs_lat: FloatArray | float) -> FloatArray:
    """Degrees of longitude that certainly cover ``d`` metres at latitudes up to ``max_abs_lat``.

    Returns 360 (everything) where the latitude reaches the pole.
    """
    d = np.asarray(d, dtype=np.float64)
    lat = np.minimum(np.abs(np.asarray(max_abs_lat, dtype=np.float64)), 90.0)
    cos = np.cos(np.radians(lat))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(cos > 1e-9, d / (M_PER_DEG_LON_EQ * np.maximum(cos, 1e-12)), 360.0)
    result: FloatArray = np.minimum(np.where(d > 0, out, 0.0), 360.0)
    return result


def expand_bounds(bounds: FloatArray, d: FloatArray | float) -> FloatArray:
    """Widen lon/lat boxes ``(n, 4)`` by ``d`` metres, conservatively."""
    bounds = np.asarray(bounds, dtype=np.float64)
    dlat = metres_to_dlat(d)
    miny = bounds[:, 1] - dlat
    maxy = bounds[:, 3] + dlat
    far = np.maximum(np.abs(miny), np.abs(maxy))
    dlon = metres_to_dlon(d, far)
    out: FloatArray = np.column_stack(
        [bounds[:, 0] - dlon, np.maximum(miny, -90.0), bounds[:, 2] + dlon, np.minimum(maxy, 90.0)]
    )
    return out


def geodesic_distance(
    lon1: FloatArray, lat1: FloatArray, lon2: FloatArray, lat2: FloatArray
) -> FloatArray:
    """Exact (Karney) geodesic distances on WGS 84, vectorised."""
    _, _, dist = GEOD.inv(lon1, lat1, lon2, lat2)
    out: FloatArray = np.asarray(dist, dtype=np.float64)
    return out
