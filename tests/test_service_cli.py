"""`leadscore db upgrade` and `leadscore serve`, as real processes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
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
