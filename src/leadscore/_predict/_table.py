"""Flat tables of leads (CSV or Parquet, one row per lead) as typed columns.

A column is either numeric (float64, NaN for missing) or categorical (text,
None for missing). What counts as missing is decided here, once, for every
learner and baseline: empty cells and the placeholders forms and CRMs put in
unanswered fields (`Select`, `unknown`, `n/a`, ...). A text column whose
recorded values are nearly all numbers is numeric; dates and timestamps are
kept apart (they split data in time; as features they would only let a model
extrapolate a trend it cannot know).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._errors import InputError
from .._time import MICROS_PER_DAY
from . import POSITIVE_SHOWN

Floats = npt.NDArray[np.float64]
Texts = npt.NDArray[np.object_]

# Values that mean "not answered". Lower-cased and stripped before the test.
# `Select` is what a web form's untouched drop-down submits (X Education),
# `unknown` is UCI Bank Marketing's missing code; the rest are the usual
# spellings of "no value" in exports.
PLACEHOLDERS = frozenset(
    {"", "select", "unknown", "n/a", "na", "nan", "null", "none", "-", "?", "not provided"}
)
# A text column is numeric when at least this share of its recorded values
# parse as numbers: a stray "n.a." must not turn a measurement into a category.
_NUMERIC_SHARE = 0.98
# Values read as the positive class when --positive is not given, trimmed
# and in any case (POSITIVE_SHOWN, in --help and the docs). "1.0" is 1 as
# some exports write it; a column of numbers compares 1 as a number.
POSITIVE_WORDS = frozenset({*POSITIVE_SHOWN, "1.0"})


@dataclass(slots=True)
class Table:
    """Columns of equal length by name: numeric (float64) or categorical (object)."""

    columns: dict[str, Floats | Texts]
    rows: int
    dates: dict[str, Floats] = field(default_factory=dict)  # days since the epoch, NaN missing
    fingerprint: str = ""

    def is_numeric(self, name: str) -> bool:
        return self.columns[name].dtype == np.float64

    def take(self, index: npt.NDArray[np.intp]) -> Table:
        return Table(
            {name: column[index] for name, column in self.columns.items()},
            len(index),
            {name: column[index] for name, column in self.dates.items()},
            self.fingerprint,
        )


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in PLACEHOLDERS)


def text_column(values: Iterable[Any]) -> Texts:
    """Text values with the placeholders turned into None."""
    return np.array(
        [None if _missing(v) else (v.strip() if isinstance(v, str) else str(v)) for v in values],
        dtype=object,
    )


def _as_number(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if np.isfinite(number) else None


def typed_column(values: Sequence[Any]) -> Floats | Texts:
    """Numeric when nearly every recorded value is a number, else categorical."""
    texts = text_column(values)
    recorded = [v for v in texts if v is not None]
    if not recorded:
        return texts
    if all(isinstance(v, bool) for v in values if v is not None):
        return np.array([None if v is None else str(v).lower() for v in values], dtype=object)
    numbers = [_as_number(v) for v in recorded]
    if sum(n is not None for n in numbers) >= _NUMERIC_SHARE * len(recorded):
        return numbers_of(texts)
    return texts


def numbers_of(texts: Iterable[Any]) -> Floats:
    """A text column as numbers: NaN for missing values and for text that is not one."""
    return np.array(
        [np.nan if v is None or (n := _as_number(v)) is None else n for v in texts],
        dtype=np.float64,
    )


def from_columns(columns: Mapping[str, Sequence[Any]], *, fingerprint: str = "") -> Table:
    """A table from plain Python columns (lists of values, None for missing)."""
    lengths = {len(values) for values in columns.values()}
    if len(lengths) > 1:
        raise InputError(f"columns have different lengths: {sorted(lengths)}")
    rows = lengths.pop() if lengths else 0
    return Table(
        {name: typed_column(list(v)) for name, v in columns.items()}, rows, {}, fingerprint
    )


def file_fingerprint(paths: Sequence[str | Path]) -> str:
    """sha256 of the input files' bytes, in order: which data a model was trained on."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _delimiter(path: Path) -> str:
    """The separator of a CSV file: the most frequent of , ; tab on its first line."""
    with open(path, "rb") as file:
        first = file.readline().decode("utf-8", "replace")
    return max((",", ";", "\t"), key=first.count)


_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
# A number with a comma every three digits (5,220, 1,234,567.5), as a
# spreadsheet writes it, quoted, in a CSV delimited by commas.
_GROUPED = r"^[+-]?[1-9][0-9]{0,2}(,[0-9]{3})+(\.[0-9]+)?$"
# Digits and commas that are no such number (3,5, 0,250, 12,3456, 1,2,3):
# a decimal comma or a list, which makes every comma of the column ambiguous.
_COMMAS = r"^[+-]?[0-9]*(,[0-9]*)+(\.[0-9]*)?$"


def _arrow_text(
    column: Any, *, typed: bool = True, decimal_comma: bool = False, thousands: bool = False
) -> Floats | Texts:
    """`typed_column` for an Arrow text column, in Arrow's compute kernels
    (a million values in well under a second, not tens of seconds); text
    whatever its values when not `typed`. With `decimal_comma`, 3,5 is
    the number 3.5; with `thousands`, 5,220 is 5220 unless another value of
    the column is digits and commas that are not a thousands separator."""
    import pyarrow as pa
    import pyarrow.compute as pc

    trimmed = pc.utf8_trim_whitespace(column)
    placeholder = pc.is_in(pc.utf8_lower(trimmed), value_set=pa.array(sorted(PLACEHOLDERS)))
    cleaned = pc.if_else(placeholder, pa.scalar(None, pa.string()), trimmed)
    recorded = len(cleaned) - cleaned.null_count
    # A CSV delimited by semicolons is what spreadsheets write where the
    # comma is the decimal separator (4,75 for 4.75): read as text, such a
    # column of numbers became a category of nearly distinct values, which
    # trained to nothing (importance 0) without a word.
    spelled = (
        pc.replace_substring(cleaned, ",", ".", max_replacements=1) if decimal_comma else cleaned
    )
    if thousands:
        # In a CSV delimited by commas, a quoted 5,220 is 5220 (the comma
        # is no decimal separator there): read as text, such a column of
        # numbers became a category that trained to nothing without a word.
        grouped = pc.match_substring_regex(cleaned, _GROUPED)
        other = pc.and_(pc.match_substring_regex(cleaned, _COMMAS), pc.invert(grouped))
        if pc.any(grouped).as_py() and not pc.any(other).as_py():
            spelled = pc.if_else(grouped, pc.replace_substring(cleaned, ",", ""), cleaned)
    numeric = pc.match_substring_regex(spelled, _NUMBER)
    share = pc.sum(numeric).as_py() or 0
    if typed and recorded and share >= _NUMERIC_SHARE * recorded:
        kept = pc.if_else(numeric, spelled, pa.scalar(None, pa.string()))
        result: Floats = kept.cast(pa.float64()).fill_null(np.nan).to_numpy()
        return result
    texts: Texts = cleaned.to_numpy(zero_copy_only=False)  # str, None for missing
    return texts


def read_table(path: str | Path, *, text: Sequence[str] = ()) -> Table:
    """Read a CSV (any of , ; tab) or Parquet file. Raises InputError naming the path.

    The columns named in `text` (those present) are read as text as they are
    written: an identifier such as 0042 is not the number 42.0.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    source = Path(path)
    if not source.is_file():
        raise InputError(f"{source}: no such file")
    decimal_comma = thousands = False
    try:
        if source.suffix.lower() == ".parquet":
            arrow = pq.read_table(source)
        else:
            delimiter = _delimiter(source)
            decimal_comma, thousands = delimiter == ";", delimiter == ","
            arrow = pacsv.read_csv(
                source,
                parse_options=pacsv.ParseOptions(delimiter=delimiter),
                convert_options=pacsv.ConvertOptions(
                    strings_can_be_null=True, column_types=dict.fromkeys(text, pa.string())
                ),
            )
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{source}: cannot read it as a table: {exc}") from None
    # Arrow reads a CSV's bytes as they are and decodes names only when asked:
    # a header that is not UTF-8 (a Latin-1 export) fails here, and cells
    # that are not come as binary columns (below).
    not_utf8 = (
        f"{source}: not UTF-8 text ({{}}); expected a UTF-8 file (export or save it as UTF-8)"
    )
    try:
        names = arrow.column_names
    except UnicodeDecodeError:
        raise InputError(not_utf8.format("its header")) from None
    # Columns are known by name (--target, --exclude, a model's features).
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(f"{source}: more than one column named {', '.join(map(repr, twice))}")
    columns: dict[str, Floats | Texts] = {}
    dates: dict[str, Floats] = {}
    for name in names:
        column = arrow.column(name)
        if name in text and (
            pa.types.is_integer(column.type)
            or pa.types.is_string(column.type)
            or pa.types.is_large_string(column.type)
        ):
            columns[name] = _arrow_text(column.cast(pa.string()), typed=False)
            continue
        if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            # Text in UTF-8 (a Parquet writer's untyped strings) is text;
            # anything else would become categories spelled as Python bytes.
            try:
                column = column.cast(
                    pa.large_string() if pa.types.is_large_binary(column.type) else pa.string()
                )
            except pa.ArrowInvalid:
                raise InputError(not_utf8.format(f"column {name!r}")) from None
        if pa.types.is_timestamp(column.type) or pa.types.is_date(column.type):
            # Microseconds, leadscore's unit: a timestamp with a fraction of a
            # second (CSV times such as 12:00:00.5 are read as nanoseconds)
            # keeps it, and nanoseconds beyond the microsecond are cut (not
            # an error: they cannot matter to a split measured in days).
            micros = column.cast(pa.timestamp("us"), safe=False).cast(pa.int64())
            values = micros.to_numpy(zero_copy_only=False)
            missing = column.is_null().to_numpy(zero_copy_only=False)
            dates[name] = np.where(missing, np.nan, values).astype(np.float64) / MICROS_PER_DAY
        elif pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            numbers = column.cast(pa.float64()).fill_null(np.nan).to_numpy()
            # Arrow reads inf and 1e400 as infinities: missing, as `_as_number`
            # has them (no percentile, mean or split can use one).
            columns[name] = np.where(np.isfinite(numbers), numbers, np.nan)
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            columns[name] = _arrow_text(column, decimal_comma=decimal_comma, thousands=thousands)
        else:
            columns[name] = typed_column(column.to_pylist())
    return Table(columns, arrow.num_rows, dates, file_fingerprint([source]))


def target_labels(
    table: Table, target: str, positive: str | None
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.bool_]]:
    """0/1 labels of the target column and the mask of rows that have one.

    The positive class is `positive` when given, else one of POSITIVE_WORDS. A
    target that is missing, or leaves only one class, is an InputError naming it.
    """
    if target in table.dates:
        raise InputError(
            f"target column {target!r} holds dates; expected the outcome "
            "(1/0, yes/no, true/false, or a value given with --positive)"
        )
    if target not in table.columns:
        known = ", ".join(sorted(table.columns))
        raise InputError(f"target column {target!r} is not in the table (columns: {known})")
    column = table.columns[target]
    if column.dtype == np.float64:
        # Numbers are compared as numbers, not formatted as text row by row
        # (seconds on a million rows): 1 is the only number among
        # POSITIVE_WORDS; a given --positive that is a number is compared
        # as one, any other matches nothing.
        numbers = column.astype(np.float64)
        known_rows = ~np.isnan(numbers)
        wanted_number = 1.0 if positive is None else _as_number(positive.strip())
        labels = (numbers == (np.nan if wanted_number is None else wanted_number)).astype(np.int8)
        values = np.unique(numbers[known_rows])
        texts = [f"{v:g}" for v in values[:10]]
        if positive is None and not np.isin(values, (0.0, 1.0)).all():
            # A count or a code (deals won: 0, 1, 2): reading 1 as the only win
            # would make every other value a loss, silently.
            raise InputError(
                f"target column {target!r} holds numbers other than 0 and 1 "
                f"(values seen: {', '.join(map(repr, texts))}); expected 1/0, or give "
                "--positive VALUE for the positive class (every other value is then negative)"
            )
    else:
        known_rows = np.array([v is not None for v in column], dtype=bool)
        texts = ["" if v is None else str(v) for v in column]
        if positive is not None:
            wanted = positive.strip().lower()
            labels = np.array([t.strip().lower() == wanted for t in texts], dtype=np.int8)
        else:
            labels = np.array([t.strip().lower() in POSITIVE_WORDS for t in texts], dtype=np.int8)
        texts = sorted({t for t, k in zip(texts, known_rows, strict=True) if k})[:10]
    kept = labels[known_rows]
    if kept.size == 0:
        raise InputError(f"target column {target!r} has no recorded value")
    if kept.min() == kept.max():
        which = "positive" if kept.min() == 1 else "negative"
        raise InputError(
            f"target column {target!r} has only one class (every recorded value is {which}; "
            f"values seen: {', '.join(map(repr, texts))}"
            + ("" if positive else "; give --positive VALUE if the positive class is another")
            + ")"
        )
    return labels, known_rows


def default_positive_note(table: Table, target: str, positive: str | None) -> str | None:
    """What to warn of when the positive class is the default's and more than
    one other value is counted as negative (won / lost / open: an open deal
    is no loss yet), else None. Names the target, the values taken as
    positive and those counted as negative, with their counts."""
    if positive is not None or target not in table.columns or table.is_numeric(target):
        return None
    # By value trimmed and in any case, as the labels compare them; shown
    # as first written, most frequent first.
    counts: dict[str, int] = {}
    shown: dict[str, str] = {}
    for value in table.columns[target]:
        if value is None:
            continue
        text = str(value).strip()
        key = text.lower()
        counts[key] = counts.get(key, 0) + 1
        shown.setdefault(key, text)
    taken = [key for key in counts if key in POSITIVE_WORDS]
    negative = [key for key in counts if key not in POSITIVE_WORDS]
    if not taken or len(negative) < 2:  # no positive at all is target_labels' error
        return None

    def listed(keys: list[str]) -> str:
        keys = sorted(keys, key=lambda k: (-counts[k], k))
        named = ", ".join(f"{shown[k]!r} ({counts[k]:,})" for k in keys[:10])
        return named + (f" and {len(keys) - 10:,} more" if len(keys) > 10 else "")

    return (
        f"target column {target!r}: {listed(taken)} taken as positive and every other "
        f"value as negative: {listed(negative)}; give --positive VALUE to say which value "
        "is a conversion, and leave out rows whose outcome is not known yet"
    )
