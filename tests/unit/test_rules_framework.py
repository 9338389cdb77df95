"""FrameworkSettings and the registry, checked against ¶12, ¶28, ¶33-34, ¶37, ¶74-81 and Annex E."""

from dataclasses import FrozenInstanceError
from datetime import UTC, date, datetime
from fractions import Fraction

import pytest

from domain.errors import DomainError, UnsupportedYear
from domain.framework import FRAMEWORKS, FrameworkIncomplete, framework_for
from domain.vocabulary import AssessmentGrade

F = framework_for(2011)


def test_the_three_years_of_the_reference_texts_are_registered():
    assert sorted(FRAMEWORKS) == [2009, 2010, 2011]
    assert framework_for(2009).year == 2009
    assert framework_for(2010).year == 2010


@pytest.mark.parametrize("year", [2008, 2012, 2015, 0, -1])
def test_any_other_year_is_refused_never_falls_back(year):
    with pytest.raises(UnsupportedYear) as raised:
        framework_for(year)
    assert str(year) in str(raised.value)
    assert isinstance(raised.value, DomainError)


def test_a_year_given_as_text_is_refused():
    with pytest.raises(UnsupportedYear):
        framework_for("2011")  # type: ignore[arg-type]


def test_2011_key_dates_are_those_of_paragraph_12():
    assert F.draft_letter_on == date(2011, 9, 23)
    assert F.appeal_outcomes_by == date(2011, 11, 4)
    assert F.pre_publication_letter_on == date(2011, 11, 4)
    assert F.publication_on == date(2011, 11, 8)
    assert F.profile_update_months == ("2011-06", "2011-08")


def test_2011_deadlines_are_five_pm_british_summer_time():
    # ¶74: 5.00pm on 30 September 2011; ¶76: 5.00pm on 17 October 2011 (BST, UTC+1)
    assert F.factual_accuracy_deadline.astimezone(UTC) == datetime(2011, 9, 30, 16, 0, tzinfo=UTC)
    assert F.appeal_deadline.astimezone(UTC) == datetime(2011, 10, 17, 16, 0, tzinfo=UTC)


def test_2011_cut_off_and_its_three_exceptions():
    assert F.profile_data_date == date(2011, 8, 31)
    assert F.education_exception == (date(2011, 7, 1), date(2011, 7, 31))
    assert F.care_exception == (date(2011, 7, 1), date(2011, 8, 31))
    assert F.safeguarding_concern_until == F.publication_on == date(2011, 11, 8)


def test_education_and_care_groups_are_known_groups_and_disjoint():
    assert F.education_groups <= F.group_codes
    assert F.care_groups <= F.group_codes
    assert not F.education_groups & F.care_groups
    assert "primary_schools" in F.education_groups
    assert "pupil_referral_units" in F.education_groups
    assert "childminders" not in F.education_groups
    assert F.care_groups == {"la_fostering", "la_adoption", "pv_fostering_adoption",
                             "la_childrens_homes", "pv_childrens_homes"}


def test_bands_majority_words_windows_margin_and_word_limit():
    assert (F.dark_green_from, F.light_green_from, F.amber_from) == (80, 65, 50)
    assert (F.very_large_majority_from, F.large_majority_from, F.majority_from) == (80, 65, 50)
    assert F.jar_after == date(2007, 4, 1)
    assert F.scr_window_start == date(2007, 4, 1)
    assert F.band_proximity_margin == 2
    assert F.statement_word_limit == 2000
    assert F.missing_super_group_reading == "ceil(k*n/7)"


@pytest.mark.parametrize(
    "share, word",
    [(Fraction(80), "very large majority"), (Fraction(7999, 100), "large majority"),
     (Fraction(65), "large majority"), (Fraction(6499, 100), "majority"),
     (Fraction(50), "majority"), (Fraction(4999, 100), "minority"), (Fraction(0), "minority")],
)
def test_majority_words_of_annex_e(share, word):
    assert F.majority_word(share) == word


def test_majority_needed_for_each_grade():
    assert F.majority_needed_for(AssessmentGrade.EXCELLENTLY) == 80
    assert F.majority_needed_for(AssessmentGrade.WELL) == 65
    assert F.majority_needed_for(AssessmentGrade.ADEQUATELY) == 50


@pytest.mark.parametrize(
    "k, present, of, expected",
    [(6, 7, 7, 6), (6, 6, 7, 6), (6, 5, 7, 5), (4, 6, 7, 4), (4, 5, 7, 3), (3, 5, 7, 3),
     (3, 4, 7, 2), (2, 3, 4, 2), (2, 2, 4, 1), (2, 1, 4, 1), (2, 0, 4, 0)],
)
def test_missing_super_groups_scale_by_ceil_k_n_over_7(k, present, of, expected):
    assert F.scaled_requirement(k, present, of) == expected


def test_settings_are_frozen():
    with pytest.raises(FrozenInstanceError):
        F.profile_data_date = date(2011, 9, 30)  # type: ignore[misc]


def test_unknown_2009_and_2010_dates_are_none_with_a_note():
    for year in (2009, 2010):
        f = framework_for(year)
        for setting in ("draft_letter_on", "publication_on", "profile_data_date", "appeal_deadline"):
            assert getattr(f, setting) is None
            assert f.note_for(setting), f"{year} {setting} needs a note"


def test_2009_profile_starts_in_june_2009():
    assert framework_for(2009).profile_update_months[0] == "2009-06"


def test_requiring_an_unknown_setting_raises_framework_incomplete():
    with pytest.raises(FrameworkIncomplete) as raised:
        framework_for(2010).require("profile_data_date")
    assert "2010" in str(raised.value) and "profile_data_date" in str(raised.value)
    assert isinstance(raised.value, DomainError)
    assert F.require("profile_data_date") == date(2011, 8, 31)
