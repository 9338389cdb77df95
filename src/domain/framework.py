"""The settings of one framework year of the children's services assessment.

Every date, threshold and reading the rules use lives here, in a frozen
`FrameworkSettings`, never as a loose constant (docs/rules.md, ADRs 0010-0019).
Paragraph numbers (¶) refer to csa-2011-arrangements.txt unless said otherwise.

The 2011 settings are complete. 2009 and 2010 are registered with what their
texts give; what the texts do not give is None, and the reason is in `notes`.
A rule that needs a setting a year does not have raises `FrameworkIncomplete`
rather than borrowing another year's value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from fractions import Fraction

from domain.errors import DomainError, UnsupportedYear
from domain.vocabulary import GROUPS, SUPER_GROUPS, AssessmentGrade

__all__ = [
    "BST",
    "FRAMEWORKS",
    "FrameworkIncomplete",
    "FrameworkSettings",
    "LATEST_YEAR",
    "UnsupportedYear",
    "framework_for",
]

# The 2011 deadlines (30 Sep, 17 Oct, 17:00) fall in British Summer Time, which
# ended on 30 October 2011: a fixed UTC+1 offset, so no tz database is needed.
BST = timezone(timedelta(hours=1), "BST")


class FrameworkIncomplete(DomainError):
    """A rule needs a setting that the framework year's text does not give."""

    def __init__(self, year: int, setting: str, note: str | None = None):
        self.year = year
        self.setting = setting
        why = f" ({note})" if note else ""
        super().__init__(f"framework {year} has no known {setting}{why}")


_EDUCATION_GROUPS = frozenset(
    {
        "nursery_primary_eyfs",
        "primary_schools",
        "la_secondary",
        "academies_ctcs",
        "secondary_sixth_forms",
        "fe_tertiary_colleges",
        "sixth_form_colleges",
        "independent_specialist_colleges",
        "la_special",
        "non_la_special",
        "special_sixth_forms",
        "pupil_referral_units",
        "residential_special_schools",
    }
)
_CARE_GROUPS = frozenset(
    {"la_fostering", "la_adoption", "pv_fostering_adoption", "la_childrens_homes", "pv_childrens_homes"}
)
_VULNERABLE_GROUPS = frozenset(
    {
        "pupil_referral_units",
        "la_special",
        "non_la_special",
        "special_sixth_forms",
        "residential_special_schools",
        "la_fostering",
        "la_adoption",
        "pv_fostering_adoption",
        "la_childrens_homes",
        "pv_childrens_homes",
    }
)


@dataclass(frozen=True)
class FrameworkSettings:
    """One year's framework. Dates are business dates; deadlines are aware datetimes."""

    year: int
    source: str

    # --- key dates, ¶12 and ¶74-81 -------------------------------------------
    profile_update_months: tuple[str, ...] = ()  # ¶12/¶49 give months only ("2011-06")
    draft_letter_on: date | None = None  # ¶12, ¶69
    factual_accuracy_deadline: datetime | None = None  # ¶74
    appeal_deadline: datetime | None = None  # ¶76
    appeal_outcomes_by: date | None = None  # ¶78
    pre_publication_letter_on: date | None = None  # ¶12
    publication_on: date | None = None  # ¶81

    # --- cut-off, ¶28-29 ---------------------------------------------------------
    profile_data_date: date | None = None  # ADR 0010: reports published on or before it count
    education_exception: tuple[date, date] | None = None  # ¶28 exception 1 (inclusive)
    care_exception: tuple[date, date] | None = None  # ¶28 exception 2 (inclusive)
    safeguarding_concern_until: date | None = None  # ¶28 exception 3: up to publication
    education_groups: frozenset[str] = _EDUCATION_GROUPS  # ADR 0011
    care_groups: frozenset[str] = _CARE_GROUPS  # ADR 0011
    block_c_published_by: date | None = None  # ADR 0016: Block C data by the draft letter
    childrens_homes_new_framework_from: date | None = None  # ¶30, informational

    # --- windows for Block B evidence ----------------------------------------
    jar_after: date | None = date(2007, 4, 1)  # ¶14 note 1, ¶37: strictly after
    scr_window_start: date | None = date(2007, 4, 1)  # ¶34 "since 2007"; Annex A 01/04/07
    reinspection_eligible_published_by: date | None = None  # ¶38, informational

    # --- bands and majority words, Table 2 and Annex E ------------------------
    dark_green_from: Fraction = Fraction(80)  # % good or better, Table 2
    light_green_from: Fraction = Fraction(65)
    amber_from: Fraction = Fraction(50)
    very_large_majority_from: Fraction = Fraction(80)  # Annex E
    large_majority_from: Fraction = Fraction(65)
    majority_from: Fraction = Fraction(50)

    # --- Block A minimum requirements, Annex E ---------------------------------
    super_groups_total: int = 7
    universal_total: int = 4
    top_two_required: tuple[tuple[AssessmentGrade, int], ...] = (
        (AssessmentGrade.EXCELLENTLY, 6),
        (AssessmentGrade.WELL, 4),
        (AssessmentGrade.ADEQUATELY, 3),
    )
    universal_top_two_required: tuple[tuple[AssessmentGrade, int], ...] = (
        (AssessmentGrade.WELL, 2),
        (AssessmentGrade.ADEQUATELY, 2),
    )
    missing_super_group_reading: str = "ceil(k*n/7)"  # ¶59, ADR 0012

    # --- Block B, ¶35-40 --------------------------------------------------------
    max_steps_up_after_reinspection: int = 1  # ¶39, ADR 0014

    # --- inspector-judgement considerations, ¶58 --------------------------------
    band_proximity_margin: Fraction = Fraction(2)  # percentage points, ADR 0017
    high_not_good_share: Fraction = Fraction(35)  # % satisfactory+inadequate, ADR 0017
    vulnerable_groups: frozenset[str] = _VULNERABLE_GROUPS  # ¶58 "such as PRUs", ADR 0017

    # --- appeals, ¶77 -----------------------------------------------------------
    statement_word_limit: int | None = 2000

    # --- no children on roll, ¶19 ----------------------------------------------
    compliance_checks_recorded_as_satisfactory_or_inadequate: bool = True

    notes: tuple[tuple[str, str], ...] = field(default=())

    # ------------------------------------------------------------------------
    def note_for(self, setting: str) -> str | None:
        return dict(self.notes).get(setting)

    def require(self, setting: str):
        """The value of a setting, or FrameworkIncomplete if the year's text lacks it."""
        value = getattr(self, setting)
        if value is None:
            raise FrameworkIncomplete(self.year, setting, self.note_for(setting))
        return value

    def scaled_requirement(self, k: int, present: int, of: int) -> int:
        """¶59 reading (ADR 0012): "k of `of`" becomes ceil(k*present/of) of those present."""
        if present >= of:
            return k
        return math.ceil(Fraction(k * present, of))

    def majority_word(self, share: Fraction) -> str:
        """Annex E: very large majority >= 80%, large majority 65-79%, majority 50-64%."""
        if share >= self.very_large_majority_from:
            return "very large majority"
        if share >= self.large_majority_from:
            return "large majority"
        if share >= self.majority_from:
            return "majority"
        return "minority"

    def majority_needed_for(self, grade: AssessmentGrade) -> Fraction:
        """The share Annex E asks of each grade: excellently 80, well 65, adequately 50."""
        return {
            AssessmentGrade.EXCELLENTLY: self.very_large_majority_from,
            AssessmentGrade.WELL: self.large_majority_from,
            AssessmentGrade.ADEQUATELY: self.majority_from,
            AssessmentGrade.POORLY: Fraction(0),
        }[grade]

    @property
    def band_cut_offs(self) -> tuple[Fraction, ...]:
        return (self.dark_green_from, self.light_green_from, self.amber_from)

    @property
    def universal_super_groups(self) -> frozenset[str]:
        return frozenset(s.code for s in SUPER_GROUPS if s.universal)

    @property
    def group_codes(self) -> frozenset[str]:
        return frozenset(g.code for g in GROUPS)


FRAMEWORK_2011 = FrameworkSettings(
    year=2011,
    source="csa-2011-arrangements.txt (Ofsted 110008, April 2011)",
    profile_update_months=("2011-06", "2011-08"),
    draft_letter_on=date(2011, 9, 23),
    factual_accuracy_deadline=datetime(2011, 9, 30, 17, 0, tzinfo=BST),
    appeal_deadline=datetime(2011, 10, 17, 17, 0, tzinfo=BST),
    appeal_outcomes_by=date(2011, 11, 4),
    pre_publication_letter_on=date(2011, 11, 4),
    publication_on=date(2011, 11, 8),
    profile_data_date=date(2011, 8, 31),
    education_exception=(date(2011, 7, 1), date(2011, 7, 31)),
    care_exception=(date(2011, 7, 1), date(2011, 8, 31)),
    safeguarding_concern_until=date(2011, 11, 8),
    block_c_published_by=date(2011, 9, 23),
    childrens_homes_new_framework_from=date(2011, 4, 1),
    reinspection_eligible_published_by=date(2010, 12, 17),
    notes=(
        ("profile_update_months", "¶12 and ¶49 give the months (June, August 2011), not the days"),
        ("profile_data_date", "ADR 0010: the August 2011 profile read as published by 31 Aug 2011"),
    ),
)

FRAMEWORK_2010 = FrameworkSettings(
    year=2010,
    source="csa-2011-arrangements.txt ¶2, ¶33, ¶38 (the 2010 text itself is not held)",
    reinspection_eligible_published_by=None,
    statement_word_limit=None,
    compliance_checks_recorded_as_satisfactory_or_inadequate=False,
    notes=(
        ("draft_letter_on", "not known: the 2010 arrangements are not among the reference texts"),
        ("factual_accuracy_deadline", "not known: 2010 text not held"),
        ("appeal_deadline", "not known: 2010 text not held"),
        ("appeal_outcomes_by", "not known: 2010 text not held"),
        ("pre_publication_letter_on", "not known: 2010 text not held"),
        ("publication_on", "not known: 2010 text not held"),
        ("profile_data_date", "not known: 2010 text not held; ¶38 mentions reports published by 17 Dec 2010"),
        ("safeguarding_concern_until", "not known: 2010 text not held"),
        ("block_c_published_by", "not known; 2010 Block C used the National Indicator Set (¶9, ¶13)"),
        ("dark_green_from", "¶33: the 2011 cut-offs 'remain as they were for 2010' (80/65/50)"),
        ("statement_word_limit", "not known: 2010 text not held"),
        (
            "compliance_checks_recorded_as_satisfactory_or_inadequate",
            "¶19 says 'In 2011'; whether 2010 recorded compliance checks so is not known",
        ),
    ),
)

FRAMEWORK_2009 = FrameworkSettings(
    year=2009,
    source="csa-2009-framework-overview.txt (framework published 14 May 2009, effective 1 Apr 2009)",
    profile_update_months=("2009-06", "2009-09", "2009-12"),
    statement_word_limit=None,
    compliance_checks_recorded_as_satisfactory_or_inadequate=False,
    notes=(
        ("profile_update_months", "quarterly from June 2009; only June is named, the rest follow quarterly"),
        ("draft_letter_on", "not known: 'provisional scores will be given in mid September' (no day)"),
        ("factual_accuracy_deadline", "not known from the overview"),
        ("appeal_deadline", "not known from the overview"),
        ("appeal_outcomes_by", "not known from the overview"),
        ("pre_publication_letter_on", "not known from the overview"),
        (
            "publication_on",
            "not known: the overview says 'end of November'; official-statistics-2011 says December 2009",
        ),
        ("profile_data_date", "not known: 'information available up to November 2009' (no day)"),
        ("safeguarding_concern_until", "not known from the overview"),
        ("block_c_published_by", "not known; Block C was the National Indicator Set under ECM outcomes"),
        ("dark_green_from", "not given by the overview; 80/65/50 kept as registered defaults"),
        ("jar_after", "overview: JARs 'where they took place after April 2007'"),
        ("statement_word_limit", "not known from the overview"),
    ),
)

FRAMEWORKS: dict[int, FrameworkSettings] = {
    2009: FRAMEWORK_2009,
    2010: FRAMEWORK_2010,
    2011: FRAMEWORK_2011,
}


# The year a view defaults to when none is asked for: the latest framework registered.
LATEST_YEAR = max(FRAMEWORKS)


def framework_for(year: int) -> FrameworkSettings:
    """The settings of a registered framework year; UnsupportedYear for any other year."""
    try:
        return FRAMEWORKS[year]
    except (KeyError, TypeError):
        supported = ", ".join(str(y) for y in sorted(FRAMEWORKS))
        raise UnsupportedYear(
            f"no framework is registered for year {year!r} (supported: {supported})"
        ) from None
