"""The store reads behind the web app's pages, on SQLite and PostgreSQL:
the ranked list equals the contacts listing (scorecards from the states,
themselves equal to a replay) under every filter, for rows of the active
model version and rows of an older one; the report reads; the demo user.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from leadscore import parse_model, replay
from leadscore._engine import Engine
from leadscore._replay import explain
from leadscore._store import contacts as store
from leadscore._store import create_workspace, ingest, store_model
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


def _workspace(database: sa.Engine) -> tuple[str, Any]:
    name = f"w-{uuid.uuid4().hex[:10]}"
    with database.connect() as conn:
        create_workspace(conn, workspace=name)
        model = store_model(conn, workspace=name, document=MODEL, activate=True)
        ingest(conn, workspace=name, model=model, events=history())
    return name, model


def _listed(conn: sa.Connection, name: str, model: Any, at: int, **filters: Any) -> list[Any]:
    found = store.listing(
        conn, workspace=name, model=model, at=at, filters=store.Filters(**filters), sort="score"
    )
    return [
        (c.card.contact_id, c.card.score, c.card.fit, c.card.grade, c.card.band, c.card.stage)
        for c in found
    ]


def _ranked(conn: sa.Connection, name: str, model: Any, at: int, **filters: Any) -> list[Any]:
    return [
        (r.contact_id, r.score, r.fit, r.grade, r.band, r.stage)
        for r in with_bands(model, ranked(conn, workspace=name, model=model, at=at, **filters))
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


def test_the_ranked_list_is_the_listing(database: sa.Engine) -> None:
    name, model = _workspace(database)
    at = now()
    with database.connect() as conn:
        for filters in FILTERS:
            assert _ranked(conn, name, model, at, **filters) == _listed(
                conn, name, model, at, **filters
            ), filters
        assert _ranked(conn, name, model, at)  # not vacuous
        # A new version whose contacts are not rescored yet: read from their logs.
        newer = store_model(
            conn,
            workspace=name,
            document=MODEL.replace("points: 5\n", "points: 25\n"),
            activate=True,
        )
        for filters in FILTERS:
            assert _ranked(conn, name, newer, at, **filters) == _listed(
                conn, name, newer, at, **filters
            ), filters
        assert _ranked(conn, name, newer, at) != _ranked(conn, name, model, at)


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
