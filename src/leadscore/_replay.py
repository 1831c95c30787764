"""Replay: (model, events, as-of time) -> scorecards, firings, warnings.

This is the definition the other forms are measured against: the incremental
form (:mod:`leadscore._ledger`), the streaming CLI runner and the batch
engines must all give what :func:`replay` gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ._engine import Award, Engine, Firing, Prepared, RunWarning, Scorecard, StageEntry
from ._events import Event
from ._model import Model

# An owner is an identified contact or an anonymous profile.
Owner = tuple[bool, str]  # (identified, contact id or anonymous id)


@dataclass(slots=True)
class Result:
    """Scorecards of identified contacts (by contact id), of anonymous profiles
    (by anonymous id), every firing in (timestamp, event id, trigger id) order,
    and the warnings of the run."""

    # Sequences: the batch engine's rules-only path gives them as columns
    # (leadscore._batch.cards.Cards), every other engine as lists.
    scorecards: Sequence[Scorecard] = field(default_factory=list)
    anonymous: Sequence[Scorecard] = field(default_factory=list)
    firings: list[Firing] = field(default_factory=list)
    warnings: list[RunWarning] = field(default_factory=list)


@dataclass(slots=True)
class Explanation:
    """Why a contact has its scores: every award, stage entry and firing."""

    scorecard: Scorecard
    awards: list[tuple[Award, float]]  # with the value each counts as of `at`, unrounded
    entries: list[StageEntry]
    firings: list[Firing]
    at: int


def deduplicate(events: Iterable[Event]) -> tuple[list[Event], list[RunWarning]]:
    """Keep the first copy of each id (spec 1); warn about later copies that differ."""
    kept: dict[str, Event] = {}
    warnings: list[RunWarning] = []
    for event in events:
        first = kept.get(event.id)
        if first is None:
            kept[event.id] = event
        elif first != event:
            warnings.append(
                RunWarning(event.id, "a later copy of this event differs; the first copy is kept")
            )
    return list(kept.values()), warnings


def links(events: Iterable[Prepared | Event]) -> dict[str, str]:
    """anonymous id -> contact id: the first link in event order wins (spec 1)."""
    best: dict[str, tuple[int, str, str]] = {}
    for event in events:
        anonymous, contact = event.anonymous_id, event.contact_id
        if anonymous is None or contact is None:
            continue
        key = (event.timestamp, event.id, contact)
        seen = best.get(anonymous)
        if seen is None or key < seen:
            best[anonymous] = key
    return {anonymous: key[2] for anonymous, key in best.items()}


def owner_of(event: Prepared | Event, linked: Mapping[str, str]) -> Owner:
    if event.contact_id is not None:
        return (True, event.contact_id)
    assert event.anonymous_id is not None  # parse_event guarantees one of the two
    contact = linked.get(event.anonymous_id)
    return (True, contact) if contact is not None else (False, event.anonymous_id)


def group(events: Iterable[Prepared], linked: Mapping[str, str]) -> dict[Owner, list[Prepared]]:
    """Events by owner, each list sorted by (timestamp, id)."""
    owners: dict[Owner, list[Prepared]] = {}
    for event in events:
        owners.setdefault(owner_of(event, linked), []).append(event)
    for owned in owners.values():
        owned.sort(key=_order)
    return owners


def _order(event: Prepared) -> tuple[int, str]:
    return (event.timestamp, event.id)


def replay(model: Model | Engine, events: Iterable[Event], at: int) -> Result:
    """Score every owner in `events` as of `at` (microseconds since the epoch)."""
    engine = model if isinstance(model, Engine) else Engine(model)
    unique, warnings = deduplicate(events)
    # Events after `at` do not exist for any purpose, links included.
    prepared = [engine.prepare(event) for event in unique if event.timestamp <= at]
    result = score_groups(engine, group(prepared, links(prepared)), at)
    result.warnings[:0] = warnings
    return result


def score_groups(engine: Engine, owners: Mapping[Owner, list[Prepared]], at: int) -> Result:
    identified_cards: list[Scorecard] = []
    anonymous: list[Scorecard] = []
    result = Result(scorecards=identified_cards, anonymous=anonymous)
    for (identified, key), owned in sorted(owners.items(), key=lambda item: item[0][1]):
        state, step = engine.run(owned, contact_id=key if identified else None)
        card = engine.scorecard(
            state,
            at,
            contact_id=key if identified else None,
            anonymous_id=None if identified else key,
        )
        (identified_cards if identified else anonymous).append(card)
        result.firings += step.firings
        result.warnings += step.warnings
    result.firings.sort(key=lambda firing: firing.order_key)
    return result


def explain(
    model: Model | Engine, events: Iterable[Event], contact_id: str, at: int
) -> Explanation:
    """Replay one identified contact, recording every award, entry and firing."""
    engine = model if isinstance(model, Engine) else Engine(model)
    unique, _ = deduplicate(events)
    prepared = [engine.prepare(event) for event in unique if event.timestamp <= at]
    owned = group(prepared, links(prepared)).get((True, contact_id))
    if owned is None:
        raise KeyError(contact_id)
    state, step = engine.run(owned, contact_id=contact_id, record=True)
    return Explanation(
        scorecard=engine.scorecard(state, at, contact_id=contact_id, anonymous_id=None),
        awards=[(award, engine.counted(award, at)) for award in step.awards],
        entries=step.entries,
        firings=step.firings,
        at=at,
    )
