"""Prometheus metrics of one app, at `GET /metrics`.

Each app has a registry of its own (not prometheus_client's global one), so
that several apps in one process (the tests start many) do not clash. With
`--workers N` every process counts for itself: a scrape reaches one of them.
Outbox depth is counted from the database at each scrape, so it is the same
whichever process answers.

| metric | what |
|---|---|
| `leadscore_events_total{status}` | events received, by fate: accepted, duplicate, rejected |
| `leadscore_scoring_seconds` | time to store and score one request's events (histogram) |
| `leadscore_http_requests_total{route,method,status}` | requests answered |
| `leadscore_http_request_seconds{route}` | time to answer a request (histogram) |
| `leadscore_outbox_pending` | outbox rows (actions of firings) not carried out yet |
| `leadscore_delivery_failures_total{action}` | failed attempts to carry out an action |

**Hook for the delivery worker:** whatever carries out outbox rows calls
`record_delivery_failure(app.state.metrics, action="webhook")` (or
`metrics.delivery_failures.labels(action=...).inc()`) for each failed
attempt; nothing else feeds that counter.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from .._store.database import reader
from .._store.firings import PENDING
from .._store.tables import outbox

# Buckets in seconds, from a single event's commit (milliseconds) to a large
# batch (seconds): the targets are about 20 ms per event and a batch's second.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _OutboxDepth(Collector):
    """Counts pending outbox rows when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "leadscore_outbox_pending",
            "Outbox rows (actions of trigger firings) not carried out yet.",
        )
        database = self._metrics.database
        if database is not None:
            with reader(database) as conn, conn.begin():
                count = conn.execute(
                    sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status == PENDING)
                ).scalar_one()
            gauge.add_metric([], float(count))
        yield gauge


class Metrics:
    """The app's metrics; `database` is set when the app starts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.database: sa.Engine | None = None
        self.events = Counter(
            "leadscore_events",
            "Events received, by fate: accepted, duplicate or rejected.",
            ["status"],
            registry=self.registry,
        )
        for status in ("accepted", "duplicate", "rejected"):
            self.events.labels(status=status)
        self.scoring = Histogram(
            "leadscore_scoring_seconds",
            "Time to store and score one request's events, in one transaction.",
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "leadscore_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "leadscore_http_request_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.delivery_failures = Counter(
            "leadscore_delivery_failures",
            "Failed attempts to carry out an outbox action, by kind of action.",
            ["action"],
            registry=self.registry,
        )
        self.registry.register(_OutboxDepth(self))


def record_delivery_failure(metrics: Metrics, *, action: str) -> None:
    """The delivery worker's hook: one failed attempt at an action (`webhook`, ...)."""
    metrics.delivery_failures.labels(action=action).inc()


router = APIRouter(tags=["operations"])


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}}},
)
def get_metrics(request: Request) -> Response:
    """The process's metrics in Prometheus's text format (no key: scrape it
    from inside the network; it holds counts, no workspace names or ids)."""
    metrics: Metrics = request.app.state.metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
