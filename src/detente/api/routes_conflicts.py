"""Conflicts as the caller may see them (need-to-know)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query

from . import problems
from .app import Services, get_services, party

router = APIRouter(tags=["conflicts"],
                   responses=problems.documented(401, 403, 404, 422))


@router.get("/conflicts", summary="The caller's conflicts")
def list_conflicts(status: Literal["open", "resolved"] | None = Query(None),
                   caller: str = Depends(party),
                   services: Services = Depends(get_services)) -> list[dict[str, Any]]:
    """Conflicts between one of the caller's activities and another party's."""
    return services.disclosure.conflicts(caller, status)


@router.get("/conflicts/{conflict_id}", summary="One conflict, with what the caller may see")
def read_conflict(conflict_id: int, caller: str = Depends(party),
                  services: Services = Depends(get_services)) -> dict[str, Any]:
    """The gaps of each volume pair, and the counterpart's conflicting volumes only:
    footprint, altitude band, time window, kind, party name and contact."""
    return services.disclosure.conflict(caller, conflict_id)
