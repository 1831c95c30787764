"""Checks of a model document that its shape cannot express (spec section 2).

pydantic (:mod:`leadscore._model`) checks each key's type and range. This
module checks the rest: unique ids and names, the order of grades and bands,
references to grades, bands, stages and tags, the keys that go together in
stage and trigger conditions, time zones, clamps, and every `where`
condition (spec 2.2), which pydantic only sees as a mapping.

The checks run on the *raw* decoded document, not on a validated
:class:`~leadscore._model.Model`, so that they can be reported together with
the type errors pydantic finds: a user sees every problem in one run. The
price is that each check must tolerate broken input. The rule for that: a
check skips whatever pydantic already reports (a value of the wrong type, a
mapping with an unknown key), and a reference check is skipped when the list
that defines the names is itself broken, since the name the user meant may be
in the broken part. That keeps one mistake from being reported twice.

Problems carry their location as a tuple (`("rules", 2, "where", "url")`) so
the loader can find line numbers; :func:`format_path` turns it into text.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, TypeGuard
from urllib.parse import urlsplit

import re2
from pydantic import BaseModel

from ._errors import Issue
from ._model import Band, Grade, StageCondition, TriggerCondition, number_problem

Loc = tuple[str | int, ...]

# Spec 2.2: the tests a `where` value may hold, and the keys that combine conditions.
TESTS = (
    "eq",
    "ne",
    "in",
    "not_in",
    "contains",
    "starts_with",
    "ends_with",
    "glob",
    "regex",
    "gt",
    "gte",
    "lt",
    "lte",
    "exists",
)
_STRING_TESTS = frozenset({"contains", "starts_with", "ends_with", "glob", "regex"})
_NUMBER_TESTS = frozenset({"gt", "gte", "lt", "lte"})
_LIST_TESTS = frozenset({"in", "not_in"})
_SCALAR_TESTS = frozenset({"eq", "ne"})

# Spec 2.6: a trigger's `when` holds exactly one of these (`where` only beside `event`).
_TRIGGER_KINDS = (
    "score_crosses",
    "tag_score_crosses",
    "stage_entered",
    "band_entered",
    "grade_entered",
    "event",
)
_RE2_LIMITS = "look-around, back-references and possessive quantifiers are not allowed"
_WHERE_NEEDS_EVENT = "'where' needs 'event' beside it: it tests the properties of that event"


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem at a location given as keys and list indexes."""

    loc: Loc
    message: str


# --- message helpers, shared with the loader so that every message reads alike ---


def format_path(loc: Sequence[str | int]) -> str:
    """`("rules", 2, "limit", "per")` -> `rules[2].limit.per`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = part if part else "''"
            text += f".{name}" if text else name
    return text


def describe(value: object) -> str:
    """A value as a message quotes it: `'daily'`, `0`, `true`, `null`, `a list`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and number_problem(value) is not None:
        # Past a double's range: repr would quote hundreds of digits (and
        # refuses past 4,300, Python's guard against slow conversions).
        return f"an integer of about {int(abs(value).bit_length() * math.log10(2)) + 1} digits"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 60 else text[:56] + "...'"
    if isinstance(value, Mapping):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list | tuple):
        return "a list" if value else "an empty list"
    return f"a {type(value).__name__}"


def unknown(what: str, name: str, choices: Iterable[str], label: str) -> str:
    """`unknown key 'point' (did you mean 'points'?); allowed keys: id, points, ...`."""
    options = list(choices)
    return f"unknown {what} {name!r}{did_you_mean(name, options)}; {label}: {', '.join(options)}"


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for a close match, ignoring case; else ''."""
    by_lower = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(name.lower(), by_lower, n=1, cutoff=0.7)
    return f" (did you mean {by_lower[close[0]]!r}?)" if close else ""


@cache
def keys_of(cls: type[BaseModel]) -> tuple[str, ...]:
    """The keys a model class accepts, as written in documents (aliases)."""
    return tuple(field.alias or name for name, field in cls.model_fields.items())


def text_key_message(key: object) -> str:
    return f"expected text as a key, got {describe(key)}"


def is_number(value: object) -> TypeGuard[int | float]:
    """A finite int or float; booleans are not numbers (spec 2.2)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return number_problem(value) is None


# --- the checks ---


def check(data: object) -> list[Issue]:
    """Every problem the shape cannot express, as issues without line numbers."""
    return [Issue(format_path(p.loc), p.message) for p in find_problems(data)]


def find_problems(data: object) -> list[Problem]:
    """Every problem the shape cannot express, with locations as tuples."""
    if not isinstance(data, Mapping):
        return []  # pydantic reports a document that is not a mapping
    names = _Names(data)
    return [
        *_unique(data, "rules", "id", "rule id"),
        *_unique(data, "fit", "id", "fit rule id"),
        *_unique(data, "triggers", "id", "trigger id"),
        *_unique(data, "grades", "grade", "grade"),
        *_unique(data, "bands", "band", "band"),
        *_unique(data, "stages", "name", "stage name"),
        *_descending(data, "grades", Grade, "min_fit", "fit"),
        *_descending(data, "bands", Band, "min_score", "score"),
        *_timezone(data.get("timezone")),
        *_clamp(data.get("clamp")),
        *_rule_conditions(data, "rules"),
        *_rule_conditions(data, "fit"),
        *_stages(data, names),
        *_triggers(data, names),
    ]


def _entries(data: Mapping[str, Any], key: str) -> list[tuple[int, Mapping[str, Any]]]:
    """The mapping entries of a list in the document, with their indexes."""
    items = data.get(key)
    if not isinstance(items, list):
        return []
    return [(index, item) for index, item in enumerate(items) if isinstance(item, Mapping)]


def _has_unknown_keys(entry: Mapping[Any, Any], cls: type[BaseModel]) -> bool:
    return not set(entry) <= set(keys_of(cls))


def _unique(data: Mapping[str, Any], key: str, name_key: str, what: str) -> list[Problem]:
    first: dict[str, int] = {}
    problems = []
    for index, entry in _entries(data, key):
        name = entry.get(name_key)
        if not isinstance(name, str):
            continue
        if name in first:
            message = f"duplicate {what} {name!r}, also at {format_path((key, first[name]))}"
            problems.append(Problem((key, index, name_key), message))
        else:
            first[name] = index
    return problems


def _descending(
    data: Mapping[str, Any], key: str, cls: type[BaseModel], min_key: str, measure: str
) -> list[Problem]:
    """Grades and bands: minimums strictly decreasing, a catch-all only last (spec 2.4)."""
    items = data.get(key)
    last_index = len(items) - 1 if isinstance(items, list) else -1
    what = key[:-1]
    problems = []
    previous: tuple[int, float] | None = None
    for index, entry in _entries(data, key):
        # A typo such as `min-fit` would make an entry look like a catch-all:
        # pydantic reports the unknown key, so the order is not judged on it.
        if _has_unknown_keys(entry, cls):
            continue
        minimum = entry.get(min_key)
        if minimum is None and index != last_index:
            message = (
                f"a {what} without {min_key} matches any {measure}, so it must be the last one"
            )
            problems.append(Problem((key, index), message))
        elif is_number(minimum):
            if previous is not None and minimum >= previous[1]:
                message = (
                    f"{min_key} must decrease down the list: expected less than "
                    f"{describe(previous[1])} ({format_path((key, previous[0]))}), "
                    f"got {describe(minimum)}"
                )
                problems.append(Problem((key, index, min_key), message))
            previous = (index, minimum)
    return problems


@cache
def _time_zones() -> frozenset[str]:
    """The IANA names of the `tzdata` package (a dependency), the same on every machine.

    `ZoneInfo` alone, or the system's list, would also take a file such as
    `localtime`, or a differently cased name on a case-insensitive disk.
    """
    return frozenset(resources.files("tzdata").joinpath("zones").read_text().split())


def _timezone(name: object) -> list[Problem]:
    if not isinstance(name, str) or not name or name in _time_zones():
        return []
    message = (
        f"unknown time zone {name!r}{did_you_mean(name, _time_zones())}; "
        "expected an IANA name such as Europe/Warsaw or UTC"
    )
    return [Problem(("timezone",), message)]


def _clamp(clamp: object) -> list[Problem]:
    if not isinstance(clamp, Mapping):
        return []
    low, high = clamp.get("min"), clamp.get("max")
    if is_number(low) and is_number(high) and low > high:
        message = f"min ({describe(low)}) must not be greater than max ({describe(high)})"
        return [Problem(("clamp",), message)]
    return []


def _rule_conditions(data: Mapping[str, Any], key: str) -> list[Problem]:
    problems = []
    for index, entry in _entries(data, key):
        where = entry.get("where")
        if isinstance(where, Mapping):  # anything else is a type error pydantic reports
            problems += check_where(where, (key, index, "where"))
        # tag_from names a property as a where key does (pydantic checks it is text).
        tag_from = entry.get("tag_from")
        if isinstance(tag_from, str) and tag_from:
            problems += _property_path(tag_from, (key, index, "tag_from"))
    return problems


# --- references ---


_NAME_LABELS = {
    "grade": ("defined grades", "the model defines no grades"),
    "band": ("defined bands", "the model defines no bands"),
    "stage": ("defined stages", "the model defines no stages"),
    "tag": ("tags listed by rules", "no rule lists a tag in 'tags' or has 'tag_from'"),
}


class _Names:
    """The names conditions may refer to, by kind; None where they cannot be known."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._defined: dict[str, frozenset[str] | None] = {
            "grade": _defined(data.get("grades", []), "grade"),
            "band": _defined(data.get("bands", []), "band"),
            "stage": _defined(data.get("stages", []), "name"),
            "tag": _defined_tags(data.get("rules")),
        }

    def check(self, kind: str, name: object, loc: Loc) -> list[Problem]:
        defined = self._defined[kind]
        if defined is None or not isinstance(name, str) or name in defined:
            return []
        label, none = _NAME_LABELS[kind]
        if not defined:
            return [Problem(loc, f"unknown {kind} {name!r}; {none}")]
        return [Problem(loc, unknown(kind, name, sorted(defined), label))]

    def check_all(self, kind: str, names: object, loc: Loc) -> list[Problem]:
        """A list of names (`grade_in`) or the keys of a mapping (`tag_score_gte`)."""
        if isinstance(names, list):
            return [p for i, name in enumerate(names) for p in self.check(kind, name, (*loc, i))]
        if isinstance(names, Mapping):
            return [p for name in names for p in self.check(kind, name, (*loc, name))]
        return []


def _defined(items: object, name_key: str) -> frozenset[str] | None:
    """Names of a list's entries; None when an entry is broken (its name is unknown)."""
    if items is None:
        return frozenset()
    if not isinstance(items, list):
        return None
    names: set[str] = set()
    for item in items:
        name = item.get(name_key) if isinstance(item, Mapping) else None
        if not isinstance(name, str) or not name:
            return None
        names.add(name)
    return frozenset(names)


def _defined_tags(rules: object) -> frozenset[str] | None:
    """Tags some rule lists; None (any tag) when a rule has `tag_from` or is broken."""
    if not isinstance(rules, list):
        return None
    tags: set[str] = set()
    for rule in rules:
        if not isinstance(rule, Mapping) or rule.get("tag_from") is not None:
            return None
        listed = rule.get("tags", [])
        if not isinstance(listed, list) or not all(isinstance(tag, str) for tag in listed):
            return None
        tags.update(listed)
    return frozenset(tags)


# --- stages and triggers ---


def _stages(data: Mapping[str, Any], names: _Names) -> list[Problem]:
    problems = []
    for index, stage in _entries(data, "stages"):
        enter = stage.get("enter")
        if index == 0 and enter is not None:
            message = "the first stage is where every contact starts, so it cannot have 'enter'"
            problems.append(Problem(("stages", 0, "enter"), message))
        problems += _stage_condition(enter, ("stages", index, "enter"), names)
    return problems


def _stage_condition(condition: object, loc: Loc, names: _Names) -> list[Problem]:
    """One stage condition and, recursively, those inside `all`, `any` and `not`."""
    if not isinstance(condition, Mapping):
        return []  # null means "no condition"; other types are reported by pydantic
    problems = _condition_keys(condition, loc)
    problems += names.check_all("grade", condition.get("grade_in"), (*loc, "grade_in"))
    problems += names.check_all("band", condition.get("band_in"), (*loc, "band_in"))
    problems += names.check_all("tag", condition.get("tag_score_gte"), (*loc, "tag_score_gte"))
    problems += _event_where(condition, loc)
    for key in ("all", "any"):
        parts = condition.get(key)
        if isinstance(parts, list):
            for index, part in enumerate(parts):
                problems += _stage_condition(part, (*loc, key, index), names)
    return problems + _stage_condition(condition.get("not"), (*loc, "not"), names)


def _condition_keys(condition: Mapping[str, Any], loc: Loc) -> list[Problem]:
    if not condition:
        kinds = ", ".join(key for key in keys_of(StageCondition) if key != "where")
        return [Problem(loc, f"expected at least one condition: {kinds}")]
    if _has_unknown_keys(condition, StageCondition):
        return []  # the unknown key may be a misspelt `event`
    if condition.get("where") is not None and condition.get("event") is None:
        return [Problem((*loc, "where"), _WHERE_NEEDS_EVENT)]
    return []


def _event_where(condition: Mapping[str, Any], loc: Loc) -> list[Problem]:
    where = condition.get("where")
    return check_where(where, (*loc, "where")) if isinstance(where, Mapping) else []


def _triggers(data: Mapping[str, Any], names: _Names) -> list[Problem]:
    problems = []
    for index, trigger in _entries(data, "triggers"):
        when = trigger.get("when")
        if isinstance(when, Mapping):
            problems += _trigger_condition(when, ("triggers", index, "when"), names)
    return problems


def _trigger_condition(when: Mapping[str, Any], loc: Loc, names: _Names) -> list[Problem]:
    problems = _one_trigger_kind(when, loc)
    for kind in ("stage", "band", "grade"):
        key = f"{kind}_entered"
        problems += names.check(kind, when.get(key), (*loc, key))
    problems += names.check_all("tag", when.get("tag_score_crosses"), (*loc, "tag_score_crosses"))
    return problems + _event_where(when, loc)


def _one_trigger_kind(when: Mapping[str, Any], loc: Loc) -> list[Problem]:
    present = [key for key in _TRIGGER_KINDS if when.get(key) is not None]
    has_where = when.get("where") is not None
    if len(present) > 1:
        got = " and ".join([", ".join(present[:-1]), present[-1]])
        message = f"expected exactly one of {', '.join(_TRIGGER_KINDS)}, got {got}"
        return [Problem(loc, message)]
    if _has_unknown_keys(when, TriggerCondition):
        return []  # the unknown key may be the misspelt one this `when` lacks
    if has_where and present != ["event"]:
        return [Problem((*loc, "where"), _WHERE_NEEDS_EVENT)]
    if not present:
        return [Problem(loc, f"expected one of {', '.join(_TRIGGER_KINDS)}, got none")]
    return []


# --- `where` conditions (spec 2.2) ---


def check_where(where: Mapping[Any, Any], loc: Loc) -> list[Problem]:
    """Every problem in one `where` mapping, recursively through all/any/not."""
    problems = []
    for key, value in where.items():
        if not isinstance(key, str):
            problems.append(Problem(loc, text_key_message(key)))
        elif key in ("all", "any"):
            problems += _where_list(value, (*loc, key))
        elif key == "not":
            problems += _nested_where(value, (*loc, key))
        else:
            problems += _property_path(key, (*loc, key))
            problems += _property_test(value, (*loc, key))
    return problems


def _where_list(value: object, loc: Loc) -> list[Problem]:
    if not isinstance(value, list):
        return [Problem(loc, f"expected a list of conditions, got {describe(value)}")]
    if not value:
        return [Problem(loc, "expected at least one condition, got an empty list")]
    return [p for index, item in enumerate(value) for p in _nested_where(item, (*loc, index))]


def _nested_where(value: object, loc: Loc) -> list[Problem]:
    # An empty mapping inside all/any/not always holds (or, under `not`, never
    # does): surely a mistake, unlike a top-level `where: {}` that just says nothing.
    if not isinstance(value, Mapping):
        return [Problem(loc, f"expected a mapping of conditions, got {describe(value)}")]
    if not value:
        return [Problem(loc, "expected at least one condition, got an empty mapping")]
    return check_where(value, loc)


def _property_path(path: str, loc: Loc) -> list[Problem]:
    if not path:
        return [Problem(loc, "expected a property path, got an empty key")]
    if "" in path.split("."):
        message = f"a property path needs a name between every two dots, got {path!r}"
        return [Problem(loc, message)]
    return []


def _property_test(value: object, loc: Loc) -> list[Problem]:
    """The value of a property path: a scalar to equal, or a mapping of tests."""
    if isinstance(value, Mapping):
        if not value:
            return [Problem(loc, f"expected at least one test: {', '.join(TESTS)}")]
        return [p for name, operand in value.items() for p in _test(name, operand, loc)]
    if value is None:
        message = "expected a value or a mapping of tests, got null; to test that a property is "
        return [Problem(loc, message + "missing use {exists: false}")]
    if isinstance(value, list):
        message = "expected a value or a mapping of tests, got a list; to match one of "
        return [Problem(loc, message + "several values use {in: [...]}")]
    scalar = _scalar_problem(value)
    return [Problem(loc, f"expected a value or a mapping of tests, got {scalar}")] if scalar else []


def _test(name: object, operand: object, loc: Loc) -> list[Problem]:
    if not isinstance(name, str):
        return [Problem(loc, text_key_message(name))]
    here = (*loc, name)
    if name not in TESTS:
        return [Problem(here, unknown("test", name, TESTS, "known tests"))]
    if name in _LIST_TESTS:
        return _value_list(operand, here)
    message = _operand_problem(name, operand)
    if message is None and name == "regex":
        message = regex_problem(str(operand))
    return [Problem(here, message)] if message else []


def _operand_problem(name: str, operand: object) -> str | None:
    if name in _SCALAR_TESTS:
        scalar = _scalar_problem(operand)
        return f"expected text, a number, true or false, got {scalar}" if scalar else None
    if name in _STRING_TESTS and not isinstance(operand, str):
        return f"expected text, got {describe(operand)}"
    if name in _NUMBER_TESTS and isinstance(operand, int) and not isinstance(operand, bool):
        problem = number_problem(operand)
        return f"{problem}, got {describe(operand)}" if problem else None
    if name in _NUMBER_TESTS and not is_number(operand):
        hint = " (write it without quotes)" if isinstance(operand, str) else ""
        return f"expected a number, got {describe(operand)}{hint}"
    if name == "exists" and not isinstance(operand, bool):
        return f"expected true or false, got {describe(operand)}"
    return None


def _value_list(operand: object, loc: Loc) -> list[Problem]:
    if not isinstance(operand, list):
        message = f"expected a list of values such as [a, b], got {describe(operand)}"
        return [Problem(loc, message)]
    if not operand:
        return [Problem(loc, "expected at least one value, got an empty list")]
    problems = []
    for index, item in enumerate(operand):
        scalar = _scalar_problem(item)
        if scalar:
            message = f"expected text, a number, true or false, got {scalar}"
            problems.append(Problem((*loc, index), message))
    return problems


def _scalar_problem(value: object) -> str | None:
    """None for a value a test can compare with; else how to describe the value."""
    if isinstance(value, str | bool) or is_number(value):
        return None
    return describe(value)


def regex_problem(pattern: str) -> str | None:
    """Why a pattern is not valid in both Python `re` and RE2, or None."""
    try:
        re.compile(pattern)
    except re.error as error:
        where = f" at position {error.pos}" if error.pos is not None else ""
        return f"invalid regex: {error.msg}{where}"
    options = re2.Options()
    options.log_errors = False  # RE2 would also print every error to stderr
    try:
        re2.compile(pattern, options)
    except re2.error as error:
        detail = error.args[0] if error.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        return f"regex not supported by RE2 ({_RE2_LIMITS}): {detail}"
    return None


# --- checks of a model being uploaded ---
#
# A model stored before a check existed must keep loading (the service reads
# its stored versions back through the loader, and refusing one there would
# stop its workspace), so checks added since run only where a model comes
# in: `leadscore validate`, an upload to the models API, the web app's saves
# and the editor's check and preview (the loader's `upload=True`, see
# _loader.parse_model).

# What can stand in a URL's host besides a host name: an IP literal in
# brackets, then an optional port.
_BRACKETED_HOST = re.compile(r"\[[^\[\]]*\](:[^:]*)?")
_BRACKETS = "brackets in the host must hold an IP address, and nothing else"


def uploaded_problems(data: object, reported: Iterable[Loc]) -> list[Problem]:
    """The problems of a model being uploaded that a stored one may have: its
    webhook URLs that can never be called. None at or below a location in
    `reported` (a URL the pattern already refuses, a broken action)."""
    if not isinstance(data, Mapping):
        return []
    skipped = set(reported)
    problems = []
    for index, trigger in _entries(data, "triggers"):
        actions = trigger.get("actions")
        if not isinstance(actions, list):
            continue
        for place, action in enumerate(actions):
            webhook = action.get("webhook") if isinstance(action, Mapping) else None
            url = webhook.get("url") if isinstance(webhook, Mapping) else None
            loc: Loc = ("triggers", index, "actions", place, "webhook", "url")
            if not isinstance(url, str) or any(loc[:end] in skipped for end in range(len(loc) + 1)):
                continue
            why = webhook_url_problem(url)
            if why is not None:
                expected = "expected an http:// or https:// address that can be called"
                problems.append(Problem(loc, f"{expected}, got {describe(url)}: {why}"))
    return problems


def webhook_url_problem(url: str) -> str | None:
    """Why a webhook can never be called at `url`, or None when it can be
    tried: an http or https URL with a host (a name the socket can encode,
    or an IP address in brackets) and, when it has one, a port from 1 to
    65535. Whether the host exists or answers is the receiver's business:
    a failed attempt, retried."""
    try:
        parts = urlsplit(url)
    except ValueError as error:  # brackets that hold no IP address, mostly
        return _BRACKETS if "[" in url or "]" in url else f"not a URL: {error}"
    if parts.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    try:
        port = parts.port
    except ValueError:  # not a number, or past 65535
        port = 0
    if port == 0:
        return "the port must be a number from 1 to 65535"
    host = parts.hostname
    if not host:
        return "it names no host"
    where = parts.netloc.rpartition("@")[2]
    if "[" in where or "]" in where:
        if _BRACKETED_HOST.fullmatch(where) is None:
            return _BRACKETS
        return None  # urlsplit has checked the address
    try:
        # As the socket encodes the name (UnicodeError there is a call that
        # can never be made).
        encoded = host.encode("idna")
    except UnicodeError:
        return (
            f"{describe(host)} is not a host name: each part between dots needs 1 to 63 characters"
        )
    if len(encoded.rstrip(b".")) > 253:
        return "the host name is longer than 253 characters"
    return None
