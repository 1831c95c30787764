"""The predictive commands: train, predict, suggest, backtest.

Registered in `leadscore._cli` with one `cli.add_command` line each. The
learning libraries load inside the commands, so the rest of the command line
starts as fast as before.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
import orjson
from click.core import ParameterSource

from .._cli_common import err, events_or_fail, fail, model_or_fail
from .._errors import InputError, LeadscoreError
from . import POSITIVE_SHOWN

if TYPE_CHECKING:
    from .._events import Event
    from .._model import Model
    from ._table import Table
    from ._train import TrainedModel


@contextmanager
def _bad_input() -> Iterator[None]:
    """Our own errors become exit 1 with their message (which names the column or path)."""
    try:
        yield
    except LeadscoreError as exc:
        fail(str(exc))


def _read_events(paths: Sequence[str], input_format: str | None, strict: bool) -> list[Event]:
    return list(events_or_fail(paths, input_format, strict))


def _rules(path: str | None) -> Model | None:
    if path is None:
        return None
    return model_or_fail(path)


def _warn_of_target(path: str, data: Table, target: str, positive: str | None) -> None:
    """A warning when the default positive class leaves several values
    counted as negative (won / lost / open: open silently became a loss)."""
    from ._table import default_positive_note

    note = default_positive_note(data, target, positive)
    if note is not None:
        err.print(f"[yellow]warning[/yellow] {path}: {note}", highlight=False, soft_wrap=True)


def _table(path: str, *, text: Sequence[str] = ()) -> Table:
    from ._table import read_table

    with _bad_input():
        return read_table(path, text=text)


def _fingerprint(paths: Sequence[str]) -> str:
    from ._table import file_fingerprint

    return file_fingerprint([p for p in paths if p != "-"])


def _instant(text: str | None, option: str) -> int | None:
    if text is None:
        return None
    from .._time import parse_instant

    try:
        return parse_instant(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


def _print_json(data: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


_EVENTS_HELP = "Event files (any format `score` reads); repeat the option for several."
_FORMAT_INPUT_HELP = "Format of the event inputs when their names don't say."


def _source_options(f: _F) -> _F:
    """--table FILE or --events FILE... (with how to read events): what to learn from or score."""
    from .._eventfiles import FORMATS

    return _apply(
        click.option(
            "--table",
            type=click.Path(dir_okay=False),
            help="A CSV or Parquet table, one row per lead.",
        ),
        click.option("--events", "event_paths", multiple=True, help=_EVENTS_HELP),
        click.option("--input-format", type=click.Choice(FORMATS), help=_FORMAT_INPUT_HELP),
        click.option("--strict", is_flag=True, help="Stop at the first bad event record (exit 1)."),
    )(f)


_F = TypeVar("_F", bound=Callable[..., Any])


def _apply(*decorators: Callable[[_F], _F]) -> Callable[[_F], _F]:
    """Several click options as one decorator, in the order given."""

    def wrap(f: _F) -> _F:
        for decorator in reversed(decorators):
            f = decorator(f)
        return f

    return wrap


# Options several commands share, declared once.
_TARGET = click.option("--target", help="With --table: the outcome column.")
_ID = click.option("--id", "id_column", help="With --table: the column that identifies a lead.")
_POSITIVE = click.option(
    "--positive",
    help="With --table: the target value that means converted (default: "
    + "/".join(POSITIVE_SHOWN)
    + ", in any case).",
)
_EXCLUDE = click.option(
    "--exclude", multiple=True, help="A column not to learn from; repeat for several."
)
_KEEP = click.option(
    "--keep", multiple=True, help="Use this column even if the leak guard suspects it."
)
_OUTCOME = click.option(
    "--outcome", metavar="EVENT_TYPE", help="With --events: the event type that means converted."
)


def _days(*, above_zero: bool) -> Callable[[click.Context, click.Parameter, Any], Any]:
    """The check of a number of days: finite, and at least 0 (or above 0).
    click's float takes nan and inf, which reached the history's arithmetic
    as a ValueError or OverflowError traceback, and a negative count gave
    messages about the outcome instead of naming the option."""

    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value is not None and (
            not math.isfinite(value) or value < 0 or (above_zero and value == 0)
        ):
            bound = "above 0" if above_zero else "0 or more"
            raise click.BadParameter(f"expected a finite number of days, {bound}, got {value}")
        return value

    return check


_WINDOW = click.option(
    "--window",
    type=float,
    callback=_days(above_zero=False),
    default=0.0,
    show_default=True,
    help="With --events: days after a contact is first seen at which it is observed (its "
    "cut-off); a trained model uses its own.",
)
_HORIZON = click.option(
    "--horizon",
    type=float,
    callback=_days(above_zero=True),
    help="With --events: the outcome must come within DAYS of the cut-off (default: any time).",
)

_TABLE_OPTIONS = _apply(_TARGET, _ID, _POSITIVE, _EXCLUDE, _KEEP)
_EVENT_OPTIONS = _apply(_OUTCOME, _WINDOW, _HORIZON)


def _one_source(
    table: str | None,
    event_paths: Sequence[str],
    *,
    table_only: Sequence[str] = (),
    events_only: Sequence[str] = (),
) -> None:
    """Exactly one of --table and --events, and none of the other one's
    options (by parameter name): an option given for nothing is a mistake to
    say, not to ignore."""
    if table is not None and event_paths:
        raise click.UsageError("give either --table FILE or --events FILE, not both")
    if table is None and not event_paths:
        raise click.UsageError("give --table FILE or --events FILE: the leads to read")
    if given := _given(table_only if table is None else events_only):
        raise click.UsageError(
            f"{', '.join(given)}: only with {'--table' if table is None else '--events'}"
        )


def _given(names: Sequence[str]) -> list[str]:
    """The options, of these parameter names, given on the command line (or
    in the environment), not left at their defaults."""
    context = click.get_current_context()
    return [
        max(param.opts, key=len)
        for param in context.command.params
        if param.name in names
        and context.get_parameter_source(param.name) is not ParameterSource.DEFAULT
    ]


@click.command()
@_source_options
@_TABLE_OPTIONS
@click.option(
    "--split-column", help="With --table: a date column to split on in time (with --split-at)."
)
@click.option(
    "--split-at", metavar="TIME", help="Rows (contacts) before this time train, the rest test."
)
@_EVENT_OPTIONS
@click.option(
    "--model",
    "rules_path",
    type=click.Path(dir_okay=False),
    help="With --events: a rule model whose rules' awards, score and fit become features.",
)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(file_okay=False),
    help="The directory to save the trained model in.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="The report: table for people, json for programs.",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    help="Fixed boosting rounds instead of early stopping (faster, for large data).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of the folds and the subsampling."
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="LightGBM's threads (default: every CPU available to the process).",
)
def train(
    *,
    table: str | None,
    event_paths: tuple[str, ...],
    input_format: str | None,
    strict: bool,
    target: str | None,
    id_column: str | None,
    positive: str | None,
    exclude: tuple[str, ...],
    keep: tuple[str, ...],
    split_column: str | None,
    split_at: str | None,
    outcome: str | None,
    window: float,
    horizon: float | None,
    rules_path: str | None,
    output: str,
    output_format: str,
    rounds: int | None,
    seed: int,
    threads: int | None,
) -> None:
    """Learn conversion probability from a table or an event log, report it, save the model."""
    from ._api import train_events, train_table
    from ._history import DAY, Setup
    from ._learners import available_cpus
    from ._report import print_train_report
    from ._train import Options

    _one_source(
        table,
        event_paths,
        table_only=("target", "id_column", "positive", "split_column"),
        events_only=("outcome", "window", "horizon", "rules_path"),
    )
    options = Options(rounds=rounds, seed=seed, threads=threads or available_cpus())
    at = _instant(split_at, "--split-at")
    with _bad_input():
        if table is not None:
            if target is None:
                raise click.UsageError("--table needs --target COLUMN")
            if (split_column is None) != (at is None):
                raise click.UsageError("--split-column and --split-at go together")
            data = _table(table)
            _warn_of_target(table, data, target, positive)
            model = train_table(
                data,
                target=target,
                id_column=id_column,
                positive=positive,
                exclude=exclude,
                keep=keep,
                split_column=split_column,
                split_at=None if at is None else at / DAY,
                options=options,
            )
            for why, count in model.meta["source"].get("left_out", {}).items():
                err.print(
                    f"[yellow]warning[/yellow] {table}: {count:,} row{'s' if count != 1 else ''} "
                    f"with {why}, left out of training and testing",
                    highlight=False,
                    soft_wrap=True,
                )
        else:
            if outcome is None:
                raise click.UsageError("--events needs --outcome EVENT_TYPE")
            rules = _rules(rules_path)
            model = train_events(
                _read_events(event_paths, input_format, strict),
                setup=Setup(outcome, window, horizon),
                split_at=at,
                rules=rules,
                exclude=exclude,
                keep=keep,
                fingerprint=_fingerprint(event_paths),
                options=options,
            )
        model.save(output)
    if output_format == "json":
        _print_json(model.report)
    else:
        print_train_report(model.report, output)


def _load(model_dir: str) -> TrainedModel:
    from ._train import TrainedModel

    with _bad_input():
        return TrainedModel.load(model_dir)


def scored_rows(
    model: TrainedModel,
    *,
    table: str | None,
    event_paths: Sequence[str],
    input_format: str | None,
    strict: bool,
    at: int | None,
) -> tuple[list[str], Table]:
    """Ids and feature rows of what `predict` scores with a trained model."""
    from ._api import event_features

    if table is not None:
        id_column = model.meta.get("source", {}).get("id")
        # Ids as written, to join the predictions back on (not 42.0 for 0042).
        data = _table(table, text=[id_column] if id_column else [])
        _has_features(model, data, table)
        if id_column and id_column in data.columns:
            ids = ["" if v is None else str(v) for v in data.columns[id_column]]
        else:
            if id_column:  # row numbers look like ids: say they are not
                err.print(
                    f"[yellow]warning[/yellow] {table}: no column {id_column!r} (the model's "
                    "id); leads are numbered by row",
                    highlight=False,
                    soft_wrap=True,
                )
            ids = [str(i) for i in range(1, data.rows + 1)]
        return ids, data
    with _bad_input():
        return event_features(model, _read_events(event_paths, input_format, strict), at=at)


@click.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@_source_options
@click.option(
    "--at",
    "at_text",
    metavar="TIME",
    help="With --events: the log ends here (default: its last event).",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["csv", "jsonl"]),
    default="csv",
    show_default=True,
    help="csv: one row per lead with its factors as text; jsonl: one object per lead.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write here, not stdout.")
@click.option(
    "--top",
    type=click.IntRange(min=0, max=20),
    default=3,
    show_default=True,
    help="How many factors raising and lowering each probability; 0 for probabilities only.",
)
def predict(
    *,
    model_dir: str,
    table: str | None,
    event_paths: tuple[str, ...],
    input_format: str | None,
    strict: bool,
    at_text: str | None,
    output_format: str,
    output: str | None,
    top: int,
) -> None:
    """Conversion probability of every lead, with the factors raising and lowering it."""
    from ._report import write_predictions

    _one_source(table, event_paths, events_only=("at_text",))
    model = _load(model_dir)
    ids, data = scored_rows(
        model,
        table=table,
        event_paths=event_paths,
        input_format=input_format,
        strict=strict,
        at=_instant(at_text, "--at"),
    )
    with _bad_input():
        rows = model.factors(data, top)
    if output is None:
        write_predictions(ids, rows, output_format, sys.stdout.buffer, explained=top > 0)
        sys.stdout.flush()
    else:
        with open(output, "wb") as out:
            write_predictions(ids, rows, output_format, out, explained=top > 0)


def _has_features(model: TrainedModel, data: Table, path: str) -> None:
    """A table to score has the model's feature columns: exit 1 when it has
    none (another file than meant), a warning naming those it lacks (each
    counts as a missing value for every lead)."""
    names = model.encoder.names
    missing = [name for name in names if name not in data.columns]
    if len(missing) == len(names):
        shown = ", ".join(map(repr, names[:5])) + (", ..." if len(names) > 5 else "")
        fail(f"{path}: none of the model's features is a column of it (they are {shown})")
    if missing:
        err.print(
            f"[yellow]warning[/yellow] {path}: no column {', '.join(map(repr, missing))}; "
            "counted as a missing value for every lead",
            highlight=False,
            soft_wrap=True,
        )


def _has_outcomes(report: dict[str, Any], since: int | None) -> None:
    """An event backtest with no contact, or no conversion, to measure is an
    error: it printed a report of 0 conversions and exit 0, which is what a
    misspelt --outcome (won for deal_won) looks like, and says nothing of
    the model (no ROC AUC, every rate 0)."""
    outcome = report["outcome"]
    period = "" if since is None else f" with a cut-off from {report['from']}"
    if report["leads"] == 0:
        raise InputError(f"no contact{period} can be labelled with outcome {outcome!r}")
    if report["conversions"] == 0:
        raise InputError(
            f"none of the {report['leads']:,} labelled contact"
            f"{'s' if report['leads'] != 1 else ''}{period} had a {outcome!r} event after "
            "its cut-off: nothing to measure (is --outcome the event type of a conversion?)"
        )


def _labelled_table(path: str, target: str, positive: str | None) -> tuple[Table, Any]:
    from ._table import target_labels

    data = _table(path)
    with _bad_input():
        labels, known = target_labels(data, target, positive)
    _warn_of_target(path, data, target, positive)
    import numpy as np

    rows = np.flatnonzero(known)
    return data.take(rows), labels[rows]


@click.command()
@_source_options
@_TABLE_OPTIONS
@_EVENT_OPTIONS
@click.option(
    "--until",
    "until_text",
    metavar="TIME",
    help="With --events: learn only from contacts whose cut-off is before TIME (backtest from it).",
)
@click.option(
    "--rules",
    "rule_count",
    type=click.IntRange(min=1, max=30),
    default=6,
    show_default=True,
    help="How many rules and fit rules to keep.",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write the model YAML here, not stdout."
)
def suggest(
    *,
    table: str | None,
    event_paths: tuple[str, ...],
    input_format: str | None,
    strict: bool,
    target: str | None,
    id_column: str | None,
    positive: str | None,
    exclude: tuple[str, ...],
    keep: tuple[str, ...],
    outcome: str | None,
    window: float,
    horizon: float | None,
    until_text: str | None,
    rule_count: int,
    output: str | None,
) -> None:
    """Write a rule model (YAML) learned from history: a sparse logistic scorecard."""
    import numpy as np

    from .._loader import parse_model
    from ._api import event_table
    from ._history import DAY, Setup
    from ._suggest import suggest as make
    from ._train import select_features

    _one_source(
        table,
        event_paths,
        table_only=("target", "id_column", "positive"),
        events_only=("outcome", "window", "horizon", "until_text"),
    )
    until = _instant(until_text, "--until")
    with _bad_input():
        if table is not None:
            if target is None:
                raise click.UsageError("--table needs --target COLUMN")
            data, y = _labelled_table(table, target, positive)
            candidates = [n for n in data.columns if n not in (target, id_column)]
            source = Path(table).name
            events = False
        else:
            if outcome is None:
                raise click.UsageError("--events needs --outcome EVENT_TYPE")
            _, data, y, times = event_table(
                _read_events(event_paths, input_format, strict), Setup(outcome, window, horizon)
            )
            if until is not None:
                rows = np.flatnonzero(times < until / DAY)
                data, y = data.take(rows), y[rows]
                if y.size == 0 or y.min() == y.max():
                    raise InputError(
                        f"--until {until_text}: {y.size:,} labelled contact"
                        f"{'s' if y.size != 1 else ''} with a cut-off before it, not of both "
                        "outcomes: nothing to learn from"
                    )
            candidates = list(data.columns)
            source = ", ".join(Path(p).name for p in event_paths)
            events = True
        selection = select_features(data, y, candidates=candidates, exclude=exclude, keep=keep)
        suggestion = make(data, selection.names, y, events=events, rules=rule_count, source=source)
        text = suggestion.yaml()
        parse_model(text, source=output or "<suggested>")  # what we write must validate
    if output is None:
        click.echo(text, nl=False)
    else:
        Path(output).write_text(text)
    kept = len(suggestion.document["rules"]) + len(suggestion.document.get("fit", []))
    err.print(
        f"suggested {kept} rule{'s' if kept != 1 else ''} from {y.size:,} leads", highlight=False
    )


@click.command()
@click.argument("model", type=click.Path())
@_source_options
@_TARGET
@_POSITIVE
@_EVENT_OPTIONS
@click.option(
    "--from",
    "from_text",
    metavar="TIME",
    help="With --events: only contacts whose cut-off is at or after TIME.",
)
@click.option(
    "--chart",
    type=click.Path(dir_okay=False),
    help="Write a PNG chart here: the Pareto curve and conversion by decile.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="table for people, json for programs.",
)
def backtest(
    *,
    model: str,
    table: str | None,
    event_paths: tuple[str, ...],
    input_format: str | None,
    strict: bool,
    target: str | None,
    positive: str | None,
    outcome: str | None,
    window: float,
    horizon: float | None,
    from_text: str | None,
    chart: str | None,
    output_format: str,
) -> None:
    """How well MODEL (a rule model YAML, or a trained model directory) ranks history."""
    from ._backtest import (
        backtest as run,
    )
    from ._backtest import (
        backtest_table,
        backtest_trained,
        backtest_trained_table,
    )
    from ._backtest import (
        chart as draw,
    )
    from ._report import print_backtest

    _one_source(
        table,
        event_paths,
        table_only=("target", "positive"),
        events_only=("outcome", "window", "horizon", "from_text"),
    )
    trained = Path(model).is_dir()
    if trained and (given := _given(("window", "horizon"))):
        raise click.UsageError(
            f"{', '.join(given)}: a trained model observes contacts with the window and "
            "horizon it was trained with"
        )
    since = _instant(from_text, "--from")
    with _bad_input():
        if table is not None:
            if target is None:
                raise click.UsageError("--table needs --target COLUMN")
            data, y = _labelled_table(table, target, positive)
            if trained:
                trained_model = _load(model)
                _has_features(trained_model, data, table)
                report = backtest_trained_table(trained_model, data, y)
            else:
                rules = _rules(model)
                assert rules is not None
                report = backtest_table(rules, data, y)
        else:
            events = _read_events(event_paths, input_format, strict)
            if trained:
                report = backtest_trained(_load(model), events, outcome=outcome, split_at=since)
            else:
                if outcome is None:
                    raise click.UsageError("--events needs --outcome EVENT_TYPE")
                rules = _rules(model)
                assert rules is not None
                report = run(
                    rules,
                    events,
                    outcome=outcome,
                    window_days=window,
                    horizon_days=horizon,
                    split_at=since,
                )
            _has_outcomes(report, since)
        if chart is not None:
            draw(report, chart, title=f"Backtest of {Path(model).name}")
    if output_format == "json":
        _print_json(report)
    else:
        print_backtest(report, Path(model).name)
