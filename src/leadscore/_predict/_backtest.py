"""Backtests: how well a model would have ranked history.

`backtest(model, events, outcome=...)` is the command line's computation,
returning plain data (lists, dicts, numbers): each contact is observed at
its cut-off exactly as training observes it (:mod:`._history`), scored
there by the pure engine's replay of its events up to the cut-off, and
compared with whether it converted afterwards.

`compare(current, candidate, events, at=..., converted=...)` is the web
model editor's preview: both models score the whole history as of one
instant (the batch engine, which gives what a replay gives: what
activation would store), and the changes between them are counted.

Both measure with `rule_report`: a rule model ranks leads by score + fit
(engagement and fit are both points on one scale in a suggested model, and
a model without fit rules ranks by score alone), reported as ROC AUC,
conversion by decile, the share of conversions in the top leads, and
conversion by band, grade and stage. A trained model ranks them by
probability.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .._engine import Engine, Scorecard, Scored
from .._events import Event
from .._model import Model
from .._time import format_timestamp, from_datetime
from ._history import Contact, Setup, contacts, labelled
from ._metrics import Labels, capture, deciles, pareto, roc_auc
from ._suggest import trait_key
from ._table import Floats, Table

if TYPE_CHECKING:
    from ._train import TrainedModel

# Tables have no time: each row becomes one `identify` event at this instant.
TABLE_TIME = from_datetime(datetime(2000, 1, 1, tzinfo=UTC))


_Card = TypeVar("_Card", bound=Scored)


def _groups(values: Sequence[str | None], y: Labels) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for value in sorted({v or "(none)" for v in values}):
        mask = np.array([(v or "(none)") == value for v in values], dtype=bool)
        out[value] = {
            "leads": int(mask.sum()),
            "conversions": int(y[mask].sum()),
            "rate": round(float(y[mask].mean()), 4),
        }
    return out


def ranking_report(y: Labels, score: Floats) -> dict[str, Any]:
    if not y.size:  # no lead (an empty workspace's preview): nothing to rank
        return {
            "leads": 0, "conversions": 0, "base_rate": 0.0, "roc_auc": None,
            "deciles": [], "capture_top_20pct": 0.0, "pareto": [],
        }  # fmt: skip
    return {
        "leads": int(y.size),
        "conversions": int(y.sum()),
        "base_rate": round(float(y.mean()), 4),
        "roc_auc": round(roc_auc(y, score), 4) if 0 < y.sum() < y.size else None,
        "deciles": deciles(y, score),
        "capture_top_20pct": round(capture(y, score, 0.2), 4),
        "pareto": pareto(y, score),
    }


def score_contacts(engine: Engine, chosen: Sequence[Contact], outcome: str) -> list[Scorecard]:
    """Each contact's scorecard as of its cut-off: a replay of its events up to it."""
    return [
        _replayed(engine, contact.observed(outcome), contact.contact_id, contact.cutoff)
        for contact in chosen
    ]


def _replayed(engine: Engine, events: Iterable[Event], contact_id: str, at: int) -> Scorecard:
    """One contact's scorecard as of `at`: the engine's run over its events."""
    state, _ = engine.run([engine.prepare(e) for e in events], contact_id=contact_id)
    return engine.scorecard(state, at, contact_id=contact_id, anonymous_id=None)


def rule_report(cards: Sequence[Scored], y: Labels) -> dict[str, Any]:
    score = np.array([c.score + c.fit for c in cards], dtype=np.float64)
    return {
        "ranked_by": "score + fit",
        **ranking_report(y, score),
        "by_band": _groups([c.band for c in cards], y),
        "by_grade": _groups([c.grade for c in cards], y),
        "by_stage": _groups([c.stage for c in cards], y),
    }


@dataclass(slots=True)
class Comparison:
    """A candidate model against the current one over the same history as
    of one instant: what activating it would change, and how each ranks the
    contacts that converted."""

    before: list[Scored]  # the current model's scorecards, by contact id
    after: list[Scorecard]  # the candidate's, by contact id
    band_changes: int
    stage_changes: int
    moves: list[tuple[str, str, int]]  # (band now, band with the candidate, contacts), most first
    risers: list[tuple[str, float, float]]  # the largest score changes: (contact, now, candidate)
    current: dict[str, Any]  # rule_report of `before` against the conversions
    candidate: dict[str, Any]  # rule_report of `after`

    @property
    def contacts(self) -> int:
        return len(self.after)


# The preview lists this many of the largest score changes.
RISERS = 10


def compare(
    current: Iterable[Scored] | None,
    candidate: Model | Engine,
    events: Sequence[Event] | str,
    *,
    at: int,
    converted: Set[str],
) -> Comparison:
    """The candidate's scorecards of `events` (events, or the path of an
    event file) as of `at` against `current`, the current model's
    scorecards of the same contacts as of `at` (None: the candidate is the
    first model, compared with itself). `converted`: the contacts that
    converted (they had an outcome event), whatever the model.

    The candidate scores with the batch engine: `leadscore.score_batch`
    gives what the pure engine's replay gives (what activation would store),
    set-based on DuckDB. The current model's scorecards are the caller's:
    the web editor's are the store's ranked list, kept as events arrive, so
    the history is scored once, not twice."""
    from .._batch.io import score_batch

    after = _by_contact(score_batch(candidate, events, at=at).scorecards)
    before = after if current is None else _by_contact(current)
    moves: dict[tuple[str, str], int] = {}
    band_changes = stage_changes = 0
    deltas: list[tuple[float, str, float, float]] = []
    for contact_id, new in after.items():
        old = before.get(contact_id)
        if old is None:  # an event that arrived between the two reads
            continue
        if old.band != new.band:
            band_changes += 1
            pair = (old.band or "none", new.band or "none")
            moves[pair] = moves.get(pair, 0) + 1
        stage_changes += old.stage != new.stage
        deltas.append((new.score - old.score, contact_id, old.score, new.score))
    deltas.sort(key=lambda d: (-abs(d[0]), d[1]))

    def measured(cards: Mapping[str, Scored]) -> dict[str, Any]:
        y = np.array([contact_id in converted for contact_id in cards], dtype=np.int8)
        return rule_report(list(cards.values()), y)

    return Comparison(
        before=list(before.values()),
        after=list(after.values()),
        band_changes=band_changes,
        stage_changes=stage_changes,
        moves=sorted(((a, b, n) for (a, b), n in moves.items()), key=lambda m: -m[2]),
        risers=[(cid, old, new) for _, cid, old, new in deltas[:RISERS] if old != new],
        current=measured(before),
        candidate=measured(after),
    )


def _by_contact(cards: Iterable[_Card]) -> dict[str, _Card]:
    found = {card.contact_id: card for card in cards if card.contact_id is not None}
    return dict(sorted(found.items()))


def _chosen(
    events: Iterable[Event], setup: Setup, split_at: int | None
) -> tuple[list[Contact], Labels, dict[str, Any]]:
    history = contacts(events, setup)
    chosen = [c for c in labelled(history) if split_at is None or c.cutoff >= split_at]
    y = np.array([c.label for c in chosen], dtype=np.int8)
    about = {
        "outcome": setup.outcome,
        "window_days": setup.window_days,
        "horizon_days": setup.horizon_days,
        "from": None if split_at is None else format_timestamp(split_at),
        "left_out": dict(history.left_out),
    }
    return chosen, y, about


def backtest(
    model: Model | Engine,
    events: Iterable[Event],
    *,
    outcome: str,
    window_days: float = 0.0,
    horizon_days: float | None = None,
    split_at: int | None = None,
) -> dict[str, Any]:
    """A rule model's backtest on an event log, as plain data.

    Only contacts whose cut-off is at or after `split_at` (microseconds)
    count, when given: the period a model was not built on.
    """
    engine = model if isinstance(model, Engine) else Engine(model)
    setup = Setup(outcome, window_days, horizon_days)
    chosen, y, about = _chosen(events, setup, split_at)
    return {**about, **rule_report(score_contacts(engine, chosen, outcome), y)}


def table_events(table: Table, ids: Sequence[str]) -> list[Event]:
    """Each row as one `identify` event whose traits are its columns (keys as
    `suggest` writes them: dots become underscores)."""
    keys = {name: trait_key(name) for name in table.columns}
    events = []
    for row, contact in enumerate(ids):
        traits: dict[str, Any] = {}
        for name, column in table.columns.items():
            value = column[row]
            if column.dtype == np.float64:
                if not np.isnan(value):
                    traits[keys[name]] = float(value)
            elif value is not None:
                traits[keys[name]] = value
        events.append(
            Event(f"row-{row}", "identify", TABLE_TIME, contact_id=contact, traits=traits)
        )
    return events


def backtest_table(model: Model | Engine, table: Table, y: Labels) -> dict[str, Any]:
    """A rule model's backtest on a table (one `identify` per row), as plain data."""
    engine = model if isinstance(model, Engine) else Engine(model)
    ids = [f"row-{i}" for i in range(table.rows)]
    events = table_events(table, ids)
    cards = [
        _replayed(engine, [event], row, TABLE_TIME) for event, row in zip(events, ids, strict=True)
    ]
    return rule_report(cards, y)


def chart(report: dict[str, Any], path: str | Path, *, title: str) -> None:
    """A PNG a marketer can read: the Pareto curve and conversion by decile."""
    import matplotlib

    matplotlib.use("Agg")  # no display, no GUI toolkit: a file only
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    xs = [100 * p["top_share"] for p in report["pareto"]]
    ys = [100 * p["conversions_share"] for p in report["pareto"]]
    left.plot(xs, ys, marker="o", markersize=3, label="this model")
    left.plot([0, 100], [0, 100], linestyle="--", color="grey", label="random order")
    left.set_xlabel("top x% of leads by score")
    left.set_ylabel("% of all conversions")
    left.set_title("Share of conversions from the top leads")
    left.legend(loc="lower right")
    left.grid(alpha=0.3)
    rates = [100 * d["rate"] for d in report["deciles"]]
    right.bar([str(d["decile"]) for d in report["deciles"]], rates, color="#4c72b0")
    right.axhline(100 * report["base_rate"], linestyle="--", color="grey", label="base rate")
    right.set_xlabel("decile (1 = highest scores)")
    right.set_ylabel("% converted")
    right.set_title("Conversion rate by decile")
    right.legend()
    auc = report.get("roc_auc")
    figure.suptitle(f"{title}" + (f" — ROC AUC {auc:.3f}" if auc is not None else ""))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def backtest_trained(
    model: TrainedModel,
    events: Iterable[Event],
    *,
    outcome: str | None = None,
    split_at: int | None = None,
) -> dict[str, Any]:
    """A trained model's backtest on an event log, observed as it was trained."""
    from ._api import event_setup, trained_rules
    from ._history import complete, features

    trained = event_setup(model)
    setup = replace(trained, outcome=outcome) if outcome else trained
    chosen, y, about = _chosen(events, setup, split_at)
    rules = trained_rules(model)
    engine = None if rules is None else Engine(rules)
    table = complete(features(chosen, setup, engine=engine), model.encoder.names)
    return {**about, "ranked_by": "probability", **ranking_report(y, model.probabilities(table))}


def backtest_trained_table(model: TrainedModel, table: Table, y: Labels) -> dict[str, Any]:
    return {"ranked_by": "probability", **ranking_report(y, model.probabilities(table))}
