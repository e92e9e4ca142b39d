"""Live-position workload: 10,000 tracked activities of 10 parties reporting over
loopback, with every check on (conformance, red lines, proximity, silence), and the
alert latency of red-line crossings measured on the event stream meanwhile.

Layout: the activities sit on a 100 x 100 grid 0.05 degrees apart (about 5.5 km) near
12 N 13 E, each declaring a box 0.02 degrees across around its cell; red lines of an
eleventh party sit just east of the first row's boxes. The other objects wander inside
their boxes; every tenth of a second one of the first row (a "probe") steps into its
red line (and back out the next time), which must reach the zone owner's event stream.

Measurements in one run, against a real ``detente serve`` process over loopback, with
senders posting batches of 1,000 reports (one party's objects each):

* **throughput**: the senders post as fast as the server answers, for a fixed time;
  positions/s is what was accepted;
* **alert latency at the target rate**: the senders post 20,000 reports/s, paced; the
  latency of each probe is from just before its POST to its ``zone.crossed`` event
  arriving on the zone owner's SSE stream;
* **the baseline, in process**: the same monitor fed the same reports one at a time
  (what a per-report design costs) against batches of 1,000, on one store; the ratio
  is what batching and vectorising buy.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import orjson

from detente.api.routes_positions import BatchIn, columns
from detente.core.instants import format_instant
from detente.core.minima import Minima, Separation
from detente.core.scenario import read_scenario
from detente.core.tracking import Fixes
from detente.service.deconfliction import Deconfliction
from detente.service.monitor import Monitor, MonitorSettings
from detente.service.parties import Parties
from detente.store import open_store

from .http_load import start_server, stop_server

GRID = 100  # GRID x GRID tracked objects
STEP = 0.05  # degrees between cells
HALF = 0.01  # half the side of each declared box
LON0, LAT0 = 13.0, 12.0
PARTIES = 10
ZONE_OWNER = "watch"
BATCH = 1_000
PROBE_EVERY_S = 0.1
TARGET = 20_000.0
SENDERS = int(os.environ.get("BENCH_SENDERS", "2"))  # requests in flight besides the probes


def _cells() -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(GRID * GRID)
    return LON0 + (k % GRID) * STEP, LAT0 + (k // GRID) * STEP


def build(db: Path) -> dict[str, str]:
    """The database: parties with tokens, 10,000 activities, red lines between cells."""
    store = open_store(str(db))
    store.initialise(Minima(Separation(500.0, 150.0, 300.0)))
    parties = Parties(store)
    tokens = {f"p{k}": parties.add(f"p{k}")[1] for k in range(PARTIES)}
    tokens[ZONE_OWNER] = parties.add(ZONE_OWNER)[1]
    lon, lat = _cells()
    t = time.time_ns()
    start, end = format_instant(t - 3_600 * 10**9), format_instant(t + 6 * 3_600 * 10**9)
    feats = []
    for k in range(GRID * GRID):
        x, y = float(lon[k]), float(lat[k])
        feats.append({"type": "Feature", "id": f"obj-{k}", "geometry": {
            "type": "Polygon", "coordinates": [[[x - HALF, y - HALF], [x + HALF, y - HALF],
                                                [x + HALF, y + HALF], [x - HALF, y + HALF],
                                                [x - HALF, y - HALF]]]},
            "properties": {"party": f"p{k % PARTIES}", "activity": f"obj-{k}",
                           "kind": "patrol", "alt_lower_m": 0, "alt_upper_m": 1_000,
                           "time_start": start, "time_end": end}})
    # A red line just east of each of the first row's boxes (the probes step into it).
    for k in range(GRID):
        x, y = float(lon[k]) + HALF + 0.005, float(lat[k])
        feats.append({"type": "Feature", "id": f"line-{k}", "geometry": {
            "type": "Polygon", "coordinates": [[[x - 0.003, y - 0.003], [x + 0.003, y - 0.003],
                                                [x + 0.003, y + 0.003], [x - 0.003, y + 0.003],
                                                [x - 0.003, y - 0.003]]]},
            "properties": {"party": ZONE_OWNER, "zone": True, "restriction": "notify",
                           "alt_lower_m": 0, "alt_upper_m": 5_000, "time_start": start,
                           "time_end": end}})
    Deconfliction(store).submit(read_scenario({"type": "FeatureCollection",
                                               "features": feats}))
    store.close()
    return tokens


class Traffic:
    """Reports: each object wanders inside its box; probes (objects of the first row,
    party p{k % 10}) alternate between their box and the red line east of it."""

    def __init__(self, seed: int = 7):
        self.rng = np.random.default_rng(seed)
        self.lon, self.lat = _cells()
        self.probe = 0
        self.probe_out = False

    def batch(self, party: int, n: int, t_ns: int) -> list[dict[str, Any]]:
        mine = np.arange(GRID + party, GRID * GRID, PARTIES)  # (the first row: probes)
        pick = self.rng.choice(mine, size=min(n, len(mine)), replace=False)
        dx = self.rng.uniform(-HALF * 0.8, HALF * 0.8, len(pick))
        dy = self.rng.uniform(-HALF * 0.8, HALF * 0.8, len(pick))
        when = format_instant(t_ns)
        return [{"activity": f"obj-{k}", "time": when, "lon": float(self.lon[k] + a),
                 "lat": float(self.lat[k] + b), "alt_m": 300.0, "horizontal_accuracy_m": 5.0}
                for k, a, b in zip(pick.tolist(), dx.tolist(), dy.tolist(), strict=True)]

    def everyone(self, party: int, t_ns: int) -> list[dict[str, Any]]:
        """A report of every object of a party at its box's centre (the warm-up: the
        server starts tracking each object on its first report)."""
        when = format_instant(t_ns)
        return [{"activity": f"obj-{k}", "time": when, "lon": float(self.lon[k]),
                 "lat": float(self.lat[k]), "alt_m": 300.0}
                for k in range(party, GRID * GRID, PARTIES)]

    def probe_report(self, t_ns: int) -> tuple[int, dict[str, Any], bool]:
        """The next probe's report; whether it enters the red line (else leaves it)."""
        k = self.probe
        entering = not self.probe_out
        x = float(self.lon[k]) + (HALF + 0.005 if entering else 0.0)
        if not entering:
            self.probe = (self.probe + 1) % GRID
        self.probe_out = entering
        return k % PARTIES, {"activity": f"obj-{k}", "time": format_instant(t_ns), "lon": x,
                             "lat": float(self.lat[k]), "alt_m": 300.0,
                             "horizontal_accuracy_m": 5.0}, entering


def _sse_listener(url: str, token: str, after: int, conn: Connection) -> None:
    """The zone owner's event stream from event ``after`` on: sends (arrival time,
    report time) for each crossing."""
    with httpx.Client(timeout=httpx.Timeout(10.0, read=None)) as http, http.stream(
            "GET", url + "/v1/events", headers={"Authorization": f"Bearer {token}",
                                                "Accept": "text/event-stream",
                                                "Last-Event-ID": str(after)}) as r:
        conn.send("ready")
        for line in r.iter_lines():
            if line.startswith("data:"):
                event = orjson.loads(line[5:])
                if event.get("type") == "zone.crossed":
                    conn.send((time.time(), event["counterpart"]["position"]["time"]))


def http_run(db: Path, tokens: dict[str, str], seconds: float, rate: float | None = None
             ) -> dict[str, Any]:
    """Senders post for ``seconds``: as fast as answered, or ``rate`` reports/s."""
    server, url = start_server(db, ["--workers", str(SENDERS + 1), "--silence", "600"])
    store = open_store(str(db))
    after = store.last_event_id()
    store.close()
    parent, child = mp.Pipe()
    listener = mp.get_context("spawn").Process(target=_sse_listener,
                                               args=(url, tokens[ZONE_OWNER], after, child),
                                               daemon=True)
    listener.start()
    assert parent.poll(30) and parent.recv() == "ready"
    traffic = Traffic()
    sent_at: dict[str, float] = {}  # probe report time -> when its POST began
    accepted = 0
    errors = 0
    lock = threading.Lock()

    def post(http: httpx.Client, party: int, reports: list[dict[str, Any]]) -> None:
        nonlocal accepted, errors
        r = http.post("/v1/positions", content=orjson.dumps({"positions": reports}),
                      headers={"Authorization": f"Bearer {tokens[f'p{party}']}",
                               "Content-Type": "application/json"})
        with lock:
            if r.status_code == 200:
                accepted += r.json()["accepted"]
            else:
                errors += 1

    def sender(worker: int) -> None:
        every = SENDERS * BATCH / rate if rate else 0.0
        with httpx.Client(base_url=url, timeout=30) as http:
            k = worker
            due = time.monotonic() + worker * every / SENDERS
            while time.monotonic() < stop:
                time.sleep(max(0.0, due - time.monotonic()))
                due += every
                party = k % PARTIES
                k += SENDERS
                with lock:
                    reports = traffic.batch(party, BATCH, time.time_ns())
                post(http, party, reports)

    def prober() -> None:
        """A probe report every PROBE_EVERY_S, alone in its request (the probe objects
        are not among the senders' picks: the first row is left to the prober)."""
        with httpx.Client(base_url=url, timeout=30) as http:
            due = time.monotonic()
            while time.monotonic() < stop:
                party, report, entering = traffic.probe_report(time.time_ns())
                if entering:
                    sent_at[report["time"]] = time.time()
                post(http, party, [report])
                due += PROBE_EVERY_S
                time.sleep(max(0.0, due - time.monotonic()))

    with httpx.Client(base_url=url, timeout=60) as http:  # warm-up, not measured
        for party in range(PARTIES):
            post(http, party, traffic.everyone(party, time.time_ns()))
    accepted = 0
    began = time.monotonic()
    stop = began + seconds
    threads = [threading.Thread(target=sender, args=(w,)) for w in range(SENDERS)]
    threads.append(threading.Thread(target=prober))
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - began
    time.sleep(1.0)
    latencies = []
    while parent.poll(0.5):
        arrived, report_time = parent.recv()
        if report_time in sent_at:
            latencies.append((arrived - sent_at[report_time]) * 1000)
    listener.kill()
    stop_server(server)
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {"offered": rate, "seconds": round(elapsed, 1), "accepted": accepted,
            "errors": errors,
            "rate": accepted / elapsed, "alerts": len(latencies), "probes": len(sent_at),
            "p50_ms": float(np.percentile(lat, 50)), "p99_ms": float(np.percentile(lat, 99)),
            "max_ms": float(np.max(lat))}


def _fixes(reports: list[dict[str, Any]]) -> tuple[list[str], Fixes]:
    return columns(msgspec.json.decode(orjson.dumps({"positions": reports}),
                                       type=BatchIn).positions)


def in_process(db: Path, reports: int) -> dict[str, Any]:
    """Per-report versus batched ingest, the same monitor code, one store."""
    store = open_store(str(db))
    traffic = Traffic(seed=11)
    out: dict[str, Any] = {}
    for label, size in (("one at a time", 1), ("batches of 1,000", BATCH)):
        monitor = Monitor(MonitorSettings(silence_s=600))
        for party in range(PARTIES):  # warm-up, not measured: every object tracked
            monitor.ingest(store, f"p{party}", *_fixes(traffic.everyone(party,
                                                                        time.time_ns())))
        batches = []
        for k in range(max(reports // size, 1)):
            party = k % PARTIES
            batches.append((f"p{party}", *_fixes(traffic.batch(party, size, time.time_ns()))))
        began = time.perf_counter()
        n = 0
        for party, acts, fixes in batches:
            n += monitor.ingest(store, party, acts, fixes).accepted
        out[label] = n / (time.perf_counter() - began)
    store.close()
    out["ratio"] = out["batches of 1,000"] / out["one at a time"]
    return out


def positions_workload(tmp: Path, seconds: float, baseline_reports: int) -> dict[str, Any]:
    db = tmp / "positions.db"
    began = time.monotonic()
    tokens = build(db)
    setup = time.monotonic() - began
    # Flush what earlier workloads left to write: a commit's fsync waits behind the
    # system's other dirty pages (with 2.3 GB of them pending, measured here, the
    # paced alert p99 went from ~50 ms to 370 ms).
    os.sync()
    fast = http_run(db, tokens, seconds)
    os.sync()
    paced = http_run(db, tokens, seconds, TARGET)
    local = in_process(db, baseline_reports)
    return {"objects": GRID * GRID, "setup_s": round(setup, 1), "runs": [fast, paced],
            "local": local}


def positions_section(run: dict[str, Any]) -> list[str]:
    loc = run["local"]
    rows = []
    for h in run["runs"]:
        offered = "as fast as answered" if h["offered"] is None else f"{h['offered']:,.0f}/s"
        rows.append(
            f"| {offered} | {h['rate']:,.0f} | {h['rate'] / TARGET:.2f}x | {h['errors']} | "
            f"{h['alerts']} of {h['probes']} | {h['p50_ms']:.1f} / {h['p99_ms']:.1f} / "
            f"{h['max_ms']:.1f} | {100 / h['p99_ms']:.2f}x |")
    return [
        "## Live positions",
        "",
        f"{run['objects']:,} tracked activities of {PARTIES} parties on a grid, each "
        "wandering in its declared box; red lines of another party next to a row of "
        f"boxes, into which a probe object steps every {PROBE_EVERY_S:g} s. All checks "
        "on: conformance, red lines, proximity (minima 500 m and 150 m), silence. "
        f"{SENDERS} senders on the same machine post batches of 1,000 reports to one "
        "`detente serve` (SQLite) for "
        f"{run['runs'][0]['seconds']:g} s; the probes post alone. Alert latency: from just "
        "before a probe's POST to its `zone.crossed` event on the zone owner's SSE "
        "stream. Each run starts after `sync` (the fsync of every commit waits behind the "
        "machine's other dirty pages, such as the earlier workloads' databases). Targets: "
        "at least 20,000 positions/s, alert p99 at most 100 ms at that rate.",
        "",
        "| offered | accepted positions/s | vs 20,000 | failed requests | alerts measured "
        "| alert p50 / p99 / max ms | vs 100 ms |",
        "|---|---:|---:|---:|---:|---|---:|",
        *rows,
        "",
        "Baseline, in process (the same monitor and store, no HTTP): the same reports "
        "one at a time, as a per-report design would take them, and in batches of 1,000.",
        "",
        "| ingest | positions/s |",
        "|---|---:|",
        f"| one report at a time | {loc['one at a time']:,.0f} |",
        f"| batches of 1,000 | {loc['batches of 1,000']:,.0f} |",
        f"| ratio | {loc['ratio']:.1f}x |",
        "",
    ]
