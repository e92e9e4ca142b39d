"""The caller's own plans: activities and red-line zones."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from fastapi import Depends, Header, Query, Request, Response

from ..core.scenario import Scenario, read_scenario
from ..errors import InputError, PreconditionRequired
from ..service.batching import Pending
from ..service.deconfliction import Submission, SubmitResult
from . import problems
from .app import GatedRouter, Lane, Services, get_services, lone_party, party
from .schemas import ActivityIn, ActivityReplace, StateIn, VolumeIn, ZoneIn

router = GatedRouter(prefix="/v1", tags=["plans"],
                     responses=problems.documented(401, 403, 404, 409, 412, 413, 422, 428))
_ITEM = re.compile(r"feature '(.*)'")


def _document(caller: str, ext_id: str, volumes: list[VolumeIn], props: dict[str, Any]
              ) -> dict[str, Any]:
    """The body's volumes as a scenario document, for the same reader as files."""
    features = []
    for k, v in enumerate(volumes):
        p: dict[str, Any] = {"party": caller, "activity": ext_id,
                             "alt_lower_m": v.alt_lower_m, "alt_upper_m": v.alt_upper_m,
                             "time_start": v.time_start, "time_end": v.time_end, **props}
        if v.radius_m is not None:
            p["radius_m"] = v.radius_m
        features.append({"type": "Feature", "id": v.id if v.id is not None else k,
                         "geometry": v.geometry.model_dump(), "properties": p})
    return {"type": "FeatureCollection", "features": features}


def _misread(exc: InputError, volumes: list[VolumeIn]) -> InputError:
    """The reader's error in the body's terms: which volume, which field."""
    m = _ITEM.fullmatch(exc.item or "")
    where = {str(v.id if v.id is not None else k): k for k, v in enumerate(volumes)}
    pos = where.get(m.group(1)) if m else None
    if pos is None:
        return exc
    field = (exc.field or "").removeprefix("properties.")
    return InputError(exc.reason, item=f"volume {pos}",
                      field=f"volumes[{pos}].{field}" if field else f"volumes[{pos}]")


def _scenario(caller: str, ext_id: str, volumes: list[VolumeIn], props: dict[str, Any],
              services: Services) -> Any:
    try:
        return read_scenario(_document(caller, ext_id, volumes, props), default_party=caller,
                             parallel=services.deconfliction.parallel)
    except InputError as exc:
        raise _misread(exc, volumes) from None


def _result(caller: str, result: SubmitResult, services: Services, ext_id: str,
            zone: bool, sub: Submission | None = None) -> dict[str, Any]:
    row = result.owners.get((caller, ext_id))
    if sub is not None and row is not None:  # written just now, as submitted
        notes, contact = (sub.details or {}).get((caller, ext_id), (None, None))
        out = services.disclosure.as_written(row, sub.scenario.activities, notes, contact)
    else:
        out = services.disclosure.own(caller, ext_id, zone=zone)
    return {"activity" if not zone else "zone": out,
            "conflicts": services.disclosure.caused(caller, result.conflicts, result.rows),
            "zones": result.violations,
            "resolved_conflicts": result.resolved}


def _submission(caller: str, body: ActivityIn, scenario: Scenario, version: int | None
                ) -> Submission:
    """Create (``version`` None: the id must be free) or replace (the version read)."""
    key = (caller, body.id)
    return Submission(scenario, caller, body.override, versions={key: version},
                      details={key: (body.notes, body.contact)})


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if future.done():  # the caller went away
        return
    if isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)


def _version(if_match: str | None, body_version: int | None) -> int:
    if if_match is not None:
        text = if_match.strip().removeprefix("W/").strip('"')
        if not text.isdigit():
            raise InputError("If-Match must be the version, e.g. \"3\"", field="If-Match")
        return int(text)
    if body_version is not None:
        return body_version
    raise PreconditionRequired("replacing needs the version you read: send If-Match: "
                               "\"<version>\" or a 'version' field")


@router.post("/activities", status_code=201, summary="Declare an activity")
async def create_activity(body: ActivityIn, request: Request, response: Response,
                          caller: str = Depends(lone_party)) -> dict[str, Any]:
    """Store a new activity; the response lists the conflicts and zone entries it
    caused. An id in use answers 409 (replace it with PUT)."""
    # Through the batcher: new activities arriving together are stored in one
    # transaction, each with the conflicts it caused in turn.
    lane: Lane = request.app.state.lane
    made = lane.made
    if made is None:
        made = await asyncio.to_thread(lane.get)
    services, batcher = made
    loop = asyncio.get_running_loop()
    future: asyncio.Future[dict[str, Any]] = loop.create_future()

    def done(value: Any) -> None:
        loop.call_soon_threadsafe(_settle, future, value)

    batcher.put(Pending(
        _document(caller, body.id, body.volumes, {"kind": body.kind}),
        submission=lambda scenario: _submission(caller, body, scenario, None),
        finish=lambda sub, result: _result(caller, result, services, body.id, zone=False,
                                           sub=sub),
        done=done, misread=lambda exc: _misread(exc, body.volumes)))
    out = await future
    response.headers["ETag"] = f'"{out["activity"]["version"]}"'
    response.headers["Location"] = f"/v1/activities/{body.id}"
    return out


_LIMIT = Query(None, ge=1, le=10_000, description="at most this many (a page)")


def _listing(caller: str, zone: bool, after: str | None, limit: int | None,
             request: Request, response: Response, services: Services
             ) -> list[dict[str, Any]]:
    page, more = services.disclosure.own_list(caller, zone=zone, after=after, limit=limit)
    if more:
        following = request.url.include_query_params(after=page[-1]["id"])
        response.headers["Link"] = f'<{following}>; rel="next"'
    return page


@router.get("/activities", summary="The caller's activities")
def list_activities(limit: int | None = _LIMIT,
                    after: str | None = Query(None, description="only those declared after "
                                                                "this one (its id)"),
                    *, request: Request, response: Response, caller: str = Depends(party),
                    services: Services = Depends(get_services)) -> list[dict[str, Any]]:
    """Summaries, in the order they were first declared. With ``limit``, a page: when
    more follow, the ``Link`` header names the next page (``rel="next"``: ``after`` the
    page's last id)."""
    return _listing(caller, False, after, limit, request, response, services)


@router.get("/activities/{activity_id:path}", summary="One of the caller's activities")
def read_activity(activity_id: str, response: Response, caller: str = Depends(party),
                  services: Services = Depends(get_services)) -> dict[str, Any]:
    out = services.disclosure.own(caller, activity_id, zone=False)
    response.headers["ETag"] = f'"{out["version"]}"'
    return out


@router.put("/activities/{activity_id:path}", summary="Replace an activity")
def replace_activity(activity_id: str, body: ActivityReplace, response: Response,
                     if_match: str | None = Header(None),
                     caller: str = Depends(party),
                     services: Services = Depends(get_services)) -> dict[str, Any]:
    """Replace all its volumes. Needs the version read (If-Match or ``version``): a
    stale one answers 412. Conflicts that no longer hold are resolved."""
    if body.id != activity_id:
        raise InputError(f"the body's id '{body.id}' is not the path's '{activity_id}'",
                         field="id")
    scenario = _scenario(caller, body.id, body.volumes, {"kind": body.kind}, services)
    sub = _submission(caller, body, scenario, _version(if_match, body.version))
    result = services.deconfliction.submit(sub.scenario, override=sub.override, actor=caller,
                                           versions=sub.versions, details=sub.details)
    out = _result(caller, result, services, body.id, zone=False)
    response.headers["ETag"] = f'"{out["activity"]["version"]}"'
    return out


@router.post("/activities/{activity_id:path}/state", summary="Mark an activity active or ended")
def set_state(activity_id: str, body: StateIn, caller: str = Depends(party),
              services: Services = Depends(get_services)) -> dict[str, Any]:
    """planned -> active -> ended. An ended activity takes no further part in detection."""
    version = services.deconfliction.set_state(caller, activity_id, body.state,
                                                 actor=caller)
    return {"id": activity_id, "state": body.state, "version": version}


@router.delete("/activities/{activity_id:path}", summary="Cancel an activity")
def cancel_activity(activity_id: str, caller: str = Depends(party),
                    services: Services = Depends(get_services)) -> dict[str, Any]:
    """It no longer conflicts; its open conflicts are resolved."""
    resolved = services.deconfliction.cancel(caller, activity_id, actor=caller)
    return {"cancelled": activity_id, "resolved_conflicts": resolved}


@router.post("/zones", status_code=201, summary="Declare a red-line zone")
def create_zone(body: ZoneIn, response: Response, caller: str = Depends(party),
                services: Services = Depends(get_services)) -> dict[str, Any]:
    props: dict[str, Any] = {"zone": True, "restriction": body.restriction}
    if body.applies_to is not None:
        props["applies_to"] = body.applies_to
    scen = _scenario(caller, body.id, body.volumes, props, services)
    result = services.deconfliction.submit(scen, versions={(caller, body.id): None},
                                           actor=caller)
    out = _result(caller, result, services, body.id, zone=True)
    response.headers["Location"] = f"/v1/zones/{body.id}"
    return out


@router.get("/zones", summary="The caller's zones")
def list_zones(limit: int | None = _LIMIT,
               after: str | None = Query(None, description="only those declared after "
                                                           "this one (its id)"),
               *, request: Request, response: Response, caller: str = Depends(party),
               services: Services = Depends(get_services)) -> list[dict[str, Any]]:
    """Summaries, in the order they were first declared; ``limit`` and ``after`` page
    them as for activities."""
    return _listing(caller, True, after, limit, request, response, services)


@router.get("/zones/{zone_id:path}", summary="One of the caller's zones")
def read_zone(zone_id: str, caller: str = Depends(party),
              services: Services = Depends(get_services)) -> dict[str, Any]:
    return services.disclosure.own(caller, zone_id, zone=True)


@router.delete("/zones/{zone_id:path}", summary="Withdraw a zone")
def delete_zone(zone_id: str, caller: str = Depends(party),
                services: Services = Depends(get_services)) -> dict[str, Any]:
    services.deconfliction.delete_zone(caller, zone_id, actor=caller)
    return {"withdrawn": zone_id}
