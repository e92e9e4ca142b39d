"""``detente remote ...``: the same work against a detente server, through the client."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from .output import console, err, print_json, table

remote_app = typer.Typer(
    help="Talk to a detente server as a party (--url/--token, or $DETENTE_URL and "
         "$DETENTE_TOKEN).", no_args_is_help=True)
URL = typer.Option(None, "--url", help="Server URL (default: $DETENTE_URL, else "
                   "http://127.0.0.1:8000).")
TOKEN = typer.Option(None, "--token", help="API token (default: $DETENTE_TOKEN).")
JSON_HELP = "Print JSON instead of a table."


def _client(url: str | None, token: str | None) -> Any:
    from ..client import Client
    from ..errors import Unauthorized

    token = token or os.environ.get("DETENTE_TOKEN")
    if not token:
        raise Unauthorized("no token: pass --token or set DETENTE_TOKEN")
    return Client(url or os.environ.get("DETENTE_URL", "http://127.0.0.1:8000"), token)


@remote_app.command("conflicts")
def conflicts(
    status: str | None = typer.Option(None, "--status", help="open or resolved"),
    url: str | None = URL, token: str | None = TOKEN,
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Your conflicts on the server."""
    with _client(url, token) as api:
        rows = api.conflicts(status)
    if as_json:
        print_json(rows)
        return
    console.print(table(f"{len(rows)} conflict(s)",
                        ["id", "status", "your activity", "with", "volume pairs", "min h m"],
                        [[c["id"], c["status"], c["activity"], c["counterpart_party"],
                          c["volume_pairs"], f"{c['min_horizontal_m']:g}"] for c in rows]))


@remote_app.command("conflict")
def conflict(
    conflict_id: int = typer.Argument(..., help="The conflict's id."),
    url: str | None = URL, token: str | None = TOKEN,
) -> None:
    """One conflict as JSON: the gaps and the counterpart's conflicting volumes."""
    with _client(url, token) as api:
        print_json(api.conflict(conflict_id))


@remote_app.command("activities")
def activities(
    url: str | None = URL, token: str | None = TOKEN,
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Your activities on the server."""
    with _client(url, token) as api:
        rows = api.activities()
    if as_json:
        print_json(rows)
        return
    console.print(table(f"{len(rows)} activit{'y' if len(rows) == 1 else 'ies'}",
                        ["id", "kind", "state", "version", "volumes"],
                        [[a["id"], a["kind"] or "", a["state"], a["version"],
                          a["volume_count"]] for a in rows]))


@remote_app.command("submit")
def submit(
    file: Path = typer.Argument(..., help="Scenario of your activities (GeoJSON)."),
    override: bool = typer.Option(False, "--override",
                                  help="Enter prohibited zones anyway (recorded)."),
    url: str | None = URL, token: str | None = TOKEN,
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Create or replace each activity of a file on the server (one request each).

    The file is checked locally first, with the same reader as the server's.
    """
    from ..core.scenario import loads_json, read_scenario
    from ..errors import InputError, NotFound
    from .main import _read_input

    doc = loads_json(_read_input(file))
    if not isinstance(doc, dict) or not isinstance(doc.get("features"), list):
        raise InputError("a scenario must be a GeoJSON FeatureCollection with a list of "
                         "features")
    named = {f.get("properties", {}).get("party") for f in doc["features"]
             if isinstance(f, dict) and isinstance(f.get("properties"), dict)} - {None}
    if len(named) > 1:
        raise InputError(f"a remote submission is one party's (the token's), not {sorted(named)}")
    for f in doc["features"]:
        if isinstance(f, dict) and isinstance(f.get("properties"), dict):
            f["properties"].pop("party", None)
    read_scenario(doc, default_party="-")  # every problem named before anything is sent
    groups: dict[str, dict[str, Any]] = {}
    for feat in doc["features"]:
        p = feat["properties"]
        if p.get("zone"):
            continue
        act = str(p.get("activity", feat["id"]))
        g = groups.setdefault(act, {"id": act, "kind": p.get("kind"), "volumes": [],
                                    "override": override})
        vol = {k: p[k] for k in ("alt_lower_m", "alt_upper_m", "time_start", "time_end",
                                 "radius_m") if k in p}
        g["volumes"].append({"id": feat["id"], "geometry": feat["geometry"], **vol})
    results = []
    with _client(url, token) as api:
        for act, body in groups.items():
            try:
                version = api.activity(act)["version"]
            except NotFound:
                results.append(api.create_activity(body))
            else:
                results.append(api.replace_activity(act, body, version=version))
    if as_json:
        print_json(results)
        return
    for r in results:
        a = r["activity"]
        err.print(f"{a['id']}: version {a['version']}, {len(r['conflicts'])} conflict(s), "
                  f"{len(r['zones'])} zone entr{'y' if len(r['zones']) == 1 else 'ies'}")
