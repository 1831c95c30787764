"""Recording firings once each, with their outbox rows, in the ingest transaction."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel

from .._engine import Firing
from .prepared import Prepared
from .tables import firings, outbox
from .workspaces import ModelVersion

PENDING = "pending"

Key = tuple[str, str, str]  # (trigger, contact id, event key): the unique key of a firing row


def once_triggers(model: ModelVersion) -> frozenset[str]:
    return frozenset(trigger.id for trigger in model.engine.compiled.triggers if trigger.once)


def key_of(firing: Firing, once: Collection[str]) -> Key:
    """A `once` trigger is keyed without its event: carried out once per contact
    even when a late event moves its firing to another event (docs/model.md)."""
    return (firing.trigger, firing.contact_id, "" if firing.trigger in once else firing.event_id)


# On the driver's cursor (prepared.py): ingestion asks for every batch that fires.
_KNOWN = Prepared(
    sa.select(firings.c.trigger, firings.c.contact_id, firings.c.event_key).where(
        firings.c.workspace == sa.bindparam("workspace"),
        firings.c.contact_id.in_(sa.bindparam("contacts", expanding=True)),
    )
)


def known(conn: sa.Connection, workspace: str, contacts: Iterable[str]) -> set[Key]:
    """The keys of the firings recorded for these contacts (under their owner locks)."""
    wanted = sorted(set(contacts))
    if not wanted:
        return set()
    rows = _KNOWN.rows(conn, {"workspace": workspace, "contacts": wanted})
    return {(trigger, contact, event_key) for trigger, contact, event_key in rows}


def write(
    conn: sa.Connection,
    workspace: str,
    model: ModelVersion,
    new: Sequence[Firing],
    now: int,
    *,
    history: bool = False,
) -> None:
    """Insert firings known to be new (their contacts' owner locks held) and
    queue their actions, in two statements; `history` firings are recorded as
    carried out and queue nothing."""
    if not new:
        return
    once = once_triggers(model)
    rows = [
        {
            "workspace": workspace,
            "trigger": firing.trigger,
            "contact_id": firing.contact_id,
            "event_key": key_of(firing, once)[2],
            "event_id": firing.event_id,
            "timestamp": firing.timestamp,
            "model_version": model.version,
            "recorded_at": now,
            "history": history,
        }
        for firing in new
    ]
    if history:
        # Nothing to queue, so no seqs to read back: a plain executemany, which
        # SQLAlchemy sends as a few multi-row INSERTs (RETURNING in parameter
        # order costs PostgreSQL far more for the thousands of a rescore's chunk).
        conn.execute(firings.insert(), rows)
        return
    inserted = conn.execute(
        firings.insert().returning(firings.c.seq, sort_by_parameter_order=True), rows
    )
    seqs = list(inserted.scalars())
    actions = {trigger.id: trigger.actions for trigger in model.engine.model.triggers}
    queued = [
        {
            "firing": seq,
            "workspace": workspace,
            "action_index": index,
            "action": action_json(action),
            "kind": _kind(action),
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for seq, firing in zip(seqs, new, strict=True)
        for index, action in enumerate(actions[firing.trigger])
    ]
    if queued:
        conn.execute(outbox.insert(), queued)


def action_json(action: BaseModel) -> dict[str, Any]:
    """An action as an outbox row keeps it: as the model wrote it."""
    dumped: dict[str, Any] = action.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dumped


def _kind(action: BaseModel) -> str:
    """An action's kind: the one key the model wrote it with (webhook, assign...)."""
    (kind,) = type(action).model_fields
    return kind


def record(
    conn: sa.Connection, workspace: str, model: ModelVersion, fired: Iterable[Firing], now: int
) -> list[Firing]:
    """Record each firing not recorded before and queue its actions; the new ones.

    A rebuild lists every firing of a contact's history, so most are known:
    they are filtered out with one query. The caller holds the owner locks of
    the firings' contacts.
    """
    candidates = sorted(fired, key=lambda firing: firing.order_key)
    seen = known(conn, workspace, (firing.contact_id for firing in candidates))
    once = once_triggers(model)
    new: list[Firing] = []
    for firing in candidates:
        key = key_of(firing, once)
        if key not in seen:
            seen.add(key)
            new.append(firing)
    write(conn, workspace, model, new, now)
    return new
