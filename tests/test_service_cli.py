"""`leadscore db upgrade` and `leadscore serve`, as real processes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from leadscore._cli import cli

from ._live import serve_process
from .test_cli import run


def test_serve_refuses_a_database_that_is_not_upgraded(tmp_path: Path) -> None:
    done = run("serve", "--data-dir", str(tmp_path / "data"), "--port", "0")
    assert done.returncode == 1
    assert b"leadscore db upgrade" in done.stderr


def test_bad_settings_are_named_with_their_variable_and_value(tmp_path: Path) -> None:
    missing = tmp_path / "no-model"
    env = {
        "LEADSCORE_PORT": "99999",
        "LEADSCORE_SESSION_HOURS": "-1",
        "LEADSCORE_PREDICTIVE_MODEL": str(missing),
        "LEADSCORE_FORWARDED_ALLOW_IPS": "10.0.0.1, proxy.internal",
    }
    done = CliRunner().invoke(cli, ["serve", "--data-dir", str(tmp_path)], env=env)
    assert done.exit_code == 1
    assert "port (LEADSCORE_PORT): Input should be less than or equal to 65535, got '99999'" in (
        done.output
    )
    assert "session_hours (LEADSCORE_SESSION_HOURS): Input should be greater than 0" in done.output
    assert (
        f"predictive_model (LEADSCORE_PREDICTIVE_MODEL): {missing} is not a directory "
        "`leadscore train` wrote (no model.json)"
    ) in done.output
    assert (
        "forwarded_allow_ips (LEADSCORE_FORWARDED_ALLOW_IPS): 'proxy.internal' "
        "is not an IP address or network"
    ) in done.output
    assert "errors.pydantic.dev" not in done.output


def test_upgrade_then_serve(tmp_path: Path) -> None:
    data = tmp_path / "data"
    upgraded = run("db", "upgrade", "--data-dir", str(data))
    assert upgraded.returncode == 0, upgraded.stderr.decode()
    assert (data / "leadscore.db").exists()
    again = run("db", "upgrade", "--data-dir", str(data))
    assert again.returncode == 0  # idempotent
    with serve_process("--data-dir", str(data)) as (base, server):
        ready = httpx.get(f"{base}/readyz", timeout=5, trust_env=False)
        assert ready.status_code == 200
        assert ready.json()["status"] == "ok"
        server.terminate()
        assert server.stderr is not None
        logged = server.stderr.read().decode()
    # Its logs are JSON lines: where it listens, then one line per request.
    lines = [json.loads(line) for line in logged.splitlines()]
    assert any("serving on http://127.0.0.1:" in line["message"] for line in lines)
    requests = [line for line in lines if line["logger"] == "leadscore.access"]
    assert requests
    assert all(line["route"] == "/readyz" for line in requests)
    assert ready.headers["x-request-id"] in {line["request_id"] for line in requests}


def test_a_database_that_cannot_be_reached_is_bad_input_naming_it(tmp_path: Path) -> None:
    # Nothing listens on port 1; mysql is no backend of the service; the last
    # is no URL. Each was SQLAlchemy's (or a ValueError's) traceback.
    down = "postgresql://postgres:secret@127.0.0.1:1/leadscore"
    for command in (
        ["db", "upgrade"],
        ["keys", "list", "--workspace", "w"],
        ["workspaces", "create", "w"],
        ["worker", "--drain"],
    ):
        done = CliRunner().invoke(cli, [*command, "--database-url", down])
        assert done.exit_code == 1, (command, done.output)
        assert "cannot use the database postgresql://postgres:***@127.0.0.1:1/leadscore" in (
            done.output
        )
        assert "secret" not in done.output
        assert "Traceback" not in done.output
    for url, reason in (
        ("mysql://u@127.0.0.1/db", "unsupported database 'mysql'"),
        ("not a url", "Could not parse SQLAlchemy URL"),
    ):
        done = CliRunner().invoke(cli, ["db", "upgrade", "--database-url", url])
        assert done.exit_code == 1, done.output
        assert f"cannot use the database {url}: " in done.output
        assert reason in done.output


def test_serve_and_demo_refuse_a_port_past_65535(tmp_path: Path) -> None:
    for command in (
        ["serve", "--data-dir", str(tmp_path / "data")],
        ["demo", "--dir", str(tmp_path / "demo")],
    ):
        done = CliRunner().invoke(cli, [*command, "--port", "70000"])
        assert done.exit_code == 2, done.output
        assert "--port" in done.output
        assert "0<=x<=65535" in done.output


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def _outbox_child(pid: int) -> int:
    """The server's outbox worker: its child started by multiprocessing's spawn."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for child in _spawned(pid):
            return child
        time.sleep(0.1)
    raise AssertionError(f"leadscore serve (process {pid}) started no outbox worker")


def _gone(pid: int, *, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":  # ended, not yet reaped by its parent
            return True
        time.sleep(0.1)
    return False


def _spawned(pid: int) -> list[int]:
    found = []
    for child in _children(pid):
        try:
            if b"multiprocessing.spawn" in (Path("/proc") / str(child) / "cmdline").read_bytes():
                found.append(child)
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_serve_runs_its_outbox_worker_in_a_child_on_postgresql_that_ends_with_it(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("db", "upgrade", "--database-url", database_url).returncode == 0
    where = ("--database-url", database_url)
    if database_url.startswith("sqlite"):
        # SQLite: a thread of the server (server.py says why), no child.
        with serve_process(*where) as (_, server):
            time.sleep(2)
            assert not _spawned(server.pid)
        return
    # Stopped: the server stops its worker before it exits, and exits 0.
    with serve_process(*where) as (_, server):
        child = _outbox_child(server.pid)
        server.terminate()
        assert server.wait(timeout=60) == 0
        assert _gone(child, within=1)
    # The worker killed: the server starts another.
    with serve_process(*where) as (_, server):
        child = _outbox_child(server.pid)
        os.kill(child, signal.SIGKILL)
        assert _gone(child, within=5)
        deadline = time.monotonic() + 30
        while not [other for other in _spawned(server.pid) if other != child]:
            assert time.monotonic() < deadline, "no outbox worker after the first was killed"
            time.sleep(0.1)
    # The server killed: the worker notices that its server is gone, and stops too.
    with serve_process(*where) as (_, server):
        child = _outbox_child(server.pid)
        server.kill()
        server.wait(timeout=10)
        assert _gone(child, within=10), "the outbox worker outlived its killed server"
    # Without it, no child.
    monkeypatch.setenv("LEADSCORE_OUTBOX_WORKER", "false")
    with serve_process(*where) as (_, server):
        time.sleep(2)
        assert not _spawned(server.pid)
