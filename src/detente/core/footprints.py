"""Building and validating footprints from GeoJSON coordinates, many at once.

Polygons arrive as one flat coordinate array with ring and polygon offsets (the
layout of ``shapely.from_ragged_array``), so a million footprints are checked with
a handful of NumPy passes. Each failure names the polygon's index, the field and
the reason; the caller turns the index into a feature id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

from .geodesy import E2, GEOD, M_PER_DEG_LAT_MIN, MAX_ABS_LAT, MAX_ACROSS_M, A

# The largest radius of curvature of the ellipsoid (at the poles, a^2/b), metres:
# no meridian or parallel arc is longer than its angle times this.
_R_MAX = A / np.sqrt(1 - E2) * (1 + 1e-9)

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class FootprintProblem:
    index: int
    field: str
    reason: str
    too_large: bool = False  # beyond the accuracy bounds' size (not malformed)


class FootprintError(ValueError):
    """Raised with the first problem found (lowest index first)."""

    def __init__(self, problem: FootprintProblem):
        self.problem = problem
        super().__init__(problem.reason)


def build_polygons(
    coords: FloatArray, ring_offsets: IntArray, poly_offsets: IntArray, *,
    parallel: Callable[..., Iterable[Any]] = map,
) -> NDArray[np.object_]:
    """Validate GeoJSON polygon rings and return unwrapped shapely polygons.

    ``coords`` is ``(m, 2)`` lon/lat; ring ``r`` is ``coords[ring_offsets[r]:ring_offsets[r+1]]``;
    polygon ``p`` owns rings ``poly_offsets[p]:poly_offsets[p+1]`` (the first is the exterior).
    Raises :class:`FootprintError` for the first invalid polygon. ``parallel`` maps the
    validity test over pieces (a thread pool's ``map``: GEOS releases the GIL).
    """
    n_rings = len(ring_offsets) - 1
    n_polys = len(poly_offsets) - 1
    problems: list[FootprintProblem] = []
    if n_polys == 0:
        return np.empty(0, dtype=object)
    ring_len = np.diff(ring_offsets)
    ring_poly = np.repeat(np.arange(n_polys), np.diff(poly_offsets))
    rings_per_poly = np.diff(poly_offsets)

    def fail(mask_poly: NDArray[np.bool_], field: str, reason: str) -> None:
        for p in np.flatnonzero(mask_poly)[:1]:
            problems.append(FootprintProblem(int(p), field, reason))

    def first_ring_fail(mask_ring: NDArray[np.bool_], reason: str) -> None:
        for r in np.flatnonzero(mask_ring)[:1]:
            p = int(ring_poly[r])
            k = int(r - poly_offsets[p])
            problems.append(FootprintProblem(p, f"geometry.coordinates[{k}]", reason))

    fail(rings_per_poly == 0, "geometry.coordinates", "a Polygon needs at least one ring")
    first_ring_fail(ring_len < 4, "a ring needs at least 4 positions (closed, 3 distinct)")
    _raise_first(problems)

    lon = coords[:, 0]
    lat = coords[:, 1]
    pos_ring = np.repeat(np.arange(n_rings), ring_len)
    bad: NDArray[np.bool_] = np.asarray(~np.isfinite(coords).all(axis=1), dtype=bool)
    first_ring_fail(_any_per(bad, pos_ring, n_rings), "coordinates must be finite numbers")
    _raise_first(problems)
    first_ring_fail(
        _any_per((lon < -180) | (lon > 180), pos_ring, n_rings),
        "longitude must be within [-180, 180]",
    )
    first_ring_fail(
        _any_per((lat < -90) | (lat > 90), pos_ring, n_rings), "latitude must be within [-90, 90]"
    )
    _raise_first(problems)
    starts = ring_offsets[:-1]
    ends = ring_offsets[1:] - 1
    unclosed = (coords[starts] != coords[ends]).any(axis=1)
    first_ring_fail(unclosed, "ring is not closed: its last position must equal its first")
    first_ring_fail(
        _any_per(np.abs(lat) > MAX_ABS_LAT, pos_ring, n_rings),
        f"latitude beyond +-{MAX_ABS_LAT:g} degrees is outside the accuracy bounds "
        "(see docs/semantics.md); such footprints are refused",
    )
    _raise_first(problems)

    # Unwrap: each edge goes the short way round in longitude.
    dlon = np.diff(lon, prepend=np.nan)
    dlon[starts] = 0.0
    half_turn = np.abs(np.abs(dlon) - 180.0) < 1e-12
    first_ring_fail(
        _any_per(half_turn, pos_ring, n_rings),
        "an edge spans exactly 180 degrees of longitude: its direction is ambiguous",
    )
    _raise_first(problems)
    shift = np.where(dlon > 180, -360.0, np.where(dlon < -180, 360.0, 0.0))
    cum = np.cumsum(shift)
    cum_at_start = np.repeat(cum[starts], ring_len)
    ulon = lon + (cum - cum_at_start)
    encircles = ulon[ends] != ulon[starts]
    first_ring_fail(
        encircles,
        "ring goes all the way round in longitude (it contains a pole): refused, "
        "outside the accuracy bounds",
    )
    _raise_first(problems)

    # Bring holes next to their exterior, then centre each polygon's box in [-180, 180).
    ring_minx = np.minimum.reduceat(ulon, starts)
    ring_maxx = np.maximum.reduceat(ulon, starts)
    ext_ring = poly_offsets[:-1][ring_poly]
    ext_mid = (ring_minx[ext_ring] + ring_maxx[ext_ring]) / 2
    ring_mid = (ring_minx + ring_maxx) / 2
    ring_shift = -360.0 * np.round((ring_mid - ext_mid) / 360.0)
    poly_mid = ext_mid[poly_offsets[:-1]]
    poly_shift = -360.0 * np.floor((poly_mid + 180.0) / 360.0)
    ulon = ulon + np.repeat(ring_shift + poly_shift[ring_poly], ring_len)

    flat = np.column_stack([ulon, lat])
    geoms = shapely.from_ragged_array(
        shapely.GeometryType.POLYGON, flat, offsets=(ring_offsets, poly_offsets)
    )
    pieces = np.array_split(geoms, max(1, len(geoms) // 100_000))
    valid = np.concatenate(list((parallel if len(pieces) > 1 else map)(shapely.is_valid,
                                                                        pieces)))
    if not valid.all():
        p = int(np.flatnonzero(~valid)[0])
        reason = shapely.is_valid_reason(geoms[p])
        problems.append(
            FootprintProblem(p, "geometry.coordinates", f"invalid polygon: {_explain(reason)}")
        )
    zero_area = shapely.area(geoms) <= 0
    fail(zero_area, "geometry.coordinates", "polygon has no area")
    _raise_first(problems)
    too_wide = _across_m(shapely.bounds(geoms)) > MAX_ACROSS_M
    for i in np.flatnonzero(too_wide)[:1]:
        problems.append(FootprintProblem(
            int(i), "geometry.coordinates",
            f"footprint is more than {MAX_ACROSS_M / 1000:g} km across: outside the accuracy "
            "bounds (see docs/semantics.md); split it into smaller footprints", True))
    _raise_first(problems)
    out: NDArray[np.object_] = geoms
    return out


def check_circles(lon: FloatArray, lat: FloatArray, radius: FloatArray) -> None:
    """Validate circle centres and radii (``radius`` NaN where it was missing)."""
    problems: list[FootprintProblem] = []
    ok = np.isfinite(lon) & np.isfinite(lat)
    for i in np.flatnonzero(~ok)[:1]:
        problems.append(
            FootprintProblem(int(i), "geometry.coordinates", "coordinates must be finite numbers")
        )
    _raise_first(problems)
    for i in np.flatnonzero((lon < -180) | (lon > 180))[:1]:
        problems.append(
            FootprintProblem(
                int(i), "geometry.coordinates", "longitude must be within [-180, 180]"
            )
        )
    for i in np.flatnonzero((lat < -90) | (lat > 90))[:1]:
        problems.append(
            FootprintProblem(int(i), "geometry.coordinates", "latitude must be within [-90, 90]")
        )
    _raise_first(problems)
    for i in np.flatnonzero(~np.isfinite(radius))[:1]:
        problems.append(
            FootprintProblem(
                int(i), "properties.radius_m", "a Point footprint needs a finite radius_m (metres)"
            )
        )
    _raise_first(problems)
    for i in np.flatnonzero(radius <= 0)[:1]:
        problems.append(
            FootprintProblem(int(i), "properties.radius_m", "radius_m must be greater than 0")
        )
    _raise_first(problems)
    reach = np.abs(lat) + radius / M_PER_DEG_LAT_MIN
    for i in np.flatnonzero(reach > MAX_ABS_LAT)[:1]:
        problems.append(
            FootprintProblem(
                int(i),
                "geometry.coordinates",
                f"circle reaches beyond +-{MAX_ABS_LAT:g} degrees latitude: outside the accuracy "
                "bounds (see docs/semantics.md); such footprints are refused",
            )
        )
    for i in np.flatnonzero(2 * radius > MAX_ACROSS_M)[:1]:
        problems.append(
            FootprintProblem(
                int(i),
                "properties.radius_m",
                f"circle is more than {MAX_ACROSS_M / 1000:g} km across: outside the accuracy "
                "bounds (see docs/semantics.md)",
                True,
            )
        )
    _raise_first(problems)


def _across_m(bounds: FloatArray) -> FloatArray:
    """Longest diagonal of each lon/lat box, metres (the footprint's extent), exactly
    where it might exceed ``MAX_ACROSS_M``; elsewhere an upper bound below it."""
    x0, y0, x1, y1 = bounds.T
    # A path along a parallel (at the corner nearer the equator), then a meridian, is
    # no shorter than the geodesic: boxes well inside the limit skip the geodesics.
    cos_max = np.cos(np.radians(np.minimum(np.abs(y0), np.abs(y1))))
    out: FloatArray = np.radians((x1 - x0) * cos_max + (y1 - y0)) * _R_MAX
    near = np.flatnonzero(out > MAX_ACROSS_M)
    if len(near):
        b = bounds[near]
        _, _, d1 = GEOD.inv(b[:, 0], b[:, 1], b[:, 2], b[:, 3])
        _, _, d2 = GEOD.inv(b[:, 0], b[:, 3], b[:, 2], b[:, 1])
        # Geod.inv takes the short way round; boxes wider than 180 degrees are wide anyway.
        wide = (b[:, 2] - b[:, 0]) >= 180
        out[near] = np.where(wide, np.inf, np.maximum(d1, d2))
    return out


def _any_per(mask: NDArray[np.bool_], group: NDArray[np.intp], n: int) -> NDArray[np.bool_]:
    out: NDArray[np.bool_] = np.bincount(group[mask], minlength=n) > 0
    return out


def _raise_first(problems: list[FootprintProblem]) -> None:
    if problems:
        raise FootprintError(min(problems, key=lambda p: p.index))


def _explain(reason: str) -> str:
    if reason.startswith("Self-intersection") or reason.startswith("Ring Self-intersection"):
        return f"a ring intersects itself ({reason})"
    if reason.startswith("Hole lies outside shell"):
        return f"a hole lies outside the exterior ring ({reason})"
    return reason
