"""The per-event Python work of `/v1/batch` without HTTP: Segment translation
and the store's `ingest`, in one process (issue 3).

    .venv/bin/python bench/ingest_inprocess.py [--events 20000] [--batch 500] [--repeat 3]

The same generated log and Segment calls as bench/ingest.py, translated by
`_segment.batch` and ingested by `_store.ingest` in batches of `--batch`
(one transaction each) into a fresh SQLite file with the service's
durability, `--repeat` times. Prints the CPU time (user + system, this
process) per event of each phase, best of the runs and each run's, and the
load average: to compare versions back to back (`PYTHONPATH=<other src>`),
without the HTTP stack's share and the client's. Every event must be
accepted.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from ingest import MODEL, segment_call
from leadscore import generate_events
from leadscore._segment import batch
from leadscore._store import create_workspace, ingest, open_database, store_model, upgrade


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_once(calls: list[dict[str, object]], size: int) -> tuple[float, float]:
    """CPU µs per event of translation and of ingest, into a fresh database."""
    translating = storing = 0.0
    with tempfile.TemporaryDirectory(prefix="leadscore-inprocess-") as scratch:
        url = f"sqlite:///{Path(scratch) / 'service.db'}"
        upgrade(url)
        database = open_database(url)
        try:
            with database.connect() as conn:
                create_workspace(conn, workspace="bench")
                model = store_model(
                    conn, workspace="bench", document=MODEL.read_text(), activate=True
                )
            received = datetime.now(UTC)
            with database.connect() as conn:
                for start in range(0, len(calls), size):
                    began = _cpu()
                    translated = batch({"batch": calls[start : start + size]}, received_at=received)
                    events = [item for item in translated if isinstance(item, dict)]
                    between = _cpu()
                    outcomes = ingest(conn, workspace="bench", model=model, events=events)
                    storing += _cpu() - between
                    translating += between - began
                    if len(events) != len(translated) or any(
                        outcome.status.value != "accepted" for outcome in outcomes
                    ):
                        raise RuntimeError("an event was not accepted")
        finally:
            database.dispose()
    return translating / len(calls) * 1e6, storing / len(calls) * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events generated")
    parser.add_argument("--batch", type=int, default=500, help="events per transaction")
    parser.add_argument("--repeat", type=int, default=3, help="runs, each on a fresh database")
    options = parser.parse_args(argv)
    raw = generate_events(
        contacts=max(10, options.events // 20), events=options.events, seed=5,
        start=datetime(2026, 1, 5, tzinfo=UTC), days=60,
    )  # fmt: skip
    calls: list[dict[str, object]] = [segment_call(event) for event in raw]
    runs = [run_once(calls, options.batch) for _ in range(options.repeat)]
    best_translation = min(translation for translation, _ in runs)
    best_ingest = min(stored for _, stored in runs)
    each = ", ".join(f"{translation:.1f} + {stored:.1f}" for translation, stored in runs)
    print(
        f"{len(calls):,} events in batches of {options.batch}: translation "
        f"{best_translation:.1f} µs/event, ingest {best_ingest:.1f} µs/event, together "
        f"{best_translation + best_ingest:.1f} (best of {options.repeat}; runs: {each}); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
