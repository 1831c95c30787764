"""Owner rows: each owner's engine state, stored with the model version that made it."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping, Set
from typing import Any, NamedTuple

import orjson
import sqlalchemy as sa

from .._engine import ContactState, Engine
from .._replay import Owner
from .database import column_json
from .log import loads
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
# The state as its text, read by log.loads (orjson) rather than by the JSON
# type's json.loads: a state holds the owner's traits, and this ran for every
# owner of a batch.
_LOAD = Prepared(
    sa.select(owners.c.key, sa.cast(owners.c.state, sa.Text), owners.c.model_version).where(
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
            found[(identified, key)] = Stored(ContactState.from_json(loads(state)), model_version)
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
        values["state"] = _json_text(values["state"])
        if (identified, key) in existing:
            updates.append(
                {"w_workspace": workspace, "w_identified": identified, "w_key": key, **values}
            )
        else:
            inserts.append({"workspace": workspace, "identified": identified, "key": key, **values})
    update, insert = _writes(conn.dialect.name)
    if conn.dialect.name == "postgresql" and len(updates) >= _COPY_ROWS:
        _update_by_copy(conn, updates)
    else:
        update.run_many(conn, updates)
    insert.run_many(conn, inserts)


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


@functools.cache
def _writes(backend: str) -> tuple[Prepared, Prepared]:
    """save_many's update and insert, on the driver's cursor (prepared.py).
    The state is bound as its JSON text, made by _json_text: orjson, several
    times faster than the JSON type's serializer for the tens of thousands of
    rows of a rescore. PostgreSQL casts the text to the column's type; SQLite
    stores JSON as that text, and must not be given a CAST (to a type named
    JSON it would apply numeric affinity)."""
    text = sa.bindparam("state", type_=sa.Text)
    values: dict[str, Any] = {name: sa.bindparam(name) for name in _COLUMNS}
    values["state"] = text if backend == "sqlite" else sa.cast(text, owners.c.state.type)
    update = (
        owners.update()
        .where(
            owners.c.workspace == sa.bindparam("w_workspace"),
            owners.c.identified == sa.bindparam("w_identified"),
            owners.c.key == sa.bindparam("w_key"),
        )
        .values(values)
    )
    insert = owners.insert().values(
        {"workspace": sa.bindparam("workspace"), "identified": sa.bindparam("identified"),
         "key": sa.bindparam("key"), **values}
    )  # fmt: skip
    return Prepared(update), Prepared(insert)


# From this many updates on, PostgreSQL's are copied into a temporary table
# and applied by one UPDATE ... FROM (one statement planned and run instead of
# one per row). Measured on a loaded 2-core machine: 125 µs a row instead of
# 155 in chunks of 2,000 (a rescore's), 87 instead of 126 in chunks of 500;
# in chunks of 100 the table's creation made it slower (194 against 153).
_COPY_ROWS = 500


def _update_by_copy(conn: sa.Connection, updates: list[dict[str, Any]]) -> None:
    """save_many's updates on PostgreSQL, through COPY (psycopg's, on the
    transaction's own connection). The table is dropped at once: save_many
    may run again in the same transaction."""
    keys = ("w_workspace", "w_identified", "w_key")
    names = ", ".join(["workspace", "identified", '"key"', *_COLUMNS])
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE ls_owner_rows (LIKE owners)")
        with cursor.copy(f"COPY ls_owner_rows ({names}) FROM STDIN") as copy:
            for row in updates:
                copy.write_row([row[name] for name in (*keys, *_COLUMNS)])
        # Each row found by the primary key: the planner, which knows nothing of
        # the new table, hashed it and scanned every owner of the table for
        # each chunk instead (a chunk of 2,000 among 54,000 owners: 73 ms
        # against 39; the scan grows with the table, the probes do not).
        cursor.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
        cursor.execute(
            "UPDATE owners o SET "
            + ", ".join(f"{name} = r.{name}" for name in _COLUMNS)
            + " FROM ls_owner_rows r WHERE o.workspace = r.workspace "
            'AND o.identified = r.identified AND o."key" = r."key"'
        )
        cursor.execute(
            "SET LOCAL enable_hashjoin TO DEFAULT; SET LOCAL enable_mergejoin TO DEFAULT; "
            "DROP TABLE ls_owner_rows"
        )


def _json_text(value: dict[str, Any]) -> str:
    """A state's JSON text, as the JSON columns' writer (database.column_json) gives
    it up to spacing and the spelling of floats (orjson's shortest repr reads
    back to the same float too). NaN and infinities, which orjson would write
    as null, are not in a state: its traits come from stored event bodies
    (written without them) and its sums stay bounded (the engine's rebase)."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # an integer past 64 bits, in the traits
        return column_json(value)


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
