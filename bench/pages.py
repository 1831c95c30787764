"""How long the web app's pages take on the demo data, through a real server.

    .venv/bin/python bench/pages.py [--contacts 50000] [--events 1000000] [--repeat 7]

It generates a log (`leadscore generate`'s generator, the last 90 days),
loads it into a SQLite database the way ingestion would have left it (each
owner's state is the engine's run over its events, exactly what the store
keeps; the test suite shows ingestion equals that), starts `leadscore serve`,
signs in as an admin and times each page `--repeat` times, after one warm-up
request. The baseline, measured in the same run, is `GET /healthz`: the cost
of one HTTP round trip on this machine, so the ratio column says how much of
a page's time is the page's own work. Target: every page under 300 ms.

The machine is shared: numbers are noisy; the median is the figure to read.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from leadscore import generate_events
from leadscore._engine import Engine
from leadscore._replay import group, links
from leadscore._store import active_model, create_workspace, store_model
from leadscore._store import owners as owner_rows
from leadscore._store.database import open_database
from leadscore._store.log import encode
from leadscore._store.migrate import upgrade
from leadscore._store.ranking import ranked
from leadscore._store.tables import events as event_rows
from leadscore._store.tables import identity_links
from leadscore._store.users import Role, create_user
from leadscore._time import from_datetime

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import _free_port

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "src" / "leadscore" / "examples" / "b2b-saas.yaml"
PASSWORD = "bench-password-123"
WORKSPACE = "demo"


def load(url: str, *, contacts: int, count: int) -> tuple[str, float]:
    """Fill a database with a generated history; the top contact's id and the
    seconds it took."""
    began = time.perf_counter()
    upgrade(url)
    database = open_database(url)
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=90)
    with database.connect() as conn:
        create_workspace(conn, workspace=WORKSPACE)
        model = store_model(conn, workspace=WORKSPACE, document=MODEL.read_text(), activate=True)
        create_user(
            conn, workspace=WORKSPACE, email="admin@bench.test", role=Role.ADMIN, password=PASSWORD
        )
    engine: Engine = model.engine
    now = from_datetime(datetime.now(UTC))
    stored = []
    for raw in generate_events(contacts=contacts, events=count, seed=7, start=start, days=90):
        event, body = encode(raw)
        stored.append((event, body))
    prepared = [engine.prepare(event) for event, _ in stored]
    linked = links(prepared)
    winners: dict[str, tuple[int, str, str]] = {}
    for one in prepared:
        if one.anonymous_id is not None and one.contact_id is not None:
            link = (one.timestamp, one.id, one.contact_id)
            if one.anonymous_id not in winners or link < winners[one.anonymous_id]:
                winners[one.anonymous_id] = link
    with database.begin() as conn:
        batch = []
        for event, body in stored:
            batch.append(
                {
                    "workspace": WORKSPACE,
                    "id": event.id,
                    "type": event.type,
                    "contact_id": event.contact_id,
                    "anonymous_id": event.anonymous_id,
                    "timestamp": event.timestamp,
                    "body": body,
                    "received_at": now,
                }
            )
            if len(batch) == 20_000:
                conn.execute(event_rows.insert(), batch)
                batch = []
        if batch:
            conn.execute(event_rows.insert(), batch)
        conn.execute(
            identity_links.insert(),
            [
                {
                    "workspace": WORKSPACE,
                    "anonymous_id": anonymous,
                    "contact_id": contact,
                    "timestamp": stamp,
                    "event_id": event_id,
                }
                for anonymous, (stamp, event_id, contact) in winners.items()
            ],
        )
        best = ("", -1.0)
        for (identified, key), owned in group(prepared, linked).items():
            state, _ = engine.run(owned, contact_id=key if identified else None)
            owner_rows.save(
                conn,
                WORKSPACE,
                (identified, key),
                state,
                engine=engine,
                model_version=model.version,
                exists=False,
            )
            if identified:
                score = engine.scorecard(state, now, contact_id=key, anonymous_id=None).score
                if score > best[1]:
                    best = (key, score)
    database.dispose()
    return best[0], time.perf_counter() - began


def _top(url: str) -> str:
    database = open_database(url)
    with database.connect() as conn:
        model = active_model(conn, workspace=WORKSPACE)
        assert model is not None
        found = ranked(conn, workspace=WORKSPACE, model=model, at=from_datetime(datetime.now(UTC)))
    database.dispose()
    return found[0].contact_id


def serve(url: str) -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "leadscore", "serve", "--database-url", url, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("leadscore serve did not start")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def sign_in(http: httpx.Client) -> None:
    """Sign the client in as the bench's admin (its cookie holds the session)."""
    form = http.get("/signin").text
    token = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    signed = http.post(
        "/signin", data={"csrf": token, "email": "admin@bench.test", "password": PASSWORD}
    )
    assert signed.status_code == 303, signed.text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--database",
        type=Path,
        help="Keep the generated SQLite database in this file, and reuse it when it exists.",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.database or Path(folder) / "pages.db"
        url = f"sqlite:///{path.resolve()}"
        if path.exists():
            top, seconds = _top(url), 0.0
        else:
            top, seconds = load(url, contacts=args.contacts, count=args.events)
        with open_database(url).connect() as conn:
            stored = conn.execute(sa.select(sa.func.count()).select_from(event_rows)).scalar_one()
        print(f"loaded {stored:,} events for {args.contacts:,} contacts in {seconds:.0f} s")
        pages = [
            "/healthz",
            "/",
            "/?band=hot",
            "/?grade=A&stage=mql",
            "/?q=c0001",
            "/?page=100",
            f"/contacts/{top}",
            "/models",
            "/reports",
            "/settings/keys",
            "/settings/users",
            "/settings/webhooks",
            "/signin",
        ]
        for base in serve(url):
            with httpx.Client(base_url=base, trust_env=False, timeout=120) as http:
                sign_in(http)
                rows = []
                for path in pages:
                    if path == "/signin":
                        http.cookies.clear()
                    assert http.get(path).status_code == 200, path  # warm-up
                    times = []
                    for _ in range(args.repeat):
                        began = time.perf_counter()
                        response = http.get(path)
                        times.append((time.perf_counter() - began) * 1000)
                        assert response.status_code == 200, (path, response.status_code)
                    rows.append((path, statistics.median(times), max(times)))
        baseline = rows[0][1]
        print(f"\n{'page':<28} {'median ms':>10} {'max ms':>8} {'÷ /healthz':>11}  < 300 ms")
        for path, median, worst in rows:
            shown = path if not path.startswith("/contacts/") else "/contacts/{top contact}"
            verdict = "yes" if median < 300 else "NO"
            ratio = median / baseline
            print(f"{shown:<28} {median:>10.1f} {worst:>8.1f} {ratio:>11.1f}  {verdict}")


if __name__ == "__main__":
    main()
