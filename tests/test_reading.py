"""The bulk reading paths give exactly what the feature-by-feature paths give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pytest
import shapely
from bench.traffic import generate
from hypothesis import given, settings
from hypothesis import strategies as st

from detente.core import bulkread
from detente.core import scenario as scenario_module
from detente.core.bulkread import read_columns
from detente.core.instants import InstantError, parse_instant, parse_instants
from detente.core.scenario import read_scenario, read_scenarios
from detente.errors import InputError

from .conftest import T0, circle, collection, feature, square

COLUMNS = ("party", "activity", "kind", "radius", "bounds", "alt_lo", "alt_hi", "t0", "t1",
           "restriction", "applies_to")


def read_slowly(data: bytes, **kw) -> scenario_module.Scenario:
    """read_scenario with the bulk path switched off."""
    fast = scenario_module.read_columns
    scenario_module.read_columns = lambda *_: None  # type: ignore[assignment]
    try:
        return read_scenario(data, **kw)
    finally:
        scenario_module.read_columns = fast


def assert_same(a: scenario_module.Scenario, b: scenario_module.Scenario) -> None:
    for x, y in ((a.activities, b.activities), (a.zones, b.zones)):
        assert x.ids == y.ids
        for name in COLUMNS:
            assert np.array_equal(getattr(x, name), getattr(y, name)), name
        assert shapely.equals_exact(x.geom, y.geom, 0).all()
    assert np.array_equal(a.activity_pos, b.activity_pos)


def test_generated_traffic_reads_the_same_both_ways() -> None:
    data = orjson.dumps(generate(3000, seed=7, zones=5))
    assert read_columns(data, None) is not None  # the bulk path is taken
    assert_same(read_scenario(data), read_slowly(data))


def test_mixed_ids_holes_circles_and_default_party() -> None:
    holed = {"type": "Polygon", "coordinates": [
        [[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]],
        [[0.2, 0.2], [0.4, 0.2], [0.4, 0.4], [0.2, 0.2]]]}
    doc = collection(
        feature(1, None, {"type": "Polygon", "coordinates": [
            [[179.9, 0], [-179.9, 0], [-179.9, 0.2], [179.9, 0.2], [179.9, 0]]]}, activity=7),
        feature("1", None, holed, kind="convoy"),
        feature("z", None, circle(3, 4), radius_m=50.5, zone=True, restriction="notify",
                applies_to=["b"]),
        feature(2, "a", circle(5, 5), radius_m=10, time_start="2026-05-01T10:00:00.5+02:00",
                time_end="2026-05-01T10:30:00.0000000001+02:00", zone=False),
    )
    data = orjson.dumps(doc)
    assert read_columns(data, "a") is not None
    assert_same(read_scenario(data, default_party="a"), read_slowly(data, default_party="a"))


def test_chunks_join_into_the_same_columns(monkeypatch) -> None:
    """The bulk path decodes a few features at a time: offsets, owners and ids carry
    across chunk boundaries, polygons (with holes) and circles mixed."""
    data = orjson.dumps(generate(400, seed=3, zones=3))
    whole = read_scenario(data)
    monkeypatch.setattr(bulkread, "CHUNK_FEATURES", 7)
    assert read_columns(data, None) is not None
    assert_same(read_scenario(data), whole)
    assert_same(read_scenario(data), read_slowly(data))


def test_an_id_repeated_in_another_chunk_is_named(monkeypatch) -> None:
    monkeypatch.setattr(bulkread, "CHUNK_FEATURES", 2)
    doc = collection(*(feature(f"f{k}", "a", square(k, 0, 0.5)) for k in range(5)))
    doc["features"][4]["id"] = "f0"  # its first use is two chunks back
    data = orjson.dumps(doc)
    assert read_columns(data, None) is None
    with pytest.raises(InputError, match="f0"):
        read_scenario(data)


@pytest.mark.parametrize("change", [
    {"id": 1.5},  # a float id: read feature by feature
    {"properties": {"alt_lower_m": "0"}},
    {"properties": {"party": ""}},
    {"properties": {"time_end": T0}},
    {"properties": {"radius_m": 4}},
    {"geometry": {"type": "Polygon",
                  "coordinates": [[[0, 0, 5], [1, 0, 5], [1, 1, 5], [0, 0, 5]]]}},
])
def test_anything_unusual_leaves_the_bulk_path(change) -> None:
    feat = feature("f", "a", square(0, 0, 1))
    for key, value in change.items():
        if key == "properties":
            feat["properties"].update(value)
        else:
            feat[key] = value
    data = orjson.dumps(collection(feat, feature("g", "b", square(3, 3, 1))))
    assert read_columns(data, None) is None
    try:
        slow = read_slowly(data)
    except InputError as exc:
        with pytest.raises(InputError) as got:
            read_scenario(data)
        assert str(got.value) == str(exc)
    else:
        assert_same(read_scenario(data), slow)


def test_a_third_number_in_positions_is_ignored_mixed_or_not() -> None:
    """RFC 7946 allows an altitude as a position's third element; the band comes from
    the properties, so it is ignored, in files that mix such positions with plain ones
    too (those were refused with an error that named nothing)."""
    flat = collection(feature("f", "a", square(0, 0, 1)), feature("g", "b", circle(3, 3)),
                      feature("h", "b", square(0.5, 0.5, 1)))
    for f in flat["features"]:
        if f["geometry"]["type"] == "Point":
            f["properties"]["radius_m"] = 100.0
    expected = read_scenario(orjson.dumps(flat))
    for which in ("f", "g", "fgh"):
        doc = orjson.loads(orjson.dumps(flat))
        for f in doc["features"]:
            if f["id"] in which:
                g = f["geometry"]
                g["coordinates"] = ([*g["coordinates"], 12.5] if g["type"] == "Point" else
                                    [[[*p, 12.5] for p in ring] for ring in g["coordinates"]])
        assert_same(read_scenario(orjson.dumps(doc)), expected)


def test_documents_read_together_read_as_each_alone(monkeypatch) -> None:
    """read_scenarios gives each document what read_scenario gives it: the volumes
    with their own ids and positions, or the same error. Those it can, it reads in
    one go; a bad one among them sends each to be read alone, and fails alone."""
    feats = generate(400, seed=3, zones=6)["features"]
    for k, f in enumerate(feats):
        f["properties"].setdefault("activity", f"act-{k // 3}")
        if k % 5 == 0:
            f["id"] = k  # integer ids too
    docs: list[Any] = [collection(*feats[k:k + 7]) for k in range(0, len(feats), 7)]
    docs[5]["features"][2]["id"] = docs[5]["features"][0]["id"]  # an id twice
    del docs[8]["features"][0]["properties"]["activity"]  # read alone: id is its activity
    docs[9]["features"][0]["id"] = 2.5  # read alone
    docs[10]["features"][4]["id"] = docs[11]["features"][4]["id"]  # one id in two documents
    docs += [{"type": "Feature"}, collection(), [1, 2]]
    reads: list[int] = []
    one_read = scenario_module.read_scenario

    def size(doc: Any) -> int:
        feats = doc.get("features") if isinstance(doc, dict) else None
        return len(feats) if isinstance(feats, list) else 0

    def counted(doc: Any, **kw: Any) -> Any:
        reads.append(size(doc))
        return one_read(doc, **kw)

    def check(docs: list[Any]) -> list[int]:
        reads.clear()
        monkeypatch.setattr(scenario_module, "read_scenario", counted)
        together = read_scenarios(docs)
        monkeypatch.setattr(scenario_module, "read_scenario", one_read)
        assert len(together) == len(docs)
        failed = []
        for k, (doc, got) in enumerate(zip(docs, together, strict=True)):
            try:
                alone = read_scenario(doc)
            except InputError as exc:
                assert isinstance(got, InputError) and str(got) == str(exc)
                failed.append(k)
            else:
                assert not isinstance(got, InputError)
                assert_same(got, alone)
                assert np.array_equal(got.zone_pos, alone.zone_pos)
        return failed

    n = len(docs)
    assert check(docs) == [5, n - 3, n - 1]
    alone = (5, 8, 9, n - 3, n - 2, n - 1)
    assert reads == [sum(size(d) for k, d in enumerate(docs) if k not in alone),
                     *(size(docs[k]) for k in alone)]
    docs[3]["features"][1]["properties"]["alt_lower_m"] = 1e6  # above its upper
    docs.append(collection(feature("c", "a", circle(1, 1), activity="c")))  # no radius_m
    assert check(docs) == [3, 5, n - 3, n - 1, n]
    assert len(reads) == 1 + len(docs)  # together failed: each alone


def test_instants_beyond_int64_nanoseconds_are_refused() -> None:
    data = orjson.dumps(collection(feature("f", "a", square(0, 0, 1),
                                           time_end="2300-01-01T00:00:00Z")))
    with pytest.raises(InputError, match=r"feature .f.*time_end.*1678 to 2261"):
        read_scenario(data)
    ok = read_scenario(orjson.dumps(collection(feature("f", "a", square(0, 0, 1),
                                                       time_end="2261-12-31T23:59:59Z"))))
    assert ok.activities.t1[0] == parse_instant("2261-12-31T23:59:59Z")


instant_text = st.builds(
    lambda y, mo, d, h, mi, s: f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}Z",
    st.integers(1600, 2300), st.integers(0, 13), st.integers(0, 32), st.integers(0, 24),
    st.integers(0, 60), st.integers(0, 61))
other_text = st.sampled_from(["2026-05-01t08:00:00Z", "2026-05-01T08:00:00.123456789+05:30",
                              "2026-05-01 08:00:00-01:00", "2026-12-31T23:59:60Z", "bad",
                              "2026-05-01T08:00:00", "\uff12026-05-01T08:00:00Z"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(instant_text, other_text), min_size=1, max_size=150), st.booleans())
def test_bulk_instants_equal_one_by_one(texts: list[str], round_up: bool) -> None:
    """Both ways of the bulk parser (a few one by one, more than SMALL in NumPy)."""
    expected: list[int] = []
    for t in texts:
        try:
            expected.append(parse_instant(t, round_up=round_up))
        except InstantError:
            with pytest.raises(InstantError):
                parse_instants(texts, round_up=round_up)
            return
    assert parse_instants(texts, round_up=round_up).tolist() == expected


def test_bulk_instants_cover_every_day_of_a_leap_cycle() -> None:
    start = datetime(1999, 12, 25, tzinfo=UTC)
    days = [start + timedelta(days=k, seconds=k * 37 % 86_400) for k in range(1500)]
    texts = [d.strftime("%Y-%m-%dT%H:%M:%SZ") for d in days]
    assert parse_instants(texts).tolist() == [parse_instant(t) for t in texts]
