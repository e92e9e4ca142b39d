"""What live positions need from a store: the track of each activity, its monitoring
status, and the record of which party may see which track, since when.

Positions are the high-rate part of detente (tens of thousands a second), so they are
written in bulk and read by activity; everything else here changes only on an event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# (owner id, previous report's id or 0, t ns, lon, lat, alt m, horizontal accuracy m,
#  vertical accuracy m, speed m/s or NaN, heading deg or NaN, received unix s)
PositionRow = tuple[int, int, int, float, float, float, float, float, float, float, float]


@dataclass(frozen=True)
class ShareRow:
    """A party's sight of another party's track, for the length of an event: a
    red-line crossing, a proximity, or a contingent activity near its own."""

    id: int
    owner_id: int  # the activity whose track is shared
    party: str  # who may see it
    reason: str  # zone | proximity | contingent
    subject: str  # what the event is about (the zone, the other activity, ...)
    since: int  # ns: positions from this time on are visible
    opened_at: str
    closed_at: str | None


@dataclass(frozen=True)
class TrackingRow:
    """An activity's conformance, kept so that a restarted server carries on."""

    owner_id: int
    status: str  # conforming | nonconforming | contingent
    since: int  # ns: when it entered that status


class TrackStore(Protocol):
    def next_position_id(self) -> int:
        """The id the next appended report gets (in a write transaction)."""
        ...

    def add_positions(self, first_id: int, rows: Sequence[PositionRow]) -> None:
        """Append reports with ids from ``first_id`` on (ids follow arrival)."""
        ...

    def track(self, head: int, since: int, limit: int) -> list[PositionRow]:
        """Up to ``limit`` reports walking back from report ``head`` while at or after
        ``since`` (ns), in time order."""
        ...

    def set_heads(self, rows: Sequence[tuple[int, int]], upto: int) -> None:
        """Save activities' newest reports (owner id, head), all known up to id
        ``upto``."""
        ...

    def heads(self) -> tuple[dict[int, int], list[tuple[int, int]]]:
        """The saved heads, and (id, owner id) of every report after them."""
        ...

    def prune_positions(self, received_before: float) -> int:
        """Forget positions received before this Unix time; returns how many."""
        ...

    def set_tracking(self, rows: Sequence[TrackingRow], now: str) -> None: ...

    def tracking_rows(self) -> list[TrackingRow]:
        """Every tracked activity that is still planned or active."""
        ...

    def open_shares(self, rows: Sequence[tuple[int, str, str, str, int]], now: str
                    ) -> list[int]:
        """Open shares (owner id, party, reason, subject, since ns); returns their ids."""
        ...

    def close_shares(self, share_ids: Sequence[int], now: str) -> None: ...

    def open_share_rows(self) -> list[ShareRow]: ...

    def share(self, share_id: int) -> ShareRow | None: ...

    def active_owner_ids(self) -> list[int]:
        """Activities whose state is ``active`` (expected to report)."""
        ...
