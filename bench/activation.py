"""Benchmark: model activation with the batch engine against the replay per owner (issue 4).

    .venv/bin/python bench/activation.py                         # 1,000,000 events, both backends
    .venv/bin/python bench/activation.py --backend sqlite --events 100000 --contacts 5000

For SQLite (a file in `bench/out/`, durable commits, as the service runs it)
and PostgreSQL (`LEADSCORE_TEST_DATABASE_URL`'s server; the bench makes a
database of its own beside it, `--pg-database`, `leadscore_bench` by default),
it loads a workspace once with a generated log (`leadscore generate`'s
generator: `--events` events of `--contacts` contacts, anonymous visitors,
identify events) through the store's own ingest, under a model without rules
(cheap to load; reused while the parameters stay the same). PostgreSQL's workspace is a copy of the
SQLite one's rows (events, links, owners), made with COPY: the ingest itself
is far slower on PostgreSQL and is not what this measures. Then, in the same
run, it activates the B2B SaaS example model (limits, decay, tags, fit,
stages, triggers) twice, each time from every owner under another version:

- **replay**: the activation as it was before issue 4, every owner replayed
  by the pure engine from its log, a chunk of owners at a time
  (`rescore(batch=False)`); with `--baseline-owners N` only the first N
  chunks' owners are rescored this way and the time is extrapolated to all
  owners (printed as such);
- **batch**: the activation as the service runs it now (`rescore`, under
  the runner's `rare_collections`): the batch engine over the whole log on
  DuckDB, then the states written a chunk at a time under the owner locks.

Both runs end with the same states (compared owner by owner within 1e-9;
the bench fails otherwise) and record the same history firings. It prints a
table with the time of each, events per second and the ratio, and the load
average. With `--reference PATH` the replay's states are saved the first
time and compared with in later runs, which skip the replay (for iterating
on the batch path). This is a benchmark, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from leadscore._engine import ContactState
from leadscore._events import parse_event
from leadscore._generate import generate_events
from leadscore._store import (
    activate_model,
    bulk,
    create_workspace,
    ingest,
    open_database,
    store_model,
    upgrade,
)
from leadscore._store import owners as owner_rows
from leadscore._store.activation import claim, release, rescore
from leadscore._store.tables import events as event_rows
from leadscore._store.tables import firings as firing_rows

try:  # the runner's collector settings (absent from a checkout before them)
    from leadscore._collector import rare_collections
except ImportError:  # pragma: no cover
    rare_collections = nullcontext  # type: ignore[assignment]

OUT = Path(__file__).parent / "out"
MODEL = Path(__file__).parent.parent / "src" / "leadscore" / "examples" / "b2b-saas.yaml"
LOADER = "version: 1\nname: loading\nrules: []\n"
LOAD_BATCH = 5_000
PHASES: dict[str, float] = {}


def database_url(backend: str, events: int, contacts: int, pg_database: str) -> str:
    if backend == "sqlite":
        OUT.mkdir(exist_ok=True)
        return f"sqlite:///{OUT / f'activation-{events}-{contacts}.db'}"
    server = os.environ.get("LEADSCORE_TEST_DATABASE_URL")
    if not server:
        raise SystemExit("PostgreSQL: set LEADSCORE_TEST_DATABASE_URL (a server with trust auth)")
    url = sa.make_url(server)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.execute(
            sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": pg_database}
        ).scalar()
        if not found:
            conn.execute(sa.text(f'CREATE DATABASE "{pg_database}"'))
    admin.dispose()
    return url.set(database=pg_database).render_as_string(hide_password=False)


def stored_events(database: sa.Engine, workspace: str) -> int:
    with database.connect() as conn, conn.begin():
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(event_rows)
                .where(event_rows.c.workspace == workspace)
            ).scalar_one()
        )


def load(database: sa.Engine, workspace: str, events: int, contacts: int) -> int:
    """The workspace with its log (made once); its number of events."""
    stored = stored_events(database, workspace)
    if stored:
        return stored
    with database.connect() as conn:
        assert create_workspace(conn, workspace=workspace)
        loader = store_model(conn, workspace=workspace, document=LOADER, activate=True)
        started = time.perf_counter()
        batch: list[Any] = []
        total = 0
        for record in generate_events(contacts=contacts, events=events, seed=7):
            batch.append(parse_event(record))
            if len(batch) == LOAD_BATCH:
                ingest(conn, workspace=workspace, model=loader, events=batch)
                total += len(batch)
                batch = []
                print(f"  loaded {total:,} events", end="\r", file=sys.stderr)
        if batch:
            ingest(conn, workspace=workspace, model=loader, events=batch)
            total += len(batch)
        took = time.perf_counter() - started
        print(f"  loaded {total:,} events in {took:.0f} s", file=sys.stderr)
        return total


def copy_from_sqlite(source_url: str, database: sa.Engine, workspace: str) -> None:
    """Load the PostgreSQL workspace with the rows the SQLite one was loaded with
    (the same ingest's events, links and owners; the loading model active):
    the store's ingest on a PostgreSQL as loaded as this machine's took hours
    for a million events."""
    from leadscore._store.tables import identity_links, models, owners, workspaces

    source = open_database(source_url)
    tables: list[tuple[sa.Table, Any]] = [
        (workspaces, workspaces.c.id == workspace),
        (models, sa.and_(models.c.workspace == workspace, models.c.version == 1)),
        (event_rows, event_rows.c.workspace == workspace),
        (identity_links, identity_links.c.workspace == workspace),
        (owners, owners.c.workspace == workspace),
    ]
    started = time.perf_counter()
    with source.connect() as reading, database.connect() as writing:
        driver = writing.connection.driver_connection
        assert driver is not None
        with reading.begin(), writing.begin():
            for table, where in tables:
                columns = [c for c in table.c if not (table is event_rows and c.name == "seq")]
                order = [event_rows.c.seq] if table is event_rows else []
                rows = reading.execute(sa.select(*columns).where(where).order_by(*order))
                names = ", ".join(f'"{c.name}"' for c in columns)
                json_columns = {i for i, c in enumerate(columns) if isinstance(c.type, sa.JSON)}
                with driver.cursor().copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        values = list(row)
                        for i in json_columns:
                            values[i] = json.dumps(values[i])
                        copy.write_row(values)
    source.dispose()
    print(f"  copied from SQLite in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def vacuum(database: sa.Engine) -> None:
    """PostgreSQL: what autovacuum does on a served database, which the test
    server runs without: the dead rows of the last activation's rewrite of
    every owner removed and the statistics renewed, so that each activation
    meets tables as a served database has them (with a million dead rows and
    none, the planner scanned the owners table for a chunk's key range)."""
    if database.dialect.name != "postgresql":
        return
    with database.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE owners, firings, events, identity_links"))


def activate(
    database: sa.Engine, workspace: str, *, batch: bool, owners: int | None
) -> tuple[float, int]:
    """Store and activate the model, rescore (`owners` of them at most); seconds, owners done."""
    vacuum(database)
    with database.connect() as conn:
        version = store_model(conn, workspace=workspace, document=MODEL.read_text())
        activate_model(conn, workspace=workspace, version=version.version)
        found = claim(conn)
        while found is not None and found.version != version.version:
            rescore(conn, found)  # an earlier one left running: it ends as superseded
            found = claim(conn)
        assert found is not None
        assert found.workspace == workspace
        started = time.perf_counter()
        cpu = time.process_time()
        if batch:
            computing = bulk.compute

            def timed(*args: Any, **kwargs: Any) -> bulk.Computed:
                begun = time.perf_counter()
                try:
                    return computing(*args, **kwargs)
                finally:
                    PHASES["compute"] = time.perf_counter() - begun

            bulk.compute = timed
        if owners is None:
            # The batch run as the service's runner runs it (its collector settings).
            with rare_collections() if batch else nullcontext():
                ended = rescore(conn, found, batch=batch)
            assert ended.status == "done", ended
        else:
            chunk = 500
            done = [0]

            def stopping() -> bool:
                done[0] += 1
                return done[0] > owners // chunk

            ended = rescore(conn, found, batch=batch, chunk=chunk, stopping=stopping)
            release(conn, ended)
        if batch:
            bulk.compute = computing
            PHASES["cpu"] = time.process_time() - cpu
        return time.perf_counter() - started, ended.rescored


def states(database: sa.Engine, workspace: str) -> tuple[dict[Any, ContactState], int]:
    with database.connect() as conn, conn.begin():
        every = owner_rows.every(conn, workspace, anonymous=True)
        found = {owner: row.state for owner, row in every}
        fired = conn.execute(
            sa.select(sa.func.count())
            .select_from(firing_rows)
            .where(firing_rows.c.workspace == workspace)
        ).scalar_one()
    return found, int(fired)


def differences(a: dict[Any, ContactState], b: dict[Any, ContactState]) -> int:
    """Owners whose states differ: the sums (flattened, in a fixed order) beyond a
    relative 1e-9, anything else at all."""
    sums = ("decaying", "flat", "stage_decaying", "stage_flat")

    def split(state: ContactState) -> tuple[list[float], dict[str, Any]]:
        data = state.to_json()
        numbers = [float(data.pop(name)) for name in sums]
        tags = data.pop("tags")
        for tag in sorted(tags):
            numbers += tags[tag]
        data["tags"] = sorted(tags)
        data["limits"] = sorted(data["limits"])  # a dict in the state: its order is no part of it
        return numbers, data

    def differ(x: ContactState, y: ContactState) -> bool:
        (p, rest_x), (q, rest_y) = split(x), split(y)
        if rest_x != rest_y or len(p) != len(q):
            return True
        return not all(
            math.isclose(u, v, rel_tol=1e-9, abs_tol=1e-9) for u, v in zip(p, q, strict=True)
        )

    missing = len(a.keys() ^ b.keys())
    return missing + sum(differ(a[o], b[o]) for o in a.keys() & b.keys())


def save_reference(
    path: Path, reference: dict[Any, ContactState], seconds: float, owners: int
) -> None:
    rows = [[identified, key, state.to_json()] for (identified, key), state in reference.items()]
    path.write_text(json.dumps({"seconds": seconds, "owners": owners, "states": rows}))


def load_reference(path: Path) -> tuple[dict[Any, ContactState], float, int]:
    """A replay's states saved by an earlier run (`--reference`), its time and owners."""
    data = json.loads(path.read_text())
    found = {(bool(i), str(k)): ContactState.from_json(state) for i, k, state in data["states"]}
    return found, float(data["seconds"]), int(data["owners"])


def run(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    url = database_url(backend, args.events, args.contacts, args.pg_database)
    upgrade(url)
    database = open_database(url)
    workspace = f"bench-{args.events}-{args.contacts}"
    try:
        if backend == "postgresql" and not stored_events(database, workspace):
            sqlite = database_url("sqlite", args.events, args.contacts, args.pg_database)
            upgrade(sqlite)
            source = open_database(sqlite)
            load(source, workspace, args.events, args.contacts)
            source.dispose()
            copy_from_sqlite(sqlite, database, workspace)
        events = load(database, workspace, args.events, args.contacts)
        if args.load_only:
            return {}
        # The replay first: its states are the reference (or those it saved).
        saved = args.reference and args.reference.with_suffix(f".{backend}.json")
        if saved and saved.exists():
            reference, replay_s, replay_owners = load_reference(saved)
        else:
            replay_s, replay_owners = activate(
                database, workspace, batch=False, owners=args.baseline_owners
            )
            reference, _ = states(database, workspace) if args.baseline_owners is None else ({}, 0)
            if saved and reference:
                save_reference(saved, reference, replay_s, replay_owners)
        load_replay = os.getloadavg()
        batch_s, owners = activate(database, workspace, batch=True, owners=None)
        load_batch = os.getloadavg()
        computed, fired = states(database, workspace)
        diff = differences(reference, computed) if reference else None
    finally:
        database.dispose()
    extrapolated = replay_owners < owners
    replay_all = replay_s * owners / replay_owners
    return {
        "backend": backend,
        "events": events,
        "owners": owners,
        "replay_s": replay_all,
        "extrapolated": f" (from {replay_owners:,} owners)" if extrapolated else "",
        "batch_s": batch_s,
        "compute_s": PHASES.get("compute", 0.0),
        "cpu_s": PHASES.get("cpu", 0.0),
        "fired": fired,
        "diff": diff,
        "load": (load_replay, load_batch),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=50_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--baseline-owners",
        type=int,
        default=None,
        help="replay only about this many owners and extrapolate (default: all)",
    )
    parser.add_argument(
        "--pg-database",
        default="leadscore_bench",
        help="PostgreSQL: the database made beside LEADSCORE_TEST_DATABASE_URL's (one each)",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="save the replay's states to PATH.<backend>.json, or if there, compare with them "
        "instead of replaying (the replay time printed is the saved one)",
    )
    parser.add_argument(
        "--load-only", action="store_true", help="load the workspaces (if needed) and stop"
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results = [run(backend, args) for backend in backends]
    if args.load_only:
        return 0
    print(
        f"\n{'backend':<11} {'events':>10} {'owners':>8} {'replay s':>9} {'batch s':>8} "
        f"{'batch ev/s':>11} {'speed-up':>8}  same states"
    )
    failed = False
    for r in results:
        same = "not compared" if r["diff"] is None else "yes" if r["diff"] == 0 else "NO"
        failed = failed or r["diff"] not in (None, 0)
        print(
            f"{r['backend']:<11} {r['events']:>10,} {r['owners']:>8,} {r['replay_s']:>9.1f} "
            f"{r['batch_s']:>8.1f} {r['events'] / r['batch_s']:>11,.0f} "
            f"{r['replay_s'] / r['batch_s']:>7.1f}x  {same}{r['extrapolated']}"
        )
        (l1, l5, l15), (b1, b5, b15) = r["load"]
        print(
            f"{'':<11} load average after replay {l1:.2f} {l5:.2f} {l15:.2f}, "
            f"after batch {b1:.2f} {b5:.2f} {b15:.2f}; history firings {r['fired']:,}"
        )
        print(
            f"{'':<11} batch: {r['compute_s']:.1f} s reading the log and computing on DuckDB, "
            f"{r['batch_s'] - r['compute_s']:.1f} s writing the states a chunk at a time; "
            f"{r['cpu_s']:.1f} s of CPU (the process's threads, DuckDB's included)"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
