"""The event schemas and :func:`schemas.parse_event`: valid fixtures, the malformed corpus,
generic events, SNS unwrapping, and a property test that parsing never raises."""

from __future__ import annotations

import contextlib
import json
import typing
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schemas
from schemas import (
    DETAIL_MODELS,
    EventBridgeEnvelope,
    ImportJobStatus,
    ParsedEvent,
    ParseLimits,
    ReadSetImportJobStatusChange,
    Rejected,
    RunStatus,
    RunStatusChange,
    S3ObjectCreated,
    Settings,
    TaskStatus,
    TaskStatusChange,
    WorkflowStatus,
    canonical_json,
    detail_model_for,
    normalise_status,
    parse_event,
)
from schemas.envelope import COLUMN_LENGTHS, SAFE_ID_PATTERN
from tests.helpers.common import EVENTS, REPO
from tests.helpers.hostile_corpus import HOSTILE, Case
from tests.helpers.malformed_corpus import (
    MALFORMED,
    MALFORMED_WITH_LIMITS,
    SEED_READ_SET_MISSING_COMMA,
    SEED_VARIANT_IMPORT_EXTRA_BRACE,
    SEED_VARIANT_STORE_TRAILING_COMMA,
    VALID_RUN_EVENT,
)

FIXTURES = sorted(EVENTS.glob("*.json"))


def load(name: str) -> bytes:
    return (EVENTS / f"{name}.json").read_bytes()


def parsed(raw: bytes | str | dict[str, Any], limits: ParseLimits | None = None) -> ParsedEvent:
    result = parse_event(raw) if limits is None else parse_event(raw, limits)
    assert isinstance(result, ParsedEvent), getattr(result, "reason", result)
    return result


def rejected(raw: bytes | str | dict[str, Any], limits: ParseLimits | None = None) -> Rejected:
    result = parse_event(raw) if limits is None else parse_event(raw, limits)
    assert isinstance(result, Rejected), result
    return result


def event(**top: Any) -> dict[str, Any]:
    copy = json.loads(json.dumps(VALID_RUN_EVENT))
    copy.update(top)
    return copy


def dump(obj: Any) -> bytes:
    return json.dumps(obj).encode()


# --- fixtures -----------------------------------------------------------------------------


def test_there_are_fixtures() -> None:
    assert len(FIXTURES) >= 30


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_every_fixture_parses_into_its_typed_model(path: Path) -> None:
    raw = path.read_bytes()
    result = parsed(raw)
    document = json.loads(raw)
    expected_payload = (
        json.loads(document["Message"]) if document.get("Type") == "Notification" else document
    )
    model = detail_model_for(result.source, result.detail_type)
    assert model is not None
    assert result.known
    assert isinstance(result.detail, model)
    assert result.payload == expected_payload
    assert result.raw == raw
    assert result.event_id == expected_payload["id"]
    assert result.time.tzinfo is UTC
    assert result.resource_id
    assert result.resource_arn
    if result.source == "aws.s3":
        assert result.status is None
    else:
        assert result.status == normalise_status(expected_payload["detail"]["status"])


def test_every_detail_type_and_s3_has_a_fixture() -> None:
    seen = set()
    for path in FIXTURES:
        result = parsed(path.read_bytes())
        seen.add((result.source, result.detail_type))
    for detail_type in DETAIL_MODELS:
        assert ("aws.omics", detail_type) in seen, detail_type
    assert ("aws.s3", "Object Created") in seen


def test_detail_models_use_the_exact_detail_types() -> None:
    assert len(DETAIL_MODELS) == 21
    assert "RunGroup Status Change" in DETAIL_MODELS
    assert "RunBatch Status Change" in DETAIL_MODELS
    assert "Run Group Status Change" not in DETAIL_MODELS
    assert "Omics Run Status Change" not in DETAIL_MODELS
    for model in DETAIL_MODELS.values():
        assert model.model_config.get("extra") == "allow", model


@pytest.mark.parametrize(
    ("name", "status", "resource_id", "resource_arn"),
    [
        (
            "seed_run_status_change",
            "COMPLETED",
            "153893cd-097a-40ec-aec7-838a97cd2b21",
            "arn:aws:omics:us-west-2:123456789012:run/2101313",
        ),
        (
            "seed_read_set_status_change",
            "PROCESSING_UPLOAD",
            "3456789012",
            "arn:aws:omics:us-west-2:123456789012:sequenceStore/1234567890/readSet/3456789012",
        ),
        (
            "seed_variant_store_status_change",
            "CREATED",
            "6710c5f02610",
            "arn:aws:omics:us-east-1:123456789012:bcvariantstore2",
        ),
        (
            "seed_variant_import_job_status_change",
            "COMPLETED",
            "b64ea9a3-459f-4b68-92c3-3ddb83209fe9",
            "arn:aws:omics:us-east-1:123456789012:vincent_load_test_variant_store/"
            "b64ea9a3-459f-4b68-92c3-3ddb83209fe9",
        ),
        (
            "ref_task_status_change",
            "COMPLETED",
            "8888888",
            "arn:aws:omics:us-west-2:123456789012:task/8888888",
        ),
        (
            "ref_run_batch_status_change",
            "PROCESSED",
            "96c57683-74bf-9d6d-ae7e-f09b097db14a",
            "arn:aws:omics:us-west-2:123456789012:runBatch/7123456",
        ),
        (
            "read_set_import_job_status_change",
            "COMPLETED_WITH_FAILURES",
            "3660451514",
            "arn:aws:omics:us-east-1:123456789012:sequenceStore/3936421177/importJob/3660451514",
        ),
        (
            "run_group_status_change",
            "ACTIVE",
            "5821937",
            "arn:aws:omics:us-east-1:123456789012:runGroup/5821937",
        ),
        (
            "s3_object_created_fastq_multipart",
            None,
            "lab-fastq-landing/run42/S7_R1.fastq.gz",
            "arn:aws:s3:::lab-fastq-landing",
        ),
    ],
)
def test_keys_of_known_events(
    name: str, status: str | None, resource_id: str, resource_arn: str
) -> None:
    result = parsed(load(name))
    assert result.status == status
    assert result.resource_id == resource_id
    assert result.resource_arn == resource_arn


@pytest.mark.parametrize(
    ("literal", "fixture", "fix"),
    [
        (SEED_READ_SET_MISSING_COMMA, "seed_read_set_status_change", (b'"0"\n', b'"0",\n')),
        (
            SEED_VARIANT_STORE_TRAILING_COMMA,
            "seed_variant_store_status_change",
            (b'2",\n  }', b'2"\n  }'),
        ),
        (
            SEED_VARIANT_IMPORT_EXTRA_BRACE,
            "seed_variant_import_job_status_change",
            (b"}\n  }\n}", b"}\n}"),
        ),
    ],
)
def test_seed_examples_are_malformed_as_published_and_valid_once_fixed(
    literal: bytes, fixture: str, fix: tuple[bytes, bytes]
) -> None:
    assert rejected(literal).reason.startswith("not valid JSON: ")
    corrected = literal.replace(*fix)
    assert corrected != literal
    assert parsed(corrected).payload == json.loads(load(fixture))


# --- typed details ------------------------------------------------------------------------


def test_run_event_fields_and_extras() -> None:
    result = parsed(load("ref_run_status_change_failed_ngs360"))
    detail = result.detail
    assert isinstance(detail, RunStatusChange)
    assert detail.status is RunStatus.FAILED
    assert detail.run_id == "9724679"
    assert detail.failure_reason == "RUN_TASK_FAILED"
    assert detail.run_cache_behavior == "CACHE_ON_FAILURE"
    assert detail.workflow_uuid == "10cde424-d083-9c78-628f-0235207d8e37"
    assert result.envelope.account == "example_account"


def test_run_id_is_taken_from_the_arn_only_when_absent() -> None:
    seed = parsed(load("seed_run_status_change"))
    assert isinstance(seed.detail, RunStatusChange)
    assert seed.detail.run_id == "2101313"
    assert "runId" not in seed.payload["detail"]  # the payload stays as received
    documented = parsed(load("ref_run_status_change_documented"))
    assert isinstance(documented.detail, RunStatusChange)
    assert documented.detail.run_id == "1234567"  # as published, even though the ARN differs


def test_unknown_detail_fields_are_kept() -> None:
    raw = event()
    raw["detail"]["engineVersion"] = "24.04"
    detail = parsed(raw).detail
    assert detail is not None
    assert detail.model_extra == {"engineVersion": "24.04"}


def test_task_id_comes_from_the_arn() -> None:
    result = parsed(load("task_status_change__failed"))
    assert isinstance(result.detail, TaskStatusChange)
    assert result.detail.task_id == "8566119"
    assert result.detail.model_dump()["task_id"] == "8566119"
    assert result.resource_id == "8566119"
    assert result.detail.status is TaskStatus.FAILED


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("in progress", "IN_PROGRESS"),
        ("Completed with failures", "COMPLETED_WITH_FAILURES"),
        ("COMPLETED", "COMPLETED"),
        ("  creation   failed ", "CREATION_FAILED"),
        ("processing_upload", "PROCESSING_UPLOAD"),
    ],
)
def test_normalise_status(text: str, expected: str) -> None:
    assert normalise_status(text) == expected


def test_prose_statuses_are_normalised_into_the_enum() -> None:
    workflow = parsed(load("workflow_status_change__prose_status")).detail
    assert workflow is not None
    assert workflow.status is WorkflowStatus.CREATION_FAILURE  # type: ignore[attr-defined]
    job = parsed(load("read_set_import_job_status_change__prose_status")).detail
    assert isinstance(job, ReadSetImportJobStatusChange)
    assert job.status is ImportJobStatus.IN_PROGRESS
    lower = event()
    lower["detail"]["status"] = "completed"
    run = parsed(lower)
    assert run.status == "COMPLETED"
    assert run.detail.status is RunStatus.COMPLETED  # type: ignore[union-attr]


def test_unknown_status_of_an_unverified_enum_is_kept_as_a_string() -> None:
    raw = json.loads(load("read_set_import_job_status_change"))
    raw["detail"]["status"] = "Queued for review"
    result = parsed(raw)
    assert result.status == "QUEUED_FOR_REVIEW"
    assert result.detail.status == "QUEUED_FOR_REVIEW"  # type: ignore[union-attr]
    assert not isinstance(result.detail.status, ImportJobStatus)  # type: ignore[union-attr]


def test_deleted_task_events_are_accepted() -> None:
    raw = json.loads(load("ref_task_status_change"))
    raw["detail"]["status"] = "DELETED"
    assert parsed(raw).status == "DELETED"


def test_s3_object_created_model() -> None:
    result = parsed(load("s3_object_created_documented"))
    detail = result.detail
    assert isinstance(detail, S3ObjectCreated)
    assert detail.bucket.name == "amzn-s3-demo-bucket1"
    assert detail.object.key == "example-key"
    assert detail.object.size == 5
    assert detail.object.version_id == "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e"
    assert detail.request_id == "N4N7GDK58NMKJ12R"
    assert detail.uri == "s3://amzn-s3-demo-bucket1/example-key"
    assert result.resource_id == "amzn-s3-demo-bucket1/example-key"


def test_s3_resource_arn_falls_back_to_the_object_uri() -> None:
    raw = json.loads(load("s3_object_created_documented"))
    raw["resources"] = []
    assert parsed(raw).resource_arn == "s3://amzn-s3-demo-bucket1/example-key"


# --- envelope -----------------------------------------------------------------------------


def test_time_is_normalised_to_utc() -> None:
    result = parsed(event(time="2022-10-21T00:07:35.250+02:00"))
    assert result.time == datetime(2022, 10, 20, 22, 7, 35, 250000, tzinfo=UTC)
    assert result.time.tzinfo is UTC


def test_envelope_by_name_and_dump_by_alias() -> None:
    envelope = EventBridgeEnvelope(
        version="0",
        id="x",
        detail_type="Run Status Change",
        source="aws.omics",
        account="1",
        time=datetime(2026, 1, 22, 22, 16, 9, tzinfo=UTC),
        region="us-east-1",
        detail={},
    )
    dumped = envelope.model_dump(mode="json", by_alias=True)
    assert dumped["detail-type"] == "Run Status Change"
    assert dumped["time"] == "2026-01-22T22:16:09Z"
    assert dumped["resources"] == []
    assert dumped["replay-name"] is None


def test_extra_envelope_fields_are_kept() -> None:
    result = parsed(event(**{"x-trace": "abc"}))
    assert result.envelope.model_extra == {"x-trace": "abc"}
    assert result.payload["x-trace"] == "abc"


# --- generic events -----------------------------------------------------------------------


def test_unknown_detail_type_from_an_allowed_source_is_kept_generic() -> None:
    raw = event(**{"detail-type": "Run Cache Status Change"})
    raw["resources"] = ["arn:aws:omics:us-west-2:123456789012:runCache/2346659"]
    raw["detail"] = {"arn": raw["resources"][0], "status": "active", "anything": [1, 2]}
    result = parsed(raw)
    assert not result.known
    assert result.detail is None
    assert result.detail_type == "Run Cache Status Change"
    assert result.status == "ACTIVE"
    assert result.resource_arn == "arn:aws:omics:us-west-2:123456789012:runCache/2346659"
    assert result.resource_id == "2346659"
    assert result.payload == raw


def test_generic_event_without_arn_status_or_resources() -> None:
    raw = event(**{"detail-type": "Something New", "resources": []}, detail={"n": 1})
    result = parsed(raw)
    assert (result.known, result.status, result.resource_arn, result.resource_id) == (
        False,
        None,
        None,
        None,
    )


def test_detail_types_are_looked_up_by_source() -> None:
    omics_object_created = event(**{"detail-type": "Object Created"})
    assert not parsed(omics_object_created).known
    s3_run_status = event(source="aws.s3")
    assert not parsed(s3_run_status).known
    s3_deleted = json.loads(load("s3_object_created_documented"))
    s3_deleted["detail-type"] = "Object Deleted"
    assert not parsed(s3_deleted).known


def test_other_allowed_sources_give_generic_events() -> None:
    limits = ParseLimits(allowed_sources=frozenset({"aws.omics", "lab.pipeline"}))
    result = parsed(event(source="lab.pipeline"), limits)
    assert not result.known


def test_an_empty_source_allow_list_allows_nothing() -> None:
    reason = rejected(dump(VALID_RUN_EVENT), ParseLimits(allowed_sources=frozenset())).reason
    assert reason == "source 'aws.omics' is not allowed"


# --- SNS and replays ----------------------------------------------------------------------


def test_sns_wrapped_event_parses_to_the_same_event() -> None:
    raw = load("sns_wrapped_run_status_change")
    inner = json.loads(raw)["Message"].encode()
    wrapped, direct = parsed(raw), parsed(inner)
    assert wrapped.raw == raw
    assert direct.raw == inner
    for field in (
        "envelope",
        "detail",
        "known",
        "event_id",
        "source",
        "detail_type",
        "time",
        "resource_arn",
        "resource_id",
        "status",
        "payload",
        "replay_name",
    ):
        assert getattr(wrapped, field) == getattr(direct, field), field


def test_replay_name_is_captured() -> None:
    result = parsed(load("replayed_run_status_change"))
    assert result.replay_name == "omics-backfill-2026-03-10"
    assert parsed(load("seed_run_status_change")).replay_name is None
    replayed = json.loads(load("replayed_run_status_change"))
    sns = {"Type": "Notification", "Message": json.dumps(replayed)}
    assert parsed(dump(sns)).replay_name == "omics-backfill-2026-03-10"


# --- the malformed corpus -----------------------------------------------------------------


def test_the_corpus_is_large_enough() -> None:
    assert len(MALFORMED) >= 24
    names = [name for name, _ in MALFORMED] + [name for name, _, _ in MALFORMED_WITH_LIMITS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(("name", "raw"), MALFORMED, ids=[name for name, _ in MALFORMED])
def test_malformed_events_are_rejected_with_the_raw_bytes(name: str, raw: bytes) -> None:
    result = rejected(raw)
    assert result.raw == raw
    assert result.reason
    assert "\n" not in result.reason
    assert len(result.reason) <= 300


@pytest.mark.parametrize(
    ("name", "raw", "limits"),
    MALFORMED_WITH_LIMITS,
    ids=[name for name, _, _ in MALFORMED_WITH_LIMITS],
)
def test_limited_cases_are_rejected_only_under_their_limits(
    name: str, raw: bytes, limits: ParseLimits
) -> None:
    assert rejected(raw, limits).raw == raw
    parsed(raw)


def test_reasons_are_pairwise_distinct() -> None:
    reasons: dict[str, str] = {}
    cases = [(name, raw, None) for name, raw in MALFORMED] + list(MALFORMED_WITH_LIMITS)
    for name, raw, limits in cases:
        reason = rejected(raw, limits).reason
        assert reason not in reasons, f"{name!r} and {reasons.get(reason)!r}: {reason}"
        reasons[reason] = name


@pytest.mark.parametrize(
    ("raw", "limits", "reason"),
    [
        (b"nope", None, "not valid JSON: Expecting value at line 1 column 1"),
        (b"x" * 2_000_000, None, "event is 2000000 bytes, over the 1048576-byte limit"),
        (dump(event(source="aws.ec2")), None, "source 'aws.ec2' is not allowed"),
        (
            dump(event(account="999999999999")),
            ParseLimits(allowed_accounts=frozenset({"123456789012"})),
            "account '999999999999' is not allowed",
        ),
        (dump({k: v for k, v in VALID_RUN_EVENT.items() if k != "id"}), None, "missing field 'id'"),
        (
            dump(event(detail={**VALID_RUN_EVENT["detail"], "status": "BOGUS"})),
            None,
            "field 'detail.status': 'BOGUS' is not a valid run status",
        ),
        (
            dump(event(detail={k: v for k, v in VALID_RUN_EVENT["detail"].items() if k != "uuid"})),
            None,
            "missing field 'detail.uuid'",
        ),
        (b"[" * 100_000, None, "JSON nesting is deeper than 32 levels (at character 32)"),
    ],
)
def test_reason_wording(raw: bytes, limits: ParseLimits | None, reason: str) -> None:
    assert rejected(raw, limits).reason == reason


def test_rejections_carry_the_event_id_and_detail_type_when_known() -> None:
    result = rejected(dump(event(detail={**VALID_RUN_EVENT["detail"], "status": "BOGUS"})))
    assert result.event_id == VALID_RUN_EVENT["id"]
    assert result.detail_type == "Run Status Change"
    assert rejected(b"garbage").event_id is None


def test_brackets_inside_strings_do_not_count_towards_depth() -> None:
    raw = event()
    raw["detail"]["statusMessage"] = '[[[[{{{{\\"[[[[' * 50  # free text: unbounded
    assert parsed(dump(raw)).detail is not None


# --- input types --------------------------------------------------------------------------


def test_text_and_dict_input_give_the_same_event() -> None:
    raw = load("ref_task_status_change")
    from_bytes = parsed(raw)
    from_text = parsed(raw.decode())
    from_dict = parsed(json.loads(raw))
    assert from_text == from_bytes
    assert from_dict.payload == from_bytes.payload
    assert from_dict.detail == from_bytes.detail
    assert json.loads(from_dict.raw) == json.loads(raw)


def test_dict_input_is_not_mutated() -> None:
    raw = event()
    before = json.dumps(raw)
    parsed(raw)
    assert json.dumps(raw) == before


def test_hostile_dict_inputs_are_rejected_not_raised() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(10_000):
        node["a"] = {}
        node = node["a"]
    assert "deeper than 32" in rejected(deep).reason
    cyclic: dict[str, Any] = event()
    cyclic["detail"]["self"] = cyclic
    assert "deeper than" in rejected(cyclic).reason
    assert "not JSON-serialisable" in rejected(event(detail={"s": {1, 2}})).reason
    assert "not JSON-serialisable" in rejected(event(detail={"n": float("nan")})).reason
    assert rejected({1: "x", "1": "y"}).reason.startswith("not valid JSON: duplicate key")


def test_unsupported_input_types_and_bad_text_are_rejected() -> None:
    assert rejected(12345).reason == "unsupported input type int"  # type: ignore[arg-type]
    assert rejected(None).reason == "unsupported input type NoneType"  # type: ignore[arg-type]
    lone = rejected('{"id": "\ud800"}')
    assert lone.reason.startswith("not valid UTF-8")
    assert lone.raw == '{"id": "\ud800"}'.encode("utf-8", "surrogatepass")
    assert parsed(bytearray(dump(VALID_RUN_EVENT))).event_id == VALID_RUN_EVENT["id"]  # type: ignore[arg-type]


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


def _typed(value: Any) -> str:
    """A rendering that tells 1 from 1.0 and True from 1, to compare decoded values exactly."""
    return json.dumps(value, sort_keys=True)


@given(value=_JSON_VALUES)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_the_fast_decoder_reads_what_the_strict_one_does(value: Any) -> None:
    """orjson (the fast path) is only believed when it reads its own output back: then its
    value is the strict decoder's, integers past 64 bits and float formats included."""
    from schemas.parsing import DEFAULT_LIMITS, _decode_strictly, _decoded_exactly

    texts = (
        json.dumps(value),
        json.dumps(value, separators=(",", ":"), ensure_ascii=False),
        canonical_json(value).decode(),
    )
    for text in texts:
        fast = _decoded_exactly(text.encode("utf-8", "surrogatepass"))
        if fast is not None:
            assert _typed(fast) == _typed(_decode_strictly(text, DEFAULT_LIMITS)), text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a":1,"a":2}', "duplicate key"),
        ('{"a":{"b":1,"b":1}}', "duplicate key"),
        ('{"a":1e400}', "out of range"),
        ('{"a":"\\ud800"}', "unpaired UTF-16 surrogate"),
        ('{"a":NaN}', "NaN is not allowed"),
    ],
)
def test_what_the_fast_decoder_would_accept_wrongly_goes_to_the_strict_one(
    text: str, reason: str
) -> None:
    from schemas.parsing import _decoded_exactly

    assert _decoded_exactly(text.encode()) is None
    assert reason in rejected(text).reason


def test_an_integer_past_64_bits_stays_an_integer_in_compact_json() -> None:
    raw = event()
    raw["detail"]["big"] = -(2**70)
    compact = json.dumps(raw, separators=(",", ":")).encode()
    assert parsed(compact).payload["detail"]["big"] == -(2**70)
    assert isinstance(parsed(compact).payload["detail"]["big"], int)


# --- limits, settings, canonical JSON -----------------------------------------------------


def test_limits_from_settings() -> None:
    settings_ = Settings(
        max_event_bytes=4096,
        max_json_depth=8,
        allowed_sources=["aws.omics"],
        allowed_accounts=["123456789012", "210987654321"],
    )
    limits = ParseLimits.from_settings(settings_)
    assert limits == ParseLimits(
        max_bytes=4096,
        max_depth=8,
        allowed_sources=frozenset({"aws.omics"}),
        allowed_accounts=frozenset({"123456789012", "210987654321"}),
    )


# --- hostile input ------------------------------------------------------------------------


@pytest.mark.parametrize("case", HOSTILE, ids=[case.name for case in HOSTILE])
def test_hostile_cases_are_rejected_with_a_reason_or_accepted_harmlessly(case: Case) -> None:
    result = parse_event(case.raw)
    if case.accepted:
        assert isinstance(result, ParsedEvent), getattr(result, "reason", result)
        assert result.event_id == case.event_id
        return
    assert isinstance(result, Rejected), case.name
    assert result.raw == case.raw
    assert result.reason and len(result.reason) <= 300
    assert result.reason.isprintable(), "a reason never carries a raw control character"


def test_the_hostile_corpus_has_forty_kinds() -> None:
    assert len({case.name for case in HOSTILE}) == len(HOSTILE) >= 40
    assert len({case.raw for case in HOSTILE}) == len(HOSTILE)


def test_every_column_length_matches_its_table() -> None:
    """The lengths the parser enforces are the columns' own: they cannot drift apart."""
    from eventlog.tables import metadata

    for name, length in COLUMN_LENGTHS.items():
        table, column = name.split(".")
        assert metadata.tables[table].c[column].type.length == length, name


def _constraints(field: Any) -> tuple[set[int], set[str]]:
    """The max lengths and patterns anywhere in a model field's annotation (``X | None``
    included: pydantic keeps those inside the union)."""
    lengths: set[int] = set()
    patterns: set[str] = set()
    stack: list[Any] = [*field.metadata, field.annotation]
    while stack:
        item = stack.pop()
        for meta in [item, *getattr(item, "metadata", ())]:
            if isinstance(getattr(meta, "max_length", None), int):
                lengths.add(meta.max_length)
            if isinstance(getattr(meta, "pattern", None), str):
                patterns.add(meta.pattern)
        stack.extend(getattr(item, "__metadata__", ()))
        stack.extend(typing.get_args(item))
    return lengths, patterns


def test_every_detail_id_is_safe_and_every_bound_is_a_column() -> None:
    """An id field of any model carries the safe id pattern, and every maximum length is a
    column's (COLUMN_LENGTHS), not a literal that could drift."""
    columns = set(COLUMN_LENGTHS.values())
    ids = 0
    for model in DETAIL_MODELS.values():
        for name, field in model.model_fields.items():
            lengths, patterns = _constraints(field)
            assert lengths <= columns, (model.__name__, name, lengths)
            if name in {"id", "uuid"} or name.endswith("_id"):
                ids += 1
                assert patterns == {SAFE_ID_PATTERN}, (model.__name__, name)
                assert lengths, (model.__name__, name)
    assert ids >= 20


@pytest.mark.parametrize(
    "good_id",
    [
        "c0e540f4-df38-b986-86c1-3e3730f971fe",
        "a1b2c3d4-5678-90ab-cdef-example11111",
        "7ad4e6c1-9d34-4b6e-8f19-bb0b5e3f0c01.retry:2",
        "A_b-C",
        "x" * 256,
    ],
)
def test_real_and_reasonable_ids_are_safe(good_id: str) -> None:
    assert parsed(dump(event(id=good_id))).event_id == good_id


@pytest.mark.parametrize(
    "bad_id",
    ["../../x", "a/b/../../c", "/" * 256, "a/b", "a..b", ".a", "a.", "a\nb", "a\u202eb", "é"],
)
def test_unsafe_ids_are_rejected_naming_the_charset(bad_id: str) -> None:
    reason = rejected(dump(event(id=bad_id))).reason
    assert reason.startswith("field 'id': ") and "is not a safe id" in reason


def test_nul_is_rejected_as_a_byte_and_as_an_escape_but_not_an_escaped_backslash() -> None:
    raw = dump(event(detail={**VALID_RUN_EVENT["detail"], "runName": "a\x00b"}))
    assert b"\\u0000" in raw
    assert "NUL" in rejected(raw).reason
    assert "NUL" in rejected(raw.replace(b"\\u0000", b"\x00")).reason
    harmless = raw.replace(b"\\u0000", b"\\\\u0000")  # backslash, then the text u0000
    assert parsed(harmless).payload["detail"]["runName"] == "a\\u0000b"
    assert "NUL" in rejected({"id": "x", "de\x00": 1}).reason  # a dict: dumped as \u0000


def test_the_time_window_is_settable() -> None:
    old = dump(event(time="2014-06-01T00:00:00Z"))
    assert rejected(old).reason == (
        "time 2014-06-01T00:00:00+00:00 is before 2015-01-01T00:00:00+00:00"
    )
    settings_ = Settings(event_time_earliest="2014-01-01", event_time_max_ahead=0)
    limits = ParseLimits.from_settings(settings_)
    assert limits.earliest_time == datetime(2014, 1, 1, tzinfo=UTC)
    parsed(old, limits)
    soon = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    parsed(dump(event(time=soon)))
    assert "in the future" in rejected(dump(event(time=soon)), limits).reason


def test_default_limits_match_default_settings() -> None:
    defaults = Settings.model_fields
    assert ParseLimits().max_bytes == defaults["max_event_bytes"].default
    assert ParseLimits().max_depth == defaults["max_json_depth"].default
    assert ParseLimits().earliest_time == defaults["event_time_earliest"].default
    assert ParseLimits().max_ahead.total_seconds() == defaults["event_time_max_ahead"].default


def test_canonical_json() -> None:
    a = {"b": [1, {"z": None, "é": "ü"}], "a": True}
    b = {"a": True, "b": [1, {"é": "ü", "z": None}]}
    assert canonical_json(a) == canonical_json(b)
    assert canonical_json(a) == '{"a":true,"b":[1,{"z":null,"é":"ü"}]}'.encode()
    with pytest.raises(ValueError):
        canonical_json({"x": float("inf")})


def test_the_package_face() -> None:
    for name in schemas.__all__:
        assert hasattr(schemas, name), name
    assert schemas.load_settings is not None


# --- property: parse_event never raises ---------------------------------------------------

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from(["aws.omics", "Run Status Change", "2022-10-20T22:07:35Z", "COMPLETED"])
)
jsonish = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)
envelope_like = st.fixed_dictionaries(
    {},
    optional={
        "version": jsonish,
        "id": st.text() | jsonish,
        "detail-type": st.sampled_from([*DETAIL_MODELS, "Object Created", "New"]) | jsonish,
        "source": st.sampled_from(["aws.omics", "aws.s3", "aws.ec2"]) | jsonish,
        "account": st.text() | jsonish,
        "time": st.sampled_from(["2022-10-20T22:07:35Z", "2022-10-20", "now"]) | jsonish,
        "region": jsonish,
        "resources": st.lists(st.text(), max_size=3) | jsonish,
        "detail": st.dictionaries(
            st.sampled_from(["status", "uuid", "runId", "arn", "id", "bucket", "object"])
            | st.text(max_size=8),
            jsonish,
        )
        | jsonish,
        "replay-name": jsonish,
        "Type": st.just("Notification"),
        "Message": st.text() | jsonish,
    },
)


def _check(raw: Any) -> None:
    result = parse_event(raw)
    assert isinstance(result, ParsedEvent | Rejected)
    if isinstance(raw, bytes):
        assert result.raw == raw


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=2048))
def test_never_raises_on_binary(raw: bytes) -> None:
    _check(raw)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2048))
def test_never_raises_on_text(raw: str) -> None:
    _check(raw)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(jsonish)
def test_never_raises_on_json_values(value: Any) -> None:
    _check(value)
    try:
        encoded = json.dumps(value).encode()
    except ValueError:
        return
    _check(encoded)


@pytest.mark.slow
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(envelope_like)
def test_never_raises_on_envelope_like_dicts(value: dict[str, Any]) -> None:
    _check(value)
    with contextlib.suppress(ValueError):
        _check(json.dumps(value).encode())


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_never_raises_on_corrupted_valid_events(data: st.DataObject) -> None:
    raw = bytearray(FIXTURES[data.draw(st.integers(0, len(FIXTURES) - 1))].read_bytes())
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)))
    _check(bytes(raw[:cut]))
    _check(bytes(raw))


# --- the demo's sample events -------------------------------------------------------------

SAMPLES = REPO / "devtools" / "samples" / "events.jsonl"


def test_sample_events_parse_and_tell_the_demo_story() -> None:
    lines = SAMPLES.read_bytes().splitlines()
    assert 12 <= len(lines) <= 20
    events = [parsed(line) for line in lines]
    ids = [e.event_id for e in events]
    assert len(set(ids)) == len(ids)
    for item in events:
        assert str(uuid.UUID(item.event_id)) == item.event_id
        assert item.payload["time"].endswith("Z")
        assert item.time.microsecond == 0
    runs: dict[str, list[str]] = {}
    for item in events:
        if item.detail_type == "Run Status Change":
            runs.setdefault(item.resource_id or "", []).append(item.status or "")
    assert ["PENDING", "STARTING", "RUNNING", "STOPPING", "COMPLETED"] in runs.values()
    failed = [e for e in events if e.status == "FAILED" and e.detail_type == "Run Status Change"]
    assert failed
    assert isinstance(failed[0].detail, RunStatusChange)
    assert failed[0].detail.failure_reason and failed[0].detail.status_message
    kinds = {(e.source, e.detail_type) for e in events}
    for kind in [
        ("aws.omics", "Task Status Change"),
        ("aws.omics", "Read Set Import Job Status Change"),
        ("aws.omics", "Read Set Status Change"),
        ("aws.omics", "Variant Store Status Change"),
        ("aws.s3", "Object Created"),
    ]:
        assert kind in kinds, kind
    assert sum(e.detail_type == "Task Status Change" for e in events) == 2
    assert [e for e in events if not e.known and e.source == "aws.omics"]
