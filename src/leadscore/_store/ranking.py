"""Contacts filtered and ranked as of an instant, from the owner rows'
columns: the API's list (`GET /v1/contacts`, its CSV export), and the leads
list and the reports of the web app, fast enough for a page.

Decoding every contact's whole stored state (JSON) to build its scorecard
would take seconds for a list of 50,000 contacts. A row of the active model
version already holds, in columns, everything the list needs: the
engagement score as of T is clamp(decaying · 2^(-(T - ref)/H) + flat),
computed here with the same operations in the same order as
`Engine.scorecard`, so the score, the band and the order are exactly the
scorecard's. Rows the active version did not make (a model was activated
and the contact not rescored yet), and rows whose last event is after the
instant, go through `reads.state_as_of` like every other read. The whole
scorecards of the contacts shown (a page, or an export) are then built from
their states (`contacts.cards`).

The tag filter needs the state's tag sums: SQL keeps only the rows whose
state text contains the tag, and those are decoded. The search looks in the
contact id and the rows' search column (their text traits, owners.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal, NamedTuple

import sqlalchemy as sa

from .._engine import ContactState, report
from .database import column_json, transaction
from .owners import Stored
from .reads import state_as_of
from .tables import assignments, contact_tags, events, owners
from .workspaces import ModelVersion

_MICROS_PER_DAY = 86_400_000_000

Sort = Literal["score", "fit", "recency"]

# A group of contacts a report counts: (band, grade, stage, ageing bucket,
# score bin, converted).
Group = tuple[str | None, str | None, str | None, int, int, bool]


class Ranked(NamedTuple):
    """What a list shows of a contact as of the instant asked. A tuple whose
    first two fields are the list's order (highest first, then by contact
    id): tens of thousands of them sort without a key function."""

    order: float  # the sort key negated: -score, -fit or -last_event_at
    contact_id: str
    score: float  # as reported: 2 decimals
    fit: int
    grade: str | None
    stage: str | None
    last_event_at: int
    value: float  # the clamped score before rounding, which decides the band
    band: str | None = None  # filled in by `with_bands`, for the rows shown


def with_bands(model: ModelVersion, items: Iterable[Ranked]) -> list[Ranked]:
    band_of = model.engine.compiled.band_of
    return [item._replace(band=band_of(item.value)) for item in items]


def ranked(
    conn: sa.Connection,
    *,
    workspace: str,
    model: ModelVersion,
    at: int,
    band: str | None = None,
    grade: str | None = None,
    stage: str | None = None,
    tag_score: str | None = None,
    tag: str | None = None,
    owner: str | None = None,
    search: str | None = None,
    score_min: float | None = None,
    score_max: float | None = None,
    updated_since: int | None = None,
    sort: Sort = "score",
) -> list[Ranked]:
    """The identified contacts that pass the filters, highest `sort` first
    (score, fit or last event), ties by contact id in code point order.
    `tag_score` keeps contacts some award of which named the tag; `tag`,
    those an `add_tag` action labelled with it; `owner`, those an `assign`
    action gave to that owner; `search` matches the contact id or any text
    trait, case-insensitively; `score_min` and `score_max` bound the
    reported score (both included); `updated_since` keeps contacts whose
    last event (as of `at`) is at or after it."""
    if _impossible(band, grade, stage, tag_score, tag, owner, search):
        return []
    engine = model.engine
    compiled = engine.compiled
    current = owners.c.model_version == model.version
    columns: list[Any] = [
        owners.c.key, owners.c.model_version, owners.c.ref, owners.c.decaying, owners.c.flat,
        owners.c.fit, owners.c.grade, owners.c.stage, owners.c.last_event_at,
    ]  # fmt: skip
    # The tag filter reads tag sums from the state; the search, the search
    # column (rows written before it existed: their state, read one by one).
    decode = tag_score is not None
    columns.append(owners.c.state if decode else sa.null())
    columns.append(owners.c.search)
    query = sa.select(*columns).where(owners.c.workspace == workspace, owners.c.identified)
    if grade is not None:
        query = query.where(sa.or_(~current, owners.c.grade == grade))
    if stage is not None:
        query = query.where(sa.or_(~current, owners.c.stage == stage))
    if updated_since is not None:
        # A stale row's last event as of `at` is at most the stored one, so
        # this rules out only rows that cannot pass.
        query = query.where(owners.c.last_event_at >= updated_since)
    if search is not None:
        pattern = f"%{_escape(search.lower())}%"
        by_key: sa.ColumnElement[bool] = sa.func.lower(owners.c.key).like(pattern, escape="\\")
        if conn.dialect.name == "sqlite":
            # SQLite's lower() and LIKE fold ASCII letters only: "über" missed
            # the id "Über-Kunde" there. An ASCII id folds as in Python; one
            # with other characters is kept for the check below (key.lower()).
            by_key = sa.or_(by_key, owners.c.key.op("GLOB")("*[^\x01-\x7f]*"))
        query = query.where(
            sa.or_(
                by_key,
                owners.c.search.like(pattern, escape="\\"),
                # Rows from before the search column: checked below, from
                # their states. (Not here: naming `state` in this query would
                # make it read the rows instead of the ranking index.)
                owners.c.search.is_(None),
            )
        )
    if tag_score is not None:
        # The tag as the state's text spells it (a JSON string, quotes and
        # escapes included), not lowered: SQLite's lower() leaves letters
        # past ASCII as they are, so a lowered pattern missed "Über" there.
        # LIKE on SQLite ignores ASCII case, which only lets more rows through.
        # Rows of another version are kept, as for grade and stage: their
        # tags are the old model's, and they are read from their logs below.
        spelt = _escape(column_json(tag_score))
        state_text = sa.cast(owners.c.state, sa.Text)
        query = query.where(sa.or_(~current, state_text.like(f"%{spelt}%", escape="\\")))
    if tag is not None:
        query = query.where(
            owners.c.key.in_(
                sa.select(contact_tags.c.contact_id).where(
                    contact_tags.c.workspace == workspace, contact_tags.c.tag == tag
                )
            )
        )
    if owner is not None:
        query = query.where(
            owners.c.key.in_(
                sa.select(assignments.c.contact_id).where(
                    assignments.c.workspace == workspace, assignments.c.owner == owner
                )
            )
        )
    half_life = compiled.half_life_micros
    needle = None if search is None else search.lower()
    version = model.version
    clamp = compiled.clamp
    low, high = _interval(compiled.bands, band)
    found: list[Ranked] = []
    with transaction(conn):
        # Rows unpacked as tuples, the band checked as a score interval, the
        # result sorted as tuples: at tens of thousands of rows, each Python
        # call per row is a measurable share of a page's time.
        for row in conn.execute(query).all():
            key, row_version, ref, decaying, flat, fit, row_grade, row_stage, last = row[:9]
            state = ContactState.from_json(row[9]) if decode else None
            found_text: str | None = row[10]
            if needle is not None and found_text is None and state is None:
                state = ContactState.from_json(_state(conn, workspace, key))
            if row_version != version or last > at:
                if state is None:
                    state = ContactState.from_json(_state(conn, workspace, key))
                state = state_as_of(
                    conn, workspace, model, (True, key), Stored(state, row_version), at=at
                )
                if state is None:
                    continue
                ref, decaying, flat, fit = state.ref, state.decaying, state.flat, state.fit
                row_grade = compiled.grade_of(fit)
                row_stage = None if state.stage is None else compiled.stage_names[state.stage]
                last = state.last_timestamp or 0
            if tag_score is not None and state is not None and tag_score not in state.tags:
                continue
            if needle is not None and not (
                needle in key.lower()
                or (
                    any(needle in line for line in found_text.split("\n"))
                    if found_text is not None and row_version == version
                    else state is not None and matches(key, state.traits, needle)
                )
            ):
                continue
            # Engine.scorecard's arithmetic, step for step.
            factor = 1.0 if half_life is None else 2.0 ** (-(at - ref) / half_life)
            value = clamp(decaying * factor + flat)
            if (
                (low is None or value >= low)
                and (high is None or value < high)
                and (grade is None or row_grade == grade)
                and (stage is None or row_stage == stage)
            ):
                score = report(value)
                if (
                    (score_min is None or score >= score_min)
                    and (score_max is None or score <= score_max)
                    and (updated_since is None or last >= updated_since)
                ):
                    order = -score if sort == "score" else -float(fit if sort == "fit" else last)
                    found.append(Ranked(order, key, score, fit, row_grade, row_stage, last, value))
    found.sort()
    return found


_NOWHERE = (float("inf"), None)


def _impossible(*filters: str | None) -> bool:
    """Whether a text filter holds U+0000: no stored text does (ids refuse it,
    names come from models), so nothing passes, and PostgreSQL refuses it in
    any text it is sent (the web app's list answered a 500 page)."""
    return any(text is not None and "\x00" in text for text in filters)


def _interval(
    bands: list[tuple[str, float | None]], band: str | None
) -> tuple[float | None, float | None]:
    """The scores in a band, [low, high): bands are listed with strictly
    decreasing floors (the loader checks it), so a score is in the first band
    whose floor it reaches (CompiledModel.band_of), that is below the floor of
    the band before. A band the model does not have holds no score."""
    if band is None:
        return (None, None)
    names = [name for name, _ in bands]
    if band not in names:
        return _NOWHERE
    index = names.index(band)
    return (bands[index][1], bands[index - 1][1] if index else None)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _state(conn: sa.Connection, workspace: str, key: str) -> Any:
    return conn.execute(
        sa.select(owners.c.state).where(
            owners.c.workspace == workspace, owners.c.identified, owners.c.key == key
        )
    ).scalar_one()


def matches(contact_id: str, traits: dict[str, Any], needle: str) -> bool:
    """The search: in the contact id, or in a trait's text (name, e-mail, company...)."""
    return needle in contact_id.lower() or any(
        isinstance(value, str) and needle in value.lower() for value in traits.values()
    )


def traits(
    conn: sa.Connection, *, workspace: str, keys: Iterable[str]
) -> dict[str, dict[str, Any]]:
    """The stored traits of some contacts (the page of a list being shown)."""
    wanted = list(keys)
    if not wanted:
        return {}
    with transaction(conn):
        rows = conn.execute(
            sa.select(owners.c.key, owners.c.state).where(
                owners.c.workspace == workspace, owners.c.identified, owners.c.key.in_(wanted)
            )
        ).all()
    return {row.key: dict(row.state.get("traits", {})) for row in rows}


def page(
    conn: sa.Connection,
    *,
    workspace: str,
    model: ModelVersion,
    at: int,
    offset: int,
    limit: int,
    band: str | None = None,
    grade: str | None = None,
    stage: str | None = None,
) -> tuple[int, list[Ranked]] | None:
    """One page of `ranked` and the number of contacts it pages through, with
    the score computed, filtered, sorted and paged in SQL: a page costs a scan
    of the ranking index, not a row per contact in Python.

    The SQL computes Engine.scorecard's expression with the same operations
    (a C `pow` in both databases, as in Python), rounds to 2 decimals for the
    order and breaks ties by contact id in code point order. None when SQL
    cannot answer alone: some contact's row is not of the active version (a
    model was just activated) or has an event after `at`; then `ranked`
    answers, reading those contacts' logs.
    """
    if _impossible(band, grade, stage):
        return 0, []
    compiled = model.engine.compiled
    mine = sa.and_(owners.c.workspace == workspace, owners.c.identified)
    with transaction(conn):
        if _stale(conn, mine, model, at):
            return None
        value = _value(model, at)
        conditions = [mine]
        low, high = _interval(compiled.bands, band)
        if low is not None:
            conditions.append(value >= low)
        if high is not None:
            conditions.append(value < high)
        if grade is not None:
            conditions.append(owners.c.grade == grade)
        if stage is not None:
            conditions.append(owners.c.stage == stage)
        rounded, key = _order(conn, value)
        total = conn.execute(
            sa.select(sa.func.count()).select_from(owners).where(*conditions)
        ).scalar_one()
        rows = conn.execute(
            sa.select(
                owners.c.key,
                owners.c.fit,
                owners.c.grade,
                owners.c.stage,
                owners.c.last_event_at,
                value,
            )
            .where(*conditions)
            .order_by(rounded.desc(), key)
            .offset(offset)
            .limit(limit)
        ).all()
    found = []
    for contact_id, fit, row_grade, row_stage, last, raw in rows:
        score = report(float(raw))
        found.append(Ranked(-score, contact_id, score, fit, row_grade, row_stage, last, float(raw)))
    return int(total), found


def _stale(conn: sa.Connection, mine: sa.ColumnElement[bool], model: ModelVersion, at: int) -> bool:
    """Whether some contact's row cannot answer for `at` under `model`."""
    count = conn.execute(
        sa.select(sa.func.count())
        .select_from(owners)
        .where(mine, sa.or_(owners.c.model_version != model.version, owners.c.last_event_at > at))
    ).scalar_one()
    return bool(count)


def _value(model: ModelVersion, at: int) -> sa.ColumnElement[float]:
    """The clamped score as of `at`, in SQL: Engine.scorecard's expression."""
    compiled = model.engine.compiled
    half_life = compiled.half_life_micros
    decayed: sa.ColumnElement[float] = owners.c.decaying
    if half_life is not None:
        exponent = (owners.c.ref - at) / sa.literal(half_life, sa.Double)
        decayed = owners.c.decaying * sa.func.power(sa.literal(2.0, sa.Double), exponent)
    value: sa.ColumnElement[float] = decayed + owners.c.flat
    cases = []
    if compiled.clamp_min is not None:
        cases.append((value < compiled.clamp_min, sa.literal(float(compiled.clamp_min))))
    if compiled.clamp_max is not None:
        cases.append((value > compiled.clamp_max, sa.literal(float(compiled.clamp_max))))
    return sa.case(*cases, else_=value) if cases else value


def _order(
    conn: sa.Connection, value: sa.ColumnElement[float]
) -> tuple[sa.ColumnElement[Any], sa.ColumnElement[str]]:
    """The list's order in SQL: the score rounded to 2 decimals, then the
    contact id in code point order (PostgreSQL's "C" collation)."""
    postgresql = conn.dialect.name == "postgresql"
    rounded = sa.func.round(sa.cast(value, sa.Numeric) if postgresql else value, 2)
    return rounded, owners.c.key.collate("C") if postgresql else owners.c.key


def _index(whens: list[tuple[sa.ColumnElement[bool], int]], none: int) -> sa.ColumnElement[int]:
    """The index of the first of `whens` that holds, else `none`. Bands,
    grades and stages are optional: with no WHEN, "CASE ELSE n END" is a
    syntax error in both databases, so it is the number itself."""
    if not whens:
        return sa.literal(none, sa.Integer)
    return sa.case(*whens, else_=none)


def tallies(
    conn: sa.Connection,
    *,
    workspace: str,
    model: ModelVersion,
    at: int,
    outcome: str | None,
    age_limits: Sequence[float | None],
    points: int,
) -> dict[Group, tuple[int, float]] | None:
    """The reports' tallies (see _web.analysis.Tallies) in SQL: contacts
    counted by band, grade, stage, ageing bucket (the first of `age_limits`,
    in days since the last event, that holds; None holds always), whole
    point of their reported score (0 below 0, floor + 1 up to `points` + 1)
    and whether they have an event of the `outcome` type, with their scores
    summed. One GROUP BY over the ranking index. None when some row is not
    current (see `page`)."""
    compiled = model.engine.compiled
    mine = sa.and_(owners.c.workspace == workspace, owners.c.identified)
    with transaction(conn):
        if _stale(conn, mine, model, at):
            return None
        value = _value(model, at)
        rounded, key = _order(conn, value)
        if outcome is None:
            won: sa.ColumnElement[bool] = sa.false()
        else:
            # IN (a list built once) rather than EXISTS (a lookup per
            # contact): a third of the time on SQLite.
            won = owners.c.key.in_(
                sa.select(events.c.contact_id).where(
                    events.c.workspace == workspace, events.c.type == outcome
                )
            )
        # Each contact's score computed once: without MATERIALIZED, SQLite
        # substitutes the expression into every CASE below (some fifteen
        # evaluations per contact).
        scored = (
            sa.select(
                key.label("key"),
                owners.c.grade,
                owners.c.stage,
                owners.c.last_event_at,
                value.label("value"),
                rounded.label("rounded"),
                sa.case((won, 1), else_=0).label("won"),
            )
            .where(mine)
            .cte("scored")
            .prefix_with("MATERIALIZED")
        )
        # Each contact's group as one integer (band, grade, stage, age, point,
        # converted, in mixed radix): SQLite sorts to GROUP BY, and sorting
        # integers costs half of sorting three text columns.
        bands = [name for name, _ in compiled.bands]
        grades = [name for name, _ in compiled.grades]
        stages = list(compiled.stage_names)
        band = _index(
            [
                (sa.true() if floor is None else scored.c.value >= floor, i)
                for i, (_, floor) in enumerate(compiled.bands)
            ],
            len(bands),
        )
        grade = _index([(scored.c.grade == name, i) for i, name in enumerate(grades)], len(grades))
        stage = _index([(scored.c.stage == name, i) for i, name in enumerate(stages)], len(stages))
        days = (at - scored.c.last_event_at) / sa.literal(float(_MICROS_PER_DAY), sa.Double)
        limits = [(days <= limit, i) for i, limit in enumerate(age_limits) if limit is not None]
        age = sa.case(*limits, else_=len(age_limits) - 1)
        point = sa.case(
            (scored.c.rounded < 0, 0),
            (scored.c.rounded >= points, points + 1),
            else_=sa.cast(sa.func.floor(scored.c.rounded), sa.Integer) + 1,
        )
        radix = (len(grades) + 1, len(stages) + 1, len(age_limits), points + 2, 2)
        code: sa.ColumnElement[int] = band
        for base, part in zip(radix, (grade, stage, age, point, scored.c.won), strict=True):
            code = code * base + part
        rows = conn.execute(
            sa.select(code, sa.func.count(), sa.func.sum(scored.c.rounded)).group_by(code)
        ).all()
    groups: dict[Group, tuple[int, float]] = {}
    names = (bands, grades, stages)
    for number, count, total in rows:
        digits = []
        rest = int(number)
        for base in reversed(radix):
            rest, digit = divmod(rest, base)
            digits.append(digit)
        converted, point_index, age_index, stage_index, grade_index = digits
        band_name, grade_name, stage_name = (
            known[index] if index < len(known) else None
            for known, index in zip(names, (rest, grade_index, stage_index), strict=True)
        )
        group = (band_name, grade_name, stage_name, age_index, point_index, bool(converted))
        groups[group] = (int(count), float(total or 0))
    return groups
