"""Raw bytes in, a :class:`ParsedEvent` or a :class:`Rejected` out; never an exception.

:func:`parse_event` is the single gate every producer (SQS poller, archive replayer, file
sender, simulator) passes events through.  It never raises, whatever it is fed: an event
that cannot be accepted becomes a :class:`Rejected` carrying a short, readable, one-line
reason and the raw bytes exactly as received, which the producer writes to the dead-letter
table.  A producer therefore needs no ``try`` around it, and a poison message can never crash
a poller.

The checks run cheapest first, so hostile input is turned away before it costs anything:

1. **size** of the raw bytes (a ``str`` is measured UTF-8 encoded; a ``dict`` after
   ``json.dumps``, after a non-recursive depth check so that dumping cannot recurse without
   bound);
2. **empty** input;
3. **UTF-8** decoding (strict);
4. **nesting depth**, by scanning the text for brackets outside strings *before*
   ``json.loads``: a 100,000-deep ``[[[[`` is rejected after reading ``max_depth + 1``
   brackets and never reaches the recursive JSON decoder;
5. **NUL**: a NUL character (``U+0000``), as a raw byte or as the JSON escape ``\\u0000``, in
   any key or value at any depth, is rejected: PostgreSQL can store it neither in text nor in
   JSONB, so one such event would make the whole batch's commit fail.  The cost on the hot path
   is two substring searches of the text; only text that holds ``\\u0000`` is walked;
6. **JSON** decoding.  Stricter than :func:`json.loads`: ``NaN``/``Infinity``, numbers out of
   float range (``1e400``), duplicate object keys and unpaired UTF-16 surrogates
   (``"\\ud800"``) are rejected, because the payload is stored and re-serialised downstream
   (PostgreSQL JSONB and UTF-8 encoders refuse them) and duplicate keys make an event mean
   different things to different readers;
7. the document must be a JSON **object**;
8. **SNS unwrap**: an SNS notification (``{"Type": "Notification", "Message": "<event
   JSON>", ...}``, what an SQS queue subscribed to a topic receives without raw delivery) is
   replaced by the event in its ``Message``, which goes through steps 2-7 again.  Reasons
   about the inner event start with ``SNS message:``;
9. the **envelope** (:class:`schemas.envelope.EventBridgeEnvelope`): among others the ``id``
   must be a **safe id** (below) and ``source``/``detail-type`` fit their columns;
10. the event **time** must lie in a sane window: not before ``EVENT_TIME_EARLIEST`` (default
    2015-01-01) nor more than ``EVENT_TIME_MAX_AHEAD`` seconds (default one day) after now.  A
    year-1 or year-9999 time would pin a run's status for good (the first terminal status
    stands) and make absurd archive keys;
11. the **source** allow-list, then the **account** allow-list (empty = any account; an empty
    *source* list allows nothing, so a mis-set ``ALLOWED_SOURCES`` fails closed);
12. the **detail**, by ``(source, detail-type)``: a known pair is validated into its model
    (:data:`schemas.omics.DETAIL_MODELS`, :data:`schemas.s3.S3_DETAIL_MODELS`); an unknown
    detail-type from an allowed source is *kept* as a generic event (``known=False``),
    because a new HealthOmics event type must be archived and counted, not dead-lettered;
13. what lands in the log's own columns fits them: the resource ARN, the resource id and the
    status.

**Column lengths.**  Every value that is written to a SQL column (the log's and the
projections', ``eventlog/tables.py``) is refused when longer than its column, never cut
silently: the lengths are declared once in :data:`schemas.envelope.COLUMN_LENGTHS` and checked
against the tables by the tests.

**Safe ids.**  Every id that becomes part of an S3 key or a file path — the event ``id``, run
``uuid`` and ``runId``, task ids (the end of a task ARN), job, read set, store, reference and
batch ids — must match :data:`schemas.envelope.SAFE_ID_PATTERN`: letters, digits, ``.``,
``_``, ``:`` and ``-``, no leading or trailing dot, no ``..``, at most as long as its column
(256 for the event id, 64 for run uuids and job ids, 32 for run ids).  No slash, backslash,
whitespace, control or bidirectional-override character.  The reason says ``is not a safe id``.

Validation reasons name the field by its dotted wire path and give pydantic's first error,
e.g. ``missing field 'detail.uuid'`` or ``field 'detail.status': 'BOGUS' is not a valid run
status``.  Reasons are capped at 300 characters; the raw bytes are always kept whole.

A rejected event keeps its ``id`` and ``detail-type`` when they could be read, so a dead
letter can be traced.  ``ParsedEvent.payload`` is the decoded JSON exactly as received
(after SNS unwrapping), never a re-serialisation of the models, so nothing the models drop
or normalise is lost.

:func:`canonical_json` is the one serialisation used for hashing and comparing payloads.

The package's modules, in the order an event meets them:

* :mod:`schemas.parsing.limits` — :class:`ParseLimits` (from the settings), :data:`DEFAULT_LIMITS`
  and :data:`RawEvent`, the input types;
* :mod:`schemas.parsing.decoding` — steps 1-7, the hostile-input checks and the strict decoder;
* :mod:`schemas.parsing.building` — steps 9-13, the envelope, time, allow-lists, typed detail
  and column lengths (:data:`DETAIL_MODELS_BY_SOURCE`, :func:`detail_model_for`);
* :mod:`schemas.parsing.gate` — :func:`parse_event`: steps 1-8 in order, then the building;
* :mod:`schemas.parsing.results` — :class:`ParsedEvent`, :class:`Rejected`,
  :func:`canonical_json`, and ``Reject``, the exception a stage stops parsing with.

The names below are re-exported here (callers import from ``schemas.parsing`` or ``schemas``).
"""

from __future__ import annotations

from schemas.parsing.building import (
    DETAIL_MODELS_BY_SOURCE,
    OMICS_SOURCE,
    detail_model_for,
)
from schemas.parsing.decoding import _decode_strictly as _decode_strictly
from schemas.parsing.decoding import _decoded_exactly as _decoded_exactly
from schemas.parsing.gate import parse_event
from schemas.parsing.limits import DEFAULT_LIMITS, ParseLimits, RawEvent
from schemas.parsing.results import ParsedEvent, Rejected, canonical_json

__all__ = [
    "DEFAULT_LIMITS",
    "DETAIL_MODELS_BY_SOURCE",
    "OMICS_SOURCE",
    "ParseLimits",
    "ParsedEvent",
    "RawEvent",
    "Rejected",
    "canonical_json",
    "detail_model_for",
    "parse_event",
]
