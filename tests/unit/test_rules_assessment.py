"""The Annex E proposal (¶35-40, ¶52-62): Block A, Block B, Block C, caps,
the ¶58 considerations and the trace, written from the guidance."""

import json
from datetime import date

import pytest

from domain.framework import framework_for
from domain.rules.assessment import propose_grade
from domain.rules.facts import (
    AuthorityEvidence,
    ComplaintFact,
    FullInspectionFact,
    IndicatorFact,
    InspectorNoteFact,
    JointAreaReviewFact,
    ProviderFact,
    ProviderInspectionFact,
    PublishedGradeFact,
    SeriousCaseReviewFact,
    UnannouncedInspectionFact,
)
from domain.vocabulary import AssessmentGrade as AG
from domain.vocabulary import Grade, groups_of

F = framework_for(2011)
LA = "201"
AS_AT = date(2011, 11, 8)
SUPER = ("early_years_childcare", "nursery_primary", "secondary", "post16",
         "special_prus", "fostering_adoption", "childrens_homes")
# % good or better of each band, as (good, satisfactory) out of 10 providers
DARK, LIGHT, AMBER, RED = (8, 2), (7, 3), (5, 5), (4, 6)


class Area:
    def __init__(self):
        self.providers: list[ProviderFact] = []
        self.inspections: list[ProviderInspectionFact] = []
        self.items: dict[str, list] = {}

    def provider(self, group, grade, ss=Grade.GOOD, ea=Grade.GOOD, **kw):
        urn = f"P{len(self.providers) + 1}"
        self.providers.append(ProviderFact(urn=urn, la_code=LA, group=group, **kw))
        self.inspections.append(ProviderInspectionFact(
            ref=f"I-{urn}", urn=urn, occurred_on=date(2010, 5, 1), published_on=date(2010, 6, 1),
            overall_effectiveness=grade, staying_safe=ss, enjoying_and_achieving=ea))
        return urn

    def super_group(self, code, mix, **kw):
        """Fill the first group of a super group with good and satisfactory providers."""
        group = groups_of(code)[0].code
        good, other = mix
        for _ in range(good):
            self.provider(group, Grade.GOOD, **kw)
        for _ in range(other):
            self.provider(group, Grade.SATISFACTORY, **kw)
        return self

    def bands(self, *mixes):
        for code, mix in zip(SUPER, mixes, strict=False):
            if mix is not None:
                self.super_group(code, mix)
        return self

    def add(self, kind, *facts):
        self.items.setdefault(kind, []).extend(facts)
        return self

    def propose(self, as_at=AS_AT):
        evidence = AuthorityEvidence(LA, providers=tuple(self.providers),
                                     provider_inspections=tuple(self.inspections),
                                     **{k: tuple(v) for k, v in self.items.items()})
        return propose_grade(evidence, F, as_at)


def all_dark():
    return Area().bands(*[DARK] * 7)


def full(ref, service="safeguarding", grade=Grade.GOOD, occurred=date(2010, 3, 1), reinspection=False):
    return FullInspectionFact(ref, service, occurred, occurred.replace(day=28), grade, reinspection=reinspection)


def both_good(occurred=date(2010, 3, 1)):
    return full("S", occurred=occurred), full("L", "looked_after_children", occurred=occurred)


def unannounced(ref, occurred, actions=()):
    return UnannouncedInspectionFact(ref, occurred, occurred.replace(day=28), tuple(actions))


# ================================================================== Block A


def test_seven_top_two_super_groups_and_outcomes_make_excellently():
    p = all_dark().propose()
    assert p.block_a is AG.EXCELLENTLY
    assert p.rule("A.excellently.super_groups_top_two").passed


def test_six_top_two_and_one_amber_is_still_excellently():
    assert Area().bands(DARK, DARK, DARK, DARK, LIGHT, LIGHT, AMBER).propose().block_a is AG.EXCELLENTLY


def test_excellently_fails_if_any_super_group_is_red():
    p = Area().bands(DARK, DARK, DARK, DARK, LIGHT, LIGHT, RED).propose()
    assert not p.rule("A.excellently.none_red").passed
    assert p.block_a is AG.WELL


def test_five_top_two_is_not_excellently():
    p = Area().bands(DARK, DARK, DARK, DARK, LIGHT, AMBER, AMBER).propose()
    assert not p.rule("A.excellently.super_groups_top_two").passed
    assert p.block_a is AG.WELL


def test_well_needs_four_top_two_including_two_universal():
    p = Area().bands(DARK, LIGHT, RED, RED, DARK, DARK, RED).propose()
    assert p.block_a is AG.WELL
    assert p.rule("A.well.universal_top_two").figures["in_top_two"] == 2


def test_four_top_two_with_one_universal_is_poorly():
    p = Area().bands(DARK, RED, RED, RED, DARK, DARK, DARK).propose()
    assert not p.rule("A.well.universal_top_two").passed
    assert not p.rule("A.adequately.universal_top_two").passed
    assert p.block_a is AG.POORLY


def test_three_top_two_including_two_universal_is_adequately():
    p = Area().bands(DARK, DARK, RED, RED, DARK, RED, RED).propose()
    assert p.block_a is AG.ADEQUATELY
    assert not p.rule("A.well.super_groups_top_two").passed


def test_two_top_two_is_poorly_and_the_poorly_descriptor_says_so():
    p = Area().bands(DARK, DARK, AMBER, AMBER, AMBER, RED, RED).propose()
    assert p.block_a is AG.POORLY
    assert p.rule("A.poorly.descriptors").passed


def staying_safe_area(top_groups: int, other_groups: int):
    """Seven dark-green super groups whose groups are top two for staying safe in `top_groups`."""
    area = Area()
    for n, code in enumerate(SUPER[: top_groups + other_groups]):
        ss = Grade.GOOD if n < top_groups else Grade.SATISFACTORY
        area.super_group(code, DARK, ss=ss)
    return area


@pytest.mark.parametrize(
    "top, other, expected",
    [(4, 1, AG.EXCELLENTLY),  # 80% of groups: very large majority
     (5, 2, AG.WELL),  # 71.4%: large majority
     (2, 1, AG.WELL),  # 66.7%
     (3, 2, AG.ADEQUATELY),  # 60%: majority
     (1, 1, AG.ADEQUATELY),  # 50%
     (3, 4, AG.POORLY)],  # 42.9%: minority
)
def test_outcome_area_majorities(top, other, expected):
    p = staying_safe_area(top, other).propose()
    assert p.block_a is expected


def test_outcome_area_rule_reports_its_figures_and_refs():
    p = staying_safe_area(4, 1).propose()
    r = p.rule("A.excellently.outcome.staying_safe")
    assert r.passed and r.figures["groups_in_top_two"] == 4 and r.figures["groups_judged"] == 5
    assert r.figures["share"] == "80.00"
    assert r.refs and all(ref.startswith("I-") for ref in r.refs)


# ------------------------------------------------------------------ missing super groups (¶59)


def test_five_super_groups_present_all_top_two_is_excellently():
    p = Area().bands(DARK, DARK, DARK, DARK, DARK, None, None).propose()
    assert p.block_a is AG.EXCELLENTLY
    r = p.rule("A.super_groups_present")
    assert not r.passed and r.figures["missing"] == ["fostering_adoption", "childrens_homes"]
    assert "ceil(k*n/7)" in r.description
    assert p.rule("A.excellently.super_groups_top_two").figures["required"] == 5


def test_six_present_needs_six_for_excellently():
    p = Area().bands(DARK, DARK, DARK, DARK, DARK, AMBER, None).propose()
    assert p.rule("A.excellently.super_groups_top_two").figures["required"] == 6
    assert p.block_a is AG.WELL


def test_five_present_needs_three_for_well():
    p = Area().bands(DARK, DARK, AMBER, AMBER, DARK, None, None).propose()
    assert p.rule("A.well.super_groups_top_two").figures["required"] == 3
    assert p.block_a is AG.WELL


def test_universal_requirement_scales_when_a_universal_super_group_is_missing():
    # post-16 missing: 3 universal present, "2 of 4" reads ceil(2*3/4) = 2
    p = Area().bands(DARK, DARK, RED, None, DARK, DARK, DARK).propose()
    assert p.rule("A.well.universal_top_two").figures["required"] == 2
    assert p.block_a is AG.WELL


def test_only_one_universal_present_needs_one():
    p = Area().bands(DARK, None, None, None, DARK, DARK, RED).propose()
    assert p.rule("A.adequately.universal_top_two").figures["required"] == 1


def test_no_inspected_provider_shows_no_minimum_requirement():
    p = Area().add("full_inspections", *both_good()).propose()
    assert p.block_a is AG.POORLY
    assert not p.rule("A.assessable").passed
    assert p.considerations_of("block_a_no_inspected_providers")


# ================================================================== Block B


def test_priority_action_in_the_latest_unannounced_inspection_is_poorly():
    p = all_dark().add("full_inspections", *both_good()).add(
        "unannounced_inspections", unannounced("U1", date(2011, 5, 2), ["referrals unassessed"])).propose()
    assert p.block_b is AG.POORLY and p.grade is AG.POORLY
    r = p.rule("B.no_priority_action")
    assert not r.passed and r.refs == ("U1",)


def test_only_the_most_recent_unannounced_inspection_decides():
    p = all_dark().add("full_inspections", *both_good()).add(
        "unannounced_inspections", unannounced("U1", date(2010, 5, 2), ["x"]), unannounced("U2", date(2011, 5, 2))
    ).propose()
    assert p.rule("B.no_priority_action").passed
    assert p.block_b is AG.EXCELLENTLY


def test_a_full_inspection_overrides_a_previous_unannounced_inspection():
    p = all_dark().add("unannounced_inspections", unannounced("U1", date(2010, 5, 2), ["x"])).add(
        "full_inspections", *both_good(date(2010, 11, 1))).propose()
    r = p.rule("B.no_priority_action")
    assert r.passed and r.figures["overridden_by"] == "S"
    assert p.block_b is AG.EXCELLENTLY


def test_a_full_inspection_does_not_override_a_later_unannounced_inspection():
    p = all_dark().add("full_inspections", *both_good(date(2010, 3, 1))).add(
        "unannounced_inspections", unannounced("U1", date(2010, 5, 2), ["x"])).propose()
    assert p.block_b is AG.POORLY


@pytest.mark.parametrize("service", ["safeguarding", "looked_after_children"])
def test_an_inadequate_full_inspection_of_either_service_is_poorly(service):
    other = "looked_after_children" if service == "safeguarding" else "safeguarding"
    p = all_dark().add("full_inspections", full("X", service, Grade.INADEQUATE), full("Y", other)).propose()
    assert p.block_b is AG.POORLY
    assert p.rule("B.no_inadequate_full_inspection").refs == ("X", "Y")


def test_adequate_full_inspection_rules_out_excellently_but_not_well():
    p = all_dark().add("full_inspections", full("S", grade=Grade.SATISFACTORY),
                       full("L", "looked_after_children")).propose()
    assert not p.rule("B.excellently.overall_effectiveness").passed
    assert p.rule("B.well.overall_effectiveness").passed
    assert p.block_b is AG.WELL and p.grade is AG.WELL


def test_inadequate_followed_by_unannounced_remains_poorly():
    p = all_dark().add("full_inspections", full("S", grade=Grade.INADEQUATE)).add(
        "unannounced_inspections", unannounced("U1", date(2010, 9, 1))).propose()
    assert not p.rule("B.inadequate_not_followed_by_unannounced").passed
    assert p.block_b is AG.POORLY


def reinspected(grade=Grade.SATISFACTORY, previous=AG.POORLY, notes=()):
    area = all_dark().add(
        "full_inspections",
        full("S0", grade=Grade.INADEQUATE, occurred=date(2010, 6, 1)),
        full("S1", grade=grade, occurred=date(2011, 5, 2), reinspection=True),
        full("L", "looked_after_children", occurred=date(2010, 6, 1)),
    ).add("unannounced_inspections", unannounced("U1", date(2010, 10, 1)))
    if previous is not None:
        area.add("published_grades", PublishedGradeFact("G2010", 2010, previous))
    if notes:
        area.add("inspector_notes", *notes)
    return area.propose()


def test_a_re_inspection_judged_adequate_overrides_the_earlier_inadequate():
    p = reinspected()
    assert p.rule("B.no_inadequate_full_inspection").passed
    assert p.rule("B.inadequate_not_followed_by_unannounced").passed
    assert p.block_b is AG.WELL


def test_from_performs_poorly_a_good_re_inspection_rises_one_step_only():
    p = reinspected(Grade.GOOD)
    assert p.block_a is AG.EXCELLENTLY and p.block_b is AG.EXCELLENTLY
    assert [c.grade for c in p.caps] == [AG.ADEQUATELY]
    assert p.grade is AG.ADEQUATELY
    r = p.rule("B.reinspection_one_step.safeguarding")
    assert not r.passed and set(r.refs) == {"S1", "S0", "G2010"}


def test_recorded_sustained_improvement_lifts_the_one_step_cap():
    note = InspectorNoteFact("N1", "sustained_improvement", date(2011, 9, 1), "two years of audited practice")
    p = reinspected(Grade.GOOD, notes=(note,))
    assert p.caps == ()
    assert p.rule("B.reinspection_one_step.safeguarding").passed
    assert p.grade is AG.EXCELLENTLY


def test_from_performs_adequately_the_cap_is_one_step_up():
    assert reinspected(Grade.GOOD, previous=AG.ADEQUATELY).grade is AG.WELL


def test_without_last_years_grade_the_re_inspection_reads_as_from_poorly():
    p = reinspected(Grade.GOOD, previous=None)
    assert p.grade is AG.ADEQUATELY
    assert "not recorded" in p.caps[0].reason


def test_a_re_inspection_still_inadequate_is_poorly():
    assert reinspected(Grade.INADEQUATE).block_b is AG.POORLY


def test_joint_area_review_stands_in_where_no_full_inspection():
    jar = JointAreaReviewFact("J1", date(2008, 2, 1), date(2008, 4, 1), Grade.INADEQUATE, Grade.GOOD)
    p = all_dark().add("joint_area_reviews", jar).propose()
    assert not p.rule("B.jar_not_inadequate").passed and p.block_b is AG.POORLY


def test_a_good_joint_area_review_allows_excellently_and_adequate_rules_it_out():
    good = JointAreaReviewFact("J1", date(2008, 2, 1), date(2008, 4, 1), Grade.GOOD)
    adequate = JointAreaReviewFact("J1", date(2008, 2, 1), date(2008, 4, 1), Grade.SATISFACTORY)
    assert all_dark().add("joint_area_reviews", good).propose().block_b is AG.EXCELLENTLY
    assert all_dark().add("joint_area_reviews", adequate).propose().block_b is AG.WELL


def test_a_full_inspection_replaces_the_joint_area_review():
    jar = JointAreaReviewFact("J1", date(2008, 2, 1), date(2008, 4, 1), Grade.INADEQUATE)
    p = all_dark().add("joint_area_reviews", jar).add("full_inspections", *both_good()).propose()
    assert p.rule("B.jar_not_inadequate").passed and p.block_b is AG.EXCELLENTLY


def test_a_joint_area_review_before_april_2007_does_not_count():
    jar = JointAreaReviewFact("J1", date(2006, 11, 1), date(2007, 1, 10), Grade.INADEQUATE)
    assert all_dark().add("joint_area_reviews", jar).propose().block_b is AG.EXCELLENTLY


def test_autumn_priority_action_after_the_cut_off_still_makes_poorly():
    u = UnannouncedInspectionFact("U1", date(2011, 10, 12), None, ("x",))
    area = all_dark().add("full_inspections", *both_good()).add("unannounced_inspections", u)
    assert area.propose(as_at=date(2011, 10, 11)).block_b is AG.EXCELLENTLY
    assert area.propose(as_at=AS_AT).block_b is AG.POORLY


# ================================================================== proposal and Block C


@pytest.mark.parametrize(
    "mixes, block_b_items, expected",
    [
        ([DARK] * 7, [full("S", grade=Grade.SATISFACTORY)], AG.WELL),
        ([DARK, DARK, RED, RED, DARK, RED, RED], [], AG.ADEQUATELY),
    ],
)
def test_the_proposal_is_the_lower_of_block_a_and_block_b(mixes, block_b_items, expected):
    p = Area().bands(*mixes).add("full_inspections", *block_b_items).propose()
    assert p.grade is expected is min(p.block_a, p.block_b)


def indicator(ref, name, value, comparator, year=2010, **kw):
    return IndicatorFact(ref, name, str(year), date(year, 7, 31), date(year, 12, 1), value,
                         national=comparator, **kw)


def test_block_c_never_sets_the_grade_but_raises_a_consideration_when_lower():
    below = [indicator(f"x{n}", f"ind{n}", 40, 50) for n in range(5)]
    p = all_dark().add("full_inspections", *both_good()).add("indicators", *below).propose()
    assert p.block_c is AG.POORLY
    assert p.grade is AG.EXCELLENTLY
    assert p.considerations_of("block_c_points_lower")


def test_block_c_grades_by_share_in_line_and_gaps_or_attainment():
    items = [indicator(f"x{n}", f"ind{n}", 60, 50, attainment=True) for n in range(4)]
    items.append(indicator("y", "ind-low", 40, 50))  # 4 of 5 = 80% in line; attainment 4 of 4
    p = all_dark().add("indicators", *items).propose()
    assert p.block_c is AG.EXCELLENTLY
    assert p.rule("C.excellently").figures["share"] == "80.00"


def test_block_c_gaps_narrowed_can_stand_for_attainment():
    items = [indicator("a", "ind-a", 60, 50), indicator("b", "ind-b", 60, 50), indicator("c", "ind-c", 40, 50),
             indicator("g1", "fsm gap", 20, None, 2009, gap=True, polarity="lower"),
             indicator("g2", "fsm gap", 18, None, 2010, gap=True, polarity="lower")]
    p = all_dark().add("indicators", *items).propose()
    assert p.rule("C.gaps_narrowed").passed
    assert p.block_c is AG.WELL  # 2 of 3 = 66.7%: large majority


# ================================================================== considerations (¶58)


@pytest.mark.parametrize("good, total, near", [(81, 100, True), (78, 100, True), (82, 100, True),
                                               (83, 100, False), (77, 100, False), (66, 100, True),
                                               (51, 100, True), (48, 100, True), (47, 100, False)])
def test_band_proximity_within_two_points_of_a_cut_off(good, total, near):
    area = Area()
    area.super_group("secondary", (good, total - good))
    codes = {c.figures["code"] for c in area.propose().considerations_of("band_proximity")}
    assert ("secondary" in codes) is near


def test_inadequate_pupil_referral_unit_is_a_consideration():
    area = all_dark()
    urn = area.provider("pupil_referral_units", Grade.INADEQUATE)
    c = area.propose().considerations_of("vulnerable_groups_inadequate")
    assert c and c[0].figures["providers"] == [urn] and c[0].refs == (f"I-{urn}",)


def test_inadequate_childminder_is_not_a_vulnerable_group_consideration():
    area = all_dark()
    area.provider("childminders", Grade.INADEQUATE)
    assert not area.propose().considerations_of("vulnerable_groups_inadequate")


@pytest.mark.parametrize("good, other, raised", [(65, 35, False), (64, 36, True)])
def test_high_share_of_satisfactory_and_inadequate_provision(good, other, raised):
    area = Area().super_group("nursery_primary", (good, other))
    assert bool(area.propose().considerations_of("high_satisfactory_inadequate_share")) is raised


def test_early_years_materially_changed_by_no_children_on_roll():
    area = all_dark()
    for _ in range(4):
        area.provider("childminders", Grade.SATISFACTORY, no_children_on_roll_from=date(2010, 1, 1))
    # early years: 8 good of 14 = 57% amber; without the four: 8 of 10 = dark green
    c = area.propose().considerations_of("early_years_no_children_on_roll")
    assert c and c[0].paragraph == "¶19" and len(c[0].refs) == 4


def test_no_children_on_roll_that_does_not_change_the_band_is_not_raised():
    area = all_dark()
    area.provider("childminders", Grade.GOOD, no_children_on_roll_from=date(2010, 1, 1))
    assert not area.propose().considerations_of("early_years_no_children_on_roll")


def test_substantiated_complaints_and_inadequate_serious_case_reviews_are_considerations():
    p = all_dark().add("complaints", ComplaintFact("C1", date(2011, 2, 1), date(2011, 3, 1), "whistleblowing")).add(
        "serious_case_reviews", SeriousCaseReviewFact("R1", date(2010, 2, 1), date(2010, 3, 1), False)).propose()
    assert p.considerations_of("substantiated_complaints")[0].refs == ("C1",)
    assert p.considerations_of("serious_case_reviews_inadequate")[0].refs == ("R1",)


def test_attainment_improvement_and_deterioration_are_considerations():
    items = [indicator("k1", "KS2", 70, 72, 2009, attainment=True), indicator("k2", "KS2", 74, 72, 2010,
                                                                             attainment=True)]
    c = all_dark().add("indicators", *items).propose().considerations_of("attainment_trend")
    assert c and c[0].figures == {"KS2": "4.00"}


def test_latest_unannounced_and_full_inspection_findings_are_shown():
    p = all_dark().add("full_inspections", *both_good()).add(
        "unannounced_inspections", unannounced("U1", date(2011, 2, 1))).propose()
    assert len(p.considerations_of("latest_full_inspection_findings")) == 2
    assert p.considerations_of("latest_unannounced_findings")[0].refs == ("U1",)


# ================================================================== trace and output


def test_every_rule_is_traced_with_paragraph_and_the_proposal_serialises():
    p = reinspected(Grade.GOOD)
    ids = [r.rule_id for r in p.trace]
    for expected in ("A.excellently.super_groups_top_two", "A.excellently.none_red", "A.well.universal_top_two",
                     "A.adequately.outcome.enjoying_and_achieving", "B.no_priority_action",
                     "B.no_inadequate_full_inspection", "B.inadequate_not_followed_by_unannounced",
                     "B.jar_not_inadequate", "B.reinspection_one_step.safeguarding",
                     "proposal.lower_of_a_and_b_after_caps"):
        assert expected in ids
    assert len(ids) == len(set(ids))
    assert all(r.paragraph for r in p.trace)
    d = json.loads(json.dumps(p.to_dict()))
    assert d["grade"] == {"value": 2, "label": "performs adequately"}
    assert d["caps"][0]["grade"] == 2
