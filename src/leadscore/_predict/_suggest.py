"""`leadscore suggest`: a rule model a marketer can read, learned from history.

A sparse logistic scorecard:

1. Candidates, each a number per lead that one rule or fit rule of the
   model would produce exactly:
   - behaviours (event logs): how many times the lead did an event type,
     counted up to a limit `k` (a rule with `limit: {times: k, per: ever}`);
     `k` is where repetition stops adding signal: the smallest cap whose
     one-variable fit is within 1% of the best cap's log-likelihood gain;
   - a property of a behaviour (the origin of a first contact): did the lead
     have such an event (a rule with `where` and `limit: {times: 1, per: ever}`);
   - traits (tables, and identify traits in logs): a category value, or a
     number at or above a quantile of its distribution (a fit rule with `where`).
2. An L1-regularised logistic regression on the standardised candidates,
   along a path of strengths: the strongest penalty that keeps as many
   candidates as rules are asked for (5-7 by default) picks them. L1
   because it selects: most coefficients are exactly zero.
3. The chosen few are refitted with a light L2 penalty on their own scale,
   and each coefficient becomes integer points: `points = round(beta x PDO /
   ln 2)` with `PDO = 20`, so every 20 points double the odds of converting.
   A behaviour with a negative coefficient gets negative points.
4. Bands (engagement score) and grades (fit) cut the training leads'
   distribution: hot is the top 10%, warm the next 30%; grade A the top 20%
   of fit, B the next 30%.

Every rule carries a comment saying what the data showed.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .._errors import InputError
from ._metrics import Labels
from ._table import Floats, Table

PDO = 20  # points that double the odds
DEFAULT_RULES = 6
CAPS = (1, 2, 3, 5, 10)
QUANTILES = (0.25, 0.5, 0.75, 0.9)
# A value held by fewer leads than this share (or 30 leads) gives a rule
# nobody could check by eye, and a coefficient the data cannot pin down.
MIN_SUPPORT = 0.01
MIN_LEADS = 30
HOT, WARM = 0.90, 0.60  # band cut points, as quantiles of the engagement score
GRADE_A, GRADE_B = 0.80, 0.50  # grade cut points, as quantiles of fit


@dataclass(slots=True)
class Candidate:
    kind: str  # "count", "property" (engagement rules) or "trait" (fit rules)
    column: str
    values: Floats  # what the rule would count for each lead
    event: str = ""
    key: str = ""  # property or trait path in the model
    test: Any = None  # the `where` test of the key
    cap: int = 1
    text: str = ""  # how a person reads it


def trait_key(column: str) -> str:
    """A column name as a trait path: `where` splits paths on dots."""
    return column.replace(".", "_").strip()


def _supported(mask: npt.NDArray[np.bool_]) -> bool:
    n = int(mask.sum())
    return n >= max(MIN_LEADS, MIN_SUPPORT * mask.size) and mask.size - n >= MIN_LEADS


def _gain(x: Floats, y: Labels) -> float:
    """Log-likelihood gain of a one-variable logistic fit over the base rate."""
    from sklearn.linear_model import LogisticRegression

    if np.ptp(x) == 0:
        return 0.0
    z = (x - x.mean()) / x.std()
    p = LogisticRegression(C=1e4, max_iter=500).fit(z[:, None], y).predict_proba(z[:, None])[:, 1]
    base = float(y.mean())
    eps = 1e-12
    fitted = np.sum(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps))
    null = y.size * (base * math.log(base) + (1 - base) * math.log(1 - base))
    return float(fitted - null)


def _value_candidates(
    table: Table, column: str, kind: str, key: str, event: str = ""
) -> list[Candidate]:
    data = table.columns[column]
    found: list[Candidate] = []

    def add(mask: npt.NDArray[np.bool_], test: Any, text: str) -> None:
        if _supported(mask):
            found.append(
                Candidate(kind, column, mask.astype(np.float64), event, key, test, text=text)
            )

    if data.dtype == np.float64:
        x = data.astype(np.float64)
        seen = x[~np.isnan(x)]
        if seen.size:
            # The threshold as the rule writes it (4 significant digits) is
            # the one tested here: fitted, described and cut into grades with
            # the unrounded quantile, the rule would award points to leads
            # the suggestion did not count.
            for shown in sorted({f"{v:.4g}" for v in np.quantile(seen, QUANTILES)}, key=float):
                q = float(shown)
                add(np.nan_to_num(x, nan=-np.inf) >= q, {"gte": q}, f"{key} ≥ {shown}")
        return found
    values = sorted({v for v in data if v is not None})
    for value in values:
        add(np.array([v == value for v in data], dtype=bool), value, f"{key} = {value}")
    if len(values) == 2 and len(found) == 2 and not any(v is None for v in data):
        # Two values and never missing: each rule is the other one negated
        # (yes = -x points, no = +x points say the same), and L1 has no
        # reason to pick one of two candidates that are exact negatives once
        # standardised; it keeps both, two rules' room for one fact. Keep
        # the rarer value, the exception a rule reads best about.
        found.pop(max((0, 1), key=lambda i: (found[i].values.sum(), i)))
    return found


def candidates(table: Table, names: list[str], y: Labels, *, events: bool) -> list[Candidate]:
    found: list[Candidate] = []
    for column in names:
        if not events:
            found += _value_candidates(table, column, "trait", trait_key(column))
        elif column.endswith(" count"):
            event = column.removesuffix(" count")
            counts = table.columns[column].astype(np.float64)
            gains = {k: _gain(np.minimum(counts, k), y) for k in CAPS}
            best = max(gains.values())
            if best <= 0:
                continue
            cap = min(k for k, g in gains.items() if g >= 0.99 * best)
            found.append(
                Candidate(
                    "count",
                    column,
                    np.minimum(counts, cap),
                    event,
                    cap=cap,
                    text=f"{event} (each, up to {cap})",
                )
            )
        elif column.startswith("trait."):
            found += _value_candidates(
                table, column, "trait", trait_key(column.removeprefix("trait."))
            )
        elif "." in column and not column.endswith("days since last"):
            event, _, key = column.partition(".")
            found += _value_candidates(table, column, "property", key, event)
    return found


def _select(found: list[Candidate], y: Labels, wanted: int) -> list[int]:
    """Indexes of the candidates an L1 path keeps when it first keeps `wanted`
    (or, if it never keeps exactly that many, the `wanted` largest of the
    strongest penalty that keeps more)."""
    from sklearn.linear_model import LogisticRegression

    x = np.column_stack([c.values for c in found])
    z = (x - x.mean(axis=0)) / np.where(x.std(axis=0) > 0, x.std(axis=0), 1.0)

    def path(c: float) -> Floats:
        model = LogisticRegression(l1_ratio=1.0, C=c, solver="liblinear", max_iter=1000)
        coef: Floats = np.abs(model.fit(z, y).coef_[0])
        return coef

    low, high = 0.0, 0.0
    best: list[int] = []
    for c in np.logspace(-4, 1, 40):
        kept = [int(i) for i in np.flatnonzero(path(c) > 1e-8)]
        if len(kept) > wanted:
            high = float(c)
            break
        best, low = kept, float(c)
        if len(kept) == wanted:
            return best
    if not high:
        return best  # fewer candidates than wanted carry any signal
    # Several candidates entered between two steps of the path (as many as
    # ten when they carry about the same signal): halve the gap, and if no
    # strength keeps exactly `wanted`, the strongest `wanted` of the first
    # fit that keeps more, rather than the few before the jump.
    coef = path(high)
    for _ in range(10):  # the gap narrowed 1,000-fold in log strength
        middle = math.sqrt(low * high) if low else high / 2
        fitted = path(middle)
        kept = [int(i) for i in np.flatnonzero(fitted > 1e-8)]
        if len(kept) == wanted:
            return kept
        if len(kept) > wanted:
            high, coef = middle, fitted
        else:
            low = middle
    return sorted(int(i) for i in np.argsort(-coef, kind="stable")[:wanted])


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "rule"


def _rate(y: Labels, mask: npt.NDArray[np.bool_]) -> str:
    return f"{y[mask].mean():.1%}" if mask.any() else "—"


def _comment(c: Candidate, y: Labels, points: int) -> str:
    sign = "raises" if points > 0 else "lowers"
    if c.kind == "count":
        counts = c.values
        steps = ", ".join(
            f"{k}{'+' if k == c.cap else ''}: {_rate(y, counts == k)} of {n:,}"
            for k in range(0, c.cap + 1)
            if (n := int((counts == k).sum()))
        )
        return (
            f"Data: conversion by number of {c.event} events (counted up to {c.cap}): {steps}. "
            f"Beyond {c.cap} the rate stopped changing, hence the limit. "
            f"{points:+d} points each: {sign} the odds by {2 ** (points / PDO):.2f}x."
        )
    mask = c.values > 0
    return (
        f"Data: {int(mask.sum()):,} leads ({mask.mean():.0%}) had {c.text}; "
        f"{_rate(y, mask)} of them converted against {_rate(y, ~mask)} of the others. "
        f"{points:+d} points: {sign} the odds by {2 ** (points / PDO):.2f}x."
    )


@dataclass(slots=True)
class Suggestion:
    document: dict[str, Any]
    comments: dict[tuple[str, int], str]  # (rules|fit, index) -> comment
    header: str
    score: Floats  # engagement points of each training lead
    fit: Floats

    def yaml(self) -> str:
        from ruamel.yaml import YAML
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        root = CommentedMap()
        for key, value in self.document.items():
            if key in ("rules", "fit"):
                seq = CommentedSeq()
                for index, item in enumerate(value):
                    entry = CommentedMap(item)
                    if "limit" in entry or "where" in entry:
                        for sub in ("limit", "where"):
                            if sub in entry:
                                flow = CommentedMap(entry[sub])
                                flow.fa.set_flow_style()
                                entry[sub] = flow
                    seq.append(entry)
                    seq.yaml_set_comment_before_after_key(
                        index, before=_wrap(self.comments[(key, index)]), indent=2
                    )
                root[key] = seq
            elif key in ("grades", "bands"):
                seq = CommentedSeq()
                for item in value:
                    entry = CommentedMap(item)
                    entry.fa.set_flow_style()
                    seq.append(entry)
                root[key] = seq
            else:
                root[key] = value
        root.yaml_set_start_comment(self.header)
        yaml = YAML()
        yaml.width = 100
        yaml.indent(mapping=2, sequence=4, offset=2)
        out = io.StringIO()
        yaml.dump(root, out)
        return out.getvalue()


def _wrap(text: str, width: int = 90) -> str:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines)


def _cuts(
    values: Floats,
    quantiles: tuple[float, float],
    names: tuple[str, str, str],
    name_key: str,
    min_key: str,
) -> list[dict[str, Any]]:
    """Thresholds at the quantiles, strictly decreasing, then a catch-all."""
    out: list[dict[str, Any]] = []
    for q, name in zip(quantiles, names[:2], strict=True):
        cut = math.ceil(float(np.quantile(values, q)))
        if cut > values.min() and (not out or cut < out[-1][min_key]):
            out.append({name_key: name, min_key: cut})
    out.append({name_key: names[2]})
    if len(out) == 2:  # two levels: the catch-all takes the lowest name's place
        out[1][name_key] = names[1] if name_key == "grade" else names[2]
    return out if len(out) > 1 else []


def _levels_said(
    levels: list[dict[str, Any]] | None,
    *,
    title: str,
    name_key: str,
    min_key: str,
    quantiles: tuple[float, float],
    what: str,
) -> str:
    """The header's sentence on the bands or grades written: the thresholds
    themselves, since cuts that fell on the same value were merged (_cuts),
    so the quantiles alone could name a level the model does not have."""
    if not levels:
        return ""
    tops = " and ".join(f"{1 - q:.0%}" for q in quantiles)
    said = ", ".join(f"{level[name_key]} from {level[min_key]}" for level in levels[:-1])
    merged = "" if len(levels) == 3 else ", which fell on the same value"
    return (
        f" {title}: {said}, {levels[-1][name_key]} below (cut at the top {tops} of these "
        f"leads' {what}{merged})."
    )


def suggest(
    table: Table,
    names: list[str],
    y: Labels,
    *,
    events: bool,
    rules: int = DEFAULT_RULES,
    source: str,
) -> Suggestion:
    """A rule model from features `names` of `table` and outcomes `y`."""
    found = candidates(table, names, y, events=events)
    if not found:
        raise InputError("no behaviour or trait is common enough to build a rule on")
    chosen = [found[i] for i in _select(found, y, rules)]
    if not chosen:
        raise InputError("no behaviour or trait predicts the outcome in this data")
    from sklearn.linear_model import LogisticRegression

    x = np.column_stack([c.values for c in chosen])
    fitted = LogisticRegression(C=10.0, max_iter=2000).fit(x, y)
    document: dict[str, Any] = {
        "version": 1,
        "name": "suggested",
        "description": f"Suggested by leadscore suggest from {source}",
    }
    engagement: list[dict[str, Any]] = []
    fit_rules: list[dict[str, Any]] = []
    comments: dict[tuple[str, int], str] = {}
    used: set[str] = set()
    score = np.zeros(y.size)
    fit = np.zeros(y.size)
    for c, beta in zip(chosen, fitted.coef_[0], strict=True):
        points = round(float(beta) * PDO / math.log(2))
        if points == 0:
            continue
        base = _slug(c.text if c.kind != "count" else c.event)
        rule_id, n = base, 2
        while rule_id in used:
            rule_id, n = f"{base}-{n}", n + 1
        used.add(rule_id)
        item: dict[str, Any] = {"id": rule_id, "description": c.text}
        if c.kind == "trait":
            item |= {"where": {c.key: c.test}, "points": points}
            comments[("fit", len(fit_rules))] = _comment(c, y, points)
            fit_rules.append(item)
            fit += points * c.values
            continue
        item["event"] = c.event
        if c.kind == "property":
            item["where"] = {c.key: c.test}
        item |= {"points": points, "limit": {"times": c.cap, "per": "ever"}}
        comments[("rules", len(engagement))] = _comment(c, y, points)
        engagement.append(item)
        score += points * c.values
    document["rules"] = engagement
    if fit_rules:
        document["fit"] = fit_rules
        grades = _cuts(fit, (GRADE_A, GRADE_B), ("A", "B", "C"), "grade", "min_fit")
        if grades:
            document["grades"] = grades
    if engagement:
        bands = _cuts(score, (HOT, WARM), ("hot", "warm", "cold"), "band", "min_score")
        if bands:
            document["bands"] = bands
    header = _wrap(
        f"Suggested by `leadscore suggest` from {source}: {y.size:,} leads, "
        f"{y.mean():.1%} converted. A sparse logistic scorecard: {PDO} points double the "
        f"odds of converting; a lead's odds are about "
        f"{math.exp(float(fitted.intercept_[0])):.3g} x 2^((score + fit) / {PDO})."
        + _levels_said(
            document.get("bands"),
            title="Bands",
            name_key="band",
            min_key="min_score",
            quantiles=(HOT, WARM),
            what="engagement scores",
        )
        + _levels_said(
            document.get("grades"),
            title="Grades",
            name_key="grade",
            min_key="min_fit",
            quantiles=(GRADE_A, GRADE_B),
            what="fit",
        )
        + " Check it with `leadscore backtest` and edit freely.",
        width=96,
    )
    return Suggestion(document, comments, header, score, fit)
