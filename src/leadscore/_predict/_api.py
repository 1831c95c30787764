"""Entry points: train on a table or an event log; what the CLI and bench call."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .._engine import Engine
from .._errors import InputError
from .._events import Event
from .._loader import parse_model
from .._model import Model
from .._time import format_timestamp
from ._history import (
    DAY,
    History,
    Setup,
    complete,
    contacts,
    cutoff_days,
    features,
    labelled,
)
from ._metrics import Labels
from ._table import Floats, Table, target_labels
from ._train import Options, TrainedModel, fit, select_features


def train_table(
    table: Table,
    *,
    target: str,
    id_column: str | None = None,
    positive: str | None = None,
    exclude: Sequence[str] = (),
    keep: Sequence[str] = (),
    split_column: str | None = None,
    split_at: float | None = None,
    options: Options | None = None,
) -> TrainedModel:
    """Train on a flat table, one row per lead, with a target column.

    With `split_column` (a date column) and `split_at` (days since the
    epoch), rows before the split train and the rest test; otherwise
    stratified cross-validation.
    """
    options = options or Options()
    labels, known = target_labels(table, target, positive)
    if id_column is not None and id_column not in table.columns:
        raise InputError(f"id column {id_column!r} is not in the table")
    if id_column is not None:
        # One row per lead: a lead on two rows would sit in a training fold
        # and in the fold that validates it, and the report would be about
        # leads the model has seen.
        ids = Counter(table.columns[id_column].tolist())
        repeated = [
            v
            for v, n in ids.items()
            if n > 1 and v is not None and not (isinstance(v, float) and math.isnan(v))
        ]  # a missing id (None, NaN) is no lead's
        if repeated:
            shown = f"{repeated[0]:g}" if isinstance(repeated[0], float) else repeated[0]
            raise InputError(
                f"id column {id_column!r} has {len(repeated):,} "
                f"value{'s' if len(repeated) != 1 else ''} on more than one row "
                f"(such as {shown!r}); expected one row per lead"
            )
    left_out: dict[str, int] = {}
    if split_column is not None:
        if split_column not in table.dates:
            raise InputError(f"split column {split_column!r} is not a date column of the table")
        # A row without a date is neither before the split nor after it: it
        # can be neither trained nor tested on, and is left out, counted (the
        # command warns of it) rather than dropped by the comparisons unseen.
        dated = ~np.isnan(table.dates[split_column])
        undated = int(np.count_nonzero(known & ~dated))
        if undated and undated == int(np.count_nonzero(known)):
            raise InputError(
                f"split column {split_column!r} has no date on any row with a {target!r} value"
            )
        if undated:
            left_out[f"no date in {split_column!r}"] = undated
        known = known & dated
    rows = np.flatnonzero(known)
    data = table.take(rows) if rows.size < table.rows else table
    y = labels[rows]
    times = None if split_column is None else data.dates[split_column]
    candidates = [n for n in data.columns if n not in (target, id_column)]
    selection = select_features(
        data, y, candidates=candidates, exclude=tuple(exclude), keep=tuple(keep)
    )
    source: dict[str, Any] = {"kind": "table", "target": target, "id": id_column}
    if left_out:
        source["left_out"] = left_out
    return fit(data, y, selection, options, times=times, split_at=split_at, source=source)


def event_table(
    events: Iterable[Event], setup: Setup, *, rules: Model | None = None
) -> tuple[History, Table, Labels, Floats]:
    """The labelled contacts of a log: history, feature table, labels, cut-offs (days)."""
    history = contacts(events, setup)
    chosen = labelled(history)
    if not chosen:
        raise InputError(f"no contact can be labelled with outcome {setup.outcome!r}")
    y = np.array([c.label for c in chosen], dtype=np.int8)
    if y.min() == y.max():
        if y[0]:
            raise InputError(
                f"every labelled contact converted: outcome {setup.outcome!r} has one class"
            )
        # As backtest says it: what a misspelt --outcome gives.
        raise InputError(
            f"none of the {y.size:,} labelled contacts had a {setup.outcome!r} event after its "
            f"cut-off: outcome {setup.outcome!r} has one class (is --outcome the event type of "
            "a conversion?)"
        )
    engine = Engine(rules) if rules is not None else None
    return history, features(chosen, setup, engine=engine), y, cutoff_days(chosen)


def train_events(
    events: Iterable[Event],
    *,
    setup: Setup,
    split_at: int | None = None,
    rules: Model | None = None,
    exclude: Sequence[str] = (),
    keep: Sequence[str] = (),
    fingerprint: str = "",
    options: Options | None = None,
) -> TrainedModel:
    """Train on an event log: contacts observed at their cut-offs, split in time.

    `split_at` (microseconds): contacts whose cut-off is before it train, the
    rest test; default, the instant that leaves the latest quarter of
    cut-offs for testing.
    """
    options = options or Options()
    history, table, y, times = event_table(events, setup, rules=rules)
    table.fingerprint = fingerprint
    split = float(np.quantile(times, 0.75)) if split_at is None else split_at / DAY
    selection = select_features(
        table, y, candidates=list(table.columns), exclude=tuple(exclude), keep=tuple(keep)
    )
    source: dict[str, Any] = {
        "kind": "events",
        **setup.to_json(),
        "split_at": format_timestamp(int(split * DAY)),
        "left_out": dict(history.left_out),
        "rules": rules is not None,
    }
    if rules is not None:
        # Saved with the model: its rules' features must be computed again,
        # the same way, for every lead it scores.
        source["rules_model"] = rules.model_dump_json(by_alias=True, exclude_none=True)
    return fit(table, y, selection, options, times=times, split_at=split, source=source)


def event_setup(model: TrainedModel) -> Setup:
    """How a model trained on events observes contacts (its outcome, window
    and horizon). InputError for a model trained on a table."""
    source = model.meta.get("source", {})
    if source.get("kind") != "events":
        raise InputError("this model was trained on a table, not on events: give it --table")
    return Setup(source["outcome"], source["window_days"], source["horizon_days"])


def trained_rules(model: TrainedModel) -> Model | None:
    """The rule model whose awards, score and fit a model trained on events
    learned from (`train --model`), or None."""
    text = model.meta.get("source", {}).get("rules_model")
    return None if text is None else parse_model(text, source="rules_model")


def event_features(
    model: TrainedModel, events: Iterable[Event], *, at: int | None = None
) -> tuple[list[str], Table]:
    """Contact ids and features for predicting with a model trained on events:
    every identified contact, observed at its cut-off (capped at the log's end),
    with the features of the model's own rule model when it was trained with one."""
    setup = event_setup(model)
    history = contacts(events, setup, at=at)
    rules = trained_rules(model)
    engine = Engine(rules) if rules is not None else None
    table = complete(features(history.contacts, setup, engine=engine), model.encoder.names)
    return [c.contact_id for c in history.contacts], table
