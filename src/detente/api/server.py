"""Running the API under uvicorn."""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI


class _Server(uvicorn.Server):
    """Ends the event streams on Ctrl-C or SIGTERM, then stops as uvicorn does. Streams
    never end by themselves, and uvicorn waits for open requests before it stops; the
    clients resume elsewhere or later with Last-Event-ID."""

    def __init__(self, config: uvicorn.Config, app: FastAPI):
        super().__init__(config)
        self.detente_app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        hub = getattr(self.detente_app.state, "hub", None)
        if hub is not None:
            hub.loop.call_soon_threadsafe(hub.end_streams)
        super().handle_exit(sig, frame)


def run(app: FastAPI, host: str, port: int) -> None:
    """Serve until interrupted; requests still open 5 s after that are cut."""
    _Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                           timeout_graceful_shutdown=5), app).run()
