"""The HTTP API adapter (FastAPI): ``create_app(Settings(db=...))``."""

from .app import Settings, create_app

__all__ = ["Settings", "create_app"]
