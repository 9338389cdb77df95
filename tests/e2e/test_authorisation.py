"""Every role against every endpoint, including the embargo and the cross-authority
cases (ADR 0007). One row a (principal, request): the status it must get.

The scenario (api_helpers): 886 pre-draft, 887 draft sent, 888 under appeal,
889 published, 201 nothing recorded; local-authority tokens for 886 and 887.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from api_helpers import (
    DRAFT_SENT,
    NOTHING,
    PRE_DRAFT,
    PUBLISHED,
    UNDER_APPEAL,
    URN_OF,
    posting,
    problem,
    step,
)

PRINCIPALS = ("anonymous", "integration", "inspector", "la_pre_draft", "la_draft_sent", "appeals_panel",
              "auditor", "admin")
READERS = {"inspector": 200, "auditor": 200}


def expect(default: int, **by_principal: int) -> dict[str, int]:
    """Statuses by principal: anonymous 401 unless said, `default` for the rest."""
    return {p: by_principal.get(p, 401 if p == "anonymous" else default) for p in PRINCIPALS}


def uid() -> str:
    return uuid.uuid4().hex[:12]


# --- what each principal may read of an assessment in each state -------------------------

ASSESSMENT_READ = {
    PRE_DRAFT: expect(403, **READERS, la_pre_draft=403, la_draft_sent=404, appeals_panel=404),
    DRAFT_SENT: expect(403, **READERS, la_pre_draft=404, la_draft_sent=200, appeals_panel=404),
    UNDER_APPEAL: expect(403, **READERS, la_pre_draft=404, la_draft_sent=404, appeals_panel=200),
    PUBLISHED: expect(403, **READERS, la_pre_draft=403, la_draft_sent=403, appeals_panel=403),
    NOTHING: expect(404, integration=403, admin=403, **READERS),
}
AUTHORITY_READ = {  # profile and authority history: evidence is not embargoed, but is per authority
    PRE_DRAFT: expect(403, **READERS, la_pre_draft=200),
    DRAFT_SENT: expect(403, **READERS, la_draft_sent=200),
    UNDER_APPEAL: expect(403, **READERS, appeals_panel=200),
    PUBLISHED: expect(403, **READERS),
}
ASSESSMENT_VIEWS = ("proposal", "exceptions", "diff?from_known_at=2011-09-01", "history?limit=5")


def rows() -> list[Any]:
    out = []

    def add(method: str, path: str, statuses: dict[str, int], body: Any = None) -> None:
        for who, status in statuses.items():
            out.append(pytest.param(who, method, path, body, status, id=f"{who}-{method}-{path}"))

    add("POST", "/v1/events", expect(403, integration=200),
        {"events": [posting("unannounced_inspection", f"authz-{uid()}", la_code=PRE_DRAFT)]})
    for la, statuses in AUTHORITY_READ.items():
        add("GET", f"/v1/authorities/{la}/profile?layer=2", statuses)
        add("GET", f"/v1/authorities/{la}/history", statuses)
        add("GET", f"/v1/providers/{URN_OF[la]}/history", statuses)
    add("GET", "/v1/providers/NOSUCHURN/history", expect(404, integration=403, admin=403))
    for la, statuses in ASSESSMENT_READ.items():
        for view in ASSESSMENT_VIEWS:
            add("GET", f"/v1/authorities/{la}/assessments/2011/{view}", statuses)
    add("GET", "/v1/national/2011", expect(403, **READERS))

    steps = "/v1/authorities/{}/assessments/2011/steps"
    add("POST", steps.format(PRE_DRAFT), expect(403, inspector=200),
        step("assessment_proposed", f"authz-{uid()}", PRE_DRAFT))
    add("POST", steps.format(DRAFT_SENT), expect(403, la_draft_sent=200),
        step("factual_accuracy_query_raised", f"authz-{uid()}", DRAFT_SENT))
    add("POST", steps.format(PRE_DRAFT), expect(403),  # its own, but the draft is not sent yet
        step("factual_accuracy_query_raised", f"authz-{uid()}", PRE_DRAFT))
    add("POST", steps.format(UNDER_APPEAL), expect(403, appeals_panel=200),
        step("evaluator_assigned", f"authz-{uid()}", UNDER_APPEAL))
    add("POST", steps.format(DRAFT_SENT), expect(403, appeals_panel=404),  # not under appeal
        step("evaluator_assigned", f"authz-{uid()}", DRAFT_SENT))

    everyone = {p: 200 for p in PRINCIPALS}
    add("GET", "/v1/published/2011", everyone)
    add("GET", f"/v1/published/authorities/{PUBLISHED}/profile?year=2011", everyone)
    add("GET", f"/v1/published/authorities/{DRAFT_SENT}/profile?year=2011", {p: 404 for p in PRINCIPALS})
    add("GET", "/v1/health/live", everyone)
    add("GET", "/v1/health/ready", everyone)

    add("GET", "/v1/admin/tokens", expect(403, admin=200))
    add("POST", "/v1/admin/tokens", expect(403, admin=201), {"name": f"new-{uid()}", "role": "auditor"})
    add("DELETE", "/v1/admin/tokens/999999", expect(403, admin=404))
    add("POST", "/v1/admin/rebuild", expect(403, admin=200))
    add("GET", "/v1/admin/verify", expect(403, admin=200))
    return out


@pytest.mark.parametrize(("who", "method", "path", "body", "status"), rows())
def test_role_against_endpoint(scenario, who: str, method: str, path: str, body: Any, status: int) -> None:
    r = scenario.client.request(method, path, json=body, headers=scenario.as_(who))
    if status >= 400:
        p = problem(r, status)
        if status == 401:
            assert r.headers["www-authenticate"].startswith("Bearer")
        assert p["detail"]
    else:
        assert r.status_code == status, r.text


# --- what the refusals reveal ---------------------------------------------------------------


def test_embargo_404_reveals_nothing(scenario) -> None:
    """Another authority's unpublished assessment reads exactly like one with nothing recorded."""
    la = scenario.as_("la_draft_sent")
    seen = [scenario.client.get(f"/v1/authorities/{code}/assessments/2011/proposal", headers=la).json()
            for code in (PRE_DRAFT, UNDER_APPEAL, NOTHING)]
    codes = (PRE_DRAFT, UNDER_APPEAL, NOTHING)
    masked = [s["detail"].replace(f"authority {code} ", "authority X ") for s, code in zip(seen, codes, strict=True)]
    assert masked == ["no assessment of authority X for 2011 is visible to you"] * 3
    assert {tuple(sorted(s)) for s in seen} == {("detail", "status", "title", "type")}


def _step_kinds(history: dict[str, Any]) -> set[str]:
    return {e["kind"] for e in history["items"] if e["year"] is not None}


def test_authority_history_shows_only_visible_assessment_steps(scenario) -> None:
    c = scenario.client
    own_pre_draft = c.get(f"/v1/authorities/{PRE_DRAFT}/history", headers=scenario.as_("la_pre_draft")).json()
    own_draft = c.get(f"/v1/authorities/{DRAFT_SENT}/history", headers=scenario.as_("la_draft_sent")).json()
    inspector = c.get(f"/v1/authorities/{PRE_DRAFT}/history", headers=scenario.as_("inspector")).json()
    assert own_pre_draft["items"] and _step_kinds(own_pre_draft) == set()
    assert {"assessment_proposed", "draft_letter_sent"} <= _step_kinds(own_draft)
    assert "assessment_proposed" in _step_kinds(inspector)


def test_a_local_authority_sees_its_own_assessment_once_the_draft_is_sent(scenario) -> None:
    r = scenario.client.get(f"/v1/authorities/{DRAFT_SENT}/assessments/2011/proposal",
                            headers=scenario.as_("la_draft_sent"))
    assert r.status_code == 200 and r.json()["la_code"] == DRAFT_SENT and "grade" in r.json()
    refused = scenario.client.get(f"/v1/authorities/{PRE_DRAFT}/assessments/2011/proposal",
                                  headers=scenario.as_("la_pre_draft"))
    assert "draft letter" in problem(refused, 403)["detail"]


def test_a_bad_token_is_refused_even_where_no_token_is_needed(scenario) -> None:
    for header in ({"Authorization": "Bearer csa_not-a-token"}, {"Authorization": "Basic dXNlcjpwdw=="}):
        r = scenario.client.get("/v1/published/2011", headers=header)
        problem(r, 401)


def test_the_published_profile_is_as_at_publication(scenario) -> None:
    r = scenario.client.get(f"/v1/published/authorities/{PUBLISHED}/profile")
    body = r.json()
    assert r.status_code == 200 and body["layer"] == 1 and "layer2" not in body
    grades = scenario.client.get("/v1/published/2011").json()["authorities"]
    assert [g["la_code"] for g in grades] == [PUBLISHED]
    assert body["as_at"] == grades[0]["published_on"]
