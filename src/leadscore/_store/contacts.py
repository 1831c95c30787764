"""Contacts read back for the API: one contact, its timeline, the contacts
of a list's page (the list itself is `ranking.ranked`); and a contact's data
exported whole or erased (GDPR access and erasure).

Only identified contacts are served here. Every read is as of an instant the
caller gives (the request's time): scores decay, so they are computed from the
stored state at that instant, never read from a column.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .._engine import Award, ContactState, Firing, Scorecard, StageEntry
from .._events import Event
from .._replay import Owner
from . import actions, locks, log, outbox
from .actions import Labels
from .database import transaction
from .owners import Stored
from .reads import state_as_of
from .tables import events, firings, identity_links, owners
from .tables import outbox as outbox_rows
from .workspaces import ModelVersion


@dataclass(frozen=True, slots=True)
class Contact:
    """A contact as of an instant: its scorecard and the state behind it."""

    card: Scorecard
    traits: dict[str, Any]
    model_version: int
    labels: Labels  # what actions put on it: tags and owner


@dataclass(frozen=True, slots=True)
class Moment:
    """One event of a contact's history and what it did."""

    event: Event
    awards: list[tuple[Award, float]]  # with the value each counts as of the instant asked
    entries: list[StageEntry]
    firings: list[Firing]


@dataclass(frozen=True, slots=True)
class History:
    contact: Contact
    stage_history: list[StageEntry]
    moments: list[Moment]  # every event up to the instant, in (timestamp, id) order


def _state(
    conn: sa.Connection, workspace: str, model: ModelVersion, contact_id: str, at: int
) -> ContactState | None:
    owner: Owner = (True, contact_id)
    stored = _load(conn, workspace, contact_id)
    return _current(conn, workspace, model, owner, stored=stored, at=at)


def _load(conn: sa.Connection, workspace: str, contact_id: str) -> Stored | None:
    row = conn.execute(
        sa.select(owners.c.state, owners.c.model_version).where(
            owners.c.workspace == workspace, owners.c.identified, owners.c.key == contact_id
        )
    ).first()
    return None if row is None else Stored(ContactState.from_json(row.state), row.model_version)


def _current(
    conn: sa.Connection,
    workspace: str,
    model: ModelVersion,
    owner: Owner,
    *,
    stored: Stored | None,
    at: int,
) -> ContactState | None:
    # Only owners that were stored are contacts; their state as of `at` is
    # decided as for every read (reads.state_as_of).
    if stored is None:
        return None
    return state_as_of(conn, workspace, model, owner, stored, at=at)


def _contact(
    model: ModelVersion, contact_id: str, state: ContactState, at: int, labels: Labels
) -> Contact:
    card = model.engine.scorecard(state, at, contact_id=contact_id, anonymous_id=None)
    return Contact(card=card, traits=dict(state.traits), model_version=model.version, labels=labels)


def _labels(conn: sa.Connection, workspace: str, contact_id: str) -> Labels:
    return actions.labels(conn, workspace, [contact_id]).get(contact_id, Labels())


def contact(
    conn: sa.Connection, *, workspace: str, model: ModelVersion, contact_id: str, at: int
) -> Contact | None:
    """A contact's scorecard and traits as of `at`; None when it has no event up to then."""
    with transaction(conn):
        state = _state(conn, workspace, model, contact_id, at)
        labels = _labels(conn, workspace, contact_id)
    return None if state is None else _contact(model, contact_id, state, at, labels)


def history(
    conn: sa.Connection, *, workspace: str, model: ModelVersion, contact_id: str, at: int
) -> History | None:
    """A contact as of `at` with every event it owns and what each did: a
    recording run over its log (the engine's own explanation)."""
    with transaction(conn):
        if _load(conn, workspace, contact_id) is None:
            return None
        owned = log.owned(conn, workspace, (True, contact_id), at)
        labels = _labels(conn, workspace, contact_id)
    if not owned:
        return None
    engine = model.engine
    state, step = engine.run(
        (engine.prepare(event) for event in owned), contact_id=contact_id, record=True
    )
    awards: dict[str, list[tuple[Award, float]]] = {}
    for award in step.awards:
        awards.setdefault(award.event_id, []).append((award, engine.counted(award, at)))
    entries: dict[str, list[StageEntry]] = {}
    for entry in step.entries:
        entries.setdefault(entry.event_id, []).append(entry)
    fired: dict[str, list[Firing]] = {}
    for firing in step.firings:
        fired.setdefault(firing.event_id, []).append(firing)
    moments = [
        Moment(event, awards.get(event.id, []), entries.get(event.id, []), fired.get(event.id, []))
        for event in owned
    ]
    return History(_contact(model, contact_id, state, at, labels), step.entries, moments)


def at_firing(
    conn: sa.Connection,
    *,
    workspace: str,
    model: ModelVersion,
    contact_id: str,
    event_id: str,
    timestamp: int,
) -> Scorecard | None:
    """A contact's scorecard just after the event a trigger fired at, as its
    stored log now has it (an event that arrived late, before that one, counts);
    None when it has no event up to there any more."""
    with transaction(conn):
        owned = log.owned(conn, workspace, (True, contact_id), timestamp)
    history = [event for event in owned if event.order_key <= (timestamp, event_id)]
    if not history:
        return None
    engine = model.engine
    state, _ = engine.run((engine.prepare(event) for event in history), contact_id=contact_id)
    return engine.scorecard(state, timestamp, contact_id=contact_id, anonymous_id=None)


# Ids per query: a bound parameter each, and SQLite allows some thousands.
_CHUNK = 500


def cards(
    conn: sa.Connection,
    *,
    workspace: str,
    model: ModelVersion,
    at: int,
    contact_ids: Sequence[str],
) -> list[Contact]:
    """The contacts of `contact_ids` as of `at`, whole (scorecard, traits,
    labels), in the order given: the page or the export of a list that
    `ranking.ranked` filtered and ordered. A contact with no event up to `at`
    (or no longer stored) is left out."""
    found: list[Contact] = []
    with transaction(conn):
        for start in range(0, len(contact_ids), _CHUNK):
            chunk = contact_ids[start : start + _CHUNK]
            rows = conn.execute(
                sa.select(owners.c.key, owners.c.state, owners.c.model_version).where(
                    owners.c.workspace == workspace,
                    owners.c.identified,
                    owners.c.key.in_(chunk),
                )
            ).all()
            stored = {
                row.key: Stored(ContactState.from_json(row.state), row.model_version)
                for row in rows
            }
            labelled = actions.labels(conn, workspace, chunk)
            for contact_id in chunk:
                owner: Owner = (True, contact_id)
                state = _current(
                    conn, workspace, model, owner, stored=stored.get(contact_id), at=at
                )
                if state is not None:
                    labels = labelled.get(contact_id, Labels())
                    found.append(_contact(model, contact_id, state, at, labels))
    return found


# -- access and erasure ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Held:
    """Everything stored about a contact."""

    contact: Contact | None  # None when its events are all after the instant asked
    events: list[dict[str, Any]]  # canonical JSON, in (timestamp, id) order
    anonymous_ids: list[str]  # the ids whose link it won
    firings: list[dict[str, Any]]
    actions: list[dict[str, Any]]  # outbox rows, webhook payloads included
    attempts: list[dict[str, Any]]  # the webhook deliveries' attempts


def held(
    conn: sa.Connection, *, workspace: str, model: ModelVersion, contact_id: str, at: int
) -> Held | None:
    """Everything held about a contact (GDPR access); None when there is no such contact."""
    with transaction(conn):
        stored = _load(conn, workspace, contact_id)
        if stored is None:
            return None
        state = _current(conn, workspace, model, (True, contact_id), stored=stored, at=at)
        owned = log.owned(conn, workspace, (True, contact_id))
        anonymous = _linked(conn, workspace, contact_id)
        fired = conn.execute(
            sa.select(firings)
            .where(firings.c.workspace == workspace, firings.c.contact_id == contact_id)
            .order_by(firings.c.seq)
        ).all()
        queued = conn.execute(
            sa.select(outbox_rows)
            .where(
                outbox_rows.c.workspace == workspace,
                outbox_rows.c.firing.in_([f.seq for f in fired]),
            )
            .order_by(outbox_rows.c.seq)
        ).all()
        attempts = outbox.attempts_of(conn, seqs=[row.seq for row in queued])
        labels = _labels(conn, workspace, contact_id)
    return Held(
        contact=None if state is None else _contact(model, contact_id, state, at, labels),
        events=[event.to_json() for event in owned],
        anonymous_ids=anonymous,
        firings=[dict(row._mapping) for row in fired],
        actions=[_without_secret(dict(row._mapping)) for row in queued],
        attempts=attempts,
    )


def _without_secret(row: dict[str, Any]) -> dict[str, Any]:
    """An outbox row as an access request shows it: a webhook's action
    without the `secret` that signs it (the export is handed to the person,
    and the secret is the receiver's, not theirs)."""
    webhook = row["action"].get("webhook")
    if isinstance(webhook, dict) and "secret" in webhook:
        kept = {key: value for key, value in webhook.items() if key != "secret"}
        row["action"] = {**row["action"], "webhook": kept}
    return row


def _linked(conn: sa.Connection, workspace: str, contact_id: str) -> list[str]:
    rows = conn.execute(
        sa.select(identity_links.c.anonymous_id).where(
            identity_links.c.workspace == workspace, identity_links.c.contact_id == contact_id
        )
    )
    return sorted(rows.scalars())


def erase(conn: sa.Connection, *, workspace: str, contact_id: str) -> bool:
    """Erase a contact (GDPR erasure), in one transaction; whether it existed.

    Gone: its events, the anonymous-only events of every anonymous id whose
    link it won (they are the same person's), its state, firings and their
    outbox rows (the payloads of deliveries), and its links. An anonymous id
    it had won falls to the next candidate left in the log (an event of
    another contact that carried it), as a replay of what remains would link
    it, or to no one; either way none of its anonymous-only events remain, so
    no other owner's state changes.
    """
    if conn.in_transaction():
        raise ValueError("erase commits itself: pass a connection with no transaction")
    # locks.py's order: the anonymous ids' locks first, then the owner's.
    # Several anonymous-id locks, taken in increasing key order, cannot
    # deadlock with a writer, which holds at most one. A link to this contact
    # made before its owner lock was granted shows up only once that lock is
    # held: then start again, holding that id's lock too (a writer working on
    # the id must not act on a link this erasure changes).
    held: set[str] = set()
    while True:
        with conn.begin() as tx:
            for anonymous_id in sorted(held, key=lambda a: locks.anonymous_key(workspace, a)):
                locks.lock_anonymous(conn, workspace, anonymous_id)
            locks.lock_owners(conn, workspace, [(True, contact_id)])
            # Under the owner's lock, no link to this contact can appear or move.
            anonymous = _linked(conn, workspace, contact_id)
            if conn.dialect.name == "postgresql" and not held.issuperset(anonymous):
                held.update(anonymous)
                tx.rollback()
                continue
            return _erase(conn, workspace, contact_id, anonymous)


def _erase(conn: sa.Connection, workspace: str, contact_id: str, anonymous: list[str]) -> bool:
    """Erase under the locks `erase` took; whether the contact existed."""
    existed = (
        conn.execute(
            owners.delete().where(
                owners.c.workspace == workspace,
                owners.c.identified,
                owners.c.key == contact_id,
            )
        ).rowcount
        > 0
    )
    fired = sa.select(firings.c.seq).where(
        firings.c.workspace == workspace, firings.c.contact_id == contact_id
    )
    # The outbox rows first: a worker carrying out one of them holds its row
    # lock, so the tags and owner deleted below include what it adds.
    outbox.forget(conn, fired=fired)
    conn.execute(
        firings.delete().where(firings.c.workspace == workspace, firings.c.contact_id == contact_id)
    )
    actions.forget(conn, workspace, contact_id)
    conn.execute(
        events.delete().where(events.c.workspace == workspace, events.c.contact_id == contact_id)
    )
    for anonymous_id in anonymous:
        conn.execute(
            events.delete().where(
                events.c.workspace == workspace,
                events.c.anonymous_id == anonymous_id,
                events.c.contact_id.is_(None),
            )
        )
        _relink(conn, workspace, anonymous_id)
    return existed


def _relink(conn: sa.Connection, workspace: str, anonymous_id: str) -> None:
    """Give an anonymous id the link the remaining log gives it, or none."""
    link = identity_links
    where = (link.c.workspace == workspace, link.c.anonymous_id == anonymous_id)
    rows = conn.execute(
        sa.select(events.c.timestamp, events.c.id, events.c.contact_id).where(
            events.c.workspace == workspace,
            events.c.anonymous_id == anonymous_id,
            events.c.contact_id.is_not(None),
        )
    ).all()
    if not rows:
        conn.execute(link.delete().where(*where))
        return
    # Chosen here, not in SQL: ids compare by code point (spec 1).
    first = min(rows, key=lambda row: (row.timestamp, row.id))
    conn.execute(
        link.update()
        .where(*where)
        .values(timestamp=first.timestamp, event_id=first.id, contact_id=first.contact_id)
    )
