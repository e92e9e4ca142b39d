"""A demo database: four fictional parties planning around Maiduguri, Nigeria.

Three parties' plans are the files under ``demo/data`` (also ``examples/`` in the
repository): a humanitarian alliance (field sites, a hospital's prohibited zone, a
convoy), an air wing (a corridor, a training area, a fires box) and a drone operator
(surveys, one of them into the hospital zone, overridden). A fourth, a logistics
operator, flies seeded medical-delivery drones from the airport to the sites and runs
two road convoys. Together: a few dozen activities and several conflicts.

The files are dated from 2026-06-01; the demo moves them to start tomorrow (UTC), so
its conflicts are ahead, with acknowledgement deadlines running, not long expired.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any

from ..core.minima import Minima
from ..core.scenario import read_scenario
from ..service import Deconfliction
from ..service.parties import Parties
from ..store.sqlite import SQLiteStore

PARTIES = {
    "Relief Alliance": ("+234 800 555 0101 (notification desk)", "relief-alliance.geojson"),
    "Northern Air Wing": ("deconfliction cell, ch. 7 / +234 800 555 0102",
                          "northern-air-wing.geojson"),
    "SkyPatrol UTM": ("ops@skypatrol.example", "skypatrol-utm.geojson"),
    "Lake Chad Logistics": ("dispatch@lakechad-logistics.example", None),
}
DELIVERIES = 12
HUB = (13.08, 11.845)  # near the airport; deliveries keep clear of the hospital zone
SITES = [(13.185, 11.805), (13.15, 11.85), (13.02, 11.93), (13.23, 11.9)]


def data(name: str) -> bytes:
    return resources.files("detente.demo").joinpath("data", name).read_bytes()


def _segment(x0: float, y0: float, x1: float, y1: float, width_m: float) -> list[list[float]]:
    """A corridor of ``width_m`` around a short segment (local metres per degree)."""
    k = 111_320.0
    c = math.cos(math.radians((y0 + y1) / 2))
    dx, dy = (x1 - x0) * k * c, (y1 - y0) * k
    n = math.hypot(dx, dy) or 1.0
    ox, oy = -dy / n * width_m / 2 / (k * c), dx / n * width_m / 2 / k
    ring = [[x0 + ox, y0 + oy], [x1 + ox, y1 + oy], [x1 - ox, y1 - oy], [x0 - ox, y0 - oy]]
    ring = [[round(x, 6), round(y, 6)] for x, y in ring]
    return [*ring, ring[0]]


def logistics_plan(seed: int = 7) -> dict[str, Any]:
    """Lake Chad Logistics: delivery flights and two convoys of four legs each."""
    rng = random.Random(seed)
    feats: list[dict[str, Any]] = []

    def add(fid: str, activity: str, kind: str, ring: list[list[float]], lo: float,
            hi: float, start_min: int, minutes: int) -> None:
        h0, m0 = divmod(start_min, 60)
        h1, m1 = divmod(start_min + minutes, 60)
        feats.append({"type": "Feature", "id": fid,
                      "geometry": {"type": "Polygon", "coordinates": [ring]},
                      "properties": {"party": "Lake Chad Logistics", "activity": activity,
                                     "kind": kind, "alt_lower_m": lo, "alt_upper_m": hi,
                                     "time_start": f"2026-06-01T{h0:02d}:{m0:02d}:00Z",
                                     "time_end": f"2026-06-01T{h1:02d}:{m1:02d}:00Z"}})

    for k in range(DELIVERIES):
        x, y = rng.choice(SITES)
        start = rng.randrange(6 * 60, 13 * 60, 10)
        add(f"lcl-delivery-{k + 1}", f"lcl-delivery-{k + 1}", "drone",
            _segment(*HUB, x, y, 400), 60.0, 150.0, start, 45)
    for c, (route, start) in enumerate([([HUB, (13.12, 11.82), (13.185, 11.805),
                                          (13.23, 11.78), (13.3, 11.76)], 7 * 60),
                                         ([HUB, (13.05, 11.9), (13.02, 11.93),
                                           (12.98, 11.97), (12.94, 12.02)], 9 * 60)]):
        for leg, ((x0, y0), (x1, y1)) in enumerate(itertools.pairwise(route)):
            add(f"lcl-convoy-{c + 1}-leg{leg + 1}", f"lcl-convoy-{c + 1}", "convoy",
                _segment(x0, y0, x1, y1, 150), 0.0, 10.0, start + 50 * leg, 80)
    return {"type": "FeatureCollection", "features": feats}


@dataclass
class Demo:
    db: str
    tokens: dict[str, str]  # party name (or "admin") -> API token
    activities: int
    conflicts: int


FILE_DAY = date(2026, 6, 1)
_DAY = re.compile(rb'"(\d{4}-\d{2}-\d{2})T')


def moved(text: bytes, days: int) -> bytes:
    """A plan file with every instant moved by whole days."""
    def shift(m: re.Match[bytes]) -> bytes:
        day = date.fromisoformat(m.group(1).decode()) + timedelta(days=days)
        return b'"' + day.isoformat().encode() + b"T"
    return _DAY.sub(shift, text)


def build(db: str, day: date | None = None) -> Demo:
    """Create the demo database at ``db`` (a new file) with parties, tokens and plans,
    starting on ``day`` (default: tomorrow, UTC)."""
    day = day or (datetime.now(UTC).date() + timedelta(days=1))
    days = (day - FILE_DAY).days
    store = SQLiteStore(db)
    store.initialise(Minima.from_json(json.loads(data("minima.json"))))
    parties = Parties(store)
    tokens = {"admin": parties.admin_token()}
    svc = Deconfliction(store)
    for name, (contact, file) in PARTIES.items():
        tokens[name] = parties.add(name, contact)[1]
        plan = data(file) if file else json.dumps(logistics_plan()).encode()
        scen = read_scenario(moved(plan, days), default_party=name)
        # SkyPatrol's survey over the field hospital is agreed with the hospital:
        # submitted with the override, which is recorded against the zone.
        svc.submit(scen, override=name == "SkyPatrol UTM", actor=name)
    n_act = len(store.list_owners(party=None, zone=False))
    n_conf = len(store.list_conflicts(party=None, status="open"))
    store.close()
    return Demo(db, tokens, n_act, n_conf)
