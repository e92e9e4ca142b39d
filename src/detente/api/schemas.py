"""Request bodies of the HTTP API (pydantic), shaped for the OpenAPI document.

Types are checked here; the meaning (rings, coordinates, instants, bounds) is checked
by the same reader as files (:mod:`detente.core.scenario`), so the API and the CLI
refuse exactly the same volumes, with the same reasons.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_VOLUMES = 1_000  # per activity or zone


class Geometry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["Polygon", "Point"]
    coordinates: list[Any] = Field(
        description="Polygon: rings of [longitude, latitude] (WGS 84), the first the "
                    "exterior; Point: [longitude, latitude] (give radius_m)")


class VolumeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | int | None = Field(None, description="unique in the activity; default: "
                                 "its position, from 0")
    geometry: Geometry
    radius_m: float | None = Field(None, description="with a Point: metres, > 0")
    alt_lower_m: float = Field(description="metres above the WGS 84 ellipsoid")
    alt_upper_m: float
    time_start: str = Field(description="RFC 3339 with an offset, e.g. 2026-06-01T07:00:00Z")
    time_end: str


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200, description="the party's own id for it")
    kind: str | None = Field(None, max_length=100,
                             description="for per-kind minima: aircraft, convoy, ...")
    notes: str | None = Field(None, max_length=4_000, description="never shown to others")
    contact: str | None = Field(None, max_length=500,
                                description="shown to parties it conflicts with")
    volumes: list[VolumeIn] = Field(min_length=1, max_length=MAX_VOLUMES)
    override: bool = Field(False, description="enter prohibited zones anyway (recorded)")


class ActivityReplace(ActivityIn):
    version: int | None = Field(None, description="the version replaced (or If-Match)")


class StateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    state: Literal["planned", "active", "ended"]


class ZoneIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=200)
    restriction: Literal["prohibited", "notify"]
    applies_to: list[str] | None = Field(
        None, description="parties it applies to (default: every party but its owner)")
    volumes: list[VolumeIn] = Field(min_length=1, max_length=MAX_VOLUMES)


class PartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    contact: str | None = Field(None, max_length=500)
    escalation: str | None = Field(None, max_length=500, description="who is told when the "
                                   "party misses an acknowledgement deadline")


class SeparationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    horizontal_m: float = Field(0.0, ge=0)
    vertical_m: float = Field(0.0, ge=0)
    time_s: float = Field(0.0, ge=0)


class OverrideIn(SeparationIn):
    kinds: tuple[str, str]


class MinimaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: SeparationIn
    overrides: list[OverrideIn] = Field(default_factory=list)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=10_000)
    corrects: int | None = Field(None, description="the id of an earlier message of yours "
                                 "that this one corrects (messages never change)")


class ReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    messages: list[int] = Field(min_length=1, max_length=1_000,
                                description="ids of messages to you, now read")


class ThreadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    party: str = Field(min_length=1, max_length=100, description="the other party")


class IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location: dict[str, Any] = Field(description="a GeoJSON geometry (WGS 84)")
    occurred_at: str = Field(description="RFC 3339")
    description: str = Field(min_length=1, max_length=20_000)
    severity: Literal["low", "medium", "high", "critical"]
    parties: list[str] = Field([], max_length=100, description="other parties involved")
    activities: list[str] = Field([], max_length=100, description="your activities' ids")
    conflicts: list[int] = Field([], max_length=100, description="conflicts of yours")


class IncidentStatusIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "under-review", "closed"]


class WebhookIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2_000)
    types: list[str] | None = Field(None, description="event types to send (default: all)")


class RedeliverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: int = Field(0, ge=0, le=2**53, description="only events after this id (0: all)")
    everything: bool = Field(False, description="every event, delivered or not (default: "
                             "those given up after the retry window)")


class PolicyRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lead_s: float = Field(gt=0, lt=1e8, description="conflicts starting within this many "
                          "seconds...")
    ack_s: float = Field(gt=0, lt=1e8, description="...must be acknowledged within this")


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[PolicyRule] = Field(max_length=50)
    otherwise_ack_s: float = Field(gt=0, lt=1e8)
