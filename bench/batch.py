"""Benchmark: the batch engine against a hand-written DuckDB query and the pure engine (issue 4).

    .venv/bin/python bench/batch.py                  # 10,000,000 events, 500,000 contacts
    .venv/bin/python bench/batch.py --quick          # 1,000,000 events, 50,000 contacts
    .venv/bin/python bench/batch.py --spark          # Spark vs DuckDB vs pure, 1,000,000 events

Generates the logs once with `leadscore generate` as typed Parquet (properties a
struct, timestamps as timestamps) into `bench/out/`
(git-ignored, reused while the parameters stay the same): the big one and a
tenth of it (same events per contact), for how the time grows. Then, for two
models,

- (a) rules, decay and tags: the B2B SaaS example's rules, limits, decay,
  clamp and tags, without fit, stages or triggers;
- (b) the B2B SaaS example model itself (limits, fit, grades, bands, stages,
  triggers),

it runs, each in a process of its own:

- the batch engine, `leadscore.score_batch(model, PARQUET, at=AT)`, which
  returns the pure engine's Result objects (scorecards and firings), on the
  small and the big log;
- the ceiling: one DuckDB query written by hand for these rules only (`CEILING`
  below: the same identity links, limits in Europe/Warsaw with DuckDB's ICU
  time zones, decay, clamp and tag sums), computing the engagement and tag
  scores; it has nothing for fit, stages or triggers, which model (b) adds;
- the pure engine (`StreamScorer`, what `leadscore score` runs) on the small
  log only: at its speed the big one would take about ten times as long, and
  its time grows linearly with the events (docs/benchmarks.md, issue 2), so
  its figure for the big log is extrapolated and marked so.

Every run reports its wall time and the peak resident memory of its process
(children included). The batch engine's scorecards and firings are compared
with the pure engine's (byte for byte as JSON Lines) on the small log, and
its scores with the ceiling's on every log (within 0.01): the figures only
mean something when all compute the same. Prints one table, with events per
second and the ratios, and PASS/FAIL against the targets: (a) within 1.5x of
the ceiling and at least 5,000,000 events/s, (b) at least 1,000,000 events/s,
peak under 2 GB. The machine is shared: absolute figures are noisy, ratios
less so.

With `--spark` (needs `leadscore[spark]`), it runs instead the Spark engine,
`score_spark(model, PARQUET, at=AT)` on a local Spark session (`local[2]`,
8 shuffle partitions), beside the batch engine and the pure engine, on the
1,000,000-event log, for both models; the Spark engine's output must be the
pure engine's, byte for byte. Its peak memory adds the Spark JVM's (a child
process, read from /proc as VmHWM) to the Python driver's; the Python
workers Spark starts are not counted.

This is a benchmark, not a test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
MODEL = ROOT / "examples" / "b2b-saas.yaml"
AT = "2026-07-06T00:00:00Z"  # after the last event of the generated logs
SEED = 1
TARGET_A_RATIO = 1.5
TARGET_A_RATE = 5_000_000
TARGET_B_RATE = 1_000_000
TARGET_PEAK_MB = 2000.0
# DuckDB's own memory, past which it spills to disk: with the Python objects
# of 500,000 scorecards beside it, the process stays under the 2 GB target.
MEMORY_LIMIT = "1GB"

# The hand-written query for the B2B SaaS rules: each rule's test written
# directly (a glob `*/pricing*` on a lower-cased url is LIKE '%/pricing%'),
# over the typed columns of the generated Parquet (struct fields, timestamps),
# calendar periods from ICU's Europe/Warsaw, and nothing generic.
CEILING = """
WITH e AS (
    SELECT id, type, contact_id, anonymous_id, epoch_us("timestamp") AS ts, properties
    FROM read_parquet({path})
),
links AS (
    SELECT anonymous_id, arg_min(contact_id, {{'ts': ts, 'id': id}}) AS linked
    FROM e WHERE contact_id IS NOT NULL AND anonymous_id IS NOT NULL AND ts <= {at}
    GROUP BY anonymous_id
),
o AS (
    SELECT coalesce(e.contact_id, l.linked, e.anonymous_id) AS owner,
           (e.contact_id IS NOT NULL OR l.linked IS NOT NULL) AS ident, e.ts, e.id, e.type,
           CASE WHEN e.type = 'page_view' THEN lower(e.properties.url) END AS url,
           CASE WHEN e.type = 'page_view' THEN e.properties.utm.source END AS utm,
           CASE WHEN e.type = 'form_submit' THEN lower(e.properties.form) END AS form,
           CASE WHEN e.type = 'trial_started' THEN lower(e.properties.plan) END AS plan
    FROM e LEFT JOIN links l ON e.contact_id IS NULL AND e.anonymous_id = l.anonymous_id
    WHERE e.ts <= {at}
),
hits AS (
    SELECT owner, ident, ts, id, 0 AS rule FROM o WHERE type = 'demo_request'
    UNION ALL SELECT owner, ident, ts, id, 1 FROM o WHERE type = 'trial_started'
    UNION ALL SELECT owner, ident, ts, id, 2 FROM o WHERE type = 'trial_started'
        AND plan = 'enterprise'
    UNION ALL SELECT owner, ident, ts, id, 3 FROM o WHERE type = 'form_submit'
        AND form IN ('contact', 'demo')
    UNION ALL SELECT owner, ident, ts, id, 4 FROM o WHERE url LIKE '%/pricing%'
    UNION ALL SELECT owner, ident, ts, id, 5 FROM o WHERE url LIKE '%/integrations%'
    UNION ALL SELECT owner, ident, ts, id, 6 FROM o WHERE url LIKE '%/case-studies/%'
    UNION ALL SELECT owner, ident, ts, id, 7 FROM o WHERE url LIKE '%/docs/%'
    UNION ALL SELECT owner, ident, ts, id, 8 FROM o WHERE url LIKE '%/blog/%'
    UNION ALL SELECT owner, ident, ts, id, 9 FROM o WHERE type = 'page_view'
        AND utm IS NOT NULL
    UNION ALL SELECT owner, ident, ts, id, 10 FROM o WHERE type = 'webinar_attended'
    UNION ALL SELECT owner, ident, ts, id, 11 FROM o WHERE type = 'download'
    UNION ALL SELECT owner, ident, ts, id, 12 FROM o WHERE type = 'form_submit'
        AND form = 'newsletter'
    UNION ALL SELECT owner, ident, ts, id, 13 FROM o WHERE type = 'email_open'
    UNION ALL SELECT owner, ident, ts, id, 14 FROM o WHERE type = 'email_click'
    UNION ALL SELECT owner, ident, ts, id, 15 FROM o WHERE url LIKE '%/careers%'
    UNION ALL SELECT owner, ident, ts, id, 16 FROM o WHERE type = 'email_unsubscribe'
),
rules(rule, points, per, times, tags) AS (VALUES
    (0, 40, 'month', 1, ['buying-intent']), (1, 30, 'ever', 1, ['buying-intent']),
    (2, 10, 'ever', 1, ['buying-intent']), (3, 20, 'week', 1, ['buying-intent']),
    (4, 10, 'day', 1, ['buying-intent']), (5, 5, 'week', 1, ['product-research']),
    (6, 6, 'month', 3, ['product-research']), (7, 2, 'week', 5, ['product-research']),
    (8, 1, 'day', 3, ['content']), (9, 2, 'week', 1, []), (10, 15, 'month', 2, ['content']),
    (11, 8, 'month', 3, ['content']), (12, 5, 'ever', 1, []), (13, 1, 'day', 1, ['email']),
    (14, 3, 'week', 5, ['email']), (15, -15, 'ever', 1, []), (16, -25, NULL, NULL, [])
),
ranked AS (
    SELECT h.owner, h.ident, h.ts, r.points, r.tags, r.times,
           row_number() OVER (
               PARTITION BY h.owner, h.ident, h.rule,
                   CASE r.per
                       WHEN 'day' THEN CAST(timezone('Europe/Warsaw', make_timestamptz(h.ts))
                                            AS DATE)
                       WHEN 'week' THEN CAST(date_trunc('week',
                           timezone('Europe/Warsaw', make_timestamptz(h.ts))) AS DATE)
                       WHEN 'month' THEN CAST(date_trunc('month',
                           timezone('Europe/Warsaw', make_timestamptz(h.ts))) AS DATE)
                   END
               ORDER BY h.ts, h.id) AS k
    FROM hits h JOIN rules r USING (rule)
),
amounts AS (
    SELECT owner, ident, tags,
           points * pow(2.0, (ts - {at}) / (45 * 86400 * 1e6)) AS amount
    FROM ranked WHERE times IS NULL OR k <= times
),
tag_scores AS (
    SELECT owner, ident, map_from_entries(list({{'k': tag, 'v': least(greatest(total, 0), 200)}}))
           AS tags
    FROM (SELECT owner, ident, tag, sum(amount) AS total FROM amounts, unnest(tags) AS u(tag)
          GROUP BY ALL)
    GROUP BY ALL
)
SELECT o.owner, o.ident, least(greatest(coalesce(s.total, 0), 0), 200) AS score, t.tags
FROM (SELECT DISTINCT owner, ident FROM o) o
LEFT JOIN (SELECT owner, ident, sum(amount) AS total FROM amounts GROUP BY ALL) s
    USING (owner, ident)
LEFT JOIN tag_scores t USING (owner, ident)
"""


def model_of(kind: str) -> Any:
    from leadscore import load_model, model_from_data

    full = load_model(str(MODEL))
    if kind == "b":
        return full
    data = full.model_dump(by_alias=True, exclude_none=True)
    for key in ("fit", "grades", "bands", "stages", "triggers"):
        data.pop(key, None)
    data["name"] = "b2b-rules-decay-tags"
    return model_from_data(data)


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) * 1024 / 1e6  # ru_maxrss is KiB on Linux


def run_one(what: str, kind: str, events: str, output: str) -> None:
    """One measured run, in this process; prints its figures as JSON."""
    from leadscore import parse_timestamp

    at = parse_timestamp(AT)
    model = model_of(kind)
    start = time.perf_counter()
    if what == "spark":
        from leadscore import score_spark

        session = _spark_session()
        start = time.perf_counter()
        result = score_spark(model, events, at=at, spark=session)
        seconds = time.perf_counter() - start
        count, firings = _write_result(result, output)
        peak = _peak_mb() + _children_peak_mb()
        session.stop()
        print(json.dumps({"seconds": seconds, "peak_mb": peak, "owners": count,
                          "firings": firings}))  # fmt: skip
        return
    if what == "duckdb":
        from leadscore import score_batch

        result = score_batch(model, events, at=at, memory_limit=MEMORY_LIMIT)
        seconds = time.perf_counter() - start
        count, firings = _write_result(result, output)
    elif what == "ceiling":
        import duckdb

        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
        # As score_batch sets it on its own connection: a fair ceiling.
        con.execute("SET preserve_insertion_order = false")
        query = CEILING.format(path="'" + events + "'", at=at)
        rows = con.execute(query).fetchall()
        seconds = time.perf_counter() - start
        with open(output, "wb") as out:
            for owner, ident, score, tags in rows:
                row = {"owner": owner, "ident": ident, "score": round(score, 2)}
                row["tags"] = {k: round(v, 2) for k, v in (tags or {}).items()}
                out.write(orjson.dumps(row) + b"\n")
        count, firings = len(rows), 0  # the ceiling has no triggers
    else:
        from leadscore import Engine, StreamScorer, read_events

        scorer = StreamScorer(Engine(model), at)
        scorer.add_all(read_events([events], on_bad=print))
        result = scorer.finish()
        seconds = time.perf_counter() - start
        count, firings = _write_result(result, output)
    print(json.dumps({"seconds": seconds, "peak_mb": _peak_mb(), "owners": count,
                      "firings": firings}))  # fmt: skip


def _spark_session() -> Any:
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # 8, not Spark's 200: two cores, and each partition costs a Python task.
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def _children_peak_mb() -> float:
    """Peak resident memory of this process's live children (the Spark JVM), from /proc."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != os.getpid():
                continue
            for line in (stat.parent / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024 / 1e6
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
    return total


def spark_main() -> int:
    """The Spark engine against the batch engine and the pure engine on the 1M-event log."""
    path, n = log(50_000, 1_000_000)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; log: {n:,} events")  # fmt: skip
    failures = []
    print(f"{'model':<24} {'run':<14} {'seconds':>8} {'events/s':>11} {'peak MB':>8} "
          f"{'vs spark':>9}")  # fmt: skip
    for kind, title in (("a", "(a) rules, decay, tags"), ("b", "(b) B2B SaaS example")):
        figures = {
            what: measure(what, kind, path, OUT / f"{kind}-{what}-spark-run.jsonl")
            for what in ("spark", "duckdb", "pure")
        }
        outputs = {what: (OUT / f"{kind}-{what}-spark-run.jsonl").read_bytes() for what in figures}
        if not outputs["spark"] == outputs["pure"] == outputs["duckdb"]:
            failures.append(f"{title}: the engines' outputs differ")
        for what, f in figures.items():
            ratio = f["seconds"] / figures["spark"]["seconds"]
            print(f"{title:<24} {what:<14} {f['seconds']:>8.2f} {n / f['seconds']:>11,.0f} "
                  f"{f['peak_mb']:>8.0f} {ratio:>8.2f}x")  # fmt: skip
    for failure in failures:
        print("FAIL", failure)
    if not failures:
        print("PASS the Spark engine's scorecards and firings are the pure engine's")
    return 1 if failures else 0


def _write_result(result: Any, output: str) -> tuple[int, int]:
    """Scorecards, anonymous profiles and firings as JSON Lines, for the comparisons."""
    cards = result.scorecards + result.anonymous
    with open(output, "wb") as out:
        for item in [*cards, *result.firings]:
            out.write(orjson.dumps(item.to_json()) + b"\n")
    return len(cards), len(result.firings)


def measure(what: str, kind: str, events: Path, output: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--run", what, "--model", kind, "--log", str(events),
         "--output", str(output)],
        capture_output=True, text=True, check=False, cwd=ROOT,
    )  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{what} ({kind}) failed:\n{done.stderr}")
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def log(contacts: int, events: int) -> tuple[Path, int]:
    """The generated log (made once) and its number of events."""
    # "typed": the generator's typed Parquet (properties a struct, timestamps
    # timestamps); logs of the earlier JSON-text layout are not reused.
    path = OUT / f"events-c{contacts}-e{events}-s{SEED}-typed.parquet"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "leadscore", "generate", str(path), "--contacts",
             str(contacts), "--events", str(events), "--seed", str(SEED)],
            check=True, cwd=ROOT,
        )  # fmt: skip
    import pyarrow.parquet as pq

    return path, pq.ParquetFile(path).metadata.num_rows


def same_scores(batch: Path, ceiling: Path) -> int:
    """Owners whose score or tag scores differ between the batch engine and the ceiling."""
    mine = {}
    for line in batch.read_bytes().splitlines():
        row = orjson.loads(line)
        if "score" in row:
            key = (row["contact_id"] is not None, row["contact_id"] or row["anonymous_id"])
            mine[key] = (row["score"], row["tag_scores"])
    differ = 0
    count = 0
    for line in ceiling.read_bytes().splitlines():
        row = orjson.loads(line)
        count += 1
        score, tags = mine.get((row["ident"], row["owner"]), (None, {}))
        differ += int(
            score is None
            or abs(score - row["score"]) > 0.01 + 1e-9
            or set(tags) != set(row["tags"])
            or any(abs(tags[t] - row["tags"][t]) > 0.01 + 1e-9 for t in tags)
        )
    return differ + abs(len(mine) - count)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000,000 events, 50,000 contacts")
    parser.add_argument("--spark", action="store_true", help="the Spark engine, on 1M events")
    parser.add_argument(
        "--run", choices=["duckdb", "ceiling", "pure", "spark"], help=argparse.SUPPRESS
    )
    parser.add_argument("--model", choices=["a", "b"], help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run:
        run_one(args.run, args.model, args.log, args.output)
        return 0
    if args.spark:
        return spark_main()
    contacts, events = (50_000, 1_000_000) if args.quick else (500_000, 10_000_000)
    big, big_n = log(contacts, events)
    small, small_n = log(contacts // 10, events // 10)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}; logs: {small_n:,} and {big_n:,} events")  # fmt: skip
    failures = []
    rows = []
    for kind, title in (("a", "(a) rules, decay, tags"), ("b", "(b) B2B SaaS example")):
        figures = {}
        for name, path in (("small", small), ("big", big)):
            figures[f"duckdb-{name}"] = measure(
                "duckdb", kind, path, OUT / f"{kind}-duckdb-{name}.jsonl"
            )
            figures[f"ceiling-{name}"] = measure(
                "ceiling", kind, path, OUT / f"{kind}-ceiling-{name}.jsonl"
            )
            differ = same_scores(
                OUT / f"{kind}-duckdb-{name}.jsonl", OUT / f"{kind}-ceiling-{name}.jsonl"
            )
            if differ:
                failures.append(
                    f"{title}: {differ} owners' scores differ from the ceiling ({name} log)"
                )
        figures["pure-small"] = measure("pure", kind, small, OUT / f"{kind}-pure-small.jsonl")
        if (OUT / f"{kind}-pure-small.jsonl").read_bytes() != (
            OUT / f"{kind}-duckdb-small.jsonl"
        ).read_bytes():
            failures.append(f"{title}: the batch engine's output differs from the pure engine's")
        d, ceil, pure = figures["duckdb-big"], figures["ceiling-big"], figures["pure-small"]
        rate = big_n / d["seconds"]
        pure_big = pure["seconds"] * big_n / small_n  # extrapolated: linear in events
        ratio = d["seconds"] / ceil["seconds"]
        growth = d["seconds"] / figures["duckdb-small"]["seconds"]
        rows.append((title, figures, rate, ratio, pure_big, growth))
        peak = max(d["peak_mb"], figures["duckdb-small"]["peak_mb"])
        if kind == "a" and ratio > TARGET_A_RATIO:
            failures.append(
                f"{title}: {ratio:.2f}x the ceiling's time (target <= {TARGET_A_RATIO})"
            )
        target = TARGET_A_RATE if kind == "a" else TARGET_B_RATE
        if rate < target:
            failures.append(f"{title}: {rate:,.0f} events/s (target >= {target:,})")
        if peak > TARGET_PEAK_MB:
            failures.append(f"{title}: peak {peak:,.0f} MB (target < {TARGET_PEAK_MB:,.0f})")
    print()
    print(
        f"{'model':<24} {'run':<22} {'events':>11} {'seconds':>8} {'events/s':>11} {'peak MB':>8}"
    )
    for title, figures, _rate, ratio, pure_big, growth in rows:
        for key, label, n in (
            ("duckdb-small", "batch engine", small_n), ("duckdb-big", "batch engine", big_n),
            ("ceiling-small", "hand-written query", small_n),
            ("ceiling-big", "hand-written query", big_n),
            ("pure-small", "pure engine", small_n),
        ):  # fmt: skip
            f = figures[key]
            print(f"{title:<24} {label:<22} {n:>11,} {f['seconds']:>8.2f} "
                  f"{n / f['seconds']:>11,.0f} {f['peak_mb']:>8.0f}")  # fmt: skip
        print(f"{title:<24} {'pure engine (extrap.)':<22} {big_n:>11,} {pure_big:>8.1f} "
              f"{big_n / pure_big:>11,.0f} {'':>8}")  # fmt: skip
        print(f"{title:<24} batch/ceiling time {ratio:.2f}x; pure/batch time "
              f"{pure_big / figures['duckdb-big']['seconds']:.1f}x; 1M->10M time x{growth:.1f}; "
              f"firings {figures['duckdb-big']['firings']:,}")  # fmt: skip
    print()
    for failure in failures:
        print("FAIL", failure)
    if not failures:
        print("PASS every target")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
