"""``detente positions ...``: replay a recorded track to a server, read a track."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import typer

from ..core.instants import InstantError, format_instant, parse_instant
from ..errors import InputError
from .output import console, err, print_json, table
from .remote import TOKEN, URL, _client

positions_app = typer.Typer(
    help="Live positions: replay a recorded track to a server, read a track "
         "(--url/--token, or $DETENTE_URL and $DETENTE_TOKEN).", no_args_is_help=True)

FIELDS = ("activity", "time", "lon", "lat", "alt_m", "speed_mps", "heading_deg",
          "horizontal_accuracy_m", "vertical_accuracy_m")
_NUMBERS = FIELDS[2:]


@dataclass
class Fix:
    t: int  # ns, as recorded
    report: dict[str, Any]  # the report, less its time


def read_track(path: Path, activity: str | None) -> list[Fix]:
    """A CSV (with a header row) or NDJSON file of reports, in time order. Columns or
    keys: ``activity`` (or --activity), ``time`` (RFC 3339), ``lon``, ``lat``,
    ``alt_m``, and optionally ``speed_mps``, ``heading_deg``,
    ``horizontal_accuracy_m``, ``vertical_accuracy_m``."""
    text = path.read_text(encoding="utf-8-sig")
    rows: list[tuple[str, dict[str, Any]]] = []
    if path.suffix.lower() in (".ndjson", ".jsonl") or text.lstrip().startswith("{"):
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((f"line {n}", orjson.loads(line)))
                except orjson.JSONDecodeError as exc:
                    raise InputError(f"not JSON: {exc}", item=f"{path.name} line {n}"
                                     ) from None
    else:
        for n, row in enumerate(csv.DictReader(io.StringIO(text)), 2):
            rows.append((f"row {n}", {k.strip(): v.strip() for k, v in row.items()
                                      if k is not None and v not in (None, "")}))
    fixes = []
    for where, row in rows:
        item = f"{path.name} {where}"
        unknown = sorted(set(row) - set(FIELDS))
        if unknown:
            raise InputError(f"unknown field(s) {unknown}; known: {', '.join(FIELDS)}",
                             item=item)
        report: dict[str, Any] = {}
        for key in _NUMBERS:
            if key in row:
                try:
                    report[key] = float(row[key])
                except (TypeError, ValueError):
                    raise InputError(f"not a number: {row[key]!r}", item=item,
                                     field=key) from None
        for key in ("lon", "lat", "alt_m"):
            if key not in report:
                raise InputError("required", item=item, field=key)
        name = activity or row.get("activity")
        if not name:
            raise InputError("required (or pass --activity)", item=item, field="activity")
        report["activity"] = str(name)
        try:
            t = parse_instant(row.get("time"))
        except InstantError as exc:
            raise InputError(str(exc), item=item, field="time") from None
        fixes.append(Fix(t, report))
    fixes.sort(key=lambda f: f.t)
    return fixes


@positions_app.command("replay")
def replay(
    file: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="A CSV (header row) or NDJSON track."),
    activity: str | None = typer.Option(None, "--activity", help="Report every fix as "
                                        "this activity (else the file's activity column)."),
    speed: float = typer.Option(1.0, "--speed", min=0.001, help="Replay speed: 1 is real "
                                "time, 60 a minute a second."),
    as_recorded: bool = typer.Option(False, "--as-recorded", help="Send the file's own "
                                     "times (default: shift the track to start now, "
                                     "compressed by --speed, so that a drill runs live)."),
    batch_s: float = typer.Option(0.1, "--batch-s", min=0.0, help="Send the fixes due "
                                  "within this many seconds together."),
    url: str | None = URL, token: str | None = TOKEN,
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Replay a recorded track to a server as live position reports, with progress.

    By default the track is moved to start now and runs --speed times faster: its
    times are compressed too (speeds scaled to match), so grace periods and silence
    play out at the replay's pace. Example:

      detente positions replay patrol.csv --activity patrol-7 --speed 10
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    fixes = read_track(file, activity)
    if not fixes:
        raise InputError("no position reports", item=file.name)
    t0 = fixes[0].t
    start_wall = time.time()
    accepted = events = 0
    with _client(url, token) as api, Progress(
            "[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task(f"replaying {file.name} at {speed:g}x", total=len(fixes))
        k = 0
        while k < len(fixes):
            due = start_wall + (fixes[k].t - t0) / 1e9 / speed
            wait = due - time.time()
            if wait > 0:
                time.sleep(wait)
            horizon = time.time() + batch_s
            group = []
            while k < len(fixes) and start_wall + (fixes[k].t - t0) / 1e9 / speed <= horizon:
                group.append(_report(fixes[k], t0, start_wall, speed, as_recorded))
                k += 1
            result = api.report_positions(group)
            accepted += result["accepted"]
            events += result["events"]
            bar.advance(task, len(group))
    outcome = {"file": str(file), "accepted": accepted, "events": events,
               "seconds": round(time.time() - start_wall, 2)}
    if as_json:
        print_json(outcome)
    else:
        err.print(f"{accepted:,} position(s) replayed in {outcome['seconds']:g} s; they set "
                  f"off {events:,} event(s) (see 'detente remote events').")


def _report(f: Fix, t0: int, start_wall: float, speed: float, as_recorded: bool
            ) -> dict[str, Any]:
    report = dict(f.report)
    if as_recorded:
        report["time"] = format_instant(f.t)
    else:
        report["time"] = format_instant(int(start_wall * 1e9) + int((f.t - t0) / speed))
        if "speed_mps" in report:
            report["speed_mps"] = report["speed_mps"] * speed
    return report


@positions_app.command("track")
def track(
    activity: str = typer.Argument(..., help="One of your activities."),
    limit: int = typer.Option(20, "--limit", min=1, max=10_000, help="The newest N."),
    url: str | None = URL, token: str | None = TOKEN,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """An activity's last positions and its monitoring status."""
    with _client(url, token) as api:
        out = api.track(activity, limit=limit)
    if as_json:
        print_json(out)
        return
    status = out.get("monitoring") or {}
    console.print(table(
        f"{activity}: {status.get('status', 'no reports yet')}"
        + (" (silent)" if status.get("silent") else ""),
        ["time", "lon", "lat", "alt m", "speed m/s", "heading"],
        [[p["time"], f"{p['lon']:.6f}", f"{p['lat']:.6f}", f"{p['alt_m']:g}",
          f"{p['speed_mps']:g}" if "speed_mps" in p else "",
          f"{p['heading_deg']:g}" if "heading_deg" in p else ""]
         for p in out["positions"]]))
