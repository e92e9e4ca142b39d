"""The live-position monitor's batches: what one batch of reports (or one tick of the
clock) decided, and writing it: in the order the batches were worked out, each in one
transaction with its positions, status changes, track shares, audit entries and events.

Batches are worked out one at a time (under the monitor's lock) and then written by
their own threads in the same order: a batch's commit (an fsync) overlaps the next
one's checks, and the SQLite writer may commit several in one group.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.instants import format_instant
from ..core.tracking import Fixes
from ..store.contract import ActivityRow, Store
from ..store.track_contract import TrackingRow
from .deconfliction import utc_now
from .journal import Bus, Journal, transaction

CONFORMING, NONCONFORMING, CONTINGENT = "conforming", "nonconforming", "contingent"


@dataclass(frozen=True)
class MonitorSettings:
    grace_s: float = 30.0  # nonconforming this long -> contingent
    silence_s: float = 60.0  # no report this long from an active activity -> silent
    stale_s: float = 10.0  # a position older than this is not live (no proximity)
    retention_s: float = 86_400.0  # positions are kept this long
    max_future_s: float = 30.0  # reports stamped later than now + this are refused
    max_batch: int = 10_000
    heads_every_s: float = 10.0  # how often each activity's newest report is saved

@dataclass
class Tracked:
    """What the monitor knows of one tracked activity."""

    owner: ActivityRow
    t_first: int  # its time window: the earliest start, latest end (ns)
    t_last: int
    status: str = CONFORMING
    since: int = 0  # ns: when it entered that status
    zones: set[int] = field(default_factory=set)  # zones it is inside (owner ids)
    told: set[str] = field(default_factory=set)  # parties told it is contingent


@dataclass
class IngestResult:
    accepted: int
    events: int


def position_json(t: int, lon: float, lat: float, alt: float, hacc: float, vacc: float,
                  speed: float, heading: float) -> dict[str, Any]:
    """A position as events and tracks give it (speed and heading only when known)."""
    out: dict[str, Any] = {"time": format_instant(int(t)), "lon": float(lon),
                           "lat": float(lat), "alt_m": float(alt),
                           "horizontal_accuracy_m": float(hacc),
                           "vertical_accuracy_m": float(vacc)}
    if not math.isnan(speed):
        out["speed_mps"], out["heading_deg"] = float(speed), float(heading)
    return out


def subject(row: ActivityRow) -> str:
    return f"{'zone' if row.is_zone else 'activity'}/{row.party}/{row.ext_id}"


@dataclass
class Share:
    """A share as the monitor tracks it: open from the batch that decides so (its id
    comes when that batch is written) until a later batch closes it."""

    owner_id: int
    party: str
    reason: str
    subject: str
    since: int
    id: int = 0


class Batch:
    """The outcome of one batch, written in one transaction: tracking rows, shares to
    open and close, audit entries and events (whose bodies may name a share's track)."""

    def __init__(self) -> None:
        self.tracking: list[TrackingRow] = []
        self.open: list[Share] = []
        self.close: list[Share] = []
        self.audit: list[tuple[str, str, dict[str, Any]]] = []
        self.events: list[tuple[str, str, dict[str, Any], Share | None]] = []

    def tell(self, party: str, type_: str, body: dict[str, Any],
             share: Share | None = None) -> None:
        """An event; ``share``: the share whose track link goes in its counterpart."""
        self.events.append((party, type_, body, share))

    def __bool__(self) -> bool:
        return bool(self.tracking or self.open or self.close or self.audit or self.events)


class BatchWriter:
    """Writes batches in ticket order (a mixin of the monitor, whose state it updates:
    each activity's newest stored report)."""

    lock: threading.RLock
    turn: threading.Condition
    tickets: int
    written: int
    bus: Bus | None
    head: np.ndarray
    owner_id: np.ndarray
    heads_dirty: set[int]
    last_id: int

    def _forget(self) -> None:
        raise NotImplementedError

    def _ticket(self) -> int:
        """This batch's place in the order of writing (taken under ``lock``)."""
        self.tickets += 1
        return self.tickets

    def _write(self, st: Store, actor: str, batch: Batch,
               reports: tuple[np.ndarray, Fixes, float] | None, ticket: int,
               save_heads: bool = False) -> int:
        """Write a batch once every earlier one has been; the next may start as soon as
        this one's statements are in (its commit may then take both). If the write
        fails, the monitor forgets its state and rebuilds it from the store, which
        holds only what was written."""
        with self.turn:
            while self.written != ticket - 1:
                self.turn.wait()
        passed = False

        def pass_turn() -> None:
            nonlocal passed
            if not passed:
                passed = True
                with self.turn:
                    self.written = ticket
                    self.turn.notify_all()

        try:
            save_heads = save_heads and bool(self.heads_dirty)
            if reports is not None or batch or save_heads:
                with transaction(st, utc_now, actor, self.bus) as j:
                    if reports is not None:
                        self._append(st, *reports)
                    if save_heads:
                        self._save_heads(st)
                    self._flush(st, j, batch)
                    pass_turn()
        except BaseException:
            with self.lock:
                self._forget()
            raise
        finally:
            pass_turn()
        return len(batch.events)

    def _append(self, st: Store, s: np.ndarray, f: Fixes, received: float) -> None:
        """Append a batch's reports (sorted by activity, then time), each pointing to
        its activity's previous one; the activities' heads move to their last."""
        n = len(s)
        first = st.next_position_id()
        ids = np.arange(first, first + n, dtype=np.int64)
        same = np.r_[False, s[1:] == s[:-1]]
        prev = np.where(same, ids - 1, self.head[s])
        last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
        self.head[s[last]] = ids[last]
        self.heads_dirty.update(s[last].tolist())
        st.add_positions(first, list(zip(
            self.owner_id[s].tolist(), prev.tolist(), f.t.tolist(), f.lon.tolist(),
            f.lat.tolist(), f.alt.tolist(), f.hacc.tolist(), f.vacc.tolist(),
            f.speed.tolist(), f.heading.tolist(), [received] * n, strict=True)))
        self.last_id = int(ids[-1])

    def _save_heads(self, st: Store) -> None:
        """Save the heads that moved (a restart reads only the reports after them: at
        most ``heads_every_s`` of them; saving 10,000 heads every second cost the
        batch written after it up to tens of milliseconds)."""
        dirty, self.heads_dirty = self.heads_dirty, set()
        st.set_heads([(int(self.owner_id[k]), int(self.head[k])) for k in sorted(dirty)],
                     self.last_id)

    def _flush(self, st: Store, j: Journal, batch: Batch) -> None:
        st.set_tracking(batch.tracking, j.now)
        ids = st.open_shares([(sh.owner_id, sh.party, sh.reason, sh.subject, sh.since)
                              for sh in batch.open], j.now)
        for share, sid in zip(batch.open, ids, strict=True):
            share.id = sid
        st.close_shares([sh.id for sh in batch.close if sh.id], j.now)
        for action, subject, detail in batch.audit:
            j.audit(action, subject, detail)
        for party, type_, body, link in batch.events:
            if link is not None and link.id:
                body["counterpart"]["track"] = f"/v1/tracks/{link.id}"
            j.event(party, type_, body)
