"""Which S3 objects are read files, how they pair up, and how import failures are classified.

Why a module of pure functions: the imports pool (``workers/imports/``) decides, for every S3
``Object Created`` event, whether the object is a read file to import, junk to report, or a
companion to ignore, and, for every failed import source, whether retrying can help.  Those
decisions are the part worth testing exhaustively, and they need no I/O.

**Names.**  HealthOmics imports FASTQ, BAM, CRAM and uBAM (``ReadSetImportJob`` source file
types, reference §2.7):

=====================================================  =========  ===========================
name (case-insensitive)                                type       note
=====================================================  =========  ===========================
``…_R1[_001].fastq[.gz]``, ``…_1.fq.gz`` and the R2s   FASTQ      a pair: one source, 2 files
any other ``.fastq``/``.fq`` (``.gz``, ``.bz2``)        FASTQ      single-end
``.ubam``, ``.unaligned.bam``, ``.unmapped.bam``        UBAM       no reference needed
``.bam``                                                BAM        aligned: needs a reference
``.cram``                                               CRAM       aligned: needs a reference
``.bai`` ``.crai`` ``.csi`` ``.md5`` ``.sha256`` …      companion  ignored, not reported
anything else (``notes.docx``, ``.DS_Store``, …)        junk       reported, never imported
=====================================================  =========  ===========================

**Sources.**  A source is keyed by its ``source1`` URI (the R1 of a pair), so both mates of a
pair, whichever lands first, name the same source; the key is also what a failed job's
``GetReadSetImportJob`` reports, so retries land on the same record.

**Failures.**  A failed source's ``statusMessage`` is classified by :func:`classify_failure`:
permanent (access denied, missing file, bad format, validation) or transient (throttling,
internal or service errors, timeouts).  A message matching neither is treated as transient, so
it is retried a bounded number of times before it is reported: better one retry too many than a
file silently never imported.  URIs are removed before matching, so a bucket called
``invalid-runs`` does not make every failure in it permanent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ALIGNED_TYPES",
    "FILE_TYPES",
    "ImportRule",
    "ImportSidecar",
    "PathTemplate",
    "ReadFileName",
    "classify_failure",
    "classify_name",
    "parse_rules",
    "source_spec",
    "split_s3_uri",
]

FILE_TYPES = ("FASTQ", "BAM", "CRAM", "UBAM")
#: Aligned types: StartReadSetImportJob wants a ``referenceArn`` for them.
ALIGNED_TYPES = frozenset({"BAM", "CRAM"})

_FASTQ_EXT = r"f(?:ast)?q(?:\.gz|\.bz2)?"
#: ``<stem><sep>[R]<1|2>[_001].<fastq ext>``: Illumina's ``_R1_001.fastq.gz`` and the ``_1.fq.gz``
#: of SRA dumps.
_FASTQ_MATE = re.compile(
    rf"^(?P<stem>.+?)(?P<sep>[._])(?P<r>R?)(?P<mate>[12])(?P<tail>_\d{{3}})?\.(?P<ext>{_FASTQ_EXT})$",
    re.IGNORECASE,
)
_FASTQ = re.compile(rf"^(?P<stem>.+)\.(?P<ext>{_FASTQ_EXT})$", re.IGNORECASE)
_UBAM = re.compile(r"^(?P<stem>.+)\.(?:ubam|unaligned\.bam|unmapped\.bam)$", re.IGNORECASE)
_BAM = re.compile(r"^(?P<stem>.+)\.bam$", re.IGNORECASE)
_CRAM = re.compile(r"^(?P<stem>.+)\.cram$", re.IGNORECASE)
_COMPANION = re.compile(r"\.(?:bai|crai|csi|md5|md5sum|sha1|sha256|sha512|etag)$", re.IGNORECASE)


@dataclass(frozen=True)
class ReadFileName:
    """What a file name says about the object."""

    kind: Literal["read", "companion", "junk"]
    file_type: str | None = None
    #: ``"R1"``/``"R2"`` for a FASTQ mate, ``None`` otherwise.
    mate: str | None = None
    #: The name without mate marker and extension (``NA12878_S1_L001``): a default read set name.
    stem: str | None = None
    #: The mate's file name (R2 for an R1 and vice versa).
    mate_name: str | None = None
    #: The name of the pair's R1 (``source1``), or this name for a single file.
    source1_name: str | None = None
    why: str | None = None

    @property
    def paired(self) -> bool:
        return self.mate is not None


def classify_name(name: str, sidecar_suffix: str | None = None) -> ReadFileName:
    """Classify one object by its file name (the last segment of the key)."""
    if not name:
        return ReadFileName("companion", why="a folder marker")
    if sidecar_suffix and name.endswith(sidecar_suffix):
        return ReadFileName("companion", why="a sidecar manifest")
    if _COMPANION.search(name):
        return ReadFileName("companion", why="an index or checksum file")
    mate = _FASTQ_MATE.match(name)
    if mate:
        start, end = mate.span("mate")
        number = mate.group("mate")
        other = "2" if number == "1" else "1"
        mate_name = name[:start] + other + name[end:]
        return ReadFileName(
            "read",
            "FASTQ",
            mate=f"R{number}",
            stem=mate.group("stem"),
            mate_name=mate_name,
            source1_name=name if number == "1" else mate_name,
        )
    for pattern, file_type in ((_FASTQ, "FASTQ"), (_UBAM, "UBAM"), (_BAM, "BAM"), (_CRAM, "CRAM")):
        match = pattern.match(name)
        if match:
            return ReadFileName("read", file_type, stem=match.group("stem"), source1_name=name)
    return ReadFileName("junk", why=f"{name!r} is not a FASTQ, BAM, CRAM or uBAM file name")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


@dataclass(frozen=True)
class ImportRule:
    """One watched location: a bucket and a key prefix (``s3://lab-incoming/runs/``)."""

    bucket: str
    prefix: str

    @classmethod
    def from_uri(cls, uri: str) -> ImportRule:
        bucket, key = split_s3_uri(uri)
        prefix = key.strip("/")
        return cls(bucket, f"{prefix}/" if prefix else "")

    def relative(self, bucket: str, key: str) -> str | None:
        """The key below this rule's prefix, or ``None`` when the object is not under it."""
        if bucket != self.bucket or not key.startswith(self.prefix):
            return None
        return key[len(self.prefix) :]


def parse_rules(uris: list[str]) -> list[ImportRule]:
    return [ImportRule.from_uri(uri) for uri in uris]


_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_FIELDS = {"subject", "sample", "file", "*"}


class PathTemplate:
    """``{subject}/{sample}/{file}``: where the ids are in a key, one segment per placeholder.

    Literal text around placeholders is allowed (``run-{*}/{sample}/{file}``); a placeholder
    matches within one path segment.  ``{file}`` must be in the last segment.  Without
    ``{subject}`` the subject is the sample; without ``{sample}`` the sample is the file's stem.
    """

    def __init__(self, template: str) -> None:
        self.template = template
        segments = template.strip("/").split("/")
        if not template.strip("/"):
            raise ValueError("the template is empty")
        parts: list[str] = []
        seen: set[str] = set()
        for index, segment in enumerate(segments):
            pattern = ""
            position = 0
            for match in _PLACEHOLDER.finditer(segment):
                name = match.group(1)
                if name not in _FIELDS:
                    raise ValueError(
                        f"unknown placeholder {{{name}}}: use {{subject}}, {{sample}}, "
                        "{file} or {*}"
                    )
                if name != "*" and name in seen:
                    raise ValueError(f"{{{name}}} appears twice")
                if name == "file" and index != len(segments) - 1:
                    raise ValueError("{file} must be in the last segment")
                seen.add(name)
                pattern += re.escape(segment[position : match.start()])
                pattern += "[^/]+" if name == "*" else f"(?P<{name}>[^/]+)"
                position = match.end()
            pattern += re.escape(segment[position:])
            parts.append(pattern)
        if "file" not in seen:
            raise ValueError("the template needs {file} in its last segment")
        self._regex = re.compile("^" + "/".join(parts) + "$")

    def match(self, relative_key: str) -> dict[str, str] | None:
        """``{"subject", "sample", "file"}`` found in ``relative_key`` (missing ones absent)."""
        found = self._regex.match(relative_key)
        if found is None:
            return None
        return {name: value for name, value in found.groupdict().items() if value}

    def __repr__(self) -> str:
        return f"PathTemplate({self.template!r})"


class ImportSidecar(BaseModel):
    """A JSON sidecar manifest next to a read file: the StartReadSetImportJob source fields
    a path cannot carry.  Extra keys are ignored (labs keep their own notes there)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    subject_id: str = Field(alias="subjectId", min_length=1, max_length=127)
    sample_id: str = Field(alias="sampleId", min_length=1, max_length=127)
    reference_arn: str | None = Field(default=None, alias="referenceArn", max_length=127)
    name: str | None = Field(default=None, max_length=127)
    description: str | None = Field(default=None, max_length=255)
    generated_from: str | None = Field(default=None, alias="generatedFrom", max_length=127)
    tags: dict[str, str] = Field(default_factory=dict)


# --- failure classification ---------------------------------------------------------------

_URI = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_PERMANENT = (
    "access denied",
    "accessdenied",
    "not authorized",
    "forbidden",
    "permission",
    "not found",
    "does not exist",
    "no such",
    "nosuchkey",
    "not a valid",
    "invalid",
    "validation",
    "malformed",
    "corrupt",
    "unsupported",
    "not supported",
    "truncated",
    "checksum mismatch",
)
_TRANSIENT = (
    "throttl",
    "rate exceeded",
    "slow down",
    "internal",
    "service error",
    "service unavailable",
    "unavailable",
    "timed out",
    "timeout",
    "try again",
    "retry",
)


def classify_failure(message: str | None) -> Literal["transient", "permanent"]:
    """Whether a failed source's ``statusMessage`` says retrying can help."""
    text = _URI.sub(" ", message or "").lower()
    if any(marker in text for marker in _PERMANENT):
        return "permanent"
    if any(marker in text for marker in _TRANSIENT):
        return "transient"
    return "transient"  # unknown: retried a bounded number of times, then reported


def source_spec(source: dict[str, Any]) -> dict[str, Any]:
    """A StartReadSetImportJob source from a GetReadSetImportJob source (or our own spec):
    only the request's fields, and no ``aws:``-prefixed system tags (the service adds
    ``aws:omics:sampleId``/``subjectId`` itself and refuses them in a request)."""
    files = source.get("sourceFiles") or {}
    spec: dict[str, Any] = {
        "sourceFiles": {"source1": files["source1"]},
        "sourceFileType": source["sourceFileType"],
        "subjectId": source["subjectId"],
        "sampleId": source["sampleId"],
    }
    if files.get("source2"):
        spec["sourceFiles"]["source2"] = files["source2"]
    for key in ("generatedFrom", "referenceArn", "name", "description"):
        if source.get(key):
            spec[key] = source[key]
    tags = {
        str(k): str(v)
        for k, v in (source.get("tags") or {}).items()
        if not str(k).lower().startswith("aws:")
    }
    if tags:
        spec["tags"] = tags
    return spec
