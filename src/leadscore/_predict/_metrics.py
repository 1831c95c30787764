"""How well predicted probabilities rank and fit the outcomes: plain data."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._table import Floats

Labels = npt.NDArray[np.int8]
_EPS = 1e-15


def roc_auc(y: Labels, score: Floats) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def deciles(y: Labels, score: Floats) -> list[dict[str, Any]]:
    """Ten groups of (nearly) equal size from the highest score down, with lift.

    A decile boundary inside a group of equal scores splits the group's
    conversions by its share, as `capture` does: taken in input order, a
    file sorted by outcome would show a perfect top decile for a model that
    ranks nothing. A decile's conversions may so be a fraction."""
    base = float(y.mean())
    leads, wins = _tied(y, score)
    sizes = [part.size for part in np.array_split(np.arange(y.size), 10)]
    ends = np.cumsum(sizes)
    found = [_top_conversions(leads, wins, int(end)) for end in ends]
    out = []
    for number, (size, total, before) in enumerate(
        zip(sizes, found, [0.0, *found[:-1]], strict=True), start=1
    ):
        rate = (total - before) / size if size else 0.0
        conversions = round(total - before, 2)
        out.append(
            {
                "decile": number,
                "leads": int(size),
                # An integer when no tie is split (trained models' probabilities).
                "conversions": int(conversions) if conversions.is_integer() else conversions,
                "rate": round(rate, 4),
                "lift": round(rate / base, 3) if base else 0.0,
            }
        )
    return out


def _tied(y: Labels, score: Floats) -> tuple[Floats, Floats]:
    """Leads and conversions per distinct score, highest score first."""
    _, group = np.unique(-score, return_inverse=True)
    leads = np.bincount(group).astype(np.float64)
    return leads, np.bincount(group, weights=y).astype(np.float64)


def _top_conversions(leads: Floats, wins: Floats, top: int) -> float:
    """Conversions among the `top` best-scored leads. Where the cut falls
    inside a group of equal scores, the group gives its share: what a random
    order of the tied leads gives on average. A rule model's scores tie a
    lot (every lead without an award scores 0), and taking tied leads in
    the input's order would make the figure depend on how the file is
    sorted (a file sorted by outcome would give a perfect capture)."""
    before = np.cumsum(leads) - leads
    taken = np.clip(top - before, 0.0, leads)
    return float((wins * taken / leads).sum())


def capture(y: Labels, score: Floats, share: float) -> float:
    """Share of all conversions found in the top `share` of leads by score."""
    total = int(y.sum())
    if not total:
        return 0.0
    return _top_conversions(*_tied(y, score), round(share * y.size)) / total


def pareto(y: Labels, score: Floats, steps: int = 20) -> list[dict[str, float]]:
    """The share of conversions from the top x% of leads, x in 100/steps % steps."""
    leads, wins = _tied(y, score)
    total = float(y.sum())
    return [
        {
            "top_share": round(k / steps, 4),
            "conversions_share": round(
                _top_conversions(leads, wins, round(k / steps * y.size)) / total if total else 0.0,
                4,
            ),
        }
        for k in range(0, steps + 1)
    ]


def probability_report(y: Labels, p: Floats) -> dict[str, Any]:
    """The held-out report of calibrated probabilities."""
    from sklearn.metrics import average_precision_score

    q = np.clip(p, _EPS, 1 - _EPS)
    return {
        "rows": int(y.size),
        "roc_auc": round(roc_auc(y, p), 4),
        "pr_auc": round(float(average_precision_score(y, p)), 4),
        "brier": round(float(np.mean((p - y) ** 2)), 4),
        "log_loss": round(float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))), 4),
        "base_rate": round(float(y.mean()), 4),
        "deciles": deciles(y, p),
        "capture_top_20pct": round(capture(y, p, 0.2), 4),
        "pareto": pareto(y, p),
    }
