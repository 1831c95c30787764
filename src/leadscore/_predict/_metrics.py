"""How well predicted probabilities rank and fit the outcomes: plain data."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from ._table import Floats

Labels = npt.NDArray[np.int8]
_EPS = 1e-15


def ranked(y: Labels, score: Floats) -> Labels:
    """Outcomes ordered from the highest score down (ties keep the input order)."""
    order = np.argsort(-score, kind="stable")
    result: Labels = y[order]
    return result


def roc_auc(y: Labels, score: Floats) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def deciles(y: Labels, score: Floats) -> list[dict[str, Any]]:
    """Ten groups of (nearly) equal size from the highest score down, with lift."""
    base = float(y.mean())
    out = []
    for number, group in enumerate(np.array_split(ranked(y, score), 10), start=1):
        rate = float(group.mean()) if group.size else 0.0
        out.append(
            {
                "decile": number,
                "leads": int(group.size),
                "conversions": int(group.sum()),
                "rate": round(rate, 4),
                "lift": round(rate / base, 3) if base else 0.0,
            }
        )
    return out


def capture(y: Labels, score: Floats, share: float) -> float:
    """Share of all conversions found in the top `share` of leads by score."""
    top = ranked(y, score)[: round(share * y.size)]
    total = int(y.sum())
    return float(top.sum() / total) if total else 0.0


def pareto(y: Labels, score: Floats, steps: int = 20) -> list[dict[str, float]]:
    """The share of conversions from the top x% of leads, x in 100/steps % steps."""
    return [
        {
            "top_share": round(k / steps, 4),
            "conversions_share": round(capture(y, score, k / steps), 4),
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
