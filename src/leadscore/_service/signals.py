"""Stopping a worker process on SIGTERM or SIGINT.

Its own module, importing nothing heavy: `leadscore worker` sets the
handlers before it imports the service, so that a SIGTERM while it starts
up still stops it cleanly.
"""

from __future__ import annotations

import signal
import threading


def stop_on_signals() -> threading.Event:
    """An event SIGTERM and SIGINT set, for a worker process's
    `OutboxWorker.run_until` (from the main thread: only it may set signal
    handlers)."""
    stopped = threading.Event()

    def stop(signum: int, frame: object) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return stopped
