"""Properties of the engine on random models and logs (hypothesis)."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore._engine import Engine
from leadscore._events import Event
from leadscore._ledger import Ledger
from leadscore._model import Model
from leadscore._replay import explain, replay

from .strategies import MINUTE, logs, models

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _at(log: list[Event], extra_minutes: int) -> int:
    return max(event.timestamp for event in log) + extra_minutes * MINUTE


@SETTINGS
@given(model=models(), log=logs(), seed=st.integers(0, 2**32), later=st.integers(0, 60 * 24 * 30))
def test_incremental_equals_replay_in_any_arrival_order(
    model: Model, log: list[Event], seed: int, later: int
) -> None:
    at = _at(log, later)
    expected = replay(model, log, at)
    arrival = list(log)
    random.Random(seed).shuffle(arrival)
    ledger = Ledger(Engine(model))
    emitted = []
    for event in arrival:
        emitted += ledger.ingest(event).firings
    got = ledger.result(at)
    assert [c.to_json() for c in got.scorecards] == [c.to_json() for c in expected.scorecards]
    assert [c.to_json() for c in got.anonymous] == [c.to_json() for c in expected.anonymous]
    # Each firing of the final history was emitted, none twice, and a `once`
    # trigger at most once per contact even when late events move its firing.
    keys = [(f.trigger, f.contact_id, f.event_id) for f in emitted]
    assert len(keys) == len(set(keys))
    once = {t.id for t in model.triggers if t.once}
    per_contact = [(f.trigger, f.contact_id) for f in emitted if f.trigger in once]
    assert len(per_contact) == len(set(per_contact))
    emitted_once = set(per_contact)
    for f in expected.firings:
        if f.trigger in once:
            assert (f.trigger, f.contact_id) in emitted_once
        else:
            assert (f.trigger, f.contact_id, f.event_id) in set(keys)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=models(), log=logs(), cut=st.floats(0, 1))
def test_a_ledgers_scorecard_as_of_an_instant_in_its_log_is_the_replays(
    model: Model, log: list[Event], cut: float
) -> None:
    # Events after `at` do not exist for the answer: the card was the state's,
    # which holds every event ingested, later ones included.
    stamps = sorted(event.timestamp for event in log)
    at = stamps[int(cut * (len(stamps) - 1))]
    ledger = Ledger(Engine(model))
    for event in log:
        ledger.ingest(event)
    expected = replay(model, log, at)
    for card in expected.scorecards:
        assert ledger.scorecard((True, card.contact_id or ""), at).to_json() == card.to_json()
    for card in expected.anonymous:
        got = ledger.scorecard((False, card.anonymous_id or ""), at)
        assert got.to_json() == card.to_json()


@SETTINGS
@given(model=models(), log=logs(), later=st.integers(0, 60 * 24 * 30))
def test_in_order_arrival_emits_exactly_the_replay_firings(
    model: Model, log: list[Event], later: int
) -> None:
    # A link moves earlier anonymous events onto a contact, which rewrites its
    # history even when events arrive in order; without links, nothing does.
    log = [replace(e, contact_id=e.contact_id or "c1", anonymous_id=None) for e in log]
    at = _at(log, later)
    ledger = Ledger(Engine(model))
    emitted = []
    for event in sorted(log, key=lambda event: event.order_key):
        emitted += ledger.ingest(event).firings
    expected = replay(model, log, at).firings
    assert sorted(f.order_key for f in emitted) == [f.order_key for f in expected]


@SETTINGS
@given(model=models(), log=logs(), later=st.integers(0, 60 * 24 * 30))
def test_explanation_reconciles_with_the_scorecard(
    model: Model, log: list[Event], later: int
) -> None:
    at = _at(log, later)
    engine = Engine(model)
    result = replay(engine, log, at)
    compiled = engine.compiled
    for card in result.scorecards:
        assert card.contact_id is not None
        why = explain(engine, log, card.contact_id, at)
        assert why.scorecard == card
        total = sum(value for _, value in why.awards)
        # The lines are summed in another order than the engine's running sums:
        # equal up to float rounding, which cannot move a 2-decimal figure by 0.01.
        assert abs(compiled.clamp(total) - card.score) <= 0.005 + 1e-9
        for tag, score in card.tag_scores.items():
            tagged = sum(value for award, value in why.awards if tag in award.tags)
            assert abs(compiled.clamp(tagged) - score) <= 0.005 + 1e-9
        if why.entries:
            last = why.entries[-1]
            assert (last.stage, last.timestamp) == (card.stage, card.stage_entered_at)
            in_stage = sum(
                value
                for award, value in why.awards
                if (award.timestamp, award.event_id) > (last.timestamp, last.event_id)
            )
            assert card.stage_score is not None
            assert abs(compiled.clamp(in_stage) - card.stage_score) <= 0.005 + 1e-9
        mine = [f for f in result.firings if f.contact_id == card.contact_id]
        assert sorted(why.firings, key=lambda f: f.order_key) == mine


@SETTINGS
@given(model=models(), log=logs(), picks=st.lists(st.integers(0, 10**6), max_size=8))
def test_resending_a_duplicate_changes_nothing(
    model: Model, log: list[Event], picks: list[int]
) -> None:
    at = _at(log, 0)
    copies = [log[pick % len(log)] for pick in picks]
    plain = replay(model, log, at)
    resent = replay(model, [*log, *copies], at)
    assert resent.scorecards == plain.scorecards
    assert resent.anonymous == plain.anonymous
    assert resent.firings == plain.firings
    assert resent.warnings == plain.warnings
    ledger = Ledger(Engine(model))
    for event in log:
        ledger.ingest(event)
    for copy in copies:
        ingested = ledger.ingest(copy)
        assert ingested.status.value == "duplicate"
        assert not ingested.firings
        assert not ingested.warnings
    assert ledger.result(at).scorecards == plain.scorecards
