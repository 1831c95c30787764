"""API keys in the store, on SQLite and PostgreSQL: created per workspace,
stored hashed, authenticated, revoked, listed."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa

from leadscore._store import (
    Caller,
    Scope,
    UnknownWorkspace,
    authenticate,
    create_key,
    create_workspace,
    list_keys,
    revoke_key,
)
from leadscore._store.tables import api_keys


def new_workspace(database: sa.Engine) -> str:
    name = f"w-{uuid.uuid4().hex[:16]}"
    with database.connect() as conn:
        assert create_workspace(conn, workspace=name)
    return name


def test_a_key_authenticates_as_its_workspace_and_scope(database: sa.Engine) -> None:
    workspace = new_workspace(database)
    with database.connect() as conn:
        for scope in Scope:
            created, key = create_key(conn, workspace=workspace, scope=scope)
            assert key.startswith(f"lsk_{created.key_id}_")
            assert created.workspace == workspace
            assert created.scope is scope
            assert created.revoked_at is None
            assert authenticate(conn, key=key) == Caller(workspace, scope, created.key_id)


def test_only_a_hash_of_the_secret_is_stored(database: sa.Engine) -> None:
    workspace = new_workspace(database)
    with database.connect() as conn:
        created, key = create_key(conn, workspace=workspace, scope=Scope.WRITE)
        secret = key.rsplit(created.key_id + "_", 1)[1]
        with conn.begin():
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == created.key_id)).one()
    stored = repr(tuple(row)).encode()
    assert secret.encode() not in stored
    assert key.encode() not in stored
    assert len(row.secret_hash) == 32


@pytest.mark.parametrize(
    "mangle",
    [
        lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # a wrong secret
        lambda key: key.replace("lsk_", "lsk_0", 1),  # a wrong id
        lambda key: key.removeprefix("lsk_"),
        lambda key: key.split("_", 2)[0] + "_" + key.split("_", 2)[1],  # no secret
        lambda key: "",
        lambda key: "lsk_0123456789abcdef_" + "x" * 43,  # a well-formed key nobody made
    ],
)
def test_anything_but_the_key_is_refused(database: sa.Engine, mangle: Callable[[str], str]) -> None:
    workspace = new_workspace(database)
    with database.connect() as conn:
        _, key = create_key(conn, workspace=workspace, scope=Scope.ADMIN)
        assert authenticate(conn, key=mangle(key)) is None


def test_a_secret_does_not_work_with_another_keys_id(database: sa.Engine) -> None:
    # The hash is keyed by the id: ids and secrets of two keys do not mix.
    workspace = new_workspace(database)
    with database.connect() as conn:
        first, first_key = create_key(conn, workspace=workspace, scope=Scope.READ)
        second, second_key = create_key(conn, workspace=workspace, scope=Scope.READ)
        swapped = f"lsk_{first.key_id}_" + second_key.split(second.key_id + "_", 1)[1]
        assert authenticate(conn, key=swapped) is None
        assert authenticate(conn, key=first_key) is not None


def test_revoked_keys_stop_working(database: sa.Engine) -> None:
    workspace = new_workspace(database)
    other = new_workspace(database)
    with database.connect() as conn:
        created, key = create_key(conn, workspace=workspace, scope=Scope.WRITE)
        _, kept_key = create_key(conn, workspace=workspace, scope=Scope.WRITE)
        # Another workspace cannot revoke it, nor learn that it exists.
        assert not revoke_key(conn, workspace=other, key_id=created.key_id)
        assert authenticate(conn, key=key) is not None
        assert revoke_key(conn, workspace=workspace, key_id=created.key_id)
        assert authenticate(conn, key=key) is None
        assert authenticate(conn, key=kept_key) is not None
        first = list_keys(conn, workspace=workspace)[0].revoked_at
        assert first is not None
        assert revoke_key(conn, workspace=workspace, key_id=created.key_id)  # again: no change
        assert list_keys(conn, workspace=workspace)[0].revoked_at == first
        assert not revoke_key(conn, workspace=workspace, key_id="0123456789abcdef")


def test_listing_shows_the_workspaces_keys_only(database: sa.Engine) -> None:
    workspace = new_workspace(database)
    other = new_workspace(database)
    with database.connect() as conn:
        made = [create_key(conn, workspace=workspace, scope=scope)[0] for scope in Scope]
        create_key(conn, workspace=other, scope=Scope.ADMIN)
        assert list_keys(conn, workspace=workspace) == made
        assert list_keys(conn, workspace=f"{workspace}-none") == []


def test_keys_need_an_existing_workspace(database: sa.Engine) -> None:
    with database.connect() as conn, pytest.raises(UnknownWorkspace):
        create_key(conn, workspace="no-such-workspace-here", scope=Scope.WRITE)


def test_admin_includes_read_and_write_but_read_and_write_are_apart() -> None:
    assert all(Scope.ADMIN.allows(needed) for needed in Scope)
    assert Scope.WRITE.allows(Scope.WRITE)
    assert Scope.READ.allows(Scope.READ)
    assert not Scope.READ.allows(Scope.WRITE)
    assert not Scope.WRITE.allows(Scope.READ)
    assert not Scope.WRITE.allows(Scope.ADMIN)
    assert not Scope.READ.allows(Scope.ADMIN)
