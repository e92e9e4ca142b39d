"""RFC 3339 instants as integer nanoseconds since the Unix epoch.

Integers keep the time axis exact: a gap equal to the minimum compares equal.
``datetime.fromisoformat`` accepts forms RFC 3339 does not (no offset, basic
format) and drops digits past microseconds, so the grammar is checked here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
# The common shape, which datetime.fromisoformat parses exactly (at C speed).
_COMMON = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:[0-5]\d(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
NS_PER_S = 1_000_000_000


class InstantError(ValueError):
    """Not an RFC 3339 instant with an offset."""


def parse_instant(text: object, *, round_up: bool = False) -> int:
    """Parse an RFC 3339 instant to nanoseconds since the epoch.

    Digits past nanoseconds are rounded outwards: down for a start, up for an end
    (``round_up``), so a window only ever grows.
    """
    if not isinstance(text, str):
        raise InstantError("expected an RFC 3339 string such as 2026-05-01T08:00:00Z")
    if _COMMON.fullmatch(text):
        try:
            return ((datetime.fromisoformat(text) - _EPOCH) // _US) * 1000
        except ValueError:
            pass  # out-of-range fields: the full parser below explains
    m = _RFC3339.fullmatch(text)
    if m is None:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?", text):
            raise InstantError(f"'{text}' has no UTC offset: add Z or +hh:mm")
        raise InstantError(f"'{text}' is not an RFC 3339 instant (e.g. 2026-05-01T08:00:00Z)")
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    leap = second == 60
    if leap:
        second = 59
    try:
        if m.group(8):
            tz = UTC
        else:
            sign = 1 if m.group(9) == "+" else -1
            offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
            if offset >= timedelta(hours=24):
                raise ValueError("offset out of range")
            tz = timezone(sign * offset)
        dt = datetime(year, month, day, hour, minute, second, tzinfo=tz)
    except ValueError as exc:
        raise InstantError(f"'{text}' is not a valid date and time ({exc})") from None
    delta = dt - _EPOCH
    ns = (delta.days * 86_400 + delta.seconds) * NS_PER_S + (NS_PER_S if leap else 0)
    frac = m.group(7)
    if frac:
        digits = frac[:9].ljust(9, "0")
        ns += int(digits)
        if round_up and len(frac) > 9 and frac[9:].strip("0"):
            ns += 1
    return ns


def format_instant(ns: int) -> str:
    """Format nanoseconds since the epoch as RFC 3339 UTC, with only the digits needed."""
    seconds, rest = divmod(ns, NS_PER_S)
    dt = _EPOCH + timedelta(seconds=seconds)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if rest:
        base += "." + f"{rest:09d}".rstrip("0")
    return base + "Z"
