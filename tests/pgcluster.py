"""A throwaway PostgreSQL 15 + PostGIS cluster for the tests and the benchmarks:
initdb in a temporary directory, a free loopback port, stopped and removed after.

Nothing is skipped when PostgreSQL is missing: :func:`start` raises with what to
install, and the tests that need it fail.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

PG_BIN = Path(os.environ.get("DETENTE_PG_BIN", "/usr/lib/postgresql/15/bin"))
POSTGIS_CONTROL = Path("/usr/share/postgresql/15/extension/postgis.control")
TEMPLATE = "detente_template"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A running cluster; ``database()`` makes a fresh migrated database from a template."""

    def __init__(self, root: Path, port: int, as_postgres: list[str]):
        self.root = root
        self.port = port
        self.as_postgres = as_postgres
        self.admin_url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self._names = itertools.count(1)
        self._template = False

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def database(self, prefix: str = "t") -> str:
        """A new database with detente's schema migrated; returns its URL."""
        from detente.store.postgis import PostGISStore

        if not self._template:
            self._create(TEMPLATE)
            store = PostGISStore(self.url(TEMPLATE))
            store.upgrade()
            store.close()
            self._template = True
        name = f"{prefix}{os.getpid()}_{next(self._names)}"
        self._create(name, template=TEMPLATE)
        return self.url(name)

    def _create(self, name: str, template: str | None = None) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'
                         + (f' TEMPLATE "{template}"' if template else ""))

    def stop(self) -> None:
        subprocess.run([*self.as_postgres, str(PG_BIN / "pg_ctl"), "-D",
                        str(self.root / "data"), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def start(durable: bool = False) -> Cluster:
    """Start a cluster. ``durable`` keeps fsync on (benchmarks); tests turn it off."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"no PostgreSQL server binaries in {PG_BIN}: install them with "
                           "'apt-get install -y postgresql-15' (or set DETENTE_PG_BIN)")
    if not POSTGIS_CONTROL.exists():
        raise RuntimeError("PostGIS is not installed for PostgreSQL 15: "
                           "'apt-get install -y postgresql-15-postgis-3'")
    root = Path(tempfile.mkdtemp(prefix="detente-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        as_postgres = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, "postgres")
    port = _free_port()
    try:
        subprocess.run([*as_postgres, str(PG_BIN / "initdb"), "-D", str(root / "data"),
                        "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
                       check=True, capture_output=True, timeout=120)
        options = [f"-p {port}", f"-k {root}", "-c listen_addresses=127.0.0.1",
                   "-c max_connections=300", "-c shared_buffers=256MB"]
        if not durable:
            options += ["-c fsync=off", "-c synchronous_commit=off",
                        "-c full_page_writes=off"]
        subprocess.run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(root / "data"),
                        "-l", str(root / "log"), "-w", "-t", "60", "-o", " ".join(options),
                        "start"], check=True, capture_output=True, timeout=120)
    except subprocess.CalledProcessError as exc:
        log = root / "log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"could not start PostgreSQL: {exc.stderr.decode()[-2000:]}"
                           f"{detail}") from None
    return Cluster(root, port, as_postgres)


@contextlib.contextmanager
def running(durable: bool = False):  # type: ignore[no-untyped-def]
    cluster = start(durable)
    try:
        yield cluster
    finally:
        cluster.stop()
