"""leadscore: transparent, exact lead scoring.

The public API is what this module exports; every other module is private
and may change. Scores are a pure function of (model, event log, as-of
time): :func:`replay` defines them, :class:`Ledger` keeps them up to date one
event at a time, and :class:`StreamScorer` computes them for logs larger
than memory; :func:`score_batch` computes the same set-based on DuckDB, and
:func:`score_spark` on Apache Spark (the optional extra `leadscore[spark]`).
"""

from importlib import metadata as _metadata

from ._batch.io import EventTable, score_batch
from ._batch.spark import score_spark
from ._engine import (
    Award,
    ContactState,
    Engine,
    Firing,
    OutOfOrder,
    Prepared,
    RunWarning,
    Scorecard,
    StageEntry,
    Step,
)
from ._errors import EventError, InputError, Issue, LeadscoreError, ModelError
from ._eventfiles import BadRecord, read_events
from ._events import Event, parse_event
from ._generate import generate_events, write_events
from ._ledger import Ingested, Ledger, Status
from ._loader import load_model, model_from_data, parse_model
from ._model import Model, json_schema
from ._replay import Explanation, Result, explain, replay
from ._runner import StreamScorer
from ._time import format_timestamp, parse_timestamp

try:
    __version__ = _metadata.version("leadscore")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = [
    "Award",
    "BadRecord",
    "ContactState",
    "Engine",
    "Event",
    "EventError",
    "EventTable",
    "Explanation",
    "Firing",
    "Ingested",
    "InputError",
    "Issue",
    "LeadscoreError",
    "Ledger",
    "Model",
    "ModelError",
    "OutOfOrder",
    "Prepared",
    "Result",
    "RunWarning",
    "Scorecard",
    "StageEntry",
    "Status",
    "Step",
    "StreamScorer",
    "__version__",
    "explain",
    "format_timestamp",
    "generate_events",
    "json_schema",
    "load_model",
    "model_from_data",
    "parse_event",
    "parse_model",
    "parse_timestamp",
    "read_events",
    "replay",
    "score_batch",
    "score_spark",
    "write_events",
]
