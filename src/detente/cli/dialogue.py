"""``detente audit ...``, ``detente report`` and ``detente sweep``: the dialogue's
records, read straight from a database file."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import DetenteError
from .main import DB_HELP
from .output import console, err, print_json, sweep_bar, table

audit_app = typer.Typer(help="The tamper-evident audit log: verify it, export a "
                             "conflict's timeline.", no_args_is_help=True)
DB = typer.Option(None, "--db", help=DB_HELP)
db_app = typer.Typer(help="The database's schema.", no_args_is_help=True)


def _store(db: str | None):  # type: ignore[no-untyped-def]
    from .main import _open

    return _open(db).store


@audit_app.command("verify")
def audit_verify(db: str | None = DB,
                 as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Recompute the audit log's SHA-256 chain; name the first broken entry.

    Exit 0 when the chain holds, 4 when it does not. Keep the printed head hash
    elsewhere: a log cut short would verify, but end before it.
    """
    from ..service.audit import verify

    result = verify(_store(db))
    if as_json:
        print_json(result)
    elif result["ok"]:
        err.print(f"Audit log intact: {result['entries']:,} entries; head {result['head']}")
    if not result["ok"]:
        raise DetenteError(f"audit log broken at entry {result['broken']}: "
                           f"{result['reason']} ({result['entries']:,} entries before it "
                           "hold)")


@audit_app.command("export")
def audit_export(conflict: int = typer.Option(..., "--conflict", help="The conflict's id."),
                 db: str | None = DB,
                 as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """A conflict's timeline: who was told, who acknowledged, when."""
    from ..service.audit import timeline

    rows = timeline(_store(db), conflict)
    if as_json:
        print_json(rows)
        return
    console.print(table(f"Conflict {conflict}: {len(rows)} step(s)",
                        ["at", "what", "who", "detail"],
                        [[r["at"], r["what"], r.get("party") or r.get("actor", ""),
                          ", ".join(f"{k}={v}" for k, v in r.items()
                                    if k not in ("at", "what", "party", "actor"))]
                         for r in rows]))


def report(
    start: str = typer.Option(..., "--from", help="Start of the period (RFC 3339)."),
    end: str = typer.Option(..., "--to", help="End of the period (RFC 3339), exclusive."),
    db: str | None = DB,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of Markdown."),
    output: Path | None = typer.Option(None, "-o", "--output", help="Write to this file."),
) -> None:
    """The periodic review per party, as Markdown (or --json).

    Conflicts, median time to acknowledge, escalations and incidents.

    Example: detente report --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z
    """
    import orjson

    from ..core.instants import InstantError, format_instant, parse_instant
    from ..errors import InputError
    from ..service.review import review, review_markdown

    bounds = []
    for name, text in (("--from", start), ("--to", end)):
        try:
            bounds.append(format_instant(parse_instant(text)))
        except InstantError as exc:
            raise InputError(str(exc), field=name) from None
    data = review(_store(db), bounds[0], bounds[1])
    text = (orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n" if as_json
            else review_markdown(data))
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        err.print(f"Wrote the review to {output}.")


def sweep(db: str | None = DB) -> None:
    """Escalate missed acknowledgement deadlines and expire past conflicts now.

    ``detente serve`` does this every second by itself."""
    from ..service.deconfliction import utc_now
    from ..service.lifecycle import Lifecycle

    with sweep_bar() as tell:
        done = Lifecycle(_store(db), utc_now).sweep(tell)
    err.print(f"{len(done['escalated'])} escalation(s), {len(done['expired'])} conflict(s) "
              "expired.")


@db_app.command("upgrade")
def db_upgrade(db: str | None = DB) -> None:
    """Bring a database's schema to this version of detente.

    Versioned migrations on PostgreSQL; in place on SQLite. Safe to run again, and from
    several hosts at once.

    Example: detente db upgrade --db postgresql://detente@db.internal/detente
    """
    from ..store import open_store
    from .main import _db

    store = open_store(_db(db))
    try:
        done = store.upgrade()
    finally:
        store.close()
    err.print(f"Database {_db(db)} is at schema {done[-1] if done else 'current'}"
              + (f" (applied: {', '.join(done)})." if done else " (nothing to do)."))
