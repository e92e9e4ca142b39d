"""Reading tracks: an activity's own track in full; another party's only through an
open share (a red-line crossing, a proximity or a contingency that concerns the
reader), only from the moment the share opened, and only while it is open. Anything
else answers "not found"."""

from __future__ import annotations

import math
from typing import Any

from ..core.instants import format_instant
from ..errors import NotFound
from ..store.contract import Store
from ..store.track_contract import PositionRow
from .monitor import Monitor

MAX_POINTS = 10_000


def position_json(r: PositionRow) -> dict[str, Any]:
    out: dict[str, Any] = {"time": format_instant(r[2]), "lon": r[3], "lat": r[4],
                           "alt_m": r[5], "horizontal_accuracy_m": r[6],
                           "vertical_accuracy_m": r[7]}
    if not math.isnan(r[8]):
        out["speed_mps"], out["heading_deg"] = r[8], r[9]
    return out


def own_track(st: Store, monitor: Monitor, party: str, ext_id: str, since: int, limit: int
              ) -> dict[str, Any]:
    """The track and monitoring status of one of the party's activities."""
    row = st.find_owner(party, ext_id, zone=False)
    if row is None:
        raise NotFound(f"no activity {ext_id!r}")
    points = st.track(monitor.head_of(st, row.id), since, max(1, min(limit, MAX_POINTS)))
    return {"activity": ext_id, "monitoring": monitor.status(row.id),
            "positions": [position_json(p) for p in points]}


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
            "positions": [position_json(p) for p in points]}
