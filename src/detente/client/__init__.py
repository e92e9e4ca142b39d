"""A Python client for detente's HTTP API (httpx), one method per API verb.

    with Client("http://127.0.0.1:8000", token) as api:
        made = api.create_activity({"id": "sortie-1", "volumes": [...]})
        for c in api.conflicts(status="open"):
            print(c["counterpart_party"], api.conflict(c["id"])["pairs"])

Errors come back as detente's own exceptions (``NotFound``, ``StaleVersion``,
``InputError`` with the field, ...), raised from the server's problem details.
"""

from __future__ import annotations

from typing import Any

import httpx

from ..errors import DetenteError, InputError


def _kinds(cls: type[DetenteError]) -> dict[str, type[DetenteError]]:
    out = {cls.kind: cls}
    for sub in cls.__subclasses__():
        out.update(_kinds(sub))
    return out


_BY_KIND = _kinds(DetenteError)  # the problem type named by each error class


class Client:
    """One party's (or the admin's) connection to a detente server."""

    def __init__(self, url: str, token: str, *, timeout: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        self._http = httpx.Client(base_url=url.rstrip("/") + "/v1", timeout=timeout,
                                  headers={"Authorization": f"Bearer {token}"},
                                  transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, json: Any = None,
              headers: dict[str, str] | None = None, params: dict[str, Any] | None = None
              ) -> Any:
        try:
            r = self._http.request(method, path, json=json, headers=headers, params=params)
        except httpx.HTTPError as exc:
            raise DetenteError(f"cannot reach the detente server: {exc}") from None
        if r.status_code < 400:
            return r.json()
        raise _error(r)

    # -- activities ------------------------------------------------------------
    def create_activity(self, activity: dict[str, Any]) -> dict[str, Any]:
        """Declare an activity; returns it with the conflicts and zone entries it caused."""
        out: dict[str, Any] = self._call("POST", "/activities", json=activity)
        return out

    def activities(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("GET", "/activities")
        return out

    def activity(self, activity_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", f"/activities/{_seg(activity_id)}")
        return out

    def replace_activity(self, activity_id: str, activity: dict[str, Any], *, version: int
                         ) -> dict[str, Any]:
        """Replace it; ``version`` is the one read (a stale one raises StaleVersion)."""
        out: dict[str, Any] = self._call("PUT", f"/activities/{_seg(activity_id)}",
                                         json=activity, headers={"If-Match": f'"{version}"'})
        return out

    def cancel_activity(self, activity_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("DELETE", f"/activities/{_seg(activity_id)}")
        return out

    # -- zones -------------------------------------------------------------------
    def create_zone(self, zone: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._call("POST", "/zones", json=zone)
        return out

    def zones(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("GET", "/zones")
        return out

    def zone(self, zone_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", f"/zones/{_seg(zone_id)}")
        return out

    def delete_zone(self, zone_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("DELETE", f"/zones/{_seg(zone_id)}")
        return out

    # -- conflicts -----------------------------------------------------------------
    def set_state(self, activity_id: str, state: str) -> dict[str, Any]:
        """planned -> active -> ended."""
        out: dict[str, Any] = self._call("POST", f"/activities/{_seg(activity_id)}/state",
                                         json={"state": state})
        return out

    def conflicts(self, status: str | None = None, *,
                  bbox: tuple[float, float, float, float] | None = None,
                  start: str | None = None, end: str | None = None
                  ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("GET", "/conflicts",
                                               params=_window(bbox, start, end, status))
        return out

    def airspace(self, bbox: tuple[float, float, float, float] | None = None,
                 start: str | None = None, end: str | None = None) -> dict[str, Any]:
        """What the caller may see there, as a GeoJSON FeatureCollection."""
        out: dict[str, Any] = self._call("GET", "/airspace",
                                         params=_window(bbox, start, end, None))
        return out

    def conflict(self, conflict_id: int) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", f"/conflicts/{int(conflict_id)}")
        return out

    # -- minima and administration ------------------------------------------------
    def minima(self) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", "/minima")
        return out

    def set_minima(self, minima: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._call("PUT", "/minima", json=minima)
        return out

    def add_party(self, name: str, contact: str | None = None) -> dict[str, Any]:
        """Admin: create a party; the result holds its token (shown only now)."""
        out: dict[str, Any] = self._call("POST", "/parties",
                                         json={"name": name, "contact": contact})
        return out

    def parties(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("GET", "/parties")
        return out

    def rotate_token(self, name: str) -> str:
        out: str = self._call("POST", f"/parties/{_seg(name)}/token")["token"]
        return out

    def revoke_tokens(self, name: str) -> int:
        out: int = self._call("DELETE", f"/parties/{_seg(name)}/token")["revoked"]
        return out


def _window(bbox: tuple[float, float, float, float] | None, start: str | None,
            end: str | None, status: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if bbox is not None:
        params["bbox"] = ",".join(repr(float(v)) for v in bbox)
    for key, value in (("start", start), ("end", end), ("status", status)):
        if value is not None:
            params[key] = value
    return params


def _seg(text: str) -> str:
    """One URL path segment (ids may hold '/', spaces, ...)."""
    from urllib.parse import quote

    return quote(str(text), safe="")


def _error(r: httpx.Response) -> DetenteError:
    try:
        body = r.json()
    except ValueError:
        body = {}
    detail = str(body.get("detail") or r.text or r.reason_phrase)
    kind = str(body.get("type", "")).rsplit("/", 1)[-1]
    if r.status_code in (413, 422) or kind == InputError.kind:
        errors = body.get("errors") or [{}]
        return InputError(str(errors[0].get("reason", detail)),
                          field=errors[0].get("field") or None)
    cls = _BY_KIND.get(kind)
    if cls is not None and cls is not DetenteError:
        return cls(detail)
    return DetenteError(f"HTTP {r.status_code}: {detail}")
