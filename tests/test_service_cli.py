"""`leadscore db upgrade` and `leadscore serve`, as real processes."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .test_cli import run


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_serve_refuses_a_database_that_is_not_upgraded(tmp_path: Path) -> None:
    done = run("serve", "--data-dir", str(tmp_path / "data"), "--port", "0")
    assert done.returncode == 1
    assert b"leadscore db upgrade" in done.stderr


def test_upgrade_then_serve(tmp_path: Path) -> None:
    data = tmp_path / "data"
    upgraded = run("db", "upgrade", "--data-dir", str(data))
    assert upgraded.returncode == 0, upgraded.stderr.decode()
    assert (data / "leadscore.db").exists()
    again = run("db", "upgrade", "--data-dir", str(data))
    assert again.returncode == 0  # idempotent
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "leadscore", "serve", "--data-dir", str(data), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else b""
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.1)
        assert ready.status_code == 200
        assert ready.json()["status"] == "ok"
    finally:
        server.terminate()
        server.wait(timeout=20)
