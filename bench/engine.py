"""Benchmark: `leadscore score` against a hand-written loop for the same model (issue 2).

    .venv/bin/python bench/engine.py                 # 1,000,000 events, 50,000 contacts
    .venv/bin/python bench/engine.py --repeat 3      # best of three runs of each
    .venv/bin/python bench/engine.py --quick         # 100,000 events, 5,000 contacts

Generates an event log with `leadscore generate` into `bench/out/` (git-ignored;
reused while the parameters stay the same), then runs, each as its own
process, the real CLI

    leadscore score examples/b2b-saas.yaml EVENTS --at END --format jsonl --output OUT

and the baseline: a plain Python loop written for the B2B SaaS example model
only (`_loop` below: its rules, limits, decay, clamp, fit, grades, bands,
stages, triggers, identity links and first-copy deduplication hard-coded),
reading the same JSON Lines with the same parser (orjson). Both score as of
END, the last event of the log. Every run goes through a small wrapper
process that reports the wall time, the CPU time and the peak resident
memory of its one child, so each figure belongs to one process.

The two outputs are then compared, contact by contact (every field of the
scorecard; numbers within 0.01), and the firing counts too: the benchmark
only means something if both compute the same thing. Prints a table (wall
seconds, CPU seconds, events per second, peak RSS for each), the ratio of
leadscore's speed to the loop's (by wall time; by CPU time alongside), and
PASS/FAIL against the targets of the issue: a ratio of at least 1/3 and a
peak under 1 GB. Exits 1 when the outputs disagree or a target is missed.

This is a benchmark, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
MODEL = Path("examples") / "b2b-saas.yaml"  # relative to ROOT, as the docs show it
SEED = 1
TARGET_RATIO = 1 / 3
TARGET_PEAK_MB = 1000.0  # 1 GB = 10^9 bytes; MB below are 10^6 bytes
TOLERANCE = 0.01  # reported values are rounded to 2 decimals
ENGINE, LOOP = "leadscore score", "hand-written loop"


# ===========================================================================
# The baseline: a hand-written loop for examples/b2b-saas.yaml, and only it
# ===========================================================================
#
# What a data engineer would write to score this one model: read the log,
# keep the first copy of each event id, group events by contact (anonymous
# events follow the first link of their anonymous id), sort each contact's
# events by (timestamp, id), run through them once, write the scorecards.
# Anonymous profiles are not in the output, so they are not scored.
#
# Decay: an award of p points at t counts p * 2^((t - at) / H) as of `at`,
# and the sums are kept in those terms, so the value as of an event at t is
# sum / 2^((t - at) / H) (the log covers months, nowhere near the 1,000
# half-lives where 2^-x underflows).

HALF_LIFE = 45 * 86_400.0  # seconds
LOW, HIGH = 0.0, 200.0  # clamp
REACH = 1e-9  # a value reaches n when it is >= n - 1e-9 (spec 2.3)
WARSAW = ZoneInfo("Europe/Warsaw")  # limits count days, weeks and months here

STAGES = ("subscriber", "lead", "mql", "sql", "customer")
SUBSCRIBER, LEAD, MQL, SQL, CUSTOMER = range(5)
STAGE_OF = {name: index for index, name in enumerate(STAGES)}

BUYING, RESEARCH, CONTENT, EMAIL = "buying-intent", "product-research", "content", "email"

# (points, times, per, tags) by rule, in the model's order
DEMO, TRIAL, ENTERPRISE_TRIAL, SALES_FORM, PRICING, INTEGRATIONS, CASE_STUDY, DOCS = range(8)
BLOG, CAMPAIGN, WEBINAR, DOWNLOAD, NEWSLETTER, OPEN, CLICK, CAREERS, UNSUBSCRIBE = range(8, 17)
RULES: tuple[tuple[int, int, str, tuple[str, ...]], ...] = (
    (40, 1, "month", (BUYING,)),  # demo-request
    (30, 1, "ever", (BUYING,)),  # trial-started
    (10, 1, "ever", (BUYING,)),  # enterprise-trial
    (20, 1, "week", (BUYING,)),  # sales-form
    (10, 1, "day", (BUYING,)),  # pricing-page
    (5, 1, "week", (RESEARCH,)),  # integrations-page
    (6, 3, "month", (RESEARCH,)),  # case-study
    (2, 5, "week", (RESEARCH,)),  # docs-page
    (1, 3, "day", (CONTENT,)),  # blog-post
    (2, 1, "week", ()),  # campaign-visit
    (15, 2, "month", (CONTENT,)),  # webinar
    (8, 3, "month", (CONTENT,)),  # content-download
    (5, 1, "ever", ()),  # newsletter-signup
    (1, 1, "day", (EMAIL,)),  # email-open
    (3, 5, "week", (EMAIL,)),  # email-click
    (-15, 1, "ever", ()),  # careers-page
    (-25, 0, "", ()),  # unsubscribe: no limit
)

DECISION_MAKER = re.compile(
    r"(?i)\b(ceo|cto|cmo|coo|cfo|founder|co-founder|vp|vice president|head|director)\b"
)
MANAGER = re.compile(r"(?i)\b(manager|lead)\b")
STUDENT = re.compile(r"(?i)\b(student|intern|internship)\b")
FREE_MAIL = re.compile(
    r"(?i)@(gmail|googlemail|yahoo|hotmail|outlook|live|icloud|wp|o2|onet|interia)\."
)
COUNTRIES = frozenset({"pl", "de", "at", "cz", "sk", "nl", "se", "no", "dk"})
INDUSTRIES = frozenset({"software", "saas", "fintech", "e-commerce", "marketing"})
NUMERIC = re.compile(r"\s*[+-]?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?\s*")

# An event as the loop keeps it: (time in epoch seconds, id, type, properties, traits)
Event = tuple[float, str, str, dict[str, Any], dict[str, Any] | None]


def matching_rules(kind: str, props: dict[str, Any]) -> list[int]:
    """The rules whose `event` and `where` match, in the model's order."""
    if kind == "page_view":
        hits = []
        url = props.get("url")
        url = url.lower() if isinstance(url, str) else ""
        if "/pricing" in url:  # glob */pricing*
            hits.append(PRICING)
        if "/integrations" in url:
            hits.append(INTEGRATIONS)
        if "/case-studies/" in url:
            hits.append(CASE_STUDY)
        if "/docs/" in url:
            hits.append(DOCS)
        if "/blog/" in url:
            hits.append(BLOG)
        utm = props.get("utm")
        if isinstance(utm, dict) and utm.get("source") is not None:
            hits.append(CAMPAIGN)
        if "/careers" in url:
            hits.append(CAREERS)
        return hits
    if kind == "email_open":
        return [OPEN]
    if kind == "email_click":
        return [CLICK]
    if kind == "form_submit":
        form = props.get("form")
        form = form.lower() if isinstance(form, str) else None
        if form in ("contact", "demo"):
            return [SALES_FORM]
        if form == "newsletter":
            return [NEWSLETTER]
        return []
    if kind == "download":
        return [DOWNLOAD]
    if kind == "webinar_attended":
        return [WEBINAR]
    if kind == "demo_request":
        return [DEMO]
    if kind == "trial_started":
        plan = props.get("plan")
        if isinstance(plan, str) and plan.lower() == "enterprise":
            return [TRIAL, ENTERPRISE_TRIAL]
        return [TRIAL]
    if kind == "email_unsubscribe":
        return [UNSUBSCRIBE]
    return []


def as_number(value: object) -> float | None:
    """Numbers and numeric strings compare as numbers; booleans are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str) and NUMERIC.fullmatch(value):
        return float(value)
    return None


def fit_of(traits: dict[str, Any]) -> int:
    fit = 0
    title = traits.get("job_title")
    if isinstance(title, str):
        if DECISION_MAKER.search(title):
            fit += 25
        if MANAGER.search(title):
            fit += 10
        if STUDENT.search(title):
            fit -= 20
    country = traits.get("country")
    if isinstance(country, str) and country.lower() in COUNTRIES:
        fit += 15
    company = traits.get("company")
    employees = as_number(company.get("employees")) if isinstance(company, dict) else None
    if employees is not None:
        if 50 <= employees < 1000:
            fit += 15
        if employees >= 1000:
            fit += 20
        if employees < 10:
            fit -= 10
    industry = traits.get("industry")
    if isinstance(industry, str) and industry.lower() in INDUSTRIES:
        fit += 10
    email = traits.get("email")
    if isinstance(email, str) and FREE_MAIL.search(email):
        fit -= 15
    if traits.get("phone") is None:
        fit -= 5
    return fit


def grade_of(fit: int) -> str:
    if fit >= 50:
        return "A"
    if fit >= 30:
        return "B"
    if fit >= 10:
        return "C"
    return "D"


def band_of(score: float) -> str:
    if score >= 80 - REACH:
        return "hot"
    if score >= 30 - REACH:
        return "warm"
    return "cold"


def clamp(value: float) -> float:
    return LOW if value < LOW else HIGH if value > HIGH else value


def period_of(per: str, local: datetime) -> int:
    if per == "day":
        return local.toordinal()
    if per == "week":
        return local.toordinal() - local.weekday()  # the ISO week's Monday
    if per == "month":
        return local.year * 12 + local.month
    return 0  # ever


def stamp(t: float) -> str:
    moment = datetime.fromtimestamp(t, UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def score_contact(contact_id: str, events: list[Event], at: float) -> tuple[dict[str, Any], int]:
    """One contact's scorecard as of `at` and how many triggers fired; events sorted."""
    total = 0.0  # engagement, as of `at`
    stage_total = 0.0  # since the current stage was entered, as of `at`
    tag_totals: dict[str, float] = {}
    limits: dict[int, tuple[int, int]] = {}  # rule -> (period, awards in it)
    traits: dict[str, Any] = {}
    fit = 0
    stage = -1  # none before the first event
    entered = 0.0
    hot_fired = mql_fired = warm_fired = False
    firings = 0
    for t, _, kind, props, new_traits in events:
        g = 2.0 ** ((t - at) / HALF_LIFE)  # what a point awarded at t counts as of `at`
        score_before = clamp(total / g)
        band_before = band_of(score_before) if stage >= 0 else None
        stage_before = stage

        if new_traits is not None:
            for key, value in new_traits.items():
                if value is None:
                    traits.pop(key, None)
                else:
                    traits[key] = value
            fit = fit_of(traits)

        local: datetime | None = None
        for rule in matching_rules(kind, props):
            points, times, per, tags = RULES[rule]
            if per:
                if local is None:
                    local = datetime.fromtimestamp(t, WARSAW)
                period = period_of(per, local)
                last, count = limits.get(rule, (-1, 0))
                count = count + 1 if last == period else 1
                if count > times:
                    continue  # capped: nothing, no tag
                limits[rule] = (period, count)
            amount = points * g
            total += amount
            stage_total += amount
            for tag in tags:
                tag_totals[tag] = tag_totals.get(tag, 0.0) + amount

        if stage < 0:  # the first event enters the first stage; its points count for none
            stage, entered, stage_total = SUBSCRIBER, t, 0.0
        score = clamp(total / g)
        if kind == "stage_set":  # by hand, either way; unknown names change nothing
            name = props.get("stage")
            target = STAGE_OF.get(name, -1) if isinstance(name, str) else -1
            if target >= 0 and target != stage:
                stage, entered, stage_total = target, t, 0.0
        else:
            if kind == "purchase":
                furthest = CUSTOMER
            elif kind == "demo_request":
                furthest = SQL
            elif score >= 60 - REACH and grade_of(fit) in ("A", "B"):
                furthest = MQL
            elif score >= 25 - REACH:
                furthest = LEAD
            else:
                furthest = SUBSCRIBER
            if furthest > stage:
                stage, entered, stage_total = furthest, t, 0.0

        if not hot_fired and score_before < 80 - REACH <= score:
            hot_fired, firings = True, firings + 1
        if not mql_fired and stage_before != MQL and stage == MQL:
            mql_fired, firings = True, firings + 1
        if not warm_fired and band_before != "warm" and band_of(score) == "warm":
            warm_fired, firings = True, firings + 1

    score = clamp(total)
    card = {
        "contact_id": contact_id,
        "score": round(score, 2) + 0.0,
        "fit": fit,
        "grade": grade_of(fit),
        "band": band_of(score),
        "stage": STAGES[stage],
        "stage_entered_at": stamp(entered),
        "stage_score": round(clamp(stage_total), 2) + 0.0,
        "tag_scores": {tag: round(clamp(tag_totals[tag]), 2) + 0.0 for tag in sorted(tag_totals)},
        "last_event_at": stamp(events[-1][0]),
    }
    return card, firings


def read_log(path: str, at: float) -> dict[str, list[Event]]:
    """Each contact's events (own and linked anonymous ones), first copies, up to `at`."""
    seen: set[str] = set()
    contacts: dict[str, list[Event]] = {}
    anonymous: dict[str, list[Event]] = {}
    links: dict[str, tuple[float, str, str]] = {}  # anonymous id -> first (t, id, contact)
    with open(path, "rb") as lines:
        for line in lines:
            raw = orjson.loads(line)
            event_id = raw["id"]
            if event_id in seen:
                continue
            seen.add(event_id)
            t = datetime.fromisoformat(raw["timestamp"]).timestamp()
            if t > at:
                continue
            kind = raw["type"]
            traits = raw.get("traits") if kind == "identify" else None  # ignored elsewhere
            event = (t, event_id, kind, raw.get("properties") or {}, traits)
            contact_id = raw.get("contact_id")
            anonymous_id = raw.get("anonymous_id")
            if contact_id is not None:
                contacts.setdefault(contact_id, []).append(event)
                if anonymous_id is not None:
                    link = (t, event_id, contact_id)
                    first = links.get(anonymous_id)
                    if first is None or link < first:
                        links[anonymous_id] = link
            else:
                anonymous.setdefault(anonymous_id, []).append(event)
    for anonymous_id, (_, _, contact_id) in links.items():
        contacts[contact_id] += anonymous.pop(anonymous_id, [])
    return contacts


def run_loop(events_path: str, at_text: str, output: str) -> None:
    at = datetime.fromisoformat(at_text).timestamp()
    contacts = read_log(events_path, at)
    firings = 0
    with open(output, "wb") as out:
        for contact_id in sorted(contacts):
            events = contacts[contact_id]
            events.sort()  # by (timestamp, id): ids are unique, so nothing else is compared
            card, fired = score_contact(contact_id, events, at)
            out.write(orjson.dumps(card) + b"\n")
            firings += fired
    print(json.dumps({"contacts": len(contacts), "firings": firings}))


# ===========================================================================
# Measuring one process
# ===========================================================================


def run_measured(command: Sequence[str]) -> None:
    """Run `command`, print its wall time and peak RSS (this process has no other child)."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, cwd=ROOT, check=False)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb = usage.ru_maxrss  # KiB on Linux
    report = {
        "returncode": done.returncode,
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_mb": peak_kb * 1024 / 1e6,
        "stdout": done.stdout.decode(errors="replace"),
        "stderr": done.stderr.decode(errors="replace"),
    }
    print(json.dumps(report))


@dataclass(frozen=True, slots=True)
class Measured:
    wall: float
    cpu: float  # user + system seconds: less sensitive than wall time to a busy machine
    peak_mb: float
    stdout: str
    stderr: str


def measure(command: Sequence[str]) -> Measured:
    wrapper = [sys.executable, str(Path(__file__).resolve()), "_measure", "--", *command]
    done = subprocess.run(wrapper, capture_output=True, check=True, cwd=ROOT)
    report = json.loads(done.stdout)
    if report["returncode"] != 0:
        sys.exit(f"failed ({report['returncode']}): {' '.join(command)}\n{report['stderr']}")
    return Measured(
        report["wall"], report["cpu"], report["peak_mb"], report["stdout"], report["stderr"]
    )


# ===========================================================================
# The benchmark
# ===========================================================================


@dataclass(frozen=True, slots=True)
class Log:
    path: Path
    events: int  # lines in the file
    end: str  # the timestamp of its last event, as written


def leadscore_command() -> str:
    beside = Path(sys.executable).parent / "leadscore"
    found = str(beside) if beside.exists() else shutil.which("leadscore")
    if found is None:
        sys.exit("leadscore is not installed: run scripts/test or pip install -e . first")
    return found


def event_log(contacts: int, events: int) -> Log:
    """The generated log for these parameters, made once and then reused."""
    OUT.mkdir(parents=True, exist_ok=True)
    stem = f"events-c{contacts}-e{events}-s{SEED}"
    path, meta_path = OUT / f"{stem}.jsonl", OUT / f"{stem}.meta.json"
    wanted = {"contacts": contacts, "events": events, "seed": SEED}
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if {key: meta.get(key) for key in wanted} == wanted:
            return Log(path, meta["lines"], meta["end"])
    print(f"generating {events:,} events for {contacts:,} contacts into {path} ...", flush=True)
    partial = path.with_suffix(".partial.jsonl")
    generate = [leadscore_command(), "generate", str(partial), "--contacts", str(contacts)]
    generate += ["--events", str(events), "--seed", str(SEED)]
    subprocess.run(generate, check=True, cwd=ROOT)
    lines, end, end_text = 0, float("-inf"), ""
    with partial.open("rb") as source:
        for line in source:
            text = orjson.loads(line)["timestamp"]
            moment = datetime.fromisoformat(text).timestamp()
            if moment > end:
                end, end_text = moment, text
            lines += 1
    partial.replace(path)
    meta_path.write_text(json.dumps({**wanted, "lines": lines, "end": end_text}) + "\n")
    return Log(path, lines, end_text)


def compare(engine_path: Path, loop_path: Path) -> tuple[int, int, list[str]]:
    """(contacts that agree, contacts in either output, the first differences)."""

    def load(path: Path) -> dict[str, dict[str, Any]]:
        with path.open("rb") as source:
            return {card["contact_id"]: card for card in map(orjson.loads, source)}

    ours, theirs = load(engine_path), load(loop_path)
    agree, problems = 0, []
    for contact_id in sorted(ours.keys() | theirs.keys()):
        a, b = ours.get(contact_id), theirs.get(contact_id)
        if a is None or b is None:
            found = "the hand-written loop" if a is None else "leadscore"
            problems.append(f"{contact_id}: only in the output of {found}")
            continue
        differences = [
            key for key in sorted(a.keys() | b.keys()) if not _same(a.get(key), b.get(key))
        ]
        if differences:
            shown = "; ".join(f"{key}: {a.get(key)!r} vs {b.get(key)!r}" for key in differences)
            problems.append(f"{contact_id}: {shown}")
        else:
            agree += 1
    return agree, len(ours.keys() | theirs.keys()), problems


def _same(a: object, b: object) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(a - b) <= TOLERANCE + 1e-9
    return a == b


def _firings(stderr: str) -> int | None:
    found = re.search(r"([\d,]+) firings", stderr)
    return int(found.group(1).replace(",", "")) if found else None


def machine() -> str:
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), "
        f"Python {platform.python_version()}, {platform.system()} {platform.machine()}"
    )


def benchmark(contacts: int, events: int, repeat: int) -> int:
    log = event_log(contacts, events)
    leadscore = leadscore_command()
    engine_out, loop_out = OUT / "scores-leadscore.jsonl", OUT / "scores-loop.jsonl"
    score = [leadscore, "score", str(MODEL), str(log.path), "--at", log.end]
    score += ["--format", "jsonl", "--output", str(engine_out)]
    loop = [sys.executable, str(Path(__file__).resolve()), "_loop", str(log.path), log.end]
    loop += [str(loop_out)]
    shown = " ".join([Path(leadscore).name, *score[1:]]).replace(str(ROOT) + "/", "")
    print(f"machine: {machine()}")
    print(f"log: {log.path.relative_to(ROOT)}: {log.events:,} events, {contacts:,} contacts")
    print(f"command: {shown}")

    print(f"load average before: {_load()}")
    runs: dict[str, list[Measured]] = {ENGINE: [], LOOP: []}
    for attempt in range(1, repeat + 1):
        for name, command in ((ENGINE, score), (LOOP, loop)):
            result = measure(command)
            runs[name].append(result)
            print(
                f"  run {attempt}/{repeat} {name}: {result.wall:.2f} s wall, "
                f"{result.cpu:.2f} s CPU, {result.peak_mb:,.0f} MB"
            )
    startup = measure([leadscore, "--version"])
    print(f"load average after: {_load()}")

    agree, total, problems = compare(engine_out, loop_out)
    engine_firings = _firings(runs[ENGINE][-1].stderr)
    loop_firings = json.loads(runs[LOOP][-1].stdout)["firings"]

    wall = {name: min(result.wall for result in results) for name, results in runs.items()}
    cpu = {name: min(result.cpu for result in results) for name, results in runs.items()}
    peak = {name: max(result.peak_mb for result in results) for name, results in runs.items()}
    print()
    print(f"| {'':<17} | wall s | CPU s | events/s | peak RSS MB |")
    print("|-------------------|-------:|------:|---------:|------------:|")
    for name in runs:
        rate = log.events / wall[name]
        print(
            f"| {name:<17} | {wall[name]:>6.2f} | {cpu[name]:>5.2f} | {rate:>8,.0f} "
            f"| {peak[name]:>11,.0f} |"
        )
    print()
    ratio = wall[LOOP] / wall[ENGINE]
    cpu_ratio = cpu[LOOP] / cpu[ENGINE]
    speed_ok = ratio >= TARGET_RATIO
    memory_ok = peak[ENGINE] < TARGET_PEAK_MB
    same = agree == total and not problems and engine_firings == loop_firings
    print(
        f"best of {repeat} (wall and CPU each); peak RSS: the highest of the runs; "
        f"leadscore startup alone (leadscore --version): {startup.wall:.2f} s"
    )
    print(
        f"scorecards that agree: {agree:,} of {total:,}; firings: leadscore {engine_firings}, "
        f"hand-written loop {loop_firings}"
    )
    for problem in problems[:10]:
        print(f"  differs: {problem}")
    print(
        f"ratio (leadscore speed / loop speed, wall): {ratio:.2f} (by CPU time: {cpu_ratio:.2f}), "
        f"target >= {TARGET_RATIO:.2f}: {'PASS' if speed_ok else 'FAIL'}"
    )
    print(
        f"peak memory of leadscore score: {peak[ENGINE]:,.0f} MB, "
        f"target < {TARGET_PEAK_MB:,.0f} MB: {'PASS' if memory_ok else 'FAIL'}"
    )
    if not same:
        print("FAIL: the outputs disagree, so the timings compare different work")
    return 0 if same and speed_ok and memory_ok else 1


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    # Internal modes, run as child processes by the benchmark itself.
    if args[:1] == ["_loop"]:
        run_loop(*args[1:4])
        return 0
    if args[:2] == ["_measure", "--"]:
        run_measured(args[2:])
        return 0
    parser = argparse.ArgumentParser(
        prog="bench/engine.py",
        description="Time `leadscore score` against a hand-written loop for the B2B example "
        "model, on the same generated log, and check that both give the same scores.",
    )
    parser.add_argument("--contacts", type=int, default=50_000, help="default: %(default)s")
    parser.add_argument("--events", type=int, default=1_000_000, help="default: %(default)s")
    parser.add_argument("--repeat", type=int, default=1, help="best of N runs (default: 1)")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 100,000 events, 5,000 contacts"
    )
    options = parser.parse_args(args)
    if options.quick:
        options.contacts, options.events = 5_000, 100_000
    if options.repeat < 1:
        parser.error("--repeat must be at least 1")
    return benchmark(options.contacts, options.events, options.repeat)


if __name__ == "__main__":
    sys.exit(main())
