"""Webhook deliveries over HTTP (admin keys): the log, the dead letters,
redelivery, and the workspace's signing secret.

A delivery is one webhook action of one firing. Its id is the idempotency
key its every attempt carries. Listings hold no payloads and no secrets; one
delivery shows its payload (personal data: hence admin keys only).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from .._store import outbox
from .._store.database import now
from .._time import format_timestamp
from . import problems
from .bodies import BodyFirst
from .deps import AdminKey, Database, Models
from .problems import Problem

router = APIRouter(tags=["deliveries"], route_class=BodyFirst)

MAX_LIMIT = 500
_MAX_ID = 2**63 - 1  # ids are BIGINT: a larger number names nothing, and must not reach SQL

# The id a path names.
DeliveryId = Annotated[int, Path(ge=1, le=_MAX_ID, description="The delivery's id.")]

Status = Literal["pending", "failed", "done", "dead"]


class FiringOut(BaseModel):
    trigger: str
    contact_id: str
    event_id: str
    timestamp: str = Field(description="RFC 3339: the event's time.")
    model_version: int


class DeliverySummary(BaseModel):
    """A webhook of a firing and how its delivery is going."""

    id: str = Field(description="The delivery's id: its `Idempotency-Key` header.")
    status: Status = Field(
        description="`pending`: not tried yet (or redelivered). `failed`: the last attempt "
        "failed; retried at `next_attempt_at`. `done`: a 2xx came back. `dead`: every "
        "attempt failed (a dead letter); `redeliver` queues it again."
    )
    url: str = Field(
        description="Where its latest attempt went, or where a redelivery sends it. Each "
        "attempt goes to the webhook its trigger has in the active model then (docs/api.md)."
    )
    firing: FiringOut
    created_at: str = Field(description="RFC 3339: when the firing queued it.")
    attempts: int = Field(description="Attempts since it was queued or last redelivered.")
    next_attempt_at: str | None = Field(description="RFC 3339; null unless pending or failed.")
    done_at: str | None = Field(description="RFC 3339: when it was delivered or died.")
    last_error: str | None = Field(description="Why the last failed attempt failed.")


class AttemptOut(BaseModel):
    attempt: int = Field(description="1, 2...: over the delivery's whole life.")
    started_at: str = Field(description="RFC 3339.")
    duration_ms: float
    status_code: int | None = Field(description="The receiver's status; null without an answer.")
    ok: bool
    error: str | None
    url: str | None = Field(
        description="Where this attempt was sent: a delivery goes to the webhook its trigger "
        "has at each attempt, so a model version that moved it moves the later attempts. "
        "Null for attempts logged before leadscore recorded it."
    )


class DeliveryDetail(DeliverySummary):
    payload: dict[str, Any] | None = Field(
        description="The body sent (made at the first attempt, then the same on every "
        "attempt); null before the first attempt."
    )
    attempts_log: list[AttemptOut] = Field(description="Every attempt, oldest first.")


class DeliveryPage(BaseModel):
    deliveries: list[DeliverySummary] = Field(description="Newest first.")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class DeliveryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status | None = Field(default=None, description="`dead`: the dead letters.")
    # No U+0000: no stored id has one, and PostgreSQL refuses it in any text.
    trigger: str | None = Field(default=None, pattern=r"^[^\x00]*$")
    contact_id: str | None = Field(default=None, pattern=r"^[^\x00]*$")
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, description="The `next_cursor` of the last page.")


class Secret(BaseModel):
    secret: str = Field(
        description="Signs the webhooks whose action has no `secret` of its own (HMAC-SHA256)."
    )
    created_at: str = Field(description="RFC 3339.")


def _stamp(micros: int | None) -> str | None:
    return None if micros is None else format_timestamp(micros)


def _summary(found: outbox.Delivery) -> dict[str, Any]:
    firing = found.firing
    return {
        "id": str(found.seq),
        "status": found.status,
        "url": found.url,
        "firing": FiringOut(
            trigger=firing.trigger,
            contact_id=firing.contact_id,
            event_id=firing.event_id,
            timestamp=format_timestamp(firing.timestamp),
            model_version=firing.model_version,
        ),
        "created_at": format_timestamp(found.created_at),
        "attempts": found.attempts,
        "next_attempt_at": _stamp(found.next_attempt_at),
        "done_at": _stamp(found.done_at),
        "last_error": found.last_error,
    }


def _unknown(delivery_id: int) -> Problem:
    return Problem(404, f"This workspace has no delivery {delivery_id}.", kind="unknown-delivery")


def _cursor(text: str) -> int:
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    if not (text.isascii() and text.isdigit() and int(text) <= _MAX_ID):
        raise Problem(
            422,
            "The cursor is not one this service gave.",
            kind="invalid-request",
            errors=[{"path": "cursor", "message": "not a cursor of this list"}],
        )
    return int(text)


@router.get(
    "/v1/deliveries",
    response_model=DeliveryPage,
    summary="List webhook deliveries",
    responses=problems.responses(401, 403, 422),
)
def get_deliveries(
    caller: AdminKey, database: Database, query: Annotated[DeliveryQuery, Query()]
) -> DeliveryPage:
    """The workspace's webhook deliveries, newest first, filtered by status
    (`dead` lists the dead letters), trigger or contact (an admin key)."""
    before = None if query.cursor is None else _cursor(query.cursor)
    with database.connect() as conn:
        found = outbox.deliveries(
            conn,
            workspace=caller.workspace,
            status=query.status,
            trigger=query.trigger,
            contact_id=query.contact_id,
            before=before,
            limit=query.limit + 1,
        )
    page = found[: query.limit]
    return DeliveryPage(
        deliveries=[DeliverySummary(**_summary(item)) for item in page],
        next_cursor=str(page[-1].seq) if len(found) > query.limit else None,
    )


def _detail(found: outbox.Delivery) -> DeliveryDetail:
    return DeliveryDetail(
        **_summary(found),
        payload=None if found.payload is None else orjson.loads(found.payload),
        attempts_log=[
            AttemptOut(
                attempt=attempt.attempt,
                started_at=format_timestamp(attempt.started_at),
                duration_ms=round(attempt.duration / 1000, 3),
                status_code=attempt.status_code,
                ok=attempt.ok,
                error=attempt.error,
                url=attempt.url,
            )
            for attempt in found.log
        ],
    )


@router.get(
    "/v1/deliveries/{delivery_id}",
    response_model=DeliveryDetail,
    summary="A webhook delivery",
    responses=problems.responses(401, 403, 404, 422),
)
def get_delivery(caller: AdminKey, delivery_id: DeliveryId, database: Database) -> DeliveryDetail:
    """One delivery with its payload and every attempt (an admin key)."""
    with database.connect() as conn:
        found = outbox.delivery(conn, workspace=caller.workspace, seq=delivery_id)
    if found is None:
        raise _unknown(delivery_id)
    return _detail(found)


@router.post(
    "/v1/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryDetail,
    status_code=202,
    summary="Deliver a webhook again",
    responses=problems.responses(401, 403, 404, 422),
)
def post_redeliver(
    caller: AdminKey, delivery_id: DeliveryId, database: Database, models: Models
) -> DeliveryDetail:
    """Queue a delivery again, whatever its status, with a fresh budget of
    attempts (an admin key). It keeps its id, so its `Idempotency-Key` and its
    body are the same: a receiver that processed it before ignores it. It
    goes to the webhook its trigger has in the active model now, when the
    model still has it (its `url` shows where)."""
    # One transaction: the answer shows the delivery as queued, before a
    # worker can take it.
    with database.connect() as conn, conn.begin():
        active = models.active(conn, workspace=caller.workspace)
        if not outbox.redeliver(
            conn,
            workspace=caller.workspace,
            seq=delivery_id,
            now=now(),
            model=None if active is None else active.engine.model,
        ):
            raise _unknown(delivery_id)
        found = outbox.delivery(conn, workspace=caller.workspace, seq=delivery_id)
    assert found is not None  # just updated, in this transaction
    return _detail(found)


@router.get(
    "/v1/webhooks/secret",
    response_model=Secret,
    summary="The webhook signing secret",
    responses=problems.responses(401, 403),
)
def get_secret(caller: AdminKey, database: Database) -> Secret:
    """The secret that signs the workspace's webhooks whose action names no
    `secret` (an admin key). Made on first use, so it is the same before and
    after the first delivery."""
    with database.connect() as conn:
        found = outbox.signing_secret(conn, workspace=caller.workspace, now=now())
    return Secret(secret=found.secret, created_at=format_timestamp(found.created_at))


@router.post(
    "/v1/webhooks/secret",
    response_model=Secret,
    summary="Replace the webhook signing secret",
    responses=problems.responses(401, 403),
)
def post_secret(caller: AdminKey, database: Database) -> Secret:
    """A new signing secret replaces the old one at once (an admin key): every
    attempt from now on, retries included, is signed with it."""
    with database.connect() as conn:
        found = outbox.signing_secret(conn, workspace=caller.workspace, now=now(), rotate=True)
    return Secret(secret=found.secret, created_at=format_timestamp(found.created_at))
