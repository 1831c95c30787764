"""Predictive scoring on small data the tests make: train, predict, suggest, backtest.

The data have a known structure (a behaviour that raises conversion up to
three times and then stops adding, a trait that lowers it, a column that
records the outcome), so each test checks what the learners must find, and
every number checked is recomputed from the pure engine or the saved model.
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from click.testing import CliRunner, Result

from leadscore import Event, InputError, load_model, parse_model, replay
from leadscore._cli import cli
from leadscore._predict._api import event_features, event_table, train_events, train_table
from leadscore._predict._backtest import backtest
from leadscore._predict._history import DAY, Setup, contacts, labelled
from leadscore._predict._metrics import roc_auc
from leadscore._predict._table import from_columns, read_table
from leadscore._predict._train import Options, TrainedModel, _time_folds
from leadscore._time import from_datetime

START = datetime(2026, 1, 5, tzinfo=UTC)
FAST = ["--rounds", "40"]  # fixed rounds: quick, and enough for these data


EXAMPLES = Path(__file__).parents[1] / "src" / "leadscore" / "examples"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def make_table(path: Path, rows: int = 1500, seed: int = 1) -> Path:
    """Leads with a clear signal, placeholders, missing values, an id and a leak."""
    rng = np.random.default_rng(seed)
    visits = rng.pareto(1.5, rows) * 3
    source = rng.choice(
        ["Google", "Referral", "Select", "unknown", ""], rows, p=[0.4, 0.2, 0.2, 0.1, 0.1]
    )
    student = rng.random(rows) < 0.3
    logit = -1.0 + 0.8 * np.log1p(visits) + 1.2 * (source == "Referral") - 1.5 * student
    won = rng.random(rows) < 1 / (1 + np.exp(-logit))
    verdict = np.where(won, "good", "bad")
    flip = rng.random(rows) < 0.02
    verdict = np.where(flip, np.where(won, "bad", "good"), verdict)
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["lead", "visits", "source", "occupation", "sales_verdict", "converted"])
        for i in range(rows):
            writer.writerow(
                [
                    f"L{i:05d}",
                    f"{visits[i]:.2f}",
                    source[i],
                    "Student" if student[i] else "Worker",
                    verdict[i],
                    "yes" if won[i] else "no",
                ]
            )
    return path


def make_events(contacts_count: int = 600, seed: int = 2) -> list[Event]:
    """A funnel: first_contact (origin), page views in the first week, deal_won later.

    Conversion rises with page views up to three, not beyond; `email` origins convert less.
    """
    rng = np.random.default_rng(seed)
    events: list[Event] = []
    for i in range(contacts_count):
        contact = f"c{i:04d}"
        first = START + timedelta(days=int(rng.integers(0, 120)), hours=int(rng.integers(0, 24)))
        origin = str(rng.choice(["search", "social", "email"]))
        events.append(
            Event(
                f"{contact}-fc",
                "first_contact",
                from_datetime(first),
                contact,
                properties={"origin": origin},
            )
        )
        views = int(rng.poisson(2.0))
        for k in range(views):
            when = first + timedelta(hours=int(rng.integers(1, 6 * 24)))
            events.append(Event(f"{contact}-pv{k}", "page_view", from_datetime(when), contact))
        logit = -2.0 + 0.9 * min(views, 3) - 1.2 * (origin == "email")
        if rng.random() < 1 / (1 + math.exp(-logit)):
            when = first + timedelta(days=7 + int(rng.integers(1, 40)))
            events.append(Event(f"{contact}-won", "deal_won", from_datetime(when), contact))
    return events


def write_events(events: list[Event], path: Path) -> Path:
    path.write_bytes(b"".join(orjson.dumps(e.to_json()) + b"\n" for e in events))
    return path


@pytest.fixture(scope="module")
def table_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_table(tmp_path_factory.mktemp("table") / "leads.csv")


@pytest.fixture(scope="module")
def trained_dir(table_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("model") / "model"
    done = invoke(
        "train",
        "--table",
        str(table_path),
        "--target",
        "converted",
        "--id",
        "lead",
        "-o",
        str(out),
        "--format",
        "json",
        *FAST,
    )
    assert done.exit_code == 0, done.output
    (out / "report.json").write_text(done.output)
    return out


def test_train_reports_the_keys_and_names_the_leak(trained_dir: Path) -> None:
    report = orjson.loads((trained_dir / "report.json").read_text())
    for key in (
        "roc_auc",
        "pr_auc",
        "brier",
        "log_loss",
        "base_rate",
        "deciles",
        "capture_top_20pct",
        "features",
        "suspected_leaks",
    ):
        assert key in report
    assert report["validation"] == "stratified 5-fold cross-validation"
    assert [d["decile"] for d in report["deciles"]] == list(range(1, 11))
    assert sum(d["leads"] for d in report["deciles"]) == 1500
    assert [s["column"] for s in report["suspected_leaks"]] == ["sales_verdict"]
    assert report["suspected_leaks"][0]["auc"] > 0.9
    assert report["excluded"]["sales_verdict"].startswith("suspected leak")
    names = [f["feature"] for f in report["features"]]
    assert set(names) == {"visits", "source", "occupation"}
    assert report["roc_auc"] > 0.7  # the signal built in is strong
    # Placeholders are missing values, not categories.
    model = TrainedModel.load(trained_dir)
    source = next(f for f in model.encoder.features if f.name == "source")
    assert set(source.values) == {"Google", "Referral"}


def test_keep_uses_a_suspected_column(table_path: Path, tmp_path: Path) -> None:
    done = invoke(
        "train",
        "--table",
        str(table_path),
        "--target",
        "converted",
        "--id",
        "lead",
        "--keep",
        "sales_verdict",
        "-o",
        str(tmp_path / "m"),
        "--format",
        "json",
        *FAST,
    )
    assert done.exit_code == 0, done.output
    report = orjson.loads(done.output)
    assert "sales_verdict" in [f["feature"] for f in report["features"]]
    assert report["suspected_leaks"][0]["column"] == "sales_verdict"
    assert report["roc_auc"] > 0.95


def test_the_model_directory_holds_no_code(trained_dir: Path) -> None:
    files = sorted(p.name for p in trained_dir.iterdir())
    assert files in (["model.json", "report.json", "trees.txt"], ["model.json", "report.json"])
    meta = orjson.loads((trained_dir / "model.json").read_bytes())
    assert meta["training_data"]["rows"] == 1500
    assert len(meta["training_data"]["fingerprint"]) == 64
    assert {"lightgbm", "scikit-learn", "numpy", "python"} <= set(meta["versions"])
    assert meta["features"] == ["visits", "source", "occupation"]


def test_a_table_without_the_models_columns_is_refused_or_warned_of(
    trained_dir: Path, tmp_path: Path
) -> None:
    other, part = tmp_path / "other.csv", tmp_path / "part.csv"
    other.write_text("zzz,won\n1,1\n2,0\n")
    part.write_text("visits,zzz\n1,1\n")
    refused = invoke("predict", str(trained_dir), "--table", str(other))
    assert refused.exit_code == 1
    assert f"{other}: none of the model's features is a column of it" in refused.output
    backtested = invoke("backtest", str(trained_dir), "--table", str(other), "--target", "won")
    assert backtested.exit_code == 1
    assert "none of the model's features" in backtested.output
    warned = invoke("predict", str(trained_dir), "--table", str(part))
    assert warned.exit_code == 0, warned.output
    assert f"{part}: no column 'source', 'occupation'; counted as a missing value" in " ".join(
        warned.output.split()
    )


def test_the_report_names_the_model_directory_with_one_slash(tmp_path: Path) -> None:
    path = _interaction_table(tmp_path / "leads.csv")
    done = invoke(
        "train", "--table", str(path), "--target", "converted", "-o", f"{tmp_path}/m/", *FAST
    )
    assert done.exit_code == 0, done.output
    assert f"model saved in {tmp_path}/m/\n" in done.output


def test_a_target_with_no_recorded_value_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("visits,won\n1,\n2,\n")
    done = invoke("train", "--table", str(path), "--target", "won", "-o", str(tmp_path / "m"))
    assert done.exit_code == 1
    assert "target column 'won' has no recorded value" in done.output


def test_a_model_directory_of_another_version_or_damaged_exits_1(
    trained_dir: Path, table_path: Path, tmp_path: Path
) -> None:
    document = orjson.loads((trained_dir / "model.json").read_bytes())
    cases = {
        "format_version 2, but this leadscore reads version 1": {**document, "format_version": 2},
        "a damaged model file (KeyError: 'encoder')": {
            k: v for k, v in document.items() if k != "encoder"
        },
    }
    for message, changed in cases.items():
        folder = tmp_path / str(len(message))
        folder.mkdir()
        (folder / "model.json").write_bytes(orjson.dumps(changed))
        if (trained_dir / "trees.txt").exists():
            (folder / "trees.txt").write_bytes((trained_dir / "trees.txt").read_bytes())
        done = invoke("predict", str(folder), "--table", str(table_path))
        assert done.exit_code == 1, done.output
        assert message in done.output


def test_predict_gives_the_saved_models_probabilities_and_factors(
    trained_dir: Path, table_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "p.jsonl"
    done = invoke(
        "predict", str(trained_dir), "--table", str(table_path), "--format", "jsonl", "-o", str(out)
    )
    assert done.exit_code == 0, done.output
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    model = TrainedModel.load(trained_dir)
    table = read_table(table_path)
    expected = model.probabilities(table)
    assert [r["id"] for r in rows[:2]] == ["L00000", "L00001"]
    assert np.allclose([r["probability"] for r in rows], expected, atol=1e-6)
    parts = model.contributions(table)
    for i, row in enumerate(rows[:200]):
        assert len(row["raising"]) <= 3
        assert len(row["lowering"]) <= 3
        assert all(f["effect"] > 0 for f in row["raising"])
        assert all(f["effect"] < 0 for f in row["lowering"])
        # Contributions add up to the calibrated log-odds.
        assert math.isclose(parts[i].sum(), math.log(expected[i] / (1 - expected[i])), abs_tol=1e-6)
    bare = invoke("predict", str(trained_dir), "--table", str(table_path), "--top", "0")
    lines = bare.output.splitlines()
    assert lines[0] == "id,probability"
    assert np.allclose([float(line.split(",")[1]) for line in lines[1:]], expected, atol=1e-6)
    csv_out = invoke("predict", str(trained_dir), "--table", str(table_path))
    header, first = csv_out.output.splitlines()[:2]
    assert header == "id,probability,raising,lowering"
    assert first.startswith("L00000,")


def test_a_column_typed_otherwise_than_in_training_is_read_as_trained(
    trained_dir: Path, table_path: Path, tmp_path: Path
) -> None:
    """A table is typed on its own: one stray word turns a numeric column into
    text, and codes without their one letter-bearing value turn a category into
    numbers. Each lead's probability and factors are those it has alone."""
    header, *rows = table_path.read_text().splitlines()[:21]
    clean, stray = tmp_path / "clean.csv", tmp_path / "stray.csv"
    clean.write_text("\n".join([header, *rows]) + "\n")
    stray.write_text("\n".join([header, *rows, "L99999,oops,Google,Worker,bad,no"]) + "\n")
    assert read_table(clean).is_numeric("visits")
    assert not read_table(stray).is_numeric("visits")

    def predicted(path: Path) -> list[dict[str, Any]]:
        done = invoke("predict", str(trained_dir), "--table", str(path), "--format", "jsonl")
        assert done.exit_code == 0, done.output
        return [orjson.loads(line) for line in done.output.splitlines()]

    assert predicted(stray)[:20] == predicted(clean)

    rng = np.random.default_rng(3)
    plan = rng.choice(["10", "20", "30", "A7"], 800)
    won = rng.random(800) < np.where(plan == "20", 0.7, 0.2)
    coded = from_columns({"plan": list(plan), "won": [str(int(w)) for w in won]})
    model = train_table(coded, target="won", options=Options(rounds=20))
    assert not coded.is_numeric("plan")
    numbers = from_columns({"plan": ["10", "20", "30"]})
    assert numbers.is_numeric("plan")
    codes = from_columns({"plan": ["10", "20", "30", "A7"]})
    assert model.factors(numbers) == model.factors(codes)[:3]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "nope"], "target column 'nope' is not in the table"),
        (
            ["--target", "occupation", "--positive", "pilot"],
            "target column 'occupation' has only one class",
        ),
        (["--target", "converted", "--exclude", "ghost"], "column 'ghost'"),
    ],
)
def test_bad_tables_exit_1_naming_the_column(
    table_path: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    done = invoke("train", "--table", str(table_path), *args, "-o", str(tmp_path / "m"))
    assert done.exit_code == 1
    assert message in done.output


def test_unreadable_inputs_exit_1_naming_the_path(tmp_path: Path) -> None:
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"\x00\x01 not a parquet file")
    for path in (junk, tmp_path / "missing.csv"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "leadscore",
                "train",
                "--table",
                str(path),
                "--target",
                "y",
                "-o",
                str(tmp_path / "m"),
            ],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 1
        assert str(path) in done.stderr.decode()
    assert not (tmp_path / "m").exists()
    loaded = invoke("predict", str(tmp_path), "--table", str(junk))
    assert loaded.exit_code == 1
    assert "no model.json" in loaded.output


def test_misuse_exits_2(table_path: Path, tmp_path: Path) -> None:
    both = invoke("train", "--table", str(table_path), "--events", "x.jsonl", "-o", str(tmp_path))
    assert both.exit_code == 2
    assert "give either --table FILE or --events FILE, not both" in both.output
    assert invoke("train", "--table", str(table_path), "-o", str(tmp_path)).exit_code == 2
    # Neither is no case of "both".
    neither = invoke("predict", str(tmp_path))
    assert neither.exit_code == 2
    assert "Error: give --table FILE or --events FILE: the leads to read" in neither.output


@pytest.mark.parametrize("command", ["train", "suggest", "backtest"])
@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--window", "nan", "0 or more"),
        ("--window", "inf", "0 or more"),
        ("--window", "-1", "0 or more"),
        ("--window", "soon", "is not a valid float"),
        ("--horizon", "nan", "above 0"),
        ("--horizon", "-5", "above 0"),
        ("--horizon", "0", "above 0"),
    ],
)
def test_a_window_or_horizon_that_is_no_number_of_days_exits_2_naming_it(
    tmp_path: Path, command: str, option: str, value: str, expected: str
) -> None:
    # nan and inf were a ValueError or OverflowError traceback after the log
    # was read; a negative window or horizon, messages about the outcome.
    log = tmp_path / "e.jsonl"
    log.write_text(
        '{"id": "e1", "type": "signup", "contact_id": "c1", "timestamp": "2026-05-04T10:00:00Z"}\n'
    )
    head = [command, *([str(EXAMPLES / "b2b-saas.yaml")] if command == "backtest" else [])]
    out = ["-o", str(tmp_path / "m")] if command == "train" else []
    done = invoke(*head, "--events", str(log), "--outcome", "won", option, value, *out)
    assert done.exit_code == 2, done.output
    assert option in done.output
    assert expected in done.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--table", "T", "--target", "y", "--window", "0", "-o", "O"], "--window: only"),
        (["train", "--events", "E", "--outcome", "won", "--id", "x", "-o", "O"], "--id: only"),
        (["predict", "M", "--table", "T", "--at", "2026-01-01"], "--at: only with --events"),
        (["suggest", "--table", "T", "--target", "y", "--until", "2026-01-01"], "--until: only"),
        (["suggest", "--events", "E", "--outcome", "won", "--positive", "1"], "--positive: only"),
        (["backtest", "R", "--table", "T", "--target", "y", "--from", "2026-01-01"], "--from:"),
        (["backtest", "M", "--events", "E", "--horizon", "30"], "--horizon: a trained model"),
    ],
)
def test_an_option_of_the_other_source_exits_2_naming_it(
    trained_dir: Path, table_path: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    """Options of --events given with --table (and the other way round), or a
    window for a trained model, would do nothing: said, not ignored."""
    names = {
        "T": table_path,
        "E": tmp_path / "e.jsonl",
        "M": trained_dir,
        "R": tmp_path / "r.yaml",
        "O": tmp_path / "out",
    }
    done = invoke(*[str(names.get(arg, arg)) for arg in args])
    assert done.exit_code == 2, done.output
    assert message in done.output


def test_suggest_on_a_table_writes_a_valid_commented_scorecard(
    table_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "suggested.yaml"
    done = invoke(
        "suggest",
        "--table",
        str(table_path),
        "--target",
        "converted",
        "--id",
        "lead",
        "-o",
        str(out),
    )
    assert done.exit_code == 0, done.output
    assert invoke("validate", str(out)).exit_code == 0
    model = load_model(out)
    rules = list(model.fit)
    assert 5 <= len(rules) <= 7
    text = out.read_text()
    assert text.count("# Data:") == len(rules)
    assert "20 points double the odds" in text
    assert all(isinstance(r.points, int) for r in rules)
    assert "sales_verdict" not in text  # the leak guard applies here too
    student = [r for r in rules if "occupation" in r.where and r.where["occupation"] == "Student"]
    worker = [r for r in rules if "occupation" in r.where and r.where["occupation"] == "Worker"]
    assert (student and student[0].points < 0) or (worker and worker[0].points > 0)
    assert [g.grade for g in model.grades][-1] in ("B", "C")
    # Backtest on the same table: the report's AUC is that of score + fit.
    report = orjson.loads(
        invoke(
            "backtest",
            str(out),
            "--table",
            str(table_path),
            "--target",
            "converted",
            "--format",
            "json",
        ).output
    )
    assert report["ranked_by"] == "score + fit"
    assert report["roc_auc"] > 0.7
    assert sum(g["leads"] for g in report["by_grade"].values()) == 1500


def test_suggests_header_says_the_grades_written_not_the_ones_planned(tmp_path: Path) -> None:
    """One yes/no trait gives fit two values, so the cuts at the top 20% and
    50% fall on the same one and merge: the header said "grades cut fit at
    the top 20% and 50%" and "bands cut the engagement score", for a model of
    two grades and no band."""
    rng = random.Random(3)
    table = tmp_path / "leads.csv"
    with table.open("w", newline="") as file:
        out = csv.writer(file)
        out.writerow(["lead", "demo", "converted"])
        for lead in range(1000):
            demo = rng.random() < 0.3
            out.writerow(
                [lead, "yes" if demo else "no", int(rng.random() < (0.6 if demo else 0.05))]
            )
    written = tmp_path / "suggested.yaml"
    args = ["--table", str(table), "--target", "converted", "--id", "lead", "-o", str(written)]
    assert invoke("suggest", *args).exit_code == 0
    model = load_model(written)
    header = " ".join(
        line.removeprefix("# ")
        for line in written.read_text().splitlines()
        if line.startswith("# ")
    )
    assert not model.bands
    assert "Bands" not in header
    a, b = model.grades
    assert (a.grade, b.grade, b.min_fit) == ("A", "B", None)
    assert f"Grades: A from {a.min_fit:g}, B below" in header
    assert "which fell on the same value" in header


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Event], Path]:
    events = make_events()
    return events, write_events(events, tmp_path_factory.mktemp("log") / "events.jsonl")


def test_suggest_until_before_any_outcome_exits_1_saying_so(
    log: tuple[list[Event], Path],
) -> None:
    _, path = log
    args = ["suggest", "--events", str(path), "--outcome", "deal_won", "--until", "2020-01-01"]
    done = invoke(*args)
    assert done.exit_code == 1, done.output
    assert "--until 2020-01-01: 0 labelled contacts with a cut-off before it" in done.output


def test_suggest_on_events_finds_the_limit_and_the_negative(
    log: tuple[list[Event], Path], tmp_path: Path
) -> None:
    _, path = log
    out = tmp_path / "s.yaml"
    done = invoke(
        "suggest",
        "--events",
        str(path),
        "--outcome",
        "deal_won",
        "--window",
        "7",
        "--rules",
        "3",
        "-o",
        str(out),
    )
    assert done.exit_code == 0, done.output
    model = load_model(out)
    views = [r for r in model.rules if r.event == "page_view"]
    assert views
    assert views[0].points > 0
    assert views[0].limit is not None
    assert 2 <= views[0].limit.times <= 5
    assert views[0].limit.per == "ever"
    email = [r for r in model.rules if r.where == {"origin": "email"}]
    assert email
    assert email[0].points < 0
    assert model.bands[0].band == "hot"


def test_backtest_scores_each_contact_as_a_replay_at_its_cut_off(
    log: tuple[list[Event], Path], tmp_path: Path
) -> None:
    events, path = log
    model_path = tmp_path / "s.yaml"
    invoke(
        "suggest",
        "--events",
        str(path),
        "--outcome",
        "deal_won",
        "--window",
        "7",
        "-o",
        str(model_path),
    )
    model = load_model(model_path)
    chart = tmp_path / "chart.png"
    done = invoke(
        "backtest",
        str(model_path),
        "--events",
        str(path),
        "--outcome",
        "deal_won",
        "--window",
        "7",
        "--format",
        "json",
        "--chart",
        str(chart),
    )
    assert done.exit_code == 0, done.output
    report = orjson.loads(done.output)
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The same numbers from the public replay, one contact at a time.
    history = contacts(events, Setup("deal_won", 7.0))
    scores, labels = [], []
    for contact in history.contacts:
        if contact.label is None:
            continue
        card = replay(model, contact.observed("deal_won"), at=contact.cutoff).scorecards[0]
        scores.append(card.score + card.fit)
        labels.append(contact.label)
    y = np.array(labels, dtype=np.int8)
    assert report["leads"] == len(labels)
    assert report["roc_auc"] == round(roc_auc(y, np.array(scores)), 4)
    assert sum(b["leads"] for b in report["by_band"].values()) == len(labels)
    assert report["pareto"][-1]["conversions_share"] == 1.0
    assert report == backtest(model, events, outcome="deal_won", window_days=7.0)


def _saved(model: TrainedModel, folder: Path) -> dict[str, str]:
    model.save(folder)
    return {p.name: p.read_text() for p in folder.iterdir()}


def test_nothing_after_the_cut_off_reaches_the_model(
    log: tuple[list[Event], Path], tmp_path: Path
) -> None:
    """Outcome dates moved anywhere after each cut-off, and more behaviour
    after it (converters keep visiting), change nothing at all."""
    events, _ = log
    setup = Setup("deal_won", 7.0)
    options = Options(rounds=40, threads=1)
    first = train_events(events, setup=setup, options=options)
    history = contacts(events, setup)
    cutoff = {c.contact_id: c.cutoff for c in history.contacts}
    rng = np.random.default_rng(3)
    changed: list[Event] = []
    for event in events:
        low = cutoff[event.contact_id or ""]
        if event.type == "deal_won" and event.timestamp > low:
            when = int(rng.integers(low + 1, history.end + 1))
            changed.append(Event(event.id, event.type, when, event.contact_id))
            changed.append(Event(event.id + "-after", "page_view", when, event.contact_id))
        else:
            changed.append(event)
    moved = sum(a.timestamp != b.timestamp for a, b in zip(events, changed, strict=False))
    assert moved > 50
    second = train_events(changed, setup=setup, options=options)
    assert _saved(first, tmp_path / "a") == _saved(second, tmp_path / "b")


def test_train_on_events_with_a_rule_model_and_backtest_the_trained_model(
    log: tuple[list[Event], Path], tmp_path: Path
) -> None:
    _, path = log
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "version: 1\nname: views\nrules:\n"
        "  - {id: views, event: page_view, points: 5, limit: {times: 2, per: ever}}\n"
        "  - {id: email, event: first_contact, where: {origin: email}, points: -5}\n"
    )
    out = tmp_path / "m"
    done = invoke(
        "train",
        "--events",
        str(path),
        "--outcome",
        "deal_won",
        "--window",
        "7",
        "--model",
        str(rules),
        "-o",
        str(out),
        "--format",
        "json",
        *FAST,
    )
    assert done.exit_code == 0, done.output
    report = orjson.loads(done.output)
    assert report["validation"] == "time split"
    names = TrainedModel.load(out).encoder.names
    assert "model score" in names
    assert "rule views awards" in names
    assert "page_view count" in names
    assert "deal_won count" not in names  # the outcome is never a feature
    back = orjson.loads(
        invoke("backtest", str(out), "--events", str(path), "--format", "json").output
    )
    assert back["ranked_by"] == "probability"
    predicted = invoke("predict", str(out), "--events", str(path), "--format", "jsonl")
    assert predicted.exit_code == 0, predicted.output
    assert len(predicted.output.splitlines()) == 600


def test_a_model_trained_with_rules_in_python_scores_with_them(
    log: tuple[list[Event], Path], tmp_path: Path
) -> None:
    """The rule model is saved with the trained model, so its features are
    computed again for the leads it scores, not left at zero or missing."""
    events, _ = log
    rules = parse_model(
        "version: 1\nname: views\nrules:\n"
        "  - {id: views, event: page_view, points: 5, limit: {times: 2, per: ever}}\n"
        "  - {id: email, event: first_contact, where: {origin: email}, points: -5}\n"
    )
    setup = Setup("deal_won", 7.0)
    trained = train_events(events, setup=setup, rules=rules, options=Options(rounds=20, threads=1))
    trained.save(tmp_path / "m")
    loaded = TrainedModel.load(tmp_path / "m")
    ids, table = event_features(loaded, events)
    _, expected, _, _ = event_table(events, setup, rules=rules)
    assert {"model score", "rule views awards"} <= set(loaded.encoder.names)
    chosen = [ids.index(c.contact_id) for c in labelled(contacts(events, setup))]
    for name in loaded.encoder.names:
        numeric = expected.is_numeric(name)
        got, wanted = table.columns[name][chosen], expected.columns[name]
        assert np.array_equal(got, wanted, equal_nan=numeric), name


def test_exclude_and_keep_work_on_events_too(log: tuple[list[Event], Path], tmp_path: Path) -> None:
    _, path = log
    done = invoke(
        "train", "--events", str(path), "--outcome", "deal_won", "--window", "7",
        "--exclude", "page_view count", "-o", str(tmp_path / "m"), "--format", "json", *FAST,
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    report = orjson.loads(done.output)
    assert report["excluded"]["page_view count"] == "excluded (--exclude)"
    assert "page_view count" not in TrainedModel.load(tmp_path / "m").encoder.names


def test_a_model_trained_on_a_table_is_refused_events(trained_dir: Path, log: Any) -> None:
    _, path = log
    for command in ("backtest", "predict"):
        done = invoke(command, str(trained_dir), "--events", str(path))
        assert done.exit_code == 1, done.output
        assert "trained on a table, not on events: give it --table" in done.output


def test_table_training_in_python_matches_the_cli(table_path: Path, trained_dir: Path) -> None:
    model = train_table(
        read_table(table_path), target="converted", id_column="lead", options=Options(rounds=40)
    )
    saved: dict[str, Any] = orjson.loads((trained_dir / "model.json").read_bytes())
    assert model.report["roc_auc"] == saved["report"]["roc_auc"]


def test_the_leak_guards_tied_auc_is_the_roc_auc() -> None:
    from leadscore._predict._leaks import _tied_auc

    rng = np.random.default_rng(3)
    y = (rng.random(5000) < 0.2).astype(np.int8)
    # Few distinct scores, many ties, as the per-value rates of one column.
    score = np.round(rng.random(5000) + 0.3 * y, 1).astype(np.float64)
    assert _tied_auc(y, score) == pytest.approx(roc_auc(y, score), abs=1e-12)


def test_capture_counts_tied_scores_by_their_share_whatever_the_order() -> None:
    """A rule model ties many leads (all those without an award score 0): where
    the top x% cuts through a tie, each tied lead counts as an equal part of it,
    so a file sorted by outcome captures what any other order does."""
    from leadscore._predict._metrics import capture, pareto

    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=np.int8)
    flat = np.zeros(10)
    assert capture(y, flat, 0.2) == pytest.approx(0.2)
    assert capture(y[::-1].copy(), flat, 0.2) == pytest.approx(0.2)
    assert [p["conversions_share"] for p in pareto(y, flat, steps=10)] == pytest.approx(
        [k / 10 for k in range(11)]
    )
    # One lead above a tie of four with two conversions: the top two leads are
    # that one (no conversion) and half of a conversion, on average, of the tie.
    score = np.array([3.0, 1.0, 1.0, 1.0, 1.0])
    assert capture(np.array([0, 1, 1, 0, 0], dtype=np.int8), score, 0.4) == pytest.approx(0.25)


def test_numeric_targets_are_compared_as_numbers(tmp_path: Path) -> None:
    from leadscore._predict._table import target_labels

    path = tmp_path / "t.csv"
    path.write_text("x,won\n1,1\n2,0\n3,\n4,1.0\n5,0\n")
    table = read_table(path)
    labels, known = target_labels(table, "won", None)
    assert labels[known].tolist() == [1, 0, 1, 0]
    assert known.tolist() == [True, True, False, True, True]
    assert target_labels(table, "won", "0")[0][known].tolist() == [0, 1, 0, 1]
    with pytest.raises(InputError, match=r"only one class.*values seen: '0', '1'"):
        target_labels(table, "won", "yes")


def test_a_numeric_target_of_more_than_0_and_1_asks_for_positive(tmp_path: Path) -> None:
    # A count (deals won: 0, 1, 2) read with 1 as the only positive value made
    # every lead with 2 a loss, silently; which values are wins is the user's call.
    from leadscore._predict._table import target_labels

    path = tmp_path / "t.csv"
    path.write_text("x,deals\n1,0\n2,1\n3,2\n4,0\n5,\n")
    table = read_table(path)
    with pytest.raises(
        InputError,
        match=r"'deals' holds numbers other than 0 and 1 \(values seen: '0', '1', '2'\).*positive",
    ):
        target_labels(table, "deals", None)
    labels, known = target_labels(table, "deals", "2")  # given: the rest are negative
    assert labels[known].tolist() == [0, 0, 1, 0]


def test_date_columns_are_read_to_the_fraction_of_a_second(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "when,day,won\n2018-02-01 12:00:00.5,2018-02-01,1\n2018-02-02 00:00:00,2018-02-02,0\n"
    )
    table = read_table(path)
    half_past_noon = from_datetime(datetime(2018, 2, 1, 12, 0, 0, 500_000, tzinfo=UTC)) / DAY
    assert table.dates["when"].tolist() == [half_past_noon, 17564.0]
    assert table.dates["day"].tolist() == [17563.0, 17564.0]


def test_a_table_with_two_columns_of_one_name_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("visits,visits,won\n1,2,1\n3,4,0\n")
    with pytest.raises(InputError, match=f"{path}: more than one column named 'visits'"):
        read_table(path)


def test_a_date_target_is_refused_by_name(tmp_path: Path) -> None:
    from leadscore._predict._table import target_labels

    path = tmp_path / "t.csv"
    path.write_text("day,won\n2018-02-01,1\n2018-02-02,0\n")
    with pytest.raises(InputError, match="target column 'day' holds dates"):
        target_labels(read_table(path), "day", None)


def _interaction_table(path: Path, rows: int = 1200) -> Path:
    """Leads whose outcome is an interaction (either of two traits, not both):
    a signal only the trees find, so the kept model is the trees (or the blend)."""
    rng = np.random.default_rng(5)
    a, b = rng.random(rows) < 0.5, rng.random(rows) < 0.5
    won = rng.random(rows) < np.where(a ^ b, 0.7, 0.1)
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["a", "b", "converted"])
        for row in zip(np.where(a, "x", "y"), np.where(b, "u", "v"), won.astype(int), strict=True):
            out.writerow(row)
    return path


def test_threads_reach_lightgbm(tmp_path: Path) -> None:
    """`--threads N` is the number LightGBM trained with (its text model
    records it); without the option, every CPU the process may use."""
    path = _interaction_table(tmp_path / "leads.csv")

    def threads(*option: str) -> int:
        out = tmp_path / f"model{'-'.join(option)}"
        done = invoke(
            "train", "--table", str(path), "--target", "converted", "-o", str(out), *option, *FAST
        )
        assert done.exit_code == 0, done.output
        found = re.search(r"^\[num_threads: (\d+)\]$", (out / "trees.txt").read_text(), re.M)
        assert found is not None
        return int(found.group(1))

    assert threads("--threads", "1") == 1
    assert threads("--threads", "3") == 3
    assert threads() == len(os.sched_getaffinity(0))
    assert (
        invoke(
            "train",
            "--table",
            str(path),
            "--target",
            "converted",
            "-o",
            str(tmp_path / "z"),
            "--threads",
            "0",
        ).exit_code
        == 2
    )


def test_time_folds_roll_back_from_the_end_of_the_training_period() -> None:
    rng = np.random.default_rng(3)
    times = rng.permutation(100).astype(np.float64)
    y = (rng.random(100) < 0.3).astype(np.int8)
    train = np.arange(100)
    folds = _time_folds(train, y, times)
    assert [valid.size for _, valid in folds] == [20, 20, 20]
    ends = []
    for fit_rows, valid in folds:
        # Fitted on everything before the slice, and nothing after it.
        assert times[fit_rows].max() < times[valid].min()
        assert fit_rows.size + valid.size == times[valid].max() + 1
        ends.append(times[valid].max())
    assert ends == [99.0, 79.0, 59.0]  # the latest slice first


def test_the_test_periods_outcomes_choose_nothing() -> None:
    """Which learner, which C, which rounds and which calibration are chosen
    on the training period alone: turning the test period's outcomes
    around changes the held-out scores and nothing of the model."""
    events = make_events()
    split = from_datetime(START + timedelta(days=90))
    history = contacts(events, Setup("deal_won"))
    late = {c.contact_id for c in history.contacts if c.cutoff >= split}
    won = {e.contact_id for e in events if e.type == "deal_won"}
    flipped = [e for e in events if not (e.type == "deal_won" and e.contact_id in late)]
    for e in events:
        if e.type == "first_contact" and e.contact_id in late and e.contact_id not in won:
            flipped.append(
                Event(f"{e.contact_id}-won", "deal_won", e.timestamp + DAY, e.contact_id)
            )
    options = Options(threads=1)
    first = train_events(events, setup=Setup("deal_won"), split_at=split, options=options)
    second = train_events(flipped, setup=Setup("deal_won"), split_at=split, options=options)
    assert first.report["roc_auc"] != second.report["roc_auc"]
    for key in ("model", "chosen_by", "logistic_c", "boosting_rounds"):
        assert first.report[key] == second.report[key]
    assert first.encoder.to_json() == second.encoder.to_json()
    assert (first.platt.a, first.platt.b) == (second.platt.a, second.platt.b)
    _, rows = event_features(first, make_events(50, seed=9))
    assert np.array_equal(first.probabilities(rows), second.probabilities(rows))


def test_the_default_positive_class_is_what_help_and_the_docs_say(tmp_path: Path) -> None:
    # --help said "default: 1/yes/true" and docs/cli.md "1/yes/true/won", while
    # y, t and converted were positive too. The lists and the labels agree now.
    from leadscore._predict._table import target_labels

    said = re.search(r"default:\s*([^,]*),", " ".join(invoke("train", "--help").output.split()))
    assert said is not None
    words = said.group(1).split("/")
    docs = Path(__file__).parents[1] / "docs"
    for page in ("cli.md", "predict.md"):
        text = " ".join((docs / page).read_text().split())
        assert "/".join(words) in text, page
    for command in ("suggest", "backtest"):
        assert "/".join(words) in " ".join(invoke(command, "--help").output.split()), command
    # Each listed word, as a user may write it, is positive; other values are not.
    values = [*words, *(f" {w.upper()} " for w in words), "no", "0", "lost", "yess", "n", "f"]
    path = tmp_path / "leads.csv"
    with path.open("w", newline="") as out:
        csv.writer(out).writerows([["lead", "outcome"], *[[i, v] for i, v in enumerate(values)]])
    labels, known = target_labels(read_table(path), "outcome", None)
    assert known.all()
    assert labels.tolist() == [1] * (2 * len(words)) + [0] * 6


def test_a_table_that_is_not_utf8_exits_1_naming_the_path(tmp_path: Path) -> None:
    # A Latin-1 export: a header of it was a UnicodeDecodeError traceback, and
    # cells of it became categories spelled as Python bytes ("b'M\\xfcnchen'").
    cells, header = tmp_path / "cells.csv", tmp_path / "header.csv"
    rows = "".join(f"L{i},München {i % 3},{i % 2}\n" for i in range(40))
    cells.write_bytes(("lead,city,converted\n" + rows).encode("latin-1"))
    header.write_bytes(("lead,Straße,converted\n" + rows.replace("ü", "u")).encode("latin-1"))
    for path in (cells, header):
        for command in (["train", "-o", str(tmp_path / "m")], ["suggest"]):
            done = invoke(command[0], "--table", str(path), "--target", "converted", *command[1:])
            assert done.exit_code == 1, done.output
            assert f"{path}: not UTF-8 text" in done.output
    assert not (tmp_path / "m").exists()


def test_predict_writes_numeric_ids_as_the_table_writes_them(tmp_path: Path) -> None:
    # An id column of numbers was typed as one (float64): predict wrote 1001.0
    # for 1001 and 42.0 for 0042, ids that join back to nothing.
    rng = np.random.default_rng(4)
    path = tmp_path / "leads.csv"
    ids = [f"{i:04d}" for i in range(42, 342)]
    visits = rng.integers(0, 10, len(ids))
    won = rng.random(len(ids)) < 0.1 + 0.08 * visits
    with path.open("w", newline="") as out:
        rows = zip(ids, visits, won.astype(int), strict=True)
        csv.writer(out).writerows([["lead", "visits", "won"], *rows])
    model = tmp_path / "m"
    done = invoke(
        "train", "--table", str(path), "--target", "won", "--id", "lead", "-o", str(model), *FAST
    )
    assert done.exit_code == 0, done.output
    done = invoke("predict", str(model), "--table", str(path), "--top", "0")
    assert done.exit_code == 0, done.output
    assert [line.split(",")[0] for line in done.output.splitlines()[1:]] == ids


def test_deciles_count_tied_scores_by_their_share_whatever_the_order(tmp_path: Path) -> None:
    """Deciles cut through ties as capture and the Pareto curve do: a rule
    model that scores every lead alike ranks nothing, in any row order. They
    took tied leads in file order, so a table sorted by outcome had deciles
    1-3 converting at 100% (lift 3.3) beside a ROC AUC of 0.5."""
    path = tmp_path / "sorted.csv"
    path.write_text("lead,plan,won\n" + "".join(f"L{i},basic,{int(i < 30)}\n" for i in range(100)))
    done = invoke(
        "backtest", str(EXAMPLES / "b2b-saas.yaml"), "--table", str(path), "--target", "won",
        "--format", "json",
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    report = orjson.loads(done.output)
    assert (report["roc_auc"], report["capture_top_20pct"]) == (0.5, 0.2)
    assert [d["leads"] for d in report["deciles"]] == [10] * 10
    assert [d["conversions"] for d in report["deciles"]] == [3] * 10
    assert [d["lift"] for d in report["deciles"]] == [1.0] * 10


def _equal_traits_table(path: Path, rows: int = 2000) -> Path:
    """Eight yes/no traits (never missing), each doubling the odds alike."""
    rng = np.random.default_rng(7)
    traits = rng.random((rows, 8)) < 0.5
    won = rng.random(rows) < 1 / (1 + np.exp(2 - 0.8 * traits.sum(axis=1)))
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow([*(f"t{k}" for k in range(8)), "won"])
        for row, outcome in zip(traits, won, strict=True):
            writer.writerow([*np.where(row, "yes", "no"), int(outcome)])
    return path


def test_suggest_writes_no_rule_and_its_negation(tmp_path: Path) -> None:
    # `t5 = no` and `t5 = yes` of a column that is never missing say one thing
    # twice (the second rule is the first negated) and took two of the rules.
    path = _equal_traits_table(tmp_path / "traits.csv")
    out = tmp_path / "suggested.yaml"
    for count in ("4", "6"):
        done = invoke(
            "suggest", "--table", str(path), "--target", "won", "--rules", count, "-o", str(out)
        )
        assert done.exit_code == 0, done.output
        columns = [next(iter(r.where)) for r in load_model(out).fit]
        assert len(columns) == len(set(columns)), columns


def test_suggest_keeps_the_rules_asked_for_when_several_enter_at_once(tmp_path: Path) -> None:
    # Traits of about equal signal enter the L1 path between two of its
    # steps: it went from 2 candidates to 8 and suggest kept the 2, not 6.
    path, out = _equal_traits_table(tmp_path / "traits.csv"), tmp_path / "suggested.yaml"
    for count in (None, 4, 7):
        done = invoke(
            "suggest", "--table", str(path), "--target", "won", "-o", str(out),
            *([] if count is None else ["--rules", str(count)]),
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        model = load_model(out)
        assert len(model.fit) == (count or 6), done.output
        # Every trait raises the odds: yes earns points, no loses them.
        assert all((r.points > 0) == (list(r.where.values()) == ["yes"]) for r in model.fit)


def test_an_identity_link_after_the_cut_off_reaches_no_feature() -> None:
    """Anonymous visits become a contact's when an event links them, and not
    before (a replay as of the cut-off does not know the link yet). The link
    came from the whole log: a purchase that carried the visitor's anonymous
    id gave every converter, and no one else, visits before its cut-off and
    an earlier cut-off, a perfect leak."""
    rng = np.random.default_rng(11)
    events: list[Event] = []
    for i in range(300):
        contact, visitor = f"c{i:03d}", f"a{i:03d}"
        first = START + timedelta(days=int(rng.integers(0, 60)))
        for k in range(2):  # browsing before signing up, anonymous
            when = from_datetime(first - timedelta(hours=5 - k))
            events.append(Event(f"{contact}-pv{k}", "page_view", when, anonymous_id=visitor))
        events.append(Event(f"{contact}-fc", "first_contact", from_datetime(first), contact))
        if rng.random() < 0.3:  # converting has nothing to do with anything seen
            when = from_datetime(first + timedelta(days=10))
            events.append(Event(f"{contact}-won", "deal_won", when, contact, visitor))
    unlinked = [
        Event(e.id, e.type, e.timestamp, e.contact_id) if e.type == "deal_won" else e
        for e in events
    ]
    setup = Setup("deal_won", 1.0)
    _, linked_table, y, cutoffs = event_table(events, setup)
    _, plain_table, y_plain, plain_cutoffs = event_table(unlinked, setup)
    assert np.array_equal(y, y_plain)
    assert np.array_equal(cutoffs, plain_cutoffs)
    assert linked_table.columns.keys() == plain_table.columns.keys()
    for name, column in plain_table.columns.items():
        other = linked_table.columns[name]
        if column.dtype == np.float64:
            assert np.array_equal(other, column, equal_nan=True), name
        else:
            assert other.tolist() == column.tolist(), name
    # Linked by the signing up itself, the visits before it are the contact's
    # at its cut-off, as a replay then has them.
    signed = [
        Event(e.id, e.type, e.timestamp, e.contact_id, f"a{e.contact_id[1:]}")
        if e.type == "first_contact" and e.contact_id
        else e
        for e in unlinked
    ]
    _, signed_table, _, signed_cutoffs = event_table(signed, setup)
    assert np.array_equal(signed_cutoffs, plain_cutoffs)
    assert signed_table.columns["page_view count"].tolist() == [2.0] * y.size


def test_an_id_column_with_duplicates_exits_1_naming_it(table_path: Path, tmp_path: Path) -> None:
    # A table of one row per lead whose id repeats (an export appended twice)
    # trained without a word: each copied lead sat in training and validation
    # folds at once, and the report's AUC was that of leads already seen.
    header, *rows = table_path.read_text().splitlines()
    twice = tmp_path / "twice.csv"
    twice.write_text("\n".join([header, *rows, *rows[:40]]) + "\n")
    args = ["--table", str(twice), "--target", "converted", "--id", "lead"]
    done = invoke("train", *args, "-o", str(tmp_path / "m"), *FAST)
    assert done.exit_code == 1, done.output
    assert "id column 'lead' has 40 values on more than one row (such as 'L00000')" in done.output
    assert not (tmp_path / "m").exists()


def test_rows_without_a_split_date_are_counted_and_warned_of(
    table_path: Path, tmp_path: Path
) -> None:
    """A row with no date in --split-column is neither before nor after the
    split: it was left out of training and testing without a word."""
    header, *rows = table_path.read_text().splitlines()
    dated = tmp_path / "dated.csv"
    days = [
        "" if i % 40 == 7 else (date(2026, 1, 1) + timedelta(days=i % 200)).isoformat()
        for i in range(len(rows))
    ]
    undated = days.count("")
    dated.write_text(
        "\n".join([f"{header},signed_up", *(f"{r},{d}" for r, d in zip(rows, days, strict=True))])
        + "\n"
    )
    args = ["--table", str(dated), "--target", "converted", "--id", "lead"]
    split = ["--split-column", "signed_up", "--split-at", "2026-05-01"]
    done = CliRunner().invoke(cli, ["train", *args, *split, "-o", str(tmp_path / "m"), *FAST])
    assert done.exit_code == 0, done.output
    assert " ".join(done.stderr.split()) == (
        f"warning {dated}: {undated} rows with no date in 'signed_up', "
        "left out of training and testing"
    )
    meta = TrainedModel.load(tmp_path / "m").meta
    assert meta["source"]["left_out"] == {"no date in 'signed_up'": undated}
    assert meta["training_data"]["rows"] == len(rows) - undated
    # Dates only where the target is missing: no split to make, said as such.
    bare = tmp_path / "bare.csv"
    unknown = rows[0].rsplit(",", 1)[0] + ",,2026-01-01"
    bare.write_text("\n".join([f"{header},signed_up", unknown, *(f"{r}," for r in rows[1:])]))
    bare_args = ["--table", str(bare), "--target", "converted"]
    refused = invoke("train", *bare_args, *split, "-o", str(tmp_path / "n"), *FAST)
    assert refused.exit_code == 1
    assert "split column 'signed_up' has no date on any row with a 'converted' value" in (
        " ".join(refused.output.split())
    )


def test_infinite_numbers_are_missing_values(table_path: Path, tmp_path: Path) -> None:
    # Arrow reads inf, -inf and 1e400 in a numeric CSV column as infinities;
    # the logistic regression's clipping percentiles became NaN and training
    # ended in scikit-learn's "Input X contains NaN" traceback. Text read as
    # numbers already took a non-finite value for a missing one.
    header, *rows = table_path.read_text().splitlines()
    for k, spelled in enumerate(["inf", "-inf", "1e400", "-Infinity"]):
        lead, _, rest = rows[k].split(",", 2)
        rows[k] = f"{lead},{spelled},{rest}"
    path = tmp_path / "inf.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    table = read_table(path)
    assert table.is_numeric("visits")
    assert np.isnan(table.columns["visits"][:4]).all()
    assert np.isfinite(table.columns["visits"][4:]).all()
    model = tmp_path / "m"
    args = ["--table", str(path), "--target", "converted", "--id", "lead"]
    done = invoke("train", *args, "--exclude", "sales_verdict", "-o", str(model), *FAST)
    assert done.exit_code == 0, done.output
    done = invoke("predict", str(model), "--table", str(path), "--format", "jsonl")
    assert done.exit_code == 0, done.output
    assert len(done.output.splitlines()) == len(rows)


def test_predict_on_a_table_without_the_id_column_says_so(
    trained_dir: Path, table_path: Path, tmp_path: Path
) -> None:
    # Without the model's id column, leads were numbered 1, 2, ... in silence:
    # numbers that looked like ids and joined back to the wrong leads.
    path = tmp_path / "no-id.csv"
    path.write_text(
        "\n".join(line.split(",", 1)[1] for line in table_path.read_text().splitlines()) + "\n"
    )
    done = invoke("predict", str(trained_dir), "--table", str(path), "--top", "0")
    assert done.exit_code == 0, done.output
    assert f"{path}: no column 'lead' (the model's id); leads are numbered by row" in " ".join(
        done.output.split()
    )


def test_a_suggested_threshold_is_the_one_the_rule_writes(tmp_path: Path) -> None:
    # The threshold was written to 4 significant digits (revenue >= 148700)
    # but the rule was fitted, described ("N leads had ...") and its grades
    # cut with the unrounded quantile (148728.5): leads in between got points
    # from the model that the suggestion had not counted.
    from leadscore._predict._suggest import suggest

    rng = np.random.default_rng(3)
    revenue = rng.integers(100_000, 200_000, 2000)
    won = (rng.random(2000) < np.where(revenue >= 150_000, 0.6, 0.2)).astype(np.int8)
    table = from_columns({"revenue": [str(v) for v in revenue]})
    made = suggest(table, ["revenue"], won, events=False, rules=2, source="t")
    fit = np.zeros(revenue.size)
    for rule in made.document["fit"]:
        fit += rule["points"] * (revenue >= rule["where"]["revenue"]["gte"])
    assert np.array_equal(made.fit, fit)


def test_a_model_file_whose_parts_do_not_fit_exits_1(
    trained_dir: Path, table_path: Path, tmp_path: Path
) -> None:
    """A model.json edited by hand loaded and then failed in scipy, LightGBM
    or the command with a traceback (a feature removed, `source` null, a
    trees file cut short), or scored NaN for every lead (calibration NaN)."""
    document = orjson.loads((trained_dir / "model.json").read_bytes())
    cases: dict[str, dict[str, Any]] = {
        "features": {**document, "encoder": document["encoder"][:-1]},
        "source": {**document, "source": None},
        "id": {**document, "source": {**document["source"], "id": 5}},
        "calibration": {**document, "calibration": {"method": "platt", "a": "NaN", "b": 0}},
        "kind": {**document, "learner": {**document["learner"], "kind": "svm"}},
        "categories": {
            **document,
            "encoder": [
                {**f, "values": [1, 2]} if f["kind"] == "categorical" else f
                for f in document["encoder"]
            ],
        },
    }
    for name, changed in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "model.json").write_bytes(orjson.dumps(changed))
        if (trained_dir / "trees.txt").exists():
            (folder / "trees.txt").write_bytes((trained_dir / "trees.txt").read_bytes())
        done = invoke("predict", str(folder), "--table", str(table_path))
        assert done.exit_code == 1, (name, done.output)
        assert f"{folder / 'model.json'}: a damaged model file" in done.output, name
    cut = tmp_path / "cut"
    cut.mkdir()
    (cut / "model.json").write_bytes(
        orjson.dumps({**document, "learner": {"kind": "gbm", "file": "trees.txt"}})
    )
    (cut / "trees.txt").write_text("tree\nversion=v4\n")
    done = invoke("predict", str(cut), "--table", str(table_path))
    assert done.exit_code == 1, done.output
    assert f"{cut / 'trees.txt'}: damaged trees" in done.output


def test_a_trees_file_cut_short_exits_1_with_leadscores_message_alone(tmp_path: Path) -> None:
    """A trees.txt cut short in a tree or within a parameter line crashed
    the command in LightGBM (an abort, a segmentation fault), and one cut
    short in its header printed LightGBM's own "[LightGBM] [Fatal] ..." on
    stderr before leadscore's message. The real command: LightGBM writes to
    the process's stderr, which click's runner does not capture."""
    path = _interaction_table(tmp_path / "leads.csv")
    model = tmp_path / "model"
    done = invoke("train", "--table", str(path), "--target", "converted", "-o", str(model), *FAST)
    assert done.exit_code == 0, done.output
    text = (model / "trees.txt").read_text()
    cuts = {
        "header": text.index("label_index="),
        "tree": text.index("\nTree=3\n") + 40,
        "parameters": text.index("[num_threads: ") + len("[num_threads:"),
    }
    # Without its digest, as a model saved before digests: the layout check's case.
    document = json.loads((model / "model.json").read_text())
    del document["learner"]["sha256"]
    for name, end in cuts.items():
        folder = tmp_path / name
        folder.mkdir()
        (folder / "model.json").write_text(json.dumps(document))
        (folder / "trees.txt").write_text(text[:end])
        ran = subprocess.run(
            [sys.executable, "-m", "leadscore", "predict", str(folder), "--table", str(path)],
            capture_output=True,
            timeout=120,
            check=False,
        )
        stderr = ran.stderr.decode(errors="replace")
        assert ran.returncode == 1, (name, ran.returncode, stderr)
        assert f"{folder / 'trees.txt'}: damaged trees (" in stderr, name
        assert "[Fatal]" not in stderr, (name, stderr)
        assert ran.stdout == b"", name


def test_a_trees_file_changed_in_place_is_refused_by_its_digest(tmp_path: Path) -> None:
    """An edit that keeps every length (one digit of a threshold changed)
    passes the layout check and reached LightGBM, which trusts its text; the
    digest model.json records refuses any change, and a model saved without
    one still loads."""
    path = _interaction_table(tmp_path / "leads.csv")
    model = tmp_path / "model"
    assert (
        invoke(
            "train", "--table", str(path), "--target", "converted", "-o", str(model), *FAST
        ).exit_code
        == 0
    )
    text = (model / "trees.txt").read_text()
    at = text.index("\nthreshold=") + len("\nthreshold=")
    digit = next(i for i in range(at, len(text)) if text[i].isdigit())
    changed = text[:digit] + ("1" if text[digit] != "1" else "2") + text[digit + 1 :]
    (model / "trees.txt").write_text(changed)
    done = invoke("predict", str(model), "--table", str(path))
    assert done.exit_code == 1, done.output
    assert f"{model / 'trees.txt'}: damaged trees (not the file trained" in done.output
    document = json.loads((model / "model.json").read_text())
    del document["learner"]["sha256"]
    (model / "model.json").write_text(json.dumps(document))
    assert invoke("predict", str(model), "--table", str(path)).exit_code == 0


def test_a_backtest_with_no_conversion_to_measure_exits_1_saying_so(
    log: tuple[list[Event], Path], tmp_path: Path
) -> None:
    """A misspelt --outcome (won for deal_won), or a --from after the last
    contact, printed a report of 0 conversions and exited 0."""
    _, path = log
    model = str(EXAMPLES / "b2b-saas.yaml")
    typo = invoke("backtest", model, "--events", str(path), "--outcome", "won")
    assert typo.exit_code == 1, typo.output
    assert "none of the 600 labelled contacts had a 'won' event after its cut-off" in " ".join(
        typo.output.split()
    )
    late = ["--outcome", "deal_won", "--from", "2030-01-01"]
    done = invoke("backtest", model, "--events", str(path), *late)
    assert done.exit_code == 1, done.output
    assert "no contact with a cut-off from 2030-01-01T00:00:00Z can be labelled" in done.output


def test_a_semicolon_csv_reads_decimal_commas_as_numbers(tmp_path: Path) -> None:
    """Spreadsheets where the comma is the decimal separator write CSV with
    semicolons and 4,75 for 4.75: such a column was a category of nearly
    distinct values, which trained to nothing without a word."""
    values = [f"{i / 7:.2f}" for i in range(200)]
    path = tmp_path / "leads.csv"
    lines = ["lead;minutes;ratio;won", "L0;n.a.;1.5;yes"]
    lines += [f"L{i + 1};{v.replace('.', ',')};{v};no" for i, v in enumerate(values)]
    path.write_text("\n".join(lines) + "\n")
    table = read_table(path)
    assert table.is_numeric("minutes")
    assert table.columns["minutes"][1:].tolist() == [float(v) for v in values]
    assert math.isnan(table.columns["minutes"][0])
    assert table.columns["ratio"][:2].tolist() == [1.5, 0.0]  # a decimal point still is one
    # With commas as the delimiter, a comma in a quoted cell is no decimal
    # separator (1,250 is 1250 there: test_thousands_separators_...).
    commas = tmp_path / "commas.csv"
    commas.write_text('lead,amount\nL1,"1,250"\nL2,"3,500"\n')
    assert read_table(commas).columns["amount"].tolist() == [1250.0, 3500.0]


def test_a_target_of_several_negative_values_is_warned_of(tmp_path: Path) -> None:
    """won / lost / open without --positive: won was positive and open deals
    counted as lost without a word. It still trains so (a column of several
    spellings is read that way), with a warning on stderr naming the values
    and their counts; stdout stays the report (valid JSON with --format json)."""
    rng = np.random.default_rng(5)
    visits = rng.integers(0, 10, 400)
    not_won = np.where(rng.random(400) < 0.7, "lost", "open")
    outcome = np.where(rng.random(400) < 0.05 + 0.06 * visits, "won", not_won)
    path = tmp_path / "deals.csv"
    with path.open("w", newline="") as out:
        rows = [[f"D{i}", v, o] for i, (v, o) in enumerate(zip(visits, outcome, strict=True))]
        csv.writer(out).writerows([["deal", "visits", "outcome"], *rows])
    counts = {v: int((outcome == v).sum()) for v in ("won", "lost", "open")}
    said = (
        f"warning {path}: target column 'outcome': 'won' ({counts['won']:,}) taken as positive "
        f"and every other value as negative: 'lost' ({counts['lost']:,}), 'open' "
        f"({counts['open']:,}); give --positive VALUE"
    )
    args = ["--table", str(path), "--target", "outcome"]
    model = tmp_path / "m"
    done = invoke("train", *args, "--id", "deal", "-o", str(model), "--format", "json", *FAST)
    assert done.exit_code == 0, done.output
    assert said in " ".join(done.stderr.split())
    assert orjson.loads(done.stdout)["rows"] > 0  # the report, nothing else
    for command in (["suggest"], ["backtest", str(model), "--format", "json"]):
        done = invoke(command[0], *command[1:], *args)
        assert done.exit_code == 0, done.output
        assert said in " ".join(done.stderr.split()), command
        if command[0] == "backtest":
            orjson.loads(done.stdout)
    # Said which value is positive, or of two values, there is nothing to warn of.
    done = invoke("suggest", *args, "--positive", "won")
    assert done.exit_code == 0, done.output
    assert "warning" not in done.stderr
    (tmp_path / "two.csv").write_text(path.read_text().replace(",open", ",lost"))
    done = invoke("suggest", "--table", str(tmp_path / "two.csv"), "--target", "outcome")
    assert done.exit_code == 0, done.output
    assert "warning" not in done.stderr


def test_predict_on_a_table_of_no_rows_writes_the_header_of_one_of_many(
    trained_dir: Path, table_path: Path, tmp_path: Path
) -> None:
    # The header was taken from the first row: with none, it was
    # id,probability while factors were asked for (the default --top 3).
    empty = tmp_path / "empty.csv"
    empty.write_text(table_path.read_text().splitlines()[0] + "\n")
    for top, header in (("3", "id,probability,raising,lowering"), ("0", "id,probability")):
        for table in (empty, table_path):
            done = invoke("predict", str(trained_dir), "--table", str(table), "--top", top)
            assert done.exit_code == 0, done.output
            assert done.stdout.splitlines()[0] == header, (top, table)
        assert done.stdout.splitlines()[1:]  # rows of the full table


def test_counted_messages_say_one_in_the_singular(table_path: Path, tmp_path: Path) -> None:
    # "has 1 values on more than one row", "suggested 1 rules", "of 1 conversions".
    header, *rows = table_path.read_text().splitlines()
    twice = tmp_path / "twice.csv"
    twice.write_text("\n".join([header, *rows, rows[0]]) + "\n")
    with pytest.raises(InputError, match="has 1 value on more than one row"):
        train_table(read_table(twice), target="converted", id_column="lead")
    scorecard = tmp_path / "s.yaml"
    args = ["--table", str(table_path), "--target", "converted", "--exclude", "sales_verdict"]
    done = invoke("suggest", *args, "--rules", "1", "-o", str(scorecard))
    assert done.exit_code == 0, done.output
    assert "suggested 1 rule from 1,500 leads" in done.stderr
    lines = ["visits,won", "9,1", *(f"{i % 9},0" for i in range(60))]
    one = tmp_path / "one.csv"
    one.write_text("\n".join(lines) + "\n")
    done = invoke("backtest", str(scorecard), "--table", str(one), "--target", "won")
    assert done.exit_code == 0, done.output
    said = " ".join(done.stdout.split())
    assert "of 1 conversion " in said, said


def test_thousands_separators_in_a_comma_csv_are_read_as_numbers(tmp_path: Path) -> None:
    """A spreadsheet writes 5,220 quoted in a CSV delimited by commas: such a
    column was a category of nearly distinct values, useless to every learner."""
    amounts = [f"{i * 1234567 % 9876543 / 100:,.2f}" for i in range(200)]
    assert sum("," in a for a in amounts) > 150
    path = tmp_path / "leads.csv"
    with path.open("w", newline="") as out:
        rows = [[f"L{i}", a, f"{i * 37 % 5000:,}"] for i, a in enumerate(amounts)]
        csv.writer(out).writerows([["lead", "amount", "visits"], ["L", "see notes", "?"], *rows])
    table = read_table(path)
    assert table.is_numeric("amount")
    assert math.isnan(table.columns["amount"][0])  # the 98% rule, as for other numbers
    assert table.columns["amount"][1:].tolist() == [float(a.replace(",", "")) for a in amounts]
    assert table.columns["visits"][1:].tolist() == [float(i * 37 % 5000) for i in range(200)]
    # Digits and commas that are no thousands separator make the column's
    # commas ambiguous (a decimal comma, a list): it stays as it was.
    for odd in ("3,5", "0,250", "12,3456", "1,2,3"):
        path.write_text(
            f'lead,amount\nL0,"{odd}"\n' + "".join(f'L{i},"1,{i:03d}"\n' for i in range(99))
        )
        assert not read_table(path).is_numeric("amount"), odd
    # Only commas delimit such a file: with semicolons, 5,220 is 5.22 (a
    # decimal comma), with tabs, as written.
    for delimiter, read in ((";", [5.22, 1.5]), ("\t", ["5,220", "1,5"])):
        path.write_text(f"lead{delimiter}amount\nL1{delimiter}5,220\nL2{delimiter}1,5\n")
        assert read_table(path).columns["amount"].tolist() == read, delimiter


@pytest.mark.parametrize("command", ["train", "suggest"])
def test_a_misspelt_outcome_is_said_as_backtest_says_it(
    log: tuple[list[Event], Path], tmp_path: Path, command: str
) -> None:
    """train and suggest said "every labelled contact never had a 'won'
    event", for a misspelt --outcome (won for deal_won)."""
    _, path = log
    output = ["-o", str(tmp_path / "out")]
    typo = invoke(command, "--events", str(path), "--outcome", "won", *output)
    assert typo.exit_code == 1, typo.output
    assert (
        "none of the 600 labelled contacts had a 'won' event after its cut-off: outcome 'won' "
        "has one class (is --outcome the event type of a conversion?)"
    ) in " ".join(typo.output.split())
