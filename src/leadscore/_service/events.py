"""`POST /v1/events`: events in the canonical format of the spec."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from . import problems
from .auth import SECURITY
from .bodies import BodyFirst
from .ingestion import (
    IngestAnswer,
    Ingestion,
    Refused,
    answer,
    answer_one,
    check_batch_size,
    encoded,
    read_request,
    store_sent,
)
from .problems import Problem

router = APIRouter(tags=["ingestion"], route_class=BodyFirst)


class Event(BaseModel):
    """One event, in the canonical format of the spec (for the OpenAPI document:
    each event of a request is validated on its own, so that a bad one is
    rejected alone)."""

    model_config = ConfigDict(extra="forbid")  # as parse_event: a misspelt field is an error

    id: str = Field(description="Unique within the workspace: an id sent again is a duplicate.")
    type: str = Field(
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="The event type the model's rules name: `page_view`, `demo_request`...",
    )
    contact_id: str | None = Field(
        default=None,
        description="The known person; this or `anonymous_id` is required, both link the two.",
    )
    anonymous_id: str | None = Field(default=None, description="A visitor not identified yet.")
    timestamp: str = Field(
        description="When it happened: RFC 3339 with an offset.",
        examples=["2026-05-04T10:00:00Z"],
    )
    properties: dict[str, Any] | None = Field(default=None, description="What the rules test.")
    traits: dict[str, Any] | None = Field(
        default=None, description="On `identify`: the person's traits, for fit rules."
    )


_EVENT = Event.model_json_schema()
_BODY = {
    "description": "One event, or a JSON array of at most `max_batch_events` events "
    "(a setting, 1,000 by default). Read as JSON whatever the Content-Type; may be gzipped "
    "(`Content-Encoding: gzip`).",
    "required": True,
    "content": {
        "application/json": {
            "schema": {"oneOf": [_EVENT, {"type": "array", "items": _EVENT, "title": "Batch"}]}
        }
    },
}


def _items(body: Any, app: Ingestion) -> list[dict[str, Any] | Refused]:
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list):
        check_batch_size(len(body), app.settings)
        return [
            item
            if isinstance(item, dict)
            else Refused(None, f"[{index}]: expected an event (a JSON object)")
            for index, item in enumerate(body)
        ]
    raise Problem(
        422,
        "Expected one event (a JSON object) or a JSON array of events.",
        kind="invalid-request",
        errors=[{"path": "body", "message": "expected a JSON object or array"}],
    )


@router.post(
    "/v1/events",
    response_model=IngestAnswer,
    summary="Send events",
    responses=problems.responses(401, 403, 409, 413, 415, 422),
    openapi_extra={"requestBody": _BODY, **SECURITY},
)
async def post_events(request: Request) -> Response:
    """Store and score events (a write key).

    One event answers 200 when accepted or a duplicate, and a 422 problem
    when rejected. A JSON array answers 200 with one result per event, in
    order: accepted, duplicate, or rejected with the reason. The answer comes
    after the accepted events are committed.
    """
    # The request read by the route and the answer encoded by it, as the
    # Segment routes' (ingestion.read_request says why).
    sent = await read_request(request)

    def work() -> Response:
        stored = store_sent(sent, items=lambda app: _items(sent.body, app))
        if isinstance(sent.body, dict):
            return encoded(answer_one(stored, IngestAnswer))
        return encoded(answer(stored, IngestAnswer))

    return await run_in_threadpool(work)
