"""A crash loses nothing and delivers each firing's webhook exactly once.

A real `leadscore serve` process (with its outbox worker) takes sustained
ingestion over loopback HTTP from two clients while it delivers webhooks to
a real receiver. It is killed with SIGKILL in the middle, restarted, and the
clients send again what was not acknowledged, as clients do. Then:

- every acknowledged event is stored, exactly once, as sent; so is every
  other event (resent after the restart);
- the stored scorecards equal a replay of the stored log;
- every firing has its webhook delivered: the receiver saw exactly one
  distinct idempotency key per firing (a webhook in flight at the kill may
  come twice, with the same key: that is what the key is for), each signed;
- the outbox is empty of work.

On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from leadscore._events import parse_event
from leadscore._store import (
    Scope,
    create_key,
    create_workspace,
    open_database,
    replay_workspace,
    scorecards,
    store_model,
    upgrade,
)
from leadscore._store import outbox as store
from leadscore._store.tables import events as event_rows
from leadscore._store.tables import firings, outbox

from ._live import free_port
from ._receiver import receiving
from ._service import event

SECRET = "crash-test-secret"
MODEL = """
version: 1
name: crash-test
decay: {half_life_days: 7}
rules:
  - {id: view, event: page_view, points: 3}
  - {id: demo, event: demo_request, points: 30}
triggers:
  # An event trigger, not once: one firing per demo request whatever the
  # arrival order, so the firings are exactly the replay's.
  - id: demo
    when: {event: demo_request}
    once: false
    actions:
      - webhook: {url: "URL", secret: SECRET}
"""


def _log(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    made = []
    for n in range(count):
        kind = "demo_request" if rng.random() < 0.4 else "page_view"
        minute = rng.randrange(0, 14 * 24 * 60)
        when = time.strftime("%Y-%m-%dT%H:%M:00Z", time.gmtime(1_777_000_000 + 60 * minute))
        made.append(event(f"e{n:04d}", kind, when, contact_id=f"c{rng.randrange(40):02d}"))
    rng.shuffle(made)
    return made


def _env(url: str, port: int) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LEADSCORE_DATABASE_URL": url,
        "LEADSCORE_PORT": str(port),
        "LEADSCORE_OUTBOX_POLL_SECONDS": "0.05",
        "LEADSCORE_WEBHOOK_TIMEOUT_SECONDS": "1",
        "LEADSCORE_OUTBOX_LEASE_SECONDS": "2",
        "LEADSCORE_WEBHOOK_BACKOFF_BASE_SECONDS": "0.05",
        "LEADSCORE_WEBHOOK_BACKOFF_CAP_SECONDS": "0.2",
    }


@contextmanager
def _process(
    command: str, url: str, port: int, folder: Path, name: str
) -> Iterator[subprocess.Popen[bytes]]:
    # Output to files: a pipe nobody reads would fill and stall the process.
    with (folder / f"{name}.log").open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "leadscore", command],
            env=_env(url, port),
            stdout=output,
            stderr=output,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
                # A clean stop; uvicorn re-raises the signal once it has shut down.
                assert process.wait(timeout=30) in (0, -signal.SIGTERM)
                assert "Traceback" not in (folder / f"{name}.log").read_text()


def _started(log: Path) -> None:
    """Until `leadscore worker` says it works (in its log)."""
    deadline = time.monotonic() + 30
    while "carrying out actions" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


@contextmanager
def _server(url: str, port: int, folder: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    with _process("serve", url, port, folder, name) as process:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, (folder / f"{name}.log").read_text()
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.05)
        yield process


class Client(threading.Thread):
    """Sends its share of the log in small batches, keeping what was acknowledged."""

    def __init__(self, base: str, key: str, share: list[dict[str, Any]], stop: threading.Event):
        super().__init__(daemon=True)
        self.base, self.key, self.share, self.stop = base, key, share, stop
        self.acknowledged: dict[str, dict[str, Any]] = {}

    def run(self) -> None:
        rng = random.Random(len(self.share))
        with httpx.Client(base_url=self.base, trust_env=False, timeout=10) as http:
            at = 0
            while at < len(self.share) and not self.stop.is_set():
                batch = self.share[at : at + rng.randint(1, 4)]
                try:
                    answer = http.post(
                        "/v1/events", json=batch, headers={"Authorization": f"Bearer {self.key}"}
                    )
                except httpx.TransportError:
                    return  # the server is gone: what was not answered is not acknowledged
                assert answer.status_code == 200, answer.text
                for sent, result in zip(batch, answer.json()["results"], strict=True):
                    assert result["status"] in ("accepted", "duplicate"), result
                    self.acknowledged[sent["id"]] = sent
                at += len(batch)


@pytest.mark.slow
def test_sigkill_mid_ingestion_loses_nothing_and_delivers_each_firing_once(
    database_url: str, tmp_path: Path
) -> None:
    upgrade(database_url)
    database = open_database(database_url)
    log = _log(500, seed=3)
    try:
        # A receiver a little slow to answer: deliveries are in flight at the kill.
        with receiving(SECRET, lambda received, nth: 0.005) as receiver:
            with database.connect() as conn:
                create_workspace(conn, workspace="crash")
                _, key = create_key(conn, workspace="crash", scope=Scope.WRITE)
                document = MODEL.replace("URL", receiver.url).replace("SECRET", SECRET)
                model = store_model(conn, workspace="crash", document=document, activate=True)
            port = free_port()
            base = f"http://127.0.0.1:{port}"
            stop = threading.Event()
            clients = [Client(base, key, log[n::2], stop) for n in range(2)]
            with _server(database_url, port, tmp_path, "first") as first:
                for client in clients:
                    client.start()
                # Generous upper bounds, which cost nothing when things go well:
                # the PostgreSQL run failed once with two suites sharing two
                # cores (load 7-8; which wait ran out was not recorded).
                deadline = time.monotonic() + 60
                while sum(len(c.acknowledged) for c in clients) < 150:
                    assert time.monotonic() < deadline, "ingestion did not get going"
                    time.sleep(0.01)
                first.send_signal(signal.SIGKILL)
                first.wait(timeout=10)
                stop.set()
                for client in clients:
                    client.join(timeout=20)
            acknowledged = {k: v for client in clients for k, v in client.acknowledged.items()}
            assert 150 <= len(acknowledged) < len(log), "the kill came after the log was sent"
            delivered_before = len(receiver.keys())

            # After the restart a `leadscore worker` process works beside the
            # server's own worker: two processes claim from one outbox.
            with (
                _server(database_url, port, tmp_path, "second"),
                _process("worker", database_url, port, tmp_path, "worker"),
            ):
                _started(tmp_path / "worker.log")
                # The clients send again what was not acknowledged; and some that was.
                rest = [sent for sent in log if sent["id"] not in acknowledged]
                again = Client(
                    base, key, rest + list(acknowledged.values())[:20], threading.Event()
                )
                again.run()
                deadline = time.monotonic() + 120
                while True:
                    with database.connect() as conn:
                        stats = store.outbox_stats(conn, workspace="crash")
                    if stats.pending == stats.failed == 0:
                        break
                    assert time.monotonic() < deadline, f"the outbox did not drain: {stats}"
                    time.sleep(0.05)
        with database.connect() as conn:
            stored = conn.execute(
                sa.select(event_rows.c.id, event_rows.c.body).where(
                    event_rows.c.workspace == "crash"
                )
            ).all()
            fired = conn.execute(
                sa.select(firings.c.seq, firings.c.event_id).where(firings.c.workspace == "crash")
            ).all()
            hooks = conn.execute(
                sa.select(outbox.c.seq, outbox.c.firing, outbox.c.status).where(
                    outbox.c.workspace == "crash"
                )
            ).all()
            at = 1_777_000_000_000_000 + 15 * 86_400_000_000
            replayed = replay_workspace(conn, workspace="crash", model=model, at=at)
            cards = scorecards(conn, workspace="crash", model=model, at=at)
    finally:
        database.dispose()

    # Every event stored once, as sent: the acknowledged ones and the rest.
    ids = [row.id for row in stored]
    assert len(ids) == len(set(ids)) == len(log)
    bodies = {row.id: parse_event(json.loads(row.body)) for row in stored}
    for sent in log:
        assert bodies[sent["id"]] == parse_event(sent)
    assert [c.to_json() for c in cards] == [c.to_json() for c in replayed.scorecards]

    # One firing per demo request, each with one webhook, delivered.
    demos = {sent["id"] for sent in log if sent["type"] == "demo_request"}
    assert {row.event_id for row in fired} == demos == {f.event_id for f in replayed.firings}
    assert len(fired) == len(demos)
    assert sorted(row.firing for row in hooks) == sorted(row.seq for row in fired)
    assert {row.status for row in hooks} == {"done"}
    # Exactly one distinct key per firing: the outbox rows' ids.
    assert receiver.keys() == {str(row.seq) for row in hooks}
    assert all(item.verified for item in receiver.received)
    repeats = len(receiver.received) - len(receiver.keys())
    print(
        f"{len(acknowledged)} of {len(log)} events acknowledged before the kill; "
        f"{delivered_before} of {len(hooks)} webhooks delivered before it; "
        f"{repeats} delivered twice (same key)"
    )
