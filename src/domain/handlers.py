"""Turning postings into events: the one place that decides which aggregate a
posting goes to and which verb it calls.

A `Batch` stages postings on aggregates in memory; nothing reaches the store
until the adapter saves `batch.events` in one transaction. A batch with any
invalid posting raises with every error found, so a rejected batch writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from domain.errors import ConflictingPosting, FieldError, InvalidEvidence
from domain.model import (
    Assessment,
    ClientKey,
    Evidence,
    Item,
    Provider,
    assessment_id,
    key_id,
    provider_id,
)
from domain.postings import ASSESSMENT, EVIDENCE, FOLLOW_UP, KINDS, PROVIDER, Posting, parse_fields

RECORDED = "recorded"
ALREADY_RECORDED = "already_recorded"


@dataclass(frozen=True)
class Outcome:
    client_id: str
    type: str
    status: str  # recorded | already_recorded
    aggregate_id: UUID
    line: int | None = None


@dataclass(frozen=True)
class PriorPosting:
    """What the store already holds for a client id."""

    type: str
    content_hash: str
    aggregate_id: UUID


class AggregateSource(Protocol):
    """What a batch needs from the store (an adapter, or a fake in unit tests)."""

    def get(self, aggregate_id: UUID) -> Any | None: ...

    def prior_postings(self, client_ids: Iterable[str]) -> dict[str, PriorPosting]: ...


def aggregates_read(p: Posting) -> list[UUID]:
    """The aggregates that staging this posting may read (a hint for loading them in bulk)."""
    ids = []
    if "urn" in p.data:
        ids.append(provider_id(p.data["urn"]))
    if "target" in p.data:
        ids.append(key_id(p.data["target"]))
    if p.kind.family == ASSESSMENT and "la_code" in p.data and "year" in p.data:
        ids.append(assessment_id(p.data["la_code"], p.data["year"]))
    return ids


class Batch:
    def __init__(self, source: AggregateSource, at: datetime, known_la_codes: frozenset[str] | None = None):
        self.source = source
        self.at = at
        # The 152 authorities (supplied by an adapter): a correction of a provider's
        # la_code is checked against them, as a posting's la_code is when parsed.
        self.known_la_codes = known_la_codes
        self.staged: dict[UUID, Any] = {}
        self.events: list[Any] = []
        self.outcomes: list[Outcome] = []
        self.errors: list[FieldError] = []
        self.conflicts: list[FieldError] = []
        self._seen: dict[str, tuple[str, UUID]] = {}

    # --- public -------------------------------------------------------------

    def stage(self, postings: list[Posting]) -> list[Outcome]:
        """Stage every posting; raise InvalidEvidence with all errors if any."""
        prior = self.source.prior_postings(p.client_id for p in postings)
        for p in postings:
            self._stage_one(p, prior.get(p.client_id))
        if self.errors:
            raise InvalidEvidence(self.errors + self.conflicts)
        if self.conflicts:
            raise ConflictingPosting(self.conflicts)
        return self.outcomes

    # --- one posting --------------------------------------------------------

    def _stage_one(self, p: Posting, prior: PriorPosting | None) -> None:
        if p.client_id in self._seen:
            digest, agg_id = self._seen[p.client_id]
            self._repeat(p, digest, agg_id)
            return
        if prior is not None:
            self._repeat(p, prior.content_hash, prior.aggregate_id)
            return
        handler = {EVIDENCE: self._evidence, PROVIDER: self._provider,
                   FOLLOW_UP: self._follow_up, ASSESSMENT: self._assessment}[p.kind.family]
        try:
            agg_id = handler(p)
        except InvalidEvidence as e:
            self.errors += e.errors
            return
        self._seen[p.client_id] = (p.content_hash, agg_id)
        self.outcomes.append(Outcome(p.client_id, p.type, RECORDED, agg_id, p.line))

    def _repeat(self, p: Posting, digest: str, agg_id: UUID) -> None:
        if digest != p.content_hash:
            self.conflicts.append(FieldError("client_id", p.client_id,
                                          "already recorded with different content (a conflict: "
                                          "post a correction with a new client_id instead)", p.line))
            return
        self.outcomes.append(Outcome(p.client_id, p.type, ALREADY_RECORDED, agg_id, p.line))

    def _evidence(self, p: Posting) -> UUID:
        if "urn" in p.data:
            self._provider_of(p.get("urn"), p).check_inspection(p)
        return self._add(Evidence.record(p, self.at)).id

    def _provider(self, p: Posting) -> UUID:
        urn = p.get("urn")
        if p.type == "provider_registered":
            if self._get(provider_id(urn)) is not None:
                raise InvalidEvidence([FieldError("urn", urn, "is already registered: post a correction to change its details", p.line)])
            provider = self._add(Provider.register(p, self.at))
        else:
            provider = self._provider_of(urn, p)
            verb = {"provider_closed": provider.close, "provider_restructured": provider.restructure,
                    "provider_no_children_on_roll": provider.mark_no_children_on_roll}[p.type]
            verb(p, self.at)
            self._collect(provider)
        self._add(ClientKey.reserve(p, provider.id, self.at))
        return provider.id

    def _follow_up(self, p: Posting) -> UUID:
        item = self._target_of(p)
        if p.type == "publication_date_supplied":
            item.supply_publication_date(p, self.at)
        elif p.type == "correction":
            item.correct(self._changes(item, p), p, self.at)
        else:
            item.withdraw(p, self.at)
        self._collect(item)
        self._add(ClientKey.reserve(p, item.id, self.at))
        return item.id

    def _assessment(self, p: Posting) -> UUID:
        la, year = p.get("la_code"), p.get("year")
        if p.type == "cutoff_exclusion":
            self._target_of(p)  # the inspection excluded must be one the ledger holds
        assessment = self._get(assessment_id(la, year)) or self._add(Assessment.open(la, year, self.at))
        assessment.record_step(p, self.at)
        self._collect(assessment)
        self._add(ClientKey.reserve(p, assessment.id, self.at))
        return assessment.id

    # --- helpers ------------------------------------------------------------

    def _changes(self, item: Item, p: Posting) -> dict[str, Any]:
        raw = p.get("changes")
        fixed = {"urn", "la_code"} if item.kind != "provider_registered" else {"urn"}
        errors = [FieldError("changes." + k, v, "cannot be corrected: withdraw the posting and post it again", p.line)
                  for k, v in raw.items() if k in fixed]
        changes, parse_errors = parse_fields(KINDS[item.kind], raw, p.line, partial=True, prefix="changes.")
        errors += parse_errors
        # parse_fields skips an empty optional value; a correction cannot clear a field
        # (it merges), so an empty value would record a correction that changes nothing.
        errors += [FieldError("changes." + k, v, "cannot be cleared by a correction: give the corrected value", p.line)
                   for k, v in raw.items() if (v is None or v == "") and k not in fixed
                   and not (KINDS[item.kind].spec(k) and KINDS[item.kind].spec(k).required)]
        la = changes.get("la_code")
        if la is not None and self.known_la_codes is not None and la not in self.known_la_codes:
            errors.append(FieldError("changes.la_code", la, "not one of the 152 local authorities of 2011", p.line))
        if not raw:
            errors.append(FieldError("changes", raw, "names no field to correct", p.line))
        if errors:
            raise InvalidEvidence(errors)
        return changes

    def _target_of(self, p: Posting) -> Item:
        if "urn" in p.data:
            return self._provider_of(p.get("urn"), p, field="urn")
        target = p.get("target")
        agg = self._get(key_id(target))
        if isinstance(agg, ClientKey) and agg.type == "provider_registered":
            agg = self._get(agg.aggregate_id)
        if not isinstance(agg, Item):
            reason = ("is not a posting the ledger holds" if agg is None
                      else "names a follow-up or assessment step, which cannot be corrected, withdrawn or given a date")
            raise InvalidEvidence([FieldError("target", target, reason, p.line)])
        return agg

    def _provider_of(self, urn: str, p: Posting, field: str = "urn") -> Provider:
        provider = self._get(provider_id(urn))
        if provider is None:
            raise InvalidEvidence([FieldError(field, urn, "is not a registered provider: post provider_registered first", p.line)])
        return provider

    def _get(self, agg_id: UUID) -> Any | None:
        if agg_id in self.staged:
            return self.staged[agg_id]
        agg = self.source.get(agg_id)
        if agg is not None:
            self.staged[agg_id] = agg
        return agg

    def _add(self, agg: Any) -> Any:
        self.staged[agg.id] = agg
        self._collect(agg)
        return agg

    def _collect(self, agg: Any) -> None:
        self.events.extend(agg.collect_events())
