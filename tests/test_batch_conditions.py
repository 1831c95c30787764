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
