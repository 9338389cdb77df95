"""A deterministic, realistic synthetic dataset in the integration format (JSON Lines).

`generate(scale, out, seed)` writes providers of all 22 inspection groups for
the 152 authorities of 2011 in numbers close to England's around 2011, their
inspection histories from September 2005 to August 2012, the local-authority
inspections of Block B, the Block C indicators of 2007-2011, the published
grades of 2009 and 2010, and about 1% corrections and withdrawals.

The figures it is based on, and where they come from, are in
docs/performance.md ("The generated dataset"). They are approximate. The grade
mixes, the authorities' effects, Block B and Block C are calibrated so that the
national table as at the 2011 publication date comes close to 2011's published
outcome (OUTCOME_2011); `authority_postings` gives one authority's postings in
memory, to check that without writing or importing a file.

Properties the importer relies on:
- every line parses with `domain.postings.parse_posting`;
- the file is valid against state when imported in order: each authority's
  postings form one block, sorted by the day they would have been posted; a
  provider is registered before it is inspected, an inspection is on or after
  the registration, a publication is never before the inspection, a follow-up
  comes after its target and nothing follows a withdrawal;
- the same (scale, seed) gives the same bytes: each authority draws from its
  own `random.Random` streams seeded by (seed, la_code) (one for its providers,
  and one each for its local effects, Block B, Block C and follow-ups), so a
  scale's authorities are generated the same whichever others are in the file.
  What is drawn for all 152 together (their quality, the published grades of
  2009 and 2010) is drawn for all 152 whatever the scale.

The file is written authority by authority: only one authority's postings are
held in memory at a time.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from statistics import NormalDist
from typing import Any

from adapters.reference import authorities
from domain.authorities import Authority
from domain.vocabulary import GROUPS_BY_CODE, SUPER_GROUPS

START = date(2005, 9, 1)  # section 5 school inspections and the 2005 childcare framework begin
END = date(2012, 8, 31)  # the last day of inspection history generated
REFERENCE_DAY = date(2011, 8, 31)  # the stock of providers matches the national figures here
GRADES = ("outstanding", "good", "satisfactory", "inadequate")
_N = NormalDist()


@dataclass(frozen=True)
class Scale:
    authorities: int | None  # None: all 152
    fraction: float  # share of each authority's providers generated
    min_each: bool  # at least one provider of every group in every authority


SCALES: dict[str, Scale] = {
    "small": Scale(3, 0.1, True),
    "medium": Scale(20, 0.28, False),
    "national": Scale(None, 1.0, False),
}


@dataclass(frozen=True)
class GroupSpec:
    """One of the 22 groups: the national stock at 31 August 2011 and how it behaves."""

    code: str
    stock: int  # providers open in England at REFERENCE_DAY (approximate)
    grades: tuple[float, float, float, float]  # outstanding, good, satisfactory, inadequate (most recent, 2011)
    cycle: float  # years between inspections
    closure: float  # share of open providers closing each year
    start_share: float  # stock open on START relative to the 2011 stock
    urn: str  # URN prefix: "" (school-like number), "EY", "SC"
    actor: str
    per_la: int = 0  # exactly this many per authority (LA services), 0: by the authority's size
    inspected_from: date = START
    framework: str = ""


# --- calibration ----------------------------------------------------------------------------
# The set is fitted so that its national table (the 152 proposals as at the 2011 publication
# date, 8 November 2011) comes close to the 2011 outcome: official-statistics-2011.txt, Table 9
# and the key findings under "Children's Services Assessment" ("In 2011, 28 local authorities'
# children's services were judged as performing excellently"; 76 well, 33 adequately, 15 poorly).
# How, and what it came to: docs/performance.md, "The generated dataset".
OUTCOME_2011 = (28, 76, 33, 15)  # performs excellently / well / adequately / poorly
OUTCOME_TOLERANCE = 8  # each count of the generated table within this many of OUTCOME_2011 (the bound)

# Grade mixes (GroupSpec.grades: outstanding / good / satisfactory / inadequate) are those of the
# most recent inspection of the providers open on 31 August 2011; the generated stock comes out
# at them within a few points. Schools: 20/50/28/2 for all maintained schools at 31 August 2011
# (HMCI annual report 2010/11), by phase primary 72%, EYFS in schools 77%, secondary 68%, sixth
# forms 72%, special 79-83%, PRUs 64%, academies 60% good or better (weighted, 21/51/26/2).
# Childcare: "almost three quarters" good or better and 3% inadequate (HMCI annual report
# 2010/11). Children's homes: 26/54/18/2 for the full inspections of April 2011 - March 2012
# (Ofsted official statistics, June 2012), a little less for the 2011 stock. The others as
# before: approximate, from the annual report and the official statistics of the time.
G = GroupSpec
GROUP_SPECS: tuple[GroupSpec, ...] = (
    G("childminders", 57_000, (.14, .60, .23, .03), 3.0, .12, 1.19, "EY", "ofsted-early-years"),
    G("childcare_domestic", 800, (.13, .60, .24, .03), 3.0, .10, 0.9, "EY", "ofsted-early-years"),
    G("childcare_non_domestic", 25_000, (.16, .61, .20, .03), 3.0, .09, 1.0, "EY", "ofsted-early-years"),
    G("childrens_centres", 3_600, (.09, .56, .33, .02), 5.0, .01, 0.25, "", "ofsted-social-care",
      inspected_from=date(2010, 6, 1), framework="childrens_centres_2010"),
    G("nursery_primary_eyfs", 16_500, (.21, .56, .21, .02), 3.0, .008, 1.03, "", "ofsted-schools"),
    G("primary_schools", 16_900, (.20, .52, .26, .02), 3.0, .008, 1.03, "", "ofsted-schools"),
    G("la_secondary", 3_050, (.22, .46, .28, .04), 3.0, .006, 1.05, "", "ofsted-schools"),
    G("academies_ctcs", 200, (.17, .43, .34, .06), 3.0, .0, 0.15, "", "ofsted-schools"),
    G("secondary_sixth_forms", 1_800, (.22, .50, .26, .02), 3.0, .006, 1.0, "", "ofsted-schools"),
    G("fe_tertiary_colleges", 230, (.13, .52, .30, .05), 4.0, .01, 1.08, "", "ofsted-learning-skills"),
    G("sixth_form_colleges", 94, (.25, .50, .23, .02), 4.0, .0, 1.0, "", "ofsted-learning-skills"),
    G("independent_specialist_colleges", 70, (.15, .55, .27, .03), 4.0, .01, 0.95, "", "ofsted-learning-skills"),
    G("la_special", 980, (.33, .48, .17, .02), 3.0, .008, 1.03, "", "ofsted-schools"),
    G("non_la_special", 380, (.24, .52, .21, .03), 3.0, .01, 0.95, "", "ofsted-schools"),
    G("special_sixth_forms", 420, (.30, .51, .17, .02), 3.0, .005, 1.0, "", "ofsted-schools"),
    G("pupil_referral_units", 430, (.15, .49, .31, .05), 3.0, .01, 1.0, "", "ofsted-schools"),
    G("residential_special_schools", 330, (.25, .55, .17, .03), 1.0, .01, 1.0, "SC", "ofsted-social-care"),
    G("la_fostering", 152, (.08, .58, .31, .03), 3.0, .0, 1.0, "SC", "ofsted-social-care", per_la=1),
    G("la_adoption", 152, (.10, .62, .25, .03), 3.0, .0, 1.0, "SC", "ofsted-social-care", per_la=1),
    G("pv_fostering_adoption", 330, (.14, .62, .21, .03), 3.0, .03, 0.85, "SC", "ofsted-social-care"),
    G("la_childrens_homes", 480, (.20, .58, .20, .02), 0.5, .04, 1.15, "SC", "ofsted-social-care"),
    G("pv_childrens_homes", 1_520, (.22, .56, .20, .02), 0.5, .06, 0.95, "SC", "ofsted-social-care"),
)
GROUP_SPECS_BY_CODE = {g.code: g for g in GROUP_SPECS}
OUTCOME_GROUPS_FROM = {"childrens_centres": date(2010, 6, 1)}

# Approximate resident population (thousands, mid-2010) by type of authority, with the
# largest and the smallest named: the share of providers follows it.
_TYPE_POP = {"Counties": 815, "Metropolitan Districts": 314, "London Boroughs": 256, "Unitary Authorities": 210}
_NAMED_POP = {"886": 1_460, "881": 1_390, "850": 1_320, "888": 1_170, "330": 1_070, "936": 1_130,
              "919": 1_120, "383": 750, "926": 860, "878": 750, "373": 555, "352": 500, "857": 37,
              "201": 7, "420": 2}

# Block C (Annex C): indicator, value in 2007, change a year, spread between authorities,
# polarity, attainment, gap, end of the data period (month, day), month of publication.
INDICATORS: tuple[tuple[str, float, float, float, str, bool, bool, tuple[int, int], int], ...] = (
    ("EYFS_GOOD_LEVEL", 46.0, 3.2, 5.0, "higher", True, False, (7, 31), 11),
    ("EYFS_GAP_LOWEST_20", 36.0, -1.0, 3.5, "lower", False, True, (7, 31), 11),
    ("KS2_L4_EM", 71.0, 0.8, 4.0, "higher", True, False, (7, 31), 12),
    ("KS2_FSM_GAP", 24.0, -0.9, 4.0, "lower", False, True, (7, 31), 12),
    ("KS4_5AC_EM", 46.0, 3.2, 5.5, "higher", True, False, (7, 31), 1),
    ("KS4_FSM_GAP", 28.0, -0.2, 5.0, "lower", False, True, (7, 31), 1),
    ("KS4_SEN_GAP", 46.0, 0.3, 5.0, "lower", False, True, (7, 31), 1),
    ("L2_AT_19", 73.0, 2.0, 4.0, "higher", True, False, (7, 31), 3),
    ("L3_AT_19", 47.0, 2.0, 6.0, "higher", True, False, (7, 31), 3),
    ("NEET_16_18", 7.7, -0.4, 1.8, "lower", False, False, (12, 31), 4),
    ("PERSISTENT_ABSENCE_SECONDARY", 6.0, -0.45, 1.3, "lower", False, False, (7, 31), 3),
    ("PERMANENT_EXCLUSIONS", 0.12, -0.01, 0.05, "lower", False, False, (7, 31), 7),
    ("LAC_KS2_L4_EM", 31.0, 1.7, 12.0, "higher", True, False, (7, 31), 12),
    ("LAC_KS4_5AC", 12.0, 0.8, 7.0, "higher", True, False, (7, 31), 12),
    ("LAC_PLACEMENT_MOVES_3PLUS", 12.0, -0.25, 3.0, "lower", False, False, (3, 31), 9),
    ("LAC_LONG_TERM_STABILITY", 65.0, 0.7, 6.0, "higher", False, False, (3, 31), 9),
    ("CP_PLAN_SECOND_TIME", 13.4, 0.0, 4.0, "lower", False, False, (3, 31), 9),
    ("CP_REVIEWED_IN_TIME", 96.0, 0.3, 3.0, "higher", False, False, (3, 31), 9),
    ("INITIAL_ASSESSMENT_7_DAYS", 70.0, 1.8, 10.0, "higher", False, False, (3, 31), 9),
    ("CORE_ASSESSMENT_35_DAYS", 78.0, -0.8, 9.0, "higher", False, False, (3, 31), 9),
    ("ADOPTED_WITHIN_12_MONTHS", 77.0, -0.8, 10.0, "higher", False, False, (3, 31), 9),
    ("CARE_LEAVERS_EET", 65.0, -1.5, 10.0, "higher", False, False, (3, 31), 9),
    ("CARE_LEAVERS_ACCOMMODATION", 88.0, 0.5, 5.0, "higher", False, False, (3, 31), 9),
    ("FIRST_TIME_ENTRANTS_YJ", 2000.0, -250.0, 450.0, "lower", False, False, (3, 31), 10),
    ("UNDER_18_CONCEPTIONS", 41.0, -1.5, 8.0, "lower", False, False, (12, 31), 2),
    ("OBESITY_YEAR_6", 18.3, 0.2, 2.5, "lower", False, False, (7, 31), 12),
)
INDICATOR_YEARS = (2007, 2008, 2009, 2010, 2011)

# The comparator(s) each indicator is banded against, from Annex C of csa-2011-arrangements.txt
# (¶46-48): similar areas where performance follows deprivation, national where it does not,
# both for educational attainment; none ("not banded") for indicators Annex C lists so, or
# does not list (the gaps, which count through "gaps narrowed", exclusions, first-time entrants).
_BOTH, _SIMILAR, _NATIONAL, _NONE = ("similar_areas", "national"), ("similar_areas",), ("national",), ()
ANNEX_C_COMPARATORS: dict[str, tuple[str, ...]] = {
    "EYFS_GOOD_LEVEL": _BOTH, "EYFS_GAP_LOWEST_20": _NONE, "KS2_L4_EM": _BOTH, "KS2_FSM_GAP": _NONE,
    "KS4_5AC_EM": _BOTH, "KS4_FSM_GAP": _NONE, "KS4_SEN_GAP": _NONE, "L2_AT_19": _BOTH, "L3_AT_19": _BOTH,
    "NEET_16_18": _SIMILAR, "PERSISTENT_ABSENCE_SECONDARY": _SIMILAR, "PERMANENT_EXCLUSIONS": _NONE,
    "LAC_KS2_L4_EM": _BOTH, "LAC_KS4_5AC": _BOTH, "LAC_PLACEMENT_MOVES_3PLUS": _NATIONAL,
    "LAC_LONG_TERM_STABILITY": _NATIONAL, "CP_PLAN_SECOND_TIME": _NATIONAL, "CP_REVIEWED_IN_TIME": _NONE,
    "INITIAL_ASSESSMENT_7_DAYS": _NATIONAL, "CORE_ASSESSMENT_35_DAYS": _NATIONAL,
    "ADOPTED_WITHIN_12_MONTHS": _NATIONAL, "CARE_LEAVERS_EET": _NATIONAL, "CARE_LEAVERS_ACCOMMODATION": _NATIONAL,
    "FIRST_TIME_ENTRANTS_YJ": _NONE, "UNDER_18_CONCEPTIONS": _NATIONAL, "OBESITY_YEAR_6": _SIMILAR,
}
# An indicator's value: national + polarity x spread x (weights of the authority's quality, its
# area's circumstances (only where compared with similar areas), the indicator's own standing
# there, a year's noise); the similar-areas figure: national + polarity x spread x (the same
# circumstances, the neighbours' own noise). The authority's quality weighs most, so its
# indicators move together and Block C goes with the rest of its assessment.
BLOCK_C_WEIGHTS = (0.7, 0.4, 0.4, 0.3, 0.2)

# The 2009 and 2010 published assessment grades (official-statistics-2011.txt, Table 9):
# excellently / well / adequately / poorly, given by the authorities' rank of quality.
PUBLISHED_GRADES = {2009: ((10, 4), (93, 3), (40, 2), (9, 1)), 2010: ((20, 4), (78, 3), (39, 2), (15, 1))}
PUBLISHED_ON = {2009: date(2009, 12, 9), 2010: date(2010, 12, 9)}

SAFEGUARDING_SUBS = ("children_and_young_people_are_safe", "quality_of_provision", "ambition_and_prioritisation",
                     "leadership_and_management", "performance_management", "partnership_working",
                     "equality_and_diversity")
LAC_SUBS = ("being_healthy", "staying_safe", "enjoying_and_achieving", "making_a_positive_contribution",
            "economic_wellbeing", "quality_of_provision", "leadership_and_management")
FULL_SERVICES = ("safeguarding", "looked_after_children")
PRIORITY_AREAS = ("Timeliness of initial assessments", "Management oversight of referrals",
                  "Thresholds for child protection enquiries", "Recording of decisions on contacts",
                  "Capacity of the duty and assessment team", "Response to domestic violence notifications")

# The authority's standing in safeguarding (its full inspections and priority actions): this
# weight of its quality plus its own (unit variance in all).
SAFEGUARDING_ON_QUALITY = 0.7

# Unannounced inspections of contact, referral and assessment, one a cycle: (from, to, share
# with an area for priority action, found in the authorities weakest in safeguarding, give or
# take PRIORITY_ACTION_NOISE). Cycle 1 (June 2009 - August 2010, all 152:
# official-statistics-2011.txt, Glossary): about one in twenty. The statistics give no figure
# (Methodology 3: first-year priority actions are left out, their criteria having been revised
# in April 2010); in the 2009 assessment three councils were limited to 'performs poorly' by
# unannounced findings (Ofsted's memorandum to the Children, Schools and Families Committee,
# HC 276, March 2010), of the few dozen inspected by then. Cycle 2 (September 2010 - September
# 2011): three of the 135 (key findings, "Unannounced inspections"; Table 7). Cycle 3: about as
# cycle 2.
PRIORITY_ACTION_NOISE = 0.5
UNANNOUNCED_CYCLES = ((date(2009, 6, 8), date(2010, 8, 27), 0.05),
                      (date(2010, 9, 6), date(2011, 9, 30), 0.022),
                      (date(2011, 10, 3), date(2012, 12, 14), 0.03))
# "17 local authorities were awaiting a second inspection" at 30 September 2011 (key findings,
# "Unannounced inspections"; Table 8): theirs comes in October - December 2011.
AWAITING_SECOND_UNANNOUNCED = 17 / 152

# First inspections of safeguarding and looked after children, drawn evenly over this window so
# that about 79 of the 152 authorities are inspected by 30 September 2011 (28 of its 53 months):
# official-statistics-2011.txt, Methodology 2 ("as at 30 September 2011, 79 local authorities
# had been inspected") and Table 1 note 2. The window runs past END; those after END are not
# generated.
FULL_INSPECTION_WINDOW = (date(2009, 6, 1), date(2013, 10, 31))

# Overall effectiveness of a first inspection, outstanding / good / adequate / inadequate:
# official-statistics-2011.txt, Table 1 (safeguarding 1/24/41/19 of 85, looked after children
# 0/35/43/3 of 81) less the six re-inspections (key findings: 17 authorities found inadequate
# for safeguarding, two of them twice; Table 1 note 2), so safeguarding 1/22/39/17 of 79.
FULL_GRADES = {"safeguarding": ((.013, .278, .494, .215), SAFEGUARDING_SUBS),
               "looked_after_children": ((.001, .43, .53, .04), LAC_SUBS)}

# Share of provider inspections posted by the inspection system on the day and given
# their publication date by the publishing system later (the rest arrive published).
PUBLISHED_LATER = 0.95

# Ledger events a posting of each family becomes (Evidence.Recorded; Provider event +
# ClientKey.Reserved; follow-up event + ClientKey.Reserved).
_LEDGER_EVENTS = {"provider_registered": 2, "provider_closed": 2, "provider_restructured": 2,
                  "provider_no_children_on_roll": 2, "publication_date_supplied": 2, "correction": 2,
                  "withdrawal": 2}


# Provider grades: score = the provider's own standing + its authority's local effect + the
# inspection's noise + a trend, cut at the group's mix (GroupSpec.grades). The first three add
# up to unit variance, so the mix is that of an inspection at GRADE_TREND_CENTRE.
# The local effect is small: fitted to OUTCOME_2011. The bands sit close to the national mixes
# (65% good or better for the top two, against 65-77% nationally), so a wider spread between
# authorities puts many more of them below the bands than 2011's outcome allows.
AUTHORITY_ON_PROVIDERS = 0.12  # the spread of an authority's local effect (in provider-score units)
INSPECTION_NOISE = 0.45  # one inspection's own noise around the provider's standing
GRADE_TREND_PER_YEAR = 0.05  # the slow improvement of the sectors over the years
# The trend is zero here: the typical date of the most recent inspection of the 2011 stock (a
# three-year cycle to August 2011), so that stock comes out at the groups' mixes.
GRADE_TREND_CENTRE = 2010.2

# The outcome judgements (layer 2): the overall score plus a sector's shift plus noise.
# Schools: personal development and well-being good or better in 91% of schools against about
# two thirds overall (HMCI annual report 2008/09), so staying safe sits well above overall
# effectiveness, while achievement follows it. Childcare: providers "are best at helping
# children to enjoy and achieve; 73% are good or outstanding" against 60% overall (Ofsted,
# Leading to excellence, 2008). Elsewhere staying safe a little above, as before.
# (0.6 and 0.35: those shares' distance on the normal scale, about.)
STAYING_SAFE_ABOVE = {"ofsted-schools": 0.6, "ofsted-early-years": 0.25, "ofsted-social-care": 0.25,
                      "ofsted-learning-skills": 0.25}
ENJOYING_ABOVE = {"ofsted-schools": 0.0, "ofsted-early-years": 0.35, "ofsted-social-care": 0.0,
                  "ofsted-learning-skills": 0.0}
OUTCOME_NOISE = 0.35
# Enjoying and achieving also follows the authority's quality directly (its pupils' attainment,
# the quality that drives its Block C attainment indicators). Fitted to OUTCOME_2011: it
# separates the authorities performing excellently from those performing adequately.
ENJOYING_ON_QUALITY = 0.1

# How much of a super group's local effect is the authority's quality (a correlation): the rest
# is the super group's own, so an authority weak in its schools need not be weak in its
# childcare, most of which it does not run. Fitted to OUTCOME_2011 with AUTHORITY_ON_PROVIDERS.
LOCAL_SHARE_OF_QUALITY = 0.6


def _local_effects(seed: int, la_code: str, quality: float) -> dict[str, float]:
    """The authority's effect on its providers' scores, by group: one draw per super group
    (its own stream), correlated through the authority's quality."""
    rng = random.Random(f"csa-gen:{seed}:{la_code}:local")
    rho = LOCAL_SHARE_OF_QUALITY
    by_super = {sg.code: AUTHORITY_ON_PROVIDERS * (rho * quality + math.sqrt(1 - rho ** 2) * rng.gauss(0, 1))
                for sg in SUPER_GROUPS}
    return {code: by_super[g.super_group] for code, g in GROUPS_BY_CODE.items()}


def _provider_spread() -> float:
    """The spread of the providers' own latent standing (the rest of the unit variance)."""
    return math.sqrt(max(0.05, 1 - AUTHORITY_ON_PROVIDERS ** 2 - INSPECTION_NOISE ** 2))


def scale_names() -> tuple[str, ...]:
    return tuple(SCALES)


def _population(a: Authority) -> float:
    return _NAMED_POP.get(a.la_code, _TYPE_POP.get(a.type, 210))


@lru_cache
def _total_population() -> float:
    return sum(_population(a) for a in authorities().all)


def authority_weight(a: Authority) -> float:
    """The authority's share of England's population (approximate; the 152 shares sum to 1)."""
    return _population(a) / _total_population()


def chosen_authorities(scale: str, seed: int) -> list[Authority]:
    spec = SCALES[scale]
    everyone = list(authorities().all)
    if spec.authorities is None:
        return everyone
    rng = random.Random(f"csa-gen:{seed}:authorities")
    candidates = [a for a in everyone if a.la_code not in ("201", "420")]
    picked = {a.la_code for a in rng.sample(candidates, spec.authorities)}
    return [a for a in everyone if a.la_code in picked]


def authority_quality(seed: int) -> dict[str, float]:
    """A latent quality per authority (standard normal), drawn for all 152 whatever the scale."""
    rng = random.Random(f"csa-gen:{seed}:quality")
    return {a.la_code: rng.gauss(0, 1) for a in authorities().all}


def generate(scale: str, out: Path, seed: int = 2011, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Write the dataset of this scale to `out` (JSON Lines); return a summary."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: give one of {', '.join(SCALES)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    by_type: Counter[str] = Counter()
    by_group: Counter[str] = Counter()
    chosen = chosen_authorities(scale, seed)
    lines = 0
    size = 0
    with out.open("w", encoding="utf-8", newline="\n") as fh:
        for a in chosen:
            gen = _generated(a, scale, seed)
            buf = []
            for raw in gen.postings:
                buf.append(json.dumps(raw, ensure_ascii=False, separators=(",", ":")))
                by_type[raw["type"]] += 1
            text = "\n".join(buf) + "\n"
            fh.write(text)
            size += len(text.encode("utf-8"))
            lines += len(buf)
            by_group.update(gen.providers_by_group)
            if progress:
                progress(len(buf))
    events = sum(n * _LEDGER_EVENTS.get(t, 1) for t, n in by_type.items())
    return {"scale": scale, "seed": seed, "path": str(out), "authorities": len(chosen), "lines": lines,
            "bytes": size, "ledger_events": events, "providers": sum(by_group.values()),
            "by_type": dict(sorted(by_type.items())), "providers_by_group": dict(sorted(by_group.items()))}


def authority_postings(la_code: str, scale: str = "national", seed: int = 2011) -> list[dict[str, Any]]:
    """One authority's postings, in the file's order, as `generate` writes them for this scale
    and seed (whichever other authorities are generated): to check what the set leads to
    without writing or importing a file."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}: give one of {', '.join(SCALES)}")
    return _generated(authorities().resolve(la_code), scale, seed).postings


def _generated(a: Authority, scale: str, seed: int) -> _Authority:
    quality, ranks = _national_draws(seed)
    gen = _Authority(a, seed, SCALES[scale], quality[a.la_code], ranks[a.la_code])
    gen.postings = [raw for _, _, raw in sorted(gen.run(), key=lambda p: (p[0], p[1]))]
    return gen


@lru_cache(maxsize=4)
def _national_draws(seed: int) -> tuple[dict[str, float], dict[str, dict[int, int]]]:
    """What is drawn for all 152 whatever the scale: the authorities' quality and their
    published 2009 and 2010 grades."""
    quality = authority_quality(seed)
    return quality, _published_grades(quality, _found_poorly(seed, quality))


def _found_poorly(seed: int, quality: dict[str, float]) -> dict[str, set[int]]:
    """The years whose published grade an authority's own Block B makes 'performs poorly': an
    inadequate full inspection, or an area for priority action, published by 31 August of that
    year (as ¶38 says of 2010: "performing poorly in their 2010 children's services assessment
    because of an inadequate judgement for safeguarding"). Block B draws from its own stream,
    so this is the Block B the file will hold, for all 152 whatever the scale."""
    everyone = SCALES["national"]
    found: dict[str, set[int]] = {}
    for a in authorities().all:
        gen = _Authority(a, seed, everyone, quality[a.la_code], {})
        gen.stream("block_b")
        gen.block_b()
        found[a.la_code] = {year for year in PUBLISHED_GRADES for raw, pub in gen.items
                            if pub <= date(year, 8, 31) and _poorly_finding(raw)}
    return found


def _poorly_finding(raw: dict[str, Any]) -> bool:
    if raw["type"] == "full_inspection":
        return raw["overall_effectiveness"] == "inadequate"
    return raw["type"] == "unannounced_inspection" and bool(raw["priority_actions"])


def _published_grades(quality: dict[str, float], found_poorly: dict[str, set[int]] | None = None
                      ) -> dict[str, dict[int, int]]:
    """Each year's grades by the authorities' rank (quality plus a year's noise, those found
    poorly that year last), so the national counts are exactly those published."""
    found_poorly = found_poorly or {}
    out: dict[str, dict[int, int]] = {code: {} for code in quality}
    for year, bands in PUBLISHED_GRADES.items():
        rng = random.Random(f"csa-gen:published:{year}")
        key = {c: (year in found_poorly.get(c, ()), -(quality[c] + rng.gauss(0, 0.5))) for c in quality}
        order = sorted(quality, key=key.__getitem__)
        i = 0
        for count, grade in bands:
            for code in order[i:i + count]:
                out[code][year] = grade
            i += count
    return out


def _weekday(d: date) -> date:
    return d + timedelta(days=(7 - d.weekday()) % 7) if d.weekday() >= 5 else d


class _Authority:
    """The postings of one authority: (posting day ordinal, sequence, raw posting)."""

    def __init__(self, a: Authority, seed: int, scale: Scale, quality: float, published: dict[int, int]):
        self.a = a
        self.la = a.la_code
        self.seed = seed
        self.rng = random.Random(f"csa-gen:{seed}:{a.la_code}")  # the providers' stream; see run()
        self.scale = scale
        self.quality = quality
        self.published = published
        self.out: list[tuple[int, int, dict[str, Any]]] = []
        self.postings: list[dict[str, Any]] = []  # `out` in the file's order, once run
        self.seq = 0
        self.ids = 0
        self.urns: Counter[str] = Counter()
        self.providers_by_group: Counter[str] = Counter()
        self.items: list[tuple[dict[str, Any], date]] = []  # evidence postings that may be followed up
        self.late_histories: list[tuple[GroupSpec, _Provider]] = []
        self.local = _local_effects(seed, a.la_code, quality)

    # --- output --------------------------------------------------------------

    def emit(self, day: date, raw: dict[str, Any]) -> dict[str, Any]:
        self.seq += 1
        self.out.append((day.toordinal(), self.seq, raw))
        return raw

    def client_id(self, tag: str) -> str:
        self.ids += 1
        return f"gen-{self.la}-{tag}-{self.ids:07d}"

    def stream(self, part: str) -> None:
        """Draw the next part from its own stream, seeded by (seed, la_code, part): a change to
        how many draws one part makes leaves the others as they were."""
        self.rng = random.Random(f"csa-gen:{self.seed}:{self.la}:{part}")

    def run(self) -> list[tuple[int, int, dict[str, Any]]]:
        for g in GROUP_SPECS:
            self.group(g)
        for g, p in self.late_histories:  # academies converted from LA secondary schools
            self.history(g, p)
        self.stream("block_b")
        self.block_b()
        self.stream("block_c")
        self.block_c()
        self.published_grades()
        self.stream("follow_ups")
        self.follow_ups()
        return self.out

    # --- providers -------------------------------------------------------------

    def count(self, g: GroupSpec) -> int:
        if g.per_la:
            return g.per_la
        expected = g.stock * authority_weight(self.a) * self.scale.fraction
        n = int(expected) + (self.rng.random() < expected - int(expected))
        return max(n, 1) if self.scale.min_each else n

    def new_urn(self, g: GroupSpec) -> str:
        self.urns[g.urn] += 1
        n = self.urns[g.urn]
        return f"{g.urn}{self.la}{n:05d}" if g.urn else f"{self.la}{n:04d}"

    def group(self, g: GroupSpec) -> None:
        target = self.count(g)
        if target == 0:
            return
        rng = self.rng
        open_now = target if g.per_la else round(target * g.start_share)
        providers = [self.provider(g, _random_day(rng, date(1975, 1, 1), START - timedelta(days=1)))
                     for _ in range(open_now)]
        # Year by year from September 2005: closures, and openings that bring the stock
        # towards the 2011 figure (then hold it).
        for year in range(2005, 2012):
            y0, y1 = date(year, 9, 1), date(year + 1, 8, 31)
            alive = [p for p in providers if p.closed is None and p.restructured is None]
            for p in alive:
                if g.closure and rng.random() < g.closure:
                    p.closed = _random_day(rng, max(y0, p.opened + timedelta(days=30)), y1)
            still = sum(1 for p in providers if p.closed is None or p.closed > y1)
            goal = target if year >= 2010 else round(open_now + (target - open_now) * (year - 2004) / 6)
            if g.code == "academies_ctcs" and year >= 2010:
                goal = target  # conversions below add the rest
            for _ in range(max(0, goal - still)):
                providers.append(self.provider(g, _random_day(rng, y0, y1)))
        if g.code == "la_secondary":
            self.conversions(providers)
        for p in providers:
            self.history(g, p)

    def provider(self, g: GroupSpec, opened: date) -> _Provider:
        self.providers_by_group[g.code] += 1
        p = _Provider(self.new_urn(g), g, opened, self.rng.gauss(0, _provider_spread()))
        name = _name(g, self.rng, p.urn)
        self.emit(opened, {"type": "provider_registered", "client_id": self.client_id("reg"), "actor": g.actor,
                           "urn": p.urn, "la_code": self.la, "group": g.code, "name": name,
                           "occurred_on": opened.isoformat()})
        return p

    def conversions(self, schools: list[_Provider]) -> None:
        """LA maintained secondary schools converting to academies from September 2010 (¶20)."""
        academies = GROUP_SPECS_BY_CODE["academies_ctcs"]
        for p in schools:
            if p.closed is not None or p.opened > date(2010, 6, 1):
                continue
            r = self.rng.random()
            day = None
            if r < 0.12:
                day = _random_day(self.rng, date(2010, 9, 1), date(2011, 8, 31))
            elif r < 0.30:
                day = _random_day(self.rng, date(2011, 9, 1), END)
            if day is None:
                continue
            day = date(day.year, day.month, 1)
            successor = self.provider(academies, day)
            successor.latent = p.latent + self.rng.gauss(0.1, 0.3)
            successor.first_due = day + timedelta(days=self.rng.randint(400, 1100))
            p.restructured = day
            self.emit(day, {"type": "provider_restructured", "client_id": self.client_id("res"),
                            "actor": academies.actor, "urn": p.urn, "successor_urn": successor.urn,
                            "occurred_on": day.isoformat()})
            self.late_histories.append((academies, successor))

    def history(self, g: GroupSpec, p: _Provider) -> None:
        rng = self.rng
        stop = min(x for x in (p.closed, p.restructured, END + timedelta(days=1)) if x is not None)
        nocr = None
        if g.code in ("childminders", "childcare_domestic", "childcare_non_domestic") and rng.random() < 0.04:
            nocr = _random_day(rng, max(p.opened, date(2008, 9, 1)) + timedelta(days=60), END + timedelta(days=400))
            if nocr < stop:
                self.emit(nocr, {"type": "provider_no_children_on_roll", "client_id": self.client_id("ncr"),
                                 "actor": g.actor, "urn": p.urn, "occurred_on": nocr.isoformat()})
            else:
                nocr = None
        cycle = g.cycle * 365
        begin = max(g.inspected_from, p.opened)
        if p.first_due is not None:
            day = p.first_due
        elif p.opened < g.inspected_from:
            day = begin + timedelta(days=rng.uniform(0, min(cycle, 3 * 365)))
        else:
            day = begin + timedelta(days=rng.uniform(60, max(120, min(cycle, 365))))
        n = 0
        while True:
            day = _weekday(day)
            if day >= stop:
                break
            n += 1
            if nocr is not None and day >= nocr:
                grade = None
                self.compliance_check(g, p, day)
            else:
                grade = self.inspection(g, p, day, n)
            if grade == "inadequate":
                gap = rng.uniform(0.15, 0.35) * 365 if g.cycle < 1 else rng.uniform(0.5, 1.0) * 365
            elif grade == "outstanding":
                gap = cycle * rng.uniform(1.0, 1.4)
            else:
                gap = cycle * rng.uniform(0.85, 1.1)
            day = day + timedelta(days=gap)
        if p.closed is not None:
            self.emit(p.closed, {"type": "provider_closed", "client_id": self.client_id("clo"), "actor": g.actor,
                                 "urn": p.urn, "occurred_on": p.closed.isoformat()})

    def grade(self, g: GroupSpec, score: float) -> str:
        o, gd, s, _ = g.grades
        if score > _N.inv_cdf(1 - o):
            return "outstanding"
        if score > _N.inv_cdf(1 - o - gd):
            return "good"
        if score > _N.inv_cdf(1 - o - gd - s):
            return "satisfactory"
        return "inadequate"

    def inspection(self, g: GroupSpec, p: _Provider, day: date, n: int) -> str:
        rng = self.rng
        trend = GRADE_TREND_PER_YEAR * (day.year + day.month / 12 - GRADE_TREND_CENTRE)
        score = p.latent + self.local[g.code] + rng.gauss(0, INSPECTION_NOISE) + trend
        overall = self.grade(g, score)
        raw = {"type": "provider_inspection", "client_id": self.client_id("ins"), "actor": g.actor, "urn": p.urn,
               "occurred_on": day.isoformat(), "framework": _framework(g, day),
               "inspection_type": ("full" if n % 2 else "interim") if g.cycle < 1 else "full",
               "overall_effectiveness": overall,
               "staying_safe": self.grade(g, score + STAYING_SAFE_ABOVE[g.actor] + rng.gauss(0, OUTCOME_NOISE)),
               "enjoying_and_achieving": self.grade(g, score + ENJOYING_ABOVE[g.actor] + ENJOYING_ON_QUALITY * self.quality
                                                    + rng.gauss(0, OUTCOME_NOISE))}
        if g.urn == "" and g.code not in ("childrens_centres",):
            raw["other_judgements"] = {"capacity_to_improve": self.grade(g, score + 0.2 + rng.gauss(0, 0.3))}
        self.publish(raw, day, 14, 56)
        return overall

    def compliance_check(self, g: GroupSpec, p: _Provider, day: date) -> None:
        raw = {"type": "compliance_check", "client_id": self.client_id("cc"), "actor": g.actor, "urn": p.urn,
               "occurred_on": day.isoformat(), "compliant": self.rng.random() < 0.94}
        self.publish(raw, day, 14, 42)

    def publish(self, raw: dict[str, Any], day: date, lo: int, hi: int, later: float = PUBLISHED_LATER) -> dict[str, Any]:
        """Post the item when published (the date inline), or at the event with the date
        supplied later (a share `later`); unpublished by END: posted without a date."""
        rng = self.rng
        pub = day + timedelta(days=round(rng.triangular(lo, hi, (lo + hi) / 2)))
        if pub > END:
            self.emit(day, raw)
            self.items.append((raw, day))
            return raw
        if rng.random() < later:
            self.emit(day, raw)
            self.emit(pub, {"type": "publication_date_supplied", "client_id": self.client_id("pub"),
                            "actor": "ofsted-publishing", "target": raw["client_id"], "published_on": pub.isoformat()})
        else:
            raw["published_on"] = pub.isoformat()
            self.emit(pub, raw)
        self.items.append((raw, pub))
        return raw

    # --- Block B -----------------------------------------------------------------

    def la_grade(self, dist: tuple[float, float, float, float], score: float) -> str:
        o, gd, s, _ = dist
        for cut, word in ((1 - o, "outstanding"), (1 - o - gd, "good"), (1 - o - gd - s, "adequate")):
            if cut < 1 and score > _N.inv_cdf(max(min(cut, 0.999), 0.001)):
                return word
        return "inadequate"

    def block_b(self) -> None:
        rng, la, q = self.rng, self.la, self.quality
        actor = "ofsted-social-care"
        # Joint area review (September 2005 - March 2009; only those after 1 April 2007 count, ¶37)
        day = _weekday(_random_day(rng, date(2005, 9, 12), date(2009, 3, 27)))
        s = 0.6 * q + rng.gauss(0, 0.8)
        self.publish({"type": "joint_area_review", "client_id": self.client_id("jar"), "actor": actor, "la_code": la,
                      "occurred_on": day.isoformat(), "safeguarding": self.la_grade((.08, .55, .32, .05), s),
                      "looked_after_children": self.la_grade((.08, .55, .34, .03), s + rng.gauss(0, .4)),
                      "overall_effectiveness": self.la_grade((.08, .52, .35, .05), s + rng.gauss(0, .3)),
                      "capacity_to_improve": self.la_grade((.12, .55, .30, .03), s + rng.gauss(0, .4))},
                     day, 35, 63, later=0.3)
        # The authority's standing in safeguarding, and when its three-yearly inspection is due
        s = SAFEGUARDING_ON_QUALITY * q + rng.gauss(0, math.sqrt(1 - SAFEGUARDING_ON_QUALITY ** 2))
        full_day = _weekday(_random_day(rng, *FULL_INSPECTION_WINDOW))
        # Unannounced inspections of contact, referral and assessment: yearly from June 2009
        for lo, hi, p_pa in UNANNOUNCED_CYCLES:
            if lo == date(2010, 9, 6) and rng.random() < AWAITING_SECOND_UNANNOUNCED:
                lo, hi = date(2011, 10, 3), date(2011, 12, 16)  # awaiting their second inspection at 30 September
            day = _weekday(_random_day(rng, lo, hi))
            if day > END:
                continue
            # the weakest in safeguarding are the ones found with an area for priority action
            has_pa = s + rng.gauss(0, PRIORITY_ACTION_NOISE) < _N.inv_cdf(p_pa) * math.hypot(1, PRIORITY_ACTION_NOISE)
            areas = rng.sample(PRIORITY_AREAS, rng.randint(1, 3)) if has_pa else []
            self.publish({"type": "unannounced_inspection", "client_id": self.client_id("una"), "actor": actor,
                          "la_code": la, "occurred_on": day.isoformat(), "priority_actions": areas},
                         day, 21, 35, later=0.5)
        # Three-yearly inspections of safeguarding and looked after children (from June 2009),
        # with re-inspection of an inadequate service (¶38-39; Table 1 of the statistics)
        day = full_day
        services: tuple[str, ...] = FULL_SERVICES
        reinspection = False
        for _ in range(3):
            if day > END:
                break
            inadequate = []
            for service in services:
                dist, subs = FULL_GRADES[service]
                oe = self.la_grade(dist, s + rng.gauss(0, 0.3))
                raw = {"type": "full_inspection", "client_id": self.client_id("full"), "actor": actor, "la_code": la,
                       "service": service, "occurred_on": day.isoformat(), "overall_effectiveness": oe,
                       "capacity_to_improve": self.la_grade((.08, .40, .40, .12), s + 0.2 + rng.gauss(0, .4)),
                       "sub_judgements": {k: self.la_grade((.08, .40, .42, .10), s + rng.gauss(0, .5)) for k in subs},
                       "reinspection": reinspection}
                self.publish(raw, day, 35, 56, later=0.4)
                if oe == "inadequate":
                    inadequate.append(service)
            if not inadequate:
                break
            # Re-inspected some 12-18 months after publication: still inadequate one time in four
            day = _weekday(day + timedelta(days=rng.randint(420, 560)))
            services, reinspection = tuple(inadequate), True
            s = rng.choice((-2.5, 0.0, 0.0, 0.6))
        # Serious case review evaluations (about one a year per authority from April 2008)
        for year in range(2008, 2012):
            for _ in range(_poisson(rng, 1.0 * max(0.3, authority_weight(self.a) * 152) ** 0.5)):
                day = _weekday(_random_day(rng, date(year, 4, 1), date(year + 1, 3, 31)))
                ok = rng.random() < (0.45 + 0.1 * (year - 2008)) + 0.08 * q
                self.publish({"type": "serious_case_review_evaluation", "client_id": self.client_id("scr"),
                              "actor": actor, "la_code": la, "occurred_on": day.isoformat(),
                              "adequate_or_better": ok}, day, 14, 42, later=0.2)
        # Private fostering (inspected in about two in three authorities, 2008-2011)
        if rng.random() < 0.66:
            day = _weekday(_random_day(rng, date(2008, 4, 1), date(2011, 12, 16)))
            self.publish({"type": "private_fostering_inspection", "client_id": self.client_id("pf"), "actor": actor,
                          "la_code": la, "occurred_on": day.isoformat(),
                          "overall_effectiveness": self.la_grade((.05, .50, .40, .05), 0.5 * q + rng.gauss(0, .8))},
                         day, 28, 56, later=0.3)
        # Substantiated complaints and whistleblowing (¶17)
        for _ in range(_poisson(rng, 0.8)):
            day = _weekday(_random_day(rng, date(2009, 6, 1), date(2012, 6, 29)))
            self.publish({"type": "substantiated_complaint", "client_id": self.client_id("cmp"), "actor": actor,
                          "la_code": la, "occurred_on": day.isoformat(),
                          "summary": rng.choice(("Delay in strategy meetings", "Child protection referral not followed up",
                                                 "Looked after child's review not held", "Failure to visit a child in placement")),
                          "whistleblowing": rng.random() < 0.3, "safeguarding_concern": rng.random() < 0.4},
                         day, 7, 28, later=0.0)

    # --- Block C -----------------------------------------------------------------

    def block_c(self) -> None:
        rng = self.rng
        q_w, context_w, own_w, year_w, neighbours_w = BLOCK_C_WEIGHTS
        context = rng.gauss(0, 1)  # the area's circumstances (deprivation), shared with its statistical neighbours
        for (ind, v0, step, sd, polarity, attainment, gap, (em, ed), pub_month) in INDICATORS:
            sign = 1 if polarity == "higher" else -1
            comparators = ANNEX_C_COMPARATORS[ind]
            # ¶47: the similar-areas comparator is used where performance follows deprivation
            shared = context_w * context if "similar_areas" in comparators else 0.0
            own = rng.gauss(0, 1)
            for year in INDICATOR_YEARS:
                national = v0 + step * (year - 2007)
                value = national + sign * sd * (q_w * self.quality + shared + own_w * own + year_w * rng.gauss(0, 1))
                similar = national + sign * sd * (shared + neighbours_w * rng.gauss(0, 1))
                end = date(year, em, ed)
                pub = date(year + (1 if pub_month <= em else 0), pub_month, 1) + timedelta(days=rng.randint(0, 20))
                if pub > END:
                    continue
                period = f"{year - 1}/{str(year)[2:]}" if em != 12 else str(year)
                raw = {"type": "indicator_value", "client_id": self.client_id("ind"), "actor": "dfe-statistics",
                       "la_code": self.la, "indicator": ind, "period": period, "occurred_on": end.isoformat(),
                       "published_on": pub.isoformat(), "value": _round(max(value, 0.0), v0)}
                if "similar_areas" in comparators:
                    raw["similar_areas"] = _round(max(similar, 0.0), v0)
                if "national" in comparators:
                    raw["national"] = _round(national, v0)
                raw["polarity"] = polarity
                if attainment:
                    raw["attainment"] = True
                if gap:
                    raw["gap"] = True
                self.emit(pub, raw)
                self.items.append((raw, pub))

    def published_grades(self) -> None:
        for year, grade in sorted(self.published.items()):
            day = PUBLISHED_ON[year]
            self.emit(day, {"type": "published_grade", "client_id": self.client_id("grade"), "actor": "ofsted-cs-assessment",
                            "la_code": self.la, "year": year, "grade": grade, "occurred_on": day.isoformat(),
                            "published_on": day.isoformat()})

    # --- corrections and withdrawals -----------------------------------------------------

    def follow_ups(self) -> None:
        """About 1% of evidence items corrected, 0.2% withdrawn (half of those posted again)."""
        rng = self.rng
        withdrawn, untouched = False, None
        for raw, last in self.items:
            r = rng.random()
            if r >= 0.012:
                if raw["type"] == "provider_inspection":
                    untouched = (raw, last)
                continue
            day = last + timedelta(days=rng.randint(3, 120))
            target = raw["client_id"]
            if r < 0.002:
                withdrawn = True
                self.emit(day, {"type": "withdrawal", "client_id": self.client_id("wd"), "actor": raw["actor"],
                                "target": target, "reason": "Posted against the wrong record"})
                if raw["type"] == "provider_inspection" and rng.random() < 0.5:
                    again = {**raw, "client_id": self.client_id("ins")}
                    again.pop("published_on", None)
                    self.emit(day, again)
                continue
            changes = _correction(raw, rng)
            if changes:
                self.emit(day, {"type": "correction", "client_id": self.client_id("cor"), "actor": raw["actor"],
                                "target": target, "changes": changes, "reason": "Transcription error"})
        if self.scale.min_each and not withdrawn and untouched is not None:
            # a small set shows every kind of posting: at least one withdrawal in each authority
            raw, last = untouched
            self.emit(last + timedelta(days=30), {"type": "withdrawal", "client_id": self.client_id("wd"),
                                                  "actor": raw["actor"], "target": raw["client_id"],
                                                  "reason": "Posted against the wrong record"})


@dataclass
class _Provider:
    urn: str
    group: GroupSpec
    opened: date
    latent: float
    closed: date | None = None
    restructured: date | None = None
    first_due: date | None = None


def _correction(raw: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    t = raw["type"]
    if t == "indicator_value":
        return {"value": _round(raw["value"] * rng.uniform(0.95, 1.05), raw["value"] or 1.0)}
    for field in ("overall_effectiveness", "safeguarding"):
        if field in raw:
            i = GRADES.index(_four(raw[field]))
            j = i + rng.choice((-1, 1)) if 0 < i < 3 else (1 if i == 0 else 2)
            word = GRADES[j]
            if t in ("full_inspection", "joint_area_review", "private_fostering_inspection") and word == "satisfactory":
                word = "adequate"
            return {field: word}
    if t == "compliance_check":
        return {"compliant": not raw["compliant"]}
    if t == "serious_case_review_evaluation":
        return {"adequate_or_better": not raw["adequate_or_better"]}
    if t == "unannounced_inspection" and raw["priority_actions"]:  # the wording of an area, not whether one was found
        areas = raw["priority_actions"]
        return {"priority_actions": [*areas[:-1], next(a for a in PRIORITY_AREAS if a not in areas)]}
    return {}


def _four(word: str) -> str:
    return "satisfactory" if word == "adequate" else word


def _framework(g: GroupSpec, day: date) -> str:
    if g.framework:
        return g.framework
    if g.code.endswith("childrens_homes"):
        return "childrens_homes_2011" if day >= date(2011, 4, 1) else "childrens_homes_2007"
    if g.urn == "EY":
        return "eyfs_2008" if day >= date(2008, 9, 1) else "childcare_2005"
    if g.urn == "SC":
        return "social_care_nms_2007" if day >= date(2007, 4, 1) else "social_care_nms_2002"
    if g.code in ("fe_tertiary_colleges", "sixth_form_colleges", "independent_specialist_colleges"):
        return "cif_2009" if day >= date(2009, 9, 1) else "cif_2005"
    return "section5_2009" if day >= date(2009, 9, 1) else "section5_2005"


_NAMES = {"childminders": "Childminder", "childcare_domestic": "Home childcare", "childcare_non_domestic": "Day nursery",
          "childrens_centres": "Children's Centre", "nursery_primary_eyfs": "Primary School EYFS",
          "primary_schools": "Primary School", "la_secondary": "High School", "academies_ctcs": "Academy",
          "secondary_sixth_forms": "School Sixth Form", "fe_tertiary_colleges": "College",
          "sixth_form_colleges": "Sixth Form College", "independent_specialist_colleges": "Specialist College",
          "la_special": "Special School", "non_la_special": "Independent Special School",
          "special_sixth_forms": "Special School Sixth Form", "pupil_referral_units": "Pupil Referral Unit",
          "residential_special_schools": "Residential Special School", "la_fostering": "Fostering Service",
          "la_adoption": "Adoption Service", "pv_fostering_adoption": "Family Placement Agency",
          "la_childrens_homes": "Children's Home", "pv_childrens_homes": "Children's Home"}
_PLACES = ("Abbey", "Ashfield", "Beech", "Brook", "Castle", "Church", "Elm", "Greenfield", "Hill", "Holy Trinity",
           "Lime", "Manor", "Meadow", "Mill", "Oak", "Park", "Queens", "Riverside", "St Mary's", "St John's",
           "Valley", "Westfield", "Willow", "Woodlands")


def _name(g: GroupSpec, rng: random.Random, urn: str) -> str:
    if g.code == "childminders":
        return f"Childminder {urn}"
    return f"{rng.choice(_PLACES)} {_NAMES[g.code]}"


def _random_day(rng: random.Random, lo: date, hi: date) -> date:
    if hi <= lo:
        return lo
    return lo + timedelta(days=rng.randint(0, (hi - lo).days))


def _poisson(rng: random.Random, lam: float) -> int:
    k, p, limit = 0, 1.0, math.exp(-lam)
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _round(v: float, scale: float) -> float:
    return round(v, 3 if abs(scale) < 1 else 1)
