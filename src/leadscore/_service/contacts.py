"""Contacts over HTTP: list, one contact, its timeline, and GDPR access and erasure.

Every answer is as of the request's time: scores decay, so they are computed
when asked from the stored states (the store's `contacts` module; the list,
its `ranking`). Only identified contacts are served; everything is the key's
workspace's.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.convertors import PathConvertor, register_url_convertor

from .._engine import Award, Scorecard, StageEntry
from .._store import contacts as store
from .._store.database import now, reader
from .._store.ranking import ranked
from .._store.workspaces import ModelVersion
from .._time import format_timestamp, parse_instant
from . import problems
from .bodies import BodyFirst
from .deps import AdminKey, Database, Models, ReadKey
from .problems import Problem

router = APIRouter(tags=["contacts"], route_class=BodyFirst)

MAX_LIMIT = 500
MAX_TIMELINE_LIMIT = 1000

# Ids and names the routes look up: no U+0000, which no stored text holds
# (log.encode refuses it in ids) and PostgreSQL refuses in any text it is
# sent (a query naming one was a server error there).
_NO_NUL = r"^[^\x00]*$"
ContactId = Annotated[str, Path(pattern=_NO_NUL, description="The contact's id.")]


class _ContactConvertor(PathConvertor):
    """A contact id in a path, "/" included. Ids are free text (Segment user
    ids are often paths or URLs), and a "/" sent as %2F arrives decoded: with
    the default one-segment match, such a contact was listed but could not be
    read, exported or erased. The contact's own routes leave out paths ending
    in the others' suffixes, which stay theirs (an id ending in "/timeline"
    is served by its timeline and export routes only)."""

    regex = r"(?!.*/(?:timeline|export)$).+"


register_url_convertor("contact", _ContactConvertor())


# -- answers ---------------------------------------------------------------------------


class Card(BaseModel):
    """A scorecard (spec section 3) as of the request."""

    contact_id: str
    score: float
    fit: int
    grade: str | None
    band: str | None
    stage: str | None
    stage_entered_at: str | None = Field(description="RFC 3339.")
    stage_score: float | None
    tag_scores: dict[str, float]
    last_event_at: str | None = Field(description="RFC 3339.")


class StageEntered(BaseModel):
    stage: str
    entered_at: str = Field(description="RFC 3339: the timestamp of the event that moved it.")
    event_id: str
    manual: bool = Field(description="Entered by a `stage_set` event rather than by a rule.")


class ContactItem(Card):
    """A scorecard, and what triggers' actions put on the contact."""

    tags: list[str] = Field(
        description="Labels put on by `add_tag` actions (and not taken off by `remove_tag`), "
        "sorted; not the tags of `tag_scores`."
    )
    owner: str | None = Field(description="The owner the last `assign` action gave it.")


class ContactDetail(ContactItem):
    """A contact: its scorecard fields at the top level, and more."""

    traits: dict[str, Any] = Field(description="The traits merged from its identify events.")
    stage_history: list[StageEntered] = Field(description="Every stage entry, oldest first.")
    model_version: int = Field(description="The model version the scores come from.")


class ContactPage(BaseModel):
    contacts: list[ContactItem]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )
    model_version: int = Field(
        description="The model version every scorecard of the page comes from (the active one)."
    )


class AwardOut(BaseModel):
    rule_id: str
    points: int = Field(description="Points the rule gave at the event.")
    counted: float = Field(description="What they count now, after decay (2 decimals).")
    decays: bool
    tags: list[str]


class FiringOut(BaseModel):
    trigger: str
    event_id: str
    timestamp: str


class TimelineEntry(BaseModel):
    event: dict[str, Any] = Field(description="The event in the canonical format.")
    awards: list[AwardOut]
    stage_entries: list[StageEntered]
    firings: list[FiringOut]


class Timeline(BaseModel):
    contact_id: str
    score: float = Field(description="The score now: the sum of `counted`, clamped (2 decimals).")
    entries: list[TimelineEntry] = Field(description="Events in (timestamp, id) order.")
    next_cursor: str | None


class ContactExport(BaseModel):
    """Everything leadscore holds about a contact."""

    contact: ContactDetail | None = Field(
        description="Null when all its events are after the request's time."
    )
    anonymous_ids: list[str] = Field(description="Anonymous ids linked to it.")
    events: list[dict[str, Any]] = Field(description="Its events, canonical format, in order.")
    firings: list[dict[str, Any]]
    actions: list[dict[str, Any]] = Field(
        description="The outbox rows of its firings, with the webhooks' payloads."
    )
    delivery_attempts: list[dict[str, Any]] = Field(
        description="Every attempt at delivering its webhooks."
    )


# -- helpers ---------------------------------------------------------------------------


def _stamp(micros: int | None) -> str | None:
    return None if micros is None else format_timestamp(micros)


def _card(card: Scorecard) -> dict[str, Any]:
    out = card.to_json()
    out.pop("anonymous_id", None)
    return out


def _item(found: store.Contact) -> dict[str, Any]:
    return {**_card(found.card), "tags": found.labels.tags, "owner": found.labels.owner}


def _entry(entry: StageEntry) -> StageEntered:
    return StageEntered(
        stage=entry.stage,
        entered_at=format_timestamp(entry.timestamp),
        event_id=entry.event_id,
        manual=entry.manual,
    )


def _detail(found: store.Contact, history: list[StageEntry]) -> ContactDetail:
    return ContactDetail(
        **_item(found),
        traits=found.traits,
        stage_history=[_entry(entry) for entry in history],
        model_version=found.model_version,
    )


def _model(database: Database, models: Models, workspace: str) -> ModelVersion:
    with reader(database) as conn:
        model = models.active(conn, workspace=workspace)
    if model is None:
        raise Problem(404, "This workspace has no active model yet.", kind="no-active-model")
    return model


def _unknown(contact_id: str) -> Problem:
    return Problem(404, f"This workspace has no contact {contact_id!r}.", kind="unknown-contact")


def _encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode(cursor: str, shape: tuple[type, ...]) -> list[Any]:
    """A cursor _encode wrote, checked against the types it must hold."""
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        values = None
    if (
        not isinstance(values, list)
        or len(values) != len(shape)
        or not all(
            isinstance(value, kind) and not isinstance(value, bool)
            for value, kind in zip(values, shape, strict=True)
        )
    ):
        raise _bad_cursor()
    return values


def _bad_cursor() -> Problem:
    return Problem(
        422,
        "The cursor is not one this service gave.",
        kind="invalid-request",
        errors=[{"path": "cursor", "message": "not a cursor of this list"}],
    )


# -- routes ----------------------------------------------------------------------------

_CSV_COLUMNS = (
    "contact_id", "score", "fit", "grade", "band", "stage", "stage_entered_at",
    "stage_score", "tag_scores", "last_event_at", "tags", "owner",
)  # fmt: skip


class ListQuery(BaseModel):
    """Filters, order and page of `GET /v1/contacts`."""

    model_config = ConfigDict(extra="forbid")

    band: str | None = Field(default=None, pattern=_NO_NUL)
    grade: str | None = Field(default=None, pattern=_NO_NUL)
    stage: str | None = Field(default=None, pattern=_NO_NUL)
    tag: str | None = Field(
        default=None, pattern=_NO_NUL, description="Contacts with this label (`tags`)."
    )
    tag_score: str | None = Field(
        default=None,
        pattern=_NO_NUL,
        description="Contacts with a score for this tag (in `tag_scores`).",
    )
    owner: str | None = Field(
        default=None, pattern=_NO_NUL, description="Contacts given to this owner."
    )
    score_min: float | None = None
    score_max: float | None = None
    updated_since: str | None = Field(
        default=None, description="RFC 3339 or a date: a last event at or after it."
    )
    sort: Literal["score", "fit", "recency"] = "score"
    limit: int = Field(default=50, ge=1, le=MAX_LIMIT)
    cursor: str | None = None
    format: Literal["json", "csv"] = "json"


@router.get(
    "/v1/contacts",
    response_model=ContactPage,
    summary="List contacts",
    responses={
        **problems.responses(401, 403, 404, 422),
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    },
)
def get_contacts(
    caller: ReadKey,
    database: Database,
    models: Models,
    query: Annotated[ListQuery, Query()],
    accept: Annotated[str | None, Header()] = None,
) -> Response | ContactPage:
    """Identified contacts as of now, filtered, highest `sort` first, ties by
    contact id, a page at a time (a read key). With `format=csv` or
    `Accept: text/csv`, every contact that passes the filters, as CSV."""
    since = None if query.updated_since is None else _since(query.updated_since)
    model = _model(database, models, caller.workspace)
    csv_wanted = query.format == "csv" or (accept is not None and "text/csv" in accept)
    position = None
    at = now()
    if query.cursor is not None and not csv_wanted:
        # A walk's pages are all as of its first page's instant: scores decay,
        # so a page as of a later instant would order the contacts by scores
        # that have moved past the cursor's (a contact shown again or skipped).
        key, after, at = _decode(query.cursor, (float, str, int))
        if not 0 <= at <= now():
            raise _bad_cursor()
        position = (float(key), after)
    with reader(database) as conn, conn.begin():
        found = ranked(
            conn,
            workspace=caller.workspace,
            model=model,
            at=at,
            band=query.band,
            grade=query.grade,
            stage=query.stage,
            tag=query.tag,
            tag_score=query.tag_score,
            owner=query.owner,
            score_min=query.score_min,
            score_max=query.score_max,
            updated_since=since,
            sort=query.sort,
        )
        if position is not None:
            # The list is sorted by (order, contact id): the page starts past the cursor.
            found = found[bisect.bisect_right(found, position, key=lambda r: r[:2]) :]
        shown = found if csv_wanted else found[: query.limit]
        page = store.cards(
            conn,
            workspace=caller.workspace,
            model=model,
            at=at,
            contact_ids=[item.contact_id for item in shown],
        )
    if csv_wanted:
        return StreamingResponse(
            csv_lines(page),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="contacts.csv"'},
        )
    more = len(found) > query.limit
    last = shown[-1] if shown else None
    return ContactPage(
        model_version=model.version,
        contacts=[ContactItem(**_item(item)) for item in page],
        next_cursor=(
            _encode([last.order, last.contact_id, at]) if more and last is not None else None
        ),
    )


def _since(text: str) -> int:
    """An RFC 3339 time, or a date meaning 00:00 UTC (as the command line's --at)."""
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise Problem(
            422,
            f"updated_since: {exc}.",
            kind="invalid-request",
            errors=[{"path": "updated_since", "message": str(exc)}],
        ) from None


# A text cell a spreadsheet would read as a formula: one starting with = + -
# or @, or with a tab or carriage return before one (OWASP's list). Contact
# ids come from whoever holds a write key, which is meant to be embedded in
# web pages, so a visitor could name themselves =HYPERLINK(...) and have it
# run in the sales team's spreadsheet.
_FORMULA = re.compile(r"[=+\-@\t\r]")
# A plain decimal number (-12, +4915112345, -0.5): read as a number by any
# spreadsheet, never as a formula, so it is left as is.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")


def csv_cell(value: object) -> object:
    """A value as the CSV export writes it: None empty, and text that a
    spreadsheet would run as a formula prefixed with an apostrophe (which
    spreadsheets show as text and do not display)."""
    if value is None:
        return ""
    if isinstance(value, str) and _FORMULA.match(value) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def csv_lines(found: list[store.Contact]) -> Iterator[str]:
    """The CSV export of contacts, in pieces of 500 rows: the API's and the
    web app's (leads.csv) are the same columns. Text that a spreadsheet would
    read as a formula is written with an apostrophe before it (`csv_cell`)."""
    buffer = io.StringIO()
    # CRLF, as RFC 4180 has it: the writer quotes a cell holding a character
    # of its line terminator, and with "\n" alone a carriage return in a
    # contact id went out bare, which spreadsheets take for a new row (whose
    # first cell could then be a formula).
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(_CSV_COLUMNS)
    for count, item in enumerate(found, start=1):
        card = _item(item)
        card["tag_scores"] = json.dumps(card["tag_scores"], sort_keys=True)
        card["tags"] = json.dumps(card["tags"])
        writer.writerow([csv_cell(card[name]) for name in _CSV_COLUMNS])
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@router.get(
    "/v1/contacts/{contact_id:contact}",
    response_model=ContactDetail,
    summary="A contact",
    responses=problems.responses(401, 403, 404),
)
def get_contact(
    caller: ReadKey, contact_id: ContactId, database: Database, models: Models
) -> ContactDetail:
    """A contact's scorecard as of now, its traits and stage history (a read key)."""
    model = _model(database, models, caller.workspace)
    at = now()
    with reader(database) as conn:
        found = store.contact(
            conn, workspace=caller.workspace, model=model, contact_id=contact_id, at=at
        )
        history = store.history(
            conn, workspace=caller.workspace, model=model, contact_id=contact_id, at=at
        )
    if found is None or history is None:
        raise _unknown(contact_id)
    return _detail(found, history.stage_history)


@router.get(
    "/v1/contacts/{contact_id:path}/timeline",
    response_model=Timeline,
    summary="A contact's events and their points",
    responses=problems.responses(401, 403, 404, 422),
)
def get_timeline(
    caller: ReadKey,
    contact_id: ContactId,
    *,
    database: Database,
    models: Models,
    limit: Annotated[int, Query(ge=1, le=MAX_TIMELINE_LIMIT)] = 100,
    cursor: str | None = None,
) -> Timeline:
    """A contact's events in (timestamp, id) order, each with the points every
    rule awarded for it and what they count now, and the stage entries and
    firings at it (a read key)."""
    model = _model(database, models, caller.workspace)
    with reader(database) as conn:
        found = store.history(
            conn, workspace=caller.workspace, model=model, contact_id=contact_id, at=now()
        )
    if found is None:
        raise _unknown(contact_id)
    moments = found.moments
    if cursor is not None:
        stamp, event_id = _decode(cursor, (int, str))
        moments = [m for m in moments if m.event.order_key > (stamp, event_id)]
    page = moments[:limit]
    last = page[-1].event if page else None
    return Timeline(
        contact_id=contact_id,
        score=found.contact.card.score,
        entries=[
            TimelineEntry(
                event=moment.event.to_json(),
                awards=[_award(award, counted) for award, counted in moment.awards],
                stage_entries=[_entry(entry) for entry in moment.entries],
                firings=[
                    FiringOut(
                        trigger=firing.trigger,
                        event_id=firing.event_id,
                        timestamp=format_timestamp(firing.timestamp),
                    )
                    for firing in moment.firings
                ],
            )
            for moment in page
        ],
        next_cursor=(
            _encode([last.timestamp, last.id])
            if last is not None and len(moments) > limit
            else None
        ),
    )


def _award(award: Award, counted: float) -> AwardOut:
    return AwardOut(
        rule_id=award.rule_id,
        points=award.points,
        counted=round(counted, 2) + 0.0,
        decays=award.decays,
        tags=list(award.tags),
    )


@router.get(
    "/v1/contacts/{contact_id:path}/export",
    response_model=ContactExport,
    summary="Everything held about a contact",
    responses=problems.responses(401, 403, 404),
)
def get_export(
    caller: AdminKey, contact_id: ContactId, database: Database, models: Models
) -> ContactExport:
    """Everything stored about a contact, for a GDPR access request (an admin
    key: it holds every event's properties and the actions' payloads)."""
    model = _model(database, models, caller.workspace)
    at = now()
    with reader(database) as conn:
        found = store.held(
            conn, workspace=caller.workspace, model=model, contact_id=contact_id, at=at
        )
        history = store.history(
            conn, workspace=caller.workspace, model=model, contact_id=contact_id, at=at
        )
    if found is None:
        raise _unknown(contact_id)
    return ContactExport(
        contact=(
            _detail(found.contact, history.stage_history)
            if found.contact is not None and history is not None
            else None
        ),
        anonymous_ids=found.anonymous_ids,
        events=found.events,
        firings=[_times(row, "timestamp", "recorded_at") for row in found.firings],
        actions=[
            _times(row, "next_attempt_at", "created_at", "lease_until", "done_at")
            for row in found.actions
        ],
        delivery_attempts=[_times(row, "started_at") for row in found.attempts],
    )


def _times(row: dict[str, Any], *names: str) -> dict[str, Any]:
    out = {key: value for key, value in row.items() if key != "workspace"}
    for name in names:
        out[name] = _stamp(out.get(name))
    return out


@router.delete(
    "/v1/contacts/{contact_id:contact}",
    status_code=204,
    response_class=Response,
    summary="Erase a contact",
    responses=problems.responses(401, 403, 404),
)
def delete_contact(caller: AdminKey, contact_id: ContactId, database: Database) -> Response:
    """Erase a contact and everything held about it (an admin key): its events,
    the events of the anonymous ids linked to it, its scores, firings and
    their actions. 404 when there is no such contact."""
    with database.connect() as conn:
        existed = store.erase(conn, workspace=caller.workspace, contact_id=contact_id)
    if not existed:
        raise _unknown(contact_id)
    return Response(status_code=204)
