"""A real webhook receiver on a loopback port, for the delivery tests."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from detente.service.outbox import SIGNATURE_HEADER, verify


class Receiver:
    """Records every POST. ``mode``: "up" answers 200, "fail" 500, "hang" holds the
    request until released. ``start()`` may come late: until then the port is closed
    (a receiver that is down)."""

    def __init__(self, port: int, secrets: dict[str, str] | None = None):
        self.port = port
        self.secrets = secrets if secrets is not None else {}  # path -> signing secret
        self.mode = "up"
        self.got: list[dict[str, Any]] = []  # answered with 200
        self.seen = 0  # every request, whatever the answer
        self.release = threading.Event()
        self.server: ThreadingHTTPServer | None = None
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.seen += 1
                    mode = outer.mode
                if mode == "hang":
                    outer.release.wait(30)
                    mode = "fail"
                status = 200 if mode == "up" else 500
                if status == 200:
                    path = self.path.strip("/")
                    secret = outer.secrets.get(path, "")
                    with outer.lock:
                        outer.got.append({
                            "path": path, "body": json.loads(body),
                            "event_id": int(self.headers["Detente-Event-Id"]),
                            "signed": verify(secret, self.headers[SIGNATURE_HEADER], body)})
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.release.set()
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def received(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [g for g in self.got if g["path"] == path]


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy (tests never assert timings, only that it
    happens eventually)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
