"""The leak guard: columns that predict the outcome almost perfectly alone.

Columns filled in after contact (a salesperson's verdict, a call's length)
"predict" conversion because they record it. Two signs, each measured by the
column's single-column ROC AUC, out of fold (5 folds, so a column of unique
values scores 0.5, not 1):

- on all rows, the AUC reaches `ALL_ROWS` (0.90): better than any honest
  lead-scoring model of the data sets we know (the best published models of
  X Education without its sales columns reach about 0.91 with *every* column
  together);
- or the column is recorded for fewer than `SPARSE` (90%) of rows and, on the
  rows where it is recorded, its AUC reaches `RECORDED_ROWS` (0.80). A sales
  column is blank for the leads nobody worked, which dilutes its AUC on all
  rows; where it is filled in, it is nearly a verdict. (X Education's `Lead
  Quality`: 0.80 on all rows, 0.85 where recorded; its most predictive
  honest column, time on the website, is 0.77 on all rows.)

A column's AUC is that of its per-value conversion rates (numbers cut into
`BINS` quantile bins first, missing a value of its own), learned on four
folds and read on the fifth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ._metrics import Labels
from ._table import Table

ALL_ROWS = 0.90
RECORDED_ROWS = 0.80
SPARSE = 0.90
BINS = 20
_FOLDS = 5
_MIN_RECORDED = 200  # fewer recorded rows than this: no judgement on them alone


@dataclass(frozen=True, slots=True)
class Suspect:
    column: str
    auc: float  # single-column AUC on all rows
    recorded_auc: float | None  # on the rows where the column is recorded
    recorded_share: float

    def to_json(self) -> dict[str, object]:
        return {
            "column": self.column,
            "auc": round(self.auc, 4),
            "recorded_auc": None if self.recorded_auc is None else round(self.recorded_auc, 4),
            "recorded_share": round(self.recorded_share, 4),
        }


def _values(table: Table, name: str) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
    """Integer value ids of a column (0 = missing) and the mask of recorded rows."""
    column = table.columns[name]
    if column.dtype == np.float64:
        x = column.astype(np.float64)
        recorded = ~np.isnan(x)
        ids = np.zeros(table.rows, dtype=np.intp)
        if recorded.any():
            edges = np.unique(np.quantile(x[recorded], np.linspace(0, 1, BINS + 1)[1:-1]))
            ids[recorded] = 1 + np.searchsorted(edges, x[recorded], side="right")
        return ids, recorded
    import pyarrow as pa

    # Arrow's dictionary encoding numbers the values in C (sorting 200,000
    # strings with numpy took seconds for a table of ten such columns).
    codes = pa.array(column, type=pa.string()).dictionary_encode().indices
    recorded = codes.is_valid().to_numpy(zero_copy_only=False)
    ids = codes.fill_null(-1).to_numpy().astype(np.intp) + 1
    return ids, recorded


def _oof_auc(ids: npt.NDArray[np.intp], y: Labels, seed: int) -> float:
    if y.size < 2 * _FOLDS or y.min() == y.max():
        return 0.5
    fold = np.random.default_rng(seed).integers(0, _FOLDS, size=y.size)
    width = int(ids.max()) + 1
    score = np.empty(y.size)
    prior = float(y.mean())
    for k in range(_FOLDS):
        train = fold != k
        wins = np.bincount(ids[train], weights=y[train], minlength=width)
        seen = np.bincount(ids[train], minlength=width)
        # One pseudo-lead at the base rate: a value seen once is not a verdict.
        rate = (wins + prior) / (seen + 1.0)
        score[~train] = rate[ids[~train]]
    return _tied_auc(y, score)


def _tied_auc(y: Labels, score: npt.NDArray[np.float64]) -> float:
    """ROC AUC of a score with few distinct values (ties count half), from
    the outcome counts per value: the chance that a random converter scores
    above a random non-converter. The same number as `roc_auc`, in a
    fraction of its time on 200,000 rows (no sort of the rows themselves,
    only of the distinct values)."""
    _, value = np.unique(score, return_inverse=True)
    positives = np.bincount(value, weights=y).astype(np.float64)
    negatives = np.bincount(value).astype(np.float64) - positives
    below = np.cumsum(negatives) - negatives  # non-converters strictly below each value
    pairs = positives.sum() * negatives.sum()
    return float((positives * (below + 0.5 * negatives)).sum() / pairs)


def single_column(table: Table, name: str, y: Labels, seed: int = 0) -> Suspect:
    ids, recorded = _values(table, name)
    share = float(recorded.mean()) if recorded.size else 0.0
    auc = _oof_auc(ids, y, seed)
    recorded_auc = None
    if _MIN_RECORDED <= recorded.sum() < recorded.size:
        recorded_auc = _oof_auc(ids[recorded], y[recorded], seed)
    return Suspect(name, auc, recorded_auc, share)


def is_leak(s: Suspect) -> bool:
    return s.auc >= ALL_ROWS or (
        s.recorded_share < SPARSE and s.recorded_auc is not None and s.recorded_auc >= RECORDED_ROWS
    )


# More rows than this estimate a single-column AUC no better (its standard
# error is already about 0.002), so larger tables are judged on a sample.
SAMPLE = 200_000


def suspected_leaks(table: Table, names: list[str], y: Labels) -> list[Suspect]:
    if table.rows > SAMPLE:
        rows = np.sort(np.random.default_rng(0).choice(table.rows, SAMPLE, replace=False))
        table, y = table.take(rows), y[rows]
    found = [s for s in (single_column(table, n, y) for n in names) if is_leak(s)]
    return sorted(found, key=lambda s: -max(s.auc, s.recorded_auc or 0.0))
