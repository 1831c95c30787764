"""The batch engine: a model compiled into set-based SQL over a whole event log.

It computes exactly what :func:`leadscore._replay.replay` computes, but a set
at a time on DuckDB rather than an event at a time in Python:

1. Duplicates: the first copy of each id (in arrival order, `seq`) is kept;
   later copies that differ are reported, as the replay reports them.
2. Events after the as-of time are dropped; identity links (the first link
   of an anonymous id in (timestamp, id) order wins) give each event its
   owner: a contact, or an anonymous profile.
3. Rule matching: every `where` test of spec 2.2 is a SQL expression over
   *probes* of the property paths the model uses (:mod:`leadscore._batch.sql`),
   evaluated once per event, giving each event's matched rules as a bit
   mask, and then one row per (event, matched rule).
4. Limits: per owner, rule and calendar period (the model's time zone, from a
   table of UTC offsets that zoneinfo gives, so periods are those of the pure
   engine to the microsecond), the first `times` matches award: the earliest
   (an aggregate) for `times: 1`, a window's numbering for more.
5. Decay and sums: each award counts p·2^((t-T)/H); the engagement score and
   each tag score are sums, clamped, rounded, banded and graded in SQL as the
   pure engine does it (BatchPlan._finish, cards.reported), into Arrow columns.
6. Fit: the traits after each identify event are, per top-level key a fit
   rule reads, the last value over the identify events up to it; fit rules
   are SQL over those values, and the owner's fit is its last one.
7. Stages and triggers are sequential by nature. Only when the model has
   them, each owner's *active* events — those with awards, traits, a
   `stage_set`, an `event:` condition that holds, and its first event — are
   walked with window functions (:mod:`leadscore._batch.walk`; an owner with
   a `stage_set` in segments between its stage_sets), or, for the owners the
   walk cannot take, pulled from DuckDB and run through the pure engine's own
   `Engine.run`, which gives the stage fields and the firings.
   Events with none of these cannot change a stage or fire a trigger when
   every stage condition only grows true with higher values and the owner's
   values can only fall between events (no negative award): see
   :func:`passive_events_matter`. Otherwise all of that owner's events from
   its first negative award or `stage_set` on take part. An owner whose
   positive points stay below every score test's threshold
   (:func:`leadscore._batch.walk.score_floor`) leaves out its events that
   only award points, and those after a negative award (BatchPlan._reach).

Numbers agree with the replay within floating-point rounding of the sums
(the spec's 1e-9 "reaches" tolerance absorbs it).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

from .._compiled import MICROS_PER_DAY, CompiledModel, CompiledRule
from .._engine import (
    NOT_STAGE_SET,
    UNKNOWN_STAGE,
    Engine,
    Firing,
    Prepared,
    RunWarning,
    Scorecard,
    report,
    unknown_stage,
)
from .._events import Event
from .._jsonexact import dumps_sorted
from .._jsonexact import loads as exact_loads
from .._model import Model, StageCondition
from .._replay import Result
from .cards import (
    REPORT_LIMIT,
    Cards,
    cards_table,
    reported,
    rules_only_table,
    tag_columns,
    tag_lists,
)
from .sql import (
    ConditionCompiler,
    Probe,
    Shape,
    json_path,
    literal,
    number,
    probe_derived,
    tag_text,
)
from .walk import SPAN_HALF_LIVES, Walk, clamp_sql, scale_sql, score_floor, walkable

if TYPE_CHECKING:
    import duckdb

_HOUR = 3_600 * 1_000_000
# Rows fetched from DuckDB per Arrow batch when streaming owners into Python.
_FETCH = 65_536


# A scorecard's stage, stage_entered_at and stage_score.
_StageFields = tuple[str | None, int | None, float | None]


class Passive(IntEnum):
    """Whether events with no awards, traits or event conditions can move a stage."""

    NEVER = 0  # whatever the owner's history
    IF_NEGATIVE = 1  # only for owners with a negative award
    ALWAYS = 2


def passive_events_matter(model: Model) -> Passive:
    """Can an event that awards nothing, sets no trait and holds no `event:` condition
    move a contact to another stage?

    Such an event changes nothing itself; only time has passed since the last
    event (decay) and, after a move, the stage score restarted. If every value
    a stage condition reads can only fall in that time, a condition that only
    grows true with higher values (`score_gte`, `tag_score_gte`,
    `stage_score_gte`, `band_in` of the first bands, not negated) cannot
    become true then: it was false at the owner's last event, or the move
    would have happened there. Values only fall when every award so far is
    positive (decay shrinks positive sums; a restarted stage score is an empty
    sum). Without decay the engagement and tag scores do not change at all.
    Triggers compare values just before and after one event, which are equal
    for such an event, so they never fire on one.
    """
    decays = model.decay is not None
    bands = [band.band for band in model.bands]
    worst = Passive.NEVER
    for stage in model.stages:
        if stage.enter is not None:
            worst = max(worst, _passive(stage.enter, positive=True, decays=decays, bands=bands))
    return worst


def _passive(cond: StageCondition, *, positive: bool, decays: bool, bands: list[str]) -> Passive:
    # The level a value test on a falling value needs: fine positively (if
    # values do fall), never negated.
    falling = Passive.IF_NEGATIVE if positive else Passive.ALWAYS
    score = falling if decays else Passive.NEVER
    levels = [Passive.NEVER]
    if cond.score_gte is not None or cond.tag_score_gte:
        levels.append(score)
    if cond.score_lt is not None:
        lt = Passive.ALWAYS if positive else Passive.IF_NEGATIVE
        levels.append(lt if decays else Passive.NEVER)
    if cond.band_in is not None and decays:
        prefix = set(cond.band_in) == set(bands[: len(cond.band_in)])
        levels.append(falling if prefix else Passive.ALWAYS)
    if cond.stage_score_gte is not None:
        levels.append(falling)
    if cond.event is not None and not positive:
        levels.append(Passive.ALWAYS)  # `not: {event: x}` holds on every such event
    for part in cond.all or ():
        levels.append(_passive(part, positive=positive, decays=decays, bands=bands))
    for part in cond.any or ():
        levels.append(_passive(part, positive=positive, decays=decays, bands=bands))
    if cond.not_ is not None:
        levels.append(_passive(cond.not_, positive=not positive, decays=decays, bands=bands))
    return Passive(max(levels))


@dataclass(frozen=True, slots=True)
class _Leaf:
    types: frozenset[str]
    where: Any


def _leaves(model: Model) -> list[_Leaf]:
    """The `event:` conditions of stages and triggers, in the order CompiledModel numbers them."""
    found: list[_Leaf] = []

    def walk(cond: StageCondition) -> None:
        if cond.event is not None:
            found.append(_Leaf(_types(cond.event), cond.where))
        for part in cond.all or ():
            walk(part)
        for part in cond.any or ():
            walk(part)
        if cond.not_ is not None:
            walk(cond.not_)

    for stage in model.stages:
        if stage.enter is not None:
            walk(stage.enter)
    for trigger in model.triggers:
        if trigger.when.event is not None:
            found.append(_Leaf(_types(trigger.when.event), trigger.when.where))
    return found


def _types(types: str | list[str]) -> frozenset[str]:
    return frozenset([types] if isinstance(types, str) else types)


def _in(types: Iterable[str]) -> str:
    return f"type IN ({', '.join(map(literal, sorted(types)))})"


def offsets(compiled: CompiledModel, start: int, end: int) -> list[tuple[int, int]]:
    """The model zone's UTC offsets over [start, end]: (from instant, offset), both in µs.

    Found hour by hour and, where an hour's two ends differ, to the
    microsecond by bisection, with the same zoneinfo lookups as the pure
    engine's calendar (CompiledModel._offset_at).
    """
    offset_at = compiled._offset_at
    first = offset_at(start)
    found = [(start, first)]
    current = first
    hour = start - start % _HOUR
    while hour <= end:
        following = hour + _HOUR
        later = offset_at(min(following, end))
        if later != current:
            low, high = hour, min(following, end)  # offset_at(low) == current != offset_at(high)
            while high - low > 1:
                middle = (low + high) // 2
                if offset_at(middle) == current:
                    low = middle
                else:
                    high = middle
            current = offset_at(high)
            found.append((high, current))
            continue  # the rest of the hour may hold another change
        hour = following
    return found


def _offset_sql(table: list[tuple[int, int]]) -> str:
    if len(table) == 1:
        return str(table[0][1])
    branches = " ".join(
        f"WHEN ts >= {start} THEN {offset}" for start, offset in reversed(table[1:])
    )
    return f"(CASE {branches} ELSE {table[0][1]} END)"


def _period_sql(per: str, offset: str) -> str:
    """The calendar period holding `ts` (spec 2.1), as a number that only grows with time."""
    if per == "ever":
        return "0"
    return _period_of_day(per, _day_sql(offset))


# Days and weeks are integer floor divisions, written as DuckDB's truncating
# `//` on a numerator shifted to be positive: every instant of the spec, from
# year 1, is less than _SHIFT_DAYS days (and _SHIFT_WEEKS weeks) before 1970.
# Exact for every instant, where floor() of a double quotient is not past
# 2^53 µs (the year 2255); and periods are keys of the limits' aggregates and
# windows, where BIGINTs hash faster than doubles: the rules-only statement
# took 12.3 CPU s instead of 13.3 at 10M events (the best of four runs each).
_SHIFT_DAYS = 800_000  # 0001-01-01 is 719,162 days before 1970-01-01
_SHIFT_WEEKS = 120_000


def _day_sql(offset: str) -> str:
    """The local calendar day of `ts` (days since 1970-01-01 in the model's zone)."""
    shift = _SHIFT_DAYS * MICROS_PER_DAY
    return f"((ts + {offset} + {shift}) // {MICROS_PER_DAY} - {_SHIFT_DAYS})"


def _period_of_day(per: str, day: str) -> str:
    """The period (day, week or month) holding the local day `day`, a BIGINT."""
    if per == "day":
        return day
    if per == "week":
        # 1970-01-01 was a Thursday: weeks from Mondays.
        return f"(({day} + {3 + 7 * _SHIFT_WEEKS}) // 7 - {_SHIFT_WEEKS})"
    local = f"(DATE '1970-01-01' + CAST({day} AS INTEGER))"
    return f"(year({local}) * 12 + month({local}))"


def _zone_offset(con: duckdb.DuckDBPyConnection, compiled: CompiledModel, span: str) -> str:
    """SQL of the model zone's UTC offset at `ts` (µs), over the instants of `span`
    (a query of min(ts), max(ts)); "0" when no limit needs the calendar."""
    if not any(rule.limit_per in ("day", "week", "month") for rule in compiled.rules):
        return "0"
    low, high = _one(con, span)
    if low is None:
        return "0"
    return _offset_sql(offsets(compiled, low, high))


def period_case(con: duckdb.DuckDBPyConnection, compiled: CompiledModel) -> str:
    """SQL of the calendar period of `ts` for a row of a limited rule (column `rule`),
    over the span of ls_owned; NULL for other rules."""
    limited = [rule for rule in compiled.rules if rule.limit_per is not None]
    offset = _zone_offset(con, compiled, "SELECT min(ts), max(ts) FROM ls_owned")
    return (
        "CASE rule "
        + " ".join(
            f"WHEN {rule.index} THEN {_period_sql(rule.limit_per or 'ever', offset)}"
            for rule in limited
        )
        + " END"
    )


@dataclass(frozen=True, slots=True)
class Input:
    """Events as a DuckDB relation with the canonical columns: seq, id, type,
    contact_id, anonymous_id, ts (µs), properties and traits (JSON).

    `traits_nulls_absent`: a null trait is an absent key, not a removal (how
    struct-typed traits columns read, as in the pure engine's Parquet reader).
    `properties_shape`: properties are a typed struct of this shape rather
    than JSON; conditions read its fields directly.
    """

    relation: str
    traits_nulls_absent: bool = False
    properties_shape: Shape | None = None


class BatchPlan:
    """A model compiled once into the SQL of the batch engine."""

    def __init__(self, model: Model | Engine, *, report_limit: float = REPORT_LIMIT) -> None:
        """`report_limit`: the magnitude of a score from which the scorecards are built
        in Python rather than finished in SQL (default REPORT_LIMIT, where the SQL
        rounding stops being exact; 0 builds them all in Python, to compare the two)."""
        self.report_limit = report_limit
        self.engine = model if isinstance(model, Engine) else Engine(model)
        self.compiled = c = self.engine.compiled
        self.model = m = c.model
        # Rule matching, with the tag_from text of each rule that has one.
        self.rules = ConditionCompiler("properties", "p")
        self.matches: list[str] = []
        self.holds: list[str] = []
        self.tag_texts: dict[int, str] = {}
        for index, rule in enumerate(m.rules):
            types = frozenset(rule.event_types)
            holds = self.rules.where(rule.where, types)
            self.holds.append(holds)
            self.matches.append(f"CASE WHEN {_in(types)} AND {holds} THEN {index} END")
            if rule.tag_from:
                keys = tuple(rule.tag_from.split("."))
                self.tag_texts[index] = self.rules.probe(keys, types).name
        self.rule_types = {t for rule in m.rules for t in rule.event_types}
        # Event conditions of stages and triggers: one bit each, as the pure engine's.
        self.leaves = _leaves(m)
        assert [leaf.types for leaf in self.leaves] == [leaf.types for leaf in c.leaves]
        self.leaf_conditions = ConditionCompiler("properties", "q")
        self.leaf_sql = [
            f"CASE WHEN {_in(leaf.types)} AND {self.leaf_conditions.where(leaf.where, leaf.types)} "
            f"THEN {1 << bit} ELSE 0 END"
            for bit, leaf in enumerate(self.leaves)
        ]
        # Fit over the merged traits.
        self.fit = ConditionCompiler("traits", "f")
        self.fit_sql = [
            f"CASE WHEN {self.fit.where(rule.where, None)} THEN {rule.points} ELSE 0 END"
            for rule in m.fit
        ]
        self.passive = passive_events_matter(m) if c.has_stages else Passive.NEVER
        # The masks of matched rules an event can have (see _rule_masks): ls_owned
        # stores each event's as one integer when they fit, and the rules-only
        # path (_sums) needs them.
        self.event_masks = _rule_masks(m, self.holds)
        self.masks = self.event_masks if _rules_only(m) else None
        self._shape: Shape | None = None

    # -- running -------------------------------------------------------------

    def run(
        self,
        con: duckdb.DuckDBPyConnection,
        source: Input,
        at: int,
        *,
        progress: Callable[[str], None] | None = None,
        tables: bool = True,
    ) -> Result:
        """Score the events of `source` as of `at` (µs) on `con`; the replay's result.

        `tables`: leave ls_owned, ls_awards and ls_links on `con` for the caller
        (model activation reads them). Without them, a model of rules, limits,
        decay and tags only (no fit, stages, triggers or `tag_from`) is scored
        in one aggregation over the events (:meth:`_sums`), without storing
        each event or each award.
        """
        step = progress or (lambda _: None)
        self._shape = source.properties_shape
        sql = con.execute
        step("duplicates")
        # The first copy of each id, in arrival order (spec 1). The repeated
        # ids are looked for only when some may exist (_repeated_ids).
        warnings: list[RunWarning] = []
        unique = source.relation
        if _repeated_ids(con, source.relation):
            sql(
                "CREATE OR REPLACE TEMP TABLE ls_copies AS "
                f"SELECT s.* FROM {source.relation} s SEMI JOIN ls_dups USING (id)"
            )
            sql(
                "CREATE OR REPLACE TEMP TABLE ls_later AS SELECT * FROM ls_copies "
                "QUALIFY row_number() OVER (PARTITION BY id ORDER BY seq) > 1"
            )
            differ = con.execute(
                "SELECT l.id FROM ls_later l JOIN (SELECT * FROM ls_copies "
                "QUALIFY row_number() OVER (PARTITION BY id ORDER BY seq) = 1) f USING (id) "
                "WHERE l.type IS DISTINCT FROM f.type OR l.ts IS DISTINCT FROM f.ts "
                "OR l.contact_id IS DISTINCT FROM f.contact_id "
                "OR l.anonymous_id IS DISTINCT FROM f.anonymous_id "
                "OR CAST(l.properties AS VARCHAR) IS DISTINCT FROM CAST(f.properties AS VARCHAR) "
                "OR CAST(l.traits AS VARCHAR) IS DISTINCT FROM CAST(f.traits AS VARCHAR) "
                "ORDER BY l.seq"
            ).fetchall()
            warnings = [
                RunWarning(event_id, "a later copy of this event differs; the first copy is kept")
                for (event_id,) in differ
            ]
            unique = f"(SELECT * FROM {source.relation} ANTI JOIN ls_later USING (seq))"

        step("identities")
        sql(
            "CREATE OR REPLACE TEMP TABLE ls_links AS SELECT anonymous_id, "
            "arg_min(contact_id, {'ts': ts, 'id': id}) AS linked "
            f"FROM {unique} WHERE ts <= {at} AND anonymous_id IS NOT NULL "
            "AND contact_id IS NOT NULL GROUP BY anonymous_id"
        )
        if not tables and self.masks is not None:
            step("rules")
            identified, anonymous = self._cards(con, unique, at)
            return Result(scorecards=identified, anonymous=anonymous, firings=[], warnings=warnings)
        # One narrow table that every later step reads: each event's owner,
        # the rules it matches and the values that later steps still read
        # (tag_from texts, the probes of stage and trigger conditions), so the
        # events are read and joined with the links once. The rule probes
        # themselves (a page's url, ...) are not kept: stored for every event
        # they made the table outgrow DuckDB's memory limit at 10M events, and
        # it spilled to disk. The rules matched are a bit mask (`mask`, bit i:
        # rule i), as on the rules-only path (_sums): one integer per event
        # rather than a list built of a CASE per rule and filtered; a model
        # whose masks do not fit keeps the list (`matched`, the rules' indices).
        # Both are found before the links join, so that only they, and not the
        # probes, go through it.
        masked = self.event_masks is not None
        # Unguarded typed probes when every test of them is under a test of the
        # event type (the mask's CASE on the type): see select_items.
        rule_first, rule_second = self.rules.select_items(self._shape, guarded=not masked)
        kept: list[str] = []
        kept_names: list[str] = []
        if self.leaf_sql:
            leaf_first = self.leaf_conditions.select_items(self._shape)[0]
            rule_first += leaf_first
            kept_names += _names(leaf_first)
            kept += kept_names
        if self.compiled.has_stages:
            rule_first.append(f"{self._stage_name_sql()} AS stage_name")
            kept.append("stage_name")
            kept_names.append("stage_name")
        for name in sorted(set(self.tag_texts.values())):
            kept.append(f"{_tag_text_of(name)} AS {name}_tag")
            kept_names.append(f"{name}_tag")
        if masked:
            matched = f"{self._mask_sql()} AS mask"
            kept_names.append("mask")
        else:
            matched = (
                f"CASE WHEN {_in(self.rule_types)} THEN "
                f"list_filter([{', '.join(self.matches)}], lambda x: x IS NOT NULL) END "
                "AS matched"
                if self.matches
                else "NULL::INTEGER[] AS matched"
            )
            kept_names.append("matched")
        sql(
            "CREATE OR REPLACE TEMP TABLE ls_owned AS WITH e0 AS (SELECT "
            f"e.contact_id, e.anonymous_id, e.ts, e.id, e.type, e.traits{_items(rule_first)} "
            f"FROM {unique} e WHERE e.ts <= {at}), "
            f"e1 AS (SELECT *{_items(rule_second)} FROM e0), "
            "e2 AS (SELECT contact_id, anonymous_id, ts, id, type, traits"
            f"{_items(kept)}, {matched} FROM e1) "
            "SELECT coalesce(e.contact_id, l.linked, e.anonymous_id) AS owner, "
            "(e.contact_id IS NOT NULL OR l.linked IS NOT NULL) AS ident, "
            f"e.ts, e.id, e.type, e.traits{_items(['e.' + name for name in kept_names])} "
            "FROM e2 e LEFT JOIN ls_links l "
            "ON e.contact_id IS NULL AND e.anonymous_id = l.anonymous_id"
        )
        step("rules")
        self._awards(con, at)
        step("scores")
        self._owners(con, at, source)
        firings: list[Firing] = []
        stages: dict[tuple[bool, str], _StageFields] = {}
        if self.compiled.needs_values:
            step("stages and triggers")
            firings, seq_warnings = self._sequential(con, stages, at)
            warnings += seq_warnings
        identified, anonymous = self._finish(con, stages)
        firings.sort(key=lambda firing: firing.order_key)
        return Result(
            scorecards=identified, anonymous=anonymous, firings=firings, warnings=warnings
        )

    def _stage_name_sql(self) -> str:
        """SQL of the stage a stage_set event `e` names (its `stage` property when text)."""
        shape = self._shape
        if (
            shape is not None
            and shape.get("stage") == "varchar"
            and [key for key in shape if key.lower() == "stage"] == ["stage"]
        ):
            # A typed text field is read alone: as JSON, the whole properties struct
            # was converted for the test (some 0.9 CPU s of ls_owned's 5.5 at 10M
            # events). A row without it has NULL there, which is not text either.
            # Only when no other field's name differs from it by case alone: DuckDB
            # finds a struct's fields whatever their case.
            return "CASE WHEN e.type = 'stage_set' THEN struct_extract(e.properties, 'stage') END"
        props = "e.properties" if self._shape is None else "to_json(e.properties)"
        return (
            f"CASE WHEN e.type = 'stage_set' AND json_type({props}, '$.stage') = 'VARCHAR' "
            f"THEN {props} ->> '$.stage' END"
        )

    def _awards(self, con: duckdb.DuckDBPyConnection, at: int) -> None:
        """ls_awards: one row per award (owner, ident, ts, id, rule, tagf), limits applied.

        A limited rule awards the first `times` of its matches in each of the
        owner's calendar periods, in (timestamp, id) order. How each kind of
        rule finds them, cheapest first (a window numbering every match, as
        before, sorted them all):

        - an unlimited rule awards every match: no grouping at all;
        - a `times: 1` rule awards the earliest match of each (owner, rule,
          period): a hash aggregate, the minimum of (ts, id, tagf) as a struct,
          which compares field by field, so (ts, id) decide (an event's id is
          unique, so no two matches of a group tie on both);
        - a rule of `times` > 1 numbers its matches per group with a window,
          only over its own matches.
        """
        c = self.compiled
        if not self.matches:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE ls_awards AS SELECT owner, ident, ts, id, "
                "0 AS rule, CAST(NULL AS VARCHAR) AS tagf FROM ls_owned WHERE FALSE"
            )
            return
        tag_case = (
            "CASE rule "
            + " ".join(f"WHEN {i} THEN {name}_tag" for i, name in self.tag_texts.items())
            + " END"
            if self.tag_texts
            else "CAST(NULL AS VARCHAR)"
        )

        def hits(rules: list[CompiledRule]) -> str:
            """The matches of `rules`: (owner, ident, ts, id, rule, tagf)."""
            chosen = {rule.index for rule in rules}
            if self.event_masks is None:
                return (
                    f"SELECT owner, ident, ts, id, rule, {tag_case} AS tagf "
                    "FROM ls_owned, unnest(matched) AS u(rule) "
                    f"WHERE rule IN ({', '.join(map(str, sorted(chosen)))})"
                )
            # A join on the small table of (mask, rule) of these rules: one row per
            # matched rule, none for an event that matches none of them.
            pairs = [
                f"({mask}, {index})"
                for mask, indices in self.event_masks
                for index in indices
                if index in chosen
            ]
            if not pairs:
                return (
                    f"SELECT owner, ident, ts, id, 0 AS rule, {tag_case} AS tagf "
                    "FROM ls_owned WHERE FALSE"
                )
            return (
                f"SELECT owner, ident, ts, id, rule, {tag_case} AS tagf FROM ls_owned "
                f"JOIN (VALUES {', '.join(pairs)}) r(mask, rule) USING (mask)"
            )

        unlimited = [rule for rule in c.rules if rule.limit_per is None]
        once = [rule for rule in c.rules if rule.limit_times == 1]
        several = [rule for rule in c.rules if (rule.limit_times or 1) > 1]
        parts = []
        if unlimited:
            parts.append(hits(unlimited))
        if once or several:
            period = period_case(con, c)
            if once:
                key = "{'ts': ts, 'id': id, 'tagf': tagf}"
                parts.append(
                    "SELECT owner, ident, earliest.ts, earliest.id, rule, earliest.tagf FROM ("
                    f"SELECT owner, ident, rule, min({key}) AS earliest FROM ({hits(once)}) "
                    f"GROUP BY owner, ident, rule, {period})"
                )
            if several:
                times = (
                    "CASE rule "
                    + " ".join(f"WHEN {rule.index} THEN {rule.limit_times}" for rule in several)
                    + " END"
                )
                parts.append(
                    f"SELECT * FROM ({hits(several)}) QUALIFY row_number() OVER "
                    f"(PARTITION BY owner, ident, rule, {period} ORDER BY ts, id) <= {times}"
                )
        con.execute(f"CREATE OR REPLACE TEMP TABLE ls_awards AS {' UNION ALL '.join(parts)}")

    def _cards(
        self, con: duckdb.DuckDBPyConnection, unique: str, at: int
    ) -> tuple[Sequence[Scorecard], Sequence[Scorecard]]:
        """The scorecards of the rules-only path (identified, anonymous), finished in SQL.

        Over the sums of :meth:`_sums`, DuckDB computes every field as the pure
        engine's Engine.scorecard does: the clamp; score and tag scores reported
        (report_sql: Python's round to the bit); the band from the clamped,
        unrounded score (the first band reached, thresholds less TOLERANCE as
        CompiledModel holds them); fit 0 and its grade; tag scores of the tags
        with an award, by name. They come back as one Arrow table, held by
        :class:`Cards`: no Python object per owner. Should a score reach
        REPORT_LIMIT, where report_sql stops being exact, the owners' scorecards
        are built in Python instead (:meth:`_scorecards_of_sums`).
        """
        c = self.compiled
        sums = self._sums(con, unique, at)

        tags = list(self._tag_rules())
        values = ["x", *(f"x{k}" for k in range(len(tags)))]
        clamps = _clamped(c, "", len(tags))
        query = (
            f"WITH s AS ({sums}), c AS (SELECT owner, ident, last, {', '.join(clamps)} FROM s) "
            f"SELECT {_OWNER_COLUMNS}, x_r AS score, "
            f"{_band_sql(c, 'x')} AS band, "
            f"last AS last_event_at{_items([f'x{k}_r' for k in range(len(tags))])}, "
            f"{self._huge_sql(values)} AS huge FROM ({reported('c', values)}) "
            "ORDER BY ident DESC, owner"
        )
        import pyarrow.compute as pc

        table = con.sql(query).to_arrow_table()
        assert table is not None  # a SELECT always has a result
        if pc.any(table.column("huge")).as_py():
            rows = con.execute(f"{sums} ORDER BY ident DESC, owner").fetchall()
            return _split(self._scorecards_of_sums(rows))
        table = rules_only_table(
            table,
            grade=c.grade_of(0),
            tags={tag: table.column(f"x{k}_r") for k, tag in enumerate(tags)},
        )
        return _split_table(table)

    def _sums(self, con: duckdb.DuckDBPyConnection, unique: str, at: int) -> str:
        """SQL of, per owner, from one pass over the events: `owner`, `ident`, `last`
        (its last event), `raw` (the score), then each tag's raw sum `t0`, `t1`, ...
        (NULL: no award names it; tags by name), in no order.

        Each event's matched rules are a bit mask (cheaper than a list: one
        integer per event, no list built and filtered); a join on a small table
        of the masks that can occur turns it into one row per matched rule, and
        an event that matches none into one row without a rule, which still
        counts for its owner's last event. Limits are then a hash aggregate per
        (owner, rule, period) rather than a window's sort: awards are the first
        `times` matches of a period in (timestamp, id) order, and an award's
        amount depends on its timestamp only, so a period of a `times: 1` rule
        awards its earliest match (`min`), of a rule with a larger `times` the
        `times` earliest timestamps (`min(ts, times)`; all of them when there
        are fewer), and a rule without a limit awards every match (their sum).
        """
        assert self.masks is not None
        c = self.compiled
        rules = c.rules
        # Over a typed struct, the rules' conditions again, knowing its shape:
        # a text field's tests read its value without type names (sql.Probe).
        # The same rules in the same order: the same probes and masks.
        compiler, holds = self.rules, self.holds
        if self._shape is not None:
            compiler = ConditionCompiler("properties", "p", shape=self._shape)
            holds = [
                compiler.where(rule.where, frozenset(rule.event_types)) for rule in self.model.rules
            ]
        # Unguarded: the mask tests each probe under its event type already.
        first, second = compiler.select_items(self._shape, guarded=False)
        offset = _zone_offset(con, c, f"SELECT min(ts), max(ts) FROM {unique} WHERE ts <= {at}")
        decay = scale_sql(c, f"{{}} - {at}")

        # Each rule's points, decay and limit are columns of the small tables
        # joined to the events (r) and to the periods (k), rather than a CASE
        # with a branch per rule, as the hand-written query does it. At 10M
        # events (DuckDB's profile) the two CASEs cost 2.1 CPU s, the
        # expressions and the join of k 1.3. The points are the rules'
        # literals cast as `points * weight` cast them: the same doubles.
        def amount(ts: str) -> str:
            return f"points * CASE WHEN decays THEN {decay.format(ts)} ELSE 1.0::DOUBLE END"

        kinds = {None: 0, "ever": 0, "day": 1, "week": 2, "month": 3}

        def columns(rule: CompiledRule) -> str:
            return f"CAST({rule.points} AS DOUBLE), {'TRUE' if rule.decays else 'FALSE'}"

        table = (
            "SELECT * FROM (VALUES "
            + ", ".join(
                f"({mask}, {index}, {kinds[rules[index].limit_per]}, {columns(rules[index])})"
                for mask, indices in self.masks
                for index in indices
            )
            + ") r(mask, rule, kind, points, decays)"
            if self.masks
            else "SELECT 0::BIGINT AS mask, 0 AS rule, 0 AS kind, 0.0::DOUBLE AS points, "
            "FALSE AS decays WHERE FALSE"
        )
        limits = (
            "SELECT * FROM (VALUES "
            + ", ".join(
                f"({rule.index}, {columns(rule)}, "
                f"{'NULL' if rule.limit_times is None else rule.limit_times})"
                for rule in rules
            )
            + ") k(rule, points, decays, times)"
            if rules
            else "SELECT 0 AS rule, 0.0::DOUBLE AS points, FALSE AS decays, "
            "NULL::INTEGER AS times WHERE FALSE"
        )
        day = _day_sql(offset)
        period = (
            "CASE kind WHEN 0 THEN 0 "
            + " ".join(
                f"WHEN {kinds[per]} THEN {_period_of_day(per, 'day')}"
                for per in ("day", "week", "month")
            )
            + " END"
        )
        # The earliest timestamps of each period, as many as the most `times`
        # of the rules limited to more than one (one aggregate for them all:
        # each min(ts, n) costs a heap per group); a period awards the first
        # `times` of them, summed term by term (a lambda over the list cost
        # more than the heaps; a term past the list's end is none).
        # So no count of matches per period is kept: every aggregate's state
        # is in each of the ~5M groups at 10M events, whichever rule it serves,
        # and the aggregation outgrows a 1 GB memory limit and spills.
        several = [rule for rule in rules if (rule.limit_times or 1) > 1]
        most = max((rule.limit_times or 1 for rule in several), default=1)
        earliest = (
            f", min(ts, {most}) FILTER (WHERE rule IN "
            f"({', '.join(str(rule.index) for rule in several)})) AS earliest"
            if several
            else ""
        )

        def awards(times: int) -> str:
            if times == 1:
                return f"({amount('first')})"
            # The first term is there: the period has a match of the rule. (The
            # length is tested, not the term: without decay it does not read ts.)
            terms = [f"({amount('earliest[1]')})"] + [
                f"CASE WHEN len(earliest) >= {k} THEN ({amount(f'earliest[{k}]')}) "
                "ELSE 0.0::DOUBLE END"
                for k in range(2, times + 1)
            ]
            return f"({' + '.join(terms)})"

        limited = sorted({rule.limit_times for rule in rules if rule.limit_times is not None})
        awarded = (
            "CASE WHEN times IS NULL THEN total "
            + "".join(f"WHEN times = {times} THEN {awards(times)} " for times in limited)
            + "END"
        )
        # Every period with a match awards something, so its rows make the tag.
        tag_items = _items(self._tag_sums())
        return (
            # The mask before the owner's join: one integer through it, not the probes.
            f"WITH e0 AS (SELECT contact_id, anonymous_id, ts, type{_items(first)} FROM {unique} "
            f"WHERE ts <= {at}), "
            f"e1 AS (SELECT *{_items(second)} FROM e0), "
            "e2 AS (SELECT contact_id, anonymous_id, ts, "
            f"{day} AS day, {self._mask_sql(holds)} AS mask FROM e1), "
            "e3 AS (SELECT coalesce(e.contact_id, l.linked, e.anonymous_id) AS owner, "
            "(e.contact_id IS NOT NULL OR l.linked IS NOT NULL) AS ident, e.ts, e.day, e.mask "
            "FROM e2 e LEFT JOIN ls_links l "
            "ON e.contact_id IS NULL AND e.anonymous_id = l.anonymous_id), "
            f"r AS ({table}), k AS ({limits}), "
            f"h AS (SELECT owner, ident, ts, rule, {period} AS period, "
            f"{amount('ts')} AS amount FROM e3 LEFT JOIN r USING (mask)), "
            "g AS (SELECT owner, ident, rule, min(ts) AS first, max(ts) AS last, "
            f"sum(amount) AS total{earliest} FROM h GROUP BY owner, ident, rule, period), "
            f"a AS (SELECT owner, ident, last, rule, {awarded} AS amount "
            "FROM g LEFT JOIN k USING (rule)) "
            "SELECT owner, ident, max(last) AS last, coalesce(sum(amount), 0.0::DOUBLE) AS raw"
            f"{tag_items} FROM a GROUP BY owner, ident"
        )

    def _mask_sql(self, holds: list[str] | None = None) -> str:
        """SQL of the bit mask of the rules an event matches (bit i: rule i), each
        rule's condition `holds` (default: the plan's, for any properties column)."""
        if holds is None:
            holds = self.holds
        by_type = _rules_by_type(self.model, holds)
        if not by_type:
            return "0::BIGINT"
        branches = []
        for event_type, (always, maybe) in by_type.items():
            bits = sum(1 << i for i in always)
            parts = [str(bits)] if bits else []
            parts += [f"(CASE WHEN {holds[i]} THEN {1 << i} ELSE 0 END)" for i in maybe]
            branches.append(f"WHEN {literal(event_type)} THEN {' | '.join(parts)}")
        return f"CAST(CASE type {' '.join(branches)} ELSE 0 END AS BIGINT)"

    @staticmethod
    def _times_named(weights: dict[int, int]) -> str:
        """An award counted as often as its rule names the tag."""
        cases = " ".join(f"WHEN {index} THEN {count}" for index, count in weights.items())
        return f"(CASE rule {cases} END) * amount"

    def _tag_sums(self) -> list[str]:
        """Each tag's sum over its rules' awards (`t0`, `t1`, ... in the tags' order),
        as aggregates over rows of `rule` and `amount`; NULL when none names it."""
        return [
            "sum("
            + ("amount" if set(weights.values()) == {1} else self._times_named(weights))
            + f") FILTER (WHERE rule IN ({', '.join(map(str, weights))})) AS t{k}"
            for k, weights in enumerate(self._tag_rules().values())
        ]

    def _tag_rules(self) -> dict[str, dict[int, int]]:
        """Each tag (by name) and its rules, with how many times each names it."""
        tags: dict[str, dict[int, int]] = {}
        for rule in self.compiled.rules:
            for tag in rule.tags:
                weights = tags.setdefault(tag, {})
                weights[rule.index] = weights.get(rule.index, 0) + 1
        return dict(sorted(tags.items()))

    def _scorecards_of_sums(self, rows: list[tuple[Any, ...]]) -> list[Scorecard]:
        """Scorecards from the rows of :meth:`_sums`, with the pure engine's clamp,
        rounding and bands (no fit, stages or triggers on this path)."""
        c = self.compiled
        clamp, band_of = c.clamp, c.band_of
        grade = c.grade_of(0)
        names = list(enumerate(self._tag_rules(), start=4))
        cards: list[Scorecard] = []
        append = cards.append
        for row in rows:
            owner, ident, last, raw = row[:4]
            score = clamp(raw)
            tag_scores = {tag: report(clamp(row[k])) for k, tag in names if row[k] is not None}
            append(
                Scorecard(
                    owner if ident else None,
                    None if ident else owner,
                    report(score),
                    0,
                    grade,
                    band_of(score),
                    None,
                    None,
                    None,
                    tag_scores,
                    last,
                )
            )
        return cards

    def _owners(self, con: duckdb.DuckDBPyConnection, at: int, source: Input) -> None:
        """ls_scores, per owner: `owner`, `ident`, `last` (its last event), `raw` (the
        score), `fit`, then each tag's raw sum `t0`, `t1`, ... (NULL: no award names it;
        tags by name) or, with tag_from, the owner's `tags` in order (NULL: none), their
        raw `totals` and reported scores `tag_r`, and `tag_huge`, whether one of them
        reaches REPORT_LIMIT (see :meth:`_finish`)."""
        c = self.compiled
        m = self.model
        rules = ", ".join(
            f"({rule.index}, {rule.points}, {'TRUE' if rule.decays else 'FALSE'})"
            for rule in c.rules
        )
        decay = scale_sql(c, f"a.ts - {at}")
        amounts = (
            "SELECT a.owner, a.ident, a.rule, a.tagf, "
            f"r.points * CASE WHEN r.decays THEN {decay} ELSE 1.0::DOUBLE END AS amount "
            f"FROM ls_awards a JOIN (VALUES {rules}) r(rule, points, decays) USING (rule)"
            if rules
            else "SELECT owner, ident, rule, tagf, 0.0::DOUBLE AS amount FROM ls_awards WHERE FALSE"
        )
        fit = "SELECT NULL::VARCHAR AS owner, NULL::BOOLEAN AS ident, 0 AS fit WHERE FALSE"
        if m.fit:
            self._fits(con, source)
            fit = "SELECT owner, ident, fit FROM ls_fits WHERE last"
        if not self.tag_texts:
            # Without tag_from every rule's tags are known here: each tag's sum is a
            # column of the one aggregate over the awards (NULL: no award names it),
            # not a list built per owner from (owner, tag) groups.
            tags = self._tag_sums()
            con.execute(
                "CREATE OR REPLACE TEMP TABLE ls_scores AS "
                "WITH o AS (SELECT owner, ident, max(ts) AS last FROM ls_owned GROUP BY ALL), "
                f"a AS ({amounts}), "
                f"s AS (SELECT owner, ident, sum(amount) AS raw{_items(tags)} FROM a "
                "GROUP BY ALL), "
                f"f AS ({fit}) "
                "SELECT o.owner, o.ident, o.last, coalesce(s.raw, 0.0::DOUBLE) AS raw, "
                "coalesce(f.fit, 0) AS fit"
                f"{_items(['s.' + name for name in _names(tags)])} "
                "FROM o LEFT JOIN s USING (owner, ident) LEFT JOIN f USING (owner, ident)"
            )
            return
        con.execute(f"CREATE OR REPLACE TEMP TABLE ls_amounts AS {amounts}")
        # Each award counts for its rule's tags (a join on a small table) and
        # for its tag_from tag when the rule does not already name it.
        rule_tags = ", ".join(
            f"({rule.index}, {literal(tag)})" for rule in c.rules for tag in rule.tags
        )
        named = (
            f"SELECT a.owner, a.ident, rt.tag, a.amount FROM ls_amounts a "
            f"JOIN (VALUES {rule_tags}) rt(rule, tag) USING (rule)"
            if rule_tags
            else "SELECT owner, ident, tagf AS tag, amount FROM ls_amounts WHERE FALSE"
        )
        tag_from = (
            "SELECT a.owner, a.ident, a.tagf AS tag, a.amount FROM ls_amounts a "
            + (
                f"ANTI JOIN (VALUES {rule_tags}) rt(rule, tag) "
                "ON a.rule = rt.rule AND a.tagf = rt.tag "
                if rule_tags
                else ""
            )
            + "WHERE a.tagf IS NOT NULL"
        )
        # Each (owner, tag) sum clamped (v) and reported (v_r) before the lists are
        # built: the lists' order is DuckDB's ORDER BY tag, which is Python's sorted()
        # (code point order, UTF-8's byte order), as the scorecards' tag order.
        totals = (
            f"SELECT *, {clamp_sql(c, 'total')} AS v FROM (SELECT owner, ident, tag, "
            f"sum(amount) AS total FROM ({named} UNION ALL {tag_from}) GROUP BY ALL)"
        )
        tag_sums = (
            "SELECT owner, ident, list(tag ORDER BY tag) AS tags, "
            "list(total ORDER BY tag) AS totals, list(v_r ORDER BY tag) AS tag_r, "
            f"bool_or({self._huge_sql(['v'])}) AS tag_huge FROM ({reported(f'({totals})', ['v'])}) "
            "GROUP BY ALL"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE ls_scores AS "
            "WITH o AS (SELECT owner, ident, max(ts) AS last FROM ls_owned GROUP BY ALL), "
            "s AS (SELECT owner, ident, sum(amount) AS raw FROM ls_amounts GROUP BY ALL), "
            f"t AS ({tag_sums}), f AS ({fit}) "
            "SELECT o.owner, o.ident, o.last, coalesce(s.raw, 0.0::DOUBLE) AS raw, "
            "coalesce(f.fit, 0) AS fit, t.tags, t.totals, t.tag_r, t.tag_huge "
            "FROM o LEFT JOIN s USING (owner, ident) "
            "LEFT JOIN t USING (owner, ident) LEFT JOIN f USING (owner, ident)"
        )
        # Temporary tables count against DuckDB's memory limit: the walk's joins
        # and sorts have what this one held.
        con.execute("DROP TABLE ls_amounts")

    def _finish(
        self, con: duckdb.DuckDBPyConnection, stages: dict[tuple[bool, str], _StageFields]
    ) -> tuple[Sequence[Scorecard], Sequence[Scorecard]]:
        """The scorecards (identified, anonymous), finished in SQL from ls_scores (see
        _owners), the walked owners' stages (ls_walked, see Walk.run) and `stages`, those
        of the owners the pure engine ran (see _sequential).

        As on the rules-only path (:meth:`_cards`), DuckDB computes every field as the
        pure engine's Engine.scorecard does: the clamp; score, tag scores and the
        walked owners' stage score reported (report_sql: Python's round to the bit);
        the band from the clamped, unrounded score; the grade from the fit. They come
        back as one Arrow table, held by :class:`Cards`. Should a value reach
        REPORT_LIMIT, the scorecards are built in Python (:meth:`_scorecards`).
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        c = self.compiled
        flat = not self.tag_texts
        tags = list(self._tag_rules()) if flat else []
        walked = c.has_stages and walkable(self.model)
        joins = ""
        stage, entered, y, given = "NULL::VARCHAR", "NULL::BIGINT", "NULL::DOUBLE", "NULL::DOUBLE"
        if c.has_stages:
            # The owners of the pure engine (ls_fallback: few; all of them when the
            # model reads the stage score): their stage fields as it gave them.
            keys = list(stages)
            con.register(
                "ls_ran_stages",
                pa.table(
                    {
                        "ident": pa.array([ident for ident, _ in keys], pa.bool_()),
                        "owner": pa.array([owner for _, owner in keys], pa.string()),
                        "stage": pa.array([stages[key][0] for key in keys], pa.string()),
                        "entered": pa.array([stages[key][1] for key in keys], pa.int64()),
                        "score": pa.array([stages[key][2] for key in keys], pa.float64()),
                    }
                ),
            )
            joins = "LEFT JOIN ls_ran_stages p USING (owner, ident) "
            stage, entered, given = "p.stage", "p.entered", "p.score"
            if walked:
                joins += "LEFT JOIN ls_walked w USING (owner, ident) "
                names = " ".join(
                    f"WHEN {index} THEN {literal(name)}" for index, name in enumerate(c.stage_names)
                )
                ran = "p.owner IS NOT NULL"
                stage = f"CASE WHEN {ran} THEN p.stage ELSE CASE w.stage {names} END END"
                entered = f"CASE WHEN {ran} THEN p.entered ELSE w.entered_at END"
                # greatest() and least() skip a NULL: an owner without a walked stage
                # stays NULL by CASE.
                y = f"CASE WHEN NOT {ran} AND w.raw IS NOT NULL THEN {clamp_sql(c, 'w.raw')} END"
        values = ["x", *(f"x{k}" for k in range(len(tags))), "y"]
        clamps = [*_clamped(c, "s.", len(tags)), f"{y} AS y"]
        # With tag_from the tag scores come reported, as lists (see _owners).
        lists = (
            []
            if flat
            else [
                "coalesce(s.tags, []::VARCHAR[]) AS tags",
                "coalesce(s.tag_r, []::DOUBLE[]) AS tag_r",
                "coalesce(s.tag_huge, FALSE) AS tag_huge",
            ]
        )
        huge = self._huge_sql(values) + ("" if flat else " OR tag_huge")
        query = (
            "WITH c AS (SELECT s.owner, s.ident, s.last, CAST(s.fit AS BIGINT) AS fit, "
            f"{', '.join(clamps)}, {stage} AS stage, {entered} AS entered, {given} AS given"
            f"{_items(lists)} FROM ls_scores s {joins}) "
            f"SELECT {_OWNER_COLUMNS}, x_r AS score, fit, "
            f"{_grade_sql(c, 'fit')} AS grade, {_band_sql(c, 'x')} AS band, stage, "
            "entered AS stage_entered_at, coalesce(y_r, given) AS stage_score, "
            f"last AS last_event_at{_items([f'x{k}_r' for k in range(len(tags))])}"
            f"{'' if flat else ', tags, tag_r'}, {huge} AS huge "
            f"FROM ({reported('c', values)}) ORDER BY ident DESC, owner"
        )
        table = con.sql(query).to_arrow_table()
        assert table is not None  # a SELECT always has a result
        if pc.any(table.column("huge")).as_py():
            identified, anonymous = _split(self._huge_scorecards(con, stages, walked=walked))
        else:
            count = int(table.num_rows)
            tag_scores = (
                tag_columns(count, {tag: table.column(f"x{k}_r") for k, tag in enumerate(tags)})
                if flat
                else tag_lists(table.column("tags"), table.column("tag_r"))
            )
            identified, anonymous = _split_table(
                cards_table({name: table.column(name) for name in table.column_names}, tag_scores)
            )
        con.execute("DROP TABLE ls_scores")
        if walked:
            con.execute("DROP TABLE ls_walked")
        if c.has_stages:
            con.unregister("ls_ran_stages")
        return identified, anonymous

    def _huge_sql(self, names: Sequence[str]) -> str:
        """SQL of whether a value of the columns `names` reaches the report limit
        (NULL: no)."""
        limit = number(self.report_limit)
        return " OR ".join(f"coalesce(abs({name}) >= {limit}, FALSE)" for name in names)

    def _huge_scorecards(
        self,
        con: duckdb.DuckDBPyConnection,
        stages: dict[tuple[bool, str], _StageFields],
        *,
        walked: bool,
    ) -> list[Scorecard]:
        """The scorecards built in Python, with the pure engine's clamp and report, when
        a value reaches REPORT_LIMIT (no real model has one: kept simple, as it was)."""
        c = self.compiled
        if walked:
            clamp, names = c.clamp, c.stage_names
            for ident, owner, stage, entered_at, raw in con.execute(
                "SELECT ident, owner, stage, entered_at, raw FROM ls_walked"
            ).fetchall():
                stages[(ident, owner)] = (names[stage], entered_at, report(clamp(raw)))
        tags = (
            [f"t{k}" for k in range(len(self._tag_rules()))]
            if not self.tag_texts
            else ["tags", "totals"]
        )
        rows = con.execute(
            f"SELECT owner, ident, last, raw, fit{_items(tags)} FROM ls_scores "
            "ORDER BY ident DESC, owner"
        ).fetchall()
        return self._scorecards(rows, stages)

    def _fits(self, con: duckdb.DuckDBPyConnection, source: Input) -> None:
        """ls_fits: each identify event with traits, and the fit of the owner's traits merged
        up to it (`last`: the owner's last such event, whose fit is the owner's as of T).

        Traits merge key by key (spec 1: a later value replaces an earlier one, a null
        removes the key), so the value of a top-level key after an event is its value in
        the last identify event up to it that has the key (a JSON null: missing). Only
        the top-level keys the fit rules' paths start with are read, each a window's
        last value: no merged object is built (a grid of events and keys merged with
        json_group_object took 11 s of 93 at 10M events).
        """
        tops = list(dict.fromkeys(keys[0] for keys in self.fit.probes))
        column = {top: f"k{i}" for i, top in enumerate(tops)}
        values = []
        for top in tops:
            value = f"traits -> {literal(json_path((top,)))}"
            if source.traits_nulls_absent:  # a null there is an absent key, not a removal
                value = f"CASE WHEN json_type({value}) <> 'NULL' THEN {value} END"
            values.append(f"{value} AS {column[top]}")
        window = (
            "WINDOW w AS (PARTITION BY owner, ident ORDER BY ts, id "
            "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        )
        merged = [f"last_value({column[top]} IGNORE NULLS) OVER w AS {column[top]}" for top in tops]
        first = []
        for keys, probe in self.fit.probes.items():
            value = column[keys[0]]
            if len(keys) > 1:
                value = f"json_extract({value}, {literal(json_path(keys[1:]))})"
            first.append(f"{value} AS {probe.name}_j")
        second = [item for probe in self.fit.probes.values() for item in probe_derived(probe)]
        con.execute(
            "CREATE OR REPLACE TEMP TABLE ls_fits AS "
            f"WITH t AS (SELECT owner, ident, ts, id{_items(values)} FROM ls_owned "
            "WHERE type = 'identify' AND traits IS NOT NULL), "
            f"m AS (SELECT owner, ident, ts, id{_items(merged)}, "
            "row_number() OVER w = count(*) OVER (PARTITION BY owner, ident) AS last "
            f"FROM t {window}), "
            f"f1 AS (SELECT owner, ident, ts, id, last{_items(first)} FROM m), "
            f"f2 AS (SELECT *{_items(second)} FROM f1) "
            f"SELECT owner, ident, ts, id, last, {' + '.join(self.fit_sql)} AS fit FROM f2"
        )

    def _scorecards(
        self, rows: list[tuple[Any, ...]], stages: dict[tuple[bool, str], _StageFields]
    ) -> list[Scorecard]:
        """Scorecards from the rows of :meth:`_owners`, with the pure engine's clamp,
        rounding, grades and bands: each tag's sum a column (NULL: no award names it),
        or, with tag_from, the lists of tags and sums."""
        c = self.compiled
        clamp, band_of, grade_of = c.clamp, c.band_of, c.grade_of
        cards: list[Scorecard] = []
        append = cards.append
        get = stages.get
        no_stage = (None, None, None)
        flat = not self.tag_texts
        names = list(enumerate(self._tag_rules(), start=5))
        for row in rows:
            owner, ident, last, raw, fit = row[:5]
            if flat:
                tag_scores = {tag: report(clamp(row[k])) for k, tag in names if row[k] is not None}
            else:
                tags, totals = row[5], row[6]
                tag_scores = (
                    {}
                    if tags is None
                    else {
                        tag: report(clamp(total))
                        for tag, total in sorted(zip(tags, totals, strict=True))
                    }
                )
            score = clamp(raw)
            stage, entered_at, stage_score = get((ident, owner), no_stage)
            append(
                Scorecard(
                    owner if ident else None,
                    None if ident else owner,
                    report(score),
                    fit,
                    grade_of(fit),
                    band_of(score),
                    stage,
                    entered_at,
                    stage_score,
                    tag_scores,
                    last,
                )
            )
        return cards

    def _sequential(
        self, con: duckdb.DuckDBPyConnection, stages: dict[tuple[bool, str], _StageFields], at: int
    ) -> tuple[list[Firing], list[RunWarning]]:
        """Stages and firings: the window walk, and the pure engine for the owners left."""
        c = self.compiled
        firings: list[Firing] = []
        walks = walkable(self.model)
        if walks:
            fallback = "FALSE"
            # An infinite half-life (past a double's range of microseconds)
            # decays nothing: no span is too long then.
            if c.half_life_micros is not None and math.isfinite(c.half_life_micros):
                oldest = at - SPAN_HALF_LIVES * c.half_life_micros
                fallback = f"ts < {int(oldest)}"
            con.execute(
                "CREATE OR REPLACE TEMP TABLE ls_fallback AS SELECT DISTINCT owner, ident "
                f"FROM ls_owned WHERE {fallback}"
            )
            if c.has_stages:
                # Owners with a stage_set: walked in segments between them (Walk._manual).
                con.execute(
                    "CREATE OR REPLACE TEMP TABLE ls_manual AS SELECT DISTINCT owner, ident "
                    "FROM ls_owned WHERE type = 'stage_set' "
                    "EXCEPT SELECT owner, ident FROM ls_fallback"
                )
        reach = walks and self._reach(con)
        if self.passive != Passive.ALWAYS:
            self._active_tables(con, reach=reach)
        walked: list[tuple[bool, str, list[RunWarning]]] = []
        if walks:
            firings = self._walk(con, at, reach=reach)
            walked = self._stage_set_warnings(con)
            # fetchall: the result finished, for what the caller does next on `con`.
            ((left,),) = con.execute("SELECT count(*) FROM ls_fallback").fetchall()
            if not left:  # the usual case: no query over the events for nobody
                return firings, [warning for _, _, found in walked for warning in found]
            # The owners the walk leaves go through the pure engine.
            mine = " SEMI JOIN ls_fallback USING (owner, ident)"
        else:
            mine = ""
        joins, active = self._active("h")
        who = "TRUE" if c.has_stages else "o.ident"
        stage_name = "o.stage_name" if c.has_stages else "NULL"
        query = (
            f"WITH {self._with_leaves('ls_owned' + mine)}, "
            "h AS (SELECT id, list({'rule': rule, 'tag': tagf} ORDER BY rule) AS hits "
            f"FROM ls_awards{mine} GROUP BY id) "
            f"SELECT o.owner, o.ident, o.ts, o.id, o.type, h.hits, o.leaves, {stage_name}, "
            "CASE WHEN o.type = 'identify' THEN CAST(o.traits AS VARCHAR) END "
            f"FROM o LEFT JOIN h ON o.id = h.id {joins}"
            f"WHERE {who} AND ({active}) ORDER BY o.ident, o.owner, o.ts, o.id"
        )
        engine = self.engine
        stage_index = c.stage_index if c.has_stages else None
        ran: list[tuple[bool, str, list[RunWarning]]] = []
        for (ident, owner), rows in itertools.groupby(
            _rows(con, query), key=lambda row: (row[1], row[0])
        ):
            prepared = [_prepared(row, stage_index) for row in rows]
            state, step = engine.run(prepared, contact_id=owner if ident else None)
            firings += step.firings
            if step.warnings:
                ran.append((ident, owner, step.warnings))
            if stage_index is not None:
                full = engine.scorecard(state, at, contact_id=owner, anonymous_id=None)
                stages[(ident, owner)] = (full.stage, full.stage_entered_at, full.stage_score)
        # The pure engine's order: by owner (anonymous first), each in event order.
        merged = sorted(walked + ran, key=lambda item: (item[0], item[1]))
        return firings, [warning for _, _, found in merged for warning in found]

    def _stage_set_warnings(
        self, con: duckdb.DuckDBPyConnection
    ) -> list[tuple[bool, str, list[RunWarning]]]:
        """The warnings of the walked owners' stage_set events that name no stage of the
        model, per owner (identified, key, warnings in event order), as the pure engine's."""
        if not self.compiled.has_stages:
            return []
        rows = con.execute(
            "SELECT ident, owner, id, stage_name FROM ls_owned "
            "ANTI JOIN ls_fallback USING (owner, ident) "
            f"WHERE type = 'stage_set' AND {self._set_to('stage_name')} < 0 "
            "ORDER BY ident, owner, ts, id"
        ).fetchall()
        found: list[tuple[bool, str, list[RunWarning]]] = []
        for (ident, owner), events in itertools.groupby(rows, key=lambda row: (row[0], row[1])):
            found.append(
                (
                    ident,
                    owner,
                    [unknown_stage(event_id, name) for _, _, event_id, name in events],
                )
            )
        return found

    def _set_to(self, name: str) -> str:
        """SQL of the stage index a stage_set's stage name (column `name`) gives: -1 when
        it names none of the model's stages (as the pure engine's UNKNOWN_STAGE)."""
        cases = " ".join(
            f"WHEN {literal(stage)} THEN {index}"
            for stage, index in self.compiled.stage_index.items()
        )
        return f"coalesce(CASE WHEN {name} <> '' THEN CASE {name} {cases} END END, -1)"

    def _with_leaves(self, events: str) -> str:
        """CTEs ending in `o`: the rows of `events` (with ls_owned's columns) and their
        `leaves`, the bits of the stage and trigger event conditions that hold for them."""
        if not self.leaf_sql:
            return f"o AS (SELECT *, 0 AS leaves FROM {events})"
        second = self.leaf_conditions.select_items(self._shape)[1]
        return (
            f"o1 AS (SELECT *{_items(second)} FROM {events}), "
            f"o AS (SELECT *, {' + '.join(self.leaf_sql)} AS leaves FROM o1)"
        )

    def _active_tables(self, con: duckdb.DuckDBPyConnection, *, reach: bool) -> None:
        """ls_facts, per owner: its first event (from ls_first) and, from ls_unsafe, the
        instant from which its passive events may move a stage (`since`): its first
        stage_set (which never moves by itself, so the next event may; the pure
        engine's move is not a running maximum after it) and, when the conditions
        need values that only fall, its first negative award. Before it, the owner's
        values only fell between events. `reach`: ls_reach was made (see _reach).
        Tables rather than CTEs: each hash table built alone, before the joins' own,
        stays in memory (built in one statement at 10M events, they spilled)."""
        c = self.compiled
        con.execute(
            "CREATE OR REPLACE TEMP TABLE ls_first AS SELECT owner, ident, "
            "arg_min(id, {'ts': ts, 'id': id}) AS id FROM ls_owned GROUP BY owner, ident"
        )
        # `set`: a stage_set's instant, rather than a negative award's; `since_set`,
        # the first stage_set alone, is what the walk needs of the owners outside
        # ls_reach (see _reach).
        unsafe = []
        if c.has_stages:
            unsafe.append(
                "SELECT owner, ident, ts, TRUE AS set FROM ls_owned WHERE type = 'stage_set'"
            )
        if self.passive == Passive.IF_NEGATIVE:
            negative = [str(rule.index) for rule in c.rules if rule.points < 0]
            if negative:
                unsafe.append(
                    "SELECT owner, ident, ts, FALSE AS set FROM ls_awards "
                    f"WHERE rule IN ({', '.join(negative)})"
                )
        if not unsafe:
            unsafe.append("SELECT owner, ident, ts, TRUE AS set FROM ls_owned WHERE FALSE")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE ls_unsafe AS SELECT owner, ident, min(ts) AS since, "
            f"min(ts) FILTER (WHERE set) AS since_set FROM ({' UNION ALL '.join(unsafe)}) "
            "GROUP BY ALL"
        )
        # ls_facts: one row per owner (its first event, `since`, `since_set`, and
        # `reach` when ls_reach was made), so that _active joins the events once,
        # by owner, rather than three times (once by event id).
        con.execute(
            "CREATE OR REPLACE TEMP TABLE ls_facts AS SELECT f.owner, f.ident, f.id AS first, "
            "un.since, un.since_set"
            + (
                ", r.ident IS NOT NULL AS reach FROM ls_first f "
                "LEFT JOIN ls_reach r USING (owner, ident) "
                if reach
                else " FROM ls_first f "
            )
            + "LEFT JOIN ls_unsafe un USING (owner, ident)"
        )
        con.execute("DROP TABLE ls_first")
        con.execute("DROP TABLE ls_unsafe")
        con.execute("DROP TABLE IF EXISTS ls_reach")

    def _active(self, awards: str, *, reach: bool = False) -> tuple[str, str]:
        """The events of `o` (see _with_leaves) that can change a stage or fire a trigger:
        (joins, condition), over the tables of _active_tables. `awards` names a relation
        joined on the event id, whose `id` is NULL for an event without awards.
        `reach`: for the owners outside ls_reach (see _reach), an event whose only
        part is its awards, or that follows a negative award, takes no part."""
        if self.passive == Passive.ALWAYS:
            return "", "TRUE"
        active = [
            f"({awards}.id IS NOT NULL AND fa.reach)" if reach else f"{awards}.id IS NOT NULL",
            "(o.type = 'identify' AND o.traits IS NOT NULL)",
            "o.id = fa.first",
            "o.leaves <> 0",
            "coalesce(o.ts >= CASE WHEN fa.reach THEN fa.since ELSE fa.since_set END, FALSE)"
            if reach
            else "coalesce(o.ts >= fa.since, FALSE)",
        ]
        if self.compiled.has_stages:
            active.append("o.type = 'stage_set'")
        joins = "LEFT JOIN ls_facts fa USING (owner, ident) "
        return joins, " OR ".join(active)

    def _reach(self, con: duckdb.DuckDBPyConnection) -> bool:
        """ls_reach: the owners whose score may reach the model's score floor
        (walk.score_floor) at some instant; False when every owner may, or the
        floor does not apply, and the table is not made.

        An owner's score never exceeds its positive points summed and clamped
        (U), so an owner with U below the floor has every score test false at
        every event, whatever subset of its awards the walk sums: its events
        that only award points act as passive events (see passive_events_matter)
        and are left out of the walk, when passive events may be (not
        Passive.ALWAYS). So are its events after a negative award (which may
        make values rise between events: no score test holds for it anyway);
        not those after a stage_set, after which a test of the fit alone may
        move the stage at a passive event. The walk's sums are rounded, and a test "reaches" at
        the threshold less TOLERANCE, so U must fall short by a margin
        (_REACH_MARGIN) larger than both. The stage score is summed from
        ls_awards apart from the walk, so it keeps every award.
        """
        c = self.compiled
        floor = score_floor(self.model)
        if floor is None or self.passive == Passive.ALWAYS:
            return False
        positive = [(rule.index, rule.points) for rule in c.rules if rule.points > 0]
        bound = floor - _REACH_MARGIN
        zero = c.clamp(0.0)
        if zero >= bound:  # an owner without awards may reach it
            return False
        if not positive or math.isinf(floor):
            con.execute(
                "CREATE OR REPLACE TEMP TABLE ls_reach AS SELECT owner, ident FROM ls_awards "
                "WHERE FALSE"
            )
            return True
        values = ", ".join(f"({index}, {points!r})" for index, points in positive)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE ls_reach AS SELECT owner, ident FROM ls_awards "
            f"JOIN (VALUES {values}) r(rule, points) USING (rule) GROUP BY owner, ident "
            f"HAVING {clamp_sql(c, 'sum(r.points)::DOUBLE')} >= {number(bound)}"
        )
        return True

    def _walk(self, con: duckdb.DuckDBPyConnection, at: int, *, reach: bool) -> list[Firing]:
        """Stages and firings of the owners the window functions can walk (see walk):
        those not in ls_fallback, over their active events (`reach`: ls_reach is made,
        see _reach)."""
        c = self.compiled
        walk = Walk(c, [1 << bit for bit in range(len(self.leaves))])
        zero = "".join(f", coalesce(s.{name}, 0.0::DOUBLE) AS {name}" for name in walk.sum_names())
        # The events, their leaves and their award sums (by id; none: zeros).
        joins, active = self._active("s", reach=reach)
        con.execute(f"CREATE OR REPLACE TEMP TABLE ls_sums AS {walk.award_sums(at)}")
        set_to = (
            f", CASE WHEN o.type = 'stage_set' THEN {self._set_to('o.stage_name')} END AS set_to"
            if c.has_stages
            else ""
        )
        events = self._with_leaves("ls_owned ANTI JOIN ls_fallback USING (owner, ident)")
        # Each owner's first event, known from ls_facts when it is joined (see _active).
        first = ", o.id = fa.first AS is_first" if joins else ""
        con.execute(
            "CREATE OR REPLACE TEMP TABLE ls_walk_in AS "
            f"WITH {events} "
            f"SELECT o.owner, o.ident, o.ts, o.id, o.type, o.leaves{zero}{set_to}{first} "
            f"FROM o LEFT JOIN ls_sums s ON o.id = s.id {joins}"
            # Without stages, only contacts' events matter: anonymous owners fire nothing.
            f"WHERE {'TRUE' if c.has_stages else 'o.ident'} AND ({active})"
        )
        con.execute("DROP TABLE ls_sums")
        # The walked owners' stages stay in DuckDB (ls_walked), for _finish.
        rows = walk.run(con, at, self._identify_fits(), first_known=bool(joins))
        return [Firing(trigger, owner, event_id, ts) for trigger, owner, event_id, ts in rows]

    def _identify_fits(self) -> str:
        """SELECT (id, fit, before) of every identify event with traits: the fit of the
        traits merged up to it, and up to the owner's previous one (0: none)."""
        if not self.fit_sql:
            return "SELECT id, 0 AS fit, 0 AS before FROM ls_walk_in WHERE FALSE"
        return (
            "SELECT id, fit, coalesce(lag(fit) OVER (PARTITION BY owner, ident "
            "ORDER BY ts, id), 0) AS before FROM ls_fits"
        )


# How far below the score floor an owner's clamped positive points must stay for
# its award-only events to be left out of the walk (BatchPlan._reach): far more
# than TOLERANCE (1e-9) and than the rounding of the walk's sums (relative
# 2^-52 per addition, some 1e-12 of the score over thousands of awards).
_REACH_MARGIN = 1e-6
# The most rows the table of rule masks (:func:`_rule_masks`) may have.
_MASKS = 4_096
# The most `times` of a limit on the rules-only path: its awards are summed
# term by term (see BatchPlan._sums).
_TIMES = 64


def _split(cards: Sequence[Scorecard]) -> tuple[Sequence[Scorecard], Sequence[Scorecard]]:
    """Scorecards built in Python as the Result holds them: identified, anonymous."""
    return (
        [card for card in cards if card.contact_id is not None],
        [card for card in cards if card.contact_id is None],
    )


def _split_table(table: Any) -> tuple[Cards, Cards]:
    """A table of Cards, identified owners first (ORDER BY ident DESC), as the
    Result holds them: identified, anonymous."""
    import pyarrow.compute as pc

    identified = int(pc.count(table.column("contact_id")).as_py())
    return Cards(table.slice(0, identified)), Cards(table.slice(identified))


# An owner's key as the scorecard's two id columns.
_OWNER_COLUMNS = (
    "CASE WHEN ident THEN owner END AS contact_id, "
    "CASE WHEN NOT ident THEN owner END AS anonymous_id"
)


def _clamped(c: CompiledModel, table: str, tags: int) -> list[str]:
    """The clamped score `x` of the raw sum `{table}raw`, and each tag's `x0`, `x1`, ...
    of `{table}t0`, ... (greatest() and least() skip a NULL: a tag without an award
    stays NULL by CASE)."""
    return [
        f"{clamp_sql(c, f'{table}raw')} AS x",
        *(
            f"CASE WHEN {table}t{k} IS NOT NULL THEN {clamp_sql(c, f'{table}t{k}')} END AS x{k}"
            for k in range(tags)
        ),
    ]


def _band_sql(c: CompiledModel, value: str) -> str:
    """SQL of the band of the clamped, unrounded score `value`: the first band reached,
    thresholds less TOLERANCE as CompiledModel holds them (its band_of)."""
    band = " ".join(
        f"WHEN {'TRUE' if floor is None else f'{value} >= {number(floor)}'} THEN {literal(name)}"
        for name, floor in c.bands
    )
    return f"{f'CASE {band} END' if band else 'NULL'}::VARCHAR"


def _grade_sql(c: CompiledModel, fit: str) -> str:
    """SQL of the grade of the BIGINT `fit`, exactly CompiledModel.grade_of's.

    grade_of compares the integer fit with a double, minimum - TOLERANCE, and
    Python compares an int with a float exactly; DuckDB would turn the BIGINT into
    a double (inexact past 2^53). For an integer, fit >= f is fit >= ceil(f), an
    integer comparison; a ceiling outside BIGINT's range holds for every fit or none.
    """
    branches = []
    for name, floor in c.grades:
        if floor is None:
            test = "TRUE"
        else:
            least = math.ceil(floor)
            if least <= -(2**63):
                test = "TRUE"
            elif least >= 2**63:
                test = "FALSE"
            else:
                test = f"{fit} >= {least}"
        branches.append(f"WHEN {test} THEN {literal(name)}")
    cases = " ".join(branches)
    return f"{f'CASE {cases} END' if branches else 'NULL'}::VARCHAR"


def _rules_by_type(model: Model, holds: list[str]) -> dict[str, tuple[list[int], list[int]]]:
    """Each event type (in order) and the indices of its rules: those without a
    condition (`holds` is TRUE), which every event of the type matches, and the
    others."""
    by_type: dict[str, tuple[list[int], list[int]]] = {}
    for index, rule in enumerate(model.rules):
        for event_type in sorted(set(rule.event_types)):
            always, maybe = by_type.setdefault(event_type, ([], []))
            (always if holds[index] == "TRUE" else maybe).append(index)
    return dict(sorted(by_type.items()))


def _rule_masks(model: Model, holds: list[str]) -> list[tuple[int, list[int]]] | None:
    """Every bit mask of matched rules an event can have (not 0), with its rules;
    None when the masks do not fit: more than 62 rules (a BIGINT mask, its sign
    bit unused) or a table of more than _MASKS masks.

    An event of type t matches every rule of t without a condition and any
    subset of those with one.
    """
    if len(model.rules) > 62:
        return None
    found: dict[int, list[int]] = {}
    for always, maybe in _rules_by_type(model, holds).values():
        if len(found) + (1 << len(maybe)) > _MASKS:
            return None
        for chosen in range(1 << len(maybe)):
            matched = sorted(always + [i for k, i in enumerate(maybe) if chosen >> k & 1])
            if matched:
                found[sum(1 << i for i in matched)] = matched
    return sorted(found.items())


def _rules_only(model: Model) -> bool:
    """Whether the rules-only path (BatchPlan._sums) applies: no fit, stages, triggers
    or `tag_from` (those need each award or event), and no `times` past _TIMES."""
    if model.fit or model.stages or model.triggers:
        return False
    if any(rule.limit and rule.limit.times > _TIMES for rule in model.rules):
        return False
    return not any(rule.tag_from for rule in model.rules)


def _prepared(row: tuple[Any, ...], stage_index: dict[str, int] | None) -> Prepared:
    """A Prepared event from a row of the sequential query (owner fields unused by apply)."""
    _, _, ts, event_id, event_type, hits, bits, stage_name, traits = row
    stage_to = NOT_STAGE_SET
    if stage_index is not None and event_type == "stage_set":
        stage_to = stage_index.get(stage_name, UNKNOWN_STAGE) if stage_name else UNKNOWN_STAGE
    return Prepared(
        ts,
        event_id,
        event_type,
        None,
        None,
        () if hits is None else tuple((hit["rule"], hit["tag"]) for hit in hits),
        bits,
        stage_to,
        stage_name,
        None if traits is None else exact_loads(traits),  # integers past 64 bits exact
    )


def _rows(con: duckdb.DuckDBPyConnection, query: str) -> Iterator[tuple[Any, ...]]:
    reader = con.sql(query).to_arrow_reader(_FETCH)
    for batch in reader:
        yield from zip(*(column.to_pylist() for column in batch.columns), strict=True)


def _tag_text_of(name: str) -> str:
    return tag_text(Probe(name))


def _names(items: Sequence[str]) -> list[str]:
    """The names of SELECT items (`expression AS name`)."""
    return [item.rsplit(" AS ", 1)[1] for item in items]


def _items(items: Sequence[str]) -> str:
    return "".join(", " + item for item in items)


def _one(con: duckdb.DuckDBPyConnection, query: str) -> tuple[Any, ...]:
    # fetchall, not fetchone: the result finished, so that the connection takes
    # other work (a relation's, say) at once.
    (row,) = con.execute(query).fetchall()
    return tuple(row)


# Up to this many events, whether an id repeats is asked of NumPy (8 bytes an
# event in this process, beside DuckDB's memory: 400 MB here); past it, of
# DuckDB's count(DISTINCT id) alone.
_SORTED_HASHES_LIMIT = 50_000_000


def _repeated_ids(
    con: duckdb.DuckDBPyConnection, relation: str, *, limit: int = _SORTED_HASHES_LIMIT
) -> bool:
    """Whether an id of `relation` repeats; if so, those ids are the table ls_dups.

    Most logs repeat none, and proving it is most of the cost: at 10M events
    DuckDB's count(DISTINCT id) took 1.5 s (2.5 CPU s), a hash table of 10M
    strings. Sorting the ids' 64-bit hashes in NumPy took 0.55 s with DuckDB
    computing them (0.15 s of it the sort). Equal ids have equal hashes, so
    distinct hashes prove distinct ids; an equal pair (a repeated id, or two
    ids whose hashes collide: about 3 in a million logs of 10M events) sends
    the search to DuckDB, which finds the ids that truly repeat.
    """
    import numpy as np

    (count,) = _one(con, f"SELECT count(*) FROM {relation}")
    if count <= limit:
        hashes = con.sql(f"SELECT hash(id) AS h FROM {relation}").fetchnumpy()["h"]
        hashes.sort()
        if not np.any(hashes[1:] == hashes[:-1]):
            return False
    # count(DISTINCT id) keeps no count per id: 1.0 s where the GROUP BY below
    # took 1.3-1.5 s at 10M events, so it says first whether any id repeats.
    elif not _one(con, f"SELECT count(*) - count(DISTINCT id) FROM {relation}")[0]:
        return False
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ls_dups AS "
        f"SELECT id FROM {relation} GROUP BY id HAVING count(*) > 1"
    )
    return bool(_one(con, "SELECT count(*) FROM ls_dups")[0])


def events_table(events: Iterable[Event]) -> Any:
    """In-memory events as an Arrow table with the canonical columns of :class:`Input`.

    Properties and traits are JSON text with sorted keys, so that two copies
    of an event that are equal as objects are equal as text.
    """
    import pyarrow as pa

    columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}
    dumps = dumps_sorted  # exact for integers past 64 bits, which orjson refuses
    for seq, event in enumerate(events):
        columns["seq"].append(seq)
        columns["id"].append(event.id)
        columns["type"].append(event.type)
        columns["contact_id"].append(event.contact_id)
        columns["anonymous_id"].append(event.anonymous_id)
        columns["ts"].append(event.timestamp)
        columns["properties"].append(dumps(event.properties))
        traits = event.traits
        columns["traits"].append(None if traits is None else dumps(traits))
    return pa.table(
        {name: pa.array(values, type=_ARROW_TYPES[name]()) for name, values in columns.items()}
    )


_COLUMNS = ("seq", "id", "type", "contact_id", "anonymous_id", "ts", "properties", "traits")


def _arrow_types() -> dict[str, Callable[[], Any]]:
    import pyarrow as pa

    return {
        "seq": pa.int64,
        "id": pa.string,
        "type": pa.string,
        "contact_id": pa.string,
        "anonymous_id": pa.string,
        "ts": pa.int64,
        "properties": pa.string,
        "traits": pa.string,
    }


class _LazyTypes(dict[str, Callable[[], Any]]):
    def __missing__(self, key: str) -> Callable[[], Any]:
        self.update(_arrow_types())
        return self[key]


_ARROW_TYPES = _LazyTypes()


def canonical_view(con: duckdb.DuckDBPyConnection, table: Any, name: str = "ls_input") -> Input:
    """Register an Arrow table of canonical columns as the view the plan reads."""
    con.register(f"{name}_arrow", table)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT seq, id, type, contact_id, "
        "anonymous_id, ts, CAST(properties AS JSON) AS properties, "
        f"CAST(traits AS JSON) AS traits FROM {name}_arrow"
    )
    return Input(name)
