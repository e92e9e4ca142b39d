"""The live-position measurements of ``detente.core.tracking`` against brute force and
exact geodesy: nothing within reach is missed (also across the antimeridian and near
the poles), accuracy is allowed inwards for conformance and outwards for red lines."""

from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from detente.core.geodesy import GEOD
from detente.core.tracking import (
    Fixes,
    closing_speed,
    first_problem,
    inside_declared,
    near_pairs,
    zone_hits,
    zone_tree,
)
from detente.core.volumes import VolumeSet

NS = 10**9


def fixes(lon: list[float], lat: list[float], alt: float = 100.0, hacc: float = 0.0,
          t: int = 5 * NS) -> Fixes:
    n = len(lon)
    return Fixes(np.full(n, t, dtype=np.int64), np.array(lon, float), np.array(lat, float),
                 np.full(n, alt), np.full(n, hacc), np.zeros(n), np.full(n, np.nan),
                 np.full(n, np.nan))


def volumes(geoms: list[shapely.Geometry], radius: list[float] | None = None,
            party: str = "Z", applies: tuple[str, ...] | None = None) -> VolumeSet:
    n = len(geoms)
    return VolumeSet.from_columns(
        ids=list(range(n)), party=[party] * n, activity=["a"] * n, kind=[None] * n,
        geom=geoms, radius=radius or [0.0] * n, alt_lo=[0.0] * n, alt_hi=[500.0] * n,
        t0=[0] * n, t1=[10 * NS] * n, applies_to=[applies] * n)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), lat0=st.floats(-89.5, 89.5),
       lon0=st.sampled_from([0.0, 179.99, -179.99, 45.0]), spread=st.floats(0.001, 0.2))
def test_near_pairs_finds_exactly_the_pairs_within_reach(seed, lat0, lon0, spread) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 120))
    lon = ((lon0 + rng.normal(0, spread, n) + 180) % 360) - 180
    lat = np.clip(lat0 + rng.normal(0, spread, n), -89.9, 89.9)
    reach = rng.uniform(0, 10_000, n)
    query = rng.choice(n, size=int(rng.integers(1, n + 1)), replace=False)
    i, j, d = near_pairs(lon, lat, query, reach)
    want = set()
    for a in query.tolist():
        _, _, dist = GEOD.inv(np.full(n, lon[a]), np.full(n, lat[a]), lon, lat)
        want |= {(a, b) for b in np.flatnonzero(dist <= reach[a]).tolist() if b != a}
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == want
    _, _, exact = GEOD.inv(lon[i], lat[i], lon[j], lat[j])
    assert np.allclose(d, exact)


def test_conformance_allows_accuracy_inwards_only() -> None:
    box = shapely.box(13.0, 12.0, 13.1, 12.1)
    vols = volumes([box])
    # 55 m east of the east edge (0.0005 degrees at 12 N is about 54 m).
    f = fixes([13.1005, 13.1005, 13.05], [12.05, 12.05, 12.05])
    f.hacc[:] = [40.0, 60.0, 0.0]
    ok = inside_declared(f, np.arange(3), vols, np.zeros(3, dtype=np.intp))
    assert ok.tolist() == [False, True, True]
    # Outside the time window or the altitude band: out, whatever the footprint says.
    late = fixes([13.05], [12.05], t=11 * NS)
    high = fixes([13.05], [12.05], alt=600.0)
    for f in (late, high):
        assert not inside_declared(f, np.zeros(1, np.intp), vols, np.zeros(1, np.intp))[0]


def test_conformance_on_a_circle_and_across_the_antimeridian() -> None:
    circle = volumes([shapely.Point(10.0, 50.0)], radius=[1_000.0])
    lon, lat, _ = GEOD.fwd(10.0, 50.0, 90.0, 1_010.0)
    f = fixes([lon, lon], [lat, lat])
    f.hacc[:] = [5.0, 15.0]
    ok = inside_declared(f, np.arange(2), circle, np.zeros(2, np.intp))
    assert ok.tolist() == [False, True]
    # A box from 179.9 E to 179.9 W, kept unwrapped (179.9 .. 180.1).
    across = volumes([shapely.box(179.9, -16.1, 180.1, -16.0)])
    f = fixes([-179.95, 179.95, -179.8], [-16.05, -16.05, -16.05])
    assert inside_declared(f, np.arange(3), across, np.zeros(3, np.intp)).tolist() == [
        True, True, False]


def test_red_lines_allow_accuracy_outwards_and_respect_applies_to() -> None:
    zones = volumes([shapely.box(13.0, 12.0, 13.1, 12.1), shapely.Point(20.0, 0.0)],
                    radius=[0.0, 500.0])
    tree = zone_tree(zones)
    e, n, _ = GEOD.fwd(20.0, 0.0, 0.0, 520.0)
    f = fixes([13.1005, 13.1005, 13.2, e, e], [12.05, 12.05, 12.05, n, n])
    f.hacc[:] = [40.0, 60.0, 12_000.0, 10.0, 30.0]  # (13.2 is ~10.9 km east of the box)
    fi, zi = zone_hits(f, zones, tree, np.ones(2, dtype=bool))
    assert sorted(zip(fi.tolist(), zi.tolist(), strict=True)) == [(1, 0), (2, 0), (4, 1)]
    none, _ = zone_hits(f, zones, tree, np.zeros(2, dtype=bool))
    assert len(none) == 0


def test_closing_speed_head_on_and_opening() -> None:
    lon = np.array([0.0]), np.array([0.01])
    lat = np.array([0.0]), np.array([0.0])
    # a flies east at 30 m/s, b west at 20 m/s: closing at 50.
    c = closing_speed(lon[0], lat[0], np.array([30.0]), np.array([0.0]),
                      lon[1], lat[1], np.array([-20.0]), np.array([0.0]))
    assert abs(c[0] - 50.0) < 1e-6
    c = closing_speed(lon[0], lat[0], np.array([-30.0]), np.array([0.0]),
                      lon[1], lat[1], np.array([20.0]), np.array([0.0]))
    assert abs(c[0] + 50.0) < 1e-6
    unknown = closing_speed(lon[0], lat[0], np.array([np.nan]), np.array([np.nan]),
                            lon[1], lat[1], np.array([0.0]), np.array([0.0]))
    assert np.isnan(unknown[0])


def test_first_problem_names_the_first_bad_report() -> None:
    f = fixes([1.0, 2.0, 3.0], [1.0, 95.0, np.nan])
    assert first_problem(f, 10 * NS) == (1, "lat", "must be a finite latitude in [-90, 90]")
    f = fixes([1.0, 2.0], [1.0, 1.0], t=20 * NS)
    assert first_problem(f, 10 * NS) == (0, "time", "is too far in the future")
    f = fixes([1.0], [1.0])
    f.speed[0] = 3.0
    assert first_problem(f, 10 * NS)[1] == "heading_deg"
    assert first_problem(fixes([1.0], [1.0]), 10 * NS) is None
