"""Event files for the CLI: JSON Lines, JSON arrays, CSV and Parquet, streamed.

Every reader yields the good events in file order and hands each bad record to
a callback, so one malformed line costs a report rather than the run; the
caller decides whether a bad record is fatal (`--strict`). Readers hold one
line, one array item or one Parquet batch at a time, so memory grows with what
the scorer keeps, not with the files. Record fields are those of spec section
1; validation is :func:`leadscore._events.parse_event`'s alone, so every
format accepts and rejects exactly the same events.

The batch engine (`_batch`) reads the same files in DuckDB and Spark, and
takes and refuses what these readers do, in their words. Besides the readers'
own steps (`jsonl_event`, `row_event`, `check_columns`, `format_from_name`,
`instant_text`, `csv_file_rows`, `cell_count_fault`), it uses what a file's
start is read by (`GZIP_MAGIC`, `BOM`), how a JSON item's numbers are made
(`floats`) and the messages of JSON that does not parse (`json_reason` for
orjson's errors, `ijson_reason` for yajl's).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import stat
import sys
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Literal, Protocol, TypeVar

import ijson  # type: ignore[import-untyped]

from ._errors import EventError, InputError
from ._events import FIELDS, Event, parse_event
from ._jsonexact import loads as exact_loads
from ._time import to_datetime

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

FORMATS: Final = ("jsonl", "json", "csv", "parquet")
STDIN: Final = "-"
STDIN_NAME: Final = "<stdin>"

Unit = Literal["line", "item", "row"]

_EXTENSIONS: Final = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
}
# Large reads keep the per-line cost at what orjson and parse_event need.
_BUFFER: Final = 1 << 20
_PARQUET_BATCH = 8192
# A gzipped file starts with GZIP_MAGIC; a UTF-8 text may start with BOM,
# which the text readers drop (once gzip is undone).
GZIP_MAGIC: Final = b"\x1f\x8b"
_PARQUET_MAGIC: Final = b"PAR1"
BOM: Final = b"\xef\xbb\xbf"
_JSON_COLUMNS: Final = frozenset({"properties", "traits"})
_REQUIRED_COLUMNS: Final = ("id", "type", "timestamp")
_IDENTITY_COLUMNS: Final = ("contact_id", "anonymous_id")

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class BadRecord:
    """One record that was skipped, and why.

    `line` is the 1-based line of the record's start in JSON Lines and CSV
    (the CSV header is line 1), the 1-based item of a JSON array (the
    streaming parser knows no lines) and the 1-based row of a Parquet file;
    `unit` says which. `field` is '' when the record as a whole is at fault.
    """

    source: str
    line: int
    field: str
    message: str
    unit: Unit = "line"

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}"
        if self.unit != "line":
            where = f"{self.source}: {self.unit} {self.line}"
        field = f"{self.field}: " if self.field else ""
        return f"{where}: {field}{self.message}"


class _ByteStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _Source:
    path: str  # as given, or STDIN
    name: str  # as reported
    format: str | None  # None: sniffed from the first bytes


def read_events(
    paths: Sequence[str],
    *,
    format: str | None = None,
    on_bad: Callable[[BadRecord], None],
    stdin: BinaryIO | None = None,
) -> Iterator[Event]:
    """Yield the good events of `paths` in order, file after file; report the bad ones.

    The format is `format` (one of :data:`FORMATS`) or comes from the name
    (`.jsonl`/`.ndjson`, `.json`, `.csv`, `.parquet`, plus `.gz` of the text
    formats); standard input (`-`, read from `stdin` or `sys.stdin.buffer`) and
    names without a known extension are sniffed: `[` is a JSON array, `{` JSON
    Lines, `PAR1` Parquet, anything else CSV. Gzip is recognised by its magic
    bytes. Parquet on standard input is read whole, as the format needs its
    footer first; everything else streams.

    Missing files, an unknown `format` and reading `-` twice raise
    :class:`InputError` here, before any event; an unreadable input raises it
    when reached. `on_bad` gets each bad record; an exception it raises ends
    the reading (that is `--strict`).
    """
    if format is not None and format not in FORMATS:
        raise InputError(f"unknown event format {format!r}; expected one of {', '.join(FORMATS)}")
    if list(paths).count(STDIN) > 1:
        raise InputError("standard input ('-') can be read only once")
    sources = [_plan(path, format) for path in paths]
    return _read_all(sources, on_bad, stdin)


def count_hint(paths: Sequence[str]) -> int | None:
    """Total bytes of the files in `paths`, for a progress bar; None with standard input.

    Only a hint: compressed files count their compressed size, and a file
    that vanished or is a pipe counts nothing.
    """
    if STDIN in paths:
        return None
    total = 0
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            total += info.st_size
    return total


def _plan(path: str, format: str | None) -> _Source:
    if path == STDIN:
        return _Source(path, STDIN_NAME, format)
    # Checked up front so a typo in the last file fails before a long run, not after.
    try:
        info = os.stat(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    if stat.S_ISDIR(info.st_mode):
        raise InputError(f"{path}: is a directory, not an event file")
    return _Source(path, path, format or format_from_name(path))


def format_from_name(path: str) -> str | None:
    name = path.lower()
    found = _EXTENSIONS.get(os.path.splitext(name.removesuffix(".gz"))[1])
    if found == "parquet" and name.endswith(".gz"):
        raise InputError(f"{path}: gzip is read for text formats only; Parquet compresses itself")
    # None: sniff, so `<(zcat events.jsonl.gz)` and odd extensions still work.
    return found


def _read_all(
    sources: list[_Source], on_bad: Callable[[BadRecord], None], stdin: BinaryIO | None
) -> Iterator[Event]:
    for source in sources:
        yield from _read_source(source, on_bad, stdin)


def _read_source(
    source: _Source, on_bad: Callable[[BadRecord], None], stdin: BinaryIO | None
) -> Iterator[Event]:
    # Read errors become InputError where the bytes are read (_reader, _Counted,
    # _csv_rows, _parquet_rows), never around on_bad: a BrokenPipeError from
    # printing a report is the caller's, not a fault of this file.
    if source.format == "parquet" and source.path != STDIN:
        yield from _read_parquet(source.path, source.name, on_bad)
        return
    with _open(source, stdin) as raw:
        stream, first = _sniff(_reader(raw, source.name), source.name)
        found = source.format or _format_from_head(first)
        if found == "parquet":
            import pyarrow as pa

            yield from _read_parquet(pa.BufferReader(stream.read()), source.name, on_bad)
        else:
            yield from _TEXT_READERS[found](stream, first, source.name, on_bad)


def _open(source: _Source, stdin: BinaryIO | None) -> AbstractContextManager[_ByteStream]:
    if source.path == STDIN:
        # nullcontext: reading events must not close the process's standard input.
        return nullcontext(stdin if stdin is not None else sys.stdin.buffer)
    try:
        return open(source.path, "rb")
    except OSError as exc:
        raise InputError(f"{source.name}: cannot read: {exc.strerror}") from None


def _reader(stream: _ByteStream, name: str) -> Callable[[int], bytes]:
    """`stream`'s read1 (what is there: a slow pipe need not fill a megabyte before
    scoring starts), raising InputError for the errors of disks, pipes and gzip."""
    read = getattr(stream, "read1", stream.read)

    def guarded(size: int) -> bytes:
        try:
            return bytes(read(size))
        except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
            raise InputError(f"{name}: cannot read: {exc}") from exc

    return guarded


# Sniffing: the format of standard input, gzip, a BOM and the top level of a JSON file


def _sniff(read: Callable[[int], bytes], name: str) -> tuple[io.BufferedReader, bytes]:
    """The stream to read (gzip undone, a UTF-8 BOM dropped) and its first non-blank bytes."""
    head = _read_head(read)
    if head.startswith(GZIP_MAGIC):
        unzipped = gzip.GzipFile(fileobj=_replay(head, read), mode="rb")
        return _sniff(_reader(unzipped, name), name)
    text = head.removeprefix(BOM)
    return _replay(text, read), text.lstrip()[: len(_PARQUET_MAGIC)]


def _read_head(read: Callable[[int], bytes]) -> bytes:
    head = b""
    while chunk := read(_BUFFER):
        head += chunk
        if len(head) >= len(_PARQUET_MAGIC) and head.removeprefix(BOM).lstrip():
            break
    return head


def _format_from_head(first: bytes) -> str:
    if first.startswith(b"["):
        return "json"
    if first.startswith(b"{"):
        return "jsonl"
    if first.startswith(_PARQUET_MAGIC):
        return "parquet"
    return "csv"


class _Replay(io.RawIOBase):
    """The bytes read while sniffing, then the rest of the stream: stdin cannot seek back."""

    def __init__(self, head: bytes, read: Callable[[int], bytes]) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._read = read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        target = memoryview(buffer).cast("B")
        if self._head:
            data: bytes | memoryview = self._head[: len(target)]
            # Once replayed, the head is released rather than kept alive by an empty view.
            self._head = self._head[len(data) :] if len(data) < len(self._head) else _EMPTY
        else:
            data = self._read(len(target))
        target[: len(data)] = data
        return len(data)


_EMPTY: Final = memoryview(b"")


def _replay(head: bytes, read: Callable[[int], bytes]) -> io.BufferedReader:
    return io.BufferedReader(_Replay(head, read), buffer_size=_BUFFER)


# Records to events, shared by every format


def _convert(
    records: Iterable[tuple[int, _T]],
    convert: Callable[[_T], Event | None],
    source: str,
    unit: Unit,
    on_bad: Callable[[BadRecord], None],
) -> Iterator[Event]:
    """Events of numbered records; a record whose conversion raises EventError is reported.

    `convert` returns None for a record that is no event at all (a blank line).
    """
    for number, record in records:
        try:
            event = convert(record)
        except EventError as exc:
            on_bad(BadRecord(source, number, exc.field, exc.message, unit))
            continue
        if event is not None:
            yield event


def json_reason(exc: json.JSONDecodeError) -> str:
    """The message of a bad record whose JSON orjson (`exact_loads`) cannot
    parse: a JSON Lines line, or a properties or traits cell of CSV or Parquet."""
    # orjson's own text says "line 1 column 7", which misleads when the line is 14.
    return f"invalid JSON at column {exc.colno}: {exc.msg}"


# JSON Lines


def _read_jsonl(
    stream: io.BufferedReader, first: bytes, source: str, on_bad: Callable[[BadRecord], None]
) -> Iterator[Event]:
    # Binary lines split only at \n, as JSON Lines says; \r before it is JSON whitespace.
    return _convert(enumerate(stream, 1), jsonl_event, source, "line", on_bad)


def jsonl_event(line: bytes) -> Event | None:
    try:
        raw = exact_loads(line)  # integers past 64 bits stay integers, as in the service
    except json.JSONDecodeError as exc:
        # Blank lines are rare, so they are recognised on this slow path only.
        if line.isspace():
            return None
        raise EventError("", json_reason(exc)) from None
    return parse_event(raw)


# JSON arrays


def _read_json_array(
    stream: io.BufferedReader, first: bytes, source: str, on_bad: Callable[[BadRecord], None]
) -> Iterator[Event]:
    if not first.startswith(b"["):
        raise InputError(
            f"{source}: expected a JSON array of events at the top level, got {_describe(first)}"
            " (a file of one event per line is JSON Lines: name it .jsonl)"
        )
    # ijson parses incrementally, so a large array never sits in memory whole.
    # Not use_float: with it, yajl refuses any integer of 2^63 or more as an
    # "integer overflow" that ended the file; without it, integers are exact
    # and fractions Decimals, made floats here as JSON Lines has them.
    items = _Counted(ijson.items(stream, "item", use_float=False), source)
    return _convert(items, _array_event, source, "item", on_bad)


def _array_event(item: Any) -> Event:
    return parse_event(floats(item))


def floats(value: Any) -> Any:
    """`value`, a JSON array's item as ijson reads it (`use_float=False`),
    with its Decimals made floats, as JSON Lines has them (in place: ijson's
    objects are fresh). Raises EventError, the item bad, for a number past a
    double's range."""
    kind = type(value)
    if kind is Decimal:
        number = float(value)  # correctly rounded, as orjson reads the same text
        if not math.isfinite(number):
            raise EventError("", f"invalid JSON: {value} is infinity when parsed as double")
        return number
    if kind is dict:
        for key, item in value.items():
            if type(item) in _NESTED:
                value[key] = floats(item)
    elif kind is list:
        for index, item in enumerate(value):
            if type(item) in _NESTED:
                value[index] = floats(item)
    return value


_NESTED: Final = frozenset({dict, list, Decimal})


class _Counted(Iterator[tuple[int, Any]]):
    """Array items numbered from 1; a syntax error ends the file with an InputError."""

    def __init__(self, items: Iterator[Any], source: str) -> None:
        self._items = items
        self._source = source
        self._count = 0

    def __next__(self) -> tuple[int, Any]:
        try:
            item = next(self._items)
        except ijson.JSONError as exc:
            # Past a syntax error an array cannot be resynchronised: the rest is unreadable.
            raise InputError(
                f"{self._source}: invalid JSON after item {self._count}: {ijson_reason(exc)}"
            ) from None
        self._count += 1
        return self._count, item


def _describe(first: bytes) -> str:
    if not first:
        return "an empty file"
    if first.startswith(b"{"):
        return "an object"
    return repr(first[:1].decode("utf-8", "replace"))


def ijson_reason(exc: Exception) -> str:
    """What a syntax error of ijson (yajl) in a JSON array says, in one line:
    the reason given when the array's reading stops there."""
    # yajl's message is several lines with a caret drawing; its first line is the reason.
    reason = exc.args[0] if exc.args else ""
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    return str(reason).strip().splitlines()[0] if str(reason).strip() else type(exc).__name__


# CSV


def _read_csv(
    stream: io.BufferedReader, first: bytes, source: str, on_bad: Callable[[BadRecord], None]
) -> Iterator[Event]:
    reader, header = _csv_header(stream, source)
    if header is None:
        return
    check_columns(header, source)
    convert = partial(row_event, header, json_text=_JSON_COLUMNS)
    yield from _convert(_csv_rows(reader, source, on_bad), convert, source, "line", on_bad)


def _csv_header(stream: io.BufferedReader, source: str) -> tuple[Any, list[str] | None]:
    """The csv reader of `stream` past its header, and the header (None: no rows at all)."""
    text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
    # strict: a stray quote is a reported bad row, not a silently merged cell.
    reader = csv.reader(text, strict=True)
    try:
        header = next((row for row in reader if row), None)
    except csv.Error as exc:
        raise InputError(f"{source}:{reader.line_num}: malformed CSV header: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{source}: not UTF-8 text: {exc.reason}") from None
    return reader, header


def csv_file_rows(
    path: str, on_bad: Callable[[BadRecord], None]
) -> Generator[tuple[int, list[str]], None, None]:
    """A CSV file's rows as the CSV reader reads them, for the batch engine:
    (0, the header) first, unless the file has no rows at all, then (line,
    cells) of each record, with cells as many as they are; a row the csv
    module rejects goes to `on_bad`, before the next record. Raises
    InputError as the reader does (a header that is no CSV, not UTF-8)."""
    source = _plan(path, "csv")
    with _open(source, None) as raw:
        stream, _ = _sniff(_reader(raw, source.name), source.name)
        reader, header = _csv_header(stream, source.name)
        if header is None:
            return
        yield 0, header
        yield from _csv_rows(reader, source.name, on_bad)


def _csv_rows(
    reader: Any, source: str, on_bad: Callable[[BadRecord], None]
) -> Iterator[tuple[int, list[str]]]:
    """Rows with the line each starts on; a row the csv module rejects is reported here."""
    # line_num counts physical lines, so a quoted cell spanning lines keeps later numbers right.
    end: int = reader.line_num
    while True:
        start = end + 1
        try:
            cells: list[str] = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = reader.line_num
            on_bad(BadRecord(source, start, "", f"malformed CSV: {exc}"))
            continue
        except UnicodeDecodeError as exc:
            # No line number: the decoder runs ahead of the csv reader.
            raise InputError(f"{source}: not UTF-8 text: {exc.reason}") from None
        end = reader.line_num
        if cells:  # a blank line
            yield start, cells


def check_columns(names: Sequence[str], source: str) -> None:
    """Columns are spec section 1's fields, any order, each once; properties and traits optional."""
    missing = [name for name in _REQUIRED_COLUMNS if name not in names]
    if not any(name in names for name in _IDENTITY_COLUMNS):
        missing.append(" or ".join(_IDENTITY_COLUMNS))
    unknown = [name for name in names if name not in FIELDS]
    repeated = sorted({name for name in names if names.count(name) > 1})
    problems = [
        f"{what}: {_list(found)}"
        for what, found in (
            ("missing columns", missing),
            ("unknown columns", unknown),
            ("repeated columns", repeated),
        )
        if found
    ]
    if problems:
        raise InputError(f"{source}: {'; '.join(problems)} (event columns: {', '.join(FIELDS)})")


def _list(names: Sequence[str], most: int = 5) -> str:
    # A binary file sniffed as CSV has a "header" of garbage: keep the message short.
    shown = [name if len(name) <= 40 else name[:37] + "..." for name in names[:most]]
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(shown) + more


def row_event(names: Sequence[str], cells: Sequence[object], *, json_text: frozenset[str]) -> Event:
    """The event of one CSV or Parquet row; cells in `json_text` columns are JSON text.

    Empty and null cells are absent fields. A cell may be an EventError that
    converting its column found; it is raised here, for its row.
    """
    if len(cells) != len(names):
        raise EventError("", cell_count_fault(len(names), len(cells)))
    raw: dict[str, object] = {}
    for name, cell in zip(names, cells, strict=True):
        if cell is None or cell == "":
            continue
        if isinstance(cell, EventError):
            raise cell
        raw[name] = _decode_cell(name, cell) if name in json_text else cell
    return parse_event(raw)


def cell_count_fault(names: int, cells: int) -> str:
    """The message of a row whose cells are not as many as the header's names."""
    return f"expected {names} cells as in the header, got {cells}"


def _decode_cell(name: str, cell: object) -> object:
    if not isinstance(cell, str):
        return cell
    try:
        return exact_loads(cell)
    except json.JSONDecodeError as exc:
        raise EventError(name, json_reason(exc)) from None


# Parquet


def _read_parquet(file: Any, source: str, on_bad: Callable[[BadRecord], None]) -> Iterator[Event]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(file)
    except pa.ArrowException as exc:
        raise InputError(f"{source}: not a readable Parquet file: {exc}") from None
    schema = parquet.schema_arrow
    check_columns(schema.names, source)
    converters = [_column_converter(field, source) for field in schema]
    json_text = frozenset(
        field.name for field in schema if field.name in _JSON_COLUMNS and _is_text(field.type)
    )
    rows = _parquet_rows(parquet, converters, source)
    convert = partial(row_event, schema.names, json_text=json_text)
    yield from _convert(enumerate(rows, 1), convert, source, "row", on_bad)


def _parquet_rows(
    parquet: Any, converters: list[Callable[[Any], list[object]]], source: str
) -> Iterator[tuple[object, ...]]:
    import pyarrow as pa

    try:
        # Batches bound memory; within one, columns convert to Python a column at a time.
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH):
            columns = [
                convert(column) for convert, column in zip(converters, batch.columns, strict=True)
            ]
            yield from zip(*columns, strict=True)
    except pa.ArrowException as exc:
        raise InputError(f"{source}: cannot read Parquet data: {exc}") from None


def _column_converter(field: Any, source: str) -> Callable[[Any], list[object]]:
    """How one Parquet column becomes Python cells; a column of the wrong type is an InputError."""
    import pyarrow as pa

    kind = field.type
    if _is_text(kind) or pa.types.is_null(kind):
        return _plain
    if field.name == "timestamp" and pa.types.is_timestamp(kind):
        if kind.tz is None:
            raise InputError(
                f"{source}: column timestamp has no time zone; the spec needs an offset "
                "(store it as timestamp with tz='UTC')"
            )
        return _timestamp_texts
    if field.name in _JSON_COLUMNS and pa.types.is_struct(kind):
        return _struct_objects
    if field.name in _JSON_COLUMNS and pa.types.is_map(kind) and _is_text(kind.key_type):
        return _map_objects
    expected = {
        "timestamp": "RFC 3339 strings or a timestamp with time zone",
        "properties": "JSON text, a struct or a map with string keys",
        "traits": "JSON text, a struct or a map with string keys",
    }.get(field.name, "strings")
    raise InputError(f"{source}: column {field.name} is {kind}; expected {expected}")


def _is_text(kind: Any) -> bool:
    import pyarrow as pa

    if pa.types.is_dictionary(kind):
        return _is_text(kind.value_type)
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _plain(column: Any) -> list[object]:
    return list(column.to_pylist())


def _map_objects(column: Any) -> list[object]:
    # "lossy": a repeated key keeps its last value, as JSON decoding does.
    return list(column.to_pylist(maps_as_pydicts="lossy"))


def _struct_objects(column: Any) -> list[object]:
    # A struct field is null wherever a row lacks it, which cannot mean "remove
    # this trait": a sparse traits struct would wipe every trait it does not
    # set. So null top-level fields are absent (a map or JSON text can remove).
    return [
        None if row is None else {key: value for key, value in row.items() if value is not None}
        for row in column.to_pylist(maps_as_pydicts="lossy")
    ]


# Scale of each timestamp unit to microseconds, as (multiply, divide).
_TO_MICROS: Final = {"s": (1_000_000, 1), "ms": (1000, 1), "us": (1, 1), "ns": (1, 1000)}


def _timestamp_texts(column: Any) -> list[object]:
    """RFC 3339 text of each instant, exact in integers, for parse_event to take as any other."""
    import pyarrow as pa

    multiply, divide = _TO_MICROS[column.type.unit]
    return [
        None if value is None else instant_text(value * multiply, divide)
        for value in column.cast(pa.int64()).to_pylist()
    ]


def instant_text(value: int, divide: int) -> str | EventError:
    micros, rest = divmod(value, divide)
    if rest:
        return EventError("timestamp", f"{value} ns is finer than the microseconds the spec allows")
    try:
        # isoformat, not format_timestamp: strftime drops the leading zeros of years below 1000.
        return to_datetime(micros).isoformat()
    except OverflowError:
        return EventError("timestamp", "out of the range of dates (years 1 to 9999)")


_TEXT_READERS: Final[
    dict[
        str,
        Callable[[io.BufferedReader, bytes, str, Callable[[BadRecord], None]], Iterator[Event]],
    ]
] = {"jsonl": _read_jsonl, "json": _read_json_array, "csv": _read_csv}
