"""`where` conditions (spec section 2.2), compiled once into plain predicates.

A model is compiled when it is loaded and then run on every event, so the
work of interpreting a condition (splitting paths, lower-casing constants,
translating globs) happens here, once, and the predicates only look values
up and compare. The model has been validated (see `_semantics`) before it
reaches this module, so shapes are trusted.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import Any

Predicate = Callable[[Mapping[str, Any]], bool]

# Spec 2.2: optional whitespace, optional sign, digits with an optional
# fraction, an optional exponent. Trailing whitespace is accepted too, as a
# marketer typing "12 " in a form would expect. "0x1A", "1_000", "NaN",
# ".5" and "5." are not numbers.
_NUMERIC = re.compile(r"\s*[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\s*")
_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_MISSING = object()


def as_number(value: object) -> int | float | None:
    """The numeric value of a number or numeric string; None for anything else.

    Booleans are not numbers (spec: booleans equal only booleans). Integers
    stay integers so that large ids compare exactly.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and _NUMERIC.fullmatch(value):
        if _INTEGER.fullmatch(value):
            try:
                return int(value)
            except ValueError:
                # Past Python's digit limit (4,300 by default) int() refuses
                # the text; it is still a number, of a size only a float (an
                # infinity) can stand for. Raised, it failed whole batches.
                pass
        return float(value)
    return None


def lookup(data: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    """The value at a dotted path, or _MISSING. A null value is missing too."""
    value: Any = data
    for key in keys:
        if not isinstance(value, dict):
            return _MISSING
        value = value.get(key, _MISSING)
        if value is _MISSING:
            return _MISSING
    return _MISSING if value is None else value


def _equality(expected: object) -> Callable[[object], bool]:
    """Equality of spec 2.2: numbers as numbers, text lower-cased, booleans strictly."""
    if isinstance(expected, bool):
        return lambda value: value is expected
    number = as_number(expected)
    text = expected.lower() if isinstance(expected, str) else None

    def equals(value: object) -> bool:
        if isinstance(value, bool):
            return False
        if number is not None:
            other = as_number(value)
            if other is not None:
                return other == number
        return text is not None and isinstance(value, str) and value.lower() == text

    return equals


def _any_of(options: list[Any]) -> Callable[[object], bool]:
    tests = [_equality(option) for option in options]
    return lambda value: any(test(value) for test in tests)


def _string_test(name: str, operand: str) -> Callable[[str], bool]:
    needle = operand.lower()
    if name == "contains":
        return lambda text: needle in text.lower()
    if name == "starts_with":
        return lambda text: text.lower().startswith(needle)
    if name == "ends_with":
        return lambda text: text.lower().endswith(needle)
    # glob: Python's fnmatch over the whole string, compared lower-cased.
    match = re.compile(fnmatch.translate(needle)).match
    return lambda text: match(text.lower()) is not None


def _numeric_test(name: str, operand: float) -> Callable[[object], bool]:
    compare: Callable[[float], bool] = {
        "gt": lambda number: number > operand,
        "gte": lambda number: number >= operand,
        "lt": lambda number: number < operand,
        "lte": lambda number: number <= operand,
    }[name]

    def test(value: object) -> bool:
        number = as_number(value)
        return number is not None and compare(number)

    return test


def _value_test(name: str, operand: Any) -> tuple[Callable[[object], bool], bool]:
    """One test on a present value, and whether the test holds on a missing one."""
    if name == "eq":
        return _equality(operand), False
    if name == "ne":
        equals = _equality(operand)
        return (lambda value: not equals(value)), True
    if name == "in":
        return _any_of(operand), False
    if name == "not_in":
        member = _any_of(operand)
        return (lambda value: not member(value)), True
    if name == "exists":
        return (lambda value: bool(operand)), not operand
    if name == "regex":
        search = re.compile(operand).search
        return (lambda value: isinstance(value, str) and search(value) is not None), False
    if name == "glob":
        # The most common test in real models (URLs): one closure, no layers.
        matches = glob_test(operand.lower())
        return (lambda value: isinstance(value, str) and matches(value.lower())), False
    if name in ("contains", "starts_with", "ends_with"):
        string_test = _string_test(name, operand)
        return (lambda value: isinstance(value, str) and string_test(value)), False
    return _numeric_test(name, operand), False


def glob_test(pattern: str) -> Callable[[str], bool]:
    """Whether a whole string matches a shell pattern, as fnmatch.fnmatchcase.

    A pattern whose only wildcard is `*` (every glob of the examples, such as
    `*/pricing*`) is tested with string operations, several times faster than
    the regular expression fnmatch makes of it: the text starts with the
    part before the first `*`, ends with the part after the last, and holds
    the parts between in order, each found leftmost after the one before (a
    `*` matches any run of characters, so the leftmost place never loses a
    match a later one would give). `?` and `[...]` go to fnmatch's expression.
    """
    if "?" in pattern or "[" in pattern:
        match = re.compile(fnmatch.translate(pattern)).match
        return lambda text: match(text) is not None
    if "*" not in pattern:
        return lambda text: text == pattern
    head, *middle, tail = pattern.split("*")
    inner = [part for part in middle if part]  # "**" is one star
    if not head and not tail and len(inner) == 1:  # *part*
        (part,) = inner
        return lambda text: part in text
    least = len(head) + len(tail)

    def matches(text: str) -> bool:
        if len(text) < least or not text.startswith(head) or not text.endswith(tail):
            return False
        at, end = len(head), len(text) - len(tail)
        for part in inner:
            found = text.find(part, at, end)
            if found < 0:
                return False
            at = found + len(part)
        return True

    return matches


def _path_predicate(path: str, spec: Any) -> Predicate:
    keys = tuple(path.split("."))
    tests = spec.items() if isinstance(spec, dict) else [("eq", spec)]
    compiled = [_value_test(name, operand) for name, operand in tests]
    present_tests = [test for test, _ in compiled]
    holds_when_missing = all(on_missing for _, on_missing in compiled)
    if len(keys) == 1 and len(present_tests) == 1:
        # The usual shape (`url: {glob: ...}`), without the generic layers.
        (key,), (test,) = keys, present_tests

        def simple(data: Mapping[str, Any]) -> bool:
            value = data.get(key)
            return holds_when_missing if value is None else test(value)

        return simple

    def predicate(data: Mapping[str, Any]) -> bool:
        value = lookup(data, keys)
        if value is _MISSING:
            return holds_when_missing
        return all(test(value) for test in present_tests)

    return predicate


def compile_where(where: Mapping[str, Any] | None) -> Predicate | None:
    """A predicate for a `where` mapping; None when there is nothing to test."""
    if not where:
        return None
    parts: list[Predicate] = []
    for key, spec in where.items():
        if key == "all":
            parts.extend(_required(compile_where(item)) for item in spec)
        elif key == "any":
            parts.append(_either([_required(compile_where(item)) for item in spec]))
        elif key == "not":
            parts.append(_negation(_required(compile_where(spec))))
        else:
            parts.append(_path_predicate(key, spec))
    if len(parts) == 1:
        return parts[0]
    return lambda data: all(part(data) for part in parts)


def _either(options: list[Predicate]) -> Predicate:
    return lambda data: any(option(data) for option in options)


def _negation(inner: Predicate) -> Predicate:
    return lambda data: not inner(data)


def _required(predicate: Predicate | None) -> Predicate:
    # An empty mapping inside all/any/not holds: there is nothing it asks.
    return predicate if predicate is not None else (lambda data: True)


def text_of(value: object) -> str | None:
    """A property as tag text (spec 2.1 `tag_from`): JSON spelling, trimmed, lower-cased."""
    if value is None or value is _MISSING:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = repr(value)
    else:
        # Objects and arrays are not names; the spec speaks of scalar values.
        return None
    text = text.strip().lower()
    return text or None
