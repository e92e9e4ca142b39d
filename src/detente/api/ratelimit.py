"""At most so many requests a second per API token: one party cannot crowd out the
others on a service they share (a runaway script, a flood meant to deny).

A token bucket per ``Authorization`` header: it refills at ``per_s`` a second up to
``burst``, each request takes one, and a request that finds it empty answers 429 with
``Retry-After``, in the API's problem shape (the F3548 one under ``/dss/``). Requests
without credentials are not counted here: they answer 401 before doing any work.
Buckets live in this process: N server processes allow N times the rate.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from . import problems

MAX_BUCKETS = 10_000  # tokens remembered, least recently used dropped first


class RateLimit:
    """ASGI middleware; ``per_s`` <= 0 turns it off."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], per_s: float,
                 burst: float):
        self.app = app
        self.per_s = per_s
        self.burst = max(burst, 1.0)
        self.buckets: OrderedDict[bytes, list[float]] = OrderedDict()  # [left, when]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.per_s <= 0:
            await self.app(scope, receive, send)
            return
        credentials = next((v for k, v in scope.get("headers") or () if k == b"authorization"),
                           None)
        if credentials is None:
            await self.app(scope, receive, send)
            return
        wait = self._take(hashlib.blake2b(credentials, digest_size=16).digest())
        if wait > 0:
            await self._refuse(scope, wait)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _take(self, key: bytes) -> float:
        """Take one request from the key's bucket: 0, or the seconds until one is left.
        (The event loop runs one at a time: no lock.)"""
        now = time.monotonic()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = [self.burst, now]
            if len(self.buckets) > MAX_BUCKETS:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
            bucket[0] = min(self.burst, bucket[0] + (now - bucket[1]) * self.per_s)
            bucket[1] = now
        if bucket[0] < 1.0:
            return (1.0 - bucket[0]) / self.per_s
        bucket[0] -= 1.0
        return 0.0

    def _refuse(self, scope: Scope, wait: float) -> JSONResponse:
        detail = (f"more than {self.per_s:g} requests a second with this token; try again "
                  f"in {wait:.2f} s")
        retry = {"Retry-After": str(max(1, math.ceil(wait)))}
        if scope.get("path", "").startswith(problems.DSS_PREFIX):
            return JSONResponse({"message": detail}, status_code=429, headers=retry)
        response = problems.problem(429, "too-many-requests", "Too many requests", detail)
        response.headers.update(retry)
        return response
