"""Writing results: scorecards as a table, CSV or JSON Lines; explanations."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any, Protocol

import orjson
from rich.console import Console, JustifyMethod
from rich.table import Table

from ._batch.cards import FIELDS, Cards, csv_lines, jsonl_lines, write_text
from ._engine import Engine, Scorecard
from ._replay import Explanation
from ._time import format_timestamp

# The JSON Lines fields, in order (columns of batch results write the same).
CSV_COLUMNS = FIELDS


class _JsonLike(Protocol):
    def to_json(self) -> dict[str, Any]: ...


def write_jsonl(items: Iterable[_JsonLike], out: IO[bytes]) -> int:
    """One JSON object per line: scorecards exactly as spec section 3 has them,
    firings as `trigger, contact_id, event_id, timestamp`."""
    if isinstance(items, Cards):  # columns: the same text, written a batch at a time
        return write_text(items.to_arrow(), out, jsonl_lines)
    count = 0
    for item in items:
        out.write(orjson.dumps(item.to_json()) + b"\n")
        count += 1
    return count


def write_csv(cards: Iterable[Scorecard], out: IO[str]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    if isinstance(cards, Cards):  # columns: the same rows, written a batch at a time
        table = cards.to_arrow()
        for chunk in csv_lines(table):
            out.write(str(chunk, "utf-8"))
        return int(table.num_rows)
    count = 0
    for card in cards:
        row = card.to_json()
        row.setdefault("anonymous_id", None)
        row["tag_scores"] = orjson.dumps(row["tag_scores"]).decode()
        writer.writerow(["" if row[column] is None else row[column] for column in CSV_COLUMNS])
        count += 1
    return count


def _dash(value: Any) -> str:
    return "—" if value is None else str(value)


def _number(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _short_time(micros: int | None) -> str:
    return "—" if micros is None else format_timestamp(micros)[:16].replace("T", " ")


def scorecard_table(cards: Iterable[Scorecard], *, title: str | None = None) -> Table:
    """Contacts whom to call first: highest score first, then best fit."""
    table = Table(title=title, title_justify="left", header_style="bold")
    columns: list[tuple[str, JustifyMethod]] = [
        ("contact", "left"),
        ("score", "right"),
        ("band", "left"),
        ("fit", "right"),
        ("grade", "left"),
        ("stage", "left"),
        ("stage score", "right"),
        ("top tags", "left"),
        ("last event", "left"),
    ]
    for name, justify in columns:
        table.add_column(
            name,
            justify=justify,
            no_wrap=name != "top tags",
            overflow="ellipsis",
        )
    ordered = sorted(cards, key=lambda c: (-c.score, -c.fit, c.contact_id or c.anonymous_id or ""))
    for card in ordered:
        tags = sorted(card.tag_scores.items(), key=lambda item: -item[1])[:2]
        table.add_row(
            card.contact_id or f"(anonymous) {card.anonymous_id}",
            _number(card.score),
            _dash(card.band),
            str(card.fit),
            _dash(card.grade),
            _dash(card.stage),
            _number(card.stage_score),
            ", ".join(f"{tag} {score:.0f}" for tag, score in tags) or "—",
            _short_time(card.last_event_at),
        )
    return table


def explanation_json(why: Explanation, engine: Engine) -> dict[str, Any]:
    return {
        "as_of": format_timestamp(why.at),
        "scorecard": why.scorecard.to_json(),
        "awards": [
            {
                "event_id": award.event_id,
                "rule_id": award.rule_id,
                "timestamp": format_timestamp(award.timestamp),
                "points": award.points,
                "counted": value,
                "decays": award.decays,
                "tags": list(award.tags),
            }
            for award, value in why.awards
        ],
        "stage_entries": [
            {
                "stage": entry.stage,
                "timestamp": format_timestamp(entry.timestamp),
                "event_id": entry.event_id,
                "manual": entry.manual,
            }
            for entry in why.entries
        ],
        "firings": [firing.to_json() for firing in why.firings],
        "model": engine.model.name,
    }


def _by_rule(why: Explanation) -> Table:
    """The short answer to "why is this lead hot": what each rule adds up to now."""
    totals: dict[str, tuple[int, float]] = {}
    for award, value in why.awards:
        count, total = totals.get(award.rule_id, (0, 0.0))
        totals[award.rule_id] = (count + 1, total + value)
    # No time in the title: the line above the tables gives it (`--at`, or now).
    table = Table(title="Why: points by rule", title_justify="left", header_style="bold")
    table.add_column("rule")
    table.add_column("awards", justify="right")
    table.add_column("counts now", justify="right")
    for rule, (count, total) in sorted(totals.items(), key=lambda item: -abs(item[1][1])):
        table.add_row(rule, str(count), f"{total:.2f}")
    return table


def console_for(file: IO[str] | None = None) -> Console:
    """A console that is wide enough for the tables when output is not a terminal."""
    console = Console(file=file)
    if not console.is_terminal:
        console = Console(file=file, width=140)
    return console


def print_explanation(why: Explanation, console: Console) -> None:
    """A contact's scores and every line behind them, for a person at a terminal."""
    card = why.scorecard
    console.print(
        f"[bold]{card.contact_id}[/bold] as of {format_timestamp(why.at)}: "
        f"score [bold]{card.score:.2f}[/bold] ({_dash(card.band)}), "
        f"fit {card.fit} (grade {_dash(card.grade)}), stage {_dash(card.stage)}"
        + (f" since {format_timestamp(card.stage_entered_at)}" if card.stage_entered_at else "")
        + (f", stage score {card.stage_score:.2f}" if card.stage_score is not None else "")
    )
    awards = Table(title="Points", title_justify="left", header_style="bold")
    award_columns: list[tuple[str, JustifyMethod]] = [
        ("when", "left"),
        ("event", "left"),
        ("rule", "left"),
        ("points", "right"),
        ("counts now", "right"),
        ("tags", "left"),
    ]
    for name, justify in award_columns:
        awards.add_column(name, justify=justify)
    for award, value in why.awards:
        awards.add_row(
            format_timestamp(award.timestamp),
            award.event_id,
            award.rule_id,
            f"{award.points:+d}",
            f"{value:.2f}" + ("" if award.decays else " (no decay)"),
            ", ".join(award.tags) or "",
        )
    total = sum(value for _, value in why.awards)
    console.print(_by_rule(why))
    awards.add_section()
    awards.add_row("", "", "total", "", f"{total:.2f}", "")
    if f"{total:.2f}" != f"{card.score:.2f}":
        # The model's clamp bounds the sum (spec 2.3): say so, or the lines
        # would not add up to the score printed above.
        awards.add_row("", "", "after the clamp", "", f"{card.score:.2f}", "")
    console.print(awards)
    if card.tag_scores:
        console.print(
            "Tag scores: "
            + ", ".join(f"{tag} {score:.2f}" for tag, score in card.tag_scores.items())
        )
    if why.entries:
        console.print("Stages:")
        for entry in why.entries:
            how = "set by hand" if entry.manual else "entered"
            when = format_timestamp(entry.timestamp)
            console.print(f"  {when}  {how} {entry.stage} (event {entry.event_id})")
    if why.firings:
        console.print("Triggers fired:")
        for firing in why.firings:
            when = format_timestamp(firing.timestamp)
            console.print(f"  {when}  {firing.trigger} (event {firing.event_id})")
