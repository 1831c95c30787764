"""Owner rows: each owner's engine state, stored with the model version that made it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Set
from typing import Any, NamedTuple

import sqlalchemy as sa

from .._engine import ContactState, Engine
from .._replay import Owner
from .prepared import Prepared
from .tables import owners


class Stored(NamedTuple):
    state: ContactState
    model_version: int


def _where(workspace: str, owner: Owner) -> tuple[sa.ColumnElement[bool], ...]:
    identified, key = owner
    return (owners.c.workspace == workspace, owners.c.identified == identified, owners.c.key == key)


# Ingestion reads and writes owners for every event: its statements run on
# the driver's cursor (prepared.py).
_LOAD = Prepared(
    sa.select(owners.c.key, owners.c.state, owners.c.model_version).where(
        owners.c.workspace == sa.bindparam("workspace"),
        owners.c.identified == sa.bindparam("identified"),
        owners.c.key.in_(sa.bindparam("keys", expanding=True)),
    )
)


def load(conn: sa.Connection, workspace: str, wanted: Iterable[Owner]) -> dict[Owner, Stored]:
    """The stored rows of these owners (those that have one): a query per kind."""
    found: dict[Owner, Stored] = {}
    by_kind: dict[bool, set[str]] = {}
    for identified, key in wanted:
        by_kind.setdefault(identified, set()).add(key)
    for identified, keys in sorted(by_kind.items()):
        rows = _LOAD.rows(
            conn, {"workspace": workspace, "identified": identified, "keys": sorted(keys)}
        )
        for key, state, model_version in rows:
            found[(identified, key)] = Stored(ContactState.from_json(state), model_version)
    return found


def every(
    conn: sa.Connection, workspace: str, *, anonymous: bool
) -> Iterator[tuple[Owner, Stored]]:
    """Every identified owner by contact id, then (with `anonymous`) every
    anonymous profile by anonymous id."""
    query = sa.select(owners.c.identified, owners.c.key, owners.c.state, owners.c.model_version)
    query = query.where(owners.c.workspace == workspace)
    if not anonymous:
        query = query.where(owners.c.identified)
    rows = [
        ((row.identified, row.key), Stored(ContactState.from_json(row.state), row.model_version))
        for row in conn.execute(query)
    ]
    # In Python: contact ids compare by code point, whatever the database collation.
    rows.sort(key=lambda item: (not item[0][0], item[0][1]))
    yield from rows


def save(
    conn: sa.Connection,
    workspace: str,
    owner: Owner,
    state: ContactState,
    *,
    engine: Engine,
    model_version: int,
    exists: bool,
) -> None:
    """Write an owner's state; `exists` says whether its row is there (known under its lock)."""
    values = _columns(state, engine, model_version)
    if exists:
        conn.execute(owners.update().where(*_where(workspace, owner)).values(**values))
    else:
        identified, key = owner
        conn.execute(
            owners.insert().values(workspace=workspace, identified=identified, key=key, **values)
        )


def save_many(
    conn: sa.Connection,
    workspace: str,
    states: Mapping[Owner, ContactState],
    *,
    engine: Engine,
    model_version: int,
    existing: Set[Owner],
) -> None:
    """Write owners' states, `existing` those whose row is there (known under
    their locks): one executemany for the updates, one for the inserts."""
    updates: list[dict[str, Any]] = []
    inserts: list[dict[str, Any]] = []
    for (identified, key), state in sorted(states.items()):
        values = _columns(state, engine, model_version)
        if (identified, key) in existing:
            updates.append(
                {"w_workspace": workspace, "w_identified": identified, "w_key": key, **values}
            )
        else:
            inserts.append({"workspace": workspace, "identified": identified, "key": key, **values})
    _UPDATE.run_many(conn, updates)
    _INSERT.run_many(conn, inserts)


def delete(conn: sa.Connection, workspace: str, owner: Owner) -> None:
    conn.execute(owners.delete().where(*_where(workspace, owner)))


_COLUMNS = (
    "model_version",
    "state",
    "fit",
    "grade",
    "stage",
    "stage_entered_at",
    "last_event_at",
    "ref",
    "decaying",
    "flat",
    "search",
)
_UPDATE = Prepared(
    owners.update()
    .where(
        owners.c.workspace == sa.bindparam("w_workspace"),
        owners.c.identified == sa.bindparam("w_identified"),
        owners.c.key == sa.bindparam("w_key"),
    )
    .values({name: sa.bindparam(name) for name in _COLUMNS})
)
_INSERT = Prepared(
    owners.insert().values(
        {name: sa.bindparam(name) for name in ("workspace", "identified", "key", *_COLUMNS)}
    )
)


def _columns(state: ContactState, engine: Engine, model_version: int) -> dict[str, Any]:
    compiled = engine.compiled
    assert state.last_timestamp is not None  # only owners with events are stored
    return {
        "model_version": model_version,
        "state": state.to_json(),
        "fit": state.fit,
        "grade": compiled.grade_of(state.fit),
        "stage": compiled.stage_names[state.stage] if state.stage is not None else None,
        "stage_entered_at": state.stage_entered_at,
        "last_event_at": state.last_timestamp,
        "ref": state.ref,
        "decaying": state.decaying,
        "flat": state.flat,
        "search": search_text(state.traits),
    }


# The search text is part of an index: bounded so that an index entry stays
# well inside PostgreSQL's limit (about 2,700 bytes) beside a 512-byte id.
SEARCH_BYTES = 1_000


def search_text(traits: dict[str, Any]) -> str:
    """The text traits in lower case, one a line, cut at SEARCH_BYTES of UTF-8
    (without U+0000, which a PostgreSQL text column cannot hold)."""
    text = "\n".join(value.lower() for value in traits.values() if isinstance(value, str))
    text = text.replace("\0", "")
    return text.encode("utf-8", "ignore")[:SEARCH_BYTES].decode("utf-8", "ignore")
