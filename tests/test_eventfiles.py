"""Reading event files: every format yields the same events and reports bad records alike."""

from __future__ import annotations

import csv
import gzip
import io
import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leadscore import _eventfiles
from leadscore._errors import InputError
from leadscore._eventfiles import BadRecord, count_hint, read_events
from leadscore._events import FIELDS, Event, parse_event

RECORDS: list[dict[str, Any]] = [
    {
        "id": "e1",
        "type": "page_view",
        "contact_id": "c1",
        "timestamp": "2026-05-04T10:00:00Z",
        "properties": {"url": "https://x.io/pricing", "utm": {"source": "ads"}, "count": 3},
    },
    {
        "id": "e2",
        "type": "identify",
        "contact_id": "c1",
        "anonymous_id": "a1",
        "timestamp": "2026-05-04T12:00:00.123456+02:00",
        "traits": {"title": "CTO", "employees": 250},
    },
    {
        "id": "e3",
        "type": "email_click",
        "anonymous_id": "a2",
        "timestamp": "2026-05-05T00:00:00.5Z",
        "properties": {"url": "https://x.io/mail"},
    },
]
EVENTS = [parse_event(record) for record in RECORDS]
GOOD = orjson.dumps(RECORDS[0]).decode()


def read(paths: Sequence[str | Path], **options: Any) -> tuple[list[Event], list[BadRecord]]:
    bad: list[BadRecord] = []
    events = list(read_events([str(path) for path in paths], on_bad=bad.append, **options))
    return events, bad


def no_bad(bad: BadRecord) -> None:
    pytest.fail(f"unexpected bad record: {bad}")


def where(bad: list[BadRecord]) -> list[tuple[str, int, str]]:
    return [(record.unit, record.line, record.field) for record in bad]


# Writers of the same records in each format


def jsonl_bytes(records: Sequence[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(record) + b"\n" for record in records)


def csv_text(records: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    for record in records:
        writer.writerow([_csv_cell(record.get(name)) for name in FIELDS])
    return out.getvalue()


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def text_table(records: Sequence[dict[str, Any]]) -> pa.Table:
    """Every column a string, properties and traits as JSON text."""
    columns = {
        name: [None if r.get(name) is None else _csv_cell(r.get(name)) for r in records]
        for name in FIELDS
    }
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def typed_table(records: Sequence[dict[str, Any]], unit: str = "us") -> pa.Table:
    """Timestamps with a time zone, properties and traits as structs."""
    columns: dict[str, Any] = {
        name: pa.array([r.get(name) for r in records], pa.string())
        for name in ("id", "type", "contact_id", "anonymous_id")
    }
    stamps = [datetime.fromisoformat(r["timestamp"]).astimezone(UTC) for r in records]
    columns["timestamp"] = pa.array(stamps, pa.timestamp(unit, tz="UTC"))
    columns["properties"] = pa.array([r.get("properties") for r in records])
    columns["traits"] = pa.array([r.get("traits") for r in records])
    return pa.table(columns)


def write_jsonl(folder: Path) -> Path:
    path = folder / "events.jsonl"
    path.write_bytes(jsonl_bytes(RECORDS))
    return path


def write_json(folder: Path) -> Path:
    path = folder / "events.json"
    path.write_bytes(orjson.dumps(RECORDS, option=orjson.OPT_INDENT_2))
    return path


def write_csv(folder: Path) -> Path:
    path = folder / "events.csv"
    path.write_text(csv_text(RECORDS), encoding="utf-8")
    return path


def write_parquet_text(folder: Path) -> Path:
    path = folder / "text.parquet"
    pq.write_table(text_table(RECORDS), path)
    return path


def write_parquet_typed(folder: Path) -> Path:
    path = folder / "typed.parquet"
    pq.write_table(typed_table(RECORDS), path)
    return path


def write_parquet_nanos(folder: Path) -> Path:
    path = folder / "nanos.parquet"
    pq.write_table(typed_table(RECORDS, unit="ns"), path)
    return path


def gzipped(write: Callable[[Path], Path]) -> Callable[[Path], Path]:
    def write_gz(folder: Path) -> Path:
        plain = write(folder)
        path = plain.with_name(plain.name + ".gz")
        path.write_bytes(gzip.compress(plain.read_bytes()))
        return path

    write_gz.__name__ = f"{write.__name__}_gz"
    return write_gz


WRITERS = [
    write_jsonl,
    write_json,
    write_csv,
    write_parquet_text,
    write_parquet_typed,
    write_parquet_nanos,
    gzipped(write_jsonl),
    gzipped(write_json),
    gzipped(write_csv),
]


@pytest.mark.parametrize("write", WRITERS, ids=lambda write: write.__name__)
def test_every_format_reads_the_same_events(tmp_path: Path, write: Callable[[Path], Path]) -> None:
    events, bad = read([write(tmp_path)])
    assert bad == []
    assert events == EVENTS


@pytest.mark.parametrize(
    ("write", "fmt"),
    [
        (write_jsonl, "jsonl"),
        (write_json, "json"),
        (write_csv, "csv"),
        (write_parquet_typed, "parquet"),
        (gzipped(write_jsonl), "jsonl"),
    ],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_the_format_option_overrides_the_name(
    tmp_path: Path, write: Callable[[Path], Path], fmt: str
) -> None:
    misleading = tmp_path / ("events.jsonl" if fmt == "csv" else "events.csv")
    path = write(tmp_path).rename(misleading)
    assert read([path], format=fmt) == (EVENTS, [])


def test_files_are_read_one_after_another(tmp_path: Path) -> None:
    first = tmp_path / "first.jsonl"
    first.write_bytes(jsonl_bytes(RECORDS[2:]))
    second = tmp_path / "second.csv"
    second.write_text(csv_text(RECORDS[:2]), encoding="utf-8")
    events, _ = read([first, second])
    assert [event.id for event in events] == ["e3", "e1", "e2"]


# Bad records: reported with source, line and field; the good ones still come through


def test_jsonl_bad_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [
        GOOD,
        "",
        '{"id": "x", ',
        GOOD.replace("2026-05-04T10:00:00Z", "2026-05-04 10:00"),
        orjson.dumps(RECORDS[2]).decode(),
        "[1, 2]",
        GOOD.replace('"properties"', '"propertes"'),
        '{"id": "x", "type": "a", "contact_id": "c", "timestamp": NaN}',
    ]
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    events, bad = read([path])
    assert events == [EVENTS[0], EVENTS[2]]
    assert where(bad) == [
        ("line", 3, ""),
        ("line", 4, "timestamp"),
        ("line", 6, ""),
        ("line", 7, "propertes"),
        ("line", 8, ""),
    ]
    assert all(record.source == str(path) for record in bad)
    assert str(bad[1]).startswith(f"{path}:4: timestamp: expected an RFC 3339 timestamp")
    assert str(bad[0]).startswith(f"{path}:3: invalid JSON at column")


def test_jsonl_bad_utf8_is_a_bad_record(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(GOOD.encode() + b"\n" + GOOD.replace("c1", "\xff").encode("latin-1") + b"\n")
    events, bad = read([path])
    assert events == [EVENTS[0]]
    assert where(bad) == [("line", 2, "")]


def test_gzip_bad_lines_keep_their_numbers(tmp_path: Path) -> None:
    path = tmp_path / "events.ndjson.gz"
    path.write_bytes(gzip.compress(f"{GOOD}\n\nnot json\n{GOOD}\n".encode()))
    events, bad = read([path])
    assert len(events) == 2
    assert where(bad) == [("line", 3, "")]


def test_json_array_bad_items_are_numbered(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    items = [RECORDS[0], {**RECORDS[1], "timestamp": "yesterday"}, 5, RECORDS[2]]
    path.write_bytes(orjson.dumps(items, option=orjson.OPT_INDENT_2))
    events, bad = read([path])
    assert events == [EVENTS[0], EVENTS[2]]
    assert where(bad) == [("item", 2, "timestamp"), ("item", 3, "")]
    assert str(bad[0]).startswith(f"{path}: item 2: timestamp: expected an RFC 3339")


def test_json_array_keeps_floats_as_floats(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_bytes(orjson.dumps([{**RECORDS[0], "properties": {"value": 12.5}}]))
    events, _ = read([path])
    assert type(events[0].properties["value"]) is float


def test_json_top_level_object_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_bytes(orjson.dumps({"events": RECORDS}))
    with pytest.raises(InputError, match=r"events\.json: expected a JSON array .* got an object"):
        read([path])


def test_json_syntax_error_ends_the_file_after_the_good_items(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text(f"[{GOOD},\n{GOOD[:20]}", encoding="utf-8")
    events: list[Event] = []
    with pytest.raises(InputError, match=r"events\.json: invalid JSON after item 1: parse error"):
        events.extend(read_events([str(path)], on_bad=no_bad))
    assert events == [EVENTS[0]]


def test_csv_bad_rows_are_reported_by_line(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    header = ",".join(FIELDS)
    path.write_text(
        "\n".join(
            [
                header,  # 1
                'e1,page_view,c1,,2026-05-04T10:00:00Z,"{""url"": ""https://x.io/pricing"",',
                ' ""utm"": {""source"": ""ads""}, ""count"": 3}",',  # 3: end of the quoted cell
                "e4,page_view,c1,,soon,,",  # 4
                "e5,page_view,c1,,2026-05-04T10:00:00Z,{oops,",  # 5
                'e6,page_view,c1,,2026-05-04T10:00:00Z,"[1]",',  # 6
                "e7,page_view,c1",  # 7
                '"e8"x,page_view,c1,,2026-05-04T10:00:00Z,,',  # 8
                "",  # 9: blank
                'e3,email_click,,a2,2026-05-05T00:00:00.5Z,"{""url"": ""https://x.io/mail""}",',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    events, bad = read([path])
    assert events == [EVENTS[0], EVENTS[2]]
    assert events[1].contact_id is None  # an empty cell is an absent field
    assert where(bad) == [
        ("line", 4, "timestamp"),
        ("line", 5, "properties"),
        ("line", 6, "properties"),
        ("line", 7, ""),
        ("line", 8, ""),
    ]
    assert str(bad[2]).startswith(f"{path}:6: properties: expected a JSON object")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("type,contact_id,timestamp", "missing columns: id"),
        ("id,type,timestamp", "missing columns: contact_id or anonymous_id"),
        ("id,type,contact_id,timestamp,email", "unknown columns: email"),
        ("id,type,contact_id,timestamp,id", "repeated columns: id"),
    ],
)
def test_csv_bad_header_is_an_input_error(tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "events.csv"
    path.write_text(header + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"events\.csv: .*{message}"):
        read([path])


def test_csv_columns_may_come_in_any_order_and_omit_optional_ones(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text("\ufefftimestamp,contact_id,type,id\n2026-05-04T10:00:00Z,c1,page_view,e1\n")
    events, bad = read([path])
    assert bad == []
    assert events == [parse_event({k: v for k, v in RECORDS[0].items() if k != "properties"})]


def test_parquet_bad_rows_are_numbered_across_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_eventfiles, "_PARQUET_BATCH", 2)
    records = [*RECORDS[:2], {**RECORDS[2], "timestamp": "soon"}, RECORDS[2]]
    records.append({**RECORDS[0], "id": "e5", "properties": "{oops"})
    path = tmp_path / "events.parquet"
    table = text_table(records)
    pq.write_table(table, path)
    events, bad = read([path])
    assert events == EVENTS
    assert where(bad) == [("row", 3, "timestamp"), ("row", 5, "properties")]
    assert str(bad[0]).startswith(f"{path}: row 3: timestamp: ")


def test_parquet_nanoseconds_finer_than_a_microsecond_are_bad_records(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    table = typed_table(RECORDS, unit="ns")
    nanos = pa.array([1_777_888_999_000_000_001, None, 1_777_888_999_000_001_000])
    stamps = nanos.cast(pa.timestamp("ns", tz="UTC"))
    pq.write_table(table.set_column(4, "timestamp", stamps), path)
    events, bad = read([path])
    assert [event.timestamp for event in events] == [1_777_888_999_000_001]
    assert where(bad) == [("row", 1, "timestamp"), ("row", 2, "timestamp")]
    assert bad[1].message == "required"


def test_parquet_timestamps_in_other_zones_and_units_are_exact(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    table = typed_table(RECORDS[:1])
    seconds = pa.array([1_777_888_999], pa.timestamp("s", tz="+02:00"))
    pq.write_table(table.set_column(4, "timestamp", seconds), path)
    events, _ = read([path])
    assert events[0].timestamp == 1_777_888_999_000_000


def test_parquet_map_traits_can_remove_a_trait(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    traits = pa.array([[("title", "CTO"), ("phone", None)]], pa.map_(pa.string(), pa.string()))
    table = typed_table(RECORDS[1:2]).set_column(6, "traits", traits)
    pq.write_table(table, path)
    events, _ = read([path])
    assert events[0].traits == {"title": "CTO", "phone": None}


@pytest.mark.parametrize(
    ("column", "array", "message"),
    [
        ("timestamp", pa.array([datetime(2026, 5, 4)], pa.timestamp("us")), "no time zone"),
        ("timestamp", pa.array([1], pa.int64()), "column timestamp is int64"),
        ("id", pa.array([1], pa.int64()), "column id is int64; expected strings"),
        ("properties", pa.array([[1]]), "column properties is list<"),
    ],
)
def test_parquet_columns_of_the_wrong_type_are_input_errors(
    tmp_path: Path, column: str, array: pa.Array, message: str
) -> None:
    path = tmp_path / "events.parquet"
    table = typed_table(RECORDS[:1])
    pq.write_table(table.set_column(FIELDS.index(column), column, array), path)
    with pytest.raises(InputError, match=message):
        read([path])


def test_parquet_with_unknown_columns_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    pq.write_table(text_table(RECORDS).append_column("email", pa.array(["", "", ""])), path)
    with pytest.raises(InputError, match="unknown columns: email"):
        read([path])


def test_a_broken_parquet_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    path.write_bytes(b"PAR1 and then nothing")
    with pytest.raises(InputError, match=r"events\.parquet: not a readable Parquet file"):
        read([path])


# Standard input and sniffing


def _parquet_bytes() -> bytes:
    out = io.BytesIO()
    pq.write_table(typed_table(RECORDS), out)
    return out.getvalue()


@pytest.mark.parametrize(
    "data",
    [
        jsonl_bytes(RECORDS),
        b"\n  " + orjson.dumps(RECORDS),
        b"\xef\xbb\xbf" + orjson.dumps(RECORDS),
        csv_text(RECORDS).encode(),
        gzip.compress(jsonl_bytes(RECORDS)),
        gzip.compress(csv_text(RECORDS).encode()),
        _parquet_bytes(),
    ],
    ids=["jsonl", "json-array", "bom", "csv", "gzip-jsonl", "gzip-csv", "parquet"],
)
def test_stdin_format_is_sniffed(data: bytes) -> None:
    events, bad = read(["-"], stdin=io.BytesIO(data))
    assert bad == []
    assert events == EVENTS


def test_stdin_bad_records_name_stdin() -> None:
    _, bad = read(["-"], stdin=io.BytesIO(b"{}\n"))
    assert [str(record) for record in bad] == ["<stdin>:1: id: required"]


def test_stdin_format_option_wins_over_sniffing() -> None:
    with pytest.raises(InputError, match="expected a JSON array"):
        read(["-"], format="json", stdin=io.BytesIO(jsonl_bytes(RECORDS)))


def test_empty_stdin_has_no_events() -> None:
    assert read(["-"], stdin=io.BytesIO(b"")) == ([], [])


def test_an_unknown_extension_is_sniffed(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    path.write_bytes(jsonl_bytes(RECORDS))
    assert read([path]) == (EVENTS, [])


def test_real_stdin_streams_through_a_pipe() -> None:
    script = (
        "import sys\n"
        "from leadscore._eventfiles import read_events\n"
        "for event in read_events(['-'], on_bad=lambda bad: print('bad', bad)):\n"
        "    print(event.id)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        input=jsonl_bytes(RECORDS) + b"nope\n",
        capture_output=True,
        check=True,
    )
    lines = done.stdout.decode().splitlines()
    assert lines[:3] == ["e1", "e2", "e3"]
    assert lines[3].startswith("bad <stdin>:4: invalid JSON at column 1: ")
    assert len(lines) == 4


# Inputs that cannot be read at all


def test_a_missing_file_fails_before_any_event(tmp_path: Path) -> None:
    good = write_jsonl(tmp_path)
    with pytest.raises(InputError, match=r"nowhere\.jsonl: cannot read: No such file"):
        read_events([str(good), str(tmp_path / "nowhere.jsonl")], on_bad=no_bad)


def test_a_directory_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        read([tmp_path])


def test_an_unknown_format_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown event format 'xml'"):
        read([write_jsonl(tmp_path)], format="xml")


def test_stdin_can_be_read_once() -> None:
    with pytest.raises(InputError, match="only once"):
        read(["-", "-"], stdin=io.BytesIO(b""))


def test_gzipped_parquet_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.parquet.gz"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="Parquet compresses itself"):
        read([path])


def test_a_corrupt_gzip_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(jsonl_bytes(RECORDS * 50))[:-30])
    with pytest.raises(InputError, match=r"events\.jsonl\.gz: cannot read"):
        read([path])


def test_invalid_utf8_in_csv_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(csv_text(RECORDS).encode() + b"e9,page_view,\xff\n")
    with pytest.raises(InputError, match=r"events\.csv: not UTF-8 text"):
        read([path])


# The caller decides about bad records


def test_on_bad_raising_stops_the_reading(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(f"{GOOD}\nbad\n{GOOD}\n", encoding="utf-8")

    def strict(bad: BadRecord) -> None:
        raise InputError(str(bad))

    seen: list[Event] = []
    with pytest.raises(InputError, match=r"events\.jsonl:2: invalid JSON"):
        seen.extend(read_events([str(path)], on_bad=strict))
    assert seen == [EVENTS[0]]


class _Tracked(io.BytesIO):
    """Standard input that tells how far it has been read."""


@pytest.mark.parametrize("encode", [jsonl_bytes, orjson.dumps], ids=["jsonl", "json-array"])
def test_events_stream_rather_than_load_whole(encode: Callable[[Any], bytes]) -> None:
    data = encode(RECORDS * 20_000)  # some megabytes
    stdin = _Tracked(data)
    events = read_events(["-"], on_bad=no_bad, stdin=stdin)
    assert next(events) == EVENTS[0]
    assert stdin.tell() < len(data) / 2


def test_count_hint_adds_up_file_sizes(tmp_path: Path) -> None:
    first, second = write_jsonl(tmp_path), write_csv(tmp_path)
    total = first.stat().st_size + second.stat().st_size
    assert count_hint([str(first), str(second), str(tmp_path / "gone")]) == total
    assert count_hint([str(first), "-"]) is None


BIG = 123456789012345678901234567890


@pytest.mark.parametrize("kind", ["jsonl", "json", "csv"])
def test_an_integer_past_64_bits_is_read_exactly(tmp_path: Path, kind: str) -> None:
    # orjson made 123456789012345678901234567890 a float (1.2345678901234568e+29)
    # in JSON Lines and CSV cells, and yajl ended a JSON array at 2^63 ("integer
    # overflow"); the service keeps such integers exactly, and so do the readers.
    values = {"big": BIG, "negative": -BIG, "u64": 2**64 - 1, "past": 2**64,
              "fraction": 0.1, "zero": -0.0, "nested": [{"n": BIG, "f": 1.5e300}]}  # fmt: skip
    records = [{**RECORDS[0], "properties": values}, *RECORDS[1:]]
    path = tmp_path / f"events.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps(record) + "\n" for record in records))
    elif kind == "json":
        path.write_text(json.dumps(records, indent=2))
    else:
        header = list(FIELDS)
        rows = [[json.dumps(r[n]) if n in ("properties", "traits") and n in r else r.get(n, "")
                 for n in header] for r in records]  # fmt: skip
        with path.open("w", newline="") as out:
            csv.writer(out).writerows([header, *rows])
    events, bad = read([path])
    assert bad == []
    assert events == [parse_event(record) for record in records]
    got = events[0].properties
    assert got == values
    assert [type(got[key]) for key in values] == [type(value) for value in values.values()]
    assert str(got["zero"]) == "-0.0"


def test_json_array_numbers_beyond_doubles_are_bad_items(tmp_path: Path) -> None:
    # 1e400 is no double: orjson's JSON Lines refuse the line; the array
    # reader reports the item and reads on (yajl had ended the file).
    body = json.dumps([RECORDS[0], {**RECORDS[1], "properties": {"n": 0}}, RECORDS[2]])
    path = tmp_path / "events.json"
    path.write_text(body.replace('{"n": 0}', '{"n": 1e400}'))
    events, bad = read([path])
    assert events == [EVENTS[0], EVENTS[2]]
    assert where(bad) == [("item", 2, "")]
    assert "infinity" in bad[0].message
    lines = tmp_path / "events.jsonl"
    lines.write_text(
        "\n".join(json.dumps(r) for r in RECORDS).replace('"id": "e2"', '"id": "e2", "n": 1e400')
    )
    events, bad = read([lines])
    assert where(bad) == [("line", 2, "")]


def test_a_line_read_for_its_big_integer_refuses_what_orjson_refuses(tmp_path: Path) -> None:
    # A line with a run of 19 digits is read by json, which takes NaN, 1e400
    # and an escaped lone surrogate: each is a bad line, with or without the
    # long integer, as orjson has it.
    path = tmp_path / "events.jsonl"
    good = json.dumps({**RECORDS[0], "properties": {"n": BIG}})
    faults = ['"\\ud800"', "NaN", "1e400", '{"\\udc00": 1}']
    lines = [good]
    for fault in faults:
        for extra in ("", f', "m": {BIG}'):
            lines.append(good.replace(f'"n": {BIG}', f'"n": {fault}{extra}'))
    path.write_text("\n".join(lines) + "\n")
    events, bad = read([path])
    assert [event.properties for event in events] == [{"n": BIG}]
    assert where(bad) == [("line", n, "") for n in range(2, 2 + 2 * len(faults))]
