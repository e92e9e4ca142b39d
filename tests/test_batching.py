"""Submissions combined into one transaction give what they would one by one."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings

from detente.core.minima import Minima, Separation
from detente.core.scenario import read_scenario
from detente.errors import AlreadyExists, DetenteError, Refused
from detente.service import Deconfliction
from detente.service.audit import verify
from detente.service.batching import Batcher, Pending
from detente.service.deconfliction import Submission, SubmitResult
from detente.store import open_store

from .conftest import collection, feature, square
from .test_property_detection import scenarios

NOW = "2026-04-30T08:00:00.000000Z"


def service(db: str, minima: Minima) -> Deconfliction:
    store = open_store(db)
    store.initialise(minima)
    return Deconfliction(store, clock=lambda: NOW)


def item(feat: dict[str, Any]) -> Submission:
    """A caller creating one activity (its id must be free)."""
    party = feat["properties"]["party"]
    return Submission(read_scenario(collection(feat), default_party=party), party,
                      versions={(party, str(feat["id"])): None})


def outcome(r: SubmitResult | DetenteError) -> Any:
    """A result in terms both stores share (conflict ids depend on the order rows
    were written)."""
    if isinstance(r, DetenteError):
        return type(r).__name__
    conflicts = sorted(orjson.dumps({k: v for k, v in c.items() if k != "id"},
                                    option=orjson.OPT_SORT_KEYS) for c in r.conflicts)
    violations = sorted(orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in r.violations)
    return r.created, r.replaced, r.zones, conflicts, violations, len(r.resolved)


def audit(svc: Deconfliction) -> tuple[list[Any], Counter[Any]]:
    """The audit log: entries about activities in order, and those about conflicts
    as a multiset (their subjects hold ids)."""
    plans, conflicts = [], Counter[Any]()
    for e in svc.store.iter_audit():
        if e.subject.startswith("conflict/"):
            conflicts[(e.action, e.actor, e.before, e.after, e.detail)] += 1
        else:
            plans.append((e.action, e.subject, e.actor, e.before, e.after, e.detail))
    return plans, conflicts


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(scenarios())
def test_combined_submissions_equal_one_by_one(new_db, case: tuple[dict[str, Any], Any]
                                               ) -> None:
    """Random scenarios, zones first, then each activity as a caller's submission: one
    combined transaction leaves the results, conflicts, red-line entries and audit
    entries that submitting them in turn leaves (a refused one included)."""
    fc, minima_doc = case
    minima = Minima.from_json(minima_doc)
    zones = [f for f in fc["features"] if f["properties"].get("zone")]
    acts = [f for f in fc["features"] if not f["properties"].get("zone")]
    one, many = service(new_db(), minima), service(new_db(), minima)
    try:  # (closed after each example: PostgreSQL would run out of connections)
        for svc in (one, many):
            for z in zones:
                svc.submit(read_scenario(collection(z)), actor=z["properties"]["party"])
        items = [item(f) for f in acts]
        alone: list[SubmitResult | DetenteError] = []
        for it in items:
            try:
                alone.append(one.submit(it.scenario, actor=it.actor, versions=it.versions))
            except DetenteError as exc:
                alone.append(exc)
        together = many.submit_each(items)
        assert [outcome(r) for r in together] == [outcome(r) for r in alone]
        assert audit(many) == audit(one)
        assert verify(many.store)["ok"]
    finally:
        one.store.close()
        many.store.close()


def test_a_conflict_within_the_batch_is_the_later_ones(new_db) -> None:
    svc = service(new_db(), Minima(Separation(500.0, 50.0, 60.0)))
    a = feature("a1", "Alpha", square(10.0, 50.0, 0.01))
    b = feature("b1", "Bravo", square(10.001, 50.001, 0.01))
    c = feature("c1", "Charlie", square(30.0, 10.0, 0.01))
    ra, rb, rc = svc.submit_each([item(a), item(b), item(c)])
    assert isinstance(ra, SubmitResult) and isinstance(rb, SubmitResult)
    assert ra.created == ["a1"] and ra.conflicts == []
    assert [(x["activity_a"], x["activity_b"]) for x in rb.conflicts] == [("a1", "b1")]
    assert isinstance(rc, SubmitResult) and rc.conflicts == []
    actors = {(e.action, e.subject): e.actor for e in svc.store.iter_audit()}
    assert actors[("activity.created", "activity/Alpha/a1")] == "Alpha"
    assert actors[("activity.created", "activity/Bravo/b1")] == "Bravo"
    assert actors[("activity.created", "activity/Charlie/c1")] == "Charlie"
    opened = [e for e in svc.store.iter_audit() if e.action == "conflict.opened"]
    assert [e.actor for e in opened] == ["Bravo"]  # its submission opened it


def test_a_refused_one_fails_alone(new_db) -> None:
    """An id in use and an entry into a prohibited zone each fail their own caller;
    the others are stored as if the faulty ones had not come."""
    svc = service(new_db(), Minima(Separation(500.0, 50.0, 60.0)))
    svc.submit(read_scenario(collection(
        feature("keep-out", "Zulu", square(40.0, 0.0, 0.1), zone=True,
                restriction="prohibited"),
        feature("taken", "Alpha", square(0.0, 0.0, 0.01)))), actor="setup")
    ok = feature("fine", "Alpha", square(10.0, 50.0, 0.01))
    dup = feature("taken", "Alpha", square(20.0, 50.0, 0.01))
    inside = feature("in", "Bravo", square(40.01, 0.01, 0.01))
    later = feature("b2", "Bravo", square(10.001, 50.001, 0.01))
    r = svc.submit_each([item(ok), item(dup), item(inside), item(later)])
    assert isinstance(r[1], AlreadyExists) and isinstance(r[2], Refused)
    assert isinstance(r[0], SubmitResult) and r[0].created == ["fine"]
    assert isinstance(r[3], SubmitResult)
    assert [(x["activity_a"], x["activity_b"]) for x in r[3].conflicts] == [("fine", "b2")]
    assert svc.store.find_owner("Bravo", "in", zone=False) is None
    assert verify(svc.store)["ok"]


def test_the_same_activity_twice_is_refused_the_second_time(new_db) -> None:
    """One call holding the same key twice cuts the run there: the second create is
    refused as it would be in turn, the first stands, and the rest go through."""
    svc = service(new_db(), Minima(Separation(500.0, 50.0, 60.0)))
    first = feature("x", "Alpha", square(10.0, 50.0, 0.01))
    again = feature("x", "Alpha", square(20.0, 50.0, 0.01))
    near = feature("y", "Bravo", square(10.001, 50.001, 0.01))
    r = svc.submit_each([item(first), item(near), item(again), item(near | {"id": "z"})])
    assert isinstance(r[2], AlreadyExists)
    assert [x.created if isinstance(x, SubmitResult) else None for x in r] == [
        ["x"], ["y"], None, ["z"]]
    stored = svc.store.volumes_of([svc.store.find_owner("Alpha", "x", zone=False).id],
                                  zone=False).volumes
    assert stored.bounds[:, 0].tolist() == [10.0]  # the first x, alone
    assert verify(svc.store)["ok"]


def test_the_batcher_keeps_arrival_order_and_each_callers_answer(new_db) -> None:
    """Submissions waiting together: the same id twice (the second is refused, as it
    would be in turn), others conflicting with earlier ones; each caller hears its own
    answer, through the batcher's thread."""
    svc = service(new_db(), Minima(Separation(500.0, 50.0, 60.0)))
    batcher = Batcher(svc, max_items=3)
    def one(ext_id: str, party: str, x: float) -> dict[str, Any]:
        return feature(ext_id, party, square(x, 50.0, 0.01), activity=ext_id)

    feats = [one(f"x{k}", f"P{k % 3}", 10.0 + 0.002 * k) for k in range(10)]
    feats.insert(4, one("x1", "P1", 11.0))  # x1 again
    answers: dict[int, Any] = {}
    finished = threading.Semaphore(0)

    def pending(k: int, f: dict[str, Any]) -> Pending:
        def done(value: Any) -> None:
            answers[k] = value
            finished.release()
        return Pending(collection(f), submission=lambda scenario: Submission(
            scenario, f["properties"]["party"], versions={(f["properties"]["party"],
                                                          f["id"]): None}),
            finish=lambda _sub, r: r, done=done)

    batcher._turn([pending(k, f) for k, f in enumerate(feats)])  # one turn, in order
    batcher.put(pending(99, feature("bad", "P0", {"type": "Point", "coordinates": [0, 0]},
                                    activity="bad")))
    batcher.put(pending(100, one("x20", "P2", 10.0)))
    for _ in range(len(feats) + 2):
        finished.acquire()
    batcher.close()
    assert isinstance(answers[4], AlreadyExists)
    assert isinstance(answers[99], DetenteError)  # a circle needs radius_m: that caller's
    assert isinstance(answers[100], SubmitResult) and answers[100].created == ["x20"]
    order = {f["id"]: k for k, f in reversed(list(enumerate(feats)))} | {"x20": 100}
    seen: Counter[int] = Counter()
    for k, a in answers.items():
        if isinstance(a, SubmitResult):
            for c in a.conflicts:
                seen[c["id"]] += 1  # each is the later side's, in arrival order
                assert sorted(order[c[s]] for s in ("activity_a", "activity_b"))[1] == k
    stored = {c.id for c in svc.store.list_conflicts(party=None, status="open")}
    assert set(seen) == stored and set(seen.values()) == {1}
    assert verify(svc.store)["ok"]
