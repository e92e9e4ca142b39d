"""Columnar sets of volumes: the unit the detection engine works on.

A volume is a footprint (polygon or circle) x an altitude band x a time window.
Footprints are kept in *unwrapped* longitude/latitude: a polygon that crosses the
antimeridian has longitudes beyond +-180 so that its edges, straight in lon/lat,
are straight here too; its box centre lies in [-180, 180).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

FeatureId = str | int | float

RESTRICTIONS = ("prohibited", "notify")


@dataclass(frozen=True)
class Volume:
    """One volume, as a plain object (the columnar :class:`VolumeSet` is the fast path)."""

    id: FeatureId
    party: str
    activity: str
    kind: str | None
    geometry: shapely.Geometry
    radius_m: float
    alt_lower_m: float
    alt_upper_m: float
    time_start_ns: int
    time_end_ns: int
    restriction: str | None = None
    applies_to: tuple[str, ...] | None = None

    @property
    def is_circle(self) -> bool:
        return self.radius_m > 0


@dataclass
class VolumeSet:
    """Volumes as columns; index ``i`` of every column is volume ``i``."""

    ids: list[FeatureId]
    party: NDArray[np.object_]
    activity: NDArray[np.object_]
    kind: NDArray[np.object_]
    geom: NDArray[np.object_]
    radius: NDArray[np.float64]
    bounds: NDArray[np.float64]
    alt_lo: NDArray[np.float64]
    alt_hi: NDArray[np.float64]
    t0: NDArray[np.int64]
    t1: NDArray[np.int64]
    restriction: NDArray[np.object_]
    applies_to: NDArray[np.object_]
    _wkb: NDArray[np.object_] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ids)

    def wkb(self) -> NDArray[np.object_]:
        """The footprints as WKB, made once (a submission's audit digest and its rows
        both need them; a set's columns are never changed once made)."""
        if self._wkb is None:
            self._wkb = shapely.to_wkb(self.geom)
        return self._wkb

    @property
    def is_circle(self) -> NDArray[np.bool_]:
        out: NDArray[np.bool_] = self.radius > 0
        return out

    @classmethod
    def empty(cls) -> VolumeSet:
        return cls.from_volumes([])

    @classmethod
    def from_columns(
        cls,
        *,
        ids: Sequence[FeatureId],
        party: Sequence[str],
        activity: Sequence[str],
        kind: Sequence[str | None],
        geom: Sequence[shapely.Geometry] | NDArray[np.object_],
        radius: Sequence[float] | NDArray[np.float64],
        alt_lo: Sequence[float] | NDArray[np.float64],
        alt_hi: Sequence[float] | NDArray[np.float64],
        t0: Sequence[int] | NDArray[np.int64],
        t1: Sequence[int] | NDArray[np.int64],
        restriction: Sequence[str | None] | None = None,
        applies_to: Sequence[tuple[str, ...] | None] | None = None,
        bounds: NDArray[np.float64] | None = None,
    ) -> VolumeSet:
        n = len(ids)
        geom_arr = _objects(geom, n)
        radius_arr = np.asarray(radius, dtype=np.float64).reshape(n)
        if bounds is None:
            bounds = footprint_bounds(geom_arr, radius_arr)
        return cls(
            ids=list(ids),
            party=_objects(party, n),
            activity=_objects(activity, n),
            kind=_objects(kind, n),
            geom=geom_arr,
            radius=radius_arr,
            bounds=np.asarray(bounds, dtype=np.float64).reshape(n, 4),
            alt_lo=np.asarray(alt_lo, dtype=np.float64).reshape(n),
            alt_hi=np.asarray(alt_hi, dtype=np.float64).reshape(n),
            t0=np.asarray(t0, dtype=np.int64).reshape(n),
            t1=np.asarray(t1, dtype=np.int64).reshape(n),
            restriction=_objects(restriction if restriction is not None else [None] * n, n),
            applies_to=_objects(applies_to if applies_to is not None else [None] * n, n),
        )

    @classmethod
    def from_volumes(cls, volumes: Sequence[Volume]) -> VolumeSet:
        return cls.from_columns(
            ids=[v.id for v in volumes],
            party=[v.party for v in volumes],
            activity=[v.activity for v in volumes],
            kind=[v.kind for v in volumes],
            geom=[v.geometry for v in volumes],
            radius=[v.radius_m for v in volumes],
            alt_lo=[v.alt_lower_m for v in volumes],
            alt_hi=[v.alt_upper_m for v in volumes],
            t0=[v.time_start_ns for v in volumes],
            t1=[v.time_end_ns for v in volumes],
            restriction=[v.restriction for v in volumes],
            applies_to=[v.applies_to for v in volumes],
        )

    def volume(self, i: int) -> Volume:
        return Volume(
            id=self.ids[i],
            party=str(self.party[i]),
            activity=str(self.activity[i]),
            kind=self.kind[i],
            geometry=self.geom[i],
            radius_m=float(self.radius[i]),
            alt_lower_m=float(self.alt_lo[i]),
            alt_upper_m=float(self.alt_hi[i]),
            time_start_ns=int(self.t0[i]),
            time_end_ns=int(self.t1[i]),
            restriction=self.restriction[i],
            applies_to=self.applies_to[i],
        )

    def __iter__(self) -> Any:
        return (self.volume(i) for i in range(len(self)))

    def take(self, index: NDArray[np.intp] | Sequence[int]) -> VolumeSet:
        idx = np.asarray(index, dtype=np.intp)
        return VolumeSet(
            ids=[self.ids[i] for i in idx],
            party=self.party[idx],
            activity=self.activity[idx],
            kind=self.kind[idx],
            geom=self.geom[idx],
            radius=self.radius[idx],
            bounds=self.bounds[idx],
            alt_lo=self.alt_lo[idx],
            alt_hi=self.alt_hi[idx],
            t0=self.t0[idx],
            t1=self.t1[idx],
            restriction=self.restriction[idx],
            applies_to=self.applies_to[idx],
        )

    @classmethod
    def concat(cls, sets: Sequence[VolumeSet]) -> VolumeSet:
        if not sets:
            return cls.empty()
        return VolumeSet(
            ids=[i for s in sets for i in s.ids],
            party=np.concatenate([s.party for s in sets]),
            activity=np.concatenate([s.activity for s in sets]),
            kind=np.concatenate([s.kind for s in sets]),
            geom=np.concatenate([s.geom for s in sets]),
            radius=np.concatenate([s.radius for s in sets]),
            bounds=np.concatenate([s.bounds for s in sets]).reshape(-1, 4),
            alt_lo=np.concatenate([s.alt_lo for s in sets]),
            alt_hi=np.concatenate([s.alt_hi for s in sets]),
            t0=np.concatenate([s.t0 for s in sets]),
            t1=np.concatenate([s.t1 for s in sets]),
            restriction=np.concatenate([s.restriction for s in sets]),
            applies_to=np.concatenate([s.applies_to for s in sets]),
        )


def _objects(values: Any, n: int) -> NDArray[np.object_]:
    out = np.empty(n, dtype=object)
    if n:
        out[:] = list(values) if not isinstance(values, np.ndarray) else values
    return out


def footprint_bounds(
    geom: NDArray[np.object_], radius: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Conservative lon/lat boxes of footprints: a circle's box covers its radius."""
    from .geodesy import expand_bounds

    if len(geom) == 0:
        return np.empty((0, 4))
    b: NDArray[np.float64] = shapely.bounds(geom)
    circles = radius > 0
    if circles.any():
        b[circles] = expand_bounds(b[circles], radius[circles])
    return b
