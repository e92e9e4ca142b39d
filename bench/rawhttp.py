"""A lean HTTP/1.1 client for the load generators: keep-alive connections, requests
serialised before the clock starts, responses read by Content-Length.

The generator shares the machine's two cores with the server. httpx spends about a
millisecond of CPU per request here, which the server then lacks: on the same server
build, 16 httpx connections offered 170 submissions/s and these 429/s. The server
sees ordinary HTTP/1.1 requests either way.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson


def request(method: str, path: str, body: Any = None, token: str | None = None) -> bytes:
    """One request's bytes (a JSON body when ``body`` is not None)."""
    payload = b"" if body is None else orjson.dumps(body)
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token is not None:
        head.append(f"Authorization: Bearer {token}")
    if body is not None:
        head.append("Content-Type: application/json")
    head.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        """Send a request; its status and body."""
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = None
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise RuntimeError(f"a response without Content-Length: {head!r}")
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


IDLE_S = 2.0  # a connection idle longer is closed, not reused: the server closes
# idle ones after 5 s (uvicorn's keep-alive), and a request sent as it does is lost


class Pool:
    """Up to ``size`` keep-alive connections to one server, lent one request at a
    time (a request waits for a free one when all are busy)."""

    def __init__(self, host: str, port: int, size: int):
        self.host, self.port = host, port
        self._idle: list[tuple[Connection, float]] = []
        self._gate = asyncio.Semaphore(size)
        self._all: list[Connection] = []

    async def send(self, raw: bytes) -> tuple[int, bytes]:
        async with self._gate:
            conn = None
            while self._idle and conn is None:
                conn, since = self._idle.pop()
                if time.monotonic() - since > IDLE_S:
                    self._drop(conn)
                    conn = None
            if conn is None:
                conn = Connection(*await asyncio.open_connection(self.host, self.port))
                self._all.append(conn)
            try:
                out = await conn.send(raw)
            except BaseException:
                self._drop(conn)
                raise
            self._idle.append((conn, time.monotonic()))
            return out

    def _drop(self, conn: Connection) -> None:
        conn.close()
        self._all.remove(conn)

    def close(self) -> None:
        for conn in self._all:
            conn.close()
        self._all.clear()
        self._idle.clear()
