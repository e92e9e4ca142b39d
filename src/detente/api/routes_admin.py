"""Administration: parties, their tokens, and the service-wide minima."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from ..core.minima import Minima
from ..service.parties import Principal
from . import problems
from .app import Services, admin, get_services, principal
from .schemas import MinimaIn, PartyIn

router = APIRouter(tags=["administration"],
                   responses=problems.documented(401, 403, 404, 409, 413, 422))


@router.post("/parties", status_code=201, summary="Create a party (admin)")
def create_party(body: PartyIn, _: Principal = Depends(admin),
                 services: Services = Depends(get_services)) -> dict[str, Any]:
    """Returns the party's first API token: it is shown only this once."""
    row, token = services.parties.add(body.name, body.contact)
    return {"name": row.name, "contact": row.contact, "created_at": row.created_at,
            "token": token}


@router.get("/parties", summary="List parties (admin)")
def list_parties(_: Principal = Depends(admin),
                 services: Services = Depends(get_services)) -> list[dict[str, Any]]:
    return [{"name": p.name, "contact": p.contact, "created_at": p.created_at}
            for p in services.parties.list()]


@router.post("/parties/{name}/token", summary="Rotate a party's token (admin)")
def rotate_token(name: str, _: Principal = Depends(admin),
                 services: Services = Depends(get_services)) -> dict[str, str]:
    """Revokes the party's tokens and returns a new one (shown only this once)."""
    return {"name": name, "token": services.parties.rotate(name)}


@router.delete("/parties/{name}/token", summary="Revoke a party's tokens (admin)")
def revoke_tokens(name: str, _: Principal = Depends(admin),
                  services: Services = Depends(get_services)) -> dict[str, Any]:
    return {"name": name, "revoked": services.parties.revoke(name)}


@router.get("/minima", summary="The separation minima")
def read_minima(_: Principal = Depends(principal),
                services: Services = Depends(get_services)) -> dict[str, Any]:
    out: dict[str, Any] = services.deconfliction.minima().to_json()
    return out


@router.put("/minima", summary="Replace the separation minima (admin)")
def replace_minima(body: MinimaIn, _: Principal = Depends(admin),
                   services: Services = Depends(get_services)) -> dict[str, Any]:
    minima = Minima.from_json(body.model_dump())
    services.deconfliction.set_minima(minima)
    out: dict[str, Any] = minima.to_json()
    return out
