"""Operations over real HTTP: Prometheus /metrics (a registry per app) and
the structured access log (one JSON line per request, no secrets)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from leadscore._service.app import create_app
from leadscore._service.logs import JsonFormatter
from leadscore._store import Scope, delivery_failures, outbox_stats

from ._service import Service, event, running

TRIGGERED = """
version: 1
name: ops
rules:
  - {id: demo, event: demo_request, points: 30}
triggers:
  - id: hot
    when: {score_crosses: 25}
    actions: [{add_tag: hot}, {webhook: {url: "https://crm.example.com/hook"}}]
"""


@pytest.fixture(scope="module")
def service(database: sa.Engine) -> Iterator[Service]:
    with running(database) as started:
        yield started


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_events_scoring_requests_and_the_outbox(service: Service) -> None:
    workspace = service.workspace(model=TRIGGERED)
    with service.client() as http:
        before = _samples(http.get("/metrics").text)
        sent = [
            event("m1", "demo_request", "2026-05-04T10:00:00Z", contact_id="m-c1"),
            event("m1", "demo_request", "2026-05-04T10:00:00Z", contact_id="m-c1"),
            event("m2", "no spaces", "2026-05-04T10:00:00Z", contact_id="m-c1"),
        ]
        answer = http.post("/v1/events", json=sent, headers=workspace.auth(Scope.WRITE))
        assert answer.json()["accepted"] == 1
        scraped = http.get("/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    after = _samples(scraped.text)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0.0)

    assert grew("leadscore_events_total", status="accepted") == 1
    assert grew("leadscore_events_total", status="duplicate") == 1
    assert grew("leadscore_events_total", status="rejected") == 1
    assert grew("leadscore_scoring_seconds_count") == 1
    assert (
        grew("leadscore_http_requests_total", route="/v1/events", method="POST", status="200") == 1
    )
    assert grew("leadscore_http_request_seconds_count", route="/v1/events") == 1
    with service.database.connect() as conn:
        stats = outbox_stats(conn)
        failures = delivery_failures(conn)
        mine = outbox_stats(conn, workspace=workspace.name)
    assert mine.pending + mine.failed >= 1  # m-c1's firing queued its actions
    assert after[("leadscore_outbox_pending", ())] == stats.pending + stats.failed
    assert after[("leadscore_outbox_dead", ())] == stats.dead
    assert after[("leadscore_delivery_failures_total", ())] == failures


def test_each_app_has_its_own_registry(service: Service) -> None:
    first, second = create_app(service.settings), create_app(service.settings)
    assert first.state.metrics.registry is not second.state.metrics.registry
    first.state.metrics.events.labels(status="accepted").inc()
    assert first.state.metrics.events.labels(status="accepted")._value.get() == 1
    assert second.state.metrics.events.labels(status="accepted")._value.get() == 0


def test_one_json_line_per_request_with_its_id_and_no_secret(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    workspace = service.workspace()
    key = workspace.keys[Scope.READ]
    with caplog.at_level(logging.INFO, logger="leadscore.access"), service.client() as http:
        named = http.get(
            "/v1/contacts/someone-private",
            headers={**workspace.auth(Scope.READ), "X-Request-ID": "req-42"},
        )
        anonymous = http.get("/healthz", headers={"X-Request-ID": "not ok!"})
        # A line is written once its answer is sent: it may come just after the client has it.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            getattr(record, "request_id", None) == anonymous.headers["x-request-id"]
            for record in caplog.records
        ):
            time.sleep(0.01)
    assert named.status_code == 404
    assert named.headers["x-request-id"] == "req-42"
    assert anonymous.headers["x-request-id"] != "not ok!"
    lines = [
        json.loads(JsonFormatter().format(record))
        for record in caplog.records
        if record.name == "leadscore.access"
    ]
    by_id = {line["request_id"]: line for line in lines}
    line = by_id["req-42"]
    assert line["route"] == "/v1/contacts/{contact_id}"
    assert (line["method"], line["status"], line["level"]) == ("GET", 404, "info")
    assert line["duration_ms"] >= 0
    assert line["key_id"] == key.split("_")[1]
    assert by_id[anonymous.headers["x-request-id"]]["route"] == "/healthz"
    text = json.dumps(lines)
    assert key not in text
    # The secret part: all after the id (token_urlsafe's own text may hold "_",
    # so splitting at every one gave a fragment, or "", found in any text).
    assert key.split("_", 2)[2] not in text
    assert "someone-private" not in text


def test_only_an_app_that_owns_its_process_settles_the_collector(database: sa.Engine) -> None:
    """`leadscore serve` (own_process) freezes what start-up built and sets rare
    collections once started; an app inside another program, as here in the
    test process, leaves the process's collector as it found it."""
    import asyncio
    import gc

    from leadscore._collector import RARE_THRESHOLDS
    from leadscore._settings import Settings

    settings = Settings(
        database_url=database.url.render_as_string(hide_password=False), outbox_worker=False
    )

    async def started(own_process: bool) -> tuple[tuple[int, ...], int]:
        app = create_app(settings, own_process=own_process)
        async with app.router.lifespan_context(app):
            return gc.get_threshold(), gc.get_freeze_count()

    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    assert before != RARE_THRESHOLDS
    try:
        assert asyncio.run(started(False)) == (before, frozen)
        thresholds, count = asyncio.run(started(True))
        assert thresholds == RARE_THRESHOLDS
        assert count > frozen
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


def test_a_settled_server_still_frees_old_cycles_on_its_clock() -> None:
    """At RARE_THRESHOLDS a cycle that reached the oldest generation before it
    became garbage outlives any number of young collections; the server's
    periodic full collection frees it."""
    import asyncio
    import gc
    import weakref

    from leadscore._collector import RARE_THRESHOLDS, collect_periodically

    class Node:
        other: Node | None = None

    before = gc.get_threshold()
    try:
        gc.set_threshold(*RARE_THRESHOLDS)
        a, b = Node(), Node()
        a.other, b.other = b, a
        gc.collect()  # both survive: they are in the oldest generation now
        alive = weakref.ref(a)
        del a, b
        for _ in range(3):
            gc.collect(1)  # the young generations' collections alone
        assert alive() is not None

        async def sweep_once() -> None:
            task = asyncio.create_task(collect_periodically(0.01))
            for _ in range(500):
                await asyncio.sleep(0.01)
                if alive() is None:
                    break
            task.cancel()

        asyncio.run(sweep_once())
        assert alive() is None
    finally:
        gc.set_threshold(*before)
