"""Loading model documents: YAML or JSON text in, a validated Model or a ModelError out.

The steps:

1. decode the text, keeping the line of every key and list item;
2. turn it into plain Python data (dict, list, str, int, float, bool, None);
3. check the shape with pydantic and the rest with :mod:`leadscore._semantics`,
   *both* always, so that one run shows every problem;
4. translate pydantic's errors into plain words, give every problem the line
   of its path (or of the nearest enclosing key or item that exists, so a
   missing key gets the line of its mapping), and raise them all together.

YAML is read as YAML 1.2 with ruamel.yaml's round-trip loader (`NO`, `yes` and
`on` are strings). Dates stay text as well: YAML 1.2's core schema has none,
and a `where` value such as `2026-05-04` is compared as text by the engine.

JSON is held to JSON: the text must pass Python's `json` parser first, so
YAML-only syntax (comments, unquoted strings, trailing commas) in a `.json`
file is an error with its line. Valid JSON is YAML 1.2 as well, so it is then
read by the YAML reader, which yields the same values plus line numbers. For
the rare valid JSON that YAML refuses (a key longer than 1024 characters, a
colon on the line after its key), the values come from `json` without lines.

A document with duplicate keys is ambiguous: they are all reported, with
lines, and nothing else is checked until they are fixed, since any further
message could be about the copy the user did not mean.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from ._errors import InputError, Issue, ModelError
from ._model import ACTION_KINDS, IN_RANGE, Model
from ._semantics import (
    Loc,
    Problem,
    describe,
    find_problems,
    format_path,
    keys_of,
    text_key_message,
    unknown,
    uploaded_problems,
)

Format = Literal["yaml", "json"]
# The most values (mappings, lists and scalars) a document may hold once its
# YAML aliases are expanded. A few lines of aliases that repeat each other
# expand to billions (`a2: [*a1, *a1, ...]`), which would hang the loader,
# and the web editor runs it at every keystroke. A quarter of a million is
# hundreds of times what a model written by hand holds (the B2B example:
# 368), room for long `in` lists, and walked in well under a second.
MAX_VALUES = 250_000
_FORMATS: dict[str, Format] = {".yaml": "yaml", ".yml": "yaml", ".json": "json"}


def load_model(path: str | os.PathLike[str], *, upload: bool = False) -> Model:
    """Read a model file: `.yaml`/`.yml` as YAML 1.2, `.json` as JSON.

    Raises InputError when the file cannot be read or has another extension,
    and ModelError with every problem, with lines, when the model is invalid.
    `upload`: as `parse_model`'s.
    """
    source = os.fspath(path)
    format_ = _FORMATS.get(Path(source).suffix.lower())
    if format_ is None:
        if not os.path.lexists(source):  # a typo: say so, not that the name is of no format
            raise InputError(f"cannot read model file {source}: No such file or directory")
        raise InputError(f"{source}: unknown model format; expected a .yaml, .yml or .json file")
    try:
        text = Path(source).read_text(encoding="utf-8-sig")
    except OSError as error:
        raise InputError(f"cannot read model file {source}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise InputError(f"cannot read model file {source}: not UTF-8 text") from error
    return parse_model(text, source=source, format=format_, upload=upload)


def parse_model(
    text: str, *, source: str | None = None, format: Format = "yaml", upload: bool = False
) -> Model:
    """Parse model text; `source` names it in issues (usually the file name).

    `upload`: the model is coming in (`leadscore validate`, the models API,
    the web app's saves, its editor's check and preview), so it is also
    refused for what a model stored earlier may hold and must still load
    with: webhook URLs that can never be called
    (_semantics.uploaded_problems). Issues alike, with the rest.
    """
    text = text.removeprefix("\ufeff")
    with _not_too_deep(source):
        document = _read_json(text, source) if format == "json" else _read_yaml(text, source)
        return _validate(document, source, upload=upload)


def model_from_data(data: object) -> Model:
    """Validate an already decoded document.

    Its issues have no line numbers, unless the data is ruamel.yaml round-trip
    data (a part of a larger YAML file, say), whose positions are used.
    """
    with _not_too_deep(None):
        document = _Document()
        document.data = _plain(data, (), document)
        return _validate(document, None)


@contextmanager
def _not_too_deep(source: str | None) -> Iterator[None]:
    """Lists or mappings nested thousands deep (`[[[[...]]]]`) exhaust the
    recursion of every reader on the way (JSON's, YAML's, ours, pydantic's):
    a ModelError that says so, not a RecursionError."""
    try:
        yield
    except RecursionError:
        message = "the document nests lists or mappings too deeply to be read"
        raise ModelError([Issue("", message, None, source)]) from None


# --- reading ---


@dataclass
class _Document:
    """Plain data, the line of each key and item, and problems found while reading."""

    data: object = None
    lines: dict[Loc, int] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    values: int = 0  # seen so far by _plain, against MAX_VALUES
    source: str | None = None
    # Duplicate keys, by the id of the mapping that holds them: (key, line).
    duplicates: dict[int, list[tuple[object, int]]] = field(default_factory=dict)

    def line(self, loc: Loc) -> int | None:
        """The line of `loc`, or of its nearest ancestor that the text has."""
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return None


class _Constructor(RoundTripConstructor):
    """The round-trip constructor, noting every duplicate key instead of stopping at the first."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # (mapping, key, line); holding the mapping keeps its id() its own.
        self.duplicates: list[tuple[Any, object, int]] = []

    def check_mapping_key(
        self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any
    ) -> bool:
        if key not in mapping:
            return True
        # Only text keys: `1` and `true` are equal in Python, but both are
        # reported anyway as keys that are not text.
        if isinstance(key, str):
            self.duplicates.append((mapping, key, key_node.start_mark.line + 1))
        return False  # the first value stays, as ruamel does

    def construct_text(self, node: Any) -> Any:
        return self.construct_scalar(node)


# YAML 1.2 has no timestamps: `2026-05-04` is text, as the spec's events have it.
_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_text)


def _read_yaml(text: str, source: str | None) -> _Document:
    try:
        root, duplicates = _decode_yaml(text)
    except YAMLError as error:
        raise ModelError([_syntax_issue(error, source)]) from error
    except ValueError as error:  # a tag its value does not fit: `!!int x`, `!!float x`
        message = f"invalid YAML: a value does not fit its tag ({error})"
        raise ModelError([Issue("", message, None, source)]) from error
    return _from_yaml(root, duplicates, source)


def _from_yaml(
    root: object, duplicates: list[tuple[Any, object, int]], source: str | None
) -> _Document:
    document = _Document(lines={(): _node_line(root) or 1}, source=source)
    for mapping, key, line in duplicates:
        document.duplicates.setdefault(id(mapping), []).append((key, line))
    document.data = _plain(root, (), document)
    if document.duplicates:
        raise ModelError(_finish(document.issues, source))
    return document


def _decode_yaml(text: str) -> tuple[Any, list[tuple[Any, object, int]]]:
    """The round-trip data of YAML text and its duplicate keys; raises YAMLError."""
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    root = yaml.load(text)
    return root, yaml.constructor.duplicates


def _syntax_issue(error: YAMLError, source: str | None) -> Issue:
    if not isinstance(error, MarkedYAMLError):
        return Issue("", f"invalid YAML: {error}", None, source)
    mark = error.problem_mark or error.context_mark
    notes = [f"column {mark.column + 1}"] if mark else []
    if error.problem and error.context and error.context_mark:
        notes.append(f"{error.context} that starts on line {error.context_mark.line + 1}")
    problem = error.problem or error.context or "unreadable text"
    if "'\\t'" in problem:
        notes.append("YAML does not allow tabs for indentation, use spaces")
    message = f"invalid YAML: {problem}" + (f" ({'; '.join(notes)})" if notes else "")
    return Issue("", message, mark.line + 1 if mark else None, source)


def _read_json(text: str, source: str | None) -> _Document:
    keys_seen_twice: list[str] = []
    try:
        data = json.loads(
            text, object_pairs_hook=lambda pairs: _json_object(pairs, keys_seen_twice)
        )
    except json.JSONDecodeError as error:
        message = f"invalid JSON: {error.msg[:1].lower()}{error.msg[1:]} (column {error.colno})"
        raise ModelError([Issue("", message, error.lineno, source)]) from error
    try:
        # Valid JSON holds tabs only between tokens (strings must escape them),
        # where YAML may refuse them; spaces keep every line where it was.
        root, duplicates = _decode_yaml(text.replace("\t", " "))
    except YAMLError:
        return _json_without_lines(data, keys_seen_twice, source)
    return _from_yaml(root, duplicates, source)


def _json_without_lines(data: object, keys_seen_twice: list[str], source: str | None) -> _Document:
    if keys_seen_twice:
        issues = [Issue("", f"duplicate key {key!r}", None, source) for key in keys_seen_twice]
        raise ModelError(issues)
    document = _Document(source=source)
    document.data = _plain(data, (), document)
    return document


def _json_object(pairs: list[tuple[str, Any]], keys_seen_twice: list[str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            keys_seen_twice.append(key)
        result.setdefault(key, value)
    return result


def _node_line(node: object) -> int | None:
    lc = getattr(node, "lc", None)
    # ruamel knows no line for some nodes (a tagged scalar at the top level).
    return None if lc is None or lc.line is None else int(lc.line) + 1


def _line_of(node: object, key: object) -> int | None:
    """The 1-based line of a mapping's key or a list's item, if the text has it."""
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        position = lc.key(key) if isinstance(node, Mapping) else lc.item(key)
    except (KeyError, IndexError, TypeError):
        return None  # keys brought in by a merge (`<<`) have no position of their own
    if position is None:  # nor have an ordered mapping's (`!!omap`)
        return None
    return int(position[0]) + 1


def _plain(node: object, loc: Loc, document: _Document) -> object:
    """Plain Python data from decoded data, noting lines and key problems on the way."""
    document.values += 1
    if document.values > MAX_VALUES:
        message = (
            f"the document holds more than {MAX_VALUES:,} values once its aliases are "
            "expanded (aliases that repeat each other?)"
        )
        raise ModelError([Issue(format_path(loc), message, document.line(loc), document.source)])
    if isinstance(node, Mapping):
        return _plain_mapping(node, loc, document)
    if isinstance(node, list | tuple):
        items = []
        for index, item in enumerate(node):
            _note_line(document, (*loc, index), _line_of(node, index))
            items.append(_plain(item, (*loc, index), document))
        return items
    # ruamel's scalar types (ScalarFloat, ScalarInt, ...) subclass the built-in
    # ones; strict validation and the engine expect the built-ins themselves.
    if isinstance(node, str):
        return _paired(str(node))
    for kind in (ScalarBoolean, bool, int, float):
        if isinstance(node, kind):
            return bool(node) if kind is ScalarBoolean else kind(node)
    return node


_SURROGATE = re.compile("[\ud800-\udfff]")


def _paired(text: str) -> str:
    """`text` with its escaped surrogate pairs as the characters they encode.

    JSON escapes a character past U+FFFF as a pair ("\\ud83d\\ude00" is 😀;
    json.dumps writes every emoji so), and YAML, reading JSON as YAML,
    keeps the two halves as two code points: no Unicode text, so the model
    was refused. A lone half stays as it is, for validation to refuse."""
    if not _SURROGATE.search(text):
        return text
    try:
        return text.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:
        return text


def _plain_mapping(node: Mapping[Any, Any], loc: Loc, document: _Document) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in node.items():
        line = _line_of(node, key)
        if not isinstance(key, str):
            # A model's keys and property paths are text; `1:` or `true:` is a mistake.
            document.issues.append(Issue(format_path(loc), text_key_message(key), line))
            continue
        name = _paired(str(key))
        _note_line(document, (*loc, name), line)
        result[name] = _plain(value, (*loc, name), document)
    for key, line in document.duplicates.get(id(node), []):
        first = _line_of(node, key)
        message = f"duplicate key {key!r}" + (f" (first on line {first})" if first else "")
        document.issues.append(Issue(format_path((*loc, str(key))), message, line))
    return result


def _note_line(document: _Document, loc: Loc, line: int | None) -> None:
    if line is not None:
        document.lines[loc] = line


# --- validation ---


def _validate(document: _Document, source: str | None, *, upload: bool = False) -> Model:
    model: Model | None = None
    problems = find_problems(document.data)
    try:
        model = Model.model_validate(document.data)
    except ValidationError as error:
        problems = [_translate(detail) for detail in error.errors()] + problems
    if upload:
        problems += uploaded_problems(document.data, (problem.loc for problem in problems))
    # A NUL where a problem is already reported (an id's pattern, an unknown
    # key and all below it) is part of that one mistake.
    reported = {problem.loc for problem in problems}
    issues = (
        document.issues
        + [Issue(format_path(p.loc), p.message, document.line(p.loc)) for p in problems]
        + [
            Issue(format_path(loc), message, document.line(line_loc))
            for loc, line_loc, message in _nul_texts(document.data, (), reported)
        ]
    )
    if issues or model is None:
        raise ModelError(_finish(issues, source))
    return model


_NUL = "\x00"


def _nul_texts(data: object, loc: Loc, reported: set[Loc]) -> Iterator[tuple[Loc, Loc, str]]:
    """(path, where its line is, message) of every text holding U+0000, keys
    too, but none at or below a location in `reported`.

    PostgreSQL cannot store U+0000 in text, and a model's names and tags end
    up in its columns (the model's name, a contact's band, stage and tags):
    activating such a model was a server error. No event id or type holds one
    either, so a model's text has no use for it. A key's problem is told at its
    mapping, so that the path the message shows holds no NUL itself.
    """
    if loc in reported:
        return
    if isinstance(data, str):
        if _NUL in data:
            yield loc, loc, "must not contain U+0000 (the NUL character)"
    elif isinstance(data, Mapping):
        for key, value in data.items():
            if (*loc, key) in reported:
                continue
            if isinstance(key, str) and _NUL in key:
                message = f"the key {describe(key)} must not contain U+0000 (the NUL character)"
                yield loc, (*loc, key), message
            yield from _nul_texts(value, (*loc, key), reported)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from _nul_texts(item, (*loc, index), reported)


def _finish(issues: list[Issue], source: str | None) -> list[Issue]:
    """Issues named after their source, without repeats, by line and then path."""
    named = {Issue(i.path, i.message, i.line, source): None for i in issues}
    return sorted(named, key=lambda issue: (issue.line or 0, _natural(issue.path)))


def _natural(path: str) -> list[str | int]:
    """`rules[2]` before `rules[10]`: digit runs compare as numbers."""
    parts: list[str | int] = re.split(r"(\d+)", path)
    return [int(part) if index % 2 else part for index, part in enumerate(parts)]


# --- pydantic errors in plain words ---


def _translate(error: ErrorDetails) -> Problem:
    loc, annotation = _resolve(error["loc"])
    kind = error["type"]
    value = error["input"]
    ctx = error.get("ctx", {})
    special = _SPECIAL.get(kind)
    if special is not None:
        return Problem(loc, special(_Error(error["loc"], loc, value, ctx, annotation)))
    noun = _EXPECTED.get(kind)
    if noun is not None:
        return Problem(loc, f"expected {noun}, got {describe(value)}")
    # Not expected from this model; pydantic's own words are still clear.
    return Problem(loc, f"{error['msg'][:1].lower()}{error['msg'][1:]}, got {describe(value)}")


@dataclass(frozen=True, slots=True)
class _Error:
    raw_loc: tuple[int | str, ...]  # pydantic's
    loc: Loc  # as the user writes it: without the union tags pydantic adds
    value: Any
    ctx: dict[str, Any]
    annotation: Any  # the type expected at `loc`


# Errors whose message is "expected <noun>, got <value>".
_EXPECTED = {
    "string_type": "text",
    "int_type": "an integer",
    "bool_type": "true or false",
    "list_type": "a list",
    "number_type": "a number",
    "finite_number": "a finite number",
    "number_range": IN_RANGE,
    "event_types_type": "an event type or a list of event types",
}


def _unknown_key(error: _Error) -> str:
    parent = _resolve(error.raw_loc[:-1])[1]
    key = str(error.loc[-1])
    if isinstance(parent, type) and issubclass(parent, BaseModel):
        return unknown("key", key, keys_of(parent), "allowed keys")
    return f"unknown key {key!r}"


def _one_of(error: _Error) -> str:
    choices = [str(choice) for choice in get_args(error.annotation)] or [error.ctx["expected"]]
    expected = choices[0] if len(choices) == 1 else f"one of {', '.join(choices)}"
    return f"expected {expected}, got {describe(error.value)}"


def _mapping(error: _Error) -> str:
    if not error.loc and error.value is None:
        return "the model document is empty"
    cls = error.annotation
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return (
            f"expected a mapping with keys {', '.join(keys_of(cls))}, got {describe(error.value)}"
        )
    return f"expected a mapping, got {describe(error.value)}"


def _pattern(error: _Error) -> str:
    if error.loc[-1:] == ("url",):
        return (
            f"expected an http:// or https:// address without spaces, got {describe(error.value)}"
        )
    pattern = str(error.ctx["pattern"]).removeprefix("^").removesuffix("$")
    return f"does not match {pattern}: {describe(error.value)}"


def _action(error: _Error) -> str:
    value = error.value
    if isinstance(value, Mapping):
        present = [kind for kind in ACTION_KINDS if kind in value]
        if len(present) > 1:
            return (
                f"expected one action per list item, got {' and '.join(present)}; "
                "write each action as its own item"
            )
        if value:
            return unknown("action", str(next(iter(value))), ACTION_KINDS, "known actions")
    return f"expected one of {', '.join(ACTION_KINDS)}, got {describe(value)}"


def _too_short(error: _Error) -> str:
    if error.ctx.get("min_length") == 1:
        return "must not be empty"
    return f"expected at least {error.ctx['min_length']} entries, got {error.ctx['actual_length']}"


def _too_long(error: _Error) -> str:
    limit = error.ctx["max_length"]
    entries = "entry" if limit == 1 else "entries"
    # pydantic leaves `actual_length` out for mappings.
    actual = error.ctx.get("actual_length") or len(error.value)
    return f"expected at most {limit} {entries}, got {actual}"


_SPECIAL: dict[str, Callable[[_Error], str]] = {
    "missing": lambda error: "required",
    "extra_forbidden": _unknown_key,
    "literal_error": _one_of,
    "model_type": _mapping,
    "model_attributes_type": _mapping,
    "dict_type": _mapping,
    "string_pattern_mismatch": _pattern,
    "string_too_short": lambda error: "must not be empty",
    "too_short": _too_short,
    "too_long": _too_long,
    "action_kind": _action,
    # The model's own validators word their messages for users already.
    "value_error": lambda error: str(error.ctx["error"]),
    "greater_than": lambda error: _bound("more than", error.ctx["gt"], error.value),
    "greater_than_equal": lambda error: _bound("at least", error.ctx["ge"], error.value),
}


def _bound(relation: str, bound: object, value: object) -> str:
    return f"expected {relation} {describe(bound)}, got {describe(value)}"


# --- where in the model an error is ---


def _resolve(raw: tuple[int | str, ...]) -> tuple[Loc, Any]:
    """The user's path of a pydantic location, and the type expected there.

    pydantic adds the tag of a discriminated union (`actions[0]` -> `actions, 0,
    'webhook', ...`) and `[key]` for a mapping's key to the location; those are
    not part of the document, and only following the model's types tells them
    apart from keys the user wrote (a tag could be named `webhook` too).
    """
    annotation: Any = Model
    path: list[str | int] = []
    for part in raw:
        annotation = _unwrap(annotation)
        if part == "[key]":
            continue
        members = _union_members(annotation)
        if members:
            annotation = _tagged_member(members, part)
            continue
        path.append(part)
        annotation = _child(annotation, part)
    return tuple(path), _unwrap(annotation)


def _unwrap(annotation: Any) -> Any:
    """Strip `Annotated[...]` and `| None`, which add nothing to a location."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        members = _union_members(annotation)
        if len(members) == 1:
            annotation = members[0]
            continue
        return annotation


def _union_members(annotation: Any) -> list[Any]:
    if get_origin(annotation) not in (Union, UnionType):
        return []
    return [member for member in get_args(annotation) if member is not type(None)]


def _tagged_member(members: list[Any], tag: object) -> Any:
    for member in members:
        metadata = getattr(member, "__metadata__", ())
        if any(isinstance(item, Tag) and item.tag == tag for item in metadata):
            return member
    return Any


def _child(annotation: Any, part: str | int) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            if part in (name, info.alias):
                return info.annotation
        return Any
    origin = get_origin(annotation)
    if origin is list:
        return get_args(annotation)[0]
    if origin is dict:
        return get_args(annotation)[1]
    return Any
