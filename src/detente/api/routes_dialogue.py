"""The dialogue: acknowledging and accepting conflicts, the hotline, incidents,
webhook subscriptions."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Response

from ..service import audit
from . import problems
from .app import GatedRouter, Services, get_services, party
from .schemas import (
    IncidentIn,
    IncidentStatusIn,
    MessageIn,
    ReadIn,
    RedeliverIn,
    ThreadIn,
    WebhookIn,
)

router = GatedRouter(prefix="/v1",
                     responses=problems.documented(401, 403, 404, 409, 413, 422))


# -- conflicts ------------------------------------------------------------------------
@router.post("/conflicts/{conflict_id}/acknowledge", tags=["conflicts"],
             summary="Acknowledge a conflict (each party separately)")
def acknowledge(conflict_id: int, caller: str = Depends(party),
                services: Services = Depends(get_services)) -> dict[str, Any]:
    """The caller has seen it. Once both parties have, it is ``acknowledged``. A
    resolved or expired conflict answers 409."""
    return services.lifecycle.acknowledge(caller, conflict_id)


@router.post("/conflicts/{conflict_id}/accept", tags=["conflicts"],
             summary="Agree to proceed despite a conflict")
def accept(conflict_id: int, caller: str = Depends(party),
           services: Services = Depends(get_services)) -> dict[str, Any]:
    """Acknowledges it too. Once both parties accept, it is ``accepted``."""
    return services.lifecycle.accept(caller, conflict_id)


@router.get("/conflicts/{conflict_id}/timeline", tags=["conflicts"],
            summary="Who was told, who acknowledged, and when")
def timeline(conflict_id: int, caller: str = Depends(party),
             services: Services = Depends(get_services)) -> list[dict[str, Any]]:
    """The conflict's history from the audit log, with the events sent to each party
    and their webhook deliveries, in time order."""
    return audit.timeline(services.store, conflict_id, caller)


@router.get("/conflicts/{conflict_id}/messages", tags=["hotline"],
            summary="The conflict's hotline thread")
def conflict_messages(conflict_id: int, caller: str = Depends(party),
                      services: Services = Depends(get_services)) -> list[dict[str, Any]]:
    """Messages to the caller count as delivered from now."""
    return services.hotline.messages(caller, conflict_id=conflict_id)


@router.post("/conflicts/{conflict_id}/messages", status_code=201, tags=["hotline"],
             summary="Send a message on the conflict's thread")
def post_conflict_message(conflict_id: int, body: MessageIn, caller: str = Depends(party),
                          services: Services = Depends(get_services)) -> dict[str, Any]:
    return services.hotline.post(caller, body.body, conflict_id=conflict_id,
                                 corrects=body.corrects)


@router.post("/conflicts/{conflict_id}/messages/read", tags=["hotline"],
             summary="Mark messages read")
def read_conflict_messages(conflict_id: int, body: ReadIn, caller: str = Depends(party),
                           services: Services = Depends(get_services)) -> dict[str, Any]:
    return {"read": services.hotline.mark_read(caller, body.messages,
                                               conflict_id=conflict_id)}


# -- direct threads -------------------------------------------------------------------
@router.get("/threads", tags=["hotline"], summary="The caller's threads")
def threads(caller: str = Depends(party),
            services: Services = Depends(get_services)) -> list[dict[str, Any]]:
    """Conflict threads and direct ones, with message and unread counts."""
    return services.hotline.threads(caller)


@router.post("/threads", tags=["hotline"], summary="Open (or find) a direct thread")
def open_thread(body: ThreadIn, caller: str = Depends(party),
                services: Services = Depends(get_services)) -> dict[str, Any]:
    return services.hotline.direct(caller, body.party)


@router.get("/threads/{thread_id}/messages", tags=["hotline"], summary="A thread's messages")
def thread_messages(thread_id: int, caller: str = Depends(party),
                    services: Services = Depends(get_services)) -> list[dict[str, Any]]:
    return services.hotline.messages(caller, thread_id=thread_id)


@router.post("/threads/{thread_id}/messages", status_code=201, tags=["hotline"],
             summary="Send a message on a thread")
def post_thread_message(thread_id: int, body: MessageIn, caller: str = Depends(party),
                        services: Services = Depends(get_services)) -> dict[str, Any]:
    return services.hotline.post(caller, body.body, thread_id=thread_id,
                                 corrects=body.corrects)


@router.post("/threads/{thread_id}/messages/read", tags=["hotline"],
             summary="Mark messages read")
def read_thread_messages(thread_id: int, body: ReadIn, caller: str = Depends(party),
                         services: Services = Depends(get_services)) -> dict[str, Any]:
    return {"read": services.hotline.mark_read(caller, body.messages, thread_id=thread_id)}


# -- incidents ------------------------------------------------------------------------
@router.post("/incidents", status_code=201, tags=["incidents"], summary="Report an incident")
def report_incident(body: IncidentIn, caller: str = Depends(party),
                    services: Services = Depends(get_services)) -> dict[str, Any]:
    """The parties named are told; they and the reporter can read it and move its
    status."""
    return services.incidents.report(caller, **body.model_dump())


@router.get("/incidents", tags=["incidents"], summary="Incidents the caller is in")
def list_incidents(caller: str = Depends(party),
                   services: Services = Depends(get_services)) -> list[dict[str, Any]]:
    return services.incidents.list(caller)


@router.get("/incidents/{incident_id}", tags=["incidents"], summary="One incident")
def read_incident(incident_id: int, caller: str = Depends(party),
                  services: Services = Depends(get_services)) -> dict[str, Any]:
    return services.incidents.get(caller, incident_id)


@router.patch("/incidents/{incident_id}", tags=["incidents"],
              summary="Move an incident's status")
def update_incident(incident_id: int, body: IncidentStatusIn, caller: str = Depends(party),
                    services: Services = Depends(get_services)) -> dict[str, Any]:
    return services.incidents.set_status(caller, incident_id, body.status)


# -- webhooks -------------------------------------------------------------------------
@router.post("/webhooks", status_code=201, tags=["events"], summary="Subscribe a webhook")
def add_webhook(body: WebhookIn, caller: str = Depends(party),
                services: Services = Depends(get_services)) -> dict[str, Any]:
    """Returns the signing secret, shown only this once. Each event is POSTed as JSON
    with ``Detente-Event-Id``, ``Detente-Event-Type`` and ``Detente-Signature:
    t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``; failures are retried with
    exponential backoff, in order, for 24 hours unless the server says otherwise."""
    hook, secret = services.outbox.add_webhook(caller, body.url, body.types)
    return {**hook, "secret": secret}


@router.get("/webhooks", tags=["events"], summary="The caller's webhooks")
def list_webhooks(caller: str = Depends(party),
                  services: Services = Depends(get_services)) -> list[dict[str, Any]]:
    return services.outbox.webhooks(caller)


@router.delete("/webhooks/{webhook_id}", status_code=204, tags=["events"],
               summary="Unsubscribe a webhook")
def delete_webhook(webhook_id: int, caller: str = Depends(party),
                   services: Services = Depends(get_services)) -> Response:
    services.outbox.delete_webhook(caller, webhook_id)
    return Response(status_code=204)


@router.post("/webhooks/{webhook_id}/redeliver", tags=["events"],
             summary="Send a webhook's events again")
def redeliver(webhook_id: int, body: RedeliverIn, caller: str = Depends(party),
              services: Services = Depends(get_services)) -> dict[str, int]:
    """Queues the webhook's events after ``after`` again: those given up after the
    retry window, or with ``everything`` all of them (receivers de-duplicate on
    ``Detente-Event-Id``). Answers how many were queued."""
    return {"queued": services.outbox.redeliver(caller, webhook_id, body.after,
                                                body.everything)}


@router.get("/webhooks/{webhook_id}/deliveries", tags=["events"],
            summary="A webhook's delivery log")
def deliveries(webhook_id: int, caller: str = Depends(party),
               services: Services = Depends(get_services)) -> list[dict[str, object]]:
    """Every attempt, newest first: event, time, HTTP status or error, duration."""
    return services.outbox.deliveries(caller, webhook_id)
