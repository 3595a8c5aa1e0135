"""The sender never raises, whatever it is given, and accounts for every input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventlog.db import create_db_engine, upgrade
from producers.intake import Intake
from producers.sender import split_events
from schemas.parsing import Rejected, parse_event
from schemas.settings import Settings
from tests.helpers.factories import run_event
from workers import create_app

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
inputs = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300),
    json_values.map(json.dumps),
    st.builds(
        lambda status, extra: json.dumps(run_event(status=status) | extra),
        st.text(max_size=12),
        st.dictionaries(st.sampled_from(["id", "time", "detail", "source"]), json_values),
    ),
)


@pytest.fixture(scope="module")
def intake(tmp_path_factory: pytest.TempPathFactory) -> Intake:
    path: Path = tmp_path_factory.mktemp("intake") / "log.db"
    url = f"sqlite:///{path}"
    upgrade(create_db_engine(url))
    app = create_app(Settings(database_url=url, archive_uri=f"file://{path.parent}/archive"))
    return Intake(app, publish=False)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(batch=st.lists(inputs, min_size=1, max_size=5))
def test_submit_never_raises_and_accounts_for_every_input(intake: Intake, batch) -> None:
    report = intake.submit(batch)
    assert report.accepted + report.duplicates + report.rejected == len(batch)
    assert all(o.reason for o in report.outcomes if o.verdict == "rejected")


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=500) | st.text(max_size=500).map(str.encode))
def test_split_events_never_raises(data: bytes) -> None:
    list(split_events(data))


def test_split_events_understands_every_documented_shape() -> None:
    one, two = run_event(), run_event()
    assert len(list(split_events(json.dumps(one).encode()))) == 1
    assert len(list(split_events(json.dumps([one, two]).encode()))) == 2
    lines = (json.dumps(one) + "\n" + json.dumps(two) + "\n").encode()
    assert len(list(split_events(lines))) == 2
    receive = {"Messages": [{"Body": json.dumps(one)}, {"Body": json.dumps(two)}]}
    assert [json.loads(b)["id"] for b in split_events(json.dumps(receive).encode())] == [
        one["id"],
        two["id"],
    ]


# --- send: raw slices, no recursion -----------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000,
        b"{" * 100_000,
        b"[" * 100_000 + b"]" * 100_000,
        b'{"Messages":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    ],
    ids=["open", "open-objects", "balanced", "sqs-shaped", "objects"],
)
def test_a_file_opening_100000_levels_deep_is_split_and_rejected_without_recursion(
    data: bytes,
) -> None:
    raws = list(split_events(data))
    assert raws
    assert all(isinstance(parse_event(raw), Rejected) for raw in raws)


def test_array_elements_are_passed_as_their_raw_bytes() -> None:
    pretty = json.dumps(run_event(), indent=2).encode()
    duplicate = b'{"id": "a", "id": "b"}'
    assert list(split_events(b"[\n" + pretty + b" ,\n" + duplicate + b"\n]")) == [
        pretty,
        duplicate,
    ]
    result = parse_event(duplicate)
    assert isinstance(result, Rejected) and result.raw == duplicate
    assert result.reason == "not valid JSON: duplicate key 'id'"


def test_a_malformed_array_keeps_its_good_elements(intake: Intake) -> None:
    good = [run_event() for _ in range(3)]
    data = b'[%s, 42, "text", %s, {"a": 1,}, %s, ]' % tuple(
        json.dumps(event).encode() for event in good
    )
    report = intake.submit(list(split_events(data)))
    assert report.accepted == 3
    assert report.rejected == 4  # 42, "text", the trailing comma's object, the empty last one
    unclosed = b"[" + json.dumps(good[0]).encode() + b", " + json.dumps(run_event()).encode()
    assert len(list(split_events(unclosed))) == 2


def test_json_lines_with_a_line_that_never_closes_keep_the_other_lines() -> None:
    good = [json.dumps(run_event()).encode() for _ in range(2)]
    data = b"[" * 100_000 + b"\n" + good[0] + b'\n{"a": [\n' + good[1] + b"\n"
    assert list(split_events(data)) == [b"[" * 100_000, good[0], b'{"a": [', good[1]]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.text(max_size=8), json_values, max_size=4), max_size=6))
def test_array_elements_read_back_as_the_array(items: list[dict]) -> None:
    for indent in (None, 2):
        data = json.dumps(items, indent=indent).encode()
        assert [json.loads(raw) for raw in split_events(data)] == items
