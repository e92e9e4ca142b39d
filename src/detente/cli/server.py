"""Commands for running detente as a service: parties and their tokens, and serve."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import typer

from .main import DB_HELP
from .output import console, err, print_json, table

# Requests worked on at once, per core. A request's own transaction (F3548 writes, the
# dialogue's) commits with those of the others then waiting for the write lock, one
# fsync for all of them. Measured over loopback with 16 in flight and 100,000 volumes
# stored, one per core against four: F3548 creates 229/s against 300-346/s, spread
# activity submissions 1,482/s against 1,685-1,735/s; 8 or 16 per core gained nothing
# more, and overlapping traffic changed within noise.
WORKERS_PER_CORE = 4
WEBHOOK_TIMEOUT_S = 10.0  # (the defaults of serve's options, which demo passes too)
WEBHOOK_RETRY_HOURS = 24.0
RATE_PER_S = 1000.0

party_app = typer.Typer(help="Parties of the service and their API tokens.",
                        no_args_is_help=True)


def _parties(db: str | None):  # type: ignore[no-untyped-def]
    from ..service.parties import Parties
    from .main import _open

    return Parties(_open(db).store)


@party_app.command("add")
def party_add(
    name: str = typer.Argument(..., help="The party's name, as others will see it."),
    contact: str | None = typer.Option(None, "--contact",
                                       help="How to reach its deconfliction cell."),
    escalation: str | None = typer.Option(None, "--escalation",
                                          help="Who is told when it misses an "
                                               "acknowledgement deadline (in the event)."),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Create a party and print its API token (shown only now) on stdout.

    Example: detente party add "Northern Air Wing" --contact "+234 800 000 0001"
    """
    row, token = _parties(db).add(name, contact, escalation)
    err.print(f"Party '{row.name}' created. Its API token (shown only now):")
    print(token)


@party_app.command("list")
def party_list(
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the parties."""
    rows = [{"name": p.name, "contact": p.contact, "escalation": p.escalation,
             "created_at": p.created_at} for p in _parties(db).list()]
    if as_json:
        print_json(rows)
    else:
        console.print(table(f"{len(rows)} part{'y' if len(rows) == 1 else 'ies'}",
                            ["name", "contact", "escalation", "created"],
                            [[r["name"], r["contact"] or "", r["escalation"] or "",
                              r["created_at"]] for r in rows]))


@party_app.command("rotate")
def party_rotate(
    name: str = typer.Argument(...),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Revoke a party's tokens and print a new one (shown only now)."""
    token = _parties(db).rotate(name)
    err.print(f"Tokens of '{name}' revoked. The new token (shown only now):")
    print(token)


@party_app.command("revoke")
def party_revoke(
    name: str = typer.Argument(...),
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
) -> None:
    """Revoke every token of a party: it can no longer call the API."""
    n = _parties(db).revoke(name)
    err.print(f"{n} token(s) of '{name}' revoked.")


def serve(
    db: str | None = typer.Option(None, "--db", help=DB_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    workers: int = typer.Option(0, "--workers", help="Requests worked on at once (the "
                                "rest wait); default: four per core."),
    tiles: str | None = typer.Option(None, "--tiles", help="The web map's basemap: a tile "
                                     "URL with {z}/{x}/{y} (default: none, a graticule; "
                                     "nothing is fetched from outside)."),
    dss_key: list[Path] = typer.Option([], "--dss-key", exists=True, dir_okay=False,
                                       help="ASTM F3548 DSS API (/dss/v1): a PEM public "
                                       "key of the authorization authority whose RS256 "
                                       "tokens USSs present (repeatable)."),
    dss_audience: list[str] = typer.Option([], "--dss-audience", help="An audience the "
                                           "tokens must name: usually this DSS's host name "
                                           "(repeatable; needed with --dss-key)."),
    dss_issuer: list[str] = typer.Option([], "--dss-issuer", help="An issuer the tokens "
                                         "must name (repeatable; default: any the keys "
                                         "sign for)."),
    dss_jwks: list[str] = typer.Option([], "--dss-jwks", metavar="URL", help="The "
                                       "authority's published key set (JWKS), instead "
                                       "of or besides --dss-key: fetched every 5 "
                                       "minutes, and when a token names a key not in "
                                       "it, at most every 30 s (repeatable)."),
    grace: float = typer.Option(30.0, "--grace", min=0.0, help="Live positions: seconds "
                                "an activity may stay outside its declared volumes before "
                                "it is contingent and nearby parties are told."),
    silence: float = typer.Option(60.0, "--silence", min=0.1, help="Live positions: "
                                  "seconds without a report after which an active "
                                  "activity is silent."),
    retention: float = typer.Option(86_400.0, "--track-retention", min=60.0,
                                    help="Live positions: seconds positions are kept."),
    webhook_allow: list[str] = typer.Option(
        [], "--webhook-allow", metavar="CIDR", help="A network webhooks may be sent to "
        "besides public addresses (repeatable), e.g. 127.0.0.0/8 for a receiver on this "
        "host or 10.0.0.0/8 for the internal network. By default a webhook to a "
        "private, loopback or link-local address is refused: parties choose the URLs."),
    rate_limit: float = typer.Option(
        RATE_PER_S, "--rate-limit", min=0.0, help="Requests a second one API token may "
        "make (bursts of a second's worth), so that no party crowds out the others; "
        "beyond it, 429 with Retry-After. 0: no limit. Per server process."),
    webhook_timeout: float = typer.Option(WEBHOOK_TIMEOUT_S, "--webhook-timeout", min=0.1,
                                          help="Seconds a webhook receiver has to answer "
                                          "before the attempt counts as failed."),
    webhook_retry_hours: float = typer.Option(
        WEBHOOK_RETRY_HOURS, "--webhook-retry-hours", min=0.0, help="How long a failed "
        "webhook delivery is retried (backing off from 1 s to 10 minutes apart), counted "
        "from the event, before it is given up (and audited as such); the event stays "
        "readable on GET /v1/events."),
) -> None:
    """Run the HTTP API, and with --dss-key the ASTM F3548 DSS API under /dss/v1.

    OpenAPI at /openapi.json, interactive docs at /docs; the DSS: docs/f3548.md.

    Example: detente serve --db example.db --port 8000
    """
    from ..api import Settings, create_app
    from ..api.server import run
    from .main import _db, _open, _parallel

    _open(db).store.close()  # refuses a missing or foreign database before listening
    path = _db(db)
    dss = None
    if dss_key or dss_jwks or dss_audience:
        from ..api.dss_auth import DssAuth

        dss = DssAuth(tuple(k.read_text() for k in dss_key), tuple(dss_audience),
                      tuple(dss_issuer), jwks_urls=tuple(dss_jwks))
    from ..api.background import Retry
    from ..service.monitor import MonitorSettings
    from ..service.outbox import Destinations

    monitor = MonitorSettings(grace_s=grace, silence_s=silence, retention_s=retention)
    app = create_app(Settings(db=path, parallel=_parallel(),
                              workers=workers or WORKERS_PER_CORE * (os.cpu_count() or 1),
                              tile_url=tiles, dss=dss, monitor=monitor,
                              destinations=Destinations.allowing(webhook_allow),
                              webhook_timeout_s=webhook_timeout, rate_per_s=rate_limit,
                              retry=Retry(for_s=webhook_retry_hours * 3600.0)))
    err.print(f"detente on http://{host}:{port}/ (the web map; API: /v1, docs: /docs)")
    # What is loaded by now (the libraries: some 100,000 objects) stays for the life of
    # the process: keep it out of the collector's full passes, each of which cost
    # 30 ms here and, under load, stalled a batch of submissions for 60 to 100 ms.
    gc.freeze()
    run(app, host, port)


LOOPBACK = ["127.0.0.0/8", "::1"]


def demo(
    db: Path | None = typer.Option(None, "--db", help="Where to create the demo database "
                                   "(a new file; default: a fresh temporary directory)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    no_serve: bool = typer.Option(False, "--no-serve",
                                  help="Only create the database and print the tokens."),
) -> None:
    """Create a demo: four fictional parties planning around Maiduguri, then serve it.

    Prints each party's API token and the URL. Webhooks may go to this host (loopback),
    to try them with a receiver of your own. Try, with a token from the list:

      curl -H "Authorization: Bearer TOKEN" http://127.0.0.1:8000/v1/conflicts
    """
    import tempfile

    from ..demo import build
    from ..errors import InputError

    if db is None:
        db = Path(tempfile.mkdtemp(prefix="detente-demo-")) / "demo.db"
    elif db.exists():
        raise InputError(f"{db} exists: the demo makes a new database (choose another --db)")
    made = build(str(db))
    err.print(f"Demo database: {made.db} ({made.activities} activities, {made.conflicts} "
              "open conflicts)")
    console.print(table("API tokens (Authorization: Bearer ...)", ["who", "token"],
                        [[name, token] for name, token in made.tokens.items()]))
    if no_serve:
        return
    from ..service.monitor import MonitorSettings

    live = MonitorSettings()  # (called as a function: typer's defaults are not applied)
    serve(db=str(db), host=host, port=port, workers=0, tiles=None, dss_key=[],
          dss_audience=[], dss_issuer=[], dss_jwks=[], grace=live.grace_s, silence=live.silence_s,
          retention=live.retention_s, webhook_allow=LOOPBACK,
          webhook_timeout=WEBHOOK_TIMEOUT_S, webhook_retry_hours=WEBHOOK_RETRY_HOURS,
          rate_limit=RATE_PER_S)
