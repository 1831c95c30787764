"""What the web app's charts and reports show, computed from scorecards and
the pure engine: no I/O, no clock (every instant is an argument).

- `score_series`: a contact's score over time, from its awards' decayed values.
- `report`: score distribution, conversion by band, grade and stage, the
  funnel by stage, the Pareto curve and score ageing of a set of scorecards.
- `backtest`: how a candidate model would have scored the stored history,
  against the active one. The issue-5 `backtest` (predictive scoring)
  can replace this function; the editor only needs its `Backtest` shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._engine import Award, Engine
from .._events import Event
from .._replay import replay

MICROS_PER_DAY = 86_400_000_000
# Score histogram: bins of this many points from 0; scores past the last bin
# go into it. Ten bins of ten cover the 0-100 range models are written for.
BIN_WIDTH = 10
BINS = 10
# Score ageing: days since the last event, in the buckets a sales team
# thinks in (this week, this month, this quarter, older).
AGE_BUCKETS: tuple[tuple[str, int | None], ...] = (
    ("0-7 days", 7),
    ("8-30 days", 30),
    ("31-90 days", 90),
    ("over 90 days", None),
)
# Points of the score chart between a contact's first event and now, besides
# the event instants themselves: enough for a smooth decay curve.
SERIES_POINTS = 60


def score_series(
    engine: Engine, awards: Sequence[Award], *, start: int, end: int
) -> list[tuple[int, float]]:
    """A contact's score at instants from `start` to `end`: just before and at
    each award, and at evenly spaced instants between, as (instant, score).

    The score at T is the clamped sum of what each award up to T counts at T
    (spec 2.3: the sum of decayed awards, then the floor and cap), which is
    what the engine's scorecard holds at every instant.
    """
    start = min(start, end)
    instants = {start, end}
    step = max((end - start) // SERIES_POINTS, 1)
    instants.update(range(start, end, step))
    for award in awards:
        if start <= award.timestamp <= end:
            instants.add(award.timestamp)
            if award.timestamp > start:
                instants.add(award.timestamp - 1)  # the step up shows as a step
    ordered = list(awards)
    out: list[tuple[int, float]] = []
    compiled = engine.compiled
    for at in sorted(instants):
        total = sum(engine.counted(a, at) for a in ordered if a.timestamp <= at)
        out.append((at, round(compiled.clamp(total), 2) + 0.0))
    return out


# -- reports ------------------------------------------------------------------------


class Card(Protocol):
    """What a report reads of a contact: a Scorecard, or a ranked row of the store."""

    @property
    def contact_id(self) -> str | None: ...
    @property
    def score(self) -> float: ...
    @property
    def grade(self) -> str | None: ...
    @property
    def band(self) -> str | None: ...
    @property
    def stage(self) -> str | None: ...
    @property
    def last_event_at(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Row:
    """A group of contacts and how many of them converted."""

    name: str
    contacts: int
    converted: int

    @property
    def rate(self) -> float:
        return self.converted / self.contacts if self.contacts else 0.0


@dataclass(slots=True)
class Report:
    contacts: int
    converted: int
    histogram: list[Row]  # score bins; `converted` of each bin too
    by_band: list[Row]
    by_grade: list[Row]
    by_stage: list[Row]
    funnel: list[tuple[str, int, float | None]]  # stage, contacts at or past it, from previous
    pareto: list[tuple[float, float]]  # (share of leads from the top, share of conversions)
    ageing: list[tuple[str, int, float]]  # bucket, contacts, mean score
    lift: list[tuple[str, float]] = field(default_factory=list)  # band, rate / overall rate


def _bin(score: float) -> int:
    return min(max(int(score // BIN_WIDTH), 0), BINS - 1)


def _bin_name(index: int) -> str:
    low = index * BIN_WIDTH
    return f"{low}+" if index == BINS - 1 else f"{low}-{low + BIN_WIDTH - 1}"


def _rows(names: Iterable[str], cards: Sequence[Card], of: Any, won: set[str]) -> list[Row]:
    counts: dict[str, list[int]] = {name: [0, 0] for name in names}
    for card in cards:
        name = of(card) or "none"
        tally = counts.setdefault(name, [0, 0])
        tally[0] += 1
        tally[1] += (card.contact_id or "") in won
    return [Row(name, n, k) for name, (n, k) in counts.items()]


def report(engine: Engine, cards: Sequence[Card], converted: set[str], *, at: int) -> Report:
    """The reports of a workspace's scorecards as of `at`; `converted` holds
    the ids of the contacts that did the outcome the marketer picked."""
    compiled = engine.compiled
    won = {card.contact_id for card in cards if card.contact_id in converted}
    histogram = [Row(_bin_name(i), 0, 0) for i in range(BINS)]
    tallies = [[0, 0] for _ in range(BINS)]
    for card in cards:
        tally = tallies[_bin(card.score)]
        tally[0] += 1
        tally[1] += card.contact_id in won
    histogram = [Row(_bin_name(i), n, k) for i, (n, k) in enumerate(tallies)]
    by_band = _rows([name for name, _ in compiled.bands], cards, lambda c: c.band, won)
    by_grade = _rows([name for name, _ in compiled.grades], cards, lambda c: c.grade, won)
    by_stage = _rows(compiled.stage_names, cards, lambda c: c.stage, won)
    # The funnel: contacts at each stage or past it (stages are listed in
    # funnel order), and the share of the previous stage's that got there.
    funnel: list[tuple[str, int, float | None]] = []
    index = compiled.stage_index
    reached = [0] * len(compiled.stage_names)
    for card in cards:
        if card.stage is not None and card.stage in index:
            for i in range(index[card.stage] + 1):
                reached[i] += 1
    for i, name in enumerate(compiled.stage_names):
        previous = reached[i - 1] if i else None
        funnel.append((name, reached[i], reached[i] / previous if previous else None))
    # Pareto: leads by score, highest first; the share of all conversions
    # among the top x% of leads, at every 5%.
    ordered = sorted(cards, key=lambda c: (-c.score, c.contact_id or ""))
    pareto: list[tuple[float, float]] = [(0.0, 0.0)]
    total_won = len(won)
    running = 0
    marks = {max(round(len(ordered) * p / 20), 1): p / 20 for p in range(1, 21)} if ordered else {}
    for i, card in enumerate(ordered, start=1):
        running += card.contact_id in won
        if i in marks:
            pareto.append((marks[i], running / total_won if total_won else 0.0))
    ageing: list[tuple[str, int, float]] = []
    buckets: list[list[float]] = [[] for _ in AGE_BUCKETS]
    for card in cards:
        days = (at - (card.last_event_at or at)) / MICROS_PER_DAY
        for i, (_, limit) in enumerate(AGE_BUCKETS):
            if limit is None or days <= limit:
                buckets[i].append(card.score)
                break
    for (name, _), scores in zip(AGE_BUCKETS, buckets, strict=True):
        ageing.append((name, len(scores), sum(scores) / len(scores) if scores else 0.0))
    overall = total_won / len(cards) if cards else 0.0
    lift = [(row.name, row.rate / overall if overall else 0.0) for row in by_band]
    return Report(
        contacts=len(cards),
        converted=total_won,
        histogram=histogram,
        by_band=by_band,
        by_grade=by_grade,
        by_stage=by_stage,
        funnel=funnel,
        pareto=pareto,
        ageing=ageing,
        lift=lift,
    )


# -- backtest preview ---------------------------------------------------------------


@dataclass(slots=True)
class Backtest:
    """A candidate model against the active one over the same stored history."""

    contacts: int
    band_changes: int
    stage_changes: int
    moves: list[tuple[str, str, int]]  # (band now, band with the candidate, contacts)
    current: Report
    candidate: Report
    # Contacts that would rise or fall most, with both scores.
    risers: list[tuple[str, float, float]]


def converted_in(events: Iterable[Event], outcome: str | None) -> set[str]:
    """The contacts with an event of the outcome type."""
    if not outcome:
        return set()
    return {e.contact_id for e in events if e.type == outcome and e.contact_id is not None}


def backtest(
    current: Engine, candidate: Engine, events: Sequence[Event], *, at: int, outcome: str | None
) -> Backtest:
    """Replay the stored log under both models as of `at` (the pure engine's
    replay, exactly what activation would store) and compare them."""
    before = {c.contact_id: c for c in replay(current, events, at).scorecards}
    after = {c.contact_id: c for c in replay(candidate, events, at).scorecards}
    won = converted_in(events, outcome)
    moves: dict[tuple[str, str], int] = {}
    band_changes = stage_changes = 0
    deltas: list[tuple[float, str, float, float]] = []
    for contact_id, old in before.items():
        new = after.get(contact_id)
        if new is None or contact_id is None:
            continue
        if old.band != new.band:
            band_changes += 1
            pair = (old.band or "none", new.band or "none")
            moves[pair] = moves.get(pair, 0) + 1
        stage_changes += old.stage != new.stage
        deltas.append((new.score - old.score, contact_id, old.score, new.score))
    deltas.sort(key=lambda d: (-abs(d[0]), d[1]))
    return Backtest(
        contacts=len(after),
        band_changes=band_changes,
        stage_changes=stage_changes,
        moves=sorted(((a, b, n) for (a, b), n in moves.items()), key=lambda m: -m[2]),
        current=report(current, list(before.values()), won, at=at),
        candidate=report(candidate, list(after.values()), won, at=at),
        risers=[(cid, old, new) for _, cid, old, new in deltas[:10] if old != new],
    )
