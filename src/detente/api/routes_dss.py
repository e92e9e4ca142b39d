"""The ASTM F3548-21 DSS API under ``/dss/v1``, as the standard's OpenAPI (``utm.yaml``)
defines it: paths, bodies, status codes, ``ErrorResponse`` bodies and scopes per endpoint.

Bodies are read raw and parsed with the standard's types, so a malformed one answers
the standard's 400, not FastAPI's 422.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel
from uas_standards.astm.f3548.v21 import api as f3548

from ..errors import InputError, NotFound, Unauthorized
from ..formats import f3548 as wire
from ..service.dss import AA, CM, CMSA, CP, SC, Changed, IntentPut, SubscriptionPut, party_of
from .app import GatedRouter, Services, bearer, get_services
from .dss_auth import NO_KEYS, Caller, DssAuth
from .problems import FastJSON


class ErrorResponse(BaseModel):
    """F3548's error body (a 409 for a short key adds the missing references)."""

    message: str


_CODES = {400: "Bad request", 401: "Missing or invalid access token",
          403: "The token lacks the scope", 404: "Not found", 409: "Conflict (version, OVN "
          "or key)", 412: "The USS is marked Down", 413: "Area too large"}
router = GatedRouter(prefix="/dss/v1", tags=["ASTM F3548 DSS"], responses={
    code: {"model": ErrorResponse, "description": text} for code, text in _CODES.items()})
ANY_SCOPE = (SC, CM, CP, CMSA, AA)


async def caller(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)
                 ) -> Caller:
    auth: DssAuth | None = request.app.state.dss_auth
    if auth is None:
        raise Unauthorized(NO_KEYS)
    token = creds.credentials if creds is not None else None
    # A token seen before is answered here; a new one is verified on a thread (an RSA
    # check, perhaps a fetch of the authority's keys: not on the event loop).
    known = auth.remembered(token)
    return known if known is not None else await asyncio.to_thread(auth.verify, token)


async def body_bytes(request: Request) -> bytes:
    """The raw body, read on the event loop; handlers parse it (in a worker thread) with
    the standard's types."""
    return await request.body()


def ok(body: Any, status: int = 200) -> JSONResponse:
    return FastJSON(body, status_code=status)


def _refs(services: Services, refs: list[Any], who: Caller) -> list[dict[str, Any]]:
    """References as the caller sees them, each with its manager's availability (read
    once per manager)."""
    availability = {m: services.dss.availability(m)[0] for m in {r.manager for r in refs}}
    return [wire.reference_json(r, who.manager, availability[r.manager]) for r in refs]


def _ref(services: Services, ref: Any, who: Caller) -> dict[str, Any]:
    return _refs(services, [ref], who)[0]


def _value(field: Any) -> str:
    """An enumeration field's text (the standard's types parse them into Enums)."""
    return str(getattr(field, "value", field))


def _changed(services: Services, done: Changed, who: Caller, noun: str) -> dict[str, Any]:
    return {"subscribers": wire.subscribers_json(done.subscribers),
            f"{noun}_reference": _ref(services, done.ref, who)}


# -- operational intent references ---------------------------------------------------
@router.post("/operational_intent_references/query")
def query_intents(raw: bytes = Depends(body_bytes),
                 who: Caller = Depends(caller),
                        services: Services = Depends(get_services)) -> JSONResponse:
    who.need(SC, CMSA)
    body = wire.parse(raw, f3548.QueryOperationalIntentReferenceParameters,
                      "query")
    refs = services.dss.query_refs(wire.area(body.get("area_of_interest")), constraint=False)
    return ok({"operational_intent_references": _refs(services, refs, who)})


@router.get("/operational_intent_references/{entityid}")
def get_intent(entityid: str, who: Caller = Depends(caller),
               services: Services = Depends(get_services)) -> JSONResponse:
    who.need(SC, CMSA)
    ref = services.dss.get_ref(wire.check_id(entityid, "entityid"), constraint=False)
    return ok({"operational_intent_reference": _ref(services, ref, who)})


def _put_intent(raw: bytes, entityid: str, ovn: str | None, who: Caller,
                services: Services) -> JSONResponse:
    who.need(SC, frozenset((SC, CP)), CMSA)
    entity = wire.check_id(entityid, "entityid")
    body = wire.parse(raw, f3548.PutOperationalIntentReferenceParameters,
                      "operational intent reference", with_key=True)
    scen = wire.scenario(body.extents, party=party_of(who.manager), entity=entity)
    new_sub = body.get("new_subscription")
    req = IntentPut(
        entity, ovn, scen, _value(body.state),
        str(body.uss_base_url), frozenset(body.get("key") or ()),
        body.get("subscription_id") or None,
        (str(new_sub.uss_base_url), bool(new_sub.get("notify_for_constraints") or False))
        if new_sub else None, body.get("requested_ovn_suffix"))
    if req.new_subscription is not None and not req.new_subscription[0]:
        raise InputError("is required", field="new_subscription.uss_base_url")
    done = services.dss.put_intent(who.manager, who.scopes, req)
    return ok(_changed(services, done, who, "operational_intent"), 201 if ovn is None else 200)


@router.put("/operational_intent_references/{entityid}", status_code=201)
def create_intent(entityid: str, raw: bytes = Depends(body_bytes),
                 who: Caller = Depends(caller),
                        services: Services = Depends(get_services)) -> JSONResponse:
    return _put_intent(raw, entityid, None, who, services)


@router.put("/operational_intent_references/{entityid}/{ovn}")
def update_intent(entityid: str, ovn: str, raw: bytes = Depends(body_bytes),
                 who: Caller = Depends(caller),
                        services: Services = Depends(get_services)) -> JSONResponse:
    return _put_intent(raw, entityid, ovn, who, services)


@router.delete("/operational_intent_references/{entityid}/{ovn}")
def delete_intent(entityid: str, ovn: str, who: Caller = Depends(caller),
                  services: Services = Depends(get_services)) -> JSONResponse:
    who.need(SC, CMSA)
    done = services.dss.delete_ref(who.manager, wire.check_id(entityid, "entityid"), ovn,
                                   constraint=False)
    return ok(_changed(services, done, who, "operational_intent"))


# -- constraint references -----------------------------------------------------------
@router.post("/constraint_references/query")
def query_constraints(raw: bytes = Depends(body_bytes),
                 who: Caller = Depends(caller),
                            services: Services = Depends(get_services)) -> JSONResponse:
    who.need(CM, CP)
    body = wire.parse(raw, f3548.QueryConstraintReferenceParameters, "query")
    refs = services.dss.query_refs(wire.area(body.get("area_of_interest")), constraint=True)
    return ok({"constraint_references": _refs(services, refs, who)})


@router.get("/constraint_references/{entityid}")
def get_constraint(entityid: str, who: Caller = Depends(caller),
                   services: Services = Depends(get_services)) -> JSONResponse:
    who.need(CM, CP)
    ref = services.dss.get_ref(wire.check_id(entityid, "entityid"), constraint=True)
    return ok({"constraint_reference": _ref(services, ref, who)})


def _put_constraint(raw: bytes, entityid: str, ovn: str | None, who: Caller,
                    services: Services) -> JSONResponse:
    who.need(CM)
    entity = wire.check_id(entityid, "entityid")
    body = wire.parse(raw, f3548.PutConstraintReferenceParameters,
                      "constraint reference")
    scen = wire.scenario(body.extents, party=party_of(who.manager), entity=entity, zone=True)
    done = services.dss.put_constraint(who.manager, entity, ovn, scen, str(body.uss_base_url))
    return ok(_changed(services, done, who, "constraint"), 201 if ovn is None else 200)


@router.put("/constraint_references/{entityid}", status_code=201)
def create_constraint(entityid: str, raw: bytes = Depends(body_bytes),
                 who: Caller = Depends(caller),
                            services: Services = Depends(get_services)) -> JSONResponse:
    return _put_constraint(raw, entityid, None, who, services)


@router.put("/constraint_references/{entityid}/{ovn}")
def update_constraint(entityid: str, ovn: str, raw: bytes = Depends(body_bytes),
                 who: Caller = Depends(caller),
                            services: Services = Depends(get_services)) -> JSONResponse:
    return _put_constraint(raw, entityid, ovn, who, services)


@router.delete("/constraint_references/{entityid}/{ovn}")
def delete_constraint(entityid: str, ovn: str, who: Caller = Depends(caller),
                      services: Services = Depends(get_services)) -> JSONResponse:
    who.need(CM)
    done = services.dss.delete_ref(who.manager, wire.check_id(entityid, "entityid"), ovn,
                                   constraint=True)
    return ok(_changed(services, done, who, "constraint"))


# -- subscriptions ---------------------------------------------------------------------
def _sub_json(services: Services, sub: Any) -> dict[str, Any]:
    return wire.subscription_json(sub, services.dss.dependents(sub.id))


@router.post("/subscriptions/query")
def query_subscriptions(raw: bytes = Depends(body_bytes),
                 who: Caller = Depends(caller),
                              services: Services = Depends(get_services)) -> JSONResponse:
    who.need(CP, SC)
    body = wire.parse(raw, f3548.QuerySubscriptionParameters, "query")
    subs = services.dss.query_subscriptions(who.manager, wire.area(body.get("area_of_interest")))
    return ok({"subscriptions": [_sub_json(services, s) for s in subs]})


@router.get("/subscriptions/{subscriptionid}")
def get_subscription(subscriptionid: str, who: Caller = Depends(caller),
                     services: Services = Depends(get_services)) -> JSONResponse:
    who.need(CP, SC)
    sub = services.dss.get_subscription(who.manager,
                                        wire.check_id(subscriptionid, "subscriptionid"))
    return ok({"subscription": _sub_json(services, sub)})


def _put_subscription(raw: bytes, subscriptionid: str, version: str | None,
                      who: Caller, services: Services) -> JSONResponse:
    who.need(CP, SC)
    sub_id = wire.check_id(subscriptionid, "subscriptionid")
    body = wire.parse(raw, f3548.PutSubscriptionParameters, "subscription")
    area = wire.subscription_area(body.extents, services.dss.clock())
    sub, intents, constraints = services.dss.put_subscription(who.manager, who.scopes,
        SubscriptionPut(sub_id, version, area, str(body.uss_base_url),
                        bool(body.get("notify_for_operational_intents") or False),
                        bool(body.get("notify_for_constraints") or False)))
    return ok({"subscription": _sub_json(services, sub),
               "operational_intent_references": _refs(services, intents, who),
               "constraint_references": _refs(services, constraints, who)})


@router.put("/subscriptions/{subscriptionid}")
def create_subscription(subscriptionid: str, raw: bytes = Depends(body_bytes),
                 who: Caller = Depends(caller),
                              services: Services = Depends(get_services)) -> JSONResponse:
    return _put_subscription(raw, subscriptionid, None, who, services)


@router.put("/subscriptions/{subscriptionid}/{version}")
def update_subscription(subscriptionid: str, version: str, raw: bytes = Depends(body_bytes),
                 who: Caller = Depends(caller),
                              services: Services = Depends(get_services)) -> JSONResponse:
    return _put_subscription(raw, subscriptionid, version, who, services)


@router.delete("/subscriptions/{subscriptionid}/{version}")
def delete_subscription(subscriptionid: str, version: str, who: Caller = Depends(caller),
                        services: Services = Depends(get_services)) -> JSONResponse:
    who.need(CP, SC)
    sub = services.dss.delete_subscription(
        who.manager, wire.check_id(subscriptionid, "subscriptionid"), version)
    return ok({"subscription": wire.subscription_json(sub, [])})


# -- reports and availability ---------------------------------------------------------
@router.post("/reports", status_code=201)
def make_report(raw: bytes = Depends(body_bytes),
                 who: Caller = Depends(caller),
                      services: Services = Depends(get_services)) -> JSONResponse:
    who.need(*ANY_SCOPE)
    wire.parse(raw, f3548.ErrorReport, "report")
    report_id = services.dss.report(who.manager, raw.decode())
    return ok({**orjson.loads(raw), "report_id": report_id}, 201)


@router.get("/uss_availability/{uss_id}")
def get_availability(uss_id: str, who: Caller = Depends(caller),
                     services: Services = Depends(get_services)) -> JSONResponse:
    who.need(AA, SC, CMSA)
    availability, version = services.dss.availability(uss_id)
    return ok({"status": {"uss": uss_id, "availability": availability}, "version": version})


@router.put("/uss_availability/{uss_id}")
def set_availability(uss_id: str, raw: bytes = Depends(body_bytes),
                 who: Caller = Depends(caller),
                           services: Services = Depends(get_services)) -> JSONResponse:
    who.need(AA)
    body = wire.parse(raw, f3548.SetUssAvailabilityStatusParameters,
                      "availability")
    availability, version = services.dss.set_availability(
        uss_id, _value(body.availability),
        str(body.get("old_version") or ""))
    return ok({"status": {"uss": uss_id, "availability": availability}, "version": version})


@router.api_route("/{rest:path}", methods=["GET", "PUT", "POST", "DELETE"],
                  include_in_schema=False)
def unknown(rest: str) -> JSONResponse:
    """An empty path segment (a missing id, OVN or version) is a bad request, never a
    redirect to another operation; any other path is not found."""
    if rest == "" or rest.endswith("/") or "//" in rest:
        raise InputError("a path segment is empty (a missing id, OVN or version?)")
    raise NotFound(f"no F3548 operation at /dss/v1/{rest}")
