"""The issue's targets on the real data sets in ../shared/data (skipped without it).

Each model trains once per module with one LightGBM thread (two xdist
workers share two cores); the targets and the baselines are those of
bench/predict.py, under the same protocol.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import datasets
from leadscore import Event
from leadscore._predict._api import event_table, train_events, train_table
from leadscore._predict._baselines import baseline_aucs
from leadscore._predict._history import DAY, Setup, contacts
from leadscore._predict._table import read_table, target_labels
from leadscore._predict._train import Options, TrainedModel, stratified_folds

pytestmark = pytest.mark.skipif(
    not datasets.SHARED.is_dir(), reason=f"the shared data sets are not at {datasets.SHARED}"
)
OPTIONS = Options(threads=1)


def _table_case(
    path: Path, target: str, *, id_column: str | None = None, exclude: tuple[str, ...] = ()
) -> tuple[TrainedModel, dict[str, float]]:
    table = read_table(path)
    model = train_table(table, target=target, id_column=id_column, exclude=exclude, options=OPTIONS)
    labels, known = target_labels(table, target, None)
    y = labels[known]
    folds = stratified_folds(y, OPTIONS.folds, OPTIONS.seed)
    return model, baseline_aucs(table, y, model.meta["features"], folds=folds)


def _beats(model: TrainedModel, baselines: dict[str, float]) -> None:
    for name, auc in baselines.items():
        assert model.report["roc_auc"] >= auc, f"below the {name} baseline ({auc})"


def test_x_education_leak_guard_names_the_sales_columns_unprompted() -> None:
    table = read_table(datasets.X_EDUCATION)
    labels, _ = target_labels(table, "Converted", None)
    from leadscore._predict._train import select_features

    candidates = [n for n in table.columns if n not in ("Converted", "Prospect ID")]
    selection = select_features(table, labels, candidates=candidates)
    named = {s.column for s in selection.suspects}
    assert {"Tags", "Lead Quality"} <= named
    assert not named & {"Total Time Spent on Website", "Last Activity", "Lead Source"}
    assert "Tags" not in selection.names
    assert "Lead Quality" not in selection.names


def test_x_education_without_sales_columns() -> None:
    model, baselines = _table_case(
        datasets.X_EDUCATION,
        "Converted",
        id_column="Prospect ID",
        exclude=datasets.X_EDUCATION_SALES,
    )
    assert model.report["validation"] == "stratified 5-fold cross-validation"
    assert model.report["roc_auc"] >= 0.91
    _beats(model, baselines)


def test_bank_marketing_without_duration() -> None:
    model, baselines = _table_case(datasets.BANK, "y", exclude=("duration",))
    assert "duration" not in model.meta["features"]
    assert model.report["roc_auc"] >= 0.80
    _beats(model, baselines)


@pytest.fixture(scope="module")
def olist() -> tuple[list[Event], TrainedModel]:
    events = datasets.olist_events()
    model = train_events(
        events, setup=Setup("deal_won"), split_at=datasets.olist_split(), options=OPTIONS
    )
    return events, model


def test_olist_as_events_split_in_time_beats_both_baselines(
    olist: tuple[list[Event], TrainedModel],
) -> None:
    events, model = olist
    _, table, y, times = event_table(events, Setup("deal_won"))
    baselines = baseline_aucs(
        table, y, model.meta["features"], times=times, split_at=datasets.olist_split() / DAY
    )
    assert model.meta["source"]["split_at"] == "2018-03-01T00:00:00Z"
    # What is known at first contact, and nothing else: the hour is dropped
    # (the data is kept by the day, so it is always 0).
    assert set(model.meta["features"]) == {
        "first_contact.origin",
        "first_contact.landing_page_id",
        "first seen weekday",
    }
    assert model.report["excluded"]["first seen hour"] == "constant"
    _beats(model, baselines)


@pytest.mark.xfail(
    strict=True,
    reason="not reached: origin, landing page and weekday carry about 0.67 on this split "
    "(docs/benchmarks.md); strict, so reaching it shows",
)
def test_olist_reaches_the_issue_target(olist: tuple[list[Event], TrainedModel]) -> None:
    assert olist[1].report["roc_auc"] >= 0.68


def test_olist_shuffled_outcome_dates_after_the_cut_off_change_nothing(
    olist: tuple[list[Event], TrainedModel], tmp_path: Path
) -> None:
    events, model = olist
    history = contacts(events, Setup("deal_won"))
    cutoff = {c.contact_id: c.cutoff for c in history.contacts}
    end = history.end
    rng = np.random.default_rng(7)
    moved = []
    for event in events:
        low = cutoff.get(event.contact_id or "")
        if event.type == "deal_won" and low is not None and event.timestamp > low:
            # An outcome after the cut-off: anywhere after it.
            when = int(rng.integers(low + 1, end + 1))
            moved.append(Event(event.id, event.type, when, event.contact_id))
        else:
            moved.append(event)
    assert sum(a.timestamp != b.timestamp for a, b in zip(events, moved, strict=True)) > 700
    again = train_events(
        moved, setup=Setup("deal_won"), split_at=datasets.olist_split(), options=OPTIONS
    )
    model.save(tmp_path / "first")
    again.save(tmp_path / "again")
    for name in ("model.json", "trees.txt"):
        first, second = tmp_path / "first" / name, tmp_path / "again" / name
        assert first.exists() == second.exists()
        if first.exists():
            assert first.read_text() == second.read_text()
