"""Storage: one contract (:mod:`.contract`), implementations behind it (:mod:`.sqlite`)."""

from .contract import ActivityRow, ConflictRow, Store, StoredVolumes

__all__ = ["ActivityRow", "ConflictRow", "Store", "StoredVolumes", "open_store"]


def open_store(url: str) -> Store:
    """Open a store from a path or URL (``sqlite:///path`` or a plain path)."""
    from .sqlite import SQLiteStore

    path = url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else url
    return SQLiteStore(path)
