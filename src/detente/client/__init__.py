"""A Python client for detente's HTTP API (httpx), one method per API verb.

    with Client("http://127.0.0.1:8000", token) as api:
        made = api.create_activity({"id": "sortie-1", "volumes": [...]})
        for c in api.conflicts(status="open"):
            print(c["counterpart_party"], api.conflict(c["id"])["pairs"])

Errors come back as detente's own exceptions (``NotFound``, ``StaleVersion``,
``InputError`` with the field, ...), raised from the server's problem details.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import orjson

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

    def _request(self, method: str, path: str, *, json: Any = None,
                 headers: dict[str, str] | None = None,
                 params: dict[str, Any] | None = None) -> httpx.Response:
        try:
            r = self._http.request(method, path, json=json, headers=headers, params=params)
        except httpx.HTTPError as exc:
            raise DetenteError(f"cannot reach the detente server: {exc}") from None
        if r.status_code < 400:
            return r
        raise _error(r)

    def _call(self, method: str, path: str, *, json: Any = None,
              headers: dict[str, str] | None = None, params: dict[str, Any] | None = None
              ) -> Any:
        r = self._request(method, path, json=json, headers=headers, params=params)
        return r.json() if r.status_code != 204 else None

    # -- activities ------------------------------------------------------------
    def create_activity(self, activity: dict[str, Any]) -> dict[str, Any]:
        """Declare an activity; returns it with the conflicts and zone entries it caused."""
        out: dict[str, Any] = self._call("POST", "/activities", json=activity)
        return out

    def _pages(self, path: str, params: dict[str, Any], key: str) -> list[dict[str, Any]]:
        """Every page of a paged listing (``key``: the field ``after`` takes)."""
        out: list[dict[str, Any]] = []
        while True:
            r = self._request("GET", path, params=params)
            out += r.json()
            if "next" not in r.links:
                return out
            params["after"] = out[-1][key]

    def activities(self, *, page_size: int = 1_000) -> list[dict[str, Any]]:
        """The caller's activities (summaries), read ``page_size`` at a time."""
        return self._pages("/activities", {"limit": page_size}, "id")

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

    def zones(self, *, page_size: int = 1_000) -> list[dict[str, Any]]:
        """The caller's zones (summaries), read ``page_size`` at a time."""
        return self._pages("/zones", {"limit": page_size}, "id")

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
                  start: str | None = None, end: str | None = None,
                  page_size: int = 1_000) -> list[dict[str, Any]]:
        """The caller's conflicts, in id order (read ``page_size`` at a time)."""
        return self._pages("/conflicts",
                           {**_window(bbox, start, end, status), "limit": page_size}, "id")

    def airspace(self, bbox: tuple[float, float, float, float] | None = None,
                 start: str | None = None, end: str | None = None) -> dict[str, Any]:
        """What the caller may see there, as a GeoJSON FeatureCollection."""
        out: dict[str, Any] = self._call("GET", "/airspace",
                                         params=_window(bbox, start, end, None))
        return out

    def export(self, format: str = "geojson",
               bbox: tuple[float, float, float, float] | None = None,
               start: str | None = None, end: str | None = None) -> bytes:
        """What the caller may see as a file: ``geojson`` or ``kml`` (the airspace), or
        ``csv`` (its live conflicts). Returns the file's bytes."""
        try:
            r = self._http.get("/export", params={**_window(bbox, start, end, None),
                                                  "format": format})
        except httpx.HTTPError as exc:
            raise DetenteError(f"cannot reach the detente server: {exc}") from None
        if r.status_code >= 400:
            raise _error(r)
        return r.content

    def conflict(self, conflict_id: int) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", f"/conflicts/{int(conflict_id)}")
        return out

    # -- the dialogue -------------------------------------------------------------
    def acknowledge(self, conflict_id: int) -> dict[str, Any]:
        """The caller has seen the conflict; returns it as it is now."""
        out: dict[str, Any] = self._call("POST", f"/conflicts/{int(conflict_id)}/acknowledge")
        return out

    def accept(self, conflict_id: int) -> dict[str, Any]:
        """The caller agrees to proceed as planned (both agreeing accepts it)."""
        out: dict[str, Any] = self._call("POST", f"/conflicts/{int(conflict_id)}/accept")
        return out

    def timeline(self, conflict_id: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("GET", f"/conflicts/{int(conflict_id)}/timeline")
        return out

    @staticmethod
    def _thread(conflict_id: int | None, thread_id: int | None) -> str:
        if (conflict_id is None) == (thread_id is None):
            raise ValueError("give conflict_id or thread_id")
        return (f"/conflicts/{int(conflict_id)}" if conflict_id is not None
                else f"/threads/{int(thread_id or 0)}")

    def messages(self, *, conflict_id: int | None = None, thread_id: int | None = None
                 ) -> list[dict[str, Any]]:
        """A conflict's hotline thread or a direct thread."""
        out: list[dict[str, Any]] = self._call(
            "GET", self._thread(conflict_id, thread_id) + "/messages")
        return out

    def send(self, body: str, *, conflict_id: int | None = None,
             thread_id: int | None = None, corrects: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = self._call(
            "POST", self._thread(conflict_id, thread_id) + "/messages",
            json={"body": body, "corrects": corrects})
        return out

    def mark_read(self, message_ids: list[int], *, conflict_id: int | None = None,
                  thread_id: int | None = None) -> list[int]:
        out: list[int] = self._call(
            "POST", self._thread(conflict_id, thread_id) + "/messages/read",
            json={"messages": message_ids})["read"]
        return out

    def threads(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("GET", "/threads")
        return out

    def open_thread(self, party: str) -> dict[str, Any]:
        """The direct thread with another party."""
        out: dict[str, Any] = self._call("POST", "/threads", json={"party": party})
        return out

    def report_incident(self, incident: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._call("POST", "/incidents", json=incident)
        return out

    def incidents(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("GET", "/incidents")
        return out

    def incident(self, incident_id: int) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", f"/incidents/{int(incident_id)}")
        return out

    def set_incident_status(self, incident_id: int, status: str) -> dict[str, Any]:
        out: dict[str, Any] = self._call("PATCH", f"/incidents/{int(incident_id)}",
                                         json={"status": status})
        return out

    # -- events -------------------------------------------------------------------
    def add_webhook(self, url: str, types: list[str] | None = None) -> dict[str, Any]:
        """Subscribe; the result holds the signing ``secret`` (shown only now)."""
        out: dict[str, Any] = self._call("POST", "/webhooks", json={"url": url, "types": types})
        return out

    def webhooks(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("GET", "/webhooks")
        return out

    def delete_webhook(self, webhook_id: int) -> None:
        self._call("DELETE", f"/webhooks/{int(webhook_id)}")

    def redeliver(self, webhook_id: int, after: int = 0, everything: bool = False) -> int:
        """Send a webhook's events after ``after`` again (those given up, or with
        ``everything`` all); how many were queued."""
        out: dict[str, int] = self._call("POST", f"/webhooks/{int(webhook_id)}/redeliver",
                                         json={"after": after, "everything": everything})
        return out["queued"]

    def deliveries(self, webhook_id: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("GET", f"/webhooks/{int(webhook_id)}/deliveries")
        return out

    def events(self, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """A page of the caller's events after an id (to poll)."""
        out: list[dict[str, Any]] = self._call("GET", "/events",
                                               params={"after": after, "limit": limit})
        return out

    def newest_event(self) -> int:
        """The id of the caller's newest event (0: none yet); ``stream`` from it to
        follow only what happens from now on."""
        out: dict[str, int] = self._call("GET", "/events/newest")
        return out["id"]

    def stream(self, last_event_id: int | None = None, *, timeout: float | None = None
               ) -> Iterator[dict[str, Any]]:
        """The live event stream (Server-Sent Events), from after ``last_event_id``.
        Reconnect with the last id seen to resume without losing any."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        with self._http.stream("GET", "/events", headers=headers,
                               timeout=httpx.Timeout(30.0, read=timeout)) as r:
            if r.status_code >= 400:
                r.read()
                raise _error(r)
            data: list[str] = []
            for line in r.iter_lines():
                if line.startswith("data:"):
                    data.append(line[5:].strip())
                elif not line and data:
                    yield orjson.loads("\n".join(data))
                    data = []

    # -- live positions --------------------------------------------------------------
    def report_positions(self, positions: list[dict[str, Any]]) -> dict[str, Any]:
        """A batch of position reports (at most 10,000): all stored, or none."""
        out: dict[str, Any] = self._call("POST", "/positions", json={"positions": positions})
        return out

    def stream_positions(self, lines: Iterable[bytes]) -> dict[str, Any]:
        """A feed of NDJSON reports (one per line, ending in a newline), streamed in one
        chunked request as the iterable yields them."""
        try:
            r = self._http.post("/positions/stream", content=lines,
                                headers={"Content-Type": "application/x-ndjson"},
                                timeout=httpx.Timeout(30.0, read=None, write=None))
        except httpx.HTTPError as exc:
            raise DetenteError(f"cannot reach the detente server: {exc}") from None
        if r.status_code >= 400:
            raise _error(r)
        out: dict[str, Any] = r.json()
        return out

    def track(self, activity_id: str, *, since: str | None = None, limit: int = 1_000
              ) -> dict[str, Any]:
        """One of the caller's activities' last positions and monitoring status."""
        out: dict[str, Any] = self._call(
            "GET", f"/activities/{_seg(activity_id)}/track",
            params={"limit": limit, **({"since": since} if since else {})})
        return out

    def shared_track(self, link: str, *, limit: int = 1_000) -> dict[str, Any]:
        """Another party's track through the link an event carried (``/v1/tracks/N``)."""
        out: dict[str, Any] = self._call("GET", link.removeprefix("/v1"),
                                         params={"limit": limit})
        return out

    # -- minima and administration ------------------------------------------------
    def minima(self) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", "/minima")
        return out

    def set_minima(self, minima: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self._call("PUT", "/minima", json=minima)
        return out

    def add_party(self, name: str, contact: str | None = None,
                  escalation: str | None = None) -> dict[str, Any]:
        """Admin: create a party; the result holds its token (shown only now)."""
        out: dict[str, Any] = self._call("POST", "/parties", json={
            "name": name, "contact": contact, "escalation": escalation})
        return out

    def ack_policy(self) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", "/ack-policy")
        return out

    def set_ack_policy(self, policy: dict[str, Any]) -> dict[str, Any]:
        """Admin: acknowledgement deadlines by lead time."""
        out: dict[str, Any] = self._call("PUT", "/ack-policy", json=policy)
        return out

    def verify_audit(self) -> dict[str, Any]:
        """Admin: recompute the audit chain."""
        out: dict[str, Any] = self._call("GET", "/audit/verify")
        return out

    def audit_conflict(self, conflict_id: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self._call("GET", f"/audit/conflicts/{int(conflict_id)}")
        return out

    def review(self, start: str, end: str) -> dict[str, Any]:
        """Admin: the periodic review over [start, end)."""
        out: dict[str, Any] = self._call("GET", "/review", params={"from": start, "to": end})
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
                          field=errors[0].get("field") or None,
                          item=errors[0].get("item") or None)
    cls = _BY_KIND.get(kind)
    if cls is not None and cls is not DetenteError:
        return cls(detail)
    return DetenteError(f"HTTP {r.status_code}: {detail}")
