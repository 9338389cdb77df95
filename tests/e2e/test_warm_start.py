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
