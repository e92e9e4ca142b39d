"""A party's view written in formats people open elsewhere: KML for Google Earth, and
a CSV of conflicts for spreadsheets. Both take what the party may see already (the
airspace GeoJSON and the conflict listing of :mod:`detente.service.disclosure`), so
need-to-know is decided in one place.

KML: each volume is a placemark with its footprint on the ground (altitude bands
cannot be drawn as floating prisms in KML; they are in the description), a TimeSpan
for Google Earth's time slider, and a style per role. Circles become 72-sided polygons
on the WGS 84 ellipsoid."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
from pyproj import Geod

KML_NS = "http://www.opengis.net/kml/2.2"
CIRCLE_SIDES = 72
_GEOD = Geod(ellps="WGS84")
# role -> (line colour, fill colour) as KML's aabbggrr
_STYLES = {
    "own-activity": ("ffbf5f1f", "401f5fbf"),
    "own-zone": ("ffa03f6b", "206b3fa0"),
    "zone": ("ff1e26b3", "401e26b3"),
    "counterpart": ("ff005ec2", "60005ec2"),
}
_TITLES = {"own-activity": "My activities", "own-zone": "My red lines",
           "zone": "Red lines that apply to me", "counterpart": "Conflicting volumes of others"}
CONFLICT_COLUMNS = ["id", "status", "activity", "counterpart_party", "starts", "ends",
                    "deadline", "acknowledged_by", "accepted_by", "escalated",
                    "volume_pairs", "min_horizontal_m", "opened_at", "updated_at"]


def circle_ring(lon: float, lat: float, radius_m: float, sides: int = CIRCLE_SIDES
                ) -> list[tuple[float, float]]:
    """A closed ring of points ``radius_m`` from the centre (geodesic)."""
    az = np.linspace(0.0, 360.0, sides, endpoint=False)
    lons, lats, _ = _GEOD.fwd(np.full(sides, lon), np.full(sides, lat), az,
                              np.full(sides, radius_m))
    ring = list(zip(np.asarray(lons).tolist(), np.asarray(lats).tolist(), strict=True))
    return [*ring, ring[0]]


def _rings(geometry: dict[str, Any], radius_m: float | None) -> list[list[list[Any]]]:
    """Polygons (each a list of rings) of a volume's footprint."""
    if geometry["type"] == "Point":
        lon, lat = geometry["coordinates"][:2]
        return [[[list(p) for p in circle_ring(lon, lat, radius_m or 0.0)]]]
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"]]
    return list(geometry["coordinates"])  # MultiPolygon


def _name(p: dict[str, Any]) -> str:
    if p["role"] in ("own-activity", "own-zone"):
        return f"{p['activity']} / {p.get('id', '')}"
    if p["role"] == "zone":
        return f"{p['party']}: {p['zone']} ({p['restriction']})"
    return f"{p['party']} (conflict {p['conflict']})"


def _description(p: dict[str, Any]) -> str:
    lines = [f"altitude {p['alt_lower_m']:g} to {p['alt_upper_m']:g} m above the WGS 84 "
             "ellipsoid", f"from {p['time_start']} to {p['time_end']}"]
    for key in ("kind", "state", "restriction"):
        if p.get(key):
            lines.append(f"{key}: {p[key]}")
    return "\n".join(lines)


def airspace_kml(airspace: dict[str, Any], title: str) -> bytes:
    """KML of an airspace FeatureCollection (``properties.role`` per feature), one
    folder per role."""
    ET.register_namespace("", KML_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
        el = ET.SubElement(parent, f"{{{KML_NS}}}{tag}")
        if text is not None:
            el.text = text
        return el

    root = ET.Element(f"{{{KML_NS}}}kml")
    doc = sub(root, "Document")
    sub(doc, "name", title)
    for role, (line, fill) in _STYLES.items():
        style = sub(doc, "Style")
        style.set("id", role)
        sub(sub(style, "LineStyle"), "color", line)
        sub(sub(style, "PolyStyle"), "color", fill)
    folders: dict[str, ET.Element] = {}
    for f in airspace["features"]:
        p = f["properties"]
        role = p["role"]
        if role not in folders:
            folders[role] = sub(doc, "Folder")
            sub(folders[role], "name", _TITLES.get(role, role))
        mark = sub(folders[role], "Placemark")
        sub(mark, "name", _name(p))
        sub(mark, "description", _description(p))
        sub(mark, "styleUrl", f"#{role}")
        span = sub(mark, "TimeSpan")
        sub(span, "begin", p["time_start"])
        sub(span, "end", p["time_end"])
        polygons = _rings(f["geometry"], p.get("radius_m"))
        shape = sub(mark, "MultiGeometry") if len(polygons) > 1 else mark
        for rings in polygons:
            poly = sub(shape, "Polygon")
            sub(poly, "altitudeMode", "clampToGround")
            for k, ring in enumerate(rings):
                boundary = sub(poly, "outerBoundaryIs" if k == 0 else "innerBoundaryIs")
                sub(sub(boundary, "LinearRing"), "coordinates",
                    " ".join(f"{x[0]!r},{x[1]!r}" for x in ring))
    out: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return out


def conflicts_csv(conflicts: list[dict[str, Any]]) -> str:
    """One row per conflict, as the party sees it (lists joined with ';')."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CONFLICT_COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for c in conflicts:
        writer.writerow({k: ";".join(v) if isinstance(v, list) else v
                         for k, v in c.items()})
    return buf.getvalue()
