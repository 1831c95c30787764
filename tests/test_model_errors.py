"""Every error a model document can have: its path, its line and its words.

Models are written inline; `line_of` finds the line a test expects by a piece
of text on it, so the tests say *which* line, not a number to recount.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any, Literal

import pytest
from ruamel.yaml import YAML

from leadscore._errors import InputError, Issue, ModelError
from leadscore._loader import load_model, model_from_data, parse_model
from leadscore._model import Model, json_schema
from leadscore._semantics import check, keys_of

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec"
CONFORMANCE = sorted((SPEC / "conformance").glob("*.yaml"))

# A valid model; tests add to it or replace parts of it.
BASE = """\
version: 1
name: demo
rules:
  - id: visit
    event: page_view
    points: 1
    tags: [web]
"""


def line_of(text: str, marker: str, nth: int = 1) -> int:
    """The 1-based line of the nth line of `text` that contains `marker`."""
    hits = [number for number, line in enumerate(text.splitlines(), 1) if marker in line]
    assert len(hits) >= nth, f"{marker!r} is not in the text {nth} time(s)"
    return hits[nth - 1]


def issues_of(text: str, fmt: Literal["yaml", "json"] = "yaml") -> list[Issue]:
    with pytest.raises(ModelError) as raised:
        parse_model(text, source=f"model.{fmt}", format=fmt)
    return raised.value.issues


def only_issue(text: str, fmt: Literal["yaml", "json"] = "yaml") -> Issue:
    issues = issues_of(text, fmt)
    assert len(issues) == 1, "\n".join(map(str, issues))
    return issues[0]


def assert_issue(text: str, path: str, marker: str, message: str) -> None:
    """The model has exactly one issue: at `path`, on the line of `marker`, saying `message`."""
    issue = only_issue(text)
    assert (issue.path, issue.line, issue.message) == (path, line_of(text, marker), message)


def with_rule(rule: str) -> str:
    """BASE plus one more rule, given as YAML lines at the rule's indentation."""
    return BASE + textwrap.indent(textwrap.dedent(rule), "  ")


# --- shape: pydantic's errors, in plain words ---


def test_the_issue_example_word_for_word() -> None:
    text = with_rule("""\
        - id: opens
          event: email_open
          points: 2
          limit: {times: 1, per: daily}
        """)
    issue = only_issue(text)
    assert str(issue) == (
        f"model.yaml:{line_of(text, 'daily')}: rules[1].limit.per: "
        "expected one of day, week, month, ever, got 'daily'"
    )


def test_unknown_key_lists_the_allowed_keys() -> None:
    text = with_rule("""\
        - id: opens
          event: email_open
          points: 2
          bogus: 1
        """)
    assert_issue(
        text,
        "rules[1].bogus",
        "bogus",
        "unknown key 'bogus'; allowed keys: id, description, event, where, points, limit, "
        "tags, tag_from, decay",
    )


def test_unknown_key_suggests_a_close_one() -> None:
    text = BASE + "tiemzone: UTC\n"
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("tiemzone", line_of(text, "tiemzone"))
    assert issue.message.startswith("unknown key 'tiemzone' (did you mean 'timezone'?); ")


def test_missing_key_gets_the_line_of_its_mapping() -> None:
    text = with_rule("""\
        - id: opens
          points: 2
        """)
    assert_issue(text, "rules[1].event", "id: opens", "required")


def test_missing_top_level_key_gets_the_first_line_of_the_document() -> None:
    text = "# a comment first\nname: demo\nrules: []\n"
    assert_issue(text, "version", "name: demo", "required")


_RANGE = f"expected an integer between -{2**53} and {2**53}"


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ("x", "expected an integer, got 'x'"),
        ("2.5", "expected an integer, got 2.5"),
        ("true", "expected an integer, got true"),
        ("0", "expected a non-zero integer, got 0"),
        # past 2**53 a sum of points is no longer exact as a double
        (
            "-9007199254740993",
            f"expected an integer between -{2**53} and {2**53}, got -{2**53 + 1}",
        ),
        (
            "100000000000000000000",
            f"expected an integer between -{2**53} and {2**53}, got {10**20}",
        ),
    ],
)
def test_points(points: str, message: str) -> None:
    text = with_rule(f"""\
        - id: opens
          event: email_open
          points: {points}
        """)
    assert_issue(text, "rules[1].points", f"points: {points}", message)


def test_limit_times_at_least_one() -> None:
    text = with_rule("""\
        - id: opens
          event: email_open
          points: 2
          limit:
            times: 0
            per: day
        """)
    assert_issue(text, "rules[1].limit.times", "times: 0", "expected at least 1, got 0")


def test_id_pattern() -> None:
    text = with_rule("""\
        - id: Bad Id
          event: email_open
          points: 2
        """)
    assert_issue(text, "rules[1].id", "Bad Id", "does not match [a-z0-9][a-z0-9_-]*: 'Bad Id'")


def test_event_of_the_wrong_type_is_one_issue() -> None:
    text = with_rule("""\
        - id: opens
          event: 5
          points: 2
        """)
    assert_issue(
        text, "rules[1].event", "event: 5", "expected an event type or a list of event types, got 5"
    )


def test_bad_event_type_in_a_list_is_one_issue_at_its_item() -> None:
    text = with_rule("""\
        - id: opens
          event:
            - email_open
            - "bad type!"
          points: 2
        """)
    assert_issue(
        text, "rules[1].event[1]", "bad type!", "does not match [A-Za-z0-9_.:-]{1,64}: 'bad type!'"
    )


def test_empty_event_list() -> None:
    text = with_rule("""\
        - id: opens
          event: []
          points: 2
        """)
    assert_issue(text, "rules[1].event", "event: []", "must not be empty")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("'40'", "expected a number, got '40'"),
        ("true", "expected a number, got true"),
        (".nan", "expected a finite number, got nan"),
    ],
)
def test_numbers_are_numbers(value: str, message: str) -> None:
    text = BASE + f"grades:\n  - {{grade: A, min_fit: {value}}}\n"
    assert_issue(text, "grades[0].min_fit", "grade: A", message)


def test_half_life_must_be_positive() -> None:
    text = BASE + "decay: {half_life_days: 0}\n"
    assert_issue(text, "decay.half_life_days", "decay", "expected more than 0, got 0")


@pytest.mark.parametrize(("version", "got"), [("2", "2"), ("true", "true"), ("1.0", "1.0")])
def test_version_must_be_1(version: str, got: str) -> None:
    text = BASE.replace("version: 1", f"version: {version}")
    assert_issue(text, "version", "version", f"expected 1, got {got}")


def test_mapping_expected_names_its_keys() -> None:
    text = with_rule("""\
        - id: opens
          event: email_open
          points: 2
          limit: 1
        """)
    assert_issue(
        text, "rules[1].limit", "limit: 1", "expected a mapping with keys times, per, got 1"
    )


def test_empty_name_and_empty_list() -> None:
    text = BASE.replace("name: demo", "name: ''") + textwrap.dedent("""\
        triggers:
          - id: hot
            when: {score_crosses: 10}
            actions: []
        """)
    issues = issues_of(text)
    assert [(i.path, i.line, i.message) for i in issues] == [
        ("name", 2, "must not be empty"),
        ("triggers[0].actions", line_of(text, "actions: []"), "must not be empty"),
    ]


def trigger(actions: str) -> str:
    """BASE plus one trigger with the given actions (YAML list lines)."""
    head = "triggers:\n  - id: hot\n    when: {score_crosses: 10}\n    actions:\n"
    return BASE + head + textwrap.indent(actions, "      ")


@pytest.mark.parametrize(
    ("actions", "path", "marker", "message"),
    [
        (
            "- webhok: {url: 'https://x.example'}\n",
            "triggers[0].actions[0]",
            "webhok",
            "unknown action 'webhok' (did you mean 'webhook'?); "
            "known actions: webhook, assign, add_tag, remove_tag",
        ),
        (
            "- {add_tag: a, remove_tag: b}\n",
            "triggers[0].actions[0]",
            "add_tag: a",
            "expected one action per list item, got add_tag and remove_tag; "
            "write each action as its own item",
        ),
        (
            "- hot\n",
            "triggers[0].actions[0]",
            "- hot",
            "expected one of webhook, assign, add_tag, remove_tag, got 'hot'",
        ),
        (
            "- add_tag: ok\n- assign: {strategy: round_robin}\n",
            "triggers[0].actions[1].assign.owners",
            "strategy",
            "required",
        ),
        (
            "- webhook: {url: 'ftp://x.example'}\n",
            "triggers[0].actions[0].webhook.url",
            "ftp://",
            "expected an http:// or https:// address without spaces, got 'ftp://x.example'",
        ),
        (
            "- assign: {owners: [a@x.example], strategy: random}\n",
            "triggers[0].actions[0].assign.strategy",
            "random",
            "expected round_robin, got 'random'",
        ),
        (
            "- add_tag: x\n  secret: y\n",
            "triggers[0].actions[0].secret",
            "secret",
            "unknown key 'secret'; allowed keys: add_tag",
        ),
    ],
)
def test_actions_get_one_issue_each(actions: str, path: str, marker: str, message: str) -> None:
    assert_issue(trigger(actions), path, marker, message)


CALLED = "expected an http:// or https:// address that can be called"
LABELS = "is not a host name: each part between dots needs 1 to 63 characters"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://a..b/hook", f"'a..b' {LABELS}"),
        ("https://.example.com/", f"'.example.com' {LABELS}"),
        (f"https://{'x' * 64}.example/", LABELS),
        ("https://" + "a." * 127 + "example/", "the host name is longer than 253 characters"),
        ("http:///x", "it names no host"),
        ("http://:8080/x", "it names no host"),
        ("http://user@/x", "it names no host"),
        ("http://host:99999/", "the port must be a number from 1 to 65535"),
        ("http://host:0/", "the port must be a number from 1 to 65535"),
        ("http://host:80a/", "the port must be a number from 1 to 65535"),
        ("http://[::1/", "brackets in the host must hold an IP address, and nothing else"),
        ("http://[crm]/", "brackets in the host must hold an IP address, and nothing else"),
        ("http://[::1]x/", "brackets in the host must hold an IP address, and nothing else"),
        ("http://ex\u2100ample/", "contains invalid characters under NFKC normalization"),
    ],
)  # fmt: skip
def test_an_upload_refuses_a_webhook_url_that_can_never_be_called(url: str, why: str) -> None:
    text = trigger(f"- add_tag: x\n- webhook: {{url: '{url}'}}\n")
    with pytest.raises(ModelError) as raised:
        parse_model(text, source="model.yaml", upload=True)
    (issue,) = raised.value.issues
    assert (issue.path, issue.line) == ("triggers[0].actions[1].webhook.url", line_of(text, url))
    assert issue.message.startswith(f"{CALLED}, got '")
    assert issue.message.endswith(why)
    assert str(issue).startswith(f"model.yaml:{issue.line}: triggers[0].actions[1].webhook.url: ")
    # A model stored with one before the check loads as it did: the service
    # reads its stored versions through the loader.
    assert parse_model(text).triggers[0].actions[1].webhook.url == url  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example.com/hooks/mql?source=leadscore#x",
        "http://127.0.0.1:8080/hook",
        "http://[::1]:65535/hook",
        "https://user:pass@crm.example.com/",
        "https://bücher.example/hook",
        "https://crm.example.com./hook",
        "http://crm:/hook",
        "http://hooks.invalid/",  # no such host: a failed attempt, not a model's mistake
    ],
)
def test_an_upload_takes_a_webhook_url_that_can_be_called(url: str) -> None:
    text = trigger(f"- webhook: {{url: '{url}'}}\n")
    assert parse_model(text, upload=True).triggers[0].actions[0].webhook.url == url  # type: ignore[union-attr]


def test_an_upload_reports_an_uncallable_url_with_every_other_problem() -> None:
    text = trigger(
        "- webhook: {url: 'ftp://x.example'}\n"  # the pattern's: told once
        "- webhook: {url: 'http://host:99999/'}\n"
        "- webhook: {url: 'http:///x', sekret: y}\n"
    ).replace("points: 1", "points: many")
    issues = issues_of_upload(text)
    assert [(issue.path, issue.line) for issue in issues] == [
        ("rules[0].points", line_of(text, "points: many")),
        ("triggers[0].actions[0].webhook.url", line_of(text, "ftp://")),
        ("triggers[0].actions[1].webhook.url", line_of(text, "99999")),
        ("triggers[0].actions[2].webhook.sekret", line_of(text, "sekret")),
        ("triggers[0].actions[2].webhook.url", line_of(text, "sekret")),
    ]
    assert issues[1].message.startswith("expected an http:// or https:// address without spaces")
    assert issues[2].message == (
        f"{CALLED}, got 'http://host:99999/': the port must be a number from 1 to 65535"
    )
    assert issues[4].message == f"{CALLED}, got 'http:///x': it names no host"


def issues_of_upload(text: str) -> list[Issue]:
    with pytest.raises(ModelError) as raised:
        parse_model(text, upload=True)
    return raised.value.issues


def test_yaml_12_yes_is_not_a_boolean() -> None:
    text = trigger("- add_tag: x\n").replace("    actions:", "    once: yes\n    actions:")
    assert_issue(text, "triggers[0].once", "once: yes", "expected true or false, got 'yes'")


def test_tag_score_crosses_names_one_tag() -> None:
    text = BASE + textwrap.dedent("""\
        triggers:
          - id: hot
            when: {tag_score_crosses: {web: 10, other: 5}}
            actions: [{add_tag: x}]
        """)
    issues = issues_of(text)
    line = line_of(text, "tag_score_crosses")
    assert [(i.path, i.line, i.message) for i in issues] == [
        ("triggers[0].when.tag_score_crosses", line, "expected at most 1 entry, got 2"),
        (
            "triggers[0].when.tag_score_crosses.other",
            line,
            "unknown tag 'other'; tags listed by rules: web",
        ),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the model document is empty"),
        ("# nothing\n", "the model document is empty"),
        (
            "- a\n- b\n",
            "expected a mapping with keys version, name, description, timezone, decay, clamp, "
            "rules, fit, grades, bands, stages, triggers, got a list",
        ),
    ],
)
def test_document_that_is_not_a_model(text: str, message: str) -> None:
    issue = only_issue(text)
    assert (issue.path, issue.line, issue.message) == ("", 1, message)


# --- checks the shape cannot express ---


@pytest.mark.parametrize(
    ("section", "entries", "path", "message"),
    [
        (
            "fit",
            "- {id: f, where: {a: 1}, points: 1}\n- {id: f, where: {b: 1}, points: 2}\n",
            "fit[1].id",
            "duplicate fit rule id 'f', also at fit[0]",
        ),
        (
            "grades",
            "- {grade: A, min_fit: 10}\n- {grade: A}\n",
            "grades[1].grade",
            "duplicate grade 'A', also at grades[0]",
        ),
        (
            "bands",
            "- {band: hot, min_score: 10}\n- {band: hot}\n",
            "bands[1].band",
            "duplicate band 'hot', also at bands[0]",
        ),
        (
            "stages",
            "- name: lead\n- name: lead\n",
            "stages[1].name",
            "duplicate stage name 'lead', also at stages[0]",
        ),
        (
            "triggers",
            "- {id: t, when: {score_crosses: 1}, actions: [{add_tag: a}]}\n"
            "- {id: t, when: {score_crosses: 2}, actions: [{add_tag: b}]}\n",
            "triggers[1].id",
            "duplicate trigger id 't', also at triggers[0]",
        ),
    ],
)
def test_duplicate_names(section: str, entries: str, path: str, message: str) -> None:
    text = BASE + f"{section}:\n" + textwrap.indent(entries, "  ")
    issue = only_issue(text)
    assert (issue.path, issue.line, issue.message) == (path, text.count("\n"), message)


def test_duplicate_rule_id() -> None:
    text = with_rule("""\
        - id: visit
          event: other
          points: 2
        """)
    issue = only_issue(text)
    assert (issue.path, issue.line, issue.message) == (
        "rules[1].id",
        line_of(text, "id: visit", nth=2),
        "duplicate rule id 'visit', also at rules[0]",
    )


def test_minimums_must_decrease() -> None:
    text = BASE + "grades:\n  - {grade: A, min_fit: 20}\n  - {grade: B, min_fit: 20}\n"
    assert_issue(
        text,
        "grades[1].min_fit",
        "grade: B",
        "min_fit must decrease down the list: expected less than 20 (grades[0]), got 20",
    )


def test_catch_all_must_be_last() -> None:
    text = BASE + "bands:\n  - {band: cold}\n  - {band: hot, min_score: 50}\n"
    assert_issue(
        text,
        "bands[0]",
        "band: cold",
        "a band without min_score matches any score, so it must be the last one",
    )


def test_misspelt_minimum_is_not_also_called_a_catch_all() -> None:
    text = BASE + "grades:\n  - {grade: A, min-fit: 20}\n  - {grade: B}\n"
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("grades[0].min-fit", line_of(text, "min-fit"))
    assert issue.message.startswith("unknown key 'min-fit' (did you mean 'min_fit'?)")


def test_first_stage_has_no_enter() -> None:
    text = BASE + "stages:\n  - name: lead\n    enter: {score_gte: 10}\n"
    assert_issue(
        text,
        "stages[0].enter",
        "enter",
        "the first stage is where every contact starts, so it cannot have 'enter'",
    )


STAGES_AND_MORE = (
    BASE
    + """\
grades:
  - {grade: A, min_fit: 10}
  - {grade: B}
bands:
  - {band: hot, min_score: 50}
  - {band: cold}
stages:
  - name: subscriber
  - name: lead
    enter: {score_gte: 10}
"""
)


@pytest.mark.parametrize(
    ("enter", "path", "message"),
    [
        (
            "{grade_in: [A, E]}",
            "stages[2].enter.grade_in[1]",
            "unknown grade 'E'; defined grades: A, B",
        ),
        (
            "{any: [{band_in: [hot]}, {band_in: [Hot]}]}",
            "stages[2].enter.any[1].band_in[0]",
            "unknown band 'Hot' (did you mean 'hot'?); defined bands: cold, hot",
        ),
        (
            "{not: {tag_score_gte: {webb: 5}}}",
            "stages[2].enter.not.tag_score_gte.webb",
            "unknown tag 'webb' (did you mean 'web'?); tags listed by rules: web",
        ),
        (
            "{score_gte: 5, where: {plan: pro}}",
            "stages[2].enter.where",
            "'where' needs 'event' beside it: it tests the properties of that event",
        ),
        (
            "{}",
            "stages[2].enter",
            "expected at least one condition: score_gte, score_lt, fit_gte, grade_in, band_in, "
            "stage_score_gte, tag_score_gte, event, all, any, not",
        ),
        (
            "{all: [{score_gte: 1}, {}]}",
            "stages[2].enter.all[1]",
            "expected at least one condition: score_gte, score_lt, fit_gte, grade_in, band_in, "
            "stage_score_gte, tag_score_gte, event, all, any, not",
        ),
    ],
)
def test_stage_conditions(enter: str, path: str, message: str) -> None:
    text = STAGES_AND_MORE + f"  - name: mql\n    enter: {enter}\n"
    issue = only_issue(text)
    line = line_of(text, "enter: " + enter)
    assert (issue.path, issue.line, issue.message) == (path, line, message)


@pytest.mark.parametrize(
    ("when", "path", "message"),
    [
        (
            "{stage_entered: MQL}",
            "triggers[0].when.stage_entered",
            "unknown stage 'MQL'; defined stages: lead, subscriber",
        ),
        (
            "{grade_entered: C}",
            "triggers[0].when.grade_entered",
            "unknown grade 'C'; defined grades: A, B",
        ),
        (
            "{band_entered: warm}",
            "triggers[0].when.band_entered",
            "unknown band 'warm'; defined bands: cold, hot",
        ),
        (
            "{tag_score_crosses: {pricing: 10}}",
            "triggers[0].when.tag_score_crosses.pricing",
            "unknown tag 'pricing'; tags listed by rules: web",
        ),
        (
            "{score_crosses: 10, stage_entered: lead}",
            "triggers[0].when",
            "expected exactly one of score_crosses, tag_score_crosses, stage_entered, "
            "band_entered, grade_entered, event, got score_crosses and stage_entered",
        ),
        (
            "{}",
            "triggers[0].when",
            "expected one of score_crosses, tag_score_crosses, stage_entered, band_entered, "
            "grade_entered, event, got none",
        ),
        (
            "{score_crosses: 10, where: {plan: pro}}",
            "triggers[0].when.where",
            "'where' needs 'event' beside it: it tests the properties of that event",
        ),
    ],
)
def test_trigger_conditions(when: str, path: str, message: str) -> None:
    text = STAGES_AND_MORE + f"triggers:\n  - id: t\n    when: {when}\n"
    text += "    actions: [{add_tag: x}]\n"
    issue = only_issue(text)
    assert (issue.path, issue.line, issue.message) == (path, line_of(text, "when:"), message)


def test_unknown_key_in_when_is_not_also_a_missing_kind() -> None:
    text = BASE + "triggers:\n  - id: t\n    when: {score_crosess: 1}\n"
    text += "    actions: [{add_tag: x}]\n"
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("triggers[0].when.score_crosess", line_of(text, "when:"))
    assert issue.message.startswith("unknown key 'score_crosess' (did you mean 'score_crosses'?)")


def test_tag_from_allows_any_tag() -> None:
    rule = with_rule("""\
        - id: product
          event: product_viewed
          points: 2
          tag_from: category
        """)
    text = rule + "triggers:\n  - id: t\n    when: {tag_score_crosses: {shoes: 10}}\n"
    text += "    actions: [{add_tag: x}]\n"
    assert parse_model(text).triggers[0].when.tag_score_crosses == {"shoes": 10}


def test_broken_list_of_grades_hides_reference_checks() -> None:
    # The broken entry may be the grade `A` meant, so `A` is not called unknown.
    text = BASE + textwrap.dedent("""\
        grades:
          - {grade: 5, min_fit: 10}
        stages:
          - name: new
          - {name: good, enter: {grade_in: [A]}}
        """)
    issue = only_issue(text)
    assert (issue.path, issue.line, issue.message) == (
        "grades[0].grade",
        line_of(text, "grade: 5"),
        "expected text, got 5",
    )


def test_unknown_time_zone() -> None:
    text = BASE + "timezone: Europe/Warsow\n"
    assert_issue(
        text,
        "timezone",
        "Warsow",
        "unknown time zone 'Europe/Warsow' (did you mean 'Europe/Warsaw'?); "
        "expected an IANA name such as Europe/Warsaw or UTC",
    )


def test_clamp_min_above_max() -> None:
    text = BASE + "clamp:\n  min: 500\n  max: 0\n"
    assert_issue(text, "clamp", "clamp:", "min (500) must not be greater than max (0)")


# --- `where` (spec 2.2) ---


def where_issue(where: str) -> Issue:
    text = with_rule(f"""\
        - id: cond
          event: page_view
          points: 1
          where: {where}
        """)
    issue = only_issue(text)
    assert issue.line == line_of(text, "where:")
    return issue


@pytest.mark.parametrize(
    ("where", "path", "message"),
    [
        (
            "{url: {equals: x}}",
            "url.equals",
            "unknown test 'equals'; known tests: eq, ne, in, not_in, contains, starts_with, "
            "ends_with, glob, regex, gt, gte, lt, lte, exists",
        ),
        (
            "{url: {}}",
            "url",
            "expected at least one test: eq, ne, in, not_in, contains, "
            "starts_with, ends_with, glob, regex, gt, gte, lt, lte, exists",
        ),
        (
            "{utm..source: x}",
            "utm..source",
            "a property path needs a name between every two dots, got 'utm..source'",
        ),
        ("{.utm: x}", ".utm", "a property path needs a name between every two dots, got '.utm'"),
        (
            "{ref: null}",
            "ref",
            "expected a value or a mapping of tests, got null; to test that a property is "
            "missing use {exists: false}",
        ),
        (
            "{plan: [a, b]}",
            "plan",
            "expected a value or a mapping of tests, got a list; to match one of several values "
            "use {in: [...]}",
        ),
        ("{url: {glob: 5}}", "url.glob", "expected text, got 5"),
        ("{url: {contains: [a]}}", "url.contains", "expected text, got a list"),
        ("{n: {gte: '10'}}", "n.gte", "expected a number, got '10' (write it without quotes)"),
        ("{n: {lt: true}}", "n.lt", "expected a number, got true"),
        ("{n: {gt: .inf}}", "n.gt", "expected a number, got inf"),
        ("{n: {exists: yes}}", "n.exists", "expected true or false, got 'yes'"),
        ("{n: {eq: null}}", "n.eq", "expected text, a number, true or false, got null"),
        ("{n: {ne: {a: 1}}}", "n.ne", "expected text, a number, true or false, got a mapping"),
        ("{c: {in: PL}}", "c.in", "expected a list of values such as [a, b], got 'PL'"),
        ("{c: {not_in: []}}", "c.not_in", "expected at least one value, got an empty list"),
        ("{c: {in: [PL, null]}}", "c.in[1]", "expected text, a number, true or false, got null"),
        ("{all: {a: 1}}", "all", "expected a list of conditions, got a mapping"),
        ("{any: []}", "any", "expected at least one condition, got an empty list"),
        ("{any: [{a: 1}, x]}", "any[1]", "expected a mapping of conditions, got 'x'"),
        ("{not: [{a: 1}]}", "not", "expected a mapping of conditions, got a list"),
        ("{not: {}}", "not", "expected at least one condition, got an empty mapping"),
        (
            "{all: [{any: [{not: {u: {glob: 1}}}]}]}",
            "all[0].any[0].not.u.glob",
            "expected text, got 1",
        ),
    ],
)
def test_where(where: str, path: str, message: str) -> None:
    issue = where_issue(where)
    assert (issue.path, issue.message) == (f"rules[1].where.{path}", message)


@pytest.mark.parametrize(
    ("pattern", "detail"),
    [
        ("a(?=b)", "invalid perl operator: (?="),
        ("(?<!x)y", "invalid perl operator: (?<!"),
        ("(a)\\\\1", "invalid escape sequence: \\1"),
        ("a*+", "bad repetition operator: *+"),
    ],
)
def test_regex_outside_re2(pattern: str, detail: str) -> None:
    issue = where_issue(f'{{ref: {{regex: "{pattern}"}}}}')
    assert issue.path == "rules[1].where.ref.regex"
    assert issue.message == (
        "regex not supported by RE2 (look-around, back-references and possessive quantifiers "
        f"are not allowed): {detail}"
    )


def test_regex_python_cannot_compile() -> None:
    issue = where_issue('{ref: {regex: "[a-"}}')
    assert issue.message == "invalid regex: unterminated character set at position 0"


def test_where_in_every_place_with_its_path() -> None:
    text = STAGES_AND_MORE + textwrap.dedent("""\
          - name: mql
            enter:
              all:
                - event: page_view
                  where: {url: {glob: 1}}
        fit:
          - id: big
            where: {size: {gte: many}}
            points: 5
        triggers:
          - id: t
            when:
              event: demo
              where: {source: {regexp: x}}
            actions: [{add_tag: x}]
        """)
    issues = issues_of(text)
    assert [(i.path, i.line) for i in issues] == [
        ("stages[2].enter.all[0].where.url.glob", line_of(text, "glob: 1")),
        ("fit[0].where.size.gte", line_of(text, "many")),
        ("triggers[0].when.where.source.regexp", line_of(text, "regexp")),
    ]
    assert issues[2].message.startswith("unknown test 'regexp' (did you mean 'regex'?); ")


# --- reading ---


def test_many_errors_are_all_reported_in_line_order() -> None:
    text = textwrap.dedent("""\
        version: 1
        name: demo
        timezone: Mars/Olympus
        rules:
          - id: visit
            event: page_view
            points: 0
            limit: {times: 1, per: daily}
          - id: visit
            event: page_view
            points: 2
            where: {url: {regex: "(?=x)"}}
        grades:
          - {grade: A}
          - {grade: B, min_fit: 10}
        stages:
          - name: new
          - name: hot
            enter: {grade_in: [Z]}
        """)
    issues = issues_of(text)
    assert [(i.line, i.path) for i in issues] == [
        (3, "timezone"),
        (7, "rules[0].points"),
        (8, "rules[0].limit.per"),
        (9, "rules[1].id"),
        (12, "rules[1].where.url.regex"),
        (14, "grades[0]"),
        (19, "stages[1].enter.grade_in[0]"),
    ]
    assert all(issue.source == "model.yaml" for issue in issues)
    assert str(issues[0]).startswith("model.yaml:3: timezone: unknown time zone 'Mars/Olympus'")


def test_error_message_lists_every_issue() -> None:
    text = BASE.replace("points: 1", "points: 0") + "bogus: 1\n"
    with pytest.raises(ModelError) as raised:
        parse_model(text, source="m.yaml")
    assert str(raised.value).splitlines() == [
        "m.yaml:6: rules[0].points: expected a non-zero integer, got 0",
        f"m.yaml:8: bogus: unknown key 'bogus'; allowed keys: {', '.join(Model.model_fields)}",
    ]


def test_yaml_syntax_error() -> None:
    text = "version: 1\nname: [demo\nrules: []\n"
    issue = only_issue(text)
    assert (issue.path, issue.line) == ("", 3)
    assert issue.message == (
        "invalid YAML: expected ',' or ']', but got ':' "
        "(column 6; while parsing a flow sequence that starts on line 2)"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: !!int x\n", "invalid YAML: a value does not fit its tag"),
        ("!!python/object:os.system x\n", "expected a mapping with keys version"),
        ("!!omap [version: 1]\n", "required"),
    ],
)
def test_yaml_tags_are_issues_not_crashes(text: str, message: str) -> None:
    # A tag whose value does not fit it, and nodes ruamel gives no line,
    # were a ValueError and TypeErrors (a 500 on a model upload).
    with pytest.raises(ModelError) as raised:
        parse_model(text)
    assert any(issue.message.startswith(message) for issue in raised.value.issues)


def test_tab_indentation_says_why() -> None:
    issue = only_issue("version: 1\nrules:\n\t- id: a\n")
    assert issue.line == 3
    assert issue.message.endswith("YAML does not allow tabs for indentation, use spaces)")


def test_every_duplicate_key_is_reported_with_both_lines() -> None:
    text = BASE + "    points: 2\nname: again\n"
    issues = issues_of(text)
    assert [(i.path, i.line, i.message) for i in issues] == [
        ("rules[0].points", 8, "duplicate key 'points' (first on line 6)"),
        ("name", 9, "duplicate key 'name' (first on line 2)"),
    ]


def test_keys_must_be_text() -> None:
    text = with_rule("""\
        - id: codes
          event: error
          points: -1
          where: {404: x}
        """)
    assert_issue(text, "rules[1].where", "404", "expected text as a key, got 404")


def test_yaml_12_scalars_stay_strings() -> None:
    text = BASE + textwrap.dedent("""\
        fit:
          - id: nordics
            where: {country: {in: [NO, SE]}, opted: yes, mode: on, since: 2026-05-04}
            points: 5
        """)
    where = parse_model(text).fit[0].where
    assert where == {
        "country": {"in": ["NO", "SE"]},
        "opted": "yes",
        "mode": "on",
        "since": "2026-05-04",
    }
    assert type(where["country"]["in"][0]) is str


def test_values_are_plain_python_types() -> None:
    model = parse_model(BASE + "decay: {half_life_days: 1.5}\nclamp: {min: 0x10}\n")
    assert model.decay is not None
    assert type(model.decay.half_life_days) is float
    assert model.clamp is not None
    assert model.clamp.min == 16
    assert type(model.clamp.min) is int


# --- JSON ---

JSON_MODEL = """\
{
  "version": 1,
  "name": "demo",
  "rules": [
    {"id": "visit", "event": "page_view", "points": 1,
     "limit": {"times": 1, "per": "daily"}}
  ]
}
"""


def test_json_issues_have_lines() -> None:
    issue = only_issue(JSON_MODEL, "json")
    assert str(issue) == (
        "model.json:6: rules[0].limit.per: expected one of day, week, month, ever, got 'daily'"
    )


def test_json_with_tabs_has_lines() -> None:
    issue = only_issue(JSON_MODEL.replace("  ", "\t"), "json")
    assert (issue.path, issue.line) == ("rules[0].limit.per", 6)


def test_json_rejects_yaml_only_syntax() -> None:
    text = '{\n  "version": 1,\n  name: "demo"\n}\n'
    issue = only_issue(text, "json")
    assert (issue.path, issue.line) == ("", 3)
    assert issue.message == (
        "invalid JSON: expecting property name enclosed in double quotes (column 3)"
    )


def test_json_duplicate_keys() -> None:
    text = '{\n  "version": 1,\n  "name": "a",\n  "name": "b",\n  "rules": []\n}\n'
    issue = only_issue(text, "json")
    assert (issue.path, issue.line, issue.message) == (
        "name",
        4,
        "duplicate key 'name' (first on line 3)",
    )


def test_json_that_yaml_refuses_still_loads_without_lines() -> None:
    # A colon on the line after its key is JSON, not YAML.
    text = '{"version"\n: 1, "name": "demo", "rules": [], "bogus": 1}'
    issue = only_issue(text, "json")
    assert (issue.path, issue.line) == ("bogus", None)


# --- files and data ---


def test_load_model_from_files(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(BASE)
    (tmp_path / "good.json").write_text(json.dumps(YAML(typ="safe").load(BASE)))
    assert load_model(tmp_path / "good.yml") == load_model(str(tmp_path / "good.json"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(BASE.replace("points: 1", "points: one"))
    with pytest.raises(ModelError) as raised:
        load_model(bad)
    assert str(raised.value) == f"{bad}:6: rules[0].points: expected an integer, got 'one'"


def test_unreadable_files(tmp_path: Path) -> None:
    (tmp_path / "model.txt").write_text(BASE)
    with pytest.raises(InputError, match="unknown model format"):
        load_model(tmp_path / "model.txt")
    with pytest.raises(InputError, match="cannot read model file"):
        load_model(tmp_path / "missing.yaml")
    # A missing file of no model extension (a mistyped name, or a trained
    # model's directory for `backtest`) is missing, not of an unknown format.
    with pytest.raises(InputError, match="missing: No such file or directory"):
        load_model(tmp_path / "missing")


def test_model_from_data_has_the_same_messages_without_lines() -> None:
    data: dict[str, Any] = YAML(typ="safe").load(BASE)
    data["rules"][0]["limit"] = {"times": 1, "per": "daily"}
    data["stages"] = [{"name": "new", "enter": {"score_gte": 1}}]
    with pytest.raises(ModelError) as raised:
        model_from_data(data)
    assert [str(issue) for issue in raised.value.issues] == [
        "rules[0].limit.per: expected one of day, week, month, ever, got 'daily'",
        "stages[0].enter: the first stage is where every contact starts, so it cannot have 'enter'",
    ]


def test_check_reports_semantic_issues_of_raw_data() -> None:
    data = {"rules": [{"id": "a"}, {"id": "a"}], "clamp": {"min": 2, "max": 1}}
    assert check(data) == [
        Issue("rules[1].id", "duplicate rule id 'a', also at rules[0]"),
        Issue("clamp", "min (2) must not be greater than max (1)"),
    ]


TRIGGER_WITH_EVERY_ACTION = """\
  - id: hot
    when: {event: [demo, trial], where: {plan: pro}}
    actions:
      - webhook: {url: "https://crm.example/hook", secret: s}
      - assign: {owners: [ann@x.example]}
      - add_tag: hot
      - remove_tag: cold
"""


def test_a_loaded_model_round_trips_and_has_a_schema() -> None:
    # Dumping calls the unions' discriminators with model objects, not mappings.
    model = parse_model(STAGES_AND_MORE + "triggers:\n" + TRIGGER_WITH_EVERY_ACTION)
    assert model_from_data(model.model_dump(by_alias=True, exclude_none=True)) == model
    schema = json_schema()
    assert schema["$defs"]["Decay"]["properties"]["half_life_days"] == {
        "type": "number",
        "exclusiveMinimum": 0,
        "title": "Half Life Days",
    }


# --- the spec's own models ---


@pytest.mark.skipif(not SPEC.is_dir(), reason=f"the shared spec is not checked out at {SPEC}")
@pytest.mark.parametrize("case", CONFORMANCE, ids=lambda path: path.stem)
def test_conformance_models_load(case: Path) -> None:
    # Through the YAML reader itself: the case's `model` mapping keeps its lines.
    document = YAML().load(case.read_text())
    model = model_from_data(document["model"])
    assert model.version == 1


def test_round_trip_data_keeps_the_lines_of_its_file() -> None:
    text = "case: broken\nmodel:\n" + textwrap.indent(BASE.replace("points: 1", "points: 0"), "  ")
    with pytest.raises(ModelError) as raised:
        model_from_data(YAML().load(text)["model"])
    assert [(i.path, i.line) for i in raised.value.issues] == [("rules[0].points", 8)]


def test_aliases_that_repeat_each_other_are_refused_not_expanded() -> None:
    """Nine lines whose aliases repeat each other would expand to 10^9 values:
    refused at MAX_VALUES, in a moment, with the file's name."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = "\n".join([*lines, "version: 1", "name: bomb", "rules: []", "bomb: *a8"]) + "\n"
    with pytest.raises(ModelError) as raised:
        parse_model(text, source="bomb.yaml")
    (issue,) = raised.value.issues
    assert issue.source == "bomb.yaml"
    assert "holds more than 250,000 values once its aliases are expanded" in issue.message


@pytest.mark.parametrize("format", ["yaml", "json"])
def test_a_document_nested_thousands_deep_is_a_model_error(format: Literal["yaml", "json"]) -> None:
    text = '{"version": 1, "name": "deep", "rules": [], "x": ' + "[" * 3000 + "]" * 3000 + "}"
    with pytest.raises(ModelError, match="nests lists or mappings too deeply to be read"):
        parse_model(text, source=f"deep.{format}", format=format)


# --- U+0000, which PostgreSQL cannot store in text ---

_NUL = "must not contain U+0000 (the NUL character)"


@pytest.mark.parametrize(
    ("addition", "path", "marker"),
    [
        ('description: "the \\0 model"\n', "description", "description"),
        ('bands:\n  - {band: "hot\\0", min_score: 5}\n  - {band: cold}\n', "bands[0].band", "hot"),
        ('grades:\n  - {grade: "A\\0", min_fit: 5}\n  - {grade: B}\n', "grades[0].grade", "A"),
        ('stages:\n  - name: "new\\0"\n', "stages[0].name", "new"),
        (
            "triggers:\n  - id: t\n    when: {score_crosses: 5}\n"
            '    actions: [{add_tag: "hot\\0"}]\n',
            "triggers[0].actions[0].add_tag",
            "actions",
        ),
    ],
    ids=["description", "band", "grade", "stage", "add_tag"],
)
def test_nul_in_any_name_is_refused_with_its_path(addition: str, path: str, marker: str) -> None:
    text = BASE + addition
    assert_issue(text, path, marker, _NUL)


def test_nul_in_the_model_name_a_tag_and_a_where_value_and_key() -> None:
    text = (
        'version: 1\nname: "demo\\0"\nrules:\n  - id: visit\n    event: page_view\n'
        '    points: 1\n    tags: ["web\\0"]\n    where:\n      "plan\\0": pro\n'
        '      country: {in: [PL, "D\\0E"]}\n'
    )
    assert [(i.path, i.line, i.message) for i in issues_of(text)] == [
        ("name", 2, _NUL),
        ("rules[0].tags[0]", 7, _NUL),
        ("rules[0].where", 9, f"the key 'plan\\x00' {_NUL}"),
        ("rules[0].where.country.in[1]", 10, _NUL),
    ]


def test_nul_in_json_and_in_data() -> None:
    document = json.loads(json.dumps({"version": 1, "name": "demo\0", "rules": []}))
    issue = only_issue(json.dumps(document), "json")
    assert (issue.path, issue.line, issue.message) == ("name", 1, _NUL)
    with pytest.raises(ModelError) as raised:
        model_from_data(document)
    assert [str(issue) for issue in raised.value.issues] == [f"name: {_NUL}"]


def test_nul_where_the_shape_already_objects_is_one_issue() -> None:
    # Below an unknown key nothing more is said: its keys may be any text at
    # all (the service's fuzz test sent lone surrogates, which no answer can
    # encode), and the whole part is already the mistake.
    assert_issue(
        BASE + 'bogus:\n  "\\0": {"a\\0": "\\0"}\n',
        "bogus",
        "bogus",
        "unknown key 'bogus'; allowed keys: " + ", ".join(keys_of(Model)),
    )
    text = with_rule('- id: "opens\\0"\n  event: email_open\n  points: 2\n')
    assert_issue(text, "rules[1].id", "opens", "does not match [a-z0-9][a-z0-9_-]*: 'opens\\x00'")


# --- integers past a double's range (YAML and JSON read them exactly) ---

_HUGE = "1" + "0" * 400  # 10**400: an integer, and no double
_IN_RANGE = "expected a number within a double's range (about ±1.8e308)"


@pytest.mark.parametrize(
    ("addition", "path", "marker"),
    [
        (
            f"bands:\n  - {{band: hot, min_score: {_HUGE}}}\n  - {{band: cold}}\n",
            "bands[0].min_score",
            "hot",
        ),
        (
            f"grades:\n  - {{grade: A, min_fit: -{_HUGE}}}\n  - {{grade: B}}\n",
            "grades[0].min_fit",
            "A",
        ),
        (f"clamp: {{max: {_HUGE}}}\n", "clamp.max", "clamp"),
    ],
    ids=["band", "grade", "clamp"],
)
def test_an_integer_past_a_double_is_an_issue_not_a_crash(
    addition: str, path: str, marker: str
) -> None:
    # It was an OverflowError from math.isfinite: a traceback for validate, a 500 for the API.
    issue = only_issue(BASE + addition)
    assert (issue.path, issue.line) == (path, line_of(BASE + addition, marker))
    assert issue.message.startswith(f"{_IN_RANGE}, got an integer of about 40")


@pytest.mark.parametrize("test", ["gt", "eq", "in"])
def test_an_integer_past_a_double_in_a_where_test(test: str) -> None:
    operand = f"[{_HUGE}]" if test == "in" else _HUGE
    text = with_rule(
        f"- id: big\n  event: purchase\n  points: 1\n  where: {{amount: {{{test}: {operand}}}}}\n"
    )
    issue = only_issue(text)
    where = "rules[1].where.amount." + ("in[0]" if test == "in" else test)
    assert (issue.path, issue.line) == (where, line_of(text, "where"))
    expected = _IN_RANGE if test == "gt" else "expected text, a number, true or false"
    assert issue.message.startswith(f"{expected}, got an integer of about 40")
    # A large integer inside the range is a number like any other.
    parse_model(text.replace(_HUGE, "1" + "0" * 300), source="model.yaml", format="yaml")


def test_an_integer_past_a_double_in_json() -> None:
    text = (
        '{"version": 1, "name": "n", "rules": [], "bands": [{"band": "hot", "min_score": '
        + _HUGE
        + '}, {"band": "cold"}]}'
    )
    assert only_issue(text, "json").path == "bands[0].min_score"


@pytest.mark.parametrize("tag_from", ["product..category", ".category", "product."])
def test_tag_from_is_a_property_path(tag_from: str) -> None:
    # An empty name between dots matched nothing in the pure engine and was a
    # DuckDB BinderException in the batch engine; where keys were refused already.
    text = with_rule(f"- id: cat\n  event: purchase\n  points: 1\n  tag_from: '{tag_from}'\n")
    assert_issue(
        text,
        "rules[1].tag_from",
        "tag_from",
        f"a property path needs a name between every two dots, got {tag_from!r}",
    )


# --- characters past U+FFFF escaped as JSON writes them (a surrogate pair) ---


def test_an_escaped_surrogate_pair_is_its_character() -> None:
    # json.dumps escapes every emoji as a pair; YAML, reading the JSON, kept
    # the two halves apart, and the model was refused as no Unicode text.
    document = {
        "version": 1,
        "name": "launch 🚀",
        "rules": [{"id": "a", "event": "x", "points": 1, "tags": ["😀"], "where": {"🏷": "🎉"}}],
    }
    text = json.dumps(document)
    assert "\\ud83d" in text
    model = parse_model(text, source="model.json", format="json")
    assert (model.name, model.rules[0].tags, model.rules[0].where) == (
        "launch 🚀",
        ["😀"],
        {"🏷": "🎉"},
    )
    yaml_text = 'version: 1\nname: "launch \\ud83d\\ude80"\nrules: []\n'
    assert parse_model(yaml_text, source="model.yaml", format="yaml").name == "launch 🚀"


def test_a_lone_surrogate_is_still_refused_with_its_path() -> None:
    text = '{"version": 1, "name": "half \\ud83d of it", "rules": []}'
    issue = only_issue(text, "json")
    assert (issue.path, issue.line) == ("name", 1)
