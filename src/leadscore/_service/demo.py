"""The demo: the service with a demo workspace, a demo model and a generated
history, ready to be looked at (`leadscore demo`, the README's first command).

`setup_demo` builds everything in a database and returns what a visitor
needs (`Demo`); it is the one place to extend the demo (a demo sign-in for
the web app, more workspaces). `leadscore demo` then serves it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import sqlalchemy as sa

from .._generate import generate_events
from .._store.database import open_database
from .._store.ingest import ingest
from .._store.keys import Scope, create_key
from .._store.migrate import upgrade
from .._store.workspaces import ModelVersion, create_workspace, store_model
from .._web.demo import demo_user

WORKSPACE = "demo"
MODEL = "b2b-saas"
DAYS = 90  # of history, ending now: scores as of now are alive, not decayed away
BATCH = 1_000  # events per transaction while the history is loaded
# The example model's CRM webhook, which no demo can reach (example.com has
# no such receiver, and a demo machine may have no network at all): the demo
# sends it to a receiver of its own instead (DemoReceiver).
EXAMPLE_WEBHOOK = "https://crm.example.com/hooks/mql"


@dataclass(frozen=True, slots=True)
class Demo:
    """What `setup_demo` made: where, and the keys to look with."""

    workspace: str
    model_version: int
    keys: dict[Scope, str]
    events: int  # accepted into the history
    contacts: list[str] = field(default_factory=list)  # identified, in id order
    sign_in: tuple[str, str] = ("", "")  # the web app's demo user: (e-mail, password)


def setup_demo(
    database_url: str,
    *,
    contacts: int,
    events: int,
    seed: int = 42,
    now: datetime | None = None,
    webhook_url: str | None = None,
    progress: Callable[[int], None] = lambda done: None,
) -> Demo:
    """Migrate the database, create the demo workspace with a key of each
    scope, an admin user of the web app and the B2B SaaS example model, and
    load a generated history of `DAYS` days ending at `now`, scored as it
    goes (`progress` is told how many events are in). `webhook_url`, when
    given, replaces the model's CRM webhook (EXAMPLE_WEBHOOK)."""
    upgrade(database_url)
    database = open_database(database_url)
    try:
        return _fill(
            database,
            contacts=contacts,
            events=events,
            seed=seed,
            now=now,
            webhook_url=webhook_url,
            progress=progress,
        )
    finally:
        database.dispose()


class DemoReceiver:
    """A webhook receiver on loopback for the demo's CRM webhook: it answers
    every POST with 204 and counts them, so that the history's hand-offs are
    delivered (the web app's Webhooks page shows them done) instead of
    failing, and retrying, for as long as the demo runs."""

    def __init__(self) -> None:
        counter = self

        class _Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with counter._lock:
                    counter.received += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the service logs each delivery already

        self.received = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks/mql"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="demo-receiver", daemon=True
        )

    def __enter__(self) -> DemoReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


def _fill(
    database: sa.Engine,
    *,
    contacts: int,
    events: int,
    seed: int,
    now: datetime | None,
    webhook_url: str | None,
    progress: Callable[[int], None],
) -> Demo:
    end = (now or datetime.now(UTC)).replace(microsecond=0)
    start = end - timedelta(days=DAYS)
    document = (resources.files("leadscore") / "examples" / f"{MODEL}.yaml").read_text()
    if webhook_url is not None:
        if document.count(EXAMPLE_WEBHOOK) != 1:  # the example changed: say so, not demo less
            raise RuntimeError(f"the {MODEL} example no longer has one {EXAMPLE_WEBHOOK} webhook")
        document = document.replace(EXAMPLE_WEBHOOK, webhook_url)
    with database.connect() as conn:
        create_workspace(conn, workspace=WORKSPACE)
        keys = {scope: create_key(conn, workspace=WORKSPACE, scope=scope)[1] for scope in Scope}
        sign_in = demo_user(conn, workspace=WORKSPACE)
        model = store_model(conn, workspace=WORKSPACE, document=document, activate=True)
        accepted = 0
        batch: list[dict[str, Any]] = []
        people: set[str] = set()
        for event in generate_events(
            contacts=contacts, events=events, seed=seed, start=start, days=DAYS
        ):
            batch.append(event)
            if len(batch) == BATCH:
                accepted += _load(conn, model, batch, people)
                progress(accepted)
                batch = []
        accepted += _load(conn, model, batch, people)
        progress(accepted)
    return Demo(WORKSPACE, model.version, keys, accepted, sorted(people), sign_in)


def _load(
    conn: sa.Connection, model: ModelVersion, batch: list[dict[str, Any]], people: set[str]
) -> int:
    outcomes = ingest(conn, workspace=WORKSPACE, model=model, events=batch)
    people.update(str(event["contact_id"]) for event in batch if event.get("contact_id"))
    return sum(outcome.status.value == "accepted" for outcome in outcomes)
