"""ASTM F3548-21 DSS conformance: every endpoint and error path through real HTTP, with
real RS256 JWTs signed by a key made here, on each backend.

Each test works in its own patch of sky (``spot``), so tests share one server per
backend without meeting each other's entities.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from uas_standards.astm.f3548.v21 import api as f3548

from detente.api import Settings
from detente.api.dss_auth import DssAuth
from detente.core.minima import Minima, Separation
from detente.errors import InputError, Unauthorized
from detente.formats import f3548 as wire
from detente.service.parties import Parties
from detente.store import open_store

from .conftest import BACKENDS, serving

AUD = "dss.detente.test"
ISS = "https://auth.detente.test"
SC = "utm.strategic_coordination"
CM = "utm.constraint_management"
CP = "utm.constraint_processing"
CMSA = "utm.conformance_monitoring_sa"
AA = "utm.availability_arbitration"
NO_OVN = "Available from USS"


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEY = _key()
OTHER_KEY = _key()
_spots = itertools.count()


def token(sub: str, *scopes: str, key: rsa.RSAPrivateKey = KEY, aud: str = AUD,
          iss: str = ISS, exp_in: float = 3600) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "aud": aud, "iss": iss, "exp": now + int(exp_in),
                              "iat": now, "jti": str(uuid.uuid4())}
    if scopes:
        claims["scope"] = " ".join(scopes)
    return jwt.encode(claims, key, algorithm="RS256")


def iso(dt: datetime) -> dict[str, str]:
    return {"value": dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "format": "RFC3339"}


def spot() -> tuple[float, float]:
    """A fresh patch of sky for one test: 0.5 degree steps along a parallel."""
    k = next(_spots)
    return (-60.0 + 0.5 * (k % 200), -30.0 + 0.5 * (k // 200))


def volume(x: float, y: float, d: float = 0.01, *, lo: float = 0, hi: float = 120,
           start_min: float = 5, end_min: float = 65, circle_m: float | None = None
           ) -> dict[str, Any]:
    now = datetime.now(UTC)
    if circle_m is not None:
        outline: dict[str, Any] = {"outline_circle": {
            "center": {"lng": x, "lat": y}, "radius": {"value": circle_m, "units": "M"}}}
    else:
        outline = {"outline_polygon": {"vertices": [
            {"lng": x, "lat": y}, {"lng": x + d, "lat": y}, {"lng": x + d, "lat": y + d},
            {"lng": x, "lat": y + d}]}}
    return {"volume": {**outline,
                       "altitude_lower": {"value": lo, "reference": "W84", "units": "M"},
                       "altitude_upper": {"value": hi, "reference": "W84", "units": "M"}},
            "time_start": iso(now + timedelta(minutes=start_min)),
            "time_end": iso(now + timedelta(minutes=end_min))}


def intent(*extents: dict[str, Any], key: list[str] | None = None, state: str = "Accepted",
           **extra: Any) -> dict[str, Any]:
    return {"extents": list(extents), "key": key or [], "state": state,
            "uss_base_url": "https://uss.example/utm", **extra}


class Uss:
    """A USS talking to the DSS with one token."""

    def __init__(self, url: str, sub: str, *scopes: str):
        self.sub = sub
        self.http = httpx.Client(base_url=url + "/dss/v1", timeout=30, headers={
            "Authorization": f"Bearer {token(sub, *scopes)}"})

    def put(self, path: str, body: Any) -> httpx.Response:
        return self.http.put(path, json=body)

    def create(self, body: dict[str, Any], entity: str | None = None) -> httpx.Response:
        return self.put(f"/operational_intent_references/{entity or uuid.uuid4()}", body)


@pytest.fixture(scope="module", params=BACKENDS)
def dss(request, tmp_path_factory) -> Iterator[dict[str, Any]]:
    db = (str(tmp_path_factory.mktemp("dss") / "dss.db") if request.param == "sqlite"
          else request.getfixturevalue("pg_cluster").database())
    store = open_store(db)
    store.initialise(Minima(Separation(500.0, 150.0, 300.0)))
    parties = Parties(store)
    tokens = {"ngo": parties.add("ngo", contact="desk")[1],
              "uss1": parties.add("uss:uss1", contact="ops")[1],
              "watch": parties.add("uss:watcher", contact="ops")[1]}
    store.close()
    pem = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    auth = DssAuth((pem.decode(),), (AUD,), (ISS,))
    with serving(Settings(db=db, dss=auth)) as url:
        yield {"url": url, "tokens": tokens}


@pytest.fixture
def uss1(dss) -> Uss:
    return Uss(dss["url"], "uss1", SC, CP)


@pytest.fixture
def uss2(dss) -> Uss:
    return Uss(dss["url"], "uss2", SC, CP)


def native(dss: dict[str, Any], who: str) -> httpx.Client:
    return httpx.Client(base_url=dss["url"] + "/v1", timeout=30, headers={
        "Authorization": f"Bearer {dss['tokens'][who]}"})


# -- authentication and scopes ---------------------------------------------------------
E = "11111111-1111-4111-8111-111111111111"
OPERATIONS = [  # (method, path, scopes that may call it)
    ("POST", "/operational_intent_references/query", (SC, CMSA)),
    ("GET", f"/operational_intent_references/{E}", (SC, CMSA)),
    ("PUT", f"/operational_intent_references/{E}", (SC, CMSA)),
    ("PUT", f"/operational_intent_references/{E}/ovn", (SC, CMSA)),
    ("DELETE", f"/operational_intent_references/{E}/ovn", (SC, CMSA)),
    ("POST", "/constraint_references/query", (CM, CP)),
    ("GET", f"/constraint_references/{E}", (CM, CP)),
    ("PUT", f"/constraint_references/{E}", (CM,)),
    ("PUT", f"/constraint_references/{E}/ovn", (CM,)),
    ("DELETE", f"/constraint_references/{E}/ovn", (CM,)),
    ("POST", "/subscriptions/query", (SC, CP)),
    ("GET", f"/subscriptions/{E}", (SC, CP)),
    ("PUT", f"/subscriptions/{E}", (SC, CP)),
    ("PUT", f"/subscriptions/{E}/v", (SC, CP)),
    ("DELETE", f"/subscriptions/{E}/v", (SC, CP)),
    ("POST", "/reports", (SC, CM, CP, CMSA, AA)),
    ("GET", "/uss_availability/uss1", (AA, SC, CMSA)),
    ("PUT", "/uss_availability/uss1", (AA,)),
]
ALL = (SC, CM, CP, CMSA, AA)


@pytest.mark.parametrize(("method", "path", "scopes"), OPERATIONS,
                         ids=[f"{m} {p}" for m, p, _ in OPERATIONS])
def test_every_operation_checks_token_and_scope(dss, method, path, scopes) -> None:
    url = dss["url"] + "/dss/v1" + path

    def call(tok: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tok}"} if tok else {}
        return httpx.request(method, url, headers=headers, json={}, timeout=30)

    bad = {"missing": None, "expired": token("u", *scopes, exp_in=-60),
           "other key": token("u", *scopes, key=OTHER_KEY),
           "audience": token("u", *scopes, aud="someone-else"),
           "issuer": token("u", *scopes, iss="https://evil.test"),
           "no scope": token("u"), "garbage": "not.a.jwt"}
    for why, tok in bad.items():
        r = call(tok)
        assert r.status_code == 401, (why, r.text)
        assert set(r.json()) == {"message"} and r.json()["message"], why
    wrong = [s for s in ALL if s not in scopes]
    if wrong:
        r = call(token("u", *wrong))
        assert r.status_code == 403, r.text
        assert "scope" in r.json()["message"]
    r = call(token("u", scopes[0]))
    assert r.status_code not in (401, 403), r.text  # the right scope gets through


# -- operational intent references -----------------------------------------------------
def test_create_get_update_delete_an_intent(uss1, uss2) -> None:
    x, y = spot()
    oid = str(uuid.uuid4())
    r = uss1.create(intent(volume(x, y), new_subscription={
        "uss_base_url": "https://uss1.example/utm"}), oid)
    assert r.status_code == 201, r.text
    ref = r.json()["operational_intent_reference"]
    assert ref["id"] == oid and ref["manager"] == "uss1" and ref["version"] == 1
    assert ref["state"] == "Accepted" and ref["ovn"] and ref["ovn"] != NO_OVN
    assert ref["uss_availability"] == "Unknown" and ref["time_start"]["format"] == "RFC3339"
    assert isinstance(r.json()["subscribers"], list)
    # The owner reads its OVN; another USS does not (it must ask the managing USS).
    assert uss1.http.get(f"/operational_intent_references/{oid}").json()[
        "operational_intent_reference"]["ovn"] == ref["ovn"]
    assert uss2.http.get(f"/operational_intent_references/{oid}").json()[
        "operational_intent_reference"]["ovn"] == NO_OVN
    # Creating it again, or updating at a wrong OVN: 409.
    again = uss1.create(intent(volume(x, y)), oid)
    assert again.status_code == 409, again.text
    stale = uss1.put(f"/operational_intent_references/{oid}/not-the-ovn",
                     intent(volume(x, y), state="Activated",
                            subscription_id=ref["subscription_id"]))
    assert stale.status_code == 409 and "message" in stale.json()
    # Another USS may neither change nor delete it.
    assert uss2.put(f"/operational_intent_references/{oid}/{ref['ovn']}",
                    intent(volume(x, y))).status_code == 403
    assert uss2.http.delete(f"/operational_intent_references/{oid}/{ref['ovn']}"
                            ).status_code == 403
    # The owner activates it at its OVN: a new version and OVN.
    up = uss1.put(f"/operational_intent_references/{oid}/{ref['ovn']}",
                  intent(volume(x, y), state="Activated",
                         subscription_id=ref["subscription_id"]))
    assert up.status_code == 200, up.text
    ref2 = up.json()["operational_intent_reference"]
    assert ref2["version"] == 2 and ref2["state"] == "Activated" and ref2["ovn"] != ref["ovn"]
    assert uss1.http.delete(f"/operational_intent_references/{oid}/{ref['ovn']}"
                            ).status_code == 409  # the old OVN
    gone = uss1.http.delete(f"/operational_intent_references/{oid}/{ref2['ovn']}")
    assert gone.status_code == 200, gone.text
    assert uss1.http.get(f"/operational_intent_references/{oid}").status_code == 404
    assert uss1.http.delete(f"/operational_intent_references/{oid}/{ref2['ovn']}"
                            ).status_code == 404


def test_two_uss_key_validation(uss1, uss2) -> None:
    """The second USS must present the first's OVN; intersection is exact."""
    x, y = spot()
    first = uss1.create(intent(volume(x, y, 0.02)))
    assert first.status_code == 201
    ref1 = first.json()["operational_intent_reference"]
    # Overlapping: refused with the standard's AirspaceConflictResponse.
    r = uss2.create(intent(volume(x + 0.01, y + 0.01, 0.02)))
    assert r.status_code == 409, r.text
    body = r.json()
    assert [m["id"] for m in body["missing_operational_intents"]] == [ref1["id"]]
    assert body["missing_operational_intents"][0]["ovn"] == NO_OVN
    assert body["missing_constraints"] == [] and body["message"]
    # Touching along an edge intersects too (closed sets); 1 km apart does not.
    touch = uss2.create(intent(volume(x + 0.02, y, 0.02)))
    assert touch.status_code == 409, touch.text
    apart = uss2.create(intent(volume(x + 0.03, y, 0.02)))
    assert apart.status_code == 201, apart.text
    # Disjoint in time or altitude: no key needed.
    assert uss2.create(intent(volume(x, y, 0.02, start_min=70, end_min=90))).status_code == 201
    assert uss2.create(intent(volume(x, y, 0.02, lo=200, hi=300))).status_code == 201
    # With the OVN (learnt from uss1 itself), the same intent goes in.
    ok = uss2.create(intent(volume(x + 0.005, y + 0.005, 0.01), key=[ref1["ovn"]]))
    assert ok.status_code == 201, ok.text
    # A circle far from its polygon's corner but within its bounding box: exact geometry
    # says apart (an S2 or box index would demand a key).
    circ = uss2.create(intent(volume(x + 0.0205, y - 0.0005, circle_m=30.0)))
    assert circ.status_code == 201, circ.text


def test_a_partial_key_is_told_exactly_what_it_lacks(uss1, uss2) -> None:
    """Of three intersecting intents, a key holding one (and an OVN of nothing there)
    hears of the other two, by id and in order; holding all three, it goes in. A key
    holding a stale OVN (the intent's before its update) lacks that intent."""
    x, y = spot()
    refs = []
    for k in range(3):
        key = [r["ovn"] for r in refs]
        made = uss1.create(intent(volume(x + 0.002 * k, y, 0.02), key=key))
        assert made.status_code == 201, made.text
        refs.append(made.json()["operational_intent_reference"])
    r = uss2.create(intent(volume(x + 0.001, y + 0.001, 0.02),
                           key=[refs[1]["ovn"], "not-an-ovn-of-anything-here"]))
    assert r.status_code == 409, r.text
    assert ([m["id"] for m in r.json()["missing_operational_intents"]]
            == sorted([refs[0]["id"], refs[2]["id"]]))
    # The first is updated: its old OVN no longer opens the way.
    old = refs[0]
    up = uss1.put(f"/operational_intent_references/{old['id']}/{old['ovn']}",
                  intent(volume(x, y, 0.02), key=[refs[1]["ovn"], refs[2]["ovn"]],
                         state="Activated", new_subscription={"uss_base_url": "https://u"}))
    assert up.status_code == 200, up.text
    refs[0] = up.json()["operational_intent_reference"]
    stale = uss2.create(intent(volume(x + 0.001, y + 0.001, 0.02),
                               key=[old["ovn"], refs[1]["ovn"], refs[2]["ovn"]]))
    assert stale.status_code == 409, stale.text
    assert [m["id"] for m in stale.json()["missing_operational_intents"]] == [old["id"]]
    ok = uss2.create(intent(volume(x + 0.001, y + 0.001, 0.02),
                            key=[r["ovn"] for r in refs]))
    assert ok.status_code == 201, ok.text


def test_keys_across_the_antimeridian(uss1, uss2) -> None:
    """An intent across the antimeridian must be in the key of one that meets it on
    either side of the line."""
    across = volume(179.99, 62.0)
    across["volume"]["outline_polygon"]["vertices"] = [
        {"lng": 179.99, "lat": 62.0}, {"lng": -179.99, "lat": 62.0},
        {"lng": -179.99, "lat": 62.01}, {"lng": 179.99, "lat": 62.01}]
    made = uss1.create(intent(across))
    assert made.status_code == 201, made.text
    ref = made.json()["operational_intent_reference"]
    for x in (-179.995, 179.993):
        r = uss2.create(intent(volume(x, 62.002, 0.002)))
        assert r.status_code == 409, (x, r.text)
        assert [m["id"] for m in r.json()["missing_operational_intents"]] == [ref["id"]]
        ok = uss2.create(intent(volume(x, 62.002, 0.002), key=[ref["ovn"]]))
        assert ok.status_code == 201, (x, ok.text)


def test_intent_validation_errors(uss1) -> None:
    x, y = spot()
    e = str(uuid.uuid4())
    cases = {
        "activated at creation": intent(volume(x, y), state="Activated",
                                        new_subscription={"uss_base_url": "https://u"}),
        "unknown state": intent(volume(x, y), state="Flying"),
        "no extents": intent(),
        "ends in the past": intent(volume(x, y, start_min=-60, end_min=-30)),
        "no altitude": {**intent(volume(x, y)), "extents": [
            {k: v for k, v in volume(x, y).items()} | {"volume": {
                "outline_polygon": volume(x, y)["volume"]["outline_polygon"]}}]},
        "no time": {**intent(volume(x, y)), "extents": [{"volume": volume(x, y)["volume"]}]},
        "two vertices": {**intent(volume(x, y)), "extents": [volume(x, y) | {"volume": {
            **volume(x, y)["volume"], "outline_polygon": {"vertices": [
                {"lng": x, "lat": y}, {"lng": x + 1, "lat": y}]}}}]},
        "feet": {**intent(volume(x, y)), "extents": [volume(x, y) | {"volume": {
            **volume(x, y)["volume"], "altitude_lower": {"value": 0, "reference": "W84",
                                                         "units": "FT"}}}]},
        "no base url": {k: v for k, v in intent(volume(x, y)).items() if k != "uss_base_url"},
        "bad ovn suffix": intent(volume(x, y), requested_ovn_suffix="not-a-uuid"),
        "old ovn suffix": intent(volume(x, y), requested_ovn_suffix=str(uuid.UUID(
            int=(1 << 76) | (7 << 76) | (2 << 62)))),
        "subscription and new one": intent(volume(x, y), subscription_id=E,
                                           new_subscription={"uss_base_url": "https://u"}),
        "unknown subscription": intent(volume(x, y), subscription_id=E),
    }
    for why, body in cases.items():
        r = uss1.create(body, e)
        assert r.status_code == 400, (why, r.text)
        assert r.json()["message"], why
    assert uss1.http.put(f"/operational_intent_references/{e}", content=b"{not json"
                         ).status_code == 400
    assert uss1.create(intent(volume(x, y)), "not-a-uuid").status_code == 400
    # Updating what does not exist is a bad request (the reference DSS's answer).
    assert uss1.put(f"/operational_intent_references/{e}/some-ovn",
                    intent(volume(x, y))).status_code == 400
    # Empty path segments: the standard's 400, never a redirect to another operation.
    for method, path in (("PUT", f"/operational_intent_references/{e}/"),
                         ("DELETE", f"/operational_intent_references/{e}/"),
                         ("GET", "/operational_intent_references/"),
                         ("DELETE", f"/subscriptions/{e}/"),
                         ("PUT", f"/constraint_references/{e}/")):
        r = uss1.http.request(method, path, json=intent(volume(x, y)))
        assert r.status_code == 400, (method, path, r.status_code, r.text)
    # Nothing was stored by any of these.
    assert uss1.http.get(f"/operational_intent_references/{e}").status_code == 404
    # Unknown fields are ignored.
    r = uss1.create(intent(volume(x, y)) | {"x_vendor": {"a": 1}}, e)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("key", [["a", "b"], [], [7, "x"], "ab", None, [None], {"a": 1}])
def test_a_key_is_read_as_the_standards_type_reads_it(key: Any) -> None:
    """A key of strings is taken as it is (fast); anything else goes through the
    standard's type; either way the same body or the same error."""
    raw = orjson.dumps({**intent(volume(1.0, 1.0)), "key": key})

    def read(with_key: bool) -> Any:
        try:
            return dict(wire.parse(raw, f3548.PutOperationalIntentReferenceParameters,
                                   "intent", with_key=with_key))
        except InputError as exc:
            return str(exc)

    assert read(True) == read(False)


def test_requested_ovn_suffix(uss1) -> None:
    x, y = spot()
    ms = int(time.time() * 1000)
    suffix = str(uuid.UUID(int=(ms << 80) | (7 << 76) | (2 << 62) | 12345))
    e = str(uuid.uuid4())
    r = uss1.create(intent(volume(x, y), requested_ovn_suffix=suffix), e)
    assert r.status_code == 201, r.text
    assert r.json()["operational_intent_reference"]["ovn"] == f"{e}_{suffix}"


def test_off_nominal_states_need_the_cmsa_scope_and_no_key(dss, uss1, uss2) -> None:
    x, y = spot()
    first = uss1.create(intent(volume(x, y)))
    assert first.status_code == 201
    e = str(uuid.uuid4())
    made = uss2.create(intent(volume(x + 0.05, y)), e)
    ref = made.json()["operational_intent_reference"]
    moved = intent(volume(x, y), state="Nonconforming",
                   new_subscription={"uss_base_url": "https://uss2.example"})
    path = f"/operational_intent_references/{e}/{ref['ovn']}"
    assert uss2.put(path, moved).status_code == 403  # no CMSA scope
    cmsa = Uss(dss["url"], "uss2", CMSA)
    r = cmsa.put(path, moved)
    assert r.status_code == 200, r.text  # no key needed off-nominal
    assert r.json()["operational_intent_reference"]["state"] == "Nonconforming"
    # And a CMSA-only token may not plan nominally.
    assert cmsa.create(intent(volume(x + 0.2, y))).status_code == 403


def test_query_intents_and_area_limits(uss1, uss2) -> None:
    x, y = spot()
    a = uss1.create(intent(volume(x, y))).json()["operational_intent_reference"]
    b = uss2.create(intent(volume(x + 0.1, y))).json()["operational_intent_reference"]
    q = uss2.http.post("/operational_intent_references/query",
                       json={"area_of_interest": volume(x - 0.001, y - 0.001, 0.05)})
    assert q.status_code == 200, q.text
    found = {r["id"]: r for r in q.json()["operational_intent_references"]}
    assert set(found) == {a["id"]} and found[a["id"]]["ovn"] == NO_OVN
    wide = volume(x - 0.001, y - 0.001, 0.2)
    del wide["time_start"], wide["time_end"]  # no time: any time
    ids = {r["id"] for r in uss2.http.post("/operational_intent_references/query", json={
        "area_of_interest": wide}).json()["operational_intent_references"]}
    assert ids == {a["id"], b["id"]}
    huge = volume(x, y, 12.0)
    r = uss2.http.post("/operational_intent_references/query", json={"area_of_interest": huge})
    assert r.status_code == 413, r.text
    assert uss2.create(intent(huge)).status_code == 413
    assert uss2.http.post("/operational_intent_references/query", json={}).status_code == 400


# -- subscriptions ---------------------------------------------------------------------
def test_subscriptions_lifecycle_and_notifications(dss, uss1, uss2) -> None:
    x, y = spot()
    sid = str(uuid.uuid4())
    body = {"extents": volume(x, y, 0.05, start_min=0, end_min=120),
            "uss_base_url": "https://uss1.example/utm", "notify_for_operational_intents": True}
    r = uss1.put(f"/subscriptions/{sid}", body)
    assert r.status_code == 200, r.text
    sub = r.json()["subscription"]
    assert sub["notification_index"] == 0 and sub["version"] and not sub[
        "implicit_subscription"]
    assert uss1.put(f"/subscriptions/{sid}", body).status_code == 409  # exists
    # Another USS plans inside: the response names uss1's subscription to notify.
    made = uss2.create(intent(volume(x + 0.01, y + 0.01)))
    assert made.status_code == 201, made.text
    subs = {s["uss_base_url"]: s["subscriptions"] for s in made.json()["subscribers"]}
    assert {"subscription_id": sid, "notification_index": 1} in subs[
        "https://uss1.example/utm"]
    # Outside the subscription: not notified.
    far = uss2.create(intent(volume(x + 0.3, y)))
    assert all(s["uss_base_url"] != "https://uss1.example/utm"
               for s in far.json()["subscribers"])
    # Hidden from others; a stale version is refused; the right one updates.
    assert uss2.http.get(f"/subscriptions/{sid}").status_code == 404
    assert uss1.put(f"/subscriptions/{sid}/wrong", body).status_code == 409
    assert uss2.put(f"/subscriptions/{sid}/{sub['version']}", body).status_code == 403
    up = uss1.put(f"/subscriptions/{sid}/{sub['version']}", body | {
        "notify_for_constraints": True})
    assert up.status_code == 200, up.text
    sub2 = up.json()["subscription"]
    assert sub2["version"] != sub["version"] and sub2["notification_index"] == 1
    assert sub2["notify_for_constraints"] is True
    # The update's response lists what is in the area already.
    assert made.json()["operational_intent_reference"]["id"] in [
        o["id"] for o in up.json()["operational_intent_references"]]
    q = uss1.http.post("/subscriptions/query", json={"area_of_interest": volume(x, y)})
    assert [s["id"] for s in q.json()["subscriptions"]] == [sid]
    assert uss2.http.post("/subscriptions/query", json={
        "area_of_interest": volume(x, y)}).json()["subscriptions"] == []
    assert uss1.http.delete(f"/subscriptions/{sid}/{sub['version']}").status_code == 409
    gone = uss1.http.delete(f"/subscriptions/{sid}/{sub2['version']}")
    assert gone.status_code == 200, gone.text
    assert uss1.http.get(f"/subscriptions/{sid}").status_code == 404


def test_subscriptions_across_the_antimeridian(dss, uss1, uss2) -> None:
    sid = str(uuid.uuid4())
    area = volume(179.99, 61.0, start_min=0, end_min=120)
    area["volume"]["outline_polygon"]["vertices"] = [
        {"lng": 179.99, "lat": 61.0}, {"lng": -179.99, "lat": 61.0},
        {"lng": -179.99, "lat": 61.01}, {"lng": 179.99, "lat": 61.01}]
    r = uss1.put(f"/subscriptions/{sid}", {"extents": area, "uss_base_url": "https://east",
                                           "notify_for_operational_intents": True})
    assert r.status_code == 200, r.text
    made = uss2.create(intent(volume(-179.995, 61.002, 0.002)))  # west of the line
    assert made.status_code == 201, made.text
    assert [s["uss_base_url"] for s in made.json()["subscribers"]] == ["https://east"]
    q = uss1.http.post("/subscriptions/query", json={
        "area_of_interest": volume(-179.995, 61.002, 0.002)})
    assert [s["id"] for s in q.json()["subscriptions"]] == [sid]


def test_an_expired_subscription_is_told_nothing(dss, uss1, uss2) -> None:
    x, y = spot()
    sid = str(uuid.uuid4())
    r = uss1.put(f"/subscriptions/{sid}", {
        "extents": volume(x, y, 0.05, start_min=0, end_min=0.05),  # ends in 3 s
        "uss_base_url": "https://brief", "notify_for_operational_intents": True})
    assert r.status_code == 200, r.text
    time.sleep(3.5)
    made = uss2.create(intent(volume(x + 0.01, y + 0.01, start_min=0.1)))
    assert made.status_code == 201, made.text
    assert all(s["uss_base_url"] != "https://brief" for s in made.json()["subscribers"])
    assert uss1.http.post("/subscriptions/query", json={
        "area_of_interest": volume(x, y)}).json()["subscriptions"] == []


def test_subscription_validation(dss, uss1) -> None:
    x, y = spot()
    base = {"uss_base_url": "https://u", "notify_for_operational_intents": True}
    cases = {
        "over 24 h": {"extents": volume(x, y, start_min=0, end_min=60 * 25), **base},
        "ended": {"extents": volume(x, y, start_min=-60, end_min=-1), **base},
        "asks for nothing": {"extents": volume(x, y), "uss_base_url": "https://u"},
        "no extents": base,
    }
    for why, body in cases.items():
        r = uss1.put(f"/subscriptions/{uuid.uuid4()}", body)
        assert r.status_code == 400, (why, r.text)
    # Default times: from now, for 24 hours.
    open_ended = volume(x, y)
    del open_ended["time_start"], open_ended["time_end"]
    r = uss1.put(f"/subscriptions/{uuid.uuid4()}", {"extents": open_ended, **base})
    assert r.status_code == 200, r.text
    # Constraints need the constraint processing scope.
    sc_only = Uss(dss["url"], "uss1", SC)
    r = sc_only.put(f"/subscriptions/{uuid.uuid4()}", {
        "extents": volume(x, y), "uss_base_url": "https://u", "notify_for_constraints": True})
    assert r.status_code == 403, r.text


def test_implicit_subscription_follows_its_intent(uss1) -> None:
    x, y = spot()
    e = str(uuid.uuid4())
    r = uss1.create(intent(volume(x, y), volume(x + 0.05, y, circle_m=200.0),
                           new_subscription={"uss_base_url": "https://uss1.example"}), e)
    assert r.status_code == 201, r.text
    ref = r.json()["operational_intent_reference"]
    sid = ref["subscription_id"]
    sub = uss1.http.get(f"/subscriptions/{sid}").json()["subscription"]
    assert sub["implicit_subscription"] is True
    assert sub["dependent_operational_intents"] == [e]
    # It cannot be deleted while the intent relies on it.
    assert uss1.http.delete(f"/subscriptions/{sid}/{sub['version']}").status_code == 400
    # A second intent may rely on it when it is covered (inside the first's volumes).
    r2 = uss1.create(intent(volume(x + 0.001, y + 0.001, 0.005), key=[ref["ovn"]],
                            subscription_id=sid))
    assert r2.status_code == 201, r2.text
    # An explicit subscription must cover the intent.
    small = str(uuid.uuid4())
    uss1.put(f"/subscriptions/{small}", {"extents": volume(x + 0.5, y, 0.001),
                                         "uss_base_url": "https://u",
                                         "notify_for_operational_intents": True})
    r3 = uss1.create(intent(volume(x + 0.4, y), subscription_id=small))
    assert r3.status_code == 400, r3.text
    # Deleting the intents drops the implicit subscription with the last of them.
    ref2 = r2.json()["operational_intent_reference"]
    assert uss1.http.delete(f"/operational_intent_references/{ref2['id']}/{ref2['ovn']}"
                            ).status_code == 200
    assert uss1.http.get(f"/subscriptions/{sid}").status_code == 200
    assert uss1.http.delete(f"/operational_intent_references/{e}/{ref['ovn']}"
                            ).status_code == 200
    assert uss1.http.get(f"/subscriptions/{sid}").status_code == 404


def test_the_subscription_is_checked_before_the_key_and_a_refused_key_writes_nothing(
        uss1, uss2) -> None:
    """As the reference DSS answers: a named subscription that does not cover the
    intent is a 400 even where the key lacks an OVN too; and a create refused for its
    key leaves no implicit subscription behind."""
    x, y = spot()
    assert uss1.create(intent(volume(x, y, 0.02))).status_code == 201
    small = str(uuid.uuid4())
    made = uss2.put(f"/subscriptions/{small}", {"extents": volume(x + 0.3, y, 0.001),
                                                "uss_base_url": "https://u",
                                                "notify_for_operational_intents": True})
    assert made.status_code == 200, made.text
    r = uss2.create(intent(volume(x + 0.01, y + 0.01, 0.02), subscription_id=small))
    assert r.status_code == 400, r.text

    def subscriptions() -> list[str]:
        q = uss2.http.post("/subscriptions/query",
                           json={"area_of_interest": volume(x - 0.1, y - 0.1, 0.5)})
        assert q.status_code == 200, q.text
        return sorted(s["id"] for s in q.json()["subscriptions"])

    before = subscriptions()
    assert before == [small]
    r = uss2.create(intent(volume(x + 0.01, y + 0.01, 0.02),
                           new_subscription={"uss_base_url": "https://u2"}))
    assert r.status_code == 409, r.text
    assert subscriptions() == before


# -- constraints -------------------------------------------------------------------------
def test_constraints_and_their_keys(dss, uss1) -> None:
    x, y = spot()
    authority = Uss(dss["url"], "authority", CM)
    cid = str(uuid.uuid4())
    body = {"extents": [volume(x, y, 0.05)], "uss_base_url": "https://authority.example"}
    assert uss1.put(f"/constraint_references/{cid}", body).status_code == 403  # needs CM
    r = authority.put(f"/constraint_references/{cid}", body)
    assert r.status_code == 201, r.text
    cref = r.json()["constraint_reference"]
    assert cref["version"] == 1 and "state" not in cref
    assert authority.put(f"/constraint_references/{cid}", body).status_code == 409
    # A USS subscribed to constraints must hold the constraint's OVN to plan inside it.
    e = str(uuid.uuid4())
    asks = intent(volume(x + 0.01, y + 0.01), new_subscription={
        "uss_base_url": "https://uss1.example", "notify_for_constraints": True})
    r = uss1.create(asks, e)
    assert r.status_code == 409, r.text
    assert [c["id"] for c in r.json()["missing_constraints"]] == [cid]
    assert r.json()["missing_constraints"][0]["ovn"] == NO_OVN
    assert uss1.create(asks | {"key": [cref["ovn"]]}, e).status_code == 201
    # One that does not subscribe to constraints needs no constraint OVN.
    assert uss1.create(intent(volume(x + 0.03, y + 0.03))).status_code == 201
    assert Uss(dss["url"], "uss1", SC).http.post("/constraint_references/query", json={
        "area_of_interest": volume(x, y)}).status_code == 403
    reader = Uss(dss["url"], "uss1", CP)
    q = reader.http.post("/constraint_references/query", json={"area_of_interest": volume(x, y)})
    assert [c["id"] for c in q.json()["constraint_references"]] == [cid]
    up = authority.put(f"/constraint_references/{cid}/{cref['ovn']}",
                       body | {"extents": [volume(x, y, 0.06)]})
    assert up.status_code == 200 and up.json()["constraint_reference"]["version"] == 2
    # Subscribers to constraints hear of the change.
    assert any(s["uss_base_url"] == "https://uss1.example" for s in up.json()["subscribers"])
    new_ovn = up.json()["constraint_reference"]["ovn"]
    assert authority.http.delete(f"/constraint_references/{cid}/{cref['ovn']}"
                                 ).status_code == 409
    assert authority.http.delete(f"/constraint_references/{cid}/{new_ovn}").status_code == 200
    assert reader.http.get(f"/constraint_references/{cid}").status_code == 404


# -- one store: USSs meet native parties -----------------------------------------------
def test_a_uss_intent_meets_native_red_lines_and_activities(dss, uss1) -> None:
    x, y = spot()
    ngo = native(dss, "ngo")
    now = datetime.now(UTC)
    window = {"time_start": iso(now)["value"], "time_end": iso(now + timedelta(hours=3))["value"]}
    sq = {"type": "Polygon", "coordinates": [[[x, y], [x + 0.02, y], [x + 0.02, y + 0.02],
                                              [x, y + 0.02], [x, y]]]}
    z = ngo.post("/zones", json={"id": "clinic", "restriction": "prohibited", "volumes": [
        {"geometry": sq, "alt_lower_m": 0, "alt_upper_m": 500, **window}]})
    assert z.status_code == 201, z.text
    e = str(uuid.uuid4())
    r = uss1.create(intent(volume(x + 0.005, y + 0.005)), e)
    assert r.status_code == 409, r.text
    assert "clinic" in r.json()["message"]
    assert uss1.http.get(f"/operational_intent_references/{e}").status_code == 404
    # A native activity 300 m away (minimum 500 m): the intent goes in, in conflict.
    act = {"type": "Polygon", "coordinates": [[[x + 0.1, y], [x + 0.11, y], [x + 0.11, y + 0.01],
                                               [x + 0.1, y + 0.01], [x + 0.1, y]]]}
    a = ngo.post("/activities", json={"id": "convoy", "kind": "convoy", "volumes": [
        {"geometry": act, "alt_lower_m": 0, "alt_upper_m": 50, **window}]})
    assert a.status_code == 201, a.text
    r = uss1.create(intent(volume(x + 0.1133, y, 0.01)), e)
    assert r.status_code == 201, r.text
    conflicts = ngo.get("/conflicts").json()
    mine = [c for c in conflicts if c["activity"] == "convoy"]
    assert [c["counterpart_party"] for c in mine] == ["uss:uss1"], conflicts
    # The USS's party sees the conflict too, through the native API (with a token the
    # admin gave it); a USS it does not concern does not.
    theirs = [c for c in native(dss, "uss1").get("/conflicts").json() if c["activity"] == e]
    assert [(c["id"], c["counterpart_party"]) for c in theirs] == [(mine[0]["id"], "ngo")]
    assert native(dss, "watch").get("/conflicts").json() == []


# -- availability and reports ----------------------------------------------------------------
def test_uss_availability_gates_planning(dss) -> None:
    x, y = spot()
    arbiter = Uss(dss["url"], "arbiter", AA)
    planner = Uss(dss["url"], "downuss", SC)
    r = arbiter.http.get("/uss_availability/downuss")
    assert r.json() == {"status": {"uss": "downuss", "availability": "Unknown"}, "version": ""}
    assert planner.put("/uss_availability/downuss", {"availability": "Down"}
                       ).status_code == 403
    assert arbiter.put("/uss_availability/downuss", {"availability": "Down",
                                                     "old_version": "nope"}).status_code == 409
    r = arbiter.put("/uss_availability/downuss", {"availability": "Down"})
    assert r.status_code == 200 and r.json()["status"]["availability"] == "Down"
    blocked = planner.create(intent(volume(x, y)))
    assert blocked.status_code == 412, blocked.text
    assert arbiter.put("/uss_availability/downuss", {
        "availability": "Sideways", "old_version": r.json()["version"]}).status_code == 400
    back = arbiter.put("/uss_availability/downuss", {"availability": "Normal",
                                                     "old_version": r.json()["version"]})
    assert back.status_code == 200
    made = planner.create(intent(volume(x, y)))
    assert made.status_code == 201
    assert made.json()["operational_intent_reference"]["uss_availability"] == "Normal"


def test_reports_are_kept(uss1) -> None:
    report = {"exchange": {"url": "https://uss2.example/uss/v1/x", "method": "GET",
                           "recorder_role": "Client",
                           "request_time": iso(datetime.now(UTC)),
                           "problem": "timed out"}}
    r = uss1.http.post("/reports", json=report)
    assert r.status_code == 201, r.text
    assert uuid.UUID(r.json()["report_id"]) and r.json()["exchange"]["problem"] == "timed out"
    assert uss1.http.post("/reports", json={"nothing": 1}).status_code == 400


class _KeySet:
    """The authority's published keys (JWKS) on a loopback port; counts fetches."""

    def __init__(self) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps({"keys": [
                    {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())),
                     "kid": kid, "use": "sig", "alg": "RS256"}
                    for kid, k in outer.keys.items()]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_tokens_verified_against_the_authoritys_published_key_set(tmp_path) -> None:
    """--dss-jwks: keys come from the authority's JWKS, a rotated-in key is fetched when
    a token first names it, an unpublished or mismatched key is refused, and a key set
    that cannot be fetched refuses new tokens with the reason."""
    published = _KeySet()
    published.keys["k1"] = KEY
    db = str(tmp_path / "jwks.db")
    store = open_store(db)
    store.initialise(Minima(Separation(500.0, 150.0, 300.0)))
    store.close()
    auth = DssAuth((), (AUD,), (ISS,), jwks_urls=(published.url,), jwks_cooldown_s=0.0)

    def signed(key: rsa.RSAPrivateKey, kid: str) -> str:
        now = int(time.time())
        return jwt.encode({"sub": "uss1", "aud": AUD, "iss": ISS, "exp": now + 600,
                           "iat": now, "scope": SC, "jti": str(uuid.uuid4())}, key,
                          algorithm="RS256", headers={"kid": kid})

    try:
        with serving(Settings(db=db, dss=auth)) as url, httpx.Client(
                base_url=url + "/dss/v1/operational_intent_references", timeout=30) as http:

            def status(tok: str) -> tuple[int, str]:
                r = http.get(f"/{uuid.uuid4()}", headers={"Authorization": f"Bearer {tok}"})
                return r.status_code, r.text

            first = signed(KEY, "k1")
            assert status(first)[0] == 404  # verified: only the intent is missing
            fetched = published.fetches
            assert fetched >= 1
            for _ in range(3):
                assert status(first)[0] == 404
            assert published.fetches == fetched  # a verified token is remembered

            code, text = status(signed(OTHER_KEY, "k2"))  # not published (yet)
            assert code == 401 and "no key" in text
            published.keys["k2"] = OTHER_KEY  # the authority rotates a key in
            assert status(signed(OTHER_KEY, "k2"))[0] == 404
            code, text = status(signed(OTHER_KEY, "k1"))  # k1's name, another key
            assert code == 401 and "signature" in text

            published.stop()
            code, text = status(signed(KEY, "k3"))
            assert code == 401 and "could not be fetched" in text
            assert status(first)[0] == 404  # (remembered)
    finally:
        published.stop()
    # A PEM key besides the set: its tokens verify without the set (down here).
    both = DssAuth((KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode(),), (AUD,), (ISS,), jwks_urls=(published.url,), jwks_cooldown_s=0.0)
    assert both.verify(signed(KEY, "k9")).manager == "uss1"
    with pytest.raises(Unauthorized, match="could not be fetched"):
        both.verify(signed(OTHER_KEY, "k9"))
    with pytest.raises(InputError, match="JWKS"):
        DssAuth((), (AUD,), jwks_urls=("file:///etc/keys.json",))
