"""Helpers shared by the tests: the conformance cases and how results compare."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from leadscore._engine import Firing, Scorecard
from leadscore._events import Event, parse_event
from leadscore._model import Model
from leadscore._time import parse_timestamp

CONFORMANCE = Path(__file__).parent / "conformance"
CASES = sorted(CONFORMANCE.glob("*.yaml"))
SHARED = Path(__file__).resolve().parents[2] / "shared"


@dataclass(frozen=True)
class Case:
    name: str
    model: Model
    events: list[Event]
    at: int
    expect: dict[str, Any]


def load_case(path: Path) -> Case:
    data = YAML(typ="safe").load(path.read_text())
    return Case(
        name=path.stem,
        model=Model.model_validate(data["model"]),
        events=[parse_event(raw) for raw in data["events"]],
        at=parse_timestamp(data["at"]),
        expect=data["expect"],
    )


def arrival_orders(events: list[Event], shuffles: int = 3) -> dict[str, list[Event]]:
    """The given order, its reverse, and seeded shuffles (so failures repeat)."""
    orders = {"given": list(events), "reversed": list(reversed(events))}
    for seed in range(shuffles):
        shuffled = list(events)
        random.Random(seed).shuffle(shuffled)
        orders[f"shuffle-{seed}"] = shuffled
    return orders


def assert_scorecards(got: Sequence[Scorecard], expected: list[dict[str, Any]]) -> None:
    """Numbers within 0.01, everything else exactly (conformance README)."""
    assert [card.contact_id for card in got] == [card["contact_id"] for card in expected]
    for card, want in zip(got, expected, strict=True):
        have = card.to_json()
        assert set(have) == set(want), card.contact_id
        for key, value in want.items():
            assert _close(have[key], value), f"{card.contact_id}.{key}: {have[key]!r} != {value!r}"


def _close(have: Any, want: Any) -> bool:
    if isinstance(want, dict) and isinstance(have, dict):
        return set(have) == set(want) and all(_close(have[k], want[k]) for k in want)
    if isinstance(want, float) and isinstance(have, int | float) and not isinstance(have, bool):
        return abs(have - want) <= 0.01
    return bool(have == want) and type(have) is type(want)


def firing_rows(firings: list[Firing]) -> list[dict[str, Any]]:
    return [firing.to_json() for firing in sorted(firings, key=lambda f: f.order_key)]
