"""Text log lines cannot be forged by what they quote: one record, one line."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from workers.logs import TRACEBACK_PREFIX, EventContextFilter, JsonFormatter, TextFormatter

FORGED = "ok\r\n2026-12-04 10:00:00,000 INFO    workers.callback: callback delivered"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(EventContextFilter())
    logger = logging.getLogger("tests.log_lines")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, stream, handler
    logger.handlers[:] = []


def test_crlf_in_a_field_and_the_message_stays_on_one_line(captured) -> None:
    logger, stream, handler = captured
    handler.setFormatter(TextFormatter())
    logger.warning(
        "rejected %s\u2028x\x85y\x1b[31m",
        FORGED,
        extra={"event_id": FORGED, "detail_type": "Run\tStatus\u202eChange"},
    )
    lines = stream.getvalue().splitlines()  # splits at \r, \n, \u2028, \x85 ... alike
    assert len(lines) == 1, lines
    line = lines[0]
    assert "event_id=ok\\r\\n2026-12-04" in line
    assert "detail_type=Run\\tStatus\\u202eChange" in line
    assert "\\u2028x\\x85y\\x1b[31m" in line


def test_a_traceback_keeps_its_lines_indented_under_the_record(captured) -> None:
    logger, stream, handler = captured
    handler.setFormatter(TextFormatter())
    try:
        raise ValueError(FORGED)
    except ValueError:
        logger.exception("archive failed", extra={"event_id": "e-1"})
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("archive failed [event_id=e-1]")
    assert rest and all(line.startswith(TRACEBACK_PREFIX) for line in rest), rest
    assert (
        f"{TRACEBACK_PREFIX}2026-12-04 10:00:00,000 INFO    workers.callback: callback "
        "delivered" in rest
    )  # the forged text is there, but under the record, not as one


def test_json_lines_escape_every_line_break(captured) -> None:
    logger, stream, handler = captured
    handler.setFormatter(JsonFormatter())
    forged = FORGED + "\u2028x\x85y\u2029"
    logger.warning("rejected %s", forged, extra={"event_id": forged})
    lines = stream.getvalue().splitlines()  # what a Python reader of the lines sees
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event_id"] == forged and record["message"] == f"rejected {forged}"
