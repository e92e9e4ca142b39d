"""Separation minima: a service-wide default with overrides per pair of activity kinds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InputError


@dataclass(frozen=True)
class Separation:
    """Horizontal (m), vertical (m) and time (s) minima; a gap must be at least these."""

    horizontal_m: float
    vertical_m: float
    time_s: float

    def __post_init__(self) -> None:
        for name in ("horizontal_m", "vertical_m", "time_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise InputError(f"must be a finite number, not {v!r}", field=name)
            if v < 0:
                raise InputError(f"must not be negative (got {v})", field=name)

    def as_dict(self) -> dict[str, float]:
        return {"horizontal_m": self.horizontal_m, "vertical_m": self.vertical_m,
                "time_s": self.time_s}


@dataclass(frozen=True)
class Minima:
    """The default separation and overrides keyed by an unordered pair of kinds."""

    default: Separation
    overrides: Mapping[frozenset[str], Separation] = field(default_factory=dict)

    def for_kinds(self, a: str | None, b: str | None) -> Separation:
        if a is None or b is None:
            return self.default
        return self.overrides.get(frozenset((a, b)), self.default)

    @property
    def widest(self) -> Separation:
        """The largest minimum on each axis: what candidate search must widen by."""
        seps = [self.default, *self.overrides.values()]
        return Separation(max(s.horizontal_m for s in seps), max(s.vertical_m for s in seps),
                          max(s.time_s for s in seps))

    def per_pair(
        self, kind_a: NDArray[np.object_], kind_b: NDArray[np.object_]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """Minima for each pair of kinds, as three arrays."""
        n = len(kind_a)
        d = self.default
        h = np.full(n, float(d.horizontal_m))
        v = np.full(n, float(d.vertical_m))
        t = np.full(n, float(d.time_s))
        for pair, sep in self.overrides.items():
            kinds = sorted(pair)
            k1, k2 = kinds[0], kinds[-1]
            m = ((kind_a == k1) & (kind_b == k2)) | ((kind_a == k2) & (kind_b == k1))
            h[m], v[m], t[m] = sep.horizontal_m, sep.vertical_m, sep.time_s
        return h, v, t

    def to_json(self) -> dict[str, Any]:
        return {
            "default": self.default.as_dict(),
            "overrides": [
                {"kinds": sorted(k) if len(k) == 2 else [next(iter(k))] * 2, **s.as_dict()}
                for k, s in self.overrides.items()
            ],
        }

    @classmethod
    def from_json(cls, doc: Any) -> Minima:
        if not isinstance(doc, dict) or not isinstance(doc.get("default"), dict):
            raise InputError("minima must be an object with a 'default' separation",
                             field="default")
        default = _separation(doc["default"], "default")
        overrides: dict[frozenset[str], Separation] = {}
        raw = doc.get("overrides", [])
        if not isinstance(raw, list):
            raise InputError("must be a list", field="overrides")
        for i, o in enumerate(raw):
            kinds = o.get("kinds") if isinstance(o, dict) else None
            if not (isinstance(kinds, list) and len(kinds) == 2
                    and all(isinstance(k, str) for k in kinds)):
                raise InputError("kinds must be a list of two kind names",
                                 item=f"override #{i}", field="kinds")
            overrides[frozenset(kinds)] = _separation(o, f"override #{i}")
        return cls(default, overrides)


def _separation(d: Mapping[str, Any], item: str) -> Separation:
    try:
        return Separation(d.get("horizontal_m", 0.0), d.get("vertical_m", 0.0),
                          d.get("time_s", 0.0))
    except InputError as exc:
        raise InputError(exc.reason, item=item, field=exc.field) from None
