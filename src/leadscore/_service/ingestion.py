"""What the ingestion routes share: storing events and answering per event.

Events are stored by the store's `ingest`, through the process's committer
(committer.py: the events of concurrent requests share a transaction): an
answer is sent only when every accepted event in it is committed, and a bad
event never costs the good ones around it.

A request with one event answers like the event: 200 when accepted or a
duplicate, a 422 problem (`event-rejected`) when rejected. A batch answers
200 with one result per event, in order, whatever each result is.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from pydantic import BaseModel, Field, PrivateAttr

from .._errors import EventError
from .._settings import Settings
from .._store.database import reading
from .._store.ingest import EventOutcome
from .._store.workspaces import ModelVersion
from .committer import Committer
from .metrics import Metrics
from .modelcache import ModelCache
from .problems import Problem


class EventResult(BaseModel):
    """What became of one event."""

    id: str | None = Field(
        description="The event's id (`messageId` for Segment calls); null "
        "when a rejected event has none."
    )
    status: Literal["accepted", "duplicate", "rejected"] = Field(
        description="`accepted`: stored and scored. `duplicate`: an event with this id was "
        "stored before; the first copy is kept. `rejected`: not stored; see `reason`."
    )
    reason: str | None = Field(default=None, description="Why the event was rejected.")
    warnings: list[str] = Field(
        default_factory=list,
        description="Things worth knowing about an event that was stored (e.g. a duplicate "
        "that differs from the first copy).",
    )
    # A rejected event's field at fault and what is wrong there, for the
    # `errors` of the problem that answers a request of this one event.
    _error: EventError | None = PrivateAttr(default=None)


class IngestAnswer(BaseModel):
    """The answer to events sent: counts, and one result per event in order."""

    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResult]


A = TypeVar("A", bound=IngestAnswer)


@dataclass(frozen=True, slots=True)
class Refused:
    """An item rejected before it reached the store (not an object, a bad Segment call)."""

    event_id: str | None
    reason: str


def check_batch_size(count: int, settings: Settings) -> None:
    if count > settings.max_batch_events:
        raise Problem(
            413,
            f"a batch of {count:,} events; at most {settings.max_batch_events:,} are accepted "
            "in one request: split it",
            kind="too-many-events",
        )


def active_model(
    database: sa.Engine | sa.Connection, models: ModelCache, *, workspace: str
) -> ModelVersion:
    """The workspace's active model, compiled; a 409 problem when it has none."""
    with reading(database) as conn:
        model = models.active(conn, workspace=workspace)
    if model is None:
        # Scores are what the model defines: storing events for a model
        # that does not exist yet would accept data whose meaning is
        # unknown. Sending again once a model is active loses nothing
        # (ids make resends duplicates).
        raise Problem(
            409,
            "This workspace has no active scoring model yet, so events cannot be scored: "
            "upload one with `PUT /v1/models/active` (an admin key), then send again.",
            kind="no-active-model",
        )
    return model


def store_events(
    *,
    committer: Committer,
    metrics: Metrics,
    workspace: str,
    model: ModelVersion,
    items: Sequence[Mapping[str, Any] | Refused],
) -> list[EventResult]:
    """Store the events of `items` under `model` (the workspace's active one,
    from `active_model`); one result per item, in order."""
    started = time.perf_counter()
    outcomes = iter(
        committer.ingest(
            workspace=workspace,
            model=model,
            events=[item for item in items if not isinstance(item, Refused)],
        )
    )
    metrics.scoring.observe(time.perf_counter() - started)
    results = [
        _refused(item) if isinstance(item, Refused) else _result(next(outcomes)) for item in items
    ]
    # Counted by status, not event by event: a labelled child's lookup costs
    # more than the count itself.
    for status, count in Counter(result.status for result in results).items():
        metrics.events.labels(status=status).inc(count)
    return results


def _refused(item: Refused) -> EventResult:
    return EventResult(id=item.event_id, status="rejected", reason=item.reason)


def _result(outcome: EventOutcome) -> EventResult:
    result = EventResult(
        id=outcome.event_id,
        status=outcome.status.value,
        reason=outcome.reason,
        warnings=[warning.message for warning in outcome.warnings],
    )
    result._error = outcome.error
    return result


def answer(results: list[EventResult], kind: type[A]) -> A:
    """The answer to a request's events, as `kind` (IngestAnswer or a subclass, a route's own)."""
    statuses = [result.status for result in results]
    return kind(
        accepted=statuses.count("accepted"),
        duplicates=statuses.count("duplicate"),
        rejected=statuses.count("rejected"),
        results=results,
    )


def answer_one(result: EventResult, kind: type[A]) -> A:
    """The answer to a request of one event: a 422 problem when it was rejected."""
    if result.status == "rejected":
        raise rejection(str(result.reason), result._error)
    return answer([result], kind)


def rejection(reason: str, error: EventError | None = None) -> Problem:
    """The problem for a request of one event that is rejected; `error`, when
    known, names the field at fault."""
    return Problem(
        422,
        f"The event was rejected: {reason}",
        kind="event-rejected",
        errors=None
        if error is None
        else [{"path": error.field or "body", "message": error.message}],
    )
