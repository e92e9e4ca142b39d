"""Turning detection results into the JSON shape of SEMANTICS.md (``detente check``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .detect import Detection
from .scenario import Scenario


def _num(x: float) -> float | int:
    """Plain numbers in output: integers stay integers, metres to the millimetre."""
    r = round(float(x), 3)
    return int(r) if r.is_integer() else r


def check_report(scenario: Scenario, found: Detection) -> dict[str, Any]:
    """``{"conflicts": [...], "violations": [...]}`` in file order of the first volume."""
    acts, zones = scenario.activities, scenario.zones
    c = found.conflicts
    pa = scenario.activity_pos[c.a]
    pb = scenario.activity_pos[c.b]
    first = np.where(pa <= pb, c.a, c.b)
    second = np.where(pa <= pb, c.b, c.a)
    order = np.lexsort((np.maximum(pa, pb), np.minimum(pa, pb)))
    conflicts = [
        {
            "a": acts.ids[first[k]],
            "b": acts.ids[second[k]],
            "horizontal_m": _num(c.h[k]),
            "vertical_m": _num(c.v[k]),
            "time_s": _num(c.t[k]),
        }
        for k in order
    ]
    vi = found.violations
    vorder = np.lexsort((scenario.zone_pos[vi.zone], scenario.activity_pos[vi.volume]))
    violations = [{"volume": acts.ids[vi.volume[k]], "zone": zones.ids[vi.zone[k]]}
                  for k in vorder]
    return {"conflicts": conflicts, "violations": violations}
