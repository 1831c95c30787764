"""The incremental form: one event at a time, always equal to a replay.

A :class:`Ledger` holds an event log and every owner's state in memory and
takes events in any arrival order. An event that sorts after everything its
owner has seen is applied directly (the common case: O(rules) work). An
event that arrives late, or that changes which contact an anonymous id
belongs to, makes the owners concerned be rebuilt from their logs, which the
spec allows and which keeps the result exactly that of a replay.

The HTTP service follows the same decisions with a database as the log;
this class is the reference for them and what the property tests drive.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from ._engine import ContactState, Engine, Firing, Prepared, RunWarning, Scorecard
from ._events import Event
from ._replay import Owner, Result, owner_of, replay


class Status(Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"


@dataclass(slots=True)
class Ingested:
    """What ingesting one event did: its status, the owners rescored, the
    firings that appeared for the first time (to carry out exactly once), and
    warnings."""

    status: Status
    rescored: list[Owner] = field(default_factory=list)
    firings: list[Firing] = field(default_factory=list)
    warnings: list[RunWarning] = field(default_factory=list)


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._events: dict[str, Event] = {}
        self._owned: dict[Owner, list[Prepared]] = {}
        self._states: dict[Owner, ContactState] = {}
        # Link candidates per anonymous id: (timestamp, event id, contact id).
        self._candidates: dict[str, list[tuple[int, str, str]]] = {}
        self._linked: dict[str, str] = {}
        # Events carrying only an anonymous id, by that id: they move with the link.
        self._anonymous_only: dict[str, list[Prepared]] = {}
        self._emitted: set[tuple[str, str, str]] = set()
        self._once = {trigger.id for trigger in engine.compiled.triggers if trigger.once}
        self._latest = 0

    def ingest(self, event: Event) -> Ingested:
        first = self._events.get(event.id)
        if first is not None:
            result = Ingested(Status.DUPLICATE)
            if first != event:
                result.warnings.append(
                    RunWarning(
                        event.id, "a later copy of this event differs; the first copy is kept"
                    )
                )
            return result
        self._events[event.id] = event
        self._latest = max(self._latest, event.timestamp)
        prepared = self.engine.prepare(event)
        stale = self._relink(prepared)
        owner = owner_of(prepared, self._linked)
        self._owned.setdefault(owner, []).append(prepared)
        if prepared.contact_id is None and prepared.anonymous_id is not None:
            self._anonymous_only.setdefault(prepared.anonymous_id, []).append(prepared)

        result = Ingested(Status.ACCEPTED)
        state = self._states.get(owner)
        in_order = (
            state is not None
            and state.last_key is not None
            and ((prepared.timestamp, prepared.id) > state.last_key)
        )
        if owner not in stale and in_order and state is not None:
            step = self.engine.apply(state, prepared, contact_id=_contact(owner))
            result.rescored.append(owner)
            self._emit(step.firings, result)
            result.warnings += step.warnings
        else:
            stale.add(owner)
        for rescored in sorted(stale):
            result.rescored.append(rescored)
            self._rebuild(rescored, result, prepared.id)
        return result

    def _relink(self, event: Prepared) -> set[Owner]:
        """Record a link; if it changes an anonymous id's contact, move that id's
        events and return the owners that must be rebuilt."""
        anonymous, contact = event.anonymous_id, event.contact_id
        if anonymous is None or contact is None:
            return set()
        candidates = self._candidates.setdefault(anonymous, [])
        candidates.append((event.timestamp, event.id, contact))
        winner = min(candidates)[2]
        previous = self._linked.get(anonymous)
        if previous == winner:
            return set()
        old: Owner = (True, previous) if previous is not None else (False, anonymous)
        new: Owner = (True, winner)
        self._linked[anonymous] = winner
        moving = self._anonymous_only.get(anonymous, [])
        if moving:
            ids = {moved.id for moved in moving}
            remaining = [kept for kept in self._owned.get(old, []) if kept.id not in ids]
            if remaining:
                self._owned[old] = remaining
            else:
                self._owned.pop(old, None)
                self._states.pop(old, None)
            self._owned.setdefault(new, []).extend(moving)
        return {old, new} if old in self._owned else {new}

    def _rebuild(self, owner: Owner, result: Ingested, new_event: str) -> None:
        owned = self._owned.get(owner)
        if not owned:
            self._states.pop(owner, None)
            return
        owned.sort(key=lambda event: (event.timestamp, event.id))
        state, step = self.engine.run(owned, contact_id=_contact(owner))
        self._states[owner] = state
        self._emit(step.firings, result)
        # A rebuild repeats the warnings of old events; report only the new event's.
        result.warnings += [w for w in step.warnings if w.event_id == new_event]

    def _emit(self, firings: Iterable[Firing], result: Ingested) -> None:
        # The service carries out a firing the first time it appears and never
        # undoes one that a late event makes disappear (spec 2.6). A late event
        # can also move a `once` firing to another event; "once" is what the
        # marketer wrote, so such a trigger is carried out once per contact.
        for firing in firings:
            once = firing.trigger in self._once
            key = (firing.trigger, firing.contact_id, "" if once else firing.event_id)
            if key not in self._emitted:
                self._emitted.add(key)
                result.firings.append(firing)

    def scorecard(self, owner: Owner, at: int) -> Scorecard:
        """The scorecard of `owner`, `(True, contact_id)` or `(False,
        anonymous_id)`, as of `at`; KeyError when it has no event up to then.

        As for `result`, events after `at` do not exist for the answer: the
        stored state holds every event ingested, so when the log has events
        after `at` the answer is the replay's (it was the state's, later
        events' points and stages included).
        """
        if self._latest > at:
            identified, key = owner
            found = self.result(at)
            for card in found.scorecards if identified else found.anonymous:
                if (card.contact_id if identified else card.anonymous_id) == key:
                    return card
            raise KeyError(owner)
        state = self._states[owner]
        identified, key = owner
        return self.engine.scorecard(
            state,
            at,
            contact_id=key if identified else None,
            anonymous_id=None if identified else key,
        )

    def result(self, at: int) -> Result:
        """Scorecards as of `at`, from the stored states.

        When the log holds events after `at`, those events must not exist for
        the answer (spec 1), so it is a replay of the log up to `at` instead.
        """
        if self._latest > at:
            return replay(self.engine, self._events.values(), at)
        identified: list[Scorecard] = []
        anonymous: list[Scorecard] = []
        for owner in sorted(self._states, key=lambda owner: owner[1]):
            (identified if owner[0] else anonymous).append(self.scorecard(owner, at))
        return Result(scorecards=identified, anonymous=anonymous)


def _contact(owner: Owner) -> str | None:
    identified, key = owner
    return key if identified else None
