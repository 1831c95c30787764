"""What the web app's charts and reports show, computed from scorecards and
the pure engine: no I/O, no clock (every instant is an argument).

- `score_series`: a contact's score over time, from its awards' decayed values.
- `report`: score distribution, conversion by band, grade and stage, the
  funnel by stage, the Pareto curve and score ageing of a set of scorecards.
- `histogram`: contacts by score bin (the reports' bins), and `band_rows`:
  conversion by band now and with a draft, for the model editor's preview,
  whose comparison of two models is the backtests'
  (`leadscore._predict._backtest.compare`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from .._engine import REBASE_HALF_LIVES, Award, Engine, Scored
from .._store.ranking import Group
from .._time import MICROS_PER_DAY

if TYPE_CHECKING:
    from .._predict._backtest import Comparison

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
    (spec 2.3: the sum of decayed awards, then the floor and cap). As in the
    engine, decaying points are summed scaled to a reference instant (here
    the first award's), so the whole series costs one pass over the awards.
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
    ordered = sorted(awards, key=lambda award: award.timestamp)
    compiled = engine.compiled
    half_life = compiled.half_life_micros
    ref = ordered[0].timestamp if ordered else start
    decaying = flat = 0.0
    index = 0
    out: list[tuple[int, float]] = []
    for at in sorted(instants):
        while index < len(ordered) and ordered[index].timestamp <= at:
            award = ordered[index]
            if award.decays and half_life is not None:
                if award.timestamp - ref > REBASE_HALF_LIVES * half_life:
                    # Keep the scaled sum far from the float limit (as the engine does).
                    decaying *= 2.0 ** (-(award.timestamp - ref) / half_life)
                    ref = award.timestamp
                decaying += award.points * 2.0 ** ((award.timestamp - ref) / half_life)
            else:
                flat += award.points
            index += 1
        factor = 1.0 if half_life is None else 2.0 ** (-(at - ref) / half_life)
        out.append((at, round(compiled.clamp(decaying * factor + flat), 2) + 0.0))
    return out


# -- reports ------------------------------------------------------------------------


class Card(Scored, Protocol):
    """What a report reads of a contact: a Scorecard, or a ranked row of the store."""

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


def age_bucket(days: float) -> int:
    """The ageing bucket of a number of days since the last event."""
    for i, (_, limit) in enumerate(AGE_BUCKETS):
        if limit is None or days <= limit:
            return i
    return len(AGE_BUCKETS) - 1


def _bin_name(index: int) -> str:
    low = index * BIN_WIDTH
    return f"{low}+" if index == BINS - 1 else f"{low}-{low + BIN_WIDTH - 1}"


def _bin_of(point: int) -> int:
    """The histogram bin of a whole point (`score_point`): point p + 1 holds
    the scores in [p, p + 1), so its bin is p's."""
    return min(max((point - 1) // BIN_WIDTH, 0), BINS - 1)


# Scores are tallied by whole point (their floor; below 0 all together, from
# POINTS up all together): fine enough for the Pareto curve, whose points
# are the whole scores, and each histogram bin is a sum of whole points.
POINTS = 1000


def score_point(score: float) -> int:
    """The whole point a (reported) score is tallied at: 0 for scores below
    0, then floor + 1, up to POINTS + 1."""
    return 0 if score < 0 else min(int(score), POINTS) + 1


@dataclass(slots=True)
class Tallies:
    """What every report is computed from: contacts counted by group (band,
    grade, stage, ageing bucket, whole point, converted), with their scores
    summed. The store computes them in SQL for a workspace (ranking.tallies);
    `tally` computes them from scorecards."""

    groups: dict[Group, tuple[int, float]]


def tally(cards: Sequence[Card], converted: set[str], *, at: int) -> Tallies:
    groups: dict[Group, tuple[int, float]] = {}
    for card in cards:
        days = (at - (card.last_event_at or at)) / MICROS_PER_DAY
        key = (
            card.band, card.grade, card.stage, age_bucket(days), score_point(card.score),
            card.contact_id in converted,
        )  # fmt: skip
        count, total = groups.get(key, (0, 0.0))
        groups[key] = (count + 1, total + card.score)
    return Tallies(groups)


def report(engine: Engine, tallies: Tallies) -> Report:
    """The reports of a workspace's contacts, from their tallies."""
    compiled = engine.compiled
    groups = tallies.groups

    def rows(names: Iterable[str], part: int) -> list[Row]:
        counts: dict[str, list[int]] = {name: [0, 0] for name in names}
        for key, (count, _) in groups.items():
            tally = counts.setdefault(str(key[part] or "none"), [0, 0])
            tally[0] += count
            tally[1] += count if key[5] else 0
        return [Row(name, n, k) for name, (n, k) in counts.items()]

    bins = [[0, 0] for _ in range(BINS)]
    ages = [[0, 0.0] for _ in AGE_BUCKETS]
    points: dict[int, list[int]] = {}
    for (_, _, _, age, point, won), (count, total) in groups.items():
        bin_index = _bin_of(point)
        bins[bin_index][0] += count
        bins[bin_index][1] += count if won else 0
        ages[age][0] += count
        ages[age][1] += total
        tally = points.setdefault(point, [0, 0])
        tally[0] += count
        tally[1] += count if won else 0
    histogram = [Row(_bin_name(i), n, k) for i, (n, k) in enumerate(bins)]
    by_band = rows([name for name, _ in compiled.bands], 0)
    by_grade = rows([name for name, _ in compiled.grades], 1)
    by_stage = rows(compiled.stage_names, 2)
    # The funnel: contacts at each stage or past it (stages are listed in
    # funnel order), and the share of the previous stage's that got there.
    at_stage = {row.name: row.contacts for row in by_stage}
    funnel: list[tuple[str, int, float | None]] = []
    names = compiled.stage_names
    for i, name in enumerate(names):
        reached = sum(at_stage.get(later, 0) for later in names[i:])
        previous = funnel[-1][1] if funnel else None
        funnel.append((name, reached, reached / previous if previous else None))
    contacts = sum(count for count, _ in groups.values())
    total_won = sum(count for key, (count, _) in groups.items() if key[5])
    # Pareto: the share of all conversions among the leads scoring at least
    # each whole point, against the share of leads they are, from the top.
    pareto: list[tuple[float, float]] = [(0.0, 0.0)]
    leads = won_so_far = 0
    for _, (count, won_here) in sorted(points.items(), reverse=True):
        leads += count
        won_so_far += won_here
        pareto.append((leads / contacts, won_so_far / total_won if total_won else 0.0))
    ageing = [
        (name, int(count), total / count if count else 0.0)
        for (name, _), (count, total) in zip(AGE_BUCKETS, ages, strict=True)
    ]
    overall = total_won / contacts if contacts else 0.0
    return Report(
        contacts=contacts,
        converted=total_won,
        histogram=histogram,
        by_band=by_band,
        by_grade=by_grade,
        by_stage=by_stage,
        funnel=funnel,
        pareto=pareto,
        ageing=ageing,
        lift=[(row.name, row.rate / overall if overall else 0.0) for row in by_band],
    )


def histogram(scores: Iterable[float]) -> list[tuple[str, int]]:
    """Contacts by score bin, as the reports' histogram counts them: (bin, contacts)."""
    counts = [0] * BINS
    for score in scores:
        counts[_bin_of(score_point(score))] += 1
    return [(_bin_name(i), count) for i, count in enumerate(counts)]


class BandRow(NamedTuple):
    """A band's line of the model editor's preview: its conversion now and
    with the draft."""

    name: str
    now: dict[str, Any] | None  # leads, conversions, rate (rule_report's by_band)
    draft: dict[str, Any] | None
    lift: float | None  # the draft's rate in the band over its overall rate


def band_rows(result: Comparison, draft_bands: Sequence[str]) -> list[BandRow]:
    """The preview's band lines: the draft's bands in its order, then any
    band only the current model has."""
    names = list(draft_bands)
    for report in (result.candidate, result.current):
        names += [name for name in report["by_band"] if name not in names]
    base = result.candidate["base_rate"]
    return [
        BandRow(
            name,
            result.current["by_band"].get(name),
            result.candidate["by_band"].get(name),
            (result.candidate["by_band"][name]["rate"] / base)
            if base and name in result.candidate["by_band"]
            else None,
        )
        for name in names
    ]
