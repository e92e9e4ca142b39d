"""The web map for liaison officers: one page of plain HTML and JS modules over the
HTTP API (Leaflet from the xstatic-leaflet package, served here: no CDN, it works
offline). Nothing of detente is imported: the page only talks to ``/v1``."""

from __future__ import annotations

from pathlib import Path

import orjson
import xstatic.pkg.leaflet
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI, tile_url: str | None) -> str:
    """Serve the page's files under ``/static``; returns the page, with its settings
    (the basemap's tile URL, or none: a graticule) written in."""
    config = orjson.dumps({"tile_url": tile_url}).decode().replace("</", "<\\/")
    page = (STATIC / "index.html").read_text().replace("__CONFIG__", config)
    app.mount("/static/leaflet", StaticFiles(directory=xstatic.pkg.leaflet.BASE_DIR),
              name="leaflet")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return page
