"""The scoring model document, as typed, validated objects.

This module declares the *shape* of a model (spec section 2): every key, its
type and its range. pydantic checks the shape and gives the JSON Schema that
editors use (`leadscore schema`). What the shape cannot say — references
between parts, order of grades, regexes and `where` conditions — is checked by
:mod:`leadscore._semantics`. Loading files, line numbers and error messages
live in :mod:`leadscore._loader`.

Every class forbids unknown keys: a typo in a model must be an error, never a
silently ignored rule.
"""

from __future__ import annotations

import math
import sys
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

# Ids of rules, fit rules and triggers (spec section 2).
Id = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
# Event types (spec section 1).
EventType = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


def _one_or_list(value: Any) -> str | None:
    """Pick the union member by the input's kind, so that a bad event type gets one
    error from the member the user meant instead of one per member."""
    if isinstance(value, str):
        return "one"
    if isinstance(value, list | tuple):
        return "list"
    return None


EventTypes = Annotated[
    Annotated[EventType, Tag("one")] | Annotated[list[EventType], Field(min_length=1), Tag("list")],
    Discriminator(
        _one_or_list,
        custom_error_type="event_types_type",
        custom_error_message="expected an event type or a list of event types",
    ),
]


# Scores are sums of points as doubles (times the decay's factors), stored and
# written as doubles, and fit is a 64-bit integer in the batch engine and the
# output tables. Up to 2**53 every whole number is exact as a double; past it
# a model validated, then scored wrongly or failed after the work ("Integer
# exceeds 64-bit range" writing the fit). No real model comes near it.
MAX_POINTS = 2**53


def _non_zero(value: int) -> int:
    if value == 0:
        raise ValueError("expected a non-zero integer, got 0")
    if abs(value) > MAX_POINTS:
        raise ValueError(f"expected an integer between -{MAX_POINTS} and {MAX_POINTS}, got {value}")
    return value


# Points are whole numbers; zero would be a rule that does nothing.
Points = Annotated[
    StrictInt, AfterValidator(_non_zero), Field(json_schema_extra={"not": {"const": 0}})
]


def number_problem(value: int | float) -> str | None:
    """Why a number cannot be a model's number, or None.

    Scores are doubles (spec 4), so every number must be one: infinities and
    NaN are not numbers to compare with, and an integer past a double's range
    (YAML reads 1 followed by 400 zeros exactly) would fail every comparison
    with OverflowError instead of being reported.
    """
    if isinstance(value, int):
        if abs(value) > _DOUBLE_MAX:
            return f"expected {IN_RANGE}"
        return None
    return None if math.isfinite(value) else "expected a finite number"


IN_RANGE = "a number within a double's range (about ±1.8e308)"
# The largest double, as an exact integer: every integer up to it converts.
_DOUBLE_MAX = int(sys.float_info.max)


def _real_number(value: Any) -> Any:
    """Accept only finite ints and floats before the union sees the value.

    Without this, `float` would take `true` and `"20"` (pydantic's lax mode),
    and a wrong value would get one error per member of the union.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("number_type", "expected a number")
    problem = number_problem(value)
    if problem is not None:
        kind = "number_range" if isinstance(value, int) else "finite_number"
        raise PydanticCustomError(kind, problem)
    return value


# Thresholds may be fractional: decayed scores are. Integers stay integers.
# In JSON Schema an integer is a number; one type keeps editors' hints simple.
Number = Annotated[
    StrictInt | float, BeforeValidator(_real_number), WithJsonSchema({"type": "number"})
]
Name = Annotated[str, Field(min_length=1)]

_TEST_SCHEMA: dict[str, Any] = {
    "description": "A value to equal, or a mapping of tests that must all hold.",
    "anyOf": [
        {"type": ["string", "number", "boolean"]},
        {
            "type": "object",
            "additionalProperties": False,
            "minProperties": 1,
            "properties": {
                "eq": {"type": ["string", "number", "boolean"]},
                "ne": {"type": ["string", "number", "boolean"]},
                "in": {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
                "not_in": {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
                "contains": {"type": "string"},
                "starts_with": {"type": "string"},
                "ends_with": {"type": "string"},
                "glob": {"type": "string"},
                "regex": {"type": "string"},
                "gt": {"type": "number"},
                "gte": {"type": "number"},
                "lt": {"type": "number"},
                "lte": {"type": "number"},
                "exists": {"type": "boolean"},
            },
        },
    ],
}
_WHERE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Conditions on properties (or traits): a dotted path to a test; "
    "`all`, `any` and `not` combine conditions.",
    "properties": {
        "all": {"type": "array", "items": {"$ref": "#/$defs/Where"}},
        "any": {"type": "array", "items": {"$ref": "#/$defs/Where"}},
        "not": {"$ref": "#/$defs/Where"},
    },
    "additionalProperties": {"$ref": "#/$defs/Test"},
}
# A `where` mapping is the project's own condition language: its keys name
# property paths, so no fixed class can describe it. pydantic only checks it is
# a mapping; `_semantics.check_where` checks the rest with exact paths.
_WHERE_MARK = "x-leadscore-where"
Where = Annotated[dict[str, Any], WithJsonSchema({_WHERE_MARK: True})]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=False)


class Limit(_Strict):
    times: Annotated[StrictInt, Field(ge=1)]
    per: Literal["day", "week", "month", "ever"]


class Decay(_Strict):
    half_life_days: Annotated[Number, Field(gt=0, json_schema_extra={"exclusiveMinimum": 0})]


class Clamp(_Strict):
    min: Number | None = None
    max: Number | None = None


class Rule(_Strict):
    id: Id
    description: str | None = None
    event: EventTypes
    where: Where | None = None
    points: Points
    limit: Limit | None = None
    tags: list[Name] = Field(default_factory=list)
    tag_from: Name | None = None
    decay: StrictBool = True

    @property
    def event_types(self) -> tuple[str, ...]:
        return (self.event,) if isinstance(self.event, str) else tuple(self.event)


class FitRule(_Strict):
    id: Id
    description: str | None = None
    where: Where
    points: Points


class Grade(_Strict):
    grade: Name
    min_fit: Number | None = None


class Band(_Strict):
    band: Name
    min_score: Number | None = None


class StageCondition(_Strict):
    """`enter` of a stage. Several keys in one condition must all hold."""

    score_gte: Number | None = None
    score_lt: Number | None = None
    fit_gte: Number | None = None
    grade_in: Annotated[list[Name], Field(min_length=1)] | None = None
    band_in: Annotated[list[Name], Field(min_length=1)] | None = None
    stage_score_gte: Number | None = None
    tag_score_gte: Annotated[dict[Name, Number], Field(min_length=1)] | None = None
    event: EventTypes | None = None
    where: Where | None = None
    all: Annotated[list[StageCondition], Field(min_length=1)] | None = None
    any: Annotated[list[StageCondition], Field(min_length=1)] | None = None
    not_: StageCondition | None = Field(default=None, alias="not")


class Stage(_Strict):
    name: Name
    description: str | None = None
    enter: StageCondition | None = None


class TriggerCondition(_Strict):
    """`when` of a trigger: exactly one of these keys (with `where` only beside `event`)."""

    score_crosses: Number | None = None
    tag_score_crosses: Annotated[dict[Name, Number], Field(min_length=1, max_length=1)] | None = (
        None
    )
    stage_entered: Name | None = None
    band_entered: Name | None = None
    grade_entered: Name | None = None
    event: EventTypes | None = None
    where: Where | None = None


class Webhook(_Strict):
    url: Annotated[str, Field(pattern=r"^https?://\S+$")]
    secret: str | None = None


class Assign(_Strict):
    owners: Annotated[list[Name], Field(min_length=1)]
    strategy: Literal["round_robin"] = "round_robin"


class WebhookAction(_Strict):
    webhook: Webhook


class AssignAction(_Strict):
    assign: Assign


class AddTagAction(_Strict):
    add_tag: Name


class RemoveTagAction(_Strict):
    remove_tag: Name


ACTION_KINDS = ("webhook", "assign", "add_tag", "remove_tag")


def _action_kind(value: Any) -> str | None:
    """The one action key an item holds; None (one clear error) for none or several."""
    if isinstance(value, dict):
        keys: Any = value
    elif isinstance(value, BaseModel):
        keys = type(value).model_fields
    else:
        return None
    present = [kind for kind in ACTION_KINDS if kind in keys]
    return present[0] if len(present) == 1 else None


Action = Annotated[
    Annotated[WebhookAction, Tag("webhook")]
    | Annotated[AssignAction, Tag("assign")]
    | Annotated[AddTagAction, Tag("add_tag")]
    | Annotated[RemoveTagAction, Tag("remove_tag")],
    Discriminator(
        _action_kind,
        custom_error_type="action_kind",
        custom_error_message="expected exactly one of webhook, assign, add_tag, remove_tag",
    ),
]


class Trigger(_Strict):
    id: Id
    description: str | None = None
    when: TriggerCondition
    once: StrictBool = True
    actions: Annotated[list[Action], Field(min_length=1)]


def _strict_version(value: Any) -> Any:
    # `Literal[1]` alone also takes `true` and `1.0`, which are not the version 1.
    if isinstance(value, bool | float):
        raise PydanticCustomError("literal_error", "Input should be 1", {"expected": "1"})
    return value


class Model(_Strict):
    """A scoring model document (spec section 2)."""

    version: Annotated[Literal[1], BeforeValidator(_strict_version)]
    name: Name
    description: str | None = None
    timezone: Name = "UTC"
    decay: Decay | None = None
    clamp: Clamp | None = None
    rules: list[Rule]
    fit: list[FitRule] = Field(default_factory=list)
    grades: list[Grade] = Field(default_factory=list)
    bands: list[Band] = Field(default_factory=list)
    stages: list[Stage] = Field(default_factory=list)
    triggers: list[Trigger] = Field(default_factory=list)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of model documents, for editors and other tools."""
    schema: dict[str, Any] = _link_where(Model.model_json_schema(by_alias=True))
    schema["$defs"]["Where"] = _WHERE_SCHEMA
    schema["$defs"]["Test"] = _TEST_SCHEMA
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "leadscore scoring model, version 1"
    return schema


def _link_where(node: Any) -> Any:
    """Point every `where` placeholder at the shared recursive definition."""
    if isinstance(node, dict):
        if node.get(_WHERE_MARK):
            return {"$ref": "#/$defs/Where"}
        return {key: _link_where(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_link_where(item) for item in node]
    return node
