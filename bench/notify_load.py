"""Notification workload: how long from a conflict being opened to the party hearing
of it, by webhook and by Server-Sent Events, while submissions arrive at a fixed rate.

``detente serve`` runs in its own process. This process paces submissions open-loop
(one every 1/rate seconds, whatever the server's answers, over up to 64 keep-alive
connections of :mod:`bench.rawhttp`); a bare asyncio HTTP receiver takes the webhook
and httpx clients hold the SSE connections. Latency is measured from the event's
``created_at`` (stamped when the submitting transaction starts, before
detection: so it includes detection, the commit and delivery) to the moment the body
is in the listener's hands. The webhook receiver and the SSE clients run in processes
of their own (as a party's would, elsewhere); all share the machine's two cores.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from detente.core.instants import parse_instant
from detente.service.parties import Parties
from detente.store.sqlite import SQLiteStore

from . import rawhttp
from .http_load import _free_port, start_server, stop_server

AREA = (30.0, -20.0, 32.0, -18.0)  # a quiet theatre: lon/lat box of the watcher's area
DAY = "2030-07-01"
SUBMITTERS = 8


def _watch_area() -> dict[str, Any]:
    x0, y0, x1, y1 = AREA
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"id": "standing-watch", "kind": "surveillance", "volumes": [{
        "geometry": {"type": "Polygon", "coordinates": [ring]}, "alt_lower_m": 0,
        "alt_upper_m": 10_000, "time_start": f"{DAY}T00:00:00Z",
        "time_end": f"{DAY}T23:59:00Z"}]}


def _sortie(rng: random.Random, tag: str) -> dict[str, Any]:
    x = rng.uniform(AREA[0] + 0.01, AREA[2] - 0.01)
    y = rng.uniform(AREA[1] + 0.01, AREA[3] - 0.01)
    d = 0.005
    h, m = rng.randrange(0, 23), rng.randrange(0, 50)
    return {"id": tag, "kind": "drone", "volumes": [{
        "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + d, y], [x + d, y + d],
                                                         [x, y + d], [x, y]]]},
        "alt_lower_m": 0, "alt_upper_m": 120, "time_start": f"{DAY}T{h:02d}:{m:02d}:00Z",
        "time_end": f"{DAY}T{h:02d}:{m + 10:02d}:00Z"}]}


class _Receiver:
    """A minimal HTTP/1.1 webhook receiver (keep-alive) that stamps arrivals."""

    def __init__(self) -> None:
        self.latencies: list[float] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                     ) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                self.latencies += _latency_ms(time.time(), body)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            writer.close()  # (cancelled: the run is over; nothing more to read)


def _latency_ms(at: float, body: bytes) -> list[float]:
    """Milliseconds from a conflict.opened event's creation to ``at`` (else nothing)."""
    import orjson

    e = orjson.loads(body)
    if e.get("type") != "conflict.opened":
        return []
    return [(at - parse_instant(e["created_at"]) / 1e9) * 1e3]


async def _serve_requests(conn: Connection, latencies: list[float]) -> None:
    """Answer the parent: "count" -> how many so far; "stop" -> the latencies."""
    while True:
        while not conn.poll():
            await asyncio.sleep(0.02)
        if conn.recv() == "stop":
            conn.send(latencies)
            return
        conn.send(len(latencies))


def _receiver_process(port: int, conn: Connection) -> None:
    async def main() -> None:
        receiver = _Receiver()
        server = await asyncio.start_server(receiver.handle, "127.0.0.1", port)
        conn.send("ready")
        await _serve_requests(conn, receiver.latencies)
        server.close()
    asyncio.run(main())


def _sse_process(url: str, token: str, after: int, clients: int, conn: Connection) -> None:
    async def main() -> None:
        latencies: list[float] = []
        connected = 0

        async def listen() -> None:
            nonlocal connected
            headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream",
                       "Last-Event-ID": str(after)}
            async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(30, read=None)
                                         ) as c, c.stream("GET", "/v1/events",
                                                          headers=headers) as r:
                connected += 1
                async for line in r.aiter_lines():
                    if line.startswith("data:"):
                        latencies.extend(_latency_ms(time.time(), line[5:].encode()))

        tasks = [asyncio.create_task(listen()) for _ in range(clients)]
        while connected < clients:
            await asyncio.sleep(0.05)
        conn.send("ready")
        await _serve_requests(conn, latencies)
        for t in tasks:
            t.cancel()
    asyncio.run(main())


def _listen_in(target: Any, *args: Any) -> tuple[Any, Connection]:
    """Run a listener in its own process (its own interpreter and event loop, as a
    party's receiver would be: not behind this process's load generator)."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(*args, child), daemon=True)
    proc.start()
    if not parent.poll(60) or parent.recv() != "ready":
        raise RuntimeError("the listener did not start")
    return proc, parent


def _collect(proc: Any, conn: Connection, want: int) -> list[float]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        conn.send("count")
        if conn.recv() >= want:
            break
        time.sleep(0.2)
    conn.send("stop")
    latencies: list[float] = conn.recv()
    proc.join(10)
    return latencies


async def _pace(url: str, tokens: list[str], rate: float, seconds: float, tag: str
                ) -> tuple[int, int, float, str | None]:
    """Open-loop submissions; returns (sent, errors, achieved rate, first error)."""
    rng = random.Random(tag)
    n = int(rate * seconds)
    raws = [rawhttp.request("POST", "/v1/activities", _sortie(rng, f"{tag}-{k}"),
                            tokens[k % len(tokens)]) for k in range(n)]
    errors = 0
    done = 0
    first: list[str] = []
    host, port = url.removeprefix("http://").rsplit(":", 1)
    pool = rawhttp.Pool(host, int(port), 64)

    async def one(raw: bytes) -> None:
        nonlocal errors, done
        try:
            status, body = await pool.send(raw)
            if status != 201:
                errors += 1
                first[:] = first or [f"{status} {body[:200]!r}"]
        except (OSError, asyncio.IncompleteReadError) as exc:  # counted: the report
            errors += 1                                          # shows them
            first[:] = first or [repr(exc)]
        done += 1

    try:
        t0 = time.perf_counter()
        tasks = []
        for k in range(n):
            delay = t0 + k / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(raws[k])))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - t0
    finally:
        pool.close()
    return n, errors, done / wall, first[0] if first else None


def _pct(xs: list[float]) -> dict[str, float]:
    if not xs:
        return {"p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
    p = np.percentile(xs, [50, 95, 99])
    return {"p50": float(p[0]), "p95": float(p[1]), "p99": float(p[2])}


async def _drain(http: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """The newest event id the watcher has."""
    after = 0
    while page := (await http.get("/v1/events", headers=headers,
                                  params={"after": after, "limit": 1000})).json():
        after = page[-1]["id"]
    return after


async def _run(url: str, tokens: dict[str, str], rate: float, seconds: float,
               sse_clients: int) -> dict[str, Any]:
    submitters = [tokens[f"notify-src-{k}"] for k in range(SUBMITTERS)]
    watch = {"Authorization": f"Bearer {tokens['notify-watch']}"}
    out: dict[str, Any] = {"rate_target": rate, "seconds": seconds}
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        # -- webhooks ------------------------------------------------------------
        port = _free_port()
        proc, conn = _listen_in(_receiver_process, port)
        hook = (await http.post("/v1/webhooks", headers=watch, json={
            "url": f"http://127.0.0.1:{port}/hook", "types": ["conflict.opened"]})).json()
        sent, errors, achieved, first = await _pace(url, submitters, rate, seconds,
                                                    f"hook-{rate:g}")
        lat = await asyncio.to_thread(_collect, proc, conn, sent - errors)
        out["webhook"] = {"sent": sent, "errors": errors, "rate": achieved,
                          "received": len(lat), "first_error": first, **_pct(lat)}
        await http.delete(f"/v1/webhooks/{hook['id']}", headers=watch)

        # -- SSE fan-out ---------------------------------------------------------
        if sse_clients:
            after = await _drain(http, watch)
            proc, conn = _listen_in(_sse_process, url, tokens["notify-watch"], after,
                                    sse_clients)
            sent, errors, achieved, first = await _pace(url, submitters, rate, seconds,
                                                        f"sse-{rate:g}")
            want = (sent - errors) * sse_clients
            lat = await asyncio.to_thread(_collect, proc, conn, want)
            out["sse"] = {"sent": sent, "errors": errors, "rate": achieved,
                          "clients": sse_clients, "received": len(lat), "expected": want,
                          "first_error": first, **_pct(lat)}
    return out


def notify_workload(db: Path, n_stored: int, rate: float = 200, seconds: float = 10,
                    sse_clients: int = 100) -> dict[str, Any]:
    store = SQLiteStore(str(db))
    parties = Parties(store)
    tokens: dict[str, str] = {}
    for name in [f"notify-src-{k}" for k in range(SUBMITTERS)] + ["notify-watch"]:
        tokens[name] = (parties.rotate(name) if store.find_party(name)
                        else parties.add(name)[1])
    store.close()
    server, url = start_server(db, ["--webhook-allow", "127.0.0.0/8"])  # (the receiver)
    try:
        r = httpx.post(url + "/v1/activities", json=_watch_area(), timeout=60,
                       headers={"Authorization": f"Bearer {tokens['notify-watch']}"})
        if r.status_code not in (201, 409):
            raise RuntimeError(f"cannot declare the watcher's area: {r.text}")
        out = asyncio.run(_run(url, tokens, rate, seconds, sse_clients))
        out["n"] = n_stored
        return out
    finally:
        stop_server(server)

