"""The store reads behind the web app's pages and the contacts API, on
SQLite and PostgreSQL: the ranked list is a replay of the log, filtered and
sorted, under every filter and order, for rows of the active model version
and rows of an older one; the whole cards of a page; the report reads; the
demo user.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from leadscore import parse_model, replay
from leadscore._engine import Engine, Scorecard
from leadscore._events import Event
from leadscore._replay import explain
from leadscore._store import actions, create_workspace, ingest, store_model
from leadscore._store import contacts as store
from leadscore._store.database import now
from leadscore._store.ranking import page, ranked, tallies, traits, with_bands
from leadscore._store.reports import contacts_with, event_types
from leadscore._store.tables import owners as owner_rows
from leadscore._store.users import verify_password
from leadscore._web.analysis import (
    AGE_BUCKETS,
    POINTS,
    Tallies,
    report,
    score_series,
    tally,
)
from leadscore._web.demo import demo_user

from ._browser import MODEL, history


def _workspace(database: sa.Engine, events: list[Event] | None = None) -> tuple[str, Any]:
    name = f"w-{uuid.uuid4().hex[:10]}"
    with database.connect() as conn:
        create_workspace(conn, workspace=name)
        model = store_model(conn, workspace=name, document=MODEL, activate=True)
        ingest(conn, workspace=name, model=model, events=history() if events is None else events)
    return name, model


DAY = 86_400_000_000
# Labels put on directly, as the outbox worker's actions would (MODEL's one
# trigger sends a webhook).
TAGGED = {"c001": ["customer"], "c004": ["customer", "vip"], "c007": ["customer"]}
OWNED = {"c002": "someone@example.com", "c004": "someone@example.com", "c005": "other@example.com"}


def _label(conn: sa.Connection, name: str) -> None:
    with conn.begin():
        for contact_id, tags in TAGGED.items():
            for tag in tags:
                actions.add_tag(conn, name, contact_id, tag, now())
        for contact_id, owner in OWNED.items():
            actions.set_owner(conn, name, contact_id, owner=owner, trigger="t", now=now())


def _ranked(conn: sa.Connection, name: str, model: Any, at: int, **filters: Any) -> list[Any]:
    found = ranked(conn, workspace=name, model=model, at=at, **filters)
    return [
        (r.contact_id, r.score, r.fit, r.grade, r.band, r.stage, r.last_event_at)
        for r in with_bands(model, found)
    ]


FILTERS: list[dict[str, Any]] = [
    {},
    {"band": "hot"},
    {"band": "warm"},
    {"grade": "A"},
    {"stage": "lead"},
    {"tag_score": "intent"},
    {"grade": "B", "band": "cold"},
    {"owner": "someone@example.com"},
    {"tag": "customer"},
]

# What each filter keeps, said of a replay's scorecard and the labels put on.
PASSES: dict[str, Callable[[Scorecard, str, Any], bool]] = {
    "band": lambda card, _, value: card.band == value,
    "grade": lambda card, _, value: card.grade == value,
    "stage": lambda card, _, value: card.stage == value,
    "tag_score": lambda card, _, value: value in card.tag_scores,
    "tag": lambda _, contact_id, value: value in TAGGED.get(contact_id, []),
    "owner": lambda _, contact_id, value: OWNED.get(contact_id) == value,
    "score_min": lambda card, _, value: card.score >= value,
    "score_max": lambda card, _, value: card.score <= value,
    "updated_since": lambda card, _, value: (card.last_event_at or 0) >= value,
}
SORTS: dict[str, Callable[[Scorecard], float]] = {
    "score": lambda card: card.score,
    "fit": lambda card: card.fit,
    "recency": lambda card: card.last_event_at or 0,
}


def _replayed(
    document: str, events: list[Event], at: int, sort: str = "score", **filters: Any
) -> list[Any]:
    """The list as a replay of the log has it, filtered and sorted here."""
    kept = [
        card
        for card in replay(parse_model(document), events, at).scorecards
        if card.contact_id is not None
        and all(PASSES[name](card, card.contact_id, value) for name, value in filters.items())
    ]
    kept.sort(key=lambda card: (-SORTS[sort](card), card.contact_id or ""))
    return [(c.contact_id, c.score, c.fit, c.grade, c.band, c.stage, c.last_event_at) for c in kept]


def _more_filters(at: int) -> list[dict[str, Any]]:
    """FILTERS, and the API's score and time bounds and orders."""
    return [
        *FILTERS,
        {"score_min": 20},
        {"score_max": 30.5},
        {"score_min": 10, "score_max": 45, "grade": "A"},
        {"updated_since": at - 20 * DAY},
        {"updated_since": at - 30 * DAY, "tag": "customer"},
        {"sort": "fit"},
        {"sort": "recency"},
        {"sort": "fit", "band": "hot"},
        {"sort": "recency", "updated_since": at - 25 * DAY, "score_min": 5},
    ]


def test_the_ranked_list_is_the_replay_filtered_and_sorted(database: sa.Engine) -> None:
    events = history()
    name, model = _workspace(database, events)
    at = now()
    with database.connect() as conn:
        _label(conn, name)
        for filters in _more_filters(at):
            found = _ranked(conn, name, model, at, **filters)
            assert found == _replayed(MODEL, events, at, **filters), filters
            assert found, filters  # not vacuous
        # A new version whose contacts are not rescored yet: read from their logs.
        document = MODEL.replace("points: 5\n", "points: 25\n")
        newer = store_model(conn, workspace=name, document=document, activate=True)
        for filters in _more_filters(at):
            assert _ranked(conn, name, newer, at, **filters) == _replayed(
                document, events, at, **filters
            ), filters
        assert _ranked(conn, name, newer, at) != _ranked(conn, name, model, at)
        # Before some contacts' last events: those are read from their logs as of then.
        earlier = at - 10 * DAY
        assert _ranked(conn, name, newer, earlier) == _replayed(document, events, earlier)


def test_the_tag_score_filter_reads_a_tag_new_to_rows_not_rescored_yet(
    database: sa.Engine,
) -> None:
    # The rows' states are the older version's, which has no such tag: the
    # filter must not rule them out before they are read from their logs.
    events = history()
    name, _ = _workspace(database, events)
    at = now()
    document = MODEL.replace("tags: [intent]", "tags: [intent, demo]")
    with database.connect() as conn:
        newer = store_model(conn, workspace=name, document=document, activate=True)
        found = _ranked(conn, name, newer, at, tag_score="demo")
    assert found == _replayed(document, events, at, tag_score="demo")
    assert found  # not vacuous


def test_cards_are_the_replays_scorecards_with_their_labels(database: sa.Engine) -> None:
    events = history()
    name, model = _workspace(database, events)
    at = now()
    expected = {c.contact_id: c for c in replay(parse_model(MODEL), events, at).scorecards}
    wanted = ["c004", "c001", "nobody", *sorted(k for k in expected if k is not None)[::-1]]
    with database.connect() as conn:
        _label(conn, name)
        found = store.cards(conn, workspace=name, model=model, at=at, contact_ids=wanted)
    assert [c.card.contact_id for c in found] == [k for k in wanted if k in expected]
    for contact in found:
        contact_id = contact.card.contact_id
        assert contact_id is not None
        assert contact.card == expected[contact_id]
        assert contact.labels.tags == sorted(TAGGED.get(contact_id, []))
        assert contact.labels.owner == OWNED.get(contact_id)
        assert contact.traits["name"] == f"Person {int(contact_id[1:])}"


NEEDLES = ("c01", "PERSON 3", "p7@example", "cto", "100%_", "nobody")


def test_search_by_id_and_text_traits(database: sa.Engine) -> None:
    name, model = _workspace(database)
    at = now()
    with database.connect() as conn:
        everyone = ranked(conn, workspace=name, model=model, at=at)
        known = traits(conn, workspace=name, keys=[r.contact_id for r in everyone])
        for needle, legacy in [(n, False) for n in NEEDLES] + [(n, True) for n in NEEDLES]:
            if legacy:  # rows written before the search column: read from their states
                with conn.begin():
                    conn.execute(
                        owner_rows.update()
                        .where(owner_rows.c.workspace == name)
                        .values(search=None)
                    )
            expected = [
                r.contact_id
                for r in everyone
                if needle.lower() in r.contact_id.lower()
                or any(
                    isinstance(v, str) and needle.lower() in v.lower()
                    for v in known[r.contact_id].values()
                )
            ]
            found = [
                r.contact_id
                for r in ranked(conn, workspace=name, model=model, at=at, search=needle)
            ]
            assert found == expected, (needle, legacy)
        assert known["c003"]["name"] == "Person 3"


def test_report_reads(database: sa.Engine) -> None:
    name, _ = _workspace(database)
    events = history()
    with database.connect() as conn:
        assert event_types(conn, workspace=name) == sorted({e.type for e in events})
        assert contacts_with(conn, workspace=name, event_type="purchase") == {
            e.contact_id for e in events if e.type == "purchase"
        }


def test_the_demo_user_signs_in_with_what_it_prints(database: sa.Engine) -> None:
    name, _ = _workspace(database)
    with database.connect() as conn:
        email, password = demo_user(conn, workspace=name)
        again, other = demo_user(conn, workspace=name)  # a second demo replaces the first
        assert again == email
        assert verify_password(conn, email=email, password=password) is None
        user = verify_password(conn, email=email, password=other)
    assert user is not None
    assert user.workspace == name
    assert user.role.value == "admin"


def test_a_page_in_sql_is_that_page_of_the_ranked_list(database: sa.Engine) -> None:
    name, model = _workspace(database)
    at = now()
    with database.connect() as conn:
        for filters in FILTERS:
            if {"tag_score", "tag", "owner"} & filters.keys():
                continue
            everyone = ranked(conn, workspace=name, model=model, at=at, **filters)
            for offset, limit in ((0, 10), (7, 5), (30, 50)):
                paged = page(
                    conn, workspace=name, model=model, at=at, offset=offset, limit=limit, **filters
                )
                assert paged is not None
                total, found = paged
                assert total == len(everyone)
                assert [tuple(r)[:7] for r in found] == [
                    tuple(r)[:7] for r in everyone[offset : offset + limit]
                ], (filters, offset)
        # Rows of an older version: SQL cannot say; ranked() answers.
        newer = store_model(
            conn,
            workspace=name,
            document=MODEL.replace("points: 5\n", "points: 6\n"),
            activate=True,
        )
        assert page(conn, workspace=name, model=newer, at=at, offset=0, limit=10) is None


def test_the_score_chart_is_the_replay_at_each_instant() -> None:
    events = history()
    engine = Engine(parse_model(MODEL))
    at = now()
    for contact in ("c005", "c013", "c000"):
        found = explain(engine, events, contact, at)
        first = min(e.timestamp for e in events if e.contact_id == contact)
        series = score_series(engine, [a for a, _ in found.awards], start=first, end=at)
        assert series[-1] == (at, found.scorecard.score)
        for instant, score in series[:: max(len(series) // 15, 1)]:
            expected = next(
                (
                    c.score
                    for c in replay(engine, events, instant).scorecards
                    if c.contact_id == contact
                ),
                0.0,
            )
            assert abs(score - expected) <= 0.011, (contact, instant)


def test_report_tallies_in_sql_are_those_of_the_scorecards(database: sa.Engine) -> None:
    name, model = _workspace(database)
    at = now()
    limits = [limit for _, limit in AGE_BUCKETS]
    with database.connect() as conn:
        for outcome in ("purchase", "demo_request", None):
            counted = tallies(
                conn, workspace=name, model=model, at=at, outcome=outcome,
                age_limits=limits, points=POINTS,
            )  # fmt: skip
            assert counted is not None
            cards = with_bands(model, ranked(conn, workspace=name, model=model, at=at))
            won = (
                set()
                if outcome is None
                else contacts_with(conn, workspace=name, event_type=outcome)
            )
            expected = tally(cards, won, at=at)
            groups = counted
            assert groups.keys() == expected.groups.keys()
            for key, (count, total) in groups.items():
                assert count == expected.groups[key][0], key
                assert abs(total - expected.groups[key][1]) < 1e-6, key
            assert report(model.engine, Tallies(groups)).converted == len(won)
        newer = store_model(
            conn,
            workspace=name,
            document=MODEL.replace("points: 5\n", "points: 7\n"),
            activate=True,
        )
        assert (
            tallies(
                conn,
                workspace=name,
                model=newer,
                at=at,
                outcome=None,
                age_limits=limits,
                points=POINTS,
            )
            is None
        )
