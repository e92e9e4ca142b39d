"""The two backends side by side on the same stored traffic: the embedded SQLite store
and PostgreSQL 15 + PostGIS 3 (a throwaway cluster on this machine, fsync on, as
SQLite's WAL here runs with synchronous=FULL).

* check: one-volume ``Deconfliction.preview`` against n stored volumes, p50/p95/p99;
* HTTP: submissions/s through two ``detente serve`` processes on one database (half
  the load generator's connections on each), spread traffic.

Reported as PostGIS / SQLite ratios.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from detente.core.minima import Minima
from detente.core.scenario import read_scenario
from detente.service import Deconfliction
from detente.store import open_store

from .http_load import _load, party_tokens, start_server, stop_server
from .traffic import generate

ROOT = Path(__file__).resolve().parents[1]


def _say(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def _pct(xs: list[float]) -> list[float]:
    return [float(x) * 1e3 for x in np.percentile(xs, [50, 95, 99])]


def _check(url: str, queries: Any, minima: Minima, parallel: Any) -> list[float]:
    store = open_store(url)
    svc = Deconfliction(store, parallel=parallel)
    lat = []
    for k in range(len(queries)):
        one = queries.take([k])
        t = time.perf_counter()
        svc.preview(one, minima)
        lat.append(time.perf_counter() - t)
    store.close()
    return lat


def _http(url: str, requests: int, concurrency: int, tag: str) -> dict[str, Any]:
    tokens = party_tokens(url, "backend-party")
    servers = [start_server(url) for _ in range(2)]
    try:
        async def both() -> tuple[list[float], int, float]:
            t0 = time.perf_counter()
            runs = await asyncio.gather(*(
                _load(u, tokens, requests // 2, concurrency // 2, False, f"{tag}-{k}")
                for k, (_, u) in enumerate(servers)))
            wall = time.perf_counter() - t0
            return [x for r in runs for x in r[0]], sum(r[1] for r in runs), wall

        lat, errors, wall = asyncio.run(both())
    finally:
        for proc, _ in servers:
            stop_server(proc)
    ms = _pct(lat)
    return {"rate": len(lat) / wall, "p50": ms[0], "p95": ms[1], "p99": ms[2],
            "errors": errors}


def backends_workload(sqlite_db: Path, n: int, queries: int, requests: int,
                      minima: Minima, parallel: Any, parties: int = 10) -> dict[str, Any]:
    """``sqlite_db`` holds ``generate(n, seed=2)`` already (the stored workload's); the
    same traffic goes into a new PostGIS database here."""
    sys.path.insert(0, str(ROOT))
    from tests import pgcluster

    q = read_scenario(orjson.dumps(generate(queries, parties=parties, seed=99, zones=0))
                      ).activities
    out: dict[str, Any] = {"n": n, "queries": len(q), "requests": requests}
    with pgcluster.running(durable=True) as cluster:
        url = cluster.database("bench")
        store = open_store(url)
        store.initialise(minima)
        _say(f"backends: importing {n:,} volumes into PostGIS")
        data = orjson.dumps(generate(n, parties=parties, seed=2, zones=0))
        t0 = time.perf_counter()
        Deconfliction(store, parallel=parallel).submit(read_scenario(data, parallel=parallel))
        out["pg_import_s"] = time.perf_counter() - t0
        store.close()
        _say(f"backends: PostGIS import {out['pg_import_s']:.1f} s; checks")
        for name, db in (("sqlite", str(sqlite_db)), ("postgis", url)):
            out[name] = {"check_ms": _pct(_check(db, q, minima, parallel))}
        for name, db in (("sqlite", str(sqlite_db)), ("postgis", url)):
            _say(f"backends: HTTP on {name}, 2 servers")
            out[name]["http"] = _http(db, requests, 16, f"backend-{name}")
    return out


def backends_section(b: dict[str, Any]) -> list[str]:
    s, p = b["sqlite"], b["postgis"]
    out = ["## Backends side by side (issue: PostGIS server backend)", "",
           f"The same {b['n']:,} stored volumes in each. PostgreSQL 15 + PostGIS 3 on this "
           "machine (fsync on); SQLite in WAL with synchronous=FULL.", "",
           "| measure | SQLite | PostGIS | PostGIS / SQLite |", "|---|---|---|---|"]
    for k, label in enumerate(("p50", "p95", "p99")):
        a, c = s["check_ms"][k], p["check_ms"][k]
        out.append(f"| check one volume, {label} ms | {a:.3f} | {c:.3f} | {c / a:.2f}x |")
    hs, hp = s["http"], p["http"]
    out.append(f"| HTTP submissions/s, 2 serve processes, 16 clients | {hs['rate']:,.0f} | "
               f"{hp['rate']:,.0f} | {hp['rate'] / hs['rate']:.2f}x |")
    out.append(f"| HTTP p50 / p99 ms | {hs['p50']:.1f} / {hs['p99']:.1f} | "
               f"{hp['p50']:.1f} / {hp['p99']:.1f} | |")
    out.append(f"| HTTP errors | {hs['errors']} | {hp['errors']} | |")
    out += ["", f"PostGIS import of the {b['n']:,} volumes (with detection and the dialogue's "
            f"bookkeeping, one transaction): {b['pg_import_s']:.1f} s. Checks: "
            f"{b['queries']:,} one-volume previews each (GiST on box, altitude range and "
            "time range, then the same exact test as SQLite). HTTP: "
            f"{b['requests']:,} spread submissions, 8 concurrent on each server; every "
            "write takes the one write lock (see docs/deploy.md).", ""]
    return out
