"""A real leadscore server on a loopback port, for tests that speak HTTP."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from leadscore._service.app import create_app
from leadscore._settings import Settings


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """Run the app in a thread with uvicorn; yield its base URL; stop it."""
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve_process(
    *options: str, timeout: float = 60
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real `leadscore serve` process on a free loopback port, with these
    options: yields its base URL (once /readyz answers 200) and the process;
    stops it."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "leadscore", "serve", "--port", str(port), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1, trust_env=False).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                stderr = server.stderr.read().decode() if server.stderr else ""
                raise RuntimeError(f"leadscore serve exited with {server.returncode}: {stderr}")
            if time.monotonic() > deadline:
                raise RuntimeError("leadscore serve did not come up")
            time.sleep(0.1)
        yield base, server
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def form_token(html: str) -> str:
    """The CSRF token a web app page's forms carry."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def web_sign_in(http: httpx.Client, email: str, password: str) -> httpx.Response:
    """Sign in to the web app as a browser does: the sign-in form's token echoed."""
    form = http.get("/signin")
    return http.post(
        "/signin",
        data={"csrf": form_token(form.text), "email": email, "password": password, "next": "/"},
    )
