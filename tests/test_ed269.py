"""EUROCAE ED-269 zones in: a file shaped like a national authority's publication
(circles and polygons, feet and metres, AMSL and AGL, permanent, dated and weekly
zones, one without restriction), from the command line and over HTTP; and the ways a
file can be wrong, each named, nothing stored."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from detente.api import Settings

from .conftest import serving
from .test_dialogue import FAST, make_db

FT = 0.3048
PUBLICATION: dict[str, Any] = {
    "title": "UAS geographical zones", "description": "test publication",
    "features": [
        {"identifier": "LTR01", "country": "LTU", "name": "Prison", "type": "COMMON",
         "restriction": "PROHIBITED", "reason": ["SENSITIVE"],
         "zoneAuthority": [{"name": "CAA"}],
         "applicability": [{"permanent": "YES"}],
         "geometry": [{"uomDimensions": "FT", "lowerLimit": 0,
                       "lowerVerticalReference": "AMSL", "upperLimit": 1500,
                       "upperVerticalReference": "AMSL",
                       "horizontalProjection": {"type": "Polygon", "coordinates": [[
                           [25.0, 54.0], [25.1, 54.0], [25.1, 54.1], [25.0, 54.1],
                           [25.0, 54.0]]]}}]},
        {"identifier": "LTC02", "country": "LTU", "name": "Range", "type": "COMMON",
         "restriction": "CONDITIONAL", "zoneAuthority": [{"name": "CAA"}],
         "applicability": [{"permanent": "NO", "startDateTime": "2030-01-01T00:00:00Z",
                            "endDateTime": "2030-12-31T00:00:00Z",
                            "schedule": [{"day": ["MON", "TUE", "WED", "THU", "FRI"],
                                          "startTime": "06:00Z",
                                          "endTime": "18:00:00.00Z"}]}],
         "geometry": [{"uomDimensions": "M", "lowerLimit": 0,
                       "lowerVerticalReference": "AGL", "upperLimit": 120,
                       "upperVerticalReference": "AGL",
                       "horizontalProjection": {"type": "Circle", "center": [24.5, 54.5],
                                                "radius": 3000}}]},
        {"identifier": "LTA03", "country": "LTU", "name": "Airfield", "type": "COMMON",
         "restriction": "REQ_AUTHORISATION", "zoneAuthority": [{"name": "CAA"}],
         "applicability": [{"permanent": "NO", "startDateTime": "2030-06-04T08:00:00Z",
                            "endDateTime": "2030-06-04T20:00:00Z"}],
         "geometry": [
             {"uomDimensions": "FT", "lowerLimit": 0, "lowerVerticalReference": "AGL",
              "upperLimit": 400, "upperVerticalReference": "AGL",
              "horizontalProjection": {"type": "Circle", "center": [23.9, 54.9],
                                       "radius": 5000}},
             {"uomDimensions": "FT", "lowerLimit": 400, "lowerVerticalReference": "AGL",
              "upperLimit": 2000, "upperVerticalReference": "AMSL",
              "horizontalProjection": {"type": "Polygon", "coordinates": [[
                  [23.8, 54.8], [24.0, 54.8], [24.0, 55.0], [23.8, 54.8]]]}}]},
        {"identifier": "LTN04", "country": "LTU", "name": "Park", "type": "COMMON",
         "restriction": "NO_RESTRICTION", "zoneAuthority": [{"name": "CAA"}],
         "applicability": [{"permanent": "YES"}],
         "geometry": [{"uomDimensions": "M", "lowerLimit": 0, "upperLimit": 50,
                       "lowerVerticalReference": "AGL", "upperVerticalReference": "AGL",
                       "horizontalProjection": {"type": "Circle", "center": [24.0, 54.0],
                                                "radius": 500}}]},
    ]}
ED = ["--format", "ed269"]
HORIZON = ["--horizon-start", "2030-06-03T00:00:00Z", "--horizon-days", "7"]


def zones_of(run_cli: Any, party: str) -> dict[str, list[dict[str, Any]]]:
    doc = json.loads(run_cli("export", "--party", party).stdout)
    out: dict[str, list[dict[str, Any]]] = {}
    for f in doc["features"]:
        if f["properties"].get("zone"):
            out.setdefault(f["properties"]["activity"], []).append(f)
    return out


@pytest.fixture
def publication(tmp_path) -> Any:
    def write(doc: dict[str, Any] | None = None) -> str:
        path = tmp_path / "zones.json"
        path.write_text(json.dumps(doc or PUBLICATION))
        return str(path)
    return write


def test_a_national_publication_becomes_red_lines(run_cli, publication) -> None:
    assert run_cli("init").returncode == 0
    done = run_cli("import", publication(), *ED, "--party", "CAA", "--ground-elevation", "100",
                   "--geoid-height", "20", *HORIZON, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["zones"], summary["skipped"], summary["widened"]) == (3, ["LTN04"], False)
    zones = zones_of(run_cli, "CAA")
    assert sorted(zones) == ["LTA03", "LTC02", "LTR01"]
    # Permanent: the horizon; feet AMSL + the geoid height.
    (r,) = zones["LTR01"]
    p = r["properties"]
    assert p["restriction"] == "prohibited"
    assert (p["time_start"], p["time_end"]) == ("2030-06-03T00:00:00Z", "2030-06-10T00:00:00Z")
    assert p["alt_lower_m"] == pytest.approx(20.0)
    assert p["alt_upper_m"] == pytest.approx(1500 * FT + 20)
    # Weekly: Monday to Friday of the horizon, 06:00-18:00; AGL on 100 m ground; circle.
    weekly = sorted(zones["LTC02"], key=lambda f: f["properties"]["time_start"])
    assert [(f["properties"]["time_start"], f["properties"]["time_end"]) for f in weekly] == [
        (f"2030-06-0{d}T06:00:00Z", f"2030-06-0{d}T18:00:00Z") for d in range(3, 8)]
    w = weekly[0]["properties"]
    assert w["restriction"] == "notify" and w["radius_m"] == 3000
    assert weekly[0]["geometry"] == {"type": "Point", "coordinates": [24.5, 54.5]}
    assert w["alt_lower_m"] == -1000.0  # 0 AGL: the surface, below any ground
    assert w["alt_upper_m"] == pytest.approx(120 + 100 + 20)
    # Dated, two volumes, AGL and AMSL mixed in one.
    a = sorted(zones["LTA03"], key=lambda f: f["geometry"]["type"])
    assert [f["properties"]["restriction"] for f in a] == ["prohibited", "prohibited"]
    assert a[1]["properties"]["alt_lower_m"] == pytest.approx(400 * FT + 100 + 20)
    assert a[1]["properties"]["alt_upper_m"] == pytest.approx(2000 * FT + 20)
    assert a[0]["properties"]["time_start"] == "2030-06-04T08:00:00Z"


def test_red_lines_catch_what_enters_them_and_reimport_replaces(run_cli, publication,
                                                                tmp_path) -> None:
    assert run_cli("init").returncode == 0
    flight = {"type": "FeatureCollection", "features": [{
        "type": "Feature", "id": "survey", "geometry": {"type": "Point",
                                                        "coordinates": [24.51, 54.5]},
        "properties": {"radius_m": 200, "alt_lower_m": 150, "alt_upper_m": 200,
                       "time_start": "2030-06-05T10:00:00Z",
                       "time_end": "2030-06-05T11:00:00Z"}}]}
    (tmp_path / "flight.json").write_text(json.dumps(flight))
    assert run_cli("submit", str(tmp_path / "flight.json"), "--party", "Drones").returncode == 0
    done = run_cli("import", publication(), *ED, "--party", "CAA", "--ground-elevation", "100",
                   *HORIZON, "--json")
    summary = json.loads(done.stdout)
    assert summary["widened"] is True and summary["entries"] == 1
    entries = json.loads(run_cli("violations", "--json").stdout)
    assert [(e["activity"], e["zone"], e["restriction"]) for e in entries] == [
        ("survey", "LTC02", "notify")]
    again = run_cli("import", publication(), *ED, "--party", "CAA", "--ground-elevation", "100",
                    *HORIZON)
    assert again.returncode in (0, 1), again.stderr
    assert sorted(zones_of(run_cli, "CAA")) == ["LTA03", "LTC02", "LTR01"]


def _broken(path: list[Any], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(PUBLICATION)
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()
BAD = [
    (["features", 0, "restriction"], "FORBIDDEN", "LTR01", "restriction"),
    (["features", 0, "geometry", 0, "uomDimensions"], "KM", "LTR01",
     "geometry[0].uomDimensions"),
    (["features", 0, "geometry", 0, "upperLimit"], "high", "LTR01", "geometry[0].upperLimit"),
    (["features", 0, "geometry", 0, "upperVerticalReference"], "WGS84", "LTR01",
     "geometry[0].upperVerticalReference"),
    (["features", 1, "applicability", 0, "schedule", 0, "startTime"], "25:00Z", "LTC02",
     "applicability[0].schedule[0].startTime"),
    (["features", 1, "applicability", 0, "schedule", 0, "day"], ["MONDAY"], "LTC02",
     "applicability[0].schedule[0].day"),
    (["features", 2, "applicability", 0, "endDateTime"], "2030-06-04T07:00:00Z", "LTA03",
     "applicability[0].endDateTime"),
    (["features", 1, "geometry", 0, "horizontalProjection", "type"], "Ellipse", "LTC02",
     "geometry[0].horizontalProjection.type"),
    (["features", 0, "identifier"], "", "feature 0", "identifier"),
    (["features", 2, "geometry"], [], "LTA03", "geometry"),
]


@pytest.mark.parametrize(("path", "value", "item", "field"), BAD)
def test_each_mistake_is_named_and_nothing_is_stored(run_cli, publication, path, value,
                                                     item, field) -> None:
    assert run_cli("init").returncode == 0
    done = run_cli("import", publication(_broken(path, value)), *ED, "--party", "CAA",
                   "--ground-elevation", "100", *HORIZON)
    assert done.returncode == 2, done.stdout + done.stderr
    message = done.stderr.replace("\n", "")
    assert item in message and f"field '{field}'" in message
    assert zones_of(run_cli, "CAA") == {}


def test_agl_without_ground_elevation_is_refused(run_cli, publication) -> None:
    assert run_cli("init").returncode == 0
    done = run_cli("import", publication(), *ED, "--party", "CAA", *HORIZON)
    assert done.returncode == 2
    message = done.stderr.replace("\n", "")
    assert "LTC02" in message and "geometry[0].upperLimit" in message and "ground" in message


def test_upload_over_http(tmp_path) -> None:
    db = str(tmp_path / "upload.db")
    tokens = make_db(db)
    with serving(Settings(**{**FAST.__dict__, "db": db})) as url, httpx.Client(
            base_url=url + "/v1", headers={"Authorization": f"Bearer {tokens['A']}"}) as a:
        r = a.post("/import", json=PUBLICATION, params={
            "format": "ed269", "ground_elevation_m": 100, "geoid_height_m": 20,
            "horizon_start": "2030-06-03T00:00:00Z", "horizon_days": 7})
        assert r.status_code == 200, r.text
        assert sorted(r.json()["zones"]) == ["LTA03", "LTC02", "LTR01"]
        assert sorted(z["id"] for z in a.get("/zones").json()) == ["LTA03", "LTC02", "LTR01"]
        bad = a.post("/import", json=_broken(["features", 0, "restriction"], "X"),
                     params={"format": "ed269"})
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "restriction"


def test_round_trip_through_ed269_keeps_every_zone_and_never_shrinks_one(run_cli, publication,
                                                                          tmp_path) -> None:
    assert run_cli("init").returncode == 0
    assert run_cli("import", publication(), *ED, "--party", "CAA", "--ground-elevation", "100",
                   "--geoid-height", "20", *HORIZON).returncode == 0
    out = tmp_path / "out.json"
    done = run_cli("export", *ED, "--party", "CAA", "--geoid-height", "20",
                   "--country", "LTU", "-o", str(out))
    assert done.returncode == 0, done.stderr
    doc = json.loads(out.read_text())
    assert sorted(f["identifier"] for f in doc["features"]) == ["LTA03", "LTC02", "LTR01"]
    weekly = next(f for f in doc["features"] if f["identifier"] == "LTC02")
    assert len(weekly["applicability"]) == 5 and weekly["restriction"] == "CONDITIONAL"
    assert weekly["geometry"][0]["lowerVerticalReference"] == "AGL"  # the surface
    # Read back (as another party): the same footprints and windows; bands within a
    # metre, rounded outwards.
    assert run_cli("import", str(out), *ED, "--party", "Mirror", "--geoid-height", "20",
                   "--ground-elevation", "100", *HORIZON).returncode == 0
    before, after = zones_of(run_cli, "CAA"), zones_of(run_cli, "Mirror")
    assert sorted(before) == sorted(after)
    for zone in before:
        def key(f: dict[str, Any]) -> tuple[str, str, str]:
            p = f["properties"]
            return (json.dumps(f["geometry"]), p["time_start"], p["time_end"])
        old, new = sorted(before[zone], key=key), sorted(after[zone], key=key)
        assert [key(f) for f in old] == [key(f) for f in new]
        for o, n in zip(old, new, strict=True):
            op, np_ = o["properties"], n["properties"]
            assert np_["alt_lower_m"] <= op["alt_lower_m"] <= np_["alt_lower_m"] + 1
            assert np_["alt_upper_m"] - 1 <= op["alt_upper_m"] <= np_["alt_upper_m"]
            assert np_["restriction"] == op["restriction"]
