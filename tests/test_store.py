"""The store contract on both backends (SQLite and PostGIS: every test runs on each)
through the submit use case: same answers as the stateless engine, replace and cancel
recompute conflicts, export round-trips, concurrent writers stay whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from detente.core.detect import detect
from detente.core.minima import Minima, Separation
from detente.core.scenario import read_scenario
from detente.errors import InputError
from detente.formats.geojson import export_scenario
from detente.service import Deconfliction
from detente.store import open_store
from detente.store.track_contract import TrackingRow

from .conftest import collection, feature, raw_sql, square
from .test_property_detection import _wrap, scenarios


def service(new_db, minima: Minima | None = None) -> Deconfliction:
    store = open_store(new_db())
    store.initialise(minima or Minima(Separation(500.0, 50.0, 60.0)))
    return Deconfliction(store)


@contextmanager
def serving(new_db, minima: Minima) -> Iterator[Deconfliction]:
    """A service on a fresh database, its store closed after (hypothesis runs a test
    hundreds of times: PostgreSQL would run out of connections)."""
    svc = service(new_db, minima)
    try:
        yield svc
    finally:
        svc.store.close()


def submit_by_party(svc: Deconfliction, feats: list[dict[str, Any]], *,
                    override: bool = False) -> None:
    """One submission per party, in order of first appearance."""
    by_party: dict[str, list[Any]] = {}
    for f in feats:
        by_party.setdefault(f["properties"]["party"], []).append(f)
    for party, group in by_party.items():
        r = svc.submit(read_scenario(collection(*group), default_party=party),
                       override=override)
        assert r.rows == as_stored(svc, r.rows)


def as_stored(svc: Deconfliction, rows: dict[int, Any]) -> dict[int, Any]:
    """These conflicts' rows as the store reads them now."""
    return {c.id: c for c in svc.store.list_conflicts(party=None, status=None,
                                                      conflict_ids=list(rows))}


def stored_pairs(svc: Deconfliction) -> set[frozenset[tuple[str, str]]]:
    return {frozenset({(c.party_a, c.activity_a), (c.party_b, c.activity_b)})
            for c in svc.store.list_conflicts(party=None, status="open")}


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_store_agrees_with_engine(new_db, case: tuple[dict[str, Any], dict[str, Any]]
                                  ) -> None:
    """Submitting a scenario party by party finds the conflicts `check` finds at once."""
    store_matches_engine(new_db, *case)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios(far=True))
def test_store_agrees_with_engine_at_large_minima(new_db, case: tuple[dict[str, Any],
                                                                     dict[str, Any]]) -> None:
    """Footprints up to 980 km across and minima up to 1,900 km: the stored search
    boxes, widened that far, wrap the antimeridian and reach high latitudes."""
    fc, minima_doc = case
    try:
        read_scenario(fc)
    except InputError:
        assume(False)  # outside the accuracy bounds: refused alike (the engine's tests)
    store_matches_engine(new_db, fc, minima_doc)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios(crowd=True))
def test_store_records_the_red_line_entries_the_engine_finds(
        new_db, case: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """Zones and activities submitted party by party (red lines before or after what
    enters them, to whom they apply as named) record the entries `check` finds at once."""
    fc, minima_doc = case
    minima = Minima.from_json(minima_doc)
    with serving(new_db, minima) as svc:
        submit_by_party(svc, fc["features"], override=True)
        got = {(x["activity"], x["zone"]) for x in svc.store.list_violations(party=None)}
    scen = read_scenario(fc)
    found = detect(scen.activities, scen.zones, minima)
    expected = {(scen.activities.activity[v], scen.zones.activity[z])
                for v, z in zip(found.violations.volume, found.violations.zone, strict=True)}
    assert got == expected


def _moved(f: dict[str, Any], dx: float, dy: float) -> dict[str, Any]:
    """The feature with its footprint shifted (longitudes wrapped, latitudes kept inside
    the accuracy bounds)."""
    def at(p: list[float]) -> list[float]:
        return [_wrap(p[0] + dx), max(-79.99, min(79.99, p[1] + dy))]

    g = f["geometry"]
    coords = (at(g["coordinates"]) if g["type"] == "Point"
              else [[at(p) for p in ring] for ring in g["coordinates"]])
    return {**f, "geometry": {"type": g["type"], "coordinates": coords}}


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios(crowd=True), st.data())
def test_replacing_and_cancelling_leave_what_check_finds(
        new_db, case: tuple[dict[str, Any], dict[str, Any]], data: st.DataObject) -> None:
    """Activities submitted party by party, then some moved (resubmitted under their ids:
    their conflicts recomputed) and some cancelled: the open conflicts are those `check`
    finds in what is left."""
    fc, minima_doc = case
    acts = [f for f in fc["features"] if not f["properties"].get("zone")]
    ids = [f["id"] for f in acts]
    assume(ids)
    moved = data.draw(st.sets(st.sampled_from(ids)), label="moved")
    cancelled = data.draw(st.sets(st.sampled_from(ids)), label="cancelled")
    step = st.sampled_from([0.0, 0.002, -0.004, 0.01])
    final = {f["id"]: (_moved(f, data.draw(step), data.draw(step)) if f["id"] in moved else f)
             for f in acts}
    try:
        read_scenario(collection(*final.values()))
    except InputError:
        assume(False)  # moved out of the accuracy bounds
    minima = Minima.from_json(minima_doc)
    with serving(new_db, minima) as svc:
        submit_by_party(svc, acts)
        submit_by_party(svc, [final[i] for i in ids if i in moved])
        for f in acts:
            if f["id"] in cancelled:
                svc.cancel(f["properties"]["party"], str(f["id"]))
        got = stored_pairs(svc)
    assert got == checked_pairs(collection(*(final[i] for i in ids if i not in cancelled)),
                                minima)


def store_matches_engine(new_db, fc: dict[str, Any], minima_doc: dict[str, Any]) -> None:
    fc = {**fc, "features": [f for f in fc["features"] if not f["properties"].get("zone")]}
    minima = Minima.from_json(minima_doc)
    with serving(new_db, minima) as svc:
        submit_by_party(svc, fc["features"])
        got = stored_pairs(svc)
    assert got == checked_pairs(fc, minima)


def checked_pairs(fc: dict[str, Any], minima: Minima) -> set[frozenset[tuple[str, str]]]:
    """The conflicting activity pairs `check` finds in a scenario, as ``stored_pairs``."""
    scen = read_scenario(fc)
    found = detect(scen.activities, scen.zones, minima)
    a = scen.activities
    return {frozenset({(a.party[i], a.activity[i]), (a.party[j], a.activity[j])})
            for i, j in zip(found.conflicts.a, found.conflicts.b, strict=True)}


def test_replace_and_cancel_recompute(new_db) -> None:
    svc = service(new_db)
    svc.submit(read_scenario(collection(feature("convoy", None, square(10.0, 50.0, 0.01))),
                             default_party="A"))
    r = svc.submit(read_scenario(collection(feature("patrol", None, square(10.005, 50.0, 0.01))),
                                 default_party="B"))
    assert len(r.conflicts) == 1 and r.created == ["patrol"]
    cid = r.conflicts[0]["id"]
    # B moves away: replaced, the conflict is resolved.
    r = svc.submit(read_scenario(collection(feature("patrol", None, square(11.0, 50.0, 0.01))),
                                 default_party="B"))
    assert r.replaced == ["patrol"] and r.conflicts == [] and r.resolved == [cid]
    assert svc.store.find_owner("B", "patrol", zone=False).version == 2
    # B comes back: the same conflict reopens.
    r = svc.submit(read_scenario(collection(feature("patrol", None, square(10.005, 50.0, 0.01))),
                                 default_party="B"))
    assert [c["id"] for c in r.conflicts] == [cid]
    assert svc.cancel("A", "convoy") == [cid]
    assert svc.store.list_conflicts(party="B", status="open") == []
    # A cancelled activity no longer conflicts with new submissions.
    r = svc.submit(read_scenario(collection(feature("sweep", None, square(10.0, 50.0, 0.01))),
                                 default_party="C"))
    assert {(c["party_a"], c["party_b"]) for c in r.conflicts} == {("B", "C")}


def test_the_conflicts_a_submission_records_are_the_rows_stored(new_db) -> None:
    """A conflict opened by a submission is recorded (events, audit, answer) from what
    was written, not read back; it must be the row the store then reads."""
    svc = service(new_db)
    svc.submit(read_scenario(collection(
        feature(7, None, square(10.0, 50.0, 0.01), activity="convoy"),
        feature("c2", None, square(10.02, 50.0, 0.01), activity="convoy", kind="convoy")),
        default_party="A"))
    r = svc.submit(read_scenario(collection(
        feature(1.5, "B", square(10.005, 50.0, 0.02), activity="patrol",
                alt_lower_m=90, alt_upper_m=300),
        feature("s", "C", square(10.012, 50.0, 0.002)),
        feature("far", "B", square(12.0, 50.0, 0.01)))))
    opened = [c["id"] for c in r.conflicts]
    assert len(opened) == 3 and set(opened) <= set(r.rows)
    assert r.rows == as_stored(svc, r.rows)
    assert sorted(len(r.rows[c].pairs) for c in opened) == [1, 2, 2]
    # Found again with the same pairs: unchanged, nothing recorded; moved: read back.
    r = svc.submit(read_scenario(collection(feature("s", None, square(10.013, 50.0, 0.002))),
                                 default_party="C"))
    assert r.rows and r.rows == as_stored(svc, r.rows)


def test_antimeridian_in_store(new_db) -> None:
    svc = service(new_db)
    east = {"type": "Polygon", "coordinates": [[[179.99, 0], [-179.99, 0], [-179.99, 0.01],
                                                [179.99, 0.01], [179.99, 0]]]}
    svc.submit(read_scenario(collection(feature("e", None, east)), default_party="A"))
    r = svc.submit(read_scenario(collection(feature("w", None, square(-179.994, 0.0, 0.001))),
                                 default_party="B"))
    assert len(r.conflicts) == 1
    r = svc.submit(read_scenario(collection(feature("x", None, square(179.986, 0.0, 0.001))),
                                 default_party="C"))
    assert {c["activity_a"] for c in r.conflicts} | {c["activity_b"] for c in r.conflicts} \
        == {"e", "x"}


def test_windows_at_the_edges_of_the_supported_years(new_db) -> None:
    """A window from 1678 to 2261 is indexed whole (the SQLite R*Tree's time units once
    overflowed int64 there, and such a volume met nothing)."""
    svc = service(new_db)
    svc.submit(read_scenario(collection(feature(
        "ever", None, square(10.0, 10.0, 0.01), time_start="1678-01-02T00:00:00Z",
        time_end="2261-12-31T00:00:00Z")), default_party="A"))
    r = svc.submit(read_scenario(collection(feature("now", None, square(10.005, 10.005, 0.01))),
                                 default_party="B"))
    assert [(c["activity_a"], c["activity_b"]) for c in r.conflicts] == [("ever", "now")]


def test_export_round_trip(new_db) -> None:
    svc = service(new_db)
    fc = collection(
        feature("a1", "A", square(10.0, 50.0, 0.01), kind="convoy"),
        feature(7, "A", {"type": "Point", "coordinates": [10.2, 50.1]}, radius_m=250.5,
                activity="a1", kind="convoy"),
        feature("z", "Z", {"type": "Polygon", "coordinates": [[[179.99, 0], [-179.99, 0],
                                                               [-179.99, 1], [179.99, 0]]]},
                zone=True, restriction="notify", applies_to=["A"]),
    )
    svc.submit(read_scenario(fc))
    doc = export_scenario(svc.store.iter_export(party=None))
    again = read_scenario(json.dumps(doc))
    orig = read_scenario(fc)
    assert again.activities.ids == orig.activities.ids == ["a1", 7]
    assert list(again.activities.radius) == [0.0, 250.5]
    assert again.zones.applies_to[0] == ("A",)
    for x, y in zip(again.activities.geom.tolist() + again.zones.geom.tolist(),
                    orig.activities.geom.tolist() + orig.zones.geom.tolist(), strict=True):
        assert x.equals(y)


def test_preview_finds_what_submit_would_and_stores_nothing(new_db) -> None:
    svc = service(new_db)
    svc.submit(read_scenario(collection(feature("convoy", None, square(10.0, 50.0, 0.01)),
                                        feature("far", None, square(12.0, 50.0, 0.01))),
                             default_party="A"))
    probe = read_scenario(collection(feature("p1", None, square(10.012, 50.0, 0.01)),
                                     feature("p2", None, square(11.0, 50.0, 0.01))),
                          default_party="B").activities
    found = svc.preview(probe)
    assert [(f["volume"], f["activity"], f["party"]) for f in found] == [("p1", "convoy", "A")]
    assert 100 < found[0]["horizontal_m"] < 500
    assert svc.preview(probe.take([1])) == []
    assert svc.store.list_owners(party="B", zone=False) == []


def test_concurrent_writers_keep_each_transaction_whole_and_alone(new_db) -> None:
    """Concurrent writers (on SQLite, threads of one process share commits): one that
    fails rolls back alone, and each sees the ones before it."""
    import threading

    db = new_db()
    first = open_store(db)
    first.initialise(Minima(Separation(500.0, 150.0, 300.0)))
    first.close()
    errors: list[str] = []

    def work(k: int) -> None:
        store = open_store(db)
        try:
            for r in range(20):
                try:
                    with store.write():
                        before = len(store.list_parties())
                        store.add_party(f"p{k}-{r}", None, "2030-01-01T00:00:00Z")
                        assert len(store.list_parties()) == before + 1
                        if r % 5 == 0:
                            raise ValueError("refused")
                except ValueError:
                    pass
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            store.close()

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = open_store(db)
    names = {p.name for p in store.list_parties()}
    store.close()
    assert names == {f"p{k}-{r}" for k in range(8) for r in range(20) if r % 5}


def test_keys_with_quotes_placeholders_and_percents_are_plain_text(new_db) -> None:
    """Ids reach the SQL of both backends as data, whatever characters they hold."""
    svc = service(new_db)
    odd = ["it's", "a?b", "100%}", "%s", "\\", '"{x,y}"', "日本"]
    svc.submit(read_scenario(collection(*(feature(i, None, square(10.0 + k, 50.0, 0.01))
                                          for k, i in enumerate(odd))), default_party="A?%"))
    found = svc.store.find_owners([("A?%", i) for i in odd] + [("A?%", "absent")],
                                  zone=False)
    assert sorted(found) == sorted(("A?%", i) for i in odd)
    r = svc.submit(read_scenario(collection(feature("b", None, square(12.0, 50.0, 0.01))),
                                 default_party="B'"))
    assert [(c["party_a"], c["activity_a"]) for c in r.conflicts] == [("A?%", "100%}")]


def test_nul_characters_are_bad_input_on_postgis_and_change_nothing(new_db, backend) -> None:
    """PostgreSQL text cannot hold NUL; SQLite stores it. Either way nothing half-done."""
    from detente.errors import InputError

    svc = service(new_db)
    scen = read_scenario(collection(feature("a\u0000b", None, square(10.0, 50.0, 0.01))),
                         default_party="A")
    if backend == "postgis":
        with pytest.raises(InputError, match="NUL"):
            svc.submit(scen)
        assert svc.store.list_owners(party="A", zone=False) == []
    else:
        svc.submit(scen)
        assert [o.ext_id for o in svc.store.list_owners(party="A", zone=False)] == ["a\u0000b"]


def test_events_of_some_parties_in_a_range(new_db) -> None:
    """What the event hub reads: the events of the parties listening, newer than what it
    has read and no newer than the newest it saw, in id order, a page at a time."""
    st = service(new_db).store
    with st.write():
        ids = st.add_events([(p, "conflict.opened", None, f'{{"n": {k}}}')
                             for k, p in enumerate("ABCABCAB")], "2030-01-01T00:00:00Z", 0.0)
    got = st.events_for(["A", "C"], ids[0], ids[6], 10)
    assert [(e.id, e.party) for e in got] == [(ids[2], "C"), (ids[3], "A"), (ids[5], "C"),
                                              (ids[6], "A")]
    assert [e.id for e in st.events_for(["A", "C"], ids[0], ids[6], 2)] == ids[2:4]
    assert st.events_for(["B"], ids[7], ids[7], 10) == []


def test_positions_chain_prune_and_heads(new_db) -> None:
    """Reports are appended with a pointer to their activity's previous one: a track is
    walked back from its head, stops at ``since`` and at pruned reports; saved heads
    and the reports after them bring the heads back."""
    svc = service(new_db)
    st = svc.store
    with st.write():
        st.conn.execute("INSERT INTO owners (id, is_zone, party, ext_id, created_at, "
                        "updated_at) VALUES (7, 0, 'A', 'a', 'x', 'x')")
        st.set_tracking([TrackingRow(7, "conforming", 0)], "x")
        first = st.next_position_id()
        nan = float("nan")
        rows = [(7, 0, 10, 1.0, 2.0, 3.0, 0.0, 0.0, nan, nan, 100.0),
                (8, 0, 11, 5.0, 5.0, 5.0, 0.0, 0.0, nan, nan, 101.0),
                (7, first, 12, 1.5, 2.0, 3.0, 1.0, 2.0, 4.0, 90.0, 102.0),
                (7, first + 2, 13, 1.6, 2.0, 3.0, 1.0, 2.0, nan, nan, 103.0)]
        st.add_positions(first, rows)
        st.set_heads([(7, first + 3)], first + 2)
    track = st.track(first + 3, 0, 10)
    assert [r[2] for r in track] == [10, 12, 13] and track[1][8:10] == (4.0, 90.0)
    assert [r[2] for r in st.track(first + 3, 12, 10)] == [12, 13]
    assert [r[2] for r in st.track(first + 3, 0, 2)] == [12, 13]
    saved, after = st.heads()
    assert saved == {7: first + 3} and after == [(first + 3, 7)]
    with st.write():
        assert st.prune_positions(101.5) == 2
    assert [r[2] for r in st.track(first + 3, 0, 10)] == [12, 13]
    assert st.track(0, 0, 10) == []


def test_overdue_is_what_is_left_to_escalate(new_db) -> None:
    """A side is overdue past the deadline until it acknowledges or is escalated; a
    conflict with both sides done is not read again; a change to it starts over."""
    from detente.service.lifecycle import AckPolicy, Lifecycle

    then = "2025-05-01T08:00:00.000000Z"
    later = "2025-05-01T09:00:00.000000Z"
    url = new_db()
    store = open_store(url)
    store.initialise(Minima(Separation(500.0, 50.0, 60.0)))
    Lifecycle(store, lambda: then).set_policy(AckPolicy((), 60.0), "admin")
    svc = Deconfliction(store, clock=lambda: then)
    window = {"time_start": "2030-06-01T08:00:00Z", "time_end": "2030-06-01T09:00:00Z"}

    def submit(party: str, ext_id: str, lon: float) -> int:
        r = svc.submit(read_scenario(collection(feature(ext_id, party, square(lon, 50.0, 0.01),
                                                        **window))))
        return r.conflicts[0]["id"] if r.conflicts else 0

    submit("A", "a", 10.0)
    cid = submit("B", "b", 10.005)
    assert store.overdue(then) == []
    assert store.overdue(later) == [(cid, "A"), (cid, "B")]
    lc = Lifecycle(store, lambda: later)
    lc.acknowledge("A", cid)
    assert store.overdue(later) == [(cid, "B")]
    assert lc.sweep()["escalated"] == [[cid, "B"]]
    assert store.overdue(later) == []
    assert raw_sql(url, "SELECT escalate_at FROM conflicts WHERE id = ?", (cid,)) == [(None,)]
    # B's activity changes its pairs: both sides must acknowledge again.
    assert submit("B", "b", 10.006) == cid
    assert store.overdue(later) == [(cid, "A"), (cid, "B")]
    store.close()


@pytest.mark.parametrize("read", [1, 2, 1_000])
def test_conflict_pages_read_the_store_a_page_at_a_time(new_db, read: int) -> None:
    """A windowed page reads the store in pieces until it has its fill and one more;
    every way of paging adds up to the whole list."""
    from detente.service.disclosure import Disclosure, Window

    svc = service(new_db)
    spots = [10.0, 30.0, 10.01, 30.01, 10.02, 30.02, 10.03]
    svc.submit(read_scenario(collection(feature("mine-10", "A", square(10.0, 0.0, 0.05)),
                                        feature("mine-30", "A", square(30.0, 0.0, 0.05)))))
    svc.submit(read_scenario(collection(*(feature(f"b-{k}", "B", square(x, 0.0, 0.01))
                                          for k, x in enumerate(spots)))))
    seen = Disclosure(svc.store)
    whole = seen.conflicts("A")
    assert len(whole) == 7
    near_10 = Window((9.9, -0.1, 10.1, 0.1), None, None)
    windowed = seen.conflicts("A", window=near_10)
    assert [c["activity"] for c in windowed] == ["mine-10"] * 4
    for window, expected in ((Window(), whole), (near_10, windowed)):
        for limit in (1, 2, 3, 4, 7, 8):
            got, after, more = [], None, True
            while more:
                page, more = seen.conflicts_page("A", None, window, after=after,
                                                 limit=limit, read=read)
                assert len(page) <= limit and (page or not more)
                got += page
                after = page[-1]["id"] if page else after
            assert got == expected, (limit, read)


def test_sqlite_binds_none_and_bytes_unchanged_and_keeps_its_users_adapters(tmp_path
                                                                           ) -> None:
    """The identity adapters a SQLite connection registers (a faster path through the
    sqlite3 module) bind the same values, and one registered by other code stays."""
    import sqlite3

    from detente.store.sqlite_writer import connect

    keys = [(bytes, sqlite3.PrepareProtocol), (type(None), sqlite3.PrepareProtocol)]
    saved = {k: sqlite3.adapters.pop(k) for k in keys if k in sqlite3.adapters}

    def theirs(value: bytes) -> bytes:
        return value

    sqlite3.register_adapter(bytes, theirs)
    try:
        conn = connect(str(tmp_path / "adapters.db"), 5.0)
        assert sqlite3.adapters[keys[0]] is theirs and keys[1] in sqlite3.adapters
        del sqlite3.adapters[keys[0]]
        conn.close()
        conn = connect(str(tmp_path / "adapters.db"), 5.0)
        blob = b"\x00\xff\x01"
        row = conn.execute("SELECT ?, typeof(?), ?, typeof(?), length(?)",
                           (None, None, blob, blob, blob)).fetchone()
        assert row == (None, "null", blob, "blob", 3)
        conn.close()
    finally:
        for k in keys:
            sqlite3.adapters.pop(k, None)
        sqlite3.adapters.update(saved)


_CELL = st.one_of(st.none(), st.integers(-2**63, 2**63 - 1), st.text(max_size=5),
                  st.binary(max_size=5),
                  st.floats(allow_nan=False))  # (NaN binds as NULL either way)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.integers(0, 40), _CELL, _CELL), max_size=200),
       on_conflict=st.booleans())
@example(rows=[(k % 50, k, str(k)) for k in range(129)], on_conflict=True)
@example(rows=[(k, k / 3, bytes([k])) for k in range(64)], on_conflict=False)
def test_sqlite_insert_many_stores_what_executemany_stores(rows: list[tuple[Any, ...]],
                                                           on_conflict: bool) -> None:
    """The SQLite connection's insert_many (64 rows per statement, the rest one at a
    time) leaves a table as executemany does: the same rows, values and order, across
    the edges of its batches (0, 63, 64, 65, 128... rows), with a clause after VALUES
    kept (ON CONFLICT: the key column repeats); a row of the wrong width is refused
    before anything is inserted."""
    import sqlite3

    from detente.store.sqlite_writer import Connection

    conn = sqlite3.connect(":memory:", factory=Connection)
    tail = " ON CONFLICT DO NOTHING" if on_conflict else ""
    key = " UNIQUE" if on_conflict else ""
    for t in ("a", "b"):
        conn.execute(f"CREATE TABLE {t} (k INTEGER{key}, x, y)")
    conn.executemany(f"INSERT INTO a (k, x, y) VALUES (?, ?, ?){tail}", rows)
    conn.insert_many(f"INSERT INTO b (k, x, y) VALUES (?, ?, ?){tail}", rows)
    table = "SELECT rowid, k, x, typeof(x), y, typeof(y) FROM {} ORDER BY rowid"
    assert (conn.execute(table.format("b")).fetchall()
            == conn.execute(table.format("a")).fetchall())
    with pytest.raises(ValueError, match="3 values"):
        conn.insert_many("INSERT INTO b (k, x, y) VALUES (?, ?, ?)", [*rows, (1, 2)])
    assert conn.execute("SELECT count(*) FROM b").fetchone()[0] == len(
        {r[0] for r in rows} if on_conflict else rows)
    conn.close()
