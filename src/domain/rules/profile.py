"""The performance profile (¶13-16, Annex A-B), built from counted evidence.

Layer 1 (¶27, ¶31-33, ¶60-61): per group and super group, the providers counted
once each by their most recent counted inspection, the % outstanding / good /
satisfactory / inadequate, the % good or better and its band (Table 2). All
percentages are exact fractions (ADR 0018): exactly 80% is dark green, 79.99% is not.
Layer 2: outcome judgements (staying safe, enjoying and achieving) per group.
Layer 3: year-by-year (financial year) counts, closed providers included.
Layer 4: every provider with every counted grade.
Block B summary and Block C rows against comparators with trends (Annex A).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, OrderedDict, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date
from enum import StrEnum
from fractions import Fraction
from functools import cached_property
from itertools import chain
from operator import attrgetter
from typing import Any

from domain.framework import FrameworkSettings
from domain.rules.cutoff import CutoffResult, decide_cutoff
from domain.rules.facts import (
    AuthorityEvidence,
    FullInspectionFact,
    IndicatorFact,
    ProviderInspectionFact,
    to_jsonable,
)
from domain.vocabulary import GROUPS, SUPER_GROUPS, Grade, groups_of

OUTCOME_AREAS = ("staying_safe", "enjoying_and_achieving")


class Band(StrEnum):
    """Table 2 performance bands."""

    DARK_GREEN = "dark_green"
    LIGHT_GREEN = "light_green"
    AMBER = "amber"
    RED = "red"

    @property
    def top_two(self) -> bool:
        return self in (Band.DARK_GREEN, Band.LIGHT_GREEN)


def exact(value: Fraction | float | int) -> Fraction:
    """An exact rational for a figure (floats through their shortest decimal form)."""
    return value if isinstance(value, Fraction) else Fraction(str(value))


def percentage(part: int, whole: int) -> Fraction | None:
    return None if whole == 0 else Fraction(100 * part, whole)


def band_for(pct_good_or_better: Fraction | None, framework: FrameworkSettings) -> Band | None:
    """Table 2: dark green >= 80, light green 65-79, amber 50-64, red < 50 (exact, ADR 0018)."""
    if pct_good_or_better is None:
        return None
    if pct_good_or_better >= framework.dark_green_from:
        return Band.DARK_GREEN
    if pct_good_or_better >= framework.light_green_from:
        return Band.LIGHT_GREEN
    if pct_good_or_better >= framework.amber_from:
        return Band.AMBER
    return Band.RED


@dataclass(frozen=True)
class GradeCounts:
    outstanding: int = 0
    good: int = 0
    satisfactory: int = 0
    inadequate: int = 0

    @classmethod
    def of(cls, grades: Iterable[Grade]) -> GradeCounts:
        tally = {g: 0 for g in Grade}
        for g in grades:
            tally[g] += 1
        return cls(tally[Grade.OUTSTANDING], tally[Grade.GOOD], tally[Grade.SATISFACTORY], tally[Grade.INADEQUATE])

    def __add__(self, other: GradeCounts) -> GradeCounts:
        return GradeCounts(
            self.outstanding + other.outstanding,
            self.good + other.good,
            self.satisfactory + other.satisfactory,
            self.inadequate + other.inadequate,
        )

    @property
    def total(self) -> int:
        return self.outstanding + self.good + self.satisfactory + self.inadequate

    @property
    def good_or_better(self) -> int:
        return self.outstanding + self.good

    @property
    def not_good(self) -> int:
        return self.satisfactory + self.inadequate

    def pct(self, grade: Grade) -> Fraction | None:
        return percentage(getattr(self, grade.value), self.total)

    @property
    def pct_good_or_better(self) -> Fraction | None:
        return percentage(self.good_or_better, self.total)


@dataclass(frozen=True)
class ProfileRow:
    """One line of layer 1 (or of an outcome area): a group or a super group."""

    code: str
    label: str
    counts: GradeCounts
    band: Band | None
    refs: tuple[str, ...] = ()

    @property
    def number_inspected(self) -> int:
        return self.counts.total

    @property
    def pct_good_or_better(self) -> Fraction | None:
        return self.counts.pct_good_or_better

    @property
    def in_top_two(self) -> bool:
        return self.band is not None and self.band.top_two

    def to_dict(self) -> dict[str, Any]:
        pct = self.pct_good_or_better
        counts, total = self.counts, self.counts.total
        return {
            "code": self.code,
            "label": self.label,
            "number_inspected": self.number_inspected,
            "counts": to_jsonable(counts),
            # round(float(Fraction(100 * n, total)), 4): both divisions are correctly rounded
            "pct": {g.value: None if total == 0 else round(100 * getattr(counts, g.value) / total, 4) for g in Grade},
            "pct_good_or_better": to_jsonable(pct),
            "pct_good_or_better_exact": None if pct is None else f"{pct.numerator}/{pct.denominator}",
            "band": None if self.band is None else self.band.value,
            "refs": list(self.refs),
        }


def row_of(code: str, label: str, inspections: Iterable[ProviderInspectionFact], framework: FrameworkSettings,
           area: str = "overall_effectiveness", refs: tuple[str, ...] | None = None) -> ProfileRow:
    """A row of the inspections judged on `area`. `refs`: the sorted refs of all `inspections`,
    if already known."""
    items = list(inspections)
    grades = list(map(attrgetter(area), items))
    if None in grades:  # not judged on this area (e.g. a ¶19 compliance check): left out
        items = [i for i, g in zip(items, grades, strict=True) if g is not None]
        grades = [g for g in grades if g is not None]
        refs = None
    tally = Counter(grades)
    counts = GradeCounts(tally[Grade.OUTSTANDING], tally[Grade.GOOD], tally[Grade.SATISFACTORY],
                         tally[Grade.INADEQUATE])
    return ProfileRow(code, label, counts, band_for(counts.pct_good_or_better, framework),
                      tuple(sorted(map(_ref, items))) if refs is None else refs)


def pooled_row(code: str, label: str, rows: Iterable[ProfileRow], framework: FrameworkSettings) -> ProfileRow:
    """¶61: a super group's row, the pooled counts of its groups' rows (the same as `row_of`
    over all their inspections)."""
    rows = list(rows)
    counts = sum((r.counts for r in rows), GradeCounts())
    return ProfileRow(code, label, counts, band_for(counts.pct_good_or_better, framework),
                      tuple(sorted(chain.from_iterable(r.refs for r in rows))))


_ref = attrgetter("ref")


def most_recent(inspections: Iterable[ProviderInspectionFact]) -> ProviderInspectionFact:
    """¶27: the most recent inspection finding (latest date; ties by publication, then ref)."""
    return max(inspections, key=lambda i: (i.occurred_on, i.published_on or date.max, i.ref))


def latest_counted_by_provider(cutoff: CutoffResult) -> dict[str, ProviderInspectionFact]:
    """Layer 1: each provider once, by its most recent counted inspection (¶27, ¶20)."""
    return cutoff.layer_one


def financial_year_of(day: date) -> str:
    """Annex B layer 3 reports by financial year (April to March): '2010-11'."""
    start = day.year if day.month >= 4 else day.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


# ------------------------------------------------------------------ the profile


@dataclass(frozen=True)
class IndicatorRow:
    """Block C: an indicator's latest counted value against its comparators, with its trend."""

    indicator: str
    period: str
    value: Fraction
    similar_areas: Fraction | None
    national: Fraction | None
    polarity: str
    banded: bool
    in_line_with: dict[str, bool]
    attainment: bool
    gap: bool
    trend: tuple[tuple[str, Fraction], ...]
    one_year_improvement: Fraction | None  # signed so that positive is better (polarity)
    improvement_since_first: Fraction | None
    refs: tuple[str, ...]

    @property
    def at_least_in_line(self) -> bool | None:
        """ADR 0016: in line with *every* comparator shown (Annex E 'comparator/s')."""
        return None if not self.banded else all(self.in_line_with.values())

    def to_dict(self) -> dict[str, Any]:
        d = {name: None if name == "trend" else to_jsonable(getattr(self, name)) for name in _INDICATOR_ROW_FIELDS}
        d["at_least_in_line"] = self.at_least_in_line
        d["trend"] = [{"period": p, "value": to_jsonable(v)} for p, v in self.trend]
        return d


_INDICATOR_ROW_FIELDS = tuple(f.name for f in fields(IndicatorRow))


def at_least_in_line(value: Fraction, comparator: Fraction, polarity: str) -> bool:
    """Performance at least in line with a comparator: equal counts as in line."""
    return value >= comparator if polarity == "higher" else value <= comparator


def improvement(newer: Fraction, older: Fraction, polarity: str) -> Fraction:
    return newer - older if polarity == "higher" else older - newer


def indicator_rows(indicators: Iterable[IndicatorFact]) -> tuple[IndicatorRow, ...]:
    by_name: dict[str, list[IndicatorFact]] = defaultdict(list)
    for item in indicators:
        by_name[item.indicator].append(item)
    rows = []
    for name in sorted(by_name):
        series = sorted(by_name[name], key=lambda i: (i.occurred_on, i.period, i.ref))
        # one value per period: the last posted for that period stands
        per_period: dict[str, IndicatorFact] = {}
        for item in series:
            per_period[item.period] = item
        series = sorted(per_period.values(), key=lambda i: (i.occurred_on, i.period))
        latest = series[-1]
        value = exact(latest.value)
        comparators = {
            k: exact(v) for k, v in (("similar_areas", latest.similar_areas), ("national", latest.national))
            if v is not None
        }
        in_line = {k: at_least_in_line(value, c, latest.polarity) for k, c in comparators.items()}
        one_year = improvement(value, exact(series[-2].value), latest.polarity) if len(series) > 1 else None
        since_first = improvement(value, exact(series[0].value), latest.polarity) if len(series) > 1 else None
        rows.append(IndicatorRow(
            indicator=name, period=latest.period, value=value,
            similar_areas=comparators.get("similar_areas"), national=comparators.get("national"),
            polarity=latest.polarity, banded=latest.banded, in_line_with=in_line,
            attainment=latest.attainment, gap=latest.gap,
            trend=tuple((i.period, exact(i.value)) for i in series),
            one_year_improvement=one_year, improvement_since_first=since_first,
            refs=tuple(i.ref for i in series),
        ))
    return tuple(rows)


def latest_full_inspection(full: Iterable[FullInspectionFact], service: str) -> FullInspectionFact | None:
    items = [f for f in full if f.service == service]
    return max(items, key=lambda f: (f.occurred_on, f.published_on or date.max, f.ref)) if items else None


def block_b_summary(cutoff: CutoffResult) -> dict[str, Any]:
    """Annex A, Block B: latest unannounced (priority action yes/no), latest safeguarding
    and looked-after judgements, SCRs adequate or better out of total, JAR, private fostering."""
    unannounced = max(cutoff.unannounced_inspections, key=lambda u: (u.occurred_on, u.ref), default=None)
    jar = max(cutoff.joint_area_reviews, key=lambda j: (j.occurred_on, j.ref), default=None)
    fostering = max(cutoff.private_fostering, key=lambda p: (p.occurred_on, p.ref), default=None)
    scrs = cutoff.serious_case_reviews
    return {
        "unannounced": None if unannounced is None else {
            "occurred_on": unannounced.occurred_on, "published_on": unannounced.published_on,
            "priority_action": unannounced.found_priority_action,
            "priority_actions": list(unannounced.priority_actions), "ref": unannounced.ref,
        },
        **{
            service: None if (f := latest_full_inspection(cutoff.full_inspections, service)) is None else {
                "occurred_on": f.occurred_on, "published_on": f.published_on,
                "overall_effectiveness": f.overall_effectiveness, "capacity_to_improve": f.capacity_to_improve,
                "reinspection": f.reinspection, "ref": f.ref,
            }
            for service in ("safeguarding", "looked_after_children")
        },
        "serious_case_reviews": {
            "adequate_or_better": sum(1 for s in scrs if s.adequate_or_better),
            "total": len(scrs), "refs": [s.ref for s in scrs],
        },
        "joint_area_review": None if jar is None else {
            "occurred_on": jar.occurred_on, "safeguarding": jar.safeguarding,
            "looked_after_children": jar.looked_after_children, "ref": jar.ref,
        },
        "private_fostering": None if fostering is None else {
            "occurred_on": fostering.occurred_on, "grade": fostering.grade, "ref": fostering.ref,
        },
    }


@dataclass(frozen=True)
class Profile:
    year: int
    la_code: str
    as_at: date
    groups: tuple[ProfileRow, ...]
    super_groups: tuple[ProfileRow, ...]
    outcome_areas: dict[str, tuple[ProfileRow, ...]]  # layer 2, per group
    early_years_without_no_children_on_roll: ProfileRow  # ¶19
    block_b: dict[str, Any]
    block_c: tuple[IndicatorRow, ...]
    latest_by_urn: dict[str, ProviderInspectionFact] = field(repr=False, default_factory=dict)
    cutoff: CutoffResult | None = field(repr=False, default=None)
    framework: FrameworkSettings | None = field(repr=False, default=None)

    # Layers 3 and 4 are built when first asked for: the proposal and the national table
    # need only layers 1-2, and layer 4 lists every counted inspection of every provider.

    @cached_property
    def history(self) -> dict[str, tuple[ProfileRow, ...]]:
        """Layer 3: per financial year, per group (Annex B)."""
        assert self.cutoff is not None and self.framework is not None
        return history_rows(self.cutoff, self.framework)

    @cached_property
    def providers(self) -> tuple[dict[str, Any], ...]:
        """Layer 4: every provider with a counted inspection, and its inspections."""
        assert self.cutoff is not None
        return provider_rows(self.cutoff)

    def group(self, code: str) -> ProfileRow:
        return next(r for r in self.groups if r.code == code)

    def super_group(self, code: str) -> ProfileRow:
        return next(r for r in self.super_groups if r.code == code)

    @property
    def present_super_groups(self) -> tuple[ProfileRow, ...]:
        return tuple(r for r in self.super_groups if r.number_inspected > 0)

    def to_dict(self, layers: Iterable[int] = (1, 2, 3, 4)) -> dict[str, Any]:
        """JSON-friendly form; layer 1, Block B and Block C always, deeper layers as asked."""
        layers = set(layers)
        out: dict[str, Any] = {
            "year": self.year,
            "la_code": self.la_code,
            "as_at": self.as_at.isoformat(),
            "layer1": {
                "groups": [r.to_dict() for r in self.groups],
                "super_groups": [r.to_dict() for r in self.super_groups],
                "early_years_without_no_children_on_roll": self.early_years_without_no_children_on_roll.to_dict(),
            },
            "block_b": to_jsonable(self.block_b),
            "block_c": [r.to_dict() for r in self.block_c],
        }
        if 2 in layers:
            out["layer2"] = {area: [r.to_dict() for r in rows] for area, rows in self.outcome_areas.items()}
        if 3 in layers:
            out["layer3"] = {year: [r.to_dict() for r in rows] for year, rows in self.history.items()}
        if 4 in layers:
            out["layer4"] = to_jsonable(list(self.providers))
        return out


def has_no_children_on_roll(inspection: ProviderInspectionFact, cutoff: CutoffResult) -> bool:
    provider = cutoff.providers.get(inspection.urn)
    marked = provider is not None and provider.no_children_on_roll_from is not None \
        and provider.no_children_on_roll_from <= cutoff.as_at
    return inspection.compliance_check or marked


def history_rows(cutoff: CutoffResult, framework: FrameworkSettings) -> dict[str, tuple[ProfileRow, ...]]:
    """Layer 3 (Annex B): counted inspections by financial year of inspection, per group."""
    history_items: dict[str, dict[str, list[ProviderInspectionFact]]] = defaultdict(lambda: defaultdict(list))
    for inspection in cutoff.provider_inspections:
        group = cutoff.providers[inspection.urn].group
        history_items[financial_year_of(inspection.occurred_on)][group].append(inspection)
    return {
        year: tuple(row_of(g.code, g.label, history_items[year][g.code], framework) for g in GROUPS)
        for year in sorted(history_items)
    }


def provider_rows(cutoff: CutoffResult) -> tuple[dict[str, Any], ...]:
    """Layer 4 (Annex B): each provider with a counted inspection, whether it stands in layer 1 and why."""
    layer_one = {p.urn: p for p in cutoff.provider_decisions}
    inspections_of: dict[str, list[ProviderInspectionFact]] = defaultdict(list)
    for inspection in cutoff.provider_inspections:
        inspections_of[inspection.urn].append(inspection)
    providers = []
    for urn in sorted(inspections_of):
        p = cutoff.providers[urn]
        inspections = sorted(inspections_of[urn], key=lambda i: (i.occurred_on, i.ref))
        providers.append({
            "urn": urn, "name": p.name, "group": p.group, "closed_on": p.closed_on,
            "successor_urn": p.successor_urn, "no_children_on_roll_from": p.no_children_on_roll_from,
            "in_layer_one": layer_one[urn].in_layer_one if urn in layer_one else False,
            "layer_one_rule": layer_one[urn].rule_id if urn in layer_one else None,
            "inspections": [
                {"ref": i.ref, "occurred_on": i.occurred_on, "published_on": i.published_on,
                 "overall_effectiveness": i.overall_effectiveness, "staying_safe": i.staying_safe,
                 "enjoying_and_achieving": i.enjoying_and_achieving, "framework": i.framework,
                 "compliance_check": i.compliance_check}
                for i in inspections
            ],
        })
    return tuple(providers)


def build_profile_from(cutoff: CutoffResult, framework: FrameworkSettings, la_code: str) -> Profile:
    # Each group's rows (overall effectiveness, then each outcome area), built from its layer 1
    # providers; kept with the facts' timelines while the group's layer 1 state stands.
    layer_one = cutoff.layer_one_by_group
    kept = cutoff.timelines.group_rows if cutoff.timelines is not None else {}
    rows_of: dict[str, tuple[ProfileRow, ...]] = {}
    for g in GROUPS:
        state = layer_one.get(g.code)
        hit = kept.get(g.code)
        if hit is not None and hit[0] is state:
            rows_of[g.code] = hit[1]
            continue
        items = list(state.values()) if state else []
        refs = tuple(sorted(map(_ref, items)))
        rows_of[g.code] = tuple(row_of(g.code, g.label, items, framework, area, refs)
                                for area in ("overall_effectiveness", *OUTCOME_AREAS))
        kept[g.code] = (state, rows_of[g.code])

    group_rows = {code: rows[0] for code, rows in rows_of.items()}
    groups = tuple(group_rows.values())
    super_groups = tuple(pooled_row(s.code, s.label, [group_rows[g.code] for g in groups_of(s.code)], framework)
                         for s in SUPER_GROUPS)
    outcome_areas = {area: tuple(rows_of[g.code][k] for g in GROUPS) for k, area in enumerate(OUTCOME_AREAS, 1)}
    early_years = next(r for r in super_groups if r.code == "early_years_childcare")
    early_years_without = without_no_children_on_roll(early_years, cutoff, framework)

    return Profile(
        year=framework.year, la_code=la_code, as_at=cutoff.as_at,
        groups=groups, super_groups=super_groups, outcome_areas=outcome_areas,
        early_years_without_no_children_on_roll=early_years_without,
        block_b=block_b_summary(cutoff), block_c=block_c_rows(cutoff),
        latest_by_urn=cutoff.layer_one, cutoff=cutoff, framework=framework,
    )


BLOCK_C_KEPT = 8  # Block C rows kept per facts: one for each of the last few sets of counted figures


def block_c_rows(cutoff: CutoffResult) -> tuple[IndicatorRow, ...]:
    """`indicator_rows` of the counted Block C figures, kept with the facts for the last few
    sets of them (they change only with a publication; the rows are immutable)."""
    if cutoff.timelines is None:  # not from decide_cutoff: nothing to keep them with
        return indicator_rows(cutoff.indicators)
    kept = cutoff.evidence.rule_indexes.setdefault("block_c", OrderedDict())
    key = tuple(map(id, cutoff.indicators))  # facts of these very facts: alive as long as they are
    rows = kept.get(key)
    if rows is None:
        rows = kept[key] = indicator_rows(cutoff.indicators)
        while len(kept) > BLOCK_C_KEPT:
            kept.popitem(last=False)
    return rows


def without_no_children_on_roll(early_years: ProfileRow, cutoff: CutoffResult,
                                 framework: FrameworkSettings) -> ProfileRow:
    """¶19: the early years and childcare row without providers with no children on roll: its
    row less the few such providers in layer 1 (a compliance check, or marked by as_at)."""
    label = "Early years and childcare, without providers with no children on roll"
    in_layer_one = [cutoff.layer_one_by_group.get(g.code, {}) for g in groups_of("early_years_childcare")]
    candidates = (cutoff.timelines.no_children_on_roll_candidates if cutoff.timelines is not None
                  else {urn for in_group in in_layer_one for urn in in_group})
    marked = [i for urn in candidates for in_group in in_layer_one
              if (i := in_group.get(urn)) is not None and has_no_children_on_roll(i, cutoff)]
    if not marked:
        return ProfileRow(early_years.code, label, early_years.counts, early_years.band, early_years.refs)
    less = row_of(early_years.code, label, marked, framework)
    counts = GradeCounts(*(getattr(early_years.counts, g.value) - getattr(less.counts, g.value)
                           for g in (Grade.OUTSTANDING, Grade.GOOD, Grade.SATISFACTORY, Grade.INADEQUATE)))
    refs = list(early_years.refs)
    for ref in less.refs:  # both sorted; each of these is in the early years row once
        del refs[bisect_left(refs, ref)]
    return ProfileRow(early_years.code, label, counts, band_for(counts.pct_good_or_better, framework), tuple(refs))


def build_profile(evidence: AuthorityEvidence, framework: FrameworkSettings, as_at: date) -> Profile:
    """The performance profile of one authority as at a business date."""
    return build_profile_from(decide_cutoff(evidence, framework, as_at), framework, evidence.la_code)
