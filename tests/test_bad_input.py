"""Each kind of bad input: exit 2, a message naming feature, field and reason, no stdout,
nothing stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .conftest import collection, feature, square

GOOD = square(10.0, 50.0, 0.01)


def fc_with(**changes: Any) -> dict[str, Any]:
    f = feature("bad1", "A", GOOD)
    for k, v in changes.items():
        if k == "geometry":
            f["geometry"] = v
        elif v is ...:
            f["properties"].pop(k, None)
        else:
            f["properties"][k] = v
    return collection(feature("ok", "B", square(11.0, 50.0, 0.01)), f)


def text(doc: Any) -> str:
    return json.dumps(doc)


def poly(*ring: tuple[float, float]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}


CASES: list[tuple[str, str, list[str]]] = [
    ("invalid JSON", '{"type": "FeatureCollection", "features": [', ["invalid JSON"]),
    ("not a FeatureCollection", text({"type": "Feature"}), ["FeatureCollection"]),
    ("feature not an object", text({"type": "FeatureCollection", "features": [7]}),
     ["feature #0", "object"]),
    ("properties not an object", text(collection({"type": "Feature", "id": "p1",
                                                  "geometry": GOOD, "properties": [1]})),
     ["feature 'p1'", "properties", "object"]),
    ("missing id", text(collection({"type": "Feature", "geometry": GOOD,
                                    "properties": {"party": "A"}})), ["feature #0", "'id'"]),
    ("duplicate id", text(collection(feature("x", "A", GOOD), feature("x", "B", GOOD))),
     ["feature 'x'", "'id'", "duplicate"]),
    ("missing party", text(fc_with(party=...)), ["feature 'bad1'", "party"]),
    ("id beyond 2^53", text(collection(feature(10**30, "A", GOOD))), ["feature #0", "id",
                                                                      "2^53"]),
    ("instant beyond 2261", text(fc_with(time_end="2300-01-01T00:00:00Z")),
     ["feature 'bad1'", "time_end", "1678 to 2261"]),
    ("unsupported geometry", text(fc_with(geometry={"type": "LineString",
                                                    "coordinates": [[0, 0], [1, 1]]})),
     ["feature 'bad1'", "geometry.type", "LineString"]),
    ("unclosed ring", text(fc_with(geometry=poly((0, 0), (1, 0), (1, 1), (0, 1)))),
     ["feature 'bad1'", "coordinates", "not closed"]),
    ("too few positions", text(fc_with(geometry=poly((0, 0), (1, 0), (0, 0)))),
     ["feature 'bad1'", "coordinates", "at least 4"]),
    ("self-intersecting ring",
     text(fc_with(geometry=poly((0, 0), (0.01, 0.01), (0.01, 0), (0, 0.01), (0, 0)))),
     ["feature 'bad1'", "coordinates", "intersect"]),
    ("latitude beyond 90", text(fc_with(geometry=poly((0, 0), (1, 0), (1, 91), (0, 0)))),
     ["feature 'bad1'", "latitude"]),
    ("longitude beyond 180", text(fc_with(geometry=poly((179, 0), (181, 0), (181, 1),
                                                        (179, 0)))),
     ["feature 'bad1'", "longitude"]),
    ("NaN", text(fc_with(alt_lower_m=7)).replace('"alt_lower_m": 7', '"alt_lower_m": NaN'),
     ["feature 'bad1'", "alt_lower_m", "NaN"]),
    ("Infinity", text(fc_with()).replace("[10.01, 50.01]", "[Infinity, 50.01]", 1),
     ["feature 'bad1'", "coordinates", "Infinity"]),
    ("missing radius", text(fc_with(geometry={"type": "Point", "coordinates": [10, 50]})),
     ["feature 'bad1'", "radius_m"]),
    ("non-positive radius", text(fc_with(geometry={"type": "Point", "coordinates": [10, 50]},
                                         radius_m=0)), ["feature 'bad1'", "radius_m", "0"]),
    ("non-numeric altitude", text(fc_with(alt_upper_m="high")),
     ["feature 'bad1'", "alt_upper_m", "number"]),
    ("lower above upper", text(fc_with(alt_lower_m=500, alt_upper_m=100)),
     ["feature 'bad1'", "alt_lower_m", "above"]),
    ("end not after start", text(fc_with(time_end="2026-05-01T08:00:00Z")),
     ["feature 'bad1'", "time_end", "after"]),
    ("timestamp without offset", text(fc_with(time_start="2026-05-01T07:00:00")),
     ["feature 'bad1'", "time_start", "offset"]),
    ("unparseable timestamp", text(fc_with(time_start="yesterday")),
     ["feature 'bad1'", "time_start", "RFC 3339"]),
    ("footprint near a pole", text(fc_with(geometry=poly((0, 85), (1, 85), (1, 86), (0, 85)))),
     ["feature 'bad1'", "coordinates", "accuracy bounds"]),
    ("footprint too wide", text(fc_with(geometry=poly((0, 0), (12, 0), (12, 1), (0, 0)))),
     ["feature 'bad1'", "coordinates", "1000 km"]),
    ("edge of exactly 180 degrees", text(fc_with(geometry=poly((-90, 10), (90, 10), (90, 11),
                                                               (-90, 10)))),
     ["feature 'bad1'", "coordinates", "180 degrees"]),
    ("ring round a pole", text(fc_with(geometry=poly((0, 70), (120, 70), (-120, 70), (0, 70)))),
     ["feature 'bad1'", "coordinates", "pole"]),
    ("circle too near a pole",
     text(fc_with(geometry={"type": "Point", "coordinates": [0, 79.99]}, radius_m=5000)),
     ["feature 'bad1'", "accuracy bounds"]),
    ("zone without restriction", text(fc_with(zone=True)), ["feature 'bad1'", "restriction"]),
    ("non-numeric coordinate", text(fc_with(geometry=poly((0, 0), ("a", 0), (1, 1), (0, 0)))),
     ["feature 'bad1'", "coordinates"]),
]


@pytest.mark.parametrize(("name", "payload", "needles"), CASES, ids=[c[0] for c in CASES])
def test_check_rejects(run_cli, tmp_path, name: str, payload: str, needles: list[str]) -> None:
    path = tmp_path / "in.geojson"
    path.write_text(payload)
    r = run_cli("check", str(path), "--json")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    assert "Traceback" not in r.stderr
    msg = " ".join(r.stderr.split())
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"


def test_negative_minima_rejected(run_cli, tmp_path) -> None:
    path = tmp_path / "in.geojson"
    path.write_text(text(fc_with()))
    for flag in ("--horizontal", "--vertical", "--time"):
        r = run_cli("check", str(path), flag, "-5")
        assert r.returncode == 2 and r.stdout == "" and "negative" in r.stderr
        assert f"field '{flag}'" in r.stderr  # the option given, not a JSON field


@pytest.mark.parametrize("name", ["duplicate id", "self-intersecting ring", "NaN",
                                  "end not after start"])
def test_submit_stores_nothing(run_cli, tmp_path, name: str) -> None:
    payload = next(c[1] for c in CASES if c[0] == name)
    assert run_cli("init").returncode == 0
    path = tmp_path / "in.geojson"
    path.write_text(payload)
    r = run_cli("submit", str(path))
    assert r.returncode == 2 and r.stdout == ""
    listed = run_cli("activities", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


def test_refused_submission_into_prohibited_zone_stores_nothing(run_cli, tmp_path) -> None:
    zone = collection(feature("nfz", "Z", square(10.0, 50.0, 0.1), zone=True,
                              restriction="prohibited"))
    act = collection(feature("sortie", None, square(10.05, 50.05, 0.01)))
    (tmp_path / "z.json").write_text(text(zone))
    (tmp_path / "a.json").write_text(text(act))
    assert run_cli("init").returncode == 0
    assert run_cli("submit", "z.json").returncode == 0
    r = run_cli("submit", "a.json", "--party", "A")
    assert r.returncode == 1 and "nfz" in r.stderr and "refused" in r.stderr
    assert json.loads(run_cli("activities", "--json").stdout) == []
    r = run_cli("submit", "a.json", "--party", "A", "--override", "--json")
    assert r.returncode == 1
    out = json.loads(r.stdout)
    assert out["violations"][0]["overridden"] is True
    assert [a["ext_id"] for a in json.loads(run_cli("activities", "--json").stdout)] == ["sortie"]
