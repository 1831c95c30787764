"""The `leadscore` command line.

Exit codes: 0 when all went well, 1 for bad input (an invalid model, an
unreadable file or one that cannot be written, a bad record under --strict),
2 for a command used wrongly.
Results go to standard output (or --output); messages, warnings and progress
to standard error, so output can be piped.
"""

from __future__ import annotations

import csv
import io
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click
import orjson
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from ._cli_common import (
    BadRecords,
    counted,
    current_database,
    err,
    events_or_fail,
    fail,
    model_or_fail,
    prepare_storage,
    reaching,
    redacted,
    service_settings,
    storage_options,
    store_connection,
)
from ._collector import rare_collections
from ._engine import Engine, Scorecard
from ._errors import InputError, LeadscoreError
from ._eventfiles import FORMATS
from ._events import Event
from ._generate import generate_events, write_events
from ._model import Model, json_schema
from ._output import (
    console_for,
    explanation_json,
    print_explanation,
    scorecard_table,
    write_csv,
    write_jsonl,
)
from ._replay import Result, explain
from ._runner import StreamScorer
from ._time import format_timestamp, from_datetime, parse_instant

_PROGRESS_EVERY = 10_000
_WARNINGS_SHOWN = 20

if TYPE_CHECKING:
    from ._service.demo import DemoReceiver


def _as_of(text: str | None) -> int:
    """--at: an RFC 3339 time, or a date (meaning 00:00 UTC of that day); default now."""
    if text is None:
        return from_datetime(datetime.now(UTC))
    try:
        return parse_instant(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None


def _with_progress(events: Iterator[Event], stack: ExitStack) -> Iterator[Event]:
    """A live count on a terminal; nothing when standard error is not one."""
    if not err.is_terminal:
        yield from events
        return
    progress = stack.enter_context(
        Progress(
            SpinnerColumn(),
            TextColumn("reading events: {task.completed:,}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
    )
    task = progress.add_task("events", total=None)
    for count, event in enumerate(events, start=1):
        yield event
        if count % _PROGRESS_EVERY == 0:
            progress.update(task, completed=count)


def _score(
    model: Model,
    paths: Sequence[str],
    at: int,
    input_format: str | None,
    strict: bool,
    *,
    quiet: bool = False,
    engine_name: str = "pure",
) -> tuple[Engine, Result]:
    engine = Engine(model)
    # An application, unlike the library, may set the process's collector (_collector.py).
    with rare_collections(freeze=True):
        if engine_name in ("duckdb", "spark"):
            result = _score_on_batch(
                engine_name, model, paths=paths, at=at, input_format=input_format, strict=strict
            )
        else:
            scorer = StreamScorer(engine, at)
            with ExitStack() as stack:
                scorer.add_all(_with_progress(events_or_fail(paths, input_format, strict), stack))
                result = scorer.finish()
    if not quiet:
        _report_warnings(result, shown=_WARNINGS_SHOWN)
    return engine, result


def _score_on_batch(
    engine_name: str,
    model: Model,
    *,
    paths: Sequence[str],
    at: int,
    input_format: str | None,
    strict: bool,
) -> Result:
    """Score on DuckDB or Spark; bad records are reported as they come, then summed up."""
    on_bad = BadRecords(strict)
    try:
        if engine_name == "spark":
            from ._batch.spark import score_spark

            result = score_spark(
                model, list(paths), at=at, format=input_format, strict=strict, on_bad=on_bad
            )
        else:
            from ._batch.cli import score_with_duckdb

            result = score_with_duckdb(
                model, paths, at, input_format=input_format, strict=strict, on_bad=on_bad,
                console=err,
            )  # fmt: skip
    except (InputError, ValueError) as exc:
        fail(str(exc))
    on_bad.summary()
    return result


def _report_warnings(result: Result, *, shown: int) -> None:
    for warning in result.warnings[:shown]:
        err.print(f"[yellow]warning[/yellow] {warning}", highlight=False)
    if len(result.warnings) > shown:
        count = len(result.warnings)
        err.print(
            f"[yellow]{count:,} warning{'s' if count != 1 else ''} in all[/yellow]"
            + (f" (the first {shown} are above)" if shown else ""),
            highlight=False,
        )


_AT_HELP = (
    "Score as of this time: RFC 3339 (2026-05-04T10:00:00Z) or a date (00:00 UTC). "
    "Events after it are ignored. Default: now."
)
_INPUT_HELP = "Format of the event inputs when their names don't say (needed for some stdin)."


class _Commands(click.Group):
    """The command group, which makes a file that cannot be opened or made
    (an --output in a missing directory, say) bad input: exit 1 naming it,
    not a traceback. Only errors that name a file: a broken pipe is click's."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OSError as exc:
            if exc.filename is None:
                raise
            fail(f"{exc.filename}: {exc.strerror}")


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="leadscore")
def cli() -> None:
    """Transparent, exact lead scoring from a YAML model and an event log."""


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
def validate(model: str) -> None:
    """Check a scoring model and report every problem, with its path and line."""
    # As the service checks an upload: a webhook URL that can never be called too.
    checked = model_or_fail(model, upload=True)
    click.echo(
        f"{model}: valid — {counted(len(checked.rules), 'rule')}, "
        f"{counted(len(checked.fit), 'fit rule')}, {counted(len(checked.stages), 'stage')}, "
        f"{counted(len(checked.triggers), 'trigger')}"
    )


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("events", nargs=-1, required=True)
@click.option("--at", "at_text", metavar="TIME", help=_AT_HELP)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "jsonl", "parquet"]),
    default="table",
    show_default=True,
    help="table: whom to call first, highest score first. csv, jsonl and parquet: every "
    "scorecard ordered by contact id (jsonl: exactly the spec's scorecard; parquet needs -o).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write here, not stdout: a file, or a table as DATABASE#TABLE.",
)
@click.option(
    "--firings",
    type=click.Path(dir_okay=False),
    help="Write trigger firings: JSON Lines, Parquet or CSV when FILE ends in .parquet or "
    ".csv, or a table as DATABASE#TABLE.",
)
@click.option("--include-anonymous", is_flag=True, help="Also list never-identified profiles.")
@click.option("--strict", is_flag=True, help="Stop at the first bad event record (exit 1).")
@click.option("--input-format", type=click.Choice(FORMATS), help=_INPUT_HELP)
@click.option(
    "--engine",
    "engine_name",
    type=click.Choice(["pure", "duckdb", "spark"]),
    default="pure",
    show_default=True,
    help="pure: the streaming engine, event by event. duckdb: the batch engine, set-based SQL "
    "(files, globs, or a table as DATABASE#TABLE). spark: Apache Spark (leadscore[spark]; "
    "Parquet or JSON Lines paths Spark reads, such as s3a://...).",
)
def score(
    *,
    model: str,
    events: tuple[str, ...],
    at_text: str | None,
    output_format: str,
    output: str | None,
    firings: str | None,
    include_anonymous: bool,
    strict: bool,
    input_format: str | None,
    engine_name: str,
) -> None:
    """Score every contact in EVENTS (files, or - for standard input) with MODEL."""
    checked = model_or_fail(model)
    at = _as_of(at_text)
    if output_format == "parquet" and output is None:
        raise click.UsageError("--format parquet needs --output FILE")
    from ._batch.cards import joined
    from ._batch.cli import is_table, write_table

    _, result = _score(checked, events, at, input_format, strict, engine_name=engine_name)
    cards = joined(result.scorecards, result.anonymous) if include_anonymous else result.scorecards
    if output is not None and is_table(output):
        write_table(cards, output, scorecards=True)
    elif output_format == "table":
        table = scorecard_table(cards, title=f"{checked.name} as of {format_timestamp(at)}")
        with ExitStack() as stack:
            file = stack.enter_context(open(output, "w")) if output else None
            console_for(file).print(table)
    else:
        _write(output, lambda out: _emit(output_format, cards, out))
    if firings and is_table(firings):
        write_table(result.firings, firings, scorecards=False)
    elif firings:
        with open(firings, "wb") as out:
            _firings_writer(firings)(result.firings, out)
    err.print(
        counted(len(result.scorecards), "contact")
        + (f", {counted(len(result.anonymous), 'anonymous profile')}" if result.anonymous else "")
        + f", {counted(len(result.firings), 'firing')}",
        highlight=False,
    )


def _firings_writer(path: str) -> Callable[[list[Any], IO[bytes]], int]:
    """Firings are JSON Lines, or Parquet and CSV when the file's name says so."""
    if path.lower().endswith(".parquet"):
        from ._batch.cli import write_parquet

        return write_parquet
    if path.lower().endswith(".csv"):
        return _write_firings_csv
    return write_jsonl


def _write_firings_csv(firings: list[Any], out: IO[bytes]) -> int:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["trigger", "contact_id", "event_id", "timestamp"])
    for firing in firings:
        writer.writerow(firing.to_json().values())
    text.flush()
    text.detach()
    return len(firings)


def _emit(output_format: str, cards: Sequence[Scorecard], out: IO[bytes]) -> None:
    if output_format == "jsonl":
        write_jsonl(cards, out)
        return
    if output_format == "parquet":
        from ._batch.cli import write_parquet

        write_parquet(cards, out)
        return
    # csv writes text; the wrapper must not close the stream it borrows.
    text = io.TextIOWrapper(out, encoding="utf-8", newline="")
    write_csv(cards, text)
    text.flush()
    text.detach()


def _write(path: str | None, write: Callable[[IO[bytes]], None]) -> None:
    if path is None:
        write(sys.stdout.buffer)
        sys.stdout.flush()
        return
    with open(path, "wb") as out:
        write(out)


@cli.command(name="explain")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("events", nargs=-1, required=True)
@click.option("--contact", "contact_id", required=True, help="The contact id to explain.")
@click.option("--at", "at_text", metavar="TIME", help=_AT_HELP)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people, json for programs.",
)
@click.option("--strict", is_flag=True, help="Stop at the first bad event record (exit 1).")
@click.option("--input-format", type=click.Choice(FORMATS), help=_INPUT_HELP)
def explain_command(
    *,
    model: str,
    events: tuple[str, ...],
    contact_id: str,
    at_text: str | None,
    output_format: str,
    strict: bool,
    input_format: str | None,
) -> None:
    """Why a contact has its scores: every award, stage entry and firing."""
    engine = Engine(model_or_fail(model))
    at = _as_of(at_text)
    try:
        why = explain(engine, events_or_fail(events, input_format, strict), contact_id, at)
    except KeyError:
        fail(f"no events for contact {contact_id!r} up to {format_timestamp(at)}")
    if output_format == "json":
        sys.stdout.buffer.write(
            orjson.dumps(explanation_json(why, engine), option=orjson.OPT_INDENT_2) + b"\n"
        )
    else:
        print_explanation(why, console_for())


@cli.command()
def schema() -> None:
    """Print the JSON Schema of model files (for editors' validation and completion)."""
    sys.stdout.buffer.write(orjson.dumps(json_schema(), option=orjson.OPT_INDENT_2) + b"\n")


@cli.command()
@click.argument("output", type=click.Path(dir_okay=False))
@click.option("--contacts", default=5_000, show_default=True, help="How many people.")
@click.option(
    "--events", "count", default=100_000, show_default=True, help="About how many events."
)
@click.option("--seed", default=0, show_default=True, help="Same seed, same log.")
@click.option("--days", default=180, show_default=True, help="Length of the period, in days.")
@click.option("--start", default="2026-01-05", show_default=True, help="First day (a date).")
def generate(*, output: str, contacts: int, count: int, seed: int, days: int, start: str) -> None:
    """Write a realistic example event log (OUTPUT.jsonl or OUTPUT.parquet)."""
    begin = _start_day(start)
    generated = _generated(contacts=contacts, events=count, seed=seed, start=begin, days=days)
    try:
        written = write_events(generated, output, typed=True)
    except ValueError as exc:  # an OUTPUT whose name says no format
        # The command line has no `format=`, which the library's message offers.
        raise click.UsageError(str(exc).removesuffix(", or pass format=")) from None
    err.print(f"wrote {written:,} events for {contacts:,} contacts to {output}", highlight=False)


def _generated(**arguments: Any) -> Iterator[dict[str, Any]]:
    """`generate_events`, which checks its arguments before generating
    anything: a bad one (too few events per contact, say) is a usage error."""
    try:
        return generate_events(**arguments)
    except ValueError as exc:
        raise click.UsageError(f"{exc} (--contacts, --events, --days, --start)") from None


def _start_day(text: str) -> datetime:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"expected a date such as 2026-01-05, got {text!r}", param_hint="--start"
        ) from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# A TCP port, as the `port` setting allows: the option's value is not
# checked again (the settings are copied, not validated, with it), and the
# server took 70000 as 70000 - 65536 = 4464, listening there while its log
# said 70000.
_PORT = click.IntRange(0, 65535)


def example_path(name: str) -> Path:
    """Where an example model shipped with the package lives."""
    return Path(str(resources.files("leadscore") / "examples" / f"{name}.yaml"))


@cli.command()
@click.option(
    "--dir",
    "directory",
    default="leadscore-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where to write the demo's files (and its database).",
)
@click.option("--contacts", default=2_000, show_default=True, help="How many people.")
@click.option("--events", "count", default=60_000, show_default=True, help="About how many events.")
@click.option(
    "--port",
    type=_PORT,
    default=8000,
    show_default=True,
    help="Port the demo service listens on.",
)
@click.option(
    "--scoring-only",
    is_flag=True,
    help="Only score the log with the engine and print whom to call first (no service).",
)
@click.option("--top", default=15, show_default=True, help="With --scoring-only: contacts shown.")
def demo(
    *, directory: str, contacts: int, count: int, port: int, scoring_only: bool, top: int
) -> None:
    """Start the service with a demo workspace, model and generated history
    (or, with --scoring-only, score a generated log with the B2B SaaS model)."""
    _generated(contacts=contacts, events=count)  # its arguments checked before anything starts
    if scoring_only:
        _scoring_demo(Path(directory), contacts=contacts, count=count, top=top)
    else:
        _service_demo(Path(directory), contacts=contacts, count=count, port=port)


def _service_demo(folder: Path, *, contacts: int, count: int, port: int) -> None:
    from ._service.demo import DemoReceiver

    with DemoReceiver() as receiver:
        _serve_demo(folder, contacts=contacts, count=count, port=port, receiver=receiver)


def _serve_demo(
    folder: Path, *, contacts: int, count: int, port: int, receiver: DemoReceiver
) -> None:
    from ._service.demo import EXAMPLE_WEBHOOK, setup_demo
    from ._service.server import run
    from ._store.keys import Scope

    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    # A demo starts afresh: its database is the demo's own, made here each time.
    for leftover in data.glob("leadscore.db*"):
        leftover.unlink()
    settings = service_settings(None, str(data)).model_copy(
        update={"database_url": None, "data_dir": data, "port": port, "host": "127.0.0.1"}
    )
    console = console_for()
    with console.status("Loading a generated history into the demo workspace...") as status:
        made = setup_demo(
            settings.database(),
            contacts=contacts,
            events=count,
            webhook_url=receiver.url,
            progress=lambda done: status.update(f"Scored {done:,} events of the history..."),
        )
    base = f"http://127.0.0.1:{port}"
    read, write = made.keys[Scope.READ], made.keys[Scope.WRITE]
    someone = made.contacts[0] if made.contacts else "c000000"
    email, password = made.sign_in
    console.print(
        f"Demo workspace {made.workspace!r}: {made.events:,} events of {len(made.contacts):,} "
        f"contacts scored with the b2b-saas model (version {made.model_version}).\n"
        f"  web app:   Open {base}/ and sign in as {email} / {password}\n"
        f"  service:   {base}   (API reference: {base}/docs)\n"
        f"  read key:  {read}\n"
        f"  write key: {write}\n"
        f"  admin key: {made.keys[Scope.ADMIN]}\n"
        f"  webhooks:  the model's CRM webhook ({EXAMPLE_WEBHOOK}) goes to a receiver of the "
        f"demo's own, {receiver.url}\n"
        f"Try:\n"
        f'  curl -H "Authorization: Bearer {read}" "{base}/v1/contacts?limit=5"\n'
        f'  curl -H "Authorization: Bearer {read}" {base}/v1/contacts/{someone}/timeline\n'
        f'  curl -u {write}: {base}/v1/track -d \'{{"userId": "{someone}", '
        f'"event": "Demo Request"}}\'\n'
        "Stop it with Ctrl-C.",
        highlight=False,
        soft_wrap=True,
    )
    console.file.flush()
    run(settings)


def _scoring_demo(folder: Path, *, contacts: int, count: int, top: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model_path = example_path("b2b-saas")
    events_path = folder / "events.jsonl"
    days = 90
    begin = datetime(2026, 1, 5, tzinfo=UTC)
    write_events(
        _generated(contacts=contacts, events=count, seed=42, start=begin, days=days), events_path
    )
    at = from_datetime(begin + timedelta(days=days))
    model = model_or_fail(str(model_path))
    # The generated log has a few stage_set events naming stages of the other
    # example models: counted, not listed, in a first look at the product.
    _, result = _score(model, [str(events_path)], at, None, strict=False, quiet=True)
    with open(folder / "scores.jsonl", "wb") as out:
        write_jsonl(result.scorecards, out)
    with open(folder / "firings.jsonl", "wb") as out:
        write_jsonl(result.firings, out)
    best = sorted(result.scorecards, key=lambda c: (-c.score, c.contact_id or ""))[:top]
    console = console_for()
    console.print(
        scorecard_table(
            best,
            title=f"Top {len(best)} of {len(result.scorecards):,} contacts, "
            f"{model.name} model, as of {format_timestamp(at)}",
        )
    )
    _summary(console, result)
    stamp = format_timestamp(at)
    first = best[0].contact_id if best else "CONTACT"
    me = _invoked_as()
    console.print(
        f"\nFiles in {folder}/: events.jsonl, scores.jsonl, firings.jsonl. Next:\n"
        f"  {me} explain {model_path} {events_path} --contact {first} --at {stamp}\n"
        f"  {me} score {model_path} {events_path} --at {stamp} --format csv -o scores.csv",
        highlight=False,
        soft_wrap=True,
    )


def _invoked_as() -> str:
    """How to run leadscore again from here: `leadscore` when it is on PATH,
    else the path it was started by (`.venv/bin/leadscore` after scripts/demo),
    or `python -m leadscore` when it was started so (argv[0] is then the
    package's `__main__.py`, which is no command)."""
    started = Path(sys.argv[0]).resolve()
    if started.name == "__main__.py":
        python = shutil.which("python")
        same = python is not None and Path(python).resolve() == Path(sys.executable).resolve()
        return f"{'python' if same else shlex.quote(sys.executable)} -m leadscore"
    found = shutil.which("leadscore")
    if found and Path(found).resolve() == started:
        return "leadscore"
    try:
        return str(started.relative_to(Path.cwd()))
    except ValueError:
        return str(started)


def _summary(console: Console, result: Result) -> None:
    def counts(values: list[str | None]) -> str:
        tally: dict[str, int] = {}
        for value in values:
            tally[value or "—"] = tally.get(value or "—", 0) + 1
        return ", ".join(f"{name} {n:,}" for name, n in sorted(tally.items()))

    cards = result.scorecards
    console.print(f"Bands: {counts([c.band for c in cards])}", highlight=False)
    console.print(f"Grades: {counts([c.grade for c in cards])}", highlight=False)
    console.print(f"Stages: {counts([c.stage for c in cards])}", highlight=False)
    console.print(f"Triggers fired: {counts([f.trigger for f in result.firings])}", highlight=False)
    if result.warnings:
        console.print(
            f"{len(result.warnings):,} warnings (stage_set events naming stages this model "
            "does not have); `leadscore score` lists them.",
            highlight=False,
        )


@cli.group()
def db() -> None:
    """The service's database: schema migrations."""


@db.command(name="upgrade")
@storage_options
def db_upgrade(*, database_url: str | None, data_dir: str | None) -> None:
    """Create the database schema, or bring it up to date."""
    from ._store.migrate import upgrade  # the service's libraries load only when used

    url = prepare_storage(service_settings(database_url, data_dir))
    with reaching(url):
        upgrade(url)
    err.print(f"database schema is current: {redacted(url)}", highlight=False)


@cli.command()
@click.option("--host", help="Address to listen on (default: LEADSCORE_HOST, else 127.0.0.1).")
@click.option("--port", type=_PORT, help="Port to listen on (default: LEADSCORE_PORT, else 8000).")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    help="Server processes on the port (default: LEADSCORE_WORKERS, else 1).",
)
@storage_options
def serve(
    *,
    host: str | None,
    port: int | None,
    workers: int | None,
    database_url: str | None,
    data_dir: str | None,
) -> None:
    """Run the HTTP service. The database schema must be current (`leadscore db upgrade`)."""
    from ._service.server import run

    settings = service_settings(database_url, data_dir)
    given = {"host": host, "port": port, "workers": workers}
    settings = settings.model_copy(update={k: v for k, v in given.items() if v is not None})
    current_database(settings)
    run(settings)


_SCOPES = ["write", "read", "admin"]


@cli.group()
def workspaces() -> None:
    """Workspaces of the service: each has its own model, events, scores and keys."""


@workspaces.command(name="create")
@click.argument("name")
@storage_options
def workspaces_create(*, name: str, database_url: str | None, data_dir: str | None) -> None:
    """Create the workspace NAME (nothing happens when it exists)."""
    from ._store.workspaces import create_workspace

    with store_connection(database_url, data_dir) as conn:
        try:
            created = create_workspace(conn, workspace=name)
        except ValueError as error:
            fail(str(error))
    err.print(
        f"created workspace {name!r}" if created else f"workspace {name!r} exists already",
        highlight=False,
    )


@cli.group()
def keys() -> None:
    """API keys of the service's workspaces."""


_WORKSPACE_HELP = "The workspace's name."


@keys.command(name="create")
@click.option("--workspace", required=True, help=_WORKSPACE_HELP + " Created when missing.")
@click.option(
    "--scope",
    type=click.Choice(_SCOPES),
    required=True,
    help="write: only send events (safe in a web page). read: only read. admin: everything.",
)
@storage_options
def keys_create(
    *, workspace: str, scope: str, database_url: str | None, data_dir: str | None
) -> None:
    """Create an API key and print it as the last line of standard output."""
    from ._store.keys import Scope, create_key
    from ._store.workspaces import create_workspace

    with store_connection(database_url, data_dir) as conn:
        try:
            # Created here too, so that a first key is one command away; the
            # message says so, which shows a mistyped name at once.
            if create_workspace(conn, workspace=workspace):
                err.print(f"created workspace {workspace!r}", highlight=False)
        except ValueError as error:
            fail(str(error))
        created, key = create_key(conn, workspace=workspace, scope=Scope(scope))
    err.print(
        f"{scope} key {created.key_id} for workspace {workspace!r}; it is shown only now "
        "(leadscore stores a hash of it):",
        highlight=False,
        soft_wrap=True,
    )
    click.echo(key)


@keys.command(name="list")
@click.option("--workspace", required=True, help=_WORKSPACE_HELP)
@storage_options
def keys_list(*, workspace: str, database_url: str | None, data_dir: str | None) -> None:
    """List the workspace's keys (id, scope, created, revoked), without secrets."""
    from ._store.keys import list_keys
    from ._store.workspaces import require_workspace

    with store_connection(database_url, data_dir) as conn:
        with conn.begin():
            try:
                require_workspace(conn, workspace)
            except LeadscoreError as error:
                fail(str(error))
        found = list_keys(conn, workspace=workspace)
    for key in found:
        revoked = "-" if key.revoked_at is None else format_timestamp(key.revoked_at)
        click.echo(f"{key.key_id}\t{key.scope}\t{format_timestamp(key.created_at)}\t{revoked}")


@keys.command(name="revoke")
@click.argument("key_id")
@click.option("--workspace", required=True, help=_WORKSPACE_HELP)
@storage_options
def keys_revoke(
    *, key_id: str, workspace: str, database_url: str | None, data_dir: str | None
) -> None:
    """Revoke the key KEY_ID (as `keys list` shows it) of a workspace."""
    from ._store.keys import revoke_key

    # The id alone, also of a whole key (lsk_<id>_<secret>): the secret is
    # never echoed, not even in an error.
    given = key_id.removeprefix("lsk_").partition("_")[0]
    with store_connection(database_url, data_dir) as conn:
        if not revoke_key(conn, workspace=workspace, key_id=given):
            fail(f"workspace {workspace!r} has no key {given!r}")
    err.print(f"revoked key {given}", highlight=False)


# Commands that live in modules of their own, one line each.
from ._predict._commands import backtest, predict, suggest, train  # noqa: E402
from ._users_cli import users  # noqa: E402
from ._worker_cli import worker  # noqa: E402

cli.add_command(worker)
cli.add_command(train)
cli.add_command(predict)
cli.add_command(suggest)
cli.add_command(backtest)
cli.add_command(users)


def main() -> None:
    cli(prog_name="leadscore")
