"""An API process started with CSA_VIEWS_WARM_ON_START reads every authority's facts in
the background and answers meanwhile (ADR 0022)."""

from __future__ import annotations

import gc
import time

from api_helpers import evidence_of, open_api


def test_a_warm_started_process_keeps_every_authoritys_facts_and_answers_meanwhile(store_url, clock) -> None:
    for api in open_api(store_url, clock, views_warm_on_start=True):
        assert api.client.post("/v1/events", json={"events": evidence_of("886")},
                               headers=api.as_("integration")).status_code == 200
        assert api.client.get("/v1/authorities/886/profile", headers=api.as_("inspector")).status_code == 200
        facts = api.app.state.views._facts
        deadline = time.monotonic() + 60
        while len(facts) < len(api.ledger.authorities.all) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(facts) >= len(api.ledger.authorities.all)
        deadline = time.monotonic() + 30
        while gc.get_freeze_count() == 0 and time.monotonic() < deadline:  # then frozen out of full collections
            time.sleep(0.05)
        assert gc.get_freeze_count() > 0
    gc.unfreeze()  # this test process keeps running other tests


def test_a_second_process_answers_the_national_table_from_the_facts_the_first_kept(store_url, clock, monkeypatch) -> None:
    """ADR 0028: a warm-started process keeps every authority's facts in the store; a process
    started after it (a restarted or added worker) answers the national table over HTTP from
    them, the same answer, without reading the read model's rows."""
    from sqlalchemy import func, select

    import adapters.views as views_module
    from projections.tables import facts_kept

    for api in open_api(store_url, clock, views_warm_on_start=True):
        assert api.client.post("/v1/events", json={"events": evidence_of("886") + evidence_of("887")},
                               headers=api.as_("integration")).status_code == 200
        # the warm start may have begun before the events: ask once it has read everything, at this position
        api.app.state.warming.join(timeout=60)
        first = api.client.get("/v1/national/2011", headers=api.as_("inspector"))
        assert first.status_code == 200, first.text
        assert api.app.state.views.wait_kept_in_store(timeout=60)
        with api.ledger.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(facts_kept)).scalar() == len(api.ledger.authorities.all)
    gc.unfreeze()

    def refuse(*args, **kwargs):
        raise AssertionError("the second process read the facts from the read model")

    monkeypatch.setattr(views_module, "authorities_evidence", refuse)
    monkeypatch.setattr(views_module, "authority_evidence", refuse)
    for api in open_api(store_url, clock):
        second = api.client.get("/v1/national/2011", headers=api.as_("inspector"))
        assert second.status_code == 200, second.text
        assert second.json() == first.json()
        assert second.json()["counts"]["no evidence recorded"] < len(api.ledger.authorities.all)
