"""`leadscore workspaces create` and `leadscore keys create|list|revoke`, on
SQLite and PostgreSQL: one run as a real process (the key is the last line of
standard output), the rest in the test's process with click's runner."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from leadscore._cli import cli
from leadscore._store import Caller, Scope, authenticate, open_database, upgrade

from .test_cli import run


def leadscore(database_url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--database-url", database_url])


def authenticated(database_url: str, key: str) -> Caller | None:
    database = open_database(database_url)
    try:
        with database.connect() as conn:
            return authenticate(conn, key=key)
    finally:
        database.dispose()


def test_keys_create_prints_the_key_last_on_a_new_data_dir(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    refused = run("keys", "create", "--workspace", "acme", "--scope", "write", "--data-dir", data)
    assert refused.returncode == 1
    assert b"leadscore db upgrade" in refused.stderr
    assert run("db", "upgrade", "--data-dir", data).returncode == 0
    done = run("keys", "create", "--workspace", "acme", "--scope", "write", "--data-dir", data)
    assert done.returncode == 0, done.stderr.decode()
    key = done.stdout.decode().splitlines()[-1]
    assert "created workspace 'acme'" in done.stderr.decode()
    caller = authenticated(f"sqlite:///{tmp_path / 'data' / 'leadscore.db'}", key)
    assert caller is not None
    assert (caller.workspace, caller.scope) == ("acme", Scope.WRITE)


def test_keys_of_each_scope_listed_and_revoked(database_url: str) -> None:
    upgrade(database_url)
    made: dict[str, str] = {}
    for scope in ("admin", "read", "write"):
        result = leadscore(database_url, "keys", "create", "--workspace", "acme", "--scope", scope)
        assert result.exit_code == 0, result.output
        made[scope] = result.stdout.splitlines()[-1]
        created = "created workspace" in result.stderr
        assert created == (scope == "admin")  # only the first run creates it
        caller = authenticated(database_url, made[scope])
        assert caller is not None
        assert caller.scope == Scope(scope)

    listed = leadscore(database_url, "keys", "list", "--workspace", "acme")
    assert listed.exit_code == 0
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [row[1] for row in rows] == ["admin", "read", "write"]
    assert all(row[3] == "-" for row in rows)
    assert not any(key in listed.stdout for key in made.values())

    read_id = rows[1][0]
    revoked = leadscore(database_url, "keys", "revoke", read_id, "--workspace", "acme")
    assert revoked.exit_code == 0, revoked.output
    assert authenticated(database_url, made["read"]) is None
    assert authenticated(database_url, made["write"]) is not None
    # The whole key works as well as its id.
    by_key = leadscore(database_url, "keys", "revoke", made["write"], "--workspace", "acme")
    assert by_key.exit_code == 0
    assert authenticated(database_url, made["write"]) is None
    rows = [
        line.split("\t")
        for line in leadscore(
            database_url, "keys", "list", "--workspace", "acme"
        ).stdout.splitlines()
    ]
    assert [row[3] != "-" for row in rows] == [False, True, True]

    other = leadscore(database_url, "keys", "revoke", rows[0][0], "--workspace", "other")
    assert other.exit_code == 1
    # A whole key given in the wrong workspace: the error names its id, not its secret.
    wrong = leadscore(database_url, "keys", "revoke", made["admin"], "--workspace", "other")
    assert wrong.exit_code == 1
    key_id, _, secret = made["admin"].removeprefix("lsk_").partition("_")
    assert key_id in wrong.output
    assert secret not in wrong.output
    assert authenticated(database_url, made["admin"]) is not None
    assert leadscore(database_url, "keys", "list", "--workspace", "nope").exit_code == 1


def test_workspaces_create(database_url: str) -> None:
    upgrade(database_url)
    first = leadscore(database_url, "workspaces", "create", "shop-1")
    assert first.exit_code == 0
    assert "created workspace 'shop-1'" in first.stderr
    again = leadscore(database_url, "workspaces", "create", "shop-1")
    assert again.exit_code == 0
    assert "exists already" in again.stderr
    bad = leadscore(database_url, "workspaces", "create", "no spaces")
    assert bad.exit_code == 1
    assert "workspace names" in bad.stderr
    wrong = leadscore(database_url, "keys", "create", "--workspace", "shop-1", "--scope", "root")
    assert wrong.exit_code == 2
