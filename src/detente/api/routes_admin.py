"""Administration: parties, their tokens, and the service-wide minima."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Query

from ..core.instants import InstantError, format_instant, parse_instant
from ..core.minima import Minima
from ..errors import InputError
from ..service import audit
from ..service.lifecycle import AckPolicy
from ..service.parties import Principal
from ..service.review import review
from . import problems
from .app import GatedRouter, Services, admin, get_services, principal
from .schemas import MinimaIn, PartyIn, PolicyIn

router = GatedRouter(prefix="/v1", tags=["administration"],
                     responses=problems.documented(401, 403, 404, 409, 413, 422))


@router.post("/parties", status_code=201, summary="Create a party (admin)")
def create_party(body: PartyIn, _: Principal = Depends(admin),
                 services: Services = Depends(get_services)) -> dict[str, Any]:
    """Returns the party's first API token: it is shown only this once."""
    row, token = services.parties.add(body.name, body.contact, body.escalation)
    return {"name": row.name, "contact": row.contact, "escalation": row.escalation,
            "created_at": row.created_at, "token": token}


@router.get("/parties", summary="List parties (admin)")
def list_parties(_: Principal = Depends(admin),
                 services: Services = Depends(get_services)) -> list[dict[str, Any]]:
    return [{"name": p.name, "contact": p.contact, "escalation": p.escalation,
             "created_at": p.created_at} for p in services.parties.list()]


@router.post("/parties/{name}/token", summary="Rotate a party's token (admin)")
def rotate_token(name: str, _: Principal = Depends(admin),
                 services: Services = Depends(get_services)) -> dict[str, str]:
    """Revokes the party's tokens and returns a new one (shown only this once)."""
    return {"name": name, "token": services.parties.rotate(name)}


@router.delete("/parties/{name}/token", summary="Revoke a party's tokens (admin)")
def revoke_tokens(name: str, _: Principal = Depends(admin),
                  services: Services = Depends(get_services)) -> dict[str, Any]:
    return {"name": name, "revoked": services.parties.revoke(name)}


@router.get("/me", summary="Who the token belongs to")
def whoami(who: Principal = Depends(principal)) -> dict[str, Any]:
    """The calling party's name (``party`` null for the admin token)."""
    return {"party": who.party, "admin": who.is_admin}


@router.get("/minima", summary="The separation minima")
def read_minima(_: Principal = Depends(principal),
                services: Services = Depends(get_services)) -> dict[str, Any]:
    out: dict[str, Any] = services.deconfliction.minima().to_json()
    return out


@router.put("/minima", summary="Replace the separation minima (admin)")
def replace_minima(body: MinimaIn, _: Principal = Depends(admin),
                   services: Services = Depends(get_services)) -> dict[str, Any]:
    minima = Minima.from_json(body.model_dump())
    services.deconfliction.set_minima(minima, actor="admin")
    out: dict[str, Any] = minima.to_json()
    return out


@router.get("/ack-policy", summary="Acknowledgement deadlines by lead time")
def read_policy(_: Principal = Depends(principal),
                services: Services = Depends(get_services)) -> dict[str, Any]:
    """A conflict starting within ``lead_s`` seconds of being found must be
    acknowledged within ``ack_s`` (the first rule that fits), else within
    ``otherwise_ack_s``; a party that does not is escalated."""
    return services.lifecycle.policy().to_json()


@router.put("/ack-policy", summary="Replace the acknowledgement policy (admin)")
def replace_policy(body: PolicyIn, _: Principal = Depends(admin),
                   services: Services = Depends(get_services)) -> dict[str, Any]:
    policy = AckPolicy.from_json(body.model_dump())
    services.lifecycle.set_policy(policy, "admin")
    return policy.to_json()


@router.get("/audit/verify", summary="Verify the audit log's hash chain (admin)")
def verify_audit(_: Principal = Depends(admin),
                 services: Services = Depends(get_services)) -> dict[str, Any]:
    """``ok``, the entries checked, and the first broken entry with the reason."""
    return audit.verify(services.store)


@router.get("/audit/conflicts/{conflict_id}", summary="A conflict's timeline (admin)")
def audit_conflict(conflict_id: int, _: Principal = Depends(admin),
                   services: Services = Depends(get_services)) -> list[dict[str, Any]]:
    return audit.timeline(services.store, conflict_id)


@router.get("/review", summary="The periodic review (admin)")
def read_review(start: str = Query(alias="from", description="RFC 3339"),
                end: str = Query(alias="to", description="RFC 3339"),
                _: Principal = Depends(admin),
                services: Services = Depends(get_services)) -> dict[str, Any]:
    """Per party: conflicts opened, acknowledged, median time to acknowledge,
    escalations, incidents."""
    return review(services.store, _instant(start, "from"), _instant(end, "to"))


def _instant(text: str, name: str) -> str:
    try:
        return format_instant(parse_instant(text))
    except InstantError as exc:
        raise InputError(str(exc), field=name) from None
