"""Dead-lettering: what the log could not accept, or a stage gave up on, kept with its reason.

Why its own module: a dead letter is written beside the log, never folded
(:mod:`eventlog.projection_set`), and its text is untrusted (made :func:`printable` before it
is stored); :mod:`eventlog.store` re-exports every name here, so callers write
``store.dead_letter`` as before.
"""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from eventlog import dialect
from eventlog.entries import utcnow
from eventlog.tables import dead_letters

if TYPE_CHECKING:  # the parser (pydantic, ≈ 0.3 s to import) is not needed to fold the log
    from schemas.parsing import Rejected

#: Longest reason text kept; the raw bytes are kept whole next to it.
MAX_REASON_CHARS = 2000
#: C0 and C1 control characters (NUL included), DEL, and the bidirectional overrides and
#: isolates that make a terminal or a log viewer show text in another order than it is stored.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str | None, limit: int) -> str | None:
    """``text`` fit for a text column and a terminal: control and bidirectional-override
    characters escaped (``\\x00``, ``\\u202e``), lone surrogates replaced, at most
    ``limit`` characters.

    Why: a dead letter must always be writable — PostgreSQL refuses NUL in text, and whatever
    reason or id a hostile event made us write must not be what makes the write fail.
    """
    if text is None:
        return None
    if not text.isprintable():  # the usual case, plain text, is one pass in C
        text = _UNPRINTABLE.sub(_escaped, text)
        text = text.encode("utf-8", "replace").decode("utf-8")
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def reject(connection: Connection, rejected: Rejected) -> bool:
    """A rejected event as a dead letter: its reason and raw bytes; True if new."""
    return dead_letter(
        connection,
        kind="rejected",
        reason=rejected.reason,
        raw=rejected.raw,
        event_id=rejected.event_id,
        detail_type=rejected.detail_type,
    )


def dead_letter(
    connection: Connection,
    *,
    kind: str,
    reason: str,
    raw: bytes,
    stage: str | None = None,
    event_id: str | None = None,
    detail_type: str | None = None,
) -> bool:
    """Record what could not be accepted or done; True if new.

    The id hashes what failed, so a message redelivered after a crash is not dead-lettered twice.
    Any bytes can be dead-lettered: ``raw`` is stored as it is (binary), and the texts
    (reason, event id, detail-type) are made :func:`printable` and cut to their columns.
    """
    digest = hashlib.sha256()
    for part in (kind, stage or "", event_id or ""):
        digest.update(part.encode())
        digest.update(b"\x1f")
    digest.update(raw)
    # like appends: ids in commit order, so a follower of dead letters (alerts, metrics) never
    # skips one that commits after a higher id (eventlog/cursors.py)
    dialect.lock_appends(connection)
    statement = (
        dialect.insert(connection, dead_letters)
        .values(
            dead_letter_id=digest.hexdigest(),
            created_at=utcnow(),
            kind=kind,
            stage=stage,
            event_id=printable(event_id, 256),
            detail_type=printable(detail_type, 128),
            reason=printable(reason, MAX_REASON_CHARS) or "(no reason given)",
            raw=bytes(raw),
        )
        .on_conflict_do_nothing(index_elements=["dead_letter_id"])
        .returning(dead_letters.c.id)
    )
    return connection.execute(statement).first() is not None
