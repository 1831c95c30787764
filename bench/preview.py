"""How long the model editor's backtest preview takes, through a real server,
against what it did before in the same run.

    .venv/bin/python bench/preview.py [--contacts 2000] [--events 60000] [--repeat 3]
        [--database FILE]

The database is bench/pages.py's (a generated log of the last 90 days,
loaded as ingestion would have left it, the B2B SaaS model active; kept in
`--database` and reused when it exists). The draft is that model with one
rule's points changed. The preview (`POST /models/preview`) reads the log's
stored texts into a JSON Lines file, scores it under the draft with the
batch engine and compares with the active model's stored scorecards (the
ranked list). The baseline, in the same run and process-free, is what the
preview did before: decode the whole log and replay it with the pure engine
under both models. Both must count the same band and stage changes, or the
timings mean nothing. The machine is shared: read the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from leadscore import replay
from leadscore._engine import Engine
from leadscore._loader import parse_model
from leadscore._store import active_model, log
from leadscore._store.database import open_database
from leadscore._time import from_datetime

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import WORKSPACE, load, serve, sign_in

OUTCOME = "opportunity_won"


def draft_of(document: str) -> str:
    changed = document.replace("points: 5\n", "points: 25\n", 1)
    assert changed != document
    return changed


def before(url: str, draft: str) -> tuple[float, int, int]:
    """The preview's computation as it was: seconds, band and stage changes."""
    database = open_database(url)
    began = time.perf_counter()
    with database.connect() as conn, conn.begin():
        model = active_model(conn, workspace=WORKSPACE)
        assert model is not None
        events = log.all_events(conn, WORKSPACE)
    at = from_datetime(datetime.now(UTC))
    old = {c.contact_id: c for c in replay(model.engine, events, at).scorecards}
    new = {c.contact_id: c for c in replay(Engine(parse_model(draft)), events, at).scorecards}
    seconds = time.perf_counter() - began
    database.dispose()
    bands = sum(old[k].band != card.band for k, card in new.items())
    stages = sum(old[k].stage != card.stage for k, card in new.items())
    return seconds, bands, stages


def _number(html: str, element: str) -> int:
    return int(html.split(f'id="{element}">', 1)[1].split("<", 1)[0].replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--contacts", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database", type=Path, help="Keep the database here; reuse it.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.database or Path(folder) / "preview.db"
        url = f"sqlite:///{path.resolve()}"
        if not path.exists():
            load(url, contacts=args.contacts, count=args.events)
        with open_database(url).connect() as conn:
            model = active_model(conn, workspace=WORKSPACE)
            assert model is not None
            stored = len(log.all_events(conn, WORKSPACE))
        draft = draft_of(model.document)
        print(f"{stored:,} events stored")
        old = [before(url, draft) for _ in range(args.repeat)]
        new: list[float] = []
        for base in serve(url):
            with httpx.Client(base_url=base, trust_env=False, timeout=600) as http:
                sign_in(http)
                page = http.get("/models").text
                csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
                body = {"document": draft, "outcome": OUTCOME}
                headers = {"X-CSRF-Token": csrf}
                for _ in range(args.repeat + 1):  # the first loads numpy and DuckDB: not timed
                    began = time.perf_counter()
                    answer = http.post("/models/preview", json=body, headers=headers)
                    new.append(time.perf_counter() - began)
                    assert answer.status_code == 200, answer.text
                shown = (
                    _number(answer.text, "band-changes"),
                    _number(answer.text, "stage-changes"),
                )
        assert shown == old[0][1:], (shown, old[0][1:])  # the same changes, or nothing to compare
        was = statistics.median(t for t, _, _ in old)
        now = statistics.median(new[1:])
        print(f"band changes {shown[0]:,}, stage changes {shown[1]:,} (both ways)")
        print(f"{'preview':<52} {'median s':>9}")
        print(f"{'before: decode the log, two pure-engine replays':<52} {was:>9.2f}")
        print(f"{'now: POST /models/preview (batch engine, one model)':<52} {now:>9.2f}")
        print(f"{'ratio (before / now)':<52} {was / now:>9.1f}")


if __name__ == "__main__":
    main()
