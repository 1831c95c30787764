"""`leadscore score --engine duckdb`: the batch engine behind the score command.

Kept apart from `_cli` so that the command line's own module only chooses
the engine; reading, progress and the Parquet writer of the batch engine
live here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from typing import IO, Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .._eventfiles import BadRecord
from .._model import Model
from .._replay import Result
from .cards import Cards, postgresql_csv, scorecard_schema
from .io import EventSource, EventTable, score_batch

_TABLE_DATABASES = ("postgresql://", "postgres://")


def source_of(inputs: Sequence[str]) -> EventSource:
    """EVENTS of the command line: files and globs, or one table as DATABASE#TABLE.

    DATABASE is a DuckDB file (`warehouse.duckdb#events`) or a PostgreSQL URL
    (`postgresql://user@host/db#public.events`).
    """
    tables = [text for text in inputs if "#" in text and _is_table(text)]
    if not tables:
        return list(inputs)
    if len(inputs) > 1:
        raise ValueError("a table (DATABASE#TABLE) is read alone, without other inputs")
    database, _, name = tables[0].rpartition("#")
    return EventTable(name, database=database)


def _is_table(text: str) -> bool:
    database = text.rpartition("#")[0]
    return database.startswith(_TABLE_DATABASES) or database.endswith((".duckdb", ".db"))


def score_with_duckdb(
    model: Model,
    inputs: Sequence[str],
    at: int,
    *,
    input_format: str | None,
    strict: bool,
    on_bad: Callable[[BadRecord], None],
    console: Console,
) -> Result:
    """Score on DuckDB, with the phase shown on a terminal (nothing when not one)."""
    with ExitStack() as stack:
        progress: Callable[[str], None] | None = None
        if console.is_terminal:
            bar = stack.enter_context(
                Progress(
                    SpinnerColumn(),
                    TextColumn("duckdb: {task.description}"),
                    TimeElapsedColumn(),
                    console=console,
                    transient=True,
                )
            )
            task = bar.add_task("starting", total=None)

            def progress(phase: str) -> None:
                bar.update(task, description=phase)

        return score_batch(
            model,
            source_of(inputs),
            at=at,
            format=input_format,
            strict=strict,
            on_bad=on_bad,
            progress=progress,
        )


def write_parquet(items: Iterable[Any], out: IO[bytes]) -> int:
    """Scorecards or firings as Parquet: the JSON Lines fields as columns.

    Timestamps stay RFC 3339 text in UTC, as in the JSON Lines output, and
    `tag_scores` is a map from tag to score; so each row reads back to the
    very object `--format jsonl` prints.
    """
    import pyarrow.parquet as pq

    table = to_arrow(items)
    pq.write_table(table, out)
    return int(table.num_rows)


def is_table(target: str) -> bool:
    """An output named DATABASE#TABLE (a DuckDB file or a PostgreSQL URL)."""
    return "#" in target and _is_table(target)


def write_table(items: Iterable[Any], target: str, *, scorecards: bool) -> int:
    """Write scorecards or firings to DATABASE#TABLE, replacing the table.

    DuckDB: the Arrow table of :func:`to_arrow` as a table (tag_scores a MAP).
    PostgreSQL: a table of text, numbers and jsonb tag_scores, filled with COPY.
    """
    table = to_arrow(items, scorecards=scorecards)
    database, _, name = target.rpartition("#")
    if database.startswith(_TABLE_DATABASES):
        _write_postgresql(table, database, name, scorecards=scorecards)
    else:
        import duckdb

        with duckdb.connect(database) as con:
            con.register("ls_output", table)
            con.execute(f"CREATE OR REPLACE TABLE {_quoted(name)} AS SELECT * FROM ls_output")
    return int(table.num_rows)


def _write_postgresql(table: Any, url: str, name: str, *, scorecards: bool) -> None:
    import psycopg
    from psycopg import sql

    parts = sql.SQL(".").join(sql.Identifier(part) for part in name.split("."))
    numbers = {"score": "double precision", "fit": "bigint", "stage_score": "double precision"}
    columns = [
        (field.name, "jsonb" if field.name == "tag_scores" else numbers.get(field.name, "text"))
        for field in table.schema
    ]
    definition = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL(kind)) for column, kind in columns
    )
    with psycopg.connect(url) as pg:
        pg.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(parts))
        pg.execute(sql.SQL("CREATE TABLE {} ({})").format(parts, definition))
        # CSV made from the columns (no Python object per row); NULL is an empty
        # field, text always quoted, so an empty text stays text.
        query = sql.SQL("COPY {} FROM STDIN (FORMAT csv)").format(parts)
        with pg.cursor().copy(query) as copy:
            for chunk in postgresql_csv(table):
                copy.write(chunk)


def _quoted(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def to_arrow(items: Iterable[Any], *, scorecards: bool | None = None) -> Any:
    """Scorecards or firings as an Arrow table of their JSON Lines fields.

    Scorecards held as columns (:class:`Cards`) give their table as it is;
    others are converted object by object.
    """
    import pyarrow as pa

    if isinstance(items, Cards):
        return items.to_arrow()
    rows = [item.to_json() for item in items]
    if scorecards is None:
        scorecards = bool(rows) and "tag_scores" in rows[0]
    if scorecards:
        for row in rows:
            row.setdefault("anonymous_id", None)
            row["tag_scores"] = list(row["tag_scores"].items())
        schema = scorecard_schema()
    else:
        schema = pa.schema(
            [(name, pa.string()) for name in ("trigger", "contact_id", "event_id", "timestamp")]
        )
    return pa.Table.from_pylist(rows, schema=schema)
