"""On a terminal, `leadscore score` shows a live count of the events it reads
(the batch engine: the phase it is in); piped, it shows nothing of the kind
(so logs and pipes stay clean)."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parents[1] / "src" / "leadscore" / "examples"


def _score(log: Path, *, terminal: bool, engine: str = "pure") -> bytes:
    args = [sys.executable, "-m", "leadscore", "score", str(EXAMPLES / "starter.yaml"), str(log),
            "--at", "2026-04-01", "--format", "jsonl", "--output", os.devnull,
            "--engine", engine]  # fmt: skip
    if not terminal:
        return subprocess.run(args, capture_output=True, timeout=120, check=True).stderr
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "100", "TERM": "xterm"}
    with subprocess.Popen(args, stderr=follower, stdout=subprocess.DEVNULL, env=env) as child:
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closes when the child exits
                break
            if not chunk:
                break
            seen += chunk
        assert child.wait(timeout=120) == 0
    os.close(leader)
    return seen


def test_a_live_count_on_a_terminal_only(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    subprocess.run(
        [sys.executable, "-m", "leadscore", "generate", str(log), "--contacts", "500",
         "--events", "30000", "--days", "30", "--start", "2026-03-01"],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert b"reading events" in _score(log, terminal=True)
    assert b"reading events" not in _score(log, terminal=False)
    # The batch engine shows its phases.
    assert b"duckdb: " in _score(log, terminal=True, engine="duckdb")
    assert b"duckdb: " not in _score(log, terminal=False, engine="duckdb")
