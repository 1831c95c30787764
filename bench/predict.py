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

from rich.console import Console
from rich.table import Table as RichTable

import datasets
from leadscore._predict._api import event_table, train_events, train_table
from leadscore._predict._baselines import baseline_aucs
from leadscore._predict._history import DAY, Setup
from leadscore._predict._table import read_table, target_labels
from leadscore._predict._train import Options, TrainedModel, stratified_folds


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="LightGBM threads (0: all cores)")
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
    Console(width=200).print(out)


if __name__ == "__main__":
    main()
