"""The batch engine on Apache Spark: the spec's global steps set-based, owners by the pure engine.

Spark runs what is global and set-based in the spec (section 1):

1. Reading and checking: every record becomes an event in the executors by
   the pure engine's own readers (`parse_event`, the Parquet/JSON column
   conversions), so a bad record gets the message the pure engine gives it.
2. Duplicates: the first copy received of each id is kept (a window over the
   id, in arrival order); later copies that differ are reported.
3. The `at` cut-off, then identity: per anonymous id, the first link in
   (timestamp, id) order (`min` of a struct; Spark compares strings by UTF-8
   bytes, which is code point order, as Python compares them), and each
   anonymous event routed to its linked contact.

Then each owner's events, partitioned by owner and sorted by (timestamp, id)
within the partition, are scored in the executors by `Engine.prepare` and
`Engine.run`, exactly as :func:`leadscore._replay.score_groups` does: the
engine is shared, so the numbers are the pure engine's to the bit. Only the
scorecards, firings and warnings come back to the driver.

The per-owner step uses the RDD API (`mapPartitions`), not `mapInArrow` or
`applyInPandas`: those need pandas in PySpark 4, a large dependency for the
handful of rows an owner has. So it runs on classic Spark, not Spark Connect.

Arrival order, for "first copy received": the order of an iterable or of a
DataFrame's partitions; for files, the files in path order, then the records
in each (Spark reports each split's offset in the file, and records within a
split stay in order).
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from .._engine import Engine, Firing, RunWarning, Scorecard
from .._errors import EventError, InputError
from .._eventfiles import BadRecord, Unit, instant_text, jsonl_event, row_event
from .._events import FIELDS, Event
from .._jsonexact import dumps_sorted
from .._jsonexact import loads as exact_loads
from .._model import Model
from .._replay import Result

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# The checked events: arrival order (file, offset of the split in the file,
# position), the event's fields (JSON text for properties and traits), and
# the fault of a bad record. A row without id and fault is no record (a blank line).
_CHECKED = (
    "file string, block long, pos long, id string, type string, contact_id string, "
    "anonymous_id string, ts long, properties string, traits string, "
    "fault_field string, fault_message string"
)
_T = TypeVar("_T")
_JSON_TEXT = frozenset({"properties", "traits"})
_WARNING_DIFFERS = "a later copy of this event differs; the first copy is kept"

EventInput = Iterable[Event] | str | Sequence[str] | Any  # or a Spark DataFrame


def spark_session() -> SparkSession:
    """The active SparkSession, or a new one (local[*] outside spark-submit).

    The executors run leadscore in Python: locally, the driver's interpreter
    (PYSPARK_PYTHON unset means `python3` on PATH, which may lack leadscore).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise InputError("the Spark engine needs pyspark: pip install 'leadscore[spark]'") from None
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return SparkSession.builder.appName("leadscore").getOrCreate()


def score_spark(
    model: Model | Engine,
    events: EventInput,
    *,
    at: int,
    spark: SparkSession | None = None,
    format: str | None = None,
    strict: bool = False,
    on_bad: Callable[[BadRecord], None] | None = None,
) -> Result:
    """Score `events` as of `at` on Spark: what :func:`leadscore.replay` gives.

    `events` is an iterable of :class:`~leadscore.Event`, a Spark DataFrame
    with the event columns, or a path or glob (or a list of them) of Parquet
    or JSON Lines files, read by Spark's readers, so any path Spark reads
    (`s3a://bucket/events/*.parquet`, `hdfs://...`) works. `format`
    ("parquet" or "jsonl") is needed when the names do not end so. Bad
    records go to `on_bad` and are skipped; `strict` raises
    :class:`~leadscore.InputError` at the first. Runs on `spark`, else the
    active session or a new local one.
    """
    session = spark if spark is not None else spark_session()
    compiled = model if isinstance(model, Engine) else Engine(model)
    checked = _checked(session, events, format)
    return score_parts(session, [(compiled.model, at, checked)], on_bad=on_bad, strict=strict)[0]


def score_parts(
    spark: SparkSession,
    parts: Sequence[tuple[Model, int, DataFrame]],
    *,
    on_bad: Callable[[BadRecord], None] | None = None,
    strict: bool = False,
) -> list[Result]:
    """Score several (model, as-of time, checked events) in the same Spark jobs.

    Each part is scored on its own, as if alone; sharing the jobs saves
    Spark's per-job start-up (seconds) when the parts are small, as in the
    tests that run every conformance case at once.
    """
    from pyspark.sql import functions as F

    frames = [frame.withColumn("part", F.lit(index)) for index, (_, _, frame) in enumerate(parts)]
    checked = frames[0]
    for frame in frames[1:]:
        checked = checked.unionByName(frame)
    checked = checked.persist()
    try:
        _report(checked, on_bad, strict)
        return _score(checked, [(model, at) for model, at, _ in parts])
    finally:
        checked.unpersist()


def checked_events(
    spark: SparkSession, events: EventInput, *, format: str | None = None
) -> DataFrame:
    """`events` read and checked, as :func:`score_parts` takes them."""
    return _checked(spark, events, format)


# Reading


def _checked(spark: SparkSession, events: EventInput, format: str | None) -> DataFrame:
    from pyspark.sql import DataFrame

    if isinstance(events, DataFrame):
        return _check_rows(_columns(events, "<dataframe>"), spark)
    if isinstance(events, str | os.PathLike) or (
        isinstance(events, Sequence) and events and all(isinstance(e, str) for e in events)
    ):
        paths = [os.fspath(events)] if isinstance(events, str | os.PathLike) else list(events)
        return _read_files(spark, paths, format)
    rows = [_event_row(index, event) for index, event in enumerate(events)]
    return spark.createDataFrame(rows, _CHECKED, verifySchema=False)


def _event_row(index: int, event: Event) -> tuple[Any, ...]:
    return (
        "",
        0,
        index,
        event.id,
        event.type,
        event.contact_id,
        event.anonymous_id,
        event.timestamp,
        _json(event.properties),
        None if event.traits is None else _json(event.traits),
        None,
        None,
    )


def _json(value: Any) -> str:
    return dumps_sorted(value)  # an integer past 64 bits, which orjson refuses, exactly


def _read_files(spark: SparkSession, paths: list[str], format: str | None) -> DataFrame:
    from pyspark.sql import functions as F

    if format is not None and format not in ("jsonl", "parquet"):
        raise InputError(f"the Spark engine reads parquet or jsonl events, not {format}")
    if "-" in paths:
        raise InputError("the Spark engine reads files, not standard input ('-')")
    kinds = {format or _kind(path) for path in paths}
    if len(kinds) != 1:
        raise InputError(
            f"the Spark engine reads one format at a time; got {', '.join(sorted(kinds))}"
        )
    kind = kinds.pop()
    where = [
        F.col("_metadata.file_path").alias("file"),
        F.col("_metadata.file_block_start").alias("block"),
        F.monotonically_increasing_id().alias("pos"),
    ]
    try:
        if kind == "jsonl":
            lines = spark.read.text(paths).select(*where, F.col("value").alias("line"))
            return _check_lines(lines, spark)
        frame = spark.read.parquet(*paths)
    except Exception as exc:
        if type(exc).__name__ == "AnalysisException":
            raise InputError(f"cannot read {', '.join(paths)}: {exc}") from None
        raise
    return _check_rows(_columns(frame.select(*where, "*"), ", ".join(paths)), spark)


def _kind(path: str) -> str:
    name = path.lower().rstrip("/")
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    if name.endswith(".parquet") or not name.rpartition("/")[2].count("."):
        return "parquet"  # a directory of Parquet files, as Spark writes them
    raise InputError(
        f"{path}: the Spark engine reads Parquet or JSON Lines (.parquet, .jsonl); "
        "name the format with --input-format"
    )


def _columns(frame: DataFrame, source: str) -> DataFrame:
    """The event columns as text: JSON for properties/traits, µs for timestamps."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    kinds = {field.name: field.dataType for field in frame.schema.fields}
    unknown = [
        name for name in kinds if name not in FIELDS and name not in ("file", "block", "pos")
    ]
    if unknown:
        raise InputError(f"{source}: unknown column {unknown[0]}; expected {', '.join(FIELDS)}")
    for required in ("id", "type", "timestamp"):
        if required not in kinds:
            raise InputError(f"{source}: column {required} is missing")
    if "file" not in kinds:
        frame = frame.select(
            F.lit("").alias("file"),
            F.lit(0).cast("long").alias("block"),
            F.monotonically_increasing_id().alias("pos"),
            "*",
        )
    picked = [F.col("file"), F.col("block"), F.col("pos")]
    for name in FIELDS:
        kind = kinds.get(name)
        if kind is None:
            picked.append(F.lit(None).cast("string").alias(name))
        elif isinstance(kind, T.StringType):
            picked.append(F.col(name))
        elif name == "timestamp" and isinstance(kind, T.TimestampType):
            picked.append(F.unix_micros(F.col(name)).cast("string").alias(name))
        elif name in _JSON_TEXT and isinstance(kind, T.StructType | T.MapType):
            picked.append(F.to_json(F.col(name)).alias(name))
        else:
            expected = {
                "timestamp": "RFC 3339 strings or a timestamp with time zone",
                "properties": "JSON text, a struct or a map with string keys",
                "traits": "JSON text, a struct or a map with string keys",
            }.get(name, "strings")
            raise InputError(
                f"{source}: column {name} is {kind.simpleString()}; expected {expected}"
            )
    micros = isinstance(kinds["timestamp"], T.TimestampType)
    return frame.select(*picked).withColumn("micros", F.lit(micros))


def _check_rows(frame: DataFrame, spark: SparkSession) -> DataFrame:
    def check(rows: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
        for row in rows:
            cells: list[object] = [row[name] for name in FIELDS]
            if row["micros"] and cells[4] is not None:
                cells[4] = instant_text(int(str(cells[4])), 1)
            yield _outcome(row, _row_event_of, cells)

    return spark.createDataFrame(frame.rdd.mapPartitions(check), _CHECKED, verifySchema=False)


def _check_lines(frame: DataFrame, spark: SparkSession) -> DataFrame:
    def check(rows: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
        for row in rows:
            yield _outcome(row, jsonl_event, row["line"].encode())

    return spark.createDataFrame(frame.rdd.mapPartitions(check), _CHECKED, verifySchema=False)


def _row_event_of(cells: list[object]) -> Event:
    return row_event(FIELDS, cells, json_text=_JSON_TEXT)


def _outcome(row: Any, convert: Callable[[_T], Event | None], record: _T) -> tuple[Any, ...]:
    """The checked row of one record: its event, its fault, or nothing (a blank line)."""
    where = (row["file"], row["block"], row["pos"])
    try:
        event = convert(record)
    except EventError as exc:
        return (*where, *[None] * 7, exc.field, exc.message)
    if event is None:
        return (*where, *[None] * 9)
    return (*where, *_event_row(0, event)[3:])


def _report(checked: DataFrame, on_bad: Callable[[BadRecord], None] | None, strict: bool) -> None:
    """Report bad records with their file and line (row) number, in arrival order."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    bad = checked.filter(F.col("fault_message").isNotNull())
    if not bad.take(1):
        return
    number = F.row_number().over(Window.partitionBy("part", "file").orderBy("block", "pos"))
    numbered = checked.select(
        "file", "block", "pos", number.alias("line"), "fault_field", "fault_message"
    )
    rows = (
        numbered.filter(F.col("fault_message").isNotNull())
        .orderBy("file", "block", "pos")
        .collect()
    )
    for row in rows:
        source = _local(row["file"]) or "<input>"
        unit: Unit = "line" if source.endswith((".jsonl", ".ndjson")) else "row"
        record = BadRecord(source, row["line"], row["fault_field"], row["fault_message"], unit)
        if on_bad is not None:
            on_bad(record)
        if strict:
            raise InputError(f"{record} (strict: stopping at the first bad record)")


def _local(uri: str) -> str:
    """A local file's path as the user wrote it (Spark reports file: URIs)."""
    if uri.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return unquote(urlparse(uri).path)
    return uri


# Scoring


def _score(checked: DataFrame, parts: list[tuple[Model, int]]) -> list[Result]:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    events = checked.filter(F.col("id").isNotNull() & F.col("fault_message").isNull())
    arrival = Window.partitionBy("part", "id").orderBy("file", "block", "pos")
    content = F.struct("type", "contact_id", "anonymous_id", "ts", "properties", "traits")
    copies = events.select(
        "*",
        F.row_number().over(arrival).alias("copy"),
        F.first(content).over(arrival).alias("first"),
    )
    differing = copies.filter((F.col("copy") > 1) & ~content.eqNullSafe(F.col("first")))
    warnings: list[list[RunWarning]] = [[] for _ in parts]
    for row in differing.orderBy("file", "block", "pos").select("part", "id").collect():
        warnings[row["part"]].append(RunWarning(row["id"], _WARNING_DIFFERS))
    # Events after `at` do not exist for any purpose, links included.
    cut = F.lit(None).cast("long")
    for index, (_, at) in enumerate(parts):
        cut = F.when(F.col("part") == index, F.lit(at)).otherwise(cut)
    kept = copies.filter((F.col("copy") == 1) & (F.col("ts") <= cut)).drop("copy", "first")
    links = (
        kept.filter(F.col("anonymous_id").isNotNull() & F.col("contact_id").isNotNull())
        .groupBy("part", "anonymous_id")
        .agg(F.min(F.struct("ts", "id", "contact_id")).contact_id.alias("linked"))
    )
    owned = (
        kept.join(links, on=["part", "anonymous_id"], how="left")
        .select(
            "*",
            (F.col("contact_id").isNotNull() | F.col("linked").isNotNull()).alias("identified"),
            F.coalesce("contact_id", "linked", "anonymous_id").alias("owner"),
        )
        .repartition("part", "owner", "identified")
        .sortWithinPartitions("part", "owner", "identified", "ts", "id")
    )
    scored: list[list[_Scored]] = [[] for _ in parts]
    for blob in owned.rdd.mapPartitions(_owners_scorer(parts)).collect():
        part, *rest = pickle.loads(blob)
        scored[part].append(tuple(rest))
    return [
        _result(sorted(owners, key=lambda owner: owner[1]), found)
        for owners, found in zip(scored, warnings, strict=True)
    ]


_Scored = tuple[bool, str, Scorecard, list[Firing], list[RunWarning]]


def _owners_scorer(
    parts: list[tuple[Model, int]],
) -> Callable[[Iterable[Any]], Iterator[bytes]]:
    """Score each owner of a partition (rows sorted by part and owner, then (timestamp, id))."""

    def score(rows: Iterable[Any]) -> Iterator[bytes]:
        engines: dict[int, Engine] = {}
        owner: tuple[int, bool, str] | None = None
        history: list[Event] = []
        for row in rows:
            this = (row["part"], row["identified"], row["owner"])
            if this != owner:
                if owner is not None:
                    yield _scored(engines, parts, owner, history)
                owner, history = this, []
            history.append(
                Event(
                    id=row["id"],
                    type=row["type"],
                    timestamp=row["ts"],
                    contact_id=row["contact_id"],
                    anonymous_id=row["anonymous_id"],
                    # Integers past 64 bits exact, as the pure engine reads them.
                    properties=exact_loads(row["properties"]),
                    traits=None if row["traits"] is None else exact_loads(row["traits"]),
                )
            )
        if owner is not None:
            yield _scored(engines, parts, owner, history)

    return score


def _scored(
    engines: dict[int, Engine],
    parts: list[tuple[Model, int]],
    owner: tuple[int, bool, str],
    history: list[Event],
) -> bytes:
    part, identified, key = owner
    model, at = parts[part]
    engine = engines.get(part)
    if engine is None:
        engine = engines[part] = Engine(model)
    contact = key if identified else None
    state, step = engine.run((engine.prepare(event) for event in history), contact_id=contact)
    card = engine.scorecard(state, at, contact_id=contact, anonymous_id=None if identified else key)
    return pickle.dumps((part, identified, key, card, step.firings, step.warnings))


def _result(owners: list[_Scored], warnings: list[RunWarning]) -> Result:
    cards: list[Scorecard] = []
    anonymous: list[Scorecard] = []
    result = Result(scorecards=cards, anonymous=anonymous, warnings=warnings)
    for identified, _, card, firings, run_warnings in owners:
        (cards if identified else anonymous).append(card)
        result.firings += firings
        result.warnings += run_warnings
    result.firings.sort(key=lambda firing: firing.order_key)
    return result
