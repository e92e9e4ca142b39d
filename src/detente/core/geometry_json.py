"""Footprints back to GeoJSON geometry, longitudes wrapped into [-180, 180] again."""

from __future__ import annotations

from typing import Any

import shapely


def _wrap_lon(coords: list[list[float]]) -> list[list[float]]:
    """Unwrapped longitudes back into [-180, 180] (edges still go the short way)."""
    out = []
    for x, y in coords:
        while x > 180:
            x -= 360
        while x < -180:
            x += 360
        out.append([x, y])
    return out


def volume_geometry(geom: shapely.Geometry) -> dict[str, Any]:
    if shapely.get_type_id(geom) == 0:
        return {"type": "Point", "coordinates": [geom.x, geom.y]}
    rings = [geom.exterior, *geom.interiors]
    return {"type": "Polygon",
            "coordinates": [_wrap_lon([list(c) for c in r.coords]) for r in rings]}
