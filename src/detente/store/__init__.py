"""Storage: one contract (:mod:`.contract`), two implementations behind it: SQLite
(:mod:`.sqlite`, embedded, the default) and PostgreSQL + PostGIS (:mod:`.postgis`, the
server backend)."""

from .contract import ActivityRow, ConflictRow, Store, StoredVolumes

__all__ = ["ActivityRow", "ConflictRow", "Store", "StoredVolumes", "is_server_url",
           "open_store"]

_SERVER_SCHEMES = ("postgresql://", "postgres://")


def is_server_url(url: str) -> bool:
    """A PostgreSQL URL (the PostGIS backend), rather than a SQLite file."""
    return url.startswith(_SERVER_SCHEMES)


def open_store(url: str) -> Store:
    """Open a store: ``postgresql://...`` (PostGIS), else a SQLite path or
    ``sqlite:///path``. Nothing connects before this is called."""
    if is_server_url(url):
        from .postgis import PostGISStore

        return PostGISStore(url)
    from .sqlite import SQLiteStore

    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    return SQLiteStore(path)
