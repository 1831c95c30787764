"""The outbox worker against real databases (SQLite, PostgreSQL) and a real
webhook receiver on loopback: signed deliveries with the scorecard as of the
firing, retries with backoff, dead letters and redelivery, timeouts; round
robin that continues across workers and restarts; tags in queue order;
concurrent workers that never deliver one webhook twice.

Each test has a database of its own: a worker claims every due row of its
database, and must not meet the rows of other tests.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from pydantic import ValidationError

from leadscore._engine import Engine
from leadscore._events import parse_event
from leadscore._loader import parse_model
from leadscore._replay import replay
from leadscore._service.webhooks import backoff
from leadscore._service.worker import OutboxWorker
from leadscore._settings import Settings
from leadscore._store import ModelVersion, create_workspace, ingest, store_model
from leadscore._store import outbox as store
from leadscore._store.actions import labels
from leadscore._store.database import open_database
from leadscore._store.migrate import _config, upgrade
from leadscore._store.tables import firings as firing_rows
from leadscore._store.tables import outbox as outbox_rows
from leadscore._store.tables import rotations

from ._receiver import Trickle, receiving, verify
from ._service import event, stored_unchecked
from .conftest import BACKENDS, _empty_database

# -- set-up ----------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    """A migrated database of the test's own."""
    with _empty_database(request.param, tmp_path) as url:
        upgrade(url)
        opened = open_database(url)
        try:
            yield opened
        finally:
            opened.dispose()


def quick(**overrides: Any) -> Settings:
    """Worker settings for tests: short timeouts and backoffs, few attempts."""
    given: dict[str, Any] = {
        # Generous: the machine may be loaded, and a receiver that answers
        # at once must never time out here (the timeout test sets its own).
        "webhook_timeout_seconds": 5.0,
        "outbox_lease_seconds": 10.0,
        "webhook_backoff_base_seconds": 0.01,
        "webhook_backoff_cap_seconds": 0.05,
        "webhook_max_attempts": 3,
        "outbox_poll_seconds": 0.02,
        **overrides,
    }
    return Settings(**given)


def workspace(database: sa.Engine, model: str) -> tuple[str, ModelVersion]:
    name = f"w-{uuid.uuid4().hex[:12]}"
    with database.connect() as conn:
        create_workspace(conn, workspace=name)
        version = store_model(conn, workspace=name, document=model, activate=True)
    return name, version


def send(database: sa.Engine, name: str, model: ModelVersion, events: list[dict[str, Any]]) -> None:
    with database.connect() as conn:
        outcomes = ingest(conn, workspace=name, model=model, events=events)
    assert all(outcome.status.value == "accepted" for outcome in outcomes), outcomes


def hook_rows(database: sa.Engine, name: str) -> list[Any]:
    with database.connect() as conn:
        return list(
            conn.execute(
                sa.select(outbox_rows)
                .where(outbox_rows.c.workspace == name, outbox_rows.c.kind == "webhook")
                .order_by(outbox_rows.c.seq)
            )
        )


def until(condition: Any, worker: OutboxWorker, timeout: float = 20.0) -> None:
    """Run worker rounds until `condition()` holds (retries come due in between)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        if not worker.run_once():
            time.sleep(0.01)


def drain_together(
    database: sa.Engine, count: int, settings: Settings, *, local_batch: int = 100
) -> None:
    """`count` workers, each with a connection pool of its own as separate
    processes would have, drain the outbox at the same time."""
    engines = [open_database(database.url) for _ in range(count)]
    workers = [OutboxWorker(engine, settings, local_batch=local_batch) for engine in engines]
    start = threading.Barrier(count)
    failures: list[BaseException] = []

    def work(worker: OutboxWorker) -> None:
        start.wait()
        try:
            worker.drain()
        except BaseException as error:  # a deadlock, say: the test must see it
            failures.append(error)

    threads = [threading.Thread(target=work, args=(worker,)) for worker in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for worker, engine in zip(workers, engines, strict=True):
        worker.close()
        engine.dispose()
    assert not failures, failures


WEBHOOK_MODEL = """
version: 1
name: outbox-tests
rules:
  - {id: demo, event: demo_request, points: 30}
  - {id: view, event: page_view, points: 5}
bands:
  - {band: hot, min_score: 50}
  - {band: cold}
triggers:
  - id: each-demo
    when: {event: demo_request}
    once: false
    actions:
      - webhook: {url: "URL"SECRET}
"""


def webhook_model(url: str, secret: str | None = "s3cret") -> str:
    named = "" if secret is None else f", secret: {secret}"
    return WEBHOOK_MODEL.replace('"URL"', f'"{url}"').replace("SECRET", named)


# -- webhooks --------------------------------------------------------------------------


def test_each_firing_is_delivered_once_signed_with_its_scorecard(fresh: sa.Engine) -> None:
    with receiving("s3cret") as receiver:
        name, model = workspace(fresh, webhook_model(receiver.url))
        log = [
            event("v1", "page_view", "2026-05-01T09:00:00Z", contact_id="c1"),
            event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1"),
            event("d2", "demo_request", "2026-05-02T10:00:00Z", contact_id="c1"),
            event("d3", "demo_request", "2026-05-02T11:00:00Z", contact_id="c2"),
            # Late, before d1: counts in d1's scorecard, which is made when sent.
            event("v0", "page_view", "2026-05-01T08:00:00Z", contact_id="c1"),
        ]
        send(fresh, name, model, log)
        with OutboxWorker(fresh, quick()) as worker:
            worker.drain()
    rows = hook_rows(fresh, name)
    assert len(rows) == 3
    assert sorted(item.key for item in receiver.received) == sorted(str(row.seq) for row in rows)
    engine = Engine(parse_model(model.document))
    events = [parse_event(raw) for raw in log]
    for row in rows:
        (got,) = receiver.of(str(row.seq))
        assert got.verified
        assert got.attempt == 1
        assert abs(got.timestamp - got.at) < 5
        assert row.status == "done"
        assert row.payload.encode() == got.body  # kept: retries send these bytes
        body = got.json()
        assert body["type"] == "trigger.fired"
        assert body["delivery_id"] == got.key
        firing = body["firing"]
        before = [e for e in events if e.contact_id == firing["contact_id"]]
        (fired,) = [e for e in before if e.id == firing["event_id"]]
        before = [e for e in before if e.order_key <= fired.order_key]
        (card,) = replay(engine, before, fired.timestamp).scorecards
        expected = card.to_json()
        expected.pop("anonymous_id", None)
        assert body["scorecard"] == expected
        assert firing["trigger"] == "each-demo"


def test_the_docs_verify_example_accepts_real_deliveries_only(fresh: sa.Engine) -> None:
    text = (Path(__file__).parents[1] / "docs" / "api.md").read_text()
    code = text.split("### Verifying a webhook", 1)[1].split("```python\n", 1)[1].split("```")[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/api.md", "exec"), namespace)
    verify_as_documented = namespace["verify"]
    with receiving("s3cret") as receiver:
        name, model = workspace(fresh, webhook_model(receiver.url))
        send(
            fresh,
            name,
            model,
            [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
        )
        with OutboxWorker(fresh, quick()) as worker:
            worker.drain()
    (got,) = receiver.received
    assert got.headers["idempotency-key"] == got.key
    assert verify_as_documented("s3cret", got.headers, got.body)
    assert not verify_as_documented("other", got.headers, got.body)
    assert not verify_as_documented("s3cret", got.headers, got.body + b" ")
    stale = {**got.headers, "leadscore-timestamp": str(got.timestamp - 3600)}
    assert not verify_as_documented("s3cret", stale, got.body)


def test_retries_back_off_then_dead_letter_then_redelivery(fresh: sa.Engine) -> None:
    healthy = threading.Event()
    with receiving("s3cret", lambda received, nth: 200 if healthy.is_set() else 503) as receiver:
        name, model = workspace(fresh, webhook_model(receiver.url))
        send(
            fresh,
            name,
            model,
            [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
        )
        (row,) = hook_rows(fresh, name)
        with OutboxWorker(fresh, quick()) as worker:
            worker.run_once()
            with fresh.connect() as conn:
                assert store.outbox_stats(conn, workspace=name) == store.OutboxStats(0, 1, 0)
                failed = store.delivery(conn, workspace=name, seq=row.seq)
            assert failed is not None
            assert failed.status == "failed"
            assert failed.next_attempt_at is not None
            # Retried after a wait between 0 and the backoff's ceiling for a
            # first retry: min(cap, base) = 0.01 s.
            (first,) = failed.log
            wait = failed.next_attempt_at - (first.started_at + first.duration)
            assert 0 <= wait <= 10_000
            until(lambda: hook_rows(fresh, name)[0].status == "dead", worker)
            tries = receiver.of(str(row.seq))
            assert [t.attempt for t in tries] == [1, 2, 3]
            assert all(t.verified for t in tries)
            assert len({t.body for t in tries}) == 1  # the same bytes every time
            with fresh.connect() as conn:
                dead = store.deliveries(conn, workspace=name, status="dead")
                assert [d.seq for d in dead] == [row.seq]
                assert dead[0].last_error == "answered 503"
                assert store.outbox_stats(conn, workspace=name) == store.OutboxStats(0, 0, 1)
                assert store.delivery_failures(conn, workspace=name) == 3
                assert store.redeliver(
                    conn,
                    workspace=name,
                    seq=row.seq,
                    now=time.time_ns() // 1000,
                    model=model.engine.model,
                )
                assert not store.redeliver(
                    conn, workspace="elsewhere", seq=row.seq, now=0, model=None
                )
            healthy.set()
            worker.drain()
    tries = receiver.of(str(row.seq))
    assert [t.attempt for t in tries] == [1, 2, 3, 1]  # a fresh budget
    assert len({t.body for t in tries}) == 1
    with fresh.connect() as conn:
        done = store.delivery(conn, workspace=name, seq=row.seq)
        assert store.delivery_failures(conn, workspace=name) == 3
        assert store.outbox_stats(conn, workspace=name) == store.OutboxStats(0, 0, 0)
    assert done is not None
    assert done.status == "done"
    assert [(a.attempt, a.ok, a.status_code) for a in done.log] == [
        (1, False, 503), (2, False, 503), (3, False, 503), (4, True, 200),
    ]  # fmt: skip


def test_a_receiver_that_recovers_gets_it_once_done(fresh: sa.Engine) -> None:
    with receiving("s3cret", lambda received, nth: 500 if nth <= 2 else 204) as receiver:
        name, model = workspace(fresh, webhook_model(receiver.url))
        send(
            fresh,
            name,
            model,
            [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
        )
        with OutboxWorker(fresh, quick(webhook_max_attempts=5)) as worker:
            until(lambda: hook_rows(fresh, name)[0].status == "done", worker)
    assert [t.attempt for t in receiver.received] == [1, 2, 3]


def test_timeouts_and_refused_connections_are_failed_attempts(fresh: sa.Engine) -> None:
    with receiving() as gone:
        closed = gone.url  # nothing listens there once it is closed
    refused, other = workspace(fresh, webhook_model(closed))
    send(
        fresh,
        refused,
        other,
        [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
    )
    with receiving("s3cret", lambda received, nth: 2.0) as receiver:
        slow, model = workspace(fresh, webhook_model(receiver.url))
        send(
            fresh,
            slow,
            model,
            [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
        )
        with OutboxWorker(
            fresh, quick(webhook_timeout_seconds=0.3, webhook_max_attempts=1)
        ) as worker:
            started = time.monotonic()
            worker.drain()
            assert time.monotonic() - started < 1.9  # the timeout cut the hanging call
        assert len(receiver.received) == 1
    ((timed_out,), (no_answer,)) = hook_rows(fresh, slow), hook_rows(fresh, refused)
    assert timed_out.status == "dead"
    assert timed_out.last_error.startswith("timed out")
    assert no_answer.status == "dead"
    assert "ConnectError" in no_answer.last_error


@pytest.mark.parametrize(
    ("answer", "status", "error"),
    [
        # A 200, then a body that never ends: the status decides, the body is not read.
        (Trickle(every=0.05, most=200), "done", None),
        # As fast as it goes: a huge body is not read into memory either.
        (Trickle(every=0.0, chunk=1024 * 1024), "done", None),
        # Headers a byte at a time, each read within the timeout: the call's
        # timeout bounds the whole call, not each read.
        (Trickle(every=0.05, head=True, most=200), "dead", "timed out"),
    ],
    ids=["slow-body", "huge-body", "slow-headers"],
)
def test_an_answer_that_never_ends_holds_the_worker_no_longer_than_the_timeout(
    fresh: sa.Engine, answer: Trickle, status: str, error: str | None
) -> None:
    with receiving("s3cret", lambda received, nth: answer) as receiver:
        name, model = workspace(fresh, webhook_model(receiver.url))
        send(
            fresh,
            name,
            model,
            [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
        )
        with OutboxWorker(
            fresh, quick(webhook_timeout_seconds=0.5, webhook_max_attempts=1)
        ) as worker:
            started = time.monotonic()
            worker.drain()
            assert time.monotonic() - started < 4.0  # the timeout and a round, not the answer
        # What the worker read, and the socket buffers: far from the 256 MiB a huge body offers.
        assert receiver.trickled < 64 * 1024 * 1024
    (row,) = hook_rows(fresh, name)
    assert row.status == status
    assert (row.last_error is None) if error is None else row.last_error.startswith(error)


def test_webhooks_go_through_the_environments_proxy(
    fresh: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The receiver is the proxy: it gets the request for a host that does not
    # resolve, as a proxy does (the call's timeout bounds it all the same).
    for variable in ("ALL_PROXY", "HTTPS_PROXY", "NO_PROXY", "HTTP_PROXY"):
        monkeypatch.delenv(variable, raising=False)
        monkeypatch.delenv(variable.lower(), raising=False)
    with receiving("s3cret") as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url.removesuffix("/hook"))
        name, model = workspace(fresh, webhook_model("http://hooks.invalid/hook"))
        send(
            fresh,
            name,
            model,
            [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
        )
        with OutboxWorker(fresh, quick()) as worker:
            worker.drain()
        (through,) = proxy.received
        assert through.verified
        assert through.headers["host"] == "hooks.invalid"
    (row,) = hook_rows(fresh, name)
    assert (row.status, row.attempts) == ("done", 1)


def test_a_host_name_the_socket_cannot_encode_fails_alone(fresh: sa.Engine) -> None:
    # "a..b" passes the model's URL pattern and httpx's parser; the socket's
    # IDNA encoding raises UnicodeError. Out of the round, it left the round's
    # other attempts unrecorded: sent again at each lease's end, for ever. An
    # upload refuses it now, but a model stored before may hold it.
    with receiving("s3cret") as receiver:
        document = webhook_model(receiver.url).replace(
            "      - webhook:", '      - webhook: {url: "http://a..b/hook"}\n      - webhook:'
        )
        name = f"w-{uuid.uuid4().hex[:12]}"
        with fresh.connect() as conn:
            create_workspace(conn, workspace=name)
            model = stored_unchecked(conn, name, document)
        send(
            fresh,
            name,
            model,
            [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
        )
        with OutboxWorker(fresh, quick(webhook_max_attempts=2)) as worker:
            until(
                lambda: {row.status for row in hook_rows(fresh, name)} == {"done", "dead"}, worker
            )
        assert len(receiver.received) == 1
    bad, good = hook_rows(fresh, name)
    assert (bad.action["webhook"]["url"], bad.status, bad.attempts) == (
        "http://a..b/hook",
        "dead",
        2,
    )
    assert bad.last_error.startswith("not a usable host name")
    assert (good.status, good.attempts) == ("done", 1)


def test_a_host_name_lookup_that_hangs_ends_within_the_timeout(
    fresh: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The system's resolver takes no timeout: a DNS server that never answers
    # held the call, and the worker's round, for as long as its retries took.
    # The resolver stands in for such a server here: it never answers for one
    # name (until the test ends), and answers for the others as it does.
    released = threading.Event()
    resolve = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "hangs.test":
            released.wait(60)
        return resolve(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    try:
        with receiving("s3cret") as receiver:
            hanging = '      - webhook: {url: "http://hangs.test/hook"}\n'
            document = webhook_model(receiver.url).replace(
                "      - webhook:", hanging + "      - webhook:"
            )
            name = f"w-{uuid.uuid4().hex[:12]}"
            with fresh.connect() as conn:
                create_workspace(conn, workspace=name)
                model = store_model(conn, workspace=name, document=document, activate=True)
            send(
                fresh,
                name,
                model,
                [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
            )
            settings = quick(webhook_timeout_seconds=0.5, webhook_max_attempts=1)
            with OutboxWorker(fresh, settings) as worker:
                started = time.monotonic()
                worker.drain()
                assert time.monotonic() - started < 4.0  # the timeout and a round
            assert len(receiver.received) == 1  # the other webhook of the round
    finally:
        released.set()
    hung, good = hook_rows(fresh, name)
    assert (hung.status, hung.attempts) == ("dead", 1)
    assert hung.last_error.startswith("timed out"), hung.last_error
    assert good.status == "done"


def test_the_workspace_secret_signs_webhooks_without_their_own(fresh: sa.Engine) -> None:
    with receiving() as receiver:
        name, model = workspace(fresh, webhook_model(receiver.url, secret=None))
        with fresh.connect() as conn:
            receiver.secret = store.signing_secret(conn, workspace=name, now=0).secret
        assert receiver.secret.startswith("whsec_")
        send(
            fresh,
            name,
            model,
            [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
        )
        with OutboxWorker(fresh, quick()) as worker:
            worker.drain()
            with fresh.connect() as conn:
                rotated = store.signing_secret(conn, workspace=name, now=0, rotate=True).secret
                assert rotated != receiver.secret
                (row,) = hook_rows(fresh, name)
                store.redeliver(
                    conn, workspace=name, seq=row.seq, now=time.time_ns() // 1000, model=None
                )
            worker.drain()
    first, second = receiver.received
    assert first.verified
    assert not second.verified  # signed with the new secret, not the old one
    assert second.body == first.body
    assert verify(rotated, str(second.timestamp), second.signature, second.body, second.at)


RETARGET_MODEL = """
version: 1
name: retarget-tests
rules:
  - {id: demo, event: demo_request, points: 30}
triggers:
  - id: each-demo
    when: {event: demo_request}
    once: false
    actions:
ACTIONS
"""


def retarget_model(*actions: str) -> str:
    return RETARGET_MODEL.replace("ACTIONS", "\n".join(f"      - {a}" for a in actions))


def activate(database: sa.Engine, name: str, document: str) -> ModelVersion:
    with database.connect() as conn:
        return store_model(conn, workspace=name, document=document, activate=True)


def test_a_pending_delivery_goes_to_the_webhook_its_trigger_has_now(fresh: sa.Engine) -> None:
    # A marketer's wrong URLs fail; a new version fixes them. Each delivery
    # goes to the webhook at its position among the trigger's webhooks (an
    # action put before them moves no webhook), with that webhook's secret,
    # or the workspace's when it has none.
    with receiving() as gone:
        wrong = gone.url  # nothing listens there once it is closed
    with receiving("n3w") as first, receiving() as second:
        name, model = workspace(
            fresh,
            retarget_model(
                f'webhook: {{url: "{wrong}", secret: old}}', f'webhook: {{url: "{wrong}/2"}}'
            ),
        )
        with fresh.connect() as conn:
            second.secret = store.signing_secret(conn, workspace=name, now=0).secret
        send(
            fresh,
            name,
            model,
            [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
        )
        one, two = hook_rows(fresh, name)
        with OutboxWorker(fresh, quick(webhook_max_attempts=5)) as worker:
            worker.run_once()
            assert [row.status for row in hook_rows(fresh, name)] == ["failed", "failed"]
            activate(
                fresh,
                name,
                retarget_model(
                    "add_tag: fixed",
                    f'webhook: {{url: "{first.url}", secret: n3w}}',
                    f'webhook: {{url: "{second.url}"}}',
                ),
            )
            settled = {"done", "dead"}
            until(lambda: {row.status for row in hook_rows(fresh, name)} <= settled, worker)
    assert [row.status for row in hook_rows(fresh, name)] == ["done", "done"]
    (got,) = first.received
    assert (got.key, got.attempt, got.verified) == (str(one.seq), 2, True)
    (got,) = second.received
    assert (got.key, got.attempt, got.verified) == (str(two.seq), 2, True)
    assert got.body.decode() == hook_rows(fresh, name)[1].payload  # the body made at the first
    with fresh.connect() as conn:
        shown = [store.delivery(conn, workspace=name, seq=row.seq) for row in (one, two)]
    # The log shows where the delivery went, and where each attempt did.
    assert [found.url for found in shown if found is not None] == [first.url, second.url]
    assert [[a.url for a in found.log] for found in shown if found is not None] == [
        [wrong, first.url],
        [f"{wrong}/2", second.url],
    ]


@pytest.mark.parametrize(
    "now",
    [
        "",  # no trigger at all
        "  - {id: other, when: {event: demo_request}, actions: [{webhook: {url: 'http://x.invalid/'}}]}",
        "  - {id: each-demo, when: {event: demo_request}, actions: [{add_tag: no-webhook}]}",
    ],
    ids=["no-triggers", "another-trigger", "no-webhook-there"],
)
def test_a_delivery_whose_webhook_is_gone_keeps_its_own(fresh: sa.Engine, now: str) -> None:
    # Nothing is sent to an address its trigger never had.
    with receiving("s3cret", lambda received, nth: 503 if nth == 1 else 200) as receiver:
        name, model = workspace(fresh, webhook_model(receiver.url))
        send(
            fresh,
            name,
            model,
            [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
        )
        (row,) = hook_rows(fresh, name)
        with OutboxWorker(fresh, quick(webhook_max_attempts=5)) as worker:
            worker.run_once()
            assert hook_rows(fresh, name)[0].status == "failed"
            rest = WEBHOOK_MODEL.split("triggers:", maxsplit=1)[0]
            activate(fresh, name, rest + ("triggers:\n" + now + "\n" if now else ""))
            until(lambda: hook_rows(fresh, name)[0].status == "done", worker)
    assert [(got.key, got.attempt, got.verified) for got in receiver.received] == [
        (str(row.seq), 1, True),
        (str(row.seq), 2, True),
    ]
    assert hook_rows(fresh, name)[0].action == row.action


def test_concurrent_workers_never_deliver_one_webhook_twice(fresh: sa.Engine) -> None:
    with receiving("s3cret", lambda received, nth: 0.01) as receiver:
        name, model = workspace(fresh, webhook_model(receiver.url))
        send(fresh, name, model, [
            event(f"d{n}", "demo_request", "2026-05-01T10:00:00Z", contact_id=f"c{n % 7}")
            for n in range(40)
        ])  # fmt: skip
        drain_together(fresh, 3, quick(outbox_concurrency=2))
    rows = hook_rows(fresh, name)
    assert len(rows) == 40
    assert all(row.status == "done" for row in rows)
    received = Counter(item.key for item in receiver.received)
    assert set(received) == {str(row.seq) for row in rows}
    with fresh.connect() as conn:
        for row in rows:
            found = store.delivery(conn, workspace=name, seq=row.seq)
            assert found is not None
            # One successful attempt, by one worker. A loaded machine may make
            # an attempt fail first (logged, then retried under the same key),
            # but a webhook two workers both sent would show two successes, or
            # more requests at the receiver than attempts in the log.
            assert [attempt.ok for attempt in found.log].count(True) == 1, found.log
            assert found.log[-1].ok, found.log
            assert received[str(row.seq)] <= len(found.log), (received[str(row.seq)], found.log)


def test_a_dead_workers_lease_runs_out_and_its_late_answer_decides_nothing(
    fresh: sa.Engine,
) -> None:
    with receiving("s3cret") as receiver:
        name, model = workspace(fresh, webhook_model(receiver.url))
        send(
            fresh,
            name,
            model,
            [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
        )
        stamp = time.time_ns() // 1000
        with fresh.connect() as conn:
            # A worker claims it for 0.2 s, then is never heard of again...
            (claimed,) = store.claim(conn, worker="gone", now=stamp, lease=200_000, limit=5)
            assert store.claim(conn, worker="other", now=stamp, lease=200_000, limit=5) == []
        time.sleep(0.25)
        with OutboxWorker(fresh, quick()) as worker:
            worker.drain()  # ...so another worker takes it over once the lease runs out
        assert receiver.keys() == {str(claimed.seq)}
        with fresh.connect() as conn:
            # The first worker comes back with a failure: logged, but it stays done.
            status = store.record_attempt(
                conn, seq=claimed.seq, worker="gone", url=receiver.url, started_at=stamp,
                duration=1, status_code=None, error="timed out", now=stamp, max_attempts=1,
                delay=lambda attempts: 0,
            )  # fmt: skip
            found = store.delivery(conn, workspace=name, seq=claimed.seq)
    assert status == "done"
    assert found is not None
    assert found.status == "done"
    assert [a.ok for a in found.log] == [True, False]


def test_a_webhook_shows_what_its_firings_local_actions_did(fresh: sa.Engine) -> None:
    with receiving("s3cret") as receiver:
        document = webhook_model(receiver.url).replace(
            "    actions:\n",
            "    actions:\n      - add_tag: demo\n      - assign: {owners: [anna@example.com]}\n",
        )
        name, model = workspace(fresh, document)
        send(
            fresh,
            name,
            model,
            [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
        )
        with OutboxWorker(fresh, quick()) as worker:
            worker.drain()
    (got,) = receiver.received
    assert got.json()["contact"] == {"tags": ["demo"], "owner": "anna@example.com"}


def test_a_webhook_whose_payload_cannot_be_made_fails_and_ends(fresh: sa.Engine) -> None:
    # A firing recorded under a model version the workspace does not have
    # (a damaged database): its body cannot be made. The attempt fails, is
    # logged, and after the last attempt the delivery is dead, not retried forever.
    with receiving("s3cret") as receiver:
        name, model = workspace(fresh, webhook_model(receiver.url))
        send(
            fresh,
            name,
            model,
            [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
        )
        with fresh.begin() as conn:
            conn.execute(sa.update(firing_rows).values(model_version=99))
        with OutboxWorker(fresh, quick(webhook_max_attempts=2)) as worker:
            until(lambda: hook_rows(fresh, name)[0].status == "dead", worker)
    assert receiver.received == []
    (row,) = hook_rows(fresh, name)
    assert row.last_error.startswith("no payload: UnknownModelVersion")
    assert row.payload is None


def test_a_lease_shorter_than_a_call_is_refused() -> None:
    # Another worker would send the webhook again while the first still waits.
    with pytest.raises(ValidationError, match=r"outbox_lease_seconds .* webhook_timeout_seconds"):
        Settings(outbox_lease_seconds=5, webhook_timeout_seconds=10)


def test_backoff_is_exponential_with_full_jitter() -> None:
    rng = random.Random(7)
    for attempts, ceiling in ((1, 10.0), (2, 20.0), (4, 80.0), (13, 21_600.0), (200, 21_600.0)):
        waits = [backoff(attempts, base=10, cap=21_600, rng=rng) for _ in range(4000)]
        assert 0 <= min(waits) < 0.01 * ceiling
        assert 0.99 * ceiling < max(waits) <= ceiling
        assert sum(waits) / len(waits) == pytest.approx(ceiling / 2, rel=0.05)


# -- assign and tags -------------------------------------------------------------------

OWNERS = ["anna@example.com", "piotr@example.com", "maria@example.com"]
DEMO_OWNERS = ["xavier@example.com", "yoko@example.com"]

ASSIGN_MODEL = f"""
version: 1
name: assign-tests
rules:
  - {{id: signup, event: signup, points: 10}}
triggers:
  - id: new-lead
    when: {{event: signup}}
    actions:
      - assign: {{owners: {json.dumps(OWNERS)}, strategy: round_robin}}
      - add_tag: assigned
  - id: demo-lead
    when: {{event: demo}}
    actions:
      - add_tag: assigned
      - assign: {{owners: {json.dumps(DEMO_OWNERS)}}}
"""


def _owners(database: sa.Engine, name: str) -> dict[str, str | None]:
    with database.connect() as conn, conn.begin():
        return {contact: found.owner for contact, found in labels(conn, name).items()}


def test_round_robin_continues_across_workers_and_a_restart(fresh: sa.Engine) -> None:
    name, model = workspace(fresh, ASSIGN_MODEL)
    # Two rotations, their rows interleaved in the queue: every round of a
    # worker takes turns in both (and must never deadlock with the other's).
    send(fresh, name, model, [
        sent
        for n in range(30)
        for sent in (
            event(f"s{n}", "signup", "2026-05-01T10:00:00Z", contact_id=f"n{n:02d}"),
            event(f"d{n}", "demo", "2026-05-01T10:00:00Z", contact_id=f"m{n:02d}"),
        )
        if sent["id"][0] == "s" or n < 20
    ])  # fmt: skip
    # Few rows per round: the two workers interleave all the way.
    drain_together(fresh, 2, quick(), local_batch=5)
    owners = _owners(fresh, name)
    assert len(owners) == 50
    # Each turn taken once.
    signed = [owners[f"n{n:02d}"] or "" for n in range(30)]
    demoed = [owners[f"m{n:02d}"] or "" for n in range(20)]
    assert sorted(signed) == sorted(OWNERS * 10)
    assert sorted(demoed) == sorted(DEMO_OWNERS * 10)
    with fresh.connect() as conn:
        turns = conn.execute(sa.select(rotations.c.trigger, rotations.c.turns)).all()
        assert sorted(tuple(row) for row in turns) == [("demo-lead", 20), ("new-lead", 30)]
        states = conn.execute(
            sa.select(outbox_rows.c.status, outbox_rows.c.attempts).where(
                outbox_rows.c.workspace == name
            )
        ).all()
    assert sorted(set(states)) == [("done", 1)]
    assert len(states) == 100

    # A restart: a new worker on a new connection pool continues the rotation.
    send(fresh, name, model, [
        event(f"s{n}", "signup", "2026-05-02T10:00:00Z", contact_id=f"n{n:02d}")
        for n in range(30, 34)
    ])  # fmt: skip
    restarted = open_database(fresh.url)
    with OutboxWorker(restarted, quick()) as worker:
        worker.drain()
        restarted.dispose()
    owners = _owners(fresh, name)
    assert [owners[f"n{n}"] for n in range(30, 34)] == [OWNERS[0], OWNERS[1], OWNERS[2], OWNERS[0]]
    with fresh.connect() as conn, conn.begin():
        assert all(found.tags == ["assigned"] for found in labels(conn, name).values())


TAG_MODEL = """
version: 1
name: tag-tests
rules:
  - {id: signup, event: signup, points: 10}
triggers:
  - id: signed-up
    when: {event: signup}
    once: false
    actions: [{add_tag: newsletter}]
  - id: unsubscribed
    when: {event: unsubscribe}
    once: false
    actions: [{remove_tag: newsletter}]
  - id: bought
    when: {event: buy}
    actions:
      - remove_tag: prospect
      - add_tag: customer
      - assign: {owners: [anna@example.com, piotr@example.com]}
  - id: prospecting
    when: {event: visit}
    actions: [{add_tag: prospect}]
"""

TAG_LOG = [
    event("a1", "signup", "2026-05-01T10:00:00Z", contact_id="c1"),
    event("a2", "unsubscribe", "2026-05-01T11:00:00Z", contact_id="c1"),
    event("b1", "signup", "2026-05-01T10:00:00Z", contact_id="c2"),
    event("c1", "signup", "2026-05-01T10:00:00Z", contact_id="c3"),
    event("c2", "unsubscribe", "2026-05-01T11:00:00Z", contact_id="c3"),
    event("c3", "signup", "2026-05-01T12:00:00Z", contact_id="c3"),
    event("d1", "visit", "2026-05-01T10:00:00Z", contact_id="c4"),
    event("d2", "buy", "2026-05-01T11:00:00Z", contact_id="c4"),
    event("e1", "visit", "2026-05-01T10:00:00Z", contact_id="c5"),
    event("e2", "buy", "2026-05-01T11:00:00Z", contact_id="c5"),
    event("f1", "visit", "2026-05-01T10:00:00Z", contact_id="c6"),
]


def expected_labels(document: str, log: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The tags each contact ends with: every firing's tag actions applied in
    turn (the log is sent in order, so firings are queued in order)."""
    parsed = parse_model(document)
    actions = {trigger.id: trigger.actions for trigger in parsed.triggers}
    result = replay(Engine(parsed), [parse_event(raw) for raw in log], 2**62)
    tags: dict[str, set[str]] = {}
    for firing in sorted(result.firings, key=lambda f: (f.contact_id, f.order_key)):
        for action in actions[firing.trigger]:
            done = action.model_dump(exclude_none=True)
            if "add_tag" in done:
                tags.setdefault(firing.contact_id, set()).add(done["add_tag"])
            elif "remove_tag" in done:
                tags.setdefault(firing.contact_id, set()).discard(done["remove_tag"])
    return {contact: sorted(found) for contact, found in tags.items()}


def test_tags_are_applied_in_queue_order_by_interleaved_workers(fresh: sa.Engine) -> None:
    name, model = workspace(fresh, TAG_MODEL)
    send(fresh, name, model, TAG_LOG)
    drain_together(fresh, 2, quick(), local_batch=1)
    with fresh.connect() as conn, conn.begin():
        found = labels(conn, name)
    expected = expected_labels(TAG_MODEL, TAG_LOG)
    assert {contact: item.tags for contact, item in found.items() if item.tags} == {
        contact: tags for contact, tags in expected.items() if tags
    }
    assert expected["c1"] == []
    assert expected["c3"] == ["newsletter"]
    assert sorted(found[c].owner or "" for c in ("c4", "c5")) == [
        "anna@example.com",
        "piotr@example.com",
    ]


# -- the command and the migration -----------------------------------------------------


def test_leadscore_worker_drains_the_outbox(fresh: sa.Engine) -> None:
    with receiving("s3cret") as receiver:
        name, model = workspace(fresh, webhook_model(receiver.url))
        send(
            fresh,
            name,
            model,
            [event("d1", "demo_request", "2026-05-01T10:00:00Z", contact_id="c1")],
        )
        done = subprocess.run(
            [sys.executable, "-m", "leadscore", "worker", "--drain"],
            env={
                "LEADSCORE_DATABASE_URL": fresh.url.render_as_string(hide_password=False),
                "PATH": "/usr/bin:/bin",
            },
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    (row,) = hook_rows(fresh, name)
    assert receiver.keys() == {str(row.seq)}
    assert row.status == "done"


def test_the_migration_fills_in_the_kind_of_queued_actions(database_url: str) -> None:
    opened = open_database(database_url)
    try:
        with opened.begin() as conn:
            command.upgrade(_config(conn), "0002")
            conn.execute(sa.text("INSERT INTO workspaces (id, created_at) VALUES ('w', 0)"))
            conn.execute(
                sa.text(
                    "INSERT INTO firings (workspace, trigger, contact_id, event_key, event_id,"
                    " timestamp, model_version, recorded_at)"
                    " VALUES ('w', 't', 'c', '', 'e', 0, 1, 0)"
                )
            )
            conn.execute(
                sa.text(
                    "INSERT INTO outbox (firing, workspace, action_index, action, status, attempts,"
                    " next_attempt_at, created_at) VALUES (1, 'w', 0, :a, 'pending', 0, 0, 0),"
                    " (1, 'w', 1, :b, 'pending', 0, 0, 0)"
                ),
                {
                    "a": json.dumps({"add_tag": "x"}),
                    "b": json.dumps({"webhook": {"url": "http://x"}}),
                },
            )
        upgrade(database_url)
        with opened.connect() as conn:
            kinds = conn.execute(sa.select(outbox_rows.c.kind).order_by(outbox_rows.c.seq)).all()
        assert [kind for (kind,) in kinds] == ["add_tag", "webhook"]
    finally:
        opened.dispose()
