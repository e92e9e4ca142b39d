"""The server backend: PostgreSQL + PostGIS through psycopg 3 and a connection pool.

Atomicity across processes: every write transaction first takes one transaction-level
advisory lock (``pg_advisory_xact_lock``), then runs at READ COMMITTED, where each
statement sees everything committed before it: detection after the lock sees every
earlier submission, from whichever server process. One lock rather than locks on
spatial cells, because every write also appends to the audit log (one hash chain)
and to the outbox (whose ids must follow commit order for event-stream cursors): both
need a total order of writes whatever the geometry. Reads take no lock.

Candidates come from one multicolumn GiST index (box, altitude range, time range) per
kind of owner; the exact test after them is the same code as on SQLite, so the same
data gives the same conflicts on both backends.

The schema is made and evolved by numbered SQL files in ``migrations/postgis``, each
applied once, in order, in one transaction under a lock of its own.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from typing import Any

import numpy as np
import orjson
import psycopg
import psycopg_pool

from ..core.geodesy import expand_bounds
from ..core.minima import Minima, Separation
from ..core.volumes import VolumeSet
from ..errors import DetenteError, InputError
from .contract import StoredVolumes
from .dss_contract import DssSubscription
from .sql_store import VOL_COLS, VOLUME_COLUMNS, SQLStore
from .sql_tracks import POSITION_COLUMNS
from .track_contract import PositionRow

WRITE_LOCK = 0x64657465  # advisory lock keys ("dete", "mign")
MIGRATE_LOCK = 0x6D69676E
POOL_MAX = 64
CONNECT_TIMEOUT_S = 10.0

_pools: dict[str, tuple[psycopg_pool.ConnectionPool, int]] = {}
_pools_lock = threading.Lock()


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", url)


def _pool_for(url: str) -> psycopg_pool.ConnectionPool:
    """This process's pool for the URL, shared by its stores (counted; closed with the
    last of them)."""
    with _pools_lock:
        pool, users = _pools.get(url, (None, 0))
        if pool is None:
            pool = psycopg_pool.ConnectionPool(
                url, min_size=1, max_size=POOL_MAX, timeout=CONNECT_TIMEOUT_S,
                kwargs={"autocommit": True}, open=True, name="detente")
        _pools[url] = (pool, users + 1)
        return pool


def _release_pool(url: str) -> None:
    with _pools_lock:
        pool, users = _pools[url]
        if users > 1:
            _pools[url] = (pool, users - 1)
            return
        del _pools[url]
    pool.close()


@functools.lru_cache(maxsize=512)
def _pg(sql: str) -> str:
    """The shared SQL's ``?`` placeholders as psycopg's ``%s`` (it holds no ``%`` and no
    ``?`` of its own)."""
    return sql.replace("?", "%s")


@contextmanager
def _text_errors() -> Iterator[None]:
    """PostgreSQL text cannot hold NUL characters (SQLite's can): bad input, named as
    such, from the command line too (the API refuses them before they get here)."""
    try:
        yield
    except psycopg.DataError as exc:
        if "NUL" in str(exc):
            raise InputError("text may not hold NUL characters (\\u0000)") from None
        raise


class _Connection:
    """sqlite3's connection interface over one pooled psycopg connection, taken on
    first use and kept until the store closes (temporary tables live in its session);
    a broken one is handed back and replaced."""

    def __init__(self, pool: psycopg_pool.ConnectionPool, url: str):
        self.pool = pool
        self.url = url
        self.raw: psycopg.Connection[Any] | None = None

    def get(self) -> psycopg.Connection[Any]:
        if self.raw is not None and (self.raw.broken or self.raw.closed):
            self.pool.putconn(self.raw)
            self.raw = None
        if self.raw is None:
            try:
                self.raw = self.pool.getconn()
            except psycopg_pool.PoolTimeout:
                raise DetenteError(f"cannot connect to {_redacted(self.url)} within "
                                   f"{CONNECT_TIMEOUT_S:g} s: is the server up, and the "
                                   "URL right?") from None
        return self.raw

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        with _text_errors():
            return self.get().execute(_pg(sql), tuple(args) or None)

    def executemany(self, sql: str, rows: Any) -> psycopg.Cursor[Any]:
        cur = self.get().cursor()
        with _text_errors():
            cur.executemany(_pg(sql), list(rows))
        return cur

    def insert_many(self, sql: str, rows: Any) -> None:
        """The SQLite connection's bulk insert; here :meth:`executemany` (psycopg sends
        the rows in one pipeline already)."""
        self.executemany(sql, rows)

    def release(self) -> None:
        if self.raw is not None:
            self.pool.putconn(self.raw)
            self.raw = None


def migrations() -> list[tuple[str, str]]:
    """(name, SQL) of every migration, in order."""
    folder = resources.files("detente.store").joinpath("migrations/postgis")
    files = sorted(f.name for f in folder.iterdir() if f.name.endswith(".sql"))
    out = [(name.removesuffix(".sql"), folder.joinpath(name).read_text()) for name in files]
    # The F3548 tables are one script for both backends (the embedded store's version 5).
    out.append(("0002_dss", resources.files("detente.store").joinpath("dss.sql").read_text()))
    return sorted(out)


class PostGISStore(SQLStore):
    """The store contract on PostgreSQL + PostGIS."""

    TEMP = "pg_temp"

    def __init__(self, url: str):
        self.url = url
        self.path = _redacted(url)  # for messages, as the SQLite store's file
        self.conn = _Connection(_pool_for(url), url)
        self._in_write = False
        self._checked = False
        self._closed = False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.conn.release()
            _release_pool(self.url)

    # -- schema ------------------------------------------------------------------
    def is_initialised(self) -> bool:
        row = self.conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL AND "
                                "to_regclass('meta') IS NOT NULL").fetchone()
        return bool(row[0])

    def upgrade(self) -> list[str]:
        raw = self.conn.get()
        applied = []
        with raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            raw.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY "
                        "KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            done = {r[0] for r in raw.execute("SELECT version FROM schema_migrations")}
            for name, sql in migrations():
                if name not in done:
                    raw.execute(sql.encode())
                    raw.execute("INSERT INTO schema_migrations (version) VALUES (%s)",
                                (name,))
                    applied.append(name)
        return applied

    def initialise(self, minima: Minima) -> None:
        self.upgrade()
        with self.write():
            self.conn.execute("INSERT INTO meta VALUES ('minima', ?) ON CONFLICT DO NOTHING",
                              (orjson.dumps(minima.to_json()).decode(),))

    def require(self) -> None:
        if self._checked:
            return
        if not self.is_initialised():
            raise DetenteError(f"{self.path} holds no detente database: run 'detente init "
                               f"--db {self.path}'")
        done = {r[0] for r in self.conn.execute("SELECT version FROM schema_migrations")}
        names = [name for name, _ in migrations()]
        missing = [n for n in names if n not in done]
        unknown = sorted(done - set(names))
        if unknown:
            raise DetenteError(f"{self.path} was migrated by a newer detente (migrations "
                               f"{', '.join(unknown)}): upgrade detente")
        if missing:
            raise DetenteError(f"{self.path} lacks migrations {', '.join(missing)}: run "
                               f"'detente db upgrade --db {self.path}'")
        self._checked = True

    @contextmanager
    def write(self) -> Iterator[None]:
        """One transaction holding the write lock (see the module's docstring)."""
        if self._in_write:
            yield
            return
        raw = self.conn.get()
        with raw.transaction():
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            self._in_write = True
            try:
                yield
            finally:
                self._in_write = False

    def _index_subscription(self, sub: DssSubscription) -> None:
        """(the GiST index of migration 0003 follows the table by itself)"""

    def _unindex_subscription(self, sub_id: str) -> None:
        """(likewise)"""

    def _subscription_box_sql(self) -> str:
        return "box(point(minx, miny), point(maxx, maxy)) && box(point(?, ?), point(?, ?))"

    def _temp_table(self, name: str, columns: str, rows: Sequence[Sequence[Any]]) -> str:
        """The keys as arrays in the query itself: no round trips to fill a temporary
        table inside the write lock. Numbers are written out; text travels as hex of
        its JSON, so that no value can carry a quote or a placeholder into the SQL."""
        cols = [c.split()[:2] for c in columns.split(",")]
        arrays = []
        for k, (_, kind) in enumerate(cols):
            values = [r[k] for r in rows]
            if kind.upper() == "BIGINT":
                arrays.append("'{" + ",".join(str(int(v)) for v in values) + "}'::bigint[]")
            else:
                data = orjson.dumps([str(v) for v in values]).hex()
                arrays.append(
                    "ARRAY(SELECT e FROM json_array_elements_text(convert_from(decode("
                    f"'{data}', 'hex'), 'UTF8')::json) WITH ORDINALITY AS j(e, n) ORDER BY n)")
        names = ", ".join(c[0] for c in cols)
        return f"(SELECT DISTINCT {names} FROM unnest({', '.join(arrays)}) AS {name}({names}))"

    # -- the spatial index (GiST on generated columns: nothing to keep in step) ----
    def _index_volumes(self, ids: np.ndarray, vols: VolumeSet, zone: bool) -> None:
        pass

    def _unindex_owners(self, tmp: str, zone: bool) -> None:
        pass

    def _insert_volume_rows(self, rows: list[tuple[Any, ...]]) -> None:
        """COPY rather than INSERT: 100k volumes import in 17 s by INSERT (pipelined)."""
        with self.conn.get().cursor().copy(
                f"COPY volumes ({VOLUME_COLUMNS}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def _insert_positions(self, first_id: int, rows: Sequence[PositionRow]) -> None:
        """COPY: positions arrive by the tens of thousands a second (NaN as NULL)."""
        with self.conn.get().cursor().copy(
                f"COPY positions (id, {POSITION_COLUMNS}) FROM STDIN") as copy:
            for k, row in enumerate(rows):
                copy.write_row((first_id + k, *row[:8], *(None if v != v else v
                                                           for v in row[8:10]), row[10]))

    def _hits(self, query: VolumeSet, widen: Separation, zone: bool, cols: str, *,
              join: str = "", where: str = "", args: tuple[Any, ...] = ()
              ) -> list[tuple[Any, ...]]:
        """``cols`` (of ``q.i``, the query index, and ``v``) for each live stored volume
        whose box meets a query box widened by ``widen`` (and ``where``, of ``args``, over
        the tables ``join`` adds): GiST for every query box at once, and for its copies
        a turn east and west (stored boxes across the antimeridian reach past +-180)."""
        n = len(query)
        # Margins (1 m, 1 cm, 1 s), as on SQLite: rounding never shaves off a candidate.
        qb = expand_bounds(query.bounds, widen.horizontal_m + 1.0)
        dt = int(widen.time_s * 1e9) + 10**9
        shift = np.repeat([0.0, 360.0, -360.0], n)
        tile = functools.partial(np.tile, reps=3)
        arrays = [tile(np.arange(n)).tolist(), (tile(qb[:, 0]) + shift).tolist(),
                  tile(qb[:, 1]).tolist(), (tile(qb[:, 2]) + shift).tolist(),
                  tile(qb[:, 3]).tolist(),
                  tile(query.alt_lo - widen.vertical_m - 0.01).tolist(),
                  tile(query.alt_hi + widen.vertical_m + 0.01).tolist(),
                  tile(np.asarray(query.t0, dtype=np.int64) - dt).tolist(),
                  tile(np.asarray(query.t1, dtype=np.int64) + dt).tolist()]
        rows: list[tuple[Any, ...]] = self.conn.execute(
            f"SELECT DISTINCT {cols} FROM unnest(?::int[], ?::float8[], ?::float8[], "
            "?::float8[], ?::float8[], ?::float8[], ?::float8[], ?::int8[], ?::int8[]) "
            "AS q(i, x0, y0, x1, y1, z0, z1, t0, t1) "
            "JOIN volumes v ON v.box && ST_MakeEnvelope(q.x0, q.y0, q.x1, q.y1) "
            "AND v.alt && floatrange(q.z0, q.z1, '[]') "
            "AND v.span && int8range(q.t0, q.t1, '[]') "
            f"AND v.is_zone = {int(zone)} "
            f"JOIN owners o ON o.id = v.owner_id {join} "
            f"WHERE o.state NOT IN ('cancelled', 'ended') {where} "
            f"ORDER BY {cols}", [*arrays, *args]).fetchall()
        return rows

    def candidates(self, query: VolumeSet, widen: Separation, *, zone: bool
                   ) -> tuple[StoredVolumes, np.ndarray, np.ndarray]:
        self.require()
        pairs = self._hits(query, widen, zone, "q.i, v.id") if len(query) else []
        if not pairs:
            return self._load([], zone), np.empty(0, dtype=np.intp), np.empty(0, dtype=np.intp)
        ids = sorted({p[1] for p in pairs})
        rows = self.conn.execute(
            f"SELECT {VOL_COLS} FROM volumes v JOIN owners o ON o.id = v.owner_id "
            "WHERE v.id = ANY(?::int8[]) ORDER BY v.id", (ids,)).fetchall()
        pos = {vid: k for k, vid in enumerate(ids)}
        qi = np.fromiter((p[0] for p in pairs), dtype=np.intp, count=len(pairs))
        si = np.fromiter((pos[p[1]] for p in pairs), dtype=np.intp, count=len(pairs))
        return self._load(rows, zone), qi, si

    def dss_lacking(self, query: VolumeSet, widen: Separation, *, zone: bool,
                    key: Collection[str], but: str | None) -> list[int]:
        self.require()
        if not len(query):
            return []
        return [r[0] for r in self._hits(
            query, widen, zone, "d.owner_id", join="JOIN dss_refs d ON d.owner_id = v.owner_id",
            where="AND d.id IS DISTINCT FROM ? AND d.ovn <> ALL(?::text[])",
            args=(but, list(key)))]
