"""The store contract: what the service needs from any backend.

Every mutating call happens inside ``with store.write():``, which holds the
backend's write lock for its whole duration: detection reads and the writes it
decides are one atomic step, so two submissions can never slip past each other.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from ..core.minima import Minima, Separation
from ..core.volumes import VolumeSet
from .dialogue_contract import DialogueStore, Side
from .dss_contract import DssStore
from .track_contract import TrackStore


@dataclass
class StoredVolumes:
    """Stored volumes as a :class:`VolumeSet` plus their database keys."""

    volumes: VolumeSet
    volume_id: np.ndarray  # int64
    owner_id: np.ndarray  # int64: activity id, or zone id for zone volumes


@dataclass(frozen=True)
class ActivityRow:
    id: int
    party: str
    ext_id: str
    kind: str | None
    state: str
    version: int
    created_at: str
    updated_at: str
    volume_count: int = 0
    is_zone: bool = False
    restriction: str | None = None
    applies_to: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PartyRow:
    id: int
    name: str
    contact: str | None
    created_at: str
    escalation: str | None = None  # who is told when the party misses a deadline


@dataclass(frozen=True)
class ConflictRow:
    id: int
    activity_a: str
    party_a: str
    activity_b: str
    party_b: str
    status: str
    opened_at: str
    updated_at: str
    pairs: list[dict[str, Any]]
    owner_a: int = 0  # the activities' store ids
    owner_b: int = 0
    starts: int = 0  # ns: the earliest start of its volumes
    ends: int = 0  # ns: the latest end
    deadline: str | None = None  # by when each party must acknowledge
    sides: dict[str, Side] = field(default_factory=dict)


@dataclass(frozen=True)
class ConflictUpsert:
    """A conflict found now, between two activities (store ids, either order)."""

    owner_a: int
    owner_b: int
    pairs: list[dict[str, Any]]
    starts: int
    ends: int
    deadline: str
    moved: bool = False  # one of its activities' volumes changed: the conflict changed


class Store(DialogueStore, DssStore, TrackStore, Protocol):
    def close(self) -> None: ...

    def initialise(self, minima: Minima) -> None:
        """Create the schema (idempotent) and set the minima if none are set."""

    def upgrade(self) -> list[str]:
        """Bring an existing database's schema to this version; returns the versions
        (migrations) applied, none if it was current."""

    def is_initialised(self) -> bool: ...

    def require(self) -> None:
        """Refuse (DetenteError, naming the fix) a database that is not detente's or
        is of another schema version."""

    def write(self) -> AbstractContextManager[None]:
        """A write transaction holding the write lock; rolls back on error."""

    def get_minima(self) -> Minima: ...

    def set_minima(self, minima: Minima) -> None: ...

    def find_owner(self, party: str, ext_id: str, *, zone: bool) -> ActivityRow | None: ...

    def find_owners(self, keys: Sequence[tuple[str, str]], *, zone: bool
                    ) -> dict[tuple[str, str], ActivityRow]: ...

    def create_owners(self, rows: Sequence[tuple[str, str, str | None, str | None,
                                                 Sequence[str] | None]],
                      *, zone: bool, now: str) -> list[int]: ...

    def replace_owners(self, rows: Sequence[tuple[int, str | None, str | None,
                                                  Sequence[str] | None]],
                       *, zone: bool, now: str) -> None: ...

    def set_state(self, owner_id: int, state: str, now: str) -> None: ...

    def change_counts(self) -> tuple[int, int]:
        """(plans, zones): numbers that change whenever a plan is replaced, cancelled or
        ended, and whenever any zone changes."""
        ...

    def owner_rows(self, owner_ids: Sequence[int]) -> dict[int, ActivityRow]: ...

    def insert_volumes(self, owner_ids: np.ndarray, vols: VolumeSet, *, zone: bool
                       ) -> np.ndarray: ...

    def candidates(self, query: VolumeSet, widen: Separation, *, zone: bool
                   ) -> tuple[StoredVolumes, np.ndarray, np.ndarray]:
        """Stored live volumes that may be within ``widen`` of each query volume.

        Returns the stored volumes and candidate pairs ``(query index, stored index)``:
        a superset of the true conflicts (never a miss).
        """

    def live_count(self, *, zone: bool) -> int:
        """How many volumes of live (not cancelled, not ended) owners are stored."""

    def live_volumes(self, *, zone: bool) -> StoredVolumes:
        """Every live stored volume, for bulk detection in memory."""

    def volumes_of(self, owner_ids: Sequence[int], *, zone: bool) -> StoredVolumes: ...

    def upsert_conflicts(self, items: Sequence[ConflictUpsert], now: str
                         ) -> list[tuple[int, str | None]]:
        """Open (or keep, with fresh volume pairs) one conflict per activity pair; per
        item its id and what happened: ``opened``, ``reopened`` (it had been resolved or
        had expired), ``changed`` (other volume pairs, or ``moved``; the sides are
        reset) or None."""

    def resolve_conflicts(self, owner_ids: Sequence[int], keep: set[int], now: str
                          ) -> list[int]:
        """Resolve the live conflicts of these activities except those in ``keep``."""

    def record_violations(self, rows: list[dict[str, Any]], now: str) -> None: ...

    def clear_violations(self, owner_id: int, *, zone: bool) -> None: ...

    def list_owners(self, *, party: str | None, zone: bool, live: bool = False,
                    after_id: int | None = None, limit: int | None = None
                    ) -> list[ActivityRow]:
        """In creation (id) order; ``live``: none cancelled; ``after_id`` and ``limit``:
        a page of those created after that one."""

    def list_conflicts(self, *, party: str | None, status: str | None,
                       conflict_id: int | None = None,
                       conflict_ids: Sequence[int] | None = None,
                       after: int | None = None, limit: int | None = None
                       ) -> list[ConflictRow]:
        """Conflicts by party (either side), status (one, or ``live``: open,
        acknowledged or accepted) and id or ids, in id order; a page of them with
        ``after`` (ids above it) and ``limit``."""

    def list_violations(self, *, party: str | None) -> list[dict[str, Any]]: ...

    def iter_export(self, *, party: str | None) -> Iterator[tuple[ActivityRow, VolumeSet]]: ...

    def add_party(self, name: str, contact: str | None, now: str) -> PartyRow: ...

    def list_parties(self) -> list[PartyRow]: ...

    def find_party(self, name: str) -> PartyRow | None: ...

    def add_token(self, token_hash: str, party_id: int | None, now: str) -> None: ...

    def revoke_tokens(self, party_id: int | None, now: str) -> int: ...

    def token_owner(self, token_hash: str) -> tuple[bool, PartyRow | None]: ...

    def set_details(self, owner_id: int, notes: str | None, contact: str | None) -> None: ...

    def details(self, owner_id: int) -> tuple[str | None, str | None]: ...

    def owner_extents(self, owner_ids: Sequence[int]
                      ) -> dict[int, tuple[float, float, float, float, int, int]]:
        """Per owner: (min lon, min lat, max lon, max lat, start ns, end ns) of its
        volumes (longitudes unwrapped)."""
