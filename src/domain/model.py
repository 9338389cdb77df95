"""Aggregates of the ledger.

- `Evidence`: one evidence item (an inspection, a review, an indicator value, an
  earlier year's grade). Its id is derived from the client's id of the posting
  that created it, so the event store's uniqueness makes that posting idempotent.
- `Provider`: a provider's lifecycle, keyed by its URN.
- `Assessment`: the steps of one authority's assessment for one year.
- `ClientKey`: reserves a client id for a posting that does not create its own
  aggregate (a follow-up, a provider lifecycle step, an assessment step).

Nothing is updated or deleted: corrections and withdrawals are new events; every
earlier state stays replayable. Each event names the `actor`, the client's id and
the content hash of the posting it records; `timestamp` is the ledger's
`recorded_at`, set by the ledger's clock, never by the caller.
"""

from __future__ import annotations

import dataclasses
from datetime import date
from functools import lru_cache
from hashlib import sha1
from typing import Any
from uuid import UUID, SafeUUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from domain.errors import FieldError, InvalidEvidence
from domain.postings import KINDS, Posting, check_consistency

NAMESPACE = UUID("6f1c3c4e-2d1b-5a53-9f3e-0c5a1d2b7e11")


_NAMESPACE_BYTES = NAMESPACE.bytes
_UUID_NEW = object.__new__
_SET = object.__setattr__
_UNKNOWN = SafeUUID.unknown
_VERSION_5_CLEAR = ~((0xC000 << 48) | (0xF000 << 64))
_VERSION_5_SET = (0x8000 << 48) | (5 << 76)


def _uuid5(name: str) -> UUID:
    """`uuid5(NAMESPACE, name)`, the same UUID (tests/unit/test_import_lean_events.py),
    without `UUID.__init__`'s argument checks: ~4 us -> ~1 us, and a bulk import derives
    one or two ids per posting."""
    digest = sha1(_NAMESPACE_BYTES + name.encode("utf-8")).digest()
    u = _UUID_NEW(UUID)
    _SET(u, "int", (int.from_bytes(digest[:16], "big") & _VERSION_5_CLEAR) | _VERSION_5_SET)
    _SET(u, "is_safe", _UNKNOWN)
    return u


# Ids are pure functions of their names; a bulk import asks for the same ones several
# times close together (the batch's look-up, the event, a follow-up's target).
@lru_cache(maxsize=1 << 17)
def key_id(client_id: str) -> UUID:
    return _uuid5("client:" + client_id)


@lru_cache(maxsize=1 << 16)
def provider_id(urn: str) -> UUID:
    return _uuid5("provider:" + urn)


def assessment_id(la_code: str, year: int) -> UUID:
    return _uuid5(f"assessment:{la_code}:{year}")


# --- lean event construction ------------------------------------------------------
#
# The library's `Aggregate._create` and `trigger_event` build each event through the
# frozen dataclass's `__init__` and then mutate the aggregate through a generic path that
# inspects signatures and resolves topics on every call: ~15-20 us per event, most of a
# bulk import's staging. `_Lean` does the same for our own aggregates with none of the
# generic work: the event object has the same attributes in the same order (so the
# mapper stores the same bytes), the aggregate the same state, version and timestamps
# (tests/unit/test_import_lean_events.py compares both paths). Reconstruction from the
# store (`Repository.get`, the projector) is the library's own, unchanged.

_FIELDS: dict[type, tuple[str, ...]] = {}
_INIT_ARGS: dict[tuple[type, type], tuple[str, ...]] = {}  # (aggregate, event class) -> the event's fields __init__ takes


def _fields(event_class: type) -> tuple[str, ...]:
    names = _FIELDS.get(event_class)
    if names is None:
        names = _FIELDS[event_class] = tuple(f.name for f in dataclasses.fields(event_class))
    return names


def _new_event(event_class: type, values: dict[str, Any]) -> Any:
    """`event_class(**values)` without the frozen dataclass's `__init__`: the same
    attributes set in the same (field) order. Falls back to the constructor (and its
    TypeError) if the values are not exactly the fields."""
    names = _fields(event_class)
    if len(values) != len(names) or getattr(event_class, "__post_init__", None) is not _POST_INIT:
        return event_class(**values)
    try:
        ordered = {n: values[n] for n in names}
    except KeyError:
        return event_class(**values)
    if not isinstance(ordered["originator_id"], UUID):
        return event_class(**values)  # the library's __post_init__ raises
    event = object.__new__(event_class)
    event.__dict__.update(ordered)
    return event


_POST_INIT = Aggregate.Event.__post_init__


class _Lean:
    """Mixed into our aggregates ahead of `Aggregate`: `_create` and `trigger_event` with
    the library's semantics for these classes (explicit id and timestamp, no TOPIC, no
    `id` parameter in `__init__`), without its per-call generic work."""

    @classmethod
    def _create(cls, event_class: type, *, id: Any = None, **kwargs: Any) -> Any:  # noqa: A002
        timestamp = kwargs.get("timestamp")
        if id is None or timestamp is None or getattr(cls, "TOPIC", None):
            return super()._create(event_class, id=id, **kwargs)  # type: ignore[misc]
        values = {**kwargs, "originator_topic": get_topic(cls), "originator_id": id, "originator_version": 1}
        event = _new_event(event_class, values)
        names = _INIT_ARGS.get((cls, event_class))
        if names is None:
            import inspect

            params = frozenset(inspect.signature(cls.__init__).parameters) - {"self"}
            names = _INIT_ARGS[(cls, event_class)] = tuple(n for n in _fields(event_class) if n in params)
        attrs = event.__dict__
        agg = cls.__new__(cls)
        agg.__base_init__(id, 1, timestamp)
        agg.__init__(**{n: attrs[n] for n in names if n in attrs})
        event.apply(agg)
        agg._pending_events.append(event)
        return agg

    def collect_events(self) -> list[Any]:
        """The library's `collect_events` (the pending events in order, none left pending),
        handing over the list rather than moving its events one by one into a new one."""
        events = self._pending_events
        if not events:
            return []
        self._pending_events = []
        return events

    def trigger_event(self, event_class: type, **kwargs: Any) -> None:
        timestamp = kwargs.get("timestamp")
        if timestamp is None or getattr(type(self), "TOPIC", None):
            super().trigger_event(event_class, **kwargs)  # type: ignore[misc]
            return
        values = {**kwargs, "originator_id": self.id, "originator_version": self.version + 1}
        event = _new_event(event_class, values)
        event.apply(self)
        self.version = event.originator_version
        self.modified_on = timestamp
        self.pending_events.append(event)


class Posted(Aggregate.Event):
    """Common attributes of every event that records a posting."""

    actor: str
    client_id: str
    content_hash: str


class Item(_Lean, Aggregate):
    """Something that was posted and can be given its publication date, corrected or withdrawn."""

    # Subclasses set: kind (str), state (dict of the kind's fields), withdrawn (bool).

    class PublicationDateSupplied(Posted):
        published_on: date

        def apply(self, item: Item) -> None:
            item.state = {**item.state, "published_on": self.published_on}

    class Corrected(Posted):
        changes: dict[str, Any]
        reason: str

        def apply(self, item: Item) -> None:
            item.state = {**item.state, **self.changes}

    class Withdrawn(Posted):
        reason: str

        def apply(self, item: Item) -> None:
            item.withdrawn = True

    def _refuse_if_withdrawn(self, posting: Posting) -> None:
        if self.withdrawn:
            raise InvalidEvidence([FieldError("target", posting.get("target") or posting.get("urn"),
                                              "was withdrawn: a withdrawn posting cannot be changed", posting.line)])

    def _check(self, new_state: dict[str, Any], posting: Posting) -> None:
        errors = check_consistency(KINDS[self.kind], new_state, posting.line)
        if errors:
            raise InvalidEvidence(errors)

    def supply_publication_date(self, posting: Posting, at: Any) -> None:
        self._refuse_if_withdrawn(posting)
        if "published_on" not in KINDS[self.kind].field_names:
            raise InvalidEvidence([FieldError("target", posting.get("target"), f"a {self.kind} has no publication date", posting.line)])
        known = self.state.get("published_on")
        if known is not None:
            raise InvalidEvidence([FieldError("published_on", posting.get("published_on").isoformat(),
                                              f"the publication date is already known ({_iso(known)}): post a correction to change it",
                                              posting.line)])
        self._check({**self.state, "published_on": posting.get("published_on")}, posting)
        self.trigger_event(self.PublicationDateSupplied, published_on=posting.get("published_on"),
                           timestamp=at, **_envelope(posting))

    def correct(self, changes: dict[str, Any], posting: Posting, at: Any) -> None:
        self._refuse_if_withdrawn(posting)
        self._check({**self.state, **changes}, posting)
        self.trigger_event(self.Corrected, changes=changes, reason=posting.get("reason"),
                           timestamp=at, **_envelope(posting))

    def withdraw(self, posting: Posting, at: Any) -> None:
        self._refuse_if_withdrawn(posting)
        self.trigger_event(self.Withdrawn, reason=posting.get("reason"), timestamp=at, **_envelope(posting))


def _iso(d: Any) -> str:
    return d.isoformat() if isinstance(d, date) else str(d)


def _envelope(posting: Posting) -> dict[str, str]:
    return {"actor": posting.actor, "client_id": posting.client_id, "content_hash": posting.content_hash}


class Evidence(Item):
    class Recorded(Aggregate.Created, Posted):
        kind: str
        state: dict[str, Any]

    @classmethod
    def record(cls, posting: Posting, at: Any) -> Evidence:
        return cls._create(cls.Recorded, id=key_id(posting.client_id), kind=posting.type,
                           state=dict(posting.data), timestamp=at, **_envelope(posting))

    def __init__(self, kind: str, state: dict[str, Any], **_: Any) -> None:
        self.kind = kind
        self.state = state
        self.withdrawn = False


class Provider(Item):
    """The provider's registration details and lifecycle (¶19, ¶20, Annex B)."""

    class Registered(Aggregate.Created, Posted):
        kind: str
        state: dict[str, Any]

    class Closed(Posted):
        closed_on: date

        def apply(self, p: Provider) -> None:
            p.state = {**p.state, "closed_on": self.closed_on}

    class Restructured(Posted):
        successor_urn: str
        restructured_on: date

        def apply(self, p: Provider) -> None:
            p.state = {**p.state, "successor_urn": self.successor_urn, "restructured_on": self.restructured_on}

    class NoChildrenOnRollMarked(Posted):
        since: date

        def apply(self, p: Provider) -> None:
            p.state = {**p.state, "no_children_on_roll_from": self.since}

    @classmethod
    def register(cls, posting: Posting, at: Any) -> Provider:
        return cls._create(cls.Registered, id=provider_id(posting.get("urn")), kind="provider_registered",
                           state=dict(posting.data), timestamp=at, **_envelope(posting))

    def __init__(self, kind: str, state: dict[str, Any], **_: Any) -> None:
        self.kind = kind
        self.state = state
        self.withdrawn = False

    @property
    def opened_on(self) -> date | None:
        return self.state.get("occurred_on")

    def _not_before_opening(self, day: date, field: str, posting: Posting) -> None:
        if self.opened_on is not None and day < self.opened_on:
            raise InvalidEvidence([FieldError(field, day.isoformat(),
                                              f"is before provider {self.state['urn']} was registered on {self.opened_on.isoformat()}",
                                              posting.line)])

    def close(self, posting: Posting, at: Any) -> None:
        self._refuse_if_withdrawn(posting)
        if self.state.get("closed_on") is not None:
            raise InvalidEvidence([FieldError("urn", self.state["urn"],
                                              f"is already closed ({_iso(self.state['closed_on'])}): post a correction to change the date",
                                              posting.line)])
        self._not_before_opening(posting.get("occurred_on"), "occurred_on", posting)
        self.trigger_event(self.Closed, closed_on=posting.get("occurred_on"), timestamp=at, **_envelope(posting))

    def restructure(self, posting: Posting, at: Any) -> None:
        self._refuse_if_withdrawn(posting)
        if posting.get("successor_urn") == self.state["urn"]:
            raise InvalidEvidence([FieldError("successor_urn", posting.get("successor_urn"),
                                              "a provider cannot be its own successor", posting.line)])
        self.trigger_event(self.Restructured, successor_urn=posting.get("successor_urn"),
                           restructured_on=posting.get("occurred_on"), timestamp=at, **_envelope(posting))

    def mark_no_children_on_roll(self, posting: Posting, at: Any) -> None:
        self._refuse_if_withdrawn(posting)
        self.trigger_event(self.NoChildrenOnRollMarked, since=posting.get("occurred_on"), timestamp=at, **_envelope(posting))

    def check_inspection(self, posting: Posting) -> None:
        """An inspection must be of a registered, not withdrawn provider, on or after its registration."""
        if self.withdrawn:
            raise InvalidEvidence([FieldError("urn", self.state["urn"], "the provider's registration was withdrawn", posting.line)])
        self._not_before_opening(posting.get("occurred_on"), "occurred_on", posting)


class Assessment(_Lean, Aggregate):
    """The steps of one authority's assessment for one year (¶12, ¶74-81).

    The ledger records and replays them; the workflow rules (deadlines,
    independence of the evaluator and the panel) are the assessment workflow's.
    """

    class Opened(Aggregate.Created):
        la_code: str
        year: int

    class StepRecorded(Posted):
        la_code: str
        year: int
        step: str
        details: dict[str, Any]

        def apply(self, a: Assessment) -> None:
            a.steps.append((self.step, self.details))

    @classmethod
    def open(cls, la_code: str, year: int, at: Any) -> Assessment:
        return cls._create(cls.Opened, id=assessment_id(la_code, year), la_code=la_code, year=year, timestamp=at)

    def __init__(self, la_code: str, year: int) -> None:
        self.la_code = la_code
        self.year = year
        self.steps: list[tuple[str, dict[str, Any]]] = []

    def record_step(self, posting: Posting, at: Any) -> None:
        details = {k: v for k, v in posting.data.items() if k not in ("la_code", "year")}
        self.trigger_event(self.StepRecorded, la_code=self.la_code, year=self.year, step=posting.type, details=details, timestamp=at, **_envelope(posting))


class ClientKey(_Lean, Aggregate):
    """Reserves a client id for a posting recorded on another aggregate."""

    class Reserved(Aggregate.Created):
        client_id: str
        content_hash: str
        type: str
        aggregate_id: UUID

    @classmethod
    def reserve(cls, posting: Posting, aggregate_id: UUID, at: Any) -> ClientKey:
        return cls._create(cls.Reserved, id=key_id(posting.client_id), client_id=posting.client_id,
                           content_hash=posting.content_hash, type=posting.type, aggregate_id=aggregate_id, timestamp=at)

    def __init__(self, client_id: str, content_hash: str, type: str, aggregate_id: UUID) -> None:  # noqa: A002
        self.client_id = client_id
        self.content_hash = content_hash
        self.type = type
        self.aggregate_id = aggregate_id
