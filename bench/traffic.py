"""Seeded, realistic traffic for benchmarks: not only uniform boxes.

A theatre holds hot spots (an airport, a city, a front line) with dense, overlapping
drone and helicopter traffic; air corridors; convoy routes (road-like lines buffered
into corridors, each leg with its own moving time window); static sites (small
polygons active for days); a few circles; and large red lines. One theatre in ten
volumes sits across the antimeridian (Fiji), so the wrap is always exercised.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

START = 1_906_156_800  # 2030-05-28, seconds since the epoch (ahead: nothing expires)
HORIZON_S = 7 * 86_400
M_PER_DEG = 111_320.0


@dataclass(frozen=True)
class Theatre:
    name: str
    lon: float
    lat: float
    radius_km: float


THEATRES = [
    Theatre("sahel", 13.15, 11.85, 300.0),
    Theatre("black-sea", 33.5, 45.0, 250.0),
    Theatre("fiji", 179.8, -17.5, 120.0),
]
VOLUMES_PER_THEATRE = 35_000  # density stays put as n grows: more theatres, not more crowd
HOTSPOT_SPREAD_KM = 15.0


def density_scale(n: int) -> float:
    """Below three full theatres, the named ones shrink (radius and hot spots alike) so
    that volumes per square kilometre stay the same at every n: growth with n then
    measures the algorithm, not a crowd that thickens."""
    return min(1.0, math.sqrt(n / (len(THEATRES) * VOLUMES_PER_THEATRE)))


def theatres(n: int, rng: np.random.Generator) -> list[Theatre]:
    """The three named theatres, then more around the world as the traffic grows."""
    k = density_scale(n)
    out = [Theatre(t.name, t.lon, t.lat, t.radius_km * k) for t in THEATRES]
    while len(out) * VOLUMES_PER_THEATRE < n:
        out.append(Theatre(f"t{len(out)}", float(rng.uniform(-170, 170)),
                           float(rng.uniform(-60, 65)), float(rng.uniform(150, 300))))
    return out
MIX = {"hotspot": 0.40, "corridor": 0.12, "convoy": 0.30, "site": 0.14, "circle": 0.04}


def _iso(s: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(int(s), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _wrap(lon: np.ndarray) -> np.ndarray:
    return (lon + 180.0) % 360.0 - 180.0


def _box(cx: float, cy: float, w_m: float, h_m: float, angle: float) -> list[list[float]]:
    """A rotated rectangle around (cx, cy), metres converted at the local scale."""
    c, s = math.cos(angle), math.sin(angle)
    kx = 1.0 / (M_PER_DEG * math.cos(math.radians(cy)))
    ky = 1.0 / M_PER_DEG
    pts = []
    for dx, dy in ((-w_m / 2, -h_m / 2), (w_m / 2, -h_m / 2), (w_m / 2, h_m / 2),
                   (-w_m / 2, h_m / 2)):
        x = cx + (dx * c - dy * s) * kx
        y = cy + (dx * s + dy * c) * ky
        pts.append([round(float(_wrap(np.array(x))), 7), round(float(y), 7)])
    pts.append(pts[0])
    return pts


def _segment(x0: float, y0: float, x1: float, y1: float, width_m: float) -> list[list[float]]:
    """A corridor of ``width_m`` around one straight leg."""
    kx = M_PER_DEG * math.cos(math.radians((y0 + y1) / 2))
    dx, dy = (x1 - x0) * kx, (y1 - y0) * M_PER_DEG
    length = max(math.hypot(dx, dy), 1.0)
    return _box((x0 + x1) / 2, (y0 + y1) / 2, length, width_m, math.atan2(dy, dx))


def generate(n: int, parties: int = 10, seed: int = 1, zones: int | None = None
             ) -> dict[str, Any]:
    """A FeatureCollection of about ``n`` activity volumes plus large red lines."""
    rng = np.random.default_rng(seed)
    party_names = [f"party-{k:02d}" for k in range(parties)]
    feats: list[dict[str, Any]] = []

    def add(geom: dict[str, Any], kind: str, lo: float, hi: float, t0: float, t1: float,
            activity: str | None = None, party: str | None = None, **extra: Any) -> None:
        fid = f"v{len(feats)}"
        props = {"party": party or party_names[int(rng.integers(parties))], "kind": kind,
                 "alt_lower_m": round(float(lo), 1), "alt_upper_m": round(float(hi), 1),
                 "time_start": _iso(t0), "time_end": _iso(t1), **extra}
        if activity is not None:
            props["activity"] = activity
        feats.append({"type": "Feature", "id": fid, "geometry": geom, "properties": props})

    world = theatres(n, rng)
    weights = np.array([5.5, 3.5, 1.0] + [3.0] * (len(world) - 3))
    weights /= weights.sum()

    def theatre() -> Theatre:
        return world[int(rng.choice(len(world), p=weights))]

    def point_in(t: Theatre, spread_km: float) -> tuple[float, float]:
        r = spread_km * math.sqrt(rng.random()) * 1000
        a = rng.random() * 2 * math.pi
        lat = t.lat + r * math.sin(a) / M_PER_DEG
        lon = t.lon + r * math.cos(a) / (M_PER_DEG * math.cos(math.radians(t.lat)))
        return float(lon), float(lat)

    hotspots = {t.name: [point_in(t, t.radius_km * 0.6) for _ in range(3)] for t in world}
    counts = {k: int(n * f) for k, f in MIX.items()}
    counts["hotspot"] += n - sum(counts.values())

    for _ in range(counts["hotspot"]):
        t = theatre()
        hx, hy = hotspots[t.name][int(rng.integers(3))]
        cx, cy = point_in(Theatre("", hx, hy, 0), HOTSPOT_SPREAD_KM * density_scale(n))
        w, h = rng.uniform(200, 2000, 2)
        t0 = START + rng.uniform(0, HORIZON_S)
        lo = rng.choice([0.0, 0.0, 60.0, 150.0])
        add({"type": "Polygon", "coordinates": [_box(cx, cy, w, h, rng.uniform(0, math.pi))]},
            "drone", lo, lo + rng.uniform(60, 400), t0, t0 + rng.uniform(900, 3600))

    made = 0
    while made < counts["corridor"]:
        t = theatre()
        x0, y0 = point_in(t, t.radius_km)
        x1, y1 = point_in(t, t.radius_km)
        legs = min(int(rng.integers(2, 6)), counts["corridor"] - made)
        party = party_names[int(rng.integers(parties))]
        t0 = START + rng.uniform(0, HORIZON_S)
        lo = rng.uniform(300, 3000)
        act = f"corridor-{made}"
        for k in range(legs):
            a, b = k / legs, (k + 1) / legs
            add({"type": "Polygon", "coordinates": [_segment(
                x0 + (x1 - x0) * a, y0 + (y1 - y0) * a, x0 + (x1 - x0) * b,
                y0 + (y1 - y0) * b, rng.uniform(2000, 5000))]},
                "aircraft", lo, lo + 600, t0, t0 + rng.uniform(3600, 3 * 3600),
                activity=act, party=party)
        made += legs

    made = 0
    while made < counts["convoy"]:
        t = theatre()
        x, y = point_in(t, t.radius_km)
        heading = rng.uniform(0, 2 * math.pi)
        party = party_names[int(rng.integers(parties))]
        clock = START + rng.uniform(0, HORIZON_S)
        act = f"convoy-{made}"
        legs = min(int(rng.integers(5, 20)), counts["convoy"] - made)
        for _ in range(legs):
            heading += rng.normal(0, 0.35)
            step = rng.uniform(2000, 6000)
            nx = x + step * math.cos(heading) / (M_PER_DEG * math.cos(math.radians(y)))
            ny = y + step * math.sin(heading) / M_PER_DEG
            dur = step / rng.uniform(5, 15)
            add({"type": "Polygon", "coordinates": [_segment(x, y, nx, ny, 300)]}, "convoy",
                0, 10, clock - 600, clock + dur + 600, activity=act, party=party)
            x, y, clock = nx, ny, clock + dur
        made += legs

    for _ in range(counts["site"]):
        t = theatre()
        cx, cy = point_in(t, t.radius_km)
        s = rng.uniform(100, 500)
        t0 = START + rng.uniform(0, HORIZON_S / 2)
        add({"type": "Polygon", "coordinates": [_box(cx, cy, s, s, 0.0)]}, "static-site",
            0, 30, t0, t0 + rng.uniform(86_400, 5 * 86_400))

    for _ in range(counts["circle"]):
        t = theatre()
        cx, cy = point_in(t, t.radius_km)
        t0 = START + rng.uniform(0, HORIZON_S)
        add({"type": "Point", "coordinates": [round(float(_wrap(np.array(cx))), 7), round(cy, 7)]},
            "helicopter", 0, rng.uniform(150, 900), t0, t0 + rng.uniform(1800, 7200),
            radius_m=round(float(rng.uniform(300, 3000)), 1))

    for k in range(zones if zones is not None else max(2, n // 2000)):
        t = theatre()
        cx, cy = point_in(t, t.radius_km)
        s = rng.uniform(10_000, 50_000)
        add({"type": "Polygon", "coordinates": [_box(cx, cy, s, s * rng.uniform(0.5, 1),
                                                     rng.uniform(0, math.pi))]},
            "red-line", 0, 20_000, START, START + HORIZON_S, zone=True,
            restriction="notify" if k % 3 else "prohibited", activity=f"zone-{k}")
    return {"type": "FeatureCollection", "features": feats}


def main() -> None:
    """``python -m bench.traffic N [--parties P] [--seed S] [--zones Z] [-o FILE]``."""
    import argparse
    import sys

    import orjson

    ap = argparse.ArgumentParser(
        prog="python -m bench.traffic",
        description="Write a seeded, realistic scenario of about N activity volumes (plus "
                    "red lines) as a GeoJSON FeatureCollection, e.g. to try 'detente check'.")
    ap.add_argument("n", type=int, help="number of activity volumes, e.g. 100000")
    ap.add_argument("--parties", type=int, default=10, help="parties sharing the traffic "
                    "(2 to 20 are realistic; default 10)")
    ap.add_argument("--seed", type=int, default=1, help="the same seed gives the same file")
    ap.add_argument("--zones", type=int, default=None,
                    help="red lines to add (default: one per 2,000 volumes, at least 2)")
    ap.add_argument("-o", "--output", default="-", help="file to write ('-': stdout)")
    args = ap.parse_args()
    if args.n < 1 or args.parties < 1:
        ap.error("n and --parties must be at least 1")
    data = orjson.dumps(generate(args.n, parties=args.parties, seed=args.seed,
                                 zones=args.zones))
    if args.output == "-":
        sys.stdout.buffer.write(data)
    else:
        with open(args.output, "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
