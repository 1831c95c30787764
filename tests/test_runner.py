"""The streaming runner behind `leadscore score` gives what replay gives,
whether it holds events in memory or spills them to disk partitions."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore._engine import Engine
from leadscore._events import Event
from leadscore._model import Model
from leadscore._replay import Result, replay
from leadscore._runner import StreamScorer, _in_parallel

from ._support import CASES, assert_scorecards, firing_rows, load_case
from .strategies import MINUTE, logs, models


@pytest.mark.parametrize(("spill_after", "workers"), [(10**9, 1), (0, 1), (3, 1), (3, 2), (0, 3)])
@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_conformance_through_the_runner(path: Path, spill_after: int, workers: int) -> None:
    case = load_case(path)
    events = list(case.events)
    random.Random(7).shuffle(events)
    scorer = StreamScorer(Engine(case.model), case.at, spill_after=spill_after, workers=workers)
    scorer.add_all(events)
    assert scorer.spilled == (spill_after < len(events))
    result = scorer.finish()
    assert_scorecards(result.scorecards, case.expect["scorecards"])
    assert firing_rows(result.firings) == case.expect["firings"]
    assert len(result.warnings) == case.expect["warnings"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=models(),
    log=logs(),
    spill_after=st.sampled_from([0, 5, 10**9]),
    workers=st.sampled_from([1, 2]),
    later=st.integers(-60 * 24 * 7, 60 * 24 * 7),
    resend=st.lists(st.integers(0, 10**6), max_size=5),
)
def test_runner_equals_replay(  # noqa: PLR0917 - hypothesis passes each strategy by name
    model: Model, log: list[Event], spill_after: int, workers: int, later: int, resend: list[int]
) -> None:
    # Some copies are resent, and `at` may fall inside the log.
    arrival = log + [log[i % len(log)] for i in resend]
    at = max(event.timestamp for event in log) + later * MINUTE
    expected = replay(model, arrival, at)
    scorer = StreamScorer(Engine(model), at, spill_after=spill_after, workers=workers)
    scorer.add_all(arrival)
    got = scorer.finish()
    assert got.scorecards == expected.scorecards
    assert got.anonymous == expected.anonymous
    assert got.firings == expected.firings
    assert len(got.warnings) == len(expected.warnings)


def test_a_failure_in_a_scoring_process_reaches_the_caller() -> None:
    parent = os.getpid()

    def work(buckets: Sequence[int]) -> Result:
        if 1 in buckets:
            raise ValueError(f"bucket 1 failed in process {os.getpid()}")
        return Result()

    with pytest.raises(ValueError, match="bucket 1 failed") as failure:
        _in_parallel(work, range(4), 2)
    assert str(parent) not in str(failure.value)  # it really ran in a child


def test_a_scoring_process_that_dies_is_an_error() -> None:
    def work(buckets: Sequence[int]) -> Result:
        os._exit(3)

    with pytest.raises(RuntimeError, match="exit code 3"):
        _in_parallel(work, range(4), 2)
