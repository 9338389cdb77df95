"""The words of the framework: inspection groups, super groups and grade scales.

Table 1 of the 2011 arrangements (csa-2011-arrangements.txt ¶18, ¶22): 22 inspection
groups in 7 super groups; the first four super groups are universal services, the
rest targeted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum


@dataclass(frozen=True)
class Group:
    code: str
    label: str
    super_group: str


@dataclass(frozen=True)
class SuperGroup:
    code: str
    label: str
    universal: bool


SUPER_GROUPS: tuple[SuperGroup, ...] = (
    SuperGroup("early_years_childcare", "Early years and childcare", True),
    SuperGroup("nursery_primary", "Nursery and primary schools", True),
    SuperGroup("secondary", "Secondary schools", True),
    SuperGroup("post16", "Post-16", True),
    SuperGroup("special_prus", "Special schools and PRUs", False),
    SuperGroup("fostering_adoption", "Fostering and adoption", False),
    SuperGroup("childrens_homes", "Children's homes", False),
)

GROUPS: tuple[Group, ...] = (
    Group("childminders", "Childminders", "early_years_childcare"),
    Group("childcare_domestic", "Childcare on domestic premises", "early_years_childcare"),
    Group("childcare_non_domestic", "Childcare on non-domestic premises", "early_years_childcare"),
    Group("childrens_centres", "Children's centres", "early_years_childcare"),
    Group("nursery_primary_eyfs", "Nursery and primary schools: EYFS", "nursery_primary"),
    Group("primary_schools", "Primary schools", "nursery_primary"),
    Group("la_secondary", "LA maintained secondary schools", "secondary"),
    Group("academies_ctcs", "Academies and CTCs", "secondary"),
    Group("secondary_sixth_forms", "Secondary school sixth forms", "post16"),
    Group("fe_tertiary_colleges", "General FE and tertiary colleges", "post16"),
    Group("sixth_form_colleges", "Sixth form colleges", "post16"),
    Group("independent_specialist_colleges", "Independent specialist colleges", "post16"),
    Group("la_special", "LA maintained special schools", "special_prus"),
    Group("non_la_special", "Non-LA maintained and independent special schools", "special_prus"),
    Group("special_sixth_forms", "Secondary special school sixth forms", "special_prus"),
    Group("pupil_referral_units", "Pupil referral units", "special_prus"),
    Group("residential_special_schools", "Residential special schools", "special_prus"),
    Group("la_fostering", "LA fostering agencies", "fostering_adoption"),
    Group("la_adoption", "LA adoption agencies", "fostering_adoption"),
    Group("pv_fostering_adoption", "Private and voluntary fostering and adoption agencies", "fostering_adoption"),
    Group("la_childrens_homes", "LA children's homes", "childrens_homes"),
    Group("pv_childrens_homes", "Private and voluntary children's homes", "childrens_homes"),
)

GROUPS_BY_CODE: dict[str, Group] = {g.code: g for g in GROUPS}
SUPER_GROUPS_BY_CODE: dict[str, SuperGroup] = {s.code: s for s in SUPER_GROUPS}


def groups_of(super_group: str) -> tuple[Group, ...]:
    return tuple(g for g in GROUPS if g.super_group == super_group)


class Grade(StrEnum):
    """The four-point scale of provider and service judgements.

    The 2011 guidance writes the third point 'satisfactory' for settings and
    'adequate' for services (¶19, ¶36); both are the same point here.
    """

    OUTSTANDING = "outstanding"
    GOOD = "good"
    SATISFACTORY = "satisfactory"
    INADEQUATE = "inadequate"

    @property
    def rank(self) -> int:
        """4 for outstanding down to 1 for inadequate: higher is better."""
        return _RANK[self]

    @property
    def good_or_better(self) -> bool:
        return self.rank >= 3


_RANK = {Grade.OUTSTANDING: 4, Grade.GOOD: 3, Grade.SATISFACTORY: 2, Grade.INADEQUATE: 1}

# Words accepted for each point of the scale, as written by the frameworks of
# 2005-2011 and by the 2015 single inspection framework (used by the 2018
# management-information files). Lower-cased, surrounding spaces ignored.
GRADE_WORDS: dict[str, Grade] = {
    "outstanding": Grade.OUTSTANDING,
    "good": Grade.GOOD,
    "satisfactory": Grade.SATISFACTORY,
    "adequate": Grade.SATISFACTORY,
    "requires improvement": Grade.SATISFACTORY,
    "requires improvement to be good": Grade.SATISFACTORY,
    "inadequate": Grade.INADEQUATE,
}


def parse_grade(word: str) -> Grade | None:
    """The grade a word names, or None if it names no point of the scale."""
    return GRADE_WORDS.get(word.strip().lower()) if isinstance(word, str) else None


class AssessmentGrade(int, Enum):
    """Annex E / ¶62: the assessment grades."""

    POORLY = 1
    ADEQUATELY = 2
    WELL = 3
    EXCELLENTLY = 4

    @property
    def label(self) -> str:
        return "performs " + self.name.lower()


FULL_INSPECTION_SERVICES = ("safeguarding", "looked_after_children")
POLARITIES = ("higher", "lower")
