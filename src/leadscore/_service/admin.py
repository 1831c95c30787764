"""The workspace's API keys, over HTTP (an admin key; the models are in models.py).
Everything is the key's workspace's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from .._store.keys import ApiKey, Scope, create_key, list_keys, revoke_key
from .._time import format_timestamp
from . import problems
from .bodies import BodyFirst
from .deps import AdminKey, Database
from .problems import Problem

router = APIRouter(tags=["administration"], route_class=BodyFirst)


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
