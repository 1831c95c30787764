"""A validated model turned into the flat structures the engine runs on.

Compiling once keeps the per-event path free of interpretation: rules are
indexed by event type, conditions are predicates, and every `event:` test in
stage and trigger conditions (the only parts of those conditions that look at
the event itself) becomes one bit of a mask computed when an event is
prepared. The rest of a stage or trigger condition looks only at values
(score, fit, grade, band, stage score, tag scores).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from operator import attrgetter, methodcaller
from typing import Any
from zoneinfo import ZoneInfo

from ._conditions import Predicate, compile_where
from ._model import Model, StageCondition, TriggerCondition
from ._time import to_datetime

# Spec 2.3: a value *reaches* n when it is >= n - 1e-9, so that every engine
# agrees on thresholds whatever its floating-point summation order (40 points
# exactly one half-life ago reach 20).
TOLERANCE = 1e-9
MICROS_PER_DAY = 86_400 * 1_000_000
_HOUR = 3_600 * 1_000_000
_MICRO = timedelta(microseconds=1)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_LAST_ORDINAL = date.max.toordinal()


def reaches(value: float, threshold: float) -> bool:
    return value >= threshold - TOLERANCE


@dataclass(frozen=True, slots=True)
class CompiledRule:
    index: int
    id: str
    points: int
    decays: bool
    where: Predicate | None
    limit_times: int | None
    limit_per: str | None
    tags: tuple[str, ...]
    tag_from: tuple[str, ...] | None


@dataclass(slots=True)
class Values:
    """What a stage or trigger condition may look at, as of one instant."""

    score: float
    fit: int
    grade: str | None
    band: str | None
    stage: int | None
    stage_score: float
    tags: Mapping[str, float]  # clamped scores of the tags conditions look at
    leaves: int  # bit i set: the event leaf i holds for the event being applied
    empty_tag: float  # the score of a tag no award named: clamp(0)

    def tag_score(self, tag: str) -> float:
        return self.tags.get(tag, self.empty_tag)


ValueTest = Callable[[Values], bool]


@dataclass(frozen=True, slots=True)
class CompiledTrigger:
    index: int
    id: str
    once: bool
    # (before, after) -> fires
    fires: Callable[[Values, Values], bool]


@dataclass(frozen=True, slots=True)
class EventLeaf:
    types: frozenset[str]
    where: Predicate | None


class CompiledModel:
    """Everything the engine needs from a model, ready to run."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.name = model.name
        self.timezone = ZoneInfo(model.timezone) if model.timezone != "UTC" else UTC
        self.half_life_micros: float | None = (
            model.decay.half_life_days * MICROS_PER_DAY if model.decay else None
        )
        self.clamp_min: float | None = model.clamp.min if model.clamp else None
        self.clamp_max: float | None = model.clamp.max if model.clamp else None
        self.rules = [
            CompiledRule(
                index=i,
                id=rule.id,
                points=rule.points,
                decays=rule.decay and self.half_life_micros is not None,
                where=compile_where(rule.where),
                limit_times=rule.limit.times if rule.limit else None,
                limit_per=rule.limit.per if rule.limit else None,
                tags=tuple(dict.fromkeys(rule.tags)),
                tag_from=tuple(rule.tag_from.split(".")) if rule.tag_from else None,
            )
            for i, rule in enumerate(model.rules)
        ]
        self.rules_by_type: dict[str, list[CompiledRule]] = {}
        for rule, source in zip(self.rules, model.rules, strict=True):
            for event_type in source.event_types:
                self.rules_by_type.setdefault(event_type, []).append(rule)
        self.fit_rules: list[tuple[int, Predicate]] = []
        for fit in model.fit:
            predicate = compile_where(fit.where)
            self.fit_rules.append((fit.points, predicate or (lambda traits: True)))
        # (name, minimum less the tolerance, or None for a catch-all)
        self.grades = [(g.grade, _floor(g.min_fit)) for g in model.grades]
        self.bands = [(b.band, _floor(b.min_score)) for b in model.bands]
        self.stage_names = [stage.name for stage in model.stages]
        self.stage_index = {name: i for i, name in enumerate(self.stage_names)}
        self.leaves: list[EventLeaf] = []
        self.stage_enter: list[ValueTest | None] = [
            self._stage_condition(stage.enter) if stage.enter else None for stage in model.stages
        ]
        self.triggers = [
            CompiledTrigger(i, trigger.id, trigger.once, self._trigger_condition(trigger.when))
            for i, trigger in enumerate(model.triggers)
        ]
        self.has_stages = bool(self.stage_names)
        self.reads_stage_score = any(_reads_stage_score(stage.enter) for stage in model.stages)
        # Each event type's leaves (bit, where), so that preparing an event
        # visits only the leaves that name its type.
        self.leaves_by_type: dict[str, list[tuple[int, Predicate | None]]] = {}
        for bit, leaf in enumerate(self.leaves):
            for event_type in sorted(leaf.types):
                self.leaves_by_type.setdefault(event_type, []).append((1 << bit, leaf.where))
        self.empty = self.clamp(0.0)  # the score of an empty sum
        self._offsets: dict[int, int] = {}
        self._months: dict[int, int] = {}
        self._grades: dict[int, str | None] = {}
        # Tags whose scores some condition reads: only these are computed per event.
        self.watched_tags = tuple(
            sorted(
                {tag for trigger in model.triggers for tag in trigger.when.tag_score_crosses or {}}
                | {tag for stage in model.stages for tag in _stage_tags(stage.enter)}
            )
        )
        # Conditions and triggers look at values before and after each event;
        # a model without them needs none of that work per event.
        self.needs_values = self.has_stages or bool(self.triggers)

    # -- limits ------------------------------------------------------------

    def period_of(self, per: str, micros: int) -> int:
        """The calendar period (spec 2.1 `limit.per`) holding an instant, as a number.

        Days and months are those of the model's timezone; weeks are ISO weeks,
        Monday first, keyed by their Monday. Periods only grow with time, which
        lets the engine keep one counter per rule instead of one per period.
        """
        if per == "ever":
            return 0
        day = self._local_day(micros)
        if per == "day":
            return day
        if per == "week":
            return day - (day + 6) % 7  # the ordinal of that week's Monday (ordinal 1 is one)
        month = self._months.get(day)
        if month is None:
            if day < 1:  # 0000-12-31: an instant of 0001-01-01 UTC in a zone behind UTC
                month = 12
            elif day > _LAST_ORDINAL:  # 10000-01-01, in a zone ahead of UTC
                month = 10_000 * 12 + 1
            else:
                local = date.fromordinal(day)
                month = local.year * 12 + local.month
            self._months[day] = month
        return month

    def _local_day(self, micros: int) -> int:
        """The proleptic ordinal of the local calendar day holding an instant.

        A zone's offset is looked up once per UTC hour and cached, but only
        for hours in which it does not change (checked at both ends), so the
        cache is exact even for zones whose transitions fall mid-hour.
        """
        hour = micros // _HOUR
        offset = self._offsets.get(hour)
        if offset is None:
            start = self._offset_at(hour * _HOUR)
            end = self._offset_at((hour + 1) * _HOUR - 1)
            if start != end:
                return (micros + self._offset_at(micros)) // MICROS_PER_DAY + _EPOCH_ORDINAL
            offset = self._offsets[hour] = start
        return (micros + offset) // MICROS_PER_DAY + _EPOCH_ORDINAL

    def _offset_at(self, micros: int) -> int:
        try:
            delta = to_datetime(micros).astimezone(self.timezone).utcoffset()
        except OverflowError:
            # The local time is before year 1 or after 9999 (an instant of
            # the first or last UTC day, in a zone behind or ahead of UTC),
            # which datetime cannot hold: the offset a day inward, where no
            # zone changes it.
            inward = micros + MICROS_PER_DAY if micros < 0 else micros - MICROS_PER_DAY
            delta = to_datetime(inward).astimezone(self.timezone).utcoffset()
        return (delta or timedelta(0)) // _MICRO

    # -- bands and grades ------------------------------------------------

    def grade_of(self, fit: int) -> str | None:
        # Fit is a whole number with few distinct values: remember each answer.
        if fit not in self._grades:
            self._grades[fit] = _first_reached(self.grades, fit)
        return self._grades[fit]

    def band_of(self, score: float) -> str | None:
        return _first_reached(self.bands, score)

    def clamp(self, value: float) -> float:
        if self.clamp_min is not None and value < self.clamp_min:
            return float(self.clamp_min)
        if self.clamp_max is not None and value > self.clamp_max:
            return float(self.clamp_max)
        return value

    def fit_of(self, traits: Mapping[str, Any]) -> int:
        return sum(points for points, holds in self.fit_rules if holds(traits))

    # -- compiling conditions --------------------------------------------

    def _leaf(self, types: str | list[str], where: Mapping[str, Any] | None) -> int:
        names = frozenset([types] if isinstance(types, str) else types)
        self.leaves.append(EventLeaf(names, compile_where(where)))
        return 1 << (len(self.leaves) - 1)

    def _stage_condition(self, cond: StageCondition) -> ValueTest:
        tests: list[ValueTest] = []
        for name, threshold in (
            ("score", cond.score_gte),
            ("fit", cond.fit_gte),
            ("stage_score", cond.stage_score_gte),
        ):
            if threshold is not None:
                tests.append(_reaching(attrgetter(name), threshold))
        if cond.score_lt is not None:
            tests.append(_negated(_reaching(attrgetter("score"), cond.score_lt)))
        if cond.grade_in is not None:
            tests.append(_member(attrgetter("grade"), cond.grade_in))
        if cond.band_in is not None:
            tests.append(_member(attrgetter("band"), cond.band_in))
        for tag, threshold in (cond.tag_score_gte or {}).items():
            tests.append(_reaching(methodcaller("tag_score", tag), threshold))
        if cond.event is not None:
            tests.append(_leaf_holds(self._leaf(cond.event, cond.where)))
        tests.extend(self._stage_condition(part) for part in cond.all or ())
        if cond.any:
            tests.append(_any([self._stage_condition(part) for part in cond.any]))
        if cond.not_ is not None:
            tests.append(_negated(self._stage_condition(cond.not_)))
        return tests[0] if len(tests) == 1 else _all(tests)

    def _trigger_condition(self, when: TriggerCondition) -> Callable[[Values, Values], bool]:
        if when.score_crosses is not None:
            floor = when.score_crosses - TOLERANCE
            return lambda b, a: b.score < floor <= a.score
        if when.tag_score_crosses is not None:
            ((tag, n),) = when.tag_score_crosses.items()
            return lambda b, a: not reaches(b.tag_score(tag), n) and reaches(a.tag_score(tag), n)
        if when.stage_entered is not None:
            index = self.stage_index[when.stage_entered]
            return lambda b, a: b.stage != index and a.stage == index
        if when.band_entered is not None:
            band = when.band_entered
            return lambda b, a: b.band != band and a.band == band
        if when.grade_entered is not None:
            grade = when.grade_entered
            return lambda b, a: b.grade != grade and a.grade == grade
        assert when.event is not None  # validation guarantees exactly one key
        holds = _leaf_holds(self._leaf(when.event, when.where))
        return lambda b, a: holds(a)


def _reaching(value: Callable[[Values], float], threshold: float) -> ValueTest:
    floor = threshold - TOLERANCE  # `reaches`, with the subtraction done once
    return lambda values: value(values) >= floor


def _member(value: Callable[[Values], str | None], names: list[str]) -> ValueTest:
    allowed = frozenset(names)
    return lambda values: value(values) in allowed


def _leaf_holds(bit: int) -> ValueTest:
    return lambda values: bool(values.leaves & bit)


def _negated(test: ValueTest) -> ValueTest:
    return lambda values: not test(values)


def _any(tests: list[ValueTest]) -> ValueTest:
    return lambda values: any(test(values) for test in tests)


def _all(tests: list[ValueTest]) -> ValueTest:
    return lambda values: all(test(values) for test in tests)


def _reads_stage_score(cond: StageCondition | None) -> bool:
    if cond is None:
        return False
    parts = [*(cond.all or ()), *(cond.any or ()), cond.not_]
    return cond.stage_score_gte is not None or any(_reads_stage_score(part) for part in parts)


def _stage_tags(cond: StageCondition | None) -> set[str]:
    if cond is None:
        return set()
    tags = set(cond.tag_score_gte or {})
    for part in [*(cond.all or ()), *(cond.any or ()), cond.not_]:
        tags |= _stage_tags(part)
    return tags


def _floor(minimum: float | None) -> float | None:
    return None if minimum is None else minimum - TOLERANCE


def _first_reached(entries: list[tuple[str, float | None]], value: float) -> str | None:
    """The first entry whose minimum `value` reaches; entries hold minimum - TOLERANCE."""
    for name, floor in entries:
        if floor is None or value >= floor:
            return name
    return None
