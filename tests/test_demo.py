"""The README's main command: `leadscore demo` starts the service with a demo
workspace, model and generated history, and says where to look. Run as a
real process; a contact read back over HTTP equals a replay of the stored log."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadscore._store import active_model, open_database, replay_workspace

from ._live import free_port, web_sign_in


def test_demo_serves_a_workspace_with_history(tmp_path: Path) -> None:
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "leadscore", "demo", "--dir", str(tmp_path), "--port", str(port),
         "--contacts", "60", "--events", "1500"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        said = ""
        deadline = time.monotonic() + 90
        while "Ctrl-C" not in said:
            line = demo.stdout.readline()
            if not line:
                pytest.fail(
                    f"the demo ended early: {said}{demo.stderr.read() if demo.stderr else ''}"
                )
            said += line
            assert time.monotonic() < deadline, said
        base = re.search(r"service:\s+(http://\S+)", said)
        key = re.search(r"read key:\s+(lsk_\S+)", said)
        web = re.search(r"Open (http://\S+)/ and sign in as (\S+) / (\S+)", said)
        assert base, said
        assert key, said
        assert web, said
        assert web.group(1) == base.group(1)
        assert base.group(1) == f"http://127.0.0.1:{port}"
        assert f'curl -H "Authorization: Bearer {key.group(1)}"' in said
        with httpx.Client(base_url=base.group(1), trust_env=False, timeout=10) as http:
            while True:  # the history is in before the service starts listening
                try:
                    if http.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert demo.poll() is None, said
                assert time.monotonic() < deadline, said
                time.sleep(0.1)
            auth = {"Authorization": f"Bearer {key.group(1)}"}
            listed = http.get("/v1/contacts", params={"limit": 3}, headers=auth)
            assert listed.status_code == 200, listed.text
            top = listed.json()["contacts"][0]
            card = http.get(f"/v1/contacts/{top['contact_id']}", headers=auth).json()
            leads, chart = _sign_in_and_look(http, web.group(2), web.group(3))
            _deliveries_settle(http, said)
        database = open_database(f"sqlite:///{tmp_path / 'data' / 'leadscore.db'}")
        try:
            with database.connect() as conn:
                model = active_model(conn, workspace="demo")
                assert model is not None
                replayed = replay_workspace(
                    conn, workspace="demo", model=model, at=time.time_ns() // 1000
                )
        finally:
            database.dispose()
        (expected,) = [c for c in replayed.scorecards if c.contact_id == top["contact_id"]]
        want = expected.to_json()
        # Read a moment apart, scores differ by their decay since: a hundredth at most.
        assert card["score"] == pytest.approx(want["score"], abs=0.02)
        assert card["score"] > 0  # the history ends now: scores are alive
        for name in ("fit", "grade", "stage", "band", "last_event_at"):
            assert card[name] == want[name], name
        assert card["model_version"] == model.version
        # The web app, signed in with the printed demo credentials: the leads
        # list is the ranking (top first), and the top lead's card has its
        # score chart's points, ending at its score now.
        assert leads[: len(listed.json()["contacts"])] == [
            c["contact_id"] for c in listed.json()["contacts"]
        ]
        assert len(leads) == 50  # a full first page of the 60 contacts
        assert len(chart) > 1
        assert chart[-1][1] == pytest.approx(want["score"], abs=0.05)
    finally:
        demo.terminate()
        demo.wait(timeout=30)


def _deliveries_settle(http: httpx.Client, said: str) -> None:
    """The history's CRM webhooks, by status, once none is pending: they go
    to the demo's own receiver (the example's crm.example.com answers no
    demo), so they are delivered rather than failing for as long as it runs."""
    receiver = re.search(r"webhooks:.*goes to a receiver of the demo's own, (http://\S+)", said)
    admin = re.search(r"admin key:\s+(lsk_\S+)", said)
    assert receiver, said
    assert admin, said
    auth = {"Authorization": f"Bearer {admin.group(1)}"}
    deadline = time.monotonic() + 60
    while True:
        found = {
            status: http.get(
                "/v1/deliveries", params={"status": status, "limit": 200}, headers=auth
            ).json()["deliveries"]
            for status in ("pending", "failed", "done", "dead")
        }
        if not found["pending"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found["done"], found
    assert {hook["url"] for hook in found["done"]} == {receiver.group(1)}
    assert (found["pending"], found["failed"], found["dead"]) == ([], [], []), found


def _sign_in_and_look(http: httpx.Client, email: str, password: str) -> tuple[list[str], Any]:
    """Sign in to the web app as a browser does (the form's CSRF token echoed);
    the contact ids of the leads list's first page, and the top lead's score
    chart points ([time in ms, score])."""
    signed = web_sign_in(http, email, password)
    assert signed.status_code == 303, signed.text
    page = http.get("/")
    assert page.status_code == 200, page.text
    leads = re.findall(r'<a href="/contacts/([^"]+)"', page.text)
    contact = http.get(f"/contacts/{leads[0]}")
    assert contact.status_code == 200, contact.text
    series = re.search(r'<script type="application/json" id="score-series">(.*?)</script>',
                       contact.text, re.S)  # fmt: skip
    assert series, contact.text
    return leads, json.loads(series.group(1))
