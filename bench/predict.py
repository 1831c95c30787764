"""Predictive scoring on the shared data sets, against two baselines in the same run.

    .venv/bin/python bench/predict.py [--threads N]

For each data set: our training run (both learners validated, the better
kept, calibrated) and, under exactly its protocol (the same feature
columns, the same five stratified folds or the same split in time), a plain
logistic regression on one-hot columns and Odoo's naive Bayes frequency
method. Prints held-out ROC AUC against the issue's targets; the latest
results go into docs/benchmarks.md. Needs ../shared/data.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
from rich.console import Console
from rich.table import Table as RichTable

import datasets
from leadscore._loader import parse_model
from leadscore._predict._api import event_table, train_events, train_table
from leadscore._predict._backtest import (
    backtest,
    backtest_table,
    backtest_trained,
    backtest_trained_table,
)
from leadscore._predict._baselines import baseline_aucs
from leadscore._predict._history import DAY, Setup
from leadscore._predict._learners import available_cpus
from leadscore._predict._suggest import suggest
from leadscore._predict._table import read_table, target_labels
from leadscore._predict._train import (
    Options,
    TrainedModel,
    select_features,
    stratified_folds,
)


@dataclass
class Row:
    name: str
    protocol: str
    target: float
    ours: float
    chosen: str
    baselines: dict[str, float]
    seconds: float
    leaks: list[str]


def table_run(
    name: str,
    path: Path,
    target: str,
    options: Options,
    *,
    id_column: str | None = None,
    exclude: tuple[str, ...] = (),
    goal: float = 0.0,
) -> tuple[Row, TrainedModel]:
    started = time.perf_counter()
    table = read_table(path)
    model = train_table(table, target=target, id_column=id_column, exclude=exclude, options=options)
    seconds = time.perf_counter() - started
    labels, known = target_labels(table, target, None)
    y = labels[known]
    folds = stratified_folds(y, options.folds, options.seed)
    report = model.report
    return Row(
        name,
        report["validation"],
        goal,
        report["roc_auc"],
        report["model"],
        baseline_aucs(table, y, model.meta["features"], folds=folds),
        seconds,
        [leak["column"] for leak in report["suspected_leaks"]],
    ), model


def olist_run(options: Options) -> tuple[Row, TrainedModel]:
    started = time.perf_counter()
    events = datasets.olist_events()
    setup = Setup("deal_won")
    model = train_events(events, setup=setup, split_at=datasets.olist_split(), options=options)
    seconds = time.perf_counter() - started
    _, table, y, times = event_table(events, setup)
    report = model.report
    aucs = baseline_aucs(
        table, y, model.meta["features"], times=times, split_at=datasets.olist_split() / DAY
    )
    return Row(
        "Olist MQLs as events",
        "time split at 2018-03-01",
        0.68,
        report["roc_auc"],
        report["model"],
        aucs,
        seconds,
        [leak["column"] for leak in report["suspected_leaks"]],
    ), model


@dataclass
class SuggestRow:
    name: str
    protocol: str
    rules: int
    suggested: float
    trained: float


def _rule_count(text: str) -> int:
    model = parse_model(text, source="suggested")  # raises unless `leadscore validate` accepts it
    return len(model.rules) + len(model.fit)


def suggest_bank(options: Options) -> SuggestRow:
    """Suggest on a stratified 80% of Bank Marketing, backtest on the other 20%,
    next to a model trained on the same 80% and scored on the same 20%."""
    from sklearn.model_selection import train_test_split

    table = read_table(datasets.BANK)
    labels, known = target_labels(table, "y", None)
    index = np.flatnonzero(known)
    train, test = train_test_split(index, test_size=0.2, stratify=labels[index], random_state=0)
    train, test = np.sort(train), np.sort(test)
    part, held = table.take(train), table.take(test)
    y, y_held = labels[train], labels[test]
    names = [n for n in part.columns if n not in ("y", "duration")]
    selection = select_features(part, y, candidates=names)
    text = suggest(part, selection.names, y, events=False, source="Bank Marketing").yaml()
    back = backtest_table(parse_model(text, source="suggested"), held, y_held)
    model = train_table(part, target="y", exclude=("duration",), options=options)
    trained = backtest_trained_table(model, held, y_held)
    return SuggestRow(
        "Bank Marketing without duration",
        "80% builds, 20% held out",
        _rule_count(text),
        back["roc_auc"],
        trained["roc_auc"],
    )


def suggest_olist(options: Options) -> SuggestRow:
    """Suggest on the contacts before 2018-03-01, backtest on the rest, next to
    the model trained on the same split."""
    events = datasets.olist_events()
    setup = Setup("deal_won")
    split = datasets.olist_split()
    _, table, y, times = event_table(events, setup)
    rows = np.flatnonzero(times < split / DAY)
    part, y_part = table.take(rows), y[rows]
    selection = select_features(part, y_part, candidates=list(part.columns))
    text = suggest(part, selection.names, y_part, events=True, source="Olist").yaml()
    rules = parse_model(text, source="suggested")
    back = backtest(rules, events, outcome="deal_won", split_at=split)
    model = train_events(events, setup=setup, split_at=split, options=options)
    trained = backtest_trained(model, events, split_at=split)
    return SuggestRow(
        "Olist MQLs as events",
        "time split at 2018-03-01",
        _rule_count(text),
        back["roc_auc"],
        trained["roc_auc"],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--threads", type=int, default=available_cpus(), help="LightGBM threads (default: all CPUs)"
    )
    args = parser.parse_args()
    if not datasets.SHARED.is_dir():
        sys.exit(f"no shared data at {datasets.SHARED}")
    options = Options(threads=args.threads)
    rows = [
        table_run(
            "X Education, every column",
            datasets.X_EDUCATION,
            "Converted",
            options,
            id_column="Prospect ID",
        )[0],
        table_run(
            "X Education without sales columns",
            datasets.X_EDUCATION,
            "Converted",
            options,
            id_column="Prospect ID",
            exclude=datasets.X_EDUCATION_SALES,
            goal=0.91,
        )[0],
        table_run(
            "Bank Marketing without duration",
            datasets.BANK,
            "y",
            options,
            exclude=("duration",),
            goal=0.80,
        )[0],
        olist_run(options)[0],
    ]
    out = RichTable(title="Held-out ROC AUC: leadscore train against two baselines, same protocol")
    for column in (
        "data set",
        "protocol",
        "target",
        "leadscore",
        "model",
        "plain logistic",
        "Odoo naive Bayes",
        "train s",
        "leak guard named",
    ):
        out.add_column(column)
    for row in rows:
        beaten = all(row.ours >= v for v in row.baselines.values())
        out.add_row(
            row.name,
            row.protocol,
            f"≥ {row.target:.2f}" if row.target else "—",
            f"{row.ours:.4f}" + ("" if beaten else " (below a baseline)"),
            row.chosen,
            f"{row.baselines['plain logistic']:.4f}",
            f"{row.baselines['Odoo naive Bayes']:.4f}",
            f"{row.seconds:.1f}",
            ", ".join(row.leaks) or "—",
        )
    console = Console(width=200)
    console.print(out)
    made = RichTable(
        title="suggest: the rule model's backtest next to the trained model's, same held-out leads"
    )
    for column in (
        "data set",
        "protocol",
        "rules",
        "passes validate",
        "suggested rules AUC",
        "trained model AUC",
    ):
        made.add_column(column)
    for made_row in (suggest_bank(options), suggest_olist(options)):
        made.add_row(
            made_row.name,
            made_row.protocol,
            str(made_row.rules),
            "yes",
            f"{made_row.suggested:.4f}",
            f"{made_row.trained:.4f}",
        )
    console.print(made)


if __name__ == "__main__":
    main()
