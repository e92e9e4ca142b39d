"""Shared fixtures and scenario builders for the tests."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from detente.api import Settings, create_app

T0 = "2026-05-01T08:00:00Z"
T1 = "2026-05-01T09:00:00Z"


def feature(fid: Any, party: str | None, geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    p: dict[str, Any] = {"alt_lower_m": 0, "alt_upper_m": 100, "time_start": T0, "time_end": T1}
    if party is not None:
        p["party"] = party
    p.update(props)
    return {"type": "Feature", "id": fid, "geometry": geometry, "properties": p}


def square(x: float, y: float, d: float) -> dict[str, Any]:
    return {"type": "Polygon",
            "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]}


def circle(x: float, y: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [x, y]}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def detente_exe() -> list[str]:
    exe = shutil.which("detente", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "detente"]


@pytest.fixture
def run_cli(tmp_path: Path):
    """Run the real console script; returns CompletedProcess with text output."""

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DETENTE_DB": str(tmp_path / "detente.db"), "COLUMNS": "200"}
        return subprocess.run([*detente_exe(), *args], input=stdin, capture_output=True,
                              text=True, cwd=tmp_path, env=env, timeout=300)

    return run


@contextlib.contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The API under uvicorn on a free loopback port, in a thread; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                       log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)


BACKENDS = ("sqlite", "postgis")


@pytest.fixture(scope="session")
def pg_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One throwaway PostgreSQL + PostGIS cluster for the whole run (never skipped: if
    it cannot start, the tests that need it fail with the reason)."""
    from . import pgcluster

    cluster = pgcluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_db(backend: str, request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Makes fresh, empty databases on this test's backend; returns their URLs (a file
    path for SQLite). The stores opened on them still need ``initialise``."""
    if backend == "sqlite":
        return lambda: str(tmp_path_factory.mktemp("db") / "detente.db")
    cluster = request.getfixturevalue("pg_cluster")
    return cluster.database


def raw_sql(db: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run SQL straight on a database of either backend, as someone with access to it
    would (``?`` placeholders); returns the rows."""
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db, autocommit=True) as pg:
            cur = pg.execute(sql.replace("?", "%s"), args or None)
            return cur.fetchall() if cur.description else []
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(sql, args).fetchall()
        conn.commit()
        return rows
    finally:
        conn.close()
