"""Ingesting events: store each one and bring its owners' states up to date,
in one transaction per event.

The decisions are those of the in-memory incremental form
(leadscore._ledger.Ledger), with the database as the log: an event that sorts
after everything its owner has seen is applied to the stored state; a late
event, a state of another model version, or a link that moves an anonymous
id's events to another contact makes the owners concerned be rebuilt from
their stored events. So the stored states always equal a replay of the
stored log, in any arrival order. Firings are recorded the first time they
appear, with an outbox row per action, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import sqlalchemy as sa

from .._engine import Firing, Prepared, RunWarning
from .._errors import EventError
from .._events import Event
from .._replay import Owner
from . import firings, identity, locks, log, owners
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


def ingest(
    conn: sa.Connection,
    *,
    workspace: str,
    model: ModelVersion,
    events: Sequence[Event | Mapping[str, Any]],
) -> list[EventOutcome]:
    """Store events (Event objects, or decoded JSON records to validate) and
    update their owners under `model`; one outcome per event, in order.

    Each event commits on its own, so a rejected event never costs the good
    ones around it, and what was committed stays when a later one fails. The
    connection must therefore not be in a transaction already.
    """
    if conn.in_transaction():
        raise ValueError("ingest commits each event itself: pass a connection with no transaction")
    outcomes: list[EventOutcome] = []
    # The workspace is checked in the first event's transaction: a batch of
    # one event (the common request) then costs no extra transaction.
    unchecked = True
    for raw in events:
        try:
            event, body = log.encode(raw)
        except EventError as error:
            outcomes.append(EventOutcome(_raw_id(raw), Outcome.REJECTED, reason=str(error)))
            continue
        prepared = model.engine.prepare(event)
        with conn.begin():
            if unchecked:
                require_workspace(conn, workspace)
                unchecked = False
            outcomes.append(
                _ingest_one(
                    conn,
                    workspace=workspace,
                    model=model,
                    event=event,
                    body=body,
                    prepared=prepared,
                )
            )
    if unchecked:  # every event was rejected: still, an unknown workspace is an error
        with conn.begin():
            require_workspace(conn, workspace)
    return outcomes


def _raw_id(raw: Event | Mapping[str, Any]) -> str | None:
    found = raw.id if isinstance(raw, Event) else raw.get("id")
    return found if isinstance(found, str) else None


def _ingest_one(
    conn: sa.Connection,
    *,
    workspace: str,
    model: ModelVersion,
    event: Event,
    body: str,
    prepared: Prepared,
) -> EventOutcome:
    stamp = now()
    # First, before any lock: see locks.py for why.
    if not log.insert(conn, workspace, event, body, stamp):
        return _duplicate(conn, workspace, event)
    owner, stale = _place(conn, workspace, event)
    wanted = {owner, *stale}
    locks.lock_owners(conn, workspace, wanted)
    stored = owners.load(conn, workspace, wanted)
    engine = model.engine
    outcome = EventOutcome(event.id, Outcome.ACCEPTED)
    fired: list[Firing] = []

    current = stored.get(owner)
    last = current.state.last_key if current is not None else None
    if (
        owner not in stale
        and current is not None
        and current.model_version == model.version
        and last is not None
        and (prepared.timestamp, prepared.id) > last
    ):
        step = engine.apply(current.state, prepared, contact_id=_contact(owner))
        owners.save(
            conn,
            workspace,
            owner,
            current.state,
            engine=engine,
            model_version=model.version,
            exists=True,
        )
        fired += step.firings
        outcome.warnings += step.warnings
    else:
        stale.add(owner)

    for rebuilt in sorted(stale):
        history = log.owned(conn, workspace, rebuilt)
        if not history:  # an anonymous profile whose events all went to a contact
            if rebuilt in stored:
                owners.delete(conn, workspace, rebuilt)
            continue
        state, step = engine.run(
            (engine.prepare(past) for past in history), contact_id=_contact(rebuilt)
        )
        owners.save(
            conn,
            workspace,
            rebuilt,
            state,
            engine=engine,
            model_version=model.version,
            exists=rebuilt in stored,
        )
        fired += step.firings
        # A rebuild repeats the warnings of old events; report only the new event's.
        outcome.warnings += [warning for warning in step.warnings if warning.event_id == event.id]

    outcome.firings = firings.record(conn, workspace, model, fired, stamp)
    return outcome


def _duplicate(conn: sa.Connection, workspace: str, event: Event) -> EventOutcome:
    outcome = EventOutcome(event.id, Outcome.DUPLICATE)
    if log.stored(conn, workspace, event.id) != event:
        outcome.warnings.append(
            RunWarning(event.id, "a later copy of this event differs; the first copy is kept")
        )
    return outcome


def _place(conn: sa.Connection, workspace: str, event: Event) -> tuple[Owner, set[Owner]]:
    """The event's owner, and the owners to rebuild because its link moves an
    anonymous id's events from one owner to another.

    Takes the anonymous id's lock (locks.py, step 2) before reading its link,
    and records the event's own link candidate.
    """
    anonymous, contact = event.anonymous_id, event.contact_id
    if anonymous is None:
        assert contact is not None  # parse_event requires one of the two
        return (True, contact), set()
    locks.lock_anonymous(conn, workspace, anonymous)
    current = identity.winner(conn, workspace, anonymous)
    if contact is None:
        return ((True, current.contact_id) if current else (False, anonymous)), set()
    owner: Owner = (True, contact)
    candidate = identity.Link(event.timestamp, event.id, contact)
    if not identity.offer(conn, workspace, anonymous, current, candidate):
        return owner, set()
    previous = current.contact_id if current is not None else None
    if previous == contact or not log.has_anonymous_only(conn, workspace, anonymous):
        return owner, set()  # the link changed, but no event changes hands
    old: Owner = (True, previous) if previous is not None else (False, anonymous)
    return owner, {old, owner}


def _contact(owner: Owner) -> str | None:
    identified, key = owner
    return key if identified else None
