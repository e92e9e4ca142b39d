"""Uploads in formats others publish, stored as the caller's plans (all or nothing)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Body, Depends, Query

from ..core.scenario import read_scenario
from ..formats.ed269 import Ed269Options, read_ed269, read_instant
from . import problems
from .app import Services, get_services, party

router = APIRouter(tags=["plans"], responses=problems.documented(401, 403, 409, 413, 422))


@router.post("/import", summary="Import zones from another format")
def import_zones(
    document: dict[str, Any] = Body(..., description="the file's JSON"),
    format: Literal["ed269"] = Query("ed269", description="ed269: EUROCAE ED-269 UAS "
                                                         "geographical zones"),
    ground_elevation_m: float | None = Query(None, description="metres AMSL, for AGL "
                                             "limits (without it an AGL upper limit is "
                                             "refused)"),
    geoid_height_m: float | None = Query(None, description="the geoid above the WGS 84 "
                                         "ellipsoid here; without it AMSL bands are widened "
                                         "by the geoid's extremes"),
    horizon_start: str | None = Query(None, description="RFC 3339: where permanent and "
                                      "weekly zones start (default: today 00:00Z)"),
    horizon_days: int = Query(14, ge=1, le=366),
    caller: str = Depends(party), services: Services = Depends(get_services),
) -> dict[str, Any]:
    """The document's zones become the caller's red lines, checked like any submission.
    Bad input names the feature and the field; nothing is stored then."""
    if horizon_start is not None:
        start = read_instant(horizon_start, "query", "horizon_start")
    else:
        now = datetime.now(UTC)
        start = datetime(now.year, now.month, now.day, tzinfo=UTC)
    imp = read_ed269(document, party=caller, opts=Ed269Options(
        start, horizon_days, ground_elevation_m, geoid_height_m))
    scen = read_scenario(orjson.dumps(imp.scenario), default_party=caller,
                         parallel=services.deconfliction.parallel)
    result = services.deconfliction.submit(scen, actor=caller)
    return {"zones": result.zones, "volumes": imp.volumes, "skipped": imp.skipped,
            "widened": imp.widened, "entries": result.violations}
