"""The web app under a real browser: Debian's Chromium, headless, driven by
Playwright through a real server on loopback (never Playwright's own browser
builds: nothing is downloaded).

One server and one browser per test module; each test gets its own browser
context (cookies), so sign-ins do not leak between tests. Screenshots go to
tests/screenshots/ (git-ignored) for people to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from leadscore._events import Event, parse_event
from leadscore._settings import Settings
from leadscore._store import create_workspace, ingest, store_model
from leadscore._store.database import open_database
from leadscore._store.migrate import upgrade
from leadscore._store.users import Role, create_user

from ._live import serving

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SHOTS = Path(__file__).parent / "screenshots"
AXE = Path(__file__).parents[1] / "node_modules" / "axe-core" / "axe.min.js"
PASSWORD = "correct-horse-battery"

# Two behaviours and a fit rule; the editor tests change the pricing rule's
# points, which re-orders the leads.
MODEL = r"""version: 1
name: web-tests
decay:
  half_life_days: 30
rules:
  - id: demo
    description: Asked for a demo
    event: demo_request
    points: 30
    tags: [intent]
  - id: pricing
    description: Looked at the pricing page
    event: page_view
    where:
      url: {glob: "*/pricing*"}
    points: 5
    limit: {times: 3, per: day}
fit:
  - id: decision-maker
    description: A CTO
    where:
      job_title: {regex: '(?i)\bcto\b'}
    points: 25
grades:
  - {grade: A, min_fit: 20}
  - {grade: B}
bands:
  - {band: hot, min_score: 40}
  - {band: warm, min_score: 15}
  - {band: cold}
stages:
  - name: subscriber
  - name: lead
    description: Engaged enough for sales
    enter: {score_gte: 30}
triggers:
  - id: handoff
    description: Tell sales about a new lead
    when: {stage_entered: lead}
    actions:
      - webhook: {url: "https://crm.example.com/hooks/lead"}
"""


def history(contacts: int = 36) -> list[Event]:
    """A small, varied log: demo requests and pricing views over the last weeks."""
    start = datetime.now(UTC) - timedelta(days=40)
    out: list[dict[str, Any]] = []
    for i in range(contacts):
        contact = f"c{i:03d}"
        title = "CTO" if i % 5 == 0 else "Engineer"
        out.append(
            {
                "id": f"{contact}-identify",
                "type": "identify",
                "contact_id": contact,
                "timestamp": (start + timedelta(hours=i)).isoformat(),
                "traits": {"name": f"Person {i}", "email": f"p{i}@example.com", "job_title": title},
            }
        )
        for k in range(i % 3):
            out.append(
                {
                    "id": f"{contact}-demo-{k}",
                    "type": "demo_request",
                    "contact_id": contact,
                    "timestamp": (start + timedelta(days=3 + 9 * k + i % 7)).isoformat(),
                }
            )
        for k in range((i * 7) % 6):
            out.append(
                {
                    "id": f"{contact}-pricing-{k}",
                    "type": "page_view",
                    "contact_id": contact,
                    "timestamp": (start + timedelta(days=5 + 4 * k, hours=i)).isoformat(),
                    "properties": {"url": "https://example.com/pricing"},
                }
            )
        if i % 4 == 0:
            out.append(
                {
                    "id": f"{contact}-purchase",
                    "type": "purchase",
                    "contact_id": contact,
                    "timestamp": (start + timedelta(days=35)).isoformat(),
                }
            )
    return [parse_event(record) for record in out]


@dataclass
class Site:
    base: str
    database: sa.Engine
    workspace: str
    events: list[Event]
    users: dict[Role, str] = field(default_factory=dict)


@contextmanager
def site(folder: Path, document: str = MODEL, **settings: Any) -> Iterator[Site]:
    """A migrated SQLite database with a workspace, a model (`document`), a
    history and a user of each role, served on loopback (with `settings`)."""
    url = f"sqlite:///{folder / 'web.db'}"
    upgrade(url)
    database = open_database(url)
    events = history()
    workspace = "acme"
    with database.connect() as conn:
        create_workspace(conn, workspace=workspace)
        model = store_model(conn, workspace=workspace, document=document, activate=True)
        ingest(conn, workspace=workspace, model=model, events=events)
        users = {}
        for role in Role:
            email = f"{role.value}@acme.test"
            create_user(conn, workspace=workspace, email=email, role=role, password=PASSWORD)
            users[role] = email
    try:
        with serving(Settings(database_url=url, **settings)) as base:
            yield Site(base, database, workspace, events, users)
    finally:
        database.dispose()


def browser_or_skip() -> Any:
    """A Playwright Chromium browser (the caller closes it and its driver)."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (.ci/run installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    browser = driver.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
    return driver, browser


def sign_in(page: Any, base: str, email: str, password: str = PASSWORD) -> None:
    if "/signin" not in page.url:
        page.goto(f"{base}/signin")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def shoot(page: Any, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def axe_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.wait_for_load_state("networkidle")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + "; ".join(f"{n['target']} {n.get('failureSummary', '')[:150]}" for n in v["nodes"][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
