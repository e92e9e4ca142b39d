"""The floor of the F3548 workload: the same requests, answered with no DSS work.

A FastAPI app served by uvicorn as ``detente serve`` serves detente's: the same route
shapes and detente's own dependencies for the token (verified once, then remembered)
and the raw body, which is parsed as JSON, and a created or updated reference of the
same shape answered. No store, no key check, no subscriptions, no audit. What it serves under the
benchmark's load is the most any F3548 endpoint on this stack could serve on this
machine, so it bounds what the workload's target asks of detente.

``handler`` picks the route kind: ``sync`` (a plain function on a worker thread, as
detente's DSS routes are, since the store blocks) or ``async`` (on the event loop).
Run by :func:`bench.dss_load.floor_workload` as ``uvicorn --factory
bench.floor_app:create``; settings come in through the environment, as uvicorn
factories take none.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import orjson
from fastapi import Depends, FastAPI
from fastapi.responses import Response

from detente.api.dss_auth import Caller, DssAuth
from detente.api.routes_dss import body_bytes, caller

KEY_ENV = "DETENTE_FLOOR_KEY"  # PEM file of the tokens' public key
AUDIENCE_ENV = "DETENTE_FLOOR_AUDIENCE"
HANDLER_ENV = "DETENTE_FLOOR_HANDLER"  # sync or async
BASE = "/dss/v1/operational_intent_references"


def create() -> FastAPI:
    with open(os.environ[KEY_ENV]) as f:
        pem = f.read()
    handler = os.environ.get(HANDLER_ENV, "sync")
    app = FastAPI()
    app.state.dss_auth = DssAuth((pem,), (os.environ[AUDIENCE_ENV],))

    def answer(raw: bytes, entity_id: str, who: Caller, status: int) -> Response:
        req: dict[str, Any] = orjson.loads(raw)
        extent = req["extents"][0]
        ref = {"id": entity_id, "manager": who.manager, "uss_availability": "Unknown",
               "version": 1, "state": req["state"], "ovn": str(uuid.uuid4()),
               "time_start": extent["time_start"], "time_end": extent["time_end"],
               "uss_base_url": req["uss_base_url"],
               "subscription_id": req.get("subscription_id") or str(uuid.uuid4())}
        return Response(orjson.dumps({"operational_intent_reference": ref, "subscribers": []}),
                        status_code=status, media_type="application/json")

    if handler == "sync":
        @app.put(BASE + "/{entity_id}", status_code=201)
        def create_sync(entity_id: str, raw: bytes = Depends(body_bytes),
                        who: Caller = Depends(caller)) -> Response:
            return answer(raw, entity_id, who, 201)

        @app.put(BASE + "/{entity_id}/{ovn}")
        def update_sync(entity_id: str, ovn: str, raw: bytes = Depends(body_bytes),
                        who: Caller = Depends(caller)) -> Response:
            return answer(raw, entity_id, who, 200)
    else:
        @app.put(BASE + "/{entity_id}", status_code=201)
        async def create_async(entity_id: str, raw: bytes = Depends(body_bytes),
                               who: Caller = Depends(caller)) -> Response:
            return answer(raw, entity_id, who, 201)

        @app.put(BASE + "/{entity_id}/{ovn}")
        async def update_async(entity_id: str, ovn: str, raw: bytes = Depends(body_bytes),
                               who: Caller = Depends(caller)) -> Response:
            return answer(raw, entity_id, who, 200)

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"floor": handler}

    return app
