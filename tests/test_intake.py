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
from schemas.settings import Settings
from tests.factories import run_event
from workers import create_app

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
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
