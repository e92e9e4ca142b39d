"""The ``detente`` command line.

Exit codes, mapped here and nowhere else: 0 nothing found / success, 1 conflicts or
violations found (or a submission refused), 2 bad input or usage, 3 not found,
4 any other detente error.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Any

import orjson
import typer

from ..errors import DetenteError, InputError, NotFound, Refused, StaleVersion
from .output import console, err, print_json, progress_bar, table

EXIT_FOUND = 1
EXIT_INPUT = 2
EXIT_NOT_FOUND = 3
EXIT_ERROR = 4

app = typer.Typer(
    name="detente",
    help=(
        "detente: deconfliction between parties that share a space but not a command.\n\n"
        "Each party declares activities as 4D volumes (footprint x altitude band x time "
        "window) and red lines; detente finds every pair of volumes of different parties "
        "closer than the separation minima, and every entry into a red line.\n\n"
        "Start with 'detente demo' (a served demo with four parties), 'detente check "
        "examples/maiduguri.geojson' (stateless), or 'detente init' then 'detente submit "
        "FILE --party NAME' to keep a database."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

STATUSES = ("open", "acknowledged", "accepted", "resolved", "expired", "live")
DB_HELP = ("The database: a SQLite file, or postgresql://user@host/name for the PostGIS "
           "server backend. Default: $DETENTE_DATABASE_URL, else $DETENTE_DB, else "
           "./detente.db.")
JSON_HELP = "Print JSON instead of a table."


def _db(db: str | None) -> str:
    if db is not None:
        return db
    return os.environ.get("DETENTE_DATABASE_URL") or os.environ.get("DETENTE_DB", "detente.db")


def _read_input(path: Path) -> bytes:
    if str(path) == "-":
        return sys.stdin.buffer.read()
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None


def _open(db: str | None) -> Any:
    from ..service import Deconfliction
    from ..store import is_server_url, open_store

    path = _db(db)
    if not is_server_url(path) and not Path(path).exists():
        raise NotFound(f"no database at {path}: create one with 'detente init --db {path}'")
    store = open_store(path)
    store.require()
    return Deconfliction(store, parallel=_parallel())


@functools.cache
def _parallel() -> Any:
    """A thread pool's ``map`` over this machine's cores, for detection."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1).map


def _minima(horizontal: float, vertical: float, time: float, minima_file: Path | None) -> Any:
    from ..core.minima import Minima, Separation
    from ..core.scenario import loads_json
    from ..errors import InputError

    if minima_file is not None:
        doc = loads_json(_read_input(minima_file))
        if isinstance(doc, dict) and "default" not in doc:
            doc = {**doc, "default": {"horizontal_m": horizontal, "vertical_m": vertical,
                                      "time_s": time}}
        return Minima.from_json(doc)
    try:
        return Minima(Separation(horizontal, vertical, time))
    except InputError as e:  # name the option that was given, not the JSON field
        flag = {"horizontal_m": "--horizontal", "vertical_m": "--vertical",
                "time_s": "--time"}.get(e.field or "", e.field)
        raise InputError(e.reason, field=flag) from None


HORIZONTAL = typer.Option(0.0, "--horizontal", "-H", metavar="M",
                          help="Horizontal minimum, metres (0: footprints must share area).")
VERTICAL = typer.Option(0.0, "--vertical", "-V", metavar="M",
                        help="Vertical minimum, metres (0: bands must share height).")
TIME = typer.Option(0.0, "--time", "-T", metavar="S",
                    help="Time minimum, seconds (0: windows must share time).")
MINIMA_FILE = typer.Option(
    None, "--minima", metavar="FILE",
    help='JSON minima with per-kind overrides: {"default": {"horizontal_m": 500, ...}, '
         '"overrides": [{"kinds": ["aircraft", "aircraft"], "horizontal_m": 9260, ...}]}.')


@app.command()
def check(
    file: Path = typer.Argument(..., help="Scenario: a GeoJSON FeatureCollection ('-' for stdin)."),
    horizontal: float = HORIZONTAL,
    vertical: float = VERTICAL,
    time: float = TIME,
    minima_file: Path | None = MINIMA_FILE,
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Find conflicts and red-line entries in a scenario file, storing nothing.

    Two volumes of different parties conflict when, on every axis, they overlap or
    their gap is strictly less than the minimum. Exit status: 0 nothing found, 1
    conflicts or violations found, 2 bad input.

    Example: detente check examples/maiduguri.geojson -H 500 -V 150 -T 300 --json
    """
    from ..core.detect import detect
    from ..core.report import check_report
    from ..core.scenario import read_scenario

    minima = _minima(horizontal, vertical, time, minima_file)
    data = _read_input(file)
    with progress_bar(len(data) > 5_000_000) as bar:
        scenario = read_scenario(data, progress=bar.step("reading"), parallel=_parallel())
        bar.stage("detecting")
        found = detect(scenario.activities, scenario.zones, minima, parallel=_parallel())
    report = check_report(scenario, found)
    if as_json:
        print_json(report)
    else:
        c, v = report["conflicts"], report["violations"]
        if c:
            console.print(table(
                f"{len(c)} conflict(s)", ["a", "b", "horizontal m", "vertical m", "time s"],
                [[str(x["a"]), str(x["b"]), x["horizontal_m"], x["vertical_m"], x["time_s"]]
                 for x in c]))
        if v:
            console.print(table(f"{len(v)} red-line entr(ies)", ["volume", "zone"],
                                [[str(x["volume"]), str(x["zone"])] for x in v]))
        if not c and not v:
            console.print(f"No conflicts among {len(scenario.activities)} volume(s).")
    if report["conflicts"] or report["violations"]:
        raise typer.Exit(EXIT_FOUND)


@app.command()
def init(
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    horizontal: float = HORIZONTAL,
    vertical: float = VERTICAL,
    time: float = TIME,
    minima_file: Path | None = MINIMA_FILE,
) -> None:
    """Create a database (or keep an existing one) with the service-wide minima.

    A new database gets an admin token, printed once on stdout: it creates parties
    (detente party add) and sets the minima over HTTP. Keep it safe.
    """
    from ..service.parties import Parties
    from ..store import open_store

    minima = _minima(horizontal, vertical, time, minima_file)
    path = _db(db)
    store = open_store(path)
    fresh = not store.is_initialised()
    store.initialise(minima)
    current = store.get_minima()
    token = Parties(store).admin_token() if fresh else None
    store.close()
    d = current.default
    err.print(f"Database ready at {path} (minima: {d.horizontal_m:g} m horizontal, "
              f"{d.vertical_m:g} m vertical, {d.time_s:g} s).")
    if token is not None:
        err.print("Admin token (shown only now; it manages parties and minima):")
        print(token)


@app.command()
def minima(
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    set_: bool = typer.Option(False, "--set", help="Replace the minima with the options given."),
    horizontal: float = HORIZONTAL,
    vertical: float = VERTICAL,
    time: float = TIME,
    minima_file: Path | None = MINIMA_FILE,
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Show the stored minima, or replace them with --set."""
    svc = _open(db)
    if set_:
        svc.set_minima(_minima(horizontal, vertical, time, minima_file))
    doc = svc.minima().to_json()
    if as_json:
        print_json(doc)
        return
    rows = [["default", "", doc["default"]["horizontal_m"], doc["default"]["vertical_m"],
             doc["default"]["time_s"]]]
    rows += [[o["kinds"][0], o["kinds"][1], o["horizontal_m"], o["vertical_m"], o["time_s"]]
             for o in doc["overrides"]]
    console.print(table("Separation minima", ["kind", "kind", "horizontal m", "vertical m",
                                              "time s"], rows))


@app.command()
def submit(
    file: Path = typer.Argument(..., help="A scenario or a single activity (GeoJSON; '-' stdin)."),
    party: str | None = typer.Option(
        None, "--party", "-p",
        help="Submit as this party: features without 'party' take it; others are refused."),
    override: bool = typer.Option(
        False, "--override", help="Proceed even into prohibited zones (the override is recorded)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Store activities and zones; report the conflicts and red-line entries they cause.

    Volumes are grouped into activities by their 'activity' property (default: the
    feature id). Submitting an activity id the party already has replaces it and
    recomputes its conflicts. Exit status 1 when the submission conflicts or was refused.
    """
    from ..core.scenario import read_scenario

    svc = _open(db)
    data = _read_input(file)
    with progress_bar(len(data) > 5_000_000) as bar:
        scenario = read_scenario(data, default_party=party, progress=bar.step("reading"),
                                 parallel=_parallel())
        result = svc.submit(scenario, override=override, progress=bar.stage)
    if as_json:
        print_json(result.to_json())
    else:
        n_new, n_rep = len(result.created), len(result.replaced)
        err.print(f"Stored {n_new} new and {n_rep} replaced activit(ies), "
                  f"{len(result.zones)} zone(s): {len(scenario.activities)} volume(s).")
        if result.conflicts:
            console.print(_conflict_table(result.conflicts, "Conflicts"))
        if result.violations:
            console.print(table("Red-line entries", ["activity", "party", "zone", "zone party",
                                                     "restriction", "overridden"],
                                [[x["activity"], x["party"], x["zone"], x["zone_party"],
                                  x["restriction"], "yes" if x["overridden"] else ""]
                                 for x in result.violations]))
        if result.resolved:
            err.print(f"Resolved conflict(s): {', '.join(map(str, result.resolved))}")
    if result.conflicts or result.violations:
        raise typer.Exit(EXIT_FOUND)


def _conflict_table(rows: list[dict[str, Any]], title: str) -> Any:
    def closest(pairs: list[dict[str, Any]]) -> str:
        p = min(pairs, key=lambda q: (q["horizontal_m"], q["vertical_m"], q["time_s"]))
        return f"{p['horizontal_m']:g} m, {p['vertical_m']:g} m, {p['time_s']:g} s"

    return table(title, ["id", "activity (party)", "activity (party)", "status", "pairs",
                         "closest gap h, v, t"],
                 [[r.get("id", ""), f"{r['activity_a']} ({r['party_a']})",
                   f"{r['activity_b']} ({r['party_b']})", r.get("status", "open"),
                   len(r["pairs"]), closest(r["pairs"])] for r in rows])


@app.command()
def conflicts(
    party: str | None = typer.Option(None, "--party", "-p", help="Only this party's conflicts."),
    status: str | None = typer.Option(None, "--status", help="open, acknowledged, accepted, "
                                      "resolved, expired, or live (the first three)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List stored conflicts (every volume pair with its gaps in --json)."""
    if status not in (None, *STATUSES):
        raise InputError(f"must be one of {', '.join(STATUSES)}", field="--status")
    svc = _open(db)
    rows = [{**{k: v for k, v in r.__dict__.items()
                if k not in ("owner_a", "owner_b", "sides", "starts", "ends")},
             "sides": {p: side.__dict__ for p, side in r.sides.items()}}
            for r in svc.store.list_conflicts(party=party, status=status)]
    if as_json:
        print_json(rows)
    elif rows:
        console.print(_conflict_table(rows, f"{len(rows)} conflict(s)"))
    else:
        err.print("No conflicts.")


@app.command()
def violations(
    party: str | None = typer.Option(None, "--party", "-p", help="Only entries concerning it."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List stored red-line entries (activity volumes inside zones that apply to them)."""
    svc = _open(db)
    rows = svc.store.list_violations(party=party)
    if as_json:
        print_json(rows)
    elif rows:
        console.print(table(f"{len(rows)} red-line entr(ies)",
                            ["activity", "party", "zone", "zone party", "restriction",
                             "overridden", "at"],
                            [[r["activity"], r["party"], r["zone"], r["zone_party"],
                              r["restriction"], "yes" if r["overridden"] else "", r["created_at"]]
                             for r in rows]))
    else:
        err.print("No red-line entries.")


@app.command()
def activities(
    party: str | None = typer.Option(None, "--party", "-p", help="Only this party's."),
    zones: bool = typer.Option(False, "--zones", help="List zones (red lines) instead."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """List stored activities (or zones) with their state and version."""
    svc = _open(db)
    rows = [r.__dict__ for r in svc.store.list_owners(party=party, zone=zones)]
    if as_json:
        print_json(rows)
    elif rows:
        cols = ["id", "party", "kind", "state", "version", "volumes", "updated"]
        if zones:
            cols[2] = "restriction"
        console.print(table(f"{len(rows)} {'zone' if zones else 'activit'}(s)", cols,
                            [[r["ext_id"], r["party"],
                              r["restriction"] if zones else (r["kind"] or ""), r["state"],
                              r["version"], r["volume_count"], r["updated_at"]] for r in rows]))
    else:
        err.print("Nothing stored.")


@app.command()
def cancel(
    activity: str = typer.Argument(..., help="The activity id (its 'activity' property)."),
    party: str = typer.Option(..., "--party", "-p", help="The party that owns it."),
    zone: bool = typer.Option(False, "--zone", help="Withdraw a zone instead of an activity."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Cancel an activity (its open conflicts become resolved) or withdraw a zone."""
    svc = _open(db)
    if zone:
        svc.delete_zone(party, activity)
        err.print(f"Zone {activity} withdrawn.")
        return
    resolved = svc.cancel(party, activity)
    err.print(f"Activity {activity} cancelled; {len(resolved)} conflict(s) resolved.")


EXPORT_FORMATS = ("scenario", "geojson", "kml", "csv", "ed269")


@app.command()
def export(
    party: str | None = typer.Option(None, "--party", "-p", help="Only this party's data "
                                     "(scenario), or whose view to write (the others)."),
    fmt: str = typer.Option("scenario", "--format", "-f", help="scenario: stored plans, "
                            "for 'submit' to read back; geojson or kml: what --party may "
                            "see (its plans, zones that apply, counterparts' conflicting "
                            "volumes); csv: --party's live conflicts; ed269: --party's "
                            "zones as EUROCAE ED-269."),
    geoid_height: float | None = typer.Option(
        None, "--geoid-height", help="ed269: the geoid above the WGS 84 ellipsoid here "
        "(metres), for exact AMSL limits; without it the bands are widened."),
    country: str = typer.Option("ZZZ", "--country", help="ed269: the country code to write "
                                "(ISO 3166 alpha-3)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write here, not stdout."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Export stored plans as a scenario, or one party's view (GeoJSON, KML, CSV).

    A party's view as GeoJSON or KML (Google Earth), a CSV of its conflicts, or its zones
    as EUROCAE ED-269.

    Example: detente export --format kml --party "Relief Alliance" -o relief.kml
    """
    from ..formats.ed269 import write_ed269
    from ..formats.geojson import export_scenario
    from ..formats.party_view import airspace_kml, conflicts_csv
    from ..service.disclosure import EVERYWHERE, Disclosure

    if fmt not in EXPORT_FORMATS:
        raise InputError(f"one of {', '.join(EXPORT_FORMATS)}", field="--format")
    if fmt != "scenario" and party is None:
        raise InputError(f"--format {fmt} writes one party's view: name it with --party",
                         field="--party")
    svc = _open(db)
    count = 0
    if fmt == "scenario":
        doc = export_scenario(svc.store.iter_export(party=party))
        count = len(doc["features"])
        data = orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
    else:
        view = Disclosure(svc.store)
        if svc.store.find_party(party) is None and not any(
                svc.store.list_owners(party=party, zone=z) for z in (False, True)):
            raise NotFound(f"no party named '{party}' (and no plans of one)")
        if fmt == "ed269":
            doc = write_ed269(svc.store.iter_export(party=party), country=country,
                              geoid_height_m=geoid_height, title=f"Zones of {party}")
            count = len(doc["features"])
            data = orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n"
        elif fmt == "csv":
            rows = view.conflicts(str(party), "live")
            count = len(rows)
            data = conflicts_csv(rows).encode()
        else:
            picture = view.airspace(str(party), EVERYWHERE)
            count = len(picture["features"])
            data = (airspace_kml(picture, f"detente: what {party} may see") if fmt == "kml"
                    else orjson.dumps(picture, option=orjson.OPT_INDENT_2) + b"\n")
    if output is None:
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        err.print(f"Wrote {count} {'conflict' if fmt == 'csv' else 'feature'}(s) to {output}.")


def _register_server_commands() -> None:
    from . import remote_dialogue  # noqa: F401  (adds its commands to remote_app)
    from .dialogue import audit_app, db_app, report, sweep
    from .imports import import_, template
    from .positions import positions_app
    from .remote import remote_app
    from .server import demo, party_app, serve

    app.add_typer(party_app, name="party")
    app.add_typer(remote_app, name="remote")
    app.add_typer(audit_app, name="audit")
    app.add_typer(db_app, name="db")
    app.add_typer(positions_app, name="positions")
    app.command("import")(import_)
    app.command()(template)
    app.command()(serve)
    app.command()(demo)
    app.command()(report)
    app.command()(sweep)


_register_server_commands()


def run() -> None:
    """Console-script entry: map detente's errors to exit codes (the only place that does)."""
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("Aborted.")
        sys.exit(130)
    except InputError as exc:
        err.print(f"error: {exc}")
        sys.exit(EXIT_INPUT)
    except Refused as exc:
        err.print(str(exc))
        sys.exit(EXIT_FOUND)
    except NotFound as exc:
        err.print(f"error: {exc}")
        sys.exit(EXIT_NOT_FOUND)
    except (DetenteError, StaleVersion) as exc:
        err.print(f"error: {exc}")
        sys.exit(EXIT_ERROR)
    except Exception as exc:  # usage errors from typer's command-line parser
        show = getattr(exc, "show", None)
        if callable(show) and hasattr(exc, "exit_code"):
            show()
            sys.exit(EXIT_INPUT)
        raise
