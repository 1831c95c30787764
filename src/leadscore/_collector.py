"""Rare cyclic garbage collections while a large run builds its objects.

Scoring, batch scoring and activation build hundreds of thousands to
millions of small objects that hold no reference cycles (events, states and
their dicts, a batch engine's rows, a Scorecard per owner). The cyclic
collector cannot free any of them, yet with its default thresholds it scans
them over and over: about a fifth of a large pure-engine run, eleven full
collections and 1.0-1.7 s of the 10-12 s of CPU of a 1M-event activation,
2.35 against 1.59 s to build the batch engine's 540,000 Scorecards
(docs/benchmarks.md).

The thresholds are the process's, so the library's own functions leave them
alone; the applications ask for rare collections around such a run (the
command line while it scores, the service's runner while it rescores) and
get the previous settings back afterwards. A server process, which owns its
process for good, settles its collector once its start-up is done
(`settle_server`) and from then on runs a full collection on a clock
(`collect_periodically`).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Young objects collected every 100,000 allocations instead of 700, and the
# older generations rarely: a few MB held a little longer, pauses of a few
# ms instead of many shorter ones.
RARE_THRESHOLDS = (100_000, 50, 100)

# A settled server's full collection, on a clock: at these thresholds the
# oldest generation is collected after some 500 million net allocations at
# the earliest (and then only once it has grown by a quarter), so a cycle
# that became garbage after reaching it could wait for days. Every five
# minutes is rare enough to cost nothing measurable (a collection of what
# start-up did not freeze: a few ms) and bounds that garbage to what five
# minutes of requests can leave.
FULL_COLLECTION_SECONDS = 300.0


@contextmanager
def rare_collections(*, freeze: bool = False) -> Iterator[None]:
    """The collector's thresholds at RARE_THRESHOLDS for the block.

    `freeze` also moves what was allocated before the block out of the
    collector's sight, and hands it back afterwards: right for a command that
    owns its process, wrong in the server, whose start-up objects are frozen
    for good (server.py) and which an unfreeze would give back.
    """
    previous = gc.get_threshold()
    if freeze:
        gc.freeze()
    gc.set_threshold(*RARE_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*previous)
        if freeze:
            gc.unfreeze()


def settle_server() -> None:
    """Once a server's start-up is done (modules, the app, its routes and
    schemas, the database engine): what start-up built moved out of the
    collector's sight for good, and the collector at RARE_THRESHOLDS.

    Requests leave few objects behind, so that at the default thresholds a
    server ran its young collection several times a second and a full one
    every few seconds, each scanning what start-up had left (in
    bench/ingest.py's 10 s of single calls on main: 29-68 young, 3-6 middle
    and up to one full collection of 11 ms; in its batches, three full ones
    of 11-19 ms). Frozen and at these thresholds, the same runs made no
    collection at all once started; at a young threshold of 10,000 they made
    5-6 of 1-15 ms each, scanning a batch's live objects (docs/benchmarks.md).
    The server pairs this with :func:`collect_periodically`, so that cycles
    in the oldest generation are still freed within minutes.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*RARE_THRESHOLDS)


async def collect_periodically(seconds: float = FULL_COLLECTION_SECONDS) -> None:
    """A settled server's full collection every `seconds`, until cancelled.

    Young cycles still die in the young collections; this is for the cycles
    that had lived long enough to reach the oldest generation, which
    RARE_THRESHOLDS alone would leave for a very long time. Run as a task of
    the server's event loop: the collection holds the interpreter's lock
    wherever it runs, so a thread would block requests just the same.
    """
    while True:
        await asyncio.sleep(seconds)
        gc.collect()
