"""A model's `where` conditions, `tag_from` and calendar periods as SQL expressions.

The batch engine (:mod:`leadscore._batch.plan`) runs the parts of a model that
look at one event at a time as set-based SQL over all the events. This module
says how each piece of spec 2.2 reads in SQL, with the pure engine's exact
semantics (:mod:`leadscore._conditions`), so that the two engines agree:

- A property path is *probed* once per event: its JSON value (`j`), that
  value's JSON type (`t`), its text (`v`), its lower-cased text when it is a
  string (`l`) and its number when it is a number or a numeric string (`n`).
  Every test is then a plain comparison on those columns.
- Every test is made NULL-free (`coalesce(..., false)`), so that `not` and
  `ne` negate what the pure engine negates and never a SQL unknown.
- `glob` becomes an RE2 regex matched against the whole lower-cased string:
  RE2 has no atomic groups, so Python's own `fnmatch.translate` output cannot
  be used as it is; bracket classes are still translated by fnmatch itself,
  one at a time, so that their corner cases are Python's.

When the events' properties are a typed struct (a Parquet struct column),
a probe reads its field directly rather than through JSON: a field of text,
integer, floating-point or boolean type gives the same probe columns as its
JSON value would (:func:`typed_probe`); a path the struct has no field for
is missing; anything else (a list, a map, a struct at the end of the path)
goes through `to_json` of the field, as before.

Known differences, documented in docs/batch.md: numbers compare as doubles
(integers beyond 2^53 may compare equal when Python says they differ), and
`lower` is DuckDB's Unicode lower-casing, which differs from Python's
`str.lower` on a few characters (`İ`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._conditions import as_number

# JSON types DuckDB reports for numbers.
_NUMBERS = "('BIGINT', 'UBIGINT', 'DOUBLE', 'HUGEINT')"
# Python's str.isspace characters: what `\s` in a str pattern and str.strip() see.
_SPACE = (
    r"[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}"
    r"\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
)
# Spec 2.2's numeric strings, as _conditions._NUMERIC (ASCII digits: see the module doc).
_NUMERIC = rf"{_SPACE}*[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?{_SPACE}*"
_TRIM = rf"^{_SPACE}+|{_SPACE}+$"
# Outside a class, these are special to RE2 and are escaped; everything else is literal.
_REGEX_SPECIAL = frozenset(r"\.^$|?*+()[]{}")


def literal(value: str) -> str:
    """A SQL string literal (standard SQL: only the quote is doubled)."""
    return "'" + value.replace("'", "''") + "'"


def number(value: float) -> str:
    """A SQL DOUBLE literal of exactly `value` (a model constant): its shortest
    repr, read as text. A bare decimal literal is a DECIMAL, whose conversion to
    DOUBLE need not give the nearest double of a 17-digit repr."""
    return f"{literal(repr(float(value)))}::DOUBLE"


def json_path(keys: tuple[str, ...]) -> str:
    """A JSONPath naming each key quoted, so that any key text is taken as written."""
    parts = ("." + '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"' for key in keys)
    return "$" + "".join(parts)


@dataclass(frozen=True, slots=True)
class Probe:
    """The columns a path's tests read, named by the probe's index.

    `text`: the probe is a typed struct field of type VARCHAR (typed_probe), so
    its type `_t` is 'VARCHAR' exactly where its value `_x` is not null: the
    tests of its presence and of its being a string read `_x` directly, with
    no comparison of type names (at 10M events, the B2B rules' url, form,
    plan and utm.source tests cost 0.4 CPU s less).
    """

    name: str
    text: bool = False

    @property
    def t(self) -> str:
        return f"{self.name}_t"

    @property
    def v(self) -> str:
        return f"{self.name}_v"

    @property
    def lower(self) -> str:
        return f"{self.name}_l"

    @property
    def n(self) -> str:
        return f"{self.name}_n"

    @property
    def missing(self) -> str:
        if self.text:
            return f"({self.name}_x IS NULL)"
        return f"({self.t} IS NULL OR {self.t} = 'NULL')"

    @property
    def string(self) -> str:
        # Only read where the value is present (under NOT missing, in a
        # coalesce): FALSE rather than NULL for a missing text is the same there.
        if self.text:
            return f"({self.name}_x IS NOT NULL)"
        return f"{self.t} = 'VARCHAR'"


def probe_columns(probe: Probe, column: str, keys: tuple[str, ...], guard: str | None) -> list[str]:
    """The first-level SELECT item of a probe: its JSON value, extracted once.

    `guard`, when given, limits the work to events whose type can use it;
    :func:`probe_derived` gives the second-level items, read from that small
    value rather than from the whole properties again.
    """
    extract = f"json_extract({column}, {literal(json_path(keys))})"
    if guard is not None:
        extract = f"CASE WHEN {guard} THEN {extract} END"
    return [f"{extract} AS {probe.name}_j"]


def probe_derived(probe: Probe) -> list[str]:
    """The probe's type, text, lower-cased text and number, from its extracted value."""
    j = f"{probe.name}_j"
    t = f"json_type({j})"
    v = f"({j} ->> '$')"
    numeric = (
        f"CASE WHEN {t} IN {_NUMBERS} THEN TRY_CAST({v} AS DOUBLE) "
        f"WHEN {t} = 'VARCHAR' AND regexp_full_match({v}, {literal(_NUMERIC)}) "
        f"THEN TRY_CAST(regexp_replace({v}, {literal(_TRIM)}, '', 'g') AS DOUBLE) END"
    )
    return [
        f"{t} AS {probe.t}",
        f"{v} AS {probe.v}",
        f"CASE WHEN {t} = 'VARCHAR' THEN lower({v}) END AS {probe.lower}",
        f"{numeric} AS {probe.n}",
    ]


# The shape of a typed struct column: field name to a nested shape (a
# struct) or the DuckDB type id of the field (`varchar`, `bigint`, ...).
Shape = dict[str, "Shape | str"]

_INTEGERS = frozenset(
    ["tinyint", "smallint", "integer", "bigint", "utinyint", "usmallint", "uinteger", "ubigint"]
)
_FLOATS = frozenset(["float", "double"])


def shape_of(kind: Any) -> Shape:
    """The Shape of a DuckDB struct type (a DuckDBPyType with id `struct`)."""
    out: Shape = {}
    for name, child in kind.children:
        # JSON's type id is varchar's: told apart by its name.
        kind = "json" if str(child).upper() == "JSON" else str(child.id)
        out[name] = shape_of(child) if child.id == "struct" else kind
    return out


def _field(column: str, key: str) -> str:
    return f"struct_extract({column}, {literal(key)})"


def typed_probe(
    probe: Probe, column: str, shape: Shape, keys: tuple[str, ...], guard: str | None
) -> tuple[list[str], list[str]]:
    """The probe's SELECT items over a typed struct: (from the column, derived).

    Struct fields are found by their exact name (JSON keys are case-sensitive;
    DuckDB's own field lookup is not).
    """
    x = f"{probe.name}_x"

    def guarded(expression: str) -> str:
        return f"CASE WHEN {guard} THEN {expression} END" if guard is not None else expression

    expression = column
    kind: Shape | str = shape
    for depth, key in enumerate(keys):
        if not isinstance(kind, dict) or key not in kind:
            if isinstance(kind, str) and kind not in _SCALARS:
                # A map, a list, JSON: what is further down is in its JSON value.
                rest = literal(json_path(keys[depth:]))
                j = f"json_extract(to_json({expression}), {rest})"
                return [f"{guarded(j)} AS {probe.name}_j"], probe_derived(probe)
            # No such field, or a scalar with keys asked below it: missing.
            return [f"NULL::VARCHAR AS {x}"], [
                f"NULL::VARCHAR AS {probe.t}",
                f"NULL::VARCHAR AS {probe.v}",
                f"NULL::VARCHAR AS {probe.lower}",
                f"NULL::DOUBLE AS {probe.n}",
            ]
        expression, kind = _field(expression, key), kind[key]
    if isinstance(kind, dict):  # a struct: its JSON value
        return [f"{guarded(f'to_json({expression})')} AS {probe.name}_j"], probe_derived(probe)
    if kind == "varchar":
        numeric = (
            f"CASE WHEN regexp_full_match({x}, {literal(_NUMERIC)}) "
            f"THEN TRY_CAST(regexp_replace({x}, {literal(_TRIM)}, '', 'g') AS DOUBLE) END"
        )
        return [f"{guarded(expression)} AS {x}"], [
            f"CASE WHEN {x} IS NOT NULL THEN 'VARCHAR' END AS {probe.t}",
            f"{x} AS {probe.v}",
            f"lower({x}) AS {probe.lower}",
            f"{numeric} AS {probe.n}",
        ]
    if kind in _INTEGERS or kind in _FLOATS:
        label = "'BIGINT'" if kind in _INTEGERS else "'DOUBLE'"
        # NaN compares false with everything in Python, but above every
        # number in DuckDB: no number, as a JSON NaN reads.
        n = (
            f"CAST({x} AS DOUBLE)"
            if kind in _INTEGERS
            else f"CASE WHEN NOT isnan({x}) THEN CAST({x} AS DOUBLE) END"
        )
        return [f"{guarded(expression)} AS {x}"], [
            f"CASE WHEN {x} IS NOT NULL THEN {label} END AS {probe.t}",
            f"CAST({x} AS VARCHAR) AS {probe.v}",
            f"NULL::VARCHAR AS {probe.lower}",
            f"{n} AS {probe.n}",
        ]
    if kind == "boolean":
        return [f"{guarded(expression)} AS {x}"], [
            f"CASE WHEN {x} IS NOT NULL THEN 'BOOLEAN' END AS {probe.t}",
            f"CASE WHEN {x} THEN 'true' WHEN NOT {x} THEN 'false' END AS {probe.v}",
            f"NULL::VARCHAR AS {probe.lower}",
            f"NULL::DOUBLE AS {probe.n}",
        ]
    # A type without a plain JSON form (a list, a map, JSON): its JSON value.
    return [f"{guarded(f'to_json({expression})')} AS {probe.name}_j"], probe_derived(probe)


_SCALARS = frozenset([*_INTEGERS, *_FLOATS, "varchar", "boolean"])


def tag_text(probe: Probe) -> str:
    """`tag_from` text (spec 2.1, _conditions.text_of): Python's text of the value,
    trimmed and lower-cased; NULL for a missing or empty value, objects and arrays."""
    double = f"TRY_CAST({probe.v} AS DOUBLE)"
    # Python writes -0.0 with its sign; DuckDB does not.
    repr_double = (
        f"CASE WHEN {double} = 0 AND starts_with(trim({probe.v}), '-') THEN '-0.0' "
        f"ELSE CAST({double} AS VARCHAR) END"
    )
    # DuckDB types a JSON integer past 64 bits DOUBLE; the pure engine reads
    # it exactly (_jsonexact) and writes its digits, as JSON has them.
    text = (
        f"CASE WHEN {probe.t} IN ('VARCHAR', 'BOOLEAN', 'BIGINT', 'UBIGINT', 'HUGEINT') "
        f"THEN {probe.v} "
        f"WHEN {probe.t} = 'DOUBLE' AND regexp_full_match({probe.v}, '-?[0-9]+') THEN {probe.v} "
        f"WHEN {probe.t} = 'DOUBLE' THEN {repr_double} END"
    )
    return f"nullif(lower(regexp_replace({text}, {literal(_TRIM)}, '', 'g')), '')"


def glob_regex(pattern: str) -> str:
    """An RE2 regex matching exactly the strings `fnmatch` matches with `pattern`."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            if not out or out[-1] != ".*":
                out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            # Where the class ends, found the way fnmatch.translate finds it.
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(r"\[")
            else:
                out.append(_glob_class(pattern[i - 1 : j + 1]))
                i = j + 1
        elif c in _REGEX_SPECIAL:
            out.append("\\" + c)
        else:
            out.append(c)
    return "(?s)" + "".join(out)


def glob_like(pattern: str) -> str | None:
    """The LIKE pattern (escape `\\`) matching what `fnmatch` matches, for globs
    without bracket classes; None for those that have one."""
    if "[" in pattern:
        return None
    out = []
    for c in pattern:
        if c == "*":
            out.append("%")
        elif c == "?":
            out.append("_")
        elif c in "%_\\":
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def _glob_class(segment: str) -> str:
    translated = fnmatch.translate(segment)
    prefix, suffix = "(?s:", ")\\Z"
    assert translated.startswith(prefix), translated
    assert translated.endswith(suffix), translated
    inner = translated[len(prefix) : -len(suffix)]
    if inner == "(?!)":  # an empty class (`[z-a]`): matches nothing
        return r"[^\x00-\x{10FFFF}]"
    if inner == ".":  # `[!]`-like classes fnmatch turns into any character
        return "."
    return inner


def _kind_at(shape: Shape, keys: tuple[str, ...]) -> Shape | str | None:
    """The type of the struct field at `keys` (exact names, as typed_probe finds
    them), or None when there is none (a map or JSON on the way, no such field)."""
    kind: Shape | str = shape
    for key in keys:
        if not isinstance(kind, dict) or key not in kind:
            return None
        kind = kind[key]
    return kind


@dataclass
class ConditionCompiler:
    """Compiles `where` mappings over one JSON column into SQL, collecting the probes used.

    `guard_for` maps a path to the SQL condition under which events need it
    (their type), or None for "always". `shape`: the column is a typed struct
    of this shape, which the SQL is only used over (select_items with it): a
    path to a VARCHAR field is a text probe (see Probe).
    """

    column: str
    prefix: str
    probes: dict[tuple[str, ...], Probe] = field(default_factory=dict)
    guards: dict[tuple[str, ...], set[str] | None] = field(default_factory=dict)
    shape: Shape | None = None

    def probe(self, keys: tuple[str, ...], types: frozenset[str] | None) -> Probe:
        found = self.probes.get(keys)
        if found is None:
            text = self.shape is not None and _kind_at(self.shape, keys) == "varchar"
            found = self.probes[keys] = Probe(f"{self.prefix}{len(self.probes)}", text)
            self.guards[keys] = set()
        guard = self.guards[keys]
        if types is None or guard is None:
            self.guards[keys] = None
        else:
            guard.update(types)
        return found

    def where(self, where: Mapping[str, Any] | None, types: frozenset[str] | None) -> str:
        """SQL that holds exactly when `where` holds (TRUE for no condition)."""
        if not where:
            return "TRUE"
        parts: list[str] = []
        for key, spec in where.items():
            if key == "all":
                parts.extend(self.where(item, types) for item in spec)
            elif key == "any":
                parts.append("(" + " OR ".join(self.where(item, types) for item in spec) + ")")
            elif key == "not":
                parts.append(f"(NOT {self.where(spec, types)})")
            else:
                parts.append(self._path(key, spec, types))
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def _path(self, path: str, spec: Any, types: frozenset[str] | None) -> str:
        p = self.probe(tuple(path.split(".")), types)
        tests = spec.items() if isinstance(spec, dict) else [("eq", spec)]
        present: list[str] = []
        when_missing = True
        for name, operand in tests:
            test, on_missing = _test(p, name, operand)
            present.append(test)
            when_missing = when_missing and on_missing
        holds = " AND ".join(f"coalesce({test}, FALSE)" for test in present)
        return (
            f"(CASE WHEN {p.missing} THEN {'TRUE' if when_missing else 'FALSE'} ELSE {holds} END)"
        )

    def select_items(
        self, shape: Shape | None = None, *, guarded: bool = True
    ) -> tuple[list[str], list[str]]:
        """SELECT items of every probe: (extraction, derived).

        `shape`: the column is a typed struct of that shape, not JSON.
        `guarded`: a typed field is read only for the event types that use it
        (as JSON always is: extracting is dear). Unguarded, it is read for every
        event, which costs less than the guard's CASE when every use of the
        probe is itself under a test of the type (measured: a page's url
        lower-cased under a guard and tested by seven rules cost three times
        as much as unguarded, at 10M events).
        """
        first: list[str] = []
        second: list[str] = []
        for keys, probe in self.probes.items():
            types = self.guards[keys]
            guard = None if types is None else f"type IN ({', '.join(map(literal, sorted(types)))})"
            if shape is not None:
                if not guarded:
                    guard = None
                items, derived = typed_probe(probe, self.column, shape, keys, guard)
                first += items
                second += derived
            else:
                first += probe_columns(probe, self.column, keys, guard)
                second += probe_derived(probe)
        return first, second


def _equality(p: Probe, expected: object) -> str:
    if isinstance(expected, bool):
        return f"({p.t} = 'BOOLEAN' AND {p.v} = {literal('true' if expected else 'false')})"
    value = as_number(expected)
    text = f"{p.lower} = {literal(expected.lower())}" if isinstance(expected, str) else "FALSE"
    if value is None:
        return f"coalesce({text}, FALSE)"
    numeric = f"{p.n} = {number(value)}"
    return f"(CASE WHEN {p.n} IS NOT NULL THEN {numeric} ELSE coalesce({text}, FALSE) END)"


_COMPARE: dict[str, str] = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_STRING: dict[str, Callable[[str, str], str]] = {
    "contains": lambda column, needle: f"contains({column}, {needle})",
    "starts_with": lambda column, needle: f"starts_with({column}, {needle})",
    "ends_with": lambda column, needle: f"suffix({column}, {needle})",
}


def _test(p: Probe, name: str, operand: Any) -> tuple[str, bool]:
    """SQL of one test on a present value, and whether it holds on a missing one."""
    if name == "eq":
        return _equality(p, operand), False
    if name == "ne":
        return f"NOT {_equality(p, operand)}", True
    if name in ("in", "not_in"):
        member = "(" + " OR ".join(_equality(p, option) for option in operand) + ")"
        return (member, False) if name == "in" else (f"NOT {member}", True)
    if name == "exists":
        return ("TRUE" if operand else "FALSE"), not operand
    if name == "regex":
        return f"({p.string} AND regexp_matches({p.v}, {literal(operand)}))", False
    if name == "glob":
        pattern = operand.lower()
        like = glob_like(pattern)
        if like is not None:  # the usual `*/pricing*`: LIKE is several times faster than RE2
            # Without an escape, DuckDB turns `%text%` into contains(), and so on:
            # the ESCAPE clause keeps the general matcher, some 2x dearer.
            escape = " ESCAPE '\\'" if "\\" in like else ""
            return f"({p.string} AND {p.lower} LIKE {literal(like)}{escape})", False
        regex = literal(glob_regex(pattern))
        return f"({p.string} AND regexp_full_match({p.lower}, {regex}))", False
    if name in _STRING:
        return f"({p.string} AND {_STRING[name](p.lower, literal(operand.lower()))})", False
    return f"({p.n} {_COMPARE[name]} {number(operand)})", False
