"""The Spark engine gives what replay gives: every conformance case in several
arrival orders, random models and logs (hypothesis), and files read by Spark.

All cases of a test are scored in the same Spark jobs (`score_parts`): a
Spark job costs seconds to start, a conformance case milliseconds to score.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import orjson
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore._batch.spark import checked_events, score_parts, score_spark
from leadscore._cli import cli
from leadscore._eventfiles import BadRecord, read_events
from leadscore._events import Event, parse_event
from leadscore._generate import generate_events, write_events
from leadscore._loader import parse_model
from leadscore._model import Model
from leadscore._replay import replay

from ._support import CASES, arrival_orders, assert_scorecards, firing_rows, load_case
from .strategies import MINUTE, logs, models
from .test_batch import assert_same


def test_the_spark_engine(spark: Any, tmp_path: Path) -> None:
    """One test, so one xdist worker starts one JVM (xdist_group does not hold under
    pytest 9: the group name it appends to node ids is lost)."""
    _conformance(spark)
    _hypothesis(spark)
    _files(spark, tmp_path)
    _big_integers(spark, tmp_path)
    _command_line(tmp_path)


def _conformance(spark: Any) -> None:
    runs = []
    for path in CASES:
        case = load_case(path)
        for events in arrival_orders(case.events, shuffles=1).values():
            runs.append((case, events))
    results = score_parts(spark, [(c.model, c.at, checked_events(spark, e)) for c, e in runs])
    for (case, events), result in zip(runs, results, strict=True):
        assert_scorecards(result.scorecards, case.expect["scorecards"])
        assert firing_rows(result.firings) == case.expect["firings"]
        assert len(result.warnings) == case.expect["warnings"]
        assert_same(result, replay(case.model, events, case.at))


_Run = tuple[Model, list[Event], int]


@st.composite
def runs(draw: st.DrawFn) -> _Run:
    model, log = draw(models()), draw(logs())
    resend = draw(st.lists(st.integers(0, 10**6), max_size=4))
    arrival = log + [log[i % len(log)] for i in resend]
    random.Random(draw(st.integers(0, 2**32))).shuffle(arrival)
    later = draw(st.integers(-60 * 24 * 7, 60 * 24 * 30))
    return model, arrival, max(event.timestamp for event in log) + later * MINUTE


def _hypothesis(spark: Any) -> None:
    @settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(batch=st.lists(runs(), min_size=12, max_size=12))
    def spark_equals_replay(batch: list[_Run]) -> None:
        results = score_parts(spark, [(m, at, checked_events(spark, log)) for m, log, at in batch])
        for (model, log, at), result in zip(batch, results, strict=True):
            assert_same(result, replay(model, log, at))

    spark_equals_replay()


def _case_files(tmp_path: Path) -> tuple[Model, int, list[Event], Path, Path]:
    """A conformance case as JSON Lines with a bad and a blank line, and as Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    case = load_case(CASES[0])
    lines = [orjson.dumps(event.to_json()) for event in case.events]
    lines[1:1] = [b'{"id": "bad", "type": "view"}', b"   "]
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_bytes(b"\n".join(lines) + b"\n")
    rows = [event.to_json() for event in case.events]
    for row in rows:
        for name in ("properties", "traits"):
            if name in row:
                row[name] = orjson.dumps(row[name]).decode()
    parquet = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pylist(rows), parquet)
    return case.model, case.at, case.events, jsonl, parquet


def _files(spark: Any, tmp_path: Path) -> None:
    model, at, events, jsonl, parquet = _case_files(tmp_path)
    expected = replay(model, events, at)
    bad: list[BadRecord] = []
    assert_same(score_spark(model, str(jsonl), at=at, spark=spark, on_bad=bad.append), expected)
    pure: list[BadRecord] = []
    assert list(read_events([str(jsonl)], on_bad=pure.append)) == events
    assert bad == pure != []
    assert_same(score_spark(model, [str(parquet)], at=at, spark=spark), expected)
    frame = spark.read.parquet(str(parquet))
    assert_same(score_spark(model, frame, at=at, spark=spark), expected)


def _big_integers(spark: Any, tmp_path: Path) -> None:
    # An integer past 64 bits: the executors read properties and traits with
    # orjson (a float: no `eq` match, tag "1.2345678901234568e+29"), and
    # Events from Python raised "TypeError: Integer exceeds 64-bit range".
    big = 123456789012345678901234567890
    model = parse_model(
        "version: 1\nname: big\nrules:\n"
        f"  - {{id: exact, event: order, where: {{n: {big}}}, points: 10, tag_from: n}}\n"
        f"fit:\n  - {{id: account, where: {{account: {2**64}}}, points: 7}}\n"
    )
    records = [
        {"id": "i1", "type": "identify", "contact_id": "c1", "timestamp": "2026-05-04T09:00:00Z",
         "traits": {"account": 2**64}},
        {"id": "e1", "type": "order", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",
         "properties": {"n": big}},
    ]  # fmt: skip
    events = [parse_event(record) for record in records]
    at = events[-1].timestamp + MINUTE
    expected = replay(model, events, at)
    (card,) = expected.scorecards
    assert (card.score, card.fit, card.tag_scores) == (10.0, 7, {str(big): 10.0})
    jsonl = tmp_path / "big.jsonl"
    jsonl.write_text("".join(json.dumps(record) + "\n" for record in records))
    assert_same(score_spark(model, str(jsonl), at=at, spark=spark), expected)
    assert_same(score_spark(model, events, at=at, spark=spark), expected)


def _command_line(tmp_path: Path) -> None:
    # In-process, so the command finds the session (getOrCreate) instead of starting a JVM.
    events = tmp_path / "events.parquet"
    write_events(generate_events(contacts=200, events=4000, seed=1), events)
    model = Path(__file__).parents[1] / "examples" / "b2b-saas.yaml"
    outputs = {}
    for engine in ("pure", "spark"):
        cards, firings = tmp_path / f"{engine}.jsonl", tmp_path / f"{engine}-firings.jsonl"
        run = CliRunner().invoke(
            cli,
            ["score", str(model), str(events), "--at", "2026-07-01", "--engine", engine,
             "--format", "jsonl", "-o", str(cards), "--firings", str(firings),
             "--include-anonymous"],
        )  # fmt: skip
        assert run.exit_code == 0, run.output
        outputs[engine] = (cards.read_bytes(), firings.read_bytes())
    assert outputs["spark"] == outputs["pure"]
    assert outputs["pure"][1].count(b"\n") > 0
    wrong = CliRunner().invoke(
        cli, ["score", str(model), str(events), "--engine", "spark", "--input-format", "csv"]
    )
    assert wrong.exit_code == 1
    assert "parquet or jsonl" in wrong.output
