"""The pure scoring engine: no I/O, no clock. Time is always an argument.

The engine works on one *owner* at a time (an identified contact or an
anonymous profile) and on *prepared* events: everything about an event that
does not depend on the contact's history — which rules match, the `tag_from`
tag, which `event:` conditions hold, the `stage_set` target, the traits — is
worked out once by :meth:`Engine.prepare`. What remains per event is
sequential by nature (limits, decay, stages, triggers) and lives in
:meth:`Engine.apply`, which the replay, the incremental form and the service
all share, so they cannot drift apart.

Decay. An award of p points at t counts p·2^(-(T-t)/H) as of T. Rather than
multiplying every running sum by a decay factor at each event, each contact
keeps its decaying sums scaled to a reference instant `ref`: an award adds
p·2^((t-ref)/H), and the value as of T is sum·2^(-(T-ref)/H). The scaled terms
grow with time, so when an event is more than `REBASE_HALF_LIVES` half-lives
after `ref` the sums are rescaled to that event (2^64 leaves ample headroom
below the float limit of 2^1023, and rebasing is rare). Replay and
incremental application run the same steps in the same order, so they agree
to the last bit; other engines (SQL) agree within rounding, which the spec's
1e-9 tolerance on thresholds absorbs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from ._compiled import CompiledModel, Values
from ._conditions import lookup, text_of
from ._events import Event
from ._model import Model
from ._time import format_timestamp

REBASE_HALF_LIVES = 64.0
NOT_STAGE_SET = -1
_NO_TAGS: Mapping[str, float] = MappingProxyType({})
UNKNOWN_STAGE = -2


class Prepared(NamedTuple):
    """An event reduced to what scoring needs; built by :meth:`Engine.prepare`.

    Plain values only (it converts to and from a tuple of builtins), so it can
    be spilled to disk or stored by the service.
    """

    timestamp: int
    id: str
    type: str
    contact_id: str | None
    anonymous_id: str | None
    # (rule index, tag from `tag_from` or None) for every rule whose event and where match
    hits: tuple[tuple[int, str | None], ...]
    leaves: int  # bit i: event leaf i of the compiled model holds
    stage_to: int  # NOT_STAGE_SET, UNKNOWN_STAGE or the index of the stage named
    stage_name: str | None  # the name a stage_set gave, for its warning
    traits: dict[str, Any] | None  # on identify only


@dataclass(frozen=True, slots=True)
class Award:
    """Points one rule gave for one event."""

    event_id: str
    rule_id: str
    points: int
    timestamp: int
    decays: bool
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class StageEntry:
    stage: str
    timestamp: int
    event_id: str
    manual: bool  # entered by a stage_set event


@dataclass(frozen=True, slots=True)
class Firing:
    """A trigger fired for a contact at an event (spec 2.6)."""

    trigger: str
    contact_id: str
    event_id: str
    timestamp: int

    @property
    def order_key(self) -> tuple[int, str, str]:
        return (self.timestamp, self.event_id, self.trigger)

    def to_json(self) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "contact_id": self.contact_id,
            "event_id": self.event_id,
            "timestamp": format_timestamp(self.timestamp),
        }


@dataclass(frozen=True, slots=True)
class RunWarning:
    event_id: str
    message: str

    def __str__(self) -> str:
        return f"event {self.event_id}: {self.message}"


@dataclass(slots=True)
class Step:
    """What applying one event did."""

    awards: list[Award] = field(default_factory=list)
    entries: list[StageEntry] = field(default_factory=list)
    firings: list[Firing] = field(default_factory=list)
    warnings: list[RunWarning] = field(default_factory=list)


@dataclass(slots=True)
class ContactState:
    """Everything the engine remembers about one owner between events."""

    last_timestamp: int | None = None
    last_id: str | None = None
    ref: int = 0  # the reference instant of the scaled decaying sums
    decaying: float = 0.0
    flat: float = 0.0
    tags: dict[str, list[float]] = field(default_factory=dict)  # tag -> [decaying, flat]
    stage: int | None = None
    stage_entered_at: int | None = None
    stage_decaying: float = 0.0
    stage_flat: float = 0.0
    traits: dict[str, Any] = field(default_factory=dict)
    fit: int = 0
    limits: dict[int, tuple[int, int]] = field(default_factory=dict)  # rule -> (period, count)
    fired: set[int] = field(default_factory=set)

    @property
    def last_key(self) -> tuple[int, str] | None:
        if self.last_timestamp is None or self.last_id is None:
            return None
        return (self.last_timestamp, self.last_id)

    def to_json(self) -> dict[str, Any]:
        """The state as JSON values, for the service to store between events.

        Floats are kept as they are: JSON text of a float (its shortest repr)
        reads back to the same float, so a stored state goes on bit for bit
        like one kept in memory, and stays equal to a replay.
        """
        return {
            "last_timestamp": self.last_timestamp,
            "last_id": self.last_id,
            "ref": self.ref,
            "decaying": self.decaying,
            "flat": self.flat,
            "tags": {tag: list(sums) for tag, sums in self.tags.items()},
            "stage": self.stage,
            "stage_entered_at": self.stage_entered_at,
            "stage_decaying": self.stage_decaying,
            "stage_flat": self.stage_flat,
            "traits": dict(self.traits),
            "fit": self.fit,
            # JSON object keys are strings, and these are rule indexes: rows instead.
            "limits": [[rule, period, count] for rule, (period, count) in self.limits.items()],
            "fired": sorted(self.fired),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ContactState:
        """Read back what :meth:`to_json` wrote."""
        return cls(
            last_timestamp=data["last_timestamp"],
            last_id=data["last_id"],
            ref=data["ref"],
            # float(): a JSON writer may print a whole float without its ".0".
            decaying=float(data["decaying"]),
            flat=float(data["flat"]),
            tags={tag: [float(sums[0]), float(sums[1])] for tag, sums in data["tags"].items()},
            stage=data["stage"],
            stage_entered_at=data["stage_entered_at"],
            stage_decaying=float(data["stage_decaying"]),
            stage_flat=float(data["stage_flat"]),
            traits=dict(data["traits"]),
            fit=data["fit"],
            limits={rule: (period, count) for rule, period, count in data["limits"]},
            fired=set(data["fired"]),
        )


@dataclass(frozen=True, slots=True)
class Scorecard:
    """A contact's result as of an instant (spec section 3)."""

    contact_id: str | None
    anonymous_id: str | None
    score: float
    fit: int
    grade: str | None
    band: str | None
    stage: str | None
    stage_entered_at: int | None
    stage_score: float | None
    tag_scores: dict[str, float]
    last_event_at: int | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"contact_id": self.contact_id}
        if self.contact_id is None:
            out["anonymous_id"] = self.anonymous_id
        out.update(
            score=self.score,
            fit=self.fit,
            grade=self.grade,
            band=self.band,
            stage=self.stage,
            stage_entered_at=_stamp(self.stage_entered_at),
            stage_score=self.stage_score,
            tag_scores=self.tag_scores,
            last_event_at=_stamp(self.last_event_at),
        )
        return out


class Scored(Protocol):
    """The scorecard fields that lists, reports and backtests read: a
    Scorecard, or a row of the store's ranked list (computed from columns)."""

    @property
    def contact_id(self) -> str | None: ...
    @property
    def score(self) -> float: ...
    @property
    def fit(self) -> int: ...
    @property
    def grade(self) -> str | None: ...
    @property
    def band(self) -> str | None: ...
    @property
    def stage(self) -> str | None: ...


def _stamp(micros: int | None) -> str | None:
    return None if micros is None else format_timestamp(micros)


def report(value: float) -> float:
    """Reported numbers: 2 decimals, half to even (spec 2.3); never -0.0."""
    return round(value, 2) + 0.0


class OutOfOrder(Exception):
    """The event sorts before the last one applied: rebuild the contact from its log."""


class Engine:
    """A compiled model and the operations of the pure engine."""

    def __init__(self, model: Model | CompiledModel) -> None:
        self.compiled = model if isinstance(model, CompiledModel) else CompiledModel(model)
        self.model = self.compiled.model

    # -- preparing events ---------------------------------------------------

    def prepare(self, event: Event) -> Prepared:
        """Everything about `event` that does not depend on the contact's history."""
        c = self.compiled
        properties = event.properties
        hits: list[tuple[int, str | None]] = []
        for rule in c.rules_by_type.get(event.type, ()):
            if rule.where is None or rule.where(properties):
                tag = text_of(lookup(properties, rule.tag_from)) if rule.tag_from else None
                hits.append((rule.index, tag))
        leaves = 0
        for bit, where in c.leaves_by_type.get(event.type, ()):
            if where is None or where(properties):
                leaves |= bit
        stage_to, stage_name = NOT_STAGE_SET, None
        if event.type == "stage_set" and c.has_stages:
            name = properties.get("stage")
            stage_name = name if isinstance(name, str) else None
            stage_to = c.stage_index.get(stage_name, UNKNOWN_STAGE) if stage_name else UNKNOWN_STAGE
        return Prepared(
            event.timestamp,
            event.id,
            event.type,
            event.contact_id,
            event.anonymous_id,
            tuple(hits),
            leaves,
            stage_to,
            stage_name,
            dict(event.traits) if event.traits is not None else None,
        )

    # -- applying events ----------------------------------------------------

    def apply(
        self,
        state: ContactState,
        event: Prepared,
        *,
        contact_id: str | None,
        record: bool = False,
        into: Step | None = None,
    ) -> Step:
        """Apply one event that sorts after everything `state` has seen.

        `contact_id` is the identified contact the event belongs to, or None
        for an anonymous profile (which never fires triggers). With `record`,
        the step lists the awards and stage entries (for explanations);
        firings and warnings are always listed, in `into` when given (a
        replay collects a whole history in one Step). Raises
        :class:`OutOfOrder` when the event is not after the last one applied.
        """
        c = self.compiled
        t = event.timestamp
        step = Step() if into is None else into
        key = state.last_key
        if key is not None and (t, event.id) <= key:
            raise OutOfOrder(event.id)
        first = key is None
        if first:
            state.ref = t
        elif c.half_life_micros is not None and t - state.ref > REBASE_HALF_LIVES * (
            c.half_life_micros
        ):
            _rebase(state, t, c.half_life_micros)

        judge = contact_id is not None and bool(c.triggers)
        before = self._values(state, t, 0, first=first) if judge else None

        if event.traits is not None:
            merge_traits(state.traits, event.traits)
            state.fit = c.fit_of(state.traits)
        self._award(state, event, step, record)

        after = None
        if c.has_stages:
            after = self._move(state, event, step, first=first, record=record)
        state.last_timestamp, state.last_id = t, event.id

        if judge and before is not None and contact_id is not None:
            if after is None:
                after = self._values(state, t, event.leaves, first=False)
            for trigger in c.triggers:
                if trigger.once and trigger.index in state.fired:
                    continue
                if trigger.fires(before, after):
                    if trigger.once:
                        state.fired.add(trigger.index)
                    step.firings.append(Firing(trigger.id, contact_id, event.id, t))
        return step

    def _award(self, state: ContactState, event: Prepared, step: Step, record: bool) -> None:
        c = self.compiled
        t = event.timestamp
        scale = 1.0
        if c.half_life_micros is not None and event.hits:
            scale = 2.0 ** ((t - state.ref) / c.half_life_micros)
        for index, tag_from in event.hits:
            rule = c.rules[index]
            if rule.limit_per is not None:
                period = c.period_of(rule.limit_per, t)
                seen_period, count = state.limits.get(index, (None, 0))
                count = count + 1 if seen_period == period else 1
                if rule.limit_times is not None and count > rule.limit_times:
                    continue  # capped: awards nothing and names no tag
                state.limits[index] = (period, count)
            tags = rule.tags
            if tag_from is not None and tag_from not in tags:
                tags = (*tags, tag_from)
            slot = 0 if rule.decays else 1
            amount = rule.points * scale if rule.decays else float(rule.points)
            if rule.decays:
                state.decaying += amount
                state.stage_decaying += amount
            else:
                state.flat += amount
                state.stage_flat += amount
            for tag in tags:
                sums = state.tags.get(tag)
                if sums is None:
                    sums = state.tags[tag] = [0.0, 0.0]
                sums[slot] += amount
            if record:
                step.awards.append(Award(event.id, rule.id, rule.points, t, rule.decays, tags))

    def _move(
        self, state: ContactState, event: Prepared, step: Step, *, first: bool, record: bool
    ) -> Values | None:
        """Stage entry and moves after an event (spec 2.5).

        Returns the values after the event (for the triggers) when it computed
        them, None after a stage_set.
        """
        c = self.compiled
        if first:
            # The first event enters the first stage; its own awards count for
            # the stage it leaves (none), so the stage sums start empty.
            _enter(state, 0, event, step, manual=False, record=record, names=c.stage_names)
        if event.stage_to != NOT_STAGE_SET:
            if event.stage_to == UNKNOWN_STAGE:
                step.warnings.append(unknown_stage(event.id, event.stage_name))
            elif event.stage_to != state.stage:
                _enter(
                    state,
                    event.stage_to,
                    event,
                    step,
                    manual=True,
                    record=record,
                    names=c.stage_names,
                )
            return None  # a stage_set never causes an automatic move
        current = state.stage if state.stage is not None else 0
        values = self._values(state, event.timestamp, event.leaves, first=False)
        for index in range(len(c.stage_names) - 1, current, -1):
            enter = c.stage_enter[index]
            if enter is not None and enter(values):
                _enter(state, index, event, step, manual=False, record=record, names=c.stage_names)
                # Entering empties the stage sums: only the stage fields change.
                return replace(values, stage=index, stage_score=values.empty_tag)
        return values

    def _values(self, state: ContactState, t: int, leaves: int, *, first: bool) -> Values:
        """The values conditions look at, as of `t` (before any event when `first`).

        This runs twice per event of a model with stages or triggers, so it
        computes only what some condition of the model reads.
        """
        c = self.compiled
        empty = c.empty
        if first:
            return Values(empty, 0, None, None, None, empty, _NO_TAGS, leaves, empty)
        factor = 1.0
        if c.half_life_micros is not None:
            factor = 2.0 ** ((state.ref - t) / c.half_life_micros)
        score = c.clamp(state.decaying * factor + state.flat)
        tags = _NO_TAGS
        if c.watched_tags:
            tags = {}
            for tag in c.watched_tags:
                sums = state.tags.get(tag)
                if sums is not None:
                    tags[tag] = c.clamp(sums[0] * factor + sums[1])
        stage_score = empty
        if c.reads_stage_score:
            stage_score = c.clamp(state.stage_decaying * factor + state.stage_flat)
        return Values(
            score, state.fit, c.grade_of(state.fit), c.band_of(score), state.stage,
            stage_score, tags, leaves, empty,
        )  # fmt: skip

    # -- reading results ------------------------------------------------------

    def scorecard(
        self, state: ContactState, at: int, *, contact_id: str | None, anonymous_id: str | None
    ) -> Scorecard:
        """The scorecard as of `at`, which must not be before the last event applied."""
        c = self.compiled
        factor = 1.0
        if c.half_life_micros is not None:
            factor = 2.0 ** (-(at - state.ref) / c.half_life_micros)
        score = c.clamp(state.decaying * factor + state.flat)
        has_stage = state.stage is not None
        return Scorecard(
            contact_id=contact_id,
            anonymous_id=anonymous_id,
            score=report(score),
            fit=state.fit,
            grade=c.grade_of(state.fit),
            band=c.band_of(score),
            stage=c.stage_names[state.stage] if state.stage is not None else None,
            stage_entered_at=state.stage_entered_at,
            stage_score=(
                report(c.clamp(state.stage_decaying * factor + state.stage_flat))
                if has_stage
                else None
            ),
            tag_scores={
                tag: report(c.clamp(sums[0] * factor + sums[1]))
                for tag, sums in sorted(state.tags.items())
            },
            last_event_at=state.last_timestamp,
        )

    def counted(self, award: Award, at: int) -> float:
        """What one award counts as of `at` (spec 2.3), unrounded."""
        half_life = self.compiled.half_life_micros
        if not award.decays or half_life is None:
            return float(award.points)
        return float(award.points * 2.0 ** (-(at - award.timestamp) / half_life))

    def run(
        self, events: Iterable[Prepared], *, contact_id: str | None, record: bool = False
    ) -> tuple[ContactState, Step]:
        """Apply an owner's events, sorted by (timestamp, id), to a fresh state."""
        state = ContactState()
        total = Step()
        for event in events:
            self.apply(state, event, contact_id=contact_id, record=record, into=total)
        return state, total


def unknown_stage(event_id: str, name: str | None) -> RunWarning:
    """The warning of a stage_set whose stage is none of the model's."""
    shown = repr(name) if name else "no stage"
    return RunWarning(event_id, f"stage_set names {shown}, not a stage of the model")


def _enter(
    state: ContactState,
    index: int,
    event: Prepared,
    step: Step,
    *,
    manual: bool,
    record: bool,
    names: list[str],
) -> None:
    state.stage = index
    state.stage_entered_at = event.timestamp
    state.stage_decaying = 0.0
    state.stage_flat = 0.0
    if record:
        step.entries.append(StageEntry(names[index], event.timestamp, event.id, manual))


def merge_traits(traits: dict[str, Any], update: Mapping[str, Any]) -> None:
    """Top-level keys merge in event order; a key set to null is removed (spec 1)."""
    for key, value in update.items():
        if value is None:
            traits.pop(key, None)
        else:
            traits[key] = value


def _rebase(state: ContactState, t: int, half_life: float) -> None:
    factor = 2.0 ** (-(t - state.ref) / half_life)
    state.decaying *= factor
    state.stage_decaying *= factor
    for sums in state.tags.values():
        sums[0] *= factor
    state.ref = t
