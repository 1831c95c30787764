"""The store: leadscore's persistence for the HTTP service, on PostgreSQL or SQLite.

Each accepted event updates its contact's state (scores, awards, stage) in the
same transaction that stores it, through the engine's incremental form, so
that whatever the arrival order or the number of concurrent writers, the
stored scorecards equal a replay of the stored log.

- database: opening a database (drivers, isolation, SQLite durability)
- tables: the schema; migrations/ and migrate: Alembic, run from code
- workspaces: workspaces and model versions
- keys: API keys (hashed, scoped, revocable)
- ingest: storing events and updating states, a batch per transaction;
  locks: how writers serialize
- activation: rescoring a workspace under a newly activated model version;
  bulk: every owner's state for it, computed by the batch engine at once
- log, identity, owners, firings: the rows ingest reads and writes
- reads: scorecards back, and a replay of the stored log to check them
- outbox, actions: triggers' actions carried out (claims, webhook attempts,
  deliveries, tags, owners, round-robin rotations); outbox_stats and
  delivery_failures for /metrics

The statements of the hot paths (a request's authentication and model
lookup, ingestion's reads and writes) are built once, at import, with bound
parameters, and run on the driver's cursor (prepared): building a SQLAlchemy
statement, and even executing a built one through SQLAlchemy's execution
layer, costs several times the CPU SQLite takes to run it.
"""

from .database import open_database
from .errors import StoreError, UnknownModelVersion, UnknownWorkspace
from .ingest import EventOutcome, Outcome, ingest
from .keys import ApiKey, Caller, Scope, authenticate, create_key, list_keys, revoke_key
from .migrate import check_current, upgrade
from .outbox import OutboxStats, delivery_failures, outbox_stats
from .reads import replay_workspace, scorecard, scorecards
from .workspaces import (
    ModelVersion,
    activate_model,
    active_model,
    active_version,
    create_workspace,
    load_model,
    store_model,
)

__all__ = [
    "ApiKey",
    "Caller",
    "EventOutcome",
    "ModelVersion",
    "OutboxStats",
    "Outcome",
    "Scope",
    "StoreError",
    "UnknownModelVersion",
    "UnknownWorkspace",
    "activate_model",
    "active_model",
    "active_version",
    "authenticate",
    "check_current",
    "create_key",
    "create_workspace",
    "delivery_failures",
    "ingest",
    "list_keys",
    "load_model",
    "open_database",
    "outbox_stats",
    "replay_workspace",
    "revoke_key",
    "scorecard",
    "scorecards",
    "store_model",
    "upgrade",
]
