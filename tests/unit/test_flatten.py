"""The flattened record forms: the lossless dotted form and the legacy NGS360 Lambda form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import FLATTEN_STYLES, flatten, flatten_lambda, unflatten
from tests.helpers.common import EVENTS

FIXTURES = sorted(EVENTS.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


# --- dotted -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "flat"),
    [
        (
            {"detail": {"status": "COMPLETED"}, "resources": ["arn:r"]},
            {"detail.status": "COMPLETED", "resources.0": "arn:r"},
        ),
        ({"a.b": {"c\\d": 1}}, {"a\\.b.c\\\\d": 1}),
        ({"x": {"7": True}}, {"x.\\7": True}),
        ({"x": [True]}, {"x.0": True}),
        ({"x": {"07": 1, "1a": 2, "٣": 3}}, {"x.\\07": 1, "x.1a": 2, "x.٣": 3}),
        ({"": {"": 1}}, {".": 1}),
        ({"": 1}, {"": 1}),
        ({"e": {}, "l": [[]]}, {"e": {}, "l.0": []}),
        ({"m": [[1, 2], [None]]}, {"m.0.0": 1, "m.0.1": 2, "m.1.0": None}),
        ({}, {}),
        ({"f": 1.5, "b": False, "n": None, "s": "ü"}, {"f": 1.5, "b": False, "n": None, "s": "ü"}),
    ],
)
def test_flatten_examples(obj: dict[str, Any], flat: dict[str, Any]) -> None:
    assert flatten(obj) == flat
    assert unflatten(flat) == obj


def test_flatten_of_an_event() -> None:
    event = load("seed_read_set_status_change")
    flat = flatten(event)
    assert flat["detail.status"] == "PROCESSING_UPLOAD"
    assert flat["resources.0"] == event["resources"][0]
    assert flat["detail-type"] == "Read Set Status Change"
    assert all(not isinstance(value, dict | list) or not value for value in flat.values())


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_every_fixture_round_trips(path: Path) -> None:
    event = json.loads(path.read_text())
    assert unflatten(flatten(event)) == event


def test_key_order_is_kept() -> None:
    event = load("ref_run_status_change_failed_ngs360")
    again = unflatten(flatten(event))
    assert json.dumps(again) == json.dumps(event)


def test_unflatten_accepts_keys_in_any_order() -> None:
    obj = {"a": list(range(12)), "b": {"c": [{"d": 1}, {"e": 2}]}}
    flat = flatten(obj)
    assert unflatten(dict(sorted(flat.items()))) == obj
    assert unflatten(dict(reversed(flat.items()))) == obj


@pytest.mark.parametrize(
    "flat",
    [
        {"a": 1, "a.b": 2},  # a leaf and a container
        {"a.b": 2, "a": 1},
        {"a.0": 1, "a.b": 2},  # a list and a dict
        {"a.1": 1},  # a list with a gap
        {"a\\": 1},  # a dangling backslash
    ],
)
def test_unflatten_rejects_impossible_input(flat: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        unflatten(flat)


def test_flatten_rejects_what_is_not_a_json_object() -> None:
    with pytest.raises(TypeError):
        flatten([1, 2])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        flatten({1: "x"})  # type: ignore[dict-item]


def test_deep_structures_do_not_exhaust_the_stack() -> None:
    obj: dict[str, Any] = {}
    node: Any = obj
    for index in range(5000):
        child: Any = [] if index % 2 else {}
        if isinstance(node, dict):
            node["k"] = child
        else:
            node.append(child)
        node = child
    if isinstance(node, dict):
        node["leaf"] = 1
    else:
        node.append(1)
    flat = flatten(obj)
    assert len(flat) == 1
    # ``==`` on such nesting would itself recurse; compare through the (iterative) flatten.
    assert flatten(unflatten(flat)) == flat


keys = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["", ".", "..", "\\", "\\.", ".\\", "0", "1", "01", "10", "a.b", "\\0", "٣"]),
    st.from_regex(r"[0-9]{1,3}", fullmatch=True),
    st.from_regex(r"[.\\0-9a]{0,5}", fullmatch=True),
)
leaves = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
)
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=40,
)
json_objects = st.dictionaries(keys, json_values, max_size=6)


@pytest.mark.slow
@settings(max_examples=1000, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(json_objects)
def test_round_trip_for_any_json_object(obj: dict[str, Any]) -> None:
    flat = flatten(obj)
    assert all(isinstance(key, str) for key in flat)
    assert unflatten(flat) == obj
    assert flatten(unflatten(flat)) == flat


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(json_objects)
def test_round_trip_survives_json_serialisation(obj: dict[str, Any]) -> None:
    stored = json.loads(json.dumps(flatten(obj)))
    assert unflatten(stored) == obj


# --- legacy Lambda ------------------------------------------------------------------------


def test_flatten_lambda_of_the_seed_run_status_change_example() -> None:
    assert flatten_lambda(load("seed_run_status_change")) == {
        "version": "0",
        "id": "c0e540f4-df38-b986-86c1-3e3730f971fe",
        "detail-type": "Run Status Change",
        "source": "aws.omics",
        "account": "123456789012",
        "time": "2022-10-20T22:07:35Z",
        "region": "us-west-2",
        "resources_0": "arn:aws:omics:us-west-2:123456789012:run/2101313",
        "omicsVersion": "1.0.0",
        "arn": "arn:aws:omics:us-west-2:123456789012:run/2101313",
        "status": "COMPLETED",
        "uuid": "153893cd-097a-40ec-aec7-838a97cd2b21",
        "runOutputUri": "s3://integ-test-0ee27e7e/run-output/2101313",
    }


def test_flatten_lambda_key_order_is_the_legacy_order() -> None:
    assert list(flatten_lambda(load("seed_run_status_change"))) == [
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources_0",
        "omicsVersion",
        "arn",
        "status",
        "uuid",
        "runOutputUri",
    ]


def test_flatten_lambda_of_the_ngs360_failed_event_has_the_fixture_keys() -> None:
    flat = flatten_lambda(load("ref_run_status_change_failed_ngs360"))
    assert set(flat) == {
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources_0",
        "omicsVersion",
        "arn",
        "runId",
        "status",
        "uuid",
        "runOutputUri",
        "failureReason",
        "statusMessage",
        "runCache",
        "runCacheBehavior",
        "runName",
        "workflowName",
        "workflowId",
        "workflowUuid",
    }
    assert flat["id"] == "0b03b0b1-6cac-9be0-37cf-7e1afb3226f7"
    assert flat["failureReason"] == "RUN_TASK_FAILED"


def test_flatten_lambda_detail_id_overwrites_the_event_id() -> None:
    flat = flatten_lambda(load("seed_read_set_status_change"))
    assert flat["id"] == "3456789012"  # the read set id; the event id is lost
    assert "64ca0eda-9751-dc55-c41a-1bd50b4fc9b7" not in flat.values()


def test_flatten_lambda_detail_wins_whatever_the_key_order() -> None:
    event = load("seed_read_set_status_change")
    detail_first = {"detail": event["detail"], **{k: v for k, v in event.items() if k != "detail"}}
    assert flatten_lambda(detail_first)["id"] == "3456789012"


def test_flatten_lambda_keeps_nested_detail_values_whole() -> None:
    flat = flatten_lambda(load("s3_object_created_documented"))
    assert flat["bucket"] == {"name": "amzn-s3-demo-bucket1"}
    assert flat["object"]["key"] == "example-key"
    assert flat["version"] == "0"
    assert flat["resources_0"] == "arn:aws:s3:::amzn-s3-demo-bucket1"


def test_flatten_lambda_lists_of_dicts_and_several_resources() -> None:
    flat = flatten_lambda({"resources": ["a", "b"], "items": [{"k": 1}, {"k": 2}], "detail": {}})
    assert flat == {"resources_0": "a", "resources_1": "b", "k_0": 1, "k_1": 2}


def test_flatten_styles() -> None:
    assert FLATTEN_STYLES["dotted"] is flatten
    assert FLATTEN_STYLES["lambda"] is flatten_lambda
    assert set(FLATTEN_STYLES) == {"dotted", "lambda"}
