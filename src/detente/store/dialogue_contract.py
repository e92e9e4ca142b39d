"""The store contract's dialogue half: conflict sides, the outbox, webhooks, hotline
threads, incidents and the audit chain. Rows are plain values; JSON columns are
handed over as text and parsed by the service, which owns their shape."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol


@dataclass(frozen=True)
class Side:
    """One party's side of a conflict."""

    acked_at: str | None = None
    accepted_at: str | None = None
    escalated_at: str | None = None


@dataclass(frozen=True)
class EventRow:
    id: int
    party: str
    type: str
    conflict_id: int | None
    body: str
    created_at: str


@dataclass(frozen=True)
class WebhookRow:
    id: int
    party: str
    url: str
    secret: str
    types: tuple[str, ...] | None
    created_at: str


@dataclass(frozen=True)
class Due:
    """A delivery a webhook owes now: its oldest undelivered event."""

    webhook: WebhookRow
    event: EventRow
    attempts: int


@dataclass(frozen=True)
class Attempt:
    """One delivery attempt's outcome."""

    webhook_id: int
    event_id: int
    status: int | None
    error: str | None
    ms: float
    delivered: bool
    next_at: float | None  # when to try again (None with delivered False: give up)


@dataclass(frozen=True)
class ThreadRow:
    id: int
    conflict_id: int | None
    party_a: str
    party_b: str
    created_at: str


@dataclass(frozen=True)
class MessageRow:
    id: int
    thread_id: int
    sender: str
    body: str
    corrects: int | None
    created_at: str
    receipts: dict[str, tuple[str | None, str | None]]  # party -> (delivered, read)


@dataclass(frozen=True)
class IncidentRow:
    id: int
    reporter: str
    location: str  # GeoJSON text
    occurred_at: str
    description: str
    severity: str
    status: str
    parties: tuple[str, ...]
    activities: str  # JSON list of {"party", "activity"}
    conflicts: tuple[int, ...]
    created_at: str
    updated_at: str


class AuditRow(NamedTuple):
    """One audit entry; a tuple in the table's column order, so a batch of them is
    written as it is (an import writes a million: a frozen dataclass cost twice as
    much to make, and then a tuple each to write)."""

    seq: int
    at: str
    actor: str
    action: str
    subject: str
    before: str | None
    after: str | None
    detail: str
    prev: str
    hash: str


class DialogueStore(Protocol):
    # -- conflict sides and lifecycle -------------------------------------------
    def conflict_sides(self, conflict_ids: Sequence[int]) -> dict[int, dict[str, Side]]: ...

    def mark_side(self, conflict_id: int, party: str, field: str, now: str) -> None:
        """Set ``acked_at``, ``accepted_at`` or ``escalated_at`` of one side."""

    def set_conflict_status(self, conflict_id: int, status: str, now: str) -> None: ...

    def overdue(self, now: str, conflict_ids: Sequence[int] | None = None
                ) -> list[tuple[int, str]]:
        """(conflict, party) of open conflicts past their deadline that the party has
        neither acknowledged nor been escalated for (among ``conflict_ids`` if given)."""

    def expiring(self, now_ns: int, conflict_ids: Sequence[int] | None = None) -> list[int]:
        """Live conflicts whose volumes have all ended (among ``conflict_ids`` if
        given)."""

    # -- outbox and webhooks ----------------------------------------------------
    def add_events(self, rows: Sequence[tuple[str, str, int | None, str]], now: str,
                   now_unix: float) -> list[int]:
        """Append (party, type, conflict id, body) events and queue them for the
        party's webhooks; returns their ids."""

    def events_after(self, party: str, after: int, limit: int) -> list[EventRow]: ...

    def events_for(self, parties: Sequence[str], after: int, upto: int, limit: int
                   ) -> list[EventRow]:
        """Events of these parties with ``after < id <= upto``, in id order, at most
        ``limit`` of them."""

    def last_event_id(self, party: str | None = None) -> int:
        """The newest event's id (of this party's; 0: none)."""
        ...

    def conflict_events(self, conflict_id: int
                        ) -> list[tuple[EventRow, list[tuple[int, str | None, int]]]]:
        """A conflict's events, each with its deliveries (webhook, delivered at,
        attempts)."""

    def add_webhook(self, party: str, url: str, secret: str,
                    types: Sequence[str] | None, now: str) -> WebhookRow: ...

    def list_webhooks(self, party: str | None) -> list[WebhookRow]: ...

    def delete_webhook(self, party: str, webhook_id: int, now: str) -> bool: ...

    def due(self, now_unix: float, busy: Sequence[int], limit: int) -> list[list[Due]]:
        """Per webhook not in ``busy`` nor claimed (leased) whose oldest undelivered
        event is due now: up to ``limit`` of its undelivered events, oldest first."""

    def claim(self, leases: Sequence[tuple[int, float | None]], until: float, now: float
              ) -> list[int]:
        """Lease (webhook, the lease the caller holds on it or None) webhooks'
        deliveries to the caller until ``until`` (in a write): returns those that were
        free, had run out, or were still the caller's. Several server processes on one
        database then deliver each event once; a crashed one's leases soon run out."""

    def next_due(self) -> float | None:
        """When the earliest pending delivery falls due (Unix seconds)."""

    def record_attempts(self, attempts: Sequence[Attempt], now: str) -> None:
        """Log attempts; mark each delivered, rescheduled (next_at) or given up; end
        their webhooks' leases."""

    def list_attempts(self, webhook_id: int, limit: int) -> list[dict[str, object]]: ...

    def requeue(self, webhook: WebhookRow, after: int, everything: bool, now_unix: float
                ) -> int:
        """Send the webhook's events after id ``after`` again, from now: those given up
        (or, with ``everything``, every one of its party's events of its types,
        delivered or not, or made before it existed); how many."""

    # -- hotline ----------------------------------------------------------------
    def thread(self, conflict_id: int | None, party_a: str, party_b: str, now: str
               ) -> ThreadRow:
        """The conflict's thread, or the two parties' direct thread; made if missing."""

    def find_thread(self, thread_id: int) -> ThreadRow | None: ...

    def list_threads(self, party: str) -> list[tuple[ThreadRow, int, int]]:
        """The party's threads with (messages, unread by the party)."""

    def add_message(self, thread_id: int, sender: str, body: str, corrects: int | None,
                    recipients: Sequence[str], now: str) -> MessageRow: ...

    def list_messages(self, thread_id: int) -> list[MessageRow]: ...

    def mark_receipts(self, message_ids: Sequence[int], party: str, field: str, now: str
                      ) -> list[int]:
        """Set ``delivered_at`` or ``read_at`` where unset; returns the messages changed."""

    # -- incidents --------------------------------------------------------------
    def add_incident(self, reporter: str, location: str, occurred_at: str, description: str,
                     severity: str, parties: Sequence[str], activities: str,
                     conflicts: Sequence[int], now: str) -> IncidentRow: ...

    def list_incidents(self, party: str | None, incident_id: int | None = None
                       ) -> list[IncidentRow]: ...

    def set_incident_status(self, incident_id: int, status: str, now: str) -> None: ...

    # -- audit ------------------------------------------------------------------
    def audit_head(self) -> tuple[int, str]:
        """The last entry's (seq, hash); (0, "") when the log is empty."""

    def append_audit(self, rows: Sequence[AuditRow]) -> None: ...

    def audit_last_after(self, subject: str, actions: Sequence[str] | None = None
                         ) -> str | None:
        """The ``after`` digest of the subject's newest entry (of these ``actions``)."""

    def iter_audit(self, subjects: Sequence[str] | None = None) -> Iterator[AuditRow]: ...

    # -- settings and parties ---------------------------------------------------
    def get_setting(self, key: str) -> str | None: ...

    def set_setting(self, key: str, value: str) -> None: ...

    def set_escalation(self, party_id: int, contact: str | None) -> None: ...
