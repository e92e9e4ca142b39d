"""Spreadsheets of sites and movements, as notification desks keep them: CSV and XLSX
in, the templates out, and the ways a row can be wrong (each named by row and column,
nothing stored)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import shapely
from openpyxl import Workbook, load_workbook
from pyproj import Geod

from detente.api import Settings
from detente.formats.sheets import MOVEMENT_COLUMNS, SITE_COLUMNS

from .conftest import serving
from .test_dialogue import FAST, make_db

SITES = [
    {"site_id": "hosp-1", "name": "Hospital", "latitude": "11.85", "longitude": "13.16",
     "radius_m": "300", "restriction": "prohibited", "active_from": "2030-06-01 00:00",
     "active_until": "2030-12-31T00:00:00Z"},
    {"site_id": "camp-2", "name": "Camp",
     "polygon_wkt": "POLYGON((13.20 11.80, 13.25 11.80, 13.25 11.84, 13.20 11.80))",
     "alt_lower_m": "0", "alt_upper_m": "3000", "active_from": "2030-06-01T00:00:00+01:00",
     "active_until": "2030-07-01T00:00:00Z"},
]
MOVES = [
    {"movement_id": "convoy-7", "waypoint": "1", "latitude": "11.80", "longitude": "13.00",
     "time": "2030-06-05 06:00", "corridor_m": "400", "kind": "convoy"},
    {"movement_id": "convoy-7", "waypoint": "2", "latitude": "11.85", "longitude": "13.10",
     "time": "2030-06-05 07:30", "corridor_m": "400", "kind": "convoy"},
    {"movement_id": "convoy-7", "waypoint": "3", "latitude": "11.90", "longitude": "13.12",
     "time": "2030-06-05 08:00"},
]


def to_csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def to_xlsx(columns: list[str], rows: list[dict[str, Any]], path: Path) -> None:
    book = Workbook()
    sheet = book.active
    sheet.append(columns)
    for r in rows:
        sheet.append([r.get(c) for c in columns])
    book.save(path)


def stored(run_cli: Any, party: str) -> list[dict[str, Any]]:
    return json.loads(run_cli("export", "--party", party).stdout)["features"]


def test_sites_from_csv_become_red_lines(run_cli, tmp_path) -> None:
    assert run_cli("init").returncode == 0
    (tmp_path / "sites.csv").write_text(to_csv(SITE_COLUMNS, SITES))
    done = run_cli("import", str(tmp_path / "sites.csv"), "--format", "sites", "--party",
                   "Relief")
    assert done.returncode == 0, done.stderr
    feats = {f["properties"]["activity"]: f for f in stored(run_cli, "Relief")}
    hosp, camp = feats["hosp-1"]["properties"], feats["camp-2"]["properties"]
    assert feats["hosp-1"]["geometry"] == {"type": "Point", "coordinates": [13.16, 11.85]}
    assert (hosp["zone"], hosp["restriction"], hosp["radius_m"]) == (True, "prohibited", 300)
    assert hosp["time_start"] == "2030-06-01T00:00:00Z"  # no offset: UTC
    assert (hosp["alt_lower_m"], hosp["alt_upper_m"]) == (-1000.0, 20000.0)  # blank: all
    assert camp["restriction"] == "notify" and camp["time_start"] == "2030-05-31T23:00:00Z"
    assert (camp["alt_lower_m"], camp["alt_upper_m"]) == (0.0, 3000.0)


def test_movements_become_corridors_leg_by_leg(run_cli, tmp_path) -> None:
    assert run_cli("init").returncode == 0
    to_xlsx(MOVEMENT_COLUMNS, MOVES, tmp_path / "moves.xlsx")
    done = run_cli("import", str(tmp_path / "moves.xlsx"), "--format", "movements",
                   "--party", "Relief", "--json")
    assert done.returncode == 0, done.stderr
    legs = sorted(stored(run_cli, "Relief"), key=lambda f: f["properties"]["time_start"])
    assert [(f["properties"]["time_start"], f["properties"]["time_end"]) for f in legs] == [
        ("2030-06-05T06:00:00Z", "2030-06-05T07:30:00Z"),
        ("2030-06-05T07:30:00Z", "2030-06-05T08:00:00Z")]
    assert {f["properties"]["activity"] for f in legs} == {"convoy-7"}
    # The corridor holds the leg and everything within 200 m of it, and no more than
    # a few metres beyond.
    geod = Geod(ellps="WGS84")
    poly = shapely.geometry.shape(legs[0]["geometry"])
    assert poly.contains(shapely.LineString([(13.00, 11.80), (13.10, 11.85)]))
    az, _, _ = geod.inv(13.00, 11.80, 13.10, 11.85)
    for side in (az - 90, az + 90):
        for dist, inside in ((199.0, True), (215.0, False)):
            lon, lat, _ = geod.fwd(13.05, 11.825, side, dist)
            assert poly.contains(shapely.Point(lon, lat)) is inside, (side, dist)


def test_a_movement_through_a_site_conflicts_over_http(tmp_path) -> None:
    db = str(tmp_path / "sheets.db")
    tokens = make_db(db)
    with serving(Settings(**{**FAST.__dict__, "db": db})) as url:
        def client(who: str) -> httpx.Client:
            return httpx.Client(base_url=url + "/v1", timeout=30,
                                headers={"Authorization": f"Bearer {tokens[who]}"})
        with client("A") as a, client("B") as b:
            r = a.post("/import", params={"format": "sites"},
                       content=to_csv(SITE_COLUMNS, SITES).encode(),
                       headers={"Content-Type": "text/csv"})
            assert r.status_code == 200, r.text
            assert sorted(r.json()["zones"]) == ["camp-2", "hosp-1"]
            book = tmp_path / "m.xlsx"  # the convoy's first leg ends at the hospital
            path = [{**m, "longitude": str(float(m["longitude"]) + 0.06)} for m in MOVES]
            to_xlsx(MOVEMENT_COLUMNS, path, book)
            r = b.post("/import", params={"format": "movements"}, content=book.read_bytes())
            assert r.status_code == 409 and "hosp-1" in r.json()["detail"], r.text
            assert b.get("/activities").json() == []  # all or nothing
            r = b.post("/import", params={"format": "movements", "override": "true"},
                       content=book.read_bytes())
            assert r.status_code == 200 and r.json()["entries"][0]["overridden"], r.text
            assert b.delete("/activities/convoy-7").status_code in (200, 204)
            # The hospital becomes a notify zone: the convoy goes in, and both are told.
            notify = [{**SITES[0], "restriction": "notify"}, SITES[1]]
            r = a.post("/import", params={"format": "sites"},
                       content=to_csv(SITE_COLUMNS, notify).encode())
            assert r.status_code == 200, r.text
            r = b.post("/import", params={"format": "movements"}, content=book.read_bytes())
            assert r.status_code == 200, r.text
            assert r.json()["activities"] == ["convoy-7"]
            assert {e["zone"] for e in r.json()["entries"]} == {"hosp-1"}


def test_templates_carry_columns_instructions_and_validation(run_cli, tmp_path) -> None:
    for name, columns in (("sites.xlsx", SITE_COLUMNS), ("movements.xlsx", MOVEMENT_COLUMNS)):
        assert run_cli("template", str(tmp_path / name)).returncode == 0
        book = load_workbook(tmp_path / name)
        sheet = book.worksheets[0]
        assert [c.value for c in sheet[1]] == columns
        assert "UTC" in book["instructions"]["A1"].value
        assert len(sheet.data_validations.dataValidation) >= 3
    assert run_cli("template", str(tmp_path / "sites.csv")).returncode == 0
    assert (tmp_path / "sites.csv").read_text().strip() == ",".join(SITE_COLUMNS)
    # A filled-in template imports.
    book = load_workbook(tmp_path / "sites.xlsx")
    book.worksheets[0].append([SITES[0].get(c) for c in SITE_COLUMNS])
    book.save(tmp_path / "filled.xlsx")
    assert run_cli("init").returncode == 0
    assert run_cli("import", str(tmp_path / "filled.xlsx"), "--format", "sites",
                   "--party", "Relief").returncode == 0


BAD_SITES = [
    ({"site_id": ""}, "site_id", "missing"),
    ({"latitude": "95"}, "latitude", "-90 to 90"),
    ({"longitude": "east"}, "longitude", "a number"),
    ({"radius_m": "0"}, "radius_m", "over"),
    ({"radius_m": ""}, "radius_m", "missing"),
    ({"polygon_wkt": "POLYGON((1 1, 2 2))"}, "polygon_wkt", "not both"),
    ({"latitude": "", "longitude": "", "polygon_wkt": "POLYGON((1 1, 2 2"}, "polygon_wkt",
     "not WKT"),
    ({"latitude": "", "longitude": "", "polygon_wkt": "POINT(1 1)"}, "polygon_wkt",
     "POLYGON"),
    ({"latitude": "", "longitude": ""}, "latitude", "a place"),
    ({"restriction": "forbidden"}, "restriction", "prohibited or notify"),
    ({"active_from": "tomorrow"}, "active_from", ""),
    ({"active_until": "2030-05-01T00:00:00Z"}, "active_until", "after"),
    ({"alt_lower_m": "500", "alt_upper_m": "100"}, "alt_upper_m", "below"),
    ({"site_id": "camp-2"}, "site_id", "row 3 already"),
]


@pytest.mark.parametrize(("change", "column", "reason"), BAD_SITES)
def test_a_bad_site_row_is_named_and_nothing_is_stored(run_cli, tmp_path, change, column,
                                                       reason) -> None:
    assert run_cli("init").returncode == 0
    rows = [*SITES, {**SITES[0], "site_id": "third", **change}]  # the bad one: row 4
    (tmp_path / "bad.csv").write_text(to_csv(SITE_COLUMNS, rows))
    done = run_cli("import", str(tmp_path / "bad.csv"), "--format", "sites", "--party", "R")
    assert done.returncode == 2, done.stdout + done.stderr
    message = done.stderr.replace("\n", "")
    assert "row 4" in message and f"field '{column}'" in message and reason in message
    assert stored(run_cli, "R") == []


BAD_MOVES = [
    ([MOVES[0]], "waypoint", "one waypoint"),
    ([MOVES[0], {**MOVES[1], "time": "2030-06-05 05:00"}], "time", "after the one before"),
    ([MOVES[0], {**MOVES[1], "waypoint": "1"}], "waypoint", "already"),
    ([{**MOVES[0], "waypoint": "1.5"}, MOVES[1]], "waypoint", "whole number"),
    ([{**MOVES[0], "corridor_m": ""}, MOVES[1]], "corridor_m", "missing"),
]


@pytest.mark.parametrize(("rows", "column", "reason"), BAD_MOVES)
def test_a_bad_movement_is_named_and_nothing_is_stored(run_cli, tmp_path, rows, column,
                                                       reason) -> None:
    assert run_cli("init").returncode == 0
    (tmp_path / "bad.csv").write_text(to_csv(MOVEMENT_COLUMNS, rows))
    done = run_cli("import", str(tmp_path / "bad.csv"), "--format", "movements",
                   "--party", "R")
    assert done.returncode == 2, done.stdout + done.stderr
    message = done.stderr.replace("\n", "")
    assert f"field '{column}'" in message and reason in message and "row " in message
    assert stored(run_cli, "R") == []


def test_csv_line_ends_and_unreadable_csv() -> None:
    """A bare CR ends a line, as CRLF and LF do; what the csv module cannot read is bad
    input naming the line (it reached HTTP as a 500, found by schemathesis)."""
    from detente.errors import InputError
    from detente.formats.sheets import read_rows

    for end in ("\r", "\n", "\r\n"):
        data = end.join(["name,lon", "a,1", "b,2", ""]).encode()
        assert list(read_rows(data, "csv")) == [(2, {"name": "a", "lon": "1"}),
                                                (3, {"name": "b", "lon": "2"})]
    with pytest.raises(InputError) as err:
        list(read_rows(b"name,notes\na," + b"x" * 200_000 + b"\n", "csv"))
    assert err.value.item == "line 2" and "field limit" in str(err.value)
