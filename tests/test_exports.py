"""A party's view out of detente: KML for Google Earth and a CSV of conflicts, over HTTP
and from the command line; read back, they say what the API says, and no more than the
party may see."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import pytest
from pyproj import Geod

from detente.api import Settings
from detente.client import Client

from .conftest import serving
from .test_api import activity
from .test_dialogue import FAST, make_db

NS = {"k": "http://www.opengis.net/kml/2.2"}


@pytest.fixture
def world(tmp_path) -> Iterator[dict[str, Any]]:
    db = str(tmp_path / "exports.db")
    tokens = make_db(db)
    with serving(Settings(**{**FAST.__dict__, "db": db})) as url:
        api = {who: Client(url, tokens[who]) for who in "ABC"}
        api["A"].create_activity(activity("a-convoy", (13.1, 11.8)))
        api["A"].create_activity(activity("a-far", (40.0, 40.0)))
        orbit = activity("b-orbit", (13.15, 11.85))
        orbit["volumes"][0].update(geometry={"type": "Point", "coordinates": [13.15, 11.85]},
                                   radius_m=3000)
        api["B"].create_activity(orbit)
        api["B"].create_activity(activity("b-secret", (60.0, 10.0)))
        yield {"db": db, "api": api}
        for c in api.values():
            c.close()


def placemarks(kml: bytes) -> dict[str, ET.Element]:
    root = ET.fromstring(kml)
    return {pm.findtext("k:name", namespaces=NS): pm
            for pm in root.iterfind(".//k:Placemark", NS)}


def ring(pm: ET.Element) -> list[tuple[float, float]]:
    text = pm.findtext(".//k:outerBoundaryIs/k:LinearRing/k:coordinates", namespaces=NS)
    return [tuple(float(v) for v in p.split(",")) for p in text.split()]  # type: ignore[misc]


def test_kml_holds_the_party_view_exactly(world) -> None:
    a = world["api"]["A"]
    kml = a.export("kml")
    marks = placemarks(kml)
    picture = a.airspace()
    assert len(marks) == len(picture["features"]) == 3  # 2 own + B's conflicting orbit
    assert "b-secret" not in kml.decode() and "60.0," not in kml.decode()
    own = marks["a-convoy / a-convoy-v0"]
    feature = next(f for f in picture["features"] if f["properties"].get("id") == "a-convoy-v0")
    assert ring(own) == [tuple(p) for p in feature["geometry"]["coordinates"][0]]
    assert own.findtext("k:TimeSpan/k:begin", namespaces=NS) == feature["properties"][
        "time_start"]
    assert "0 to 1000 m" in own.findtext("k:description", namespaces=NS)
    # B's circle: a ring of points 3 km from its centre, on the ellipsoid.
    orbit = next(pm for name, pm in marks.items() if name.startswith("B (conflict"))
    pts = ring(orbit)
    assert pts[0] == pts[-1] and len(pts) == 73
    _, _, dist = Geod(ellps="WGS84").inv([13.15] * len(pts), [11.85] * len(pts),
                                         [p[0] for p in pts], [p[1] for p in pts])
    assert max(abs(d - 3000.0) for d in dist) < 0.01
    # A party with nothing to see gets an empty but valid document.
    assert placemarks(world["api"]["C"].export("kml")) == {}


def test_csv_of_conflicts_reads_back_as_the_listing(world) -> None:
    b = world["api"]["B"]
    rows = list(csv.DictReader(io.StringIO(b.export("csv").decode())))
    listing = b.conflicts("live")
    assert [int(r["id"]) for r in rows] == [c["id"] for c in listing]
    assert rows[0]["activity"] == "b-orbit" and rows[0]["counterpart_party"] == "A"
    assert float(rows[0]["min_horizontal_m"]) == listing[0]["min_horizontal_m"]
    b.acknowledge(listing[0]["id"])
    again = list(csv.DictReader(io.StringIO(b.export("csv").decode())))
    assert again[0]["acknowledged_by"] == "B" and again[0]["status"] == "open"


def test_geojson_download_and_bad_format(world) -> None:
    a = world["api"]["A"]
    assert json.loads(a.export("geojson")) == a.airspace()
    r = a._http.get("/export", params={"format": "kml"})
    assert r.headers["content-type"] == "application/vnd.google-earth.kml+xml"
    assert r.headers["content-disposition"] == 'attachment; filename="airspace.kml"'
    bad = a._http.get("/export", params={"format": "shp"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "format"


def test_cli_exports_a_party_view(world, run_cli, tmp_path) -> None:
    db = world["db"]
    out = tmp_path / "a.kml"
    done = run_cli("export", "--db", db, "--format", "kml", "--party", "A", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert placemarks(out.read_bytes()).keys() == placemarks(
        world["api"]["A"].export("kml")).keys()
    table = run_cli("export", "--db", db, "--format", "csv", "--party", "B")
    assert table.stdout.splitlines()[0].startswith("id,status,activity,counterpart_party")
    assert len(table.stdout.splitlines()) == 2
    missing = run_cli("export", "--db", db, "--format", "kml")
    assert missing.returncode == 2 and "--party" in missing.stderr
    unknown = run_cli("export", "--db", db, "--format", "kml", "--party", "Nobody")
    assert unknown.returncode == 3
