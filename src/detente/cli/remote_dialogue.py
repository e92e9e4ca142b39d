"""``detente remote ...`` for the dialogue: acknowledge, accept, the hotline,
incidents, webhooks and the live event stream."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from .output import console, err, print_json, table
from .remote import JSON_HELP, TOKEN, URL, _client, remote_app


@remote_app.command("ack")
def ack(conflict_id: int = typer.Argument(..., help="The conflict's id."),
        url: str | None = URL, token: str | None = TOKEN) -> None:
    """Acknowledge a conflict (you have seen it)."""
    with _client(url, token) as api:
        c = api.acknowledge(conflict_id)
    err.print(f"Conflict {conflict_id} acknowledged; it is {c['status']}.")


@remote_app.command("accept")
def accept(conflict_id: int = typer.Argument(..., help="The conflict's id."),
           url: str | None = URL, token: str | None = TOKEN) -> None:
    """Agree to proceed despite a conflict (accepted once both parties agree)."""
    with _client(url, token) as api:
        c = api.accept(conflict_id)
    err.print(f"Conflict {conflict_id}: you accept; it is {c['status']}.")


@remote_app.command("timeline")
def timeline(conflict_id: int = typer.Argument(..., help="The conflict's id."),
             url: str | None = URL, token: str | None = TOKEN,
             as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Who was told, who acknowledged, and when."""
    with _client(url, token) as api:
        rows = api.timeline(conflict_id)
    if as_json:
        print_json(rows)
        return
    console.print(table(f"Conflict {conflict_id}", ["at", "what", "who"],
                        [[r["at"], r["what"], r.get("party") or r.get("actor", "")]
                         for r in rows]))


def _where(conflict: int | None, thread: int | None) -> dict[str, int | None]:
    from ..errors import InputError

    if (conflict is None) == (thread is None):
        raise InputError("give --conflict or --thread", field="--conflict")
    return {"conflict_id": conflict, "thread_id": thread}


CONFLICT = typer.Option(None, "--conflict", help="A conflict's hotline thread.")
THREAD = typer.Option(None, "--thread", help="A direct thread's id (see 'threads').")


@remote_app.command("messages")
def messages(conflict: int | None = CONFLICT, thread: int | None = THREAD,
             url: str | None = URL, token: str | None = TOKEN,
             as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """A thread's messages (fetching them counts as delivered)."""
    with _client(url, token) as api:
        rows = api.messages(**_where(conflict, thread))
    if as_json:
        print_json(rows)
        return
    console.print(table(f"{len(rows)} message(s)", ["id", "at", "from", "message", "receipts"],
                        [[m["id"], m["created_at"], m["sender"],
                          (f"(corrects {m['corrects']}) " if m["corrects"] else "") + m["body"],
                          "; ".join(f"{p}: {_receipt(r)}" for p, r in m["receipts"].items())]
                         for m in rows]))


def _receipt(r: dict[str, Any]) -> str:
    return "read" if r["read_at"] else "delivered" if r["delivered_at"] else "sent"


@remote_app.command("send")
def send(text: str = typer.Argument(..., help="The message."),
         conflict: int | None = CONFLICT, thread: int | None = THREAD,
         corrects: int | None = typer.Option(None, "--corrects",
                                             help="The id of your message it corrects."),
         url: str | None = URL, token: str | None = TOKEN) -> None:
    """Send a message on a conflict's thread or a direct thread."""
    with _client(url, token) as api:
        m = api.send(text, corrects=corrects, **_where(conflict, thread))
    err.print(f"Message {m['id']} sent.")


@remote_app.command("threads")
def threads(url: str | None = URL, token: str | None = TOKEN,
            open_with: str | None = typer.Option(None, "--open", help="Open (or find) the "
                                                 "direct thread with this party."),
            as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Your threads, with unread counts."""
    with _client(url, token) as api:
        if open_with:
            api.open_thread(open_with)
        rows = api.threads()
    if as_json:
        print_json(rows)
        return
    console.print(table(f"{len(rows)} thread(s)", ["id", "conflict", "with", "messages",
                                                    "unread"],
                        [[t["id"], t["conflict"] or "", t["with"], t["messages"], t["unread"]]
                         for t in rows]))


@remote_app.command("incident")
def incident(file: Path = typer.Argument(..., help="The incident as JSON: location "
                                         "(GeoJSON geometry), occurred_at, description, "
                                         "severity, parties, activities, conflicts."),
             url: str | None = URL, token: str | None = TOKEN) -> None:
    """Report an incident; the parties it names are told."""
    from ..errors import InputError

    try:
        body = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {file}: {exc}") from None
    with _client(url, token) as api:
        out = api.report_incident(body)
    err.print(f"Incident {out['id']} reported.")


@remote_app.command("incidents")
def incidents(url: str | None = URL, token: str | None = TOKEN,
              as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Incidents you reported or are named in."""
    with _client(url, token) as api:
        rows = api.incidents()
    if as_json:
        print_json(rows)
        return
    console.print(table(f"{len(rows)} incident(s)", ["id", "occurred", "severity", "status",
                                                      "reporter", "parties"],
                        [[i["id"], i["occurred_at"], i["severity"], i["status"],
                          i["reporter"], ", ".join(i["parties"])] for i in rows]))


@remote_app.command("webhook")
def webhook(add: str | None = typer.Option(None, "--add", help="Subscribe this URL."),
            types: str | None = typer.Option(None, "--types", help="Comma-separated event "
                                             "types (default: all)."),
            delete: int | None = typer.Option(None, "--delete", help="Unsubscribe this id."),
            log: int | None = typer.Option(None, "--log", help="Show this one's deliveries."),
            redeliver: int | None = typer.Option(
                None, "--redeliver", help="Send this one's events again: those given up "
                "after the retry window, or with --all every one."),
            after: int = typer.Option(0, "--after", min=0, help="With --redeliver: only "
                                      "events after this id."),
            everything: bool = typer.Option(False, "--all", help="With --redeliver: every "
                                            "event, delivered or not."),
            url: str | None = URL, token: str | None = TOKEN,
            as_json: bool = typer.Option(False, "--json", help=JSON_HELP)) -> None:
    """Your webhooks: list, --add, --delete, read a delivery --log, or --redeliver.

    A new webhook's secret is printed once.

    Example: detente remote webhook --redeliver 3 --after 1200"""
    rows: list[dict[str, Any]]
    with _client(url, token) as api:
        if add:
            made = api.add_webhook(add, types.split(",") if types else None)
            err.print(f"Webhook {made['id']} added. Signing secret (shown once): "
                      f"{made['secret']}")
        if delete is not None:
            api.delete_webhook(delete)
            err.print(f"Webhook {delete} deleted.")
        if redeliver is not None:
            queued = api.redeliver(redeliver, after, everything)
            if as_json:
                print_json({"webhook": redeliver, "queued": queued})
            else:
                err.print(f"Webhook {redeliver}: {queued:,} event(s) queued to be sent "
                          "again.")
            return
        if log is not None:
            rows = api.deliveries(log)
            if as_json:
                print_json(rows)
            else:
                console.print(table(f"{len(rows)} attempt(s)", ["at", "event", "type",
                                                                "status", "error", "ms"],
                                    [[r["at"], r["event_id"], r["type"], r["status"] or "",
                                      r["error"] or "", f"{r['ms']:.1f}"] for r in rows]))
            return
        rows = api.webhooks()
    if as_json:
        print_json(rows)
        return
    console.print(table(f"{len(rows)} webhook(s)", ["id", "url", "types"],
                        [[w["id"], w["url"], ",".join(w["types"] or ["all"])] for w in rows]))


@remote_app.command("events")
def events(after: int = typer.Option(0, "--after", help="Events after this id."),
           follow: bool = typer.Option(False, "--follow", "-f",
                                       help="Keep listening (Server-Sent Events)."),
           new: bool = typer.Option(False, "--new", help="Start after your newest event: "
                                    "with --follow, only what happens from now on."),
           url: str | None = URL, token: str | None = TOKEN) -> None:
    """Your events as JSON lines; --follow streams them live (Ctrl-C to stop).

      detente events --follow --new     # watch what happens from now on
    """
    import orjson

    from ..errors import InputError

    if new and after:
        raise InputError("give --after or --new, not both", field="--new")
    with _client(url, token) as api:
        if new:
            after = api.newest_event()
        source = api.stream(after) if follow else iter(api.events(after, 1000))
        for e in source:
            typer.echo(orjson.dumps(e).decode())
