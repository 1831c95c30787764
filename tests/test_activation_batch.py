"""Model activation on the batch engine (issue 4), on SQLite and PostgreSQL:
every owner's stored engine state after an activation is the state the pure
engine's replay of its log gives (not only its scorecard), so live events
afterwards continue exactly as after a replay; owners whose log changes
after the batch engine read it are replayed instead; history fires nothing."""

from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings

from leadscore._engine import ContactState, Engine
from leadscore._events import Event, parse_event
from leadscore._generate import generate_events
from leadscore._model import Model
from leadscore._replay import Owner, replay
from leadscore._store import activate_model, ingest, open_database, store_model, upgrade
from leadscore._store import owners as owner_rows
from leadscore._store.activation import claim, rescore, score_history
from leadscore._store.bulk import compute
from leadscore._store.contacts import erase
from leadscore._store.log import all_events, owned_many
from leadscore._store.tables import firings as firing_rows
from leadscore._store.tables import outbox as outbox_rows
from leadscore._store.workspaces import ModelVersion, load_model

from .strategies import BASE, MINUTE, logs, models
from .test_store import new_workspace, replayed, stored

LOADER = {"version": 1, "name": "loading", "rules": []}


def form(state: ContactState) -> dict[str, Any]:
    found = state.to_json()
    found["limits"] = sorted(found["limits"])  # a dict in the state: its order means nothing
    return found


def close(x: Any, y: Any) -> bool:
    """Equal, floats within 1e-9 (sums added in another order)."""
    if isinstance(x, float) or isinstance(y, float):
        return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(x, dict) and isinstance(y, dict):
        return x.keys() == y.keys() and all(close(x[k], y[k]) for k in x)
    if isinstance(x, list) and isinstance(y, list):
        return len(x) == len(y) and all(close(p, q) for p, q in zip(x, y, strict=True))
    return bool(x == y)


def replayed_states(
    conn: sa.Connection, workspace: str, engine: Engine, owners: list[Owner]
) -> dict[Owner, ContactState]:
    """Each owner's state from the pure engine over its stored log."""
    with conn.begin():
        logs_of = owned_many(conn, workspace, owners)
    return {owner: state for owner, (state, _) in score_history(engine, logs_of).items()}


def stored_states(conn: sa.Connection, workspace: str, model: ModelVersion) -> dict[Owner, Any]:
    with conn.begin():
        found = {}
        for owner, row in owner_rows.every(conn, workspace, anonymous=True):
            assert row.model_version == model.version
            found[owner] = row.state
    return found


def stored_every(conn: sa.Connection, workspace: str) -> list[tuple[Owner, Any]]:
    with conn.begin():
        return list(owner_rows.every(conn, workspace, anonymous=True))


def assert_states_are_replays(conn: sa.Connection, workspace: str, model: ModelVersion) -> None:
    got = stored_states(conn, workspace, model)
    expected = replayed_states(conn, workspace, model.engine, sorted(got))
    assert got.keys() == expected.keys()
    wrong = [owner for owner in got if not close(form(got[owner]), form(expected[owner]))]
    assert not wrong, [(form(got[o]), form(expected[o])) for o in wrong[:2]]


def b2b() -> str:
    """The B2B SaaS example: limits, decay, tags, fit, stages and triggers."""
    return (Path(__file__).parents[1] / "examples" / "b2b-saas.yaml").read_text()


def edge_events() -> list[Event]:
    """What the generated log lacks: a stage set by hand, awards at the instant of a
    stage entry, a trait removed, an anonymous id linked after its visits."""
    t = BASE
    raw: list[dict[str, Any]] = [
        {"type": "identify", "contact_id": "edge-1", "traits": {"company_size": 300, "x": 1}},
        {"type": "page_view", "contact_id": "edge-1", "properties": {"path": "/pricing"}},
        {"type": "stage_set", "contact_id": "edge-1", "properties": {"stage": "sql"}},
        {"type": "page_view", "contact_id": "edge-1", "properties": {"path": "/pricing"}},
        {"type": "identify", "contact_id": "edge-1", "traits": {"x": None}},
        {"type": "page_view", "anonymous_id": "edge-anon", "properties": {"path": "/pricing"}},
        {"type": "form_submit", "anonymous_id": "edge-anon", "properties": {"form": "demo"}},
    ]
    found = [
        parse_event({**fields, "id": f"edge-{n}", "timestamp": _stamp(t + n * MINUTE)})
        for n, fields in enumerate(raw)
    ]
    # Several events of one contact at one instant, all awarding.
    for n in range(4):
        found.append(
            parse_event(
                {
                    "id": f"tie-{n}",
                    "type": "form_submit",
                    "contact_id": "edge-2",
                    "timestamp": _stamp(t),
                    "properties": {"form": "demo"},
                }
            )
        )
    return found


def _stamp(micros: int) -> str:
    from leadscore._time import format_timestamp

    return format_timestamp(micros)


def later_events() -> list[Event]:
    """Live events after an activation: in order, late, and a link that moves an
    anonymous profile's events to a contact."""
    t = BASE + 400 * 24 * 60 * MINUTE
    raw: list[dict[str, Any]] = [
        {"type": "page_view", "contact_id": "edge-1", "timestamp": t},
        {"type": "form_submit", "contact_id": "edge-1", "timestamp": t + MINUTE,
         "properties": {"form": "demo"}},
        {"type": "page_view", "contact_id": "edge-2", "timestamp": BASE - MINUTE},  # late
        {"type": "identify", "contact_id": "edge-3", "anonymous_id": "edge-anon",
         "timestamp": BASE + 30 * MINUTE, "traits": {"company_size": 20}},
    ]  # fmt: skip
    return [
        parse_event({**fields, "id": f"later-{n}", "timestamp": _stamp(int(fields["timestamp"]))})
        for n, fields in enumerate(raw)
    ]


def loaded(database: sa.Engine, log: list[Event]) -> tuple[str, ModelVersion]:
    """A workspace with `log` ingested under a model without rules, and the B2B
    example model stored and activated (not yet rescored)."""
    name, first = new_workspace(database, LOADER)
    with database.connect() as conn:
        for start in range(0, len(log), 1000):
            ingest(conn, workspace=name, model=first, events=log[start : start + 1000])
        second = store_model(conn, workspace=name, document=b2b())
        activate_model(conn, workspace=name, version=second.version)
    return name, second


def generated(contacts: int, events: int) -> list[Event]:
    return [parse_event(e) for e in generate_events(contacts=contacts, events=events, seed=3)]


def test_activation_leaves_the_replays_states_and_live_events_continue_them(
    database: sa.Engine,
) -> None:
    log = [*generated(120, 3000), *edge_events()]
    name, model = loaded(database, log)
    with database.connect() as conn:
        computed = compute(conn, name, model.engine)
        # The batch engine gives nearly every owner; edge-2's stage was
        # entered at an instant four of its awarding events share.
        assert (True, "edge-2") in computed.replay
        assert len(computed.states) > 100
        found = claim(conn)
        assert found is not None
        ended = rescore(conn, found)
        assert (ended.status, ended.rescored) == ("done", ended.total)
        assert_states_are_replays(conn, name, model)
        # History is recorded as carried out, never queued.
        with conn.begin():
            fired = conn.execute(
                sa.select(sa.func.count())
                .select_from(firing_rows)
                .where(firing_rows.c.workspace == name, firing_rows.c.history)
            ).scalar_one()
            queued = conn.execute(
                sa.select(sa.func.count())
                .select_from(outbox_rows)
                .where(outbox_rows.c.workspace == name)
            ).scalar_one()
        assert fired == len(replay(model.engine, log, BASE + 10**15).firings) > 0
        assert queued == 0
        # Live events go on from those states as from a replay's.
        ingest(conn, workspace=name, model=model, events=later_events())
        assert_states_are_replays(conn, name, model)
        with conn.begin():
            everything = all_events(conn, name)
        at = BASE + 500 * 24 * 60 * MINUTE
        assert stored(conn, name, model, at) == replayed(replay(model.engine, everything, at))


def test_owners_whose_log_changed_after_the_read_are_replayed(database: sa.Engine) -> None:
    """Events arrive between the batch engine's read and the writing of the
    states, from a writer still on the old model (a request that looked up
    the active version just before the activation): their owners keep their
    old version, and only the check on events above the read mark sees that
    their logs changed."""
    log = [*generated(60, 1500), *edge_events()]
    name, model = loaded(database, log)
    with database.connect() as conn:
        computed = compute(conn, name, model.engine)
        contact = next(key for identified, key in sorted(computed.states) if identified)
        linked = next(iter(sorted(computed.linked)))
        anonymous = computed.linked[linked][0]
        profile = next(key for identified, key in sorted(computed.states) if not identified)
        t = BASE + 10 * MINUTE
        late = [
            {"type": "form_submit", "contact_id": contact, "properties": {"form": "demo"}},
            # An anonymous-only event of an id linked to a contact: the contact's.
            {"type": "page_view", "anonymous_id": anonymous, "properties": {"path": "/pricing"}},
            # A link that takes an anonymous profile's events to a new contact.
            {"type": "identify", "contact_id": "newcomer", "anonymous_id": profile,
             "traits": {"company_size": 50}},
        ]  # fmt: skip
        stale = [
            parse_event({**fields, "id": f"stale-{n}", "timestamp": _stamp(t)})
            for n, fields in enumerate(late)
        ]
        with conn.begin():
            first = load_model(conn, workspace=name, version=model.version - 1)
        ingest(conn, workspace=name, model=first, events=stale)
        touched = {(True, contact), (True, linked), (False, profile)}
        with conn.begin():
            assert computed.changed(conn, name, sorted(computed.states)) >= touched
        found = claim(conn)
        assert found is not None
        ended = rescore(conn, found, computed=computed, chunk=7)
        assert ended.status == "done"
        assert_states_are_replays(conn, name, model)


def test_a_contact_erased_and_back_during_an_activation_is_replayed(
    database: sa.Engine,
) -> None:
    """The contact that sent the newest events is erased after the batch
    engine's read, then sends again: its new event is above the read mark
    (SQLite would have handed it the erased event's `seq`), so the state
    computed from its erased events is not written back."""
    t = BASE + 20 * MINUTE
    last = parse_event(
        {"id": "last", "type": "form_submit", "contact_id": "erased", "timestamp": _stamp(t),
         "properties": {"form": "demo"}}
    )  # fmt: skip
    name, model = loaded(database, [*generated(40, 800), last])
    with database.connect() as conn:
        computed = compute(conn, name, model.engine)
        assert (True, "erased") in computed.states
        assert erase(conn, workspace=name, contact_id="erased")
        back = parse_event(
            {"id": "back", "type": "page_view", "contact_id": "erased", "timestamp": _stamp(t)}
        )
        with conn.begin():
            first = load_model(conn, workspace=name, version=model.version - 1)
        ingest(conn, workspace=name, model=first, events=[back])
        with conn.begin():
            assert computed.changed(conn, name, [(True, "erased")]) == {(True, "erased")}
        found = claim(conn)
        assert found is not None
        assert rescore(conn, found, computed=computed).status == "done"
        assert_states_are_replays(conn, name, model)
        with conn.begin():
            assert [e.id for e in owned_many(conn, name, [(True, "erased")])[(True, "erased")]] == [
                "back"
            ]


def test_a_chunk_of_many_owners_is_written_as_the_replay_gives_it(database: sa.Engine) -> None:
    """A chunk of more owners than save_many writes one by one (on PostgreSQL
    they go through COPY and one UPDATE): every state reads back as the
    replay's."""
    name, model = loaded(database, generated(600, 5000))
    with database.connect() as conn:
        assert len(stored_every(conn, name)) >= owner_rows._COPY_ROWS
        found = claim(conn)
        assert found is not None
        ended = rescore(conn, found)
        assert (ended.status, ended.rescored) == ("done", ended.total)
        assert_states_are_replays(conn, name, model)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(model=models(), log=logs())
def test_batch_states_equal_the_pure_engines_on_random_models_and_logs(
    database: sa.Engine, model: Model, log: list[Event]
) -> None:
    name, first = new_workspace(database, LOADER)
    data = model.model_dump(mode="json", by_alias=True, exclude_unset=True)
    with database.connect() as conn:
        ingest(conn, workspace=name, model=first, events=log)
        version = store_model(conn, workspace=name, document=json.dumps(data))
        computed = compute(conn, name, version.engine)
        expected = replayed_states(conn, name, version.engine, sorted(computed.states))
    assert computed.states.keys() == expected.keys()
    with database.connect() as conn:
        every = {owner for owner, _ in stored_every(conn, name)}
    assert every == computed.states.keys() | computed.replay
    for owner, state in computed.states.items():
        assert close(form(state), form(expected[owner])), (owner, form(state))
    fired = sorted(f.order_key for fs in computed.firings.values() for f in fs)
    assert fired == [f.order_key for f in replay(version.engine, log, BASE + 10**15).firings]


@pytest.mark.parametrize("kind", ["short ranges", "UTF-16"])
def test_sqlites_log_read_in_short_ranges_or_from_utf16_gives_the_same_states(
    tmp_path: Path, kind: str
) -> None:
    """SQLite's log is read a range of seq at a time, each range's bodies as one
    concatenated blob: ranges over SQLite's longest string are read in shorter
    ones, and a file in UTF-16 (whose blobs are not UTF-8) row by row; both
    give the same states as the replay, non-ASCII text included."""
    path = tmp_path / "log.db"
    if kind == "UTF-16":
        with sqlite3.connect(path) as made:
            made.execute("PRAGMA encoding = 'UTF-16'")
            made.execute("CREATE TABLE made (x)")  # the encoding is fixed once a table exists
    url = f"sqlite:///{path}"
    upgrade(url)
    database = open_database(url)
    if kind == "short ranges":
        # Well over one body, well under a range's: the first ranges fail and shrink.
        sa.event.listen(
            database,
            "connect",
            lambda connection, _: connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 20_000),
        )
    try:
        log = [*generated(40, 800), *edge_events()]
        for n, event in enumerate(log):
            if event.type == "identify":
                data = event.to_json()
                data["traits"] = {**data.get("traits", {}), "name": f"Zoë {n} ☃ 日本"}
                log[n] = parse_event(data)
        name, model = loaded(database, log)
        with database.connect() as conn:
            if kind == "UTF-16":
                with conn.begin():
                    assert conn.exec_driver_sql("PRAGMA encoding").scalar() == "UTF-16le"
            computed = compute(conn, name, model.engine)
            expected = replayed_states(conn, name, model.engine, sorted(computed.states))
            assert len(computed.states) > 40
            for owner, state in computed.states.items():
                assert close(form(state), form(expected[owner])), (owner, form(state))
            found = claim(conn)
            assert found is not None
            assert rescore(conn, found, computed=computed).status == "done"
            assert_states_are_replays(conn, name, model)
    finally:
        database.dispose()


def test_a_trait_past_64_bits_is_kept_exactly_by_the_batch_activation(
    database: sa.Engine,
) -> None:
    # The activation read identify bodies with orjson, which makes such an
    # integer a float: the contact's stored traits said 1.2345678901234568e+29
    # where the replay (and the event as stored) says 123456789012345678901234567890.
    big = 123456789012345678901234567890
    raw = {"id": "big-1", "type": "identify", "contact_id": "big", "timestamp": _stamp(BASE),
           "traits": {"order": big, "company_size": 300}}  # fmt: skip
    name, model = loaded(database, [*generated(20, 300), parse_event(raw)])
    with database.connect() as conn:
        computed = compute(conn, name, model.engine)
        assert (True, "big") in computed.states
        found = claim(conn)
        assert found is not None
        rescore(conn, found)
        got = stored_states(conn, name, model)[(True, "big")]
        expected = replayed_states(conn, name, model.engine, [(True, "big")])[(True, "big")]
    assert got.traits == expected.traits == {"order": big, "company_size": 300}
    assert type(got.traits["order"]) is int
