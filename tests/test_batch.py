"""The batch engine (DuckDB) gives what replay gives: every conformance case in
several arrival orders, and random models and logs (hypothesis)."""

from __future__ import annotations

import dataclasses
import functools
import random
from pathlib import Path
from typing import Any

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore._batch.plan import BatchPlan, _repeated_ids, canonical_view, events_table
from leadscore._batch.walk import score_floor
from leadscore._events import Event
from leadscore._loader import model_from_data
from leadscore._model import Model
from leadscore._replay import Result, replay

from ._support import CASES, arrival_orders, assert_scorecards, firing_rows, load_case
from .strategies import MINUTE, logs, models


@functools.cache
def _connection() -> duckdb.DuckDBPyConnection:
    # One connection for the module: opening one per example would double the
    # time; each run replaces the temporary tables of the last. One thread:
    # these logs are tiny, and the suite already runs on every core.
    con = duckdb.connect()
    con.execute("SET threads = 1")
    return con


def _batch(model: Model, events: list[Event], at: int) -> Result:
    con = _connection()
    return BatchPlan(model).run(con, canonical_view(con, events_table(events)), at)


def assert_same(got: Result, expected: Result) -> None:
    """Identical scorecards (numbers within 1e-6) and firings; the same warnings."""
    for mine, theirs in (
        (got.scorecards, expected.scorecards),
        (got.anonymous, expected.anonymous),
    ):
        assert len(mine) == len(theirs)
        for card, want in zip(mine, theirs, strict=True):
            assert _close(card.to_json(), want.to_json()), (card, want)
    assert got.firings == expected.firings
    assert sorted(map(str, got.warnings)) == sorted(map(str, expected.warnings))


def _close(have: Any, want: Any) -> bool:
    """Equal, but for floats within 1e-6."""
    if isinstance(want, dict) and isinstance(have, dict):
        return set(have) == set(want) and all(_close(have[k], want[k]) for k in want)
    if isinstance(want, float) and isinstance(have, float):
        return abs(have - want) <= 1e-6
    return bool(have == want) and type(have) is type(want)


@pytest.mark.parametrize("order", ["given", "reversed", "shuffle-0"])
@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_conformance_on_duckdb(path: Path, order: str) -> None:
    case = load_case(path)
    events = arrival_orders(case.events, shuffles=1)[order]
    result = _batch(case.model, events, case.at)
    assert_scorecards(result.scorecards, case.expect["scorecards"])
    assert firing_rows(result.firings) == case.expect["firings"]
    assert len(result.warnings) == case.expect["warnings"]
    assert_same(result, replay(case.model, events, case.at))


# The window-function walk of stages (leadscore._batch.walk) serves models whose stage
# conditions do not read the stage score; these stages read everything else.
# With `score_lt`, every event may move a stage (decay raises a negative
# score); with only growing conditions, events that award nothing are left out
# for owners without a negative award (_batch.passive_events_matter).
WALKABLE_STAGES: list[list[dict[str, Any]]] = [
    [
        {"name": "s0"},
        {"name": "s1", "enter": {"any": [{"score_gte": 20}, {"fit_gte": 30}]}},
        {"name": "s2", "enter": {"any": [{"event": "buy", "where": {"k": "a"}}, {"score_lt": -5}]}},
        {"name": "s3", "enter": {"all": [{"score_gte": 50}, {"not": {"band_in": ["cold"]}}]}},
        {"name": "s4"},
    ],
    [
        {"name": "s0"},
        {"name": "s1", "enter": {"score_gte": 20}},
        {"name": "s2", "enter": {"any": [{"event": "buy"}, {"band_in": ["hot"]}]}},
        {"name": "s3", "enter": {"all": [{"score_gte": 30}, {"grade_in": ["A"]}]}},
        {"name": "s4"},
    ],
]


@st.composite
def walkable_models(draw: st.DrawFn) -> Model:
    data = draw(models()).model_dump(by_alias=True, exclude_none=True)
    data["stages"] = draw(st.sampled_from(WALKABLE_STAGES))
    data["bands"] = [{"band": "hot", "min_score": 60}, {"band": "cold"}]
    data["grades"] = [{"grade": "A", "min_fit": 20}, {"grade": "B"}]
    data["triggers"] = [
        *data.get("triggers", []),
        {"id": "to-s3", "when": {"stage_entered": "s3"}, "actions": [{"add_tag": "x"}]},
        # A stage_set moves a stage back (or to s4, which nothing enters by itself),
        # so a stage may be entered again: every time, without `once`.
        {
            "id": "to-s1",
            "when": {"stage_entered": "s1"},
            "once": draw(st.booleans()),
            "actions": [{"add_tag": "x"}],
        },
        {
            "id": "graded",
            "when": {"grade_entered": "A"},
            "once": False,
            "actions": [{"add_tag": "x"}],
        },
    ]
    return Model.model_validate(data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=models(),
    log=logs(),
    seed=st.integers(0, 2**32),
    later=st.integers(-60 * 24 * 7, 60 * 24 * 30),
    resend=st.lists(st.integers(0, 10**6), max_size=4),
    changed=st.lists(st.integers(0, 10**6), max_size=2),
)
def test_duckdb_equals_replay(
    *, model: Model, log: list[Event], seed: int, later: int, resend: list[int], changed: list[int]
) -> None:
    # Resent copies, and copies that differ (a minute later): whichever arrives
    # first is kept, a differing later copy is reported.
    moved = [log[i % len(log)] for i in changed]
    arrival = log + [log[i % len(log)] for i in resend]
    arrival += [dataclasses.replace(e, timestamp=e.timestamp + MINUTE) for e in moved]
    random.Random(seed).shuffle(arrival)
    at = max(event.timestamp for event in log) + later * MINUTE
    assert_same(_batch(model, arrival, at), replay(model, arrival, at))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=walkable_models(), log=logs(), later=st.integers(-60 * 24 * 7, 60 * 24 * 30))
def test_duckdb_walk_of_stages_equals_replay(model: Model, log: list[Event], later: int) -> None:
    at = max(event.timestamp for event in log) + later * MINUTE
    assert_same(_batch(model, log, at), replay(model, log, at))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=models(), log=logs(), later=st.integers(-60 * 24 * 7, 60 * 24 * 30))
def test_duckdb_without_rule_masks_equals_replay(
    model: Model, log: list[Event], later: int
) -> None:
    """Past 62 rules an event's matched rules do not fit a BIGINT mask, and the plan
    keeps them as a list of indices: the drawn rules, repeated under new ids."""
    data = model.model_dump(by_alias=True, exclude_none=True)
    rules = data["rules"]
    data["rules"] = [
        {**rule, "id": f"{rule['id']}-{k}"} for k in range(63 // len(rules) + 1) for rule in rules
    ]
    model = Model.model_validate(data)
    plan = BatchPlan(model)
    assert plan.event_masks is None
    at = max(event.timestamp for event in log) + later * MINUTE
    con = _connection()
    got = plan.run(con, canonical_view(con, events_table(log)), at)
    assert_same(got, replay(model, log, at))


# Fit reads the traits merged key by key up to each identify event (the batch
# engine reads only the top-level keys the fit rules use, each its last value):
# traits that set, replace, null out and nest keys, and fit rules on nested
# paths and on absent keys, before and after a stage's condition reads the fit.
TRAIT_VALUES = st.sampled_from(["ceo", "Dev", 10, 60, "80", None, {"size": 70}, {"size": "x"}])


@st.composite
def trait_logs(draw: st.DrawFn) -> list[Event]:
    log = draw(logs())
    for index, event in enumerate(log):
        if event.type == "identify":
            keys = draw(st.lists(st.sampled_from(["role", "size", "org", "other"]), unique=True))
            traits = {key: draw(TRAIT_VALUES) for key in keys}
            log[index] = dataclasses.replace(event, traits=traits)
    return log


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=walkable_models(), log=trait_logs(), later=st.integers(-60 * 24 * 7, 60 * 24 * 30))
def test_duckdb_fit_of_merged_traits_equals_replay(
    model: Model, log: list[Event], later: int
) -> None:
    data = model.model_dump(by_alias=True, exclude_none=True)
    data["fit"] = [
        {"id": "role", "where": {"role": {"in": ["ceo", "dev"]}}, "points": 20},
        {"id": "size", "where": {"org.size": {"gte": 50}}, "points": 15},
        {"id": "flat", "where": {"size": {"gte": 50}}, "points": 5},
        {"id": "none", "where": {"role": {"exists": False}}, "points": -5},
    ]
    model = Model.model_validate(data)
    at = max(event.timestamp for event in log) + later * MINUTE
    assert_same(_batch(model, log, at), replay(model, log, at))


def _floor_of(stages: list[dict[str, Any]], triggers: list[dict[str, Any]]) -> float | None:
    model = Model.model_validate(
        {
            "version": 1,
            "name": "floor",
            "rules": [{"id": "r", "event": "view", "points": 5}],
            "bands": [{"band": "hot", "min_score": 60}, {"band": "cold"}],
            "stages": stages,
            "triggers": [{**t, "actions": [{"add_tag": "x"}]} for t in triggers],
        }
    )
    return score_floor(model)


def test_score_floor_is_the_least_threshold_of_the_score_tests() -> None:
    # The walk leaves out award-only events of owners whose positive points stay
    # below this floor: every score test must need at least it.
    first = {"name": "s0"}
    assert _floor_of([first, {"name": "s1", "enter": {"score_gte": 25}}], []) == 25
    assert (
        _floor_of(
            [first, {"name": "s1", "enter": {"any": [{"event": "buy"}, {"band_in": ["hot"]}]}}],
            [{"id": "t", "when": {"score_crosses": 40}}],
        )
        == 40
    )
    assert _floor_of([first, {"name": "s1", "enter": {"event": "buy"}}], []) == float("inf")
    # Tests that may hold on a low score, or read what the floor does not bound.
    assert _floor_of([first, {"name": "s1", "enter": {"score_lt": 5}}], []) is None
    assert _floor_of([first, {"name": "s1", "enter": {"not": {"score_gte": 5}}}], []) is None
    assert _floor_of([first, {"name": "s1", "enter": {"band_in": ["cold"]}}], []) is None
    assert _floor_of([first], [{"id": "t", "when": {"band_entered": "cold"}}]) is None
    assert _floor_of([first], [{"id": "t", "when": {"tag_score_crosses": {"a": 5}}}]) is None
    assert _floor_of([first, {"name": "s1", "enter": {"stage_score_gte": 5}}], []) is None


@pytest.mark.parametrize("limit", [10, 0], ids=["sorted hashes", "duckdb alone"])
@pytest.mark.parametrize(
    ("ids", "repeated"),
    [
        (["a", "b", "c", "ab", "ba"], []),
        (["a", "b", "a", "c", "b", "a"], ["a", "b"]),
        ([], []),
    ],
)
def test_repeated_ids_are_found_whichever_way_they_are_asked(
    ids: list[str], repeated: list[str], limit: int
) -> None:
    # Both ways of proving ids distinct (NumPy over their hashes up to the
    # limit of events, DuckDB past it) give the same answer and the same ls_dups.
    con = duckdb.connect()
    con.execute("CREATE TABLE events AS SELECT unnest(?::VARCHAR[]) AS id", [ids])
    assert _repeated_ids(con, "events", limit=limit) is bool(repeated)
    if repeated:
        assert sorted(r for (r,) in con.execute("SELECT id FROM ls_dups").fetchall()) == repeated


def test_a_half_life_past_a_double_of_microseconds_equals_replay() -> None:
    # 1e300 days is infinitely many microseconds as a double: no decay, as the
    # pure engine computes it (2^(-t/inf) = 1). The SQL wrote the half-life as
    # `inf`, a column name to DuckDB (an error), and the walk's span test took
    # int() of an infinite instant (OverflowError).
    model = model_from_data(
        {
            "version": 1,
            "name": "slow",
            "decay": {"half_life_days": 1e300},
            "rules": [
                {"id": "a", "event": "a", "points": 30, "limit": {"times": 1, "per": "day"}},
                {"id": "b", "event": "b", "points": 10},
            ],
            "stages": [{"name": "new"}, {"name": "lead", "enter": {"score_gte": 35}}],
            "triggers": [{"id": "t", "when": {"score_crosses": 35}, "actions": [{"add_tag": "x"}]}],
        }
    )
    at = 1_780_000_000_000_000
    day = 86_400_000_000
    events = [
        Event("e1", "a", at - 400 * day, contact_id="c1"),
        Event("e2", "a", at - 400 * day + 1, contact_id="c1"),
        Event("e3", "b", at - 3 * day, contact_id="c1"),
        Event("e4", "b", at - day, anonymous_id="v1"),
    ]
    expected = replay(model, events, at)
    assert expected.scorecards[0].score == 40.0  # undecayed
    assert_same(_batch(model, events, at), expected)
    rules_only = model.model_copy(update={"stages": [], "triggers": []})
    assert_same(_batch(rules_only, events, at), replay(rules_only, events, at))
