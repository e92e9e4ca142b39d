"""``detente import``: files in the formats others publish, stored as the party's plans
(all or nothing)."""

from __future__ import annotations

from pathlib import Path

import orjson
import typer

from ..errors import InputError
from .main import DB_HELP, JSON_HELP, _open, _parallel, _read_input
from .output import err, print_json


def template(
    output: Path = typer.Argument(..., help="sites.xlsx, movements.xlsx, or .csv"),
    kind: str | None = typer.Option(None, "--kind", help="sites or movements (default: "
                                    "from the file's name)."),
) -> None:
    """Write a blank spreadsheet to fill in for 'detente import'.

    XLSX with instructions and validation, or CSV with the header.

    Example: detente template sites.xlsx
    """
    from ..formats.sheets import template as blank

    chosen = kind or ("movements" if "movement" in output.name.lower() else
                      "sites" if "site" in output.name.lower() else None)
    if chosen not in ("sites", "movements"):
        raise InputError("sites or movements (or name the file sites... or movements...)",
                         field="--kind")
    file_type = "xlsx" if output.suffix.lower() == ".xlsx" else "csv"
    output.write_bytes(blank(chosen, file_type))
    err.print(f"Wrote a blank {chosen} {file_type.upper()} to {output}.")


def import_(
    file: Path = typer.Argument(..., help="The file ('-': stdin)."),
    fmt: str = typer.Option(..., "--format", "-f",
                            help="ed269: EUROCAE ED-269 UAS geographical zones (JSON); "
                            "sites: a sheet of static sites (CSV or XLSX) -> red lines; "
                            "movements: a sheet of waypoints -> activities, a corridor "
                            "per leg (see 'detente template')."),
    party: str = typer.Option(..., "--party", "-p", help="Whose plans they become (e.g. "
                              "the authority that published the zones)."),
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
    override: bool = typer.Option(False, "--override", help="Proceed even where the plans "
                                  "enter prohibited zones (the override is recorded)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Import plans from another format as one party's, checked like any submission.

    All or nothing: bad input names the feature or row, and the field.

    Examples:
      detente import zones.json --format ed269 --party "CAA" --ground-elevation 320
      detente import sites.xlsx --format sites --party "Relief Alliance"
      detente import convoys.csv --format movements --party "Relief Alliance"
    """
    from ..core.scenario import read_scenario
    from ..formats.ed269 import Ed269Options
    from ..formats.imports import FORMATS, horizon_start, to_scenario

    if fmt not in FORMATS:
        raise InputError(f"one of {', '.join(FORMATS)}", field="--format")
    scenario, summary = to_scenario(
        fmt, _read_input(file), party=party, name=str(file), opts=Ed269Options(
            horizon_start(start, "--horizon-start"), days, ground_elevation, geoid_height))
    svc = _open(db)
    result = svc.submit(read_scenario(orjson.dumps(scenario), default_party=party,
                                      parallel=_parallel()), override=override, actor=party)
    summary["entries"] = len(result.violations)
    summary["conflicts"] = len(result.conflicts)
    if as_json:
        print_json({**summary, "result": result.to_json()})
        return
    skipped = summary.get("skipped", [])
    if fmt != "ed269":
        moved = len(result.created) + len(result.replaced)
        err.print(f"Imported {len(result.zones)} site(s) and {moved} movement(s) of "
                  f"{party} ({summary['volumes']} volume(s)); {len(result.conflicts)} "
                  f"conflict(s), {len(result.violations)} red-line entr(ies).")
        return
    err.print(f"Imported {summary['zones']} zone(s) of {party} ({summary['volumes']} "
              "volume(s)); "
              f"{len(skipped)} without restriction left out"
              + (f" ({', '.join(skipped)})" if skipped else "") + ".")
    if summary["widened"]:
        err.print("AMSL limits were widened by the geoid's extremes (-107 .. +86 m): give "
                  "--geoid-height for exact bands.")
    if result.violations:
        err.print(f"{len(result.violations)} activity volume(s) of other parties enter them.")
