"""Scorecards as columns: the batch engine's result, kept in Arrow.

On the rules-only path (:meth:`BatchPlan._cards`) and on the path of every
other model (:meth:`BatchPlan._finish`: fit, stages, triggers, tag_from)
DuckDB computes the finished scorecard fields itself — clamp, the reported
rounding, band, grade, tag scores, stage fields — and hands them over as one
Arrow table. :class:`Cards` holds that
table and is a ``Sequence[Scorecard]``: every caller that reads scorecards
one by one still gets :class:`~leadscore.Scorecard` objects, built from the
columns on access, while the writers (:meth:`Cards.to_arrow`, Parquet, CSV,
JSON Lines and tables) use the columns directly, without an object per
contact. Building 540,000 Scorecards in Python took 3.8 s of a 6.8 s run at
10M events (`round` alone 1.2 s), more than the scoring statement itself.

What is written from columns is byte for byte what the same scorecards give
through `Scorecard.to_json` (tests/test_batch_cards.py): numbers are formatted
by the very functions the object writers use (orjson for JSON, `str` for
CSV), once per distinct value; a text that needs escaping or quoting is
formatted by those functions too.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, overload

import orjson

from .._engine import Scorecard

# report() in SQL is exact below this magnitude (see report_sql); a score or a
# tag score at or past it (no real model has one) makes the plan build its
# scorecards in Python with the pure engine's own report() instead.
REPORT_LIMIT = 1e12

# Columns of the JSON Lines fields (spec section 3), in to_json's order.
FIELDS = (
    "contact_id",
    "anonymous_id",
    "score",
    "fit",
    "grade",
    "band",
    "stage",
    "stage_entered_at",
    "stage_score",
    "tag_scores",
    "last_event_at",
)
# Rows formatted per batch by the text writers: bounded memory, and Arrow's
# 32-bit string offsets never overflow.
_BATCH = 65_536


def scorecard_schema(*, texts: bool = True) -> Any:
    """The Arrow schema of scorecards: the JSON Lines fields as columns.

    `texts`: timestamps as RFC 3339 text in UTC (what the writers write);
    otherwise int64 microseconds (what :class:`Cards` holds).
    """
    import pyarrow as pa

    stamp = pa.string() if texts else pa.int64()
    return pa.schema(
        [
            ("contact_id", pa.string()),
            ("anonymous_id", pa.string()),
            ("score", pa.float64()),
            ("fit", pa.int64()),
            ("grade", pa.string()),
            ("band", pa.string()),
            ("stage", pa.string()),
            ("stage_entered_at", stamp),
            ("stage_score", pa.float64()),
            ("tag_scores", pa.map_(pa.string(), pa.float64())),
            ("last_event_at", stamp),
        ]
    )


def reported(relation: str, names: Sequence[str]) -> str:
    """SQL of `relation` with a column `{v}_r`, ``report(v)``, for each column v of
    `names`: ``round(v, 2) + 0.0`` exactly as Python computes it (NULL: NULL).

    Python rounds the exact binary value of v to 2 decimals (half to even) and
    returns the double nearest that decimal, k/100. Rounding v*100 as a double
    can cross the tie: 1.115 is 1.11499999999999999112 exactly (Python: 1.11),
    but 1.115*100 is 111.5 as a double. (DuckDB's round_even agrees with
    Python on every value of tests/test_batch_cards.py, but does not say how it
    rounds, so it is not relied on.) So k is found from the exact product:

    - y = fl(v*100) and its rounding error e, exactly: Veltkamp's split
      (h = c - (c - v), c = v*(2^27+1)) cuts v into two halves of at most 26
      bits; each times 100 (5 bits) is exact, and e = (h*100 - y) + (v-h)*100
      is Dekker's error-free product (100 has no low half);
    - exact v*100 = y + e, with f = y - floor(y) (exact) and |e| at most half
      an ulp of y; its distance from the tie floor(y) + 0.5 is (f - 0.5) + e,
      whose sign the double sum `s` gets right (rounding to nearest keeps a
      sign and gives 0 only for 0; f - 0.5 is exact for f >= 0.25, and below
      that it is about -0.5, far beyond e);
    - k = floor(y), plus 1 above the tie or, on it, to make k even: an
      addition, so k is never -0.0 (-0.0 + 0.0 is 0.0), as report's + 0.0;
    - k/100 is one IEEE division: the double nearest k/100.

    All of it holds while |v*100| < 2^52 (k exact, no overflow in the split):
    callers keep |v| < REPORT_LIMIT. Four nested SELECTs, so that each step is
    computed once (one expression repeats its parts: 4x the work).
    """
    first = ", ".join(
        f"{v} * 100::DOUBLE AS {v}_y, {v} * 134217729::DOUBLE AS {v}_c" for v in names
    )
    second = ", ".join(f"floor({v}_y) AS {v}_f, {v}_c - ({v}_c - {v}) AS {v}_h" for v in names)
    third = ", ".join(
        f"(({v}_y - {v}_f) - 0.5::DOUBLE) "
        f"+ (({v}_h * 100::DOUBLE - {v}_y) + ({v} - {v}_h) * 100::DOUBLE) AS {v}_s"
        for v in names
    )
    fourth = ", ".join(
        f"({v}_f + ({v}_s > 0 OR ({v}_s = 0 AND {v}_f % 2 <> 0))::INTEGER) / 100::DOUBLE AS {v}_r"
        for v in names
    )
    return (
        f"SELECT *, {fourth} FROM (SELECT *, {third} FROM (SELECT *, {second} FROM "
        f"(SELECT *, {first} FROM {relation})))"
    )


def rules_only_table(columns: Any, *, grade: str | None, tags: dict[str, Any]) -> Any:
    """The table :class:`Cards` holds, from the columns of the rules-only statement
    (contact_id, anonymous_id, score, band, last_event_at) and each tag's reported
    score (NULL: no award), in tag order: fit 0, its `grade`, no stage."""
    import numpy as np
    import pyarrow as pa

    count = int(columns.num_rows)
    fields = {name: columns.column(name) for name in columns.column_names}
    fields["fit"] = pa.array(np.zeros(count, dtype=np.int64))
    fields["grade"] = pa.nulls(count, pa.string()) if grade is None else pa.repeat(grade, count)
    fields["stage"] = pa.nulls(count, pa.string())
    fields["stage_entered_at"] = pa.nulls(count, pa.int64())
    fields["stage_score"] = pa.nulls(count, pa.float64())
    return cards_table(fields, tag_columns(count, tags))


def cards_table(fields: dict[str, Any], tag_scores: Any) -> Any:
    """The table :class:`Cards` holds, from the columns of every field but tag_scores
    (by name; others are ignored) and the map of tag scores."""
    import pyarrow as pa

    fields = {**fields, "tag_scores": tag_scores}
    schema = scorecard_schema(texts=False)
    return pa.Table.from_arrays(
        [fields[field.name].cast(field.type) for field in schema], schema=schema
    )


def tag_columns(count: int, tags: dict[str, Any]) -> Any:
    """The map of tag scores from each tag's column of reported scores (NULL: no
    award), tags in the map's order: one entry per tag with a score, row by row.

    Built here, with numpy, from the tag columns (DuckDB's map_from_entries over a
    filtered list cost about 0.8 µs a row, as much as all the rounding).
    """
    import numpy as np
    import pyarrow as pa

    names = list(tags)
    valid = np.zeros((count, len(names)), dtype=bool)
    values = np.zeros((count, len(names)), dtype=np.float64)
    for k, name in enumerate(names):
        column = tags[name].combine_chunks()
        valid[:, k] = column.is_valid().to_numpy(zero_copy_only=False)
        values[:, k] = column.to_numpy(zero_copy_only=False)
    offsets = np.zeros(count + 1, dtype=np.int32)
    np.cumsum(valid.sum(axis=1), out=offsets[1:])
    rows, which = np.nonzero(valid)  # row by row, each row's tags in order
    return pa.MapArray.from_arrays(
        pa.array(offsets),
        pa.array(names, pa.string()).take(pa.array(which)),
        pa.array(values[rows, which], pa.float64()),
    )


def tag_lists(tags: Any, scores: Any) -> Any:
    """The map of tag scores from two list columns without nulls, each row's tags and
    their reported scores, entry for entry (the same lengths row by row)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tags, scores = tags.combine_chunks(), scores.combine_chunks()
    # A slice's offsets index its entries in the whole child array: rebased.
    offsets = tags.offsets
    return pa.MapArray.from_arrays(
        pc.subtract(offsets, offsets[0]).cast(pa.int32()), tags.flatten(), scores.flatten()
    )


class Cards(Sequence[Scorecard]):
    """Scorecards held as Arrow columns (the schema of ``scorecard_schema(texts=False)``).

    A Sequence of :class:`~leadscore.Scorecard`, built from the columns on
    access; equal to any sequence of the same scorecards. ``to_arrow()`` gives
    the table of the JSON Lines fields the writers write.
    """

    __slots__ = ("_columns", "_table")

    def __init__(self, table: Any) -> None:
        self._table = table
        self._columns: list[list[Any]] | None = None

    def __len__(self) -> int:
        return int(self._table.num_rows)

    @overload
    def __getitem__(self, index: int) -> Scorecard: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Scorecard]: ...
    def __getitem__(self, index: int | slice) -> Scorecard | Sequence[Scorecard]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                return Cards(self._table.slice(start, max(stop - start, 0)))
            return [self[i] for i in range(start, stop, step)]
        count = len(self)
        if index < 0:
            index += count
        if not 0 <= index < count:
            raise IndexError("scorecard index out of range")
        return _card([column[index] for column in self._lists()])

    def __iter__(self) -> Iterator[Scorecard]:
        for row in zip(*self._lists(), strict=True):
            yield _card(list(row))

    __hash__ = None  # type: ignore[assignment]  # compares as a list does, so unhashable

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    def __add__(self, other: Sequence[Scorecard]) -> Sequence[Scorecard]:
        return joined(self, other)

    def __radd__(self, other: Sequence[Scorecard]) -> Sequence[Scorecard]:
        return joined(other, self)

    def __repr__(self) -> str:
        return f"<Cards of {len(self):,} scorecards>"

    def _lists(self) -> list[list[Any]]:
        if self._columns is None:
            self._columns = [column.to_pylist() for column in self._table.columns]
        return self._columns

    def to_arrow(self) -> Any:
        """The table of the JSON Lines fields (:func:`scorecard_schema`), in one chunk."""
        import pyarrow as pa

        table = self._table
        columns = []
        for name in FIELDS:
            column = table.column(name)
            if name in ("stage_entered_at", "last_event_at"):
                column = _timestamp_texts(column.combine_chunks())
            columns.append(column)
        return pa.Table.from_arrays(columns, schema=scorecard_schema()).combine_chunks()


def joined(*parts: Sequence[Scorecard]) -> Sequence[Scorecard]:
    """The scorecards of `parts` one after another: columns when all are columns."""
    present = [part for part in parts if len(part)]
    tables = [part._table for part in present if isinstance(part, Cards)]
    if present and len(tables) == len(present):
        import pyarrow as pa

        return Cards(pa.concat_tables(tables))
    return [card for part in parts for card in part]


def _card(row: list[Any]) -> Scorecard:
    (contact, anonymous, score, fit, grade, band, stage, entered, stage_score, tags, last) = row
    return Scorecard(
        contact,
        anonymous,
        score,
        fit,
        grade,
        band,
        stage,
        entered,
        stage_score,
        dict(tags) if tags is not None else {},
        last,
    )


def _timestamp_texts(micros: Any) -> Any:
    """format_timestamp of each value of an int64 array (µs, null: null), as Arrow strings.

    Built with numpy over the whole array, no Python per value: each text is a
    row of a matrix of bytes, `YYYY-MM-DDTHH:MM:SS`, then `.` and the
    fraction's digits without trailing zeros when it is not zero, then `Z`;
    each row's first `length` bytes, in row order, are the string array's
    data. The date, the time of day and the fraction's halves are taken from
    tables of their texts: the dates of the distinct days only (a log spans
    some hundreds), each found by Hinnant's `civil_from_days` (proleptic
    Gregorian, exact for every day; floor division puts instants before 1970
    on the right day). Years are four digits, zero-padded, as
    `datetime.isoformat` writes them; inputs hold only years 1 to 9999 (io.py
    checks the range). pyarrow's strftime, casts and joins took 0.6 CPU s, on
    one thread, for the 540,000 scorecards of the 10M-event benchmark.
    """
    import numpy as np
    import pyarrow as pa

    count = len(micros)
    if micros.null_count == count:
        return pa.nulls(count, pa.string())
    valid = micros.is_valid().to_numpy(zero_copy_only=False)
    value = micros.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    days, rest = np.divmod(value, 86_400_000_000)
    seconds, fraction = np.divmod(rest, 1_000_000)
    distinct, which = np.unique(days, return_inverse=True)
    # civil_from_days: eras of 400 years (146,097 days) from 0000-03-01.
    z = distinct + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1_460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    month = np.where(mp < 10, mp + 3, mp - 9)
    dates = _digits(
        "{}-{}-{}",
        (yoe + era * 400 + (month <= 2), 4),
        (month, 2),
        (doy - (153 * mp + 2) // 5 + 1, 2),
    )
    second = np.arange(86_400)
    clock = _digits("{}:{}:{}", (second // 3600, 2), (second // 60 % 60, 2), (second % 60, 2))
    thousand = _digits("{}", (np.arange(1000), 3))

    text = np.empty((count, 27), dtype=np.uint8)
    text[:, 0:10] = dates[which.reshape(-1)]
    text[:, 10] = ord("T")
    text[:, 11:19] = clock[seconds]
    text[:, 19] = ord(".")
    text[:, 20:23] = thousand[fraction // 1000]
    text[:, 23:26] = thousand[fraction % 1000]
    # Fraction digits kept: six less its trailing zeros; none, and no dot, for 0.
    trailing = sum((fraction % 10**k == 0).astype(np.int64) for k in range(1, 6))
    length = np.where(valid, np.where(fraction == 0, 20, 27 - trailing), 0)
    rows = np.flatnonzero(valid)
    text[rows, length[rows] - 1] = ord("Z")
    data = text[np.arange(27) < length[:, None]]
    offsets = np.zeros(count + 1, dtype=np.int32)
    np.cumsum(length, out=offsets[1:])
    validity = None if micros.null_count == 0 else pa.array(valid).buffers()[1]
    return pa.Array.from_buffers(
        pa.string(), count, [validity, pa.py_buffer(offsets), pa.py_buffer(data.tobytes())]
    )


def _digits(pattern: str, *numbers: tuple[Any, int]) -> Any:
    """A matrix of bytes, a row per value: `pattern` with each `{}` the value's
    decimal digits, zero-padded to its width (numbers: (array, width) each)."""
    import numpy as np

    pieces = pattern.split("{}")
    width = sum(map(len, pieces)) + sum(size for _, size in numbers)
    text = np.empty((len(numbers[0][0]), width), dtype=np.uint8)
    column = 0
    for k, piece in enumerate(pieces):
        for char in piece.encode():
            text[:, column] = char
            column += 1
        if k < len(numbers):
            number, size = numbers[k]
            for place in range(size):
                text[:, column + size - 1 - place] = ord("0") + number // 10**place % 10
            column += size
    return text


# -- writing text from columns ------------------------------------------------


def _by_value(column: Any, text: Callable[[Any], str]) -> Any:
    """`text` of each value of a numeric column (null: null), computed once per
    distinct value (by its bits, so 0.0 and -0.0 stay apart)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    keys = column
    if pa.types.is_floating(column.type):
        keys = column.view(pa.int64())
    distinct = pc.unique(keys.drop_null())
    values = distinct.view(column.type) if keys is not column else distinct
    texts = pa.array([text(value) for value in values.to_pylist()], pa.string())
    return texts.take(pc.index_in(keys, value_set=distinct))


def _json_strings(column: Any) -> Any:
    """JSON text of each string (null: null): quoted as is, or by orjson when it
    has a character JSON escapes (a quote, a backslash, a control character)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    quoted = pc.binary_join_element_wise('"', column, '"', "")
    escape = pc.fill_null(pc.match_substring_regex(column, r'[\x00-\x1f"\\]'), False)
    if pc.any(escape).as_py():
        values = [orjson.dumps(v).decode() for v in column.filter(escape).to_pylist()]
        quoted = pc.replace_with_mask(quoted, escape, pa.array(values, pa.string()))
    return pc.fill_null(quoted, "null")


def _tag_objects(column: Any) -> Any:
    """The JSON object of each row's tag scores (a map column), as orjson writes the dict."""
    import pyarrow as pa
    import pyarrow.compute as pc

    # A slice's offsets index its entries in the whole child array: only the
    # slice's own entries are formatted, and the offsets rebased to them.
    offsets = column.offsets
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    key, value = column.values.slice(start, end - start).flatten()
    keys = _json_strings(key)
    values = _json_numbers(value)
    pairs = pc.binary_join_element_wise(keys, values, ":")
    lists = pa.ListArray.from_arrays(pc.subtract(offsets, start), pairs)
    return pc.binary_join_element_wise("{", pc.binary_join(lists, ","), "}", "")


def _json_number(value: Any) -> str:
    return orjson.dumps(value).decode()


def _json_numbers(column: Any) -> Any:
    import pyarrow.compute as pc

    return pc.fill_null(_by_value(column, _json_number), "null")


def jsonl_lines(table: Any) -> Iterator[memoryview]:
    """The JSON Lines text of a table of the JSON Lines fields, a batch of lines at a
    time: what ``orjson.dumps(card.to_json())`` gives for each row, newline-ended."""
    import pyarrow.compute as pc

    for batch in table.to_batches(max_chunksize=_BATCH):
        col = {name: batch.column(name) for name in FIELDS}
        anonymous = pc.if_else(
            pc.is_null(col["contact_id"]),
            pc.binary_join_element_wise(',"anonymous_id":', _json_strings(col["anonymous_id"]), ""),
            "",
        )
        pieces = [
            '{"contact_id":',
            _json_strings(col["contact_id"]),
            anonymous,
            ',"score":',
            _json_numbers(col["score"]),
            ',"fit":',
            _json_numbers(col["fit"]),
            ',"grade":',
            _json_strings(col["grade"]),
            ',"band":',
            _json_strings(col["band"]),
            ',"stage":',
            _json_strings(col["stage"]),
            ',"stage_entered_at":',
            _json_strings(col["stage_entered_at"]),
            ',"stage_score":',
            _json_numbers(col["stage_score"]),
            ',"tag_scores":',
            _tag_objects(col["tag_scores"]),
            ',"last_event_at":',
            _json_strings(col["last_event_at"]),
            "}\n",
        ]
        yield _text_bytes(pc.binary_join_element_wise(*pieces, ""))


def _csv_fields(column: Any, text: Callable[[Any], Any] | None = None) -> Any:
    """The CSV field of each value (null: empty), quoted as Python's csv module
    quotes (QUOTE_MINIMAL): a field with a comma or a quote in quotes, quotes
    doubled; one with a line break by the csv module itself."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if text is not None:
        column = _by_value(column, text)
    plain = pc.fill_null(column, "")
    special = pc.match_substring_regex(plain, r'[,"]')
    quoted = pc.binary_join_element_wise('"', pc.replace_substring(plain, '"', '""'), '"', "")
    fields = pc.if_else(special, quoted, plain)
    breaks = pc.match_substring_regex(plain, r"[\r\n]")
    if pc.any(breaks).as_py():
        values = [_csv_field(v) for v in plain.filter(breaks).to_pylist()]
        fields = pc.replace_with_mask(fields, breaks, pa.array(values, pa.string()))
    return fields


def _csv_field(value: str) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow([value, ""])
    return out.getvalue()[: -len(",\n")]


def csv_lines(table: Any) -> Iterator[memoryview]:
    """The CSV rows (no header) of a table of the JSON Lines fields, a batch at a time:
    what ``_output.write_csv`` writes for each scorecard."""
    import pyarrow.compute as pc

    for batch in table.to_batches(max_chunksize=_BATCH):
        col = {name: batch.column(name) for name in FIELDS}
        fields = []
        for name in FIELDS:
            if name == "tag_scores":
                fields.append(_csv_fields(_tag_objects(col[name])))
            elif name in ("score", "fit", "stage_score"):
                fields.append(_csv_fields(col[name], str))
            else:
                fields.append(_csv_fields(col[name]))
        line = pc.binary_join_element_wise(*fields, ",")
        yield _text_bytes(pc.binary_join_element_wise(line, "\n", ""))


def postgresql_csv(table: Any) -> Iterator[memoryview]:
    """A table of scorecards or firings as CSV for PostgreSQL's COPY, a batch at a time.

    Numbers as orjson writes them (the shortest text that reads back to the
    same double), tag_scores as the JSON object the JSON Lines output has (for
    jsonb), text in quotes (quotes doubled), NULL as an empty field.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    for batch in table.to_batches(max_chunksize=_BATCH):
        fields = []
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
                fields.append(pc.fill_null(_by_value(column, _json_number), ""))
                continue
            text = _tag_objects(column) if name == "tag_scores" else column
            quoted = pc.binary_join_element_wise(
                '"', pc.replace_substring(text, '"', '""'), '"', ""
            )
            fields.append(pc.fill_null(quoted, ""))
        line = pc.binary_join_element_wise(*fields, ",")
        yield _text_bytes(pc.binary_join_element_wise(line, "\n", ""))


def _text_bytes(lines: Any) -> memoryview:
    """The concatenated UTF-8 of a string array without nulls: its data buffer, uncopied."""
    import numpy as np

    _, offsets, data = lines.buffers()
    if not len(lines) or data is None:
        return memoryview(b"")
    ends = np.frombuffer(offsets, dtype=np.int32, count=len(lines) + 1, offset=lines.offset * 4)
    return memoryview(data)[int(ends[0]) : int(ends[-1])]


def write_text(table: Any, out: IO[bytes], lines: Callable[[Any], Iterator[memoryview]]) -> int:
    """Write the text `lines` makes of `table` to `out`; the number of rows."""
    for chunk in lines(table):
        out.write(chunk)
    return int(table.num_rows)
