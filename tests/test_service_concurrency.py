"""Several clients, two server processes, one database: interleaved, shuffled
events for the same contacts sent at once through real `leadscore serve`
processes on loopback; afterwards every stored scorecard equals a replay of
the stored log, and every firing is recorded once."""

from __future__ import annotations

import json
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import sqlalchemy as sa

from leadscore._events import Event
from leadscore._replay import replay
from leadscore._store import (
    Scope,
    create_key,
    create_workspace,
    open_database,
    replay_workspace,
    store_model,
    upgrade,
)
from leadscore._store.tables import firings as firing_rows
from leadscore._time import format_timestamp

from ._live import serve_process
from .test_store import CONCURRENT, _crowd, replayed, stored

CLIENTS = 6


def _segment(event: Event) -> dict[str, Any]:
    """The event as the Segment track call that would have made it."""
    call: dict[str, Any] = {
        "type": "track",
        "event": event.type,
        "messageId": event.id,
        "timestamp": format_timestamp(event.timestamp),
    }
    if event.contact_id is not None:
        call["userId"] = event.contact_id
    if event.anonymous_id is not None:
        call["anonymousId"] = event.anonymous_id
    return call


def test_two_server_processes_and_many_clients_leave_exactly_a_replay(database_url: str) -> None:
    upgrade(database_url)
    database = open_database(database_url)
    try:
        with database.connect() as conn:
            create_workspace(conn, workspace="crowd")
            key = create_key(conn, workspace="crowd", scope=Scope.WRITE)[1]
            model = store_model(
                conn, workspace="crowd", document=json.dumps(CONCURRENT), activate=True
            )
        rng = random.Random(7)
        log = _crowd(rng, 360)
        arrival = [*log, *rng.sample(log, 40)]  # resends, racing their first copies
        rng.shuffle(arrival)
        start = threading.Barrier(CLIENTS)
        with (
            serve_process("--database-url", database_url) as (first, _),
            serve_process("--database-url", database_url, "--workers", "2") as (second, _),
        ):
            bases = [first, second]

            def client(index: int) -> list[str]:
                share = arrival[index::CLIENTS]
                sizes = random.Random(index)
                statuses: list[str] = []
                with httpx.Client(auth=(key, ""), timeout=60, trust_env=False) as http:
                    start.wait()
                    turn = index
                    while share:
                        size = sizes.randint(1, 9)
                        chunk, share = share[:size], share[size:]
                        base = bases[turn % 2]  # alternate between the processes
                        turn += 1
                        if size == 1:
                            answer = http.post(f"{base}/v1/track", json=_segment(chunk[0]))
                        else:
                            body = [event.to_json() for event in chunk]
                            answer = http.post(f"{base}/v1/events", json=body)
                        assert answer.status_code == 200, answer.text
                        statuses += [result["status"] for result in answer.json()["results"]]
                return statuses

            with ThreadPoolExecutor(CLIENTS) as pool:
                statuses = [s for done in pool.map(client, range(CLIENTS)) for s in done]
        assert len(statuses) == len(arrival)
        assert statuses.count("accepted") == len(log)
        assert statuses.count("duplicate") == len(arrival) - len(log)

        at = max(event.timestamp for event in log)
        expected = replay(model.engine, log, at)
        with database.connect() as conn:
            assert stored(conn, "crowd", model, at) == replayed(expected)
            assert replayed(replay_workspace(conn, workspace="crowd", model=model, at=at)) == (
                replayed(expected)
            )
            with conn.begin():
                recorded = conn.execute(
                    sa.select(
                        firing_rows.c.trigger, firing_rows.c.contact_id, firing_rows.c.event_key
                    ).where(firing_rows.c.workspace == "crowd")
                ).all()
        keys = [tuple(row) for row in recorded]
        assert len(keys) == len(set(keys))  # each firing once
        for firing in expected.firings:
            key = "" if firing.trigger == "lead" else firing.event_id
            assert (firing.trigger, firing.contact_id, key) in set(keys)
    finally:
        database.dispose()
