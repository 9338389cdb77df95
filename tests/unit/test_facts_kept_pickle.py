"""The facts and their timelines as kept in the store (ADR 0028, `projections.facts_kept`):
unpickled, they are equal facts whose timelines answer every as-at date as freshly built ones;
what the timelines cache for the last date asked is not kept; and a kept row may build only
the facts' own classes."""

from __future__ import annotations

import os
import pickle
import random
from dataclasses import replace

import pytest
from test_rules_timelines import F, as_at_dates, evidence_known_at, random_log

from domain.rules.cutoff import decide_cutoff
from domain.rules.facts import AuthorityEvidence
from domain.rules.profile import build_profile_from
from domain.rules.timelines import Timelines, timelines_built, timelines_for
from projections import facts_kept


@pytest.mark.parametrize("seed", range(6))
def test_unpickled_timelines_answer_every_date_as_freshly_built_ones(seed):
    rnd = random.Random(f"kept:{seed}")
    events = random_log(rnd, n_providers=rnd.randint(6, 30))
    evidence = evidence_known_at(events, len(events))
    dates = as_at_dates(evidence, F, rnd, 60)
    built = timelines_for(evidence, F)
    for as_at in dates[:5]:  # dates asked before keeping: their cached states are not kept
        built.latest_counted(as_at), built.layer_one_by_group(as_at)
        build_profile_from(decide_cutoff(evidence, F, as_at), F, evidence.la_code)

    restored = facts_kept.loads(facts_kept.dumps(evidence, built), F)

    assert isinstance(restored, AuthorityEvidence) and restored == evidence
    timelines = timelines_built(restored, F)
    assert timelines is not None and timelines is not built and timelines.framework is F
    assert timelines_for(restored, F) is timelines  # used, not built again
    assert timelines.group_rows == {}
    assert all(c._last == (0, {}) for c in (timelines.latest_counted_changes, *timelines.layer_one_changes.values()))
    fresh = Timelines(evidence, F)
    for as_at in dates:
        assert timelines.latest_counted(as_at) == fresh.latest_counted(as_at)
        assert timelines.layer_one_by_group(as_at) == fresh.layer_one_by_group(as_at)
        assert build_profile_from(decide_cutoff(restored, F, as_at), F, restored.la_code).to_dict() == \
            build_profile_from(decide_cutoff(evidence, F, as_at), F, evidence.la_code).to_dict()
    # the timelines hold the restored facts' own objects, not copies (one pickle for both)
    facts_ids = {id(i) for i in restored.provider_inspections}
    counted = [i for state in (timelines.latest_counted(d) for d in dates) for i in state.values()]
    assert counted
    assert all(id(i) in facts_ids or i.compliance_check for i in counted)  # ¶19's copies aside


def test_facts_without_timelines_are_kept_without_them():
    evidence = evidence_known_at(random_log(random.Random("kept:bare"), 8), 30)
    restored = facts_kept.loads(facts_kept.dumps(evidence, None), F)
    assert restored == evidence and timelines_built(restored, F) is None


def test_timelines_built_under_another_framework_are_not_taken_for_this_one():
    evidence = evidence_known_at(random_log(random.Random("kept:other"), 8), 30)
    other = replace(F, care_exception=None)
    timelines_for(evidence, other)
    assert timelines_built(evidence, F) is None and timelines_built(evidence, other) is not None


class _Calls:
    """Pickles as a call of os.system: what a hostile row would hold."""

    def __reduce__(self):
        return os.system, ("true",)


@pytest.mark.parametrize("payload", [
    pickle.dumps(os.getcwd),
    pickle.dumps(((), pickle.loads)),
    pickle.dumps(((), _Calls())),
])
def test_a_kept_row_may_build_only_the_facts_own_classes(payload):
    with pytest.raises(pickle.UnpicklingError, match="may not name"):
        facts_kept.loads(payload, F)


def test_the_code_digest_names_the_code_that_built_the_facts():
    digest = facts_kept.code_digest()
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert facts_kept.code_digest() == digest  # the same within a process (and across, for the same code)
