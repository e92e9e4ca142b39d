"""Files in the formats others publish, as a detente scenario: the one entry point of
``detente import`` and ``POST /v1/import``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from ..errors import InputError
from .ed269 import Ed269Options, read_ed269, read_instant
from .sheets import movements_to_scenario, read_rows, sites_to_scenario

FORMATS = ("ed269", "sites", "movements")


def horizon_start(text: str | None, field: str) -> datetime:
    """Where permanent and weekly zones start: the given instant, else today 00:00 UTC."""
    if text is not None:
        return read_instant(text, field, field)
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def to_scenario(fmt: str, data: bytes, *, party: str, opts: Ed269Options, name: str = ""
                ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the scenario of ``party``'s plans, a summary) of a file; ``name`` is its file
    name, if any (an ``.xlsx`` one is read as a workbook whatever its bytes)."""
    if fmt == "ed269":
        try:
            doc = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise InputError(f"not JSON: {exc}", item=name or None) from None
        imp = read_ed269(doc, party=party, opts=opts)
        return imp.scenario, {"zones": imp.zones, "volumes": imp.volumes,
                              "skipped": imp.skipped, "widened": imp.widened}
    if fmt not in FORMATS:
        raise InputError(f"one of {', '.join(FORMATS)}", field="format")
    xlsx = name.lower().endswith(".xlsx") or data[:2] == b"PK"  # (a zip archive)
    rows = read_rows(data, "xlsx" if xlsx else "csv")
    scenario = (sites_to_scenario if fmt == "sites" else movements_to_scenario)(rows, party)
    return scenario, {"volumes": len(scenario["features"])}
