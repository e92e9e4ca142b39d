"""The dialogue over a real server and a real webhook receiver on loopback: lifecycle,
deadlines, hotline, incidents, at-least-once delivery in order, SSE resume,
need-to-know for events, and the audit chain; on both backends where a ``world`` or
``new_db`` is used."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detente.api import Settings
from detente.api.background import Retry
from detente.client import Client
from detente.core.minima import Minima, Separation
from detente.errors import InputError, NotFound, Refused
from detente.service.outbox import Destinations
from detente.service.parties import Parties
from detente.store import open_store

from .conftest import detente_exe, raw_sql, serving
from .receiver import Receiver, wait_for
from .test_api import activity

LOOPBACK = ("--webhook-allow", "127.0.0.0/8")  # the tests' receivers listen on loopback
FAST = Settings(db="", retry=Retry(base_s=0.05, cap_s=0.3), poll_s=0.2, sweep_s=0.2,
                destinations=Destinations.allowing(LOOPBACK[1:]))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_process(db: str, port: int, token: str, *options: str
                  ) -> subprocess.Popen[bytes]:
    """`detente serve` through the console script (webhooks to loopback allowed), once
    it answers."""
    proc = subprocess.Popen([*detente_exe(), "serve", "--db", db, "--port", str(port),
                             *LOOPBACK, *options],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def up() -> bool:
        try:
            with Client(f"http://127.0.0.1:{port}", token, timeout=1) as api:
                api.minima()
            return True
        except Exception:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            return False

    wait_for(up, what="server up")
    return proc


def make_db(path: str) -> dict[str, str]:
    store = open_store(path)
    store.initialise(Minima(Separation(500.0, 150.0, 300.0)))
    parties = Parties(store)
    tokens = {"admin": parties.admin_token()}
    for name in "ABC":
        tokens[name] = parties.add(name, contact=f"cell of {name}",
                                   escalation=f"duty officer of {name}")[1]
    store.close()
    return tokens


@pytest.fixture
def world(new_db) -> Iterator[dict[str, Any]]:
    db = new_db()
    tokens = make_db(db)
    settings = Settings(**{**FAST.__dict__, "db": db})
    with serving(settings) as url:
        apis = {who: Client(url, token) for who, token in tokens.items()}
        yield {"db": db, "url": url, "tokens": tokens, "api": apis}
        for api in apis.values():
            api.close()


def conflict_between(w: dict[str, Any], a_id: str = "a-1", b_id: str = "b-1",
                     **extra: Any) -> int:
    w["api"]["A"].create_activity(activity(a_id, (13.1, 11.8), **extra))
    made = w["api"]["B"].create_activity(activity(b_id, (13.15, 11.85), **extra))
    assert len(made["conflicts"]) == 1
    return int(made["conflicts"][0]["id"])


def test_lifecycle_acknowledge_accept_resolve_with_history(world) -> None:
    a, b, c = (world["api"][p] for p in "ABC")
    cid = conflict_between(world)
    first = a.conflict(cid)
    assert first["status"] == "open" and first["deadline"] and first["acknowledged_by"] == []
    assert a.acknowledge(cid)["status"] == "open"  # B has not yet
    assert b.acknowledge(cid)["status"] == "acknowledged"
    with pytest.raises(NotFound):
        c.acknowledge(cid)  # not C's: hidden, not forbidden
    # A change to the volume pairs opens it again; each side must acknowledge anew.
    v = b.activity("b-1")["version"]
    b.replace_activity("b-1", activity("b-1", (13.16, 11.85)), version=v)
    again = a.conflict(cid)
    assert again["status"] == "open" and again["acknowledged_by"] == []
    a.accept(cid)
    assert b.accept(cid)["status"] == "accepted"
    # A state change, then the same volumes again: the conflict has not changed.
    a.set_state("a-1", "active")
    a.replace_activity("a-1", activity("a-1", (13.1, 11.8)),
                       version=a.activity("a-1")["version"])
    assert a.conflict(cid)["status"] == "accepted"
    b.cancel_activity("b-1")
    assert a.conflict(cid)["status"] == "resolved"
    with pytest.raises(Refused):
        a.acknowledge(cid)
    steps = [s["what"] for s in a.timeline(cid) if s["what"].startswith("conflict.")]
    assert steps == ["conflict.opened", "conflict.acknowledged", "conflict.acknowledged",
                     "conflict.changed", "conflict.accepted", "conflict.accepted",
                     "conflict.resolved"]
    assert [c["status"] for c in a.conflicts(status="live")] == []


def test_missed_deadline_escalates_and_past_conflicts_expire(world) -> None:
    admin, a, b = (world["api"][p] for p in ("admin", "A", "B"))
    admin.set_ack_policy({"rules": [], "otherwise_ack_s": 0.3})
    now = datetime.now(UTC)
    soon = {"volumes": [{"geometry": {"type": "Point", "coordinates": [13.1, 11.8]},
                         "radius_m": 1000, "alt_lower_m": 0, "alt_upper_m": 500,
                         "time_start": (now - timedelta(minutes=1)).isoformat(),
                         "time_end": (now + timedelta(seconds=2)).isoformat()}]}
    a.create_activity({"id": "a-short", **soon})
    cid = b.create_activity({"id": "b-short", **soon})["conflicts"][0]["id"]
    a.acknowledge(cid)  # only B misses the deadline
    escalated = wait_for(lambda: a.conflict(cid)["escalated"], what="escalation")
    assert escalated == ["B"]
    ev = wait_for(lambda: [e for e in b.events() if e["type"] == "conflict.escalated"],
                  what="escalation event")
    assert ev[0]["party"] == "B" and ev[0]["escalation_contact"] == "duty officer of B"
    wait_for(lambda: a.conflict(cid)["status"] == "expired", what="expiry")
    assert [e["type"] for e in a.events()][-1] == "conflict.expired"


def test_receiver_down_then_up_gets_every_event_in_order_signed(world) -> None:
    a, b, c = (world["api"][p] for p in "ABC")
    receiver = Receiver(free_port())  # not started yet: down
    for who, api in (("A", a), ("C", c)):
        hook = api.add_webhook(receiver.url(who))
        receiver.secrets[who] = hook["secret"]
    cid = conflict_between(world)
    b.send("we fly at 08:00, can you hold?", conflict_id=cid)
    b.replace_activity("b-1", activity("b-1", (13.16, 11.85)),
                       version=b.activity("b-1")["version"])
    a.acknowledge(cid)
    b.cancel_activity("b-1")
    hook_id = a.webhooks()[0]["id"]
    wait_for(lambda: len(a.deliveries(hook_id)) >= 3, what="failed attempts")
    assert all(d["status"] is None and d["error"] for d in a.deliveries(hook_id))
    receiver.start()
    try:
        expected = [e["id"] for e in a.events()]
        assert len(expected) >= 5
        got = wait_for(lambda: len(receiver.received("A")) >= len(expected)
                       and receiver.received("A"), what="all of A's events")
        ids = [g["event_id"] for g in got]
        assert sorted(set(ids)) == expected  # every event, at least once
        firsts = list(dict.fromkeys(ids))
        assert firsts == expected  # in order
        assert all(g["signed"] for g in got)
        types = [g["body"]["type"] for g in got]
        assert types[0] == "conflict.opened" and types[-1] == "conflict.resolved"
        assert "message.created" in types
        assert receiver.received("C") == []  # C is in none of it
        assert c.events() == []
        # The receiver holds a body before the dispatcher records the 200 it answered:
        # wait for that record, then check the log.
        log = wait_for(lambda: (lg := a.deliveries(hook_id))[0]["status"] == 200 and lg,
                       what="the successful attempt in the log")
        assert log[0]["status"] == 200 and any(d["error"] for d in log)
        # The message counts as delivered to A once the webhook took it.
        wait_for(lambda: b.messages(conflict_id=cid)[0]["receipts"]["A"]["delivered_at"],
                 what="delivered receipt")
    finally:
        receiver.stop()


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.0.0.2", "[::1]", "localhost", "LOCALHOST.", "10.1.2.3", "172.16.0.9",
    "192.168.1.1", "169.254.169.254", "[fe80::1]", "[fd00::1]", "[::ffff:127.0.0.1]",
    "100.64.0.1", "0.0.0.0", "224.0.0.1"])
def test_a_webhook_to_a_private_address_is_refused_when_registered(new_db, address) -> None:
    db = new_db()
    tokens = make_db(db)
    with serving(Settings(db=db, background=False)) as url, Client(url, tokens["A"]) as a:
        with pytest.raises(InputError) as refused:
            a.add_webhook(f"http://{address}:8080/hook")
        assert "private, loopback or link-local" in str(refused.value)
        assert "url" in str(refused.value)
        assert a.webhooks() == []
        # A public address or a name is taken (a name is checked when sent).
        assert a.add_webhook("https://93.184.215.14/hook")["url"].startswith("https://")
        assert a.add_webhook("https://ops.example/hook")["url"] == "https://ops.example/hook"


def test_destinations_allow_only_what_the_operator_names() -> None:
    none, lo = Destinations(), Destinations.allowing(["127.0.0.0/8", "fd00::/8"])
    assert none.permits("8.8.8.8") and none.permits("2001:4860:4860::8888")
    for private in ("127.0.0.1", "::1", "10.0.0.1", "::ffff:10.0.0.1", "fe80::1%eth0",
                    "169.254.169.254", "not an address"):
        assert not none.permits(private), private
    assert lo.permits("127.0.0.1") and lo.permits("::ffff:127.0.0.1") and lo.permits("fd12::1")
    assert not lo.permits("10.0.0.1") and not lo.permits("::1")
    with pytest.raises(InputError, match="not a network"):
        Destinations.allowing(["10.0.0.0/33"])


@pytest.mark.parametrize("allowed", [False, True])
def test_a_name_that_resolves_to_loopback_gets_nothing_unless_allowed(new_db, allowed) -> None:
    """127.1 is no address to Python's ipaddress, so registration takes it as a name;
    it resolves to 127.0.0.1. Sent through the check, it is refused; the same URL on
    a server that allows loopback is delivered (so the check, not the name, refused)."""
    db = new_db()
    tokens = make_db(db)
    allow = FAST.destinations if allowed else Destinations()
    receiver = Receiver(free_port())
    receiver.start()
    try:
        with serving(Settings(**{**FAST.__dict__, "db": db, "destinations": allow})) as url:
            apis = {who: Client(url, token) for who, token in tokens.items()}
            a = apis["A"]
            hook = a.add_webhook(f"http://127.1:{receiver.port}/A")
            receiver.secrets["A"] = hook["secret"]
            conflict_between({"api": apis})
            if allowed:
                got = wait_for(lambda: receiver.received("A"), what="the delivery")
                assert got[0]["signed"] and got[0]["body"]["type"] == "conflict.opened"
            else:
                log = wait_for(lambda: a.deliveries(hook["id"]), what="an attempt")
                assert log[0]["status"] is None
                assert "resolves only to private, loopback or link-local" in log[0]["error"]
                assert receiver.seen == 0
            for api in apis.values():
                api.close()
    finally:
        receiver.stop()


def test_redelivery_after_the_retry_window_and_of_everything(new_db) -> None:
    """A receiver down past the retry window misses its events for good, until its
    party asks for them again; ``everything`` sends the history again, from an id."""
    db = new_db()
    tokens = make_db(db)
    settings = Settings(**{**FAST.__dict__, "db": db,
                           "retry": Retry(base_s=0.05, cap_s=0.1, for_s=0.5)})
    receiver = Receiver(free_port())  # down
    with serving(settings) as url:
        apis = {who: Client(url, token) for who, token in tokens.items()}
        a, b = apis["A"], apis["B"]
        hook = a.add_webhook(receiver.url("A"))
        receiver.secrets["A"] = hook["secret"]
        cid = conflict_between({"api": apis})
        b.send("over", conflict_id=cid)
        expected = [e["id"] for e in a.events()]
        assert len(expected) == 2

        def given_up() -> bool:
            rows = raw_sql(db, "SELECT failed_at FROM deliveries WHERE webhook_id = ?",
                           (hook["id"],))
            return len(rows) == 2 and all(r[0] is not None for r in rows)

        wait_for(given_up, what="both deliveries given up")
        receiver.start()
        try:
            with pytest.raises(NotFound):
                b.redeliver(hook["id"])  # not B's
            assert a.redeliver(hook["id"]) == 2
            got = wait_for(lambda: len(receiver.received("A")) >= 2
                           and receiver.received("A"), what="the redelivery")
            assert [g["event_id"] for g in got] == expected and all(g["signed"] for g in got)
            assert a.redeliver(hook["id"]) == 0  # nothing given up any more
            # Everything after the first event, delivered or not, once more.
            assert a.redeliver(hook["id"], after=expected[0], everything=True) == 1
            got = wait_for(lambda: len(receiver.received("A")) >= 3
                           and receiver.received("A"), what="the history again")
            assert [g["event_id"] for g in got] == [*expected, expected[1]]
            with pytest.raises(InputError):
                a.redeliver(hook["id"], after=-1)
            audited = raw_sql(db, "SELECT actor, detail FROM audit WHERE action = "
                              "'webhook.redeliver' ORDER BY seq")
            assert [r[0] for r in audited] == ["A", "A", "A"]
        finally:
            receiver.stop()
        for api in apis.values():
            api.close()


def test_sse_resumes_from_last_event_id_without_loss(world) -> None:
    a, b = world["api"]["A"], world["api"]["B"]
    seen: list[dict[str, Any]] = []
    ready = threading.Event()

    def listen(after: int | None, count: int) -> None:
        with Client(world["url"], world["tokens"]["A"]) as api:
            for e in api.stream(after, timeout=30):
                seen.append(e)
                ready.set()
                if len(seen) >= count:
                    return

    cid = conflict_between(world)  # 1 event for A
    t = threading.Thread(target=listen, args=(None, 2))
    t.start()
    wait_for(ready.is_set, what="stream")
    b.send("first", conflict_id=cid)  # event 2: the listener stops after it
    t.join(30)
    assert [e["type"] for e in seen] == ["conflict.opened", "message.created"]
    # Sent on the stream: delivered to A (A never fetched the thread).
    wait_for(lambda: b.messages(conflict_id=cid)[0]["receipts"]["A"]["delivered_at"],
             what="delivered receipt from the stream")
    assert [s["party"] for s in a.timeline(cid) if s["what"] == "message.delivered"] == ["A"]
    # Meanwhile (nobody listening) more happens; then resume after the last id seen.
    for k in range(5):
        b.send(f"while away {k}", conflict_id=cid)
    b.cancel_activity("b-1")
    t = threading.Thread(target=listen, args=(seen[-1]["id"], 8))
    t.start()
    t.join(30)
    assert [e["id"] for e in seen] == [e["id"] for e in a.events()]
    assert len({e["id"] for e in seen}) == len(seen) == 8


def test_party_c_never_sees_a_b_events_messages_or_threads(world) -> None:
    a, b, c = (world["api"][p] for p in "ABC")
    cid = conflict_between(world)
    b.send("secret plan", conflict_id=cid)
    thread = a.open_thread("B")
    a.send("direct line", thread_id=thread["id"])
    c.create_activity(activity("c-1", (50.0, 50.0)))
    assert c.events() == []
    for call in (lambda: c.messages(conflict_id=cid), lambda: c.messages(thread_id=thread["id"]),
                 lambda: c.send("hi", conflict_id=cid), lambda: c.timeline(cid),
                 lambda: c.send("hi", thread_id=thread["id"])):
        with pytest.raises(NotFound):
            call()
    assert c.threads() == []
    b_events = b.events()
    assert [e["type"] for e in b_events] == ["conflict.opened", "message.created"]
    # Where each stands: its own newest event, never a sign of the others'.
    assert b.newest_event() == b_events[-1]["id"] and a.newest_event() == a.events()[-1]["id"]
    assert c.newest_event() == 0


def test_hotline_receipts_corrections_and_immutability(world) -> None:
    a, b = world["api"]["A"], world["api"]["B"]
    cid = conflict_between(world)
    m = b.send("holding at FL100", conflict_id=cid)
    assert m["receipts"]["A"] == {"delivered_at": None, "read_at": None}
    assert a.messages(conflict_id=cid)[0]["receipts"]["A"]["delivered_at"]  # fetched
    assert a.mark_read([m["id"]], conflict_id=cid) == [m["id"]]
    assert b.messages(conflict_id=cid)[0]["receipts"]["A"]["read_at"]
    with pytest.raises(InputError) as bad:
        a.send("fix", conflict_id=cid, corrects=m["id"])  # not A's message
    assert bad.value.field == "corrects"
    fix = b.send("holding at FL110 (not 100)", conflict_id=cid, corrects=m["id"])
    assert [x["body"] for x in a.messages(conflict_id=cid)] == [
        "holding at FL100", "holding at FL110 (not 100)"]
    assert fix["corrects"] == m["id"]
    assert [t["unread"] for t in a.threads()] == [1]
    with pytest.raises(Exception, match="immutable"):
        raw_sql(world["db"], "UPDATE messages SET body='rewritten' WHERE id=?", (m["id"],))


def test_incidents_notify_the_named_parties_only(world) -> None:
    a, b, c = (world["api"][p] for p in "ABC")
    cid = conflict_between(world)
    inc = a.report_incident({
        "location": {"type": "Point", "coordinates": [13.12, 11.82]},
        "occurred_at": "2030-06-01T08:10:00Z", "description": "near miss at the bridge",
        "severity": "high", "parties": ["B"], "activities": ["a-1"], "conflicts": [cid]})
    assert inc["status"] == "open" and inc["parties"] == ["B"]
    assert [e["type"] for e in b.events()][-1] == "incident.reported"
    with pytest.raises(NotFound):
        c.incident(inc["id"])
    assert c.incidents() == []
    assert b.set_incident_status(inc["id"], "under-review")["status"] == "under-review"
    assert [e["type"] for e in a.events()][-1] == "incident.updated"
    with pytest.raises(InputError) as bad:
        a.report_incident({"location": {"type": "Point", "coordinates": [200, 0]},
                           "occurred_at": "2030-06-01T08:10:00Z", "description": "x",
                           "severity": "low"})
    assert bad.value.field == "location"
    with pytest.raises(InputError) as bad:
        c.report_incident({"location": {"type": "Point", "coordinates": [1, 0]},
                           "occurred_at": "2030-06-01T08:10:00Z", "description": "x",
                           "severity": "low", "conflicts": [cid]})
    assert bad.value.field == "conflicts[0]"


def test_audit_verify_names_an_altered_entry_and_export_tells_the_story(world, run_cli,
                                                                       backend) -> None:
    a = world["api"]["A"]
    cid = conflict_between(world)
    a.acknowledge(cid)
    db = world["db"]
    ok = run_cli("audit", "verify", "--db", db, "--json")
    assert ok.returncode == 0, ok.stderr
    story = run_cli("audit", "export", "--conflict", str(cid), "--db", db, "--json")
    rows = json.loads(story.stdout)
    told = {r["party"] for r in rows if r["what"] == "told"}
    assert told == {"A", "B"}
    assert any(r["what"] == "conflict.acknowledged" and r["actor"] == "A" for r in rows)
    review = run_cli("report", "--from", "2020-01-01T00:00:00Z", "--to",
                     "2100-01-01T00:00:00Z", "--db", db, "--json")
    by_party = {r["party"]: r for r in json.loads(review.stdout)["parties"]}
    assert by_party["A"]["conflicts_opened"] == 1 and by_party["A"]["acknowledged"] == 1
    assert by_party["A"]["median_ack_s"] is not None and by_party["B"]["acknowledged"] == 0
    # Someone with the database file rewrites history: the chain names the entry.
    seq = raw_sql(db, "SELECT seq FROM audit WHERE action='conflict.opened'")[0][0]
    with pytest.raises(Exception, match="append-only"):
        raw_sql(db, "UPDATE audit SET actor='C' WHERE seq=?", (seq,))
    raw_sql(db, "ALTER TABLE audit DISABLE TRIGGER audit_kept" if backend == "postgis"
            else "DROP TRIGGER audit_immutable")
    raw_sql(db, "UPDATE audit SET actor='C' WHERE seq=?", (seq,))
    broken = run_cli("audit", "verify", "--db", db)
    assert broken.returncode == 4
    assert f"broken at entry {seq}" in broken.stderr
    assert world["api"]["admin"].verify_audit()["broken"] == seq


def test_event_in_flight_survives_sigkill_and_is_delivered_after_restart(new_db) -> None:
    """The server dies (SIGKILL) after committing a conflict and while its webhook
    request is in flight; started again, it delivers the event."""
    import os
    import signal
    import time


    db = new_db()
    tokens = make_db(db)
    receiver = Receiver(free_port())
    receiver.mode = "hang"
    receiver.start()
    port = free_port()

    def start_server() -> subprocess.Popen[bytes]:
        return serve_process(db, port, tokens["A"])

    proc = start_server()
    try:
        url = f"http://127.0.0.1:{port}"
        with Client(url, tokens["A"]) as a, Client(url, tokens["B"]) as b:
            hook = a.add_webhook(receiver.url("A"))
            receiver.secrets["A"] = hook["secret"]
            a.create_activity(activity("a-1", (13.1, 11.8)))
            cid = b.create_activity(activity("b-1", (13.15, 11.85)))["conflicts"][0]["id"]
            event_id = a.events()[0]["id"]
        wait_for(lambda: receiver.seen >= 1, what="the delivery in flight")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        undelivered = raw_sql(db, "SELECT count(*) FROM deliveries WHERE delivered_at IS "
                              "NULL AND event_id=?", (event_id,))[0][0]
        assert undelivered == 1  # committed, not delivered
        receiver.mode = "up"
        receiver.release.set()
        time.sleep(0.2)
        proc = start_server()
        got = wait_for(lambda: [g for g in receiver.received("A")
                                if g["event_id"] == event_id], what="delivery after restart")
        assert got[0]["signed"] and got[0]["body"]["conflict"]["id"] == cid
        assert got[0]["body"]["type"] == "conflict.opened"
    finally:
        proc.kill()
        proc.wait(10)
        receiver.stop()


def test_serve_gives_a_delivery_up_after_its_retry_hours(new_db) -> None:
    """`detente serve --webhook-retry-hours`: with a receiver that never answers, the
    attempts stop once the window from the event has passed, and the audit log says
    the event was given up (with the default, a day, that would not happen here); the
    event itself stays readable."""


    db = new_db()
    tokens = make_db(db)
    receiver = Receiver(free_port())  # never started: down
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = serve_process(db, port, tokens["A"], "--webhook-retry-hours", "0.001",  # 3.6 s
                         "--webhook-timeout", "1")
    try:
        with Client(url, tokens["A"]) as a, Client(url, tokens["B"]) as b:
            hook = a.add_webhook(receiver.url("A"))
            a.create_activity(activity("a-1", (13.1, 11.8)))
            b.create_activity(activity("b-1", (13.15, 11.85)))
            given_up = wait_for(lambda: raw_sql(
                db, "SELECT detail FROM audit WHERE action = 'event.undeliverable'"),
                what="the delivery given up", timeout=30)
            assert '"attempts":' in given_up[0][0]
            log = a.deliveries(hook["id"])
            assert len(log) >= 2 and all(d["status"] is None for d in log)  # retried
            rows = raw_sql(db, "SELECT delivered_at, failed_at FROM deliveries")
            assert len(rows) == 1 and rows[0][0] is None and rows[0][1] is not None
            assert a.events()[0]["type"] == "conflict.opened"
    finally:
        proc.kill()
        proc.wait(10)


def test_remote_cli_carries_the_dialogue(world, tmp_path) -> None:
    """`detente remote ...` for the dialogue through the real console script."""
    import os
    cid = conflict_between(world)

    def run(who: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DETENTE_URL": world["url"], "DETENTE_TOKEN": world["tokens"][who],
               "COLUMNS": "200"}
        return subprocess.run([*detente_exe(), "remote", *args], env=env, text=True,
                              capture_output=True, timeout=60)

    hook = run("A", "webhook", "--add", "http://127.0.0.1:9/never", "--types",
               "conflict.escalated", "--json")
    assert hook.returncode == 0 and "secret (shown once): whsec_" in hook.stderr
    assert json.loads(hook.stdout)[0]["types"] == ["conflict.escalated"]
    hook_id = json.loads(hook.stdout)[0]["id"]
    again = run("A", "webhook", "--redeliver", str(hook_id), "--all", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"webhook": hook_id, "queued": 0}  # none escalated
    assert run("B", "webhook", "--redeliver", str(hook_id)).returncode not in (0, 2)
    assert run("B", "send", "holding at the bridge", "--conflict", str(cid)).returncode == 0
    messages = json.loads(run("A", "messages", "--conflict", str(cid), "--json").stdout)
    assert [m["body"] for m in messages] == ["holding at the bridge"]
    assert run("A", "ack", str(cid)).returncode == 0
    assert "acknowledged" in run("B", "ack", str(cid)).stderr
    steps = json.loads(run("A", "timeline", str(cid), "--json").stdout)
    assert [s["actor"] for s in steps if s["what"] == "conflict.acknowledged"] == ["A", "B"]
    lines = run("A", "events").stdout.splitlines()
    assert [json.loads(x)["type"] for x in lines] == [
        "conflict.opened", "message.created", "conflict.acknowledged",
        "conflict.acknowledged"]
    assert run("A", "events", "--new").stdout == ""  # (with --follow: from now on)
    both = run("A", "events", "--new", "--after", "1")
    assert both.returncode == 2 and "--new" in both.stderr and both.stdout == ""
    incident = tmp_path / "incident.json"
    incident.write_text(json.dumps({
        "location": {"type": "Point", "coordinates": [13.12, 11.82]},
        "occurred_at": "2030-06-01T08:10:00Z", "description": "near miss",
        "severity": "medium", "parties": ["B"]}))
    assert run("A", "incident", str(incident)).returncode == 0
    assert json.loads(run("B", "incidents", "--json").stdout)[0]["reporter"] == "A"
    bad = run("C", "ack", str(cid))
    assert bad.returncode == 3 and "no conflict" in bad.stderr  # not C's: not found


def test_review_and_sweep_from_the_command_line(tmp_path, run_cli) -> None:
    """The review as Markdown; a sweep escalates a past deadline, and the review
    counts it."""
    from detente.core.scenario import read_scenario
    from detente.service.deconfliction import Deconfliction
    from detente.service.lifecycle import AckPolicy, Lifecycle

    from .conftest import collection, feature, square

    db = str(tmp_path / "detente.db")
    make_db(db)
    store = open_store(db)
    then = "2025-05-01T08:00:00.000000Z"  # submitted long ago: the deadline is past
    Lifecycle(store, lambda: then).set_policy(AckPolicy((), 60.0), "admin")
    svc = Deconfliction(store, clock=lambda: then)

    scen = read_scenario(collection(
        feature("a", "A", square(13.1, 11.8, 0.1), time_start="2030-06-01T08:00:00Z",
                time_end="2030-06-01T09:00:00Z"),
        feature("b", "B", square(13.15, 11.85, 0.1), time_start="2030-06-01T08:00:00Z",
                time_end="2030-06-01T09:00:00Z")))
    svc.submit(scen)
    store.close()
    swept = run_cli("sweep", "--db", db)
    assert swept.returncode == 0 and "2 escalation(s)" in swept.stderr
    md = run_cli("report", "--from", "2025-01-01T00:00:00Z", "--to", "2031-01-01T00:00:00Z",
                 "--db", db)
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith("# detente review")
    assert "| A | 1 | 0 | n/a | 1 | 0 | 0 |" in md.stdout
    bad = run_cli("report", "--from", "yesterday", "--to", "2031-01-01T00:00:00Z", "--db", db)
    assert bad.returncode == 2 and "--from" in bad.stderr


def test_a_version_2_database_is_upgraded_by_init(tmp_path, run_cli) -> None:
    """Its tables are added and its open conflicts keep their time span (a sweep must
    not expire them)."""
    from detente.core.scenario import read_scenario
    from detente.service.deconfliction import Deconfliction

    from .conftest import collection, feature, square

    db = str(tmp_path / "old.db")
    make_db(db)
    store = open_store(db)
    Deconfliction(store).submit(read_scenario(collection(
        feature("a", "A", square(13.1, 11.8, 0.1), time_start="2030-06-01T08:00:00Z",
                time_end="2030-06-01T09:00:00Z"),
        feature("b", "B", square(13.15, 11.85, 0.1), time_start="2030-06-01T08:00:00Z",
                time_end="2030-06-01T09:00:00Z"))))
    store.close()
    conn = sqlite3.connect(db)
    for table in ("conflict_parties", "events", "webhooks", "deliveries", "attempts",
                  "threads", "messages", "receipts", "incidents", "incident_parties",
                  "audit"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("DROP INDEX conflicts_escalate")
    conn.execute("DROP INDEX conflicts_ends")
    for column in ("starts", "ends", "deadline", "escalate_at"):
        conn.execute(f"ALTER TABLE conflicts DROP COLUMN {column}")
    conn.execute("ALTER TABLE parties DROP COLUMN escalation")
    conn.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    refused = run_cli("conflicts", "--db", db)
    assert refused.returncode == 4
    assert f"detente db upgrade --db {db}" in refused.stderr.replace("\n", "")
    assert run_cli("db", "upgrade", "--db", db).returncode == 0
    assert "0 conflict(s) expired" in run_cli("sweep", "--db", db).stderr
    rows = json.loads(run_cli("conflicts", "--db", db, "--json").stdout)
    assert [r["status"] for r in rows] == ["open"]
    assert json.loads(run_cli("party", "list", "--db", db, "--json").stdout)[0]["name"] == "A"


def test_serve_stops_on_sigterm_with_event_streams_open(tmp_path) -> None:
    """Event streams never end by themselves; the server ends them when told to stop
    (uvicorn would otherwise wait for them forever)."""
    import signal
    db = str(tmp_path / "stop.db")
    tokens = make_db(db)
    port = free_port()
    proc = subprocess.Popen([*detente_exe(), "serve", "--db", db, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                with Client(url, tokens["A"], timeout=1) as api:
                    return api.events() == []
            except Exception:  # not listening yet
                return False
        wait_for(up, what="server up")
        got: list[dict[str, Any]] = []
        ended = threading.Event()

        def listen() -> None:
            with Client(url, tokens["A"]) as api:
                got.extend(api.stream(timeout=60))
            ended.set()

        threading.Thread(target=listen, daemon=True).start()
        with Client(url, tokens["A"]) as a, Client(url, tokens["B"]) as b:
            a.create_activity(activity("a-1", (13.1, 11.8)))
            b.create_activity(activity("b-1", (13.15, 11.85)))
        wait_for(lambda: got, what="an event on the open stream")
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)  # (uvicorn would wait for the open stream for ever)
        assert ended.wait(30)  # the client saw its stream end (and may resume)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


LONG_AGO = "2025-05-01T08:00:00.000000Z"
WINDOW = {"time_start": "2030-06-01T08:00:00Z", "time_end": "2030-06-01T09:00:00Z"}


def submitted_long_ago(db: str, *features: dict[str, Any]) -> Any:
    """A new database whose parties have 60 s to acknowledge, with these features
    submitted long ago (their deadlines are past); returns its store."""
    from detente.core.scenario import read_scenario
    from detente.service.deconfliction import Deconfliction
    from detente.service.lifecycle import AckPolicy, Lifecycle

    from .conftest import collection

    make_db(db)
    store = open_store(db)
    Lifecycle(store, lambda: LONG_AGO).set_policy(AckPolicy((), 60.0), "admin")
    Deconfliction(store, clock=lambda: LONG_AGO).submit(read_scenario(collection(*features)))
    return store


def test_a_big_sweep_is_done_in_chunks_each_checked_again(tmp_path, monkeypatch) -> None:
    """Many conflicts past one deadline are escalated a chunk per transaction; a side
    acknowledged after the sweep found its work is not escalated; each conflict's
    audit entries follow on from each other, and the chain holds."""
    from detente.service import lifecycle
    from detente.service.audit import verify
    from detente.service.deconfliction import utc_now
    from detente.service.lifecycle import Lifecycle

    from .conftest import feature, square

    store = submitted_long_ago(
        str(tmp_path / "detente.db"), feature("a", "A", square(13.1, 11.8, 0.1), **WINDOW),
        *(feature(f"b{k}", "B", square(13.1 + 0.01 * k, 11.8, 0.01), **WINDOW)
          for k in range(7)))
    conflicts = store.list_conflicts(party=None, status=None)
    assert len(conflicts) == 7

    lc = Lifecycle(store, utc_now)
    transactions = []
    real = lifecycle.transaction

    def counted(*args, **kwargs):
        transactions.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(lifecycle, "SWEEP_CHUNK", 3)
    monkeypatch.setattr(lifecycle, "transaction", counted)
    found = store.overdue(utc_now())
    late_ack = conflicts[-1].id  # acknowledged by A between the finding and its chunk
    original = store.overdue

    def finding_then_ack(now, conflict_ids=None):
        rows = original(now, conflict_ids)
        if conflict_ids is None:  # the sweep's finding, before its chunks
            lc.acknowledge("A", late_ack)
        return rows

    monkeypatch.setattr(store, "overdue", finding_then_ack)
    told: list[tuple[int, int]] = []
    done = lc.sweep(lambda n, of: told.append((n, of)))
    assert told == [(3, 7), (6, 7), (7, 7)]  # after each chunk: conflicts done, found
    assert len(found) == 14
    assert sorted(map(tuple, done["escalated"])) == sorted(
        x for x in found if x != (late_ack, "A"))
    assert len(transactions) == 1 + 3  # the acknowledgement, then chunks of 3, 3 and 1
    for c in store.list_conflicts(party=None, status=None):
        trail = [e for e in store.iter_audit() if e.subject == f"conflict/{c.id}"]
        assert [e.before for e in trail[1:]] == [e.after for e in trail[:-1]]
        assert bool(c.sides["A"].escalated_at) == (c.id != late_ack)
        assert c.sides["B"].escalated_at
    assert verify(store)["ok"]
    store.close()


def test_a_version_6_database_keeps_what_is_left_to_escalate(tmp_path, run_cli) -> None:
    """Upgraded, its open conflicts' pending sides are still found by a sweep, and a
    conflict whose sides are both done is not."""
    from detente.service.lifecycle import Lifecycle

    from .conftest import feature, square

    db = str(tmp_path / "v6.db")
    store = submitted_long_ago(
        db, feature("a", "A", square(13.1, 11.8, 0.1), **WINDOW),
        feature("b", "B", square(13.15, 11.85, 0.1), **WINDOW),
        feature("c", "C", square(20.0, 11.8, 0.1), **WINDOW),
        feature("d", "D", square(20.05, 11.85, 0.1), **WINDOW))
    done, pending = (c.id for c in store.list_conflicts(party=None, status=None))
    lc = Lifecycle(store, lambda: LONG_AGO)
    lc.acknowledge("A", done)
    lc.acknowledge("C", pending)
    store.close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE conflict_parties SET escalated_at = ? WHERE conflict_id = ?",
                 (LONG_AGO, done))  # (B: escalated, as a version 6 sweep would have)
    conn.execute("INSERT INTO conflict_parties (conflict_id, party, escalated_at) "
                 "VALUES (?, 'B', ?)", (done, LONG_AGO))
    conn.execute("DROP INDEX conflicts_escalate")
    conn.execute("ALTER TABLE conflicts DROP COLUMN escalate_at")
    conn.execute("CREATE INDEX conflicts_deadline ON conflicts (deadline) WHERE "
                 "status = 'open'")
    conn.execute("UPDATE meta SET value='6' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    assert run_cli("conflicts", "--db", db).returncode == 4
    assert run_cli("db", "upgrade", "--db", db).returncode == 0
    swept = run_cli("sweep", "--db", db)
    assert swept.returncode == 0 and "1 escalation(s)" in swept.stderr, swept.stderr
    store = open_store(db)
    escalated = store.list_conflicts(party=None, status=None, conflict_id=pending)[0]
    assert escalated.sides["D"].escalated_at and not escalated.sides["C"].escalated_at
    store.close()
