"""The 2011 cut-off (¶28-29), its exceptions, restructured provision (¶20) and
providers with no children on roll (¶19), written from the guidance."""

from datetime import date

import pytest

from domain.framework import FrameworkIncomplete, framework_for
from domain.rules.cutoff import decide_cutoff
from domain.rules.facts import (
    AuthorityEvidence,
    ComplaintFact,
    FullInspectionFact,
    IndicatorFact,
    InspectorNoteFact,
    JointAreaReviewFact,
    ProviderFact,
    ProviderInspectionFact,
    SeriousCaseReviewFact,
    UnannouncedInspectionFact,
)
from domain.vocabulary import Grade

F = framework_for(2011)
LA = "201"
PUBLICATION = date(2011, 11, 8)


# ------------------------------------------------------------------ builders


def provider(urn="P1", group="primary_schools", **kw) -> ProviderFact:
    return ProviderFact(urn=urn, la_code=kw.pop("la_code", LA), group=group, name=f"provider {urn}", **kw)


def inspection(ref="I1", urn="P1", occurred=date(2011, 3, 1), published=date(2011, 4, 1),
               grade=Grade.GOOD, **kw) -> ProviderInspectionFact:
    return ProviderInspectionFact(ref=ref, urn=urn, occurred_on=occurred, published_on=published,
                                  overall_effectiveness=grade, staying_safe=kw.pop("ss", grade),
                                  enjoying_and_achieving=kw.pop("ea", grade), **kw)


def one_inspection(group, occurred, published, as_at=PUBLICATION, notes=(), **kw):
    evidence = AuthorityEvidence(
        LA, providers=(provider(group=group),),
        provider_inspections=(inspection(occurred=occurred, published=published, **kw),),
        inspector_notes=tuple(notes),
    )
    return decide_cutoff(evidence, F, as_at).decision_for("I1")


def unannounced(ref="U1", occurred=date(2011, 10, 10), published=None, actions=("referrals",)):
    return UnannouncedInspectionFact(ref=ref, occurred_on=occurred, published_on=published,
                                     priority_actions=tuple(actions))


def full(ref="S1", service="safeguarding", occurred=date(2011, 9, 20), published=None,
         grade=Grade.INADEQUATE, reinspection=False):
    return FullInspectionFact(ref=ref, service=service, occurred_on=occurred, published_on=published,
                              overall_effectiveness=grade, reinspection=reinspection)


def block_b(as_at=PUBLICATION, **items):
    return decide_cutoff(AuthorityEvidence(LA, **items), F, as_at)


# ------------------------------------------------------------------ normal rule (ADR 0010)


@pytest.mark.parametrize(
    "published, counts, rule",
    [
        (date(2011, 6, 30), True, "cutoff.published_by_data_date"),
        (date(2011, 8, 31), True, "cutoff.published_by_data_date"),
        (date(2011, 9, 1), False, "cutoff.published_after_data_date"),
        (None, False, "cutoff.unpublished"),
    ],
)
def test_block_a_counts_reports_published_by_31_august(published, counts, rule):
    # a childminder: no exception applies, whatever the dates
    d = one_inspection("childminders", date(2011, 6, 1), published)
    assert (d.counts, d.rule_id) == (counts, rule)
    assert not d.exception


def test_a_report_published_after_as_at_does_not_count_yet():
    d = one_inspection("childminders", date(2011, 5, 1), date(2011, 6, 20), as_at=date(2011, 6, 15))
    assert (d.counts, d.rule_id) == (False, "cutoff.not_yet_published")


def test_an_inspection_after_as_at_does_not_count_even_under_an_exception():
    d = one_inspection("primary_schools", date(2011, 7, 20), None, as_at=date(2011, 7, 10))
    assert (d.counts, d.rule_id) == (False, "cutoff.not_yet_occurred")


# ------------------------------------------------------------------ exception 1: education, July 2011


@pytest.mark.parametrize(
    "occurred, counts, rule",
    [
        (date(2011, 6, 30), False, "cutoff.unpublished"),
        (date(2011, 7, 1), True, "cutoff.exception1_education_july"),
        (date(2011, 7, 31), True, "cutoff.exception1_education_july"),
        (date(2011, 8, 1), False, "cutoff.unpublished"),
    ],
)
def test_exception_1_education_inspected_in_july_counts_unpublished(occurred, counts, rule):
    d = one_inspection("primary_schools", occurred, None)
    assert (d.counts, d.rule_id, d.exception) == (counts, rule, counts)


def test_exception_1_also_admits_a_july_report_published_after_the_data_date():
    d = one_inspection("la_secondary", date(2011, 7, 15), date(2011, 9, 20))
    assert (d.counts, d.rule_id) == (True, "cutoff.exception1_education_july")


def test_a_july_education_report_published_by_the_data_date_counts_normally():
    d = one_inspection("la_secondary", date(2011, 7, 15), date(2011, 8, 20))
    assert (d.counts, d.rule_id, d.exception) == (True, "cutoff.published_by_data_date", False)


def test_exception_1_does_not_cover_early_years_settings():
    d = one_inspection("childminders", date(2011, 7, 15), None)
    assert not d.counts


def test_exception_1_applies_from_as_at_the_inspection_date():
    d = one_inspection("primary_schools", date(2011, 7, 15), None, as_at=date(2011, 7, 15))
    assert d.counts and d.exception


# ------------------------------------------------------------------ exception 2: care, July-August 2011


@pytest.mark.parametrize(
    "occurred, counts",
    [
        (date(2011, 6, 30), False),
        (date(2011, 7, 1), True),
        (date(2011, 7, 31), True),
        (date(2011, 8, 1), True),
        (date(2011, 8, 31), True),
        (date(2011, 9, 1), False),
    ],
)
@pytest.mark.parametrize("group", ["la_childrens_homes", "pv_childrens_homes", "la_fostering", "la_adoption",
                                   "pv_fostering_adoption"])
def test_exception_2_care_inspected_in_july_or_august_counts_unpublished(group, occurred, counts):
    d = one_inspection(group, occurred, None)
    assert d.counts is counts
    assert d.exception is counts
    if counts:
        assert d.rule_id == "cutoff.exception2_care_july_august"


def test_exception_1_does_not_reach_august_for_schools():
    assert not one_inspection("primary_schools", date(2011, 8, 15), None).counts


def test_an_inspector_may_exclude_an_exception_2_inspection_with_a_reason():
    note = InspectorNoteFact(ref="N1", kind="cutoff_exclusion", noted_on=date(2011, 9, 10),
                             reason="report withdrawn for moderation", target_ref="I1")
    d = one_inspection("la_childrens_homes", date(2011, 8, 10), None, notes=(note,))
    assert (d.counts, d.rule_id) == (False, "cutoff.exception2_excluded_by_inspector")
    assert "report withdrawn for moderation" in d.reason and "N1" in d.reason


def test_an_exclusion_noted_after_as_at_does_not_apply_yet():
    note = InspectorNoteFact(ref="N1", kind="cutoff_exclusion", noted_on=date(2011, 9, 10),
                             reason="r", target_ref="I1")
    d = one_inspection("la_childrens_homes", date(2011, 8, 10), None, notes=(note,), as_at=date(2011, 9, 1))
    assert d.counts and d.rule_id == "cutoff.exception2_care_july_august"


def test_an_exclusion_cannot_remove_an_exception_1_inspection():
    # exception 1 has no "normally": the inspector's exclusion does not apply to it
    note = InspectorNoteFact(ref="N1", kind="cutoff_exclusion", noted_on=date(2011, 9, 10),
                             reason="r", target_ref="I1")
    d = one_inspection("primary_schools", date(2011, 7, 10), None, notes=(note,))
    assert d.counts and d.rule_id == "cutoff.exception1_education_july"


# ------------------------------------------------------------------ exception 3: safeguarding concerns


def test_an_autumn_unannounced_inspection_with_priority_action_counts_up_to_publication():
    result = block_b(unannounced_inspections=(unannounced(occurred=date(2011, 10, 10)),))
    d = result.decision_for("U1")
    assert (d.counts, d.rule_id, d.exception) == (True, "cutoff.exception3_safeguarding_concern", True)
    assert result.unannounced_inspections[0].ref == "U1"


@pytest.mark.parametrize("occurred, counts", [(date(2011, 11, 8), True), (date(2011, 11, 9), False)])
def test_exception_3_ends_at_publication_on_8_november(occurred, counts):
    d = block_b(as_at=date(2011, 12, 1), unannounced_inspections=(unannounced(occurred=occurred),)).decision_for("U1")
    assert d.counts is counts


def test_exception_3_does_not_look_past_as_at():
    d = block_b(as_at=date(2011, 10, 1), unannounced_inspections=(unannounced(occurred=date(2011, 10, 10)),))
    assert not d.decision_for("U1").counts


def test_an_autumn_unannounced_inspection_without_priority_action_is_excluded():
    d = block_b(unannounced_inspections=(unannounced(actions=()),)).decision_for("U1")
    assert (d.counts, d.rule_id) == (False, "cutoff.unpublished")


def test_an_autumn_inadequate_full_inspection_counts_but_an_adequate_one_does_not():
    result = block_b(full_inspections=(full("S1", grade=Grade.INADEQUATE),
                                       full("L1", service="looked_after_children", grade=Grade.SATISFACTORY)))
    assert result.decision_for("S1").counts and result.decision_for("S1").exception
    assert not result.decision_for("L1").counts


def test_a_re_inspection_of_a_service_judged_inadequate_counts_whatever_its_grade():
    earlier = full("S0", occurred=date(2010, 11, 1), published=date(2010, 12, 10))
    again = full("S1", occurred=date(2011, 10, 3), grade=Grade.GOOD, reinspection=True)
    result = block_b(full_inspections=(earlier, again))
    assert result.decision_for("S0").rule_id == "cutoff.published_by_data_date"
    d = result.decision_for("S1")
    assert (d.counts, d.rule_id) == (True, "cutoff.exception3_safeguarding_concern")


def test_a_re_inspection_without_an_earlier_inadequate_is_other_block_b_evidence():
    again = full("S1", occurred=date(2011, 10, 3), grade=Grade.GOOD, reinspection=True)
    assert not block_b(full_inspections=(again,)).decision_for("S1").counts


def test_a_complaint_raising_safeguarding_concerns_counts_up_to_publication():
    c1 = ComplaintFact("C1", date(2011, 9, 5), date(2011, 10, 1), "whistleblowing", safeguarding_concern=True)
    c2 = ComplaintFact("C2", date(2011, 9, 5), date(2011, 10, 1), "late complaint")
    result = block_b(complaints=(c1, c2))
    assert result.decision_for("C1").counts and not result.decision_for("C2").counts


# ------------------------------------------------------------------ JAR and SCR windows


@pytest.mark.parametrize("occurred, counts", [(date(2007, 3, 31), False), (date(2007, 4, 1), False),
                                              (date(2007, 4, 2), True)])
def test_only_joint_area_reviews_after_1_april_2007_count(occurred, counts):
    jar = JointAreaReviewFact("J1", occurred, date(2007, 9, 1), Grade.GOOD)
    d = block_b(joint_area_reviews=(jar,)).decision_for("J1")
    assert d.counts is counts
    if not counts:
        assert d.rule_id == "cutoff.jar_before_window"


@pytest.mark.parametrize("occurred, counts", [(date(2007, 3, 31), False), (date(2007, 4, 1), True)])
def test_serious_case_reviews_count_from_1_april_2007(occurred, counts):
    scr = SeriousCaseReviewFact("R1", occurred, occurred, True)
    assert block_b(serious_case_reviews=(scr,)).decision_for("R1").counts is counts


# ------------------------------------------------------------------ Block C (ADR 0016)


@pytest.mark.parametrize("published, counts", [(date(2011, 9, 23), True), (date(2011, 9, 24), False)])
def test_block_c_figures_count_if_published_by_the_draft_letter(published, counts):
    item = IndicatorFact("X1", "KS2", "2010", date(2010, 7, 31), published, 70, national=68)
    assert block_b(indicators=(item,)).decision_for("X1").counts is counts


# ------------------------------------------------------------------ providers: ¶20, closure, ¶19


def restructure(successor_inspection=None, as_at=PUBLICATION):
    old = provider("OLD", closed_on=date(2010, 8, 31), successor_urn="NEW")
    new = provider("NEW", opened_on=date(2010, 9, 1))
    inspections = [inspection("I-OLD", "OLD", date(2009, 5, 1), date(2009, 6, 1), Grade.INADEQUATE)]
    if successor_inspection:
        inspections.append(inspection("I-NEW", "NEW", *successor_inspection))
    return decide_cutoff(AuthorityEvidence(LA, providers=(old, new), provider_inspections=tuple(inspections)),
                         F, as_at)


def test_predecessor_judgement_counts_until_the_successor_is_inspected():
    result = restructure()
    decisions = {p.urn: p for p in result.provider_decisions}
    assert decisions["OLD"].in_layer_one and decisions["OLD"].rule_id == "restructure.predecessor_counts"
    assert decisions["OLD"].exception
    assert not decisions["NEW"].in_layer_one
    assert decisions["OLD"] in result.exceptions_list


def test_once_the_successor_is_inspected_the_predecessor_drops_out():
    result = restructure((date(2011, 5, 1), date(2011, 6, 1)))
    decisions = {p.urn: p for p in result.provider_decisions}
    assert not decisions["OLD"].in_layer_one
    assert decisions["OLD"].rule_id == "restructure.successor_inspected"
    assert decisions["NEW"].in_layer_one


def test_a_successor_inspection_not_yet_counted_leaves_the_predecessor_in():
    result = restructure((date(2011, 9, 5), date(2011, 10, 1)))  # published after the data date
    assert {p.urn for p in result.provider_decisions if p.in_layer_one} == {"OLD"}


def test_a_closed_provider_without_successor_leaves_layer_one_but_its_inspection_still_counts():
    p = provider("P1", closed_on=date(2011, 1, 31))
    result = decide_cutoff(AuthorityEvidence(LA, providers=(p,), provider_inspections=(inspection(),)), F,
                           PUBLICATION)
    assert result.provider_decisions[0].rule_id == "provider.closed"
    assert not result.layer_one_urns
    assert result.decision_for("I1").counts  # kept for layers 3 and 4


def test_a_provider_closing_after_as_at_is_still_open():
    p = provider("P1", closed_on=date(2011, 12, 31))
    result = decide_cutoff(AuthorityEvidence(LA, providers=(p,), provider_inspections=(inspection(),)), F,
                           PUBLICATION)
    assert result.layer_one_urns == {"P1"}


def test_an_inspection_of_an_unregistered_provider_is_excluded_with_its_rule():
    result = decide_cutoff(AuthorityEvidence(LA, provider_inspections=(inspection(urn="ZZ"),)), F, PUBLICATION)
    assert result.decision_for("I1").rule_id == "cutoff.provider_not_registered"


@pytest.mark.parametrize("recorded, counted", [(Grade.GOOD, Grade.SATISFACTORY), (Grade.OUTSTANDING, Grade.SATISFACTORY),
                                               (Grade.SATISFACTORY, Grade.SATISFACTORY),
                                               (Grade.INADEQUATE, Grade.INADEQUATE)])
def test_no_children_on_roll_compliance_checks_are_satisfactory_or_inadequate(recorded, counted):
    p = provider("P1", group="childminders", no_children_on_roll_from=date(2010, 1, 1))
    check = inspection(grade=recorded, compliance_check=True)
    result = decide_cutoff(AuthorityEvidence(LA, providers=(p,), provider_inspections=(check,)), F, PUBLICATION)
    assert result.provider_inspections[0].overall_effectiveness is counted
    assert result.provider_inspections[0].staying_safe is None
    assert result.decision_for("I1").grade_recorded_as is counted


# ------------------------------------------------------------------ the exceptions list


def test_exceptions_list_holds_admissions_and_exclusions_but_not_normal_items():
    providers = (provider("A", "primary_schools"), provider("B", "childminders"), provider("C", "la_fostering"))
    inspections = (
        inspection("normal", "A", date(2011, 2, 1), date(2011, 3, 1)),
        inspection("exc1", "A", date(2011, 7, 5), None),
        inspection("late", "B", date(2011, 8, 5), date(2011, 9, 15)),
        inspection("exc2", "C", date(2011, 8, 5), None),
    )
    result = decide_cutoff(AuthorityEvidence(LA, providers=providers, provider_inspections=inspections,
                                             unannounced_inspections=(unannounced("U9"),)), F, PUBLICATION)
    listed = {getattr(e, "ref", None): e.rule_id for e in result.exceptions_list}
    assert listed == {
        "exc1": "cutoff.exception1_education_july",
        "late": "cutoff.published_after_data_date",
        "exc2": "cutoff.exception2_care_july_august",
        "U9": "cutoff.exception3_safeguarding_concern",
    }
    assert all(e.paragraph.startswith("¶28") for e in result.exceptions_list)
    assert result.to_dict()["exceptions_list"]


def test_decisions_replay_identically_whatever_the_order_of_the_evidence():
    providers = (provider("A", "primary_schools"), provider("C", "la_fostering"))
    inspections = (inspection("x", "A", date(2011, 7, 5), None), inspection("y", "C", date(2011, 8, 5), None),
                   inspection("z", "A", date(2011, 1, 5), date(2011, 2, 1)))
    one = decide_cutoff(AuthorityEvidence(LA, providers=providers, provider_inspections=inspections), F, PUBLICATION)
    two = decide_cutoff(AuthorityEvidence(LA, providers=providers[::-1], provider_inspections=inspections[::-1]),
                        F, PUBLICATION)
    assert one.to_dict() == two.to_dict()


def test_a_year_without_a_known_data_date_refuses_rather_than_borrowing_2011():
    evidence = AuthorityEvidence(LA, providers=(provider(),), provider_inspections=(inspection(),))
    with pytest.raises(FrameworkIncomplete):
        decide_cutoff(evidence, framework_for(2010), date(2010, 11, 1))


def test_evidence_after_as_at_is_not_listed_as_a_cutoff_exclusion():
    from datetime import date

    from domain.framework import framework_for
    from domain.rules.cutoff import decide_cutoff
    from domain.rules.facts import AuthorityEvidence, ProviderFact, ProviderInspectionFact
    from domain.vocabulary import Grade

    later = ProviderInspectionFact("#9", "P1", date(2011, 10, 6), date(2011, 10, 26), Grade.GOOD)
    late_published = ProviderInspectionFact("#8", "P2", date(2011, 6, 1), date(2011, 9, 20), Grade.GOOD)
    ev = AuthorityEvidence("886", providers=(ProviderFact("P1", "886", "primary_schools"),
                                             ProviderFact("P2", "886", "primary_schools")),
                           provider_inspections=(later, late_published))
    listed = {d.ref for d in decide_cutoff(ev, framework_for(2011), date(2011, 9, 30)).exceptions_list
              if hasattr(d, "ref")}
    assert listed == {"#8"}


def test_the_exceptions_list_shows_counted_compliance_checks_recorded_under_paragraph_19():
    from datetime import date

    from domain.framework import framework_for
    from domain.rules.cutoff import decide_cutoff
    from domain.rules.facts import AuthorityEvidence, ProviderFact, ProviderInspectionFact
    from domain.vocabulary import Grade

    provider = ProviderFact("EY1", "886", "childminders", no_children_on_roll_from=date(2009, 9, 1))
    check = ProviderInspectionFact("#5", "EY1", date(2011, 2, 22), date(2011, 3, 1), Grade.INADEQUATE,
                                   compliance_check=True)
    ordinary = ProviderInspectionFact("#6", "EY2", date(2011, 2, 22), date(2011, 3, 1), Grade.GOOD)
    ev = AuthorityEvidence("886", providers=(provider, ProviderFact("EY2", "886", "childminders")),
                           provider_inspections=(check, ordinary))
    listed = decide_cutoff(ev, framework_for(2011), date(2011, 11, 8)).exceptions_list
    assert [(d.ref, d.counts, d.grade_recorded_as) for d in listed] == [("#5", True, Grade.INADEQUATE)]


# ------------------------------------------------- the newest-first path (issue 5)


def test_latest_counted_is_the_most_recent_of_all_counted_inspections_on_every_as_at():
    """`latest_counted` judges each provider's inspections newest first and stops at the first
    that counts; it must agree with judging every inspection (`provider_inspections`) and taking
    ¶27's most recent, for exceptions, compliance checks, closures and inspector exclusions alike."""
    import random

    from domain.rules.profile import most_recent

    rnd = random.Random(2011)
    groups = ["primary_schools", "childminders", "la_childrens_homes", "la_fostering", "general_fe_colleges"]
    providers, inspections, notes = [], [], []
    for p in range(60):
        closed = date(2011, rnd.randint(1, 12), 1) if rnd.random() < 0.2 else None
        providers.append(provider(f"P{p}", rnd.choice(groups), closed_on=closed))
        for k in range(rnd.randint(1, 5)):
            occurred = date(rnd.randint(2008, 2011), rnd.randint(1, 12), rnd.randint(1, 28))
            published = None if rnd.random() < 0.2 else date.fromordinal(occurred.toordinal() + rnd.randint(10, 120))
            ref = f"#{p * 10 + k}"
            inspections.append(inspection(ref, f"P{p}", occurred, published, rnd.choice(list(Grade)),
                                          compliance_check=rnd.random() < 0.1))
            if occurred.month in (7, 8) and rnd.random() < 0.3:
                notes.append(InspectorNoteFact(f"#n{ref}", "cutoff_exclusion", date(2011, 9, 1), "late", ref))
    inspections.append(inspection("#x", "ELSEWHERE"))  # a provider not in this authority
    evidence = AuthorityEvidence(LA, providers=tuple(providers), provider_inspections=tuple(inspections),
                                 inspector_notes=tuple(notes))
    for as_at in (date(2009, 6, 30), date(2011, 6, 30), date(2011, 8, 31), date(2011, 9, 2), PUBLICATION):
        result = decide_cutoff(evidence, F, as_at)
        by_urn: dict[str, list] = {}
        for i in result.provider_inspections:
            by_urn.setdefault(i.urn, []).append(i)
        assert result.latest_counted == {urn: most_recent(items) for urn, items in by_urn.items()}, as_at
        assert len(result.decisions) == len(inspections)
        assert {d.ref for d in result.decisions if d.counts} == {i.ref for i in result.provider_inspections}
        assert result.latest_counted, "the data exercises the rule"
