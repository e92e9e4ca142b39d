"""Reading tracks: an activity's own track in full; another party's only through an
open share (a red-line crossing, a proximity or a contingency that concerns the
reader), only from the moment the share opened, and only while it is open. Anything
else answers "not found"."""

from __future__ import annotations

from typing import Any

from ..core.instants import format_instant
from ..errors import NotFound
from ..store.contract import Store
from ..store.track_contract import PositionRow
from .monitor import Monitor
from .monitor_batches import position_json

MAX_POINTS = 10_000


def _position(r: PositionRow) -> dict[str, Any]:
    return position_json(*r[2:10])


def own_track(st: Store, monitor: Monitor, party: str, ext_id: str, since: int, limit: int
              ) -> dict[str, Any]:
    """The track and monitoring status of one of the party's activities."""
    row = st.find_owner(party, ext_id, zone=False)
    if row is None:
        raise NotFound(f"no activity {ext_id!r}")
    points = st.track(monitor.head_of(st, row.id), since, max(1, min(limit, MAX_POINTS)))
    return {"activity": ext_id, "monitoring": monitor.status(row.id),
            "positions": [_position(p) for p in points]}


def shared_track(st: Store, monitor: Monitor, party: str, share_id: int, since: int,
                 limit: int) -> dict[str, Any]:
    share = st.share(share_id)
    if share is None or share.party != party or share.closed_at is not None:
        raise NotFound(f"no track {share_id}")
    owners = st.owner_rows([share.owner_id])
    owner = owners.get(share.owner_id)
    if owner is None:
        raise NotFound(f"no track {share_id}")
    points = st.track(monitor.head_of(st, owner.id), max(since, share.since),
                      max(1, min(limit, MAX_POINTS)))
    return {"track": share_id, "reason": share.reason, "since": format_instant(share.since),
            "counterpart": {"party": owner.party, "kind": owner.kind},
            "positions": [_position(p) for p in points]}
