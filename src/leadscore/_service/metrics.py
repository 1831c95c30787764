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
| `leadscore_outbox_pending` | actions of firings not carried out yet, retries included |
| `leadscore_outbox_dead` | webhooks that failed every attempt (dead letters) |
| `leadscore_delivery_failures_total` | failed webhook attempts |

The outbox and delivery figures are read from the database at each scrape
(`outbox_stats`, `delivery_failures`), not counted in the process: deliveries
are made by whichever process's worker claims them, `leadscore worker`
processes included, and every process must report the same numbers.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from .._store.outbox import delivery_failures, outbox_stats

# Buckets in seconds, from a single event's commit (milliseconds) to a large
# batch (seconds): the targets are about 20 ms per event and a batch's second.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Outbox(Collector):
    """Reads the outbox's depth, its dead letters and the failed deliveries
    from the database when scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        pending = GaugeMetricFamily(
            "leadscore_outbox_pending",
            "Outbox rows (actions of trigger firings) not carried out yet, retries included.",
        )
        dead = GaugeMetricFamily(
            "leadscore_outbox_dead", "Webhooks that failed every attempt (dead letters)."
        )
        failures = CounterMetricFamily(
            "leadscore_delivery_failures", "Failed webhook attempts (no answer, or not a 2xx)."
        )
        database = self._metrics.database
        if database is not None:
            with database.connect() as conn:
                stats = outbox_stats(conn)
                failed = delivery_failures(conn)
            pending.add_metric([], float(stats.pending + stats.failed))
            dead.add_metric([], float(stats.dead))
            failures.add_metric([], float(failed))
        yield pending
        yield dead
        yield failures


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
        self.registry.register(_Outbox(self))


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
