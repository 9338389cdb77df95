"""Layer 1 from the facts' timelines (domain/rules/timelines.py, ADR 0024) against judging
every item on the day: randomised facts, as known at several times (inspections posted
unpublished and published later, corrections, withdrawals, closures and restructurings
recorded later, inspector exclusions), each asked on many as-at dates, every boundary
date and the days either side of it included."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta

import pytest

from domain.framework import FrameworkIncomplete, framework_for
from domain.rules.assessment import propose_grade_from, vulnerable_inadequate
from domain.rules.cutoff import (
    ProviderDecision,
    decide_cutoff,
    judge_provider_inspection,
    successors_of,
)
from domain.rules.facts import (
    AuthorityEvidence,
    InspectorNoteFact,
    ProviderFact,
    ProviderInspectionFact,
)
from domain.rules.profile import band_for, build_profile_from, has_no_children_on_roll, most_recent
from domain.rules.timelines import Changes, timelines_for
from domain.vocabulary import GROUPS, GROUPS_BY_CODE, SUPER_GROUPS, Grade, groups_of

F = framework_for(2011)
LA = "886"
GROUP_CHOICES = ["primary_schools", "childminders", "childminders", "la_childrens_homes", "la_fostering",
                 "pv_childrens_homes", "pupil_referral_units", "fe_tertiary_colleges", "residential_special_schools",
                 "childcare_non_domestic", "not_a_group"]


# ----------------------------------------------------------- the reference: every item judged


def old_decide_provider(provider: ProviderFact, providers: dict[str, ProviderFact], inspected: set[str],
                        as_at: date) -> ProviderDecision:
    """`decide_provider` as it was before ADR 0024, kept here word for word as the reference."""

    def decided(in_layer, rule_id, paragraph, reason, exception=False):
        return ProviderDecision(provider.urn, provider.group, in_layer, rule_id, paragraph, reason,
                                exception, provider.refs)

    if provider.group not in GROUPS_BY_CODE:
        return decided(False, "provider.unknown_group", "¶18, Table 1", f"group {provider.group!r} is not in Table 1")
    if provider.opened_on is not None and provider.opened_on > as_at:
        return decided(False, "provider.not_yet_open", "¶27", f"opens {provider.opened_on}")
    if provider.closed_on is None or provider.closed_on > as_at:
        if provider.urn in inspected:
            return decided(True, "provider.open_inspected", "¶27", "open; latest counted inspection stands")
        return decided(False, "provider.not_inspected", "¶27", "open, no counted inspection")
    chain = successors_of(provider, providers)
    if not chain:
        return decided(False, "provider.closed", "Annex B",
                       f"closed {provider.closed_on}; closed providers appear in layers 3-4 only")
    inspected_successors = [s.urn for s in chain if s.urn in inspected]
    if inspected_successors:
        return decided(False, "restructure.successor_inspected", "¶20",
                       f"successor {inspected_successors[0]} inspected; its judgement replaces this one")
    if provider.urn not in inspected:
        return decided(False, "provider.not_inspected", "¶20", "restructured, no counted inspection")
    return decided(True, "restructure.predecessor_counts", "¶20",
                   f"restructured into {chain[-1].urn}, not yet inspected: predecessor's judgement counts",
                   exception=True)


def reference(evidence: AuthorityEvidence, framework, as_at: date):
    """Judge every inspection and every provider on the day (no timelines)."""
    providers = {p.urn: p for p in evidence.providers if p.la_code == evidence.la_code}
    notes = tuple(n for n in evidence.inspector_notes if n.noted_on <= as_at)
    counted: dict[str, list[ProviderInspectionFact]] = {}
    for i in evidence.provider_inspections:
        _, c = judge_provider_inspection(i, providers, as_at, framework, notes)
        if c is not None:
            counted.setdefault(i.urn, []).append(c)
    latest = {urn: most_recent(items) for urn, items in counted.items()}
    decisions = tuple(old_decide_provider(p, providers, set(latest), as_at)
                      for p in sorted(providers.values(), key=lambda p: p.urn))
    layer_one = {d.urn: latest[d.urn] for d in decisions if d.in_layer_one}
    return latest, decisions, layer_one, providers


def old_row(inspections, area="overall_effectiveness"):
    items = [i for i in inspections if getattr(i, area) is not None]
    tally = {g: 0 for g in Grade}
    for i in items:
        tally[getattr(i, area)] += 1
    return (tally[Grade.OUTSTANDING], tally[Grade.GOOD], tally[Grade.SATISFACTORY], tally[Grade.INADEQUATE]), \
        tuple(sorted(i.ref for i in items))


def assert_same_as_reference(evidence: AuthorityEvidence, framework, as_at: date) -> int:
    latest, decisions, layer_one, providers = reference(evidence, framework, as_at)
    result = decide_cutoff(evidence, framework, as_at)
    where = f"as_at {as_at}"
    assert result.latest_counted == latest, where
    assert result.layer_one == layer_one, where
    assert result.layer_one_urns == frozenset(layer_one), where
    assert result.provider_decisions == decisions, where
    for group, in_group in result.layer_one_by_group.items():
        assert in_group and all(providers[urn].group == group for urn in in_group), where
    # the profile's rows, as the rules built them before (row_of over the layer 1 inspections)
    profile = build_profile_from(result, framework, evidence.la_code)
    by_group: dict[str, list] = {}
    for urn, i in layer_one.items():
        by_group.setdefault(providers[urn].group, []).append(i)
    for g, row in zip(GROUPS, profile.groups, strict=True):
        assert ((row.counts.outstanding, row.counts.good, row.counts.satisfactory, row.counts.inadequate), row.refs) \
            == old_row(by_group.get(g.code, [])), (where, g.code)
    for s, row in zip(SUPER_GROUPS, profile.super_groups, strict=True):
        items = [i for g in groups_of(s.code) for i in by_group.get(g.code, [])]
        assert ((row.counts.outstanding, row.counts.good, row.counts.satisfactory, row.counts.inadequate), row.refs) \
            == old_row(items), (where, s.code)
    for area, rows in profile.outcome_areas.items():
        for g, row in zip(GROUPS, rows, strict=True):
            assert ((row.counts.outstanding, row.counts.good, row.counts.satisfactory, row.counts.inadequate),
                    row.refs) == old_row(by_group.get(g.code, []), area), (where, area, g.code)
    assert profile.latest_by_urn == layer_one
    # ¶19: early years without providers with no children on roll, as row_of over the rest
    early_years = [i for g in groups_of("early_years_childcare") for i in by_group.get(g.code, [])]
    row = profile.early_years_without_no_children_on_roll
    assert ((row.counts.outstanding, row.counts.good, row.counts.satisfactory, row.counts.inadequate), row.refs) \
        == old_row([i for i in early_years if not has_no_children_on_roll(i, result)]), where
    assert row.band == band_for(row.counts.pct_good_or_better, framework)
    # ¶58: inadequate vulnerable provision, as it was found over every layer 1 provider
    hits = [i for urn, i in sorted(layer_one.items()) if i.overall_effectiveness is Grade.INADEQUATE
            and providers[urn].group in framework.vulnerable_groups]
    found = vulnerable_inadequate(profile, framework)
    assert [r for c in found for r in c.refs] == [i.ref for i in hits], where
    proposal = propose_grade_from(result, profile, framework)
    body = proposal.to_dict()
    # each rule, cap and consideration as the generic conversion gives it (RuleResult.to_dict
    # lists its refs without testing their types)
    for key, items in (("trace", proposal.trace), ("caps", proposal.caps), ("considerations", proposal.considerations)):
        assert repr(body[key]) == repr([old_to_jsonable(r) for r in items]), (where, key)
    return len(layer_one)


# ----------------------------------------------------------- randomised facts, as a log of postings


def random_day(rnd: random.Random, start=date(2008, 1, 1), end=date(2012, 8, 31)) -> date:
    # half the days in the summer of 2011, where the exceptions and the data date are
    if rnd.random() < 0.5:
        start, end = date(2011, 5, 1), date(2011, 11, 30)
    return start + timedelta(days=rnd.randrange((end - start).days + 1))


def random_log(rnd: random.Random, n_providers: int) -> list[tuple[str, str, dict]]:
    """Postings in the order the ledger recorded them: (action, key, fields)."""
    log: list[tuple[str, str, dict]] = []
    urns = [f"P{k}" for k in range(n_providers)]
    for urn in urns:
        opened = random_day(rnd) if rnd.random() < 0.3 else None
        log.append(("provider", urn, {"urn": urn, "la_code": LA if rnd.random() < 0.95 else "999",
                                      "group": rnd.choice(GROUP_CHOICES), "opened_on": opened,
                                      "no_children_on_roll_from": random_day(rnd) if rnd.random() < 0.1 else None,
                                      "refs": (f"#r{urn}",)}))
    n = 0
    for _ in range(n_providers * 3):
        n += 1
        ref, urn = f"#{n}", rnd.choice(urns + ["ELSEWHERE"])
        occurred = random_day(rnd)
        # posted unpublished most of the time, its publication supplied later (or never)
        published = None if rnd.random() < 0.6 else occurred + timedelta(days=rnd.randint(-3, 80))
        grade = rnd.choice(list(Grade))
        log.append(("inspection", ref, {"ref": ref, "urn": urn, "occurred_on": occurred, "published_on": published,
                                        "overall_effectiveness": grade,
                                        "staying_safe": rnd.choice([grade, None, *Grade]),
                                        "enjoying_and_achieving": rnd.choice([grade, None, *Grade]),
                                        "compliance_check": rnd.random() < 0.1}))
        if rnd.random() < 0.3:  # a same-day second inspection: ¶27's ties (publication, then ref)
            n += 1
            log.append(("inspection", f"#{n}", {**log[-1][2], "ref": f"#{n}", "published_on": rnd.choice(
                [published, None, occurred + timedelta(days=rnd.randint(0, 60))])}))
    events: list[tuple[str, str, dict]] = []
    for action, key, fields in log:
        events.append((action, key, fields))
        if action == "inspection" and fields["published_on"] is None and rnd.random() < 0.8:
            late = {**fields, "published_on": fields["occurred_on"] + timedelta(days=rnd.randint(10, 120))}
            events.append(("inspection", key, late))
    # corrections, withdrawals, closures, restructurings and exclusions recorded later
    inspections = [k for a, k, _ in log if a == "inspection"]
    for _ in range(n_providers * 2):
        r = rnd.random()
        if r < 0.25:
            key = rnd.choice(inspections)
            latest = next(f for a, k, f in reversed(events) if k == key)
            if latest is None:
                continue
            change = rnd.choice(["overall_effectiveness", "published_on", "occurred_on"])
            value = {"overall_effectiveness": rnd.choice(list(Grade)),
                     "published_on": rnd.choice([None, random_day(rnd)]), "occurred_on": random_day(rnd)}[change]
            events.append(("inspection", key, {**latest, change: value}))
        elif r < 0.35:
            events.append(("inspection", rnd.choice(inspections), None))  # withdrawn
        elif r < 0.6:
            urn = rnd.choice(urns)
            latest = next(f for a, k, f in reversed(events) if k == urn)
            if latest is None:
                continue
            closed = random_day(rnd)
            successor = rnd.choice(urns + ["NOWHERE", None, None])  # chains, cycles, unknown successors
            events.append(("provider", urn, {**latest, "closed_on": closed, "successor_urn": successor}))
        elif r < 0.62:
            events.append(("provider", rnd.choice(urns), None))  # registration withdrawn
        elif r < 0.9:
            key = rnd.choice(inspections + ["#nowhere"])
            events.append(("note", f"#n{len(events)}", {"ref": f"#n{len(events)}", "kind": "cutoff_exclusion",
                                                         "noted_on": random_day(rnd), "reason": "r",
                                                         "target_ref": key}))
        else:
            events.append(("note", f"#n{len(events)}", {"ref": f"#n{len(events)}", "kind": "sustained_improvement",
                                                         "noted_on": random_day(rnd), "reason": "s"}))
    return events


def evidence_known_at(events: list[tuple[str, str, dict]], known: int) -> AuthorityEvidence:
    """The facts as known after the first `known` postings: the latest version of each item,
    withdrawn items left out."""
    state: dict[tuple[str, str], dict | None] = {}
    for action, key, fields in events[:known]:
        state[(action, key)] = fields
    providers = tuple(ProviderFact(**f) for (a, _), f in state.items() if a == "provider" and f is not None)
    inspections = tuple(ProviderInspectionFact(**f) for (a, _), f in state.items() if a == "inspection" and f)
    notes = tuple(InspectorNoteFact(**f) for (a, _), f in state.items() if a == "note" and f is not None)
    return AuthorityEvidence(LA, providers=providers, provider_inspections=inspections, inspector_notes=notes)


def as_at_dates(evidence: AuthorityEvidence, framework, rnd: random.Random, n: int) -> list[date]:
    """Every date a decision can turn on, the day before and after, and random days; `n` of them."""
    days = {framework.profile_data_date, date(2007, 1, 1), date(2013, 1, 1)}
    for window in (framework.education_exception, framework.care_exception):
        if window:
            days.update(window)
    for i in evidence.provider_inspections:
        days.update(d for d in (i.occurred_on, i.published_on) if d)
    for p in evidence.providers:
        days.update(d for d in (p.opened_on, p.closed_on, p.no_children_on_roll_from) if d)
    days.update(n.noted_on for n in evidence.inspector_notes)
    around = sorted({d + timedelta(days=k) for d in days if d for k in (-1, 0, 1)})
    return sorted(rnd.sample(around, min(n, len(around))) + [random_day(rnd) for _ in range(5)])


@pytest.mark.parametrize("seed", range(12))
def test_layer_one_from_the_timelines_is_judging_everything_on_the_day(seed):
    rnd = random.Random(f"timelines:{seed}")
    events = random_log(rnd, n_providers=rnd.randint(6, 30))
    exercised = 0
    for known in sorted({len(events) // 4, len(events) // 2, (len(events) * 3) // 4, len(events)}):
        evidence = evidence_known_at(events, known)
        dates = as_at_dates(evidence, F, rnd, 90)
        for as_at in dates:
            exercised += assert_same_as_reference(evidence, F, as_at)
        assert timelines_for(evidence, F) is timelines_for(evidence, F), "built once per facts"
        # the same facts under another framework: other windows, data date, no ¶19 recording
        other = replace(F, profile_data_date=date(2011, 6, 30), education_exception=(date(2011, 6, 1), date(2011, 8, 15)),
                        care_exception=None if seed % 2 else (date(2011, 5, 1), date(2011, 9, 30)),
                        compliance_checks_recorded_as_satisfactory_or_inadequate=bool(seed % 3))
        for as_at in dates[::3]:
            assert_same_as_reference(evidence, other, as_at)
        assert timelines_for(evidence, other) is not timelines_for(evidence, F)
    assert exercised, "the data puts providers in layer 1"


def test_every_day_of_the_2011_summer_for_one_authority():
    """Every single day from April 2011 to December 2011 on one set of facts."""
    rnd = random.Random("timelines:summer")
    evidence = evidence_known_at(events := random_log(rnd, 40), len(events))
    day = date(2011, 4, 1)
    while day <= date(2011, 12, 31):
        assert_same_as_reference(evidence, F, day)
        day += timedelta(days=1)


def test_a_year_without_a_data_date_still_refuses_when_there_are_inspections():
    evidence = AuthorityEvidence(LA, providers=(ProviderFact("P1", LA, "primary_schools"),),
                                 provider_inspections=(ProviderInspectionFact("#1", "P1", date(2010, 3, 1),
                                                                              date(2010, 4, 1), Grade.GOOD),))
    with pytest.raises(FrameworkIncomplete) as raised:
        decide_cutoff(evidence, framework_for(2010), date(2010, 11, 1))
    assert raised.value.setting == "profile_data_date"
    # no inspection of a registered provider: nothing asks for the data date
    decide_cutoff(AuthorityEvidence(LA, providers=evidence.providers), framework_for(2010), date(2010, 11, 1))


def test_changes_keep_the_last_change_of_each_urn_up_to_the_date():
    d = date(2011, 1, 1)
    changes = Changes([(d + timedelta(days=5), "A", None), (d, "A", "a1"), (d + timedelta(days=2), "B", "b1"),
                       (d + timedelta(days=9), "A", "a2"), (d + timedelta(days=3), "B", None)])
    assert changes.at(d - timedelta(days=1)) == {}
    assert changes.at(d) == {"A": "a1"}
    assert changes.at(d + timedelta(days=2)) == {"A": "a1", "B": "b1"}
    assert changes.at(d + timedelta(days=3)) == {"A": "a1"}
    assert changes.at(d + timedelta(days=5)) == {}
    assert changes.at(d + timedelta(days=9)) == {"A": "a2"}


# ----------------------------------------------------------- to_jsonable, dispatched by type


def old_to_jsonable(value):
    """`to_jsonable` as it was before ADR 0024, word for word, as the reference."""
    from dataclasses import fields, is_dataclass
    from datetime import datetime
    from enum import Enum
    from fractions import Fraction

    if type(value) in frozenset({str, int, float, bool, type(None)}):
        return value
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Fraction):
        return round(float(value), 4)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: old_to_jsonable(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, dict):
        return {str(old_to_jsonable(k)): old_to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [old_to_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return value


def test_to_jsonable_is_what_it_was_for_every_kind_of_value():
    from datetime import datetime
    from fractions import Fraction

    from domain.rules.facts import to_jsonable
    from domain.vocabulary import AssessmentGrade

    rnd = random.Random("jsonable")

    def hashable(v) -> bool:
        try:
            hash(v)
        except TypeError:
            return False
        return True

    def value(depth: int):
        leaves = [lambda: rnd.choice(["#1", "#20", "", "x"]), lambda: rnd.randint(-5, 5), lambda: rnd.random(),
                  lambda: rnd.random() < 0.5, lambda: None, lambda: rnd.choice(list(Grade)),
                  lambda: rnd.choice(list(AssessmentGrade)), lambda: date(2011, rnd.randint(1, 12), 1),
                  lambda: datetime(2011, 9, 30, 17, rnd.randint(0, 59)), lambda: Fraction(rnd.randint(0, 300), 7),
                  lambda: ProviderFact("P1", LA, "childminders", opened_on=date(2009, 1, 1), refs=("#1", "#2")),
                  lambda: ProviderDecision, lambda: range(3)]
        if depth == 0 or rnd.random() < 0.4:
            return rnd.choice(leaves)()
        kind = rnd.choice(["list", "tuple", "set", "frozenset", "dict", "refs"])
        if kind == "refs":
            return tuple(f"#{rnd.randint(1, 99)}" for _ in range(rnd.randint(0, 5)))
        if kind == "dict":
            return {rnd.choice(["a", 1, Grade.GOOD, date(2011, 1, 1)]): value(depth - 1) for _ in range(3)}
        items = [value(depth - 1) for _ in range(rnd.randint(0, 4))]
        if kind in ("set", "frozenset"):
            items = [i for i in items if hashable(i)]
            return set(items) if kind == "set" else frozenset(items)
        return items if kind == "list" else tuple(items)

    for _ in range(3000):
        v = value(4)
        assert to_jsonable(v) == old_to_jsonable(v), v
        assert repr(to_jsonable(v)) == repr(old_to_jsonable(v)), v


# ----------------------------------------------------------- Block C, counted and kept per set of figures


def test_block_c_figures_counted_and_their_rows_kept_are_what_each_decision_gives():
    from fractions import Fraction

    from domain.rules.cutoff import decide_indicator
    from domain.rules.facts import IndicatorFact, to_jsonable
    from domain.rules.profile import BLOCK_C_KEPT, ProfileRow, indicator_rows

    rnd = random.Random("block-c")
    figures = []
    for n in range(60):
        occurred = date(rnd.randint(2007, 2011), 3, 31)
        published = None if rnd.random() < 0.15 else occurred + timedelta(days=rnd.randint(30, 500))
        figures.append(IndicatorFact(
            f"#c{n}", rnd.choice(["ks2", "ks4", "neet", "gap_fsm"]), f"{occurred.year - 1}-{occurred.year % 100:02d}",
            occurred, published, Fraction(rnd.randint(0, 1000), 10), rnd.choice([None, Fraction(rnd.randint(0, 1000), 10)]),
            rnd.choice([None, 55.5, 60]), rnd.choice(["higher", "lower"]), rnd.random() < 0.5, rnd.random() < 0.3))
    evidence = AuthorityEvidence(LA, indicators=tuple(figures))
    dates = [date(2008, 1, 1) + timedelta(days=rnd.randrange(1800)) for _ in range(60)]
    for as_at in dates + dates[::-1]:  # asked again after others pushed them out of the few kept
        result = decide_cutoff(evidence, F, as_at)
        decisions = [decide_indicator(i, as_at, F) for i in sorted(figures, key=lambda i: (
            i.occurred_on, i.published_on or date.max, i.ref))]
        assert [d for d in result.decisions if d.kind == "indicator"] == decisions
        counted = {d.ref for d in decisions if d.counts}
        assert [i.ref for i in result.indicators] == [d.ref for d in decisions if d.counts]
        assert {i.ref for i in result.indicators} == counted
        profile = build_profile_from(result, F, LA)
        assert profile.block_c == indicator_rows(result.indicators), as_at
        for row in profile.block_c:  # the row's JSON as the generic conversion gave it
            d = to_jsonable(row)
            d["at_least_in_line"] = row.at_least_in_line
            d["trend"] = [{"period": p, "value": to_jsonable(v)} for p, v in row.trend]
            assert repr(row.to_dict()) == repr(d)
    assert len(evidence.rule_indexes["block_c"]) <= BLOCK_C_KEPT
    for counts in [(0, 0, 0, 0), (1, 2, 3, 4), (7, 0, 0, 0), (1, 1, 1, 0), (3, 5, 0, 11)]:
        from domain.rules.profile import GradeCounts, band_for

        c = GradeCounts(*counts)
        row = ProfileRow("x", "X", c, band_for(c.pct_good_or_better, F), ("#1",))
        assert repr(row.to_dict()["pct"]) == repr({g.value: to_jsonable(c.pct(g)) for g in Grade})


def test_the_profile_of_a_cutoff_made_without_timelines_is_the_same():
    """A `CutoffResult` put together by hand (no timelines kept) gives the same profile."""
    rnd = random.Random("no-timelines")
    evidence = evidence_known_at(events := random_log(rnd, 30), len(events))
    for as_at in as_at_dates(evidence, F, rnd, 30):
        result = decide_cutoff(evidence, F, as_at)
        bare = replace(result, timelines=None, evidence=AuthorityEvidence(LA))
        assert build_profile_from(bare, F, LA).to_dict(layers=(1, 2)) == \
            build_profile_from(result, F, LA).to_dict(layers=(1, 2))
