"""Model activation on the batch engine: every owner's engine state for a
whole workspace, set-at-a-time on DuckDB, instead of a replay per owner.

An activation must leave each owner with the state the pure engine's replay
of its log gives (`ContactState`: what later live events continue from), not
only its scorecard. The batch engine (leadscore._batch) computes the
scorecards and firings; the tables it leaves on its DuckDB connection give
the rest, a few grouped queries more:

- `ls_owned` (each event with its owner) gives the first event, whose
  instant is the reference instant `ref` of the decaying sums, and the last
  event (`last_timestamp`, `last_id`);
- `ls_awards` (one row per award, limits applied) gives the sums: decaying
  terms p·2^((t-ref)/H) and flat points, overall and per tag, and for the
  stage sums the awards after the event that entered the current stage (the
  pure engine empties them on entry, after that event's own awards);
  without stages the stage sums are never emptied, so they are the totals;
- `limits`: per limited rule, the calendar period of its last award and how
  many awards it made in that period (what the engine counts, capped at
  `times` because a capped match is never counted);
- the scorecards give the stage and when it was entered; the firings give
  the `once` triggers already fired.

Traits are merged in Python, over the identify events only, with the
engine's own merge (their insertion order is the search text's); fit is the
scorecard's (the batch engine's fit rules over the traits merged in SQL).

Two kinds of owners are left to the pure engine, which the caller replays
from their logs: those whose span is over the engine's rebase distance (64
half-lives, see _engine.py: their `ref` moved along the way, which a sum
cannot know without walking) and those whose stage was entered at an
instant shared by several of their events while one of those events
awarded points (which of them entered is not in the scorecard). Both are
rare: 64 half-lives are years for any usual half-life, and timestamps are
mostly distinct.

Sums are added in another order than the replay's, so the floats may differ
in the last bits, as the batch engine's scores do; the thresholds' 1e-9
tolerance (spec 2.3) absorbs that, and reported values are rounded to cents.

Concurrency: the events are read up to a mark (`seq`), every event at or
below it committed (PostgreSQL: the mark is taken under a SHARE lock on the
events table, which waits for the writers in flight and is released at
once; SQLite has one writer at a time, so its order of `seq` is the order of
commits). The caller writes a computed state under the owner's lock, only
if no event above the mark touched the owner (`changed`): an owner whose log
grew since is replayed from its log instead.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .._batch.plan import BatchPlan, Input, period_case
from .._batch.sql import literal
from .._batch.walk import scale_sql
from .._engine import REBASE_HALF_LIVES, ContactState, Engine, Firing, merge_traits
from .._replay import Owner
from .database import reader
from .log import loads
from .tables import events

# Events read from SQLite per Arrow batch (a range of seq): enough that the
# per-batch work is negligible, small enough that a batch of event bodies
# stays a few MB (the generator's bodies average 170 bytes).
_RANGE = 65_536

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa


@dataclass(slots=True)
class Computed:
    """What the batch engine gave for a workspace's log up to `mark`."""

    mark: int  # every event with seq <= mark was read; none above
    states: dict[Owner, ContactState] = field(default_factory=dict)
    firings: dict[str, list[Firing]] = field(default_factory=dict)  # by contact id
    linked: dict[str, list[str]] = field(default_factory=dict)  # contact -> anonymous ids won
    replay: set[Owner] = field(default_factory=set)  # left to the pure engine

    def changed(self, conn: sa.Connection, workspace: str, wanted: Iterable[Owner]) -> set[Owner]:
        """The owners among `wanted` whose log an event above the mark touched.

        Called under the owners' locks: a writer inserts its events before
        taking the locks and commits after, so every event that touches
        them is visible now, or will be applied by its writer after ours.
        An event touches its contact; an anonymous-only one the id's
        profile and the contact the id was linked to; a link, the profile
        and contact it takes the id's events from, and the one it gives
        them to (the event's own contact).
        """
        owners = set(wanted)
        if not owners:
            return set()
        contacts = {key for identified, key in owners if identified}
        profiles = {key for identified, key in owners if not identified}
        linked_to: dict[str, str] = {}
        for contact in contacts:
            for anonymous in self.linked.get(contact, ()):
                linked_to[anonymous] = contact
        # The events above the mark (those that arrived during the activation)
        # by the primary key's range, and the owners picked out here. With the
        # workspace or the ids in the condition SQLite's planner walks an index
        # of the workspace's whole log instead, so on SQLite (one machine's
        # few workspaces) every workspace's are read; PostgreSQL's planner
        # takes the range with the workspace's condition too.
        query = sa.select(events.c.workspace, events.c.contact_id, events.c.anonymous_id).where(
            events.c.seq > self.mark
        )
        if conn.dialect.name == "postgresql":
            query = query.where(events.c.workspace == workspace)
        rows = conn.execute(query)
        found: set[Owner] = set()
        for at, contact, anonymous in rows:
            if at != workspace:
                continue
            if contact in contacts:
                found.add((True, contact))
            if anonymous is not None:
                if anonymous in profiles:
                    found.add((False, anonymous))
                if anonymous in linked_to:
                    found.add((True, linked_to[anonymous]))
        return found


def compute(
    conn: sa.Connection,
    workspace: str,
    engine: Engine,
    *,
    keep_alive: Callable[[], None] = lambda: None,
) -> Computed:
    """Every owner's state and firings for the workspace's log, on DuckDB.

    `conn` has no transaction open; `keep_alive` is called between phases
    (the activation renews its lease there).
    """
    import duckdb

    if conn.in_transaction():
        raise ValueError("compute reads in transactions of its own: pass a connection with none")
    with ExitStack() as stack:
        con = stack.enter_context(duckdb.connect())
        spill = stack.enter_context(tempfile.TemporaryDirectory(prefix="leadscore-activation-"))
        con.execute(f"SET temp_directory = {literal(spill)}")
        # A reader: on SQLite its transactions do not take the write lock,
        # so ingestion goes on while the log is read.
        with reader(conn.engine) as source:
            mark = _mark(source, workspace)
            if source.dialect.name == "postgresql":
                _read_postgresql(source.engine, con, workspace, mark)
            else:
                with source.begin():
                    _read_sqlite(source, con, workspace, mark)
        keep_alive()
        return _states(con, engine, mark, keep_alive)


def _mark(conn: sa.Connection, workspace: str) -> int:
    with conn.begin():
        if conn.dialect.name == "postgresql":
            # Waits for every writer in flight (they hold ROW EXCLUSIVE from
            # their insert to their commit, and take their seq inside it);
            # writers after it get a higher seq. Held for one statement.
            conn.execute(sa.text("LOCK TABLE events IN SHARE MODE"))
        # The primary key walked backwards (max() with the workspace condition
        # would scan the table on SQLite).
        found = conn.execute(
            sa.select(events.c.seq)
            .where(events.c.workspace == workspace)
            .order_by(events.c.seq.desc())
            .limit(1)
        ).scalar()
    return 0 if found is None else int(found)


def _read_sqlite(
    conn: sa.Connection, con: duckdb.DuckDBPyConnection, workspace: str, mark: int
) -> None:
    """The events' seq, timestamp and body (DuckDB takes the other fields out of the
    body) as Arrow columns, made without a Python object per row: for each range of
    seq, SQLite concatenates the bodies into one blob and writes each row's seq,
    timestamp and body length (bytes) as a line of CSV; Arrow parses the CSV and
    makes the body column of the blob and the lengths' running sums. Fetched row by
    row, the driver's Python objects (and the collector's scans of them) made the
    whole read of a million events, DuckDB's parse included, 2.5-2.8 s of CPU
    instead of 1.2-1.4.

    Not through ADBC's SQLite driver, which would make no Python objects: it
    links a SQLite library of its own, and two copies of SQLite in one process
    break each other's POSIX locks on the file (closing one's descriptor
    drops the other's locks; sqlite.org's "How To Corrupt An SQLite Database
    File", 2.2.1); in a test it read a workspace's log as empty.
    """
    import pyarrow as pa

    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        # A blob of a text is its bytes in the database's encoding: UTF-8, as
        # the store makes its files, is Arrow's; another is read row by row.
        (encoding,) = cursor.execute("PRAGMA encoding").fetchone()
        if encoding != "UTF-8":
            batches = _rows_sqlite(cursor, workspace, mark)
        else:
            batches = []
            low, step = 0, _RANGE
            while low < mark:
                high = min(low + step, mark)
                try:
                    batch = _range_sqlite(cursor, workspace, low, high)
                except sqlite3.DataError:  # over SQLite's longest string: shorter ranges
                    if step == 1:
                        raise
                    step //= 2
                    continue
                if batch is not None:
                    batches.append(batch)
                low = high
    finally:
        cursor.close()
    _canonical(con, pa.Table.from_batches(batches, schema=_stored_schema()))


def _stored_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema([("seq", pa.int64()), ("timestamp", pa.int64()), ("body", pa.string())])


def _range_sqlite(cursor: Any, workspace: str, low: int, high: int) -> pa.RecordBatch | None:
    """The workspace's events with low < seq <= high, as one Arrow batch (None if none).

    NOT INDEXED: the rowid's range, in the file's order. With the workspace's
    condition SQLite walks ix_events_type instead and fetches each row from
    wherever it lies, three times slower. Another workspace's rows in the
    range are read and dropped: a SQLite file serves one machine, with few
    workspaces. Both aggregates take the rows in the same order, so the nth
    line of CSV is the nth body of the blob.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv

    bodies, lines = cursor.execute(
        "SELECT CAST(group_concat(body, '') AS BLOB), CAST(group_concat(seq || ',' || "
        "timestamp || ',' || length(CAST(body AS BLOB)), char(10)) AS BLOB) "
        "FROM events NOT INDEXED WHERE workspace = ? AND seq > ? AND seq <= ?",
        (workspace, low, high),
    ).fetchone()
    if bodies is None:
        return None
    types = {"seq": pa.int64(), "timestamp": pa.int64(), "length": pa.int32()}
    rows = csv.read_csv(
        pa.py_buffer(lines),
        read_options=csv.ReadOptions(column_names=list(types)),
        convert_options=csv.ConvertOptions(column_types=types),
    ).combine_chunks()
    lengths = rows.column("length").chunk(0)
    # int32 offsets: a range's blob is under SQLite's longest string (1e9 bytes at most).
    offsets = pc.cumulative_sum(pa.concat_arrays([pa.array([0], pa.int32()), lengths]))
    body = pa.StringArray.from_buffers(len(lengths), offsets.buffers()[1], pa.py_buffer(bodies))
    body.validate(full=True)  # the offsets within the blob, and each body UTF-8
    return pa.record_batch(
        [rows.column("seq").chunk(0), rows.column("timestamp").chunk(0), body],
        schema=_stored_schema(),
    )


def _rows_sqlite(cursor: Any, workspace: str, mark: int) -> list[pa.RecordBatch]:
    """The events row by row through the driver (its Python objects), for a database
    in UTF-16, whose blobs Arrow cannot take as text."""
    import pyarrow as pa

    schema = _stored_schema()
    cursor.execute(
        "SELECT seq, timestamp, body FROM events NOT INDEXED WHERE workspace = ? AND seq <= ?",
        (workspace, mark),
    )
    batches = []
    while rows := cursor.fetchmany(_RANGE):
        columns = zip(*rows, strict=True)
        arrays = [pa.array(values, f.type) for values, f in zip(columns, schema, strict=True)]
        batches.append(pa.record_batch(arrays, schema=schema))
    return batches


def _read_postgresql(
    database: sa.Engine, con: duckdb.DuckDBPyConnection, workspace: str, mark: int
) -> None:
    """The events as Arrow columns from ADBC's PostgreSQL driver (libpq, binary
    COPY): no Python object per value, where psycopg's COPY in CSV and DuckDB's
    CSV reader took three times as long or more. DuckDB's postgres extension
    would be downloaded at run time. A connection of its own: every event up
    to the mark is committed (see _mark), so any transaction sees them all."""
    import adbc_driver_postgresql.dbapi as adbc

    # libpq's URI: the same server, user and options (search_path in the tests).
    uri = database.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with adbc.connect(uri) as source, source.cursor() as cursor:
        cursor.execute(
            "SELECT seq, timestamp, body FROM events WHERE workspace = $1 AND seq <= $2",
            (workspace, mark),
        )
        table = cursor.fetch_arrow_table()
    _canonical(con, table)


def _canonical(con: duckdb.DuckDBPyConnection, rows: pa.Table) -> None:
    """ls_store, the batch engine's canonical columns (plan.Input), from the stored rows
    (seq, timestamp, body); ls_identify, the bodies of identify events with traits, for
    the merge in Python.

    A body is the canonical JSON of a valid event (log.encode): properties are
    left out when empty, traits are kept on identify events only.
    """
    con.register("ls_store_arrow", rows)
    # Each body parsed once: the fields taken out of it in two lists (the
    # operators ->> and json_extract on the text would parse it once each).
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ls_store AS SELECT seq, f[1] AS id, f[2] AS type, "
        "f[3] AS contact_id, f[4] AS anonymous_id, timestamp AS ts, "
        "coalesce(j[1], '{}'::JSON) AS properties, "
        "CASE WHEN f[2] = 'identify' THEN j[2] END AS traits FROM (SELECT seq, timestamp, "
        "json_extract_string(body, ['$.id', '$.type', '$.contact_id', '$.anonymous_id']) AS f, "
        "json_extract(body, ['$.properties', '$.traits']) AS j FROM ls_store_arrow)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ls_identify AS SELECT s.id, a.body FROM ls_store s "
        "JOIN ls_store_arrow a USING (seq) "
        "WHERE s.type = 'identify' AND json_type(s.traits) = 'OBJECT'"
    )
    con.unregister("ls_store_arrow")


def _states(
    con: duckdb.DuckDBPyConnection, engine: Engine, mark: int, keep_alive: Callable[[], None]
) -> Computed:
    c = engine.compiled
    computed = Computed(mark)
    span = con.execute("SELECT max(ts) FROM ls_store").fetchone()
    if span is None or span[0] is None:
        return computed
    at = int(span[0])
    plan = BatchPlan(engine)
    result = plan.run(con, Input("ls_store"), at, progress=lambda _: keep_alive())
    keep_alive()
    # Identity links as the batch engine made them (plan.run's ls_links).
    for anonymous, contact in con.execute("SELECT anonymous_id, linked FROM ls_links").fetchall():
        computed.linked.setdefault(contact, []).append(anonymous)

    rules = ", ".join(
        f"({rule.index}, {rule.points}, {'TRUE' if rule.decays else 'FALSE'})" for rule in c.rules
    )
    half_life = c.half_life_micros
    scale = scale_sql(c, "a.ts - h.ref")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ls_heads AS SELECT owner, ident, min(ts) AS ref, "
        "max(ts) AS last_ts, arg_max(id, {'ts': ts, 'id': id}) AS last_id "
        "FROM ls_owned GROUP BY ALL"
    )
    # Each award's term as the engine adds it: scaled to the owner's first event.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ls_terms AS SELECT a.owner, a.ident, a.ts, a.id, a.rule, "
        "a.tagf, r.decays, CASE WHEN r.decays THEN r.points * " + scale + " "
        "ELSE r.points::DOUBLE END AS amount FROM ls_awards a "
        + (
            f"JOIN (VALUES {rules}) r(rule, points, decays) USING (rule) "
            if rules
            else "JOIN (SELECT 0 AS rule, 0 AS points, FALSE AS decays WHERE FALSE) r USING (rule) "
        )
        + "JOIN ls_heads h USING (owner, ident)"
    )
    sums = (
        "coalesce(sum(amount) FILTER (WHERE decays), 0.0::DOUBLE), "
        "coalesce(sum(amount) FILTER (WHERE NOT decays), 0.0::DOUBLE)"
    )
    totals = {
        (ident, owner): (decaying, flat)
        for owner, ident, decaying, flat in con.execute(
            f"SELECT owner, ident, {sums} FROM ls_terms GROUP BY ALL"
        ).fetchall()
    }
    tags = _tags(con, engine, sums)
    limits = _limits(con, engine)
    traits = _traits(con)
    keep_alive()

    # Stages: the scorecards say which and since when; the sums restart after that event.
    cards = {(card.contact_id is not None, card.contact_id or card.anonymous_id or ""): card
             for card in [*result.scorecards, *result.anonymous]}  # fmt: skip
    stage_sums: dict[Owner, tuple[float, float]] = {}
    if c.has_stages:
        stage_sums = _stage_sums(con, cards, sums, computed.replay)

    once = {trigger.id: trigger.index for trigger in c.triggers if trigger.once}
    fired: dict[str, set[int]] = {}
    for firing in result.firings:
        computed.firings.setdefault(firing.contact_id, []).append(firing)
        if firing.trigger in once:
            fired.setdefault(firing.contact_id, set()).add(once[firing.trigger])

    rebase = REBASE_HALF_LIVES * half_life if half_life is not None else None
    for owner, ident, ref, last_ts, last_id in con.execute("SELECT * FROM ls_heads").fetchall():
        key: Owner = (bool(ident), str(owner))
        if key in computed.replay:
            continue
        if rebase is not None and last_ts - ref > rebase:
            computed.replay.add(key)  # rebased on the way: the pure engine's walk
            continue
        decaying, flat = totals.get(key, (0.0, 0.0))
        merged = traits.get(key)
        state = ContactState(
            last_timestamp=int(last_ts),
            last_id=str(last_id),
            ref=int(ref),
            decaying=decaying,
            flat=flat,
            tags=tags.get(key, {}),
            stage_decaying=decaying,
            stage_flat=flat,
            traits=merged if merged is not None else {},
            fit=cards[key].fit,
            limits=limits.get(key, {}),
            fired=fired.get(str(owner), set()) if ident else set(),
        )
        if c.has_stages:
            card = cards[key]
            assert card.stage is not None  # the first event enters the first stage
            state.stage = c.stage_index[card.stage]
            state.stage_entered_at = card.stage_entered_at
            state.stage_decaying, state.stage_flat = stage_sums.get(key, (0.0, 0.0))
        computed.states[key] = state
    return computed


def _tags(
    con: duckdb.DuckDBPyConnection, engine: Engine, sums: str
) -> dict[Owner, dict[str, list[float]]]:
    """Per owner, each tag an award named: [decaying, flat] (the rule's tags, and its
    tag_from text unless the rule names it already)."""
    c = engine.compiled
    rule_tags = ", ".join(
        f"({rule.index}, {literal(tag)})" for rule in c.rules for tag in rule.tags
    )
    parts = []
    if rule_tags:
        parts.append(
            "SELECT t.owner, t.ident, rt.tag, t.amount, t.decays FROM ls_terms t "
            f"JOIN (VALUES {rule_tags}) rt(rule, tag) USING (rule)"
        )
    parts.append(
        "SELECT t.owner, t.ident, t.tagf AS tag, t.amount, t.decays FROM ls_terms t "
        + (
            f"ANTI JOIN (VALUES {rule_tags}) rt(rule, tag) ON t.rule = rt.rule AND t.tagf = rt.tag "
            if rule_tags
            else ""
        )
        + "WHERE t.tagf IS NOT NULL"
    )
    found: dict[Owner, dict[str, list[float]]] = {}
    query = f"SELECT owner, ident, tag, {sums} FROM ({' UNION ALL '.join(parts)}) GROUP BY ALL"
    for owner, ident, tag, decaying, flat in con.execute(query).fetchall():
        found.setdefault((bool(ident), str(owner)), {})[str(tag)] = [decaying, flat]
    return found


def _limits(
    con: duckdb.DuckDBPyConnection, engine: Engine
) -> dict[Owner, dict[int, tuple[int, int]]]:
    """Per owner, each limited rule that awarded: (its last award's period, awards in it)."""
    c = engine.compiled
    limited = [rule for rule in c.rules if rule.limit_per is not None]
    if not limited:
        return {}
    period = period_case(con, c)
    listed = ", ".join(str(rule.index) for rule in limited)
    # The batch engine's period numbers are not the pure engine's (both only
    # grow with time): they group the awards; the state's number is
    # period_of the last award.
    query = (
        f"WITH x AS (SELECT owner, ident, rule, ts, {period} AS p FROM ls_awards "
        f"WHERE rule IN ({listed})), "
        "m AS (SELECT owner, ident, rule, max(p) AS p, max(ts) AS last FROM x GROUP BY ALL) "
        "SELECT owner, ident, rule, any_value(m.last), any_value(m.p), count(*) FROM x JOIN m "
        "USING (owner, ident, rule, p) GROUP BY ALL"
    )
    per = {rule.index: rule.limit_per or "ever" for rule in limited}
    # One period_of per rule and batch period, not per owner: the instants of
    # one period all have the same number.
    numbers: dict[tuple[int, int], int] = {}
    found: dict[Owner, dict[int, tuple[int, int]]] = {}
    for owner, ident, rule, last, batch_period, count in con.execute(query).fetchall():
        index = int(rule)
        number = numbers.get((index, batch_period))
        if number is None:
            number = numbers[(index, batch_period)] = c.period_of(per[index], int(last))
        found.setdefault((bool(ident), str(owner)), {})[index] = (number, int(count))
    return found


def _traits(con: duckdb.DuckDBPyConnection) -> dict[Owner, dict[str, Any]]:
    """Per owner with an identify event with traits: the traits merged in event order,
    each from the stored body as the store decodes it."""
    found: dict[Owner, dict[str, Any]] = {}
    rows = con.execute(
        "SELECT o.owner, o.ident, i.body FROM ls_owned o JOIN ls_identify i USING (id) "
        "ORDER BY o.ident, o.owner, o.ts, o.id"
    ).fetchall()
    for owner, ident, body in rows:
        merged = found.setdefault((bool(ident), str(owner)), {})
        # The store's own decoder: orjson alone makes an integer past 64 bits
        # a float, without an error.
        merge_traits(merged, loads(body)["traits"])
    return found


def _stage_sums(
    con: duckdb.DuckDBPyConnection,
    cards: dict[Owner, Any],
    sums: str,
    replay: set[Owner],
) -> dict[Owner, tuple[float, float]]:
    """The stage sums: the awards after the event that entered the stage. When several
    of the owner's events share that instant and one of them awarded, which one entered
    decides: such owners go to `replay`."""
    import pyarrow as pa

    entered = [
        (owner, ident, card.stage_entered_at)
        for (ident, owner), card in cards.items()
        if card.stage_entered_at is not None
    ]
    con.register(
        "ls_entries_arrow",
        pa.table(
            {
                "owner": pa.array([row[0] for row in entered], pa.string()),
                "ident": pa.array([row[1] for row in entered], pa.bool_()),
                "entered": pa.array([row[2] for row in entered], pa.int64()),
            }
        ),
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE ls_entries AS SELECT e.owner, e.ident, e.entered, "
        "count(*) AS n, max(o.id) AS id FROM ls_entries_arrow e JOIN ls_owned o "
        "ON o.owner = e.owner AND o.ident = e.ident AND o.ts = e.entered GROUP BY ALL"
    )
    con.unregister("ls_entries_arrow")
    for owner, ident in con.execute(
        "SELECT DISTINCT e.owner, e.ident FROM ls_entries e JOIN ls_terms t "
        "USING (owner, ident) WHERE e.n > 1 AND t.ts = e.entered"
    ).fetchall():
        replay.add((bool(ident), str(owner)))
    found: dict[Owner, tuple[float, float]] = {}
    for owner, ident, decaying, flat in con.execute(
        f"SELECT t.owner, t.ident, {sums} FROM ls_terms t JOIN ls_entries e USING (owner, ident) "
        "WHERE t.ts > e.entered OR (t.ts = e.entered AND t.id > e.id) GROUP BY ALL"
    ).fetchall():
        found[(bool(ident), str(owner))] = (decaying, flat)
    return found
