"""What the ingestion routes share: storing events and answering per event.

Events are stored by the store's `ingest`, through the process's committer
(committer.py: the events of concurrent requests share a transaction): an
answer is sent only when every accepted event in it is committed, and a bad
event never costs the good ones around it.

A request with one event answers like the event: 200 when accepted or a
duplicate, a 422 problem (`event-rejected`) when rejected. A batch answers
200 with one result per event, in order, whatever each result is.

The routes read their request (`read_request`) and return the answer
already encoded (`encoded`), not the model for FastAPI to check against the
route's `response_model`, turn into a dict and encode: work done twice for
an answer built here from the same models. Small but measured (with results
that no longer carry a private attribute, see `Stored`): 73.4 -> 70.8 us of
CPU per batched event, 2.68M -> 2.58M instructions per single call, in
process. The `response_model` stays declared, for the OpenAPI document.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import sqlalchemy as sa
from fastapi import Request, Response
from pydantic import BaseModel, Field

from .._errors import EventError
from .._settings import Settings
from .._store.database import lookup_reader, reading
from .._store.keys import Scope
from .._store.workspaces import ModelVersion
from .auth import authorize, header_key
from .bodies import json_body
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


class IngestAnswer(BaseModel):
    """The answer to events sent: counts, and one result per event in order."""

    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResult]


A = TypeVar("A", bound=IngestAnswer)


@dataclass(frozen=True, slots=True)
class Ingestion:
    """What the ingestion routes need of the app, in one object."""

    database: sa.Engine
    models: ModelCache
    committer: Committer
    metrics: Metrics
    settings: Settings


@dataclass(frozen=True, slots=True)
class Sent:
    """What an ingestion request sent: the key presented, the body as JSON,
    and the app's parts to store it with."""

    key: str | None
    body: Any
    app: Ingestion
    # The 422 of a body that is not JSON, answered after the key is checked
    # (a caller without a valid key learns nothing of its body first).
    not_json: Problem | None = None


async def read_request(request: Request, *, key_in_body: bool = False) -> Sent:
    """What an ingestion route works on, read by the route itself rather than
    through FastAPI's dependencies (the key's two security schemes, the body,
    the app's parts, each resolved on its own): these are the hottest routes
    (the module's docstring has what it saved). The key is read as the
    security schemes read it (auth.header_key); they stay in the OpenAPI
    document (auth.SECURITY).

    `key_in_body`: without an Authorization header, the body's `writeKey`
    (analytics.js sends its key so: a header would cost a CORS preflight per
    call)."""
    not_json = None
    try:
        body = await json_body(request)
    except Problem as error:
        if error.status != 422:  # the transport's own: gzip, size
            raise
        body, not_json = None, error
    key = await header_key(request)
    if key is None and key_in_body and isinstance(body, dict):
        given = body.get("writeKey")
        if isinstance(given, str):
            key = given or None
    state = request.app.state
    app = Ingestion(state.database, state.models, state.committer, state.metrics, state.settings)
    return Sent(key, body, app, not_json)


def store_sent(
    sent: Sent, *, items: Callable[[Ingestion], Sequence[Mapping[str, Any] | Refused]]
) -> Stored:
    """An ingestion route's work, in its one trip to the thread pool: the key
    checked, the body's `items` made (a 422 problem when the body is not what
    the route takes), the active model found (in that order, so a bad key is
    a 401 before a bad body is a 422, and a workspace without a model a 409
    after both), on one connection (see `lookup_reader`); then the events
    stored."""
    app = sent.app
    with lookup_reader(app.database) as conn, conn.begin():
        caller = authorize(conn, sent.key, Scope.WRITE)
        if sent.not_json is not None:
            raise sent.not_json
        made = items(app)
        model = active_model(conn, app.models, workspace=caller.workspace)
    return store_events(
        committer=app.committer,
        metrics=app.metrics,
        workspace=caller.workspace,
        model=model,
        items=made,
    )


@dataclass(frozen=True, slots=True)
class Stored:
    """The results of a request's events, in order, and for rejected events
    whose field at fault is known, that field and what is wrong there (by
    index), for the `errors` of the problem that answers a request of one
    event. (Not a private attribute of EventResult: pydantic sets those up
    per instance, which tripled the cost of making a result.)"""

    results: list[EventResult]
    errors: dict[int, EventError]


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
) -> Stored:
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
    results: list[EventResult] = []
    errors: dict[int, EventError] = {}
    for index, item in enumerate(items):
        if isinstance(item, Refused):
            results.append(EventResult(id=item.event_id, status="rejected", reason=item.reason))
            continue
        outcome = next(outcomes)
        results.append(
            EventResult(
                id=outcome.event_id,
                status=outcome.status.value,
                reason=outcome.reason,
                warnings=[warning.message for warning in outcome.warnings],
            )
        )
        if outcome.error is not None:
            errors[index] = outcome.error
    # Counted by status, not event by event: a labelled child's lookup costs
    # more than the count itself.
    for status, count in Counter(result.status for result in results).items():
        metrics.events.labels(status=status).inc(count)
    return Stored(results, errors)


def answer(stored: Stored, kind: type[A]) -> A:
    """The answer to a request's events, as `kind` (IngestAnswer or a subclass, a route's own)."""
    statuses = [result.status for result in stored.results]
    return kind(
        accepted=statuses.count("accepted"),
        duplicates=statuses.count("duplicate"),
        rejected=statuses.count("rejected"),
        results=stored.results,
    )


def answer_one(stored: Stored, kind: type[A]) -> A:
    """The answer to a request of one event: a 422 problem when it was rejected."""
    (result,) = stored.results
    if result.status == "rejected":
        raise rejection(str(result.reason), stored.errors.get(0))
    return answer(stored, kind)


def encoded(answer: IngestAnswer) -> Response:
    """The answer as the route's response, encoded once (see the module's docstring)."""
    return Response(answer.model_dump_json(), media_type="application/json")


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
