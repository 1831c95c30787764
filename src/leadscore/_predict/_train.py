"""Training: choose features, validate both learners, pick one, calibrate, refit.

Validation is what the report shows and what picks the learner:

- a table without time: stratified 5-fold cross-validation. Every row is
  predicted once by models that never saw it; the report is about those
  predictions. Above `HOLDOUT_ABOVE` rows, five fits would cost minutes and
  one split is already precise: a stratified 80/20 hold-out, and the models
  fitted for it are the ones kept (no refit), with boosting at twice the
  learning rate on half the rows per tree (`LARGE_PARAMS`), on a stratified
  sample of at most `TREE_ROWS` of the training rows (the logistic
  regression on at most `LINEAR_ROWS`). The hold-out itself is every
  remaining row, so the report stays as precise as the table allows.
- event logs and tables split in time: the rows before the split train, the
  rest test. Inside the training rows, rolling-origin folds in time (fit on
  what came before a slice, validate on the slice: the latest fifth, the
  fifth before it and the one before that) choose the logistic
  regression's C and the learner by their mean ROC AUC; the latest fold
  early-stops the trees and fits the calibration. The test rows are used
  for nothing but the report.

The learner with the higher validation ROC AUC wins and is refitted on all
training rows (the trees with the number of rounds early stopping chose).
Choosing the better of two on the same folds makes the reported AUC
optimistic by a hair; both are reported.
"""

from __future__ import annotations

import hashlib
import json
import math
import platform
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._errors import InputError
from ._encode import Encoder
from ._leaks import Suspect, suspected_leaks
from ._learners import (
    LARGE_STOP_AFTER,
    LOGISTIC_C,
    LOGISTIC_CS,
    STOP_AFTER,
    Learner,
    Logistic,
    Platt,
    Trees,
    available_cpus,
)
from ._metrics import Labels, probability_report, roc_auc
from ._table import Floats, Table

HOLDOUT_ABOVE = 100_000
# Large tables: at 100,000+ rows a tree on half of them is as good as on all,
# and a doubled learning rate halves the rounds, for a loss of AUC in the
# third decimal on the generated benchmark table.
LARGE_PARAMS = {"learning_rate": 0.1, "bagging_fraction": 0.5}
# The logistic regression's coefficients are settled long before this many
# rows; above it, it trains on a random sample (the trees use every row).
LINEAR_ROWS = 200_000
# The trees' rows on large tables. Boosting's cost is linear in rows, and a
# million-row table would spend a minute of two cores on it; 250,000 rows
# (200,000 to fit, 50,000 to early-stop) cost the trees 0.002 of held-out
# AUC on the generated million-row benchmark table and halve training's
# CPU time (docs/benchmarks.md): a sample that size holds every pattern a
# lead table has many times over.
TREE_ROWS = 250_000
_INNER_SHARE = 0.2  # the early-stopping / calibration slice of the training rows
# Splits in time: rolling-origin folds inside the training period (each
# validating on the next fifth), which choose the learner and C.
TIME_FOLDS = 3
FORMAT = "leadscore-predictive-model"
FORMAT_VERSION = 1


@dataclass(slots=True)
class Options:
    rounds: int | None = None  # fixed boosting rounds instead of early stopping
    folds: int = 5
    seed: int = 0
    # LightGBM's threads (`--threads`): by default every CPU the process may use.
    threads: int = field(default_factory=available_cpus)
    max_rounds: int = 1000
    large: bool = False  # set for hold-out validation of large tables: LARGE_PARAMS


def stratified_sample(
    rows: npt.NDArray[np.intp], y: Labels, size: int, seed: int
) -> npt.NDArray[np.intp]:
    """At most `size` of `rows`, keeping the share of each outcome; sorted."""
    if rows.size <= size:
        return rows
    from sklearn.model_selection import train_test_split

    kept, _ = train_test_split(rows, train_size=size, stratify=y[rows], random_state=seed)
    return np.sort(kept)


def stratified_folds(y: Labels, folds: int, seed: int) -> list[npt.NDArray[np.intp]]:
    """Test indexes of each fold; stratified; a hold-out of 20% above HOLDOUT_ABOVE rows."""
    from sklearn.model_selection import StratifiedKFold, train_test_split

    index = np.arange(y.size)
    if y.size > HOLDOUT_ABOVE:
        _, test = train_test_split(index, test_size=0.2, stratify=y, random_state=seed)
        return [np.sort(test)]
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return [test for _, test in splitter.split(index, y)]


@dataclass(slots=True)
class Selection:
    names: list[str]
    excluded: dict[str, str] = field(default_factory=dict)  # column -> why
    suspects: list[Suspect] = field(default_factory=list)


def select_features(
    table: Table,
    y: Labels,
    *,
    candidates: list[str],
    exclude: tuple[str, ...] = (),
    keep: tuple[str, ...] = (),
) -> Selection:
    """Every candidate column but the excluded, the identifiers, the constant
    ones and the suspected leaks (unless kept)."""
    for name in (*exclude, *keep):
        if name not in table.columns and name not in table.dates:
            raise InputError(f"column {name!r} (given to --exclude/--keep) is not in the table")
    chosen = Selection([])
    for name in candidates:
        column = table.columns[name]
        if name in exclude:
            chosen.excluded[name] = "excluded (--exclude)"
            continue
        if column.dtype == np.float64:
            x = column.astype(np.float64)
            recorded_x = x[~np.isnan(x)]
            # Only "constant or not" matters for numbers: min and max, not a sort.
            distinct = 0 if recorded_x.size == 0 else 1 + int(recorded_x.min() < recorded_x.max())
        else:
            recorded = [v for v in column if v is not None]
            distinct = len(set(recorded))
            if distinct == len(recorded) and distinct > 0.5 * table.rows and name not in keep:
                chosen.excluded[name] = "an identifier (every value distinct)"
                continue
        if distinct <= 1 and name not in keep:
            chosen.excluded[name] = "constant"
            continue
        chosen.names.append(name)
    chosen.suspects = suspected_leaks(table, chosen.names, y)
    for suspect in chosen.suspects:
        if suspect.column not in keep:
            chosen.names.remove(suspect.column)
            chosen.excluded[suspect.column] = "suspected leak (--keep to use it)"
    if not chosen.names:
        raise InputError("no feature columns are left to learn from")
    return chosen


def _fit_learner(
    kind: str,
    encoder: Encoder,
    table: Table,
    y: Labels,
    *,
    rows: npt.NDArray[np.intp],
    options: Options,
    rounds: int | None = None,
    stop_rows: npt.NDArray[np.intp] | None = None,
    c: float = LOGISTIC_C,
) -> tuple[Learner, int]:
    """Fit one learner on `rows`; trees early-stop on `stop_rows` unless rounds are fixed."""
    if kind == "gbm":
        part = table.take(rows)
        fixed = rounds if rounds is not None else options.rounds
        valid = None
        if fixed is None:
            assert stop_rows is not None
            valid = (encoder.trees(table.take(stop_rows)), y[stop_rows])
        return Trees.fit(
            encoder,
            encoder.trees(part),
            y[rows],
            rounds=fixed,
            valid=valid,
            threads=options.threads,
            seed=options.seed,
            max_rounds=options.max_rounds,
            params=LARGE_PARAMS if options.large else None,
            stop_after=LARGE_STOP_AFTER if options.large else STOP_AFTER,
        )
    if rows.size > LINEAR_ROWS:
        sample = np.sort(
            np.random.default_rng(options.seed).choice(rows.size, LINEAR_ROWS, replace=False)
        )
        rows = rows[sample]
    return Logistic.fit(encoder.linear(table.take(rows)), y[rows], c=c), 0


def _stop_split(
    rows: npt.NDArray[np.intp], y: Labels, times: Floats | None, seed: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Split training rows into (fit, early-stopping slice): the latest fifth
    by time when there is time, else a stratified random fifth."""
    if times is not None:
        order = rows[np.argsort(times[rows], kind="stable")]
        cut = round(order.size * (1 - _INNER_SHARE))
        return np.sort(order[:cut]), np.sort(order[cut:])
    from sklearn.model_selection import train_test_split

    fit, stop = train_test_split(rows, test_size=_INNER_SHARE, stratify=y[rows], random_state=seed)
    return np.sort(fit), np.sort(stop)


KINDS = ("gbm", "logistic")


def _choose_c(
    table: Table,
    names: list[str],
    y: Labels,
    fit_rows: npt.NDArray[np.intp],
    stop_rows: npt.NDArray[np.intp],
) -> float:
    """The logistic regression's regularisation (of LOGISTIC_CS) with the best
    ROC AUC on the early-stopping slice, fitted on the rest; ties keep the
    weaker shrinkage."""
    if y[stop_rows].min() == y[stop_rows].max() or y[fit_rows].min() == y[fit_rows].max():
        return LOGISTIC_C
    encoder = Encoder.fit(table, names, fit_rows)
    x_fit, x_stop = encoder.linear(table.take(fit_rows)), encoder.linear(table.take(stop_rows))

    def score(c: float) -> tuple[float, float]:
        learner = Logistic.fit(x_fit, y[fit_rows], c=c)
        return roc_auc(y[stop_rows], learner.raw(encoder, x_stop)), c

    return max(LOGISTIC_CS, key=score)


def _predict_rows(
    kind: str,
    table: Table,
    names: list[str],
    y: Labels,
    *,
    train: npt.NDArray[np.intp],
    test: npt.NDArray[np.intp],
    options: Options,
    times: Floats | None,
) -> tuple[Floats, int, Encoder, Learner]:
    """Raw predictions for `test` of `kind` fitted on `train` (trees early-stopped inside it)."""
    if options.large:
        # Sampled before anything is fitted: the encoder's percentiles and
        # category counts on a million rows cost seconds and say no more.
        train = stratified_sample(
            train, y, TREE_ROWS if kind == "gbm" else LINEAR_ROWS, options.seed
        )
    fit_rows, stop_rows = _stop_split(train, y, times, options.seed)
    encoder = Encoder.fit(table, names, fit_rows if kind == "gbm" else train)
    rows = fit_rows if kind == "gbm" and options.rounds is None else train
    # Large tables: 200,000 rows settle the coefficients whatever the
    # regularisation, and three more fits would cost seconds for nothing.
    c = (
        _choose_c(table, names, y, fit_rows, stop_rows)
        if kind == "logistic" and not options.large
        else LOGISTIC_C
    )
    learner, used = _fit_learner(
        kind, encoder, table, y, rows=rows, options=options, stop_rows=stop_rows, c=c
    )
    return learner.raw(encoder, learner.matrix(encoder, table.take(test))), used, encoder, learner


@dataclass(slots=True)
class Validation:
    protocol: str
    raw: dict[str, Floats]  # kind -> raw predictions of the evaluated rows
    rows: npt.NDArray[np.intp]  # the evaluated rows, in the order of `raw`
    rounds: list[int]
    cs: list[float]  # the logistic regression's chosen regularisation, per fit
    fitted: dict[str, tuple[Encoder, Learner]] = field(default_factory=dict)  # hold-out: kept
    calibration_raw: dict[str, Floats] | None = None  # time split: the latest fold's
    calibration_rows: npt.NDArray[np.intp] | None = None
    choice: dict[str, float] | None = None  # time split: kind -> the folds' mean ROC AUC


def cross_validate(table: Table, names: list[str], y: Labels, options: Options) -> Validation:
    fewest = int(min(y.sum(), y.size - y.sum()))
    if fewest < options.folds:
        raise InputError(
            f"only {fewest} lead{'s' if fewest != 1 else ''} of one outcome: "
            f"{options.folds}-fold validation needs at least {options.folds}"
        )
    folds = stratified_folds(y, options.folds, options.seed)
    everything = np.arange(y.size)
    raw = {kind: np.zeros(y.size) for kind in KINDS}
    rounds = []
    cs: list[float] = []
    fitted: dict[str, tuple[Encoder, Learner]] = {}
    if len(folds) == 1:
        options = replace(options, large=True)
    for test in folds:
        train = np.setdiff1d(everything, test)
        for kind in KINDS:
            raw[kind][test], used, encoder, learner = _predict_rows(
                kind, table, names, y, train=train, test=test, options=options, times=None
            )
            if kind == "gbm":
                rounds.append(used)
            if isinstance(learner, Logistic):
                cs.append(learner.c)
            if len(folds) == 1:
                fitted[kind] = (encoder, learner)
    evaluated = np.sort(np.concatenate(folds))
    protocol = (
        f"stratified {options.folds}-fold cross-validation"
        if len(folds) > 1
        else "stratified 80/20 hold-out"
    )
    return Validation(
        protocol, {k: v[evaluated] for k, v in raw.items()}, evaluated, rounds, cs, fitted
    )


def _time_folds(
    train: npt.NDArray[np.intp], y: Labels, times: Floats
) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]]:
    """Rolling-origin folds inside the training rows, latest first: fit on
    every row before a slice of `_INNER_SHARE` of them, validate on the
    slice; slices end at the training period's end, then one share earlier,
    and so on (`TIME_FOLDS` of them). Folds that leave one side without both
    outcomes are skipped; the latest is kept unless it is one of those."""
    order = train[np.argsort(times[train], kind="stable")]
    width = round(order.size * _INNER_SHARE)
    folds = []
    for k in range(TIME_FOLDS):
        end = order.size - k * width
        start = end - width
        if start <= 0:
            break
        fit_rows, valid = np.sort(order[:start]), np.sort(order[start:end])
        if y[fit_rows].min() != y[fit_rows].max() and y[valid].min() != y[valid].max():
            folds.append((fit_rows, valid))
        elif k == 0:
            break
    return folds


def time_validate(
    table: Table,
    names: list[str],
    y: Labels,
    *,
    times: Floats,
    split_at: float,
    options: Options,
) -> Validation:
    """Both learners chosen and tuned on rolling-origin folds of the training
    period only (`_time_folds`), refitted on all of it, scored on the test
    period.

    The folds' mean ROC AUC chooses the logistic regression's C (of
    LOGISTIC_CS) and then the learner: one slice of a few hundred leads has
    a standard error of 0.02-0.03 in AUC, as large as the differences it is
    asked to judge, and three slices cut it by up to the square root of 3.
    The mean of per-fold AUCs, not the AUC of the pooled predictions: the
    base rate may drift between slices, and pooling would reward a learner
    for ranking the slices, not the leads within one. The latest fold alone
    early-stops the trees (the rounds of the fit closest in size to the
    final one) and fits the calibration (the base rate nearest the future)."""
    train = np.flatnonzero(times < split_at)
    test = np.flatnonzero(times >= split_at)
    for part, label in ((train, "before"), (test, "from")):
        if part.size == 0 or y[part].min() == y[part].max():
            raise InputError(
                f"the time split leaves no rows of both outcomes {label} the split point; "
                "choose another --split-at"
            )
    folds = _time_folds(train, y, times)
    if not folds:
        raise InputError(
            "the latest fifth of the training period, or the rows before it, "
            "hold one outcome only: nothing to validate on; choose another --split-at"
        )
    inner: dict[str, list[Floats]] = {kind: [] for kind in KINDS}
    rounds = []
    for fit_rows, valid in folds:
        raw_fold, used, _, _ = _predict_rows(
            "gbm", table, names, y, train=fit_rows, test=valid, options=options, times=times
        )
        inner["gbm"].append(raw_fold)
        rounds.append(used)
    by_c: dict[float, list[Floats]] = {c: [] for c in LOGISTIC_CS}
    for fit_rows, valid in folds:
        encoder = Encoder.fit(table, names, fit_rows)
        x_fit, x_valid = encoder.linear(table.take(fit_rows)), encoder.linear(table.take(valid))
        for c in LOGISTIC_CS:
            logistic = Logistic.fit(x_fit, y[fit_rows], c=c)
            by_c[c].append(logistic.raw(encoder, x_valid))

    def mean_auc(raws: list[Floats]) -> float:
        return float(np.mean([roc_auc(y[v], r) for (_, v), r in zip(folds, raws, strict=True)]))

    # Ties keep the weaker shrinkage.
    c = max(LOGISTIC_CS, key=lambda v: (mean_auc(by_c[v]), v))
    inner["logistic"] = by_c[c]
    raw: dict[str, Floats] = {}
    for kind in KINDS:
        encoder = Encoder.fit(table, names, train)
        learner, _ = _fit_learner(
            kind, encoder, table, y, rows=train, options=options, rounds=rounds[0] or None, c=c
        )
        raw[kind] = learner.raw(encoder, learner.matrix(encoder, table.take(test)))
    return Validation(
        "time split",
        raw,
        test,
        rounds[:1],
        [c],
        {},
        {kind: inner[kind][0] for kind in KINDS},
        folds[0][1],
        {kind: mean_auc(inner[kind]) for kind in KINDS},
    )


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("leadscore", "lightgbm", "scikit-learn", "numpy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


class TrainedModel:
    """A calibrated learner with its encoder, report and provenance."""

    def __init__(self, encoder: Encoder, learner: Learner, platt: Platt, meta: dict[str, Any]):
        self.encoder = encoder
        self.learner = learner
        self.platt = platt
        self.meta = meta

    @property
    def report(self) -> dict[str, Any]:
        result: dict[str, Any] = self.meta["report"]
        return result

    def probabilities(self, table: Table) -> Floats:
        return self.platt(self.learner.score(self.encoder, self.encoder.conform(table)))

    def contributions(self, table: Table) -> Floats:
        """rows x (features + 1), in calibrated log-odds (Platt's slope applied)."""
        table = self.encoder.conform(table)
        parts = self.learner.contributions(self.encoder, self.learner.matrix(self.encoder, table))
        parts = parts * self.platt.a
        parts[:, -1] += self.platt.b
        return parts

    def factors(self, table: Table, top: int = 3) -> list[dict[str, Any]]:
        """Per row: probability and the `top` features raising and lowering it most.

        With `top` 0, probabilities only: per-lead contributions (TreeSHAP)
        cost far more than a prediction."""
        if top == 0:
            return [{"probability": float(p)} for p in self.probabilities(table)]
        table = self.encoder.conform(table)  # and so the values the factors show
        parts = self.contributions(table)
        probability = 1.0 / (1.0 + np.exp(-parts.sum(axis=1)))
        effects = parts[:, :-1]
        order = np.argsort(-effects, axis=1, kind="stable")
        names = self.encoder.names
        out = []
        for row in range(table.rows):
            ranked = order[row]
            up = [k for k in ranked[:top] if effects[row, k] > 0]
            down = [k for k in ranked[::-1][:top] if effects[row, k] < 0]
            out.append(
                {
                    "probability": float(probability[row]),
                    "raising": [self._factor(table, names, row, k, effects) for k in up],
                    "lowering": [self._factor(table, names, row, k, effects) for k in down],
                }
            )
        return out

    def _factor(
        self, table: Table, names: list[str], row: int, k: int, effects: Floats
    ) -> dict[str, Any]:
        return {
            "feature": names[k],
            "value": self.encoder.describe(table, int(k), row),
            "effect": round(float(effects[row, k]), 4),
        }

    def save(self, directory: str | Path) -> None:
        """A directory: model.json (everything but trees) and trees.txt (LightGBM's text format)."""
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        learner: dict[str, Any] = {"kind": self.learner.kind}
        if isinstance(self.learner, Trees):
            text = self.learner.to_text()
            (folder / "trees.txt").write_text(text)
            learner["file"] = "trees.txt"
            # LightGBM trusts its text: an edit that keeps every length the
            # layout check reads (a digit changed) can still crash it. The
            # digest catches any change; models saved before it have none.
            learner["sha256"] = _digest(text)
        elif isinstance(self.learner, Logistic):
            learner |= self.learner.to_json()
        document = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            **self.meta,
            "encoder": self.encoder.to_json(),
            "learner": learner,
            "calibration": {"method": "platt", "a": self.platt.a, "b": self.platt.b},
        }
        (folder / "model.json").write_text(json.dumps(document, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> TrainedModel:
        folder = Path(directory)
        path = folder / "model.json"
        try:
            document = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"{folder}: not a trained model directory (no model.json)") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: cannot read it: {exc}") from None
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise InputError(f"{path}: not a leadscore predictive model")
        version = document.get("format_version")
        if version != FORMAT_VERSION:
            raise InputError(
                f"{path}: format_version {version!r}, but this leadscore reads version "
                f"{FORMAT_VERSION}: train the model again with this version"
            )
        try:
            spec = document.pop("learner")
            learner: Learner
            encoder = Encoder.from_json(document.pop("encoder"))
            if spec["kind"] == "gbm":
                from lightgbm.basic import LightGBMError

                trees = folder / spec["file"]
                try:
                    text = trees.read_text()
                    recorded = spec.get("sha256")  # None: saved before digests
                    if recorded is not None and recorded != _digest(text):
                        raise ValueError(
                            "not the file trained: its SHA-256 differs from model.json's"
                        )
                    learner = Trees.from_text(text)
                except OSError as exc:
                    raise InputError(f"{trees}: cannot read the trees: {exc.strerror}") from None
                except (LightGBMError, ValueError) as exc:  # cut short or edited: no traceback
                    raise InputError(f"{trees}: damaged trees ({exc})") from None
            elif spec["kind"] == "logistic":
                learner = Logistic.from_json(spec)
            else:
                raise ValueError(f"learner kind {spec['kind']!r}, expected 'gbm' or 'logistic'")
            calibration = document.pop("calibration")
            platt = Platt(float(calibration["a"]), float(calibration["b"]))
            _check_loaded(encoder, learner, platt, document)
        except (KeyError, TypeError, ValueError) as exc:
            # A file edited by hand or cut short: say so, not a traceback.
            raise InputError(
                f"{path}: a damaged model file ({type(exc).__name__}: {exc})"
            ) from None
        return cls(encoder, learner, platt, document)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _check_loaded(encoder: Encoder, learner: Learner, platt: Platt, meta: dict[str, Any]) -> None:
    """ValueError when a loaded model's parts do not fit together. A
    model.json edited by hand (a feature removed, a coefficient more, a
    category that is a number, `source` null) loaded and then failed in
    scipy, LightGBM or the command as a traceback, or scored NaN for every
    lead (a calibration of NaN)."""
    if not encoder.features:
        raise ValueError("the encoder has no feature")
    for f in encoder.features:
        if not isinstance(f.name, str) or not all(isinstance(v, str) for v in f.values):
            raise ValueError(f"feature {f.name!r}: expected a text name and text categories")
        if f.numeric and not all(map(math.isfinite, (f.low, f.high, f.mean, f.sd))):
            raise ValueError(f"feature {f.name!r}: expected finite numbers")
    if isinstance(learner, Logistic):
        width = len(encoder.linear_owner)
        for what, values in (("coef", learner.coef), ("means", learner.means)):
            if values.shape != (width,) or not np.isfinite(values).all():
                raise ValueError(
                    f"learner {what}: expected {width} finite numbers (one per column of "
                    "the encoder's features)"
                )
        if not math.isfinite(learner.intercept):
            raise ValueError("learner intercept: expected a finite number")
    elif isinstance(learner, Trees) and learner.booster.num_feature() != len(encoder.features):
        raise ValueError(
            f"the trees read {learner.booster.num_feature()} features, the encoder has "
            f"{len(encoder.features)}"
        )
    if not (math.isfinite(platt.a) and math.isfinite(platt.b)):
        raise ValueError("calibration: expected finite numbers a and b")
    source = meta.get("source", {})
    if not isinstance(source, dict) or not isinstance(source.get("id"), str | None):
        raise ValueError("source: expected an object whose id is a column name or null")


def _importance(model: TrainedModel, table: Table, seed: int) -> list[dict[str, Any]]:
    """Mean |contribution| per feature (log-odds) on up to 2,000 training rows."""
    rows = np.arange(table.rows)
    if rows.size > 2000:
        rows = np.sort(np.random.default_rng(seed).choice(rows, 2000, replace=False))
    parts = np.abs(model.contributions(table.take(rows))[:, :-1]).mean(axis=0)
    order = np.argsort(-parts, kind="stable")
    return [
        {"feature": model.encoder.names[k], "importance": round(float(parts[k]), 4)} for k in order
    ]


def fit(
    table: Table,
    y: Labels,
    selection: Selection,
    options: Options,
    *,
    times: Floats | None = None,
    split_at: float | None = None,
    source: dict[str, Any] | None = None,
) -> TrainedModel:
    """Validate both learners, keep the better, calibrate it and refit it on the training rows."""
    names = selection.names
    if times is not None and split_at is not None:
        check = time_validate(table, names, y, times=times, split_at=split_at, options=options)
        train_rows = np.flatnonzero(times < split_at)
        assert check.choice is not None
        choice = check.choice
    else:
        check = cross_validate(table, names, y, options)
        train_rows = np.arange(y.size)
        choice = {k: roc_auc(y[check.rows], v) for k, v in check.raw.items()}
    kind = max(KINDS, key=lambda k: (choice[k], k == "gbm"))
    if check.calibration_raw is not None and check.calibration_rows is not None:
        platt = Platt.fit(check.calibration_raw[kind], y[check.calibration_rows])
    else:
        platt = Platt.fit(check.raw[kind], y[check.rows])
    held_out = {k: round(roc_auc(y[check.rows], v), 4) for k, v in check.raw.items()}
    report = probability_report(y[check.rows], platt(check.raw[kind]))
    rounds = int(np.median(check.rounds)) if check.rounds else None
    # The regularisation most folds chose (ties: the weaker shrinkage).
    c = max(check.cs, key=lambda v: (check.cs.count(v), v)) if check.cs else LOGISTIC_C
    if kind in check.fitted:
        encoder, learner = check.fitted[kind]
    else:
        encoder = Encoder.fit(table, names, train_rows)
        learner, _ = _fit_learner(
            kind, encoder, table, y, rows=train_rows, options=options, rounds=rounds, c=c
        )
    model = TrainedModel(encoder, learner, platt, {})
    report = {
        "model": kind,
        "validation": check.protocol,
        "candidates": held_out,
        "chosen_by": {k: round(v, 4) for k, v in choice.items()},
        "boosting_rounds": rounds,
        "logistic_c": c,
        **report,
        "features": _importance(model, table.take(train_rows), options.seed),
        "suspected_leaks": [s.to_json() for s in selection.suspects],
        "excluded": selection.excluded,
    }
    model.meta = {
        "features": names,
        "report": report,
        "training_data": {
            "fingerprint": table.fingerprint,
            "rows": int(y.size),
            "positives": int(y.sum()),
        },
        "source": source or {},
        "versions": _versions(),
    }
    return model
