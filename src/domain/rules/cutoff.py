"""Which evidence counts on a business date: the 2011 cut-off and its exceptions.

¶28: "Inspection findings in Block A of the August 2011 performance profile will
normally be the cut-off point", read (ADR 0010) as: an item counts when it
occurred on or before `as_at` and its report was published on or before
min(as_at, profile data date). Exceptions (¶28):

1. education establishments inspected in July 2011 count, published or not;
2. children's homes, fostering and adoption services inspected in July or August
   2011 "normally" count, published or not (an inspector may exclude one, ADR 0013);
3. evidence raising safeguarding concerns counts up to publication of the
   assessment, 8 November 2011 (scope: ADR 0015).

Providers (¶19, ¶20, Annex B): layer 1 holds open providers and, until their
successor is inspected, restructured predecessors; closed providers appear only
in the lower layers. Compliance checks of providers with no children on roll are
recorded satisfactory or inadequate (¶19).

The *exceptions list* is every item admitted under an exception (or ¶20) and
every item the cut-off excluded, each with the rule that decided it.
"""

from __future__ import annotations

from collections.abc import Container, Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from typing import TYPE_CHECKING, Any

from domain.framework import FrameworkSettings
from domain.rules.facts import (
    AuthorityEvidence,
    ComplaintFact,
    FullInspectionFact,
    IndicatorFact,
    InspectorNoteFact,
    JointAreaReviewFact,
    PrivateFosteringFact,
    ProviderFact,
    ProviderInspectionFact,
    PublishedGradeFact,
    SeriousCaseReviewFact,
    UnannouncedInspectionFact,
    to_jsonable,
)
from domain.vocabulary import GROUPS_BY_CODE, Grade

if TYPE_CHECKING:
    from domain.rules.timelines import Timelines

NOT_YET_OCCURRED = "cutoff.not_yet_occurred"

@dataclass(frozen=True)
class CutoffDecision:
    """Whether one item of evidence counts on `as_at`, and the rule that decided."""

    ref: str
    kind: str
    counts: bool
    rule_id: str
    paragraph: str
    reason: str
    exception: bool = False  # admitted under an exception of ¶28
    occurred_on: date | None = None
    published_on: date | None = None
    urn: str | None = None
    group: str | None = None
    grade_recorded_as: Grade | None = None  # ¶19 compliance checks

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


@dataclass(frozen=True)
class ProviderDecision:
    """Whether a provider's latest counted judgement stands in layer 1 (¶19-20, ¶27)."""

    urn: str
    group: str
    in_layer_one: bool
    rule_id: str
    paragraph: str
    reason: str
    exception: bool = False  # admitted under ¶20 (restructured provision)
    refs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


@dataclass(frozen=True)
class CutoffResult:
    year: int
    as_at: date
    # The decisions on Block B items, in order. Those on provider inspections (thousands an
    # authority) and on Block C figures are made when `decisions` (or `provider_inspections`)
    # is first read: layers 1-2, the proposal and the national table need only what counted.
    block_b_decisions: tuple[CutoffDecision, ...]
    providers: dict[str, ProviderFact]
    # Per group, the providers standing in layer 1 and their most recent counted inspection
    # (¶19-20, ¶27), from the facts' timelines (`domain.rules.timelines`). A provider's own
    # decision (`provider_decisions`, every provider) is made when first read. Read only, as
    # is `latest_counted`: the timelines give the same dictionaries to every date they fit.
    layer_one_by_group: dict[str, dict[str, ProviderInspectionFact]]
    unannounced_inspections: tuple[UnannouncedInspectionFact, ...]
    full_inspections: tuple[FullInspectionFact, ...]
    joint_area_reviews: tuple[JointAreaReviewFact, ...]
    serious_case_reviews: tuple[SeriousCaseReviewFact, ...]
    private_fostering: tuple[PrivateFosteringFact, ...]
    complaints: tuple[ComplaintFact, ...]
    indicators: tuple[IndicatorFact, ...]
    published_grades: tuple[PublishedGradeFact, ...]
    inspector_notes: tuple[InspectorNoteFact, ...]
    evidence: AuthorityEvidence = field(repr=False, compare=False, default=AuthorityEvidence(""))
    framework: FrameworkSettings | None = field(repr=False, compare=False, default=None)
    timelines: Timelines | None = field(repr=False, compare=False, default=None)

    @cached_property
    def latest_counted(self) -> dict[str, ProviderInspectionFact]:
        """Each provider's most recent counted inspection (¶27), ¶19-normalised."""
        assert self.timelines is not None
        return self.timelines.latest_counted(self.as_at)

    @cached_property
    def provider_decisions(self) -> tuple[ProviderDecision, ...]:
        """Every provider's layer 1 decision, by URN."""
        inspected = set(self.latest_counted)
        return tuple(decide_provider(p, self.providers, inspected, self.as_at)
                     for p in sorted(self.providers.values(), key=lambda p: p.urn))

    @cached_property
    def layer_one(self) -> dict[str, ProviderInspectionFact]:
        """The providers standing in layer 1 and their most recent counted inspection."""
        out: dict[str, ProviderInspectionFact] = {}
        for in_group in self.layer_one_by_group.values():
            out.update(in_group)
        return out

    @cached_property
    def _judged(self) -> tuple[tuple[CutoffDecision | tuple, ProviderInspectionFact | None], ...]:
        """Every provider inspection judged, in order (the rules the timelines follow)."""
        return tuple(judge_provider_inspection(i, self.providers, self.as_at, self.framework, self.inspector_notes)
                     for i in sorted(self.evidence.provider_inspections, key=_item_order))

    @cached_property
    def provider_inspections(self) -> tuple[ProviderInspectionFact, ...]:
        """Every counted provider inspection, ¶19-normalised, in order."""
        return tuple(counted for _, counted in self._judged if counted is not None)

    @cached_property
    def decisions(self) -> tuple[CutoffDecision, ...]:
        """Every item's decision: provider inspections, then Block B, then Block C."""
        return tuple(_as_decision(parts) for parts, _ in self._judged) + self.other_decisions

    @cached_property
    def other_decisions(self) -> tuple[CutoffDecision, ...]:
        """The decisions on Block B items, then on Block C figures (made when first read)."""
        assert self.framework is not None
        return self.block_b_decisions + tuple(decide_indicator(item, self.as_at, self.framework)
                                              for item in self.evidence.indicators_in_order)

    @cached_property
    def layer_one_urns(self) -> frozenset[str]:
        return frozenset(self.layer_one)

    @property
    def exceptions_list(self) -> tuple[CutoffDecision | ProviderDecision, ...]:
        """Every item admitted under an exception and every item the cut-off excluded.

        Also listed: compliance checks of providers with no children on roll that
        count, recorded as satisfactory or inadequate (¶19), and restructured
        provision counted through its predecessor (¶20). Evidence that had not yet
        happened on `as_at` is not a cut-off exclusion: it is simply in the view's
        future, and is left out of the list."""
        items: list[CutoffDecision | ProviderDecision] = [
            d for d in self.decisions
            if d.exception or (not d.counts and d.rule_id != NOT_YET_OCCURRED)
            or (d.counts and d.grade_recorded_as is not None)  # ¶19: no children on roll
        ]
        items += [p for p in self.provider_decisions if p.exception]
        return tuple(items)

    def decision_for(self, ref: str) -> CutoffDecision:
        for d in self.decisions:
            if d.ref == ref:
                return d
        raise KeyError(ref)

    def to_dict(self) -> dict[str, Any]:
        return {
            "year": self.year,
            "as_at": self.as_at.isoformat(),
            "decisions": [d.to_dict() for d in self.decisions],
            "provider_decisions": [p.to_dict() for p in self.provider_decisions],
            "exceptions_list": [e.to_dict() for e in self.exceptions_list],
        }


# --------------------------------------------------------------------------- timing


@dataclass(frozen=True)
class _Verdict:
    counts: bool
    rule_id: str
    paragraph: str
    reason: str | tuple  # a text, or (format, *arguments) formatted when a decision is built
    exception: bool = False

    @property
    def text(self) -> str:
        return self.reason if isinstance(self.reason, str) else self.reason[0].format(*self.reason[1:])


def normal_cutoff_verdict(
    occurred_on: date, published_on: date | None, as_at: date, data_date: date
) -> _Verdict:
    """¶28 normal rule (ADR 0010): occurred by as_at, published by min(as_at, data date)."""
    if occurred_on > as_at:
        return _Verdict(False, NOT_YET_OCCURRED, "¶28", ("occurred {} after as_at {}", occurred_on, as_at))
    if published_on is None:
        return _UNPUBLISHED
    if published_on > as_at:
        return _Verdict(False, "cutoff.not_yet_published", "¶28", ("published {}, after as_at {}", published_on, as_at))
    if published_on > data_date:
        return _Verdict(
            False,
            "cutoff.published_after_data_date",
            "¶28",
            ("published {}, after the profile data date {}", published_on, data_date),
        )
    return _Verdict(True, "cutoff.published_by_data_date", "¶28", ("published {} by {}", published_on, data_date))


_UNPUBLISHED = _Verdict(False, "cutoff.unpublished", "¶28", "report not published")


def occurred_within(window: tuple[date, date] | None, occurred_on: date) -> bool:
    return window is not None and window[0] <= occurred_on <= window[1]


def education_exception_verdict(
    group: str, occurred_on: date, as_at: date, framework: FrameworkSettings
) -> _Verdict | None:
    """¶28 exception 1: education establishments inspected in July 2011, published or not."""
    if group in framework.education_groups and occurred_within(framework.education_exception, occurred_on):
        if occurred_on <= as_at:
            return _Verdict(
                True,
                "cutoff.exception1_education_july",
                "¶28 (exception 1)",
                f"education establishment inspected {occurred_on}, counts whether or not published",
                exception=True,
            )
    return None


def care_exception_verdict(
    ref: str,
    group: str,
    occurred_on: date,
    as_at: date,
    framework: FrameworkSettings,
    notes: Iterable[InspectorNoteFact],
) -> _Verdict | None:
    """¶28 exception 2: children's homes, fostering, adoption inspected July-August 2011
    "normally" count; an inspector's recorded exclusion (ADR 0013) removes one."""
    if group not in framework.care_groups or not occurred_within(framework.care_exception, occurred_on):
        return None
    if occurred_on > as_at:
        return None
    for note in notes:
        if note.kind == "cutoff_exclusion" and note.target_ref == ref and note.noted_on <= as_at:
            return _Verdict(
                False,
                "cutoff.exception2_excluded_by_inspector",
                "¶28 (exception 2, 'normally')",
                f"excluded by inspector ({note.ref}): {note.reason}",
            )
    return _Verdict(
        True,
        "cutoff.exception2_care_july_august",
        "¶28 (exception 2)",
        f"children's home/fostering/adoption inspected {occurred_on}, counts whether or not published",
        exception=True,
    )


def safeguarding_concern_verdict(
    occurred_on: date, as_at: date, framework: FrameworkSettings, concern: str
) -> _Verdict | None:
    """¶28 exception 3 (ADR 0015): safeguarding concerns count up to publication."""
    until = framework.safeguarding_concern_until
    if until is None or occurred_on > min(as_at, until):
        return None
    return _Verdict(
        True,
        "cutoff.exception3_safeguarding_concern",
        "¶28 (exception 3)",
        f"{concern}; counts up to publication {until}, published or not",
        exception=True,
    )


# ------------------------------------------------------------------ per kind of item


def _decision(kind: str, ref: str, verdict: _Verdict, occurred_on, published_on, **extra) -> CutoffDecision:
    return CutoffDecision(
        ref=ref,
        kind=kind,
        counts=verdict.counts,
        rule_id=verdict.rule_id,
        paragraph=verdict.paragraph,
        reason=verdict.text,
        exception=verdict.exception,
        occurred_on=occurred_on,
        published_on=published_on,
        **extra,
    )


def recorded_grade_of_compliance_check(grade: Grade) -> Grade:
    """¶19: a compliance check is recorded satisfactory (compliant) or inadequate."""
    return Grade.INADEQUATE if grade is Grade.INADEQUATE else Grade.SATISFACTORY


def judge_provider_inspection(
    inspection: ProviderInspectionFact,
    providers: dict[str, ProviderFact],
    as_at: date,
    framework: FrameworkSettings,
    notes: tuple[InspectorNoteFact, ...],
) -> tuple[CutoffDecision | tuple, ProviderInspectionFact | None]:
    """Block A item: normal rule, then exceptions 1 and 2 for what the normal rule excludes.
    Returns the decision (or the arguments of one, see `CutoffResult.decision_parts`) and the
    inspection as counted (None if it does not count)."""
    provider = providers.get(inspection.urn)
    if provider is None or provider.group not in GROUPS_BY_CODE:
        verdict = _Verdict(
            False, "cutoff.provider_not_registered", "¶18", f"no provider {inspection.urn} in this authority's groups"
        )
        return _decision("provider_inspection", inspection.ref, verdict, inspection.occurred_on,
                         inspection.published_on, urn=inspection.urn), None
    data_date = framework.require("profile_data_date")
    verdict = normal_cutoff_verdict(inspection.occurred_on, inspection.published_on, as_at, data_date)
    if not verdict.counts and verdict.rule_id != NOT_YET_OCCURRED:
        verdict = (
            education_exception_verdict(provider.group, inspection.occurred_on, as_at, framework)
            or care_exception_verdict(inspection.ref, provider.group, inspection.occurred_on, as_at, framework, notes)
            or verdict
        )
    counted = inspection
    recorded_as = None
    if inspection.compliance_check and framework.compliance_checks_recorded_as_satisfactory_or_inadequate:
        recorded_as = recorded_grade_of_compliance_check(inspection.overall_effectiveness)
        counted = replace(inspection, overall_effectiveness=recorded_as, staying_safe=None,
                          enjoying_and_achieving=None)
    parts = ("provider_inspection", inspection.ref, verdict, inspection.occurred_on, inspection.published_on,
             {"urn": inspection.urn, "group": provider.group, "grade_recorded_as": recorded_as})
    return parts, (counted if verdict.counts else None)


def decide_provider_inspection(
    inspection: ProviderInspectionFact,
    providers: dict[str, ProviderFact],
    as_at: date,
    framework: FrameworkSettings,
    notes: tuple[InspectorNoteFact, ...],
) -> tuple[CutoffDecision, ProviderInspectionFact | None]:
    """Block A item: its decision, and the inspection as counted (None if it does not count)."""
    parts, counted = judge_provider_inspection(inspection, providers, as_at, framework, notes)
    return _as_decision(parts), counted


def _as_decision(parts: CutoffDecision | tuple) -> CutoffDecision:
    return parts if isinstance(parts, CutoffDecision) else _decision(*parts[:5], **parts[5])


def raises_safeguarding_concern(item: Any, evidence: AuthorityEvidence) -> str | None:
    """ADR 0015: which Block B items raise safeguarding concerns under exception 3."""
    if isinstance(item, UnannouncedInspectionFact) and item.found_priority_action:
        return "unannounced inspection found area(s) for priority action"
    if isinstance(item, FullInspectionFact):
        if item.overall_effectiveness is Grade.INADEQUATE:
            return f"full inspection judged {item.service} inadequate"
        if item.reinspection and service_was_judged_inadequate_before(item, evidence.full_inspections):
            return f"re-inspection of {item.service}, previously judged inadequate"
    if isinstance(item, ComplaintFact) and item.safeguarding_concern:
        return "substantiated complaint raising safeguarding concerns"
    return None


def service_was_judged_inadequate_before(
    item: FullInspectionFact, full_inspections: Iterable[FullInspectionFact]
) -> bool:
    return any(
        f.service == item.service and f.occurred_on < item.occurred_on and f.overall_effectiveness is Grade.INADEQUATE
        for f in full_inspections
    )


def decide_block_b_item(kind: str, item: Any, evidence: AuthorityEvidence, as_at: date,
                        framework: FrameworkSettings) -> CutoffDecision:
    """Block B item: normal rule; exception 3 for safeguarding concerns; JAR and SCR windows."""
    data_date = framework.require("profile_data_date")
    if isinstance(item, JointAreaReviewFact) and framework.jar_after and item.occurred_on <= framework.jar_after:
        verdict = _Verdict(False, "cutoff.jar_before_window", "¶37, ¶14 note 1",
                           f"joint area review {item.occurred_on}, not after {framework.jar_after}")
        return _decision(kind, item.ref, verdict, item.occurred_on, item.published_on)
    if (isinstance(item, SeriousCaseReviewFact) and framework.scr_window_start
            and item.occurred_on < framework.scr_window_start):
        verdict = _Verdict(False, "cutoff.scr_before_window", "¶34, Annex A",
                           f"evaluated {item.occurred_on}, before {framework.scr_window_start}")
        return _decision(kind, item.ref, verdict, item.occurred_on, item.published_on)
    verdict = normal_cutoff_verdict(item.occurred_on, item.published_on, as_at, data_date)
    if not verdict.counts:
        concern = raises_safeguarding_concern(item, evidence)
        if concern:
            verdict = safeguarding_concern_verdict(item.occurred_on, as_at, framework, concern) or verdict
    return _decision(kind, item.ref, verdict, item.occurred_on, item.published_on)


def decide_indicator(item: IndicatorFact, as_at: date, framework: FrameworkSettings) -> CutoffDecision:
    """Block C (ADR 0016): published by min(as_at, the draft letter date)."""
    by = framework.require("block_c_published_by")
    if item.published_on is None:
        verdict = _Verdict(False, "cutoff.unpublished", "¶45-49", "figure not published")
    elif item.published_on > min(as_at, by):
        verdict = _Verdict(False, "cutoff.block_c_published_late", "¶12, ¶49",
                           f"published {item.published_on}, after {min(as_at, by)}")
    else:
        verdict = _Verdict(True, "cutoff.block_c_published", "¶12, ¶49",
                           f"published {item.published_on} by {min(as_at, by)}")
    return _decision("indicator", item.ref, verdict, item.occurred_on, item.published_on)


# ------------------------------------------------------------------------ providers


def successors_of(provider: ProviderFact, providers: dict[str, ProviderFact]) -> list[ProviderFact]:
    """The chain of successors of a restructured provider (¶20), without cycles."""
    chain: list[ProviderFact] = []
    seen = {provider.urn}
    urn = provider.successor_urn
    while urn and urn not in seen and urn in providers:
        seen.add(urn)
        chain.append(providers[urn])
        urn = providers[urn].successor_urn
    return chain


def provider_standing(provider: ProviderFact, providers: dict[str, ProviderFact], inspected: Container[str],
                      as_at: date, chain: list[ProviderFact] | None = None) -> tuple[bool, str, str, str | tuple, bool]:
    """Layer 1 membership: open providers; restructured predecessors until the successor is
    inspected (¶20); closed providers only in layers 3-4 (Annex B). Returns (in layer 1, rule,
    paragraph, reason — a text or (format, *arguments) —, admitted under ¶20). `chain`: the
    provider's successors, if already known."""
    if provider.group not in GROUPS_BY_CODE:
        return False, "provider.unknown_group", "¶18, Table 1", ("group {!r} is not in Table 1", provider.group), False
    if provider.opened_on is not None and provider.opened_on > as_at:
        return False, "provider.not_yet_open", "¶27", ("opens {}", provider.opened_on), False
    if provider.closed_on is None or provider.closed_on > as_at:
        if provider.urn in inspected:
            return True, "provider.open_inspected", "¶27", "open; latest counted inspection stands", False
        return False, "provider.not_inspected", "¶27", "open, no counted inspection", False
    if chain is None:
        chain = successors_of(provider, providers)
    if not chain:
        return (False, "provider.closed", "Annex B",
                ("closed {}; closed providers appear in layers 3-4 only", provider.closed_on), False)
    inspected_successors = [s.urn for s in chain if s.urn in inspected]
    if inspected_successors:
        return (False, "restructure.successor_inspected", "¶20",
                ("successor {} inspected; its judgement replaces this one", inspected_successors[0]), False)
    if provider.urn not in inspected:
        return False, "provider.not_inspected", "¶20", "restructured, no counted inspection", False
    return (True, "restructure.predecessor_counts", "¶20",
            ("restructured into {}, not yet inspected: predecessor's judgement counts", chain[-1].urn), True)


def decide_provider(provider: ProviderFact, providers: dict[str, ProviderFact], inspected: Container[str],
                    as_at: date) -> ProviderDecision:
    """Layer 1 membership (`provider_standing`), as a decision with its reason."""
    in_layer, rule_id, paragraph, reason, exception = provider_standing(provider, providers, inspected, as_at)
    text = reason if isinstance(reason, str) else reason[0].format(*reason[1:])
    return ProviderDecision(provider.urn, provider.group, in_layer, rule_id, paragraph, text, exception, provider.refs)


# ------------------------------------------------------------------------ the whole


def decide_cutoff(evidence: AuthorityEvidence, framework: FrameworkSettings, as_at: date) -> CutoffResult:
    """Decide, for every item of an authority's evidence, whether it counts on `as_at`."""
    # ¶19-20, ¶27: layer 1 from the facts' timelines, worked out once per facts and framework;
    # the decision on every provider inspection is made only when `decisions` is read.
    from domain.rules.timelines import timelines_for

    timelines = timelines_for(evidence, framework)
    notes = tuple(n for n in evidence.inspector_notes if n.noted_on <= as_at)
    decisions: list[CutoffDecision] = []

    def block_b(kind: str, items: Iterable[Any]) -> tuple[Any, ...]:
        kept = []
        for item in sorted(items, key=_item_order):
            decision = decide_block_b_item(kind, item, evidence, as_at, framework)
            decisions.append(decision)
            if decision.counts:
                kept.append(item)
        return tuple(kept)

    unannounced = block_b("unannounced_inspection", evidence.unannounced_inspections)
    full = block_b("full_inspection", evidence.full_inspections)
    jars = block_b("joint_area_review", evidence.joint_area_reviews)
    scrs = block_b("serious_case_review", evidence.serious_case_reviews)
    fostering = block_b("private_fostering", evidence.private_fostering)
    complaints = block_b("complaint", evidence.complaints)

    # Block C: the figures counted (as `decide_indicator` decides); their decisions when read.
    indicators: list[IndicatorFact] = []
    if evidence.indicators:
        by = min(as_at, framework.require("block_c_published_by"))
        indicators = [i for i in evidence.indicators_in_order if i.published_on is not None and i.published_on <= by]

    return CutoffResult(
        year=framework.year,
        as_at=as_at,
        block_b_decisions=tuple(decisions),
        providers=timelines.providers,
        layer_one_by_group=timelines.layer_one_by_group(as_at),
        unannounced_inspections=unannounced,
        full_inspections=full,
        joint_area_reviews=jars,
        serious_case_reviews=scrs,
        private_fostering=fostering,
        complaints=complaints,
        indicators=tuple(indicators),
        published_grades=tuple(g for g in evidence.published_grades if g.year < framework.year),
        inspector_notes=notes,
        evidence=evidence,
        framework=framework,
        timelines=timelines,
    )


def _item_order(item: Any) -> tuple:
    return (item.occurred_on, item.published_on or date.max, item.ref)
