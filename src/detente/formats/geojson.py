"""Writing stored activities and zones back as a scenario (the format 'submit' reads)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..core.geometry_json import volume_geometry
from ..core.instants import format_instant
from ..core.volumes import VolumeSet
from ..store.contract import ActivityRow


def export_scenario(owners: Iterable[tuple[ActivityRow, VolumeSet]]) -> dict[str, Any]:
    features = []
    for owner, vols in owners:
        for v in vols:
            props: dict[str, Any] = {
                "party": owner.party, "activity": owner.ext_id,
                "alt_lower_m": v.alt_lower_m, "alt_upper_m": v.alt_upper_m,
                "time_start": format_instant(v.time_start_ns),
                "time_end": format_instant(v.time_end_ns),
            }
            if v.kind is not None:
                props["kind"] = v.kind
            if v.is_circle:
                props["radius_m"] = v.radius_m
            if owner.is_zone:
                props["zone"] = True
                props["restriction"] = owner.restriction
                if owner.applies_to is not None:
                    props["applies_to"] = list(owner.applies_to)
            features.append({"type": "Feature", "id": v.id,
                             "geometry": volume_geometry(v.geometry), "properties": props})
    return {"type": "FeatureCollection", "features": features}
