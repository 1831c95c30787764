"""Scoring a stream of events too large to hold: what `leadscore score` runs.

The result must equal :func:`leadscore._replay.replay`, which needs each
owner's events sorted and every identity link known before any owner is
scored. So events are prepared as they stream in (the properties, the bulk
of an event, are dropped once the rules have looked at them) and held until
the end of the input. Up to `SPILL_AFTER` events stay in memory; past that
they are written, as marshalled tuples, to hash partitions in a temporary
directory: events with a contact id by that contact, anonymous-only events
by their anonymous id. At the end, the anonymous partitions are routed to
the contact that their id was linked to (or kept as anonymous profiles), and
each partition is loaded, grouped, sorted and scored on its own. Memory then
grows with the number of contacts and the size of one partition.

The one per-event structure kept in memory is the map of event ids seen
(for "the first copy received is kept"), a small digest per id so that a
later copy that differs can be reported.
"""

from __future__ import annotations

import marshal
import multiprocessing as mp
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import IO, Any

from ._engine import Engine, Firing, Prepared, RunWarning, Scorecard
from ._events import Event
from ._jsonexact import dumps_sorted
from ._replay import Result, group, score_groups

SPILL_AFTER = 250_000
PARTITIONS = 64
_BATCH = 4096  # records per marshal write: large enough to amortise the call
# Where a spilled record (a Prepared as a plain tuple) holds its anonymous id.
_ANONYMOUS_ID = Prepared._fields.index("anonymous_id")


def _digest(event: Event) -> int:
    # Content of an event as one hash, to tell a differing resend from a copy.
    return hash(
        (
            event.type,
            event.contact_id,
            event.anonymous_id,
            event.timestamp,
            dumps_sorted(event.properties),
            dumps_sorted(event.traits),
        )
    )


@dataclass(slots=True)
class _Partitions:
    """Append-only marshal files, one per hash bucket, in a temporary directory."""

    directory: Path
    prefix: str
    files: dict[int, IO[bytes]] = field(default_factory=dict)
    pending: dict[int, list[tuple[Any, ...]]] = field(default_factory=dict)

    def add(self, key: str, record: tuple[Any, ...]) -> None:
        bucket = hash(key) % PARTITIONS
        batch = self.pending.setdefault(bucket, [])
        batch.append(record)
        if len(batch) >= _BATCH:
            self._flush(bucket)

    def _flush(self, bucket: int) -> None:
        batch = self.pending.pop(bucket, None)
        if not batch:
            return
        out = self.files.get(bucket)
        if out is None:
            out = self.files[bucket] = (self.directory / f"{self.prefix}-{bucket}").open("wb")
        # Length-prefixed, so reading takes one call per batch: marshal.load on a
        # file reads in many small pieces and was the slowest part of a spill.
        data = marshal.dumps(batch)
        out.write(len(data).to_bytes(8, "little"))
        out.write(data)

    def close(self) -> None:
        for bucket in list(self.pending):
            self._flush(bucket)
        for out in self.files.values():
            out.close()
        self.files.clear()

    def read(self, bucket: int) -> Iterator[tuple[Any, ...]]:
        path = self.directory / f"{self.prefix}-{bucket}"
        if not path.exists():
            return
        with path.open("rb") as source:
            while header := source.read(8):
                yield from marshal.loads(source.read(int.from_bytes(header, "little")))


class StreamScorer:
    """Feed events with :meth:`add`, then :meth:`finish` for the replay's result."""

    def __init__(
        self, engine: Engine, at: int, *, spill_after: int = SPILL_AFTER, workers: int | None = None
    ) -> None:
        self.engine = engine
        self.at = at
        self.spill_after = spill_after
        # Spilled partitions are scored by this many processes (default: one
        # per CPU this process may use); 1 scores them in this process.
        self.workers = workers if workers is not None else len(os.sched_getaffinity(0))
        self.warnings: list[RunWarning] = []
        self._seen: dict[str, int] = {}
        self._held: list[Prepared] = []
        self._links: dict[str, tuple[int, str, str]] = {}
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._contacts: _Partitions | None = None
        self._anonymous: _Partitions | None = None

    @property
    def spilled(self) -> bool:
        return self._tmp is not None

    def add(self, event: Event) -> None:
        digest = _digest(event)
        first = self._seen.get(event.id)
        if first is not None:
            if first != digest:
                self.warnings.append(
                    RunWarning(
                        event.id, "a later copy of this event differs; the first copy is kept"
                    )
                )
            return
        self._seen[event.id] = digest
        if event.timestamp > self.at:
            return  # events after the as-of time do not exist, links included
        prepared = self.engine.prepare(event)
        if event.anonymous_id is not None and event.contact_id is not None:
            key = (event.timestamp, event.id, event.contact_id)
            seen = self._links.get(event.anonymous_id)
            if seen is None or key < seen:
                self._links[event.anonymous_id] = key
        if self._contacts is None:
            self._held.append(prepared)
            if len(self._held) > self.spill_after:
                self._spill()
        else:
            self._store(prepared)

    def add_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.add(event)

    def _spill(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="leadscore-")
        directory = Path(self._tmp.name)
        self._contacts = _Partitions(directory, "contacts")
        self._anonymous = _Partitions(directory, "anonymous")
        for prepared in self._held:
            self._store(prepared)
        self._held = []

    def _store(self, prepared: Prepared) -> None:
        assert self._contacts is not None
        assert self._anonymous is not None
        if prepared.contact_id is not None:
            self._contacts.add(prepared.contact_id, tuple(prepared))
        else:
            assert prepared.anonymous_id is not None
            self._anonymous.add(prepared.anonymous_id, tuple(prepared))

    def finish(self) -> Result:
        linked = {anonymous: key[2] for anonymous, key in self._links.items()}
        if self._contacts is None or self._anonymous is None or self._tmp is None:
            result = score_groups(self.engine, group(self._held, linked), self.at)
            self._held = []
        else:
            result = self._finish_spilled(linked)
        result.warnings[:0] = self.warnings
        return result

    def _finish_spilled(self, linked: dict[str, str]) -> Result:
        assert self._contacts is not None
        assert self._anonymous is not None
        assert self._tmp is not None
        self._contacts.close()
        self._anonymous.close()
        directory = Path(self._tmp.name)
        # Anonymous-only events go to their linked contact's partition, or to
        # the partitions of anonymous profiles.
        routed = _Partitions(directory, "routed")
        profiles = _Partitions(directory, "profiles")
        for bucket in range(PARTITIONS):
            for record in self._anonymous.read(bucket):
                anonymous_id = record[_ANONYMOUS_ID]
                contact = linked.get(anonymous_id)
                if contact is not None:
                    routed.add(contact, record)
                else:
                    profiles.add(anonymous_id, record)
        routed.close()
        profiles.close()
        sources = ((self._contacts, routed), (profiles,))

        def score_buckets(buckets: Sequence[int]) -> Result:
            part = _Merged()
            for bucket in buckets:
                for parts in sources:
                    events = [_prepared(rec) for store in parts for rec in store.read(bucket)]
                    if events:
                        part.add(score_groups(self.engine, group(events, linked), self.at))
            return part.result()

        merged = _Merged()
        for part in _in_parallel(score_buckets, range(PARTITIONS), self.workers):
            merged.add(part)
        self._tmp.cleanup()
        self._tmp = None
        merged.scorecards.sort(key=_contact_key)
        merged.anonymous.sort(key=lambda card: card.anonymous_id or "")
        merged.firings.sort(key=lambda firing: firing.order_key)
        return merged.result()


@dataclass(slots=True)
class _Merged:
    """Results of parts of the owners, gathered into lists."""

    scorecards: list[Scorecard] = field(default_factory=list)
    anonymous: list[Scorecard] = field(default_factory=list)
    firings: list[Firing] = field(default_factory=list)
    warnings: list[RunWarning] = field(default_factory=list)

    def add(self, part: Result) -> None:
        self.scorecards += part.scorecards
        self.anonymous += part.anonymous
        self.firings += part.firings
        self.warnings += part.warnings

    def result(self) -> Result:
        return Result(self.scorecards, self.anonymous, self.firings, self.warnings)


def _in_parallel(
    work: Callable[[Sequence[int]], Result], buckets: range, workers: int
) -> list[Result]:
    """Run `work` over the buckets split among `workers` forked processes.

    Fork, so that the children inherit the compiled model (its predicates
    are closures, which cannot be pickled) and the routing tables; only each
    child's Result comes back, pickled through a pipe. Where fork is not
    available, or with one worker, the work runs here.
    """
    if workers <= 1 or "fork" not in mp.get_all_start_methods():
        return [work(buckets)]
    context = mp.get_context("fork")
    running = []
    for index in range(workers):
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(send, work, buckets[index::workers]))
        child.start()
        send.close()
        running.append((child, receive))
    results: list[Result] = []
    failure: BaseException | None = None
    for child, receive in running:
        try:
            outcome = receive.recv()
        except EOFError:  # the child died without answering; reap it to learn how
            child.join()
            outcome = RuntimeError(f"a scoring process died (exit code {child.exitcode})")
        child.join()
        if isinstance(outcome, BaseException):
            failure = failure or outcome
        else:
            results.append(outcome)
    if failure is not None:
        raise failure
    return results


def _child(send: Connection, work: Callable[[Sequence[int]], Result], buckets: range) -> None:
    try:
        send.send(work(buckets))
    except BaseException as exc:  # reported to the parent, which re-raises it
        send.send(exc)
    finally:
        send.close()


def _prepared(record: tuple[Any, ...]) -> Prepared:
    # tuple.__new__ skips the named constructor's argument handling: the
    # record is a Prepared written by this module, already in field order.
    return tuple.__new__(Prepared, record)


def _contact_key(card: Scorecard) -> str:
    return str(card.contact_id)
