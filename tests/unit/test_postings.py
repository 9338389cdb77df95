"""The integration format: the catalogue KINDS and `parse_posting` (pure, in memory)."""

from __future__ import annotations

from datetime import date

import pytest

from adapters.reference import authorities
from domain.postings import (
    ASSESSMENT,
    EVIDENCE,
    FOLLOW_UP,
    KINDS,
    PROVIDER,
    content_hash,
    parse_posting,
)

CODES = authorities().codes


def raw(type_: str, client_id: str = "c-1", actor: str = "integration", **fields):
    """A raw posting of this kind: its catalogue example plus the envelope, fields overridden."""
    body = {**KINDS[type_].example, **fields}
    return {"type": type_, "client_id": client_id, "actor": actor,
            **{k: v for k, v in body.items() if v is not _DROP}}


_DROP = object()


def parse(r, **kw):
    return parse_posting(r, known_la_codes=CODES, **kw)


def only_error(r, **kw):
    posting, errors = parse(r, **kw)
    assert posting is None
    assert len(errors) == 1, errors
    return errors[0]


# --- the catalogue ----------------------------------------------------------------


def test_there_are_152_authorities_and_the_examples_use_one_of_them():
    assert len(CODES) == 152
    assert "886" in CODES


@pytest.mark.parametrize("type_", sorted(KINDS))
def test_every_kind_accepts_its_own_example(type_):
    """docs/events.md shows these examples: each must parse as it stands."""
    kind = KINDS[type_]
    assert kind.example, f"{type_} has no example"
    posting, errors = parse(raw(type_))
    assert errors == []
    assert posting.type == type_
    assert posting.client_id == "c-1" and posting.actor == "integration"
    assert set(posting.data) == set(kind.example)


@pytest.mark.parametrize("type_", sorted(KINDS))
def test_every_example_gives_every_required_field(type_):
    kind = KINDS[type_]
    required = {f.name for f in kind.fields if f.required}
    assert required <= set(kind.example)
    assert set(kind.example) <= set(kind.field_names)


def test_every_kind_belongs_to_a_family():
    families = {k.family for k in KINDS.values()}
    assert families == {EVIDENCE, PROVIDER, FOLLOW_UP, ASSESSMENT}


def test_fields_are_typed():
    posting, _ = parse(raw("provider_inspection"))
    assert posting.data["occurred_on"] == date(2011, 7, 12)
    assert posting.data["published_on"] == date(2011, 9, 5)
    assert posting.data["overall_effectiveness"] == "good"
    posting, _ = parse(raw("indicator_value", value="74.5"))
    assert posting.data["value"] == 74.5
    posting, _ = parse(raw("published_grade", grade="performs poorly"))
    assert posting.data["grade"] == 1
    posting, _ = parse(raw("full_inspection", reinspection="yes"))
    assert posting.data["reinspection"] is True


def test_adequate_is_the_same_point_as_satisfactory():
    posting, _ = parse(raw("provider_inspection", overall_effectiveness="Adequate"))
    assert posting.data["overall_effectiveness"] == "satisfactory"


def test_text_and_envelope_are_stripped():
    posting, _ = parse(raw("substantiated_complaint", client_id="  x-1 ", actor=" ofsted ", summary="  Delay "))
    assert posting.client_id == "x-1"
    assert posting.actor == "ofsted"
    assert posting.data["summary"] == "Delay"


def test_default_actor_is_used_when_the_posting_names_none():
    r = raw("provider_closed")
    del r["actor"]
    posting, errors = parse(r, default_actor="importer")
    assert errors == [] and posting.actor == "importer"
    _, errors = parse(r)
    assert [e.field for e in errors] == ["actor"]


# --- content hash (idempotency) ---------------------------------------------------


def test_content_hash_ignores_actor_line_and_field_order():
    a, _ = parse(raw("provider_inspection", actor="one"), line=3)
    b, _ = parse(dict(reversed(list(raw("provider_inspection", actor="two").items()))), line=9)
    assert a.content_hash == b.content_hash


def test_content_hash_changes_with_the_content_and_the_type():
    a, _ = parse(raw("provider_inspection"))
    b, _ = parse(raw("provider_inspection", overall_effectiveness="inadequate"))
    assert a.content_hash != b.content_hash
    assert content_hash("provider_closed", {"x": 1}) != content_hash("compliance_check", {"x": 1})


def test_content_hash_of_equal_values_is_equal_whatever_their_spelling():
    a, _ = parse(raw("provider_inspection", overall_effectiveness="adequate"))
    b, _ = parse(raw("provider_inspection", overall_effectiveness="satisfactory"))
    assert a.content_hash == b.content_hash


# --- bad input: each error names the field, the value and the reason -----------------


@pytest.mark.parametrize("grade", ["excellent", "very good", "5", ""])
def test_grade_off_the_scale(grade):
    e = only_error(raw("provider_inspection", overall_effectiveness=grade))
    assert e.field == "overall_effectiveness"
    assert e.value == grade
    assert ("scale" in e.reason) if grade else (e.reason == "is required")


def test_grade_off_the_scale_inside_a_map():
    e = only_error(raw("full_inspection", sub_judgements={"staying_safe": "good", "partnerships": "superb"}))
    assert e.field == "sub_judgements"
    assert "partnerships" in e.reason and "superb" in e.reason


def test_unknown_group():
    e = only_error(raw("provider_registered", group="primary"))
    assert (e.field, e.value) == ("group", "primary")
    assert "22 inspection groups" in e.reason


@pytest.mark.parametrize("code", ["999", "100"])
def test_unknown_authority(code):
    e = only_error(raw("unannounced_inspection", la_code=code))
    assert (e.field, e.value) == ("la_code", code)
    assert "152" in e.reason


@pytest.mark.parametrize("code", ["88", "8866", "abc", True])
def test_malformed_authority_code(code):
    e = only_error(raw("unannounced_inspection", la_code=code))
    assert (e.field, e.value) == ("la_code", code)
    assert "3-digit" in e.reason


def test_authority_code_given_as_a_number_is_accepted():
    posting, errors = parse(raw("unannounced_inspection", la_code=886))
    assert errors == [] and posting.data["la_code"] == "886"


@pytest.mark.parametrize("type_", [None, "inspection", "Provider_Inspection", 7])
def test_unknown_type(type_):
    e = only_error(raw("provider_inspection") | {"type": type_})
    assert (e.field, e.value) == ("type", type_)
    assert "unknown event type" in e.reason


def test_not_an_object():
    e = only_error(["type", "provider_inspection"])
    assert e.field == "(line)" and "JSON object" in e.reason


def test_published_before_occurred():
    e = only_error(raw("provider_inspection", occurred_on="2011-07-12", published_on="2011-07-11"))
    assert (e.field, e.value) == ("published_on", "2011-07-11")
    assert "before occurred_on 2011-07-12" in e.reason


def test_published_on_the_day_it_occurred_is_fine():
    _, errors = parse(raw("provider_inspection", occurred_on="2011-07-12", published_on="2011-07-12"))
    assert errors == []


@pytest.mark.parametrize("value, reason", [
    ("2011-02-30", "not a valid calendar date"),
    ("2011-13-01", "not a valid calendar date"),
    ("01/02/2011", "YYYY-MM-DD"),
    ("2011-2-1", "YYYY-MM-DD"),
    ("2011-02-01T10:00", "YYYY-MM-DD"),
    (20110201, "YYYY-MM-DD"),
])
def test_malformed_dates(value, reason):
    e = only_error(raw("provider_inspection", occurred_on=value, published_on=_DROP))
    assert (e.field, e.value) == ("occurred_on", value)
    assert reason in e.reason


@pytest.mark.parametrize("type_", sorted(KINDS))
def test_missing_required_fields(type_):
    kind = KINDS[type_]
    required = [f.name for f in kind.fields if f.required]
    if not required:
        pytest.skip(f"{type_} has no required field")
    r = raw(type_, **{name: _DROP for name in required})
    posting, errors = parse(r)
    assert posting is None
    assert sorted(e.field for e in errors) == sorted(required)
    assert all(e.reason == "is required" and e.value is None for e in errors)


def test_a_required_field_given_empty_is_missing():
    e = only_error(raw("substantiated_complaint", summary=""))
    assert (e.field, e.reason) == ("summary", "is required")


def test_missing_client_id_and_actor():
    r = raw("provider_closed")
    del r["client_id"]
    r["actor"] = " "
    posting, errors = parse(r)
    assert posting is None
    assert {e.field for e in errors} == {"client_id", "actor"}


def test_overlong_client_id():
    e = only_error(raw("provider_closed", client_id="x" * 201))
    assert e.field == "client_id" and "1-200" in e.reason


def test_a_field_that_the_kind_does_not_have():
    e = only_error(raw("provider_closed", grade="good"))
    assert (e.field, e.value) == ("grade", "good")
    assert "not a field of provider_closed" in e.reason


def test_every_bad_field_is_reported_with_its_line():
    posting, errors = parse(raw("provider_inspection", overall_effectiveness="great", occurred_on="2011-02-30",
                                staying_safe="meh"), line=12)
    assert posting is None
    assert {e.field for e in errors} == {"overall_effectiveness", "occurred_on", "staying_safe"}
    assert {e.line for e in errors} == {12}
    assert all(str(e).startswith("line 12: ") for e in errors)


@pytest.mark.parametrize("value", ["maybe", 1, None])
def test_booleans(value):
    posting, errors = parse(raw("compliance_check", compliant=value))
    assert posting is None
    assert errors[0].field == "compliant"


@pytest.mark.parametrize("grade", [0, 5, "brilliantly", True])
def test_assessment_grade_off_the_scale(grade):
    e = only_error(raw("assessment_proposed", grade=grade))
    assert (e.field, e.value) == ("grade", grade)
    assert "¶62" in e.reason


def test_choices():
    e = only_error(raw("indicator_value", polarity="up"))
    assert e.field == "polarity" and "higher, lower" in e.reason
    e = only_error(raw("full_inspection", service="fostering"))
    assert e.field == "service" and "safeguarding" in e.reason


def test_numbers():
    e = only_error(raw("indicator_value", value="n/a"))
    assert (e.field, e.reason) == ("value", "must be a number")
    e = only_error(raw("assessment_proposed", year="2011.5"))
    assert (e.field, e.reason) == ("year", "must be a whole number")


def test_text_lists():
    e = only_error(raw("unannounced_inspection", priority_actions="none"))
    assert e.field == "priority_actions" and "list" in e.reason
    posting, _ = parse(raw("unannounced_inspection", priority_actions=[" Referral delays "]))
    assert posting.data["priority_actions"] == ["Referral delays"]


@pytest.mark.parametrize("urn", ["-abc", "has space", "x" * 33])
def test_malformed_urn(urn):
    e = only_error(raw("provider_closed", urn=urn))
    assert (e.field, e.value) == ("urn", urn)


@pytest.mark.parametrize("type_", ["correction", "withdrawal"])
def test_a_follow_up_names_exactly_one_of_target_or_urn(type_):
    e = only_error(raw(type_, urn="EY100001"))
    assert e.field == "target" and "exactly one" in e.reason
    e = only_error(raw(type_, target=_DROP))
    assert e.field == "target" and "exactly one" in e.reason
    posting, errors = parse(raw(type_, target=_DROP, urn="EY100001"))
    assert errors == [] and posting.data["urn"] == "EY100001"


def test_correction_changes_must_be_an_object():
    e = only_error(raw("correction", changes=["overall_effectiveness", "good"]))
    assert e.field == "changes" and "object" in e.reason


def test_known_at_text_means_end_of_day_for_a_date_and_utc_for_a_naive_timestamp():
    from datetime import UTC, datetime

    import pytest

    from domain.points import known_at_from_text

    assert known_at_from_text("2011-09-30") == datetime(2011, 9, 30, 23, 59, 59, 999999, tzinfo=UTC)
    assert known_at_from_text("2011-09-30T17:00:00") == datetime(2011, 9, 30, 17, tzinfo=UTC)
    assert known_at_from_text("2011-09-30T17:00:00+01:00") == datetime(2011, 9, 30, 16, tzinfo=UTC)
    with pytest.raises(ValueError, match="not an ISO timestamp"):
        known_at_from_text("30/09/2011")


# --- the parser's fast paths (issue 5): the same postings as the plain ones ----------------


@pytest.mark.parametrize("type_", sorted(KINDS))
def test_a_parsed_posting_is_the_dataclass_built_by_its_constructor(type_):
    from domain.postings import Posting

    posting, errors = parse(raw(type_))
    assert not errors
    built = Posting(posting.type, posting.client_id, posting.actor, posting.data, posting.line)
    assert posting == built
    assert list(vars(posting)) == list(vars(built))  # the same attributes, in the same order
    with pytest.raises(AttributeError):
        posting.type = "x"  # still frozen


def test_a_date_parsed_again_is_an_equal_date_and_a_bad_one_is_refused_each_time():
    first, _ = parse(raw("provider_inspection", occurred_on="2010-06-01", published_on="2010-07-01"))
    again, _ = parse(raw("provider_inspection", occurred_on="2010-06-01", published_on="2010-07-01"))
    assert first.data["occurred_on"] == again.data["occurred_on"] == date(2010, 6, 1)
    for _ in range(2):
        e = only_error(raw("provider_inspection", occurred_on="2010-02-30", published_on=_DROP))
        assert "not a valid calendar date" in e.reason


@pytest.mark.parametrize("word, grade", [("good", "good"), ("Good", "good"), (" adequate ", "satisfactory"),
                                         ("requires improvement", "satisfactory"), ("INADEQUATE", "inadequate")])
def test_grade_words_in_any_spelling(word, grade):
    posting, errors = parse(raw("provider_inspection", overall_effectiveness=word))
    assert not errors
    assert posting.data["overall_effectiveness"] == grade


def test_envelope_fields_are_not_data_and_a_missing_required_field_is_still_reported():
    posting, _ = parse(raw("provider_inspection"))
    assert not {"type", "client_id", "actor"} & set(posting.data)
    e = only_error(raw("provider_inspection", urn=_DROP))
    assert (e.field, e.reason) == ("urn", "is required")


# --- a posting as plain values (what a bulk import's parsing process sends, ADR 0042) --------


@pytest.mark.parametrize("type_", sorted(KINDS))
def test_a_posting_sent_as_its_fields_is_the_same_posting_with_its_hash(type_):
    import pickle

    from domain.postings import Posting, posting_fields, posting_from_fields
    from projections.page_writer import dumps

    posting, errors = parse(raw(type_), line=7)
    assert not errors
    fields = posting_fields(posting)
    assert fields[-1] == content_hash(posting.type, posting.data)
    back = posting_from_fields(*pickle.loads(dumps(fields)))  # noqa: S301 - as the importer sends it
    assert back == posting and back.line == 7
    assert vars(back)["content_hash"] == posting.content_hash  # kept, not computed again
    computed = Posting(posting.type, posting.client_id, posting.actor, posting.data, posting.line)
    computed.content_hash  # noqa: B018 - the cached property stores it
    assert list(vars(back)) == list(vars(computed))  # the same attributes, in the same order
    with pytest.raises(AttributeError):
        back.type = "x"  # still frozen


def test_a_posting_from_fields_keeps_the_hash_it_was_given():
    from domain.postings import posting_fields, posting_from_fields

    posting, _ = parse(raw("provider_inspection"))
    *values, _digest = posting_fields(posting)
    assert posting_from_fields(*values, "0" * 32).content_hash == "0" * 32  # the caller vouches for it
