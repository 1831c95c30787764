"""Where the batch engine's events come from, checked as the pure engine checks them.

Event files (Parquet, CSV, JSON Lines, JSON arrays, gzipped text, globs), a
table of a DuckDB database, a PostgreSQL table, an Arrow table or any
iterable of :class:`~leadscore.Event` become one DuckDB table, `ls_checked`,
read by DuckDB's own readers (no Python per event). Every record is checked
in SQL with the rules of :func:`leadscore._events.parse_event`: the first
fault of a record names its field, as the pure engine's message does, and
bad records are reported through `on_bad` and left out; `strict` raises at
the first. Arrival order (which copy of a repeated id is "first") is the
order of the files and of the records in each, kept by DuckDB's insertion
order as the table's row ids.

PostgreSQL: DuckDB's postgres extension is downloaded when first used, which
a machine without access to DuckDB's extension site cannot do, so a table is
copied out with psycopg (`COPY ... TO STDOUT`, CSV) into a temporary file
that DuckDB's CSV reader then reads like any other.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
import os
import re
import tempfile
import zlib
from array import array
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing, contextmanager, suppress
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, BinaryIO, Final

from .._engine import Engine
from .._errors import EventError, InputError
from .._eventfiles import (
    BOM,
    FORMATS,
    GZIP_MAGIC,
    BadRecord,
    Unit,
    cell_count_fault,
    check_columns,
    csv_file_rows,
    floats,
    format_from_name,
    ijson_reason,
    json_reason,
)
from .._events import FIELDS, Event
from .._jsonexact import loads as exact_loads
from .._model import Model
from .._replay import Result
from .._time import FIRST_MICROS, LAST_MICROS
from .plan import BatchPlan, Input, events_table
from .sql import Shape, literal, shape_of

if TYPE_CHECKING:
    import duckdb

_RFC3339: Final = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"  # as _time._RFC3339
)
_TYPE: Final = r"[A-Za-z0-9_.:-]{1,64}"
# DuckDB's JSON reader takes what the pure engine's readers refuse: NaN and
# Infinity (in any case, as nan, inf, -Infinity) and numbers past a double's
# range (1e400), read as infinity, and a trailing comma ({"a": 1,}). Such a
# literal starts a value: at the start of the text or after [ : or , and
# JSON's whitespace, past an optional minus; a number overflows only with an
# exponent of three digits or more, or 210 digits or more before its point
# (209 digits and an exponent of two stay below 10^308); a trailing comma is
# one that only whitespace parts from ] or }.
# Texts this pattern matches (a string holding ", NaN" does too) are parsed
# by the pure reader itself, a Python function on the connection (_register),
# so the verdict and its message are the pure engine's. The pattern keeps that
# to the few texts that might hold one: over 1M JSON Lines records of 170
# bytes, it costs 0.7 CPU s on DuckDB's threads, and the parse of every record
# 3.8 s, in one thread (the GIL).
_SUSPECT: Final = (
    r"(?i)(^|[\[:,])[ \t\n\r]*-?(nan|inf|[0-9]{210}|[0-9]+(\.[0-9]+)?e[+-]?[0-9]{3})"
    r"|,[ \t\n\r]*[\]}]"
)
_TAIL_BLOCK: Final = 1 << 16
_UNITS: Final[dict[str, Unit]] = {"jsonl": "line", "json": "item", "csv": "line", "parquet": "row"}


@dataclass(frozen=True, slots=True)
class EventTable:
    """A table of events in a database: a DuckDB file, or PostgreSQL by URL.

    The table has the event columns of spec section 1 (`id`, `type`,
    `contact_id`, `anonymous_id`, `timestamp`, `properties`, `traits`);
    timestamps as RFC 3339 text or timestamps with time zone, properties and
    traits as JSON text (or json/jsonb in PostgreSQL, structs in DuckDB).
    `database` None means the connection the batch engine runs on.
    """

    name: str
    database: str | None = None


EventSource = Iterable[Event] | str | Sequence[str] | EventTable | Any


def load(
    con: duckdb.DuckDBPyConnection,
    events: EventSource,
    *,
    format: str | None = None,
    on_bad: Callable[[BadRecord], None] | None = None,
    strict: bool = False,
    stack: ExitStack,
) -> Input:
    """Load `events` into `ls_checked` on `con`, report bad records, return the Input to score.

    `events` is a path or glob, a list of them, an :class:`EventTable`, an
    Arrow table (or anything with `__arrow_c_stream__`) with the event
    columns, or an iterable of Event (already valid).
    """
    files: list[str] = []
    kind: str | None = None  # of the files
    _register(con)
    if isinstance(events, EventTable):
        select, unit, shape = _table(con, events, stack)
    elif isinstance(events, str | os.PathLike) or (
        isinstance(events, Sequence) and events and all(isinstance(e, str) for e in events)
    ):
        files = [os.fspath(events)] if isinstance(events, str | os.PathLike) else list(events)
        with _reading(files):
            select, unit, shape, kind = _files(con, files, format, stack)
    elif hasattr(events, "__arrow_c_stream__") or hasattr(events, "schema"):
        con.register("ls_arrow", events)
        select, shape = _columns(con, "ls_arrow", "<arrow>")
        unit = "row"
    else:
        table = events_table(events)  # type: ignore[arg-type]  # Events are valid already
        con.register("ls_arrow", table)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE ls_checked AS SELECT seq, id, type, contact_id, "
            "anonymous_id, ts, CAST(properties AS JSON) AS properties, "
            "CAST(traits AS JSON) AS traits FROM ls_arrow"
        )
        return Input("ls_checked")
    if shape.seq:
        # Parquet has its row numbers: no copy of the events. The checks run
        # once here, for the report; the plan reads the file (only the
        # columns each step needs) and checks again only if a record was bad.
        con.execute(f"CREATE OR REPLACE TEMP VIEW ls_raw AS {select}")
        with _reading(files):
            bad = _report(con, unit, on_bad, strict, header=0, seq="seq")
        good = "WHERE ok" if bad else ""
        con.execute(
            "CREATE OR REPLACE TEMP VIEW ls_checked AS SELECT seq, id, type, contact_id, "
            f"anonymous_id, ts, properties, traits FROM ls_raw {good}"
        )
    else:
        import duckdb

        with _reading(files):
            lines: Mapping[str, Sequence[int]] = {}
            if kind == "csv":
                lines = _load_csv(con, select, expand(files), shape.copied, stack)
            else:
                try:
                    con.execute(f"CREATE OR REPLACE TEMP TABLE ls_raw AS {select}")
                except duckdb.InvalidInputException as exc:
                    # DuckDB refuses a whole file that is not UTF-8, where the
                    # pure reader reports each line that is not and reads the
                    # others: only then are the files read again, with such
                    # lines replaced (_exact_copies), so the usual file costs
                    # nothing more.
                    if kind != "jsonl" or "not utf-8" not in str(exc):
                        raise
                    select = _jsonl(con, expand(files), stack, exact=True)
                    con.execute(f"CREATE OR REPLACE TEMP TABLE ls_raw AS {select}")
        header = 1 if kind == "csv" else 0  # the CSV header is line 1
        _report(
            con,
            unit,
            on_bad,
            strict,
            header=header,
            seq="rowid",
            jsonl=kind == "jsonl",
            lines=lines,
        )
        # A view, not another copy of every event: the good records in arrival order.
        con.execute(
            "CREATE OR REPLACE TEMP VIEW ls_checked AS SELECT rowid AS seq, id, type, "
            "contact_id, anonymous_id, ts, properties, traits FROM ls_raw WHERE ok"
        )
    return Input(
        "ls_checked", traits_nulls_absent=shape.nulls_absent, properties_shape=shape.properties
    )


@contextmanager
def _reading(files: Sequence[str]) -> Iterator[None]:
    """DuckDB's errors reading event files (a CSV that is not UTF-8, a
    damaged Parquet file) as an InputError naming them, not a traceback."""
    import duckdb

    try:
        yield
    except duckdb.Error as exc:
        if not files:
            raise
        # DuckDB's first paragraph says what and where (its "Original Line"
        # may be another line than the one named); the rest suggests options.
        first = str(exc).split("\n\n")[0].splitlines()
        reason = " ".join(line for line in first if not line.startswith("Original Line:"))
        raise InputError(f"{', '.join(files)}: cannot read it: {reason}") from None


def _report(
    con: duckdb.DuckDBPyConnection,
    unit: Unit,
    on_bad: Callable[[BadRecord], None] | None,
    strict: bool,
    *,
    header: int,
    seq: str,
    jsonl: bool = False,
    lines: Mapping[str, Sequence[int]] | None = None,
) -> int:
    """Report the bad records; `header` lines come before the first record (CSV: 1).

    `seq` orders the records of ls_raw (arrival order); `jsonl`: they are a
    JSON Lines file's lines (see _last_line_fault); `lines`: the line of each
    record of the sources whose records are not one a line (_load_csv).
    Returns how many were bad.
    """
    # A record is bad when another check fails, or its type is not of the
    # pattern: tested once per distinct type (`type` is the text the check reads).
    (bad,) = con.execute(
        f"SELECT coalesce(sum(CASE WHEN coalesce({type_pattern('type')}, FALSE) THEN n "
        "ELSE wrong END), 0) FROM (SELECT type, count(*) AS n, "
        "count(*) FILTER (WHERE NOT ok_but_type) AS wrong FROM ls_raw GROUP BY type)"
    ).fetchall()
    if not bad[0]:
        return 0
    # Rows without a fault are no records (a JSON Lines file's blank lines):
    # not reported, but counted in the line numbers.
    rows = con.execute(
        "SELECT source, line + ?, fault.field, fault.message, line = lines FROM ("
        f"SELECT source, ok, fault, row_number() OVER (PARTITION BY source ORDER BY {seq}) "
        f"AS line, count(*) OVER (PARTITION BY source) AS lines, {seq} AS o FROM ls_raw) "
        "WHERE NOT ok AND fault IS NOT NULL ORDER BY o",
        [header],
    ).fetchall()
    for source, number, field, said, last in rows:
        line = lines[source][number - header - 1] if lines and source in lines else number
        if field is None:
            # A JSON array's item yajl cannot read: the pure reader stops the
            # file there, the items after it unread (_eventfiles._Counted).
            raise InputError(f"{source}: invalid JSON after item {line - 1}: {said}")
        message = said
        if last and jsonl and field == "" and said.startswith("invalid JSON"):
            message = _last_line_fault(source) or said
        record = BadRecord(source, line, field, message, unit)
        if on_bad is not None:
            on_bad(record)  # may raise: that is how the CLI stops under --strict
        if strict:
            raise InputError(f"{record} (strict: stopping at the first bad record)")
    return len(rows)


def _last_line_fault(path: str) -> str | None:
    """The pure reader's message for the last line of a JSON Lines file when
    the file does not end with \n (None when it does): the line without \n,
    whose message may differ from the \n-ended line's that SQL knows
    (`{"a": tru` ends the data; with \n, `tru` is no literal). Read only for
    a bad last line: the end of a plain file, all of a gzipped one."""
    with open(path, "rb") as raw:
        unzipped = _unzipped(raw)
        if unzipped is not None:
            tail, whole = _tail(unzipped)
        else:
            end = raw.seek(0, os.SEEK_END)
            start, block, tail = end, _TAIL_BLOCK, b""
            while start > 0 and b"\n" not in tail:
                start = max(0, end - block)
                block *= 2
                raw.seek(start)
                tail = raw.read(end - start)
            whole = b"\n" not in tail
            tail = tail.rsplit(b"\n", 1)[-1]
    if not tail:
        return None  # ends with \n (or is empty)
    if whole:  # the file's only line, its BOM dropped as the pure reader does
        tail = tail.removeprefix(BOM)
    return _json_fault(tail) or None


def _unzipped(raw: BinaryIO) -> gzip.GzipFile | None:
    """The inflating reader of a file opened for bytes when it is gzipped,
    else None; either way `raw` is back at its start."""
    gzipped = raw.read(len(GZIP_MAGIC)) == GZIP_MAGIC
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw) if gzipped else None


def _tail(stream: Any) -> tuple[bytes, bool]:
    """What follows the last \n of `stream`, and whether it has no \n at all."""
    tail, whole = b"", True
    while chunk := stream.read(_TAIL_BLOCK):
        if b"\n" in chunk:
            tail, whole = chunk.rsplit(b"\n", 1)[1], False
        else:
            tail += chunk
    return tail, whole


def expand(paths: Sequence[str]) -> list[str]:
    """Files named by paths and globs, in the order given, each glob sorted."""
    found: list[str] = []
    for path in paths:
        if path == "-":
            raise InputError("-: the DuckDB engine reads files and tables, not standard input")
        if glob.has_magic(path):
            matched = sorted(glob.glob(path, recursive=True))
            if not matched:
                raise InputError(f"{path}: no file matches")
            found += matched
        elif not os.path.exists(path):
            raise InputError(f"{path}: cannot read: No such file or directory")
        elif os.path.isdir(path):
            raise InputError(f"{path}: is a directory, not an event file")
        else:
            found.append(path)
    return found


@dataclass(frozen=True, slots=True)
class _Typed:
    """What the plan needs to know of a source's column types."""

    nulls_absent: bool = False  # traits are a struct: a null trait is an absent key
    properties: Shape | None = None  # properties are a struct of this shape (not JSON)
    seq: bool = False  # the select has `seq`, the arrival order, and can be read as a view
    copied: frozenset[str] = frozenset()  # CSV files read through their copies (_csv)


def _files(
    con: duckdb.DuckDBPyConnection, paths: Sequence[str], format: str | None, stack: ExitStack
) -> tuple[str, Unit, _Typed, str]:
    """The checked records of event files, their unit, shape and format."""
    files = expand(paths)
    if format is not None and format not in FORMATS:
        raise InputError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}")
    kinds = {format or format_from_name(path) or _sniff(path) for path in files}
    if len(kinds) > 1:
        raise InputError(f"the DuckDB engine reads one format at a time, got {sorted(kinds)}")
    (kind,) = kinds
    listed = "[" + ", ".join(literal(path) for path in files) + "]"
    # The file of each record, for reports: a column only when there are several.
    named = ", filename=true" if len(files) > 1 else ""
    origin = "filename" if len(files) > 1 else literal(files[0])
    if kind == "jsonl":
        # A \r alone ends a line for DuckDB's reader, not for the pure
        # reader: a file that holds one, plain or gzipped, is read the exact
        # way (_exact_copies).
        exact = any(_lone_cr(path) for path in files)
        return _jsonl(con, files, stack, exact=exact), "line", _Typed(), kind
    if kind == "json":
        reader = f"read_json_objects({listed}, format='array'{named})"
        return _json_records(reader, origin, array=True), "item", _Typed(), kind
    # Each file's columns in its order, with several files: a row's cells are
    # checked in its own file's order, as the pure reader checks them.
    own: dict[str, Sequence[str]] = {}
    if kind == "csv":
        select, shape = _csv(con, files, stack)
        return select, "line", shape, kind
    for path in files:
        names = con.execute(f"SELECT * FROM read_parquet({literal(path)}) LIMIT 0").description
        own[path] = [column[0] for column in names or ()]
        check_columns(own[path], path)
    reader = f"read_parquet({listed}, union_by_name=true{named})"
    con.execute(f"CREATE OR REPLACE TEMP VIEW ls_file AS SELECT * FROM {reader}")
    # Arrival order: the files in the order given, the rows of each in order.
    row = f"read_parquet({listed}, union_by_name=true{named}, file_row_number=true)"
    seq = (
        "file_row_number"
        if len(files) == 1
        else f"(list_position({listed}, filename) - 1) * {1 << 40} + file_row_number"
    )
    select, shape = _columns(con, "ls_file", files[0], origin=origin, frm=row, seq=seq, own=own)
    return select, "row", replace(shape, seq=True), kind


# CSV files are read by DuckDB's CSV reader, told the pure reader's dialect
# (a comma, quotes doubled inside quotes, no comment lines: its sniffer
# guessed them) and strict, so that a file the csv module reads otherwise is
# an error, not other cells: without strict_mode a row of more cells than the
# header lost the last ones and a shorter row failed the run (or, in the
# sniffer's sample, made the whole file seem to have other columns). Such a
# file, and one whose header DuckDB reads otherwise than the pure reader, is
# read through an exact copy (_csv_copy), made by the pure reader's own parse.
_CSV_DIALECT: Final = (
    "all_varchar=true, header=true, delim=',', quote='\"', escape='\"', comment='', "
    "strict_mode=true"
)
# A row whose extra cells are all empty passes even so, as a row of as many
# cells as the header: DuckDB drops extra cells that are NULL, and an empty
# cell is NULL to it. With no cell read as NULL (a cell of four control
# characters aside), such a row is an error; only the sniffer's sample (the
# first 20480 rows) is read so, to tell which files to read exactly (a file
# whose every row ends with an extra comma): reading every cell so cost 0.5
# CPU s more per 1M rows (empty cells are '' for every check).
_CSV_SNIFF: Final = f"{_CSV_DIALECT}, nullstr={literal(chr(1) + chr(2) + chr(3) + chr(4))}"
# The copy's column of each row's fault: a row of the file, or no record.
_ROW: Final = "ls_row"
_NO_RECORD: Final = "-"


def _csv(
    con: duckdb.DuckDBPyConnection,
    files: Sequence[str],
    stack: ExitStack,
    *,
    exact: Collection[str] = (),
) -> tuple[str, _Typed]:
    """The checked records of CSV files; those in `exact` are read through
    their copies (_csv_copy), and so is any that DuckDB's sniffer does not
    read as the pure reader does (an error, another header) or that has no
    rows at all (no header: the pure reader reads no records, checks no
    columns)."""
    import duckdb

    folder: str | None = None
    read: list[str] = []
    own: dict[str, Sequence[str]] = {}
    for index, path in enumerate(files):
        with closing(csv_file_rows(path, _no_report)) as rows:
            first = next(rows, None)
        header = None if first is None else first[1]
        if header is not None:
            check_columns(header, path)
            own[path] = header
        if header is not None and path not in exact:
            try:
                found = con.execute(
                    f"SELECT * FROM read_csv({literal(path)}, {_CSV_SNIFF}) LIMIT 0"
                ).description
            except duckdb.Error:
                found = None
            if [column[0] for column in found or ()] == header:
                read.append(path)
                continue
        if folder is None:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="leadscore-csv-"))
        read.append(os.path.join(folder, f"{index}.csv"))
        _csv_copy(path, header or list(FIELDS), read[-1])
    listed = "[" + ", ".join(literal(path) for path in read) + "]"
    named = ", filename=true" if len(files) > 1 else ""
    origin = "filename" if len(files) > 1 else literal(files[0])
    if len(files) > 1 and folder is not None:  # reports name the files given, not the copies
        cases = " ".join(
            f"WHEN {literal(copy)} THEN {literal(path)}"
            for copy, path in zip(read, files, strict=True)
            if copy != path
        )
        origin = f"CASE filename {cases} ELSE filename END"
    reader = f"read_csv({listed}, {_CSV_DIALECT}{named}, union_by_name=true)"
    con.execute(f"CREATE OR REPLACE TEMP VIEW ls_file AS SELECT * FROM {reader}")
    select, shape = _columns(
        con, "ls_file", files[0], origin=origin, own=own, row_faults=folder is not None
    )
    copied = frozenset(path for path, name in zip(files, read, strict=True) if name != path)
    return select, replace(shape, copied=copied)


def _load_csv(
    con: duckdb.DuckDBPyConnection,
    select: str,
    files: Sequence[str],
    copied: frozenset[str],
    stack: ExitStack,
) -> dict[str, Sequence[int]]:
    """Check the records of CSV files (`select`, from _csv) into ls_raw; return
    the line of each record of the files whose rows are not numbered as
    their lines (for _report).

    DuckDB's reader refuses a row past its sniffer's sample that it cannot
    read as the pure reader does (one of more or fewer cells than the
    header): then every file is read through its copy. And _report numbers
    the rows, which are a file's lines only when no line is blank and no
    quoted cell holds a line break: in a file with a bad record whose rows
    are not its lines, each record's line is found as the pure reader finds
    it (a copy's rows are its lines). None of this costs anything for a
    file without such rows, or without bad records.
    """
    import duckdb

    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE ls_raw AS {select}")
    except duckdb.InvalidInputException:
        select, _ = _csv(con, files, stack, exact=files)
        con.execute(f"CREATE OR REPLACE TEMP TABLE ls_raw AS {select}")
        return {}
    bad = con.execute(
        "SELECT source, count(*) FROM ls_raw GROUP BY source HAVING bool_or(NOT ok)"
    ).fetchall()
    lines: dict[str, Sequence[int]] = {}
    for source, rows in bad:
        if source not in copied and _csv_lines(source) != rows + 1:
            lines[source] = _record_lines(source)
    if any(len(lines[source]) != rows for source, rows in bad if source in lines):
        # Not the pure reader's records (they agree on every file tried):
        # read through the copies, which are.
        select, _ = _csv(con, files, stack, exact=files)
        con.execute(f"CREATE OR REPLACE TEMP TABLE ls_raw AS {select}")
        return {}
    return lines


def _csv_lines(path: str) -> int:
    """How many lines a CSV file has up to its last one that is not empty, as
    the pure reader counts them (the csv module's line_num: a line ends at
    \n, \r\n or \r), gzip undone: counts of \n, \r and \r\n per block,
    0.35-0.45 CPU s for 1M rows of \r\n lines (120 MB), less for \n lines."""
    with open(path, "rb") as raw, _damaged_gzip(path):
        unzipped = _unzipped(raw)
        stream: Any = raw if unzipped is None else unzipped
        ends, last = 0, b""
        run = b""  # the line ends after the last byte that is none
        while block := stream.read(_SCAN_BLOCK):
            ends += _line_ends(block)
            if last == b"\r" and block.startswith(b"\n"):
                ends -= 1  # a \r\n across two blocks
            last = block[-1:]
            body = block.rstrip(b"\r\n")
            run = block[len(body) :] if body else run + block
        return ends - _line_ends(run) + 1


def _line_ends(data: bytes) -> int:
    ends = data.count(b"\n")
    if b"\r" in data:
        ends += data.count(b"\r") - data.count(b"\r\n")
    return ends


def _record_lines(path: str) -> Sequence[int]:
    """The line each record of a CSV file starts on, as the pure reader reads
    them (2.2 CPU s for 1M rows)."""
    lines = array("q")
    rows = csv_file_rows(path, lambda record: lines.append(record.line))
    next(rows, None)  # the header
    for line, _ in rows:
        lines.append(line)
    return lines


def _no_report(record: BadRecord) -> None:
    """For rows not read: only a header is."""


def _csv_copy(path: str, header: Sequence[str], copy: str) -> None:
    """Write the rows of CSV file `path` as the pure reader reads them into
    `copy`, a CSV file DuckDB's reader reads as they are: the cells of each
    row under `header`, and in the _ROW column, the message of a bad row
    the pure reader finds before its cells (malformed CSV, another number
    of cells than the header; its cells left empty). Each line of `path`
    that starts no record (a blank line, a quoted cell's next lines, the
    header's) is a _NO_RECORD row, so that a row's place in the copy is its
    line in `path`, as _report numbers the rows."""
    empty = [""] * len(header)
    with open(copy, "w", encoding="utf-8", newline="") as out:
        # Every cell quoted: DuckDB reads a quoted cell as it is (\r, \n, commas).
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
        writer.writerow([*header, _ROW])
        line = 1  # of `path`, that the copy's last row stands for

        def row(start: int, cells: Sequence[str], fault: str) -> None:
            nonlocal line
            writer.writerows([[*empty, _NO_RECORD]] * (start - line - 1))
            writer.writerow([*cells, fault])
            line = start

        def malformed(record: BadRecord) -> None:
            row(record.line, empty, record.message)

        rows = csv_file_rows(path, malformed)
        next(rows, None)  # the header
        for start, cells in rows:
            if len(cells) == len(header):
                row(start, cells, "")
            else:
                row(start, empty, cell_count_fault(len(header), len(cells)))


# JSON Lines are read as lines of text, not by DuckDB's JSON reader: that
# reader fails the whole file at a malformed line and skips blank lines, so
# the pure reader's line numbers (it counts blank lines, and reports a bad
# line and goes on) could not be kept. DuckDB's CSV reader with one column,
# no quote, no escape and a delimiter no JSON text holds gives one row per
# line in file order (blank lines too: an empty one is NULL), gzip and a BOM
# undone as in the pure reader, at no more cost than the JSON reader (1M
# lines: 0.3 CPU s). With new_line '\r\n' it splits at \n, dropping a \r
# before it (JSON whitespace, as in the pure reader's lines); it also splits
# at a \r alone (and drops the byte after it), which the pure reader does
# not: a file that holds one (gzipped too) is read through _exact_copies.
# Other settings (new_line '\n', another nullstr, a second column with
# null_padding) drop blank lines or split \r\n in two.
# The delimiter, four control characters, is in no line of JSON (a raw
# control character is JSON nowhere): a line holding it is read up to it.
_DELIMITER: Final = "\x01\x02\x03\x04"
# What bytes.isspace takes, as the pure reader's blank lines (\n is not in a line).
_BLANK: Final = " \t\r\x0b\x0c"
# As read_json_objects' maximum_object_size, read before: a longer line is an
# error naming the file, not a bad record.
_MAX_LINE: Final = 16 << 20


def _jsonl_lines(listed: str, named: str) -> str:
    """A relation of JSON Lines files: `line`, the text of each line (without
    its \n; NULL for an empty line), `json`, that text as JSON or NULL when it
    is not JSON, and `filename` when `named`, one row per line, blank lines too."""
    reader = (
        f"read_csv({listed}, columns={{'line': 'VARCHAR'}}, header=false, "
        f"auto_detect=false, delim={literal(_DELIMITER)}, quote='', escape='', "
        f"new_line='\\r\\n', strict_mode=false, max_line_size={_MAX_LINE}{named})"
    )
    file = "filename, " if named else ""
    return f"(SELECT {file}line, TRY_CAST(line AS JSON) AS json FROM {reader})"


def _jsonl(
    con: duckdb.DuckDBPyConnection, files: Sequence[str], stack: ExitStack, *, exact: bool
) -> str:
    """The checked records of JSON Lines files; `exact`: read through
    _exact_copies (a file that is not UTF-8 or holds a lone \r)."""
    named = ", filename=true" if len(files) > 1 else ""
    origin = "filename" if len(files) > 1 else literal(files[0])
    read = list(files)
    if exact:
        folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="leadscore-jsonl-"))
        read, faults = _exact_copies(files, folder)
        if len(files) > 1:  # reports name the files given, not the copies
            cases = " ".join(
                f"WHEN {literal(copy)} THEN {literal(path)}"
                for copy, path in zip(read, files, strict=True)
                if copy != path
            )
            origin = f"CASE filename {cases} ELSE filename END"
        _register(con, faults)
    listed = "[" + ", ".join(literal(path) for path in read) + "]"
    return _json_records(_jsonl_lines(listed, named), origin, array=False)


# Read whole, a file in blocks of this size (complete lines in _exact_copies).
_SCAN_BLOCK: Final = 1 << 20
# A copy's line that stands for a line of the file (_exact_copies): a raw
# control character, so no JSON, and every line of the file that starts with
# one is replaced too, so no line of a file is taken for a stand-in.
_STAND_IN: Final = b"\x06"
_LONE_CR: Final = re.compile(rb"\r(?!\n)")


def _lone_cr(path: str) -> bool:
    """Whether a file holds a \r not followed by \n, once gzip is undone.

    A find of \r per block: 0.04 CPU s for 1M lines of JSON (of 7-8 s to read
    them), a regular expression's search per block in a file of \r\n lines
    (0.17 s: two counts, of \r and \r\n, took 0.34 s). A gzipped file is
    inflated for it, a second time besides DuckDB's: 0.3-0.45 CPU s for 1M
    lines (17 MB of gzip, 169 MB of text), some 5% of the 7.1-8.6 s that
    loading them took, the price of the pure reader's lines (docs/batch.md)."""
    with open(path, "rb") as file, _damaged_gzip(path):
        unzipped = _unzipped(file)
        stream: Any = file if unzipped is None else unzipped
        pending = False  # the block before ended with \r
        while block := stream.read(_SCAN_BLOCK):
            if pending and not block.startswith(b"\n"):
                return True
            if b"\r" not in block:
                pending = False
                continue
            found = _LONE_CR.search(block)
            pending = found is not None and found.start() == len(block) - 1
            if found is not None and not pending:
                return True
        return False  # a \r that ends the file ends its last line in both readers


@contextmanager
def _damaged_gzip(path: str) -> Iterator[None]:
    """A gzipped file cut short or with bytes after its end, when inflated
    here, as the InputError naming it that DuckDB's reader gives (the reason
    is Python's, as in the pure reader), not a traceback."""
    try:
        yield
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: cannot read it: {exc}") from None


def _exact_copies(files: Sequence[str], folder: str) -> tuple[list[str], dict[str, str]]:
    """The files to read for `files` so that DuckDB's reader has the pure
    reader's lines, and the pure reader's messages for the stand-ins.

    A file is split at \n as the pure reader splits it (gzip undone, a
    starting BOM dropped), and a line that is not UTF-8 (DuckDB refuses the
    whole file), holds a \r alone (DuckDB ends the line there) or starts
    with _STAND_IN is looked at alone: a line the pure reader reads, or a
    blank one, is copied with its \r made spaces (in JSON a raw \r can only
    be whitespace between tokens), any other is replaced by a stand-in whose
    message is the pure reader's for the line. A file without such lines is
    read itself. Blocks of lines without any are copied as they are."""
    read: list[str] = []
    faults: dict[str, str] = {}
    for index, path in enumerate(files):
        copy = os.path.join(folder, f"{index}.jsonl")
        changed = False
        with open(path, "rb") as raw, open(copy, "wb") as out, _damaged_gzip(path):
            unzipped = _unzipped(raw)
            stream: Any = raw if unzipped is None else unzipped
            rest = stream.read(len(BOM))
            rest = rest.removeprefix(BOM)
            while True:
                block = stream.read(_SCAN_BLOCK)
                data = rest + block
                cut = len(data) if not block else data.rfind(b"\n") + 1
                lines, rest = data[:cut], data[cut:]
                if lines:
                    if _plain_lines(lines):
                        out.write(lines)
                    else:
                        changed = True
                        for line in _split(lines):
                            out.write(_exact_line(line, faults))
                if not block:
                    break
        if changed:
            read.append(copy)
        else:
            os.remove(copy)
            read.append(path)
    return read, faults


def _split(lines: bytes) -> list[bytes]:
    """`lines` split after each \n, as the pure reader's lines (bytes.splitlines
    would split at \r too)."""
    parts = lines.split(b"\n")
    last = parts.pop()
    return [part + b"\n" for part in parts] + ([last] if last else [])


def _plain_lines(lines: bytes) -> bool:
    """Whether DuckDB's reader reads the lines of `lines` as the pure reader does."""
    if _STAND_IN in lines:
        return False
    if b"\r" in lines and lines.count(b"\r") != lines.count(b"\r\n"):
        return False
    try:
        lines.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _exact_line(line: bytes, faults: dict[str, str]) -> bytes:
    """The copy of one line of a block _plain_lines refused (see _exact_copies)."""
    body = line.removesuffix(b"\n")
    end = line[len(body) :]
    lone = b"\r" in body.removesuffix(b"\r")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if not lone and not body.startswith(_STAND_IN):
            return line
    try:
        exact_loads(line)
    except json.JSONDecodeError as exc:
        if not line.isspace():
            stand_in = _STAND_IN + str(len(faults)).encode()
            faults[stand_in.decode()] = json_reason(exc)
            return stand_in + end
    return body.replace(b"\r", b" ") + end


def _sniff(path: str) -> str:
    with open(path, "rb") as file:
        head = file.read(64)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x1f\x8b"):
        raise InputError(f"{path}: gzip without a .jsonl.gz or .csv.gz name; say --input-format")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    return "json" if text.startswith(b"[") else "jsonl" if text.startswith(b"{") else "csv"


@dataclass(frozen=True, slots=True)
class _Field:
    """How one event field of a source reads in SQL (over the inner SELECT's `ls_<name>`)."""

    missing: str  # absent, null (or empty text in a text column)
    string: str  # a non-empty string
    text: str  # its text
    shown: str  # how a faulty value is shown in a message
    value: str  # the canonical column (JSON fields: their JSON text)
    invalid: str = "FALSE"  # JSON text that does not parse
    refused: str = "FALSE"  # JSON text DuckDB reads and the pure reader refuses (_SUSPECT)
    refusal: str = "''"  # the pure reader's message for it
    not_object: str = "FALSE"  # a JSON value that is not an object
    instant: str | None = None  # timestamps: µs, NULL when not a valid time
    nanos: str | None = None  # a typed timestamp in nanoseconds: them, since the epoch
    present: str | None = None  # its text or NULL when missing, when cheaper than a CASE


def _json_field(name: str) -> _Field:
    """A field of a JSON record (`ls_<name>` is its JSON value)."""
    column = f"ls_{name}"
    missing = f"({column} IS NULL OR json_type({column}) = 'NULL')"
    text = f"({column} ->> '$')"
    return _Field(
        missing=missing,
        string=f"(json_type({column}) = 'VARCHAR' AND {text} <> '')",
        text=text,
        shown=f"left(CAST({column} AS VARCHAR), 60)",
        value=column if name in ("properties", "traits") else text,
        not_object=f"json_type({column}) <> 'OBJECT'",
    )


def _text_field(name: str) -> _Field:
    """A text column (Parquet, CSV, a table): empty text is an absent field, as in
    the pure engine's readers; properties and traits are JSON text."""
    column = f"ls_{name}"
    missing = f"({column} IS NULL OR {column} = '')"
    json_text = name in ("properties", "traits")
    return _Field(
        missing=missing,
        # Present text is a non-empty string (empty text is missing): the
        # checks of a string's kind are left out (see _checked).
        string="TRUE",
        text=column,
        # nullif rather than a CASE on `missing`: 0.3 CPU s less per column in
        # a scan of 10M events measured alone.
        present=f"nullif({column}, '')",
        shown=f"left(to_json({column})::VARCHAR, 60)" if not json_text else f"left({column}, 60)",
        value=column,
        invalid=f"NOT json_valid({column})" if json_text else "FALSE",
        refused=_refused("ls_json_cell_fault", column) if json_text else "FALSE",
        refusal=f"ls_json_cell_fault({column})",
        # Valid JSON whose first character (past JSON's whitespace) is `{` is an object.
        not_object=f"NOT starts_with(ltrim({column}, ' \t\n\r'), '{{')" if json_text else "FALSE",
    )


def _json_records(reader: str, origin: str, *, array: bool) -> str:
    """Checked records from a reader of JSON objects (one `json` column per record):
    the lines of JSON Lines (_jsonl_lines, with their text, `line`), or the
    items of JSON `array`s."""
    known = "[" + ", ".join(map(literal, FIELDS)) + "]"
    record = "ls_record"
    items = {name: f"json_extract(r.json, {literal('$.' + name)})" for name in FIELDS}
    items["record"] = "r.json"
    skip = "FALSE"
    if array:
        text = f"CAST({record} AS VARCHAR)"
        # What the pure reader refuses that DuckDB reads (_SUSPECT): yajl's
        # syntax errors (NaN, a trailing comma) end the file (a NULL field,
        # see _report), a number past a double's range is a bad item. One
        # verdict says which (_item_verdict), the item parsed once for both.
        verdict = f"ls_json_item_verdict({text})"
        faults = [
            (
                f"json_valid({record}) IS NOT TRUE",
                "''",
                f"'not valid JSON: ' || left({text}, 60)",
            ),
            (
                _refused("ls_json_item_verdict", text),
                f"CASE WHEN starts_with({verdict}, {literal(_ENDS)}) THEN NULL ELSE '' END",
                f"substr({verdict}, {len(_ENDS) + 1})",
            ),
        ]
    else:
        # A line: blank (no record, as in the pure reader, but counted), not
        # JSON (its `json` is NULL), or JSON the pure reader refuses
        # (_SUSPECT); either is a bad line with the pure reader's message.
        items["line"] = "r.line"
        text = "ls_line"
        skip = f"({text} IS NULL OR ltrim({text}, {literal(_BLANK)}) = '')"
        fault = f"ls_json_line_fault({text})"
        faults = [
            (f"{record} IS NULL", "''", fault),
            (_refused("ls_json_line_fault", text), "''", fault),
        ]
    extra = (
        f"list_sort(list_filter(json_keys({record}), lambda k: NOT list_contains({known}, k)))[1]"
    )
    return _checked(
        {name: _json_field(name) for name in FIELDS},
        items,
        source=origin,
        frm=f"{reader} r",
        skip=skip,
        prelude=[
            *faults,
            (
                f"json_type({record}) <> 'OBJECT'",
                "''",
                f"'expected a JSON object, got ' || left(CAST({record} AS VARCHAR), 60)",
            ),
            (
                f"{extra} IS NOT NULL",
                extra,
                f"'unknown field; expected one of {', '.join(FIELDS)}'",
            ),
        ],
    )


def _columns(
    con: duckdb.DuckDBPyConnection,
    relation: str,
    source: str | None,
    *,
    origin: str | None = None,
    frm: str | None = None,
    seq: str | None = None,
    own: Mapping[str, Sequence[str]] | None = None,
    row_faults: bool = False,
) -> tuple[str, _Typed]:
    """Checked records from a relation with event columns (Parquet, CSV, a table, Arrow).

    `frm` is what to read (default `relation`, whose columns are described),
    and `seq` the arrival order in it, selected as `seq` when given. `own`:
    the columns of each file read together, by its name as reported.
    `row_faults`: CSV files read with copies, which have the _ROW column.
    """
    described = con.sql(f"SELECT * FROM {relation} LIMIT 0")
    kinds = dict(zip(described.columns, described.types, strict=True))
    described.fetchall()  # done with it: the connection takes other work
    types = {name: str(kind).upper() for name, kind in kinds.items()}
    where = source or relation
    internal = {"filename", _ROW} if row_faults else {"filename"}
    check_columns([name for name in types if name not in internal], where)
    fields: dict[str, _Field] = {}
    items: dict[str, str] = {}
    nulls_absent = False
    properties_shape: Shape | None = None
    for name in FIELDS:
        kind_of = types.get(name)
        column = f'"{name}"'
        if kind_of is None or kind_of == '"NULL"':
            items[name] = "NULL::VARCHAR"
            fields[name] = _text_field(name)
        elif name == "properties" and kinds[name].id == "struct":
            # Kept as the struct: the plan reads its fields directly (sql.typed_probe).
            items[name] = column
            fields[name] = _struct_field(name)
            properties_shape = shape_of(kinds[name])
        elif name in ("properties", "traits") and kind_of.startswith(("STRUCT", "MAP")):
            # A struct field is null wherever a row lacks it: for traits, an
            # absent key, not a removal (as the pure engine's Parquet reader).
            items[name] = f"to_json({column})"
            fields[name] = _json_field(name)
            nulls_absent = nulls_absent or (name == "traits" and kind_of.startswith("STRUCT"))
        elif name in ("properties", "traits") and kind_of in ("VARCHAR", "JSON"):
            items[name] = f"CAST({column} AS VARCHAR)"
            fields[name] = _text_field(name)
        elif name in ("properties", "traits"):
            raise InputError(
                f"{where}: column {name} is {kind_of}; "
                "expected JSON text, a struct or a map with string keys"
            )
        elif name == "timestamp" and kind_of.startswith("TIMESTAMP"):
            # A Parquet timestamp in nanoseconds with a time zone (any zone:
            # Parquet stores the instant in UTC) is TIMESTAMPTZ_NS to DuckDB.
            nanos = kind_of == "TIMESTAMPTZ_NS"
            if "TIME ZONE" not in kind_of and not nanos:
                raise InputError(
                    f"{where}: column timestamp has no time zone; the spec needs "
                    "an offset (store it as timestamp with tz='UTC')"
                )
            items[name] = column
            if nanos:
                # As the pure reader: exact microseconds, or a bad row
                # (checked with the row's cells, in _checked); epoch_us takes
                # no TIMESTAMPTZ_NS, and a cast to TIMESTAMPTZ would round.
                items["nanos"] = f"epoch_ns({column})"
                items["instant"] = f"epoch_ns({column}) // 1000"
            else:
                items["instant"] = f"epoch_us({column})"
            fields[name] = _Field(
                missing=f"(ls_{name} IS NULL)",
                string="TRUE",
                text=f"strftime(ls_{name}, '%Y-%m-%dT%H:%M:%S.%fZ')",
                shown=f"strftime(ls_{name}, '%Y-%m-%dT%H:%M:%S.%fZ')",
                value=f"ls_{name}",
                instant="ls_instant",
                nanos="ls_nanos" if nanos else None,
            )
        elif kind_of == "VARCHAR":
            items[name] = column
            fields[name] = _text_field(name)
        else:
            raise InputError(f"{where}: column {name} is {kind_of}; expected strings")
    source_sql = origin or literal(where)
    if seq is not None:
        items["seq"] = seq
    order = [name for name in described.columns if name in FIELDS]
    prelude: list[tuple[str, str, str]] = []
    skip = "FALSE"
    if row_faults:
        # A copy's row that is no record is counted in the line numbers, and
        # one the pure reader refuses whole is reported with its message.
        items["row"] = f'"{_ROW}"'
        skip = f"(ls_row = {literal(_NO_RECORD)})"
        prelude.append(("coalesce(ls_row, '') <> ''", "''", "ls_row"))
    select = _checked(
        fields,
        items,
        source=source_sql,
        frm=frm or relation,
        prelude=prelude,
        skip=skip,
        columns=order,
        own=own if own is not None and len(own) > 1 else {},
    )
    return select, _Typed(nulls_absent, properties_shape)


def _struct_field(name: str) -> _Field:
    """A struct column: always an object when present."""
    column = f"ls_{name}"
    return _Field(
        missing=f"({column} IS NULL)",
        string="FALSE",
        text=f"CAST({column} AS VARCHAR)",
        shown=f"left(to_json({column})::VARCHAR, 60)",
        value=column,
    )


def _checked(
    fields: dict[str, _Field],
    items: dict[str, str],
    *,
    source: str,
    frm: str,
    prelude: list[tuple[str, str, str]],
    skip: str = "FALSE",
    columns: Sequence[str] = (),
    own: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """SELECT the canonical columns and `fault` (field, message) of the first problem.

    A row `skip` finds is no record (a blank line): neither ok nor a fault.

    The checks and their order are the pure reader's (row_event's for a row,
    then parse_event's), so a record has the same first fault in both
    engines; `columns` are a source of rows' columns in its order, `own`
    those of each of several files read together, by `source`. `items`
    are the inner SELECT's columns (`ls_<name>` each). Common shapes are
    checked the cheap way first: a timestamp shaped like 2026-05-04T10:00:00Z
    that DuckDB reads as an instant needs no regular expression.
    """
    f = fields
    stamp = f["timestamp"]
    normal = f"replace(replace(upper({stamp.text}), 'T', ' '), 'Z', '+00:00')"
    instant = stamp.instant or (
        f"CASE WHEN {stamp.text} LIKE '____-__-__T__:__:__Z' "
        f"THEN epoch_us(TRY_CAST({stamp.text} AS TIMESTAMPTZ)) "
        f"WHEN regexp_full_match({stamp.text}, {literal(_RFC3339)}) "
        f"THEN epoch_us(TRY_CAST({normal} AS TIMESTAMPTZ)) END"
    )
    checks: list[tuple[str, str, str]] = [*prelude]
    if skip != "FALSE":
        checks.insert(0, (skip, "NULL", "NULL"))  # a NULL fault (see below)
    # The pure reader converts a row's cells before parse_event reads them
    # (row_event), in the order of the columns: JSON text it cannot parse
    # and a typed timestamp no datetime holds are a row's first faults, in
    # that order, before a missing id. (Checked last, such a cell was
    # reported after the id's or the timestamp's fault by this engine.)
    # Messages: the pure reader's own, made only for a bad record (the CASE
    # below).
    cells = _cell_checks(f, columns)
    start = len(checks)
    checks.extend(cells)
    # Several files whose columns come in other orders: a row's cells are in
    # its own file's order, as in the pure reader. `columns` are those read
    # together (union_by_name: in the first file's order); a file of another
    # order has its own cell checks first in the fault's CASE, for its rows
    # alone (`ok`, which every record computes, is the same in any order).
    others: dict[tuple[tuple[str, str, str], ...], list[str]] = {}
    for name, order in (own or {}).items():
        theirs = tuple(_cell_checks(f, order))
        if theirs != tuple(cells):
            others.setdefault(theirs, []).append(name)
    guarded = [
        (f"source IN ({', '.join(map(literal, names))}) AND ({test})", field, message)
        for theirs, names in others.items()
        for test, field, message in theirs
    ]
    # A check that cannot fail (present text is always a non-empty string) is
    # left out: DuckDB evaluates it for every record all the same. Without the
    # four of a typed Parquet file's columns, its checks took 0.85 s instead
    # of 1.4 s at 10M events.
    for name in ("id", "type"):
        checks.append((f[name].missing, literal(name), "'required'"))
        if f[name].string != "TRUE":
            checks.append(
                (
                    f"NOT {f[name].string}",
                    literal(name),
                    f"'expected a non-empty string, got ' || {f[name].shown}",
                )
            )
    checks.append(
        (
            type_pattern(f["type"].text),
            "'type'",
            f"'expected {_TYPE}, got ' || {f['type'].shown}",
        )
    )
    for name in ("contact_id", "anonymous_id"):
        if f[name].string == "TRUE":
            continue
        checks.append(
            (
                f"NOT {f[name].missing} AND NOT {f[name].string}",
                literal(name),
                f"'expected a non-empty string, got ' || {f[name].shown}",
            )
        )
    checks.append(
        (
            f"{f['contact_id'].missing} AND {f['anonymous_id'].missing}",
            "'contact_id'",
            "'required: at least one of contact_id, anonymous_id'",
        )
    )
    checks.append((stamp.missing, "'timestamp'", "'required'"))
    if stamp.string != "TRUE":  # a typed timestamp is never a non-string
        checks.append(
            (
                f"NOT {stamp.string}",
                "'timestamp'",
                f"'expected an RFC 3339 string, got ' || {stamp.shown}",
            )
        )
    if stamp.instant is None:  # text: its shape first (a typed timestamp has none to check)
        checks.append(
            (
                f"ls_ts IS NULL AND NOT regexp_full_match({stamp.text}, {literal(_RFC3339)})",
                "'timestamp'",
                "'expected an RFC 3339 timestamp with offset, such as 2026-05-04T10:00:00Z, "
                f"got ' || {stamp.shown}",
            )
        )
    checks.append(
        ("ls_ts IS NULL", "'timestamp'", f"'not a valid date or time: ' || {stamp.shown}")
    )
    if stamp.instant is None:  # a typed timestamp's range is checked with its cell, above
        checks.append(  # as parse_timestamp: an instant no output could write
            (
                f"ls_ts NOT BETWEEN {FIRST_MICROS} AND {LAST_MICROS}",
                "'timestamp'",
                f"'out of range: ' || {stamp.shown} || ' is not between years 1 and 9999 in UTC'",
            )
        )
    for name in ("properties", "traits"):
        # A check that cannot fail (a struct is always an object) is left out:
        # said as `NOT (x IS NULL) AND FALSE`, it still read the whole struct
        # (0.7 CPU s at 10M events of a 15-field properties struct).
        field = f[name]
        if field.not_object != "FALSE":
            checks.append(
                (
                    f"NOT {field.missing} AND {field.not_object}",
                    literal(name),
                    f"'expected a JSON object, got ' || {field.shown}",
                )
            )
    # The usual record passes every check: a CASE that finds none evaluates
    # them all, so a record is first tested at once, cheaply (`ok`), and only
    # a record that fails it goes through the checks in order. Counting the
    # bad records tests `ok` alone: `fault IS NOT NULL` cost three times as
    # much (the CASE evaluated for every record, 10M of them).
    # `ok_but_type`: every check but the type's pattern, which _report tests once
    # per distinct type (a regular expression per record cost 0.6 CPU s at 10M).
    pattern = type_pattern(f["type"].text)
    good_but_type = " AND ".join(
        f"NOT coalesce({test}, FALSE)" for test, _, _ in checks if test != pattern
    )
    good = f"ls_ok_but_type AND NOT coalesce({pattern}, FALSE)"
    fault = (
        "CASE WHEN ls_ok THEN NULL "
        + " ".join(
            f"WHEN {test} THEN "
            + ("NULL" if test == skip else f"{{'field': {field}, 'message': {message}}}")
            for test, field, message in [*checks[:start], *guarded, *checks[start:]]
        )
        + " END"
    )
    inner = ", ".join(f"{expression} AS ls_{name}" for name, expression in items.items())
    props, traits = f["properties"], f["traits"]
    # A value that is missing only when null is itself. Said as a CASE, a
    # struct would be built whole for every record (all its fields read and
    # copied) instead of only the fields the plan reads from it.
    properties = (
        props.value
        if props.missing == f"({props.value} IS NULL)"
        else f"CASE WHEN NOT {props.missing} THEN {props.value} END"
    )
    seq = ", ls_seq AS seq" if "seq" in items else ""
    # Traits are cast to JSON only in good records: a bad record's text may
    # be no JSON, and the cast's error failed the whole load (a CSV or a
    # table is copied into ls_raw, bad records too).
    return (
        f"SELECT source, ls_ok AS ok, ls_ok_but_type AS ok_but_type, fault{seq}, "
        f"{f['id'].text} AS id, {f['type'].text} AS type, "
        f"{_present(f['contact_id'])} AS contact_id, "
        f"{_present(f['anonymous_id'])} AS anonymous_id, ls_ts AS ts, "
        f"{properties} AS properties, "
        f"CASE WHEN ls_ok AND {f['type'].text} = 'identify' AND NOT {traits.missing} "
        f"THEN CAST({traits.value} AS JSON) END AS traits "
        f"FROM (SELECT *, {fault} AS fault FROM (SELECT *, {good} AS ls_ok FROM ("
        f"SELECT *, {good_but_type} AS ls_ok_but_type FROM ("
        f"SELECT *, {instant} AS ls_ts FROM (SELECT {source} AS source, {inner} FROM {frm})))))"
    )


def _cell_checks(f: dict[str, _Field], columns: Sequence[str]) -> list[tuple[str, str, str]]:
    """The checks of a row's cells, in the order of its `columns` (see _checked)."""
    stamp = f["timestamp"]
    checks: list[tuple[str, str, str]] = []
    for name in [*columns, *(name for name in FIELDS if name not in columns)]:
        field = f[name]
        if field.invalid != "FALSE":
            checks.append(
                (
                    f"NOT {field.missing} AND {field.invalid}",
                    literal(name),
                    f"coalesce(nullif({field.refusal}, ''), 'not valid JSON: ' || {field.shown})",
                )
            )
        if field.refused != "FALSE":
            refused = f"NOT {field.missing} AND {field.refused}"
            checks.append((refused, literal(name), field.refusal))
        if name == "timestamp" and stamp.nanos is not None:
            checks.append(  # as instant_text: a time between two microseconds
                (
                    f"{stamp.nanos} % 1000 <> 0",
                    "'timestamp'",
                    f"{stamp.nanos}::VARCHAR || "
                    "' ns is finer than the microseconds the spec allows'",
                )
            )
        if name == "timestamp" and stamp.instant is not None:
            checks.append(  # as instant_text: a year outside 1-9999 in UTC
                (
                    f"ls_ts NOT BETWEEN {FIRST_MICROS} AND {LAST_MICROS}",
                    "'timestamp'",
                    "'out of the range of dates (years 1 to 9999)'",
                )
            )
    return checks


def _refused(function: str, text: str) -> str:
    """SQL of the test that the pure reader refuses JSON `text` that DuckDB reads:
    `function` (a verdict of _register) only where _SUSPECT matches. A CASE,
    not AND: DuckDB evaluates both sides of an AND for every record."""
    return (
        f"CASE WHEN regexp_matches({text}, {literal(_SUSPECT)}) "
        f"THEN {function}({text}) <> '' ELSE FALSE END"
    )


# The verdicts are '' for a text the pure reader takes (SQL NULL, for a
# function of DuckDB's default null handling, is what NULL text gives).


def _line_fault(text: str) -> str:
    """The pure reader's message for a JSON Lines line it refuses; `text` is
    without its end, the pure reader's line has \n (a \r before it, dropped by
    _jsonl_lines, gives the same message: it is JSON whitespace, or a control
    character in a string as \n is). An unterminated last line is _report's."""
    # Bytes, as _eventfiles reads a line; surrogatepass: exact_loads's own
    # encoding of str, so no text raises here.
    return _json_fault(text.encode("utf-8", "surrogatepass") + b"\n")


def _json_fault(data: bytes | str) -> str:
    """The pure reader's message for JSON it refuses (a line's, or the text of
    a properties or traits cell, as row_event reads it), '' when it takes it."""
    try:
        exact_loads(data)
    except json.JSONDecodeError as exc:
        return json_reason(exc)
    return ""


# How _item_verdict's message starts: with _ENDS, yajl cannot read the item
# (the pure reader's file ends there), with _BAD, the pure reader reads it
# and refuses it. One character each, which the SQL cuts off.
_ENDS: Final = "E"
_BAD: Final = "B"


def _item_verdict(text: str) -> str:
    """The pure reader's verdict on a JSON array's item, read by yajl once as
    the pure reader reads it: '' when it takes the item, else _ENDS and yajl's
    reason when yajl cannot read it, or _BAD and the message for an item it
    reads and refuses (a number past a double)."""
    import ijson  # type: ignore[import-untyped]

    try:
        item = next(ijson.items(io.BytesIO(text.encode("utf-8")), "", use_float=False))
    except ijson.JSONError as exc:
        return _ENDS + ijson_reason(exc)
    try:
        floats(item)
    except EventError as exc:
        return _BAD + exc.message
    return ""


_VERDICTS: Final = {
    "ls_json_line_fault": _line_fault,
    "ls_json_cell_fault": _json_fault,
    "ls_json_item_verdict": _item_verdict,
}


def _register(con: duckdb.DuckDBPyConnection, faults: dict[str, str] | None = None) -> None:
    """The pure reader's verdicts on JSON text as SQL functions on `con` (see _SUSPECT),
    replaced when a caller's connection has them from an earlier run; with
    `faults`, only the JSON Lines one, which then knows the stand-ins'
    messages (_exact_copies)."""
    import duckdb

    verdicts: dict[str, Callable[[str], str]] = dict(_VERDICTS)
    if faults is not None:
        verdicts = {"ls_json_line_fault": lambda text: faults.get(text) or _line_fault(text)}
    for name, function in verdicts.items():
        with suppress(duckdb.InvalidInputException):  # not there yet
            con.remove_function(name)
        con.create_function(name, function, ["VARCHAR"], "VARCHAR", side_effects=False)


def _present(field: _Field) -> str:
    """SQL of the field's text, NULL when it is missing."""
    return field.present or f"CASE WHEN NOT {field.missing} THEN {field.text} END"


def type_pattern(text: str) -> str:
    """SQL of the check that the type (SQL `text`) is not of the spec's pattern."""
    return f"NOT regexp_full_match({text}, {literal(_TYPE)})"


def _table(
    con: duckdb.DuckDBPyConnection, table: EventTable, stack: ExitStack
) -> tuple[str, Unit, _Typed]:
    database = table.database
    if database is not None and database.startswith(("postgresql://", "postgres://")):
        return _postgresql(con, table, stack)
    relation = _quoted(table.name)
    if database is not None:
        if not os.path.exists(database):
            raise InputError(f"{database}: cannot read: No such file or directory")
        con.execute(f"ATTACH {literal(database)} AS ls_source (READ_ONLY)")
        stack.callback(con.execute, "DETACH ls_source")
        relation = f"ls_source.{relation}"
    try:
        select, shape = _columns(con, relation, table.name)
    except InputError:
        raise
    except Exception as exc:  # duckdb.CatalogException and friends: no such table
        raise InputError(f"{table.name}: cannot read the table: {exc}") from None
    return select, "row", shape


def _postgresql(
    con: duckdb.DuckDBPyConnection, table: EventTable, stack: ExitStack
) -> tuple[str, Unit, _Typed]:
    """Copy a PostgreSQL table out as CSV (psycopg) and read it with DuckDB's CSV reader."""
    import psycopg
    from psycopg import sql

    assert table.database is not None
    folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="leadscore-pg-"))
    path = os.path.join(folder, "events.csv")
    parts = [psycopg.sql.Identifier(part) for part in table.name.split(".")]
    try:
        with psycopg.connect(table.database) as pg:
            names = [
                row[0]
                for row in pg.execute(
                    sql.SQL("SELECT * FROM {} LIMIT 0").format(sql.SQL(".").join(parts))
                ).description
                or ()
            ]
            check_columns(names, table.name)
            columns = sql.SQL(", ").join(
                sql.SQL(_pg_column(name)).format(sql.Identifier(name)) for name in names
            )
            query = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT (FORMAT csv, HEADER true)").format(
                columns, sql.SQL(".").join(parts)
            )
            with open(path, "wb") as out, pg.cursor().copy(query) as copy:
                for chunk in copy:
                    out.write(chunk)
    except psycopg.Error as exc:
        raise InputError(f"{table.name}: cannot read from PostgreSQL: {exc}".strip()) from None
    con.execute(
        "CREATE OR REPLACE TEMP VIEW ls_file AS SELECT * FROM "
        f"read_csv({literal(path)}, all_varchar=true, header=true, quote='\"', escape='\"')"
    )
    select, shape = _columns(con, "ls_file", table.name)
    return select, "row", shape


def _pg_column(name: str) -> str:
    # Timestamps with time zone leave as RFC 3339 text in UTC; json/jsonb as their text.
    if name == "timestamp":
        return (
            "CASE WHEN pg_typeof({0})::text = 'timestamp with time zone' "
            "THEN to_char({0}::timestamptz AT TIME ZONE 'UTC', "
            '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\') ELSE {0}::text END'
        )
    return "{0}::text"


def _quoted(name: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def score_batch(
    model: Model | Engine | BatchPlan,
    events: EventSource,
    *,
    at: int,
    format: str | None = None,
    strict: bool = False,
    on_bad: Callable[[BadRecord], None] | None = None,
    progress: Callable[[str], None] | None = None,
    connection: duckdb.DuckDBPyConnection | None = None,
    memory_limit: str | None = None,
) -> Result:
    """Score `events` as of `at` on DuckDB: what :func:`leadscore.replay` gives, set-based.

    `events` is an iterable of :class:`~leadscore.Event`, an Arrow table (or
    any object with `__arrow_c_stream__`) with the event columns, a path or
    glob of Parquet, CSV, JSON Lines or JSON files (or a list of them; gzip
    for the text formats), or an :class:`EventTable` of a DuckDB database or
    of PostgreSQL. Bad records go to `on_bad` (with their file, line and
    field) and are skipped; `strict` raises :class:`~leadscore.InputError` at
    the first. `progress` is told each phase's name as it starts. The run
    uses `connection` when given (its temporary tables are replaced), else a
    new in-memory DuckDB that spills to a temporary directory past
    `memory_limit` (DuckDB's syntax, e.g. "1GB"; default: DuckDB's, 80% of RAM).

    Returns the replay's :class:`~leadscore.Result`: scorecards by contact
    id, anonymous profiles, firings in order and warnings.
    """
    import duckdb

    plan = model if isinstance(model, BatchPlan) else BatchPlan(model)
    with ExitStack() as stack:
        con = connection
        if con is None:
            con = stack.enter_context(duckdb.connect())
            spill = stack.enter_context(tempfile.TemporaryDirectory(prefix="leadscore-duckdb-"))
            con.execute(f"SET temp_directory = {literal(spill)}")
            if memory_limit is not None:
                con.execute(f"SET memory_limit = {literal(memory_limit)}")
        if progress is not None:
            progress("reading events")
        source = load(con, events, format=format, on_bad=on_bad, strict=strict, stack=stack)
        if connection is None:
            # Arrival order is fixed by now (the `seq` column), and every
            # result the plan reads back has its ORDER BY: its tables need
            # not keep their rows in insertion order, which lets DuckDB's
            # threads write them as they come, with less memory (some 15%
            # less CPU at 10M events). A caller's connection keeps its setting.
            con.execute("SET preserve_insertion_order = false")
        return plan.run(con, source, at, progress=progress, tables=False)
