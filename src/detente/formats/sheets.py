"""Spreadsheets as humanitarian notification desks keep them (CSV or XLSX): static
sites (a point and radius, or a WKT polygon, with dates) become red lines; movements
(ordered waypoints with times and a corridor width) become activities with one corridor
volume per leg, each leg in its own time window.

Times without an offset are UTC (spreadsheet date cells carry none; the templates say
so). Blank altitudes mean the whole column, from below any ground to 20,000 m: a site
or a convoy is to be spared from every altitude. Corridors are buffered in metres in a
projection centred on each leg, 1 m wider than asked (the edges between corners run
straight in lon/lat), so a corridor is never narrower than its width.

Errors name the spreadsheet row (the header is row 1) and the column; one bad row
stops the whole import.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import shapely
import shapely.wkt
from pyproj import Transformer
from shapely.errors import ShapelyError

from ..core.instants import InstantError, format_instant, parse_instant
from ..errors import InputError

SITE_COLUMNS = ["site_id", "name", "latitude", "longitude", "radius_m", "polygon_wkt",
                "restriction", "alt_lower_m", "alt_upper_m", "active_from", "active_until",
                "notes"]
MOVEMENT_COLUMNS = ["movement_id", "waypoint", "latitude", "longitude", "time",
                    "corridor_m", "alt_lower_m", "alt_upper_m", "kind", "notes"]
REQUIRED = {"sites": {"site_id", "active_from", "active_until"},
            "movements": {"movement_id", "waypoint", "latitude", "longitude", "time",
                          "corridor_m"}}
COLUMN_HELP = {
    "site_id": "your id for the site (unique)", "name": "what it is (kept as a note)",
    "latitude": "decimal degrees, -90 to 90 (WGS 84)",
    "longitude": "decimal degrees, -180 to 180 (WGS 84)",
    "radius_m": "with latitude/longitude: the site's radius in metres",
    "polygon_wkt": "instead of a point: POLYGON((lon lat, lon lat, ...))",
    "restriction": "prohibited or notify (blank: notify)",
    "alt_lower_m": "metres above the WGS 84 ellipsoid (blank: from the ground)",
    "alt_upper_m": "metres above the WGS 84 ellipsoid (blank: 20,000 m)",
    "active_from": "date and time, UTC unless an offset is given",
    "active_until": "date and time, UTC unless an offset is given",
    "notes": "free text, for yourself",
    "movement_id": "your id for the movement; one row per waypoint",
    "waypoint": "1, 2, 3... the waypoints' order", "time": "when it is at the waypoint (UTC)",
    "corridor_m": "the corridor's width in metres (from the leg's first waypoint)",
    "kind": "convoy, patrol, aircraft... (per-kind minima)"}
FLOOR_M, CEILING_M = -1000.0, 20_000.0


def read_rows(data: bytes, file_type: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(spreadsheet row number, {column: value}) of each non-blank data row."""
    if file_type == "xlsx":
        from openpyxl import load_workbook

        try:
            book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:
            raise InputError(f"not an XLSX workbook: {exc}") from None
        sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header = [str(h).strip().lower() if h is not None else "" for h in next(rows, ())]
        for n, values in enumerate(rows, start=2):
            row = {h: v for h, v in zip(header, values, strict=False) if h}
            if any(v not in (None, "") for v in row.values()):
                yield n, row
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("a CSV file in UTF-8") from None
    # newline="": the csv module reads line ends itself (a bare CR too; given lines
    # split by StringIO, it refused one with an error that reached HTTP as a 500).
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        if reader.fieldnames is None:
            raise InputError("an empty file: the first row names the columns")
        reader.fieldnames = [f.strip().lower() for f in reader.fieldnames]
        for n, row in enumerate(reader, start=2):
            if any((v or "").strip() for v in row.values() if isinstance(v, str)):
                yield n, {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
    except csv.Error as exc:
        raise InputError(f"not readable as CSV: {exc}", item=f"line {reader.line_num + 1}"
                         ) from None


def _blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _get(row: dict[str, Any], col: str, n: int, required: bool = True) -> Any:
    v = row.get(col)
    if _blank(v):
        if required:
            raise InputError("missing", item=f"row {n}", field=col)
        return None
    return v


def _num(row: dict[str, Any], col: str, n: int, lo: float | None = None,
         hi: float | None = None, required: bool = True) -> float | None:
    v = _get(row, col, n, required)
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise InputError(f"a number, not {v!r}", item=f"row {n}", field=col) from None
    if x != x or (lo is not None and x < lo) or (hi is not None and x > hi):
        raise InputError(f"a number from {lo:g} to {hi:g}" if lo is not None and hi is not None
                         else f"a number over {lo:g}" if lo is not None else "a number",
                         item=f"row {n}", field=col)
    return x


def _time(row: dict[str, Any], col: str, n: int) -> int:
    v = _get(row, col, n)
    if isinstance(v, datetime):
        v = (v if v.tzinfo else v.replace(tzinfo=UTC)).isoformat()
    text = str(v).strip().replace(" ", "T")
    if len(text) in (16, 19) and text[10:11] == "T":  # no offset: UTC (and no seconds: 0)
        text += ":00Z" if len(text) == 16 else "Z"
    try:
        return parse_instant(text)
    except InstantError as exc:
        raise InputError(str(exc), item=f"row {n}", field=col) from None


def _point(row: dict[str, Any], n: int) -> tuple[float, float]:
    lon = _num(row, "longitude", n, -180, 180)
    lat = _num(row, "latitude", n, -90, 90)
    assert lon is not None and lat is not None  # (required: missing raised)
    return lon, lat


def _band(row: dict[str, Any], n: int) -> tuple[float, float]:
    lo = _num(row, "alt_lower_m", n, required=False)
    hi = _num(row, "alt_upper_m", n, required=False)
    lo = FLOOR_M if lo is None else lo
    hi = CEILING_M if hi is None else hi
    if hi < lo:
        raise InputError("alt_upper_m must not be below alt_lower_m", item=f"row {n}",
                         field="alt_upper_m")
    return lo, hi


def sites_to_scenario(rows: Iterator[tuple[int, dict[str, Any]]], party: str
                      ) -> dict[str, Any]:
    """Static sites as red lines of ``party`` (a scenario of zones)."""
    features = []
    seen: dict[str, int] = {}
    for n, row in rows:
        sid = str(_get(row, "site_id", n)).strip()
        if sid in seen:
            raise InputError(f"site_id {sid!r} is on row {seen[sid]} already",
                             item=f"row {n}", field="site_id")
        seen[sid] = n
        wkt = _get(row, "polygon_wkt", n, required=False)
        has_point = not (_blank(row.get("latitude")) and _blank(row.get("longitude")))
        if wkt is not None and has_point:
            raise InputError("either latitude/longitude/radius_m or polygon_wkt, not both",
                             item=f"row {n}", field="polygon_wkt")
        props: dict[str, Any] = {"party": party, "activity": sid, "zone": True}
        if wkt is not None:
            try:
                poly = shapely.wkt.loads(str(wkt))
            except ShapelyError as exc:
                raise InputError(f"not WKT: {exc}", item=f"row {n}",
                                 field="polygon_wkt") from None
            if poly.geom_type != "Polygon":
                raise InputError(f"a POLYGON, not a {poly.geom_type.upper()}",
                                 item=f"row {n}", field="polygon_wkt")
            geometry = shapely.geometry.mapping(poly)
        elif has_point:
            lon, lat = _point(row, n)
            props["radius_m"] = _num(row, "radius_m", n, 0.01)
            geometry = {"type": "Point", "coordinates": [lon, lat]}
        else:
            raise InputError("a place: latitude, longitude and radius_m, or polygon_wkt",
                             item=f"row {n}", field="latitude")
        restriction = str(row.get("restriction") or "notify").strip().lower()
        if restriction not in ("prohibited", "notify"):
            raise InputError(f"prohibited or notify, not {restriction!r}", item=f"row {n}",
                             field="restriction")
        t0, t1 = _time(row, "active_from", n), _time(row, "active_until", n)
        if t1 <= t0:
            raise InputError("active_until must be after active_from", item=f"row {n}",
                             field="active_until")
        lo, hi = _band(row, n)
        props.update(restriction=restriction, alt_lower_m=lo, alt_upper_m=hi,
                     time_start=format_instant(t0), time_end=format_instant(t1))
        features.append({"type": "Feature", "id": sid, "geometry": geometry,
                         "properties": props})
    if not features:
        raise InputError("no rows: the first row names the columns, the others are sites")
    return {"type": "FeatureCollection", "features": features}


def corridor(a: tuple[float, float], b: tuple[float, float], width_m: float
             ) -> dict[str, Any]:
    """The leg a -> b (lon, lat) widened to ``width_m`` (round ends), in lon/lat."""
    mid_lon, mid_lat = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
    to_m = Transformer.from_pipeline(
        f"+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad +step "
        f"+proj=aeqd +lat_0={mid_lat} +lon_0={mid_lon} +ellps=WGS84")
    line = shapely.transform(shapely.LineString([a, b]), lambda x, y: to_m.transform(x, y),
                             interleaved=False)
    area = line.buffer(width_m / 2 + 1.0, quad_segs=8)
    back = shapely.transform(area, lambda x, y: to_m.transform(x, y, direction="INVERSE"),
                             interleaved=False)
    out: dict[str, Any] = shapely.geometry.mapping(back)
    return out


def movements_to_scenario(rows: Iterator[tuple[int, dict[str, Any]]], party: str
                          ) -> dict[str, Any]:
    """Movements as activities of ``party``: one corridor volume per leg."""
    by_id: dict[str, list[tuple[int, int, dict[str, Any]]]] = {}
    for n, row in rows:
        mid = str(_get(row, "movement_id", n)).strip()
        k = _num(row, "waypoint", n, 0)
        assert k is not None
        if k != int(k):
            raise InputError("a whole number", item=f"row {n}", field="waypoint")
        by_id.setdefault(mid, []).append((int(k), n, row))
    if not by_id:
        raise InputError("no rows: the first row names the columns, the others waypoints")
    features = []
    for mid, points in by_id.items():
        points.sort(key=lambda p: p[0])
        if len(points) < 2:
            raise InputError(f"movement {mid!r} has one waypoint: a movement needs two",
                             item=f"row {points[0][1]}", field="waypoint")
        for (k0, n0, r0), (k1, n1, r1) in itertools.pairwise(points):
            if k1 == k0:
                raise InputError(f"waypoint {k1} of {mid!r} is on row {n0} already",
                                 item=f"row {n1}", field="waypoint")
            t0, t1 = _time(r0, "time", n0), _time(r1, "time", n1)
            if t1 <= t0:
                raise InputError("each waypoint's time must be after the one before",
                                 item=f"row {n1}", field="time")
            width = _num(r0, "corridor_m", n0, 0.01)
            assert width is not None
            a, b = _point(r0, n0), _point(r1, n1)
            lo, hi = _band(r0, n0)
            props: dict[str, Any] = {
                "party": party, "activity": mid, "alt_lower_m": lo, "alt_upper_m": hi,
                "time_start": format_instant(t0), "time_end": format_instant(t1)}
            if not _blank(r0.get("kind")):
                props["kind"] = str(r0["kind"]).strip()
            features.append({"type": "Feature", "id": f"{mid}/leg-{k0}-{k1}",
                             "geometry": corridor(a, b, width),
                             "properties": props})
    return {"type": "FeatureCollection", "features": features}


def template(kind: str, file_type: str) -> bytes:
    """A blank sheet for ``sites`` or ``movements``: CSV (the header), or XLSX with the
    header, an instructions sheet and validation on the cells people get wrong."""
    columns = SITE_COLUMNS if kind == "sites" else MOVEMENT_COLUMNS
    if file_type == "csv":
        return (",".join(columns) + "\n").encode()
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    sheet = book.active
    sheet.title = kind
    sheet.append(columns)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    rules = []
    for col, (lo, hi) in {"latitude": (-90, 90), "longitude": (-180, 180)}.items():
        rules.append((col, DataValidation(type="decimal", operator="between", formula1=str(lo),
                                          formula2=str(hi), showErrorMessage=True,
                                          error=f"{col}: {lo} to {hi}")))
    for col in ("radius_m", "corridor_m"):
        rules.append((col, DataValidation(type="decimal", operator="greaterThan",
                                          formula1="0", showErrorMessage=True,
                                          error=f"{col}: more than 0 metres")))
    rules.append(("restriction", DataValidation(type="list", formula1='"prohibited,notify"',
                                                allow_blank=True)))
    rules.append(("waypoint", DataValidation(type="whole", operator="greaterThanOrEqual",
                                             formula1="0")))
    for col, rule in rules:
        if col in columns:
            letter = chr(ord("A") + columns.index(col))
            rule.add(f"{letter}2:{letter}5000")
            sheet.add_data_validation(rule)
    for k, col in enumerate(columns):
        sheet.column_dimensions[chr(ord("A") + k)].width = max(12, len(col) + 4)
    help_sheet = book.create_sheet("instructions")
    help_sheet.append([f"One row per {'site' if kind == 'sites' else 'waypoint'}. Times are "
                       "UTC unless they carry an offset. Required columns: "
                       + ", ".join(c for c in columns if c in REQUIRED[kind]) + "."])
    help_sheet.append([])
    help_sheet.append(["column", "what to put"])
    for col in columns:
        help_sheet.append([col, COLUMN_HELP[col]])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
