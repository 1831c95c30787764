"""Training and prediction speed on a generated table of leads.

    .venv/bin/python bench/predict_speed.py [--rows 1000000] [--columns 50]

Generates a seeded table (four fifths numeric columns, heavy-tailed, with
missing values; one fifth categorical, with placeholders), writes it as
Parquet, and times `read_table` + `train_table` (the whole of `leadscore
train`: leak guard, validation of both learners, calibration, refit) against
one bare LightGBM fit of the same rounds on the whole matrix (every row,
where training fits its trees on a sample), measured in the same run. Then
times predicting every row (probabilities; and with the top-three factors)
against the bare booster's predict. Targets: training under 2 minutes,
predict at least 100,000 leads a second. Prints the load average before
and after: on a shared machine, wall time is the neighbours' as much as
ours; CPU time much less so.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table as RichTable

from leadscore._predict._api import train_table
from leadscore._predict._learners import GBM_PARAMS, available_cpus
from leadscore._predict._table import read_table
from leadscore._predict._train import LARGE_PARAMS, Options


def generate(rows: int, columns: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    numeric = columns * 4 // 5
    data: dict[str, object] = {}
    logit = np.full(rows, -2.0)
    for j in range(numeric):
        x = rng.pareto(2.0, rows) * (j + 1)
        logit += (0.3 if j < 8 else 0.0) * np.log1p(x) * (1 if j % 2 else -1)
        x[rng.random(rows) < 0.05] = np.nan
        data[f"n{j:02d}"] = x
    levels = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "Select", "unknown"])
    for j in range(columns - numeric):
        codes = rng.integers(0, levels.size, rows)
        logit += 0.4 * (codes == j % 6)
        data[f"c{j:02d}"] = levels[codes]
    data["converted"] = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    return pa.table(data)


T = TypeVar("T")


def timed(work: Callable[[], T]) -> tuple[T, float, float]:
    """The result, wall seconds and CPU seconds (this process, every thread).

    The machine is shared: wall time depends on the others' load, CPU time
    much less; both are reported."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=available_cpus(), help="LightGBM threads (default: all CPUs)"
    )
    args = parser.parse_args()
    import lightgbm as lgb

    before = os.getloadavg()
    with TemporaryDirectory() as folder:
        path = Path(folder) / "leads.parquet"
        pq.write_table(generate(args.rows, args.columns, args.seed), path)
        table, read_s, read_c = timed(lambda: read_table(path))
        model, fit_s, fit_c = timed(
            lambda: train_table(table, target="converted", options=Options(threads=args.threads))
        )
        train_s, train_c = read_s + fit_s, read_c + fit_c
        rounds = model.report["boosting_rounds"] or 100
        x = model.encoder.trees(table)
        y = table.columns["converted"].astype(np.int8)
        data = lgb.Dataset(x, y, categorical_feature=model.encoder.categorical)
        # The threads training was given, so the two compare.
        params = {**GBM_PARAMS, **LARGE_PARAMS, "num_threads": args.threads}
        bare, bare_s, bare_c = timed(lambda: lgb.train(params, data, num_boost_round=rounds))
        _, ours_s, ours_c = timed(lambda: model.probabilities(table))
        _, bare_ps, bare_pc = timed(lambda: bare.predict(x))
        sample = table.take(np.arange(min(100_000, table.rows)))
        _, factors_s, factors_c = timed(lambda: model.factors(sample))
        _, shap_s, shap_c = timed(lambda: bare.predict(x[: sample.rows], pred_contrib=True))
    out = RichTable(
        title=f"{args.rows:,} leads x {args.columns} columns "
        f"({model.report['model']}, {rounds} rounds)"
    )
    for column in (
        "step",
        "wall s",
        "CPU s",
        "rate (wall / CPU)",
        "bare LightGBM, same run",
        "ratio (CPU)",
        "target",
    ):
        out.add_column(column)
    n = table.rows
    out.add_row(
        "read Parquet + train (whole run)",
        f"{train_s:.1f}",
        f"{train_c:.1f}",
        "",
        f"{bare_s:.1f} wall, {bare_c:.1f} CPU (one fit)",
        f"{train_c / bare_c:.1f}x",
        "< 120 s",
    )
    out.add_row("  of which reading", f"{read_s:.1f}", f"{read_c:.1f}", "", "", "", "")
    out.add_row(
        "predict probabilities",
        f"{ours_s:.2f}",
        f"{ours_c:.2f}",
        f"{n / ours_s:,.0f} / {n / ours_c:,.0f} leads/s",
        f"{n / bare_ps:,.0f} / {n / bare_pc:,.0f} leads/s",
        f"{bare_pc / ours_c:.2f}",
        ">= 100,000/s",
    )
    out.add_row(
        "predict with top-3 factors",
        f"{factors_s:.2f}",
        f"{factors_c:.2f}",
        f"{sample.rows / factors_s:,.0f} / {sample.rows / factors_c:,.0f} leads/s",
        f"TreeSHAP {sample.rows / shap_s:,.0f} / {sample.rows / shap_c:,.0f} leads/s",
        "",
        "",
    )
    Console(width=160).print(out)
    print(
        f"held-out ROC AUC {model.report['roc_auc']} ({model.report['validation']})",
        file=sys.stderr,
    )
    after = os.getloadavg()
    print(
        "load average before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
            *before, *after
        ),
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
