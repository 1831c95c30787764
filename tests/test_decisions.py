"""Choices where the spec is silent (docs/model.md, section 15), pinned."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leadscore import EventError, ModelError, model_from_data, parse_event, parse_timestamp, replay
from leadscore._conditions import as_number, compile_where, glob_test, text_of


@pytest.mark.parametrize(
    ("text", "number"),
    [(" 12", 12), ("12 ", 12), ("-3.5", -3.5), ("1e3", 1000.0), ("+7", 7), ("2.5E-1", 0.25)],
)
def test_numeric_strings(text: str, number: float) -> None:
    assert as_number(text) == number


@pytest.mark.parametrize("text", [".5", "5.", "0x1A", "1_000", "NaN", "inf", "", " ", "1e", "--1"])
def test_not_numeric_strings(text: str) -> None:
    assert as_number(text) is None


def test_booleans_are_not_numbers() -> None:
    assert as_number(True) is None
    holds = compile_where({"n": {"gte": 1}})
    assert holds is not None
    assert not holds({"n": True})


@pytest.mark.parametrize(
    ("value", "tag"),
    [("  Shoes ", "shoes"), ("   ", None), ("", None), (3, "3"), (3.0, "3.0"), (True, "true"),
     (False, "false"), (None, None), ({"a": 1}, None), ([1], None)],
)  # fmt: skip
def test_tag_from_text(value: object, tag: str | None) -> None:
    assert text_of(value) == tag


@given(
    st.text(alphabet="ab*/?[]!\n", max_size=8),
    st.lists(st.text(alphabet="ab/*?[]\n", max_size=10), max_size=20),
)
def test_globs_match_what_fnmatch_matches(pattern: str, texts: list[str]) -> None:
    """glob_test runs `*`-only patterns as string operations: the same answers."""
    matches = glob_test(pattern)
    assert [matches(text) for text in texts] == [
        fnmatch.fnmatchcase(text, pattern) for text in texts
    ]


@pytest.mark.parametrize(
    ("pattern", "text", "holds"),
    [("*/pricing*", "https://a.example/pricing?x=1", True), ("*/pricing*", "/pric", False),
     ("a*b*a", "aba", True), ("a*b*a", "aa", False), ("a*a", "a", False), ("*", "", True),
     ("a**b", "ab", True), ("ab", "ab", True), ("ab", "abc", False), ("*b*b*", "bb", True),
     ("*b*b*", "b", False), ("*x\ny*", "x\ny", True)],
)  # fmt: skip
def test_star_globs(pattern: str, text: str, holds: bool) -> None:
    assert glob_test(pattern)(text) is holds is fnmatch.fnmatchcase(text, pattern)


def test_a_null_property_is_missing_for_every_test() -> None:
    for test, holds_when_missing in [
        ({"eq": 1}, False), ({"ne": 1}, True), ({"in": [1]}, False), ({"not_in": [1]}, True),
        ({"exists": True}, False), ({"exists": False}, True), ({"glob": "*"}, False),
    ]:  # fmt: skip
        predicate = compile_where({"p": test})
        assert predicate is not None
        assert predicate({"p": None}) is holds_when_missing, test
        assert predicate({}) is holds_when_missing, test


def test_unknown_event_fields_are_rejected_by_name() -> None:
    with pytest.raises(EventError) as error:
        parse_event(
            {"id": "e1", "type": "x", "contact_id": "c", "timestamp": "2026-01-01T00:00:00Z",
             "propertes": {"url": "/"}}
        )  # fmt: skip
    assert error.value.field == "propertes"


def test_last_event_at_counts_events_that_change_nothing() -> None:
    model = model_from_data(
        {"version": 1, "name": "m", "rules": [{"id": "v", "event": "visit", "points": 1}]}
    )
    events = [
        parse_event(
            {"id": i, "type": kind, "contact_id": "c", "timestamp": f"2026-01-0{day}T00:00:00Z"}
        )
        for i, kind, day in [("a", "visit", 1), ("b", "noise", 2)]
    ]
    (card,) = replay(model, events, parse_timestamp("2026-01-03T00:00:00Z")).scorecards
    assert card.last_event_at == parse_timestamp("2026-01-02T00:00:00Z")


@pytest.mark.parametrize(
    "model",
    [
        {"clamp": {"min": 10, "max": 5}},
        {"grades": [{"grade": "A", "min_fit": 10}, {"grade": "B", "min_fit": 10}]},
        {"rules": [{"id": "r", "event": "x", "points": 1, "where": {"any": []}}]},
    ],
)
def test_models_that_cannot_mean_anything_are_errors(model: dict[str, object]) -> None:
    with pytest.raises(ModelError):
        model_from_data({"version": 1, "name": "m", "rules": [], **model})
