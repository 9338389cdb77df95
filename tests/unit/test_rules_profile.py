"""The performance profile (¶13-16, ¶27, ¶31-33, ¶60-61, Table 2, Annex A-B)."""

import json
from datetime import date
from fractions import Fraction

import pytest

from domain.framework import framework_for
from domain.rules.facts import (
    AuthorityEvidence,
    FullInspectionFact,
    IndicatorFact,
    ProviderFact,
    ProviderInspectionFact,
    SeriousCaseReviewFact,
    UnannouncedInspectionFact,
)
from domain.rules.profile import Band, band_for, build_profile, financial_year_of
from domain.vocabulary import Grade

F = framework_for(2011)
LA = "201"
AS_AT = date(2011, 11, 8)


class Area:
    """A small authority built provider by provider."""

    def __init__(self):
        self.providers: list[ProviderFact] = []
        self.inspections: list[ProviderInspectionFact] = []

    def add(self, group: str, *grades: Grade, ss=None, ea=None, dates=None, **provider_kw) -> str:
        urn = f"U{len(self.providers) + 1}"
        self.providers.append(ProviderFact(urn=urn, la_code=LA, group=group, **provider_kw))
        for n, grade in enumerate(grades):
            occurred, published = (dates[n] if dates else (date(2009 + n, 3, 1), date(2009 + n, 4, 1)))
            self.inspections.append(ProviderInspectionFact(
                ref=f"{urn}-{n}", urn=urn, occurred_on=occurred, published_on=published,
                overall_effectiveness=grade, staying_safe=ss or grade, enjoying_and_achieving=ea or grade))
        return urn

    def many(self, group: str, grade: Grade, count: int, **kw) -> None:
        for _ in range(count):
            self.add(group, grade, **kw)

    def profile(self, as_at=AS_AT, **evidence):
        return build_profile(AuthorityEvidence(LA, providers=tuple(self.providers),
                                               provider_inspections=tuple(self.inspections), **evidence), F, as_at)


# ------------------------------------------------------------------ Table 2 bands, exact


@pytest.mark.parametrize(
    "pct, band",
    [
        (Fraction(100), Band.DARK_GREEN), (Fraction(80), Band.DARK_GREEN),
        (Fraction(7999, 100), Band.LIGHT_GREEN), (Fraction(65), Band.LIGHT_GREEN),
        (Fraction(6499, 100), Band.AMBER), (Fraction(50), Band.AMBER),
        (Fraction(4999, 100), Band.RED), (Fraction(0), Band.RED),
    ],
)
def test_table_2_band_boundaries(pct, band):
    assert band_for(pct, F) is band


def test_no_inspected_provider_has_no_band():
    assert band_for(None, F) is None


@pytest.mark.parametrize(
    "good, other, band",
    [(4, 1, Band.DARK_GREEN), (79, 21, Band.LIGHT_GREEN), (13, 7, Band.LIGHT_GREEN),
     (129, 71, Band.AMBER), (1, 1, Band.AMBER), (49, 51, Band.RED)],
)
def test_group_band_from_counts_uses_exact_arithmetic(good, other, band):
    area = Area()
    area.many("primary_schools", Grade.GOOD, good)
    area.many("primary_schools", Grade.SATISFACTORY, other)
    row = area.profile().group("primary_schools")
    assert row.number_inspected == good + other
    assert row.band is band


def test_two_thirds_is_light_green_and_four_of_five_dark_green():
    # 2/3 = 66.67%; a float comparison of 4/5*100 could give 80.00000000000001 or 79.999...
    area = Area()
    area.many("childminders", Grade.OUTSTANDING, 2)
    area.many("childminders", Grade.INADEQUATE, 1)
    area.many("primary_schools", Grade.GOOD, 4)
    area.many("primary_schools", Grade.SATISFACTORY, 1)
    p = area.profile()
    assert p.group("childminders").pct_good_or_better == Fraction(200, 3)
    assert p.group("primary_schools").pct_good_or_better == 80
    assert p.group("primary_schools").band is Band.DARK_GREEN


# ------------------------------------------------------------------ layer 1 counts


def test_percentages_of_each_grade_and_good_or_better():
    area = Area()
    area.many("childcare_non_domestic", Grade.OUTSTANDING, 1)
    area.many("childcare_non_domestic", Grade.GOOD, 2)
    area.many("childcare_non_domestic", Grade.SATISFACTORY, 1)
    row = area.profile().group("childcare_non_domestic")
    assert row.counts.pct(Grade.OUTSTANDING) == 25
    assert row.counts.pct(Grade.GOOD) == 50
    assert row.counts.pct(Grade.SATISFACTORY) == 25
    assert row.counts.pct(Grade.INADEQUATE) == 0
    assert row.pct_good_or_better == 75
    assert row.band is Band.LIGHT_GREEN


def test_each_provider_counts_once_by_its_most_recent_inspection():
    area = Area()
    area.add("primary_schools", Grade.INADEQUATE, Grade.SATISFACTORY, Grade.GOOD)
    row = area.profile().group("primary_schools")
    assert row.number_inspected == 1
    assert row.counts.good == 1
    assert row.refs == ("U1-2",)


def test_the_most_recent_counted_inspection_stands_when_a_later_one_is_cut_off():
    area = Area()
    area.add("childminders", Grade.GOOD, Grade.INADEQUATE,
             dates=[(date(2009, 1, 1), date(2009, 2, 1)), (date(2011, 8, 20), date(2011, 9, 20))])
    row = area.profile().group("childminders")
    assert row.counts.good == 1 and row.counts.inadequate == 0


def test_super_group_figures_are_pooled_counts_of_its_groups():
    # ¶61: pooled, not the mean of group percentages (mean here would be (100 + 25) / 2 = 62.5)
    area = Area()
    area.many("la_secondary", Grade.GOOD, 1)
    area.many("academies_ctcs", Grade.GOOD, 1)
    area.many("academies_ctcs", Grade.SATISFACTORY, 3)
    p = area.profile()
    secondary = p.super_group("secondary")
    assert secondary.number_inspected == 5
    assert secondary.pct_good_or_better == 40
    assert secondary.band is Band.RED


def test_all_22_groups_and_7_super_groups_are_listed_even_when_empty():
    p = Area().profile()
    assert len(p.groups) == 22 and len(p.super_groups) == 7
    assert all(r.number_inspected == 0 and r.band is None for r in p.groups)
    assert p.present_super_groups == ()


def test_outcome_areas_are_banded_per_group():
    area = Area()
    area.many("primary_schools", Grade.GOOD, 3, ss=Grade.SATISFACTORY, ea=Grade.GOOD)
    p = area.profile()
    assert p.outcome_areas["staying_safe"][5].code == "primary_schools"
    assert p.outcome_areas["staying_safe"][5].band is Band.RED
    assert p.outcome_areas["enjoying_and_achieving"][5].band is Band.DARK_GREEN


def test_restructured_predecessor_stands_in_layer_one():
    area = Area()
    area.add("primary_schools", Grade.INADEQUATE, closed_on=date(2010, 8, 31), successor_urn="U2")
    area.add("primary_schools", opened_on=date(2010, 9, 1))
    row = area.profile().group("primary_schools")
    assert (row.number_inspected, row.counts.inadequate) == (1, 1)


def test_closed_providers_leave_layer_one_but_stay_in_layers_3_and_4():
    area = Area()
    area.add("primary_schools", Grade.GOOD, closed_on=date(2010, 12, 31))
    p = area.profile()
    assert p.group("primary_schools").number_inspected == 0
    assert p.providers[0]["urn"] == "U1" and p.providers[0]["in_layer_one"] is False
    assert p.history["2008-09"][5].number_inspected == 1


def test_layer_3_counts_every_inspection_by_financial_year():
    area = Area()
    area.add("primary_schools", Grade.SATISFACTORY, Grade.GOOD,
             dates=[(date(2010, 3, 31), date(2010, 4, 20)), (date(2010, 4, 1), date(2010, 5, 1))])
    p = area.profile()
    assert set(p.history) == {"2009-10", "2010-11"}
    assert p.history["2009-10"][5].counts.satisfactory == 1
    assert p.history["2010-11"][5].counts.good == 1


@pytest.mark.parametrize("day, year", [(date(2011, 3, 31), "2010-11"), (date(2011, 4, 1), "2011-12"),
                                       (date(1999, 4, 1), "1999-00")])
def test_financial_year(day, year):
    assert financial_year_of(day) == year


def test_layer_4_lists_every_grade_of_every_provider():
    area = Area()
    area.add("primary_schools", Grade.INADEQUATE, Grade.GOOD, name="St Anne's")
    p = area.profile()
    assert [i["overall_effectiveness"] for i in p.providers[0]["inspections"]] == [Grade.INADEQUATE, Grade.GOOD]


def test_early_years_band_without_no_children_on_roll_providers():
    area = Area()
    area.many("childminders", Grade.GOOD, 3)
    area.many("childminders", Grade.SATISFACTORY, 2, no_children_on_roll_from=date(2010, 1, 1))
    p = area.profile()
    assert p.super_group("early_years_childcare").band is Band.AMBER  # 3 of 5
    assert p.early_years_without_no_children_on_roll.band is Band.DARK_GREEN  # 3 of 3


# ------------------------------------------------------------------ Block B summary, Block C


def test_block_b_summary():
    evidence = dict(
        unannounced_inspections=(UnannouncedInspectionFact("U1", date(2010, 6, 1), date(2010, 7, 1), ("x",)),
                                 UnannouncedInspectionFact("U2", date(2011, 5, 1), date(2011, 6, 1))),
        full_inspections=(FullInspectionFact("S1", "safeguarding", date(2010, 4, 1), date(2010, 5, 1),
                                             Grade.SATISFACTORY),),
        serious_case_reviews=(SeriousCaseReviewFact("R1", date(2009, 1, 1), date(2009, 1, 1), True),
                              SeriousCaseReviewFact("R2", date(2010, 1, 1), date(2010, 1, 1), False)),
    )
    b = Area().profile(**evidence).block_b
    assert b["unannounced"]["ref"] == "U2" and b["unannounced"]["priority_action"] is False
    assert b["safeguarding"]["overall_effectiveness"] is Grade.SATISFACTORY
    assert b["looked_after_children"] is None
    assert (b["serious_case_reviews"]["adequate_or_better"], b["serious_case_reviews"]["total"]) == (1, 2)


def indicator(ref, name, period, value, year, polarity="higher", **kw):
    return IndicatorFact(ref, name, period, date(year, 7, 31), date(year, 12, 1), value, polarity=polarity, **kw)


def test_block_c_against_comparators_with_trend():
    items = (
        indicator("k1", "KS2", "2009", 73, 2009, similar_areas=72, national=72.1),
        indicator("k2", "KS2", "2010", 76, 2010, similar_areas=74, national=76),
        indicator("a1", "absence", "2010", 5.2, 2010, polarity="lower", similar_areas=5.0),
        indicator("n1", "CP plans reviewed", "2010", 90, 2010),
    )
    rows = {r.indicator: r for r in Area().profile(indicators=items).block_c}
    ks2 = rows["KS2"]
    assert ks2.in_line_with == {"similar_areas": True, "national": True}  # equal to national is in line
    assert ks2.one_year_improvement == 3
    assert [p for p, _ in ks2.trend] == ["2009", "2010"]
    assert rows["absence"].at_least_in_line is False  # lower is better, 5.2 > 5.0
    assert rows["CP plans reviewed"].banded is False and rows["CP plans reviewed"].at_least_in_line is None


def test_profile_to_dict_is_json():
    area = Area()
    area.many("primary_schools", Grade.GOOD, 2)
    d = area.profile().to_dict()
    json.dumps(d)
    primary = next(r for r in d["layer1"]["groups"] if r["code"] == "primary_schools")
    assert primary["band"] == "dark_green" and primary["pct_good_or_better"] == 100.0
    assert primary["pct_good_or_better_exact"] == "100/1"
