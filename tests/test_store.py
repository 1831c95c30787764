"""The store on real databases (SQLite, and PostgreSQL when available): stored
scorecards equal a replay of the stored log in any arrival order, batch split
and number of writers; duplicates, rejections, firings and their outbox."""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore._engine import Engine
from leadscore._errors import EventError, ModelError
from leadscore._events import Event, parse_event
from leadscore._ledger import Ingested, Ledger
from leadscore._model import Model
from leadscore._replay import Result, replay
from leadscore._store import (
    EventOutcome,
    ModelVersion,
    Outcome,
    UnknownWorkspace,
    activate_model,
    active_model,
    active_version,
    check_current,
    create_workspace,
    ingest,
    open_database,
    replay_workspace,
    scorecard,
    scorecards,
    store_model,
    upgrade,
)
from leadscore._store import owners as owner_rows
from leadscore._store.database import lookup_reader
from leadscore._store.log import MAX_ID_BYTES
from leadscore._store.log import decode as log_decode
from leadscore._store.log import encode as log_encode
from leadscore._store.log import loads as log_loads
from leadscore._store.log import stored as stored_event
from leadscore._store.migrate import _config
from leadscore._store.tables import events as event_rows
from leadscore._store.tables import firings as firing_rows
from leadscore._store.tables import metadata
from leadscore._store.tables import outbox as outbox_rows
from leadscore._time import parse_timestamp

from ._support import CASES, arrival_orders, assert_scorecards, load_case
from .strategies import BASE, MINUTE, events, logs, models

ORDERS = ["given", "reversed", "shuffle-0", "shuffle-1", "shuffle-2"]


# -- helpers -------------------------------------------------------------------


def new_workspace(database: sa.Engine, model: Model | dict[str, Any]) -> tuple[str, ModelVersion]:
    """A workspace of its own for one test (or one hypothesis example), with
    `model` stored and active."""
    data = (
        model.model_dump(mode="json", by_alias=True, exclude_unset=True)
        if isinstance(model, Model)
        else model
    )
    name = f"w-{uuid.uuid4().hex[:16]}"
    with database.connect() as conn:
        assert create_workspace(conn, workspace=name)
        version = store_model(conn, workspace=name, document=json.dumps(data), activate=True)
    return name, version


def replayed(result: Result) -> list[dict[str, Any]]:
    return [card.to_json() for card in [*result.scorecards, *result.anonymous]]


def stored(
    conn: sa.Connection, workspace: str, model: ModelVersion, at: int
) -> list[dict[str, Any]]:
    """Scorecards straight from the stored states, every owner, as a replay lists them."""
    cards = []
    with conn.begin():
        for (identified, key), row in owner_rows.every(conn, workspace, anonymous=True):
            assert row.model_version == model.version
            cards.append(
                model.engine.scorecard(
                    row.state,
                    at,
                    contact_id=key if identified else None,
                    anonymous_id=None if identified else key,
                ).to_json()
            )
    return cards


def listed(
    conn: sa.Connection, workspace: str, model: ModelVersion, at: int
) -> list[dict[str, Any]]:
    found = scorecards(conn, workspace=workspace, model=model, at=at, anonymous=True)
    return [card.to_json() for card in found]


def summary(outcome: EventOutcome | Ingested) -> tuple[str, list[tuple[Any, ...]], list[str]]:
    """What the store and the Ledger must agree on for one event."""
    fired = sorted((*f.order_key, f.contact_id) for f in outcome.firings)
    return (outcome.status.value, fired, sorted(str(w) for w in outcome.warnings))


def count(conn: sa.Connection, table: sa.Table, workspace: str) -> int:
    with conn.begin():
        query = sa.select(sa.func.count()).select_from(table).where(table.c.workspace == workspace)
        return int(conn.execute(query).scalar_one())


def event(id: str, type: str, when: str, **fields: Any) -> Event:
    return Event(id=id, type=type, timestamp=parse_timestamp(when), **fields)


# -- migrations ------------------------------------------------------------------


@st.composite
def _records(draw: st.DrawFn) -> dict[str, Any]:
    """Event records as clients send them: offsets and fractions in the
    timestamp, keys in any order, nested objects, traits where they are ignored."""
    record = draw(events(0)).to_json()
    seconds = draw(st.integers(0, 59))
    fraction = draw(st.sampled_from(["", ".5", ".000001", ".123456", ".120"]))
    offset = draw(st.sampled_from(["Z", "+02:00", "-05:30"]))
    record["timestamp"] = record["timestamp"][:17] + f"{seconds:02d}{fraction}{offset}"
    if draw(st.booleans()):
        record["properties"] = {"z": {"b": [1, {"d": 2, "c": None}], "a": "é"}, "m": 2.5}
    if draw(st.booleans()) and record["type"] != "identify":
        record["traits"] = {"role": "cto"}  # not identify: ignored
    keys = draw(st.permutations(list(record)))
    return {key: record[key] for key in keys}


@given(_records())
def test_encode_gives_the_event_its_stored_text_reads_back_as(record: dict[str, Any]) -> None:
    """encode parses a record once; the event it returns must be the one the
    stored text reads back as, dicts in the same key order too (a rebuild
    reads the text, and trait order decides the search text)."""
    event, body = log_encode(record)
    again = log_decode(body)
    assert event == again
    assert json.dumps(event.to_json()) == json.dumps(again.to_json())


# JSON values with what orjson and json may spell differently: floats in
# exponent form (1e-05, 1e+16), integers around and past 64 bits, NaN and
# infinities, characters json escapes, astral and private-use characters in
# keys (their sort order), deep nesting; tuples and subclasses, which json
# writes and orjson would too, but not necessarily alike.
_KEYS = st.text(st.characters(codec="utf-8"), max_size=4)


class _Text(str):
    pass


_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(2**63 - 3, 2**64 + 3).map(lambda n: n * (-1) ** n)
    | st.floats()
    | st.sampled_from([1e-05, 1e16, 1e22, -0.0, 5e-324, 0.1, 1e-7, 123456789012345678.0])
    | st.text(st.characters(codec="utf-8"))
    | st.sampled_from(["\x00\x1f\x7f\u2028\ufffe", "\U0010ffff", "\ue000"])
    | st.builds(_Text, st.text(max_size=3))
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_KEYS, inner, max_size=4)
        | st.lists(inner, max_size=2).map(tuple)
    ),
    max_leaves=12,
)


@given(st.dictionaries(_KEYS, _VALUES, max_size=5), st.integers(0, 300))
def test_encode_writes_the_text_json_would_byte_for_byte(
    properties: dict[str, Any], depth: int
) -> None:
    """The stored text is json's canonical spelling whoever writes it (encode
    takes orjson's when it is the same): ids and duplicates compare texts."""
    nested: Any = properties
    if depth > 250:  # deeper than orjson goes
        for _ in range(depth):
            nested = {"n": nested}
    record = {"id": "e1", "type": "view", "contact_id": "c1",
              "timestamp": "2026-05-04T10:00:00Z", "properties": nested}  # fmt: skip
    canonical = json.JSONEncoder(
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    try:
        expected = canonical.encode(parse_event(record).to_json())
    except ValueError:  # NaN or an infinity
        expected = None
    if expected is None:
        with pytest.raises(EventError):
            log_encode(record)
        return
    event, body = log_encode(record)
    assert body == expected
    assert event == log_decode(body)


@given(
    _VALUES,
    st.integers() | st.integers(2**63 - 3, 10**21).map(lambda n: n * (-1) ** n),
    st.text(st.sampled_from("0123456789\u0663"), max_size=25),
)
def test_loads_reads_a_stored_text_as_json_does(value: Any, number: int, digits: str) -> None:
    """A text with integers past 64 bits, digit runs in strings and floats, and
    other digits than ASCII ones, read to the same objects as json.loads (types
    included: json.dumps writes 1 and 1.0 apart)."""
    try:
        text = json.dumps(
            [value, number, digits, {digits: number / 7}], ensure_ascii=False, allow_nan=False
        )
    except ValueError:  # NaN or an infinity: never in a stored text
        return
    assert json.dumps(log_loads(text)) == json.dumps(json.loads(text))


def test_migrations_build_the_schema_on_an_empty_database(database_url: str) -> None:
    assert not check_current(database_url)
    upgrade(database_url)
    assert check_current(database_url)
    upgrade(database_url)  # nothing left to do
    assert check_current(database_url)
    opened = open_database(database_url)
    try:
        with opened.connect() as conn:
            # The migrations create exactly what tables.py declares.
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        opened.dispose()


def test_the_log_keeps_its_rows_through_0006_and_never_gives_a_seq_twice(
    database_url: str,
) -> None:
    def insert(conn: sa.Connection, *ids: str) -> None:
        for id in ids:
            conn.execute(
                sa.text(
                    "INSERT INTO events (workspace, id, type, contact_id, timestamp, body,"
                    " received_at) VALUES ('w', :id, 'view', 'c', 0, '{}', 0)"
                ),
                {"id": id},
            )

    def log(conn: sa.Connection) -> list[tuple[int, str]]:
        rows = conn.execute(sa.text("SELECT seq, id FROM events ORDER BY seq"))
        return [(int(seq), str(id)) for seq, id in rows]

    opened = open_database(database_url)
    try:
        with opened.begin() as conn:
            command.upgrade(_config(conn), "0005")
            conn.execute(sa.text("INSERT INTO workspaces (id, created_at) VALUES ('w', 0)"))
            insert(conn, "e1", "e2", "e3")
            before = log(conn)
        upgrade(database_url)
        with opened.begin() as conn:
            assert log(conn) == before
            # Erasing the newest event, then logging another: a new seq.
            conn.execute(sa.text("DELETE FROM events WHERE id = 'e3'"))
            insert(conn, "e4")
            assert log(conn)[-1][0] > before[-1][0]
            command.downgrade(_config(conn), "0005")
            command.upgrade(_config(conn), "head")
            assert [id for _, id in log(conn)] == ["e1", "e2", "e4"]
    finally:
        opened.dispose()


def test_the_outbox_keeps_its_rows_through_0007_and_never_gives_a_seq_twice(
    database_url: str,
) -> None:
    def queue(conn: sa.Connection, firing: int) -> int:
        return int(
            conn.execute(
                sa.text(
                    "INSERT INTO outbox (firing, workspace, action_index, action, status,"
                    " attempts, next_attempt_at, created_at, kind) VALUES (:firing, 'w', 0,"
                    ' \'{"webhook": {"url": "https://x.test"}}\', \'failed\', 1, 0, 0,'
                    " 'webhook') RETURNING seq"
                ),
                {"firing": firing},
            ).scalar_one()
        )

    def attempt(conn: sa.Connection, outbox: int) -> None:
        conn.execute(
            sa.text(
                "INSERT INTO delivery_attempts (outbox, workspace, attempt, started_at,"
                " duration, status_code, ok, error) VALUES (:outbox, 'w', 1, 5, 7, 500, false,"
                " 'answered 500')"
            ),
            {"outbox": outbox},
        )

    def rows(conn: sa.Connection) -> list[Any]:
        outbox = conn.execute(sa.text("SELECT * FROM outbox ORDER BY seq")).all()
        attempts = conn.execute(sa.text("SELECT * FROM delivery_attempts ORDER BY seq")).all()
        return [tuple(row) for row in outbox] + [tuple(row) for row in attempts]

    opened = open_database(database_url)
    try:
        with opened.begin() as conn:
            command.upgrade(_config(conn), "0006")
            conn.execute(sa.text("INSERT INTO workspaces (id, created_at) VALUES ('w', 0)"))
            firing = conn.execute(
                sa.text(
                    "INSERT INTO firings (workspace, trigger, contact_id, event_key, event_id,"
                    " timestamp, model_version, recorded_at) VALUES ('w', 't', 'c', 'e', 'e',"
                    " 0, 1, 0) RETURNING seq"
                )
            ).scalar_one()
            first, newest = queue(conn, firing), queue(conn, firing)
            attempt(conn, first)
            attempt(conn, newest)
            before = rows(conn)
        with opened.begin() as conn:
            command.upgrade(_config(conn), "0007")
            assert rows(conn) == before
            # Erasing the newest delivery, then queueing another: a new seq.
            conn.execute(sa.text("DELETE FROM delivery_attempts WHERE outbox = :s"), {"s": newest})
            conn.execute(sa.text("DELETE FROM outbox WHERE seq = :s"), {"s": newest})
            assert queue(conn, firing) > newest
            kept = rows(conn)
            command.downgrade(_config(conn), "0006")
            command.upgrade(_config(conn), "0007")
            assert rows(conn) == kept
            # 0008: each attempt's address; the attempts logged before have none.
            command.upgrade(_config(conn), "0008")
            assert rows(conn) == [*kept[:-1], (*kept[-1], None)]
            command.downgrade(_config(conn), "0007")
            assert rows(conn) == kept
        upgrade(database_url)
    finally:
        opened.dispose()


def test_an_embedded_database_gets_its_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'leadscore.db'}"
    assert not check_current(url)
    upgrade(url)
    assert check_current(url)


def test_a_lookup_reader_leaves_its_connection_as_it_found_it(database: sa.Engine) -> None:
    # On PostgreSQL lookups run in autocommit (no BEGIN and COMMIT round
    # trips); the pool must hand that connection to the next writer back in
    # transactions, or a batch would no longer commit whole or not at all.
    name = f"w-{uuid.uuid4().hex[:16]}"
    postgresql = database.dialect.name == "postgresql"
    with lookup_reader(database) as conn, conn.begin():
        assert active_version(conn, workspace=name) is None
        raw = conn.connection.dbapi_connection
        assert raw is not None
        assert not postgresql or raw.autocommit
    assert not postgresql or not raw.autocommit  # back in the pool as it was
    with database.connect() as conn:
        try:
            with conn.begin():
                assert create_workspace(conn, workspace=name)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
        with conn.begin():
            assert create_workspace(conn, workspace=name)  # the first one was rolled back


# -- workspaces and models -------------------------------------------------------


def test_workspaces_and_model_versions(database: sa.Engine) -> None:
    name = f"w-{uuid.uuid4().hex[:16]}"
    with database.connect() as conn:
        assert create_workspace(conn, workspace=name)
        assert not create_workspace(conn, workspace=name)
        with pytest.raises(ValueError, match="workspace names"):
            create_workspace(conn, workspace="no spaces")
        with pytest.raises(UnknownWorkspace):
            store_model(conn, workspace="w-nobody", document="version: 1\nname: x\nrules: []\n")
        with pytest.raises(ModelError, match="rules"):
            store_model(conn, workspace=name, document="version: 1\nname: x\n")
        assert active_model(conn, workspace=name) is None
        first = store_model(conn, workspace=name, document="version: 1\nname: a\nrules: []\n")
        second = store_model(
            conn, workspace=name, document="version: 1\nname: b\nrules: []\n", activate=True
        )
        assert (first.version, second.version) == (1, 2)
        active = active_model(conn, workspace=name)
        assert active is not None
        assert (active.version, active.engine.model.name) == (2, "b")
        activate_model(conn, workspace=name, version=1)
        active = active_model(conn, workspace=name)
        assert active is not None
        assert active.version == 1


def test_two_activations_at_once_both_succeed(database: sa.Engine) -> None:
    # Each clears the active version, then sets its own. Unserialized, the
    # second's clearing (on PostgreSQL, waiting for the first's row) missed
    # the version the first had just made active: a unique violation, a 500.
    points = {"version": 1, "name": "v", "rules": []}
    workspace, _ = new_workspace(database, points)
    with database.connect() as conn:
        for _ in range(2):
            store_model(conn, workspace=workspace, document=json.dumps(points))
    failed: list[BaseException] = []

    def second() -> None:
        try:
            with database.connect() as conn:
                activate_model(conn, workspace=workspace, version=3)
        except BaseException as error:
            failed.append(error)

    with database.connect() as conn, conn.begin():
        activate_model(conn, workspace=workspace, version=2)
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=1.0)  # it waits for this transaction (on either backend)
    thread.join()
    assert failed == []
    with database.connect() as conn:
        active = active_model(conn, workspace=workspace)
    assert active is not None
    assert active.version == 3


def test_a_new_model_version_rescores_from_the_log(database: sa.Engine) -> None:
    points = {"version": 1, "name": "v", "rules": [{"id": "view", "event": "view", "points": 5}]}
    workspace, first = new_workspace(database, points)
    log = [event(f"e{i}", "view", f"2026-05-0{i}T10:00:00Z", contact_id="c1") for i in range(1, 4)]
    at = parse_timestamp("2026-06-01T00:00:00Z")
    with database.connect() as conn:
        ingest(conn, workspace=workspace, model=first, events=log[:2])
        doubled = {**points, "rules": [{"id": "view", "event": "view", "points": 10}]}
        second = store_model(conn, workspace=workspace, document=json.dumps(doubled))
        activate_model(conn, workspace=workspace, version=second.version)
        # States of version 1 are not answers for version 2: reads compute them.
        card = scorecard(conn, workspace=workspace, model=second, contact_id="c1", at=at)
        assert card is not None
        assert card.score == 20.0
        # The next event of the owner rebuilds its state under version 2.
        ingest(conn, workspace=workspace, model=second, events=log[2:])
        assert stored(conn, workspace, second, at) == replayed(replay(second.engine, log, at))


# -- conformance and properties ---------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_conformance_one_event_at_a_time(database: sa.Engine, path: Path, order: str) -> None:
    case = load_case(path)
    workspace, model = new_workspace(database, case.model)
    arrival = arrival_orders(case.events)[order]
    ledger = Ledger(Engine(case.model))
    with database.connect() as conn:
        # The events up to `at` first, as a service would have them at that
        # time, each decided as the reference incremental form decides it
        # (test_conformance checks that one against the expected firings).
        for sent in arrival:
            if sent.timestamp <= case.at:
                outcomes = ingest(conn, workspace=workspace, model=model, events=[sent])
                assert [summary(o) for o in outcomes] == [summary(ledger.ingest(sent))]
        cards = scorecards(conn, workspace=workspace, model=model, at=case.at)
        assert_scorecards(cards, case.expect["scorecards"])
        # Events after `at` do not exist for it, stored or not.
        later = [sent for sent in arrival if sent.timestamp > case.at]
        ingest(conn, workspace=workspace, model=model, events=later)
        cards = scorecards(conn, workspace=workspace, model=model, at=case.at)
        assert_scorecards(cards, case.expect["scorecards"])
        for want in case.expect["scorecards"]:
            card = scorecard(
                conn, workspace=workspace, model=model, contact_id=want["contact_id"], at=case.at
            )
            assert card is not None
            assert_scorecards([card], [want])
        end = max(sent.timestamp for sent in case.events)
        assert stored(conn, workspace, model, end) == replayed(replay(case.model, case.events, end))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=models(),
    log=logs(max_size=30),
    seed=st.integers(0, 2**32),
    later=st.integers(0, 60 * 24 * 30),
    earlier=st.integers(0, 8 * 7 * 24 * 60),
)
def test_stored_scorecards_equal_a_replay_in_any_arrival_order_and_batches(
    database: sa.Engine,
    *,
    model: Model,
    log: list[Event],
    seed: int,
    later: int,
    earlier: int,
) -> None:
    rng = random.Random(seed)
    arrival = [*log, *(rng.choice(log) for _ in range(rng.randint(0, 3)))]  # with resends
    rng.shuffle(arrival)
    batches: list[list[Event]] = []
    while arrival:
        size = rng.randint(1, 12)  # one transaction each: late events and links inside a batch
        batches.append(arrival[:size])
        arrival = arrival[size:]
    workspace, version = new_workspace(database, model)
    ledger = Ledger(Engine(model))
    with database.connect() as conn:
        for batch in batches:
            outcomes = ingest(conn, workspace=workspace, model=version, events=batch)
            assert [summary(o) for o in outcomes] == [summary(ledger.ingest(e)) for e in batch]
        at = max(e.timestamp for e in log) + later * MINUTE
        expected = replayed(replay(model, log, at))
        assert stored(conn, workspace, version, at) == expected
        assert replayed(replay_workspace(conn, workspace=workspace, model=version, at=at)) == (
            expected
        )
        # As of an earlier instant, reads answer from what the log held then.
        then = BASE + earlier * MINUTE
        assert listed(conn, workspace, version, then) == replayed(replay(model, log, then))


# -- duplicates, rejections, firings ------------------------------------------------

TRIGGERS: dict[str, Any] = {
    "version": 1,
    "name": "triggers",
    "rules": [
        {"id": "view", "event": "view", "points": 10},
        {"id": "buy", "event": "buy", "points": 40, "decay": False},
    ],
    "stages": [{"name": "visitor"}, {"name": "lead", "enter": {"score_gte": 30}}],
    "triggers": [
        {"id": "lead", "when": {"stage_entered": "lead"}, "actions": [{"add_tag": "lead"}]},
        {
            "id": "each-buy",
            "when": {"event": "buy"},
            "once": False,
            "actions": [{"add_tag": "buyer"}, {"webhook": {"url": "https://crm.example.com/h"}}],
        },
    ],
}


def test_resent_events_change_nothing(database: sa.Engine) -> None:
    workspace, model = new_workspace(database, TRIGGERS)
    log = [
        event("v1", "view", "2026-05-01T10:00:00Z", contact_id="c1", properties={"p": 1}),
        event("v2", "view", "2026-05-01T11:00:00Z", anonymous_id="a1"),
        event("b1", "buy", "2026-05-02T10:00:00Z", contact_id="c1", anonymous_id="a1"),
    ]
    at = parse_timestamp("2026-05-03T00:00:00Z")
    with database.connect() as conn:
        first = ingest(conn, workspace=workspace, model=model, events=log)
        assert [o.status for o in first] == [Outcome.ACCEPTED] * 3
        before = listed(conn, workspace, model, at)
        counts = [count(conn, table, workspace) for table in (event_rows, firing_rows, outbox_rows)]
        differing = event(
            "v1", "view", "2026-05-01T10:00:00Z", contact_id="c1", properties={"p": 2}
        )
        again = ingest(conn, workspace=workspace, model=model, events=[*log, differing])
        assert [o.status for o in again] == [Outcome.DUPLICATE] * 4
        assert all(not o.firings for o in again)
        assert [len(o.warnings) for o in again] == [0, 0, 0, 1]
        assert "differs" in str(again[3].warnings[0])
        assert listed(conn, workspace, model, at) == before
        after = [count(conn, table, workspace) for table in (event_rows, firing_rows, outbox_rows)]
        assert after == counts
        with conn.begin():
            assert stored_event(conn, workspace, "v1").properties == {"p": 1}  # the first copy


def test_a_bad_event_does_not_lose_the_good_ones(database: sa.Engine) -> None:
    workspace, model = new_workspace(database, TRIGGERS)
    batch: Sequence[Event | dict[str, Any]] = [
        event("g1", "view", "2026-05-01T10:00:00Z", contact_id="c1"),
        {"id": "x1", "type": "no spaces", "contact_id": "c1", "timestamp": "2026-05-01T10:00:00Z"},
        {"id": "g2", "type": "view", "contact_id": "c1", "timestamp": "2026-05-01T11:00:00Z"},
        event("x\0", "view", "2026-05-01T12:00:00Z", contact_id="c1"),
        {"type": "view", "contact_id": "c1", "timestamp": "2026-05-01T12:00:00Z"},
        event("x3", "view", "2026-05-01T12:00:00Z", contact_id="c" * (MAX_ID_BYTES + 1)),
        event(
            "x4", "view", "2026-05-01T12:00:00Z", contact_id="c1", properties={"n": float("nan")}
        ),
        {"id": "x5", "type": "view", "contact_id": "c1", "timestamp": "2026-05-01"},
        event("g3", "buy", "2026-05-01T13:00:00Z", contact_id="c1"),
    ]
    with database.connect() as conn:
        outcomes = ingest(conn, workspace=workspace, model=model, events=batch)
        assert [(o.event_id, o.status) for o in outcomes] == [
            ("g1", Outcome.ACCEPTED),
            ("x1", Outcome.REJECTED),
            ("g2", Outcome.ACCEPTED),
            ("x\0", Outcome.REJECTED),
            (None, Outcome.REJECTED),
            ("x3", Outcome.REJECTED),
            ("x4", Outcome.REJECTED),
            ("x5", Outcome.REJECTED),
            ("g3", Outcome.ACCEPTED),
        ]
        reasons = [o.reason for o in outcomes if o.status is Outcome.REJECTED]
        assert all(reasons)
        assert str(reasons[0]).startswith("type:")
        assert str(reasons[1]).startswith("id:")
        assert str(reasons[3]).startswith("contact_id:")
        assert count(conn, event_rows, workspace) == 3
        card = scorecard(
            conn,
            workspace=workspace,
            model=model,
            contact_id="c1",
            at=parse_timestamp("2026-05-02T00:00:00Z"),
        )
        assert card is not None
        assert card.score > 50  # g1, g2 and g3, with decay off for the purchase
        with pytest.raises(UnknownWorkspace):
            ingest(conn, workspace="w-nobody", model=model, events=batch[:1])
        with pytest.raises(UnknownWorkspace):  # even when every event is rejected
            ingest(conn, workspace="w-nobody", model=model, events=batch[1:2])
        with conn.begin(), pytest.raises(ValueError, match="no transaction"):
            ingest(conn, workspace=workspace, model=model, events=batch[:1])


def test_an_event_the_database_refuses_is_rejected_alone(database_url: str) -> None:
    """A batch commits whole; when the database refuses one of its events (here
    a constraint of its own), the others are stored one by one and only that
    one is rejected, with the database's reason."""
    upgrade(database_url)
    opened = open_database(database_url)
    try:
        with opened.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(
                    "ALTER TABLE events ADD CONSTRAINT no_poison CHECK (type <> 'poison')"
                )
            else:
                conn.exec_driver_sql(
                    "CREATE TRIGGER no_poison BEFORE INSERT ON events WHEN NEW.type = 'poison'"
                    " BEGIN SELECT RAISE(ABORT, 'no poison'); END"
                )
        workspace, model = new_workspace(opened, TRIGGERS)
        batch = [
            event("g1", "view", "2026-05-01T10:00:00Z", contact_id="c1"),
            event("p1", "poison", "2026-05-01T11:00:00Z", contact_id="c1"),
            event("g2", "buy", "2026-05-01T12:00:00Z", contact_id="c1"),
        ]
        with opened.connect() as conn:
            outcomes = ingest(conn, workspace=workspace, model=model, events=batch)
            assert [o.status for o in outcomes] == [
                Outcome.ACCEPTED,
                Outcome.REJECTED,
                Outcome.ACCEPTED,
            ]
            assert str(outcomes[1].reason).startswith("the database refused it")
            assert sorted(f.trigger for f in outcomes[2].firings) == ["each-buy", "lead"]
            at = parse_timestamp("2026-05-02T00:00:00Z")
            good = [batch[0], batch[2]]
            assert stored(conn, workspace, model, at) == replayed(replay(model.engine, good, at))
    finally:
        opened.dispose()


def test_any_json_text_is_stored_as_sent(database: sa.Engine) -> None:
    workspace, model = new_workspace(database, TRIGGERS)
    odd = 'nul \0, quote ", emoji \U0001f600, accents żółć'
    sent = [
        event("u1", "view", "2026-05-01T10:00:00.123456Z", contact_id="ç1", properties={"k": odd}),
        event("u2", "identify", "2026-05-01T11:00:00Z", contact_id="ç1", traits={"name": odd}),
    ]
    at = parse_timestamp("2026-05-02T00:00:00Z")
    with database.connect() as conn:
        outcomes = ingest(conn, workspace=workspace, model=model, events=sent)
        assert [o.status for o in outcomes] == [Outcome.ACCEPTED] * 2
        with conn.begin():
            (row,) = owner_rows.load(conn, workspace, [(True, "ç1")]).values()
        assert row.state.traits == {"name": odd}
        assert stored(conn, workspace, model, at) == replayed(replay(model.engine, sent, at))
        # Resending equal copies is recognized as such.
        again = ingest(conn, workspace=workspace, model=model, events=sent)
        assert [(o.status, o.warnings) for o in again] == [(Outcome.DUPLICATE, [])] * 2


def test_each_firing_is_recorded_once_with_its_outbox_rows(database: sa.Engine) -> None:
    workspace, model = new_workspace(database, TRIGGERS)
    log = [
        event("v2", "view", "2026-05-01T12:00:00Z", contact_id="c1"),
        event("v3", "view", "2026-05-01T13:00:00Z", contact_id="c1"),
        event("v4", "view", "2026-05-01T14:00:00Z", contact_id="c1"),  # reaches 30: lead
        event("b1", "buy", "2026-05-02T10:00:00Z", contact_id="c1"),
        event("b2", "buy", "2026-05-03T10:00:00Z", contact_id="c1"),
        # Late: c1 reaches 30 at v3 now, which moves the `once` firing of "lead".
        event("v1", "view", "2026-05-01T08:00:00Z", contact_id="c1"),
        # Late, and before every purchase: a firing of "each-buy" at b0 appears.
        event("b0", "buy", "2026-05-01T09:00:00Z", contact_id="c1"),
    ]
    with database.connect() as conn:
        outcomes = ingest(conn, workspace=workspace, model=model, events=log)
        emitted = [(f.trigger, f.event_id) for o in outcomes for f in o.firings]
        assert emitted == [
            ("lead", "v4"),
            ("each-buy", "b1"),
            ("each-buy", "b2"),
            ("each-buy", "b0"),
        ]
        again = ingest(conn, workspace=workspace, model=model, events=log)
        assert all(o.status is Outcome.DUPLICATE and not o.firings for o in again)
        with conn.begin():
            rows = conn.execute(
                sa.select(firing_rows.c.trigger, firing_rows.c.event_id, firing_rows.c.event_key)
                .where(firing_rows.c.workspace == workspace)
                .order_by(firing_rows.c.seq)
            ).all()
            actions = conn.execute(
                sa.select(
                    firing_rows.c.event_id,
                    outbox_rows.c.action_index,
                    outbox_rows.c.action,
                    outbox_rows.c.status,
                    outbox_rows.c.attempts,
                )
                .join(firing_rows, firing_rows.c.seq == outbox_rows.c.firing)
                .where(outbox_rows.c.workspace == workspace)
                .order_by(outbox_rows.c.seq)
            ).all()
        assert [tuple(row) for row in rows] == [
            ("lead", "v4", ""),
            ("each-buy", "b1", "b1"),
            ("each-buy", "b2", "b2"),
            ("each-buy", "b0", "b0"),
        ]
        hook = {"webhook": {"url": "https://crm.example.com/h"}}
        assert [tuple(row) for row in actions] == [
            ("v4", 0, {"add_tag": "lead"}, "pending", 0),
            ("b1", 0, {"add_tag": "buyer"}, "pending", 0),
            ("b1", 1, hook, "pending", 0),
            ("b2", 0, {"add_tag": "buyer"}, "pending", 0),
            ("b2", 1, hook, "pending", 0),
            ("b0", 0, {"add_tag": "buyer"}, "pending", 0),
            ("b0", 1, hook, "pending", 0),
        ]


# -- concurrent writers ---------------------------------------------------------------

CONCURRENT: dict[str, Any] = {
    "version": 1,
    "name": "concurrent",
    "decay": {"half_life_days": 3},
    "rules": [
        {"id": "view", "event": "view", "points": 5, "limit": {"times": 3, "per": "day"}},
        {"id": "signup", "event": "signup", "points": 20, "tags": ["web"]},
        {"id": "buy", "event": "buy", "points": 50, "decay": False},
    ],
    "stages": [
        {"name": "visitor"},
        {"name": "lead", "enter": {"score_gte": 30}},
        {"name": "customer", "enter": {"event": "buy"}},
    ],
    "triggers": [
        {"id": "lead", "when": {"stage_entered": "lead"}, "actions": [{"add_tag": "lead"}]},
        {
            "id": "each-buy",
            "when": {"event": "buy"},
            "once": False,
            "actions": [{"add_tag": "buyer"}],
        },
    ],
}


def _crowd(rng: random.Random, size: int) -> list[Event]:
    """Events of three contacts and four anonymous ids, with links that
    compete for the same anonymous ids and many equal timestamps."""
    made = []
    for index in range(size):
        who = rng.random()
        contact = rng.choice(["c1", "c2", "c3"]) if who < 0.55 else None
        anonymous = rng.choice(["a1", "a2", "a3", "a4"]) if who > 0.3 else None
        made.append(
            Event(
                id=f"e{index:04d}",
                type=rng.choice(["view", "view", "view", "signup", "buy"]),
                timestamp=BASE + rng.randrange(0, 10 * 24 * 60, 37) * MINUTE,
                contact_id=contact,
                anonymous_id=anonymous,
            )
        )
    return made


@pytest.mark.parametrize("seed", [1, 2])
def test_concurrent_writers_leave_exactly_a_replay(database: sa.Engine, seed: int) -> None:
    rng = random.Random(seed)
    log = _crowd(rng, 240)
    workspace, model = new_workspace(database, CONCURRENT)
    arrival = [*log, *rng.sample(log, 20)]  # some resends, racing their first copies
    rng.shuffle(arrival)
    writers = 4
    start = threading.Barrier(writers)

    def write(writer: int) -> list[EventOutcome]:
        share = arrival[writer::writers]
        batch_sizes = random.Random(seed * writers + writer)
        done: list[EventOutcome] = []
        with database.connect() as conn:
            start.wait()
            while share:
                size = batch_sizes.randint(1, 8)
                done += ingest(conn, workspace=workspace, model=model, events=share[:size])
                share = share[size:]
        return done

    with ThreadPoolExecutor(writers) as pool:
        outcomes = [o for done in pool.map(write, range(writers)) for o in done]
    assert sum(o.status is Outcome.ACCEPTED for o in outcomes) == len(log)
    at = max(e.timestamp for e in log)
    with database.connect() as conn:
        expected = replay(model.engine, log, at)
        assert stored(conn, workspace, model, at) == replayed(expected)
        emitted = [f for o in outcomes for f in o.firings]
        with conn.begin():
            recorded = conn.execute(
                sa.select(
                    firing_rows.c.trigger, firing_rows.c.contact_id, firing_rows.c.event_key
                ).where(firing_rows.c.workspace == workspace)
            ).all()
        # One row per firing reported to a writer, and every firing of the
        # final history among them.
        assert len(recorded) == len(emitted)
        keys = {tuple(row) for row in recorded}
        for firing in expected.firings:
            key = "" if firing.trigger == "lead" else firing.event_id
            assert (firing.trigger, firing.contact_id, key) in keys
        assert count(conn, outbox_rows, workspace) == len(emitted)
