"""HTTP workload: activities submitted with detection over loopback, against a
populated store, by a bounded load generator (fixed concurrency, fixed count).

The server is ``detente serve`` in its own process; the generator (asyncio and
:mod:`bench.rawhttp`, keep-alive connections) runs in this one. Both share the
machine's cores, so the figures are a floor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from detente.core.minima import Minima, Separation
from detente.service.parties import Parties
from detente.store import open_store
from detente.store.sqlite import SQLiteStore

from . import rawhttp

HOT = (13.15, 11.85)  # the Sahel theatre's centre: the densest stored traffic


def _volume(rng: random.Random, overlapping: bool, spot: int = 0) -> dict[str, Any]:
    if overlapping:  # each run its own spot, so earlier runs' piles do not count
        x = HOT[0] + 0.2 * spot + rng.uniform(-0.02, 0.02)
        y = HOT[1] + rng.uniform(-0.02, 0.02)
        day, hour = 5, 10
    else:
        x, y = rng.uniform(-170, 170), rng.uniform(-60, 65)
        day, hour = rng.randrange(1, 8), rng.randrange(0, 23)
    d = 0.005
    ring = [[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]
    return {"geometry": {"type": "Polygon", "coordinates": [ring]},
            "alt_lower_m": 0, "alt_upper_m": 120,
            "time_start": f"2030-06-{day:02d}T{hour:02d}:00:00Z",
            "time_end": f"2030-06-{day:02d}T{hour:02d}:40:00Z"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _load(url: str, tokens: list[str], requests: int, concurrency: int,
                overlapping: bool, tag: str) -> tuple[list[float], int, float]:
    rng = random.Random(11 if overlapping else 12)
    raws = [rawhttp.request("POST", "/v1/activities", {
        "id": f"{tag}-{k}", "kind": "drone", "volumes": [_volume(rng, overlapping, concurrency)]},
        tokens[k % len(tokens)]) for k in range(requests)]
    latencies: list[float] = []
    errors = 0
    host, port = url.removeprefix("http://").rsplit(":", 1)
    pool = rawhttp.Pool(host, int(port), concurrency)

    gate = asyncio.Semaphore(concurrency)  # (timed from the turn of each request)

    async def one(raw: bytes) -> None:
        nonlocal errors
        async with gate:
            t = time.perf_counter()
            status, _ = await pool.send(raw)
            latencies.append(time.perf_counter() - t)
        errors += status != 201

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(raw) for raw in raws))
        wall = time.perf_counter() - t0
    finally:
        pool.close()
    return latencies, errors, wall


FLOOR_TABLES = ("conflicts", "events", "audit")


def _row_marks(db: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
        return {t: c.execute(f"SELECT coalesce(max(rowid), 0) FROM {t}").fetchone()[0]
                for t in FLOOR_TABLES}


def _remove_db(path: Path) -> None:
    for part in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        part.unlink(missing_ok=True)


def copy_rows(db: Path, marks: Mapping[str, int], untimed: Sequence[str] = ()
              ) -> tuple[float, dict[str, int]]:
    """Seconds for SQLite alone to write each table's rows past its mark (by rowid), in
    order: copied from ``db`` into a fresh database of the same schema by ``INSERT ...
    SELECT`` (no Python per row), in one transaction, committed as the server commits
    (WAL, synchronous=FULL); and the rows copied per table. ``untimed`` tables are
    copied whole first (rows the timed ones refer to). The ``WHERE`` on rowid keeps
    SQLite from its shortcut for whole-table copies, which moves records without
    decoding them: each row goes in as a row, its indexes kept as it goes."""
    path = db.parent / "row-floor.db"
    _remove_db(path)
    store = SQLiteStore(str(path))
    store.initialise(Minima(Separation(500.0, 150.0, 300.0)))
    store.close()
    counts: dict[str, int] = {}
    with contextlib.closing(sqlite3.connect(str(path), isolation_level=None, uri=True)) as c:
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=FULL")
        c.execute("ATTACH ? AS run", (f"file:{db}?mode=ro",))
        for table in untimed:
            c.execute(f"INSERT INTO main.{table} SELECT * FROM run.{table}")
        for table in marks:
            if table.endswith("_node"):  # a fresh R*Tree's empty root: the copy brings one
                c.execute(f"DELETE FROM main.{table}")
        os.sync()
        t = time.perf_counter()
        c.execute("BEGIN")
        for table, mark in marks.items():
            counts[table] = c.execute(
                f"INSERT INTO main.{table} SELECT * FROM run.{table} WHERE rowid > ? "
                "ORDER BY rowid", (mark,)).rowcount
        c.execute("COMMIT")
        seconds = time.perf_counter() - t
    _remove_db(path)
    return seconds, counts


def row_floor(db: Path, marks: dict[str, int], submissions: int) -> dict[str, Any]:
    """What writing the rows a run stored costs SQLite alone: the conflicts, events and
    audit entries past ``marks`` (no Python per row, no detection, no HTTP)."""
    seconds, counts = copy_rows(db, marks, untimed=("owners",))
    return {"seconds": seconds, "rate": submissions / seconds, **counts}


def party_tokens(db: str, prefix: str, count: int = 8) -> list[str]:
    """Fresh tokens of ``count`` load parties (made if missing) in the database."""
    store = open_store(db)
    parties = Parties(store)
    tokens = []
    for k in range(count):
        name = f"{prefix}-{k}"
        tokens.append(parties.rotate(name) if store.find_party(name) else parties.add(name)[1])
    store.close()
    return tokens


def start_server(db: Path | str, extra: Sequence[str] = ()
                 ) -> tuple[subprocess.Popen[bytes], str]:
    """``detente serve`` on a free loopback port; returns it once it answers."""
    exe = shutil.which("detente", path=str(Path(sys.executable).parent)) or "detente"
    return start_process(lambda port: [exe, "serve", "--db", str(db), "--port", str(port),
                                       *extra, *os.environ.get("BENCH_SERVE_ARGS", "").split()])


def start_process(argv: Callable[[int], list[str]], env: dict[str, str] | None = None
                  ) -> tuple[subprocess.Popen[bytes], str]:
    """A server started by ``argv(port)`` on a free loopback port; returns it once it
    answers ``GET /``."""
    port = _free_port()
    cmd = argv(port)
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(url + "/", timeout=1)
            return server, url
        except httpx.HTTPError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise RuntimeError(f"{' '.join(cmd[:2])} did not start") from None
            time.sleep(0.1)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(10)


def http_workload(db: Path, n_stored: int, requests: int, concurrency: int = 16
                  ) -> dict[str, Any]:
    """Submissions/s and latency percentiles for spread-out and overlapping traffic."""
    tokens = party_tokens(str(db), "load-party")
    # Flush what earlier workloads left to write (a million-volume import is a
    # gigabyte): each commit's fsync would wait behind it.
    os.sync()
    server, url = start_server(db)
    try:
        out: dict[str, Any] = {"n": n_stored, "requests": requests,
                               "concurrency": concurrency}
        for shape in ("spread", "overlapping"):
            marks = _row_marks(db) if shape == "overlapping" else {}
            lat, errors, wall = asyncio.run(_load(url, tokens, requests, concurrency,
                                                  shape == "overlapping",
                                                  f"{shape}-c{concurrency}"))
            ms = np.percentile(lat, [50, 95, 99]) * 1e3
            out[shape] = {"rate": requests / wall, "p50": float(ms[0]), "p95": float(ms[1]),
                          "p99": float(ms[2]), "errors": errors}
            if shape == "overlapping":
                out["floor"] = row_floor(db, marks, requests)
        return out
    finally:
        stop_server(server)
