"""Uploads in formats others publish, stored as the caller's plans (all or nothing)."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from ..core.scenario import read_scenario
from ..formats.ed269 import Ed269Options
from ..formats.imports import horizon_start, to_scenario
from . import problems
from .app import GatedRouter, Services, get_services, party

router = GatedRouter(prefix="/v1", tags=["plans"],
                     responses=problems.documented(401, 403, 409, 413, 422))
BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object", "description": "ed269: the document"}},
    "text/csv": {"schema": {"type": "string", "description": "sites or movements"}},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
        "schema": {"type": "string", "format": "binary"}}}}}


@router.post("/import", summary="Import plans from another format", openapi_extra=BODY)
async def import_plans(
    request: Request,
    format: Literal["ed269", "sites", "movements"] = Query(
        ..., description="ed269: EUROCAE ED-269 zones (JSON); sites: a CSV or XLSX sheet "
                         "of static sites (red lines); movements: a sheet of waypoints "
                         "(activities, a corridor per leg)"),
    ground_elevation_m: float | None = Query(None, description="ed269: metres AMSL, for "
                                             "AGL limits (without it an AGL upper limit "
                                             "is refused)"),
    geoid_height_m: float | None = Query(None, description="ed269: the geoid above the "
                                         "WGS 84 ellipsoid here; without it AMSL bands are "
                                         "widened by the geoid's extremes"),
    horizon_start_at: str | None = Query(None, alias="horizon_start", description="ed269: "
                                         "RFC 3339, where permanent and weekly zones start "
                                         "(default: today 00:00Z)"),
    horizon_days: int = Query(14, ge=1, le=366),
    override: bool = Query(False, description="proceed even into prohibited zones (the "
                                              "override is recorded)"),
    caller: str = Depends(party), services: Services = Depends(get_services),
) -> dict[str, Any]:
    """The file's plans become the caller's, checked like any submission. Bad input
    names the feature or row and the field; nothing is stored then."""
    data = await request.body()

    def work() -> dict[str, Any]:
        scenario, summary = to_scenario(format, data, party=caller, opts=Ed269Options(
            horizon_start(horizon_start_at, "horizon_start"), horizon_days,
            ground_elevation_m, geoid_height_m))
        scen = read_scenario(orjson.dumps(scenario), default_party=caller,
                             parallel=services.deconfliction.parallel)
        result = services.deconfliction.submit(scen, override=override, actor=caller)
        return {"zones": result.zones, "activities": result.created + result.replaced,
                "volumes": len(scenario["features"]),
                "conflicts": services.disclosure.caused(caller, result.conflicts, result.rows),
                "entries": result.violations,
                **{k: summary[k] for k in ("skipped", "widened") if k in summary}}

    return await run_in_threadpool(work)
