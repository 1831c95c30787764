"""`leadscore worker`: the outbox worker as a process of its own."""

from __future__ import annotations

import logging

import click

from ._cli_common import current_database, redacted, service_settings, storage_options


@click.command()
@storage_options
@click.option(
    "--drain",
    is_flag=True,
    help="Carry out what is due now, then exit (retries scheduled later stay queued).",
)
def worker(*, database_url: str | None, data_dir: str | None, drain: bool) -> None:
    """Carry out triggers' actions (webhooks, assign, tags) from the outbox,
    until stopped (SIGTERM or Ctrl-C). Any number may run beside `leadscore
    serve`; set LEADSCORE_OUTBOX_WORKER=false to leave the work to them."""
    from ._service.signals import stop_on_signals

    # First: a SIGTERM while it starts up still stops it cleanly.
    stopped = None if drain else stop_on_signals()
    from ._service.worker import OutboxWorker
    from ._store.database import open_database

    settings = service_settings(database_url, data_dir)
    url = current_database(settings)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    database = open_database(url)
    running = OutboxWorker(database, settings)
    try:
        if drain:
            with running:  # closed (its threads and HTTP client) even when a round fails
                running.drain(timeout=float("inf"))
            return
        assert stopped is not None
        logging.getLogger("leadscore.outbox").info(
            "worker %s carrying out actions from %s", running.name, redacted(url)
        )
        running.run_until(stopped)
    finally:
        database.dispose()
