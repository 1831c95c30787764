"""How the predictive commands print: rich tables for people, CSV and JSON Lines for programs."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from typing import IO, Any

import orjson
from rich.console import Console
from rich.table import Table

from .._output import console_for


def _metrics_line(report: dict[str, Any]) -> str:
    return (
        f"ROC AUC {report['roc_auc']:.4f} · PR AUC {report['pr_auc']:.4f} · "
        f"Brier {report['brier']:.4f} · log loss {report['log_loss']:.4f} · "
        f"base rate {report['base_rate']:.1%} · top 20% capture "
        f"{report['capture_top_20pct']:.1%} of conversions"
    )


def deciles_table(deciles: Sequence[dict[str, Any]], title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for name in ("decile", "leads", "conversions", "rate", "lift"):
        table.add_column(name, justify="right")
    for row in deciles:
        table.add_row(
            str(row["decile"]),
            f"{row['leads']:,}",
            f"{row['conversions']:,}",
            f"{row['rate']:.1%}",
            f"{row['lift']:.2f}",
        )
    return table


def print_train_report(report: dict[str, Any], saved: str, console: Console | None = None) -> None:
    out = console or console_for()
    out.print(
        f"[bold]{report['model']}[/bold] chosen by {report['validation']} "
        f"(held-out ROC AUC: "
        + ", ".join(f"{k} {v:.4f}" for k, v in report["candidates"].items())
        + f"), on {report['rows']:,} held-out leads",
        highlight=False,
    )
    out.print(_metrics_line(report), highlight=False)
    out.print(deciles_table(report["deciles"], "Held-out leads by decile of probability"))
    features = Table(title="Top features (mean |effect| in log-odds)", title_justify="left")
    features.add_column("feature")
    features.add_column("importance", justify="right")
    for item in report["features"][:10]:
        features.add_row(item["feature"], f"{item['importance']:.3f}")
    out.print(features)
    for leak in report["suspected_leaks"]:
        recorded = leak["recorded_auc"]
        out.print(
            f"[yellow]suspected leak[/yellow] {leak['column']!r}: single-column AUC "
            f"{leak['auc']:.3f}"
            + (
                f" ({recorded:.3f} on the {leak['recorded_share']:.0%} of rows that record it)"
                if recorded is not None
                else ""
            )
            + (
                "; left out (--keep to use it)"
                if leak["column"] in report["excluded"]
                else "; kept"
            ),
            highlight=False,
        )
    for column, why in report["excluded"].items():
        if not why.startswith("suspected leak"):
            out.print(f"not used: {column!r}: {why}", highlight=False)
    out.print(f"model saved in {os.path.join(saved, '')}", highlight=False)  # one trailing /


def _factor_text(factors: Sequence[dict[str, Any]]) -> str:
    return "; ".join(f"{f['feature']}={f['value']} ({f['effect']:+.2f})" for f in factors)


def write_predictions(
    ids: Sequence[str],
    rows: Sequence[dict[str, Any]],
    output_format: str,
    out: IO[bytes],
    *,
    explained: bool,
) -> None:
    """One line per lead: id, probability, and unless not `explained` (--top
    0) the factors raising and lowering it. The CSV header says so whatever
    the number of rows (a table of none has the columns of one of many)."""
    if output_format == "jsonl":
        for lead, row in zip(ids, rows, strict=True):
            out.write(
                orjson.dumps({"id": lead, **row, "probability": round(row["probability"], 6)})
                + b"\n"
            )
        return
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    writer = csv.writer(text)
    writer.writerow(
        ["id", "probability", "raising", "lowering"] if explained else ["id", "probability"]
    )
    for lead, row in zip(ids, rows, strict=True):
        if not explained:
            writer.writerow([lead, f"{row['probability']:.6f}"])
            continue
        writer.writerow(
            [
                lead,
                f"{row['probability']:.6f}",
                _factor_text(row["raising"]),
                _factor_text(row["lowering"]),
            ]
        )
    text.flush()
    text.detach()


def print_backtest(report: dict[str, Any], name: str, console: Console | None = None) -> None:
    out = console or console_for()
    auc = report["roc_auc"]
    out.print(
        f"[bold]{name}[/bold] ranked {report['leads']:,} leads by {report['ranked_by']}: "
        f"ROC AUC {'—' if auc is None else f'{auc:.4f}'} · base rate {report['base_rate']:.1%} · "
        f"top 20% hold {report['capture_top_20pct']:.1%} of {report['conversions']:,} "
        f"conversion{'s' if report['conversions'] != 1 else ''}",
        highlight=False,
    )
    out.print(deciles_table(report["deciles"], "By decile of score"))
    pareto = ", ".join(
        f"top {p['top_share']:.0%}: {p['conversions_share']:.0%}"
        for p in report["pareto"]
        if round(p["top_share"] * 100) in (5, 10, 20, 30, 50)
    )
    out.print(f"Share of conversions from the top leads: {pareto}", highlight=False)
    for key, title in (("by_band", "band"), ("by_grade", "grade"), ("by_stage", "stage")):
        groups = report.get(key)
        if not groups or list(groups) == ["(none)"]:
            continue
        table = Table(title=f"Conversion by {title}", title_justify="left")
        for column in (title, "leads", "conversions", "rate"):
            table.add_column(column, justify="left" if column == title else "right")
        for value, row in groups.items():
            table.add_row(
                value, f"{row['leads']:,}", f"{row['conversions']:,}", f"{row['rate']:.1%}"
            )
        out.print(table)
