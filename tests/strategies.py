"""Hypothesis strategies: random but valid models, and event logs that exercise them.

The vocabulary is small on purpose (three contacts, a few types and property
values) so that random logs hit limits, ties, links, stages and crossings
often instead of scattering over names nothing refers to.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from leadscore._events import Event
from leadscore._model import Model

TYPES = ["view", "click", "buy", "identify", "stage_set"]
BASE = 1_780_000_000 * 1_000_000  # 2026-05-28, microseconds
MINUTE = 60 * 1_000_000

WHERES: list[dict[str, Any]] = [
    {"x": {"gte": 5}},
    {"k": "a"},
    {"k": {"in": ["a", "b"]}},
    {"x": {"exists": True}},
    {"not": {"k": "b"}},
    {"any": [{"k": "c"}, {"x": {"lt": 3}}]},
]


@st.composite
def rules(draw: st.DrawFn, index: int) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": f"r{index}",
        "event": draw(st.sampled_from([*TYPES[:3], ["view", "click"], "identify", "stage_set"])),
        "points": draw(st.integers(-30, 50).filter(bool)),
    }
    if draw(st.booleans()):
        rule["where"] = draw(st.sampled_from(WHERES))
    if draw(st.booleans()):
        per = draw(st.sampled_from(["day", "week", "month", "ever"]))
        rule["limit"] = {"times": draw(st.integers(1, 3)), "per": per}
    tags = draw(st.lists(st.sampled_from(["t1", "t2"]), unique=True, max_size=2))
    if tags:
        rule["tags"] = tags
    if draw(st.integers(0, 3)) == 0:
        rule["tag_from"] = "k"
    if draw(st.integers(0, 3)) == 0:
        rule["decay"] = False
    return rule


@st.composite
def models(draw: st.DrawFn) -> Model:
    data: dict[str, Any] = {
        "version": 1,
        "name": "random",
        "timezone": draw(st.sampled_from(["UTC", "Europe/Warsaw", "America/New_York"])),
        "rules": [draw(rules(i)) for i in range(draw(st.integers(1, 5)))],
    }
    if draw(st.booleans()):
        data["decay"] = {"half_life_days": draw(st.sampled_from([0.5, 1, 3, 7.5, 30]))}
    clamp = draw(st.sampled_from([None, {"min": 0}, {"min": -10, "max": 80}, {"min": 5}]))
    if clamp:
        data["clamp"] = clamp
    if draw(st.booleans()):
        data["fit"] = [
            {"id": "role", "where": {"role": "ceo"}, "points": 20},
            {"id": "size", "where": {"size": {"gte": 50}}, "points": 15},
        ]
    grades = draw(st.booleans())
    if grades:
        data["grades"] = [
            {"grade": "A", "min_fit": 20},
            {"grade": "B", "min_fit": 0},
            {"grade": "C"},
        ]
    bands = draw(st.booleans())
    if bands:
        data["bands"] = [
            {"band": "hot", "min_score": 60},
            {"band": "warm", "min_score": 20},
            {"band": "cold"},
        ]
    stages = draw(st.booleans())
    if stages:
        data["stages"] = [
            {"name": "s0"},
            {"name": "s1", "enter": {"score_gte": 20}},
            {"name": "s2", "enter": {"any": [{"event": "buy"}, {"stage_score_gte": 40}]}},
            {"name": "s3", "enter": {"all": [{"score_gte": 50}, {"not": {"score_lt": 50}}]}},
            {"name": "s4"},
        ]
    triggers: list[dict[str, Any]] = []
    for i, when in enumerate(
        [
            {"score_crosses": 30},
            {"stage_entered": "s2"} if stages else None,
            {"band_entered": "hot"} if bands else None,
            {"grade_entered": "A"} if grades else None,
            {"tag_score_crosses": {"t1": 20}},
            {"event": "buy", "where": {"k": "a"}},
        ]
    ):
        if when is not None and draw(st.booleans()):
            once = draw(st.booleans())
            triggers.append(
                {"id": f"g{i}", "when": when, "once": once, "actions": [{"add_tag": "x"}]}
            )
    if triggers and any("tag_score_crosses" in t["when"] for t in triggers):
        data["rules"][0]["tags"] = ["t1"]
    data["triggers"] = triggers
    return Model.model_validate(data)


@st.composite
def events(draw: st.DrawFn, index: int) -> Event:
    event_type = draw(st.sampled_from(TYPES))
    who = draw(st.sampled_from(["contact", "anonymous", "both"]))
    contact = draw(st.sampled_from(["c1", "c2", "c3"]))
    anonymous = draw(st.sampled_from(["a1", "a2", "a3"]))
    properties: dict[str, Any] = {}
    if draw(st.booleans()):
        properties["x"] = draw(st.sampled_from([1, 4, 7, "6", "2.5", None]))
    if draw(st.booleans()):
        properties["k"] = draw(st.sampled_from(["a", "B", "c", " A "]))
    if event_type == "stage_set":
        properties["stage"] = draw(st.sampled_from(["s0", "s1", "s2", "s4", "nope"]))
    traits = None
    if event_type == "identify":
        traits = {
            "role": draw(st.sampled_from(["ceo", "CEO", "dev", None])),
            "size": draw(st.sampled_from([10, 60, "80", None])),
        }
    # Minutes over ~8 weeks, with frequent ties on the same minute.
    minute = draw(st.integers(0, 8 * 7 * 24 * 60 // 97)) * 97
    return Event(
        id=f"e{index:03d}",
        type=event_type,
        timestamp=BASE + minute * MINUTE,
        contact_id=contact if who != "anonymous" else None,
        anonymous_id=anonymous if who != "contact" else None,
        properties=properties,
        traits=traits,
    )


@st.composite
def logs(draw: st.DrawFn, max_size: int = 40) -> list[Event]:
    count = draw(st.integers(1, max_size))
    return [draw(events(i)) for i in range(count)]
