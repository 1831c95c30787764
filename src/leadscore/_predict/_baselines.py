"""The two baselines every training run is measured against, under its protocol.

- A plain logistic regression on one-hot columns: categories one-hot
  (missing a category of its own), numbers median-imputed and standardised
  (lbfgs does not converge on raw scales), scikit-learn's default C = 1.
- The naive Bayes frequency method of Odoo's predictive lead scoring,
  written from its published description: for each field value, the
  frequency of won and of lost leads that had it, each count plus 0.1; a
  lead's probability is P(won) x the product of its values' won
  frequencies, against the same for lost. Values not seen in training, and
  empty fields, count for nothing, as in Odoo. Numbers (Odoo scores
  selection fields) are cut into training deciles.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._metrics import Labels
from ._table import Floats, Table

_SMOOTHING = 0.1  # Odoo's published additive constant
_DECILES = np.linspace(0.1, 0.9, 9)


def plain_logistic(
    table: Table,
    names: list[str],
    y: Labels,
    train: npt.NDArray[np.intp],
    test: npt.NDArray[np.intp],
) -> Floats:
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    # Sparse: one-hot columns are mostly zeros, and sparse products use no
    # BLAS threads (which, on a busy machine, cost more than they bring).
    blocks_train: list[Any] = []
    blocks_test: list[Any] = []
    texts = [n for n in names if not table.is_numeric(n)]
    if texts:
        raw = np.column_stack(
            [["(missing)" if v is None else str(v) for v in table.columns[n]] for n in texts]
        )
        onehot = OneHotEncoder(handle_unknown="ignore").fit(raw[train])
        blocks_train.append(onehot.transform(raw[train]))
        blocks_test.append(onehot.transform(raw[test]))
    for n in names:
        if table.is_numeric(n):
            x = table.columns[n].astype(np.float64)
            median = float(np.nanmedian(x[train])) if (~np.isnan(x[train])).any() else 0.0
            x = np.where(np.isnan(x), median, x)
            mean, sd = float(x[train].mean()), float(x[train].std()) or 1.0
            blocks_train.append(sparse.csr_matrix(((x[train] - mean) / sd)[:, None]))
            blocks_test.append(sparse.csr_matrix(((x[test] - mean) / sd)[:, None]))
    fitted = LogisticRegression(max_iter=2000).fit(
        sparse.hstack(blocks_train, format="csr"), y[train]
    )
    result: Floats = fitted.predict_proba(sparse.hstack(blocks_test, format="csr"))[:, 1]
    return result


def _value_ids(table: Table, name: str, train: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """Value ids, -1 for an empty field."""
    column = table.columns[name]
    if column.dtype == np.float64:
        x = column.astype(np.float64)
        seen = x[train][~np.isnan(x[train])]
        edges = np.unique(np.quantile(seen, _DECILES)) if seen.size else np.zeros(0)
        ids = np.searchsorted(edges, np.nan_to_num(x), side="right").astype(np.intp)
        ids[np.isnan(x)] = -1
        return ids
    recorded = np.array([v is not None for v in column], dtype=bool)
    _, inverse = np.unique(np.where(recorded, column, "").astype(str), return_inverse=True)
    return np.where(recorded, inverse, -1).astype(np.intp)


def odoo_naive_bayes(
    table: Table,
    names: list[str],
    y: Labels,
    train: npt.NDArray[np.intp],
    test: npt.NDArray[np.intp],
) -> Floats:
    won_total = float(y[train].sum())
    lost_total = float(train.size - won_total)
    log_won = np.full(test.size, np.log(won_total / train.size))
    log_lost = np.full(test.size, np.log(lost_total / train.size))
    for name in names:
        ids = _value_ids(table, name, train)
        width = int(ids.max()) + 2
        ytrain, itrain = y[train], ids[train]
        present = itrain >= 0
        won = np.bincount(itrain[present], weights=ytrain[present], minlength=width)
        seen = np.bincount(itrain[present], minlength=width).astype(np.float64)
        lost = seen - won
        itest = ids[test]
        known = (itest >= 0) & (seen[np.maximum(itest, 0)] > 0)
        value = np.maximum(itest, 0)
        log_won += np.where(
            known, np.log((won[value] + _SMOOTHING) / (won_total + _SMOOTHING)), 0.0
        )
        log_lost += np.where(
            known, np.log((lost[value] + _SMOOTHING) / (lost_total + _SMOOTHING)), 0.0
        )
    result: Floats = 1.0 / (1.0 + np.exp(log_lost - log_won))
    return result


BASELINES = {"plain logistic": plain_logistic, "Odoo naive Bayes": odoo_naive_bayes}


def baseline_aucs(
    table: Table,
    y: Labels,
    names: list[str],
    *,
    folds: list[npt.NDArray[np.intp]] | None = None,
    times: Floats | None = None,
    split_at: float | None = None,
) -> dict[str, float]:
    """Held-out ROC AUC of each baseline under the training run's protocol:
    the same folds (out-of-fold predictions of every row), or the same split in time."""
    from ._metrics import roc_auc

    everything = np.arange(y.size)
    if times is not None and split_at is not None:
        splits = [(np.flatnonzero(times < split_at), np.flatnonzero(times >= split_at))]
    else:
        assert folds is not None
        splits = [(np.setdiff1d(everything, test), test) for test in folds]
    out = {}
    for name, method in BASELINES.items():
        predicted = np.full(y.size, np.nan)
        for train, test in splits:
            predicted[test] = method(table, names, y, train, test)
        held = ~np.isnan(predicted)
        out[name] = round(roc_auc(y[held], predicted[held]), 4)
    return out
