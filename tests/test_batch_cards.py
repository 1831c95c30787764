"""Scorecards as columns (leadscore._batch.cards): the rules-only path of the
batch engine finishes its scorecards in SQL, and they are what the pure engine
gives, to the bit; written from the columns, every output format is byte for
byte what the same scorecards give as objects."""

from __future__ import annotations

import functools
import io
import math
import random
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import orjson
import psycopg
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore import Event, model_from_data, score_batch
from leadscore._batch.cards import Cards, _timestamp_texts, joined, jsonl_lines, reported
from leadscore._batch.cli import to_arrow, write_parquet, write_table
from leadscore._batch.plan import BatchPlan, _grade_sql
from leadscore._batch.sql import number
from leadscore._engine import Scorecard, report
from leadscore._model import Model
from leadscore._output import write_csv, write_jsonl
from leadscore._replay import Result, replay
from leadscore._time import FIRST_MICROS, LAST_MICROS, format_timestamp

from .conftest import _empty_database
from .strategies import BASE, MINUTE, logs, models
from .test_batch import _close, assert_same

DAY = 86_400 * 1_000_000


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


def _values() -> list[float]:
    """Doubles where rounding to 2 decimals is hard: ties of k/200 exactly and as
    decimals (1.115 is below its tie, 0.125 on it), their neighbours, zeros,
    random values of every size up to the limit."""
    rng = random.Random(7)
    found: list[float] = [0.0, -0.0, 0.125, 0.375, 1.115, 2.675, 1.005, -2.675, 8.345]
    for k in range(-3000, 3000):
        for tie in (k / 200, (k + 0.5) / 100, float(f"{k / 100 + 0.005:.3f}")):
            found += [tie, math.nextafter(tie, math.inf), math.nextafter(tie, -math.inf)]
    for _ in range(20_000):
        magnitude = 10 ** rng.uniform(-4, 11.9)
        found.append(rng.choice([-1, 1]) * magnitude)
        found.append(round(magnitude, rng.randint(2, 6)) + 0.005)
    return found


def test_reported_rounding_in_sql_is_pythons_to_the_bit() -> None:
    values = _values()
    con = duckdb.connect()
    con.register("v", pa.table({"v": pa.array(values, pa.float64())}))
    got = [row[0] for row in con.execute(f"SELECT v_r FROM ({reported('v', ['v'])})").fetchall()]
    # Rounding value*100 as a double (the naive way) is not Python's on these:
    # the test can tell the two apart.
    assert any(_bits(round(v * 100) / 100 + 0.0) != _bits(report(v)) for v in values)
    wrong = [
        (v, g, report(v)) for v, g in zip(values, got, strict=True) if _bits(g) != _bits(report(v))
    ]
    assert not wrong, wrong[:5]


def _ties_model(clamp: dict[str, float], decay: bool) -> Model:
    data: dict[str, Any] = {
        "version": 1,
        "name": "ties",
        "rules": [
            {"id": "big", "event": "buy", "points": 5, "tags": ["b", "a"]},
            {"id": "small", "event": "view", "points": 1, "tags": ["a"]},
            {"id": "minus", "event": "leave", "points": -7, "tags": ["c"]},
        ],
        "clamp": clamp,
        "bands": [
            {"band": "top", "min_score": clamp.get("max", 3)},
            {"band": "half", "min_score": 0.115},
            {"band": "rest"},
        ],
        "grades": [{"grade": "A", "min_fit": 1}, {"grade": "Z"}],
    }
    if decay:
        data["decay"] = {"half_life_days": 1}
    return model_from_data(data)


def _ties_log() -> list[Event]:
    """Events whole days before the as-of time: with a 1-day half-life each counts
    points * 2^-days exactly, so sums land on ties such as 0.625 or 0.125."""
    at = BASE + 30 * DAY
    log = []
    plan = [
        ("c1", "buy", 3), ("c1", "view", 3), ("c2", "view", 3), ("c3", "buy", 1),
        ("c3", "leave", 0), ("c4", "leave", 9), ("c5", "view", 5), ("c5", "view", 6),
        ("c6", "buy", 0), ("c6", "buy", 0), ("c6", "view", 2),
    ]  # fmt: skip
    for i, (contact, kind, days) in enumerate(plan):
        log.append(Event(f"e{i}", kind, at - days * DAY - i, contact_id=contact))
        log.append(Event(f"f{i}", kind, at - days * DAY, anonymous_id=f"a-{contact}"))
    return log


@pytest.mark.parametrize("decay", [False, True])
@pytest.mark.parametrize(
    "clamp",
    [
        {"max": 1.115},
        {"max": 2.675, "min": -2.675},
        {"max": 0.125},
        {"min": 0.375, "max": 8.345},
        {"min": -1.005},
        {"max": 0.285},
    ],
)
def test_ties_are_the_pure_engines(clamp: dict[str, float], decay: bool) -> None:
    model = _ties_model(clamp, decay)
    log = _ties_log()
    at = BASE + 30 * DAY
    got = score_batch(model, log, at=at)
    expected = replay(model, log, at)
    assert isinstance(got.scorecards, Cards)
    assert isinstance(got.anonymous, Cards)
    assert [c.to_json() for c in got.scorecards] == [c.to_json() for c in expected.scorecards]
    assert [c.to_json() for c in got.anonymous] == [c.to_json() for c in expected.anonymous]
    # The clamps' ties are reached: where DuckDB's round would be wrong.
    reached = {value for c in expected.scorecards for value in [c.score, *c.tag_scores.values()]}
    assert reached & {report(bound) for bound in clamp.values()}


def _rules_only(model: Model) -> Model:
    data = model.model_dump(by_alias=True, exclude_none=True)
    for key in ("fit", "stages", "triggers"):
        data.pop(key, None)
    for rule in data["rules"]:
        rule.pop("tag_from", None)
    return Model.model_validate(data)


@functools.cache
def _connection() -> duckdb.DuckDBPyConnection:
    # One connection for the module (each run replaces the tables of the last),
    # one thread: these logs are tiny, and the suite runs on every core.
    con = duckdb.connect()
    con.execute("SET threads = 1")
    return con


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=models(), log=logs(), later=st.integers(-60 * 24 * 7, 60 * 24 * 30))
def test_rules_only_columns_equal_replay(model: Model, log: list[Event], later: int) -> None:
    model = _rules_only(model)
    at = max(event.timestamp for event in log) + later * MINUTE
    got = score_batch(model, log, at=at, connection=_connection())
    expected = replay(model, log, at)
    assert isinstance(got.scorecards, Cards)
    assert_same(got, expected)


# Owner ids that JSON must escape or CSV must quote, and some that need nothing.
ODD_IDS = ['q"uote', "back\\slash", "com,ma", "line\nbreak", "cr\rhere", "tab\there",
           "ctl\x01", "ünï", "plain", "x" * 70]  # fmt: skip


_AT = BASE + 30 * DAY


def _odd_log() -> list[Event]:
    at = _AT
    log = []
    for i, name in enumerate(ODD_IDS):
        # Fractions of a second, whole seconds and instants before 1970.
        stamps = [at - i * DAY - 123_450, at - 3 * DAY, -(i + 1) * 1_000_001, at - 7 * DAY]
        for j, ts in enumerate(stamps):
            kind = ["buy", "view", "view", "leave"][(i + j) % 4]
            log.append(Event(f"c{i}-{j}", kind, ts, contact_id=name))
            log.append(Event(f"a{i}-{j}", kind, ts + j, anonymous_id=name))
    log.append(Event("quiet", "other", at - 5, contact_id="nothing-awarded"))
    # Owners whose last event is before 1970, with and without a fraction.
    log.append(Event("old1", "buy", -400 * DAY - 1_234_567, contact_id="old"))
    log.append(Event("old2", "view", -3 * DAY, anonymous_id="old-anonymous"))
    return log


def _odd_result() -> tuple[Result, Model]:
    model = _ties_model({"max": 150.0}, True)
    return score_batch(model, _odd_log(), at=_AT), model


def test_columns_write_every_format_as_the_objects_do(tmp_path: Path) -> None:
    result, model = _odd_result()
    cards = joined(result.scorecards, result.anonymous)
    assert isinstance(cards, Cards)
    objects = list(cards)
    pure = replay(model, _odd_log(), _AT)
    want = [card.to_json() for card in [*pure.scorecards, *pure.anonymous]]
    assert len(objects) == len(want)
    assert all(_close(c.to_json(), w) for c, w in zip(objects, want, strict=True))
    # JSON Lines, CSV, Parquet, the Arrow table.
    for write in (write_jsonl, write_parquet):
        columns, rows = io.BytesIO(), io.BytesIO()
        assert write(cards, columns) == write(objects, rows) == len(objects)
        assert columns.getvalue() == rows.getvalue()
    columns_text, rows_text = io.StringIO(newline=""), io.StringIO(newline="")
    write_csv(cards, columns_text)
    write_csv(objects, rows_text)
    assert columns_text.getvalue() == rows_text.getvalue()
    assert to_arrow(cards).equals(to_arrow(objects))
    # Back to tables: DuckDB and PostgreSQL.
    database = tmp_path / "out.duckdb"
    write_table(cards, f"{database}#columns", scorecards=True)
    write_table(objects, f"{database}#objects", scorecards=True)
    with duckdb.connect(str(database)) as con:
        assert (
            con.execute("SELECT * FROM columns").fetchall()
            == con.execute("SELECT * FROM objects").fetchall()
        )
    with _empty_database("postgresql", tmp_path) as url:
        write_table(cards, f"{url}#columns", scorecards=True)
        write_table(objects, f"{url}#objects", scorecards=True)
        with psycopg.connect(url) as pg:
            have = pg.execute("SELECT * FROM columns").fetchall()
            assert have == pg.execute("SELECT * FROM objects").fetchall()
            assert len(have) == len(objects)


def test_timestamp_texts_are_format_timestamps() -> None:
    # Every year an input may hold (1 to 9999), both sides of 1970, leap days,
    # fractions of every number of digits, whole seconds, nulls, a slice.
    rng = random.Random(11)
    values: list[int | None] = [FIRST_MICROS, LAST_MICROS, 0, -1, 1, -DAY, -DAY - 1]
    values += [951_782_400_000_000 + k for k in (-1, 0, DAY - 1, DAY)]  # 2000-02-29
    values += [-2_203_891_200_000_000, 4_107_542_400_000_000]  # 1900-03-01, 2100-03-01
    for _ in range(20_000):
        value = rng.randint(FIRST_MICROS, LAST_MICROS)
        values.append(value - value % 10 ** rng.randint(0, 7))
    values += [None, None]
    rng.shuffle(values)
    want = [None if v is None else format_timestamp(v) for v in values]
    column = pa.array(values, pa.int64())
    assert _timestamp_texts(column).to_pylist() == want
    assert _timestamp_texts(column.slice(13, 5_000)).to_pylist() == want[13:5_013]
    assert _timestamp_texts(pa.nulls(3, pa.int64())).to_pylist() == [None] * 3
    assert _timestamp_texts(pa.array([], pa.int64())).to_pylist() == []


def test_the_columns_are_a_sequence_of_scorecards() -> None:
    result, _ = _odd_result()
    cards = result.scorecards
    assert isinstance(cards, Cards)
    objects = list(cards)
    assert all(isinstance(card, Scorecard) for card in objects)
    assert len(cards) == len(objects) > 3
    assert cards[0] == objects[0]
    assert cards[-1] == objects[-1]
    assert list(cards[1:3]) == objects[1:3]
    assert cards[::2] == objects[::2]
    assert cards == objects
    assert cards != objects[:-1]
    with pytest.raises(IndexError):
        cards[len(objects)]
    assert list(cards + result.anonymous) == [*objects, *result.anonymous]
    assert objects + cards == [*objects, *objects]
    assert isinstance(joined(cards, []), Cards)
    assert sorted(cards, key=lambda c: c.score) == sorted(objects, key=lambda c: c.score)


@pytest.mark.parametrize("output_format", ["jsonl", "csv", "parquet"])
def test_the_command_line_writes_columns_as_the_pure_engine_writes(
    output_format: str, tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    with open(events, "wb") as out:
        for event in _odd_log():
            record = {
                "id": event.id,
                "type": event.type,
                "timestamp": format_timestamp(event.timestamp),
                "contact_id": event.contact_id,
                "anonymous_id": event.anonymous_id,
            }
            out.write(orjson.dumps({k: v for k, v in record.items() if v is not None}) + b"\n")
    model = tmp_path / "model.json"
    # No decay: whole sums, clamped at a tie, the same in both engines to the bit.
    ties = _ties_model({"max": 1.115, "min": -2.675}, decay=False)
    model.write_bytes(orjson.dumps(ties.model_dump(by_alias=True, exclude_none=True)))
    written = {}
    for engine in ("pure", "duckdb"):
        path = tmp_path / f"{engine}.{output_format}"
        subprocess.run(
            [sys.executable, "-m", "leadscore", "score", str(model), str(events), "--at",
             format_timestamp(_AT), "--engine", engine, "--format", output_format, "-o",
             str(path), "--include-anonymous"], check=True, capture_output=True,
        )  # fmt: skip
        written[engine] = path.read_bytes()
    assert written["duckdb"] == written["pure"]
    if output_format != "parquet":  # the clamp's tie is there, as Python rounds it
        assert b"1.11," in written["pure"]


# -- every model (fit, stages, triggers, tag_from): finished in SQL -------------


def _python_finished(model: Model, log: list[Event], at: int) -> Result:
    """The batch engine's result with every scorecard built in Python (the path a
    value at REPORT_LIMIT takes): the pure engine's own clamp, report, band_of and
    grade_of over the same sums, stages and fits."""
    return score_batch(BatchPlan(model, report_limit=0.0), log, at=at, connection=_connection())


def assert_finished_alike(got: Result, want: Result) -> None:
    """The columns are the Python-built scorecards to the bit, tag order included,
    and written as JSON Lines from columns they are what the objects write."""
    for mine, theirs in ((got.scorecards, want.scorecards), (got.anonymous, want.anonymous)):
        assert isinstance(mine, Cards)
        assert not isinstance(theirs, Cards) or not theirs  # no owners: nothing is huge
        assert [orjson.dumps(c.to_json()) for c in mine] == [
            orjson.dumps(c.to_json()) for c in theirs
        ]
        rows = io.BytesIO()
        write_jsonl(theirs, rows)
        assert b"".join(jsonl_lines(mine.to_arrow())) == rows.getvalue()
    assert got.firings == want.firings


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=models(), log=logs(), later=st.integers(-60 * 24 * 7, 60 * 24 * 30))
def test_every_models_columns_are_the_python_scorecards(
    model: Model, log: list[Event], later: int
) -> None:
    # Random models have fit and grades, stages (walked, or all through the pure
    # engine when a condition reads the stage score), triggers and tag_from.
    at = max(event.timestamp for event in log) + later * MINUTE
    got = score_batch(model, log, at=at, connection=_connection())
    assert_finished_alike(got, _python_finished(model, log, at))
    assert_same(got, replay(model, log, at))


def _staged_model(**extra: Any) -> Model:
    data: dict[str, Any] = {
        "version": 1,
        "name": "staged",
        "rules": [
            {"id": "buy", "event": "buy", "points": 25, "tags": ["b"], "tag_from": "k"},
            {"id": "view", "event": "view", "points": 3, "tag_from": "k"},
        ],
        "decay": {"half_life_days": 0.5},
        "bands": [{"band": "hot", "min_score": 20}, {"band": "cold"}],
        "fit": [{"id": "ceo", "where": {"role": "ceo"}, "points": 20}],
        "grades": [{"grade": "A", "min_fit": 20}, {"grade": "B"}],
        "stages": [{"name": "new"}, {"name": "warm", "enter": {"score_gte": 20}}],
        "triggers": [{"id": "w", "when": {"stage_entered": "warm"}, "actions": [{"add_tag": "x"}]}],
        **extra,
    }
    return model_from_data(data)


def test_walked_owners_and_the_pure_engines_owners_are_finished_together() -> None:
    # With a half-life of half a day, an owner whose events span more than 900
    # half-lives (450 days) goes through the pure engine (ls_fallback), the others
    # through the walk: both kinds of stage fields meet in one table.
    at = _AT
    log = []
    for i, name in enumerate(["old", "new1", "new2", "ünï"]):
        first = at - (600 * DAY if name == "old" else 2 * DAY) - i
        log.append(Event(f"{name}-0", "view", first, contact_id=name, properties={"k": "z"}))
        log.append(Event(f"{name}-i", "identify", first + 1, contact_id=name,
                         traits={"role": "ceo" if i % 2 else "cto"}))  # fmt: skip
        log.append(Event(f"{name}-1", "buy", at - DAY - i, contact_id=name, properties={"k": "a"}))
        log.append(Event(f"{name}-2", "view", at - i, anonymous_id=f"anon-{name}",
                         properties={"k": "Ä"}))  # fmt: skip
    model = _staged_model()
    got = score_batch(model, log, at=at, connection=_connection())
    assert_finished_alike(got, _python_finished(model, log, at))
    assert_same(got, replay(model, log, at))
    stages = {card.contact_id: (card.stage, card.stage_score) for card in got.scorecards}
    assert stages["old"][0] == stages["new1"][0] == "warm"
    assert {"a", "b", "z"} <= set(got.scorecards[0].tag_scores)


def test_a_score_past_the_report_limit_builds_scorecards_in_python() -> None:
    # 2**41 points reach REPORT_LIMIT (1e12), where the SQL rounding stops being
    # exact: the pure engine's report() rounds them, over the same stages.
    model = _staged_model(
        rules=[{"id": "buy", "event": "buy", "points": 2**41, "tag_from": "k"}], decay=None
    )
    log = [
        Event("e1", "buy", _AT - DAY, contact_id="c1", properties={"k": "a"}),
        Event("e2", "view", _AT - DAY, contact_id="c2"),
    ]
    got = score_batch(model, log, at=_AT, connection=_connection())
    assert not isinstance(got.scorecards, Cards)
    assert [c.to_json() for c in got.scorecards] == [
        c.to_json() for c in replay(model, log, _AT).scorecards
    ]
    assert got.scorecards[0].score == 2.0**41
    assert got.scorecards[0].stage == "warm"


def test_grades_in_sql_are_grade_of_at_and_around_every_threshold() -> None:
    # grade_of compares an integer fit with minimum - TOLERANCE exactly: past 2**53
    # a fit as a double is not the fit (2**53 + 3 becomes 2**53 + 4).
    minimums = [2**53 + 3, 2**53, 20, 19.5, 0.5, 0, -3, -(2**53) - 3]
    model = model_from_data(
        {
            "version": 1,
            "name": "grades",
            "rules": [{"id": "r", "event": "view", "points": 1}],
            "grades": [
                *({"grade": f"g{k}", "min_fit": least} for k, least in enumerate(minimums)),
                {"grade": "rest"},
            ],
        }
    )
    compiled = BatchPlan(model).compiled
    fits = sorted(
        {
            math.floor(least) + d
            for least in minimums
            for d in (-5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5)
        }
    )
    con = duckdb.connect()
    con.register("f", pa.table({"fit": pa.array(fits, pa.int64())}))
    got = con.execute(f"SELECT {_grade_sql(compiled, 'fit')} FROM f ORDER BY fit").fetchall()
    assert [grade for (grade,) in got] == [compiled.grade_of(fit) for fit in fits]
    # The naive comparison of the fit as a double differs at 2**53 + 3.
    naive = con.execute(
        f"SELECT fit >= {number(compiled.grades[0][1] or 0.0)} FROM f WHERE fit = {2**53 + 3}"
    ).fetchall()
    assert naive == [(True,)]
    assert compiled.grade_of(2**53 + 3) == "g1"
