"""``detente import``: files in the formats others publish, stored as the party's plans
(all or nothing)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import typer

from ..errors import InputError
from .main import DB_HELP, JSON_HELP, _open, _parallel, _read_input
from .output import err, print_json

FORMATS = ("ed269",)


def horizon_start(text: str | None) -> datetime:
    """The import horizon's start: the given instant, else today 00:00 UTC."""
    from ..formats.ed269 import read_instant

    if text is not None:
        return read_instant(text, "--horizon-start", "--horizon-start")
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def import_(
    file: Path = typer.Argument(..., help="The file ('-': stdin)."),
    fmt: str = typer.Option("ed269", "--format", "-f",
                            help="ed269: EUROCAE ED-269 UAS geographical zones (JSON)."),
    party: str = typer.Option(..., "--party", "-p", help="Whose red lines they become "
                              "(e.g. the authority that published them)."),
    ground_elevation: float | None = typer.Option(
        None, "--ground-elevation", help="Ground elevation (metres AMSL) for AGL limits; "
        "without it an AGL upper limit is refused."),
    geoid_height: float | None = typer.Option(
        None, "--geoid-height", help="The geoid's height above the WGS 84 ellipsoid here "
        "(metres), to turn AMSL into ellipsoid heights; without it AMSL bands are widened "
        "by the geoid's extremes (-107 .. +86 m)."),
    start: str | None = typer.Option(None, "--horizon-start", help="RFC 3339: where "
                                     "permanent and weekly zones start (default: today "
                                     "00:00Z)."),
    days: int = typer.Option(14, "--horizon-days", min=1, max=366,
                             help="How many days permanent and weekly zones cover."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import red lines from another format as one party's zones, checked like any
    submission (all or nothing; bad input names the feature and the field).

    Example: detente import zones.json --format ed269 --party "CAA" --ground-elevation 320
    """
    from ..core.scenario import read_scenario
    from ..formats.ed269 import Ed269Options, read_ed269

    if fmt not in FORMATS:
        raise InputError(f"one of {', '.join(FORMATS)}", field="--format")
    try:
        doc = orjson.loads(_read_input(file))
    except orjson.JSONDecodeError as exc:
        raise InputError(f"not JSON: {exc}", item=str(file)) from None
    imp = read_ed269(doc, party=party, opts=Ed269Options(
        horizon_start(start), days, ground_elevation, geoid_height))
    svc = _open(db)
    result = svc.submit(read_scenario(imp.scenario, default_party=party,
                                      parallel=_parallel()), actor=party)
    summary = {"zones": imp.zones, "volumes": imp.volumes, "skipped": imp.skipped,
               "widened": imp.widened, "entries": len(result.violations)}
    if as_json:
        print_json({**summary, "result": result.to_json()})
        return
    err.print(f"Imported {imp.zones} zone(s) of {party} ({imp.volumes} volume(s)); "
              f"{len(imp.skipped)} without restriction left out"
              + (f" ({', '.join(imp.skipped)})" if imp.skipped else "") + ".")
    if imp.widened:
        err.print("AMSL limits were widened by the geoid's extremes (-107 .. +86 m): give "
                  "--geoid-height for exact bands.")
    if result.violations:
        err.print(f"{len(result.violations)} activity volume(s) of other parties enter them.")
