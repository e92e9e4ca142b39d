"""Several ``detente serve`` processes on one PostgreSQL + PostGIS database: racing
conflicting submissions are never both accepted without their conflict, an event
caused on one server reaches a stream held by another, and each event reaches a
webhook once, not once per server."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from detente.client import Client
from detente.core.minima import Minima, Separation
from detente.service.parties import Parties
from detente.store import open_store

from .conftest import detente_exe
from .receiver import Receiver, wait_for
from .test_api import activity
from .test_dialogue import free_port

SERVERS = 4
PAIRS = 1000


def _parties(db: str, minima: Minima) -> dict[str, str]:
    store = open_store(db)
    store.initialise(minima)
    parties = Parties(store)
    tokens = {name: parties.add(name, contact=None)[1] for name in "AB"}
    store.close()
    return tokens


@contextlib.contextmanager
def servers(db: str, count: int, *extra: str) -> Iterator[list[str]]:
    """``count`` real ``detente serve`` processes on the database; yields their URLs."""
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    try:
        for _ in range(count):
            port = free_port()
            procs.append(subprocess.Popen(
                [*detente_exe(), "serve", "--db", db, "--port", str(port), "--workers", "2",
                 "--webhook-allow", "127.0.0.0/8", *extra],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
            urls.append(f"http://127.0.0.1:{port}")
        for proc, url in zip(procs, urls, strict=True):
            def up(url: str = url, proc: subprocess.Popen[bytes] = proc) -> bool:
                try:
                    return httpx.get(url + "/", timeout=1).status_code == 200
                except httpx.HTTPError:
                    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                    return False
            wait_for(up, timeout=60, what=f"server {url}")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.slow
def test_racing_pairs_across_four_servers_always_record_their_conflict(pg_cluster) -> None:
    """Pair i: A and B plan the same square at the same instant, through two different
    server processes. Every pair must end with its conflict recorded, and one of the
    two submissions must have been told of it."""
    db = pg_cluster.database()
    tokens = _parties(db, Minima(Separation(0.0, 0.0, 0.0)))
    told = 0

    async def race(urls: list[str]) -> None:
        nonlocal told
        clients = {(who, k): httpx.AsyncClient(
            base_url=url + "/v1", timeout=120,
            headers={"Authorization": f"Bearer {tokens[who]}"})
            for who in "AB" for k, url in enumerate(urls)}
        gate = asyncio.Semaphore(8)

        async def pair(i: int) -> None:
            nonlocal told
            # Squares on a grid 0.5 degrees apart: no pair touches another.
            spot = (-60 + (i % 200) * 0.5, -40 + (i // 200) * 0.5)
            async with gate:
                ra, rb = await asyncio.gather(
                    clients["A", i % SERVERS].post("/activities",
                                                   json=activity(f"a-{i}", spot)),
                    clients["B", (i + 1) % SERVERS].post("/activities",
                                                         json=activity(f"b-{i}", spot)))
            assert ra.status_code == rb.status_code == 201, (ra.text, rb.text)
            n = len(ra.json()["conflicts"]) + len(rb.json()["conflicts"])
            assert n == 1, (i, ra.json(), rb.json())
            told += n

        try:
            await asyncio.gather(*(pair(i) for i in range(PAIRS)))
        finally:
            for c in clients.values():
                await c.aclose()

    with servers(db, SERVERS) as urls:
        asyncio.run(race(urls))
    store = open_store(db)
    rows = store.list_conflicts(party=None, status="open")
    store.close()
    assert told == PAIRS
    assert len(rows) == PAIRS
    assert {frozenset({c.activity_a, c.activity_b}) for c in rows} == {
        frozenset({f"a-{i}", f"b-{i}"}) for i in range(PAIRS)}


def test_events_cross_servers_and_webhooks_fire_once(pg_cluster) -> None:
    """Three servers: A's stream is held by server 2, A's webhook was registered on
    server 1, B submits through server 3. A's stream sees every event, and the
    receiver gets each event exactly once although three dispatchers run."""
    db = pg_cluster.database()
    tokens = _parties(db, Minima(Separation(500.0, 150.0, 300.0)))
    receiver = Receiver(free_port())
    receiver.start()
    seen: list[dict[str, Any]] = []
    conflicts = 12
    try:
        with servers(db, 3) as urls, Client(urls[0], tokens["A"]) as a1, \
                Client(urls[2], tokens["B"]) as b3:
            hook = a1.add_webhook(receiver.url("A"))
            receiver.secrets["A"] = hook["secret"]

            def listen() -> None:
                with Client(urls[1], tokens["A"]) as a2:
                    for e in a2.stream(0, timeout=60):
                        seen.append(e)
                        if len(seen) >= conflicts:
                            return

            for k in range(conflicts):
                a1.create_activity(activity(f"a-{k + 1}", (13.1 + k, 20.8)))
            t = threading.Thread(target=listen)
            t.start()
            wait_for(lambda: t.is_alive(), what="listener")
            b3.create_activity(activity("b-far", (13.15, 30.85)))  # no conflict
            for k in range(conflicts):
                b3.create_activity(activity(f"c-{k}", (13.15 + k, 20.85)))
            t.join(60)
            expected = [e["id"] for e in a1.events()]
            assert len(expected) == conflicts
            assert [e["type"] for e in seen] == ["conflict.opened"] * conflicts
            assert [e["id"] for e in seen] == expected
            wait_for(lambda: len(receiver.received("A")) >= conflicts, timeout=60,
                     what="webhook deliveries")
            # Give every dispatcher a few polls (0.5 s apart) to send one again.
            time.sleep(2.0)
            got = [g["event_id"] for g in receiver.received("A")]
            assert sorted(got) == expected and len(set(got)) == len(got)
            assert all(g["signed"] for g in receiver.received("A"))
    finally:
        receiver.stop()
