"""The two learners, their calibration and their per-lead contributions.

Both predict a log-odds; both explain it as a sum of one contribution per
feature plus a constant, in log-odds, so factors of either read the same:

- Gradient-boosted trees (LightGBM). Its `pred_contrib=True` is TreeSHAP:
  exact Shapley values of each prediction in time linear in the trees'
  size, which is why LightGBM and not scikit-learn's histogram GBM (whose
  contributions need a separate, slower library). Saved as LightGBM's own
  text model, which loads without running code.
- A regularised (L2) logistic regression on the encoder's linear matrix.
  Its contribution of a feature is coefficient x (value - training mean),
  summed over the feature's one-hot columns. Saved as JSON numbers.

Calibration is Platt scaling, p = sigmoid(a * logit + b), fitted on
predictions for rows the learner did not train on: boosting's raw outputs
are often over-confident, and two numbers store and explain easily
(contributions scale by `a`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ._encode import Encoder
from ._table import Floats

# Boosting: a moderate learning rate, small trees and early stopping on a
# slice of the training rows. Leads tables are small and noisy; shallow trees
# with row and column subsampling generalise better there than deep ones.
GBM_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    # Depth bounds TreeSHAP's cost (quadratic in depth per leaf): depth 5
    # explains a lead several times faster than unbounded leaf-wise trees of
    # 15 leaves, for the same held-out AUC on the three data sets.
    "max_depth": 5,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "min_data_per_group": 20,  # categories: fewer rows than this is no evidence
    "cat_smooth": 5.0,
    "cat_l2": 1.0,
    "max_bin": 255,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
}
MAX_ROUNDS = 1000
STOP_AFTER = 50  # rounds without improvement on the early-stopping slice
# On large tables the early-stopping slice holds tens of thousands of leads:
# its AUC is precise enough that 20 rounds without gain mean the end, and
# the 30 more that STOP_AFTER waits cost a fifth of the fit.
LARGE_STOP_AFTER = 20
# The logistic regression's inverse regularisation strength on standardised
# inputs: 1.0 is mild shrinkage that keeps rare one-hot levels from blowing up.
LOGISTIC_C = 1.0
# The strengths validation chooses from (training validates each on its
# early-stopping slice and keeps the best): a few hundred leads of a rare
# outcome over hundreds of one-hot levels want ten times more shrinkage
# than tens of thousands do, and no one constant suits both.
LOGISTIC_CS = (0.1, 0.3, 1.0)
_EPS = 1e-7


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity mask where the platform
    has one (a container or `taskset` limits it below the machine's count),
    else every core. The default of `--threads`.

    No guess from the load average: on a machine shared with other work, one
    thread can beat two (an OpenMP team waits at every histogram for its
    slowest member; docs/benchmarks.md), but whoever runs the training knows
    that and says `--threads 1`; a default that changes with the load makes
    the same command's speed unpredictable."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity on this platform (macOS, Windows)
        return os.cpu_count() or 1


def logit(p: Floats) -> Floats:
    q = np.clip(p, _EPS, 1 - _EPS)
    result: Floats = np.log(q / (1 - q))
    return result


def sigmoid(z: Floats) -> Floats:
    result: Floats = 1.0 / (1.0 + np.exp(-z))
    return result


@dataclass(slots=True)
class Platt:
    a: float = 1.0
    b: float = 0.0

    @classmethod
    def fit(cls, raw: Floats, y: npt.NDArray[np.int8]) -> Platt:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=1e6, max_iter=1000).fit(raw[:, None], y)
        return cls(float(model.coef_[0, 0]), float(model.intercept_[0]))

    def __call__(self, raw: Floats) -> Floats:
        return sigmoid(self.a * raw + self.b)


class Learner:
    kind: str

    def raw(self, encoder: Encoder, matrix: Floats) -> Floats:
        raise NotImplementedError

    def contributions(self, encoder: Encoder, matrix: Floats) -> Floats:
        """rows x (features + 1): per-feature log-odds and the constant last."""
        raise NotImplementedError

    def matrix(self, encoder: Encoder, table: Any) -> Floats:
        raise NotImplementedError

    def score(self, encoder: Encoder, table: Any) -> Floats:
        """raw() of a table's rows."""
        return self.raw(encoder, self.matrix(encoder, table))


class Trees(Learner):
    kind = "gbm"

    def __init__(self, booster: Any) -> None:
        self.booster = booster

    @classmethod
    def fit(
        cls,
        encoder: Encoder,
        x: Floats,
        y: npt.NDArray[np.int8],
        *,
        rounds: int | None = None,
        valid: tuple[Floats, npt.NDArray[np.int8]] | None = None,
        threads: int | None = None,
        seed: int = 0,
        max_rounds: int = MAX_ROUNDS,
        params: dict[str, Any] | None = None,
        stop_after: int = STOP_AFTER,
    ) -> tuple[Trees, int]:
        """Fit with `rounds` rounds, or early-stop on `valid`; returns the rounds
        used. `threads`: LightGBM's, every available CPU when None."""
        import lightgbm as lgb

        params = {
            **GBM_PARAMS,
            **(params or {}),
            "num_threads": threads or available_cpus(),
            "seed": seed,
        }
        train = lgb.Dataset(x, y, categorical_feature=encoder.categorical, free_raw_data=True)
        if rounds is not None:
            booster = lgb.train(params, train, num_boost_round=rounds)
            return cls(booster), rounds
        assert valid is not None
        check = lgb.Dataset(valid[0], valid[1], reference=train)
        booster = lgb.train(
            params,
            train,
            num_boost_round=max_rounds,
            valid_sets=[check],
            callbacks=[lgb.early_stopping(stop_after, verbose=False)],
        )
        best = max(1, booster.best_iteration or max_rounds)
        return cls(booster), best

    def matrix(self, encoder: Encoder, table: Any) -> Floats:
        return encoder.trees(table)

    def raw(self, encoder: Encoder, matrix: Floats) -> Floats:
        result: Floats = self.booster.predict(matrix, raw_score=True)
        return result

    def contributions(self, encoder: Encoder, matrix: Floats) -> Floats:
        result: Floats = self.booster.predict(matrix, pred_contrib=True)
        return result

    def to_text(self) -> str:
        text: str = self.booster.model_to_string()
        return text

    @classmethod
    def from_text(cls, text: str) -> Trees:
        """The trees of LightGBM's text model; ValueError, or LightGBMError,
        when the text is damaged."""
        import lightgbm as lgb

        problem = _layout_problem(text.encode())
        if problem is not None:
            raise ValueError(problem)
        return cls(lgb.Booster(model_str=text))


def _layout_problem(text: bytes) -> str | None:
    """Why a text model is not laid out as LightGBM writes one, or None: a
    header whose tree_sizes give each tree's length in bytes, the trees at
    those lengths, "end of trees", then the parameters up to "end of
    parameters".

    Checked before LightGBM reads the text. LightGBM (4.7) reads each tree
    where the sizes put it without checking that this is inside the text: a
    file cut short in a tree, or within a parameter line, crashed the
    process (an abort or a segmentation fault, memory in its messages). And
    it prints each error it raises to stderr itself ("[LightGBM] [Fatal]
    ...", which the logger of lightgbm.register_logger does not get) before
    leadscore's message. A cut, or an edit that changes a tree's length,
    stops here; an edit that keeps every length can still reach LightGBM's
    own errors.
    """
    header, found, _ = text.partition(b"\nTree=")
    sizes = [line for line in header.split(b"\n") if line.startswith(b"tree_sizes=")]
    if not found:
        return "no tree after the header"
    if len(sizes) != 1:
        return "not one tree_sizes line in the header"
    at = len(header) + 1
    for index, size in enumerate(sizes[0].removeprefix(b"tree_sizes=").split()):
        if not text.startswith(b"Tree=%d\n" % index, at) or not size.isdigit():
            return f"tree {index} is not where the header's tree_sizes put it"
        at += int(size)
        if at > len(text):
            return f"cut short in tree {index}"
    if not text.startswith(b"end of trees\n", at):
        return "no 'end of trees' where the header's tree_sizes end"
    parameters = text.find(b"\nparameters:\n", at)
    if parameters < 0:
        return "no parameters after the trees"
    if text.find(b"\nend of parameters\n", parameters) < 0:
        return "cut short in the parameters: no 'end of parameters'"
    return None


class Logistic(Learner):
    kind = "logistic"

    def __init__(
        self, coef: Floats, intercept: float, means: Floats, c: float = LOGISTIC_C
    ) -> None:
        self.coef = coef
        self.intercept = intercept
        self.means = means  # training means of the linear columns, for contributions
        self.c = c  # the regularisation it was fitted with

    @classmethod
    def fit(cls, x: Any, y: npt.NDArray[np.int8], *, c: float = LOGISTIC_C) -> Logistic:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=c, max_iter=2000).fit(x, y)
        means = np.asarray(x.mean(axis=0), dtype=np.float64).ravel()
        return cls(model.coef_[0].astype(np.float64), float(model.intercept_[0]), means, c)

    def matrix(self, encoder: Encoder, table: Any) -> Any:
        return encoder.linear(table)

    def raw(self, encoder: Encoder, matrix: Any) -> Floats:
        result: Floats = np.asarray(matrix @ self.coef, dtype=np.float64) + self.intercept
        return result

    def score(self, encoder: Encoder, table: Any) -> Floats:
        """raw() without building the matrix: a coefficient times each
        number, and the coefficient of each row's category looked up. The
        same sums (up to rounding), two to three times faster on a million
        rows, which is most of `predict --top 0`'s time."""
        out = np.full(table.rows, self.intercept)
        column = 0
        for k, f in enumerate(encoder.features):
            if f.numeric:
                z, missing = encoder.standardised(table, k)
                out += self.coef[column] * z
                column += 1
                if f.has_missing:
                    out += self.coef[column] * missing
                    column += 1
            else:
                out += self.coef[column + encoder.codes(table, k).astype(np.intp)]
                column += len(f.levels)
        return out

    def contributions(self, encoder: Encoder, matrix: Any) -> Floats:
        from scipy import sparse

        # Column j of the matrix belongs to feature owner[j]: one sparse
        # product sums coefficient x value per feature; the training means
        # move into the constant, so each part reads "against the average lead".
        owners = np.asarray(encoder.linear_owner, dtype=np.intp)
        width = len(encoder.features)
        weights = sparse.csr_matrix(
            (self.coef, (np.arange(owners.size), owners)), shape=(owners.size, width)
        )
        centre = np.asarray(weights.T @ self.means, dtype=np.float64).ravel()
        out = np.empty((matrix.shape[0], width + 1))
        out[:, :-1] = np.asarray((matrix @ weights).todense()) - centre
        out[:, -1] = self.intercept + float(centre.sum())
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "coef": self.coef.tolist(),
            "intercept": self.intercept,
            "means": self.means.tolist(),
            "c": self.c,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Logistic:
        return cls(
            np.asarray(data["coef"], dtype=np.float64),
            float(data["intercept"]),
            np.asarray(data["means"], dtype=np.float64),
            float(data.get("c", LOGISTIC_C)),  # models saved before the choice: the default
        )
