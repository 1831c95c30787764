"""The command line, run as a real subprocess: outputs, exit codes, messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from leadscore._cli import cli

from ._support import CASES, assert_scorecards, load_case

EXAMPLES = Path(__file__).parents[1] / "src" / "leadscore" / "examples"


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "leadscore", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


def case_files(tmp_path: Path, name: str) -> tuple[Path, Path, dict[str, Any]]:
    data = YAML(typ="safe").load(
        (Path(__file__).parent / "conformance" / f"{name}.yaml").read_text()
    )
    model = tmp_path / "model.json"
    model.write_text(json.dumps(data["model"]))
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in data["events"]))
    return model, events, data


@pytest.mark.parametrize("path", CASES, ids=lambda path: path.stem)
def test_score_jsonl_prints_exactly_the_scorecards(tmp_path: Path, path: Path) -> None:
    model, events, data = case_files(tmp_path, path.stem)
    firings = tmp_path / "firings.jsonl"
    done = run(
        "score",
        str(model),
        str(events),
        "--at",
        data["at"],
        "--format",
        "jsonl",
        "--firings",
        str(firings),
    )
    assert done.returncode == 0, done.stderr.decode()
    lines = [orjson.loads(line) for line in done.stdout.splitlines()]
    case = load_case(path)
    from leadscore._replay import replay

    assert_scorecards(replay(case.model, case.events, case.at).scorecards, lines)
    assert_scorecards(
        replay(case.model, case.events, case.at).scorecards, data["expect"]["scorecards"]
    )
    assert [orjson.loads(line) for line in firings.read_bytes().splitlines()] == data["expect"][
        "firings"
    ]


def test_bad_records_are_reported_and_the_good_ones_scored(tmp_path: Path) -> None:
    model, events, data = case_files(tmp_path, "03-decay-and-clamp")
    good = events.read_bytes()
    events.write_bytes(b'{"id": "x1", "type": "page_view"}\nnot json\n' + good)
    done = run("score", str(model), str(events), "--at", data["at"], "--format", "jsonl")
    assert done.returncode == 0
    err = done.stderr.decode()
    assert f"{events}:1: contact_id" in err
    assert f"{events}:2:" in err
    assert "2 bad records skipped" in err
    got = [orjson.loads(line) for line in done.stdout.splitlines()]
    assert [card["contact_id"] for card in got] == ["dana", "erik", "fay", "gus"]

    strict = run("score", str(model), str(events), "--at", data["at"], "--strict")
    assert strict.returncode == 1
    assert f"{events}:1: contact_id" in strict.stderr.decode()
    assert strict.stdout == b""


def test_standard_input_csv_output_and_anonymous_profiles(tmp_path: Path) -> None:
    model, events, data = case_files(tmp_path, "08-identity-and-order")
    done = run(
        "score",
        str(model),
        "-",
        "--at",
        data["at"],
        "--format",
        "csv",
        "--include-anonymous",
        stdin=events.read_bytes(),
    )
    assert done.returncode == 0, done.stderr.decode()
    rows = done.stdout.decode().splitlines()
    assert rows[0].split(",")[:3] == ["contact_id", "anonymous_id", "score"]
    assert [row.split(",")[0] for row in rows[1:]] == ["kim", "lee", "max", ""]
    assert rows[-1].split(",")[1] == "anon-2"


def test_table_lists_the_hottest_first(tmp_path: Path) -> None:
    model, events, data = case_files(tmp_path, "03-decay-and-clamp")
    done = run("score", str(model), str(events), "--at", data["at"])
    assert done.returncode == 0
    text = done.stdout.decode()
    assert text.index("fay") < text.index("dana") < text.index("gus") < text.index("erik")


def test_explain_reconciles_with_the_scorecard(tmp_path: Path) -> None:
    model, events, data = case_files(tmp_path, "07-triggers")
    done = run(
        "explain",
        str(model),
        str(events),
        "--contact",
        "ida",
        "--at",
        data["at"],
        "--format",
        "json",
    )
    assert done.returncode == 0, done.stderr.decode()
    why = orjson.loads(done.stdout)
    assert why["scorecard"] == next(
        c for c in data["expect"]["scorecards"] if c["contact_id"] == "ida"
    ) | {
        "score": why["scorecard"]["score"],
        "stage_score": why["scorecard"]["stage_score"],
        "tag_scores": why["scorecard"]["tag_scores"],
    }
    assert round(sum(a["counted"] for a in why["awards"]), 2) == why["scorecard"]["score"]
    assert [e["stage"] for e in why["stage_entries"]] == ["new", "mql"]
    assert {f["trigger"] for f in why["firings"]} >= {"crossed-75-once", "to-mql", "became-a"}
    text = run("explain", str(model), str(events), "--contact", "ida", "--at", data["at"])
    assert text.returncode == 0
    assert "points by rule" in text.stdout.decode()
    missing = run("explain", str(model), str(events), "--contact", "nobody", "--at", data["at"])
    assert missing.returncode == 1
    assert "nobody" in missing.stderr.decode()


def test_explain_says_when_the_clamp_bounds_the_sum(tmp_path: Path) -> None:
    model = tmp_path / "m.yaml"
    model.write_text(
        "version: 1\nname: floor\nclamp: {min: 0}\n"
        "rules:\n  - {id: unsubscribed, event: unsubscribe, points: -20}\n"
    )
    events = tmp_path / "e.jsonl"
    events.write_text(
        '{"id": "e1", "type": "unsubscribe", "timestamp": "2026-05-01T00:00:00Z", '
        '"contact_id": "ann"}\n'
    )
    done = run("explain", str(model), str(events), "--contact", "ann", "--at", "2026-05-02")
    assert done.returncode == 0, done.stderr.decode()
    # Each line's words, without the tables' borders.
    lines = [" ".join(line.replace("│", " ").split()) for line in done.stdout.decode().splitlines()]
    assert lines[0].startswith("ann as of 2026-05-02T00:00:00Z: score 0.00")
    assert "Why: points by rule" in lines
    assert "total -20.00" in lines
    assert "after the clamp 0.00" in lines


@pytest.mark.parametrize("name", ["starter", "b2b-saas", "ecommerce"])
def test_examples_validate(name: str) -> None:
    done = run("validate", str(EXAMPLES / f"{name}.yaml"))
    assert done.returncode == 0, done.stderr.decode()
    assert b"valid" in done.stdout


def test_validate_reports_every_problem_with_path_and_line(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text(
        "version: 1\n"
        "name: broken\n"
        "rules:\n"
        "  - id: ok\n"
        "    event: page_view\n"
        "    points: 5\n"
        "    limit: {times: 1, per: daily}\n"
        "  - id: Bad Id\n"
        "    event: page_view\n"
        "    points: 3\n"
    )
    done = run("validate", str(model))
    assert done.returncode == 1
    err = done.stderr.decode()
    assert (
        f"{model}:7: rules[0].limit.per: expected one of day, week, month, ever, got 'daily'" in err
    )
    assert f"{model}:8: rules[1].id" in err


def test_validate_refuses_a_webhook_url_that_can_never_be_called(tmp_path: Path) -> None:
    # As an upload to the service would be; `score` takes the model as it is
    # (it calls no webhook), as the service reads back a model stored before.
    model = tmp_path / "model.yaml"
    model.write_text(
        "version: 1\nname: demo\nrules:\n  - id: ok\n    event: page_view\n    points: 5\n"
        "triggers:\n  - id: hot\n    when: {score_crosses: 1}\n    actions:\n"
        "      - webhook: {url: 'http://a..b/hook'}\n"
    )
    done = run("validate", str(model))
    assert done.returncode == 1
    assert done.stderr.decode().splitlines()[-1].strip() == (
        f"{model}:11: triggers[0].actions[0].webhook.url: expected an http:// or https:// "
        "address that can be called, got 'http://a..b/hook': 'a..b' is not a host name: "
        "each part between dots needs 1 to 63 characters"
    )
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"id": "e1", "type": "page_view", "timestamp": "2026-05-01T10:00:00Z", '
        '"contact_id": "c1"}\n'
    )
    scored = run("score", str(model), str(events), "--format", "jsonl")
    assert scored.returncode == 0, scored.stderr.decode()
    assert json.loads(scored.stdout)["score"] == 5


def test_validate_refuses_nul_with_its_path(tmp_path: Path) -> None:
    model = tmp_path / "model.yaml"
    model.write_text(
        "version: 1\nname: demo\nrules:\n  - id: ok\n    event: page_view\n    points: 5\n"
        '    tags: ["web\\0"]\n'
    )
    done = run("validate", str(model))
    assert done.returncode == 1
    assert done.stderr.decode().splitlines()[-1].strip() == (
        f"{model}:7: rules[0].tags[0]: must not contain U+0000 (the NUL character)"
    )


def test_schema_is_json_schema_with_the_where_language() -> None:
    done = run("schema")
    assert done.returncode == 0
    schema = orjson.loads(done.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"Where", "Test", "Rule"} <= set(schema["$defs"])


@pytest.mark.parametrize(
    "args",
    [
        ("score",),
        ("score", "model.yaml"),
        ("frobnicate",),
        ("score", "m.yaml", "e.jsonl", "--format", "xml"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    assert run(*args).returncode == 2


def test_a_bad_time_is_a_usage_error(tmp_path: Path) -> None:
    model, events, _ = case_files(tmp_path, "01-rules-and-conditions")
    done = run("score", str(model), str(events), "--at", "yesterday")
    assert done.returncode == 2
    assert b"--at" in done.stderr


def test_a_missing_events_file_is_bad_input(tmp_path: Path) -> None:
    model, _, _ = case_files(tmp_path, "01-rules-and-conditions")
    done = run("score", str(model), str(tmp_path / "nope.jsonl"))
    assert done.returncode == 1
    assert b"nope.jsonl" in done.stderr


@pytest.mark.parametrize("option", ["--output", "--firings"])
def test_an_output_that_cannot_be_made_is_bad_input(tmp_path: Path, option: str) -> None:
    model, events, _ = case_files(tmp_path, "01-rules-and-conditions")
    missing = tmp_path / "no-such-directory" / "out.jsonl"
    done = CliRunner().invoke(
        cli, ["score", str(model), str(events), "--format", "jsonl", option, str(missing)]
    )
    assert done.exit_code == 1
    assert f"error: {missing}: No such file or directory" in done.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["generate", "g.jsonl", "--contacts", "0"], "contacts must be at least 1, got 0"),
        (["generate", "g.jsonl", "--contacts", "10", "--events", "10"], "(80 for 10 contacts)"),
        (["generate", "g.jsonl", "--days", "0"], "days must be at least 1, got 0"),
        (["generate", "g.txt"], "cannot tell the format of 'g.txt' from its name; use .jsonl"),
        (["generate", "g.jsonl", "--start", "9999-12-01"], "go past the year 9999"),
        (["generate", "g.jsonl", "--start", "2026-02-30"], "Invalid value for --start: expected"),
        (["generate", "g.jsonl", "--days", "999999999999"], "go past the year 9999"),
        (["demo", "--scoring-only", "--contacts", "100", "--events", "5"], "(800 for 100"),
    ],
)
def test_bad_generator_arguments_are_usage_errors(
    tmp_path: Path, args: list[str], message: str
) -> None:
    paths = {"g.jsonl": str(tmp_path / "g.jsonl"), "g.txt": str(tmp_path / "g.txt")}
    demo = ["--dir", str(tmp_path / "demo")] if args[0] == "demo" else []
    done = CliRunner().invoke(cli, [paths.get(arg, arg) for arg in args] + demo)
    assert done.exit_code == 2, done.output
    assert message in done.output
    assert "format=" not in done.output


def test_an_instant_past_the_year_9999_is_a_bad_record_not_a_crash(tmp_path: Path) -> None:
    # 23:30 at -01:00 on 9999-12-31 is in the year 10000 in UTC: it was read,
    # then writing the contact's last_event_at failed with an OverflowError.
    events = tmp_path / "events.jsonl"
    good = {"id": "e1", "type": "demo_request", "contact_id": "c1",
            "timestamp": "2026-05-04T10:00:00Z"}  # fmt: skip
    far = {**good, "id": "e2", "contact_id": "c2", "timestamp": "9999-12-31T23:30:00-01:00"}
    events.write_bytes(orjson.dumps(good) + b"\n" + orjson.dumps(far) + b"\n")
    model = str(EXAMPLES / "b2b-saas.yaml")
    done = CliRunner().invoke(
        cli, ["score", model, str(events), "--at", "9999-12-31T00:00:00Z", "--format", "jsonl"]
    )
    assert done.exit_code == 0, done.output
    assert "events.jsonl:2: timestamp: out of range" in done.output
    assert [orjson.loads(line)["contact_id"] for line in done.stdout.splitlines()] == ["c1"]
    strict = CliRunner().invoke(cli, ["score", model, str(events), "--strict"])
    assert strict.exit_code == 1
    assert "timestamp: out of range" in strict.output
    late = CliRunner().invoke(cli, ["score", model, str(events), "--at", far["timestamp"]])
    assert late.exit_code == 2
    assert "--at" in late.output
    assert "out of range" in late.output


def test_generate_then_score(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    done = run(
        "generate",
        str(log),
        "--contacts",
        "300",
        "--events",
        "6000",
        "--seed",
        "3",
        "--days",
        "30",
        "--start",
        "2026-03-02",
    )
    assert done.returncode == 0, done.stderr.decode()
    scored = run(
        "score",
        str(EXAMPLES / "b2b-saas.yaml"),
        str(log),
        "--at",
        "2026-04-01",
        "--format",
        "jsonl",
    )
    assert scored.returncode == 0, scored.stderr.decode()
    cards = [orjson.loads(line) for line in scored.stdout.splitlines()]
    assert 200 <= len(cards) <= 300
    # A realistic log spreads contacts over bands and stages.
    assert len({card["band"] for card in cards}) >= 2
    assert len({card["stage"] for card in cards}) >= 2


def test_demo_scores_a_generated_log_and_leaves_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    done = run(
        "demo", "--scoring-only", "--dir", str(folder), "--contacts", "300", "--events", "9000",
        "--top", "5",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    text = done.stdout.decode()
    assert "Top 5 of" in text
    assert "Bands:" in text
    # Started as `python -m leadscore`, it says so: its argv[0] is __main__.py.
    assert " -m leadscore explain " in text
    assert "__main__" not in text
    cards = [orjson.loads(line) for line in (folder / "scores.jsonl").read_bytes().splitlines()]
    assert len(cards) >= 250
    assert (folder / "events.jsonl").stat().st_size > 0
    assert all(
        "trigger" in orjson.loads(line)
        for line in (folder / "firings.jsonl").read_bytes().splitlines()
    )


def test_counts_of_one_are_singular(tmp_path: Path) -> None:
    # "1 contacts, 1 firings" and "valid — 1 rules, 1 fit rules, 1 stages".
    model = tmp_path / "model.yaml"
    model.write_text(
        "version: 1\nname: one\n"
        "rules:\n  - {id: demo, event: demo_request, points: 30}\n"
        "fit:\n  - {id: ceo, where: {title: CEO}, points: 10}\n"
        "stages:\n  - {name: lead}\n"
        "triggers:\n  - {id: hot, when: {event: demo_request}, actions: [{add_tag: hot}]}\n"
    )
    events = tmp_path / "events.jsonl"
    events.write_text(
        '{"id": "e1", "type": "demo_request", "contact_id": "c1",'
        ' "timestamp": "2026-05-04T10:00:00Z"}\n{"id": "e2"}\n'
    )
    valid = CliRunner().invoke(cli, ["validate", str(model)])
    assert valid.exit_code == 0, valid.output
    assert valid.stdout.endswith("valid — 1 rule, 1 fit rule, 1 stage, 1 trigger\n")
    done = CliRunner().invoke(cli, ["score", str(model), str(events), "--format", "jsonl"])
    assert done.exit_code == 0, done.output
    assert "1 bad record skipped" in done.stderr
    assert done.stderr.endswith("1 contact, 1 firing\n")


def test_messages_are_not_broken_at_80_columns_off_a_terminal(tmp_path: Path) -> None:
    # Standard error is a pipe here, as in a log: a warning longer than 80
    # columns was cut in two lines at a space, and so was `db upgrade`'s.
    stage = "a-stage-name-that-is-not-in-the-model-" * 2
    events = tmp_path / "events.jsonl"
    event = {"id": "e1", "type": "stage_set", "contact_id": "c1",
             "timestamp": "2026-05-04T10:00:00Z", "properties": {"stage": stage}}  # fmt: skip
    events.write_bytes(orjson.dumps(event) + b"\n")
    done = run("score", str(EXAMPLES / "b2b-saas.yaml"), str(events), "--format", "jsonl")
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stderr.decode().splitlines()
    assert lines[0] == f"warning event e1: stage_set names {stage!r}, not a stage of the model"
    data = tmp_path / ("a-data-directory-with-a-long-name-" * 2)
    upgraded = run("db", "upgrade", "--data-dir", str(data))
    assert upgraded.returncode == 0, upgraded.stderr.decode()
    assert upgraded.stderr.decode() == (
        f"database schema is current: sqlite:///{data / 'leadscore.db'}\n"
    )


def test_firings_by_the_name_of_their_file_as_the_help_says(tmp_path: Path) -> None:
    # The help said "(JSON Lines)" only, where a .csv or .parquet name, or a
    # table, is written as such (docs/cli.md).
    help_text = " ".join(CliRunner().invoke(cli, ["score", "--help"]).output.split())
    assert "JSON Lines, Parquet or CSV when FILE ends in .parquet or .csv" in help_text
    assert "a table as DATABASE#TABLE" in help_text
    model, events, data = case_files(tmp_path, "07-triggers")
    firings = tmp_path / "firings.csv"
    done = run("score", str(model), str(events), "--at", data["at"], "--firings", str(firings))
    assert done.returncode == 0, done.stderr.decode()
    assert firings.read_text().splitlines()[0] == "trigger,contact_id,event_id,timestamp"
