"""How the imports stage reads what a lab drops and what HealthOmics answers, without a server.

A file's name says whether it is a read file (and of which type and mate), a companion (an
index or a sidecar manifest) or junk; a failed source's message says whether trying again can
help.  The end-to-end behaviour built on these is in tests/integration/test_imports.py.
"""

from __future__ import annotations

import pytest

from schemas.imports import classify_failure, classify_name


@pytest.mark.parametrize(
    ("name", "kind", "file_type", "mate"),
    [
        ("HG002_S1_L001_R1_001.fastq.gz", "read", "FASTQ", "R1"),
        ("HG002_S1_L001_R2_001.fastq.gz", "read", "FASTQ", "R2"),
        ("SRR1_1.fq.gz", "read", "FASTQ", "R1"),
        ("sample.fastq", "read", "FASTQ", None),
        ("sample.bam", "read", "BAM", None),
        ("sample.unaligned.bam", "read", "UBAM", None),
        ("sample.ubam", "read", "UBAM", None),
        ("sample.CRAM", "read", "CRAM", None),
        ("sample.bam.bai", "companion", None, None),
        ("sample.cram.crai", "companion", None, None),
        ("sample.bam.json", "companion", None, None),
        ("notes.docx", "junk", None, None),
        ("reads.fastq.zip", "junk", None, None),
        (".DS_Store", "junk", None, None),
    ],
)
def test_file_names_are_classified(name, kind, file_type, mate) -> None:
    found = classify_name(name, ".json")
    assert (found.kind, found.file_type, found.mate) == (kind, file_type, mate)
    if mate:
        assert classify_name(found.mate_name or "").source1_name == found.source1_name


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Internal service error, please retry the import.", "transient"),
        ("Throttling: rate exceeded while reading the source file, please retry.", "transient"),
        ("Request timed out while reading the source file, please retry.", "transient"),
        ("Access denied to s3://lab/internal/x.bam", "permanent"),
        ("The file is not a valid BAM file.", "permanent"),
        ("Source file not found: s3://lab/timeouts/x.bam", "permanent"),
        ("Internal error while reading s3://invalid-runs/x.bam", "transient"),
        ("Something nobody documented", "transient"),
    ],
)
def test_failure_messages_are_classified(message, expected) -> None:
    assert classify_failure(message) == expected
