"""Live positions over a real server on loopback, on both backends: a replayed track
that strays (nonconforming, then contingent, then back), a red-line crossing,
proximity with closing speed, silence, need-to-know of tracks and events, and bad
reports refused with nothing stored."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from detente.api import Settings
from detente.client import Client
from detente.core.instants import format_instant
from detente.errors import InputError, NotFound
from detente.service.monitor import MonitorSettings

from .conftest import detente_exe, raw_sql, serving
from .receiver import wait_for
from .test_dialogue import make_db

H = 3_600 * 10**9
LIVE = Settings(db="", poll_s=0.2, sweep_s=0.5, tick_s=0.1,
                monitor=MonitorSettings(grace_s=1.0, silence_s=1.0, stale_s=5.0))


def now_ns() -> int:
    return time.time_ns()


def box(x: float, y: float, half: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x - half, y - half], [x + half, y - half],
                                                [x + half, y + half], [x - half, y + half],
                                                [x - half, y - half]]]}


def plan(ext_id: str, x: float, y: float, half: float = 0.05, kind: str = "patrol",
         alt: tuple[float, float] = (0, 1_000)) -> dict[str, Any]:
    t = now_ns()
    return {"id": ext_id, "kind": kind, "notes": "not for others' eyes",
            "volumes": [{"geometry": box(x, y, half), "alt_lower_m": alt[0],
                         "alt_upper_m": alt[1], "time_start": format_instant(t - H),
                         "time_end": format_instant(t + 2 * H)}]}


def fix(activity: str, x: float, y: float, t: int | None = None, alt: float = 500.0,
        **extra: Any) -> dict[str, Any]:
    return {"activity": activity, "time": format_instant(t or now_ns()), "lon": x, "lat": y,
            "alt_m": alt, **extra}


@pytest.fixture
def world(new_db) -> Iterator[dict[str, Any]]:
    db = new_db()
    tokens = make_db(db)
    with serving(Settings(**{**LIVE.__dict__, "db": db})) as url:
        apis = {who: Client(url, token) for who, token in tokens.items()}
        yield {"db": db, "url": url, "tokens": tokens, "api": apis}
        for api in apis.values():
            api.close()


def events(api: Client, types: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    out = api.events(limit=1000)
    return [e for e in out if types is None or e["type"] in types]


def kinds(api: Client, prefix: tuple[str, ...] = ("activity.", "zone.c", "zone.ex",
                                                  "proximity.")) -> list[str]:
    return [e["type"] for e in events(api) if e["type"].startswith(prefix)]


def test_replayed_track_strays_nonconforming_then_contingent_then_back(world, tmp_path
                                                                       ) -> None:
    a, b, c = (world["api"][p] for p in "ABC")
    a.create_activity(plan("patrol-1", 13.10, 11.80))  # 13.05 .. 13.15
    b.create_activity(plan("convoy-1", 13.25, 11.80))  # 13.20 .. 13.30: 5.4 km apart
    c.create_activity(plan("site-1", 14.50, 12.50))  # far away
    # Inside, then east out of the box, on to 300 m short of B's box (minimum 500 m),
    # 40 s outside (the grace period is 1 s; the replay runs 10x), then back inside.
    rows = ["time,lon,lat,alt_m,horizontal_accuracy_m"]
    track = [13.10, 13.12, 13.14, 13.16, 13.18, 13.197, 13.197, 13.197, 13.18, 13.16,
             13.14, 13.12]
    for k, x in enumerate(track):
        rows.append(f"2026-01-01T10:00:{k * 5:02d}Z,{x},11.80,500,5")
    path = tmp_path / "patrol.csv"
    path.write_text("\n".join(rows) + "\n")
    done = subprocess.run(
        [*detente_exe(), "positions", "replay", str(path), "--activity", "patrol-1",
         "--speed", "10", "--url", world["url"], "--token", world["tokens"]["A"], "--json"],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["accepted"] == len(track)

    conformance = ("activity.nonconforming", "activity.contingent", "activity.conforming")
    mine = wait_for(lambda: (k := kinds(a, conformance)) and k[-1] == "activity.conforming"
                    and k, what="A's events")  # (silence may follow: the replay ends)
    assert mine == ["activity.nonconforming", "activity.contingent", "activity.conforming"]
    theirs = wait_for(lambda: (k := events(b, ("activity.contingent",
                                                "activity.conforming"))) and len(k) == 2
                      and k, what="B's events")
    told, back = theirs
    assert told["type"] == "activity.contingent" and told["activity"] == ["convoy-1"]
    assert told["counterpart"]["party"] == "A"
    assert told["counterpart"]["position"]["lon"] >= 13.16
    assert "patrol-1" not in json.dumps(told)  # never A's ids or notes
    assert "not for others' eyes" not in json.dumps(told)
    assert back["type"] == "activity.conforming" and back["counterpart"]["party"] == "A"
    # B could read A's track while A was contingent; not any more.
    with pytest.raises(NotFound):
        b.shared_track(told["counterpart"]["track"])
    assert kinds(c) == []
    # A's own track: every fix stored, status conforming.
    own = a.track("patrol-1")
    assert len(own["positions"]) == len(track)
    assert own["monitoring"]["status"] == "conforming"
    for who, api in (("A", a), ("B", b)):  # (for the record: pytest -s shows it)
        print(f"straying-track timeline ({who}):", [
            (e["created_at"], e["type"], (e.get("position") or e["counterpart"]["position"])
             ["lon"]) for e in events(api, conformance)])


def test_red_line_crossing_tells_both_and_shares_the_track_while_inside(world) -> None:
    a, b, c = (world["api"][p] for p in "ABC")
    b.create_zone({"id": "no-go", "restriction": "prohibited", "volumes": plan(
        "z", 13.40, 11.80, half=0.02)["volumes"]})
    a.create_activity(plan("heli-1", 13.30, 11.80))  # 13.25 .. 13.35: the zone is east
    t = now_ns() - 10 * 10**9
    a.report_positions([fix("heli-1", 13.30, 11.80, t)])
    a.report_positions([fix("heli-1", 13.40, 11.80, t + 10**9)])  # inside the zone
    crossed = wait_for(lambda: events(b, ("zone.crossed",)), what="B told of the crossing")
    assert crossed[0]["zone"] == "no-go" and crossed[0]["counterpart"]["party"] == "A"
    mine = wait_for(lambda: events(a, ("zone.crossed",)), what="A told")
    assert mine[0]["activity"] == "heli-1" and mine[0]["zone"]["party"] == "B"
    shared = b.shared_track(crossed[0]["counterpart"]["track"])
    assert [p["lon"] for p in shared["positions"]] == [13.40]  # from the crossing on
    assert shared["counterpart"] == {"party": "A", "kind": "patrol"}
    with pytest.raises(NotFound):
        c.shared_track(crossed[0]["counterpart"]["track"])
    a.report_positions([fix("heli-1", 13.30, 11.80, t + 2 * 10**9)])  # out again
    wait_for(lambda: events(b, ("zone.exited",)), what="B told of the exit")
    with pytest.raises(NotFound):
        b.shared_track(crossed[0]["counterpart"]["track"])
    assert kinds(c) == []


def test_two_tracks_closing_get_proximity_with_closing_speed(world) -> None:
    a, b, c = (world["api"][p] for p in "ABC")
    a.create_activity(plan("heli-a", 13.0, 12.0, half=0.2))
    b.create_activity(plan("heli-b", 13.0, 12.0, half=0.2))
    t = now_ns() - 3 * 10**9  # (positions older than 5 s are stale: not compared)
    # 1 km apart west-east, each flying at 50 m/s towards the other (100 m/s closing).
    lon_a, lon_b, dlon = 12.99, 13.01, 0.0046  # ~500 m of longitude at 12 N
    a.report_positions([fix("heli-a", lon_a - dlon, 12.0, t, speed_mps=50.0,
                            heading_deg=90.0)])
    b.report_positions([fix("heli-b", lon_b + dlon, 12.0, t, speed_mps=50.0,
                            heading_deg=270.0)])
    assert events(a, ("proximity.started",)) == []  # 3 km apart: nothing
    a.report_positions([fix("heli-a", 12.9985, 12.0, t + 10**9, speed_mps=50.0,
                            heading_deg=90.0)])
    b.report_positions([fix("heli-b", 13.0015, 12.0, t + 10**9, speed_mps=50.0,
                            heading_deg=270.0)])  # ~330 m apart: under 500 m
    got = {}
    for who, api in (("A", a), ("B", b)):
        got[who] = wait_for(lambda api=api: events(api, ("proximity.started",)),
                            what=f"{who} told")[0]
    assert got["A"]["counterpart"]["party"] == "B" and got["B"]["counterpart"]["party"] == "A"
    assert 300 < got["A"]["separation_m"] < 360
    assert got["A"]["closing_speed_mps"] == pytest.approx(100.0, abs=1.0)
    assert got["B"]["closing_speed_mps"] == pytest.approx(100.0, abs=1.0)
    # Each may read the other's track while close.
    assert a.shared_track(got["A"]["counterpart"]["track"])["positions"][-1]["lon"] == 13.0015
    b.report_positions([fix("heli-b", 13.05, 12.0, t + 2 * 10**9)])  # 5 km away now
    for api in (a, b):
        wait_for(lambda api=api: events(api, ("proximity.ended",)), what="ended")
    with pytest.raises(NotFound):
        a.shared_track(got["A"]["counterpart"]["track"])
    assert kinds(c) == []


def test_silence_then_reporting_again(world) -> None:
    a = world["api"]["A"]
    a.create_activity(plan("watch-1", 13.0, 12.0))
    a.set_state("watch-1", "active")
    a.create_activity(plan("never-1", 13.5, 12.0))
    a.set_state("never-1", "active")  # active and never reports
    a.report_positions([fix("watch-1", 13.0, 12.0)])
    silent = wait_for(lambda: {e["activity"] for e in events(a, ("activity.silent",))}
                      >= {"watch-1", "never-1"} and events(a, ("activity.silent",)),
                      what="silence")
    watch = next(e for e in silent if e["activity"] == "watch-1")
    assert watch["last_position"]["lon"] == 13.0
    a.report_positions([fix("watch-1", 13.0, 12.0)])
    wait_for(lambda: events(a, ("activity.reporting",)), what="reporting again")


@pytest.mark.parametrize(("report", "field", "reason"), [
    ({"activity": "nope"}, "positions[1].activity", "no activity 'nope' of yours"),
    ({"activity": "b-own"}, "positions[1].activity", "no activity 'b-own' of yours"),
    ({"time": "2099-01-01T00:00:00Z"}, "positions[1].time", "in the future"),
    ({"time": "yesterday"}, "positions[1].time", "RFC 3339"),
    ({"lat": 91.0}, "positions[1].lat", "latitude"),
    ({"alt_m": "high"}, "positions[1].alt_m", "Expected `float`"),
    ({"horizontal_accuracy_m": -1.0}, "positions[1].horizontal_accuracy_m", "[0,"),
    ({"speed_mps": 10.0}, "positions[1].heading_deg", "go together"),
    ({"colour": "red"}, "positions[1]", "unknown field"),
])
def test_bad_reports_are_refused_naming_the_report_and_nothing_is_stored(
        world, report, field, reason) -> None:
    a, b = world["api"]["A"], world["api"]["B"]
    a.create_activity(plan("a-own", 13.0, 12.0))
    b.create_activity(plan("b-own", 14.0, 12.0))
    good = fix("a-own", 13.0, 12.0)
    with pytest.raises(InputError) as caught:
        a.report_positions([good, {**good, **report}])
    assert caught.value.field == field and reason in caught.value.reason
    assert a.track("a-own")["positions"] == []
    assert raw_sql(world["db"], "SELECT count(*) FROM positions")[0][0] == 0


def test_nan_and_broken_json_are_refused(world) -> None:
    world["api"]["A"].create_activity(plan("a-own", 13.0, 12.0))
    headers = {"Authorization": f"Bearer {world['tokens']['A']}",
               "Content-Type": "application/json"}
    when = format_instant(now_ns())
    body = ('{"positions": [{"activity": "a-own", "time": "' + when + '", "lon": NaN, '
            '"lat": 12, "alt_m": 1}]}')
    for content in (body, body[:-3]):
        r = httpx.post(world["url"] + "/v1/positions", content=content, headers=headers)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
    assert raw_sql(world["db"], "SELECT count(*) FROM positions")[0][0] == 0


def test_streamed_ndjson_feed_and_a_bad_line(world) -> None:
    a = world["api"]["A"]
    a.create_activity(plan("feed-1", 13.0, 12.0))
    t = now_ns() - 60 * 10**9

    def lines(bad_at: int | None) -> Iterator[bytes]:
        for k in range(300):
            r = fix("feed-1", 13.0 + k * 1e-5, 12.0, t + k * 10**8)
            if k == bad_at:
                r["lat"] = 95.0
            yield json.dumps(r).encode() + b"\n"

    assert a.stream_positions(lines(None)) == {"accepted": 300, "events": 0}
    with pytest.raises(InputError) as caught:
        a.stream_positions(lines(250))
    assert caught.value.item == "line 251" and caught.value.field == "lat"
    assert len(a.track("feed-1", limit=10_000)["positions"]) >= 300


def test_restart_keeps_status_and_shares(new_db, tmp_path: Path) -> None:
    db = new_db()
    tokens = make_db(db)
    settings = Settings(**{**LIVE.__dict__, "db": db,
                           "monitor": MonitorSettings(grace_s=1000.0, silence_s=1000.0)})
    t = now_ns() - 10 * 10**9
    with serving(settings) as url, Client(url, tokens["A"]) as a, Client(url, tokens["B"]) as b:
        b.create_zone({"id": "no-go", "restriction": "notify", "volumes": plan(
            "z", 13.40, 11.80, half=0.02)["volumes"]})
        a.create_activity(plan("heli-1", 13.30, 11.80))
        a.report_positions([fix("heli-1", 13.40, 11.80, t)])  # out and in the zone
        link = wait_for(lambda: events(b, ("zone.crossed",)), what="crossing")[0][
            "counterpart"]["track"]
    with serving(settings) as url, Client(url, tokens["A"]) as a, Client(url, tokens["B"]) as b:
        assert b.shared_track(link)["positions"]  # still shared after the restart
        a.report_positions([fix("heli-1", 13.30, 11.80, t + 10**9)])  # back in, zone left
        assert wait_for(lambda: events(b, ("zone.exited",)), what="exit after restart")
        assert wait_for(lambda: events(a, ("activity.conforming",)), what="conforming")
        assert [e["type"] for e in events(a, ("zone.crossed",))] == ["zone.crossed"]
        # The track goes on from before the restart.
        assert [p["lon"] for p in a.track("heli-1")["positions"]] == [13.40, 13.30]


@pytest.fixture
def in_process(new_db) -> Iterator[dict[str, Any]]:
    """A monitor in process with a clock of our own, over a store where A's patrol box
    is 13.05 .. 13.15 and B's convoy box 13.20 .. 13.30 (at latitude 11.80)."""
    from detente.core.scenario import read_scenario
    from detente.service.deconfliction import Deconfliction
    from detente.service.monitor import Monitor
    from detente.store import open_store

    db = new_db()
    make_db(db)
    st = open_store(db)
    t0 = time.time()
    clock = [t0]
    monitor = Monitor(MonitorSettings(grace_s=5.0), clock=lambda: clock[0])

    def submit(party: str, body: dict[str, Any]) -> None:
        v = body["volumes"][0]
        Deconfliction(st).submit(read_scenario({"type": "FeatureCollection", "features": [{
            "type": "Feature", "id": body["id"], "geometry": v["geometry"], "properties": {
                "party": party, "activity": body["id"], "kind": body["kind"],
                **{k: v[k] for k in ("alt_lower_m", "alt_upper_m", "time_start",
                                     "time_end")}}}]}))

    submit("A", plan("patrol-1", 13.10, 11.80))
    submit("B", plan("convoy-1", 13.25, 11.80))

    def report(*fixes: tuple[float, float]) -> None:
        """A's patrol reports (lon, seconds after t0) in one batch."""
        from detente.core.tracking import Fixes
        n = len(fixes)
        f = Fixes(np.array([int((t0 + at) * 1e9) for _, at in fixes]),
                  np.array([x for x, _ in fixes]), np.full(n, 11.80), np.full(n, 500.0),
                  np.zeros(n), np.zeros(n), np.full(n, np.nan), np.full(n, np.nan))
        monitor.ingest(st, "A", ["patrol-1"] * n, f)

    def tick(at: float) -> None:
        clock[0] = t0 + at
        monitor.tick(st)

    def told(party: str) -> list[dict[str, Any]]:
        return [{"type": e.type, **json.loads(e.body)} for e in st.events_after(
            party, 0, 100)]

    yield {"report": report, "tick": tick, "told": told}
    st.close()


def test_contingent_by_the_clock_then_moving_near_another_party_tells_it(in_process
                                                                         ) -> None:
    """The grace period ends between reports (the clock makes it contingent where no
    one is near); the next report comes within the minima of B's convoy, and B is told
    then."""
    report, tick, told = in_process["report"], in_process["tick"], in_process["told"]
    report((13.10, 0))
    report((13.17, 1))  # out: nonconforming, 3.3 km from B's box
    tick(7)  # the grace period is over: contingent, no one near
    report((13.197, 8))  # 300 m from B's box (minimum 500 m)
    assert [e["type"] for e in told("A")] == ["activity.nonconforming",
                                              "activity.contingent"]
    assert [e["type"] for e in told("B")] == ["activity.contingent"]


def test_a_contingent_track_passing_near_between_far_reports_tells_the_party(in_process
                                                                             ) -> None:
    """Every report of a contingent activity counts, however close together: one near
    report between far ones, a fraction of a second after the clock made it contingent
    (the straying-track test over HTTP missed this under load)."""
    report, tick, told = in_process["report"], in_process["tick"], in_process["told"]
    report((13.10, 0))
    report((13.17, 1))
    tick(7)
    report((13.18, 7.2), (13.197, 7.4), (13.18, 7.6))  # only the middle one is near
    report((13.18, 7.8))
    [contingent] = told("B")
    assert contingent["type"] == "activity.contingent"
    assert contingent["counterpart"]["position"]["lon"] == 13.197
    assert contingent["activity"] == ["convoy-1"]


def test_a_red_line_that_does_not_apply_to_the_reporter_says_nothing(world) -> None:
    """B's zone names C only: A flying through it is no crossing (a false alarm would
    teach people to ignore them), and B sees nothing of A."""
    a, b = world["api"]["A"], world["api"]["B"]
    b.create_zone({"id": "c-only", "restriction": "notify", "applies_to": ["C"],
                   "volumes": plan("z", 13.40, 11.80, half=0.02)["volumes"]})
    a.create_activity(plan("heli-2", 13.40, 11.80))
    a.report_positions([fix("heli-2", 13.40, 11.80)])
    assert a.track("heli-2")["monitoring"]["status"] == "conforming"
    alarms = ("zone.", "proximity.", "activity.nonconforming", "activity.contingent")
    assert kinds(a, alarms) == [] and kinds(b, alarms) == []  # (silence may come later)
    r = httpx.get(world["url"] + "/v1/positions/latest",
                  headers={"Authorization": f"Bearer {world['tokens']['B']}"})
    assert r.json()["features"] == []


def test_the_demo_serves_live_positions(tmp_path) -> None:
    """`detente demo` (the README's main job) as a real process: a party reports a
    position of one of its demo activities and reads it back."""
    import socket

    from detente.service.parties import Parties
    from detente.store import open_store

    from .conftest import detente_exe

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "demo.db"
    proc = subprocess.Popen([*detente_exe(), "demo", "--db", str(db), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: proc.poll() is None and _answers(url), timeout=60,
                 what="the demo server")
        st = open_store(str(db))
        token = Parties(st).rotate("Relief Alliance")
        st.close()
        with Client(url, token) as api:
            act = api.activities()[0]["id"]
            assert api.report_positions([fix(act, 13.15, 11.85)])["accepted"] == 1
            assert len(api.track(act)["positions"]) == 1
    finally:
        proc.terminate()
        proc.wait(20)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
