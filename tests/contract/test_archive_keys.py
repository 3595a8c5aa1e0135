"""Ids never steer where the archive writes: a batch key holds no id, an unsafe id that would
name a legacy per-event object is a dead letter, nothing is written outside the folder
archive's root, and a failed write leaves no temporary file behind."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from eventlog import store
from eventlog.entries import LogEntry
from eventlog.tables import dead_letters
from schemas.settings import Settings
from tests.helpers.archive_batches import event_ids, folder_batches
from tests.helpers.factories import run_event
from workers import create_app
from workers.archive import ArchiveFollower
from workers.storage import FolderArchive, UnsafeKey, raw_key

WHEN = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)

#: Ids an EventBridge sender controls; each would have named another place than its own.
UNSAFE_IDS = [
    "../../escape",  # out of the root
    "a/b/../../c",  # onto event c's object
    "/" * 256,  # collapses into the day's folder
    "/tmp/absolute",
    "..",
    "back\\slash",
    "new\nline",
]


def _files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


@pytest.mark.parametrize("event_id", ["", *UNSAFE_IDS])
def test_key_builders_refuse_ids_that_are_not_one_segment(event_id: str) -> None:
    with pytest.raises(UnsafeKey, match="archive key"):
        raw_key("omics-run-events", event_id, WHEN)


def test_key_builders_refuse_a_prefix_with_an_empty_segment() -> None:
    with pytest.raises(UnsafeKey, match="segment"):
        raw_key("lake//events", "e-1", WHEN)
    assert raw_key("/lake/events/", "e-1", WHEN) == "lake/events/raw/2026/12/04/e-1.json"


@pytest.mark.parametrize("legacy", [False, True], ids=["batches only", "legacy objects too"])
def test_unsafe_event_ids_stay_in_the_batch_and_name_no_object(
    backend: str, make_settings: Callable[..., Settings], tmp_path: Path, legacy: bool
) -> None:
    root = tmp_path / "lake" / "archive"
    settings = make_settings(
        database_url=backend, archive_uri=f"file://{root}", archive_legacy_flattened=legacy
    )
    app = create_app(settings)
    engine = app.runtime.engine
    good = run_event("good-event")
    # as a row appended before ids were checked at intake, or by a replay of an old archive
    entries = [
        LogEntry(
            event_id=event_id,
            origin="aws",
            source="aws.omics",
            detail_type="Run Status Change",
            event_time=WHEN,
            payload=run_event(event_id),
        )
        for event_id in [*UNSAFE_IDS, "good-event"]
    ]
    entries[-1] = LogEntry(**{**entries[-1].__dict__, "payload": good})
    with engine.begin() as connection:
        for entry in entries:
            store.append(connection, entry, [])
    follower = ArchiveFollower(app.runtime)
    assert follower.run_once() == len(entries)
    assert follower.run_once() == 0

    with engine.connect() as connection:
        letters = connection.execute(select(dead_letters)).all()
    named = {store.printable(event_id, 256) for event_id in UNSAFE_IDS}  # as dead letters show
    assert {row.event_id for row in letters} == (named if legacy else set())
    assert all("cannot be part of an archive key" in row.reason for row in letters)
    batches = folder_batches(root)
    assert sorted(event_ids(batches)) == sorted(e.event_id for e in entries)  # every row kept
    # the batch, the good event's legacy object when asked for, nothing else under tmp_path
    written = {p for p in _files(tmp_path) if not p.name.startswith("events.db")}
    expected = {root / key for key in batches}
    if legacy:
        expected.add(root / "event_20261204_100000_good-event.json")
    assert written == expected
    assert not (tmp_path / "escape.json").exists() and not Path("/tmp/absolute.json").exists()


def test_folder_archive_refuses_keys_resolving_outside_its_root(tmp_path: Path) -> None:
    root = tmp_path / "archive"
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "raw").mkdir(parents=True)
    (root / "raw" / "link").symlink_to(outside)  # a link inside the root pointing out of it
    archive = FolderArchive(root=root, prefix="")
    for key in ("../outside/x.json", "raw/link/x.json", "raw/../../outside/x.json", "/etc/x.json"):
        with pytest.raises(UnsafeKey):
            archive.put(key, b"{}")
    assert list(outside.iterdir()) == []
    archive.put("raw/ok.json", b"{}")
    assert archive.get("raw/ok.json") == b"{}"


def test_a_failed_rename_leaves_no_temporary_file(tmp_path: Path) -> None:
    archive = FolderArchive(root=tmp_path, prefix="")
    (tmp_path / "raw" / "taken.json").mkdir(parents=True)  # a folder where the object goes
    (tmp_path / "raw" / "taken.json" / "x").write_bytes(b"")
    with pytest.raises(OSError):
        archive.put("raw/taken.json", b"{}")
    assert sorted(p.name for p in (tmp_path / "raw").iterdir()) == ["taken.json"]


def test_a_full_disk_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = FolderArchive(root=tmp_path, prefix="")
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, stream: Any) -> None:
            self._stream = stream

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self._stream.close()

        def write(self, _body: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    with pytest.raises(OSError, match="No space"):
        archive.put("raw/2026/12/04/e-1.json", b"{}")
    assert _files(tmp_path) == set()


def test_a_folder_archive_names_its_own_location(tmp_path: Path) -> None:
    """The demo prints ``archive.location(archive.prefix)``: a folder archive's prefix is empty,
    which used to raise UnsafeKey at the end of ``ARCHIVE_URI=file://… make demo``."""
    archive = FolderArchive(root=tmp_path / "lake", prefix="")
    assert archive.location(archive.prefix) == (tmp_path / "lake").resolve().as_uri()
    with pytest.raises(UnsafeKey):
        archive.put("", b"{}")  # the location is not a key: nothing is written there
