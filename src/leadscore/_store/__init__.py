"""The store: leadscore's persistence for the HTTP service, on PostgreSQL or SQLite.

Each accepted event updates its contact's state (scores, awards, stage) in the
same transaction that stores it, through the engine's incremental form, so
that whatever the arrival order or the number of concurrent writers, the
stored scorecards equal a replay of the stored log.

- database: opening a database (drivers, isolation, SQLite durability)
- tables: the schema; migrations/ and migrate: Alembic, run from code
- workspaces: workspaces and model versions
- ingest: storing events and updating states; locks: how writers serialize
- log, identity, owners, firings: the rows ingest reads and writes
- reads: scorecards back, and a replay of the stored log to check them
"""

from .database import open_database
from .errors import StoreError, UnknownModelVersion, UnknownWorkspace
from .ingest import EventOutcome, Outcome, ingest
from .migrate import check_current, upgrade
from .reads import replay_workspace, scorecard, scorecards
from .workspaces import (
    ModelVersion,
    activate_model,
    active_model,
    create_workspace,
    load_model,
    store_model,
)

__all__ = [
    "EventOutcome",
    "ModelVersion",
    "Outcome",
    "StoreError",
    "UnknownModelVersion",
    "UnknownWorkspace",
    "activate_model",
    "active_model",
    "check_current",
    "create_workspace",
    "ingest",
    "load_model",
    "open_database",
    "replay_workspace",
    "scorecard",
    "scorecards",
    "store_model",
    "upgrade",
]
