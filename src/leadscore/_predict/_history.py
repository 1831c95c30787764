"""Event logs as one row per contact, observed at a cut-off that knows
nothing of the outcome.

Each contact is observed `window` days after it was first seen (its first
event of another type than the outcome under its own contact id): its
**cut-off**. Features are what happened up to the cut-off (anonymous
events from when an event links them to the contact, as in a replay); the
label is whether the outcome event happened after it, within `horizon` days
(or at any time when no horizon is given).

Why the cut-off does not stop at the outcome: a cut-off that moves with the
outcome date ("features from before the conversion") makes every
time-based feature of a converter, such as its age or its recency, a
measure of how soon it converted, which is the answer itself. Here nothing
about a contact's features depends on when, or whether, its outcome came,
so shuffling outcome dates after the cut-offs changes no feature at all.

Contacts are left out of training, and counted, when their outcome came at
or before their cut-off (there is nothing left to predict), when their
window is not over by the end of the log, or (with a horizon) when they did
not convert and their horizon is not over (the answer is not known yet).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._engine import Engine
from .._events import Event
from .._replay import deduplicate, links, owner_of
from .._time import MICROS_PER_DAY
from ._table import Table, typed_column

DAY = MICROS_PER_DAY
HOUR = DAY // 24
# 1970-01-01, day 0 of the epoch, was a Thursday.
_WEEKDAYS = ("Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed")
_MAX_PROPERTY_VALUES = 1000  # a property with more distinct values is free text or an id


@dataclass(frozen=True, slots=True)
class Setup:
    outcome: str
    window_days: float = 0.0
    horizon_days: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "window_days": self.window_days,
            "horizon_days": self.horizon_days,
        }


@dataclass(slots=True)
class Contact:
    contact_id: str
    events: list[Event]  # sorted by (timestamp, id), the outcome's included
    first_seen: int
    cutoff: int
    outcome_at: int | None
    label: int | None  # None: left out (see `why`)
    why: str = ""

    def observed(self, outcome: str) -> list[Event]:
        return [e for e in self.events if e.timestamp <= self.cutoff and e.type != outcome]


@dataclass(slots=True)
class History:
    contacts: list[Contact]
    end: int
    left_out: Counter[str] = field(default_factory=Counter)


def contacts(events: Iterable[Event], setup: Setup, *, at: int | None = None) -> History:
    """Every identified contact with its cut-off and label. `at` ends the log
    (default: its last event); events after it do not exist."""
    unique, _ = deduplicate(events)
    if at is not None:
        unique = [e for e in unique if e.timestamp <= at]
    linked = links(unique)
    # When each anonymous id was linked: its events are the contact's from
    # then on (before, a replay as of that instant does not know whose they
    # are). The first link in (timestamp, id) order, as `links` chooses.
    linked_at: dict[str, tuple[int, str]] = {}
    for event in unique:
        if event.anonymous_id is not None and event.contact_id is not None:
            order = (event.timestamp, event.id)
            linked_at[event.anonymous_id] = min(linked_at.get(event.anonymous_id, order), order)
    owned: dict[str, list[Event]] = {}
    for event in unique:
        identified, key = owner_of(event, linked)
        if identified:
            owned.setdefault(key, []).append(event)
    end = at if at is not None else max((e.timestamp for e in unique), default=0)
    window = round(setup.window_days * DAY)
    horizon = None if setup.horizon_days is None else round(setup.horizon_days * DAY)
    history = History([], end)
    for contact_id in sorted(owned):
        mine = sorted(owned[contact_id], key=lambda e: (e.timestamp, e.id))
        # First seen under its own id: anonymous events alone say nothing of
        # who it is until a link, which may come later, as late as the
        # outcome (a purchase carrying the visitor's id would otherwise give
        # converters, and only them, an earlier cut-off and more behaviour).
        seen = [e.timestamp for e in mine if e.type != setup.outcome and e.contact_id is not None]
        outcomes = [e.timestamp for e in mine if e.type == setup.outcome]
        outcome_at = outcomes[0] if outcomes else None
        if not seen:
            history.left_out["only outcome events"] += 1
            continue
        first = seen[0]
        cutoff = first + window
        label: int | None
        why = ""
        if outcome_at is not None and outcome_at <= cutoff:
            label, why = None, "converted at or before the cut-off"
        elif cutoff > end:
            label, why = None, "window not over by the end of the log"
        elif outcome_at is not None and (horizon is None or outcome_at <= cutoff + horizon):
            label = 1
        elif horizon is not None and cutoff + horizon > end:
            label, why = None, "horizon not over by the end of the log"
        else:
            label = 0
        if why:
            history.left_out[why] += 1
        observed_at = min(cutoff, end)
        # Anonymous events linked only after the cut-off are not the contact's
        # there (the label above may know the future; features may not).
        mine = [
            e
            for e in mine
            if e.anonymous_id is None
            or e.contact_id is not None
            or linked_at[e.anonymous_id][0] <= observed_at
        ]
        history.contacts.append(
            Contact(contact_id, mine, first, observed_at, outcome_at, label, why)
        )
    return history


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def features(chosen: Sequence[Contact], setup: Setup, *, engine: Engine | None = None) -> Table:
    """The feature table of `chosen` contacts, one row each, in order.

    - per event type: how many before the cut-off, days since the last one;
    - days since first seen; the weekday and hour (UTC) when first seen (who
      arrives on a Saturday or at night is often another kind of lead; an
      hour that is always 0, as in data kept by the day, is dropped as
      constant);
    - per event type, the top-level properties of its latest event (the
      origin and landing page of a first contact);
    - traits as of the cut-off;
    - with a rule model: each rule's awards before the cut-off, and the
      engagement score and fit as of the cut-off (the pure engine's replay).
    """
    rows = len(chosen)
    observed = [c.observed(setup.outcome) for c in chosen]
    types = sorted({e.type for seen in observed for e in seen})
    columns: dict[str, list[Any]] = {}
    for t in types:
        columns[f"{t} count"] = [0.0] * rows
        columns[f"{t} days since last"] = [None] * rows
    columns["days since first seen"] = [0.0] * rows
    columns["first seen weekday"] = [_WEEKDAYS[(c.first_seen // DAY) % 7] for c in chosen]
    columns["first seen hour"] = [float((c.first_seen % DAY) // HOUR) for c in chosen]
    properties: dict[str, list[Any]] = {}
    traits: dict[str, list[Any]] = {}
    rules: dict[str, list[Any]] = {}
    if engine is not None:
        for rule in engine.model.rules:
            rules[f"rule {rule.id} awards"] = [0.0] * rows
        rules["model score"] = [0.0] * rows
        rules["model fit"] = [0.0] * rows
    for i, (contact, seen) in enumerate(zip(chosen, observed, strict=True)):
        cutoff = contact.cutoff
        columns["days since first seen"][i] = (cutoff - contact.first_seen) / DAY
        merged: dict[str, Any] = {}
        for event in seen:
            columns[f"{event.type} count"][i] += 1.0
            columns[f"{event.type} days since last"][i] = (cutoff - event.timestamp) / DAY
            for key, value in event.properties.items():
                if _scalar(value):
                    properties.setdefault(f"{event.type}.{key}", [None] * rows)[i] = value
            if event.traits:
                for key, value in event.traits.items():
                    if value is None:
                        merged.pop(key, None)
                    elif _scalar(value):
                        merged[key] = value
        for key, value in merged.items():
            traits.setdefault(f"trait.{key}", [None] * rows)[i] = value
        if engine is not None:
            state, step = engine.run(
                [engine.prepare(e) for e in seen], contact_id=contact.contact_id, record=True
            )
            for award in step.awards:
                rules[f"rule {award.rule_id} awards"][i] += 1.0
            card = engine.scorecard(state, cutoff, contact_id=contact.contact_id, anonymous_id=None)
            rules["model score"][i] = card.score
            rules["model fit"][i] = float(card.fit)
    for name, values in properties.items():
        if len({v for v in values if v is not None}) <= _MAX_PROPERTY_VALUES:
            columns[name] = values
    columns |= traits
    columns |= rules
    return Table({name: typed_column(values) for name, values in columns.items()}, rows)


def complete(table: Table, names: Sequence[str]) -> Table:
    """Add the counting columns a model needs that this log never produced: zeros
    (no event of that type, no award of that rule), not missing values."""
    for name in names:
        if name not in table.columns and (name.endswith(" count") or name.endswith(" awards")):
            table.columns[name] = np.zeros(table.rows)
    return table


def labelled(history: History) -> list[Contact]:
    return [c for c in history.contacts if c.label is not None]


def cutoff_days(chosen: Sequence[Contact]) -> np.ndarray[Any, np.dtype[np.float64]]:
    return np.array([c.cutoff / DAY for c in chosen], dtype=np.float64)
