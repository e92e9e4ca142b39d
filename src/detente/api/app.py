"""The HTTP API: an application factory over one database.

Settings are passed in (nothing is read at import time). Each request borrows a store
connection from a pool for its duration; writes serialise on the database's write
lock, exactly as two CLI processes would. New activities instead queue for the
batcher, which submits those arriving together as one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.routing import Match

from ..core.candidates import Parallel
from ..errors import Forbidden, InputError
from ..service import Deconfliction
from ..service.batching import Batcher
from ..service.deconfliction import utc_now
from ..service.disclosure import Disclosure
from ..service.dss import Dss
from ..service.hotline import Hotline
from ..service.incidents import Incidents
from ..service.journal import Bus
from ..service.lifecycle import Lifecycle
from ..service.monitor import Monitor, MonitorSettings
from ..service.outbox import Destinations, Outbox
from ..service.parties import Parties, Principal
from ..store import open_store
from ..web import mount as mount_web
from . import problems
from .background import Dispatcher, Hub, Retry, Sweeper, Ticker, run_all
from .dss_auth import DssAuth
from .ratelimit import RateLimit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class Settings:
    db: str
    max_body_bytes: int = 5_000_000
    parallel: Parallel = map
    workers: int = 8  # requests served at once (the others queue): `serve` gives 4 a core
    background: bool = True  # deliver webhooks, feed event streams, sweep deadlines
    retry: Retry = field(default_factory=Retry)
    poll_s: float = 0.5  # how often workers look for events committed by other processes
    sweep_s: float = 1.0
    webhook_timeout_s: float = 10.0
    destinations: Destinations = field(default_factory=Destinations)  # where webhooks go
    rate_per_s: float = 1000.0  # requests a second per token (0: no limit; ratelimit.py)
    rate_burst: float = 0.0  # how many at once before that (0: a second's worth)
    tile_url: str | None = None  # the web map's basemap ({z}/{x}/{y}); None: a graticule
    dss: DssAuth | None = None  # how to verify F3548 tokens; None: /dss answers 401
    monitor: MonitorSettings = field(default_factory=MonitorSettings)  # live positions
    tick_s: float = 1.0  # how often the position monitor looks at the clock


class Services:
    """The use cases over one store connection."""

    def __init__(self, settings: Settings, bus: Bus):
        self.store = open_store(settings.db)
        self.deconfliction = Deconfliction(self.store, parallel=settings.parallel, bus=bus)
        self.disclosure = Disclosure(self.store)
        self.parties = Parties(self.store)
        self.lifecycle = Lifecycle(self.store, utc_now, bus)
        self.hotline = Hotline(self.store, utc_now, bus)
        self.incidents = Incidents(self.store, utc_now, bus)
        self.outbox = Outbox(self.store, utc_now, bus, settings.destinations)
        self.dss = Dss(self.store, self.deconfliction, utc_now, bus)


class _Pool:
    """Store connections lent to one request at a time (FastAPI may run a request's
    dependencies and its endpoint on different threads, so per-thread is not enough).

    At most ``workers`` requests work at once; the rest wait on the event loop, holding
    no thread. (Waiting inside the thread pool deadlocked once more requests waited
    than it has threads: the releases need a thread too. Activity submissions do not
    work here but in their :class:`Lane`: sixteen threads all running detection
    starved the one holding the write lock of the GIL, p50 657 ms at 16 concurrent
    overlapping submissions against 17 ms one at a time.)"""

    def __init__(self, settings: Settings, bus: Bus):
        self.settings = settings
        self.bus = bus
        self.idle: queue.SimpleQueue[Services] = queue.SimpleQueue()
        self._gate: asyncio.Semaphore | None = None

    @property
    def gate(self) -> asyncio.Semaphore:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.settings.workers)
        return self._gate

    async def acquire(self) -> Services:
        await self.gate.acquire()
        try:
            return self.idle.get_nowait()
        except queue.Empty:
            return Services(self.settings, self.bus)

    def release(self, services: Services) -> None:
        self.idle.put(services)
        self.gate.release()


class Lane:
    """The batcher new activities go through, on a connection of its own (made at the
    first one): a create waits for its turn holding no thread and no pooled
    connection, so many can wait together and go through as one transaction."""

    def __init__(self, settings: Settings, bus: Bus):
        self.settings = settings
        self.bus = bus
        self._guard = threading.Lock()
        self.made: tuple[Services, Batcher] | None = None

    def get(self) -> tuple[Services, Batcher]:
        with self._guard:
            if self.made is None:
                services = Services(self.settings, self.bus)
                self.made = services, Batcher(services.deconfliction)
            return self.made

    def close(self) -> None:
        with self._guard:
            made, self.made = self.made, None
        if made is not None:
            made[1].close()
            made[0].store.close()


_NUL = ("the request holds a NUL character (\\u0000 or %00), which no field accepts "
        "(PostgreSQL text cannot store it)")


class LimitBody:
    """ASGI middleware: a body over the limit answers 413 before anything reads it; a
    NUL character anywhere in the request answers 422 on either backend."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await problems.problem(413, "too-large", "Request body too large",
                                   f"the request body is over the limit of "
                                   f"{self.limit:,} bytes")(scope, receive, send)
            return
        if b"%00" in scope.get("raw_path", b"") or b"%00" in scope.get("query_string", b""):
            await problems.problem(422, InputError.kind, "Invalid input", _NUL)(
                scope, receive, send)
            return
        seen = 0
        tail = b""

        async def counted() -> Message:
            nonlocal seen, tail
            message = await receive()
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.limit:
                raise problems.BodyTooLarge(self.limit)
            if b"\\u0000" in tail + body:
                raise InputError(_NUL)
            tail = body[-5:]
            return message

        await self.app(scope, counted, send)


bearer = HTTPBearer(auto_error=False, description="a party's or the admin's API token")


class GatedRouter(APIRouter):
    """Routes under the ``prefix`` they are declared with, answering "no match" at once
    for any other path.

    FastAPI (0.16x) keeps each included router as a branch and tries a request on every
    route of each branch in turn: an F3548 write, behind the seventy-odd routes under
    /v1, took 287 us to find its route (23 us gated, measured in process).
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            return Match.NONE, {}
        return super().matches(scope)


def create_app(settings: Settings) -> FastAPI:
    from . import (
        routes_admin,
        routes_conflicts,
        routes_dialogue,
        routes_dss,
        routes_events,
        routes_imports,
        routes_plans,
        routes_positions,
    )

    bus = Bus()
    monitor = Monitor(settings.monitor, bus=bus)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        workers: list[Any] = []
        if settings.background:
            app.state.hub = Hub(settings.db, bus, settings.poll_s)
            workers = [Dispatcher(settings.db, bus, settings.retry, settings.poll_s,
                                  settings.webhook_timeout_s, settings.destinations),
                       app.state.hub,
                       Sweeper(settings.db, bus, settings.sweep_s),
                       Ticker(settings.db, bus, monitor, settings.tick_s)]
        task = asyncio.create_task(run_all(workers))
        await asyncio.to_thread(app.state.lane.get)  # (not at the first create's expense)
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for w in workers:
                w.close()
            await asyncio.to_thread(app.state.lane.close)

    app = FastAPI(
        title="detente",
        version="1",
        summary="Open multi-party deconfliction: declare 4D activities and red lines, "
                "learn exactly where they conflict with other parties'.",
        description="Every request carries a bearer token. A party sees its own "
                    "activities and zones in full, and of other parties only what "
                    "conflicts with its own; anything else answers 404. Errors are RFC "
                    "9457 problem details.",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.pool = _Pool(settings, bus)
    app.state.lane = Lane(settings, bus)
    app.state.hub = None
    app.state.dss_auth = settings.dss
    app.state.monitor = monitor
    problems.install(app)
    app.add_middleware(LimitBody, limit=settings.max_body_bytes)
    app.add_middleware(RateLimit, per_s=settings.rate_per_s,
                       burst=settings.rate_burst or settings.rate_per_s)
    # (positions first: its /activities/{id}/track must match before /activities/{id})
    for module in (routes_positions, routes_plans, routes_imports, routes_conflicts,
                   routes_dialogue, routes_events, routes_admin, routes_dss):
        app.include_router(module.router)

    page = mount_web(app, settings.tile_url)

    @app.get("/", include_in_schema=False)
    def root(request: Request) -> Any:
        """The web map for a browser; a pointer to the API for anything else."""
        if "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(page)
        return {"service": "detente", "api": "/v1", "openapi": "/openapi.json",
                "docs": "/docs", "web": "/ (with Accept: text/html)"}

    return app


async def get_services(request: Request) -> AsyncIterator[Services]:
    """This request's use cases, on a connection no other request holds meanwhile."""
    pool: _Pool = request.app.state.pool
    services = await pool.acquire()
    try:
        yield services
    finally:
        pool.release(services)


async def principal(services: Services = Depends(get_services),
                    creds: HTTPAuthorizationCredentials | None = Depends(bearer)
                    ) -> Principal:
    """Who calls. Async on purpose: one indexed read is cheaper on the event loop than
    a hand-off to a worker thread (which may wait a GIL switch interval under load)."""
    token = creds.credentials if creds is not None else None
    return services.parties.authenticate(token)


async def party(who: Principal = Depends(principal)) -> str:
    """The calling party's name (the admin token declares no plans)."""
    if who.party is None:
        raise Forbidden("the admin token manages parties and minima; use a party's token")
    return who.party


async def lone_party(request: Request,
                     creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
    """The calling party, for a request that then waits holding no pooled connection
    (the connection is lent for the token lookup only)."""
    pool: _Pool = request.app.state.pool
    services = await pool.acquire()
    try:
        who = services.parties.authenticate(creds.credentials if creds else None)
    finally:
        pool.release(services)
    return await party(who)


async def admin(who: Principal = Depends(principal)) -> Principal:
    if not who.is_admin:
        raise Forbidden("this needs the admin token")
    return who
