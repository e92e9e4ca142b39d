"""Errors as RFC 9457 problem details, in one shape: the only place that maps
detente's exceptions to HTTP status codes.

Every error body is ``application/problem+json`` with ``type``, ``title``,
``status`` and ``detail``; validation errors add ``errors``: a list of
``{"pointer", "field", "reason"}`` naming each offending field in the request (and
``item``: the report, line or feature, where there is one).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import (
    AirspaceConflict,
    AlreadyExists,
    DetenteError,
    Forbidden,
    InputError,
    NotFound,
    PreconditionRequired,
    Refused,
    StaleVersion,
    TooLarge,
    Unauthorized,
    Unavailable,
)
from ..formats.f3548 import reference_json

log = logging.getLogger("detente.api")

# (class, status, title), most specific class first; the problem type is the class's kind.
STATUS: list[tuple[type[DetenteError], int, str]] = [
    (Unauthorized, 401, "Missing or invalid credentials"),
    (Forbidden, 403, "Not allowed for this role"),
    (NotFound, 404, "Not found"),
    (AlreadyExists, 409, "Exists already"),
    (Refused, 409, "Refused by the rules"),
    (StaleVersion, 412, "Version precondition failed"),
    (PreconditionRequired, 428, "A version precondition is needed"),
    (InputError, 422, "Invalid input"),
    (DetenteError, 400, "Bad request"),
]
# The F3548 DSS API (under /dss/) answers with the standard's codes and bodies
# (``ErrorResponse``: ``{"message"}``; ``AirspaceConflictResponse`` for a short key).
DSS_PREFIX = "/dss/"
DSS_STATUS: list[tuple[type[DetenteError], int]] = [
    (Unauthorized, 401), (Forbidden, 403), (NotFound, 404), (AirspaceConflict, 409),
    (Unavailable, 412), (AlreadyExists, 409), (StaleVersion, 409), (Refused, 409),
    (TooLarge, 413), (DetenteError, 400),
]
TYPE_BASE = "https://detente.dev/problems/"
MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = Field(
        None, description="validation errors: pointer (RFC 6901), field, reason, and the "
                          "item (a report, a line, a feature) where there is one")


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses (problem details)."""
    titles = {status: title for _, status, title in STATUS}
    titles[413] = "Request body too large"
    return {status: {"model": Problem, "description": titles.get(status, "Error"),
                     "content": {MEDIA_TYPE: {}}} for status in statuses}


class BodyTooLarge(Exception):
    """The request body is over the configured limit."""

    def __init__(self, limit: int):
        self.limit = limit


def problem(status: int, slug: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": TYPE_BASE + slug, "title": title, "status": status, "detail": detail,
            **extra}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _pointer(field: str) -> str:
    """``volumes[0].geometry.coordinates[1]`` -> ``/volumes/0/geometry/coordinates/1``."""
    parts = [p for p in re.split(r"[.\[\]]", field) if p]
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def detente_problem(exc: DetenteError) -> JSONResponse:
    for cls, status, title in STATUS:
        if isinstance(exc, cls):
            extra: dict[str, Any] = {}
            if isinstance(exc, InputError) and exc.field:
                extra["errors"] = [{"pointer": _pointer(exc.field), "field": exc.field,
                                    "reason": exc.reason,
                                    **({"item": exc.item} if exc.item else {})}]
            return problem(status, cls.kind, title, str(exc), **extra)
    raise AssertionError("DetenteError is in the table")  # pragma: no cover


class FastJSON(JSONResponse):
    """JSON rendered by orjson: a DSS write's answer can name hundreds of subscribers,
    and orjson renders them in a tenth of the standard library's time."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def dss_error(exc: DetenteError) -> JSONResponse:
    status = next(code for cls, code in DSS_STATUS if isinstance(exc, cls))
    body: dict[str, Any] = {"message": str(exc)}
    if isinstance(exc, AirspaceConflict):
        who = str(exc.body["caller"])
        for key, name in (("intents", "missing_operational_intents"),
                          ("constraints", "missing_constraints")):
            body[name] = [reference_json(ref, who, availability)
                          for ref, availability in exc.body[key]]  # type: ignore[attr-defined]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return FastJSON(body, status_code=status, headers=headers)


def _dss(request: Request) -> bool:
    return request.url.path.startswith(DSS_PREFIX)


def install(app: FastAPI) -> None:
    @app.exception_handler(DetenteError)
    async def _detente(request: Request, exc: DetenteError) -> JSONResponse:
        return dss_error(exc) if _dss(request) else detente_problem(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for e in exc.errors():
            loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path",
                                                                 "header")]
            field = ".".join(loc)
            errors.append({"pointer": _pointer(field), "field": field,
                           "reason": str(e.get("msg", "invalid"))})
        detail = "; ".join(f"{x['field'] or 'body'}: {x['reason']}" for x in errors[:5])
        return problem(422, InputError.kind, "Invalid input", detail, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc.__cause__, DetenteError):  # raised while FastAPI read the body
            return (dss_error if _dss(request) else detente_problem)(exc.__cause__)
        if _dss(request):
            return FastJSON({"message": str(exc.detail)}, status_code=exc.status_code)
        slug = {404: NotFound.kind, 405: "method-not-allowed"}.get(exc.status_code, "http")
        return problem(exc.status_code, slug, str(exc.detail), str(exc.detail))

    @app.exception_handler(BodyTooLarge)
    async def _too_large(request: Request, exc: BodyTooLarge) -> JSONResponse:
        if _dss(request):
            return FastJSON({"message": f"the request body is over the limit of "
                                        f"{exc.limit:,} bytes"}, status_code=413)
        return problem(413, "too-large", "Request body too large",
                       f"the request body is over the limit of {exc.limit:,} bytes")

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return problem(500, "internal", "Internal error",
                       "an unexpected error; it has been logged")
