"""Statements of the ingestion path, run on the driver's own cursor.

SQLAlchemy's execution layer costs far more than the databases take to run
the short statements ingestion is made of: a select by primary key took
36-38 µs through `Connection.execute` against 4 µs on the sqlite3 cursor
(in one process on the development machine), and 64-71 µs with an
expanding `IN`. A single tracked event runs about ten such statements (the
key check, the active model, the event's insert, its owners' states read
and written, its identity link...), so that layer was most of the CPU a
call spent outside the HTTP stack (docs/benchmarks.md, issue 3).

A `Prepared` statement is still written in SQLAlchemy Core and compiled by
SQLAlchemy, once per dialect; its parameters and rows go through the bind
and result processors of its columns' types, as SQLAlchemy would apply
them (JSON serialized with the engine's serializer, SQLite's booleans...).
What it leaves out is the per-execution machinery: the execution context,
the events, the result object. It runs in the SQLAlchemy connection's
transaction, begun as `execute` would begin it (on SQLite that begin takes
the write lock, see database.py), and a driver error is raised as
SQLAlchemy raises it (IntegrityError, OperationalError...), which is what
callers tell a refused event from a failing database by.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler

_Processor = Callable[[Any], Any] | None

# The most renderings of a statement's IN lists kept (one per combination of
# list lengths; batches of up to a thousand events make at most that many).
_MOST_EXPANDED = 1_024


class _Expanded(NamedTuple):
    sql: str
    names: tuple[str, ...]
    expansion: dict[str, list[str]]  # an IN list's name: the names of its items
    processed: tuple[tuple[str, Callable[[Any], Any]], ...]


class _Form:
    """A statement compiled for one dialect, with its processors."""

    def __init__(self, statement: sa.Executable, dialect: Dialect) -> None:
        assert isinstance(statement, sa.ClauseElement)
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.compiled = compiled
        self.sql = compiled.string
        self.positional = dialect.positional
        self.names = tuple(compiled.positiontup or ())
        # An expanding IN's SQL depends on its list's length: rendered by
        # SQLAlchemy's own public step, once per combination of lengths.
        self.expanding = tuple(compiled.bind_names[bind] for bind in compiled.post_compile_params)
        self.expanded: dict[tuple[int, ...], _Expanded] = {}
        binds = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in compiled.binds.items()
        }
        # Only the parameters whose type converts them (JSON, SQLite's booleans...).
        self.processed = _processed(binds)
        # The values written into the statement (a LIMIT, SQLite's OFFSET 0 beside
        # it), which SQLAlchemy binds as parameters of their own.
        self.fixed = {
            compiled.bind_names[bind]: bind.effective_value
            for bind in compiled.binds.values()
            if not bind.required and bind.callable is None
        }
        columns = getattr(statement, "exported_columns", ())
        results = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        # Only the columns whose type converts them (JSON on SQLite, booleans...).
        self.results = tuple(
            (index, processor) for index, processor in enumerate(results) if processor is not None
        )
        self.error = dialect.loaded_dbapi.Error

    def parameters(self, values: Mapping[str, Any]) -> tuple[str, Any]:
        """The SQL and the driver's parameters for one set of values."""
        sql, names, processed = self.sql, self.names, self.processed
        if self.fixed:
            values = {**self.fixed, **values}
        if self.expanding:
            lengths = tuple(len(values[name]) for name in self.expanding)
            expanded = self.expanded.get(lengths)
            if expanded is None:
                expanded = self._expand(lengths, values)
            sql, names, processed = expanded.sql, expanded.names, expanded.processed
            flat = dict(values)
            for name, each in expanded.expansion.items():
                flat.update(zip(each, flat.pop(name), strict=True))
            values = flat
        if processed:
            values = dict(values)
            for name, processor in processed:
                if name in values:
                    values[name] = processor(values[name])
        if self.positional:
            return sql, tuple(values[name] for name in names)
        return sql, values

    def _expand(self, lengths: tuple[int, ...], values: Mapping[str, Any]) -> _Expanded:
        state = self.compiled.construct_expanded_state(dict(values))
        expanded = _Expanded(
            state.statement,
            tuple(state.positiontup or ()),
            {name: list(each) for name, each in state.parameter_expansion.items()},
            (*self.processed, *_processed(state.processors)),
        )
        if len(self.expanded) >= _MOST_EXPANDED:  # bounded: lengths vary with batches
            self.expanded.clear()
        self.expanded[lengths] = expanded
        return expanded

    def rows(self, raw: list[Any]) -> list[tuple[Any, ...]]:
        if not self.results:
            return [tuple(row) for row in raw]
        found = []
        for row in raw:
            values = list(row)
            for index, processor in self.results:
                values[index] = processor(values[index])
            found.append(tuple(values))
        return found


def _processed(binds: Mapping[str, _Processor]) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    return tuple((name, processor) for name, processor in binds.items() if processor is not None)


class Prepared:
    """A Core statement compiled once per dialect and run on the driver's cursor."""

    def __init__(self, statement: sa.Executable) -> None:
        self.statement = statement
        self._forms: dict[str, _Form] = {}

    def _form(self, conn: sa.Connection) -> _Form:
        dialect = conn.dialect
        form = self._forms.get(dialect.name)
        if form is None:
            form = self._forms[dialect.name] = _Form(self.statement, dialect)
        return form

    def rows(self, conn: sa.Connection, values: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run it with `values`; the rows it returns (none for a statement
        without results)."""
        form = self._form(conn)
        sql, parameters = form.parameters(values)
        cursor = _cursor(conn)
        try:
            cursor.execute(sql, parameters)
            found = cursor.fetchall() if cursor.description is not None else []
        except form.error as error:
            raise _wrapped(sql, parameters, error, form) from error
        finally:
            cursor.close()
        return form.rows(found)

    def run_many(self, conn: sa.Connection, values: Sequence[Mapping[str, Any]]) -> None:
        """Run it once per set of values (an executemany: no results)."""
        if not values:
            return
        form = self._form(conn)
        assert not form.expanding, "an executemany cannot expand IN lists"
        prepared = [form.parameters(one)[1] for one in values]
        cursor = _cursor(conn)
        try:
            cursor.executemany(form.sql, prepared)
        except form.error as error:
            raise _wrapped(form.sql, prepared, error, form) from error
        finally:
            cursor.close()


def run_text(conn: sa.Connection, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
    """A statement written in the dialect's own SQL (one SQLAlchemy cannot
    compile once, such as a VALUES list of any length), run as `Prepared.rows`
    runs its own: in the connection's transaction, a driver error raised as
    SQLAlchemy's; the rows it returns, unprocessed."""
    cursor = _cursor(conn)
    try:
        cursor.execute(sql, parameters)
        return cursor.fetchall() if cursor.description is not None else []
    except conn.dialect.loaded_dbapi.Error as error:
        raise sa.exc.DBAPIError.instance(
            sql, parameters, error, conn.dialect.loaded_dbapi.Error
        ) from error
    finally:
        cursor.close()


def _cursor(conn: sa.Connection) -> Any:
    # Always in a transaction SQLAlchemy has begun, as its own `execute`
    # would begin one (and leave it open): on SQLite, that begin is what
    # takes the write lock (database.py), and outside a transaction the
    # driver would commit each statement on its own.
    if not conn.in_transaction():
        conn.begin()
    return conn.connection.cursor()


def _wrapped(sql: str, parameters: Any, error: Exception, form: _Form) -> BaseException:
    return sa.exc.DBAPIError.instance(sql, parameters, error, form.error)
