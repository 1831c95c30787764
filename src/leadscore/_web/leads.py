"""The leads list and the contact card: what a sales rep opens every morning.

Both read as of the request's time, like the contacts API: the list (and
its CSV) through the store's ranking (_store/ranking.py), the card through
its contact queries (_store/contacts.py).
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .._service.contacts import csv_lines
from .._service.deps import CurrentSettings, Database, Models
from .._store import actions, outbox, ranking
from .._store import contacts as store
from .._store.database import now
from .._store.ranking import Ranked, ranked, traits, with_bands
from .._store.workspaces import ModelVersion
from .analysis import score_series
from .common import Page, Refused, Sales, active, script_json
from .predicted import prediction

router = APIRouter(include_in_schema=False)

NOTHING = actions.Labels()  # of a contact no action has tagged or assigned

PAGE_SIZE = 50
# No workspace has this many pages (50 billion contacts); a larger number asks for the last.
LAST_PAGE = 1_000_000_000
FIRINGS = 500  # deliveries shown on a contact card, newest first


class LeadQuery(BaseModel):
    """The filters of the leads list, as they stand in its URL (an empty
    field of the form is no filter). Two kinds of tag, as in the contacts
    API: `tag` is a label an `add_tag` action put on the contact, and
    `tag_score` a tag of the model's rules that some award named."""

    model_config = ConfigDict(frozen=True)

    band: str | None = None
    grade: str | None = None
    stage: str | None = None
    owner: str | None = None
    tag: str | None = None
    tag_score: str | None = None
    q: str | None = None
    mine: bool = False
    page: int = Field(default=1, ge=1)

    @field_validator("band", "grade", "stage", "owner", "tag", "tag_score", "q", mode="before")
    @classmethod
    def _given(cls, value: object) -> object:
        return (value.strip() or None) if isinstance(value, str) else value

    @field_validator("page")
    @classmethod
    def _within_reach(cls, value: int) -> int:
        # A page past the last one shows the last (`leads`); but first its
        # offset goes to SQL, which takes 64-bit integers only: a page number
        # of 23 digits was a server error.
        return min(value, LAST_PAGE)

    def url(self, path: str = "/", **changes: Any) -> str:
        values: dict[str, Any] = self.model_dump(exclude={"page", "mine"})
        values["mine"] = "1" if self.mine else None
        values.update(changes)
        kept = {key: value for key, value in values.items() if value not in (None, "")}
        return path + ("?" + urlencode(kept) if kept else "")


Filters = Annotated[LeadQuery, Query()]


def _found(
    conn: sa.Connection,
    model: ModelVersion,
    workspace: str,
    query: LeadQuery,
    email: str,
    *,
    at: int,
) -> list[Ranked]:
    return ranked(
        conn,
        workspace=workspace,
        model=model,
        at=at,
        band=query.band,
        grade=query.grade,
        stage=query.stage,
        tag_score=query.tag_score,
        tag=query.tag,
        owner=email if query.mine else query.owner,
        search=query.q,
    )


def _page(
    database: Database, model: ModelVersion, workspace: str, query: LeadQuery, email: str
) -> tuple[int, list[Ranked]]:
    """A page of the list and how many leads it pages through: computed in SQL
    when it can be (ranking.page), else from every contact (ranking.ranked)."""
    offset = (query.page - 1) * PAGE_SIZE
    narrowed = (query.tag, query.tag_score, query.q, query.owner)
    if narrowed == (None, None, None, None) and not query.mine:
        with database.connect() as conn:
            paged = ranking.page(
                conn,
                workspace=workspace,
                model=model,
                at=now(),
                offset=offset,
                limit=PAGE_SIZE,
                band=query.band,
                grade=query.grade,
                stage=query.stage,
            )
        if paged is not None:
            return paged
    with database.connect() as conn:
        found = _found(conn, model, workspace, query, email, at=now())
    return len(found), found[offset : offset + PAGE_SIZE]


def _choices(model: ModelVersion, labels: list[str]) -> dict[str, list[str]]:
    compiled = model.engine.compiled
    tags = sorted({tag for rule in model.engine.model.rules for tag in rule.tags})
    return {
        "band": [name for name, _ in compiled.bands],
        "grade": [name for name, _ in compiled.grades],
        "stage": list(compiled.stage_names),
        "tag_score": tags,
        "tag": labels,
    }


@router.get("/")
def leads(
    session: Sales, request: Request, query: Filters, *, database: Database, models: Models
) -> Response:
    view = Page(request, session)
    workspace = session.user.workspace
    model = active(database, models, workspace)
    if model is None:
        return view.render("leads.html", model=None, query=query)
    total, shown = _page(database, model, workspace, query, session.user.email)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(query.page, pages)
    if page != query.page:
        total, shown = _page(
            database, model, workspace, query.model_copy(update={"page": page}), session.user.email
        )
    shown = with_bands(model, shown)
    keys = [item.contact_id for item in shown]
    with database.connect() as conn, conn.begin():
        known = traits(conn, workspace=workspace, keys=keys)
        labelled = actions.labels(conn, workspace, keys)
        tags = actions.tag_names(conn, workspace)
    return view.render(
        "leads.html",
        model=model,
        query=query,
        choices=_choices(model, tags),
        rows=[
            (item, _name(known.get(item.contact_id, {})), labelled.get(item.contact_id, NOTHING))
            for item in shown
        ],
        total=total,
        page=page,
        pages=pages,
        first=(page - 1) * PAGE_SIZE + 1,
    )


def _name(traits: dict[str, Any]) -> str:
    """How a person is called in a list: their name, else their e-mail address."""
    for key in ("name", "full_name", "email"):
        value = traits.get(key)
        if isinstance(value, str) and value:
            return value
    first, last = traits.get("first_name"), traits.get("last_name")
    return " ".join(str(part) for part in (first, last) if part) or ""


@router.get("/leads.csv")
def leads_csv(session: Sales, query: Filters, database: Database, models: Models) -> Response:
    workspace = session.user.workspace
    model = active(database, models, workspace)
    found: list[store.Contact] = []
    if model is not None:
        # Every column of the scorecard: each listed contact's whole card (an
        # export, not a page, so its time in proportion to the contacts is fine).
        at = now()
        with database.connect() as conn, conn.begin():
            listed = _found(conn, model, workspace, query, session.user.email, at=at)
            found = store.cards(
                conn,
                workspace=workspace,
                model=model,
                at=at,
                contact_ids=[item.contact_id for item in listed],
            )
    return StreamingResponse(
        csv_lines(found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="leads.csv"'},
    )


# -- the contact card ---------------------------------------------------------------


# `path`: an id is free text and may hold a "/" (the lists' links leave it as
# it is, and %2F arrives decoded); the card has no sub-pages to tell apart.
# An id with a "." or ".." segment comes as `/contacts/?id=...` instead
# (common.contact_href says why).
@router.get("/contacts/{contact_id:path}")
def contact_card(
    session: Sales,
    request: Request,
    contact_id: str,
    *,
    database: Database,
    models: Models,
    settings: CurrentSettings,
    in_query: Annotated[str | None, Query(alias="id")] = None,
) -> Response:
    if not contact_id and in_query is not None:
        contact_id = in_query
    workspace = session.user.workspace
    model = active(database, models, workspace)
    if model is None:
        raise Refused(404, "No model yet", "This workspace has no scoring model yet.")
    if "\x00" in contact_id:  # no stored id holds one; PostgreSQL refuses it (a 500 page)
        raise Refused(404, "No such contact", f"This workspace has no contact {contact_id!r}.")
    at = now()
    with database.connect() as conn:
        found = store.history(conn, workspace=workspace, model=model, contact_id=contact_id, at=at)
        sent = outbox.deliveries(conn, workspace=workspace, contact_id=contact_id, limit=FIRINGS)
    if found is None:
        raise Refused(404, "No such contact", f"This workspace has no contact {contact_id!r}.")
    engine = model.engine
    rules = {rule.id: rule for rule in engine.model.rules}
    triggers = {trigger.id: trigger for trigger in engine.model.triggers}
    stages = {stage.name: stage for stage in engine.model.stages}
    awards = [award for moment in found.moments for award, _ in moment.awards]
    start = found.moments[0].event.timestamp if found.moments else at
    series = score_series(engine, awards, start=start, end=at)
    # Why the score is what it is: what each rule's awards count now.
    reasons: dict[str, list[float]] = {}
    for moment in found.moments:
        for award, counted in moment.awards:
            tally = reasons.setdefault(award.rule_id, [0.0, 0.0])
            tally[0] += counted
            tally[1] += 1
    why = sorted(reasons.items(), key=lambda item: -item[1][0])
    # The firings, newest first, each with its webhooks' deliveries.
    deliveries: dict[tuple[str, str], list[outbox.Delivery]] = {}
    for item in sent:
        deliveries.setdefault((item.firing.trigger, item.firing.event_id), []).insert(0, item)
    fired = [firing for moment in reversed(found.moments) for firing in moment.firings]
    events = [moment.event for moment in found.moments]
    predicted = prediction(settings.predictive_model, contact_id, events, at=at)
    return Page(request, session).render(
        "contact.html",
        contact=found.contact,
        card=found.contact.card,
        moments=list(reversed(found.moments)),
        history=found.stage_history,
        why=why,
        rules=rules,
        triggers=triggers,
        stages=stages,
        labels=found.contact.labels,
        predicted=predicted,
        fired=[(firing, deliveries.get((firing.trigger, firing.event_id), [])) for firing in fired],
        series=script_json([[stamp // 1000, score] for stamp, score in series]),
        series_table=series[:: max(len(series) // 12, 1)],
        model=model,
    )
