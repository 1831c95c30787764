"""The example models work on realistic data: each loads, and every rule,
stage and trigger in it is reached by a generated event log, so the models
and the generator keep speaking the same vocabulary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import pytest

from leadscore import Engine, Event, explain, generate_events, load_model, parse_event
from leadscore._replay import Result, replay
from leadscore._time import from_datetime

EXAMPLES = Path(__file__).parents[1] / "src" / "leadscore" / "examples"
START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 120
AT = from_datetime(START + timedelta(days=DAYS))


@cache
def log() -> tuple[Event, ...]:
    raw = generate_events(contacts=1_500, events=60_000, seed=11, start=START, days=DAYS)
    return tuple(parse_event(event) for event in raw)


@cache
def scored(name: str) -> tuple[Engine, Result]:
    engine = Engine(load_model(EXAMPLES / f"{name}.yaml"))
    return engine, replay(engine, log(), AT)


@pytest.mark.parametrize("name", ["starter", "b2b-saas", "ecommerce"])
def test_every_rule_awards_points_on_a_realistic_log(name: str) -> None:
    engine, _ = scored(name)
    awarded: set[str] = set()
    for event in log():
        prepared = engine.prepare(event)
        awarded |= {engine.compiled.rules[index].id for index, _ in prepared.hits}
    assert {rule.id for rule in engine.model.rules} - awarded == set()


@pytest.mark.parametrize("name", ["starter", "b2b-saas", "ecommerce"])
def test_scores_spread_over_bands_and_stages(name: str) -> None:
    engine, result = scored(name)
    if engine.model.bands:
        assert len({card.band for card in result.scorecards}) == len(engine.model.bands)
    # Every stage that can be reached automatically is reached by someone.
    automatic = {stage.name for stage in engine.model.stages[1:] if stage.enter is not None}
    assert automatic <= {card.stage for card in result.scorecards}


@pytest.mark.parametrize("name", ["b2b-saas", "ecommerce"])
def test_every_trigger_fires(name: str) -> None:
    engine, result = scored(name)
    assert {t.id for t in engine.model.triggers} <= {f.trigger for f in result.firings}


def test_a_hot_lead_can_be_explained() -> None:
    engine, result = scored("b2b-saas")
    hottest = max(result.scorecards, key=lambda card: card.score)
    assert hottest.band == "hot"
    assert hottest.contact_id is not None
    why = explain(engine, log(), hottest.contact_id, AT)
    assert why.scorecard == hottest
    assert {award.rule_id for award, _ in why.awards}
