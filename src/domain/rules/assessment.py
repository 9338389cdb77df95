"""The 2011 proposed grade (Annex E, ¶52-62), its caps, the ¶58 considerations and the trace.

The proposal is not the grade (¶52, ¶56-57): it is the lower of the Block A and
Block B grades after the caps, shown beside Block C and the considerations an
inspector must weigh. Every rule tested is in the trace, pass or fail, with the
figures it used, its paragraph and the refs of the events behind those figures.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from itertools import chain
from typing import Any

from domain.framework import FrameworkSettings
from domain.rules.cutoff import CutoffResult, decide_cutoff
from domain.rules.facts import AuthorityEvidence, FullInspectionFact, to_jsonable
from domain.rules.profile import (
    OUTCOME_AREAS,
    Profile,
    ProfileRow,
    band_for,
    build_profile_from,
    latest_full_inspection,
    percentage,
)
from domain.vocabulary import GROUPS_BY_CODE, AssessmentGrade, Grade

A = AssessmentGrade
SERVICES = ("safeguarding", "looked_after_children")


@dataclass(frozen=True)
class RuleResult:
    rule_id: str
    description: str
    paragraph: str
    passed: bool
    figures: dict[str, Any] = field(default_factory=dict)
    refs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        # `to_jsonable(self)`, field by field, without testing each of the refs' types (tens of
        # thousands in a large authority's trace, ~1 ms a proposal): they are the text of refs.
        return {"rule_id": self.rule_id, "description": self.description, "paragraph": self.paragraph,
                "passed": self.passed, "figures": to_jsonable(self.figures), "refs": list(self.refs)}


@dataclass(frozen=True)
class Cap:
    rule_id: str
    grade: AssessmentGrade
    paragraph: str
    reason: str
    refs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


@dataclass(frozen=True)
class Consideration:
    code: str
    description: str
    paragraph: str
    figures: dict[str, Any] = field(default_factory=dict)
    refs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return to_jsonable(self)


@dataclass(frozen=True)
class Proposal:
    year: int
    la_code: str
    as_at: date
    block_a: AssessmentGrade
    block_b: AssessmentGrade
    block_c: AssessmentGrade | None
    caps: tuple[Cap, ...]
    grade: AssessmentGrade
    considerations: tuple[Consideration, ...]
    trace: tuple[RuleResult, ...]

    def rule(self, rule_id: str) -> RuleResult:
        return next(r for r in self.trace if r.rule_id == rule_id)

    def considerations_of(self, code: str) -> tuple[Consideration, ...]:
        return tuple(c for c in self.considerations if c.code == code)

    def to_dict(self) -> dict[str, Any]:
        def grade(g: AssessmentGrade | None) -> dict[str, Any] | None:
            return None if g is None else {"value": g.value, "label": g.label}

        return {
            "year": self.year,
            "la_code": self.la_code,
            "as_at": self.as_at.isoformat(),
            "block_a": grade(self.block_a),
            "block_b": grade(self.block_b),
            "block_c": grade(self.block_c),
            "caps": [c.to_dict() for c in self.caps],
            "grade": grade(self.grade),
            "considerations": [c.to_dict() for c in self.considerations],
            "trace": [r.to_dict() for r in self.trace],
        }


def refs_of(rows: Iterable[ProfileRow]) -> tuple[str, ...]:
    """Every ref of the rows, once each, sorted."""
    refs = list(chain.from_iterable(row.refs for row in rows))
    distinct = set(refs)
    # Each row's refs are sorted: sorting their concatenation only merges them.
    return tuple(sorted(refs) if len(distinct) == len(refs) else sorted(distinct))


def pct_figure(value: Fraction | None) -> str | None:
    return None if value is None else f"{float(value):.2f}"


# ================================================================== Block A


def share_of_groups_in_top_two(rows: Iterable[ProfileRow]) -> tuple[int, int, Fraction | None]:
    """Annex E outcome areas: of the groups with judgements, how many are in the top two bands."""
    judged = [r for r in rows if r.number_inspected > 0]
    top = sum(1 for r in judged if r.in_top_two)
    return top, len(judged), percentage(top, len(judged))


def assess_block_a(profile: Profile, framework: FrameworkSettings) -> tuple[AssessmentGrade, list[RuleResult]]:
    """Annex E Block A: the highest grade whose minimum requirements all hold."""
    trace: list[RuleResult] = []
    present = profile.present_super_groups
    n = len(present)
    universal = [r for r in present if r.code in framework.universal_super_groups]
    u = len(universal)
    top_two = [r for r in present if r.in_top_two]
    universal_top_two = [r for r in universal if r.in_top_two]
    red = [r for r in present if r.band is not None and r.band.value == "red"]
    all_refs = refs_of(present)

    trace.append(RuleResult(
        "A.super_groups_present",
        f"¶59: {n} of {framework.super_groups_total} super groups have inspected providers; "
        f"'k of {framework.super_groups_total}' reads {framework.missing_super_group_reading} of the n present "
        f"and '2 of {framework.universal_total} universal' reads ceil(2*u/{framework.universal_total}) (ADR 0012)",
        "¶59", n == framework.super_groups_total,
        {"present": [r.code for r in present], "n": n, "universal_present": u,
         "missing": [r.code for r in profile.super_groups if r.number_inspected == 0]},
        all_refs,
    ))
    if n == 0:
        trace.append(RuleResult(
            "A.assessable",
            "no super group has an inspected provider: no minimum requirement can be shown, so Block A "
            "is 'performs poorly' (ADR 0012)", "¶59, Annex E", False, {"n": 0}))
        return A.POORLY, trace

    outcome = {area: share_of_groups_in_top_two(profile.outcome_areas[area]) for area in OUTCOME_AREAS}
    outcome_refs = {area: refs_of(profile.outcome_areas[area]) for area in OUTCOME_AREAS}
    universal_refs = refs_of(universal)
    required_top_two = dict(framework.top_two_required)
    required_universal = dict(framework.universal_top_two_required)
    passed_grades: list[AssessmentGrade] = []
    for grade in (A.EXCELLENTLY, A.WELL, A.ADEQUATELY):
        name = grade.name.lower()
        checks: list[bool] = []
        k = required_top_two[grade]
        need = framework.scaled_requirement(k, n, framework.super_groups_total)
        ok = len(top_two) >= need
        checks.append(ok)
        trace.append(RuleResult(
            f"A.{name}.super_groups_top_two",
            f"at least {k} of {framework.super_groups_total} super groups in the top two bands "
            f"(scaled: {need} of {n} present)",
            "Annex E, Table 2, ¶59", ok,
            {"in_top_two": len(top_two), "required": need, "k": k, "n": n,
             "super_groups_in_top_two": [r.code for r in top_two],
             "bands": {r.code: r.band.value for r in present if r.band}},
            all_refs,
        ))
        if grade is A.EXCELLENTLY:
            ok = not red
            checks.append(ok)
            trace.append(RuleResult(
                "A.excellently.none_red", "no super group in the red band", "Annex E", ok,
                {"red": [r.code for r in red]}, refs_of(red),
            ))
        if grade in required_universal:
            k_u = required_universal[grade]
            need_u = framework.scaled_requirement(k_u, u, framework.universal_total)
            ok = len(universal_top_two) >= need_u
            checks.append(ok)
            trace.append(RuleResult(
                f"A.{name}.universal_top_two",
                f"at least {k_u} of the {framework.universal_total} universal super groups in the top two bands "
                f"(scaled: {need_u} of {u} present)",
                "Annex E note 9, ¶22, ¶59", ok,
                {"in_top_two": len(universal_top_two), "required": need_u, "universal_present": u,
                 "universal_in_top_two": [r.code for r in universal_top_two]},
                universal_refs,
            ))
        for area in OUTCOME_AREAS:
            top, judged, share = outcome[area]
            need_share = framework.majority_needed_for(grade)
            ok = share is not None and share >= need_share
            checks.append(ok)
            trace.append(RuleResult(
                f"A.{name}.outcome.{area}",
                f"a {framework.majority_word(need_share)} (>= {need_share}%) of groups in the top two bands "
                f"for {area.replace('_', ' ')} (ADR 0012: of the groups with judgements)",
                "Annex E, ¶53", ok,
                {"groups_in_top_two": top, "groups_judged": judged, "share": pct_figure(share),
                 "required_share": str(need_share)},
                outcome_refs[area],
            ))
        if all(checks):
            passed_grades.append(grade)

    universal_not_top = [r.code for r in universal if not r.in_top_two]
    trace.append(RuleResult(
        "A.poorly.descriptors",
        "Annex E 'performs poorly' descriptors (informational): no more than 2 of 7 in the top two bands; "
        "3 of 4 universal not better than adequate; 2 or more red",
        "Annex E", len(top_two) <= framework.scaled_requirement(2, n, framework.super_groups_total),
        {"in_top_two": len(top_two), "universal_not_in_top_two": universal_not_top, "red": len(red)},
        all_refs,
    ))
    return (max(passed_grades) if passed_grades else A.POORLY), trace


# ================================================================== Block B


def full_inspection_figures(f: FullInspectionFact | None) -> dict[str, Any] | None:
    if f is None:
        return None
    return {"ref": f.ref, "occurred_on": f.occurred_on, "overall_effectiveness": f.overall_effectiveness,
            "reinspection": f.reinspection}


def earlier_inadequate(latest: FullInspectionFact, full: Iterable[FullInspectionFact]) -> FullInspectionFact | None:
    earlier = [f for f in full if f.service == latest.service and f.occurred_on < latest.occurred_on
               and f.overall_effectiveness is Grade.INADEQUATE]
    return max(earlier, key=lambda f: (f.occurred_on, f.ref)) if earlier else None


def assess_block_b(cutoff: CutoffResult, framework: FrameworkSettings
                   ) -> tuple[AssessmentGrade, list[RuleResult], list[Cap]]:
    """Annex E Block B with ¶35-40: priority action, full inspections, JAR, re-inspection."""
    trace: list[RuleResult] = []
    unannounced = max(cutoff.unannounced_inspections, key=lambda u: (u.occurred_on, u.ref), default=None)
    latest = {s: latest_full_inspection(cutoff.full_inspections, s) for s in SERVICES}
    judged = [f for f in latest.values() if f is not None]
    jar = max(cutoff.joint_area_reviews, key=lambda j: (j.occurred_on, j.ref), default=None)

    # ¶35-36: priority action, unless a later full inspection of safeguarding overrides it (ADR 0014)
    overriding = latest["safeguarding"]
    overridden = bool(unannounced and overriding and overriding.occurred_on > unannounced.occurred_on)
    priority = bool(unannounced and unannounced.found_priority_action)
    no_priority_action = not priority or overridden
    trace.append(RuleResult(
        "B.no_priority_action",
        "the most recent unannounced inspection found no area for priority action, "
        "or a later full inspection of safeguarding overrides its findings (¶36)",
        "¶35, ¶36, Annex E", no_priority_action,
        {"unannounced_on": unannounced.occurred_on if unannounced else None,
         "priority_actions": list(unannounced.priority_actions) if unannounced else [],
         "overridden_by": overriding.ref if overridden else None},
        tuple(r for r in ((unannounced.ref if unannounced else None), (overriding.ref if overridden else None)) if r),
    ))

    inadequate = [f for f in judged if f.overall_effectiveness is Grade.INADEQUATE]
    trace.append(RuleResult(
        "B.no_inadequate_full_inspection",
        "the latest full inspection (or re-inspection) of neither safeguarding nor looked after children "
        "judged the service inadequate",
        "¶36, ¶39, Annex E", not inadequate,
        {s: full_inspection_figures(f) for s, f in latest.items()},
        tuple(sorted(f.ref for f in judged)),
    ))

    after_inadequate = [
        (f, u) for f in inadequate for u in cutoff.unannounced_inspections if u.occurred_on > f.occurred_on
    ]
    trace.append(RuleResult(
        "B.inadequate_not_followed_by_unannounced",
        "an inadequate full inspection followed by an unannounced inspection keeps 'performs poorly' "
        "until re-inspection judges the service at least adequate",
        "¶40", not after_inadequate,
        {"pairs": [{"inadequate": f.ref, "unannounced": u.ref} for f, u in after_inadequate]},
        tuple(sorted({r for f, u in after_inadequate for r in (f.ref, u.ref)})),
    ))

    jar_stands_in = not judged and jar is not None
    jar_grades = [g for g in ((jar.safeguarding, jar.looked_after_children) if jar else ()) if g is not None]
    jar_ok = not (jar_stands_in and any(g is Grade.INADEQUATE for g in jar_grades))
    trace.append(RuleResult(
        "B.jar_not_inadequate",
        "where no full inspection has taken place, the joint area review after 1 April 2007 stands in "
        "and must not be inadequate",
        "¶37, ¶14 note 1, Annex E note 6", jar_ok,
        {"jar_stands_in": jar_stands_in, "jar_on": jar.occurred_on if jar else None,
         "grades": list(jar_grades) if jar_stands_in else []},
        (jar.ref,) if jar_stands_in and jar else (),
    ))

    standing = judged if judged else ([jar] if jar else [])
    standing_grades = [f.overall_effectiveness for f in judged] if judged else jar_grades
    for grade, threshold in ((A.EXCELLENTLY, Grade.GOOD), (A.WELL, Grade.SATISFACTORY)):
        ok = all(g.rank >= threshold.rank for g in standing_grades)
        trace.append(RuleResult(
            f"B.{grade.name.lower()}.overall_effectiveness",
            f"where a full inspection (or post-April 2007 JAR) has taken place, its overall effectiveness "
            f"judgements are {'good' if threshold is Grade.GOOD else 'adequate'} or better"
            + ("" if standing_grades else " (none has taken place: not applicable)"),
            "¶36, ¶37, Annex E", ok,
            {"judgements": [g.value for g in standing_grades], "source": "full" if judged else
             ("jar" if jar else None)},
            tuple(x.ref for x in standing),
        ))

    poorly = not (no_priority_action and not inadequate and not after_inadequate and jar_ok)
    if poorly:
        grade = A.POORLY
    elif all(g.rank >= Grade.GOOD.rank for g in standing_grades):
        grade = A.EXCELLENTLY
    else:
        grade = A.WELL  # Annex E asks the same of well and adequately
    caps = reinspection_caps(latest, cutoff, framework, trace)
    return grade, trace, caps


def reinspection_caps(latest: dict[str, FullInspectionFact | None], cutoff: CutoffResult,
                      framework: FrameworkSettings, trace: list[RuleResult]) -> list[Cap]:
    """¶39: an adequate or good re-inspection overrides the earlier inadequate judgement, but
    the grade rises at most one step from last year's unless sustained improvement is recorded."""
    caps: list[Cap] = []
    previous = next((g for g in cutoff.published_grades if g.year == framework.year - 1), None)
    sustained = [n for n in cutoff.inspector_notes if n.kind == "sustained_improvement"]
    for service, f in latest.items():
        if f is None or f.overall_effectiveness is Grade.INADEQUATE:
            continue
        before = earlier_inadequate(f, cutoff.full_inspections)
        if before is None:
            continue
        if sustained:
            trace.append(RuleResult(
                f"B.reinspection_one_step.{service}",
                "re-inspection overrides the earlier inadequate judgement; sustained improvement in "
                "safeguarding is recorded, so no one-step cap", "¶39, Annex E", True,
                {"reinspection": f.ref, "earlier_inadequate": before.ref,
                 "previous_grade": previous.grade.value if previous else None},
                tuple(r for r in (f.ref, before.ref, sustained[-1].ref) if r),
            ))
            continue
        if previous is not None:
            cap_grade = A(min(previous.grade.value + framework.max_steps_up_after_reinspection, A.EXCELLENTLY))
            why = f"last year's grade was {previous.grade.label}"
        else:
            cap_grade = A(A.POORLY.value + framework.max_steps_up_after_reinspection)
            why = "last year's grade is not recorded; a re-inspection after inadequate reads as from poorly (ADR 0014)"
        refs = tuple(r for r in (f.ref, before.ref, previous.ref if previous else None) if r)
        trace.append(RuleResult(
            f"B.reinspection_one_step.{service}",
            f"re-inspection judged {service} {f.overall_effectiveness.value}, overriding the earlier inadequate; "
            f"without recorded sustained improvement the grade rises at most "
            f"{framework.max_steps_up_after_reinspection} step: capped at {cap_grade.label}",
            "¶39, Annex E", False,
            {"reinspection": f.ref, "earlier_inadequate": before.ref,
             "previous_grade": previous.grade.value if previous else None, "cap": cap_grade.value},
            refs,
        ))
        caps.append(Cap(f"B.reinspection_one_step.{service}", cap_grade, "¶39",
                        f"re-inspection after inadequate {service}; {why}", refs))
    return caps


# ================================================================== Block C


def assess_block_c(profile: Profile, framework: FrameworkSettings
                   ) -> tuple[AssessmentGrade | None, list[RuleResult]]:
    """Annex E Block C (supplements only, ¶53): share of banded indicators at least in line
    with their comparator/s, and gaps narrowed or a like share of attainment indicators in line."""
    trace: list[RuleResult] = []
    banded = [r for r in profile.block_c if r.banded]
    if not banded:
        trace.append(RuleResult("C.assessable", "Block C needs at least one banded indicator", "¶46-48, Annex C",
                                False, {"banded": 0}))
        return None, trace
    in_line = [r for r in banded if r.at_least_in_line]
    share = percentage(len(in_line), len(banded))
    attainment = [r for r in banded if r.attainment]
    attainment_share = percentage(sum(1 for r in attainment if r.at_least_in_line), len(attainment))
    gaps = [r for r in profile.block_c if r.gap and r.one_year_improvement is not None]
    gaps_narrowed = bool(gaps) and all(r.one_year_improvement > 0 for r in gaps)
    refs = tuple(sorted({ref for r in profile.block_c for ref in r.refs}))
    trace.append(RuleResult(
        "C.gaps_narrowed",
        "gaps in attainment for key vulnerable groups narrowed between the most recent and previous "
        "years (ADR 0016: every gap indicator with two periods narrowed)",
        "Annex E note 7, ¶55", gaps_narrowed,
        {"gap_indicators": {r.indicator: pct_figure(r.one_year_improvement) for r in gaps}}, refs,
    ))
    passed: list[AssessmentGrade] = []
    for grade in (A.EXCELLENTLY, A.WELL, A.ADEQUATELY):
        need = framework.majority_needed_for(grade)
        ok = share >= need and (gaps_narrowed or (attainment_share is not None and attainment_share >= need))
        trace.append(RuleResult(
            f"C.{grade.name.lower()}",
            f"a {framework.majority_word(need)} of banded indicators at least in line with their comparator/s, "
            f"and gaps narrowed or a {framework.majority_word(need)} of attainment indicators in line",
            "Annex E, ¶46-48, ¶53", ok,
            {"in_line": len(in_line), "banded": len(banded), "share": pct_figure(share),
             "attainment_share": pct_figure(attainment_share), "gaps_narrowed": gaps_narrowed,
             "required_share": str(need)},
            refs,
        ))
        if ok:
            passed.append(grade)
    return (max(passed) if passed else A.POORLY), trace


# ================================================================== considerations, ¶58


def band_proximity(profile: Profile, framework: FrameworkSettings) -> list[Consideration]:
    """¶58: % good or better within the margin (2 points) of an adjacent band's cut-off."""
    found = []
    for level, rows in (("super_group", profile.super_groups), ("group", profile.groups)):
        for row in rows:
            pct = row.pct_good_or_better
            if pct is None:
                continue
            for cut in framework.band_cut_offs:
                if abs(pct - cut) <= framework.band_proximity_margin:
                    found.append(Consideration(
                        "band_proximity",
                        f"{row.label}: {float(pct):.1f}% good or better is within "
                        f"{framework.band_proximity_margin} points of the {cut}% cut-off",
                        "¶58", {"level": level, "code": row.code, "pct": pct_figure(pct), "cut_off": str(cut),
                                "band": row.band.value if row.band else None}, row.refs,
                    ))
    return found


def vulnerable_inadequate(profile: Profile, framework: FrameworkSettings) -> list[Consideration]:
    """¶58: inadequate provision for vulnerable groups, such as pupil referral units."""
    cutoff = profile.cutoff
    if cutoff is not None and profile.latest_by_urn is cutoff.layer_one:  # only the vulnerable groups' providers
        candidates: Iterable[tuple[str, Any]] = [
            item for g in framework.vulnerable_groups for item in cutoff.layer_one_by_group.get(g, {}).items()]
    else:
        candidates = profile.latest_by_urn.items()
    hits = [
        i for urn, i in sorted(candidates)
        if i.overall_effectiveness is Grade.INADEQUATE and cutoff is not None
        and cutoff.providers[urn].group in framework.vulnerable_groups
    ]
    if not hits:
        return []
    groups = sorted({cutoff.providers[i.urn].group for i in hits})
    return [Consideration(
        "vulnerable_groups_inadequate",
        "inadequate provision for vulnerable groups: " + ", ".join(GROUPS_BY_CODE[g].label for g in groups),
        "¶58", {"providers": [i.urn for i in hits], "groups": groups}, tuple(i.ref for i in hits),
    )]


def high_not_good_share(profile: Profile, framework: FrameworkSettings) -> list[Consideration]:
    """¶58: the proportion of satisfactory and inadequate provision (ADR 0017: pooled > 35%)."""
    total = sum(r.counts.total for r in profile.super_groups)
    not_good = sum(r.counts.not_good for r in profile.super_groups)
    share = percentage(not_good, total)
    if share is None or share <= framework.high_not_good_share:
        return []
    return [Consideration(
        "high_satisfactory_inadequate_share",
        f"{float(share):.1f}% of inspected provision is satisfactory or inadequate",
        "¶58", {"not_good": not_good, "total": total, "share": pct_figure(share),
                "threshold": str(framework.high_not_good_share)},
        refs_of(profile.super_groups),
    )]


def attainment_trend(profile: Profile) -> list[Consideration]:
    """¶58: improvement or deterioration in educational standards (latest year on previous)."""
    moved = [r for r in profile.block_c if r.attainment and r.one_year_improvement]
    if not moved:
        return []
    return [Consideration(
        "attainment_trend",
        "educational attainment moved: "
        f"{sum(1 for r in moved if r.one_year_improvement > 0)} improved, "
        f"{sum(1 for r in moved if r.one_year_improvement < 0)} deteriorated",
        "¶58, ¶45, ¶54",
        {r.indicator: pct_figure(r.one_year_improvement) for r in moved},
        tuple(sorted({ref for r in moved for ref in r.refs})),
    )]


def safeguarding_findings(cutoff: CutoffResult) -> list[Consideration]:
    """¶58: detailed findings of the latest unannounced and full inspections."""
    found = []
    unannounced = max(cutoff.unannounced_inspections, key=lambda u: (u.occurred_on, u.ref), default=None)
    if unannounced is not None:
        found.append(Consideration(
            "latest_unannounced_findings",
            f"unannounced inspection {unannounced.occurred_on}: "
            + (f"{len(unannounced.priority_actions)} area(s) for priority action"
               if unannounced.found_priority_action else "no area for priority action"),
            "¶58, ¶35", {"priority_actions": list(unannounced.priority_actions)}, (unannounced.ref,),
        ))
    for service in SERVICES:
        f = latest_full_inspection(cutoff.full_inspections, service)
        if f is not None:
            found.append(Consideration(
                "latest_full_inspection_findings",
                f"{service.replace('_', ' ')} {'re-' if f.reinspection else ''}inspection {f.occurred_on}: "
                f"overall effectiveness {f.overall_effectiveness.value}",
                "¶58, ¶36, ¶39",
                {"service": service, "overall_effectiveness": f.overall_effectiveness,
                 "capacity_to_improve": f.capacity_to_improve, "sub_judgements": dict(f.sub_judgements),
                 "reinspection": f.reinspection},
                (f.ref,),
            ))
    return found


def early_years_no_children_on_roll(profile: Profile, framework: FrameworkSettings) -> list[Consideration]:
    """¶19: early years banding materially affected (ADR 0017: its band changes) by
    providers with no children on roll."""
    with_all = profile.super_group("early_years_childcare")
    without = profile.early_years_without_no_children_on_roll
    if with_all.counts == without.counts or with_all.band == without.band:
        return []
    excluded = sorted(set(with_all.refs) - set(without.refs))
    return [Consideration(
        "early_years_no_children_on_roll",
        f"early years and childcare band is {with_all.band.value if with_all.band else None} with providers "
        f"with no children on roll and {without.band.value if without.band else None} without: "
        "ask the authority to confirm those providers",
        "¶19", {"pct_with": pct_figure(with_all.pct_good_or_better),
                "pct_without": pct_figure(without.pct_good_or_better), "providers": len(excluded)},
        tuple(excluded),
    )]


def complaints_and_block_b_context(cutoff: CutoffResult) -> list[Consideration]:
    """¶17 substantiated complaints; ¶34 serious case reviews; private fostering."""
    found = []
    if cutoff.complaints:
        found.append(Consideration(
            "substantiated_complaints", f"{len(cutoff.complaints)} substantiated complaint(s) to weigh with Block B",
            "¶17, Annex D", {"summaries": [c.summary for c in cutoff.complaints]},
            tuple(c.ref for c in cutoff.complaints),
        ))
    poor_scrs = [s for s in cutoff.serious_case_reviews if not s.adequate_or_better]
    if poor_scrs:
        found.append(Consideration(
            "serious_case_reviews_inadequate",
            f"{len(poor_scrs)} of {len(cutoff.serious_case_reviews)} serious case reviews evaluated inadequate",
            "¶34", {"inadequate": len(poor_scrs), "total": len(cutoff.serious_case_reviews)},
            tuple(s.ref for s in poor_scrs),
        ))
    fostering = max(cutoff.private_fostering, key=lambda p: (p.occurred_on, p.ref), default=None)
    if fostering is not None and fostering.grade is Grade.INADEQUATE:
        found.append(Consideration("private_fostering_inadequate", "private fostering arrangements inadequate",
                                   "¶14, Annex A", {"occurred_on": fostering.occurred_on}, (fostering.ref,)))
    return found


def considerations_for(profile: Profile, cutoff: CutoffResult, framework: FrameworkSettings,
                       block_c: AssessmentGrade | None, proposal: AssessmentGrade) -> list[Consideration]:
    found = [
        *band_proximity(profile, framework),
        *vulnerable_inadequate(profile, framework),
        *high_not_good_share(profile, framework),
        *attainment_trend(profile),
        *safeguarding_findings(cutoff),
        *early_years_no_children_on_roll(profile, framework),
        *complaints_and_block_b_context(cutoff),
    ]
    if block_c is not None and block_c < proposal:
        found.append(Consideration(
            "block_c_points_lower", f"Block C points to {block_c.label}, below the proposal {proposal.label}",
            "¶53, Annex E", {"block_c": block_c.value, "proposal": proposal.value},
        ))
    if not profile.present_super_groups:
        found.append(Consideration("block_a_no_inspected_providers",
                                   "no inspected providers counted: Block A shows no minimum requirement",
                                   "¶59", {}))
    return found


# ================================================================== the proposal


def propose_grade_from(cutoff: CutoffResult, profile: Profile, framework: FrameworkSettings) -> Proposal:
    block_a, trace_a = assess_block_a(profile, framework)
    block_b, trace_b, caps = assess_block_b(cutoff, framework)
    block_c, trace_c = assess_block_c(profile, framework)
    base = min(block_a, block_b)
    grade = min([base, *(c.grade for c in caps)])
    trace = [*trace_a, *trace_b, *trace_c, RuleResult(
        "proposal.lower_of_a_and_b_after_caps",
        "the proposal is the lower of the Block A and Block B grades, after the caps; Block C only "
        "supplements (¶53) and the proposal is not the grade (¶56-57)",
        "Annex E, ¶52-57", True,
        {"block_a": block_a.value, "block_b": block_b.value,
         "caps": [c.grade.value for c in caps], "proposal": grade.value},
    )]
    considerations = considerations_for(profile, cutoff, framework, block_c, grade)
    return Proposal(
        year=framework.year, la_code=profile.la_code, as_at=cutoff.as_at,
        block_a=block_a, block_b=block_b, block_c=block_c, caps=tuple(caps), grade=grade,
        considerations=tuple(considerations), trace=tuple(trace),
    )


def propose_grade(evidence: AuthorityEvidence, framework: FrameworkSettings, as_at: date) -> Proposal:
    """The Annex E proposed grade of one authority as at a business date."""
    cutoff = decide_cutoff(evidence, framework, as_at)
    profile = build_profile_from(cutoff, framework, evidence.la_code)
    return propose_grade_from(cutoff, profile, framework)


__all__ = [
    "Cap",
    "Consideration",
    "Proposal",
    "RuleResult",
    "assess_block_a",
    "assess_block_b",
    "assess_block_c",
    "band_for",
    "propose_grade",
    "propose_grade_from",
]
