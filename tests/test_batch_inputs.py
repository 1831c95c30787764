"""The batch engine's inputs: event files of every format, globs, DuckDB and
PostgreSQL tables, Arrow tables and the command line, each giving what the
pure engine gives for the same events, bad records included."""

from __future__ import annotations

import csv
import gzip
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import orjson
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leadscore import (
    EventTable,
    InputError,
    format_timestamp,
    parse_event,
    parse_model,
    parse_timestamp,
    read_events,
    replay,
    score_batch,
    write_events,
)
from leadscore._engine import Engine
from leadscore._eventfiles import BadRecord
from leadscore._runner import StreamScorer

from ._support import CASES, load_case
from .conftest import _empty_database
from .test_batch import assert_same

FORMATS = ["jsonl", "parquet", "csv", "json"]


def _raw(path: Path) -> list[dict[str, Any]]:
    from ruamel.yaml import YAML

    return list(YAML(typ="safe").load(path.read_text())["events"])


def _write(events: list[dict[str, Any]], path: Path) -> None:
    """Events in any of the formats, as a user would have them."""
    if path.suffix == ".csv":
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["id", "type", "contact_id", "anonymous_id", "timestamp",
                             "properties", "traits"])  # fmt: skip
            for event in events:
                writer.writerow(
                    [
                        *(event.get(name, "") for name in
                          ("id", "type", "contact_id", "anonymous_id", "timestamp")),
                        *(orjson.dumps(event[name]).decode() if name in event else ""
                          for name in ("properties", "traits")),
                    ]
                )  # fmt: skip
    elif path.suffix == ".json":
        path.write_bytes(orjson.dumps(events))
    else:
        write_events(events, path)


@pytest.mark.parametrize("kind", FORMATS)
@pytest.mark.parametrize("case_path", CASES, ids=lambda path: path.stem)
def test_conformance_from_files(case_path: Path, kind: str, tmp_path: Path) -> None:
    case = load_case(case_path)
    path = tmp_path / f"events.{kind}"
    _write(_raw(case_path), path)
    got = score_batch(case.model, str(path), at=case.at)
    pure = replay(case.model, read_events([str(path)], on_bad=_never), case.at)
    assert_same(got, pure)


def _never(record: BadRecord) -> None:
    raise AssertionError(record)


BAD_LINES = [
    b'{"id": "e1", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z"}',
    b'{"id": "e2", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04"}',
    b'{"id": "", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z"}',
    b'{"id": "e3", "type": "no spaces", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z"}',
    b'{"id": "e4", "type": "view", "timestamp": "2026-05-04T10:00:00Z"}',
    b'{"id": "e5", "type": "view", "contact_id": 7, "timestamp": "2026-05-04T10:00:00Z"}',
    b'{"id": "e6", "type": "view", "contact_id": "c1", "timestamp": "2026-02-30T10:00:00Z"}',
    b'{"id": "e7", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",'
    b' "properties": [1]}',
    b'{"id": "e8", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",'
    b' "propertes": {}}',
    b'{"type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z"}',
    b"[1, 2]",
    b'{"id": "e9", "type": "view", "contact_id": "c2", "timestamp": "2026-05-04T11:00:00+02:00"}',
    # RFC 3339 allows a lower-case t and z: a good record.
    b'{"id": "e12", "type": "view", "contact_id": "c2", "timestamp": "2026-05-04t12:00:00z"}',
    # In years 10000 and 0 in UTC: instants no output can write.
    b'{"id": "e10", "type": "view", "contact_id": "c1", "timestamp": "9999-12-31T23:30:00-01:00"}',
    b'{"id": "e11", "type": "view", "contact_id": "c1", "timestamp": "0001-01-01T00:30:00+01:00"}',
    # An offset's minutes stop at 59 and its hours at 23 (datetime read +05:60 as +06:00).
    b'{"id": "e13", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00+05:60"}',
    b'{"id": "e14", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00+24:00"}',
    b'{"id": "e15", "type": "view", "contact_id": "c2", "timestamp": "2026-05-04T10:00:00-23:59"}',
    # NaN, infinities and numbers past a double's range: DuckDB's JSON reader
    # takes them (as infinity), the pure reader refuses them as not JSON.
    b'{"id": "e16", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",'
    b' "properties": {"x": NaN}}',
    b'{"id": "e17", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",'
    b' "properties": {"x": [1, Infinity]}}',
    b'{"id": "e18", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",'
    b' "properties": {"x": -Infinity}}',
    b'{"id": "e19", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",'
    b' "properties": {"x": 1e400}}',
    b'{"id": "e20", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",'
    b' "properties": {"x":\t-inf}}',
    b'{"id": "e21", "type": "identify", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",'
    b' "traits": {"x": 1' + b"0" * 400 + b".5}}",
    b'{"id": NaN, "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z"}',
    # A trailing comma, which DuckDB's JSON reader takes too.
    b'{"id": "e23", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",'
    b' "properties": {"x": [1, 2 ,\t]}}',
    b'{"id": "e24", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",}',
    # Good: the text of such literals in strings, an integer of 401 digits
    # (exact in Python, as the pure reader keeps it) and 1e-400 (0.0).
    b'{"id": "e22", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",'
    b' "properties": {"x": "a, NaN", "y": "[Infinity", "z": ":1e400", "n": 1' + b"0" * 400 + b","
    b' "m": 1e-400, "NaN": ["nan", " -inf", "a,}", ",]"]}}',
]


def _both_report(path: Path) -> tuple[list[BadRecord], list[BadRecord]]:
    """The bad records of `path` as the pure reader and the batch engine report
    them, once the good ones are scored alike."""
    model = load_case(CASES[0]).model
    at = 1_900_000_000 * 1_000_000
    pure_bad: list[BadRecord] = []
    batch_bad: list[BadRecord] = []
    expected = replay(model, read_events([str(path)], on_bad=pure_bad.append), at)
    assert_same(score_batch(model, str(path), at=at, on_bad=batch_bad.append), expected)
    return pure_bad, batch_bad


def test_bad_records_are_the_pure_readers_and_the_good_ones_are_scored(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(BAD_LINES) + b"\n")
    pure_bad, batch_bad = _both_report(path)
    assert [(r.source, r.line, r.field) for r in batch_bad] == [
        (r.source, r.line, r.field) for r in pure_bad
    ]
    assert len(batch_bad) == 23
    assert [r.message for r in batch_bad[-9:]] == [r.message for r in pure_bad[-9:]]
    assert (
        batch_bad[-3].message  # {"id": NaN, ...}: the record, not its id
        == "invalid JSON at column 8: unexpected character, expected a JSON value"
    )
    with pytest.raises(InputError, match=r"events.jsonl:2: timestamp: expected an RFC 3339"):
        score_batch(load_case(CASES[0]).model, str(path), at=1, strict=True)
    nan = tmp_path / "nan.jsonl"
    nan.write_bytes(BAD_LINES[0] + b"\n" + BAD_LINES[-10] + b"\n")
    with pytest.raises(InputError, match=r"nan.jsonl:2: invalid JSON at column 108: unexpected"):
        score_batch(load_case(CASES[0]).model, str(nan), at=1, strict=True)


# Lines that are no JSON at all: DuckDB's JSON reader failed the whole file
# at the first ("cannot read it: Malformed JSON"), where the pure reader
# reports the line and scores the rest.
MALFORMED = [
    b'{"id": "e1", "type": "vi',
    b"{oops",
    b'{"id": "m1", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z"}'
    b' {"id": "m2"}',
    b"\x00\x00\x00",  # what a crash leaves at the end of a log
    b'{"id": "m3", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",'
    b' "properties": {"a": "\tb"}}',  # a raw tab in a string
    b"[1, 2",
    b'{"id": "m4", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z"}}',
]
# Blank lines: no record, no report, but counted (they shifted the batch
# engine's line numbers: DuckDB's JSON reader skips them).
BLANK = [b"", b"   ", b"\t", b"\x0c \t"]


def _good(i: int) -> bytes:
    return (
        b'{"id": "g%d", "type": "page_view", "contact_id": "c%d", '
        b'"timestamp": "2026-05-04T10:00:%02dZ", "properties": {"url": "/pricing"}}' % (i, i % 3, i)
    )


def _lines_file(path: Path, *, end: bytes = b"\n", last: bytes | None = None, bom: bool = False,
                compress: bool = False) -> None:  # fmt: skip
    """Good, malformed and blank lines interleaved, ended by `end`; `last` an
    unterminated last line."""
    import gzip

    lines: list[bytes] = []
    for i, bad in enumerate(MALFORMED):
        lines += [_good(i), bad, BLANK[i % len(BLANK)]]
    data = b"".join(line + end for line in lines) + (last or b"")
    data = (b"\xef\xbb\xbf" if bom else b"") + data
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.mark.parametrize(
    "variant", ["lf", "crlf", "unterminated", "bom", "gzip", "gzip-crlf-bom-unterminated"]
)
def test_malformed_and_blank_lines_are_reported_as_the_pure_reader_does(
    tmp_path: Path, variant: str
) -> None:
    path = tmp_path / ("events.jsonl.gz" if "gzip" in variant else "events.jsonl")
    # Without its \n, a truncated last line ends the data (with it, `tru`
    # is no literal): the message is another one, as in the pure reader.
    last = b'{"id": "z1", "type": tru' if "unterminated" in variant else None
    _lines_file(path, end=b"\r\n" if "crlf" in variant else b"\n", last=last,
                bom="bom" in variant, compress="gzip" in variant)  # fmt: skip
    pure_bad, batch_bad = _both_report(path)
    assert [(r.source, r.line, r.field, r.message, r.unit) for r in batch_bad] == [
        (r.source, r.line, r.field, r.message, r.unit) for r in pure_bad
    ]
    assert [r.line for r in batch_bad] == [2, 5, 8, 11, 14, 17, 20] + ([22] if last else [])
    assert (
        batch_bad[0].message == "invalid JSON at column 25: unexpected control character in string"
    )
    if last:
        assert batch_bad[-1].message == "invalid JSON at column 25: unexpected end of data"
    model = load_case(CASES[0]).model
    assert score_batch(model, str(path), at=1_900_000_000 * 1_000_000).scorecards
    with pytest.raises(InputError, match=rf"{path.name}:2: invalid JSON at column 25: unexpected"):
        score_batch(model, str(path), at=1, strict=True)


def test_blank_lines_count_in_the_line_numbers(tmp_path: Path) -> None:
    # The pure reader skips them but counts them: the bad record is line 4.
    path = tmp_path / "events.jsonl"
    path.write_bytes(BAD_LINES[0] + b"\n\n  \r\n" + BAD_LINES[1] + b"\n\n")
    pure_bad, batch_bad = _both_report(path)
    assert [(r.line, r.field) for r in batch_bad] == [(r.line, r.field) for r in pure_bad]
    assert [r.line for r in batch_bad] == [4]


def test_an_unterminated_only_line_after_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": tru')
    pure_bad, batch_bad = _both_report(path)
    assert [(r.line, r.message) for r in batch_bad] == [(r.line, r.message) for r in pure_bad]
    assert [(r.line, r.message) for r in batch_bad] == [
        (1, "invalid JSON at column 11: unexpected end of data")
    ]


def test_lines_of_several_files_are_numbered_in_each(tmp_path: Path) -> None:
    _lines_file(tmp_path / "part-1.jsonl")
    _lines_file(tmp_path / "part-2.jsonl", end=b"\r\n", last=b"{oops")
    model = load_case(CASES[0]).model
    at = 1_900_000_000 * 1_000_000
    pure_bad: list[BadRecord] = []
    batch_bad: list[BadRecord] = []
    files = [str(tmp_path / "part-1.jsonl"), str(tmp_path / "part-2.jsonl")]
    expected = replay(model, read_events(files, on_bad=pure_bad.append), at)
    got = score_batch(model, str(tmp_path / "part-*.jsonl"), at=at, on_bad=batch_bad.append)
    assert_same(got, expected)
    assert [(r.source, r.line, r.message) for r in batch_bad] == [
        (r.source, r.line, r.message) for r in pure_bad
    ]
    assert len(batch_bad) == 2 * len(MALFORMED) + 1


# Lines that are not UTF-8 (latin-1, bytes of another encoding): DuckDB's
# reader refused the whole file ("This file is not utf-8 encoded"), where the
# pure reader reports each such line (orjson's "str is not valid UTF-8").
NOT_UTF8 = [
    b'{"id": "caf\xe9", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z"}',
    b"\xff\xfe{",
    b"\x06 a line that starts as the stand-ins do",
]
# A \r alone is JSON whitespace between tokens for the pure reader, which
# splits lines at \n only; DuckDB's reader ended the line there.
LONE_CR = [
    b'{"id": "r1",\r "type": "page_view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z"}',
    b'{"id": "r2", "type": "page_view", "contact_id": "c2", "timestamp": "2026-05-04T10:00:00Z"}'
    b"\r ",
    b'{"id": "r3", "type": "page_view", "contact_id": "c2", "timestamp": "2026-05-04T10:00:00Z"}'
    b"\r\r",
    b'{"id": "r4", "type": "a\rb", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z"}',
    b'{"id": "r5"}\r{"id": "r6"}',
    b"\r",
    b"\r{oops",
]


def _odd_lines_file(path: Path, lines: list[bytes], *, end: bytes = b"\n", last: bytes = b"",
                    compress: bool = False) -> None:  # fmt: skip
    import gzip

    data = b"".join(_good(i) + end + line + end for i, line in enumerate(lines)) + last
    path.write_bytes(gzip.compress(data) if compress else data)


def _same_reports(path: Path) -> list[BadRecord]:
    pure_bad, batch_bad = _both_report(path)
    assert [(r.source, r.line, r.field, r.message, r.unit) for r in batch_bad] == [
        (r.source, r.line, r.field, r.message, r.unit) for r in pure_bad
    ]
    return batch_bad


@pytest.mark.parametrize("variant", ["lf", "crlf", "unterminated", "gzip", "lone-cr"])
def test_lines_that_are_not_utf8_are_bad_records_as_in_the_pure_reader(
    tmp_path: Path, variant: str
) -> None:
    path = tmp_path / ("events.jsonl.gz" if variant == "gzip" else "events.jsonl")
    lines = NOT_UTF8 + (LONE_CR if variant == "lone-cr" else [])
    last = b'{"id": "\xe9' if variant == "unterminated" else b""
    _odd_lines_file(path, lines, end=b"\r\n" if variant == "crlf" else b"\n", last=last,
                    compress=variant == "gzip")  # fmt: skip
    bad = _same_reports(path)
    assert [r.line for r in bad][:3] == [2, 4, 6]
    assert (
        bad[0].message == "invalid JSON at column 1: str is not valid UTF-8: surrogates not allowed"
    )
    with pytest.raises(InputError, match=rf"{path.name}:2: invalid JSON at column 1: str is not"):
        score_batch(load_case(CASES[0]).model, str(path), at=1, strict=True)


def test_lines_not_utf8_in_one_of_several_files(tmp_path: Path) -> None:
    _odd_lines_file(tmp_path / "part-1.jsonl", NOT_UTF8)
    _lines_file(tmp_path / "part-2.jsonl")
    _odd_lines_file(tmp_path / "part-3.jsonl", LONE_CR[:1] + NOT_UTF8[:1], last=b"{oops")
    pure_bad: list[BadRecord] = []
    batch_bad: list[BadRecord] = []
    model = load_case(CASES[0]).model
    at = 1_900_000_000 * 1_000_000
    files = [str(tmp_path / f"part-{i}.jsonl") for i in (1, 2, 3)]
    expected = replay(model, read_events(files, on_bad=pure_bad.append), at)
    got = score_batch(model, str(tmp_path / "part-*.jsonl"), at=at, on_bad=batch_bad.append)
    assert_same(got, expected)
    assert [(r.source, r.line, r.message) for r in batch_bad] == [
        (r.source, r.line, r.message) for r in pure_bad
    ]
    assert {r.source for r in batch_bad} == set(files)


@pytest.mark.parametrize(
    "variant", ["lf", "crlf", "unterminated", "gzip", "gzip-crlf", "gzip-unterminated"]
)
def test_a_lone_cr_does_not_end_a_line(tmp_path: Path, variant: str) -> None:
    # A gzipped file was not looked at for a lone \r: DuckDB's reader ended
    # the line there, and every line number after it was off.
    path = tmp_path / ("events.jsonl.gz" if "gzip" in variant else "events.jsonl")
    last = b'{"id": "z",\r "type": tru' if "unterminated" in variant else b""
    _odd_lines_file(path, LONE_CR, end=b"\r\n" if "crlf" in variant else b"\n", last=last,
                    compress="gzip" in variant)  # fmt: skip
    bad = _same_reports(path)
    # r1-r3 are good (the \r is whitespace); in r4's string a raw \r is no
    # JSON; r5's line holds two objects; a line of \r is blank.
    assert [r.line for r in bad][:3] == [8, 10, 14]
    assert bad[0].message.endswith("unexpected control character in string")


@pytest.mark.parametrize("damage", ["cut short", "bytes after its end"])
def test_a_damaged_gzip_file_with_a_lone_cr_is_an_input_error(tmp_path: Path, damage: str) -> None:
    # Inflated by the batch engine itself (the lone \r's check, the exact
    # copy), a damaged file must be the InputError naming it, not a traceback.
    import gzip

    path = tmp_path / "events.jsonl.gz"
    data = gzip.compress(b"".join(_good(i) + b"\n" + LONE_CR[0] + b"\n" for i in range(2000)))
    path.write_bytes(data[: len(data) // 2] if damage == "cut short" else data + b"junk")
    model = load_case(CASES[0]).model
    with pytest.raises(InputError, match=rf"^{path}: cannot read: "):
        list(read_events([str(path)], on_bad=lambda _: None))
    with pytest.raises(InputError, match=rf"^{path}: cannot read it: "):
        score_batch(model, str(path), at=1, on_bad=lambda _: None)


# JSON text of properties and traits in CSV cells, Parquet text columns and
# tables: what DuckDB's JSON functions take and the pure reader refuses (as
# in JSON Lines), beside strings that only hold such text.
NAN_CELLS = [
    ("properties", '{"x": NaN}'),
    ("properties", '{"a": {"b": [1, -Infinity]}}'),
    ("properties", "NaN"),
    ("traits", '{"x": 1e400}'),
    ("traits", '{"x": -1E+309, "y": 2}'),
    ("properties", '{"x": [1, 2], }'),
    ("properties", '{"x": "a, NaN", "y": ":Infinity", "z": "[1e400", "w": "nan", "v": ",]"}'),
    ("properties", '{"n": 1' + "0" * 400 + ', "m": 1e-400, "o": 1e99}'),
    ("traits", '{"country": "Infinity, NaN"}'),
]


def _nan_rows() -> list[dict[str, Any]]:
    return [
        {"id": f"n{i}", "type": "identify", "contact_id": f"c{i % 3}",
         "timestamp": "2026-05-04T10:00:00Z", "properties": None, "traits": None, column: text}
        for i, (column, text) in enumerate(NAN_CELLS)
    ]  # fmt: skip


@pytest.mark.parametrize("kind", ["csv", "parquet", "duckdb"])
def test_nan_and_infinity_in_json_text_are_bad_records_in_both_engines(
    tmp_path: Path, kind: str
) -> None:
    rows = _nan_rows()
    table = pa.Table.from_pylist(rows)
    if kind == "csv":
        path = tmp_path / "events.csv"
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(rows[0].keys())
            writer.writerows([[v or "" for v in row.values()] for row in rows])
    else:
        path = tmp_path / "events.parquet"
        pq.write_table(table, path)
    pure_bad, batch_bad = _both_report(path)
    if kind == "duckdb":
        database = tmp_path / "warehouse.duckdb"
        with duckdb.connect(str(database)) as con:
            con.execute(f"CREATE TABLE events AS SELECT * FROM read_parquet('{path}')")
        batch_bad = []
        model = load_case(CASES[0]).model
        at = 1_900_000_000 * 1_000_000
        got = score_batch(
            model, EventTable("events", str(database)), at=at, on_bad=batch_bad.append
        )
        assert_same(got, replay(model, read_events([str(path)], on_bad=lambda _: None), at))
    assert [(r.line, r.field, r.message) for r in batch_bad] == [
        (r.line, r.field, r.message) for r in pure_bad
    ]
    first = 2 if kind == "csv" else 1  # the CSV header is line 1
    assert [r.line - first for r in batch_bad] == [0, 1, 2, 3, 4, 5]
    assert batch_bad[0].message.startswith("invalid JSON at column 7")


@pytest.mark.parametrize("kind", ["csv", "duckdb"])
def test_traits_that_are_no_json_on_an_identify_are_a_bad_record(tmp_path: Path, kind: str) -> None:
    # The traits of every identify were cast to JSON, a bad record's too: in a
    # CSV or a table (copied whole into ls_raw) the cast's error failed the run.
    rows = [
        {"id": "i1", "type": "identify", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",
         "traits": '{"plan": "pro"}'},
        {"id": "i2", "type": "identify", "contact_id": "c2", "timestamp": "2026-05-04T10:00:00Z",
         "traits": "{oops"},
    ]  # fmt: skip
    path = tmp_path / f"events.{'csv' if kind == 'csv' else 'parquet'}"
    if kind == "csv":
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(rows[0].keys())
            writer.writerows([row.values() for row in rows])
        pure_bad, batch_bad = _both_report(path)
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
        pure_bad = []
        model = load_case(CASES[0]).model
        at = 1_900_000_000 * 1_000_000
        expected = replay(model, read_events([str(path)], on_bad=pure_bad.append), at)
        database = tmp_path / "warehouse.duckdb"
        with duckdb.connect(str(database)) as con:
            con.execute(f"CREATE TABLE events AS SELECT * FROM read_parquet('{path}')")
        batch_bad = []
        got = score_batch(
            model, EventTable("events", str(database)), at=at, on_bad=batch_bad.append
        )
        assert_same(got, expected)
    assert [(r.line, r.field, r.message) for r in batch_bad] == [
        (r.line, r.field, r.message) for r in pure_bad
    ]
    assert [r.field for r in batch_bad] == ["traits"]


def test_nan_and_infinity_in_a_postgresql_table(postgresql_url: str, tmp_path: Path) -> None:
    # A text column holds anything; json keeps 1e400 as written (it refuses NaN).
    rows = _nan_rows()
    with psycopg.connect(postgresql_url) as pg:
        pg.execute(
            "CREATE TABLE events (id text, type text, contact_id text, "
            '"timestamp" text, properties text, traits json)'
        )
        with pg.cursor() as cur:
            for row in rows:
                cur.execute(
                    "INSERT INTO events VALUES (%s, %s, %s, %s, %s, %s)",
                    [row[n] for n in ("id", "type", "contact_id", "timestamp", "properties",
                                      "traits")],
                )  # fmt: skip
    bad: list[BadRecord] = []
    model = load_case(CASES[0]).model
    score_batch(model, EventTable("events", postgresql_url), at=1, on_bad=bad.append)
    path = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    pure: list[BadRecord] = []
    list(read_events([str(path)], on_bad=pure.append))
    assert [(r.line, r.field, r.message) for r in bad] == [
        (r.line, r.field, r.message) for r in pure
    ]
    assert len(bad) == 6


def test_nan_and_infinity_in_a_json_array(tmp_path: Path) -> None:
    # The pure reader's yajl reads 1e400 (a bad item) but not NaN: the array
    # cannot be read past it, an InputError after the items before it.
    head = '{"id": "e1", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z"'
    items = [
        head + ', "properties": {"x": "a, NaN", "n": 1' + "0" * 400 + "}}",
        head + ', "properties": {"x": 1e400}}',
        head.replace("e1", "e2") + "}",
        head + ', "properties": {"x": [-Infinity]}}',
        head.replace("e1", "e3") + "}",
    ]
    path = tmp_path / "events.json"
    path.write_text("[" + ",\n".join(items[:3]) + "]")
    pure_bad, batch_bad = _both_report(path)
    assert [(r.line, r.field, r.message) for r in batch_bad] == [
        (r.line, r.field, r.message) for r in pure_bad
    ]
    assert [(r.line, r.unit) for r in batch_bad] == [(2, "item")]
    path.write_text("[" + ",\n".join(items) + "]")
    model = load_case(CASES[0]).model
    pure_bad, batch_bad = [], []
    message = r"events.json: invalid JSON after item 3: lexical error: malformed number"
    with pytest.raises(InputError, match=message):
        list(read_events([str(path)], on_bad=pure_bad.append))
    with pytest.raises(InputError, match=message):
        score_batch(model, str(path), at=1, on_bad=batch_bad.append)
    assert batch_bad == pure_bad
    assert len(batch_bad) == 1


def test_bad_records_in_parquet_are_the_pure_readers(tmp_path: Path) -> None:
    # Parquet is checked as a view (ls_raw), the bad records counted by `ok` alone.
    types = ["view", "bad type", "", None, "x" * 64, "y" * 65, "ok.type:1-2_A", "é", "view\n"]
    path = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "id": [f"e{i}" for i in range(len(types))],
                "type": types,
                "contact_id": ["c1"] * len(types),
                "timestamp": ["2026-05-04T10:00:00Z"] * len(types),
            }
        ),
        path,
    )
    pure_bad, batch_bad = _both_report(path)
    # The same records and fields (the message shows the value as JSON, see docs/batch.md).
    assert [(r.line, r.field, r.message[:9]) for r in batch_bad] == [
        (r.line, r.field, r.message[:9]) for r in pure_bad
    ]
    assert [r.line for r in batch_bad] == [2, 3, 4, 6, 8, 9]


# Records with two faults each, as (cells in the columns' order, "" for an
# absent one; the first fault's field in a CSV or Parquet row; in a JSON
# Lines line). The pure reader converts a row's cells first, in the order of
# its columns (row_event: JSON text, a typed timestamp), then checks the
# record as parse_event does: id, type, contact_id and anonymous_id,
# timestamp, properties, traits. The batch engine checked JSON text last.
TWO_FAULTS: dict[str, tuple[dict[str, str], str, str]] = {
    "type and timestamp": (
        {"id": "t1", "type": "no spaces", "contact_id": "c1", "timestamp": "yesterday"},
        "type", "type",
    ),
    "no type and timestamp": (
        {"id": "t2", "type": "", "contact_id": "c1", "timestamp": "2026-02-30T10:00:00Z"},
        "type", "type",
    ),
    "no id and no contact": (
        {"id": "", "type": "view", "contact_id": "", "timestamp": "2026-05-04T10:00:00Z"},
        "id", "id",
    ),
    "no contact and timestamp": (
        {"id": "t4", "type": "view", "contact_id": "", "timestamp": "2026-05-04"},
        "contact_id", "contact_id",
    ),
    "timestamp and properties no object": (
        {"id": "t5", "type": "view", "contact_id": "c1", "timestamp": "9999-12-31T23:30:00-01:00",
         "properties": "[1]"},
        "timestamp", "timestamp",
    ),
    "properties and traits no objects": (
        {"id": "t6", "type": "identify", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",
         "properties": "[1]", "traits": "2"},
        "properties", "properties",
    ),
    "properties no JSON and no id": (
        {"id": "", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",
         "properties": "{oops"},
        "properties", "",
    ),
    "properties NaN and type": (
        {"id": "t8", "type": "b c", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",
         "properties": '{"x": NaN}'},
        "properties", "",
    ),
    "traits no JSON and timestamp": (
        {"id": "t9", "type": "identify", "contact_id": "c1", "timestamp": "yesterday",
         "traits": "{oops"},
        "traits", "",
    ),
    "traits before properties, both no JSON": (
        {"traits": '{"a": 1,]', "id": "t10", "type": "identify", "contact_id": "c1",
         "timestamp": "2026-05-04T10:00:00Z", "properties": "{oops"},
        "traits", "",
    ),
    "properties before traits, both no JSON": (
        {"properties": "{oops", "id": "t11", "type": "identify", "contact_id": "c1",
         "timestamp": "2026-05-04T10:00:00Z", "traits": '{"a": 1,]'},
        "properties", "",
    ),
}  # fmt: skip


def _two_faults_file(path: Path, record: dict[str, str]) -> None:
    """A good record, then `record`, in the format of `path`'s name."""
    good = {"id": "g1", "type": "view", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z"}
    columns = [*record, *(name for name in good if name not in record)]
    rows = [{name: row.get(name, "") for name in columns} for row in (good, record)]
    if path.suffix == ".csv":
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(columns)
            writer.writerows([row.values() for row in rows])
    elif path.suffix == ".parquet":
        table = {
            name: pa.array([row[name] or None for row in rows], pa.string()) for name in columns
        }
        pq.write_table(pa.table(table), path)
    else:  # JSON Lines: the JSON text of properties and traits as it is
        path.write_text("".join(_json_line(row) + "\n" for row in rows))


def _json_line(row: dict[str, str]) -> str:
    members = [
        f"{json.dumps(name)}: {text if name in ('properties', 'traits') else json.dumps(text)}"
        for name, text in row.items()
        if text
    ]
    return "{" + ", ".join(members) + "}"


def _shown_as_json(message: str) -> str:
    # The batch engine shows a value as JSON where the pure engine shows its
    # repr (docs/batch.md): 'no spaces' is "no spaces" (no value here holds a quote).
    return message.replace("'", '"')


@pytest.mark.parametrize("kind", ["jsonl", "csv", "parquet"])
@pytest.mark.parametrize("case", TWO_FAULTS)
def test_a_record_with_two_faults_is_reported_alike(tmp_path: Path, case: str, kind: str) -> None:
    record, row_field, line_field = TWO_FAULTS[case]
    path = tmp_path / f"events.{kind}"
    _two_faults_file(path, record)
    pure_bad, batch_bad = _both_report(path)
    assert [(r.line, r.field, _shown_as_json(r.message)) for r in batch_bad] == [
        (r.line, r.field, _shown_as_json(r.message)) for r in pure_bad
    ]
    assert [r.field for r in batch_bad] == [line_field if kind == "jsonl" else row_field]


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_several_files_check_a_rows_cells_in_their_own_column_order(
    tmp_path: Path, kind: str
) -> None:
    # The batch engine checked every file's cells in the first file's column
    # order, where the pure reader uses each file's own: a row with two bad
    # cells named the first file's first. The Parquet files' timestamps are
    # typed, the bad row's outside years 1-9999 (a cell fault too).
    orders = [
        ["id", "type", "contact_id", "properties", "timestamp", "traits"],
        ["traits", "id", "type", "contact_id", "timestamp", "properties"],
        ["timestamp", "properties", "traits", "id", "type", "contact_id"],
        ["id", "properties", "type", "contact_id", "traits", "timestamp"],  # the first's, in effect
    ]
    good = {"type": "view", "contact_id": "c1", "properties": "", "traits": ""}
    bad = {"type": "identify", "contact_id": "c1", "properties": "{oops", "traits": "{x"}
    paths = []
    for number, columns in enumerate(orders):
        rows = [{**good, "id": f"g{number}", "timestamp": "2026-05-04T10:00:00Z"},
                {**bad, "id": f"b{number}", "timestamp": "10209-01-01T00:00:00Z"}]  # fmt: skip
        path = tmp_path / f"part-{number}.{kind}"
        paths.append(str(path))
        if kind == "csv":
            rows[1]["timestamp"] = "2026-05-04T10:00:00Z"  # text: parse_event's, checked later
            with path.open("w", newline="") as out:
                writer = csv.writer(out)
                writer.writerow(columns)
                writer.writerows([[row[name] for name in columns] for row in rows])
        else:
            seconds = pa.array([1_777_888_800, 260_000_000_000], pa.int64())
            table = {
                name: seconds.cast(pa.timestamp("s", tz="UTC"))
                if name == "timestamp"
                else pa.array([row[name] or None for row in rows], pa.string())
                for name in columns
            }
            pq.write_table(pa.table(table), path)
    model = load_case(CASES[0]).model
    at = 1_900_000_000 * 1_000_000
    pure_bad: list[BadRecord] = []
    batch_bad: list[BadRecord] = []
    expected = replay(model, read_events(paths, on_bad=pure_bad.append), at)
    assert_same(score_batch(model, paths, at=at, on_bad=batch_bad.append), expected)
    assert [(r.source, r.line, r.field, r.message) for r in batch_bad] == [
        (r.source, r.line, r.field, r.message) for r in pure_bad
    ]
    firsts = ["properties", "traits", "timestamp", "properties"]
    if kind == "csv":
        firsts[2] = "properties"
    assert [r.field for r in batch_bad] == firsts


def test_a_typed_timestamp_out_of_range_is_a_rows_first_fault(tmp_path: Path) -> None:
    # The pure reader converts a typed timestamp with its row's cells, before
    # the id is checked; the batch engine said "id: required".
    seconds = pa.array([1_777_888_800, 260_000_000_000], pa.int64())
    path = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "id": pa.array(["e1", None], pa.string()),
                "type": ["view", "view"],
                "contact_id": ["c1", "c1"],
                "timestamp": seconds.cast(pa.timestamp("s", tz="UTC")),
            }
        ),
        path,
    )
    pure_bad, batch_bad = _both_report(path)
    assert [(r.line, r.field, r.message) for r in batch_bad] == [
        (r.line, r.field, r.message) for r in pure_bad
    ]
    assert [(r.line, r.field, r.message) for r in batch_bad] == [
        (2, "timestamp", "out of the range of dates (years 1 to 9999)")
    ]


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "+05:30"])
def test_a_timestamp_in_nanoseconds_with_a_time_zone(tmp_path: Path, zone: str) -> None:
    # DuckDB reads it as TIMESTAMPTZ_NS, which the batch engine refused as
    # "no time zone"; the pure reader takes whole microseconds and reports a
    # row with nanoseconds left over, before its id is checked.
    nanos = [
        1_777_888_800_123_456_000,
        1_777_888_800_123_456_789,  # 789 ns past a microsecond
        -1_000,  # before 1970, whole microseconds
        -1,
        1_777_888_801_000_000_001,  # and no id: the timestamp's cell is the row's first fault
        None,
    ]
    path = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "id": pa.array(["e1", "e2", "e3", "e4", None, "e6"], pa.string()),
                "type": ["view"] * 6,
                "contact_id": ["c1", "c1", "c2", "c2", "c1", "c1"],
                "timestamp": pa.array(nanos, pa.int64()).cast(pa.timestamp("ns", tz=zone)),
            }
        ),
        path,
    )
    pure_bad, batch_bad = _both_report(path)
    assert [(r.line, r.field, r.message) for r in batch_bad] == [
        (r.line, r.field, r.message) for r in pure_bad
    ]
    finer = "ns is finer than the microseconds the spec allows"
    assert [(r.line, r.field, r.message) for r in batch_bad] == [
        (2, "timestamp", f"1777888800123456789 {finer}"),
        (4, "timestamp", f"-1 {finer}"),
        (5, "timestamp", f"1777888801000000001 {finer}"),
        (6, "timestamp", "required"),
    ]
    # Without a time zone both refuse the column.
    naive = tmp_path / "naive.parquet"
    pq.write_table(pa.table({"id": ["e1"], "type": ["view"], "contact_id": ["c1"],
                             "timestamp": pa.array([0], pa.timestamp("ns"))}), naive)  # fmt: skip
    with pytest.raises(InputError, match="column timestamp has no time zone"):
        list(read_events([str(naive)], on_bad=_never))
    with pytest.raises(InputError, match="column timestamp has no time zone"):
        score_batch(load_case(CASES[0]).model, str(naive), at=1)


def test_globs_many_files_and_arrival_order(tmp_path: Path) -> None:
    case = load_case(CASES[7])  # identity and order: duplicates, links
    raw = _raw(CASES[7])
    half = len(raw) // 2
    _write(raw[:half], tmp_path / "part-1.parquet")
    _write(raw[half:], tmp_path / "part-2.parquet")
    got = score_batch(case.model, str(tmp_path / "part-*.parquet"), at=case.at)
    assert_same(got, replay(case.model, case.events, case.at))


def test_struct_columns_and_timestamps_with_time_zone(tmp_path: Path) -> None:
    case = load_case(CASES[3])  # fit from traits
    path = tmp_path / "events.parquet"
    rows = _raw(CASES[3])
    table = pa.Table.from_pylist(
        [{**row, "timestamp": pa.scalar(row["timestamp"])} for row in rows]
    )
    stamps = pa.array([case_event.timestamp for case_event in case.events], pa.int64()).cast(
        pa.timestamp("us", tz="UTC")
    )
    table = table.set_column(table.schema.get_field_index("timestamp"), "timestamp", stamps)
    pq.write_table(table, path)
    pure = replay(case.model, read_events([str(path)], on_bad=_never), case.at)
    assert_same(score_batch(case.model, str(path), at=case.at), pure)
    assert_same(score_batch(case.model, table, at=case.at), pure)


def test_a_duckdb_table(tmp_path: Path) -> None:
    case = load_case(CASES[6])
    source = tmp_path / "events.parquet"
    _write(_raw(CASES[6]), source)
    database = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(database)) as con:
        con.execute(f"CREATE TABLE events AS SELECT * FROM read_parquet('{source}')")
    got = score_batch(case.model, EventTable("events", database=str(database)), at=case.at)
    assert_same(got, replay(case.model, case.events, case.at))
    with pytest.raises(InputError, match="nope"):
        score_batch(case.model, EventTable("nope", database=str(database)), at=case.at)


@pytest.fixture
def postgresql_url(tmp_path: Path) -> Iterator[str]:
    """A schema of its own in the test PostgreSQL (skips, saying why, without one)."""
    with _empty_database("postgresql", tmp_path) as url:
        yield url


def test_a_postgresql_table(postgresql_url: str) -> None:
    case = load_case(CASES[6])
    url = postgresql_url
    with psycopg.connect(url) as pg:
        pg.execute(
            "CREATE TABLE events (id text, type text, contact_id text, anonymous_id text, "
            '"timestamp" timestamptz, properties jsonb, traits jsonb)'
        )
        with pg.cursor() as cur:
            for row in _raw(CASES[6]):
                cur.execute(
                    "INSERT INTO events VALUES (%s, %s, %s, %s, %s, %s, %s)",
                    [
                        row["id"], row["type"], row.get("contact_id"), row.get("anonymous_id"),
                        row["timestamp"],
                        orjson.dumps(row["properties"]).decode() if "properties" in row else None,
                        orjson.dumps(row["traits"]).decode() if "traits" in row else None,
                    ],
                )  # fmt: skip
    got = score_batch(case.model, EventTable("events", database=url), at=case.at)
    assert_same(got, replay(case.model, case.events, case.at))
    assert got.firings  # the case fires triggers: there was something to compare
    with pytest.raises(InputError, match="nope"):
        score_batch(case.model, EventTable("nope", database=url), at=case.at)


def test_the_command_line_writes_what_the_pure_engine_writes(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    model = Path(__file__).parents[1] / "examples" / "b2b-saas.yaml"
    subprocess.run(
        [sys.executable, "-m", "leadscore", "generate", str(events), "--contacts", "200",
         "--events", "4000"], check=True, capture_output=True,
    )  # fmt: skip
    outputs = {}
    for engine in ("pure", "duckdb"):
        cards, firings = tmp_path / f"{engine}.jsonl", tmp_path / f"{engine}-firings.jsonl"
        subprocess.run(
            [sys.executable, "-m", "leadscore", "score", str(model), str(events), "--at",
             "2026-07-01", "--engine", engine, "--format", "jsonl", "-o", str(cards),
             "--firings", str(firings), "--include-anonymous"], check=True, capture_output=True,
        )  # fmt: skip
        outputs[engine] = (cards.read_bytes(), firings.read_bytes())
    assert outputs["duckdb"] == outputs["pure"]
    assert outputs["pure"][1].count(b"\n") > 0
    parquet = tmp_path / "cards.parquet"
    subprocess.run(
        [sys.executable, "-m", "leadscore", "score", str(model), str(events), "--at",
         "2026-07-01", "--engine", "duckdb", "--format", "parquet", "-o", str(parquet)],
        check=True, capture_output=True,
    )  # fmt: skip
    rows = pq.read_table(parquet).to_pylist()
    lines = [orjson.loads(line) for line in outputs["pure"][0].splitlines()]
    identified = [line for line in lines if line["contact_id"] is not None]
    assert [row["contact_id"] for row in rows] == [line["contact_id"] for line in identified]
    assert [dict(row["tag_scores"]) for row in rows] == [line["tag_scores"] for line in identified]


def test_results_written_back_to_tables(tmp_path: Path, postgresql_url: str) -> None:
    events = tmp_path / "events.jsonl"
    _write(_raw(CASES[6]), events)
    model = tmp_path / "model.json"
    case = load_case(CASES[6])
    model.write_bytes(orjson.dumps(case.model.model_dump(by_alias=True, exclude_none=True)))
    warehouse = tmp_path / "warehouse.duckdb"
    at = format_timestamp(case.at)
    for cards, firings in (
        (f"{warehouse}#scores", f"{warehouse}#firings"),
        (f"{postgresql_url}#scores", f"{postgresql_url}#firings"),
    ):
        subprocess.run(
            [sys.executable, "-m", "leadscore", "score", str(model), str(events), "--engine",
             "duckdb", "--at", at, "-o", cards, "--firings", firings],
            check=True, capture_output=True,
        )  # fmt: skip
    expected = replay(case.model, case.events, _at(at))
    want = {card.contact_id: card.to_json() for card in expected.scorecards}
    with duckdb.connect(str(warehouse)) as con:
        rows = con.execute("SELECT contact_id, score, tag_scores FROM scores").fetchall()
        fired = con.execute("SELECT count(*) FROM firings").fetchone()
    assert {r[0]: (r[1], dict(r[2])) for r in rows} == {
        k: (v["score"], v["tag_scores"]) for k, v in want.items()
    }
    with psycopg.connect(postgresql_url) as pg:
        pg_rows = pg.execute("SELECT contact_id, score, tag_scores FROM scores").fetchall()
        pg_fired = pg.execute("SELECT count(*) FROM firings").fetchone()
    assert {r[0]: (r[1], r[2]) for r in pg_rows} == {
        k: (v["score"], v["tag_scores"]) for k, v in want.items()
    }
    assert fired == pg_fired == (len(expected.firings),)
    assert expected.firings


def _at(text: str) -> int:
    from leadscore import parse_timestamp

    return parse_timestamp(text)


BIG_MODEL = """
version: 1
name: big integers
rules:
  - {id: exact, event: order, where: {n: 123456789012345678901234567890}, points: 10}
  - {id: above, event: order, where: {n: {gt: 100000000000000000000}}, points: 5}
  - {id: tagged, event: order, points: 1, tag_from: n}
fit:
  - {id: account, where: {account: {eq: 18446744073709551616}}, points: 7}
"""


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv", "events"])
def test_an_integer_past_64_bits_scores_alike_on_both_engines(tmp_path: Path, kind: str) -> None:
    # The pure engine's readers made such an integer a float (a JSON array
    # failed at 2^63, the stream scorer's copy check raised a TypeError), and
    # the batch engine's tag_from wrote it as a double: "1.2345678901234568e+29".
    # Both now keep it as the service does, exactly: same awards, same tags.
    model = parse_model(BIG_MODEL)
    big = 123456789012345678901234567890
    records = [
        {"id": "i1", "type": "identify", "contact_id": "c1", "timestamp": "2026-05-04T09:00:00Z",
         "traits": {"account": 2**64}},
        {"id": "e1", "type": "order", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z",
         "properties": {"n": big}},
        {"id": "e2", "type": "order", "contact_id": "c2", "timestamp": "2026-05-04T10:00:00Z",
         "properties": {"n": -big}},
        {"id": "e3", "type": "order", "contact_id": "c3", "timestamp": "2026-05-04T10:00:00Z",
         "properties": {"n": 2**64}},
    ]  # fmt: skip
    path = tmp_path / f"events.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps(record) + "\n" for record in records))
    elif kind == "json":
        path.write_text(json.dumps(records))
    elif kind == "csv":
        header = ["id", "type", "contact_id", "timestamp", "properties", "traits"]
        with path.open("w", newline="") as out:
            csv.writer(out).writerows(
                [header, *[[r.get(n, "") if n not in ("properties", "traits") or n not in r
                            else json.dumps(r[n]) for n in header] for r in records]]
            )  # fmt: skip
    instant = parse_timestamp("2026-05-06T00:00:00Z")
    if kind == "events":
        events = [parse_event(record) for record in records]
        got = score_batch(model, events, at=instant)
    else:
        events = list(read_events([str(path)], on_bad=_never))
        got = score_batch(model, str(path), at=instant)
    assert events == [parse_event(record) for record in records]
    scorer = StreamScorer(Engine(model), instant)
    scorer.add_all(events)
    pure = scorer.finish()
    assert_same(got, pure)
    assert_same(pure, replay(model, events, instant))
    cards = {card.contact_id: card for card in pure.scorecards}
    assert (cards["c1"].score, cards["c1"].fit) == (16.0, 7)
    assert cards["c1"].tag_scores == {str(big): 1.0}
    assert (cards["c2"].score, cards["c2"].tag_scores) == (1.0, {str(-big): 1.0})
    assert (cards["c3"].score, cards["c3"].tag_scores) == (1.0, {str(2**64): 1.0})


def test_stage_set_of_a_typed_struct_equals_the_pure_reader(tmp_path: Path) -> None:
    # The stage a stage_set names is read from the struct's text field alone
    # (BatchPlan._stage_name_sql): a known stage, an unknown one, an empty name
    # and none at all must give the pure reader's stages and warnings.
    case = load_case(CASES[5])  # stages, with stage_set events
    rows = _raw(CASES[5])
    assert any(row["type"] == "stage_set" for row in rows)
    rows += [
        {"id": "z1", "type": "stage_set", "contact_id": "vic",
         "timestamp": "2026-06-06T10:00:00Z", "properties": {"stage": ""}},
        {"id": "z2", "type": "stage_set", "contact_id": "vic",
         "timestamp": "2026-06-07T10:00:00Z", "properties": {"source": "crm"}},
        {"id": "z3", "type": "stage_set", "contact_id": "wes",
         "timestamp": "2026-06-08T10:00:00Z", "properties": {"stage": "lead"}},
    ]  # fmt: skip
    path = tmp_path / "events.parquet"
    names = ["id", "type", "contact_id", "anonymous_id", "timestamp", "properties", "traits"]
    # Every key in every row: from_pylist takes the columns of the first row only.
    table = pa.Table.from_pylist([{name: row.get(name) for name in names} for row in rows])
    assert table.schema.field("properties").type.field("stage").type == pa.string()
    pq.write_table(table, path)
    pure = replay(case.model, read_events([str(path)], on_bad=_never), case.at)
    assert any("z1" in warning.event_id for warning in pure.warnings)
    assert_same(score_batch(case.model, str(path), at=case.at), pure)


def test_a_file_duckdb_cannot_read_is_an_input_error_naming_it(tmp_path: Path) -> None:
    # A Latin-1 CSV and a damaged Parquet file were DuckDB tracebacks
    # (InvalidInputException) out of `score --engine duckdb`. A CSV file
    # DuckDB cannot read is read by the pure reader's parse: its error is
    # the pure reader's.
    model = parse_model("version: 1\nname: m\nrules: []\n")
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        b"id,type,contact_id,timestamp\ne1,signup,c1,2026-05-04T10:00:00Z\n"
        b"e2,signup,M\xfcller,2026-05-04T10:00:00Z\n"
    )
    damaged = tmp_path / "damaged.parquet"
    damaged.write_bytes(b"PAR1 not a parquet file at all")
    at = parse_timestamp("2026-06-01T00:00:00Z")
    with pytest.raises(InputError, match=f"^{latin}: not UTF-8 text: invalid start byte$"):
        list(read_events([str(latin)], on_bad=_never))
    for path, reason in ((latin, "not UTF-8 text: invalid start byte"),
                         (damaged, "cannot read it: .*parquet")):  # fmt: skip
        with pytest.raises(InputError, match=f"(?is)^{path}: {reason}"):
            score_batch(model, str(path), at=at)
        done = subprocess.run(
            [sys.executable, "-m", "leadscore", "score",
             str(Path(__file__).parents[1] / "examples" / "b2b-saas.yaml"),
             str(path), "--engine", "duckdb"], capture_output=True, check=False, timeout=120,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert re.search(f"(?is){path}: {reason}", done.stderr.decode())
        assert b"Traceback" not in done.stderr


def test_a_csv_file_named_otherwise_counts_its_header_line(tmp_path: Path) -> None:
    # The header was counted only for a name ending in .csv: with --input-format
    # csv, events.txt's bad record was line 1 (the header's) in the batch engine.
    path = tmp_path / "events.txt"
    path.write_text("id,type,contact_id,timestamp\n,view,c1,2026-05-04T10:00:00Z\n")
    pure: list[BadRecord] = []
    batch: list[BadRecord] = []
    list(read_events([str(path)], format="csv", on_bad=pure.append))
    score_batch(load_case(CASES[0]).model, str(path), format="csv", at=1, on_bad=batch.append)
    assert [(r.line, r.field) for r in batch] == [(r.line, r.field) for r in pure] == [(2, "id")]


# CSV rows of more or fewer cells than the header: the pure reader reports
# each ("expected 5 cells as in the header, got 3") and reads the others.
# DuckDB's reader, sniffing the dialect, took such a file for one of other
# columns and failed the run ("missing columns: ..."), read the first cells
# of a longer row, and a row whose extra cells are empty as a good one.
_HEADER = "id,type,contact_id,timestamp,properties\n"
_ROWS = "".join(
    f'g{i},view,c{i % 2},2026-05-04T10:00:0{i}Z,"{{""a"": {i}}}"\n' for i in range(1, 4)
)
CELL_COUNTS: dict[str, tuple[str, list[tuple[int, str]]]] = {
    "one row, too few": (_HEADER + "e1,view,c1\n", [(2, "got 3")]),
    "one row, too many": (_HEADER + "e1,view,c1,2026-05-04T10:00:00Z,{},x\n", [(2, "got 6")]),
    "among good rows": (
        _HEADER + _ROWS + "e1,view,c1\n" + _ROWS + "e2\n"
        + "e3,view,c1,2026-05-04T10:00:00Z,,x,y\n",
        [(5, "got 3"), (9, "got 1"), (10, "got 7")],
    ),
    "extra empty cells": (
        _HEADER + _ROWS + "e1,view,c1,2026-05-04T10:00:00Z,,\n"
        + "e2,view,c1,2026-05-04T10:00:00Z,{},,,\n",
        [(5, "got 6"), (6, "got 8")],
    ),
    "quoted commas and line breaks": (
        _HEADER + '"e\n1",view,"c,1"\n' + _ROWS
        + 'e2,view,c1,2026-05-04T10:00:00Z,"{""a"": 1, ""b"": 2}","x,\r\ny"\n' + _ROWS,
        [(2, "got 3"), (7, "got 6")],
    ),
    "first row bad, gzip, crlf": (
        (_HEADER + "e1,view\n" + _ROWS).replace("\n", "\r\n"), [(2, "got 2")],
    ),
    "past the sniffer's sample": (
        _HEADER + _ROWS * 8000 + "e1,view,c1\n" + _ROWS, [(24002, "got 3")],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", CELL_COUNTS)
def test_a_csv_row_of_another_length_than_the_header_is_a_bad_record(
    tmp_path: Path, case: str
) -> None:
    text, expected = CELL_COUNTS[case]
    path = tmp_path / ("events.csv.gz" if "gzip" in case else "events.csv")
    data = text.encode()
    path.write_bytes(gzip.compress(data) if "gzip" in case else data)
    pure_bad, batch_bad = _both_report(path)
    assert [(r.line, r.field, r.message) for r in batch_bad] == [
        (r.line, r.field, r.message) for r in pure_bad
    ]
    assert [(r.line, r.field, r.message.rsplit(", ", 1)[-1]) for r in batch_bad] == [
        (line, "", got) for line, got in expected
    ]
    first = f"{path}:{expected[0][0]}: expected 5 cells as in the header, {expected[0][1]} "
    with pytest.raises(InputError, match=re.escape(first + "(strict")):
        score_batch(load_case(CASES[0]).model, str(path), at=1, strict=True)


def test_csv_lines_are_numbered_past_blank_lines_and_line_breaks_in_cells(
    tmp_path: Path,
) -> None:
    # A bad record's line is the line it starts on, as the csv module counts
    # them. The batch engine numbered DuckDB's rows: a blank line, or a quoted
    # cell of two lines, before a bad record made its line one too small.
    texts = [
        _HEADER + 'g1,view,c1,2026-05-04T10:00:00Z,"{\n""a"": 1}"\n' + "\n\n"
        + ",view,c1,2026-05-04T10:00:00Z,\n" + '"g\r2",view,c1,2026-05-04T10:00:00Z,\n'
        + "e3,view,,2026-05-04T10:00:00Z,\n\n",
        _HEADER + _ROWS + "e4,view,c1,2026-05-04,\n",  # numbered alike as it is
        _HEADER + _ROWS + "\n" + "e5,b c,c1,2026-05-04T10:00:00Z,\n",
        "\r\n" + _HEADER + ",view,c1,2026-05-04T10:00:00Z,\n",  # read through a copy
        (_HEADER + "g1,view,c1,2026-05-04T10:00:00Z,\n\n" + "e6,view,c1,,\n").replace(
            "\n", "\r\n"
        ),  # gzipped
    ]  # fmt: skip
    paths = []
    for number, text in enumerate(texts):
        paths.append(str(tmp_path / f"part-{number}.csv"))
        if number == 4:
            paths[-1] += ".gz"
        data = text.encode()
        Path(paths[-1]).write_bytes(gzip.compress(data) if number == 4 else data)
    model = load_case(CASES[0]).model
    at = 1_900_000_000 * 1_000_000
    for files in ([paths[0]], paths):
        pure_bad: list[BadRecord] = []
        batch_bad: list[BadRecord] = []
        expected = replay(model, read_events(files, on_bad=pure_bad.append), at)
        assert_same(score_batch(model, files, at=at, on_bad=batch_bad.append), expected)
        assert [(r.source, r.line, r.field, _shown_as_json(r.message)) for r in batch_bad] == [
            (r.source, r.line, r.field, _shown_as_json(r.message)) for r in pure_bad
        ]
    assert [(Path(r.source).name, r.line, r.field) for r in batch_bad] == [
        ("part-0.csv", 6, "id"),
        ("part-0.csv", 9, "contact_id"),  # a \r in a quoted cell ends a line too
        ("part-1.csv", 5, "timestamp"),
        ("part-2.csv", 6, "type"),
        ("part-3.csv", 3, "id"),
        ("part-4.csv.gz", 4, "timestamp"),
    ]


def test_a_csv_file_without_rows_has_no_records(tmp_path: Path) -> None:
    # The pure reader reads no records from an empty file (or one of blank
    # lines) and checks no columns; DuckDB's sniffer gave it a column
    # "column0", refused as the wrong columns, failing the run.
    empty, blank, one = tmp_path / "empty.csv", tmp_path / "blank.csv", tmp_path / "one.csv"
    empty.write_bytes(b"")
    blank.write_bytes(b"\r\n\n")
    one.write_text(_HEADER + _ROWS)
    model = load_case(CASES[0]).model
    at = 1_900_000_000 * 1_000_000
    for files in ([empty], [blank], [empty, one, blank]):
        names = [str(path) for path in files]
        expected = replay(model, read_events(names, on_bad=_never), at)
        assert_same(score_batch(model, names, at=at, on_bad=_never), expected)
