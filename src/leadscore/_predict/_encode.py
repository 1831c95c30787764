"""Turning table columns into the matrices the learners read, the same way at
training and at prediction time.

Fitted on the training rows only and saved as plain JSON with the model.

- Trees read numbers as they are (NaN stays missing: LightGBM learns which
  side missing values go) and categories as integer codes, missing being a
  category of its own (not answering a question is itself a signal).
- The logistic regression reads numbers clipped to the 0.5th-99.5th
  percentiles of training (so one absurd value cannot dominate a
  coefficient), signed-log compressed (lead activity is heavy-tailed),
  standardised, with missing set to the mean plus a missing indicator; and
  categories one-hot.
- Rare categories (fewer than `MIN_COUNT` training rows) share one "other"
  code: a value seen three times says nothing reliable, and unseen values at
  prediction time land there too.

A table is typed on its own (`_table.typed_column`), so a column may come
to prediction with another type than it had in training: a few leads whose
numeric column holds a stray word are read as text, a category of codes
such as `10`, `20`, `A7` comes as numbers when no `A7` is among them. A
trained model reads each column as its feature was trained (`conform`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from ._table import Floats, Table, Texts, numbers_of

MIN_COUNT = 10
MAX_CATEGORIES = 250  # LightGBM copes with more; a person reading factors does not
MISSING = "(missing)"
OTHER = "(other)"
_CLIP = (0.5, 99.5)


@dataclass(slots=True)
class Feature:
    name: str
    numeric: bool
    # numeric: clip bounds, mean and sd of the transformed value, missing seen in training
    low: float = 0.0
    high: float = 0.0
    mean: float = 0.0
    sd: float = 1.0
    has_missing: bool = False
    # categorical: the kept values; codes are 0..len-1, then OTHER, then MISSING
    values: tuple[str, ...] = ()

    @property
    def levels(self) -> tuple[str, ...]:
        return (*self.values, OTHER, MISSING)

    def to_json(self) -> dict[str, Any]:
        if self.numeric:
            return {
                "name": self.name,
                "kind": "numeric",
                "low": self.low,
                "high": self.high,
                "mean": self.mean,
                "sd": self.sd,
                "has_missing": self.has_missing,
            }
        return {"name": self.name, "kind": "categorical", "values": list(self.values)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Feature:
        if data["kind"] == "numeric":
            return cls(
                data["name"],
                True,
                float(data["low"]),
                float(data["high"]),
                float(data["mean"]),
                float(data["sd"]),
                bool(data["has_missing"]),
            )
        return cls(data["name"], False, values=tuple(data["values"]))


def _squash(x: Floats) -> Floats:
    result: Floats = np.sign(x) * np.log1p(np.abs(x))
    return result


class Encoder:
    """Fitted column encodings; `trees()` and `linear()` build the matrices."""

    def __init__(self, features: list[Feature]) -> None:
        self.features = features
        self._index = [{v: i for i, v in enumerate(f.values)} for f in features]
        self._lookup: list[dict[str | None, int]] = []
        for f, index in zip(features, self._index, strict=True):
            lookup: dict[str | None, int] = {None: len(f.values) + 1}  # MISSING
            lookup.update(index)
            self._lookup.append(lookup)
        # Which columns of the linear matrix belong to which feature.
        self.linear_owner: list[int] = []
        for k, f in enumerate(features):
            width = (1 + f.has_missing) if f.numeric else len(f.levels)
            self.linear_owner += [k] * width

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def categorical(self) -> list[int]:
        return [k for k, f in enumerate(self.features) if not f.numeric]

    @classmethod
    def fit(cls, table: Table, names: list[str], rows: npt.NDArray[np.intp]) -> Encoder:
        features = []
        for name in names:
            column = table.columns[name][rows]
            if table.is_numeric(name):
                x = column.astype(np.float64)
                seen = x[~np.isnan(x)]
                low, high = (
                    (float(np.percentile(seen, _CLIP[0])), float(np.percentile(seen, _CLIP[1])))
                    if seen.size
                    else (0.0, 0.0)
                )
                z = _squash(np.clip(seen, low, high))
                mean = float(z.mean()) if z.size else 0.0
                sd = float(z.std()) if z.size else 0.0
                features.append(
                    Feature(
                        name, True, low, high, mean, sd if sd > 1e-12 else 1.0, seen.size < x.size
                    )
                )
            else:
                counts = Counter(column.tolist())  # counted in C; a generator costs seconds
                counts.pop(None, None)
                kept = [v for v, n in counts.most_common(MAX_CATEGORIES) if n >= MIN_COUNT]
                features.append(Feature(name, False, values=tuple(sorted(kept))))
        return cls(features)

    def conform(self, table: Table) -> Table:
        """`table` with each feature's column in the type it was trained with:
        numbers from text where the text is a number, a category from a
        number spelled as the training value of that number. The same table
        when every column has its type already (as in training)."""
        converted: dict[str, Floats | Texts] = {}
        for f in self.features:
            column = table.columns.get(f.name)
            if column is None or (column.dtype == np.float64) == f.numeric:
                continue
            if f.numeric:
                converted[f.name] = numbers_of(column)
                continue
            numbers = numbers_of(f.values)
            spelled = {
                float(n): v for n, v in zip(numbers, f.values, strict=True) if not np.isnan(n)
            }
            converted[f.name] = np.array(
                [None if np.isnan(x) else spelled.get(float(x), f"{x:g}") for x in column],
                dtype=object,
            )
        if not converted:
            return table
        return Table(table.columns | converted, table.rows, table.dates, table.fingerprint)

    def codes(self, table: Table, k: int) -> Floats:
        """Category codes of feature k (categorical), for trees and for factors."""
        f = self.features[k]
        other = len(f.values)
        if f.name not in table.columns:
            return np.full(table.rows, other + 1.0)  # every row missing
        # One dict lookup per row in C (map over the bound method): a million
        # rows in a fraction of a second; None is the key of MISSING.
        return np.fromiter(
            map(self._lookup[k].get, table.columns[f.name], repeat(other)),
            dtype=np.float64,
            count=table.rows,
        )

    def _numbers(self, table: Table, k: int) -> Floats:
        name = self.features[k].name
        if name not in table.columns:
            return np.full(table.rows, np.nan)
        column = table.columns[name]
        return (
            column.astype(np.float64) if column.dtype == np.float64 else np.full(table.rows, np.nan)
        )

    def trees(self, table: Table) -> Floats:
        out = np.empty((table.rows, len(self.features)), dtype=np.float64)
        for k, f in enumerate(self.features):
            out[:, k] = self._numbers(table, k) if f.numeric else self.codes(table, k)
        return out

    def standardised(self, table: Table, k: int) -> tuple[Floats, npt.NDArray[np.bool_]]:
        """Numeric feature k as the logistic regression reads it (clipped,
        squashed, standardised, 0 where missing) and its missing mask."""
        f = self.features[k]
        x = self._numbers(table, k)
        missing = np.isnan(x)
        z = (_squash(np.clip(np.nan_to_num(x), f.low, f.high)) - f.mean) / f.sd
        z[missing] = 0.0
        return z, missing

    def linear(self, table: Table) -> Any:
        """The logistic regression's matrix, sparse (CSR): mostly one-hot zeros.

        Every row stores the same slots: one value per numeric feature (and
        its missing indicator, when it has one) and the one set column of
        each categorical feature, in column order. So the CSR arrays are
        built whole, a column of slots at a time, rather than stacked from
        a sparse block per feature (five times slower on a million rows).
        A stored value may be 0 (a number at its mean, a value not
        missing): the same matrix, with a few explicit zeros."""
        from scipy import sparse

        width = len(self.linear_owner)
        slots = sum((1 + f.has_missing) if f.numeric else 1 for f in self.features)
        # Slot-major while filling (each slot a contiguous row of memory),
        # row-major for CSR at the end: one transposing copy.
        values = np.empty((slots, table.rows))
        columns = np.empty((slots, table.rows), dtype=np.int32)
        slot = offset = 0
        for k, f in enumerate(self.features):
            if f.numeric:
                z, missing = self.standardised(table, k)
                values[slot], columns[slot] = z, offset
                slot, offset = slot + 1, offset + 1
                if f.has_missing:
                    values[slot], columns[slot] = missing, offset
                    slot, offset = slot + 1, offset + 1
            else:
                values[slot] = 1.0
                columns[slot] = offset + self.codes(table, k).astype(np.int32)
                slot, offset = slot + 1, offset + len(f.levels)
        pointers = np.arange(0, table.rows * slots + 1, slots, dtype=np.int64)
        return sparse.csr_matrix(
            (values.T.ravel(), columns.T.ravel(), pointers), shape=(table.rows, width)
        )

    def describe(self, table: Table, k: int, row: int) -> str:
        """Feature k's value in one row, as a person reads it."""
        f = self.features[k]
        if f.name not in table.columns:
            return MISSING
        value = table.columns[f.name][row]
        if f.numeric:
            return MISSING if np.isnan(value) else f"{value:g}"
        if value is None:
            return MISSING
        return str(value) if value in self._index[k] else f"{value} {OTHER}"

    def to_json(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self.features]

    @classmethod
    def from_json(cls, data: list[dict[str, Any]]) -> Encoder:
        return cls([Feature.from_json(item) for item in data])
