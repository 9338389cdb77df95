"""Request and response schemas of the HTTP API, separate from domain objects.

The posting schemas (ingest and assessment steps) are derived from the one
catalogue `domain.postings.KINDS`, with its examples, so they cannot drift from
the parser, the importers or docs/events.md. The view schemas name the top-level
fields of each view; the nested figures are documented in docs/rules.md.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from domain import postings as p
from domain.vocabulary import GRADE_WORDS, GROUPS_BY_CODE

# A timestamp always with its zone (the store keeps naive UTC): RFC 3339 on the wire.
UtcDateTime = Annotated[datetime, AfterValidator(lambda d: d if d.tzinfo else d.replace(tzinfo=UTC))]

# --- postings, derived from KINDS ------------------------------------------------

ASSESSMENT_GRADE = {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 4},
                              {"type": "string", "enum": ["excellently", "well", "adequately", "poorly"]}]}
GRADE = {"type": "string", "enum": list(GRADE_WORDS)}
_BY_PARSER: dict[Any, dict[str, Any]] = {
    p._date: {"type": "string", "format": "date"},
    p._grade: GRADE,
    p._assessment_grade: ASSESSMENT_GRADE,
    p._text: {"type": "string", "minLength": 1},
    p._bool: {"type": "boolean"},
    p._int: {"type": "integer"},
    p._number: {"type": "number"},
    p._text_list: {"type": "array", "items": {"type": "string", "minLength": 1}},
    p._grade_map: {"type": "object", "additionalProperties": GRADE},
    p._object: {"type": "object"},
    p._group: {"type": "string", "enum": sorted(GROUPS_BY_CODE)},
    p._la_code: {"type": "string", "pattern": r"^\d{3}$"},
    p._urn: {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"},
}
EVIDENCE_FAMILIES = (p.EVIDENCE, p.PROVIDER, p.FOLLOW_UP)


def field_schema(spec: p.FieldSpec) -> dict[str, Any]:
    schema = _BY_PARSER.get(spec.parse)
    if schema is None:  # a choice: its options are its type_doc, "a | b | c"
        schema = {"type": "string", "enum": [o.strip() for o in spec.type_doc.split("|")]}
    described = f"{spec.doc} ({spec.type_doc})" if spec.doc else spec.type_doc
    return {**schema, "description": described}


def posting_example(kind: p.Kind, client_id: str | None = None, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    body = {k: v for k, v in kind.example.items() if k not in drop}
    return {"type": kind.name, "client_id": client_id or f"example-{kind.name.replace('_', '-')}-1", **body}


def posting_schema(kind: p.Kind, *, path_fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON Schema of one kind of posting. `path_fields` come from the URL and are optional."""
    props: dict[str, Any] = {
        "type": {"type": "string", "const": kind.name, "description": "the kind of posting"},
        "client_id": {"type": "string", "minLength": 1, "maxLength": 200,
                      "description": "the client's own id of this posting: posting it again with the same content "
                                     "is reported already_recorded; with different content, 409"},
        "actor": {"type": "string", "minLength": 1,
                  "description": "optional: the actor is the bearer token's name; if given it must equal it"},
    }
    for spec in kind.fields:
        props[spec.name] = field_schema(spec)
        if spec.name in path_fields:
            props[spec.name]["description"] += "; optional here: taken from the path (must match if given)"
    required = ["type", "client_id"] + [s.name for s in kind.fields if s.required and s.name not in path_fields]
    where = f" ({kind.paragraph})" if kind.paragraph else ""
    return {"type": "object", "title": kind.name, "description": kind.doc + where, "properties": props,
            "required": required, "additionalProperties": False,
            "examples": [posting_example(kind, drop=path_fields)]}


def evidence_kinds() -> list[p.Kind]:
    return [k for k in p.KINDS.values() if k.family in EVIDENCE_FAMILIES]


def step_kinds() -> list[p.Kind]:
    return [k for k in p.KINDS.values() if k.family == p.ASSESSMENT]


def posting_components() -> dict[str, dict[str, Any]]:
    """Schemas to add to components.schemas: one per evidence kind, one per step kind."""
    out = {f"Posting_{k.name}": posting_schema(k) for k in evidence_kinds()}
    out |= {f"Step_{k.name}": posting_schema(k, path_fields=("la_code", "year")) for k in step_kinds()}
    return out


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def events_request_body(max_events: int, max_bytes: int) -> dict[str, Any]:
    """The requestBody of POST /v1/events: a JSON batch or NDJSON lines, one example per kind."""
    kinds = evidence_kinds()
    one_of = {"oneOf": [_ref(f"Posting_{k.name}") for k in kinds]}
    batch = {"type": "object", "required": ["events"], "additionalProperties": False,
             "properties": {"events": {"type": "array", "minItems": 1, "maxItems": max_events, "items": one_of,
                                       "description": f"at most {max_events} events and {max_bytes} bytes"}}}
    reg, insp = p.KINDS["provider_registered"], p.KINDS["provider_inspection"]
    pair = [posting_example(reg, "reg-EY100001"), posting_example(insp, "sched-2011-0042")]
    json_examples = {"a provider and its inspection": {"value": {"events": pair}}}
    json_examples |= {k.name: {"summary": k.doc[:80], "value": {"events": [posting_example(k)]}} for k in kinds}
    ndjson = "\n".join(json.dumps(e) for e in pair) + "\n"
    return {
        "required": True,
        "description": "A batch of postings in the integration format (docs/events.md), recorded atomically.",
        "content": {
            "application/json": {"schema": batch, "examples": json_examples},
            "application/x-ndjson": {"schema": {"type": "string", "description": "one posting (a JSON object) a line; "
                                                "blank lines are skipped; errors name the line (from 1)"},
                                     "example": ndjson},
        },
    }


def step_request_body() -> dict[str, Any]:
    kinds = step_kinds()
    return {
        "required": True,
        "description": "One assessment step in the integration format; la_code and year come from the path.",
        "content": {"application/json": {
            "schema": {"oneOf": [_ref(f"Step_{k.name}") for k in kinds]},
            "examples": {k.name: {"summary": k.doc[:80], "value": posting_example(k, drop=("la_code", "year"))}
                         for k in kinds}}},
    }


# --- problems ----------------------------------------------------------------------


class ProblemItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    field: str = Field(description="the field or parameter")
    value: Any = Field(None, description="the value given")
    reason: str = Field(description="why it was refused")
    index: int | None = Field(None, description="the event's index in the batch (JSON, from 0)")
    line: int | None = Field(None, description="the event's line (NDJSON, from 1)")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"type": "about:blank", "title": "Invalid evidence", "status": 422,
         "detail": "index 1: occurred_on='2011-13-01': not a valid calendar date (month must be in 1..12); "
                   "nothing was written",
         "errors": [{"index": 1, "field": "occurred_on", "value": "2011-13-01",
                     "reason": "not a valid calendar date (month must be in 1..12)"}]}]})
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[ProblemItem] | None = None


PROBLEM_EXAMPLES: dict[int, dict[str, Any]] = {
    401: {"title": "Unauthorised", "detail": "this resource needs a bearer token (Authorization: Bearer csa_…)"},
    403: {"title": "Forbidden", "detail": "role integration may not do this (needs inspector or auditor)"},
    404: {"title": "Not found", "detail": "no assessment of authority 886 for 2011 is visible to you"},
    405: {"title": "Method not allowed", "detail": "PUT is not allowed on /v1/events"},
    409: {"title": "Conflicting posting", "detail": "index 0: client_id='sched-2011-0042': already recorded with "
          "different content (a conflict: post a correction with a new client_id instead); nothing was written",
          "errors": [{"index": 0, "field": "client_id", "value": "sched-2011-0042",
                      "reason": "already recorded with different content (a conflict: post a correction with a "
                                "new client_id instead)"}]},
    413: {"title": "Content too large", "detail": "the batch holds 1500 events: at most 1000 a request",
          "limit": 1000},
    415: {"title": "Unsupported media type",
          "detail": "Content-Type text/csv: send application/json or application/x-ndjson"},
    422: {"title": "Invalid parameter", "detail": "as_at='2011-02-30': not a valid date",
          "errors": [{"field": "as_at", "in": "query", "value": "2011-02-30", "reason": "not a valid date"}]},
    503: {"title": "Read model behind", "detail": "min_position=5000: the read model is at position 4990 (log at "
          "4990) and did not reach it within 5.0s", "position": 4990, "log_position": 4990},
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` entry of an operation for these problem statuses, each with an example."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        ex = {"type": "about:blank", "status": code, **PROBLEM_EXAMPLES[code]}
        out[code] = {"description": ex["title"], "content": {"application/problem+json": {
            "schema": {"$ref": "#/components/schemas/Problem"}, "example": ex}}}
    return out


# --- ingest and steps ---------------------------------------------------------------


class EventOutcome(BaseModel):
    index: int = Field(description="the event's index in the batch (from 0; NDJSON: among non-blank lines)")
    line: int | None = Field(None, description="NDJSON only: the event's line (from 1)")
    client_id: str
    type: str
    status: Literal["recorded", "already_recorded"]


class IngestResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "position": 1042, "recorded": 1, "already_recorded": 1,
        "outcomes": [{"index": 0, "client_id": "reg-EY100001", "type": "provider_registered", "status": "already_recorded"},
                     {"index": 1, "client_id": "sched-2011-0042", "type": "provider_inspection", "status": "recorded"}]}]})
    position: int = Field(description="the log position reached: pass it as min_position to read your writes")
    recorded: int
    already_recorded: int
    outcomes: list[EventOutcome]


class StepResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "position": 1077, "la_code": "886", "year": 2011,
        "outcome": {"index": 0, "client_id": "draft-886-2011", "type": "draft_letter_sent", "status": "recorded"}}]})
    position: int
    la_code: str
    year: int
    outcome: EventOutcome


# --- history ------------------------------------------------------------------------


class HistoryEvent(BaseModel):
    position: int = Field(description="log position; a fact's ref is #position")
    aggregate_id: str
    version: int
    event: str = Field(description="the event, e.g. Evidence.Recorded, Item.Corrected, Assessment.StepRecorded")
    kind: str | None = Field(None, description="the kind of posting (or of the item a follow-up acts on)")
    la_code: str | None = None
    urn: str | None = None
    year: int | None = Field(None, description="the assessment year (assessment steps only)")
    actor: str | None = Field(None, description="who posted it (the token's name over HTTP)")
    client_id: str | None = None
    recorded_at: UtcDateTime = Field(description="when the ledger recorded it (transaction time, UTC)")
    details: dict[str, Any]


HISTORY_EVENT_EXAMPLE = {
    "position": 1077, "aggregate_id": "5b0a3f4e-0c1d-5e8f-9a77-1f0e5f8c2d11", "version": 4,
    "event": "Assessment.StepRecorded", "kind": "draft_letter_sent", "la_code": "886", "urn": None, "year": 2011,
    "actor": "hmi-smith", "client_id": "draft-886-2011", "recorded_at": "2011-09-23T10:00:00Z",
    "details": {"occurred_on": "2011-09-23", "grade": 3}}


class HistoryPage(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "order": "newest", "limit": 1, "items": [HISTORY_EVENT_EXAMPLE], "next_cursor": 1077}]})
    order: Literal["newest", "oldest"]
    limit: int
    items: list[HistoryEvent]
    next_cursor: int | None = Field(description="pass as cursor for the next page; null on the last page")


# --- views ----------------------------------------------------------------------------


class _View(BaseModel):
    model_config = ConfigDict(extra="allow")


GRADE_EXAMPLE = {"value": 3, "label": "performs well"}
POINT_EXAMPLE = {"as_at": "2011-11-08", "known_at": "2011-11-08T12:00:00+00:00"}


class ProfileView(_View):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "la_code": "886", "authority": "Kent", **POINT_EXAMPLE, "year": 2011, "layer": 1,
        "layer1": {"groups": [{"code": "childminders", "label": "Childminders", "number_inspected": 8,
                               "counts": {"outstanding": 0, "good": 4, "satisfactory": 3, "inadequate": 1},
                               "pct_good_or_better": 50.0, "band": "amber", "refs": ["#719", "#796"]}],
                   "super_groups": [], "early_years_without_no_children_on_roll": {}},
        "block_b": {"unannounced": {}, "safeguarding": {}, "looked_after_children": {}, "serious_case_reviews": {},
                    "joint_area_review": None, "private_fostering": {}},
        "block_c": [{"indicator": "KS2_L4_EM", "period": "2010", "value": 74.0, "polarity": "higher"}]}]})
    la_code: str
    authority: str
    as_at: date
    known_at: UtcDateTime
    year: int
    layer: int = Field(description="1 summary (always present with block_b and block_c); 2-4 add layerN")
    layer1: dict[str, Any]
    block_b: dict[str, Any] | None
    block_c: list[dict[str, Any]] | None


class ProposalView(_View):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "la_code": "886", "authority": "Kent", **POINT_EXAMPLE, "year": 2011,
        "block_a": GRADE_EXAMPLE, "block_b": GRADE_EXAMPLE, "block_c": GRADE_EXAMPLE, "caps": [],
        "grade": GRADE_EXAMPLE,
        "considerations": [{"code": "band_proximity", "paragraph": "¶58", "refs": ["#727"],
                            "description": "Childcare on domestic premises: 50.0% good or better is within 2 points "
                                           "of the 50% cut-off", "figures": {"pct": "50.00", "cut_off": "50"}}],
        "trace": [{"rule_id": "annex_e.block_a.well", "description": "…", "paragraph": "Annex E", "passed": True,
                   "figures": {}, "refs": []}],
        "inspector_judgement": {"grade": GRADE_EXAMPLE, "reasons": "Block A and B agree",
                                "sustained_improvement": False, "recorded_by": "hmi-smith",
                                "recorded_at": "2011-09-12T16:00:00", "ref": "#1079"}}]})
    la_code: str
    authority: str
    as_at: date
    known_at: UtcDateTime
    year: int
    grade: dict[str, Any]
    considerations: list[dict[str, Any]]
    trace: list[dict[str, Any]]
    inspector_judgement: dict[str, Any] | None


class ExceptionsView(_View):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "la_code": "886", "authority": "Kent", **POINT_EXAMPLE, "year": 2011,
        "exceptions": [{"ref": "#1067", "kind": "provider_inspection", "counts": True,
                        "rule_id": "cutoff.exception2_care_july_august", "paragraph": "¶28 (exception 2)",
                        "reason": "children's home inspected 2011-08-16, counts whether or not published",
                        "exception": True, "occurred_on": "2011-08-16", "published_on": None, "urn": "SC089005",
                        "group": "la_childrens_homes", "grade_recorded_as": None}]}]})
    la_code: str
    authority: str
    as_at: date
    known_at: UtcDateTime
    year: int
    exceptions: list[dict[str, Any]]


class DiffView(_View):
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "la_code": "886", "year": 2011,
        "from": {"as_at": "2011-11-08", "known_at": "2011-06-01T23:59:59.999999+00:00"},
        "to": POINT_EXAMPLE,
        "evidence": {"appeared": [{"ref": "#1067", "kind": "provider_inspection", "client_id": "sched-2011-0042",
                                   "urn": "SC089005", "occurred_on": "2011-08-16", "published_on": None,
                                   "data": {"overall_effectiveness": "good"}}], "changed": [], "withdrawn_or_gone": []},
        "counted": {"now_counted": [], "no_longer_counted": []}, "figures": [],
        "proposal": {"changed": False, "grades": {"proposal": {"from": "performs well", "to": "performs well"}},
                     "caps": {"from": [], "to": []}, "rules_changed": []}}]})
    la_code: str
    year: int
    from_: dict[str, Any] = Field(alias="from")
    to: dict[str, Any]
    evidence: dict[str, Any]
    counted: dict[str, Any]
    figures: list[dict[str, Any]]
    proposal: dict[str, Any]


class NationalRow(BaseModel):
    la_code: str
    authority: str
    region: str
    block_a: int | None
    block_b: int | None
    block_c: int | None
    proposal: int | None
    proposal_label: str
    considerations: int


class NationalView(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "year": 2011, **POINT_EXAMPLE,
        "authorities": [{"la_code": "886", "authority": "Kent", "region": "South East", "block_a": 3, "block_b": 3,
                         "block_c": 3, "proposal": 3, "proposal_label": "performs well", "considerations": 2}],
        "counts": {"performs excellently": 0, "performs well": 1, "performs adequately": 0, "performs poorly": 0,
                   "no evidence recorded": 151}, "total": 152}]})
    year: int
    as_at: date
    known_at: UtcDateTime
    authorities: list[NationalRow]
    counts: dict[str, int]
    total: int


# --- published ------------------------------------------------------------------------------


class PublishedGrade(BaseModel):
    la_code: str
    authority: str
    grade: dict[str, Any] = Field(description="value 1-4 and label")
    published_on: date = Field(description="the publication date (the step's occurred_on)")
    recorded_at: UtcDateTime
    ref: str


class PublishedGrades(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "year": 2011, "authorities": [{"la_code": "886", "authority": "Kent", "grade": GRADE_EXAMPLE,
                                       "published_on": "2011-11-08", "recorded_at": "2011-11-08T09:00:00Z",
                                       "ref": "#1093"}]}]})
    year: int
    authorities: list[PublishedGrade]


# --- health and operations -------------------------------------------------------------------


class Live(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})
    status: Literal["ok"]


class Ready(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"status": "ok", "store": "postgresql", "log_position": 1217, "read_model_position": 1217,
         "projector_lag": 0, "authorities_kept": 152, "warming": False}]})
    status: Literal["ok", "unavailable"]
    store: str
    log_position: int | None = None
    read_model_position: int | None = None
    projector_lag: int | None = None
    authorities_kept: int | None = Field(None, description="authorities whose facts this process keeps (ADR 0022)")
    warming: bool | None = Field(None, description="this process is still reading every authority's facts "
                                 "(CSA_VIEWS_WARM_ON_START); it answers meanwhile, more slowly")
    detail: str | None = None


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "kent-cc", "role": "local_authority", "la_code": "886"},
        {"name": "ofsted-mi-feed", "role": "integration"}]})
    name: str = Field(min_length=1, max_length=200)
    role: Literal["integration", "inspector", "local_authority", "appeals_panel", "auditor", "admin"]
    la_code: str | None = Field(None, pattern=r"^\d{3}$", description="for a local_authority token only")


class TokenInfo(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": 3, "name": "kent-cc", "role": "local_authority", "la_code": "886",
         "created_at": "2011-09-01T09:00:00", "revoked_at": None}]})
    id: int
    name: str
    role: str
    la_code: str | None
    created_at: UtcDateTime
    revoked_at: UtcDateTime | None


class TokenIssued(TokenInfo):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"id": 3, "name": "kent-cc", "role": "local_authority", "la_code": "886",
         "created_at": "2011-09-01T09:00:00", "revoked_at": None, "token": "csa_3q2…"}]})
    token: str = Field(description="the token: shown once, stored only as a keyed hash")


class RebuildResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"events": 1217, "position": 1217}]})
    events: int
    position: int


class VerifyResult(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "identical": True, "live": "9f2c…", "rebuilt": "9f2c…",
        "live_counts": {"rm_evidence": 1100, "rm_event_log": 1217},
        "rebuilt_counts": {"rm_evidence": 1100, "rm_event_log": 1217}}]})
    identical: bool
    live: str
    rebuilt: str
    live_counts: dict[str, int]
    rebuilt_counts: dict[str, int]
