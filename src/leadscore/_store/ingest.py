"""Ingesting events: store them and bring their owners' states up to date, a
batch in one transaction.

The decisions are those of the in-memory incremental form
(leadscore._ledger.Ledger), event by event in arrival order, with the database
as the log: an event that sorts after everything its owner has seen is
applied to the state; a late event, or a link that moves an anonymous id's
events to another contact, makes the owners concerned be rebuilt from their
stored events. So the stored states always equal a replay of the stored log,
in any arrival order and batch split. Firings are recorded the first time
they appear, with an outbox row per action, in the same transaction.

A batch costs a fixed number of statements, not some per event: one insert
of its events, one round trip for its locks, one read of its owners' states
and links, and one write of the states that changed (rebuilds read their
owners' logs, and new links are written as they are made). Each event is
still decided as if it came alone: the batch's events are in the log from
the start, but an event not yet applied is left out of every history read.

A state made under another model version is first rebuilt from the owner's
log without the batch's events, as history: the firings that history gives
under the active model are recorded as carried out and queued nowhere (a
model activation does the same for every owner, see activation.py).

A whole batch commits or none of it: an event the database refuses (after
`log.encode`, which rejects what a database cannot hold, this takes a
constraint of the database's own) rolls the batch back, and its events are
then stored one transaction each, so that the refused one is rejected alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import sqlalchemy as sa

from .._engine import ContactState, Firing, Prepared, RunWarning
from .._errors import EventError
from .._events import Event
from .._replay import Owner
from . import activation, firings, identity, locks, log, owners
from .database import now
from .workspaces import ModelVersion, require_workspace


class Outcome(Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"  # the id was stored before; the first copy is kept
    REJECTED = "rejected"  # invalid or not storable: nothing was written


@dataclass(slots=True)
class EventOutcome:
    """What ingesting one event did: its status, why it was rejected, the
    firings recorded for the first time (to carry out), and warnings."""

    event_id: str | None  # None when a rejected record has no usable id
    status: Outcome
    reason: str | None = None
    firings: list[Firing] = field(default_factory=list)
    warnings: list[RunWarning] = field(default_factory=list)
    # Why a rejected record is invalid, naming its field at fault; None when
    # the event was valid and the database refused it.
    error: EventError | None = None


_DIFFERS = "a later copy of this event differs; the first copy is kept"

# What the database says when it refuses one event's rows (a constraint, a
# value it cannot hold), as opposed to failing itself (OperationalError...).
_REFUSED = (sa.exc.IntegrityError, sa.exc.DataError)


def ingest(
    conn: sa.Connection,
    *,
    workspace: str,
    model: ModelVersion,
    events: Sequence[Event | Mapping[str, Any]],
) -> list[EventOutcome]:
    """Store events (Event objects, or decoded JSON records to validate) and
    update their owners under `model`; one outcome per event, in order.

    The batch commits as one transaction before this returns; a rejected
    event never costs the good ones around it. The connection must therefore
    not be in a transaction already.
    """
    if conn.in_transaction():
        raise ValueError("ingest commits the events itself: pass a connection with no transaction")
    outcomes: list[EventOutcome | None] = [None] * len(events)
    valid: list[tuple[int, Event, str]] = []
    for index, raw in enumerate(events):
        try:
            event, body = log.encode(raw)
        except EventError as error:
            outcomes[index] = EventOutcome(
                _raw_id(raw), Outcome.REJECTED, reason=str(error), error=error
            )
            continue
        valid.append((index, event, body))
    try:
        with conn.begin():
            done = _Batch(conn, workspace, model).ingest([(e, b) for _, e, b in valid])
    except _REFUSED:
        done = _one_by_one(conn, workspace, model, valid)
    for (index, _, _), outcome in zip(valid, done, strict=True):
        outcomes[index] = outcome
    assert all(outcome is not None for outcome in outcomes)
    return [outcome for outcome in outcomes if outcome is not None]


def _one_by_one(
    conn: sa.Connection, workspace: str, model: ModelVersion, valid: list[tuple[int, Event, str]]
) -> list[EventOutcome]:
    done: list[EventOutcome] = []
    for _, event, body in valid:
        try:
            with conn.begin():
                done += _Batch(conn, workspace, model).ingest([(event, body)])
        except _REFUSED as error:
            reason = "the database refused it: " + str(error.orig or error).strip().splitlines()[0]
            done.append(EventOutcome(event.id, Outcome.REJECTED, reason=reason))
    return done


def _raw_id(raw: Event | Mapping[str, Any]) -> str | None:
    found = raw.id if isinstance(raw, Event) else raw.get("id")
    return found if isinstance(found, str) else None


def _contact(owner: Owner) -> str | None:
    identified, key = owner
    return key if identified else None


class _Batch:
    """One transaction's events, decided one by one over states kept in memory
    and written back at the end."""

    def __init__(self, conn: sa.Connection, workspace: str, model: ModelVersion) -> None:
        self.conn = conn
        self.workspace = workspace
        self.model = model
        self.engine = model.engine
        self.stamp = now()
        self.pending: set[str] = set()  # ids stored but not applied yet
        self.links: dict[str, identity.Link] = {}
        self.states: dict[Owner, ContactState] = {}
        self.existing: set[Owner] = set()  # owners whose row is in the database
        self.changed: set[Owner] = set()
        self.contacts: set[str] = set()  # the identified owners locked
        self.once = firings.once_triggers(model)
        self._known: set[firings.Key] | None = None
        self.queued: list[Firing] = []
        self.history: list[Firing] = []

    def ingest(self, encoded: list[tuple[Event, str]]) -> list[EventOutcome]:
        require_workspace(self.conn, self.workspace)
        first: dict[str, tuple[Event, str]] = {}
        for event, body in encoded:
            first.setdefault(event.id, (event, body))
        # Step 1 of locks.py: the rows first, before any advisory lock.
        new = log.insert_many(self.conn, self.workspace, list(first.values()), self.stamp)
        earlier = log.stored_many(self.conn, self.workspace, sorted(set(first) - new))
        outcomes: list[EventOutcome] = []
        accepted: list[tuple[EventOutcome, Event]] = []
        taken: set[str] = set()
        for event, _ in encoded:
            if event.id in new and event.id not in taken:
                taken.add(event.id)
                outcome = EventOutcome(event.id, Outcome.ACCEPTED)
                accepted.append((outcome, event))
            else:
                outcome = EventOutcome(event.id, Outcome.DUPLICATE)
                original = first[event.id][0] if event.id in new else earlier[event.id]
                if original != event:
                    outcome.warnings.append(RunWarning(event.id, _DIFFERS))
            outcomes.append(outcome)
        if accepted:
            self._lock_and_load([event for _, event in accepted])
            for outcome, event in accepted:
                self._apply(outcome, event)
            self._write()
        return outcomes

    def _lock_and_load(self, events: list[Event]) -> None:
        conn, workspace = self.conn, self.workspace
        self.pending = {event.id for event in events}
        anonymous = sorted({event.anonymous_id for event in events if event.anonymous_id})
        locks.lock_anonymous_ids(conn, workspace, anonymous)
        self.links = identity.winners(conn, workspace, anonymous)
        wanted: set[Owner] = {(True, e.contact_id) for e in events if e.contact_id is not None}
        wanted |= {(True, link.contact_id) for link in self.links.values()}
        wanted |= {(False, anonymous_id) for anonymous_id in anonymous}
        locks.lock_owners(conn, workspace, wanted)
        self.contacts = {key for identified, key in wanted if identified}
        for owner, stored in owners.load(conn, workspace, wanted).items():
            self.existing.add(owner)
            if stored.model_version == self.model.version:
                self.states[owner] = stored.state
            else:
                self._rescore_history(owner)

    def _rescore_history(self, owner: Owner) -> None:
        """Bring a state of another model version to the active one, from the
        log without this batch; its firings are history, carried out as such."""
        self.changed.add(owner)
        past = self._owned(owner)
        if not past:
            return
        ((state, fired),) = activation.score_history(self.engine, {owner: past}).values()
        self.states[owner] = state
        self.history += self._new(fired)

    def _apply(self, outcome: EventOutcome, event: Event) -> None:
        engine = self.engine
        prepared: Prepared = engine.prepare(event)
        self.pending.discard(event.id)
        owner, stale = self._place(event)
        fired: list[Firing] = []
        state = self.states.get(owner)
        if owner not in stale and state is None:
            # Every owner with events in the log has a state, so this one has
            # only this event: its rebuild, without reading the log.
            state, step = engine.run([prepared], contact_id=_contact(owner))
            self.states[owner] = state
            self.changed.add(owner)
            fired += step.firings
            outcome.warnings += step.warnings
        elif (
            owner not in stale
            and state is not None
            and (last := state.last_key) is not None
            and (prepared.timestamp, prepared.id) > last
        ):
            step = engine.apply(state, prepared, contact_id=_contact(owner))
            self.changed.add(owner)
            fired += step.firings
            outcome.warnings += step.warnings
        else:
            stale.add(owner)
        for rebuilt in sorted(stale):
            self.changed.add(rebuilt)
            # An anonymous profile owns only its id's anonymous-only events, and
            # a link to a contact has just taken them all: nothing to read.
            history = [] if not rebuilt[0] and rebuilt != owner else self._owned(rebuilt)
            if not history:  # an anonymous profile whose events all went to a contact
                self.states.pop(rebuilt, None)
                continue
            state, step = engine.run(
                (engine.prepare(past) for past in history), contact_id=_contact(rebuilt)
            )
            self.states[rebuilt] = state
            fired += step.firings
            # A rebuild repeats the warnings of old events; report only the new event's.
            outcome.warnings += [w for w in step.warnings if w.event_id == event.id]
        outcome.firings = self._new(fired)
        self.queued += outcome.firings

    def _place(self, event: Event) -> tuple[Owner, set[Owner]]:
        """The event's owner, and the owners to rebuild because its link moves an
        anonymous id's events from one owner to another; records the event's
        own link candidate."""
        anonymous, contact = event.anonymous_id, event.contact_id
        if anonymous is None:
            assert contact is not None  # parse_event requires one of the two
            return (True, contact), set()
        current = self.links.get(anonymous)
        if contact is None:
            return ((True, current.contact_id) if current else (False, anonymous)), set()
        owner: Owner = (True, contact)
        candidate = identity.Link(event.timestamp, event.id, contact)
        if not identity.offer(self.conn, self.workspace, anonymous, current, candidate):
            return owner, set()
        self.links[anonymous] = candidate
        previous = current.contact_id if current is not None else None
        if previous == contact or not self._has_anonymous_only(anonymous, linked=previous):
            return owner, set()  # the link changed, but no event changes hands
        old: Owner = (True, previous) if previous is not None else (False, anonymous)
        return owner, {old, owner}

    def _has_anonymous_only(self, anonymous_id: str, *, linked: str | None) -> bool:
        if linked is None:
            # Unlinked, the id's anonymous-only events are its anonymous
            # profile's, which has a state exactly when it has events.
            return (False, anonymous_id) in self.states
        return log.has_anonymous_only(self.conn, self.workspace, anonymous_id, besides=self.pending)

    def _owned(self, owner: Owner) -> list[Event]:
        """The owner's log as of the event being applied: the batch's later
        events left out."""
        found = log.owned(self.conn, self.workspace, owner)
        return [event for event in found if event.id not in self.pending]

    def _new(self, fired: list[Firing]) -> list[Firing]:
        """The firings among `fired` that appear for the first time."""
        if not fired:
            return []
        if self._known is None:
            self._known = firings.known(self.conn, self.workspace, self.contacts)
        new: list[Firing] = []
        for firing in sorted(fired, key=lambda firing: firing.order_key):
            key = firings.key_of(firing, self.once)
            if key not in self._known:
                self._known.add(key)
                new.append(firing)
        return new

    def _write(self) -> None:
        conn, workspace = self.conn, self.workspace
        owners.save_many(
            conn,
            workspace,
            {owner: self.states[owner] for owner in self.changed if owner in self.states},
            engine=self.engine,
            model_version=self.model.version,
            existing=self.existing,
        )
        for owner in sorted(self.changed - set(self.states)):
            if owner in self.existing:
                owners.delete(conn, workspace, owner)
        firings.write(conn, workspace, self.model, self.history, self.stamp, history=True)
        firings.write(conn, workspace, self.model, self.queued, self.stamp)
