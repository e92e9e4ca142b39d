"""Live positions: batches, a streaming NDJSON feed, and tracks.

Bodies are decoded with msgspec straight into typed reports, so that a batch does not
build a pydantic model per report (the difference was not measured); pydantic models
describe the same shapes in the OpenAPI document.
"""

from __future__ import annotations

import re
import time
from typing import Any

import msgspec
import numpy as np
from fastapi import Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from ..core.instants import InstantError, parse_instant
from ..core.tracking import Fixes
from ..errors import InputError
from ..service.monitor import Monitor
from ..service.tracks import own_track, shared_track
from . import problems
from .app import GatedRouter, Services, _Pool, bearer, get_services, party
from .routes_events import stream_caller

router = GatedRouter(prefix="/v1", tags=["positions"],
                     responses=problems.documented(401, 403, 404, 413, 422))

NDJSON = "application/x-ndjson"
STREAM_BATCH = 2_000  # reports per step of a stream, at most
STREAM_WAIT_S = 0.05  # a step waits at most this long for more reports


class ReportIn(msgspec.Struct, forbid_unknown_fields=True):
    activity: str
    time: str
    lon: float
    lat: float
    alt_m: float
    speed_mps: float | None = None
    heading_deg: float | None = None
    horizontal_accuracy_m: float = 0.0
    vertical_accuracy_m: float = 0.0


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    positions: list[ReportIn]


class PositionIn(BaseModel):
    """One position report (documentation of the wire shape; see ``ReportIn``)."""

    activity: str = Field(description="the id of one of the caller's activities")
    time: str = Field(description="RFC 3339 instant of the fix, with an offset")
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)
    alt_m: float = Field(description="metres above the WGS 84 ellipsoid (W84)")
    speed_mps: float | None = Field(None, ge=0, description="ground speed, with heading_deg")
    heading_deg: float | None = Field(None, ge=0, lt=360,
                                      description="track over the ground, degrees true")
    horizontal_accuracy_m: float = Field(0.0, ge=0)
    vertical_accuracy_m: float = Field(0.0, ge=0)


def _batch_schema() -> dict[str, Any]:
    return {"type": "object", "required": ["positions"], "additionalProperties": False,
            "properties": {"positions": {"type": "array", "maxItems": 10_000,
                                         "items": PositionIn.model_json_schema()}}}


class Accepted(BaseModel):
    accepted: int = Field(description="reports stored")
    events: int = Field(description="events the reports set off")


_PATH = re.compile(r"\$\.positions\[(\d+)\](?:\.(\w+))?")
_WHERE = re.compile(r"\s*-\s*at\s*`([^`]*)`\s*$")


def _decode_error(exc: msgspec.DecodeError) -> InputError:
    """msgspec's message (``Expected `float`, got `str` - at `$.positions[3].lat```) as
    an error naming the report and field."""
    text = str(exc)
    where = _WHERE.search(text)
    reason = _WHERE.sub("", text) if where else text
    m = _PATH.fullmatch(where.group(1)) if where else None
    if m is None:
        return InputError(reason, item="positions", field="positions" if where else None)
    k, name = int(m.group(1)), m.group(2)
    missing = re.search(r"missing required field `(\w+)`", reason)
    name = name or (missing.group(1) if missing else None)
    return InputError(reason, item=f"position {k}",
                      field=f"positions[{k}].{name}" if name else f"positions[{k}]")


def columns(reports: list[ReportIn]) -> tuple[list[str], Fixes]:
    """Reports as columns; times parsed once per distinct text."""
    n = len(reports)
    times: dict[str, int] = {}
    t = np.empty(n, dtype=np.int64)
    for k, r in enumerate(reports):
        ns = times.get(r.time)
        if ns is None:
            try:
                ns = times[r.time] = parse_instant(r.time)
            except InstantError as exc:
                raise InputError(str(exc), item=f"position {k}",
                                 field=f"positions[{k}].time") from None
        t[k] = ns
    nan = float("nan")
    return [r.activity for r in reports], Fixes(
        t=t,
        lon=np.fromiter((r.lon for r in reports), np.float64, n),
        lat=np.fromiter((r.lat for r in reports), np.float64, n),
        alt=np.fromiter((r.alt_m for r in reports), np.float64, n),
        hacc=np.fromiter((r.horizontal_accuracy_m for r in reports), np.float64, n),
        vacc=np.fromiter((r.vertical_accuracy_m for r in reports), np.float64, n),
        speed=np.fromiter((nan if r.speed_mps is None else r.speed_mps for r in reports),
                          np.float64, n),
        heading=np.fromiter((nan if r.heading_deg is None else r.heading_deg
                             for r in reports), np.float64, n))


async def body_bytes(request: Request) -> bytes:
    return await request.body()


def monitor_of(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    return monitor


@router.post("/positions", summary="Report positions (a batch)", response_model=Accepted,
             openapi_extra={"requestBody": {"required": True, "content": {
                 "application/json": {"schema": _batch_schema()}}}})
def post_positions(raw: bytes = Depends(body_bytes), caller: str = Depends(party),
                   services: Services = Depends(get_services),
                   monitor: Monitor = Depends(monitor_of)) -> Accepted:
    """Reports of the caller's activities, checked against their declared volumes, the
    red lines that apply to the caller and other parties' live positions; all are
    stored or none (an error names the first bad report and field)."""
    try:
        batch = msgspec.json.decode(raw, type=BatchIn)
    except msgspec.DecodeError as exc:
        raise _decode_error(exc) from None
    activity, fixes = columns(batch.positions)
    result = monitor.ingest(services.store, caller, activity, fixes)
    return Accepted(accepted=result.accepted, events=result.events)


_LINE_DECODER = msgspec.json.Decoder(ReportIn)


@router.post("/positions/stream", summary="Report positions (a streaming NDJSON feed)",
             response_model=Accepted,
             openapi_extra={"requestBody": {"required": True, "content": {
                 NDJSON: {"schema": PositionIn.model_json_schema()}}}})
async def stream_positions(request: Request,
                           creds: HTTPAuthorizationCredentials | None = Depends(bearer)
                           ) -> Accepted:
    """One report per line, sent as they happen (chunked). Reports are checked and
    stored in steps of up to 2,000 or 50 ms, whichever comes first, each step all or
    nothing. A bad line ends the feed with 422 naming the line; the steps before it
    are stored, and the error says how many reports that was."""
    pool: _Pool = request.app.state.pool
    caller = await stream_caller(pool, creds)
    monitor: Monitor = request.app.state.monitor
    accepted = events = lines = 0
    pending: list[ReportIn] = []
    first_line = 1
    tail = b""
    started = time.monotonic()

    async def flush() -> None:
        nonlocal accepted, events, pending, first_line
        if not pending:
            return
        reports, pending = pending, []
        services = await pool.acquire()
        try:
            activity, fixes = columns(reports)
            result = await run_in_threadpool(monitor.ingest, services.store, caller,
                                             activity, fixes)
        except InputError as exc:
            raise _as_line(exc, first_line, accepted) from None
        finally:
            pool.release(services)
        accepted += result.accepted
        events += result.events
        first_line = lines + 1

    async for chunk in request.stream():
        tail += chunk
        *complete, tail = tail.split(b"\n")
        for line in complete:
            lines += 1
            if line.strip():
                pending.append(_decode_line(line, lines, accepted))
            elif not pending:
                first_line = lines + 1
        if len(pending) >= STREAM_BATCH or time.monotonic() - started >= STREAM_WAIT_S:
            await flush()
            started = time.monotonic()
    if tail.strip():
        lines += 1
        pending.append(_decode_line(tail, lines, accepted))
    await flush()
    return Accepted(accepted=accepted, events=events)


def _decode_line(line: bytes, number: int, accepted: int) -> ReportIn:
    try:
        report: ReportIn = _LINE_DECODER.decode(line)
        return report
    except msgspec.DecodeError as exc:
        reason = _WHERE.sub("", str(exc))
        field = _WHERE.search(str(exc))
        name = field.group(1).removeprefix("$.") if field and field.group(1) != "$" else None
        raise InputError(f"{reason} ({accepted:,} reports before it were stored)",
                         item=f"line {number}", field=name) from None


def _as_line(exc: InputError, first_line: int, accepted: int) -> InputError:
    """An error about report k of a step, as one about its line of the feed (blank
    lines are not reports, so this names the k-th report after the step's first line:
    exact for feeds without blank lines)."""
    m = re.fullmatch(r"position (\d+)", exc.item or "")
    line = first_line + int(m.group(1)) if m else None
    field = (exc.field or "").partition(".")[2] or None
    return InputError(f"{exc.reason} ({accepted:,} reports before it were stored)",
                      item=f"line {line}" if line else exc.item, field=field)


@router.get("/positions/latest", summary="Live positions the caller may see, as GeoJSON")
def latest_positions(caller: str = Depends(party), services: Services = Depends(get_services),
                     monitor: Monitor = Depends(monitor_of)) -> dict[str, Any]:
    """The last position of each of the caller's reporting activities (``role``
    ``own-position``, with its ``status``), and of each other party's activity whose
    track is shared with the caller now (``counterpart-position``, with the
    ``reason`` and the ``track`` link): what the web map's live layer shows."""
    return {"type": "FeatureCollection",
            "features": monitor.latest(services.store, caller)}


@router.get("/activities/{activity_id:path}/track", summary="An activity's track")
def activity_track(activity_id: str, since: str | None = Query(None, description=(
                       "RFC 3339: positions at or after this instant")),
                   limit: int = Query(1_000, ge=1, le=10_000,
                                      description="the newest this many positions"),
                   caller: str = Depends(party), services: Services = Depends(get_services),
                   monitor: Monitor = Depends(monitor_of)) -> dict[str, Any]:
    """One of the caller's activities: its last positions (oldest first) and its
    monitoring status. Another party's track is read through ``/v1/tracks/{id}``, the
    link its events carry."""
    return own_track(services.store, monitor, caller, activity_id, _since(since), limit)


@router.get("/tracks/{track_id}", summary="Another party's track, while shared")
def read_shared_track(track_id: int = Path(ge=1, le=2**63 - 1),
                      since: str | None = Query(None),
                      limit: int = Query(1_000, ge=1, le=10_000),
                      caller: str = Depends(party), services: Services = Depends(get_services),
                      monitor: Monitor = Depends(monitor_of)) -> dict[str, Any]:
    """The positions of another party's activity since a red-line crossing, proximity
    or contingency that concerns the caller began, and only while it lasts: after
    that, and for anyone else, 404."""
    return shared_track(services.store, monitor, caller, track_id, _since(since), limit)


def _since(text: str | None) -> int:
    if text is None:
        return -(2**62)
    try:
        return parse_instant(text)
    except InstantError as exc:
        raise InputError(str(exc), item="query", field="since") from None
