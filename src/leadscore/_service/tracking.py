"""Segment's HTTP Tracking API: `/v1/track`, `/identify`, `/page`, `/screen`,
`/alias`, `/group` and `/batch`, so that code instrumented with Segment's or
RudderStack's libraries sends to leadscore by changing only the host.

The translation into canonical events is leadscore._segment's. analytics.js
(Segment's browser library) posts to one-letter paths (`/v1/t`, `/v1/p`...,
`/v1/b` when it batches): those are here too, as aliases.

Segment answers `{"success": true}`; leadscore answers that too, with the
counts and per-event results of /v1/events alongside. A single call that is
rejected gets a 422 problem (libraries log a failed call, and do not resend
a 4xx); a batch gets 200 with a result per call.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from .._errors import EventError
from .._segment import CALL_TYPES, batch, from_segment, message_id
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
    rejection,
    store_sent,
)
from .problems import Problem

router = APIRouter(tags=["segment"], route_class=BodyFirst)


class TrackingAnswer(IngestAnswer):
    """Segment's answer, `success`, with leadscore's counts and results."""

    success: bool = Field(default=True, description="Always true in a 200, as Segment's.")


class SegmentCall(BaseModel):
    """A Segment call (for the OpenAPI document; see docs/api.md for the mapping).
    Field names are Segment's own, camelCase.
    Other fields Segment defines are accepted and dropped."""

    model_config = ConfigDict(extra="allow")

    type: str | None = Field(default=None, description="Required in a batch; else the path's.")
    messageId: str | None = Field(default=None, description="The event id.")
    userId: str | int | None = Field(default=None, description="The contact id.")
    anonymousId: str | int | None = Field(default=None, description="The anonymous id.")
    event: str | None = Field(default=None, description="track: the event name.")
    properties: dict[str, Any] | None = None
    traits: dict[str, Any] | None = None
    context: dict[str, Any] | None = None
    timestamp: str | None = None
    writeKey: str | None = Field(
        default=None, description="The write key, when not sent in the Authorization header."
    )


class SegmentBatch(BaseModel):
    """A `/v1/batch` body."""

    model_config = ConfigDict(extra="allow")

    batch: list[dict[str, Any]] = Field(
        description="Calls, each with its `type`; at most `max_batch_events`."
    )
    context: dict[str, Any] | None = Field(default=None, description="Shared by every call.")
    sentAt: str | None = None
    writeKey: str | None = None


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "description": "JSON, whatever the Content-Type (analytics.js sends text/plain); "
        "may be gzipped.",
        "required": True,
        "content": {"application/json": {"schema": model.model_json_schema()}},
    }


_RESPONSES = problems.responses(401, 403, 409, 413, 415, 422)


# The routes read their request themselves and return their answer encoded
# (ingestion.read_request says why); the key's schemes are still in the
# OpenAPI document (SECURITY).
def _call_route(kind: str) -> Callable[..., Awaitable[Response]]:
    async def post_call(request: Request) -> Response:
        received_at = datetime.now(UTC)
        sent = await read_request(request, key_in_body=True)

        def translate(_: Ingestion) -> list[dict[str, Any] | Refused]:
            try:
                return [from_segment(sent.body, kind=kind, received_at=received_at)]
            except EventError as error:
                raise rejection(str(error), error) from None

        def work() -> Response:
            return encoded(answer_one(store_sent(sent, items=translate), TrackingAnswer))

        return await run_in_threadpool(work)

    post_call.__doc__ = (
        f"A Segment `{kind}` call (a write key, or the body's `writeKey`). 200 with "
        "`success` when stored or a duplicate; a 422 problem when rejected."
    )
    return post_call


for _kind in CALL_TYPES:
    for _path, _summary in (
        (f"/v1/{_kind}", f"Segment {_kind}"),
        (f"/v1/{_kind[0]}", f"Segment {_kind} (analytics.js path)"),
    ):
        router.add_api_route(
            _path,
            _call_route(_kind),
            methods=["POST"],
            response_model=TrackingAnswer,
            summary=_summary,
            responses=_RESPONSES,
            openapi_extra={"requestBody": _body(SegmentCall), **SECURITY},
            operation_id=f"segment_{_path.removeprefix('/v1/')}",
        )


async def post_batch(request: Request) -> Response:
    """Segment calls in a batch (a write key, or the body's `writeKey`): 200
    with one result per call, in order."""
    received_at = datetime.now(UTC)
    sent = await read_request(request, key_in_body=True)
    body = sent.body

    def translate(app: Ingestion) -> list[dict[str, Any] | Refused]:
        items = body.get("batch") if isinstance(body, dict) else None
        if isinstance(items, list):
            check_batch_size(len(items), app.settings)
        try:
            translated = batch(body, received_at=received_at)
        except EventError as error:
            raise Problem(
                422,
                f"Not a Segment batch: {error}",
                kind="invalid-request",
                errors=[{"path": error.field or "body", "message": error.message}],
            ) from None
        assert isinstance(items, list)  # batch() has checked it
        return [
            Refused(message_id(items[index]), str(result))
            if isinstance(result, EventError)
            else result
            for index, result in enumerate(translated)
        ]

    def work() -> Response:
        return encoded(answer(store_sent(sent, items=translate), TrackingAnswer))

    return await run_in_threadpool(work)


for _path, _summary in (("/v1/batch", "Segment batch"), ("/v1/b", "Segment batch (analytics.js)")):
    router.add_api_route(
        _path,
        post_batch,
        methods=["POST"],
        response_model=TrackingAnswer,
        summary=_summary,
        responses=_RESPONSES,
        openapi_extra={"requestBody": _body(SegmentBatch), **SECURITY},
        operation_id=f"segment_{_path.removeprefix('/v1/')}",
    )
