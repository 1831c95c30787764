"""Workspaces and their model versions."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import sqlalchemy as sa

from .._engine import Engine
from .._loader import parse_model
from .database import insert_new, now, transaction
from .errors import UnknownModelVersion, UnknownWorkspace
from .prepared import Prepared
from .tables import activations, models, owners, workspaces

# Workspace names appear in URLs and lock keys: a plain, bounded vocabulary.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """A stored model document, numbered within its workspace, compiled."""

    version: int
    document: str
    engine: Engine
    # The id of the activation that the call returning it recorded
    # (store_model with activate=True, activate_model), None from the others:
    # the caller's own, which the workspace's latest may no longer be once
    # another activation has come in meanwhile.
    activation: int | None = None


def create_workspace(conn: sa.Connection, *, workspace: str) -> bool:
    """Create a workspace; False when it already exists."""
    if not _NAME.fullmatch(workspace):
        raise ValueError(
            f"workspace names are [A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}, not {workspace!r}"
        )
    with transaction(conn):
        statement = insert_new(conn, workspaces, "id").values(id=workspace, created_at=now())
        return conn.execute(statement.returning(workspaces.c.id)).first() is not None


def store_model(
    conn: sa.Connection, *, workspace: str, document: str, activate: bool = False
) -> ModelVersion:
    """Validate a model document (YAML 1.2 or JSON text) and store it as the
    workspace's next version. Raises ModelError, with every issue, when it is
    invalid: as an upload (parse_model's `upload`), which stored versions,
    loaded back, are not held to."""
    engine = Engine(parse_model(document, upload=True))
    with transaction(conn):
        # The workspace row's lock serializes version numbering on PostgreSQL
        # (SQLite has one writer at a time anyway). FOR NO KEY UPDATE: it does
        # not wait for, nor block, writers whose rows only refer to the workspace.
        found = conn.execute(
            sa.select(workspaces.c.id)
            .where(workspaces.c.id == workspace)
            .with_for_update(key_share=True)
        ).first()
        if found is None:
            raise UnknownWorkspace(workspace)
        latest = conn.execute(
            sa.select(sa.func.max(models.c.version)).where(models.c.workspace == workspace)
        ).scalar()
        version = (latest or 0) + 1
        conn.execute(
            models.insert().values(
                workspace=workspace,
                version=version,
                document=document,
                name=engine.model.name,
                active=False,
                created_at=now(),
            )
        )
        activation = _activate(conn, workspace, version) if activate else None
    return ModelVersion(version, document, engine, activation)


def activate_model(conn: sa.Connection, *, workspace: str, version: int) -> ModelVersion:
    """Make a stored version the workspace's active model, and start the
    rescore of the owners scored under another version (activation.py runs
    it). Until an owner is rescored, ingest rebuilds it when an event comes
    and reads compute it from its events, so answers are the new model's at
    once."""
    with transaction(conn):
        found = load_model(conn, workspace=workspace, version=version)
        activation = _activate(conn, workspace, version)
    return dataclasses.replace(found, activation=activation)


def _activate(conn: sa.Connection, workspace: str, version: int) -> int:
    """Make `version` active and record its activation; the activation's id."""
    # Activations of a workspace take turns on its row's lock (store_model
    # holds it already): on PostgreSQL a second one clearing the active row
    # below waited for the first's, then missed the version the first had
    # just made active, and setting its own broke the unique index.
    conn.execute(
        sa.select(workspaces.c.id)
        .where(workspaces.c.id == workspace)
        .with_for_update(key_share=True)
    )
    # Clear first: the partial unique index allows one active row per workspace.
    conn.execute(
        models.update().where(models.c.workspace == workspace, models.c.active).values(active=False)
    )
    conn.execute(
        models.update()
        .where(models.c.workspace == workspace, models.c.version == version)
        .values(active=True)
    )
    stamp = now()
    # An earlier activation still running has nothing left to do: its version
    # is no longer the one to rescore to.
    conn.execute(
        activations.update()
        .where(activations.c.workspace == workspace, activations.c.status == "running")
        .values(status="superseded", finished_at=stamp)
    )
    total = conn.execute(
        sa.select(sa.func.count())
        .select_from(owners)
        .where(owners.c.workspace == workspace, owners.c.model_version != version)
    ).scalar_one()
    inserted = conn.execute(
        activations.insert()
        .values(
            workspace=workspace,
            version=version,
            status="running" if total else "done",
            total=total,
            rescored=0,
            created_at=stamp,
            finished_at=None if total else stamp,
        )
        .returning(activations.c.id)
    )
    activation_id: int = inserted.scalar_one()
    return activation_id


def load_model(conn: sa.Connection, *, workspace: str, version: int) -> ModelVersion:
    with transaction(conn):
        document = conn.execute(
            sa.select(models.c.document).where(
                models.c.workspace == workspace, models.c.version == version
            )
        ).scalar()
    if document is None:
        raise UnknownModelVersion(workspace, version)
    return ModelVersion(version, document, Engine(parse_model(document)))


def active_model(conn: sa.Connection, *, workspace: str) -> ModelVersion | None:
    """The workspace's active model, or None when it has none yet."""
    with transaction(conn):
        row = conn.execute(
            sa.select(models.c.version, models.c.document).where(
                models.c.workspace == workspace, models.c.active
            )
        ).first()
    if row is None:
        return None
    return ModelVersion(row.version, row.document, Engine(parse_model(row.document)))


# Run for every ingestion request: on the driver's cursor (prepared.py).
_ACTIVE = Prepared(
    sa.select(models.c.version).where(
        models.c.workspace == sa.bindparam("workspace"), models.c.active
    )
)
_WORKSPACE = Prepared(
    sa.select(workspaces.c.id).where(workspaces.c.id == sa.bindparam("workspace"))
)


def active_version(conn: sa.Connection, *, workspace: str) -> int | None:
    """The number of the workspace's active model version, without loading
    the document: the service keeps compiled versions (which never change)
    and asks only which one is active."""
    with transaction(conn):
        found = _ACTIVE.rows(conn, {"workspace": workspace})
    return int(found[0][0]) if found else None


def require_workspace(conn: sa.Connection, workspace: str) -> None:
    found = _WORKSPACE.rows(conn, {"workspace": workspace})
    if not found:
        raise UnknownWorkspace(workspace)


@dataclass(frozen=True, slots=True)
class StoredModel:
    """A model version as listed: without its compiled form."""

    version: int
    name: str
    active: bool
    created_at: int


def list_models(conn: sa.Connection, *, workspace: str) -> list[StoredModel]:
    """Every version of the workspace's model, oldest first."""
    with transaction(conn):
        rows = conn.execute(
            sa.select(
                models.c.version,
                models.c.name,
                models.c.document,
                models.c.active,
                models.c.created_at,
            )
            .where(models.c.workspace == workspace)
            .order_by(models.c.version)
        ).all()
    return [
        StoredModel(
            row.version,
            # Versions stored before the name had its column: read it from the document.
            row.name if row.name is not None else parse_model(row.document).name,
            bool(row.active),
            row.created_at,
        )
        for row in rows
    ]
