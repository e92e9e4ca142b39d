"""The caller's events: a live Server-Sent Events stream, or pages of JSON."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from ..errors import Forbidden, InputError
from . import problems
from .app import GatedRouter, Services, _Pool, bearer, get_services, party

router = GatedRouter(prefix="/v1", tags=["events"],
                     responses=problems.documented(401, 403, 422))


async def stream_caller(pool: _Pool, creds: HTTPAuthorizationCredentials | None) -> str:
    """Authenticate without holding a connection for the stream's lifetime."""
    services = await pool.acquire()
    try:
        who = await run_in_threadpool(services.parties.authenticate,
                                      creds.credentials if creds else None)
    finally:
        pool.release(services)
    if who.party is None:
        raise Forbidden("the admin token has no events; use a party's token")
    return who.party


@router.get("/events", summary="The caller's events (SSE or JSON)", response_model=None,
            responses={200: {"content": {"text/event-stream": {}, "application/json": {}},
                             "description": "Server-Sent Events, or a JSON list"}})
async def events(request: Request,
           after: int | None = Query(None, ge=0, lt=2**63,
                                     description="events after this id (default: from "
                                                 "Last-Event-ID, else from the start)"),
           limit: int = Query(100, ge=1, le=1000, description="JSON: at most this many"),
           last_event_id: str | None = Header(None),
           accept: str | None = Header(None),
           creds: HTTPAuthorizationCredentials | None = Depends(bearer),
           ) -> StreamingResponse | JSONResponse:
    """With ``Accept: text/event-stream``: a live stream (``id:`` is the event id,
    ``event:`` its type, ``data:`` its JSON); reconnecting with ``Last-Event-ID``
    resumes exactly after it. Otherwise: a JSON list of up to ``limit`` events after
    ``after``, to poll. Each event goes only to the party it concerns."""
    pool: _Pool = request.app.state.pool
    caller = await stream_caller(pool, creds)
    start = after
    if start is None and last_event_id:
        if not last_event_id.isdigit() or int(last_event_id) >= 2**63:
            raise InputError("Last-Event-ID is an event id (a number)", field="Last-Event-ID")
        start = int(last_event_id)
    start = start or 0
    hub = request.app.state.hub
    if accept is not None and "text/event-stream" in accept and hub is not None:
        return StreamingResponse(hub.stream(caller, start), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})
    services = await pool.acquire()
    try:
        page: list[dict[str, Any]] = await run_in_threadpool(services.outbox.events, caller,
                                                             start, limit)
    finally:
        pool.release(services)
    return JSONResponse(page)


class Newest(BaseModel):
    id: int = Field(description="the id of the caller's newest event (0: none yet)")


@router.get("/events/newest", summary="Where the caller's events stand now",
            response_model=Newest)
def newest_event(caller: str = Depends(party),
                 services: Services = Depends(get_services)) -> Newest:
    """The id of the caller's newest event. To follow only what happens from now on
    (a screen that loads the current state itself), read it before loading that state,
    then stream with it as ``Last-Event-ID``: nothing after it is missed, and the
    history before it is not replayed."""
    return Newest(id=services.outbox.newest_event(caller))
