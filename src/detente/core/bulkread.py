"""The fast path for reading a well-formed scenario: whole columns at a time.

msgspec decodes into typed structs (types are checked in C), then each column is
checked with a few bulk operations instead of a Python loop over features. The
fast path only decides *that* a file is well formed, never *why* it is not: on
anything unusual (a wrong type, a missing field, a float id, positions with a
third coordinate, ...) it returns None, and :mod:`.scenario` reads the file again
feature by feature, naming the first problem exactly. Geometry is checked after
either path, by the same bulk code (:mod:`.footprints`).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Any, cast

import msgspec
import numpy as np
from numpy.typing import NDArray

from .gcpause import no_gc
from .instants import InstantError, parse_instants
from .volumes import RESTRICTIONS, FeatureId


@dataclass
class Columns:
    """One scenario's features as columns, before geometry is built and checked."""

    ids: list[FeatureId]
    party: list[str]
    activity: list[str]
    kind: list[str | None]
    alt_lo: Any  # list[float] or float64 array
    alt_hi: Any
    t0: Any  # list[int] or int64 array
    t1: Any
    restriction: list[str | None]
    applies: list[tuple[str, ...] | None]
    is_zone: NDArray[np.bool_]
    radius: NDArray[np.float64]
    positions: NDArray[np.float64]  # (m, 2): every polygon's rings, one after another
    ring_offsets: NDArray[np.intp]
    poly_offsets: NDArray[np.intp]
    poly_owner: NDArray[np.intp]
    point_lon: NDArray[np.float64]
    point_lat: NDArray[np.float64]
    point_owner: NDArray[np.intp]


class _Properties(msgspec.Struct, gc=False):
    party: str | None = None
    activity: str | int | None = None
    kind: str | None = None
    alt_lower_m: float | None = None
    alt_upper_m: float | None = None
    time_start: str | None = None
    time_end: str | None = None
    radius_m: float | None = None
    zone: bool | None = None
    restriction: str | None = None
    applies_to: list[str] | None = None


class _Polygon(msgspec.Struct, tag="Polygon", tag_field="type", gc=False):
    coordinates: list[list[tuple[float, float]]]


class _Point(msgspec.Struct, tag="Point", tag_field="type", gc=False):
    coordinates: tuple[float, float]


class _Feature(msgspec.Struct, gc=False):
    type: str
    id: str | int
    geometry: _Polygon | _Point
    properties: _Properties


class _Document(msgspec.Struct, gc=False):
    """The document with each feature left as its JSON text, decoded a chunk at a time."""

    type: str
    features: list[msgspec.Raw]


_DECODER = msgspec.json.Decoder(_Document)
_FEATURES = msgspec.json.Decoder(list[_Feature])
MAX_ID_INT = 2**53  # JSON's safe integer range
# Features decoded and turned into columns at a time. A chunk's objects stay in the
# processor's caches and its freed memory is reused by the next, so the cost per feature
# stays flat as files grow (a million features decoded whole: 4.3 us each; in chunks of
# 2,048: 2.1 us, as for ten thousand).
CHUNK_FEATURES = 2048


def read_columns(data: bytes | str, default_party: str | None) -> Columns | None:
    """The columns of a well-formed scenario, or None (read it feature by feature)."""
    with no_gc():
        try:
            doc = _DECODER.decode(data)
        except msgspec.MsgspecError:
            return None
        if doc.type != "FeatureCollection":
            return None
        raws = doc.features
        parts = []
        for start in range(0, max(len(raws), 1), CHUNK_FEATURES):
            try:
                feats = _FEATURES.decode(
                    b"[" + b",".join(raws[start:start + CHUNK_FEATURES]) + b"]")
            except msgspec.MsgspecError:
                return None
            cols = _columns(feats, default_party)
            # Freed before the collector runs again: it would walk every list of them.
            del feats
            if cols is None:
                return None
            parts.append(cols)
        del doc, raws
        cols = parts[0] if len(parts) == 1 else _concat(parts)
    return cols if _unique(cols.ids) else None


def _unique(ids: list[FeatureId]) -> bool:
    """No id twice (7 and "7" are two ids)."""
    keys = set(ids) if len(set(map(type, ids))) == 1 else {(type(x), x) for x in ids}
    return len(keys) == len(ids)


def _concat(parts: list[Columns]) -> Columns:
    """The columns of consecutive chunks as one, offsets and owners shifted."""
    n = np.cumsum([0] + [len(p.ids) for p in parts])[:-1]
    rings = np.cumsum([0] + [len(p.ring_offsets) - 1 for p in parts])[:-1]
    verts = np.cumsum([0] + [len(p.positions) for p in parts])[:-1]

    def cat(name: str) -> Any:
        return np.concatenate([getattr(p, name) for p in parts])

    def joined(name: str) -> list[Any]:
        return list(chain.from_iterable(getattr(p, name) for p in parts))

    return Columns(
        ids=joined("ids"), party=joined("party"), activity=joined("activity"),
        kind=joined("kind"), alt_lo=cat("alt_lo"), alt_hi=cat("alt_hi"), t0=cat("t0"),
        t1=cat("t1"), restriction=joined("restriction"), applies=joined("applies"),
        is_zone=cat("is_zone"), radius=cat("radius"), positions=cat("positions"),
        ring_offsets=np.concatenate(
            [[0]] + [p.ring_offsets[1:] + k for p, k in zip(parts, verts, strict=True)]
        ).astype(np.intp),
        poly_offsets=np.concatenate(
            [[0]] + [p.poly_offsets[1:] + k for p, k in zip(parts, rings, strict=True)]
        ).astype(np.intp),
        poly_owner=np.concatenate([p.poly_owner + k for p, k in zip(parts, n, strict=True)]),
        point_lon=cat("point_lon"), point_lat=cat("point_lat"),
        point_owner=np.concatenate([p.point_owner + k for p, k in zip(parts, n, strict=True)]),
    )


def _columns(feats: list[_Feature], default_party: str | None) -> Columns | None:
    """One chunk's columns (ids are checked for repeats across chunks by the caller)."""
    n = len(feats)
    if [f.type for f in feats].count("Feature") != n:
        return None
    ids: list[FeatureId] = [f.id for f in feats]
    ints = [x for x in ids if type(x) is int]
    if ints and max(abs(min(ints)), abs(max(ints))) > MAX_ID_INT:
        return None
    props = [f.properties for f in feats]
    named = [p.party for p in props]
    if default_party is not None:
        named = [default_party if x is None else x for x in named]
        if n and set(named) != {default_party}:
            return None
    parties = set(named)
    if None in parties or not all(x.strip() for x in parties if x is not None):
        return None
    party = cast(list[str], named)
    given: list[FeatureId] = [f if p.activity is None else p.activity
                              for p, f in zip(props, ids, strict=True)]
    activity = (cast(list[str], given) if set(map(type, given)) == {str}
                else [str(a) for a in given])
    with np.errstate(invalid="ignore"):  # None becomes NaN here, refused just below
        alt_lo = np.array([p.alt_lower_m for p in props], dtype=np.float64)
        alt_hi = np.array([p.alt_upper_m for p in props], dtype=np.float64)
        radius = np.array([p.radius_m for p in props], dtype=np.float64)
    if not (np.isfinite(alt_lo).all() and np.isfinite(alt_hi).all()
            and (alt_lo <= alt_hi).all()):
        return None
    starts = [p.time_start for p in props]
    ends = [p.time_end for p in props]
    if None in starts or None in ends:
        return None
    try:
        t0 = parse_instants(starts, round_up=False)  # type: ignore[arg-type]
        t1 = parse_instants(ends, round_up=True)  # type: ignore[arg-type]
    except InstantError:
        return None
    if not (t1 > t0).all():
        return None
    restriction: list[str | None] = [None] * n
    applies: list[tuple[str, ...] | None] = [None] * n
    is_zone = np.array([p.zone is True for p in props], dtype=bool)
    for i in np.flatnonzero(is_zone).tolist():
        p = props[i]
        if p.restriction not in RESTRICTIONS or (
                p.applies_to is not None and not all(p.applies_to)):
            return None
        restriction[i] = p.restriction
        applies[i] = tuple(p.applies_to) if p.applies_to is not None else None
    geoms = [f.geometry for f in feats]
    is_point = np.array([type(g) is _Point for g in geoms], dtype=bool)
    poly_owner = np.flatnonzero(~is_point)
    point_owner = np.flatnonzero(is_point)
    if not (np.isnan(radius[poly_owner]).all() and np.isfinite(radius[point_owner]).all()):
        return None  # radius_m with a Polygon, or a Point without one
    radius[poly_owner] = 0.0
    polys = [cast(_Polygon, geoms[i]).coordinates for i in poly_owner.tolist()]
    rings = list(chain.from_iterable(polys))
    ring_len = np.fromiter(map(len, rings), dtype=np.intp, count=len(rings))
    m = int(ring_len.sum())
    flat = np.fromiter(chain.from_iterable(chain.from_iterable(rings)), dtype=np.float64,
                       count=2 * m)
    points = np.array([geoms[i].coordinates for i in point_owner.tolist()],
                      dtype=np.float64).reshape(-1, 2)
    return Columns(
        ids=ids, party=party, activity=activity, kind=[p.kind for p in props],
        alt_lo=alt_lo, alt_hi=alt_hi, t0=t0, t1=t1, restriction=restriction,
        applies=applies, is_zone=is_zone, radius=radius, positions=flat.reshape(m, 2),
        ring_offsets=np.concatenate([[0], np.cumsum(ring_len)]).astype(np.intp),
        poly_offsets=np.concatenate(
            [[0], np.cumsum(np.fromiter(map(len, polys), dtype=np.intp, count=len(polys)))]
        ).astype(np.intp),
        poly_owner=poly_owner, point_lon=points[:, 0].copy(), point_lat=points[:, 1].copy(),
        point_owner=point_owner,
    )
