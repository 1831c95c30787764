"""The workspace's scoring model and its API keys, over HTTP.

An admin key uploads models and manages keys; a read key may read the
active model (what the scores mean). Everything is the key's workspace's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from .._errors import ModelError
from .._store.keys import ApiKey, Scope, create_key, list_keys, revoke_key
from .._store.workspaces import store_model
from .._time import format_timestamp
from . import problems
from .bodies import BodyFirst
from .deps import AdminKey, Database, Models, ReadKey, TextBody
from .problems import Problem

router = APIRouter(tags=["administration"], route_class=BodyFirst)


# -- the model -------------------------------------------------------------------------


class ModelSummary(BaseModel):
    """The active model after an upload."""

    version: int = Field(description="Numbered from 1 within the workspace.")
    name: str = Field(description="The model's `name`.")


class ActiveModel(ModelSummary):
    """The active model, as uploaded."""

    document: str = Field(description="The model document as uploaded (YAML or JSON text).")


_MODEL_BODY = {
    "description": "A model document: YAML 1.2 or JSON text (see docs/model.md).",
    "required": True,
    "content": {
        "application/yaml": {"schema": {"type": "string"}},
        "application/json": {"schema": {"type": "object"}},
    },
}


@router.put(
    "/v1/models/active",
    response_model=ModelSummary,
    summary="Upload and activate a model",
    responses=problems.responses(401, 403, 413, 415, 422),
    openapi_extra={"requestBody": _MODEL_BODY},
)
def put_active_model(
    caller: AdminKey, document: TextBody, database: Database, models: Models
) -> ModelSummary:
    """Store a model document as the workspace's next version and make it the
    active model (an admin key). Events from then on are scored with it, and
    contacts scored with an older version are rescored from their events when
    next touched. An invalid model is a 422 problem listing every issue with
    its path and line; nothing is stored then."""
    with database.connect() as conn:
        try:
            stored = store_model(conn, workspace=caller.workspace, document=document, activate=True)
        except ModelError as error:
            count = len(error.issues)
            raise Problem(
                422,
                f"The model is not valid: {count} problem{'s' if count != 1 else ''}; "
                "see `errors`.",
                kind="invalid-model",
                errors=[_issue(issue.path, issue.message, issue.line) for issue in error.issues],
            ) from None
    models.keep(caller.workspace, stored)
    return ModelSummary(version=stored.version, name=stored.engine.model.name)


def _issue(path: str, message: str, line: int | None) -> dict[str, Any]:
    found: dict[str, Any] = {"path": path, "message": message}
    if line is not None:
        found["line"] = line
    return found


@router.get(
    "/v1/models/active",
    response_model=ActiveModel,
    summary="The active model",
    responses=problems.responses(401, 403, 404),
)
def get_active_model(caller: ReadKey, database: Database, models: Models) -> ActiveModel:
    """The workspace's active model (a read or admin key); 404 when it has none yet."""
    with database.connect() as conn:
        model = models.active(conn, workspace=caller.workspace)
    if model is None:
        raise Problem(404, "This workspace has no active model yet.", kind="no-active-model")
    return ActiveModel(version=model.version, name=model.engine.model.name, document=model.document)


# -- keys ------------------------------------------------------------------------------


class KeyInfo(BaseModel):
    """An API key, without its secret."""

    id: str = Field(description="The key's public id: the part after `lsk_`, before the secret.")
    scope: Scope
    created_at: str = Field(description="RFC 3339.")
    revoked_at: str | None = Field(description="RFC 3339; null while the key is valid.")


class KeyList(BaseModel):
    keys: list[KeyInfo] = Field(description="Every key of the workspace, oldest first.")


class NewKeyRequest(BaseModel):
    scope: Scope = Field(description="write: send events. read: read. admin: everything.")


class NewKey(KeyInfo):
    key: str = Field(description="The key. Shown this once: only its hash is stored.")


def _info(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.key_id,
        "scope": key.scope,
        "created_at": format_timestamp(key.created_at),
        "revoked_at": None if key.revoked_at is None else format_timestamp(key.revoked_at),
    }


@router.get(
    "/v1/keys",
    response_model=KeyList,
    summary="List API keys",
    responses=problems.responses(401, 403),
)
def get_keys(caller: AdminKey, database: Database) -> KeyList:
    """The workspace's API keys, revoked ones included, without secrets (an admin key)."""
    with database.connect() as conn:
        found = list_keys(conn, workspace=caller.workspace)
    return KeyList(keys=[KeyInfo(**_info(key)) for key in found])


@router.post(
    "/v1/keys",
    response_model=NewKey,
    status_code=201,
    summary="Create an API key",
    responses=problems.responses(401, 403, 413, 422),
)
def post_key(caller: AdminKey, wanted: NewKeyRequest, database: Database) -> NewKey:
    """A new key of the workspace with the given scope (an admin key). The
    answer holds the key itself, which cannot be read again."""
    with database.connect() as conn:
        created, key = create_key(conn, workspace=caller.workspace, scope=wanted.scope)
    return NewKey(**_info(created), key=key)


@router.delete(
    "/v1/keys/{key_id}",
    status_code=204,
    response_class=Response,
    summary="Revoke an API key",
    responses=problems.responses(401, 403, 404),
)
def delete_key(caller: AdminKey, key_id: str, database: Database) -> Response:
    """Revoke a key of the workspace (an admin key): it stops working at once.
    404 when the workspace has no key with this id."""
    with database.connect() as conn:
        found = revoke_key(conn, workspace=caller.workspace, key_id=key_id)
    if not found:
        raise Problem(404, f"This workspace has no API key {key_id!r}.", kind="unknown-key")
    return Response(status_code=204)
