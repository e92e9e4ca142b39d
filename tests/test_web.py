"""The web map in a real browser (Debian's Chromium, headless, driven by Playwright)
against a real server: party A draws an activity over B's; B sees the conflict arrive
live, acknowledges and replies on the hotline; A sees the reply, then moves its
activity away and B's conflict goes. Screenshots go to
``test-artifacts/``. Never skipped: without Chromium the test fails and says why."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from detente.api import Settings
from detente.client import Client

from .conftest import serving
from .test_api import activity
from .test_dialogue import FAST, make_db

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM), (
        f"no Chromium at {CHROMIUM}: 'apt-get install -y chromium' (scripts/test does it)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield b
        b.close()


@pytest.fixture
def site(tmp_path) -> Iterator[dict[str, Any]]:
    db = str(tmp_path / "web.db")
    tokens = make_db(db)
    with serving(Settings(**{**FAST.__dict__, "db": db})) as url:
        yield {"url": url, "tokens": tokens}


def sign_in(page: Any, site: dict[str, Any], who: str) -> None:
    page.goto(site["url"] + "/")
    page.get_by_label("Your party's API token").fill(site["tokens"][who])
    page.get_by_role("button", name="Sign in").click()
    page.locator("#who").filter(has_text=f"Signed in as {who}").wait_for()


def click_map(page: Any, lon: float, lat: float) -> None:
    x, y = page.evaluate("([lat, lon]) => { const p = window.detente.map.map"
                         ".latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }",
                         [lat, lon])
    page.locator("#map").click(position={"x": x, "y": y})


def test_draw_conflict_acknowledge_and_talk_live(browser, site) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    with Client(site["url"], site["tokens"]["B"]) as b_api:
        b_api.create_activity(activity("b-patrol", (13.1, 11.8)))  # 13.1-13.2 E, 11.8-11.9 N
        orbit = activity("b-orbit", (15.0, 11.0))
        orbit["volumes"][0].update(geometry={"type": "Point", "coordinates": [15.0, 11.0]},
                                   radius_m=2000)
        b_api.create_activity(orbit)  # a circle: drawn and fitted like the rest
    a = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    b = browser.new_context(viewport={"width": 400, "height": 800}).new_page()
    errors: list[str] = []
    for page in (a, b):
        page.on("pageerror", lambda e: errors.append(str(e)))
        # (a 422 the test provokes is logged as a failed load: not a script error)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error"
                and "Failed to load resource" not in m.text else None)
    sign_in(b, site, "B")
    b.locator("#conflicts").filter(has_text="No live conflicts").wait_for()
    sign_in(a, site, "A")

    # Every control has a label.
    unlabelled = a.evaluate("""() => [...document.querySelectorAll('input, textarea, select')]
        .filter(el => !el.labels.length && !el.closest('label')).map(el => el.id)""")
    assert unlabelled == []

    # A draws a polygon over B's patrol: the map shows B's nothing yet (need-to-know).
    a.evaluate("() => window.detente.map.map.setView([11.85, 13.15], 10)")
    a.get_by_label("Activity id").fill("a-convoy")
    a.get_by_label("Kind").fill("convoy")
    a.get_by_role("button", name="Draw a polygon").click()
    for lon, lat in [(13.12, 11.82), (13.18, 11.82), (13.18, 11.88), (13.12, 11.88)]:
        click_map(a, lon, lat)
    a.get_by_role("button", name="Finish the polygon").click()
    assert len(a.get_by_label("Corners").input_value().strip().splitlines()) == 4
    a.get_by_label("Lowest altitude (m)").fill("0")
    a.get_by_label("Highest altitude (m)").fill("300")
    a.get_by_label("Start (UTC)").fill("2030-06-01T08:00")
    # A mistake first: the end before the start is named next to its field.
    a.get_by_label("End (UTC)").fill("2030-06-01T07:00")
    a.get_by_role("button", name="Declare").click()
    a.locator("#err-time_end").filter(has_text="after").wait_for()
    assert a.locator("#f-end").get_attribute("aria-invalid") == "true"
    a.get_by_label("End (UTC)").fill("2030-06-01T10:00")
    a.get_by_role("button", name="Declare").click()
    a.get_by_role("status").filter(has_text="Declared a-convoy: 1 conflict.").wait_for()
    a.locator("button.conflict").first.wait_for()
    a.screenshot(path=str(ARTIFACTS / "web-a-declared.png"))

    # B sees it arrive without reloading, opens it, acknowledges, replies.
    b.locator("button.conflict").filter(has_text="b-patrol \u00d7 A").click()
    b.locator("#detail-title").filter(has_text="b-patrol \u00d7 A").wait_for()
    assert b.locator("#gaps tbody tr").count() == 1
    b.get_by_role("button", name="Acknowledge", exact=True).click()
    b.locator("#facts").filter(has_text="Acknowledged by").filter(has_text="B").wait_for()
    b.get_by_label("Message to the other party").fill("B here: we hold south of 11.8 until 10:00Z")
    b.get_by_role("button", name="Send", exact=True).click()
    b.locator("#messages li").filter(has_text="hold south").wait_for()
    b.screenshot(path=str(ARTIFACTS / "web-b-narrow-conflict.png"), full_page=True)

    # A opens the conflict and sees B's reply; a reply after that arrives live.
    a.locator("button.conflict").first.click()
    a.locator("#messages li").filter(has_text="hold south").wait_for()
    assert "B" in a.locator("#facts").inner_text()
    b.get_by_label("Message to the other party").fill("Second thought: 09:30Z")
    b.get_by_role("button", name="Send", exact=True).click()
    a.locator("#messages li").filter(has_text="Second thought").wait_for()
    a.screenshot(path=str(ARTIFACTS / "web-a-inbox-hotline.png"))

    # A moves the convoy away (changing it on the map's form): B's conflict goes, live.
    a.get_by_label("Or change one of mine").select_option("a-convoy")
    expect(a.get_by_label("Activity id")).to_have_value("a-convoy")
    expect(a.get_by_role("button", name="Save changes")).to_be_visible()
    a.get_by_label("Corners").fill("14.0, 11.0\n14.05, 11.0\n14.05, 11.05")
    a.get_by_role("button", name="Save changes").click()
    a.get_by_role("status").filter(has_text="Saved a-convoy: 0 conflicts.").wait_for()
    b.locator("#conflicts").filter(has_text="No live conflicts").wait_for()

    # The time slider hides what is not active at the chosen moment.
    a.get_by_label("At any time").uncheck()
    a.get_by_label("Moment (UTC)").fill("0")
    assert a.locator("#time-label").inner_text() != "any time"

    assert errors == []  # nothing went wrong in either page's script

    # Signing out forgets the token.
    a.get_by_role("button", name="Sign out").click()
    a.get_by_label("Your party's API token").wait_for()
    assert a.evaluate("() => sessionStorage.length") == 0


def test_a_page_follows_from_sign_in_without_replaying_the_history(browser, site) -> None:
    """A party's event history can be long; a page loads the current state itself, so
    its stream starts at the newest event and only what happens after comes in."""
    with (Client(site["url"], site["tokens"]["A"]) as a_api,
          Client(site["url"], site["tokens"]["B"]) as b_api):
        a_api.create_activity(activity("a-1", (13.1, 11.8)))
        cid = b_api.create_activity(activity("b-1", (13.15, 11.85)))["conflicts"][0]["id"]
        for k in range(3):
            b_api.send(f"before sign-in {k}", conflict_id=cid)
        history = [e["id"] for e in a_api.events()]
        assert len(history) == 4 and a_api.newest_event() == history[-1]
        page = browser.new_context().new_page()
        sign_in(page, site, "A")
        page.locator("button.conflict").first.wait_for()  # the state is there
        b_api.send("after sign-in", conflict_id=cid)
        new = a_api.events(after=history[-1])
        assert [e["type"] for e in new] == ["message.created"]
        page.wait_for_function("() => window.detente.seen.length > 0")
        assert page.evaluate("() => window.detente.seen") == [new[0]["id"]]


def test_live_positions_on_the_map(browser, site) -> None:
    """A's patrol reports positions, the last one inside B's red line: A's map shows its
    patrol (nonconforming, orange); B's shows it too while it is in B's red line, and
    not once it has left."""
    from .test_positions import fix, now_ns, plan

    a_api = Client(site["url"], site["tokens"]["A"])
    b_api = Client(site["url"], site["tokens"]["B"])
    b_api.create_zone({"id": "no-go", "restriction": "notify", "volumes": plan(
        "z", 13.40, 11.80, half=0.02)["volumes"]})
    a_api.create_activity(plan("patrol-9", 13.30, 11.80))
    t = now_ns() - 5 * 10**9
    a_api.report_positions([fix("patrol-9", 13.30, 11.80, t),
                            fix("patrol-9", 13.40, 11.80, t + 10**9)])
    pages = {}
    for who in ("A", "B"):
        pages[who] = browser.new_page()
        sign_in(pages[who], site, who)
    live = "() => window.detente.map.live.map(f => [f.properties.role, f.properties.status])"
    pages["A"].wait_for_function("() => (window.detente.map.live || []).length === 1")
    assert pages["A"].evaluate(live) == [["own-position", "nonconforming"]]
    pages["B"].wait_for_function("() => (window.detente.map.live || []).length === 1")
    assert pages["B"].evaluate(live) == [["counterpart-position", None]]
    assert pages["B"].evaluate("() => window.detente.map.layers.live.getLayers().length") == 1
    pages["B"].screenshot(path=str(ARTIFACTS / "web-b-live-crossing.png"))
    a_api.report_positions([fix("patrol-9", 13.30, 11.80, t + 2 * 10**9)])  # out of it
    pages["B"].wait_for_function("() => window.detente.map.live.length === 0")
    pages["A"].wait_for_function(
        "() => window.detente.map.live[0].properties.status === 'conforming'")
    a_api.close()
    b_api.close()
