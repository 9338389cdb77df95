"""The facts the rules read, in domain words.

The caller (the projection) has already kept only what was *recorded* by the
`known_at` of the query, applied corrections and dropped withdrawn postings. The
rules deal only with business dates (`occurred_on`, `published_on`) and the
`as_at` date of the view.

Every fact carries `ref`: the id of the event behind it, which the trace cites.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime
from enum import Enum
from fractions import Fraction
from functools import cached_property
from typing import Any, Literal

from domain.vocabulary import AssessmentGrade, Grade

Service = Literal["safeguarding", "looked_after_children"]
Polarity = Literal["higher", "lower"]
NoteKind = Literal["sustained_improvement", "cutoff_exclusion"]


@dataclass(frozen=True)
class ProviderFact:
    """A provider (setting, service, institution) in one of the 22 groups (Table 1).

    `successor_urn`: the provider that replaced it on restructuring (¶20).
    `no_children_on_roll_from`: registered childcare with no children on roll (¶19).
    `refs`: the events that registered, opened, closed or restructured it.
    """

    urn: str
    la_code: str
    group: str
    name: str = ""
    opened_on: date | None = None
    closed_on: date | None = None
    successor_urn: str | None = None
    no_children_on_roll_from: date | None = None
    refs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProviderInspectionFact:
    """An inspection of a provider (Block A). `compliance_check`: ¶19 check of a
    provider with no children on roll, recorded satisfactory (compliant) or
    inadequate (not compliant)."""

    ref: str
    urn: str
    occurred_on: date
    published_on: date | None
    overall_effectiveness: Grade
    staying_safe: Grade | None = None
    enjoying_and_achieving: Grade | None = None
    framework: str | None = None  # e.g. "childrens_homes_2011" (¶30)
    compliance_check: bool = False


@dataclass(frozen=True)
class UnannouncedInspectionFact:
    """Unannounced inspection of contact, referral and assessment (¶35). Not graded."""

    ref: str
    occurred_on: date
    published_on: date | None
    priority_actions: tuple[str, ...] = ()

    @property
    def found_priority_action(self) -> bool:
        return len(self.priority_actions) > 0


@dataclass(frozen=True)
class FullInspectionFact:
    """Full inspection of safeguarding or of services for looked after children (¶36-40)."""

    ref: str
    service: Service
    occurred_on: date
    published_on: date | None
    overall_effectiveness: Grade
    capacity_to_improve: Grade | None = None
    sub_judgements: dict[str, Grade] = field(default_factory=dict, hash=False, compare=False)
    reinspection: bool = False


@dataclass(frozen=True)
class JointAreaReviewFact:
    """Joint area review (blocks 12-21); counts only after 1 April 2007 (¶14 note 1, ¶37)."""

    ref: str
    occurred_on: date
    published_on: date | None
    safeguarding: Grade
    looked_after_children: Grade | None = None


@dataclass(frozen=True)
class SeriousCaseReviewFact:
    """Ofsted's evaluation of a serious case review (¶34): adequate or better, or not."""

    ref: str
    occurred_on: date
    published_on: date | None
    adequate_or_better: bool


@dataclass(frozen=True)
class PrivateFosteringFact:
    ref: str
    occurred_on: date
    published_on: date | None
    grade: Grade


@dataclass(frozen=True)
class ComplaintFact:
    """A substantiated complaint or whistleblowing finding (¶17, Annex D).

    `substantiated_on` plays the part of a publication date for the cut-off.
    """

    ref: str
    occurred_on: date
    substantiated_on: date | None
    summary: str = ""
    safeguarding_concern: bool = False

    @property
    def published_on(self) -> date | None:
        return self.substantiated_on


@dataclass(frozen=True)
class IndicatorFact:
    """A published Block C value (¶46-48, Annex C). A comparator of None means the
    indicator is not compared with it; both None means 'not banded'."""

    ref: str
    indicator: str
    period: str
    occurred_on: date  # the end of the data period
    published_on: date | None
    value: Fraction | float | int
    similar_areas: Fraction | float | int | None = None
    national: Fraction | float | int | None = None
    polarity: Polarity = "higher"
    attainment: bool = False  # educational attainment and progress (Annex E note 8)
    gap: bool = False  # a 'closing the gap' indicator (¶55, Annex E note 7)

    @property
    def banded(self) -> bool:
        return self.similar_areas is not None or self.national is not None


@dataclass(frozen=True)
class PublishedGradeFact:
    """The published assessment grade of an earlier year (Annex A, ¶39)."""

    ref: str
    year: int
    grade: AssessmentGrade


@dataclass(frozen=True)
class InspectorNoteFact:
    """An inspector's recorded judgement that a rule asks for.

    - `sustained_improvement`: well-established, sustained improvement in
      safeguarding is clearly evidenced (¶39).
    - `cutoff_exclusion`: an inspection admissible under exception 2 of ¶28 is
      excluded ("normally"); `target_ref` names it and `reason` says why.
    """

    ref: str
    kind: NoteKind
    noted_on: date
    reason: str
    target_ref: str | None = None


@dataclass(frozen=True)
class AuthorityEvidence:
    """Everything recorded about one authority, as known at the query's known_at."""

    la_code: str
    providers: tuple[ProviderFact, ...] = ()
    provider_inspections: tuple[ProviderInspectionFact, ...] = ()
    unannounced_inspections: tuple[UnannouncedInspectionFact, ...] = ()
    full_inspections: tuple[FullInspectionFact, ...] = ()
    joint_area_reviews: tuple[JointAreaReviewFact, ...] = ()
    serious_case_reviews: tuple[SeriousCaseReviewFact, ...] = ()
    private_fostering: tuple[PrivateFosteringFact, ...] = ()
    complaints: tuple[ComplaintFact, ...] = ()
    indicators: tuple[IndicatorFact, ...] = ()
    published_grades: tuple[PublishedGradeFact, ...] = ()
    inspector_notes: tuple[InspectorNoteFact, ...] = ()

    @cached_property
    def inspections_newest_first(self) -> dict[str, tuple[ProviderInspectionFact, ...]]:
        """Each provider's inspections, the most recent first in ¶27's order (date, then
        publication, then ref). Built once for facts kept across many as-at dates."""
        by_urn: dict[str, list[ProviderInspectionFact]] = {i.urn: [] for i in self.provider_inspections}
        for i in sorted(self.provider_inspections, key=_newest_first, reverse=True):  # one sort, not one per provider
            by_urn[i.urn].append(i)
        return {urn: tuple(items) for urn, items in by_urn.items()}

    @cached_property
    def indicators_in_order(self) -> tuple[IndicatorFact, ...]:
        """The Block C figures in the cut-off's order (date, publication, ref)."""
        return tuple(sorted(self.indicators, key=lambda i: (i.occurred_on, i.published_on or date.max, i.ref)))

    @cached_property
    def providers_in_authority(self) -> dict[str, ProviderFact]:
        """The providers registered in this authority, by URN (the last registration of a URN
        stands). Built once; read only."""
        la_code = self.la_code
        return {p.urn: p for p in self.providers if p.la_code == la_code}

    @cached_property
    def rule_indexes(self) -> dict[Any, Any]:
        """What the rules work out once from these facts and keep with them, by framework
        (`domain.rules.timelines`)."""
        return {}


def _newest_first(i: ProviderInspectionFact) -> tuple[date, date, str]:
    """¶27's order of a provider's inspections, oldest first: date, then publication, then ref."""
    return (i.occurred_on, i.published_on or date.max, i.ref)


_PLAIN = frozenset({str, int, float, bool, type(None)})
_SEQUENCES = frozenset({list, tuple})
_TEXT = frozenset({str})
_ENUM, _DATE, _FRACTION, _DATACLASS, _DICT, _COLLECTION, _OTHER = range(7)
_KIND_OF: dict[type, int] = {}  # what to_jsonable does with a value, by its type
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _kind_of(t: type) -> int:
    """The branch of `to_jsonable` a value of type `t` takes (tested in this order)."""
    if issubclass(t, Enum):
        return _ENUM
    if issubclass(t, datetime | date):
        return _DATE
    if issubclass(t, Fraction):
        return _FRACTION
    if is_dataclass(t) and not issubclass(t, type):
        _FIELD_NAMES[t] = tuple(f.name for f in fields(t))
        return _DATACLASS
    if issubclass(t, dict):
        return _DICT
    if issubclass(t, list | tuple | set | frozenset):
        return _COLLECTION
    return _OTHER


def to_jsonable(value: Any) -> Any:
    """JSON-friendly form: dates ISO, enums by value, fractions as floats (2 dp
    kept exact elsewhere), dataclasses and mappings recursively."""
    t = type(value)
    if t in _PLAIN:
        return value
    kind = _KIND_OF.get(t)
    if kind is None:
        kind = _KIND_OF[t] = _kind_of(t)
    if kind == _ENUM:
        return value.value
    if kind == _DATE:
        return value.isoformat()
    if kind == _FRACTION:
        return round(float(value), 4)
    if kind == _DATACLASS:
        return {name: to_jsonable(getattr(value, name)) for name in _FIELD_NAMES[t]}
    if kind == _DICT:
        return {str(to_jsonable(k)): to_jsonable(v) for k, v in value.items()}
    if kind == _COLLECTION:
        if t in _SEQUENCES and set(map(type, value)) <= _TEXT:  # e.g. the refs of a rule
            return list(value)
        items = [to_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return value
