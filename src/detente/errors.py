"""The one exception root of detente.

Adapters map these classes to HTTP status codes and CLI exit codes, each in one
place (``detente.cli.main`` for exit codes, ``detente.api.problems`` for HTTP). Each
class's ``kind`` names it on the wire (the RFC 9457 problem type), so the HTTP
client turns a problem back into the same class.
"""

from __future__ import annotations


class DetenteError(Exception):
    """Root of every error detente raises on purpose."""

    kind = "bad-request"


class InputError(DetenteError):
    """Bad input: names the item, the field and the reason. Nothing was changed."""

    kind = "invalid-input"

    def __init__(self, reason: str, *, item: str | None = None, field: str | None = None):
        self.item = item
        self.field = field
        self.reason = reason
        parts = []
        if item is not None:
            parts.append(item)
        if field is not None:
            parts.append(f"field '{field}'")
        prefix = ", ".join(parts)
        super().__init__(f"{prefix}: {reason}" if prefix else reason)


class NotFound(DetenteError):
    """The object does not exist, or the caller may not see it (never say which)."""

    kind = "not-found"


class Refused(DetenteError):
    """The request was valid but the rules refuse it (for example a prohibited zone)."""

    kind = "refused"


class AlreadyExists(DetenteError):
    """A create named an object that exists already (replace it instead)."""

    kind = "already-exists"


class Unauthorized(DetenteError):
    """No valid credentials: a missing, unknown or revoked token."""

    kind = "unauthorized"


class Forbidden(DetenteError):
    """Valid credentials, but the action needs another role (e.g. admin)."""

    kind = "forbidden"


class PreconditionRequired(DetenteError):
    """A replace must name the version it replaces (If-Match or a version field)."""

    kind = "precondition-required"


class StaleVersion(DetenteError):
    """A replace named a version that is no longer current."""

    kind = "stale-version"


class TooLarge(InputError):
    """An area too large to search or to store (HTTP 413 where a standard says so)."""

    kind = "too-large"


class AirspaceConflict(Refused):
    """An F3548 write whose key lacks the OVNs of intersecting entities; ``body`` is the
    standard's ``AirspaceConflictResponse``."""

    kind = "airspace-conflict"

    def __init__(self, message: str, body: dict[str, object]):
        super().__init__(message)
        self.body = body


class Unavailable(Refused):
    """The caller's USS is marked Down: it may not plan (F3548's 412)."""

    kind = "uss-down"
