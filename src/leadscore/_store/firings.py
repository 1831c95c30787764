"""Recording firings once each, with their outbox rows, in the ingest transaction."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from pydantic import BaseModel

from .._engine import Firing
from .database import insert_new
from .tables import firings, outbox
from .workspaces import ModelVersion

PENDING = "pending"


def _kind(action: BaseModel) -> str:
    """An action's kind: the one key the model wrote it with (webhook, assign...)."""
    (kind,) = type(action).model_fields
    return kind


def record(
    conn: sa.Connection, workspace: str, model: ModelVersion, fired: Iterable[Firing], now: int
) -> list[Firing]:
    """Record each firing not recorded before and queue its actions; the new ones.

    A rebuild lists every firing of a contact's history, so most are known:
    they are filtered out with one query, and the unique key settles the rest.
    A `once` trigger is keyed without its event: carried out once per contact
    even when a late event moves its firing to another event (docs/model.md).
    """
    candidates = sorted(fired, key=lambda firing: firing.order_key)
    if not candidates:
        return []
    once = {trigger.id for trigger in model.engine.compiled.triggers if trigger.once}
    actions = {trigger.id: trigger.actions for trigger in model.engine.model.triggers}
    rows = conn.execute(
        sa.select(firings.c.trigger, firings.c.contact_id, firings.c.event_key).where(
            firings.c.workspace == workspace,
            firings.c.contact_id.in_({firing.contact_id for firing in candidates}),
        )
    )
    known = {(trigger, contact, event_key) for trigger, contact, event_key in rows}
    new: list[Firing] = []
    for firing in candidates:
        key = (firing.trigger, firing.contact_id, "" if firing.trigger in once else firing.event_id)
        if key in known:
            continue
        known.add(key)
        statement = insert_new(
            conn, firings, "workspace", "trigger", "contact_id", "event_key"
        ).values(
            workspace=workspace,
            trigger=firing.trigger,
            contact_id=firing.contact_id,
            event_key=key[2],
            event_id=firing.event_id,
            timestamp=firing.timestamp,
            model_version=model.version,
            recorded_at=now,
        )
        seq = conn.execute(statement.returning(firings.c.seq)).scalar()
        if seq is None:
            continue
        new.append(firing)
        conn.execute(
            outbox.insert(),
            [
                {
                    "firing": seq,
                    "workspace": workspace,
                    "action_index": index,
                    "action": action.model_dump(mode="json", by_alias=True, exclude_none=True),
                    "kind": _kind(action),
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for index, action in enumerate(actions[firing.trigger])
            ],
        )
    return new
