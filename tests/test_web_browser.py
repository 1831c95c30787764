"""The web app in Debian's Chromium (headless) through a real server: each role
sees only what it may; leads filter and open; the model editor shows an
error at its line, previews a backtest and activates; admins create keys.
Expected numbers come from the pure engine's replay of the same events.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from leadscore import parse_model, replay
from leadscore._engine import Engine, Scorecard
from leadscore._store.activation import latest_activation
from leadscore._store.database import now
from leadscore._store.users import Role

from ._browser import AXE, MODEL, PASSWORD, Site, axe_violations, shoot, sign_in, site


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with site(tmp_path_factory.mktemp("web")) as started:
        yield started


def ranked(document: str, site: Site) -> list[Scorecard]:
    """The contacts by score as the engine's replay has them now."""
    cards = replay(Engine(parse_model(document)), site.events, now()).scorecards
    return sorted(cards, key=lambda c: (-c.score, c.contact_id or ""))


def listed(page: Any) -> list[tuple[str, float]]:
    rows = page.locator("table.leads tbody tr")
    out = []
    for i in range(rows.count()):
        cells = rows.nth(i).locator("td")
        contact = cells.nth(0).locator("a").inner_text()
        out.append((contact, float(cells.nth(1).inner_text())))
    return out


NAV = {"Leads", "Model", "Reports", "API keys", "Users", "Webhooks"}
ALLOWED = {
    Role.SALES: {"Leads"},
    Role.MARKETER: {"Leads", "Model", "Reports"},
    Role.ADMIN: NAV,
}
PAGES = {"/models": Role.MARKETER, "/reports": Role.MARKETER, "/settings/keys": Role.ADMIN,
         "/settings/users": Role.ADMIN, "/settings/webhooks": Role.ADMIN}  # fmt: skip


@pytest.mark.parametrize("role", list(Role), ids=str)
def test_each_role_sees_only_what_it_may(web: Site, page: Any, role: Role) -> None:
    page.goto(web.base + "/reports")
    assert "/signin" in page.url  # signed out: every page asks to sign in first
    sign_in(page, web.base, web.users[role])
    # Back where it was going (for a sales rep, a page saying it is not for them).
    assert page.url.endswith("/reports")
    nav = page.get_by_role("navigation", name="Main")
    shown = {
        nav.get_by_role("link").nth(i).inner_text() for i in range(nav.get_by_role("link").count())
    }
    assert shown == ALLOWED[role]
    for path, needs in PAGES.items():
        response = page.goto(web.base + path)
        assert response is not None
        assert response.status == (200 if role.allows(needs) else 403), (role, path)
    page.goto(web.base + "/")
    shoot(page, f"leads-as-{role.value}")
    if role is Role.MARKETER:
        page.goto(web.base + "/reports?outcome=purchase")
        page.wait_for_function("document.getElementById('chart-pareto').toDataURL().length > 5000")
        # The numbers are the pure engine's: conversions among all contacts.
        cards = ranked(MODEL, web)
        won = {e.contact_id for e in web.events if e.type == "purchase"}
        assert (
            page.locator(".summary")
            .inner_text()
            .startswith(f"{len(cards)} contacts, {len(won)} with a purchase event")
        )
        shoot(page, "reports")
    if role is Role.SALES:
        page.set_viewport_size({"width": 390, "height": 844})
        shoot(page, "leads-phone")
    # Signing out ends the session on the server: the old cookie is worthless.
    cookie = next(c for c in page.context.cookies() if c["name"] == "ls_session")
    page.get_by_role("button", name="Sign out").click()
    assert "/signin" in page.url
    with httpx.Client(base_url=web.base, trust_env=False) as http:
        http.cookies.set("ls_session", cookie["value"])
        again = http.get("/")
    assert again.status_code == 303


def test_filter_leads_and_open_a_contact(web: Site, page: Any) -> None:
    sign_in(page, web.base, web.users[Role.SALES])
    expected = ranked(MODEL, web)
    shown = listed(page)
    assert [c for c, _ in shown] == [c.contact_id for c in expected[: len(shown)]]
    for (_, score), card in zip(shown, expected, strict=False):
        assert abs(score - card.score) <= 0.051
    page.get_by_label("Band").select_option("hot")
    page.get_by_label("Search").fill("Person")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    assert "band=hot" in page.url  # filters live in the URL
    assert "q=Person" in page.url
    hot = [c.contact_id for c in expected if c.band == "hot"]
    assert [c for c, _ in listed(page)] == hot
    assert page.get_by_label("Band").input_value() == "hot"  # and survive a reload
    shoot(page, "leads-filtered")
    first = hot[0]
    page.get_by_role("link", name=first, exact=True).click()
    page.wait_for_load_state()
    card = next(c for c in expected if c.contact_id == first)
    assert abs(float(page.locator("#score").inner_text()) - card.score) <= 0.051
    # Why: the rules' descriptions, not their YAML.
    assert page.get_by_text("Asked for a demo").first.is_visible()
    assert page.locator(".timeline > li").count() == sum(
        1 for e in web.events if e.contact_id == first
    )
    # The score chart was drawn (Chart.js paints the canvas).
    page.wait_for_function("document.getElementById('score-chart').toDataURL().length > 5000")
    shoot(page, "contact-card")
    page.set_viewport_size({"width": 390, "height": 844})
    shoot(page, "contact-card-phone")


def test_keyboard_only_sign_in_and_open_a_lead(web: Site, page: Any) -> None:
    page.goto(web.base + "/")
    # The e-mail field takes the focus (autofocus), which a loaded machine may
    # apply after the page's load event: typing before it would go nowhere.
    page.wait_for_function("document.activeElement && document.activeElement.id === 'email'")
    page.keyboard.type(web.users[Role.SALES])
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(web.base + "/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    first = ranked(MODEL, web)[0].contact_id
    for _ in range(40):  # through the filters to the first lead
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == first:
            break
    else:
        pytest.fail("the first lead cannot be reached with Tab")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{web.base}/contacts/{first}")


def _set_document(page: Any, text: str) -> None:
    page.evaluate("(text) => window.leadscoreEditor.setValue(text)", text)


def test_editor_error_at_its_line_then_preview_activate_and_reorder(web: Site, page: Any) -> None:
    sign_in(page, web.base, web.users[Role.MARKETER])
    page.goto(web.base + "/models")
    page.wait_for_function("window.leadscoreEditor !== undefined")
    page.locator("#status.ok").wait_for()
    lines = MODEL.splitlines()
    bad_line = next(i for i, line in enumerate(lines, start=1) if "per: day" in line)
    broken = MODEL.replace("per: day", "per: daily")
    _set_document(page, broken)
    issue = page.locator(f"#issues li[data-line='{bad_line}']")
    issue.wait_for()
    assert "rules[1].limit.per" in issue.inner_text()
    assert page.evaluate(f"window.leadscoreEditor.lineInfo({bad_line - 1}).bgClass") == (
        "cm-error-line"
    )
    assert page.locator("#activate").is_disabled()
    shoot(page, "editor-error")
    # Fixed: valid, and the diff shows the change.
    fixed = MODEL.replace("points: 5\n", "points: 25\n")
    _set_document(page, fixed)
    page.locator("#status.ok").wait_for()
    page.wait_for_function("document.getElementById('diff').textContent.includes('points: 25')")
    page.get_by_label("Conversion event").select_option("purchase")
    page.get_by_role("button", name="Run backtest").click()
    page.locator("#preview-result").wait_for()
    # Expected: the pure engine's replays under both models (the preview
    # scores with the batch engine), compared here.
    at = now()
    active = {c.contact_id: c for c in replay(parse_model(MODEL), web.events, at).scorecards}
    draft = {c.contact_id: c for c in replay(parse_model(fixed), web.events, at).scorecards}
    band_changes = sum(active[k].band != card.band for k, card in draft.items())
    stage_changes = sum(active[k].stage != card.stage for k, card in draft.items())
    assert int(page.locator("#band-changes").inner_text()) == band_changes > 0
    assert int(page.locator("#stage-changes").inner_text()) == stage_changes
    buyers = {e.contact_id for e in web.events if e.type == "purchase"}
    assert f"Ranking the {len(buyers):,} contacts" in page.locator("#ranking").inner_text()
    shoot(page, "editor-preview")
    page.get_by_role("button", name="Activate this model").click()
    page.get_by_text("is active").wait_for()
    # The bar followed the background rescore (the models API's activation)
    # to its end: every contact scored under the old version was rescored.
    with web.database.connect() as conn:
        started = latest_activation(conn, workspace=web.workspace)
    assert started is not None
    assert started.status == "done"
    assert started.total >= len({e.contact_id for e in web.events})
    assert started.rescored == started.total
    bar = page.locator("#activation-progress")
    assert float(bar.get_attribute("max") or 0) == started.total
    assert page.evaluate("document.getElementById('activation-progress').value") == started.total
    assert f"({started.total} contacts rescored)" in page.locator("#activation-status").inner_text()
    shoot(page, "editor-activated")
    page.goto(web.base + "/")
    before = [c.contact_id for c in ranked(MODEL, web)]
    after = [c.contact_id for c in ranked(fixed, web)]
    assert before[:50] != after[:50]  # the change re-orders the leads
    assert [c for c, _ in listed(page)] == after[: len(listed(page))]
    # Leave the workspace as the other tests expect it.
    page.goto(web.base + "/models")
    page.wait_for_function("window.leadscoreEditor !== undefined")
    _set_document(page, MODEL)
    page.locator("#status.ok").wait_for()
    page.get_by_role("button", name="Activate this model").click()
    page.get_by_text("is active").wait_for()


def test_an_admin_creates_and_revokes_a_key(web: Site, page: Any) -> None:
    sign_in(page, web.base, web.users[Role.ADMIN])
    page.goto(web.base + "/settings/keys")
    page.get_by_label("Scope").select_option("write")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("The key").input_value()
    assert key.startswith("lsk_")
    shoot(page, "key-created")
    event = {"id": "from-a-page", "type": "demo_request", "contact_id": "c999",
             "timestamp": "2026-01-01T00:00:00Z"}  # fmt: skip
    with httpx.Client(base_url=web.base, trust_env=False) as http:
        sent = http.post("/v1/events", json=event, headers={"Authorization": f"Bearer {key}"})
        assert sent.status_code == 200, sent.text
        page.reload()
        assert key not in page.content()  # shown once only
        key_id = key.removeprefix("lsk_")[:16]
        page.get_by_role("button", name=f"Revoke key {key_id}").click()
        page.wait_for_load_state()
        again = http.post("/v1/events", json=event, headers={"Authorization": f"Bearer {key}"})
        assert again.status_code == 401


EVERY_PAGE = ["/signin", "/", "/?band=hot", "/contacts/c000", "/models", "/reports",
              "/settings/keys", "/settings/users", "/settings/webhooks",
              "/nowhere-contact"]  # fmt: skip


def test_every_page_passes_axe(web: Site, page: Any) -> None:
    if not AXE.is_file():
        pytest.skip("axe-core is not installed: scripts/test runs npm ci")
    found: dict[str, list[str]] = {}
    for path in EVERY_PAGE:
        if path == "/":  # the sign-in page is checked signed out, the others as an admin
            sign_in(page, web.base, web.users[Role.ADMIN])
        target = "/contacts/nobody" if path == "/nowhere-contact" else path
        page.goto(web.base + target)
        bad = axe_violations(page)
        if bad:
            found[path] = bad
    assert not found, found
