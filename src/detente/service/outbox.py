"""Events and webhook subscriptions: what a party is told, and where.

Events are written to the outbox by the transaction that causes them (see
:mod:`.journal`), one row per recipient party with a body in that party's terms, so a
party can only ever receive what it is entitled to see. Webhook bodies are signed
like Stripe's: ``Detente-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>" with the subscription's secret>``.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from ..errors import InputError, NotFound
from ..store.contract import Store
from ..store.dialogue_contract import EventRow, WebhookRow
from .journal import Bus, transaction

EVENT_TYPES = (
    "conflict.opened", "conflict.changed", "conflict.resolved", "conflict.acknowledged",
    "conflict.accepted", "conflict.escalated", "conflict.expired", "message.created",
    "incident.reported", "incident.updated", "zone.entered", "zone.override",
    # live positions (see :mod:`.monitor`)
    "activity.nonconforming", "activity.contingent", "activity.conforming",
    "activity.silent", "activity.reporting", "zone.crossed", "zone.exited",
    "proximity.started", "proximity.ended",
)
SIGNATURE_HEADER = "Detente-Signature"
SECRET_PREFIX = "whsec_"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for a body sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, tolerance_s: float = 300,
           now: float | None = None) -> bool:
    """Whether a received body is signed with this secret, recently (replays of old
    bodies fail)."""
    try:
        parts = [p.split("=", 1) for p in header.split(",")]
        timestamp = int(dict(parts)["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, p[1]) for p in parts if p[0] == "v1")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Destinations:
    """Where webhooks may be sent: public addresses, and the networks the server's
    operator allows besides (a receiver on the same host, the internal network).

    A party chooses its webhook's URL; the server POSTs to it and shows the party each
    outcome (status, error, time). Unchecked, that lets a party reach and probe the
    server's own network (a database port, cloud metadata at 169.254.169.254), which
    is no party's business. Names are checked where the connection is made, on the
    addresses they resolve to then (see :mod:`detente.api.egress`); a literal address
    or ``localhost`` is refused already when the webhook is registered.
    """

    allow: tuple[Network, ...] = ()

    @classmethod
    def allowing(cls, networks: Sequence[str]) -> Destinations:
        """From CIDR texts (``127.0.0.0/8``, ``10.1.2.3``, ``fd00::/8``)."""
        parsed = []
        for text in networks:
            try:
                parsed.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise InputError(f"--webhook-allow: not a network: {text!r} (write it as "
                                 "10.0.0.0/8, 127.0.0.1 or fd00::/8)") from None
        return cls(tuple(parsed))

    def permits(self, address: str) -> bool:
        """Whether a webhook may be sent to this IP address."""
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
        if any(ip in net for net in self.allow):
            return True
        return ip.is_global and not ip.is_multicast

    def refusal(self, host: str) -> str | None:
        """Why a URL's host is refused before any lookup (a literal address or
        localhost outside what is allowed), or None."""
        name = host.strip("[]").lower().rstrip(".")
        if name == "localhost" or name.endswith(".localhost"):
            address = "127.0.0.1"
        else:
            try:
                address = str(ipaddress.ip_address(name.split("%", 1)[0]))
            except ValueError:
                return None  # a name: checked on the addresses it resolves to, when sent
        if self.permits(address):
            return None
        return (f"{host} is a private, loopback or link-local address, where this server "
                "does not send webhooks (its operator can allow a network: detente "
                "serve --webhook-allow CIDR)")


def event_json(e: EventRow) -> dict[str, Any]:
    """An event as delivered: its id (unique: de-duplicate on it), time and body."""
    return {"id": e.id, "created_at": e.created_at, **orjson.loads(e.body)}


def webhook_json(w: WebhookRow) -> dict[str, Any]:
    return {"id": w.id, "url": w.url, "types": list(w.types) if w.types else None,
            "created_at": w.created_at}


class Outbox:
    """A party's events and webhook subscriptions."""

    def __init__(self, store: Store, clock: Callable[[], str], bus: Bus | None = None,
                 destinations: Destinations | None = None):
        self.store = store
        self.clock = clock
        self.bus = bus
        self.destinations = destinations or Destinations()

    def events(self, party: str, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        return [event_json(e) for e in self.store.events_after(party, after, limit)]

    def newest_event(self, party: str) -> int:
        """The id of the party's newest event (0: none yet): where to start following
        what happens from now on, without replaying the history."""
        return self.store.last_event_id(party)

    def add_webhook(self, party: str, url: str, types: Sequence[str] | None = None
                    ) -> tuple[dict[str, Any], str]:
        """Subscribe a URL to the party's events (all, or these types); returns the
        subscription and its signing secret, shown only now."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 2000:
            raise InputError("an http:// or https:// URL (at most 2,000 characters)",
                             item="webhook", field="url")
        try:
            host = parts.hostname or ""
            parts.port  # noqa: B018 (raises on a port that is not a number)
        except ValueError:
            raise InputError("the URL's port must be a number from 0 to 65535",
                             item="webhook", field="url") from None
        refused = self.destinations.refusal(host)
        if refused is not None:
            raise InputError(refused, item="webhook", field="url")
        if types is not None:
            unknown = sorted(set(types) - set(EVENT_TYPES))
            if unknown or not types:
                raise InputError(f"unknown event type(s) {unknown}; known: "
                                 f"{', '.join(EVENT_TYPES)}" if unknown else
                                 "at least one event type (or leave it out for all)",
                                 item="webhook", field="types")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        with transaction(self.store, self.clock, party, self.bus) as j:
            row = self.store.add_webhook(party, url, secret, types, j.now)
            j.audit("webhook.created", f"webhook/{row.id}", {"party": party, "url": url},
                    after=webhook_json(row))
        return webhook_json(row), secret

    def webhooks(self, party: str) -> list[dict[str, Any]]:
        return [webhook_json(w) for w in self.store.list_webhooks(party)]

    def delete_webhook(self, party: str, webhook_id: int) -> None:
        with transaction(self.store, self.clock, party, self.bus) as j:
            if not self.store.delete_webhook(party, webhook_id, j.now):
                raise NotFound(f"no webhook {webhook_id}")
            j.audit("webhook.deleted", f"webhook/{webhook_id}", {"party": party},
                    before_digest=j.last_after(f"webhook/{webhook_id}"))

    def redeliver(self, party: str, webhook_id: int, after: int = 0,
                  everything: bool = False) -> int:
        """Send a webhook's events after id ``after`` again: those given up after the
        retry window (a receiver down longer than that), or with ``everything`` all of
        them, delivered or not (a receiver that lost what it had, or a new webhook that
        should have the history). Receivers de-duplicate on the event id. Returns how
        many were queued."""
        hook = self._own_webhook(party, webhook_id)
        if after < 0:
            raise InputError("an event id (0: from the first)", item="redelivery",
                             field="after")
        with transaction(self.store, self.clock, party, self.bus) as j:
            queued = self.store.requeue(hook, after, everything, time.time())
            j.audit("webhook.redeliver", f"webhook/{webhook_id}",
                    {"party": party, "after": after, "everything": everything,
                     "queued": queued})
        return queued

    def deliveries(self, party: str, webhook_id: int, limit: int = 100
                   ) -> list[dict[str, object]]:
        """The delivery log: every attempt, newest first."""
        return self.store.list_attempts(self._own_webhook(party, webhook_id).id, limit)

    def _own_webhook(self, party: str, webhook_id: int) -> WebhookRow:
        """The party's live webhook of this id; another's, or none, is not found."""
        for w in self.store.list_webhooks(party):
            if w.id == webhook_id:
                return w
        raise NotFound(f"no webhook {webhook_id}")
