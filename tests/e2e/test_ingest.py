"""POST /v1/events end to end, on SQLite and PostgreSQL: atomic batches, idempotency,
409, 413, 415, 422 and their problem shapes, NDJSON, read-your-writes."""

from __future__ import annotations

import json

from api_helpers import posting, problem, step

REG = posting("provider_registered", "reg-EY100001")
INSP = posting("provider_inspection", "sched-2011-0042")


def log_position(api) -> int:
    return api.ledger.projector.log_position()


def post(api, events, who: str = "integration"):
    return api.client.post("/v1/events", json={"events": events}, headers=api.as_(who))


def test_a_batch_is_recorded_and_reposting_it_records_nothing(api) -> None:
    first = post(api, [REG, INSP])
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["recorded"] == 2 and body["already_recorded"] == 0
    assert [(o["index"], o["client_id"], o["type"], o["status"]) for o in body["outcomes"]] == [
        (0, "reg-EY100001", "provider_registered", "recorded"),
        (1, "sched-2011-0042", "provider_inspection", "recorded")]
    assert body["position"] == log_position(api) > 0

    again = post(api, [REG, INSP]).json()
    assert again["recorded"] == 0 and again["already_recorded"] == 2
    assert again["position"] == body["position"]


def test_the_actor_is_the_tokens_name(api) -> None:
    post(api, [REG])
    history = api.client.get("/v1/providers/EY100001/history", headers=api.as_("inspector")).json()
    assert [e["actor"] for e in history["items"]] == ["integration"]
    refused = post(api, [{**INSP, "actor": "someone-else"}])
    p = problem(refused, 422)
    assert p["errors"] == [{"index": 0, "field": "actor", "value": "someone-else",
                            "reason": "the actor is the token's name ('integration'): leave it out or give that"}]


def test_one_bad_event_writes_nothing_and_every_error_is_named(api) -> None:
    before = log_position(api)
    bad = {**INSP, "client_id": "sched-2", "occurred_on": "2011-02-30", "overall_effectiveness": "brilliant"}
    r = post(api, [REG, bad, {"type": "no_such_kind", "client_id": "x"}])
    p = problem(r, 422)
    assert log_position(api) == before
    by = {(e["index"], e["field"]): e for e in p["errors"]}
    assert set(by) == {(1, "occurred_on"), (1, "overall_effectiveness"), (2, "type")}
    assert by[1, "occurred_on"]["value"] == "2011-02-30" and "calendar date" in by[1, "occurred_on"]["reason"]
    assert by[2, "type"]["value"] == "no_such_kind"
    assert "nothing was written" in p["detail"]


def test_same_client_id_different_content_is_a_conflict_and_writes_nothing(api) -> None:
    post(api, [REG, INSP])
    before = log_position(api)
    new = posting("provider_inspection", "sched-new", occurred_on="2011-03-01")
    changed = {**INSP, "overall_effectiveness": "inadequate"}
    p = problem(post(api, [new, changed]), 409)
    assert p["errors"][0]["index"] == 1 and p["errors"][0]["field"] == "client_id"
    assert p["errors"][0]["value"] == "sched-2011-0042"
    assert log_position(api) == before


def test_too_many_events_or_bytes_is_413_naming_the_limit(api) -> None:
    many = [posting("unannounced_inspection", f"u-{i}") for i in range(21)]
    p = problem(post(api, many), 413)
    assert p["limit"] == 20 and "20" in p["detail"] and p["unit"] == "events"
    big = [posting("substantiated_complaint", f"c-{i}", summary="x" * 2000) for i in range(12)]
    p = problem(post(api, big), 413)
    assert p["limit"] == 20_000 and p["unit"] == "bytes"
    assert log_position(api) == 0


def test_wrong_media_type_is_415(api) -> None:
    r = api.client.post("/v1/events", content="type,client_id\n", headers={**api.as_("integration"),
                                                                           "Content-Type": "text/csv"})
    p = problem(r, 415)
    assert p["accepted"] == ["application/json", "application/x-ndjson"]


def test_malformed_bodies_are_422(api) -> None:
    h = {**api.as_("integration"), "Content-Type": "application/json"}
    for content, field in (("{not json", "body"), ("[1, 2]", "events"), ('{"events": []}', "events"),
                           ('{"events": [], "more": 1}', "more")):
        p = problem(api.client.post("/v1/events", content=content, headers=h), 422)
        assert p["errors"][0]["field"] == field, (content, p)


def test_assessment_steps_are_not_evidence(api) -> None:
    p = problem(post(api, [step("draft_letter_sent", "draft-886", "886")]), 422)
    assert p["errors"][0]["field"] == "type" and "/steps" in p["errors"][0]["reason"]


def test_ndjson_names_lines(api) -> None:
    h = {**api.as_("integration"), "Content-Type": "application/x-ndjson"}
    lines = json.dumps(REG) + "\n\n" + json.dumps(INSP) + "\n"
    body = api.client.post("/v1/events", content=lines, headers=h).json()
    assert [(o["index"], o["line"]) for o in body["outcomes"]] == [(0, 1), (1, 3)]
    bad = json.dumps(REG) + "\n" + json.dumps({**INSP, "client_id": "s2", "occurred_on": "yesterday"}) + "\n{oops\n"
    p = problem(api.client.post("/v1/events", content=bad, headers=h), 422)
    assert p["errors"][0]["line"] == 3  # JSON syntax is checked first, for every line
    p = problem(api.client.post("/v1/events", content=bad.rsplit("{oops", 1)[0], headers=h), 422)
    assert [(e["line"], e["field"]) for e in p["errors"]] == [(2, "occurred_on")]


def test_read_your_writes_with_min_position(api) -> None:
    position = post(api, [REG]).json()["position"]
    # Recorded behind the API's back without projecting: the read model lags.
    later = api.ledger.record([INSP], default_actor="elsewhere", project=False).position
    assert api.ledger.projector.position() == position < later
    r = api.client.get("/v1/providers/EY100001/history", params={"min_position": later},
                       headers=api.as_("inspector"))
    assert r.status_code == 200 and r.json()["items"][0]["position"] == later
    ready = api.client.get("/v1/health/ready").json()
    assert ready["projector_lag"] == 0 and ready["log_position"] == later


def test_a_position_beyond_the_log_is_422(api) -> None:
    position = post(api, [REG]).json()["position"]
    r = api.client.get("/v1/providers/EY100001/history", params={"min_position": position + 1},
                       headers=api.as_("inspector"))
    assert problem(r, 422)["errors"][0]["field"] == "min_position"


def test_a_read_model_that_does_not_catch_up_in_time_is_503(api, monkeypatch) -> None:
    post(api, [REG])
    later = api.ledger.record([INSP], default_actor="elsewhere", project=False).position
    monkeypatch.setattr(api.ledger, "catch_up", lambda *a, **k: 0)  # a projector held up elsewhere
    r = api.client.get("/v1/providers/EY100001/history", params={"min_position": later},
                       headers=api.as_("inspector"))
    p = problem(r, 503)
    assert r.headers["retry-after"] == "1" and p["log_position"] == later and p["position"] == later - 1
