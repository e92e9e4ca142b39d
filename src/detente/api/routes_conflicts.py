"""Conflicts and the airspace picture, as the caller may see them (need-to-know)."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import Depends, Query, Request
from fastapi.responses import Response

from ..core.instants import InstantError, parse_instant
from ..errors import InputError
from ..formats.ed269 import write_ed269
from ..formats.party_view import airspace_kml, conflicts_csv
from ..service.disclosure import Window
from . import problems
from .app import GatedRouter, Services, get_services, party

router = GatedRouter(prefix="/v1", tags=["conflicts"],
                     responses=problems.documented(401, 403, 404, 422))


def window(
    bbox: str | None = Query(None, description="min lon,min lat,max lon,max lat (WGS 84)",
                             examples=["13.0,11.7,13.3,12.0"]),
    start: str | None = Query(None, description="RFC 3339: from this instant"),
    end: str | None = Query(None, description="RFC 3339: until this instant"),
) -> Window:
    box = None
    if bbox is not None:
        try:
            x0, y0, x1, y1 = (float(v) for v in bbox.split(","))
        except ValueError:
            raise InputError("bbox is four numbers: min lon,min lat,max lon,max lat",
                             field="bbox") from None
        if not (-180 <= x0 <= x1 <= 180 and -90 <= y0 <= y1 <= 90):
            raise InputError("bbox needs -180 <= min lon <= max lon <= 180 and "
                             "-90 <= min lat <= max lat <= 90", field="bbox")
        box = (x0, y0, x1, y1)
    times = []
    for name, text in (("start", start), ("end", end)):
        try:
            times.append(None if text is None else parse_instant(text))
        except InstantError as exc:
            raise InputError(str(exc), field=name) from None
    if times[0] is not None and times[1] is not None and times[1] <= times[0]:
        raise InputError("end must be after start", field="end")
    return Window(box, times[0], times[1])


@router.get("/conflicts", summary="The caller's conflicts")
def list_conflicts(status: Literal["open", "acknowledged", "accepted", "resolved", "expired",
                                   "live"] | None = Query(
                       None, description="one status, or live: open, acknowledged or "
                                         "accepted"),
                   where: Window = Depends(window),
                   limit: int | None = Query(None, ge=1, le=10_000,
                                             description="at most this many, in id order"),
                   after: int | None = Query(None, ge=0,
                                             description="only ids above this one"),
                   *, request: Request, response: Response,
                   caller: str = Depends(party),
                   services: Services = Depends(get_services)) -> list[dict[str, Any]]:
    """Conflicts between one of the caller's activities and another party's, in id
    order; with ``bbox``/``start``/``end``, those whose two activities both reach into
    the window. With ``limit``, a page: when more follow, the ``Link`` header names the
    next page (``rel="next"``: the same query with ``after`` the page's last id)."""
    page, more = services.disclosure.conflicts_page(caller, status, where, after=after,
                                                    limit=limit)
    if more:
        following = request.url.include_query_params(after=page[-1]["id"])
        response.headers["Link"] = f'<{following}>; rel="next"'
    return page


@router.get("/airspace", summary="Everything the caller may see in an area and time")
def airspace(where: Window = Depends(window), caller: str = Depends(party),
             services: Services = Depends(get_services)) -> dict[str, Any]:
    """A GeoJSON FeatureCollection: the caller's own activities and zones, other
    parties' zones that apply to it, and the counterpart volumes of its open conflicts.
    Each feature's ``role`` says which."""
    return services.disclosure.airspace(caller, where)


EXPORTS = {"geojson": ("application/geo+json", "geojson"),
           "ed269": ("application/json", "json"),
           "kml": ("application/vnd.google-earth.kml+xml", "kml"),
           "csv": ("text/csv; charset=utf-8", "csv")}


@router.get("/export", summary="Download what the caller may see, as a file",
            response_class=Response, responses={200: {"content": {
                media: {} for media, _ in EXPORTS.values()}}})
def export(format: Literal["geojson", "kml", "csv", "ed269"] = Query(
               "geojson", description="geojson: the airspace picture; kml: the same for "
                                      "Google Earth; csv: the live conflicts; ed269: "
                                      "the caller's zones as EUROCAE ED-269"),
           geoid_height_m: float | None = Query(None, description="ed269: the geoid above "
                                                "the ellipsoid, for exact AMSL limits"),
           country: str = Query("ZZZ", min_length=3, max_length=3,
                                description="ed269: ISO 3166 alpha-3"),
           where: Window = Depends(window), caller: str = Depends(party),
           services: Services = Depends(get_services)) -> Response:
    """The airspace picture (own plans in full, zones that apply, counterparts'
    conflicting volumes) as GeoJSON or KML, or the caller's live conflicts as CSV."""
    if format == "csv":
        body = conflicts_csv(services.disclosure.conflicts(caller, "live", where)).encode()
    elif format == "ed269":
        body = orjson.dumps(write_ed269(
            services.store.iter_export(party=caller), country=country,
            geoid_height_m=geoid_height_m, title=f"Zones of {caller}"))
    else:
        picture = services.disclosure.airspace(caller, where)
        body = (airspace_kml(picture, f"detente: what {caller} may see") if format == "kml"
                else orjson.dumps(picture))
    media, ext = EXPORTS[format]
    name = {"csv": "conflicts", "ed269": "zones"}.get(format, "airspace")
    return Response(body, media_type=media, headers={
        "Content-Disposition": f'attachment; filename="{name}.{ext}"'})


@router.get("/conflicts/{conflict_id}", summary="One conflict, with what the caller may see")
def read_conflict(conflict_id: int, caller: str = Depends(party),
                  services: Services = Depends(get_services)) -> dict[str, Any]:
    """The gaps of each volume pair, and the counterpart's conflicting volumes only:
    footprint, altitude band, time window, kind, party name and contact."""
    return services.disclosure.conflict(caller, conflict_id)
