"""Every `where` test of spec 2.2 and `tag_from` in SQL (the batch engine) against
the pure engine's predicates, on random values and conditions (hypothesis)."""

from __future__ import annotations

import fnmatch
import functools
from typing import Any

import duckdb
import orjson
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadscore._batch.sql import (
    ConditionCompiler,
    Probe,
    glob_like,
    glob_regex,
    literal,
    shape_of,
    tag_text,
)
from leadscore._conditions import compile_where, lookup, text_of
from leadscore._semantics import TESTS

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Values that sit on the edges of the rules: numeric strings with spaces and
# exponents, text that differs only in case, booleans beside 0/1, null.
SCALARS = st.sampled_from(
    [
        "a", "A", " a ", "ab", "Ba", "abc", "10", " 10 ", "10.0", "1e1", "+10", "-3.5",
        ".5", "5.", "0x1A", "1_000", "NaN", "", " ", "a/b/pricing", "x*y", "[a]", "é", "É",
        10, 10.0, -3.5, 0, 1, 2.5, 1e20, -0.0, True, False, None,
    ]
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.dictionaries(st.sampled_from(["a", "b"]), inner, max_size=2),
    max_leaves=3,
)
OPERANDS = st.sampled_from(["a", "A", "10", 10, 10.0, -3.5, "1e1", True, False, "ab", "é"])
GLOBS = st.text(alphabet="ab*?[]!-/é%_\\", max_size=6)
PATHS = st.sampled_from(["k", "k.a", "k.b", "m"])


@st.composite
def path_tests(draw: st.DrawFn) -> dict[str, Any]:
    # Every test of spec 2.2, and the bare scalar that means eq.
    name = draw(st.sampled_from([*TESTS, "scalar"]))
    if name == "scalar":
        return {"scalar": draw(OPERANDS)}
    if name in ("in", "not_in"):
        return {name: draw(st.lists(OPERANDS, min_size=1, max_size=3))}
    if name in ("contains", "starts_with", "ends_with"):
        return {name: draw(st.sampled_from(["a", "B", "/", "10", "é", ""]))}
    if name == "glob":
        return {name: draw(GLOBS)}
    if name == "regex":
        return {name: draw(st.sampled_from(["^a", "(?i)^a", "b$", "[0-9]+", "a|B", "^$"]))}
    if name in ("gt", "gte", "lt", "lte"):
        return {name: draw(st.sampled_from([0, 10, -3.5, 2.5]))}
    return {"exists": draw(st.booleans())}


@st.composite
def wheres(draw: st.DrawFn, depth: int = 2) -> dict[str, Any]:
    where: dict[str, Any] = {}
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["path", "path", "all", "any", "not"] if depth else ["path"]))
        if kind == "path":
            test = draw(path_tests())
            where[draw(PATHS)] = test.get("scalar", test)
        elif kind == "not":
            where["not"] = draw(wheres(depth - 1))
        else:
            where[kind] = draw(st.lists(wheres(depth - 1), min_size=1, max_size=2))
    return where


@functools.cache
def _connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET threads = 1")
    return con


def _rows(items: list[dict[str, Any]]) -> None:
    table = pa.table({"i": list(range(len(items))), "j": [orjson.dumps(v).decode() for v in items]})
    con = _connection()
    con.register("values_arrow", table)
    con.execute(
        "CREATE OR REPLACE TEMP VIEW vals AS SELECT i, CAST(j AS JSON) AS j FROM values_arrow"
    )


def _select(compiler: ConditionCompiler, expression: str) -> list[Any]:
    first, second = compiler.select_items()
    rows = (
        _connection()
        .execute(
            f"WITH a AS (SELECT i{''.join(', ' + x for x in first)} FROM vals), "
            f"b AS (SELECT *{''.join(', ' + x for x in second)} FROM a) "
            f"SELECT {expression} FROM b ORDER BY i"
        )
        .fetchall()
    )
    return [row[0] for row in rows]


@SETTINGS
@given(
    where=wheres(),
    items=st.lists(st.dictionaries(PATHS.map(lambda p: p[0]), VALUES), min_size=1, max_size=30),
)
def test_where_in_sql_equals_the_pure_predicate(
    where: dict[str, Any], items: list[dict[str, Any]]
) -> None:
    compiler = ConditionCompiler("j", "p")
    sql = compiler.where(where, None)
    _rows(items)
    predicate = compile_where(where)
    assert predicate is not None
    assert _select(compiler, sql) == [predicate(item) for item in items], sql


@SETTINGS
@given(items=st.lists(st.dictionaries(st.sampled_from(["k"]), VALUES), min_size=1, max_size=30))
def test_tag_from_text_in_sql_equals_the_pure_text(items: list[dict[str, Any]]) -> None:
    compiler = ConditionCompiler("j", "p")
    probe = compiler.probe(("k",), None)
    _rows(items)
    assert _select(compiler, tag_text(Probe(probe.name))) == [
        text_of(lookup(item, ("k",))) for item in items
    ]


@SETTINGS
@given(pattern=GLOBS, texts=st.lists(st.text(alphabet="ab/-!é[]\n%_\\", max_size=6), max_size=20))
def test_glob_regex_and_like_match_what_fnmatch_matches(pattern: str, texts: list[str]) -> None:
    expected = [fnmatch.fnmatchcase(text, pattern) for text in texts]
    regex = literal(glob_regex(pattern))
    forms = [f"regexp_full_match(?, {regex})"]
    like = glob_like(pattern)
    if like is not None:
        forms.append(f"? LIKE {literal(like)} ESCAPE '\\'")
    for form in forms:
        got = [_connection().execute(f"SELECT {form}", [text]).fetchone() for text in texts]
        assert [row[0] if row else None for row in got] == expected, form


# Typed struct properties (a Parquet struct column): each key has one type.
_TYPED: dict[str, tuple[Any, Any]] = {
    "string": (pa.string(), st.sampled_from(["a", "A", " 10 ", "1e1", "", "a/b/pricing", "é"])),
    "int64": (pa.int64(), st.sampled_from([0, 1, 10, -3, 2**53 + 1])),
    "double": (
        pa.float64(),
        st.sampled_from([10.0, -3.5, 0.0, -0.0, 2.5, 1e20, float("nan"), float("inf")]),
    ),
    "bool": (pa.bool_(), st.booleans()),
    "list": (pa.list_(pa.int64()), st.lists(st.sampled_from([1, 10]), max_size=2)),
}


@st.composite
def typed_items(draw: st.DrawFn) -> tuple[Any, list[dict[str, Any]]]:
    """A struct type over keys k (maybe a struct of a and b) and m, and rows of it."""

    def scalar() -> str:
        return draw(st.sampled_from(sorted(_TYPED)))

    def values(name: str) -> Any:
        return st.none() | _TYPED[name][1]

    fields, rows_of = [], {}
    for key in draw(st.sampled_from([["k"], ["m"], ["k", "m"]])):
        if draw(st.booleans()):
            inner = {sub: scalar() for sub in draw(st.sampled_from([["a"], ["a", "b"]]))}
            kind = pa.struct([pa.field(sub, _TYPED[t][0]) for sub, t in inner.items()])
            rows_of[key] = st.none() | st.fixed_dictionaries(
                {sub: values(t) for sub, t in inner.items()}
            )
        else:
            name = scalar()
            kind = _TYPED[name][0]
            rows_of[key] = values(name)
        fields.append(pa.field(key, kind))
    rows = draw(st.lists(st.fixed_dictionaries(rows_of), min_size=1, max_size=30))
    return pa.struct(fields), rows


@functools.cache
def _typed_connection() -> duckdb.DuckDBPyConnection:
    # Its own: a fetchone() elsewhere leaves a result open, which register refuses.
    con = duckdb.connect()
    con.execute("SET threads = 1")
    return con


def _typed_rows(kind: Any, rows: list[dict[str, Any]]) -> Any:
    table = pa.table({"i": list(range(len(rows))), "j": pa.array(rows, type=kind)})
    con = _typed_connection()
    con.register("typed_arrow", table)
    con.execute("CREATE OR REPLACE TEMP VIEW vals AS SELECT i, j FROM typed_arrow")
    described = con.sql("SELECT j FROM vals LIMIT 0")
    shape = shape_of(described.types[0])
    described.fetchall()  # done with it: the connection takes other work
    return shape


@SETTINGS
@given(where=wheres(), typed=typed_items())
def test_where_on_a_typed_struct_equals_the_pure_predicate(
    where: dict[str, Any], typed: tuple[Any, list[dict[str, Any]]]
) -> None:
    kind, rows = typed
    shape = _typed_rows(kind, rows)
    predicate = compile_where(where)
    assert predicate is not None
    # What the pure engine's Parquet reader gives: top-level nulls are absent keys.
    items = [{k: v for k, v in row.items() if v is not None} for row in rows]
    # Compiled for any column, and knowing the struct's shape (text probes).
    for compiler in (ConditionCompiler("j", "p"), ConditionCompiler("j", "p", shape=shape)):
        sql = compiler.where(where, None)
        first, second = compiler.select_items(shape)
        got = (
            _typed_connection()
            .execute(
                f"WITH a AS (SELECT i{''.join(', ' + x for x in first)} FROM vals), "
                f"b AS (SELECT *{''.join(', ' + x for x in second)} FROM a) "
                f"SELECT {sql} FROM b ORDER BY i"
            )
            .fetchall()
        )
        assert [row[0] for row in got] == [predicate(item) for item in items], sql


@SETTINGS
@given(typed=typed_items())
def test_tag_from_text_on_a_typed_struct_equals_the_pure_text(
    typed: tuple[Any, list[dict[str, Any]]],
) -> None:
    kind, rows = typed
    shape = _typed_rows(kind, rows)
    compiler = ConditionCompiler("j", "p")
    probes = [compiler.probe(tuple(path.split(".")), None) for path in ("k", "k.a", "m")]
    first, second = compiler.select_items(shape)
    texts = ", ".join(tag_text(Probe(probe.name)) for probe in probes)
    got = (
        _typed_connection()
        .execute(
            f"WITH a AS (SELECT i{''.join(', ' + x for x in first)} FROM vals), "
            f"b AS (SELECT *{''.join(', ' + x for x in second)} FROM a) "
            f"SELECT {texts} FROM b ORDER BY i"
        )
        .fetchall()
    )
    items = [{k: v for k, v in row.items() if v is not None} for row in rows]
    expected = [
        tuple(text_of(lookup(item, keys)) for keys in (("k",), ("k", "a"), ("m",)))
        for item in items
    ]
    assert got == expected
