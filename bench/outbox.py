"""The outbox worker's rate, against what the same work costs without it.

    .venv/bin/python bench/outbox.py [--firings 2000] [--concurrency 4]

For SQLite (a file, durable commits) and for PostgreSQL (when
LEADSCORE_TEST_DATABASE_URL points at one), it queues `--firings` firings
through the store's ingest (not timed), then measures one worker draining:

- **webhooks**: signed deliveries per second to a local receiver that
  answers 200 at once, against the *ceiling*: POSTing the same bodies to the
  same receiver with the same number of threads and the same HTTP client, no
  database at all. The difference is what exactly-once costs: the claim, the
  scorecard as of the firing, keeping the body, logging the attempt.
- **tags**: `add_tag` actions per second, against inserting the same tag rows
  with the same driver in durable transactions of the worker's batch size
  (100): the effect alone, committed. The difference is finding the due
  rows, locking them and marking them done.

It prints a table of rates and ratios; the results and the command go into
docs/benchmarks.md. The machine is shared: compare ratios, not rates.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from leadscore._service.worker import OutboxWorker
from leadscore._settings import Settings
from leadscore._store import create_workspace, ingest, open_database, store_model, upgrade
from leadscore._store.tables import contact_tags, outbox

MODEL = """
version: 1
name: outbox-bench
rules:
  - {id: demo, event: demo_request, points: 30}
triggers:
  - id: demo
    when: {event: demo_request}
    once: false
    actions:
      - ACTION
"""


@contextmanager
def receiver() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def databases(folder: Path) -> Iterator[list[tuple[str, str]]]:
    found = [("SQLite", f"sqlite:///{folder / 'bench.db'}")]
    base = os.environ.get("LEADSCORE_TEST_DATABASE_URL")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = open_database(base) if base else None
    if admin is not None and base is not None:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = sa.make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        found.append(("PostgreSQL", url.render_as_string(hide_password=False)))
    try:
        yield found
    finally:
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def queue(database: sa.Engine, action: str, firings: int) -> str:
    """A workspace with `firings` firings queued, each with one `action`."""
    name = f"w-{uuid.uuid4().hex[:12]}"
    with database.connect() as conn:
        create_workspace(conn, workspace=name)
        model = store_model(
            conn, workspace=name, document=MODEL.replace("ACTION", action), activate=True
        )
        events = [
            {
                "id": f"e{n}",
                "type": "demo_request",
                "contact_id": f"c{n % 500}",
                "timestamp": f"2026-05-{1 + n % 28:02d}T10:{n % 60:02d}:00Z",
            }
            for n in range(firings)
        ]
        ingest(conn, workspace=name, model=model, events=events)
    return name


def drain(database: sa.Engine, settings: Settings) -> float:
    worker = OutboxWorker(database, settings)
    try:
        started = time.perf_counter()
        worker.drain(timeout=3600)
        return time.perf_counter() - started
    finally:
        worker.close()


def raw_posts(url: str, bodies: list[bytes], concurrency: int) -> float:
    with httpx.Client(limits=httpx.Limits(max_connections=concurrency)) as client:

        def post(body: bytes) -> None:
            response = client.post(url, content=body, headers={"Content-Type": "application/json"})
            response.raise_for_status()

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(post, bodies))
        return time.perf_counter() - started


def raw_tags(database: sa.Engine, workspace: str, count: int, batch: int = 100) -> float:
    started = time.perf_counter()
    with database.connect() as conn:
        for first in range(0, count, batch):
            with conn.begin():
                for n in range(first, min(count, first + batch)):
                    conn.execute(
                        contact_tags.insert().values(
                            workspace=workspace, contact_id=f"raw{n}", tag="raw", added_at=0
                        )
                    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--firings", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    settings = Settings(outbox_concurrency=args.concurrency, webhook_max_attempts=1)
    rows = []
    with (
        tempfile.TemporaryDirectory() as folder,
        databases(Path(folder)) as found,
        receiver() as url,
    ):
        for label, database_url in found:
            upgrade(database_url)
            database = open_database(database_url)
            try:
                hooks = queue(database, f'webhook: {{url: "{url}", secret: bench}}', args.firings)
                worker = drain(database, settings)
                with database.connect() as conn:
                    done = conn.execute(
                        sa.select(outbox.c.status, outbox.c.payload).where(
                            outbox.c.workspace == hooks
                        )
                    ).all()
                assert {status for status, _ in done} == {"done"}, "a delivery failed"
                ceiling = raw_posts(
                    url, [payload.encode() for _, payload in done], args.concurrency
                )
                rows.append((label, "webhooks", args.firings / worker, args.firings / ceiling))
                tags = queue(database, "add_tag: bench", args.firings)
                worker = drain(database, settings)
                ceiling = raw_tags(database, tags, args.firings)
                rows.append((label, "add_tag", args.firings / worker, args.firings / ceiling))
            finally:
                database.dispose()
    print(f"{args.firings:,} firings, one worker, {args.concurrency} deliveries at a time\n")
    print("| database | action | worker /s | ceiling /s | ratio |")
    print("|---|---|---:|---:|---:|")
    for label, action, rate, ceiling_rate in rows:
        ratio = rate / ceiling_rate
        print(f"| {label} | {action} | {rate:,.0f} | {ceiling_rate:,.0f} | {ratio:.2f} |")


if __name__ == "__main__":
    main()
