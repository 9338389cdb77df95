"""A question a worker has already answered at the read model's position is answered on
its event loop, without the thread pool; anything else goes to the thread pool as before."""

from __future__ import annotations

import pytest
from api_helpers import evidence_of, open_api, step

import api.kept as views_router
from adapters.views import NotKept


@pytest.fixture
def hops(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = views_router.run_in_threadpool

    async def counting(fn, *args, **kwargs):
        calls.append(fn.__name__)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(views_router, "run_in_threadpool", counting)
    return calls


def test_a_repeated_profile_is_answered_without_a_thread_and_the_same(store_url, clock, hops) -> None:
    for api in open_api(store_url, clock):
        assert api.client.post("/v1/events", json={"events": evidence_of("886")},
                               headers=api.as_("integration")).status_code == 200
        url = "/v1/authorities/886/profile?as_at=2011-08-31&known_at=2011-12-01"
        first = api.client.get(url, headers=api.as_("inspector"))
        assert first.status_code == 200 and hops == ["_profile"]
        again = api.client.get(url, headers=api.as_("inspector"))
        assert again.status_code == 200 and hops == ["_profile"], "kept: no thread"
        assert again.json() == first.json()
        other_date = api.client.get(url.replace("2011-08-31", "2011-06-30"), headers=api.as_("inspector"))
        assert other_date.status_code == 200 and hops == ["_profile", "_profile"], "a new question: a thread"

        # an event makes a new position: the answer is worked out again, in a thread
        assert api.client.post("/v1/events", json={"events": evidence_of("887")},
                               headers=api.as_("integration")).status_code == 200
        assert api.client.get(url, headers=api.as_("inspector")).status_code == 200
        assert hops[-1] == "_profile" and len(hops) == 3


def test_refusals_are_the_same_on_the_event_loop(store_url, clock, hops) -> None:
    for api in open_api(store_url, clock):
        url = "/v1/authorities/886/profile?as_at=2011-08-31"
        assert api.client.get(url, headers=api.as_("inspector")).status_code == 200
        n = len(hops)
        for who in ("integration", "la_draft_sent"):  # not a reader of profiles; another authority's
            refused = api.client.get(url, headers=api.as_(who))
            assert refused.status_code == 403, refused.text
        assert len(hops) == n, "refused on the event loop, before anything is computed"
        assert api.client.get(url).status_code == 401


def test_kept_only_views_never_compute(store_url, clock) -> None:
    for api in open_api(store_url, clock):
        views = api.app.state.views
        with pytest.raises(NotKept):
            views.kept_only()  # not pinned at a position
        pinned = views.at(api.ledger.projector.position())
        with pytest.raises(NotKept):
            pinned.kept_only().profile("886")
        body = pinned.profile("886")
        assert pinned.kept_only().profile("886")["layer1"] == body["layer1"]


def test_on_postgresql_the_caller_and_the_positions_are_asked_on_the_event_loop(store_url, clock, hops) -> None:
    for api in open_api(store_url, clock, token_cache_seconds=0, positions_kept_seconds=0):
        probe = api.app.state.probe
        assert (probe is not None) == store_url.startswith("postgresql")
        url = "/v1/authorities/886/profile?as_at=2011-08-31"
        assert api.client.get(url, headers=api.as_("inspector")).status_code == 200
        assert api.client.get(url, headers=api.as_("inspector")).status_code == 200
        assert api.client.get(url, headers={"Authorization": "Bearer csa_unknown"}).status_code == 401
        if probe is not None:
            assert probe.asked >= 5, "two tokens and two positions each read, a refused token"
        assert hops == ["_profile"], "only the first answer was worked out in a thread"


def test_proposal_exceptions_and_national_table_repeated_need_no_thread(seeded, hops) -> None:
    api = seeded
    urls = ["/v1/authorities/886/assessments/2011/proposal?as_at=2011-08-31",
            "/v1/authorities/886/assessments/2011/exceptions?as_at=2011-08-31",
            "/v1/national/2011?as_at=2011-08-31"]
    first = [api.client.get(u, headers=api.as_("inspector")) for u in urls]
    assert all(r.status_code == 200 for r in first), [r.text for r in first]
    n = len(hops)
    assert n >= 3, "worked out in the thread pool the first time"
    again = [api.client.get(u, headers=api.as_("inspector")) for u in urls]
    assert [r.json() for r in again] == [r.json() for r in first]
    assert len(hops) == n, "kept: answered on the event loop"

    # an inspector's judgement recorded after: a new position, the proposal shows it
    assert first[0].json()["inspector_judgement"] is None
    body = {k: v for k, v in step("inspector_judgement_applied", "judge-886-kept", "886").items()
            if k not in ("la_code", "year")}
    r = api.client.post("/v1/authorities/886/assessments/2011/steps", json=body, headers=api.as_("inspector"))
    assert r.status_code == 200, r.text
    after = api.client.get(urls[0], headers=api.as_("inspector")).json()
    assert after["inspector_judgement"] is not None and after["inspector_judgement"]["recorded_by"] == "inspector"
    assert len(hops) > n, "a new position: worked out again"
