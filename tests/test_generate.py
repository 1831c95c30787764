"""The synthetic event log: valid, deterministic, ordered, realistic, and written faithfully."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from leadscore import _generate
from leadscore._eventfiles import BadRecord, read_events
from leadscore._events import parse_event
from leadscore._generate import generate_events, write_events
from leadscore._time import parse_timestamp

Log = list[dict[str, Any]]

CONTACTS = 1_000
EVENTS = 20_000
SEED = 7
START = datetime(2026, 1, 5, tzinfo=UTC)

VOCABULARY = {
    "page_view", "email_open", "email_click", "email_unsubscribe", "form_submit",
    "demo_request", "webinar_attended", "download", "trial_started", "product_viewed",
    "cart_updated", "cart_abandoned", "purchase", "signup", "identify", "stage_set",
}  # fmt: skip
PAGE = re.compile(
    r"https://acme\.example/"
    r"(|pricing|careers|integrations|(docs|blog|case-studies|product)/[a-z0-9-]+)"
)
FREE_MAIL = re.compile(r"@(gmail|yahoo|hotmail)\.com$")


@pytest.fixture(scope="module")
def log() -> Log:
    return list(generate_events(contacts=CONTACTS, events=EVENTS, seed=SEED))


def _person(log: Log) -> list[str]:
    """Whose each event is: the contact, with anonymous ids linked by their signup."""
    linked: dict[str, str] = {
        e["anonymous_id"]: e["contact_id"] for e in log if e["type"] == "signup"
    }
    people: list[str] = []
    for event in log:
        if "contact_id" in event:
            people.append(event["contact_id"])
        else:
            anonymous: str = event["anonymous_id"]
            people.append(linked.get(anonymous, anonymous))
    return people


def _by_contact(log: Log) -> dict[str, Log]:
    grouped: dict[str, Log] = defaultdict(list)
    for person, event in zip(_person(log), log, strict=True):
        if person.startswith("c"):
            grouped[person].append(event)
    return grouped


def _when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


# -- determinism and format ------------------------------------------------


def test_same_seed_gives_the_same_log(log: Log) -> None:
    assert list(generate_events(contacts=CONTACTS, events=EVENTS, seed=SEED)) == log


def test_the_log_does_not_depend_on_string_hashing() -> None:
    # Iterating a set of strings would make the log differ between processes.
    script = (
        "import hashlib, orjson; from leadscore._generate import generate_events; "
        "print(hashlib.sha256(b''.join(orjson.dumps(e) for e in "
        "generate_events(contacts=100, events=2_000, seed=5))).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": str(hash_seed)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for hash_seed in (1, 2)
    }
    assert len(digests) == 1


def test_another_seed_gives_another_log(log: Log) -> None:
    other = list(generate_events(contacts=CONTACTS, events=EVENTS, seed=SEED + 1))
    assert other != log
    assert [e["timestamp"] for e in other[:100]] != [e["timestamp"] for e in log[:100]]


def test_about_the_number_of_events_asked_for(log: Log) -> None:
    assert abs(len(log) / EVENTS - 1) < 0.05


def test_every_event_is_valid_and_canonical(log: Log) -> None:
    for event in log:
        # to_json is the canonical form: no empty properties, UTC with `Z`, no null fields.
        assert parse_event(event).to_json() == event


def test_events_come_in_timestamp_then_id_order_with_unique_ids(log: Log) -> None:
    keys = [(parse_timestamp(e["timestamp"]), e["id"]) for e in log]
    assert keys == sorted(keys)
    assert len({e["id"] for e in log}) == len(log)


def test_ids_look_as_documented(log: Log) -> None:
    assert all(re.fullmatch(r"e\d{8}", e["id"]) for e in log)
    assert all(re.fullmatch(r"c\d{6}", e["contact_id"]) for e in log if "contact_id" in e)
    assert all(
        re.fullmatch(r"a-[0-9a-f]{12}", e["anonymous_id"]) for e in log if "anonymous_id" in e
    )
    contacts = {e["contact_id"] for e in log if "contact_id" in e}
    assert len(contacts) > 0.97 * CONTACTS  # nearly all contacts show up


def test_events_stay_in_the_window(log: Log) -> None:
    # By default 180 days from Monday 2026-01-05, and spread over all of them.
    days = {_when(e).date() for e in log}
    assert min(days) == START.date()
    assert max(days) == (START + timedelta(days=179)).date()
    start = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)
    log = list(generate_events(contacts=100, events=2_000, start=start, days=30))
    assert start <= min(map(_when, log))
    assert max(map(_when, log)) < start + timedelta(days=30)


def test_the_generator_is_lazy() -> None:
    events = generate_events(contacts=100, events=2_000)
    assert next(events)["id"] == "e00000001"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"contacts": 0, "events": 100}, "contacts"),
        ({"contacts": 100, "events": 799}, "events must be at least 8 per contact"),
        ({"contacts": 10, "events": 100, "days": 0}, "days"),
        ({"contacts": 10, "events": 100, "start": datetime(2026, 1, 5)}, "time zone"),
        ({"contacts": 10, "events": 100, "start": datetime(9999, 12, 1, tzinfo=UTC)}, "9999"),
    ],
)
def test_bad_arguments_fail_at_once(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_events(**arguments)


# -- vocabulary ------------------------------------------------------------


def test_only_the_agreed_event_types(log: Log) -> None:
    kinds = {e["type"] for e in log}
    assert kinds <= VOCABULARY
    assert VOCABULARY - {"stage_set"} <= kinds  # stage_set is too rare to count on here


def test_properties_follow_the_vocabulary(log: Log) -> None:
    for event in log:
        props = event.get("properties", {})
        kind = event["type"]
        if kind == "page_view":
            assert PAGE.fullmatch(props["url"]), props
            assert set(props) <= {"url", "referrer", "utm"}
            if "utm" in props:
                assert set(props["utm"]) == {"source", "medium", "campaign"}
        elif kind in {"email_open", "email_unsubscribe"}:
            assert set(props) == {"campaign"}
        elif kind == "email_click":
            assert set(props) == {"campaign", "url"}
        elif kind == "form_submit":
            assert props["form"] in {"demo", "contact", "newsletter", "ebook"}
        elif kind == "demo_request":
            assert props.get("source", "website") in {"website", "partner", "event"}
        elif kind == "trial_started":
            assert props["plan"] in {"starter", "team", "enterprise"}
        elif kind == "product_viewed":
            assert set(props) == {"category", "sku", "price"}
        elif kind == "cart_updated":
            assert set(props) == {"value", "items"}
        elif kind in {"cart_abandoned"}:
            assert props["value"] > 0
        elif kind == "purchase":
            assert props["value"] > 0
            assert props["category"]
        elif kind == "signup":
            assert {"contact_id", "anonymous_id"} <= set(event)


def test_utm_sources_include_paid_search_and_the_newsletter(log: Log) -> None:
    sources = Counter(
        e["properties"]["utm"]["source"] for e in log if "utm" in e.get("properties", {})
    )
    assert {"google-ads", "bing-ads", "linkedin", "newsletter"} <= set(sources)


def test_identify_traits(log: Log) -> None:
    first: dict[str, dict[str, Any]] = {}
    for event in log:
        if event["type"] == "identify":
            first.setdefault(event["contact_id"], event["traits"])
    assert len(first) > 0.97 * CONTACTS
    assert all({"email", "country"} <= set(traits) for traits in first.values())
    business = [t for t in first.values() if "company" in t]
    assert len(business) > 0.4 * len(first)
    for traits in business:
        assert isinstance(traits["company"]["employees"], int)
        assert all(traits[key] for key in ("company", "industry", "job_title"))
    assert {"CEO", "CTO", "VP Sales", "Head of Growth", "Marketing intern", "Engineer"} <= {
        t["job_title"] for t in business
    }
    assert all(re.fullmatch(r"[A-Z]{2}", t["country"]) for t in first.values())
    free = sum(bool(FREE_MAIL.search(t["email"])) for t in first.values())
    phones = sum("phone" in t for t in first.values())
    assert 0.1 < free / len(first) < 0.7
    assert 0.5 < phones / len(first) < 0.9


# -- realism ---------------------------------------------------------------


def test_activity_is_heavy_tailed(log: Log) -> None:
    per_contact = sorted(Counter(_person(log)).values(), reverse=True)
    top = sum(per_contact[: len(per_contact) // 10]) / sum(per_contact)
    assert top > 0.35  # a tenth of the people: over three times their share
    assert statistics.median(per_contact) < 0.7 * statistics.mean(per_contact)


def test_work_days_are_busier_than_weekends(log: Log) -> None:
    per_day = Counter(_when(e).date() for e in log)
    weekdays = [n for day, n in per_day.items() if day.weekday() < 5]
    weekends = [n for day, n in per_day.items() if day.weekday() >= 5]
    assert statistics.mean(weekdays) > 1.8 * statistics.mean(weekends)


def test_daytime_is_busier_than_night(log: Log) -> None:
    # Most people are in Europe (UTC+0 to +2) and the US (UTC-5).
    hours = Counter(_when(e).hour for e in log)
    assert sum(hours[h] for h in range(8, 18)) > 3 * sum(hours[h] for h in range(0, 6))


def test_sessions_are_page_views_minutes_apart(log: Log) -> None:
    gaps = []
    last: dict[str, datetime] = {}
    for person, event in zip(_person(log), log, strict=True):
        if event["type"] != "page_view":
            continue
        when = _when(event)
        if person in last:
            gaps.append((when - last[person]).total_seconds())
        last[person] = when
    within = [g for g in gaps if g < 1800]
    assert len(within) > 0.6 * len(gaps)  # most page views follow another in the same visit
    assert 30 < statistics.median(within) < 300


def test_campaigns_bring_opens_then_fewer_clicks(log: Log) -> None:
    opens = {
        (e["contact_id"], e["properties"]["campaign"]): e for e in log if e["type"] == "email_open"
    }
    clicks = [e for e in log if e["type"] == "email_click"]
    assert len(clicks) < 0.35 * len(opens)
    for click in clicks:
        opened = opens[click["contact_id"], click["properties"]["campaign"]]
        assert _when(opened) < _when(click)
    campaigns = {campaign for _, campaign in opens}
    assert 15 < len(campaigns) < 40  # a sending calendar over 180 days, not mail every day
    for campaign in campaigns:
        assert re.fullmatch(r"(newsletter|promo|webinar-invite)-\d{4}-\d{2}-\d{2}", campaign)


def test_a_small_minority_converts_and_behaves_differently(log: Log) -> None:
    contacts = _by_contact(log)
    buyers = {c for c, events in contacts.items() if any(e["type"] == "purchase" for e in events)}
    assert 0.02 < len(buyers) / len(contacts) < 0.07

    def pricing_views(contact: str) -> int:
        return sum(
            e.get("properties", {}).get("url", "").endswith("/pricing") for e in contacts[contact]
        )

    others = [c for c in contacts if c not in buyers]
    assert statistics.mean(map(pricing_views, buyers)) > 3 * statistics.mean(
        map(pricing_views, others)
    )
    for contact in buyers:
        kinds = [e["type"] for e in contacts[contact]]
        first_purchase = kinds.index("purchase")
        if "trial_started" in kinds:  # the software buyers: demo and trial come first
            assert kinds.index("demo_request") < kinds.index("trial_started") < first_purchase


def test_anonymous_visitors_sign_up_later_or_never(log: Log) -> None:
    signups = {e["anonymous_id"]: e for e in log if e["type"] == "signup"}
    anonymous = {e["anonymous_id"] for e in log if "anonymous_id" in e}
    never = anonymous - set(signups)
    assert len(signups) > 0.3 * CONTACTS
    assert 0 < len(never) < 0.2 * len(anonymous)
    before = Counter(e["anonymous_id"] for e in log if "contact_id" not in e)
    assert sum(before[a] > 0 for a in signups) > 0.9 * len(signups)  # browsed before signing up
    for event in log:  # once linked, events carry the contact id
        if "contact_id" not in event and event["anonymous_id"] in signups:
            assert _when(event) <= _when(signups[event["anonymous_id"]])


def test_negative_signals_and_rare_stage_changes(log: Log) -> None:
    kinds = Counter(e["type"] for e in log)
    careers = sum(
        e["properties"]["url"].endswith("/careers") for e in log if e["type"] == "page_view"
    )
    assert min(kinds["email_unsubscribe"], kinds["cart_abandoned"], careers) > 0
    assert kinds["stage_set"] < 0.002 * len(log)


def test_stage_set_appears_in_a_larger_log() -> None:
    kinds = Counter(e["type"] for e in generate_events(contacts=3_000, events=60_000, seed=1))
    assert 0 < kinds["stage_set"] < 0.002 * sum(kinds.values())


# -- writers ---------------------------------------------------------------


def test_jsonl_round_trip(log: Log, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    assert write_events(log, path) == len(log)
    with path.open("rb") as lines:
        assert [orjson.loads(line) for line in lines] == log


def test_parquet_round_trip_in_row_groups(
    log: Log, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_generate, "_CHUNK", 1_000)
    monkeypatch.setattr(_generate, "_ROW_GROUP", 4_096)
    path = tmp_path / "events.parquet"
    assert write_events(iter(log), path) == len(log)
    parquet = pq.ParquetFile(path)
    assert parquet.metadata.num_row_groups == -(-len(log) // 4_096)
    table = parquet.read()
    assert table.schema.names == [
        "id", "type", "contact_id", "anonymous_id", "timestamp", "properties", "traits",
    ]  # fmt: skip
    assert all(field.type == pa.string() for field in table.schema)
    assert list(_from_rows(table.to_pylist())) == log


def _from_rows(rows: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for row in rows:
        event = {key: value for key, value in row.items() if value is not None}
        for key in ("properties", "traits"):
            if key in event:
                event[key] = orjson.loads(event[key])
        yield event


def test_typed_parquet(log: Log, tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    assert write_events(iter(log), path, typed=True) == len(log)
    table = pq.read_table(path)
    types = {field.name: field.type for field in table.schema}
    assert types["timestamp"] == pa.timestamp("us", tz="UTC")
    assert pa.types.is_struct(types["properties"])
    assert all(types[name] == pa.string() for name in ("id", "type", "contact_id", "traits"))

    # Read back as the pure engine reads it: the same events as the JSON text gives.
    def fail(bad: BadRecord) -> None:
        raise AssertionError(str(bad))

    assert list(read_events([str(path)], on_bad=fail)) == [parse_event(e) for e in log]
    odd = {**log[0], "properties": {"unheard_of": 1}}
    with pytest.raises(ValueError, match="unheard_of"):
        write_events([odd], tmp_path / "odd.parquet", typed=True)


def test_the_event_readers_take_both_files(log: Log, tmp_path: Path) -> None:
    def fail(bad: BadRecord) -> None:
        raise AssertionError(str(bad))

    expected = [parse_event(e) for e in log[:3_000]]
    for name in ("events.jsonl", "events.parquet"):
        path = tmp_path / name
        write_events(log[:3_000], path)
        assert list(read_events([str(path)], on_bad=fail)) == expected


def test_format_from_the_name_or_given(log: Log, tmp_path: Path) -> None:
    assert write_events(log[:10], tmp_path / "a.ndjson") == 10
    assert write_events(log[:10], tmp_path / "b.dat", format="parquet") == 10
    assert pq.read_table(tmp_path / "b.dat").num_rows == 10
    with pytest.raises(ValueError, match=r"\.jsonl"):
        write_events(log[:10], tmp_path / "c.csv")
