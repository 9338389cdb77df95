"""Each provider's standing on every as-at date at once, worked out once per facts.

Whether a provider inspection counts (¶28, ADR 0010, 0011, 0013) depends on the as-at
date only through three comparisons: it occurred by as_at, its report was published by
as_at, an inspector's exclusion of it was noted by as_at. So whether it counts can change
only on those dates; so can each provider's most recent counted inspection (¶27), and
whether the provider stands in layer 1 (¶19-20, ¶27) changes only on those dates of its
own and of its successors, and on its opening and closing dates.

`Timelines` finds those changes once for an authority's facts and a framework year, and
answers for any as-at date with a bisection and a dictionary built, at C speed, from the
changes up to that date, instead of judging every provider again (issue 5; ADR 0024). The
cut-off uses it for layer 1 only: every decision of the exceptions list and layers 3-4 is
still made item by item by `cutoff.py`, which a randomised test compares with this.

It is kept with the facts (`AuthorityEvidence.rule_indexes`), which the views keep per
authority until an event about it is projected: an auditor stepping through dates, or
the national table at a new date, pays for it once.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import replace
from datetime import date
from itertools import islice, repeat
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from domain.rules.cutoff import (
    occurred_within,
    provider_standing,
    recorded_grade_of_compliance_check,
    successors_of,
)
from domain.vocabulary import GROUPS_BY_CODE

if TYPE_CHECKING:
    from domain.framework import FrameworkSettings
    from domain.rules.facts import AuthorityEvidence, ProviderFact, ProviderInspectionFact

_MISSING = object()


class Changes:
    """Values per urn that change on dates: `at(as_at)` is {urn: value} of every urn whose
    latest change on or before `as_at` set a value (a change to None removes it)."""

    __slots__ = ("_dates", "_urns", "_values", "_drop_dates", "_drop_urns", "_last")

    def __init__(self, changes: list[tuple[date, str, Any]]):
        changes.sort(key=itemgetter(0))  # stable: an urn has at most one change a date
        self._dates = [c[0] for c in changes]
        self._urns = [c[1] for c in changes]
        self._values = [c[2] for c in changes]
        drops = [(d, urn) for d, urn, value in changes if value is None]
        self._drop_dates = [d for d, _ in drops]
        self._drop_urns = [urn for _, urn in drops]
        self._last: tuple[int, dict[str, Any]] = (0, {})

    def __len__(self) -> int:
        return len(self._dates)

    def __getstate__(self) -> tuple[list, ...]:
        """For keeping across processes (ADR 0028): the changes, not the last state asked."""
        return self._dates, self._urns, self._values, self._drop_dates, self._drop_urns

    def __setstate__(self, state: tuple[list, ...]) -> None:
        self._dates, self._urns, self._values, self._drop_dates, self._drop_urns = state
        self._last = (0, {})

    def at(self, as_at: date) -> dict[str, Any]:
        """The state on `as_at`: read only (the one of the last date asked is kept and given
        again while no change lies between, so work follows what changed)."""
        k = bisect_right(self._dates, as_at)
        last = self._last
        if last[0] == k:
            return last[1]
        state = dict(zip(islice(self._urns, k), islice(self._values, k), strict=True))  # the last change of each urn wins
        for urn in islice(self._drop_urns, bisect_right(self._drop_dates, as_at)):
            if state.get(urn, _MISSING) is None:
                del state[urn]
        self._last = (k, state)
        return state


class _Timeline:
    """One urn's value from each of its change dates on (None before the first)."""

    __slots__ = ("dates", "values")

    def __init__(self) -> None:
        self.dates: list[date] = []
        self.values: list[Any] = []

    def set(self, on: date, value: Any) -> None:
        if (self.values[-1] if self.values else None) is not value:
            self.dates.append(on)
            self.values.append(value)

    def at(self, as_at: date) -> Any:
        k = bisect_right(self.dates, as_at)
        return self.values[k - 1] if k else None


class _InspectedOn:
    """The providers with a counted inspection on a date, as `decide_provider` asks it."""

    __slots__ = ("_counted", "_on")

    def __init__(self, counted: dict[str, _Timeline], on: date):
        self._counted, self._on = counted, on

    def __contains__(self, urn: object) -> bool:
        timeline = self._counted.get(urn)  # type: ignore[call-overload]
        return timeline is not None and timeline.at(self._on) is not None


class Timelines:
    """For one authority's facts and one framework year: on any as-at date, each provider's
    most recent counted inspection (`latest_counted`) and, per group, the providers standing
    in layer 1 with it (`layer_one_by_group`)."""

    def __init__(self, evidence: AuthorityEvidence, framework: FrameworkSettings):
        self.framework = framework
        self.providers: dict[str, ProviderFact] = evidence.providers_in_authority
        providers = self.providers
        exclusions: dict[str, date] = {}  # ADR 0013: the first exclusion noted of each inspection
        for note in evidence.inspector_notes:
            if note.kind == "cutoff_exclusion" and note.target_ref is not None:
                if note.target_ref not in exclusions or note.noted_on < exclusions[note.target_ref]:
                    exclusions[note.target_ref] = note.noted_on

        # ¶27-28: each provider's most recent counted inspection on every date.
        data_date: date | None = None
        counted: dict[str, _Timeline] = {}
        counted_changes: list[tuple[date, str, Any]] = []
        for urn, inspections in evidence.inspections_newest_first.items():
            provider = providers.get(urn)
            if provider is None or provider.group not in GROUPS_BY_CODE:
                continue  # cutoff.provider_not_registered: never counts
            if data_date is None:
                data_date = framework.require("profile_data_date")
            timeline = self._counted_timeline(inspections, provider.group, data_date, exclusions)
            if timeline is None:
                continue
            counted[urn] = timeline
            counted_changes.extend(zip(timeline.dates, repeat(urn), timeline.values))
        self.latest_counted_changes = Changes(counted_changes)
        # ¶19: the providers that may have no children on roll on some date (marked, or with a
        # compliance check), for the early years row without them.
        self.no_children_on_roll_candidates = frozenset(
            {p.urn for p in providers.values() if p.no_children_on_roll_from is not None}
            | {i.urn for i in evidence.provider_inspections if i.compliance_check})

        # ¶19-20, ¶27: layer 1 holds a provider with a counted inspection while it is open, or
        # closed into a successor none of whose chain is inspected yet. Decided by the same
        # function as each provider decision, on each date any of that can change.
        layer_one: dict[str, list[tuple[date, str, Any]]] = {}
        for urn, provider in providers.items():
            own = counted.get(urn)
            if own is None:
                continue  # never inspected: never in layer 1
            if provider.closed_on is None and (provider.opened_on is None or provider.opened_on <= own.dates[0]):
                # open on every date it has a counted inspection: in layer 1 exactly then
                layer_one.setdefault(provider.group, []).extend(zip(own.dates, repeat(urn), own.values))
                continue
            points = set(own.dates)
            chain = None
            if provider.opened_on is not None:
                points.add(provider.opened_on)
            if provider.closed_on is not None:
                points.add(provider.closed_on)
                chain = successors_of(provider, providers)
                for successor in chain:
                    if successor.urn in counted:
                        points.update(counted[successor.urn].dates)
            timeline = _Timeline()
            for on in sorted(points):
                in_layer = provider_standing(provider, providers, _InspectedOn(counted, on), on, chain)[0]
                timeline.set(on, own.at(on) if in_layer else None)
            layer_one.setdefault(provider.group, []).extend(zip(timeline.dates, repeat(urn), timeline.values))
        self.layer_one_changes = {group: Changes(changes) for group, changes in layer_one.items()}
        # What the profile last built from each group's layer 1 state, kept while it stands
        # (`profile.build_profile_from`): {group: (state, rows)}.
        self.group_rows: dict[str, tuple[Any, Any]] = {}

    def __getstate__(self) -> dict[str, Any]:
        """For keeping across processes with the facts (ADR 0028): what was worked out from the
        facts, without the framework (the keeper gives it back, `restored`) or the profile rows
        last built (`group_rows`, rebuilt when asked)."""
        state = dict(self.__dict__)
        del state["framework"]
        state["group_rows"] = {}
        return state

    def restored(self, framework: FrameworkSettings) -> Timelines:
        """These timelines, unpickled, given back their framework."""
        self.framework = framework
        return self

    def _counted_timeline(self, inspections: tuple[ProviderInspectionFact, ...], group: str, data_date: date,
                          exclusions: dict[str, date]) -> _Timeline | None:
        """One provider's most recent counted inspection (¶27) from each date it changes on;
        None if no inspection ever counts. `inspections`: newest first."""
        framework = self.framework
        education = group in framework.education_groups
        care = group in framework.care_groups
        education_window, care_window = framework.education_exception, framework.care_exception
        # ¶28: an inspection counts from max(occurred, published) if published by the data date
        # (normal rule), from its date under exception 1 or 2; for good, unless an inspector's
        # exclusion ends exception 2 (ADR 0013): then the general case below.
        starts: list[tuple[date, int, ProviderInspectionFact]] = []
        for index, i in enumerate(inspections):
            occurred, published = i.occurred_on, i.published_on
            start = max(occurred, published) if published is not None and published <= data_date else None
            if education and occurred_within(education_window, occurred):
                start = occurred
            elif care and occurred_within(care_window, occurred):
                if i.ref in exclusions:
                    return self._counted_timeline_with_ends(inspections, group, data_date, exclusions)
                start = occurred
            if start is not None:
                starts.append((start, index, i))
        if not starts:
            return None
        timeline = _Timeline()
        newest = len(inspections)
        for start, index, i in sorted(starts):  # the newest inspection counted by each date stands
            if index < newest:
                newest = index
                timeline.set(start, self._as_counted(i))
        return timeline

    def _counted_timeline_with_ends(self, inspections: tuple[ProviderInspectionFact, ...], group: str,
                                    data_date: date, exclusions: dict[str, date]) -> _Timeline | None:
        """The general case: each inspection counts on a union of intervals [start, end)."""
        framework = self.framework
        spans: list[tuple[list[tuple[date, date | None]], ProviderInspectionFact]] = []
        points: set[date] = set()
        for i in inspections:  # newest first (¶27)
            occurred, published = i.occurred_on, i.published_on
            intervals: list[tuple[date, date | None]] = []
            if published is not None and published <= data_date:  # normal rule
                intervals.append((max(occurred, published), None))
            if group in framework.education_groups and occurred_within(framework.education_exception, occurred):
                intervals.append((occurred, None))  # exception 1
            elif group in framework.care_groups and occurred_within(framework.care_exception, occurred):
                excluded_from = exclusions.get(i.ref)  # exception 2, until an inspector excludes it
                if excluded_from is None or excluded_from > occurred:
                    intervals.append((occurred, excluded_from))
            if not intervals:
                continue
            for start, end in intervals:
                points.add(start)
                if end is not None:
                    points.add(end)
            spans.append((intervals, self._as_counted(i)))
        if not spans:
            return None
        timeline = _Timeline()
        for on in sorted(points):
            timeline.set(on, next((i for intervals, i in spans
                                   if any(s <= on and (e is None or on < e) for s, e in intervals)), None))
        return timeline

    def _as_counted(self, i: ProviderInspectionFact) -> ProviderInspectionFact:
        """¶19: a compliance check is recorded satisfactory or inadequate, without outcomes."""
        if i.compliance_check and self.framework.compliance_checks_recorded_as_satisfactory_or_inadequate:
            grade = recorded_grade_of_compliance_check(i.overall_effectiveness)
            return replace(i, overall_effectiveness=grade, staying_safe=None, enjoying_and_achieving=None)
        return i

    def latest_counted(self, as_at: date) -> dict[str, ProviderInspectionFact]:
        """Each provider's most recent counted inspection on `as_at` (¶27), ¶19-normalised."""
        return self.latest_counted_changes.at(as_at)

    def layer_one_by_group(self, as_at: date) -> dict[str, dict[str, ProviderInspectionFact]]:
        """Per group, the providers standing in layer 1 on `as_at` and their most recent counted
        inspection; only groups with one. Read only: a group's dictionary is the same object on
        every date with the same state."""
        out = {}
        for group, changes in self.layer_one_changes.items():
            state = changes.at(as_at)
            if state:
                out[group] = state
        return out


def timelines_for(evidence: AuthorityEvidence, framework: FrameworkSettings) -> Timelines:
    """The timelines of these facts under this framework, built once and kept with the facts."""
    kept = evidence.rule_indexes
    timelines = kept.get(id(framework))
    if timelines is None or timelines.framework is not framework:
        timelines = kept[id(framework)] = Timelines(evidence, framework)
    return timelines


def timelines_built(evidence: AuthorityEvidence, framework: FrameworkSettings) -> Timelines | None:
    """The timelines of these facts under this framework if they were built, else None."""
    timelines = evidence.rule_indexes.get(id(framework))
    return timelines if timelines is not None and timelines.framework is framework else None


def keep_timelines(evidence: AuthorityEvidence, timelines: Timelines) -> None:
    """Keep with these facts timelines built from equal facts (unpickled with them, ADR 0028)."""
    evidence.rule_indexes[id(timelines.framework)] = timelines

