"""Reading scores back: from the stored states, or from the log when they
cannot answer (an instant before some of the owner's events, or a state
made under another model version)."""

from __future__ import annotations

import sqlalchemy as sa

from .._engine import ContactState, Scorecard
from .._replay import Owner, Result, replay
from . import log, owners
from .database import transaction
from .owners import Stored
from .workspaces import ModelVersion


def scorecard(
    conn: sa.Connection, *, workspace: str, model: ModelVersion, contact_id: str, at: int
) -> Scorecard | None:
    """A contact's scorecard as of `at` (microseconds), or None when it has no
    event up to then."""
    owner: Owner = (True, contact_id)
    with transaction(conn):
        stored = owners.load(conn, workspace, [owner]).get(owner)
        return _scorecard(conn, workspace, model, owner, stored, at=at)


def scorecards(
    conn: sa.Connection, *, workspace: str, model: ModelVersion, at: int, anonymous: bool = False
) -> list[Scorecard]:
    """Every contact's scorecard as of `at`, by contact id; with `anonymous`,
    the anonymous profiles follow, by anonymous id (as `score
    --include-anonymous` lists them)."""
    with transaction(conn):
        cards = [
            card
            for owner, stored in owners.every(conn, workspace, anonymous=anonymous)
            if (card := _scorecard(conn, workspace, model, owner, stored, at=at)) is not None
        ]
        if anonymous:
            # Ids whose link comes after `at` were still anonymous profiles then.
            later = log.anonymous_as_of(conn, workspace, at)
            cards += [
                card
                for anonymous_id in later
                if (card := _scorecard(conn, workspace, model, (False, anonymous_id), None, at=at))
                is not None
            ]
            cards.sort(
                key=lambda card: (
                    card.contact_id is None,
                    card.contact_id or card.anonymous_id or "",
                )
            )
    return cards


def _scorecard(
    conn: sa.Connection,
    workspace: str,
    model: ModelVersion,
    owner: Owner,
    stored: Stored | None,
    *,
    at: int,
) -> Scorecard | None:
    state = state_as_of(conn, workspace, model, owner, stored, at=at)
    if state is None:
        return None
    identified, key = owner
    contact_id, anonymous_id = (key, None) if identified else (None, key)
    return model.engine.scorecard(state, at, contact_id=contact_id, anonymous_id=anonymous_id)


def state_as_of(
    conn: sa.Connection,
    workspace: str,
    model: ModelVersion,
    owner: Owner,
    stored: Stored | None,
    *,
    at: int,
) -> ContactState | None:
    """An owner's state as of `at` under `model`; None when it has no events then.

    A stored state answers for any instant at or after its last event if the
    active model made it: up to then no event or link of the owner is missing
    from it (log.owned says why). Otherwise the owner's log is replayed.
    """
    if (
        stored is not None
        and stored.model_version == model.version
        and stored.state.last_timestamp is not None
        and stored.state.last_timestamp <= at
    ):
        return stored.state
    history = log.owned(conn, workspace, owner, at)
    if not history:
        return None
    engine = model.engine
    identified, key = owner
    prepared = (engine.prepare(event) for event in history)
    state, _ = engine.run(prepared, contact_id=key if identified else None)
    return state


def replay_workspace(
    conn: sa.Connection, *, workspace: str, model: ModelVersion, at: int
) -> Result:
    """A replay of the workspace's whole stored log: what the stored scores must equal."""
    with transaction(conn):
        events = log.all_events(conn, workspace)
    return replay(model.engine, events, at)
