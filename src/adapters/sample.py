"""The deterministic sample ledger: three real authorities of 2011 with fictitious,
but plausible, evidence for demos, the docs and the tests (docs/sample-data.md).

`sample_postings()` returns batches of raw postings of the integration format
(docs/events.md), each with the simulated time at which the ledger "learned" it:
history before April 2009 arrives in one migration batch, later evidence through
a weekly feed (Monday 06:00 UTC, at least three days after publication),
assessment steps at 16:00 UTC on the day they were taken. `load_sample()`
records each batch through a `Ledger` whose clock reads that simulated time, so
that `known_at` replays are meaningful. That simulated clock is used ONLY here
(ADR 0006): every other path into the ledger, and the import of the real 2018 MI
files that follows the sample, stamps `recorded_at` with the wall clock.

Everything is deterministic: client ids are stable ("sample:<la>:..."), the grades
of the generated histories come from a `random.Random` with a fixed seed per
authority, so loading twice records nothing new.
"""

from __future__ import annotations

import os
import random
import tempfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from adapters.ledger import Ledger, utc_now
from adapters.reference import authorities
from domain.vocabulary import GROUPS

SAMPLE_ACTOR = "sample"
MIGRATION_AT = datetime(2009, 4, 1, 6, 0, tzinfo=UTC)  # evidence older than this arrives in one batch
FEED_HOUR = 6  # the weekly feed runs on Mondays at 06:00 UTC
STEP_HOUR = 16  # assessment steps are recorded at 16:00 UTC on their day
HISTORY_FROM = date(2007, 1, 1)
HISTORY_TO = date(2012, 7, 31)
# Generated histories keep out of this window, so that the only items near the
# 2011 cut-off are the designed edge cases (docs/sample-data.md).
QUIET_FROM, QUIET_TO = date(2011, 6, 1), date(2011, 9, 30)
MI_FILES = ("providers-as-at-2018-03-31.csv", "inspections-in-year-2017-18.csv")

Batches = list[tuple[datetime, list[dict[str, Any]]]]
Progress = Callable[[dict[str, Any]], None]

# How many generated providers each authority has in each group: a handful; one
# LA fostering and one LA adoption agency, as every authority had.
GROUP_COUNTS: dict[str, int] = {
    "childminders": 6, "childcare_domestic": 3, "childcare_non_domestic": 5, "childrens_centres": 4,
    "nursery_primary_eyfs": 3, "primary_schools": 8, "la_secondary": 5, "academies_ctcs": 3,
    "secondary_sixth_forms": 4, "fe_tertiary_colleges": 2, "sixth_form_colleges": 2,
    "independent_specialist_colleges": 2, "la_special": 3, "non_la_special": 3, "special_sixth_forms": 2,
    "pupil_referral_units": 3, "residential_special_schools": 2, "la_fostering": 1, "la_adoption": 1,
    "pv_fostering_adoption": 3, "la_childrens_homes": 4, "pv_childrens_homes": 5,
}
GROUP_INDEX = {g.code: i for i, g in enumerate(GROUPS)}
EY_GROUPS = ("childminders", "childcare_domestic", "childcare_non_domestic")
COLLEGE_GROUPS = ("fe_tertiary_colleges", "sixth_form_colleges", "independent_specialist_colleges")
SOCIAL_CARE_GROUPS = ("residential_special_schools", "la_fostering", "la_adoption", "pv_fostering_adoption",
                      "la_childrens_homes", "pv_childrens_homes")
ANNUAL_GROUPS = ("residential_special_schools", "la_childrens_homes", "pv_childrens_homes")
SERVICE_GROUPS = ("la_fostering", "la_adoption", "pv_fostering_adoption", "la_childrens_homes",
                  "pv_childrens_homes", "childrens_centres")  # write the third point 'adequate'
TERM_GROUPS = tuple(g.code for g in GROUPS if g.code not in EY_GROUPS + SOCIAL_CARE_GROUPS + ("childrens_centres",))

GRADE_WORDS = {4: "outstanding", 3: "good", 2: "satisfactory", 1: "inadequate"}


@dataclass(frozen=True)
class SampleAuthority:
    la_code: str
    character: str  # the assessment it is built to resemble
    seed: int
    weights: tuple[float, float, float, float]  # outstanding, good, satisfactory, inadequate
    towns: tuple[str, ...]
    school_base: int
    academy_base: int
    college_base: int
    centre_base: int
    ey_base: int
    sc_base: int

    @property
    def name(self) -> str:
        return authorities().resolve(self.la_code).name


AUTHORITIES: tuple[SampleAuthority, ...] = (
    SampleAuthority(
        "919", "performs well", 919_2011, (0.30, 0.60, 0.09, 0.01),
        ("Hitchin", "Stevenage", "Watford", "St Albans", "Hemel Hempstead", "Hertford", "Letchworth", "Royston",
         "Bishop's Stortford", "Harpenden", "Tring", "Berkhamsted", "Ware", "Welwyn", "Hoddesdon", "Cheshunt",
         "Baldock", "Sawbridgeworth", "Potters Bar", "Radlett"),
        117_100, 136_410, 130_710, 220_310, 419_100, 91_900),
    SampleAuthority(
        "873", "performs adequately", 873_2011, (0.16, 0.56, 0.25, 0.03),
        ("Cambridge", "Ely", "Huntingdon", "St Neots", "St Ives", "Wisbech", "March", "Whittlesey", "Chatteris",
         "Ramsey", "Soham", "Sawston", "Cottenham", "Histon", "Linton", "Littleport", "Godmanchester",
         "Somersham", "Bottisham", "Melbourn"),
        110_800, 136_510, 130_810, 220_510, 417_600, 87_300),
    SampleAuthority(
        "886", "performs poorly", 886_2011, (0.07, 0.40, 0.42, 0.11),
        ("Ashford", "Canterbury", "Dover", "Folkestone", "Maidstone", "Margate", "Ramsgate", "Sevenoaks",
         "Tonbridge", "Tunbridge Wells", "Whitstable", "Faversham", "Sittingbourne", "Gravesend", "Dartford",
         "Deal", "Herne Bay", "Hythe", "Sandwich", "Cranbrook"),
        118_300, 136_610, 130_910, 220_710, 418_600, 88_600),
)
BY_CODE = {a.la_code: a for a in AUTHORITIES}

NAME_PATTERNS = {
    "childminders": "Childminder, {town}",
    "childcare_domestic": "{town} Home Childcare",
    "childcare_non_domestic": "{town} Day Nursery",
    "childrens_centres": "{town} Children's Centre",
    "nursery_primary_eyfs": "{town} Nursery School",
    "primary_schools": "{town} Primary School",
    "la_secondary": "{town} High School",
    "academies_ctcs": "{town} Academy",
    "secondary_sixth_forms": "{town} School Sixth Form",
    "fe_tertiary_colleges": "{town} College",
    "sixth_form_colleges": "{town} Sixth Form College",
    "independent_specialist_colleges": "{town} Specialist College",
    "la_special": "{town} Park School",
    "non_la_special": "{town} House School",
    "special_sixth_forms": "{town} Park School Sixth Form",
    "pupil_referral_units": "{town} Education Support Centre",
    "residential_special_schools": "{town} Residential School",
    "la_fostering": "{la} Fostering Service",
    "la_adoption": "{la} Adoption Service",
    "pv_fostering_adoption": "{town} Family Placements",
    "la_childrens_homes": "{town} Road Children's Home",
    "pv_childrens_homes": "{town} Lodge",
}


# --- dates ---------------------------------------------------------------------


def feed_after(day: date, min_days: int = 3) -> datetime:
    """When the weekly feed delivers something published (or inspected) on `day`."""
    d = day + timedelta(days=min_days)
    d += timedelta(days=(7 - d.weekday()) % 7)
    return max(datetime(d.year, d.month, d.day, FEED_HOUR, tzinfo=UTC), MIGRATION_AT)


def step_at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, STEP_HOUR, tzinfo=UTC)


def _weekday(d: date) -> date:
    return d + timedelta(days=(7 - d.weekday()) % 7) if d.weekday() >= 5 else d


def _months(d: date, n: int) -> date:
    y, m = divmod(d.month - 1 + n, 12)
    return date(d.year + y, m + 1, min(d.day, 28))


def _inspection_day(d: date, group: str) -> date:
    """A plausible working day: no weekends, no school inspections in August, and
    nothing in the quiet window around the 2011 cut-off."""
    d = _weekday(d)
    if group in TERM_GROUPS and d.month == 8:
        d = _weekday(date(d.year, 9, 8))
    if QUIET_FROM <= d <= QUIET_TO:
        d = _weekday(d - timedelta(days=50)) if d < date(2011, 7, 16) else _weekday(date(2011, 10, min(d.day, 28)))
    return d


# --- the builder -----------------------------------------------------------------

REGISTER, LIFECYCLE, EVIDENCE, FOLLOW_UP, STEP = range(5)


@dataclass
class _Entry:
    when: datetime
    order: int
    seq: int
    raw: dict[str, Any]


@dataclass
class _Builder:
    entries: list[_Entry] = field(default_factory=list)
    next_index: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    groups: dict[str, str] = field(default_factory=dict)  # urn -> group

    def add(self, when: datetime, order: int, raw: dict[str, Any]) -> str:
        self.entries.append(_Entry(max(when, MIGRATION_AT), order, len(self.entries), raw))
        return raw["client_id"]

    # providers

    def urn(self, a: SampleAuthority, group: str) -> str:
        i = self.next_index[(a.la_code, group)]
        self.next_index[(a.la_code, group)] = i + 1
        g = GROUP_INDEX[group]
        if group in EY_GROUPS:
            return f"EY{a.ey_base + g * 50 + i}"
        if group == "childrens_centres":
            return str(a.centre_base + i)
        if group == "academies_ctcs":
            return str(a.academy_base + i)
        if group in COLLEGE_GROUPS:
            return str(a.college_base + g * 10 + i)
        if group in SOCIAL_CARE_GROUPS:
            return f"SC{a.sc_base + g * 20 + i:06d}"
        return str(a.school_base + g * 30 + i)

    def register(self, a: SampleAuthority, group: str, name: str, opened: date | None = None) -> str:
        urn = self.urn(a, group)
        self.groups[urn] = group
        raw = {"type": "provider_registered", "client_id": f"sample:{a.la_code}:provider:{urn}",
               "actor": SAMPLE_ACTOR, "urn": urn, "la_code": a.la_code, "group": group, "name": name}
        if opened is not None:
            raw["occurred_on"] = opened.isoformat()
        self.add(feed_after(opened) if opened else MIGRATION_AT, REGISTER, raw)
        return urn

    def lifecycle(self, a: SampleAuthority, type_: str, urn: str, day: date, **extra: Any) -> str:
        tag = {"provider_closed": "closed", "provider_restructured": "restructured",
               "provider_no_children_on_roll": "no-children-on-roll"}[type_]
        raw = {"type": type_, "client_id": f"sample:{a.la_code}:{tag}:{urn}", "actor": SAMPLE_ACTOR,
               "urn": urn, "occurred_on": day.isoformat(), **extra}
        return self.add(feed_after(day), LIFECYCLE, raw)

    # evidence

    def inspect(self, a: SampleAuthority, urn: str, occurred: date, published: date | None, overall: int,
                staying_safe: int | None = None, enjoying: int | None = None, *,
                recorded: datetime | None = None, client_id: str | None = None) -> str:
        group = self.groups[urn]
        raw: dict[str, Any] = {
            "type": "provider_inspection",
            "client_id": client_id or f"sample:{a.la_code}:inspection:{urn}:{occurred.isoformat()}",
            "actor": SAMPLE_ACTOR, "urn": urn, "occurred_on": occurred.isoformat()}
        if published is not None:
            raw["published_on"] = published.isoformat()
        raw["framework"], raw["inspection_type"] = _framework(group, occurred)
        raw["overall_effectiveness"] = _word(overall, group)
        raw["staying_safe"] = _word(staying_safe or overall, group)
        raw["enjoying_and_achieving"] = _word(enjoying or overall, group)
        when = recorded or feed_after(published if published else occurred)
        return self.add(when, EVIDENCE, raw)

    def evidence(self, a: SampleAuthority, type_: str, tag: str, occurred: date, published: date | None,
                 recorded: datetime | None = None, **fields: Any) -> str:
        la = {} if "urn" in fields else {"la_code": a.la_code}  # a provider's evidence names its URN instead
        raw: dict[str, Any] = {"type": type_, "client_id": f"sample:{a.la_code}:{tag}", "actor": SAMPLE_ACTOR,
                               **la, **fields, "occurred_on": occurred.isoformat()}
        if published is not None:
            raw["published_on"] = published.isoformat()
        return self.add(recorded or feed_after(published or occurred), EVIDENCE, raw)

    def follow_up(self, a: SampleAuthority, type_: str, tag: str, when: datetime, **fields: Any) -> str:
        raw = {"type": type_, "client_id": f"sample:{a.la_code}:{tag}", "actor": SAMPLE_ACTOR, **fields}
        return self.add(when, FOLLOW_UP, raw)

    def step(self, a: SampleAuthority, type_: str, day: date, actor: str, **fields: Any) -> str:
        raw = {"type": type_, "client_id": f"sample:{a.la_code}:2011:{type_}", "actor": actor,
               "la_code": a.la_code, "year": 2011, "occurred_on": day.isoformat(), **fields}
        return self.add(step_at(day), STEP, raw)

    def batches(self) -> Batches:
        by_time: dict[datetime, list[_Entry]] = defaultdict(list)
        for e in self.entries:
            by_time[e.when].append(e)
        return [(when, [e.raw for e in sorted(by_time[when], key=lambda e: (e.order, e.seq))])
                for when in sorted(by_time)]


def _word(rank: int, group: str) -> str:
    return "adequate" if rank == 2 and group in SERVICE_GROUPS else GRADE_WORDS[rank]


def _framework(group: str, d: date) -> tuple[str, str]:
    if group in ("la_childrens_homes", "pv_childrens_homes"):
        return ("childrens_homes_2011" if d >= date(2011, 4, 1) else "childrens_homes_2007"), "full"
    if group in SOCIAL_CARE_GROUPS:
        return "social_care_nms", "full"
    if group in EY_GROUPS:
        return ("eyfs_2008" if d >= date(2008, 9, 1) else "childcare_2005"), "full"
    if group == "childrens_centres":
        return "childrens_centres_2010", "full"
    if group in COLLEGE_GROUPS:
        return ("cif_2009" if d >= date(2009, 9, 1) else "cif_2005"), "full"
    return ("section5_2009" if d >= date(2009, 9, 1) else "section5_2005"), "section 5"


# --- generated providers and histories --------------------------------------------


def _draw(rng: random.Random, a: SampleAuthority, previous: int | None) -> int:
    if previous == 1:  # after an inadequate judgement the provider improves, mostly
        return rng.choices((2, 3), (0.6, 0.4))[0]
    if previous is not None and rng.random() < 0.45:
        return previous
    return rng.choices((4, 3, 2, 1), a.weights)[0]


def _generated(b: _Builder, a: SampleAuthority) -> None:
    rng = random.Random(a.seed)
    town_at = 0
    for g in GROUPS:
        group = g.code
        for i in range(GROUP_COUNTS[group]):
            town = a.towns[town_at % len(a.towns)]
            town_at += 1
            opened: date | None = None
            if group in EY_GROUPS:
                opened = date(2003, 1, 6) + timedelta(days=rng.randrange(0, 5 * 365))
                if group == "childminders" and i == GROUP_COUNTS[group] - 1:
                    opened = date(2010, 2, 1) + timedelta(days=rng.randrange(0, 120))  # newly registered
            elif group == "academies_ctcs":
                opened = date(2008 + i, 9, 1)
            name = NAME_PATTERNS[group].format(town=town, la=a.name)
            urn = b.register(a, group, name, opened)
            _history(b, a, rng, urn, group, opened)


def _history(b: _Builder, a: SampleAuthority, rng: random.Random, urn: str, group: str,
             opened: date | None) -> None:
    cycle = 12 if group in ANNUAL_GROUPS else 60 if group == "childrens_centres" else 36
    if group == "childrens_centres":
        d = date(2010, 4, 6) + timedelta(days=rng.randrange(0, 400))
    else:
        d = HISTORY_FROM + timedelta(days=rng.randrange(0, 3 * 365 if cycle == 36 else 365))
    if opened is not None and d < opened + timedelta(days=120):
        d = opened + timedelta(days=120 + rng.randrange(0, 240))
    previous: int | None = None
    while True:
        d = _inspection_day(d, group)
        if d > HISTORY_TO:
            return
        overall = _draw(rng, a, previous)
        safe = min(4, overall + rng.choice((0, 0, 1))) if overall > 1 else rng.choice((1, 2))
        enjoy = max(1, min(4, overall + rng.choice((-1, 0, 0, 0, 1))))
        lag = rng.randrange(18, 32) if group not in SOCIAL_CARE_GROUPS else rng.randrange(25, 45)
        b.inspect(a, urn, d, _weekday(d + timedelta(days=lag)), overall, safe, enjoy)
        months = (9 if group in ANNUAL_GROUPS else 12) if overall == 1 else cycle + rng.randrange(-4, 5)
        d = _months(d, months) + timedelta(days=rng.randrange(0, 20))
        previous = overall


# --- designed evidence, authority by authority --------------------------------------


def _hertfordshire(b: _Builder) -> None:
    a = BY_CODE["919"]
    # Restructuring (¶20): an infant and a junior school amalgamated into a new primary.
    infant = b.register(a, "primary_schools", "Hitchin Oughton Infant School")
    junior = b.register(a, "primary_schools", "Hitchin Oughton Junior School")
    b.inspect(a, infant, date(2008, 3, 12), date(2008, 4, 8), 3, 3, 3)
    b.inspect(a, junior, date(2008, 6, 18), date(2008, 7, 14), 3, 4, 3)
    merged = b.register(a, "primary_schools", "Hitchin Oughton Primary School", date(2010, 9, 1))
    for old in (infant, junior):  # both closed on 31 August 2010, succeeded by the new school
        b.lifecycle(a, "provider_closed", old, date(2010, 8, 31))
        b.lifecycle(a, "provider_restructured", old, date(2010, 9, 1), successor_urn=merged)
    b.inspect(a, merged, date(2012, 2, 8), date(2012, 3, 2), 3, 3, 3)  # first inspected after the cut-off

    # A withdrawal: an inspection posted against the wrong school, withdrawn, posted again.
    wrong = b.register(a, "primary_schools", "Stevenage Martins Wood Primary School")
    right = b.register(a, "primary_schools", "Stevenage Moss Bury Primary School")
    b.inspect(a, wrong, date(2007, 11, 14), date(2007, 12, 10), 3, 3, 3)
    mistaken = b.inspect(a, wrong, date(2010, 4, 20), date(2010, 5, 12), 2, 2, 2)
    b.follow_up(a, "withdrawal", f"withdrawal:{wrong}:2010-04-20", feed_after(date(2010, 5, 19)),
                target=mistaken, reason="Posted against the wrong provider: the report is Moss Bury's")
    b.inspect(a, right, date(2010, 4, 20), date(2010, 5, 12), 2, 2, 2, recorded=feed_after(date(2010, 5, 19)))

    # ¶19: a childminder with no children on roll and its compliance check.
    cm = b.register(a, "childminders", "Childminder, Tring", date(2006, 5, 2))
    b.inspect(a, cm, date(2008, 10, 7), date(2008, 11, 3), 3, 3, 3)
    b.lifecycle(a, "provider_no_children_on_roll", cm, date(2009, 9, 1))
    b.evidence(a, "compliance_check", f"compliance:{cm}:2010-11-09", date(2010, 11, 9), date(2010, 11, 30),
               urn=cm, compliant=True)

    # Cut-off edges.
    june = b.register(a, "primary_schools", "Watford Field Primary School")
    b.inspect(a, june, date(2008, 1, 23), date(2008, 2, 18), 3, 3, 3)
    b.inspect(a, june, date(2011, 6, 30), date(2011, 9, 2), 4, 4, 4)  # June, published after 31 Aug: excluded
    july = b.register(a, "primary_schools", "St Albans Abbey Primary School")
    b.inspect(a, july, date(2008, 5, 14), date(2008, 6, 9), 2, 3, 2)
    july_insp = b.inspect(a, july, date(2011, 7, 12), None, 3, 3, 3)  # exception 1; date supplied later
    b.follow_up(a, "publication_date_supplied", f"pubdate:{july}:2011-07-12", feed_after(date(2011, 9, 13)),
                target=july_insp, published_on="2011-09-13")
    home = b.register(a, "pv_childrens_homes", "Hertford Meadows Lodge", date(2009, 6, 1))
    b.inspect(a, home, date(2010, 5, 11), date(2010, 6, 15), 3, 3, 3)
    b.inspect(a, home, date(2011, 8, 31), None, 3, 3, 3)  # exception 2 on its last day, unpublished

    # Block B: no full inspection; a joint area review after 1 April 2007 stands in (¶37).
    b.evidence(a, "joint_area_review", "jar:2007-10-12", date(2007, 10, 12), date(2007, 12, 7),
               safeguarding="good", looked_after_children="good", overall_effectiveness="good",
               capacity_to_improve="good")
    b.evidence(a, "unannounced_inspection", "unannounced:2009-11-10", date(2009, 11, 10), date(2009, 12, 15),
               priority_actions=[])
    b.evidence(a, "unannounced_inspection", "unannounced:2010-11-16", date(2010, 11, 16), date(2010, 12, 14),
               priority_actions=[])
    b.evidence(a, "unannounced_inspection", "unannounced:2011-09-01", date(2011, 9, 1), date(2011, 10, 4),
               priority_actions=[])  # Block B after the cut-off, no concern: excluded
    for day, pub in ((date(2008, 9, 16), date(2008, 10, 20)), (date(2009, 6, 9), date(2009, 7, 6)),
                     (date(2010, 10, 5), date(2010, 11, 1))):
        b.evidence(a, "serious_case_review_evaluation", f"scr:{day.isoformat()}", day, pub, adequate_or_better=True)
    b.evidence(a, "private_fostering_inspection", "private-fostering:2010-02-23", date(2010, 2, 23),
               date(2010, 3, 29), overall_effectiveness="good")
    b.evidence(a, "published_grade", "grade:2009", date(2009, 12, 9), date(2009, 12, 9), year=2009, grade="well")
    b.evidence(a, "published_grade", "grade:2010", date(2010, 12, 9), date(2010, 12, 9), year=2010, grade="well")


def _cambridgeshire(b: _Builder) -> None:
    a = BY_CODE["873"]
    # A correction recorded after the cut-off (10 October 2011).
    school = b.register(a, "primary_schools", "Ely St John's Primary School")
    b.inspect(a, school, date(2008, 2, 27), date(2008, 3, 25), 3, 3, 3)
    corrected = b.inspect(a, school, date(2011, 3, 9), date(2011, 4, 5), 3, 3, 3)
    b.follow_up(a, "correction", f"correction:{school}:2011-03-09", feed_after(date(2011, 10, 6)),
                target=corrected, changes={"overall_effectiveness": "satisfactory", "enjoying_and_achieving": "satisfactory"},
                reason="Transcription error: the published report judged the school satisfactory")
    # A registration detail corrected (by URN).
    nursery = b.register(a, "childcare_non_domestic", "Histon Early Years Centre", date(2005, 9, 5))
    b.inspect(a, nursery, date(2009, 2, 3), date(2009, 3, 2), 3, 3, 4)
    b.follow_up(a, "correction", f"correction:{nursery}:name", feed_after(date(2010, 2, 1)), urn=nursery,
                changes={"name": "Histon Early Years Centre (Pre-school)"}, reason="Registered name changed")

    # Cut-off edges.
    secondary = b.register(a, "la_secondary", "Huntingdon Hinchingbrooke High School")
    b.inspect(a, secondary, date(2008, 1, 16), date(2008, 2, 11), 2, 3, 2)
    b.inspect(a, secondary, date(2011, 7, 1), date(2011, 9, 5), 3, 3, 3)  # 1 July: exception 1
    home = b.register(a, "pv_childrens_homes", "Wisbech Orchard Lodge", date(2008, 4, 1))
    b.inspect(a, home, date(2010, 9, 14), date(2010, 10, 25), 2, 2, 2)
    b.inspect(a, home, date(2011, 9, 1), date(2011, 10, 11), 3, 3, 3)  # 1 September: after the cut-off
    centre = b.register(a, "childrens_centres", "March Riverside Children's Centre", date(2009, 4, 20))
    b.inspect(a, centre, date(2011, 7, 20), date(2011, 8, 31), 3, 3, 3)  # published on the data date: counts
    agency = b.register(a, "pv_fostering_adoption", "Cambridge Foster Care Partnership", date(2007, 6, 4))
    b.inspect(a, agency, date(2008, 5, 20), date(2008, 6, 30), 3, 3, 3)
    b.inspect(a, agency, date(2011, 6, 20), date(2011, 9, 1), 2, 2, 2)  # June, published 1 Sep: excluded

    # Block B.
    b.evidence(a, "joint_area_review", "jar:2007-02-16", date(2007, 2, 16), date(2007, 4, 20),
               safeguarding="adequate", looked_after_children="good", overall_effectiveness="satisfactory",
               capacity_to_improve="good")  # before 1 April 2007: does not count (¶37)
    b.evidence(a, "unannounced_inspection", "unannounced:2009-07-14", date(2009, 7, 14), date(2009, 8, 18),
               priority_actions=[])
    b.evidence(a, "unannounced_inspection", "unannounced:2011-06-30", date(2011, 6, 30), date(2011, 7, 28),
               priority_actions=[])
    for service, overall, capacity in (("safeguarding", "adequate", "adequate"),
                                       ("looked_after_children", "good", "good")):
        b.evidence(a, "full_inspection", f"full:{service}:2010-03-19", date(2010, 3, 19), date(2010, 4, 30),
                   service=service, overall_effectiveness=overall, capacity_to_improve=capacity,
                   sub_judgements={"staying_safe": "adequate" if service == "safeguarding" else "good",
                                   "leadership_and_management": "adequate"},
                   reinspection=False)
    for day, pub, ok in ((date(2008, 11, 18), date(2008, 12, 15), True), (date(2010, 1, 12), date(2010, 2, 8), False),
                         (date(2011, 3, 15), date(2011, 4, 11), True)):
        b.evidence(a, "serious_case_review_evaluation", f"scr:{day.isoformat()}", day, pub, adequate_or_better=ok)
    b.evidence(a, "private_fostering_inspection", "private-fostering:2011-07-19", date(2011, 7, 19),
               date(2011, 8, 31), overall_effectiveness="satisfactory")
    b.evidence(a, "substantiated_complaint", "complaint:2011-05-20", date(2011, 5, 20), None,
               summary="Delay in convening strategy meetings after a referral", whistleblowing=False)
    b.evidence(a, "published_grade", "grade:2009", date(2009, 12, 9), date(2009, 12, 9), year=2009, grade="adequately")
    b.evidence(a, "published_grade", "grade:2010", date(2010, 12, 9), date(2010, 12, 9), year=2010, grade="adequately")


def _kent(b: _Builder) -> None:
    a = BY_CODE["886"]
    # A closed children's home; it stays in the historical layers.
    closed = b.register(a, "la_childrens_homes", "Canterbury Old Dover Road Children's Home", date(1998, 4, 1))
    for day, pub, g in ((date(2007, 5, 15), date(2007, 6, 25), 2), (date(2008, 5, 20), date(2008, 6, 30), 1),
                        (date(2009, 2, 17), date(2009, 3, 30), 2)):
        b.inspect(a, closed, day, pub, g)
    b.lifecycle(a, "provider_closed", closed, date(2010, 3, 31))

    # ¶19: childcare with no children on roll and their compliance checks.
    for group, name, opened, checks in (
        ("childminders", "Childminder, Deal", date(2007, 3, 12), ((date(2010, 6, 8), True),)),
        ("childminders", "Childminder, Hythe", date(2008, 1, 21), ((date(2010, 6, 15), True), (date(2011, 2, 22), False))),
        ("childcare_domestic", "Sandwich Home Childcare", date(2006, 9, 4), ((date(2010, 11, 2), True),)),
    ):
        urn = b.register(a, group, name, opened)
        b.lifecycle(a, "provider_no_children_on_roll", urn, date(2009, 9, 1))
        for day, ok in checks:
            b.evidence(a, "compliance_check", f"compliance:{urn}:{day.isoformat()}", day,
                       day + timedelta(days=21), urn=urn, compliant=ok)

    # Cut-off edges.
    home = b.register(a, "la_childrens_homes", "Maidstone Tonbridge Road Children's Home", date(2002, 1, 7))
    b.inspect(a, home, date(2010, 8, 10), date(2010, 9, 20), 2, 2, 2)
    b.inspect(a, home, date(2011, 8, 16), None, 2, 2, 2)  # August 2011, unpublished: exception 2
    agency = b.register(a, "pv_fostering_adoption", "Dartford Family Placements", date(2006, 2, 6))
    b.inspect(a, agency, date(2008, 7, 8), date(2008, 8, 18), 3, 3, 3)
    # July 2011 (exception 2), posted by the schedule before publication, then excluded by
    # the inspector on 12 September (¶28 "normally"); its publication date arrives later.
    excluded = b.inspect(a, agency, date(2011, 7, 26), None, 1, 1, 2)
    b.follow_up(a, "publication_date_supplied", f"pubdate:{agency}:2011-07-26", feed_after(date(2011, 9, 20)),
                target=excluded, published_on="2011-09-20")

    # Block B: an inadequate safeguarding judgement, an unannounced inspection with
    # priority actions after it (¶40), and an October 2011 inadequate re-inspection.
    b.evidence(a, "unannounced_inspection", "unannounced:2009-09-15", date(2009, 9, 15), date(2009, 10, 20),
               priority_actions=[])
    b.evidence(a, "unannounced_inspection", "unannounced:2010-07-13", date(2010, 7, 13), date(2010, 8, 17),
               priority_actions=[])
    b.evidence(a, "full_inspection", "full:safeguarding:2010-10-15", date(2010, 10, 15), date(2010, 11, 26),
               service="safeguarding", overall_effectiveness="inadequate", capacity_to_improve="adequate",
               sub_judgements={"staying_safe": "inadequate", "leadership_and_management": "inadequate",
                               "partnership_working": "adequate"}, reinspection=False)
    b.evidence(a, "full_inspection", "full:looked_after_children:2010-10-15", date(2010, 10, 15), date(2010, 11, 26),
               service="looked_after_children", overall_effectiveness="adequate", capacity_to_improve="adequate",
               sub_judgements={"staying_safe": "adequate", "enjoying_and_achieving": "adequate"}, reinspection=False)
    b.evidence(a, "unannounced_inspection", "unannounced:2011-05-17", date(2011, 5, 17), date(2011, 6, 21),
               priority_actions=["Timeliness and quality of initial assessments",
                                 "Management oversight of referrals in the duty teams"])
    b.evidence(a, "full_inspection", "full:safeguarding:2011-10-07", date(2011, 10, 7), date(2011, 11, 1),
               service="safeguarding", overall_effectiveness="inadequate", capacity_to_improve="adequate",
               sub_judgements={"staying_safe": "inadequate", "leadership_and_management": "adequate"},
               reinspection=True)
    for day, pub, ok in ((date(2008, 10, 14), date(2008, 11, 10), False), (date(2009, 8, 11), date(2009, 9, 7), False),
                         (date(2010, 6, 8), date(2010, 7, 5), True), (date(2011, 4, 12), date(2011, 5, 9), True)):
        b.evidence(a, "serious_case_review_evaluation", f"scr:{day.isoformat()}", day, pub, adequate_or_better=ok)
    b.evidence(a, "private_fostering_inspection", "private-fostering:2009-11-24", date(2009, 11, 24),
               date(2010, 1, 5), overall_effectiveness="satisfactory")
    b.evidence(a, "substantiated_complaint", "complaint:2011-02-08", date(2011, 2, 8), None,
               summary="Unallocated child protection cases in a duty team", whistleblowing=True,
               safeguarding_concern=True)
    b.evidence(a, "published_grade", "grade:2009", date(2009, 12, 9), date(2009, 12, 9), year=2009, grade="adequately")
    b.evidence(a, "published_grade", "grade:2010", date(2010, 12, 9), date(2010, 12, 9), year=2010, grade="poorly")

    # The 2011 assessment, step by step (¶12, ¶56-58, ¶74-81).
    hmi, la, panel = "sample:hmi", "sample:authority:886", "sample:panel"
    b.step(a, "assessment_proposed", date(2011, 9, 5), hmi, grade="poorly")
    b.step(a, "cutoff_exclusion", date(2011, 9, 12), hmi, target=excluded,
           reasons="Judgements under moderation when the draft letter was prepared; report not yet published")
    b.step(a, "inspector_judgement_applied", date(2011, 9, 12), hmi, grade="poorly",
           reasons="Inadequate safeguarding (Oct 2010) followed by an unannounced inspection with priority actions (¶40)",
           sustained_improvement=False)
    b.step(a, "draft_letter_sent", date(2011, 9, 23), hmi, grade="poorly")
    b.step(a, "factual_accuracy_query_raised", date(2011, 9, 28), la,
           text="Canterbury Old Dover Road Children's Home closed on 31 March 2010")
    b.step(a, "factual_accuracy_query_resolved", date(2011, 10, 3), hmi,
           text="Closure confirmed; the home appears in the historical layers only")
    b.step(a, "appeal_lodged", date(2011, 10, 14), la, grounds="Significance given to the May 2011 priority actions",
           statement_words=1450, cited_refs=["sample:886:unannounced:2011-05-17"])
    b.step(a, "evaluator_assigned", date(2011, 10, 18), "sample:ofsted", evaluator="HMI R. Evaluator")
    b.step(a, "appeal_decided", date(2011, 11, 2), panel, outcome="not_upheld",
           panel=["Senior manager A", "Senior manager B"])
    b.step(a, "grade_approved", date(2011, 11, 4), "sample:hmci", grade="poorly", approver="HMCI")
    b.step(a, "assessment_published", date(2011, 11, 8), hmi, grade="poorly")


# --- Block C ----------------------------------------------------------------------

# indicator -> (polarity, attainment, gap, national 2008..2011, end of period, publication)
INDICATORS: dict[str, tuple[str, bool, bool, tuple[float, ...], tuple[int, int], tuple[int, int, int]]] = {
    "KS2_L4_EM": ("higher", True, False, (73.0, 72.0, 73.0, 74.0), (7, 31), (0, 9, 15)),
    "GCSE_5AC_EM": ("higher", True, False, (47.6, 50.7, 53.5, 58.2), (7, 31), (1, 1, 26)),
    "L3_AT_19": ("higher", True, False, (48.0, 49.9, 52.0, 54.3), (7, 31), (1, 3, 29)),
    "EYFS_GAP": ("lower", False, True, (35.6, 33.9, 32.7, 31.4), (7, 31), (0, 10, 13)),
    "FSM_GAP_KS2": ("lower", False, True, (24.0, 22.0, 22.0, 21.0), (7, 31), (0, 12, 8)),
    "NEET_16_18": ("lower", False, False, (6.7, 6.4, 6.1, 6.1), (1, 31), (0, 6, 16)),
    "LAC_3_PLACEMENTS": ("lower", False, False, (10.7, 10.7, 10.8, 10.9), (3, 31), (0, 9, 30)),
}
# Each authority's distance from the national figure: (start, change a year), in
# the direction of 'better' (positive is better whatever the polarity).
INDICATOR_STANCE = {"919": (3.0, 0.5), "873": (0.5, 0.1), "886": (-1.5, -0.6)}


def _indicators(b: _Builder, a: SampleAuthority) -> None:
    start, step = INDICATOR_STANCE[a.la_code]
    for k, (indicator, (polarity, attainment, gap, national, (m, d), (dy, pm, pd))) in enumerate(INDICATORS.items()):
        for i, year in enumerate(range(2008, 2012)):
            better = start + step * i + (0.3 if k % 2 else -0.2)
            sign = 1 if polarity == "higher" else -1
            value = round(national[i] + sign * better, 1)
            similar = round(national[i] + sign * (0.6 if a.la_code == "919" else 0.2), 1)
            period = f"{year - 1}/{str(year)[2:]}"
            end = date(year, m, d)
            published = date(end.year + dy, pm, pd)
            b.evidence(a, "indicator_value", f"indicator:{indicator}:{period}", end, _weekday(published),
                       indicator=indicator, period=period, value=value, similar_areas=similar,
                       national=national[i], polarity=polarity, attainment=attainment, gap=gap)


# --- public ------------------------------------------------------------------------


def sample_postings() -> Batches:
    """The sample as batches of raw postings, each with the simulated time at which
    the ledger learned it, in time order. Deterministic."""
    b = _Builder()
    for a in AUTHORITIES:
        _generated(b, a)
    _hertfordshire(b)
    _cambridgeshire(b)
    _kent(b)
    for a in AUTHORITIES:
        _indicators(b, a)
    return b.batches()


class SimulatedClock:
    """The sample loader's clock: the time the loader set, or the wall clock once
    `now` is None (ADR 0006)."""

    def __init__(self, now: datetime | None):
        self.now = now

    def __call__(self) -> datetime:
        return self.now if self.now is not None else utc_now()


def shared_data_dir() -> Path:
    """The shared data folder: $CSA_SHARED_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("CSA_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def load_sample(database_url: str, *, include_mi: bool = True, progress: Progress | None = None) -> dict[str, Any]:
    """Record the sample into the store at `database_url` (idempotent) and, if
    `include_mi`, import the real 2018 MI files. Returns a summary."""
    batches = sample_postings()
    clock = SimulatedClock(batches[0][0])
    ledger = Ledger(database_url, clock=clock)
    try:
        before = ledger.projector.log_position()
        recorded = already = postings = 0
        for n, (when, raws) in enumerate(batches, start=1):
            clock.now = when
            result = ledger.record(raws, default_actor=SAMPLE_ACTOR, project=False)
            recorded += result.recorded
            already += result.already_recorded
            postings += len(raws)
            if progress:
                progress({"stage": "sample", "batches": n, "of": len(batches), "postings": postings})
        ledger.catch_up()
        summary: dict[str, Any] = {
            "authorities": {a.la_code: a.name for a in AUTHORITIES},
            "batches": len(batches), "postings": postings, "recorded": recorded, "already_recorded": already,
            "first_recorded_at": batches[0][0].isoformat(), "last_recorded_at": batches[-1][0].isoformat(),
        }
        summary["mi"] = _import_mi(ledger, clock, progress) if include_mi else {"skipped": "include_mi is off"}
        summary["events_before"] = before
        summary["events_after"] = ledger.projector.log_position()
        return summary
    finally:
        ledger.close()


def _import_mi(ledger: Ledger, clock: SimulatedClock, progress: Progress | None) -> dict[str, Any]:
    folder = shared_data_dir() / "ofsted-mi-2018"
    missing = [f for f in MI_FILES if not (folder / f).is_file()]
    if missing:
        note = f"MI import skipped: {', '.join(missing)} not found in {folder} (set CSA_SHARED_DATA)"
        print(note)
        return {"skipped": note}
    from adapters.importers import import_file

    clock.now = None  # the real files are imported with the wall clock (ADR 0006)
    # Real data has a few rows the ledger refuses (e.g. a report dated before its
    # inspection): they are skipped and listed in a rejects file outside the
    # shared data folder, which stays read-only.
    rejects_dir = Path(tempfile.gettempdir()) / "csa-sample-rejects"
    rejects_dir.mkdir(parents=True, exist_ok=True)
    reports = {}
    for name in MI_FILES:
        report = import_file(ledger, folder / name, fmt="mi-csv", actor=SAMPLE_ACTOR, skip_invalid=True,
                             rejects_path=rejects_dir / f"{name}.rejects.jsonl", progress=progress)
        reports[name] = {**report.counts(), "skipped_by_reason": dict(report.skipped_by_reason),
                         "rejects_path": report.rejects_path}
    return {"clock": "wall", "files": reports}


def summary_counts() -> dict[str, dict[str, int]]:
    """How many postings of each type the sample holds, per authority (for docs and tests)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for _, raws in sample_postings():
        for raw in raws:
            counts[raw["client_id"].split(":")[1]][raw["type"]] += 1
    return {la: dict(sorted(c.items())) for la, c in sorted(counts.items())}
