"""Stages and triggers as window functions: the sequential part of a model, set-based.

A contact's stage after each event is, for most models, a running maximum:
automatic moves only go forwards, to the furthest stage whose `enter` holds
on the values after the event, so the stage after event k is the largest
"furthest stage that holds" over events 1..k (stage 0 from the first event).
The values a condition reads after (and just before) each event are running
sums over the owner's events in (timestamp, id) order, decayed to the event:
with every award scaled to the as-of time T (p·2^((t-T)/H)), the decaying
part of the score after event k is 2^((T-t_k)/H) · Σ_{j<=k} p_j·2^((t_j-T)/H).
Fit after an event is the fit of the traits merged up to the latest identify
event. Triggers compare the values before and after each event.

A `stage_set` moves the stage anywhere, backwards too, but automatic moves
go on from there, so for an owner with stage_sets the stage is a running
maximum within each segment that starts at one, from its stage (see
:meth:`Walk._manual`); such owners are few, and their stages are found apart.

That reasoning needs that no condition reads the stage score (which restarts
at each entry, so depends on the path taken): every owner of a model whose
conditions read it goes through the pure engine instead (see
:meth:`leadscore._batch.BatchPlan._sequential`). So does an owner whose
events span more than `SPAN_HALF_LIVES` half-lives, where scaling every award
to T could leave the range of a double.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .._compiled import TOLERANCE, CompiledModel
from .._model import Model, StageCondition, TriggerCondition
from .sql import literal, number

if TYPE_CHECKING:
    import duckdb

# 2^±900 stays inside a double (about 2^±1023) with room for the sums' own size.
SPAN_HALF_LIVES = 900


def walkable(model: Model) -> bool:
    """Whether the window-function form computes this model's stages exactly."""
    return not any(_reads_stage_score(stage.enter) for stage in model.stages)


def _reads_stage_score(cond: StageCondition | None) -> bool:
    if cond is None:
        return False
    parts = [*(cond.all or ()), *(cond.any or ()), cond.not_]
    return cond.stage_score_gte is not None or any(_reads_stage_score(p) for p in parts)


def clamp_sql(c: CompiledModel, value: str) -> str:
    """SQL of the model's clamp of `value`."""
    if c.clamp_min is not None:
        value = f"greatest({value}, {number(c.clamp_min)})"
    if c.clamp_max is not None:
        value = f"least({value}, {number(c.clamp_max)})"
    return value


def scale_sql(c: CompiledModel, elapsed: str) -> str:
    """SQL of 2^(elapsed/H), the model's decay over the SQL `elapsed` (µs, negative
    into the past): 1 without decay. H is the exact DOUBLE literal of the
    half-life, infinite past a double's range of microseconds (no decay either)."""
    if c.half_life_micros is None:
        return "1.0::DOUBLE"
    return f"pow(2.0::DOUBLE, ({elapsed}) / {number(c.half_life_micros)})"


def score_floor(model: Model) -> float | None:
    """The least engagement score that any score test of the model's stage conditions
    and triggers needs (infinity: none reads it); None when one may hold on a low
    score, or reads a tag or the stage score.

    A score test needs a score of at least its threshold when it holds only on
    higher ones: `score_gte`, `score_crosses`, a band (`band_in` of bands
    with a minimum, `band_entered`) outside any `not`. If an owner's score
    stays below the floor at every instant, every score test is false for it,
    whatever awards are summed, so its events that only award points change
    no stage and fire nothing: the walk leaves them out (BatchPlan._walk). An
    owner's score never exceeds its clamped sum of positive points (decay
    only shrinks a positive award, a negative one only lowers the sum).
    """
    bands = {band.band: band.min_score for band in model.bands}
    floors = [math.inf]
    for stage in model.stages:
        if stage.enter is not None:
            floor = _floor(stage.enter, bands)
            if floor is None:
                return None
            floors.append(floor)
    for trigger in model.triggers:
        when = trigger.when
        if when.tag_score_crosses is not None:
            return None
        if when.score_crosses is not None:
            floors.append(float(when.score_crosses))
        if when.band_entered is not None and when.band_entered in bands:
            least = bands[when.band_entered]
            if least is None:  # the catch-all band is entered on low scores
                return None
            floors.append(float(least))
    return min(floors)


def _floor(cond: StageCondition, bands: dict[str, float | None]) -> float | None:
    """The least score any score test in `cond` (held positively) needs; None as above."""
    if cond.score_lt is not None or cond.tag_score_gte or cond.stage_score_gte is not None:
        return None
    if cond.not_ is not None and _reads_score(cond.not_):
        return None
    floors = [math.inf]
    if cond.score_gte is not None:
        floors.append(float(cond.score_gte))
    for name in cond.band_in or ():
        if name in bands:  # a band the model lacks never holds
            least = bands[name]
            if least is None:
                return None
            floors.append(float(least))
    for part in [*(cond.all or ()), *(cond.any or ())]:
        floor = _floor(part, bands)
        if floor is None:
            return None
        floors.append(floor)
    return min(floors)


def _reads_score(cond: StageCondition) -> bool:
    parts = [*(cond.all or ()), *(cond.any or ()), *([cond.not_] if cond.not_ else [])]
    return (
        cond.score_gte is not None
        or cond.score_lt is not None
        or cond.band_in is not None
        or bool(cond.tag_score_gte)
        or cond.stage_score_gte is not None
        or any(_reads_score(part) for part in parts)
    )


class Walk:
    """The SQL of the walk for one compiled model."""

    def __init__(self, compiled: CompiledModel, leaf_bits: list[int]) -> None:
        self.c = compiled
        self.model = compiled.model
        self.tags = list(compiled.watched_tags)
        self.tag_column = {tag: f"g{i}" for i, tag in enumerate(self.tags)}
        # The kinds of award sums carried: decaying ones (scaled to the as-of
        # time) and flat ones, each only when some rule gives it. A kind no rule
        # gives sums to exactly 0.0, and x + 0.0 is x, so leaving it out changes
        # no value; it saves two running sums per value (now and before) in the
        # walk's window, and their columns through every step before it.
        self.kinds = [
            kind
            for kind, present in (
                ("dec", any(rule.decays for rule in compiled.rules)),
                ("flat", any(not rule.decays for rule in compiled.rules)),
            )
            if present
        ]
        self._leaf_bits = iter(leaf_bits)
        self.stage_sql = [
            self._stage(stage.enter) if stage.enter is not None else None
            for stage in self.model.stages
        ]
        # Triggers on a stage entered are found per owner (see run); the others per event.
        self.entered = {
            index: compiled.stage_index[trigger.when.stage_entered]
            for index, trigger in enumerate(self.model.triggers)
            if trigger.when.stage_entered is not None
        }
        self.trigger_sql = {
            index: self._trigger(trigger.when)
            for index, trigger in enumerate(self.model.triggers)
            if index not in self.entered
        }

    # -- values ------------------------------------------------------------

    def sum_names(self) -> list[str]:
        """The award sums' columns: the score's by kind, then each watched tag's."""
        return self.kinds + [f"{g}_{kind}" for g in self.tag_column.values() for kind in self.kinds]

    def _value(self, prefix: str, decay: str) -> str:
        """A value from its running sums named `prefix` + kind: decaying ones decayed."""
        terms = [
            f"{prefix}dec * {decay}" if kind == "dec" else f"{prefix}flat" for kind in self.kinds
        ]
        return self.clamp(" + ".join(terms) if terms else "0.0::DOUBLE")

    def clamp(self, value: str) -> str:
        return clamp_sql(self.c, value)

    @staticmethod
    def reaches(value: str, threshold: float) -> str:
        return f"({value} >= {float(threshold) - TOLERANCE!r})"

    def first_reached(self, entries: list[tuple[str, float | None]], value: str) -> str:
        """The name of the first entry (grade or band) whose minimum `value` reaches."""
        branches = []
        for name, floor in entries:
            if floor is None:
                branches.append(f"ELSE {literal(name)}")
                break
            branches.append(f"WHEN {value} >= {floor!r} THEN {literal(name)}")
        if not branches:
            return "CAST(NULL AS VARCHAR)"
        if not branches[-1].startswith("ELSE"):
            branches.append("ELSE NULL")
        return "CASE " + " ".join(branches) + " END"

    # -- conditions ----------------------------------------------------------

    def _stage(self, cond: StageCondition) -> str:
        """SQL of a stage condition over the values after an event (columns of ls_walk)."""
        tests: list[str] = []
        if cond.score_gte is not None:
            tests.append(self.reaches("score", cond.score_gte))
        if cond.fit_gte is not None:
            tests.append(self.reaches("fit", cond.fit_gte))
        if cond.score_lt is not None:
            tests.append(f"NOT {self.reaches('score', cond.score_lt)}")
        if cond.grade_in is not None:
            tests.append(f"coalesce(grade IN ({', '.join(map(literal, cond.grade_in))}), FALSE)")
        if cond.band_in is not None:
            tests.append(f"coalesce(band IN ({', '.join(map(literal, cond.band_in))}), FALSE)")
        for tag, threshold in (cond.tag_score_gte or {}).items():
            tests.append(self.reaches(self.tag_column[tag], threshold))
        if cond.event is not None:
            tests.append(f"(leaves & {next(self._leaf_bits)}) <> 0")
        tests.extend(self._stage(part) for part in cond.all or ())
        if cond.any:
            tests.append("(" + " OR ".join(self._stage(part) for part in cond.any) + ")")
        if cond.not_ is not None:
            tests.append(f"(NOT {self._stage(cond.not_)})")
        return "(" + " AND ".join(tests) + ")"

    def _trigger(self, when: TriggerCondition) -> str:
        """SQL of a trigger's `when` over the values before (p_) and after an event."""
        if when.score_crosses is not None:
            n = when.score_crosses
            return f"(NOT {self.reaches('p_score', n)} AND {self.reaches('score', n)})"
        if when.tag_score_crosses is not None:
            ((tag, n),) = when.tag_score_crosses.items()
            column = self.tag_column[tag]
            return f"(NOT {self.reaches('p_' + column, n)} AND {self.reaches(column, n)})"
        if when.band_entered is not None:
            band = literal(when.band_entered)
            return f"(p_band IS DISTINCT FROM {band} AND band = {band})"
        if when.grade_entered is not None:
            grade = literal(when.grade_entered)
            return f"(p_grade IS DISTINCT FROM {grade} AND grade = {grade})"
        return f"(leaves & {next(self._leaf_bits)}) <> 0"

    # -- running -----------------------------------------------------------

    def run(
        self, con: duckdb.DuckDBPyConnection, at: int, fit_sql: str, *, first_known: bool
    ) -> list[tuple[str, str, str, int]]:
        """Walk the owners of ls_walk_in (their active events, with their award sums).

        `fit_sql` is a SELECT of (id, fit, before) for every identify event
        with traits: the fit of the traits merged up to it, and up to the
        owner's identify event before it (0: none). `first_known`: ls_walk_in
        has `is_first`, whether the row is its owner's first event. Returns the firings
        (trigger id, contact id, event id, timestamp); with stages, leaves
        ls_walked, per owner (ident, owner, stage, entered_at, raw:
        the raw stage sum), which the plan finishes its scorecards from in SQL.
        """
        c = self.c
        decay = scale_sql(c, f"{at} - ts")
        win = "PARTITION BY owner, ident ORDER BY ts, id"
        now = f"({win} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
        # A sum just before an event is the running sum less the event's own term,
        # not a second window frame (each costs the window operator a pass): exact
        # for flat sums of integer points; for decaying ones, within the rounding
        # the segment tree's own additions already have (relative 2^-52 of the
        # largest term), far inside TOLERANCE.
        running = "".join(
            f"sum({name}) OVER {now} AS c_{name}, {name} AS x_{name}, " for name in self.sum_names()
        )
        before_sums = "".join(f", c_{name} - x_{name} AS b_{name}" for name in self.sum_names())
        # `is_first` comes with ls_walk_in when first_known; `fit_before`, the fit
        # before an identify event, with fit_sql: no window function for either.
        is_first = "is_first" if first_known else f"row_number() OVER {now} = 1 AS is_first"
        values = [
            f"{self._value('c_', decay)} AS score",
            f"{self._value('b_', decay)} AS p_score",
        ]
        for g in self.tag_column.values():
            values.append(f"{self._value(f'c_{g}_', decay)} AS {g}")
            values.append(f"{self._value(f'b_{g}_', decay)} AS p_{g}")
        furthest = " ".join(
            f"WHEN {sql} THEN {index}"
            for index, sql in reversed(list(enumerate(self.stage_sql)))
            if sql is not None
        )
        target = f"CASE {furthest} ELSE 0 END" if furthest else "0"
        if c.has_stages:
            # A stage_set never moves a stage automatically (its own row only starts a
            # segment, see _manual); `set_to` is the stage it names (-1: none of the model).
            target = f"CASE WHEN set_to IS NULL THEN {target} ELSE 0 END"
        kept = ", set_to" if c.has_stages else ""
        con.execute(
            "CREATE OR REPLACE TEMP TABLE ls_walk AS "
            "WITH e AS (SELECT w.*, f.fit AS fit_set, f.before AS fit_before FROM ls_walk_in w "
            f"LEFT JOIN ({fit_sql}) f USING (id)), "
            f"r AS (SELECT owner, ident, ts, id, leaves{kept}, {running}"
            f"coalesce(last_value(fit_set IGNORE NULLS) OVER {now}, 0) AS fit, "
            f"fit_before, {is_first} FROM e), "
            f"r2 AS (SELECT *{before_sums}, coalesce(fit_before, fit) AS p_fit FROM r), "
            f"v AS (SELECT owner, ident, ts, id, leaves{kept}, is_first, fit, p_fit, "
            f"{', '.join(values)} FROM r2), "
            f"b AS (SELECT *, {self.first_reached(c.grades, 'fit')} AS grade, "
            f"CASE WHEN NOT is_first THEN {self.first_reached(c.grades, 'p_fit')} END AS p_grade, "
            f"{self.first_reached(c.bands, 'score')} AS band, "
            f"CASE WHEN NOT is_first THEN {self.first_reached(c.bands, 'p_score')} END AS p_band "
            "FROM v) "
            f"SELECT *, {target} AS target FROM b"
        )
        con.execute("DROP TABLE ls_walk_in")
        # The stage after an event is the running maximum of the targets (automatic
        # moves only go forwards), so what is asked of it is per owner, without a
        # second window: the final stage is the largest target, entered at the first
        # event that has it; a stage s is entered when the first event whose target
        # reaches s has exactly s (else it was skipped), at that event, once at most.
        key = "{'ts': ts, 'id': id}"
        entries = "".join(
            f", arg_min({{'ts': ts, 'id': id, 'target': target}}, {key}) "
            f"FILTER (WHERE target >= {stage}) AS e{index}"
            for index, stage in self.entered.items()
        )
        manual: list[str] = []
        if c.has_stages:
            con.execute(
                "CREATE OR REPLACE TEMP TABLE ls_stages AS SELECT owner, ident, max(target) "
                f"AS stage, arg_min({key}, {{'target': -target, 'ts': ts, 'id': id}}) "
                f"AS entered{entries} FROM ls_walk ANTI JOIN ls_manual USING (owner, ident) "
                "GROUP BY ALL"
            )
            manual = self._manual(con)
        ids = [literal(t.id) for t in c.triggers]
        parts = [
            f"SELECT {ids[index]} AS trigger, owner, e{index}.id AS id, e{index}.ts AS ts "
            f"FROM ls_stages WHERE ident AND e{index}.target = {stage}"
            for index, stage in self.entered.items()
        ] + manual
        if self.trigger_sql:
            once = [index for index in self.trigger_sql if c.triggers[index].once]
            fired = ", ".join(
                f"CASE WHEN {sql} THEN {index} END" for index, sql in self.trigger_sql.items()
            )
            parts.append(
                f"SELECT [{', '.join(ids)}][trigger + 1], owner, id, ts FROM ("
                f"SELECT owner, ts, id, trigger FROM (SELECT owner, ts, id, [{fired}] AS fired "
                "FROM ls_walk WHERE ident AND "
                f"({' OR '.join(self.trigger_sql.values())})), "
                "unnest(list_filter(fired, lambda x: x IS NOT NULL)) AS u(trigger)) "
                + (
                    f"QUALIFY trigger NOT IN ({', '.join(map(str, once))}) OR "
                    "row_number() OVER (PARTITION BY owner, trigger ORDER BY ts, id) = 1"
                    if once
                    else ""
                )
            )
        firings: list[tuple[str, str, str, int]] = []
        if parts:
            rows = con.execute(" UNION ALL ".join(parts)).fetchall()
            firings = [(trigger, owner, event_id, ts) for trigger, owner, event_id, ts in rows]
        if c.has_stages:
            scale = scale_sql(c, f"a.ts - {at}")
            rules = ", ".join(
                f"({rule.index}, {rule.points}, {'TRUE' if rule.decays else 'FALSE'})"
                for rule in c.rules
            )
            amounts = (
                "SELECT a.owner, a.ident, a.ts, a.id, "
                f"r.points * CASE WHEN r.decays THEN {scale} ELSE 1.0::DOUBLE END AS amount "
                f"FROM ls_awards a JOIN (VALUES {rules}) r(rule, points, decays) USING (rule)"
                if rules
                else "SELECT owner, ident, ts, id, 0.0::DOUBLE AS amount FROM ls_awards"
            )
            con.execute(
                "CREATE OR REPLACE TEMP TABLE ls_walked AS SELECT * FROM ("
                f"WITH a AS ({amounts}) "
                "SELECT e.ident, e.owner, e.stage, e.entered.ts, "
                "coalesce(sum(a.amount), 0.0::DOUBLE) FROM ls_stages e LEFT JOIN a "
                "ON a.owner = e.owner AND a.ident = e.ident AND "
                "(a.ts > e.entered.ts OR (a.ts = e.entered.ts AND a.id > e.entered.id)) "
                "GROUP BY ALL"
                ") w(ident, owner, stage, entered_at, raw)"
            )
        con.execute("DROP TABLE IF EXISTS ls_manual_walk")
        con.execute("DROP TABLE ls_walk")
        return firings

    def _manual(self, con: duckdb.DuckDBPyConnection) -> list[str]:
        """Stages of the owners of ls_manual (those with a stage_set), added to ls_stages;
        the SELECTs of their `stage_entered` firings.

        A known stage_set puts the owner in its stage, forwards or backwards, and
        automatic moves go on from there: the stage after an event is the running
        maximum of the targets since the last such stage_set (from stage 0 before
        the first), that stage_set's stage included. A stage is entered where the
        stage differs from the one before (at the first event, from none), as the
        pure engine's triggers see it, so a stage may be entered more than once.
        """
        win = "PARTITION BY owner, ident ORDER BY ts, id"
        rows = "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW"
        con.execute(
            "CREATE OR REPLACE TEMP TABLE ls_manual_walk AS "
            "WITH m AS (SELECT owner, ident, ts, id, target, set_to, "
            f"count(*) FILTER (WHERE set_to >= 0) OVER ({win} {rows}) AS segment "
            "FROM ls_walk SEMI JOIN ls_manual USING (owner, ident)), "
            "s AS (SELECT owner, ident, ts, id, max(greatest(coalesce(set_to, 0), target)) "
            f"OVER (PARTITION BY owner, ident, segment ORDER BY ts, id {rows}) AS stage FROM m) "
            f"SELECT *, stage IS DISTINCT FROM lag(stage) OVER ({win}) AS entered FROM s"
        )
        key = "{'ts': ts, 'id': id}"
        con.execute(
            "INSERT INTO ls_stages (owner, ident, stage, entered) "
            f"SELECT owner, ident, arg_max(stage, {key}), arg_max({key}, {key}) "
            "FILTER (WHERE entered) FROM ls_manual_walk GROUP BY ALL"
        )
        ids = [literal(t.id) for t in self.c.triggers]
        parts = []
        for index, stage in self.entered.items():
            once = (
                " QUALIFY row_number() OVER (PARTITION BY owner ORDER BY ts, id) = 1"
                if self.c.triggers[index].once
                else ""
            )
            parts.append(
                f"SELECT {ids[index]} AS trigger, owner, id, ts FROM ls_manual_walk "
                f"WHERE ident AND entered AND stage = {stage}{once}"
            )
        return parts

    def award_sums(self, at: int) -> str:
        """SELECT of each event's award sums: decaying (scaled to `at`) and flat, per tag."""
        c = self.c
        scale = scale_sql(c, f"a.ts - {at}")
        rules = ", ".join(
            f"({rule.index}, {rule.points}, {'TRUE' if rule.decays else 'FALSE'}, "
            f"[{', '.join(map(literal, rule.tags))}]::VARCHAR[])"
            for rule in c.rules
        )
        named = (
            "CASE WHEN a.tagf IS NULL OR list_contains(r.tags, a.tagf) THEN r.tags "
            "ELSE list_append(r.tags, a.tagf) END"
        )
        amount = {
            "dec": f"CASE WHEN r.decays THEN r.points * {scale} ELSE 0.0 END",
            "flat": "CASE WHEN r.decays THEN 0.0 ELSE r.points END",
        }
        parts = [f"sum({amount[kind]})::DOUBLE AS {kind}" for kind in self.kinds]
        for tag, g in self.tag_column.items():
            has = f"list_contains({named}, {literal(tag)})"
            parts += [
                f"sum(CASE WHEN {has} THEN {amount[kind]} ELSE 0.0 END)::DOUBLE AS {g}_{kind}"
                for kind in self.kinds
            ]
        if not rules:  # no award at all
            return "SELECT id FROM ls_awards a"
        return (
            f"SELECT a.id, {', '.join(parts)} FROM ls_awards a "
            f"JOIN (VALUES {rules}) r(rule, points, decays, tags) USING (rule) GROUP BY a.id"
        )
