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
get the previous settings back afterwards.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Young objects collected every 100,000 allocations instead of 700, and the
# older generations rarely: a few MB held a little longer, pauses of a few
# ms instead of many shorter ones.
RARE_THRESHOLDS = (100_000, 50, 100)


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
