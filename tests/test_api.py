"""The HTTP API against a real server on a loopback port: auth, errors, need-to-know."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from detente.api import Settings
from detente.core.minima import Minima, Separation
from detente.service.parties import Parties
from detente.store import open_store

from .conftest import BACKENDS, serving

T0, T1 = "2030-06-01T07:00:00Z", "2030-06-01T09:00:00Z"


def square(x: float, y: float, d: float = 0.1) -> dict[str, Any]:
    return {"type": "Polygon",
            "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]}


def activity(ext_id: str, *squares: tuple[float, float], **extra: Any) -> dict[str, Any]:
    return {"id": ext_id, "kind": "aircraft", "notes": f"notes of {ext_id}",
            "volumes": [{"id": f"{ext_id}-v{k}", "geometry": square(x, y),
                         "alt_lower_m": 0, "alt_upper_m": 1000, "time_start": T0,
                         "time_end": T1} for k, (x, y) in enumerate(squares)], **extra}


@pytest.fixture(scope="module", params=BACKENDS)
def server(request, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A server on each backend in turn: the API's answers must not depend on it."""
    db = (str(tmp_path_factory.mktemp("api") / "api.db") if request.param == "sqlite"
          else request.getfixturevalue("pg_cluster").database())
    store = open_store(db)
    store.initialise(Minima(Separation(500.0, 150.0, 300.0)))
    parties = Parties(store)
    tokens = {"admin": parties.admin_token()}
    for name in ("A", "B", "C"):
        tokens[name] = parties.add(name, contact=f"cell of {name}")[1]
    store.close()
    with serving(Settings(db=db, max_body_bytes=200_000)) as url:
        yield {"url": url, "tokens": tokens}


def client(server: dict[str, Any], who: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server['tokens'][who]}"} if who else {}
    return httpx.Client(base_url=server["url"] + "/v1", headers=headers, timeout=30)


def read_pages(http: httpx.Client, path: str, params: dict[str, Any]
               ) -> list[list[dict[str, Any]]]:
    """A paged listing, page by page, following each page's Link rel=next."""
    out = []
    r = http.get(path, params=params)
    while True:
        assert r.status_code == 200, r.text
        out.append(r.json())
        if "next" not in r.links:
            return out
        r = http.get(r.links["next"]["url"])


@pytest.fixture(scope="module")
def world(server) -> dict[str, Any]:
    """A's activity conflicts with B's; C's is far away; A has a zone."""
    a, b, c = (client(server, p) for p in "ABC")
    r = a.post("/activities", json=activity("a-1", (13.1, 11.8), (20.0, 5.0)))
    assert r.status_code == 201, r.text
    r = b.post("/activities", json=activity("b-1", (13.15, 11.85), (-40.0, 5.0),
                                            contact="B ops desk"))
    assert r.status_code == 201, r.text
    assert len(r.json()["conflicts"]) == 1
    caused = r.json()["conflicts"][0]
    assert caused["counterpart_party"] == "A" and caused["activity"] == "b-1"
    assert "a-1" not in str(r.json())  # A's ids stay A's
    r = c.post("/activities", json=activity("c-1", (50.0, 50.0)))
    assert r.status_code == 201, r.text
    zone = {"id": "a-zone", "restriction": "notify",
            "volumes": activity("z", (30.0, 30.0))["volumes"]}
    assert a.post("/zones", json=zone).status_code == 201
    conflict_id = a.get("/conflicts").json()[0]["id"]
    return {"conflict": conflict_id}


def test_conflict_shows_only_the_counterparts_conflicting_volumes(server, world) -> None:
    a = client(server, "A")
    r = a.get(f"/conflicts/{world['conflict']}")
    assert r.status_code == 200
    doc = r.json()
    cp = doc["counterpart"]
    assert cp["party"] == "B" and cp["contact"] == "B ops desk" and cp["kind"] == "aircraft"
    assert len(cp["volumes"]) == 1  # b-1's far volume stays hidden
    assert cp["volumes"][0]["geometry"]["coordinates"][0][0] == [13.15, 11.85]
    text = r.text
    for hidden in ("notes of b-1", "b-1-v1", "b-1-v0", "-40.0", '"b-1"'):
        assert hidden not in text, hidden
    assert doc["pairs"][0]["own_volume"] == "a-1-v0"


# Every endpoint and method that takes an object of A's, as B (not visible to B: 404).
ISOLATION = [
    ("GET", "/activities/a-1", None),
    ("PUT", "/activities/a-1", "replace"),
    ("POST", "/activities/a-1/state", "state"),
    ("DELETE", "/activities/a-1", None),
    ("GET", "/zones/a-zone", None),
    ("DELETE", "/zones/a-zone", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ISOLATION)
def test_another_partys_objects_answer_404_and_stay_unchanged(server, world, method, path,
                                                              body) -> None:
    a, b = client(server, "A"), client(server, "B")
    view = path.removesuffix("/state")  # what A reads back to see nothing changed
    before = a.get(view).json() if method != "GET" else None
    assert before is None or before["id"] in ("a-1", "a-zone")
    payload = None
    headers = {}
    if body == "replace":
        payload = activity("a-1", (0.0, 0.0))
        headers["If-Match"] = '"1"'
    elif body == "state":
        payload = {"state": "active"}
    r = b.request(method, path, json=payload, headers=headers)
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    # Indistinguishable from an id that exists nowhere.
    ghost_path = path.replace("a-1", "ghost").replace("a-zone", "ghost")
    ghost_payload = dict(payload, id="ghost") if body == "replace" else payload
    ghost = b.request(method, ghost_path, json=ghost_payload, headers=headers)
    assert ghost.status_code == 404
    assert r.json()["detail"].replace("a-1", "ghost").replace("a-zone", "ghost") \
        == ghost.json()["detail"]
    if before is not None:
        assert a.get(view).json() == before


# Admin routes as a party: legitimately visible, not allowed (403), and nothing changes.
ADMIN_ONLY = [
    ("GET", "/parties", None),
    ("POST", "/parties", {"name": "Zulu"}),
    ("POST", "/parties/A/token", None),
    ("DELETE", "/parties/A/token", None),
    ("PUT", "/minima", {"default": {"horizontal_m": 1.0}}),
]


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ONLY)
def test_admin_routes_refuse_parties_and_change_nothing(server, world, method, path,
                                                        body) -> None:
    a, b, admin = client(server, "A"), client(server, "B"), client(server, "admin")
    parties, minima = admin.get("/parties").json(), a.get("/minima").json()
    r = b.request(method, path, json=body)
    assert r.status_code == 403 and r.json()["type"].endswith("/forbidden")
    assert admin.get("/parties").json() == parties and a.get("/minima").json() == minima
    assert a.get("/activities").status_code == 200  # A's token was not revoked


def test_a_third_party_never_sees_the_conflict(server, world) -> None:
    c = client(server, "C")
    assert c.get("/conflicts").json() == []
    assert c.get(f"/conflicts/{world['conflict']}").status_code == 404
    assert c.get(f"/conflicts/{10**30}").status_code == 404  # beyond SQLite's integers
    assert c.get("/activities").json()[0]["id"] == "c-1"
    assert [x["id"] for x in c.get("/activities").json()] == ["c-1"]


def test_airspace_shows_own_plans_applicable_zones_and_counterparts(server, world) -> None:
    a, b = client(server, "A"), client(server, "B")
    roles = {}
    for f in b.get("/airspace").json()["features"]:
        roles.setdefault(f["properties"]["role"], []).append(f)
    assert len(roles["own-activity"]) == 2  # b-1's two volumes
    assert [z["properties"]["zone"] for z in roles["zone"]] == ["a-zone"]
    assert [c["properties"]["party"] for c in roles["counterpart"]] == ["A"]
    assert "notes" not in str(roles["counterpart"]) and "a-1-v1" not in str(roles)
    near = b.get("/airspace", params={"bbox": "13.0,11.7,13.3,12.0"}).json()["features"]
    assert {f["properties"]["role"] for f in near} == {"own-activity", "counterpart"}
    later = b.get("/airspace", params={"start": "2030-06-02T00:00:00Z"}).json()
    assert later["features"] == []
    assert a.get("/airspace", params={"bbox": "1,2,3"}).status_code == 422
    # A's own zone is its own, not one that applies to it
    assert {f["properties"]["role"] for f in a.get("/airspace").json()["features"]} == {
        "own-activity", "own-zone", "counterpart"}


def test_conflicts_filter_by_area_and_time(server, world) -> None:
    a = client(server, "A")
    assert len(a.get("/conflicts", params={"bbox": "13.0,11.7,13.3,12.0"}).json()) == 1
    assert a.get("/conflicts", params={"bbox": "100,10,101,11"}).json() == []
    assert a.get("/conflicts", params={"end": "2030-06-01T06:00:00Z"}).json() == []
    assert len(a.get("/conflicts", params={"start": "2030-06-01T08:00:00Z",
                                           "status": "open"}).json()) == 1


def test_activity_state_moves_forward_only(server) -> None:
    c = client(server, "C")
    assert c.post("/activities", json=activity("c-s", (80.0, 60.0))).status_code == 201
    r = c.post("/activities/c-s/state", json={"state": "active"})
    assert r.status_code == 200 and r.json()["version"] == 2
    assert c.get("/activities/c-s").json()["state"] == "active"
    assert c.post("/activities/c-s/state", json={"state": "planned"}).status_code == 422
    assert c.post("/activities/c-s/state", json={"state": "ended"}).status_code == 200


def test_lists_hold_only_the_callers_own(server, world) -> None:
    b = client(server, "B")
    assert [x["id"] for x in b.get("/activities").json()] == ["b-1"]
    assert b.get("/zones").json() == []
    assert [x["counterpart_party"] for x in b.get("/conflicts").json()] == ["A"]


@pytest.mark.parametrize("who", [None, "bogus"])
def test_missing_or_wrong_token_is_401(server, world, who) -> None:
    headers = {"Authorization": "Bearer dt_nope"} if who == "bogus" else {}
    r = httpx.get(server["url"] + "/v1/activities", headers=headers)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert r.json()["status"] == 401


def test_admin_manages_parties_and_tokens(server) -> None:
    admin, a = client(server, "admin"), client(server, "A")
    assert a.post("/parties", json={"name": "X"}).status_code == 403
    r = admin.post("/parties", json={"name": "Delta", "contact": "d"})
    assert r.status_code == 201
    token = r.json()["token"]
    assert len(token) > 40 and token.startswith("dt_")
    d = httpx.Client(base_url=server["url"] + "/v1",
                     headers={"Authorization": f"Bearer {token}"})
    assert d.get("/activities").status_code == 200
    assert admin.post("/parties", json={"name": "Delta"}).status_code == 409
    new = admin.post("/parties/Delta/token").json()["token"]
    assert d.get("/activities").status_code == 401  # rotated away
    d.headers["Authorization"] = f"Bearer {new}"
    assert d.get("/activities").status_code == 200
    assert admin.delete("/parties/Delta/token").json()["revoked"] == 1
    assert d.get("/activities").status_code == 401
    assert admin.get("/activities").status_code == 403  # the admin declares nothing
    names = [p["name"] for p in admin.get("/parties").json()]
    assert names == sorted(names) and "Delta" in names


def test_replace_needs_the_current_version(server) -> None:
    a = client(server, "A")
    assert a.post("/activities", json=activity("a-2", (60.0, 10.0))).status_code == 201
    body = activity("a-2", (60.0, 10.5))
    assert a.put("/activities/a-2", json=body).status_code == 428
    assert a.put("/activities/a-2", json=body, headers={"If-Match": '"5"'}).status_code == 412
    r = a.put("/activities/a-2", json=body, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.headers["etag"] == '"2"'
    stale = dict(body, version=1)
    assert a.put("/activities/a-2", json=stale).status_code == 412
    assert a.post("/activities", json=body).status_code == 409  # create over a live one
    assert a.get("/activities/a-2").json()["volumes"][0]["geometry"]["coordinates"][0][0] \
        == [60.0, 10.5]


def test_bad_input_names_the_field_and_changes_nothing(server) -> None:
    a = client(server, "A")
    before = a.get("/activities").json()
    bad = activity("a-bad", (0.0, 0.0))
    bad["volumes"][0]["time_end"] = "2030-06-01T09:00:00"  # no offset
    r = a.post("/activities", json=bad)
    assert r.status_code == 422
    err = r.json()["errors"][0]
    assert err["pointer"] == "/volumes/0/time_end" and "offset" in err["reason"]
    wrong_type = copy.deepcopy(activity("a-bad", (0.0, 0.0)))
    wrong_type["volumes"][0]["alt_lower_m"] = "low"
    r = a.post("/activities", json=wrong_type)
    assert r.status_code == 422
    assert r.json()["errors"][0]["pointer"] == "/volumes/0/alt_lower_m"
    wide = activity("a-bad", (0.0, 0.0))
    wide["volumes"][0]["geometry"] = square(0.0, 0.0, 20.0)
    r = a.post("/activities", json=wide)
    assert r.status_code == 422 and "1000 km" in r.json()["detail"]
    r = a.post("/activities", content=b"{not json", headers={"content-type":
                                                               "application/json"})
    assert r.status_code == 422
    # NUL characters: PostgreSQL text cannot hold them, so no backend takes them.
    r = a.post("/activities", json=activity("a-\u0000bad", (0.0, 0.0)))
    assert r.status_code == 422 and "NUL" in r.json()["detail"]
    assert a.get("/activities/a%00bad").status_code == 422
    assert a.get("/activities").json() == before


def test_bodies_over_the_limit_are_413(server) -> None:
    a = client(server, "A")
    many = activity("big", *[(float(k % 90), 0.0) for k in range(1500)])
    r = a.post("/activities", json=many)
    assert r.status_code == 413 and r.json()["status"] == 413


def test_openapi_and_docs_are_served(server) -> None:
    doc = httpx.get(server["url"] + "/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    assert "/v1/activities/{activity_id}" in doc["paths"]
    assert httpx.get(server["url"] + "/docs").status_code == 200


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/v1", 404), ("GET", "/v1x/conflicts", 404), ("GET", "/nowhere", 404),
    ("GET", "/v1/conflicts/", 307), ("GET", "/dss/v1", 307),
    ("DELETE", "/v1/conflicts", 405), ("POST", "/v1/activities/", 405),
    ("PATCH", "/dss/v1/operational_intent_references/x", 405),
    ("GET", "/v1/activities/a/track", 401), ("GET", "/dss/v1/uss_availability/x", 401),
])
def test_each_path_finds_its_route_or_the_right_refusal(server, method, path, status) -> None:
    """The routers under /v1 and /dss/v1 each turn away paths outside their prefix at
    once (GatedRouter): on their edges, paths answer as FastAPI routes them."""
    assert httpx.request(method, server["url"] + path).status_code == status


def test_python_client_mirrors_the_api_with_typed_errors(server, world) -> None:
    from detente.client import Client
    from detente.errors import InputError, NotFound, StaleVersion, Unauthorized

    with Client(server["url"], server["tokens"]["B"]) as b:
        made = b.create_activity(activity("b/2 x", (70.0, 20.0)))
        assert made["activity"]["version"] == 1
        assert b.activity("b/2 x")["id"] == "b/2 x"  # ids travel as one path segment
        with pytest.raises(StaleVersion):
            b.replace_activity("b/2 x", activity("b/2 x", (70.0, 20.1)), version=9)
        assert b.replace_activity("b/2 x", activity("b/2 x", (70.0, 20.1)),
                                  version=1)["activity"]["version"] == 2
        with pytest.raises(NotFound):
            b.activity("a-1")
        bad = activity("b-3", (0.0, 0.0))
        bad["volumes"][0]["alt_upper_m"] = -5
        with pytest.raises(InputError) as exc:
            b.create_activity(bad)
        assert exc.value.field == "volumes[0].alt_lower_m"
        assert [c["counterpart_party"] for c in b.conflicts(status="open")] == ["A"]
        assert b.minima()["default"]["horizontal_m"] == 500
        assert b.cancel_activity("b/2 x")["cancelled"] == "b/2 x"
    with Client(server["url"], "dt_wrong") as nobody, pytest.raises(Unauthorized):
        nobody.conflicts()


def test_demo_database_serves_every_party(tmp_path) -> None:
    from detente.demo import build

    made = build(str(tmp_path / "demo.db"))
    assert made.activities >= 24 and made.conflicts >= 5
    with serving(Settings(db=made.db)) as url, httpx.Client(base_url=url) as http:
        seen = 0
        for name, token in made.tokens.items():
            r = http.get("/v1/conflicts" if name != "admin" else "/v1/parties",
                         headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, (name, r.text)
            seen += len(r.json())
        assert seen >= made.conflicts  # each conflict is seen by both of its parties


SCHEMATHESIS_EXAMPLES = 20  # per operation


def test_openapi_conformance(server, world) -> None:
    """schemathesis over the OpenAPI document, as party C: no 5xx on any generated
    request; status codes, content types and bodies as documented. Not checked:
    that every schema-valid body is accepted: the schema states types, while rings,
    instants and the accuracy bounds are checked by the scenario reader (422)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    @schemathesis.serializer("application/x-ndjson")
    def ndjson(ctx: object, value: object) -> bytes:
        """The position feed: one JSON report per line."""
        lines = value if isinstance(value, list) else [value]
        return b"".join(json.dumps(v).encode() + b"\n" for v in lines)

    schema = schemathesis.openapi.from_url(server["url"] + "/openapi.json")
    headers = {"Authorization": f"Bearer {server['tokens']['C']}"}
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=SCHEMATHESIS_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(headers=headers,
                                   excluded_checks=[positive_data_acceptance])

        run()
    assert calls >= 10 * SCHEMATHESIS_EXAMPLES


def test_concurrent_submissions_all_land_and_see_each_other(server) -> None:
    """16 simultaneous requests from two parties at one spot: every one is stored, and
    every A-B pair is a conflict (no two submissions slip past each other)."""
    from concurrent.futures import ThreadPoolExecutor

    def submit(k: int) -> int:
        who = "A" if k % 2 else "B"
        with client(server, who) as http:
            return http.post("/activities", json=activity(f"race-{who}-{k}",
                                                          (-120.0, 40.0))).status_code

    with ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(submit, range(16)))
    assert codes == [201] * 16
    b = client(server, "B")
    race = [c for c in b.get("/conflicts").json() if c["activity"].startswith("race-")]
    assert len(race) == 8 * 8


def test_remote_cli_commands_use_the_server(server, world, tmp_path) -> None:
    """`detente remote ...` through the real console script, token from the environment."""
    import json
    import os
    import subprocess

    from .conftest import detente_exe

    env = {**os.environ, "DETENTE_URL": server["url"], "DETENTE_TOKEN": server["tokens"]["C"]}
    feats = [{"type": "Feature", "id": f"leg{k}", "geometry": square(13.12, 11.82),
              "properties": {"activity": "c-remote", "kind": "drone", "alt_lower_m": 0,
                             "alt_upper_m": 100, "time_start": T0, "time_end": T1}}
             for k in range(2)]
    path = tmp_path / "c.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": feats}))

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*detente_exe(), "remote", *args], env=env, text=True,
                              capture_output=True, timeout=60)

    made = run("submit", str(path), "--json")
    assert made.returncode == 0, made.stderr
    first = json.loads(made.stdout)[0]
    assert first["activity"]["version"] == 1 and first["conflicts"]  # meets A's and B's
    again = json.loads(run("submit", str(path), "--json").stdout)[0]
    assert again["activity"]["version"] == 2  # the second time replaces it
    listed = json.loads(run("conflicts", "--json").stdout)
    assert {c["counterpart_party"] for c in listed} >= {"A", "B"}
    one = json.loads(run("conflict", str(listed[0]["id"])).stdout)
    assert one["counterpart"]["volumes"]
    bad = run("conflicts", "--token", "dt_nope")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "token" in bad.stderr


def test_conflicts_come_in_pages_that_add_up_to_the_list(server) -> None:
    """With ``limit``, each page names the next in its Link header until the last; the
    pages add up to the unpaged list, windowed or not, and the client reads them all."""
    from detente.client import Client

    a, c = client(server, "A"), client(server, "C")
    assert c.post("/activities", json=activity("page-c", (-150.0, -60.0), (-160.0, -60.0))
                  ).status_code == 201
    for k in range(7):
        spot = (-150.0 + 0.01 * k, -60.0) if k < 5 else (-160.0 + 0.01 * k, -60.0)
        assert a.post("/activities", json=activity(f"page-a-{k}", spot)).status_code == 201

    def pages(params: dict[str, Any]) -> list[list[dict[str, Any]]]:
        return read_pages(c, "/conflicts", params)

    everything = c.get("/conflicts").json()  # (with those of earlier tests)
    n = len(everything)
    assert [x["activity"] for x in everything].count("page-c") == 7
    threes = pages({"limit": 3})
    assert [len(p) for p in threes] == [3] * (n // 3) + ([n % 3] if n % 3 else [])
    assert [x for p in threes for x in p] == everything
    assert pages({"limit": n}) == [everything]  # exactly a page: no next
    west = {"bbox": "-160.5,-60.5,-159.5,-59.5"}
    windowed = c.get("/conflicts", params=west).json()
    assert [x["counterpart_party"] for x in windowed] == ["A", "A"]
    assert pages({**west, "limit": 1}) == [[windowed[0]], [windowed[1]]]
    assert c.get("/conflicts", params={"after": everything[-1]["id"]}).json() == []
    assert c.get("/conflicts", params={"after": everything[n - 4]["id"], "limit": 2}
                 ).json() == everything[n - 3:n - 1]
    for bad in ({"limit": 0}, {"limit": 10_001}, {"after": -1}, {"limit": "x"}):
        r = c.get("/conflicts", params=bad)
        assert r.status_code == 422, bad
        assert [e["field"] for e in r.json()["errors"]] == list(bad)
    with Client(server["url"], server["tokens"]["C"]) as api:
        assert api.conflicts(page_size=2) == everything
        assert api.conflicts(bbox=(-160.5, -60.5, -159.5, -59.5), page_size=1) == windowed


def test_creates_arriving_together_each_get_their_own_answer(server) -> None:
    """Forty-two creates at once from two parties over one spot (the server combines
    those that wait together): each conflict is in exactly one answer, and the parties
    see them all in their lists; of the same id twice in the crowd, one is stored and
    the other refused; bad input fails its own caller alone."""
    import asyncio

    def body(ext_id: str, x: float) -> dict[str, Any]:
        return activity(ext_id, (x, -30.0))

    async def crowd() -> list[httpx.Response]:
        heads = {p: {"Authorization": f"Bearer {server['tokens'][p]}"} for p in "AB"}
        async with httpx.AsyncClient(base_url=server["url"] + "/v1", timeout=60) as http:
            bodies = [(p, body(f"crowd-{p}-{k}", -100.0 + 0.01 * k))
                      for k in range(20) for p in "AB"]
            bodies.append(("A", body("crowd-A-3", -90.0)))  # the same id again
            bodies.append(("B", {**body("crowd-B-bad", -100.0), "volumes": [
                {**body("x", 0.0)["volumes"][0], "alt_lower_m": 2000}]}))
            return list(await asyncio.gather(*(
                http.post("/activities", json=b, headers=heads[p]) for p, b in bodies)))

    answers = asyncio.run(crowd())
    codes = [r.status_code for r in answers]
    assert sorted(codes) == [201] * 40 + [409, 422]
    assert answers[-1].json()["errors"][0]["field"] == "volumes[0].alt_lower_m"
    twice = [answers[2 * 3], answers[40]]  # crowd-A-3 and its double
    assert sorted(r.status_code for r in twice) == [201, 409]
    won = next(r for r in twice if r.status_code == 201).json()["activity"]
    assert client(server, "A").get("/activities/crowd-A-3").json() == won
    counted: dict[int, int] = {}
    for r in answers:
        for c in r.json().get("conflicts", []) if r.status_code == 201 else []:
            counted[c["id"]] = counted.get(c["id"], 0) + 1
            theirs = client(server, c["counterpart_party"]).get(f"/conflicts/{c['id']}")
            assert theirs.json()["activity"].startswith("crowd-")
    assert counted and set(counted.values()) == {1}
    listed = {c["id"] for c in client(server, "A").get("/conflicts").json()
              if c["activity"].startswith("crowd-")}
    assert listed == set(counted)


def test_a_create_answers_the_activity_as_a_read_of_it_shows_it(server) -> None:
    """The answer to a create (built from what was submitted, when it went through
    with others) is what reading the activity back gives: volumes without ids, a
    circle, a hole, fractional seconds, a footprint across the antimeridian."""
    import asyncio

    holed = {"type": "Polygon", "coordinates": [
        [[60.0, -40.0], [61.0, -40.0], [61.0, -39.0], [60.0, -39.0], [60.0, -40.0]],
        [[60.2, -39.8], [60.4, -39.8], [60.4, -39.6], [60.2, -39.8]]]}
    across = {"type": "Polygon", "coordinates": [
        [[179.9, -41.0], [-179.9, -41.0], [-179.9, -40.8], [179.9, -40.8], [179.9, -41.0]]]}
    spots = [{"geometry": holed}, {"geometry": across},
             {"geometry": {"type": "Point", "coordinates": [62.0, -40.0]}, "radius_m": 2500.5},
             {"geometry": square(63.0, -40.0), "time_start": "2030-06-01T07:00:00.125+02:00"}]
    bodies = [{"id": f"as-read-{k}", "kind": "convoy", "contact": "desk" if k else None,
               "volumes": [{"alt_lower_m": 10.5, "alt_upper_m": 99, "time_start": T0,
                            "time_end": T1, **spot}]} for k, spot in enumerate(spots)]

    async def post_all() -> list[httpx.Response]:
        heads = {"Authorization": f"Bearer {server['tokens']['C']}"}
        async with httpx.AsyncClient(base_url=server["url"] + "/v1", timeout=60) as http:
            return list(await asyncio.gather(*(http.post("/activities", json=b, headers=heads)
                                               for b in bodies)))

    c = client(server, "C")
    for body, r in zip(bodies, asyncio.run(post_all()), strict=True):
        assert r.status_code == 201, r.text
        assert r.json()["activity"] == c.get(f"/activities/{body['id']}").json()
        assert r.headers["ETag"] == '"1"'


def test_activities_and_zones_come_in_pages(server) -> None:
    """With ``limit``, the caller's activities (and zones) come in pages in the order
    declared, each naming the next, adding up to the unpaged list without the cancelled
    ones; ``after`` may name a cancelled one, but not one the caller lacks (422, the
    same for another party's as for none); the client reads every page."""
    from detente.client import Client

    b = client(server, "B")
    for k in range(5):
        assert b.post("/activities", json=activity(f"paged-b-{k}", (-120.0 + k, 70.0))
                      ).status_code == 201
    assert b.delete("/activities/paged-b-2").status_code == 200
    for k in range(3):
        zone = {"id": f"paged-zone-{k}", "restriction": "notify",
                "volumes": activity("z", (-110.0 + k, 70.0))["volumes"]}
        assert b.post("/zones", json=zone).status_code == 201

    def pages(path: str, params: dict[str, Any]) -> list[list[dict[str, Any]]]:
        return read_pages(b, path, params)

    for path in ("/activities", "/zones"):
        everything = b.get(path).json()
        twos = pages(path, {"limit": 2})
        assert [x for p in twos for x in p] == everything
        assert [len(p) for p in twos[:-1]] == [2] * (len(twos) - 1)
        assert pages(path, {"limit": len(everything)}) == [everything]
    ids = [x["id"] for x in b.get("/activities").json()]
    assert "paged-b-2" not in ids and ids[-4:] == ["paged-b-0", "paged-b-1", "paged-b-3",
                                                   "paged-b-4"]
    assert [x["id"] for x in b.get("/activities", params={"after": "paged-b-2"}).json()
            ] == ["paged-b-3", "paged-b-4"]
    for bad in ({"after": "no-such"}, {"after": "a-1"}, {"limit": 0}):
        r = b.get("/activities", params=bad)
        assert r.status_code == 422, bad
        assert [e["field"] for e in r.json()["errors"]] == list(bad)
    with Client(server["url"], server["tokens"]["B"]) as api:
        assert api.activities(page_size=2) == b.get("/activities").json()
        assert api.zones(page_size=1) == b.get("/zones").json()


def test_a_token_past_its_rate_answers_429_and_others_go_on(tmp_path) -> None:
    """--rate-limit: one token's burst is spent, its next request answers 429 with
    Retry-After (in the F3548 shape under /dss/), another party's token is unaffected,
    and the spent token is served again once its bucket refills."""
    from .receiver import wait_for

    db = str(tmp_path / "rate.db")
    store = open_store(db)
    store.initialise(Minima(Separation(500.0, 150.0, 300.0)))
    parties = Parties(store)
    tokens = {name: parties.add(name)[1] for name in ("A", "B")}
    store.close()
    # A slow refill (one request each 5 s): the 6 requests of a burst never earn a
    # token back while they run, however slow the machine (at 5 a second, a stall of
    # 0.2 s in a loaded CI run did, and the 429 came one request late).
    with serving(Settings(db=db, rate_per_s=0.2, rate_burst=5.0)) as url:
        w = {"url": url, "tokens": tokens}
        with client(w, "A") as a, client(w, "B") as b:
            statuses = [a.get("/activities").status_code for _ in range(5)]
            assert statuses == [200] * 5
            r = a.get("/activities")
            assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["type"].endswith("/too-many-requests")
            assert b.get("/activities").status_code == 200  # B's own bucket
            wait_for(lambda: a.get("/activities").status_code == 200, what="A served again")
        with httpx.Client(base_url=url, timeout=30,
                          headers={"Authorization": "Bearer not-a-jwt"}) as uss:
            path = "/dss/v1/operational_intent_references/query"
            seen = [uss.post(path, json={}) for _ in range(6)]
            assert [r.status_code for r in seen] == [401] * 5 + [429]  # counted before auth
            assert "requests a second" in seen[5].json()["message"]  # F3548's ErrorResponse
