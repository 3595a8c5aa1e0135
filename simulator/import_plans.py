"""How read-set import jobs are planned and moved: sources decided, read sets created, the quota.

:class:`ImportPlanner` is a part of :class:`~simulator.state.World` (its import half): a job's
sources are decided when it is submitted (from the planned outcomes or the fault rates), then
its steps go on the world's heap like a run's.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from simulator import events as ev
from simulator.catalog import (
    JOB_MESSAGES,
    PERMANENT_SOURCE_FAILURES,
    SOURCE_MESSAGES,
    TRANSIENT_SOURCE_FAILURES,
    clip,
)
from simulator.entities import (
    JOB_ACTIVE,
    JOB_TERMINAL,
    SAMPLES,
    ImportJob,
    QuotaExceeded,
    ReadSet,
    Source,
)


class ImportPlanner:
    """The import half of :class:`~simulator.state.World`: jobs, sources and read sets.  Relies
    on the world's attributes (``rng``, ``jobs``, ``schedule``, ``emit`` …); never instantiated
    alone."""

    def active_import_jobs(self) -> int:
        return sum(1 for job in self.jobs.values() if job.status in JOB_ACTIVE)

    def plan_source_outcomes(self, source1: str, outcomes: list[str]) -> None:
        """Script what happens to the next imports of ``source1``: ``ok``, ``transient``,
        ``permanent`` (permanent then sticks to the URI, as a bad file would)."""
        for outcome in outcomes:
            if outcome not in {"ok", "transient", "permanent"}:
                raise ValueError(f"unknown source outcome {outcome!r}")
        self._scripted.setdefault(source1, deque()).extend(outcomes)

    def new_job(
        self,
        *,
        store_id: str,
        role_arn: str,
        sources: list[Source],
        client_token: str | None,
        origin: str,
    ) -> ImportJob:
        job = ImportJob(
            job_id=self.numeric_id(10),
            store_id=store_id,
            role_arn=role_arn,
            sources=sources,
            client_token=client_token,
            origin=origin,
        )
        self.jobs[job.job_id] = job
        return job

    def submit_job(self, job: ImportJob, *, enforce_quota: bool) -> None:
        """SUBMITTED now, and plan the rest; raises :class:`QuotaExceeded` when full."""
        quota = self.faults.get().import_quota
        if enforce_quota and self.active_import_jobs() >= quota:
            raise QuotaExceeded(
                f"Exceeded the maximum number of concurrent read set import jobs ({quota})."
            )
        now = self.now()
        if job.client_token:
            self.client_tokens[(job.store_id, job.client_token)] = job.job_id
        self._set_job_status(job, "SUBMITTED", now)
        self._plan_job(job, now)

    def schedule_job(self, job: ImportJob, delay: float) -> None:
        """Submit ``job`` after ``delay`` simulated seconds, waiting for quota room like a polite
        submitter would (internal jobs never exceed the quota)."""
        gen_at = self.now() + max(0.0, delay) / self.speed

        def step(at: float) -> None:
            if job.visible:
                return
            if self.active_import_jobs() >= self.faults.get().import_quota:
                self.schedule(at + self.dur(20, 40), 0, step)
                return
            self.submit_job(job, enforce_quota=False)

        self.schedule(gen_at, 0, step)

    def _decide_source(self, source: Source) -> None:
        faults = self.faults.get()
        draw, pick = self.rng.random(), self.rng.random()
        scripted = self._scripted.get(source.source1)
        choice: str | None = scripted.popleft() if scripted else None
        bad = self._permanent_bad.get(source.source1)
        if bad is not None and choice != "ok":
            choice = "permanent"
        elif choice is None:
            if draw < faults.permanent_source_failure_rate:
                choice = "permanent"
            elif draw < faults.permanent_source_failure_rate + faults.transient_source_failure_rate:
                choice = "transient"
            else:
                choice = "ok"
        if choice == "ok":
            source.failure_kind = None
            return
        if choice == "permanent":
            if bad is None:
                bad = PERMANENT_SOURCE_FAILURES[int(pick * len(PERMANENT_SOURCE_FAILURES))]
                self._permanent_bad[source.source1] = bad
            failure = bad
        else:
            failure = TRANSIENT_SOURCE_FAILURES[int(pick * len(TRANSIENT_SOURCE_FAILURES))]
        source.failure_kind = choice
        source.failure_message = clip(
            failure.message.format(uri=source.source1, file_type=source.file_type)
        )
        source.failure_stage = failure.stage

    def _plan_job(self, job: ImportJob, now: float) -> None:
        d = self.dur
        t_progress = now + d(5, 30)
        self.schedule(t_progress, 0, self._job_step(job, "IN_PROGRESS"))
        ends: list[float] = []
        for source in job.sources:
            self._decide_source(source)
            start = t_progress + d(0, 20)
            self.schedule(start, 1, self._source_step(job, source, "IN_PROGRESS"))
            if source.failure_kind and source.failure_stage == "pre":
                end = start + d(5, 30)
            else:
                created = start + d(2, 10)
                self.schedule(created, 1, self._read_set_create_step(job, source))
                span = d(60, 600) if source.failure_kind is None else d(30, 300)
                end = created + span
            final = "FAILED" if source.failure_kind else "FINISHED"
            self.schedule(end, 1, self._source_step(job, source, final))
            ends.append(end)
        t_end = max(ends, default=t_progress) + d(2, 10)
        self.schedule(t_end, 2, self._job_step(job, None))

    def _job_step(self, job: ImportJob, status: str | None) -> Callable[[float], None]:
        def step(at: float) -> None:
            if job.status in JOB_TERMINAL:
                return
            final = status
            if final is None:
                failed = sum(1 for s in job.sources if s.status == "FAILED")
                if failed == 0:
                    final = "COMPLETED"
                elif failed == len(job.sources):
                    final = "FAILED"
                else:
                    final = "COMPLETED_WITH_FAILURES"
            self._set_job_status(job, final, at)

        return step

    def _set_job_status(self, job: ImportJob, status: str, at: float) -> None:
        job.status = status
        if status == "SUBMITTED":
            job.creation_time = at
        failed = sum(1 for s in job.sources if s.status == "FAILED")
        job.status_message = clip(
            JOB_MESSAGES[status].format(failed=failed, total=len(job.sources))
        )
        if status in JOB_TERMINAL:
            job.completion_time = at
        active = self.active_import_jobs()
        self.max_active_import_jobs = max(self.max_active_import_jobs, active)
        self.active_import_timeline.append((at, active))
        self.emit(
            ev.IMPORT_JOB_STATUS_CHANGE,
            at,
            ev.import_job_arn(self.region, self.account, job.store_id, job.job_id),
            ev.import_job_status_detail(
                job_id=job.job_id,
                store_id=job.store_id,
                status=status,
                status_message=job.status_message,
            ),
        )

    def _source_step(self, job: ImportJob, source: Source, status: str) -> Callable[[float], None]:
        def step(at: float) -> None:
            if source.status in {"FINISHED", "FAILED"}:
                return
            source.status = status
            if status == "FAILED":
                source.status_message = source.failure_message
            else:
                source.status_message = SOURCE_MESSAGES[status]
            read_set = self.read_sets.get(source.created_read_set_id or "")
            if status == "FINISHED":
                if read_set is None:  # defensive: the create step always comes first
                    read_set = self._create_read_set(job, source, at)
                source.read_set_id = read_set.read_set_id
                self._set_read_set_status(read_set, "ACTIVE", at)
            elif status == "FAILED" and read_set is not None:
                read_set.status_message = source.failure_message
                self._set_read_set_status(read_set, "UPLOAD_FAILED", at)

        return step

    def _read_set_create_step(self, job: ImportJob, source: Source) -> Callable[[float], None]:
        def step(at: float) -> None:
            self._create_read_set(job, source, at)

        return step

    def _create_read_set(self, job: ImportJob, source: Source, at: float) -> ReadSet:
        read_set = ReadSet(
            read_set_id=self.numeric_id(10),
            store_id=job.store_id,
            job_id=job.job_id,
            sample_id=source.sample_id,
            subject_id=source.subject_id,
            file_type=source.file_type,
            name=source.name,
            tags=dict(source.tags),
            status="PROCESSING_UPLOAD",
            creation_time=at,
            source1=source.source1,
            source2=source.source2,
        )
        self.read_sets[read_set.read_set_id] = read_set
        source.created_read_set_id = read_set.read_set_id
        self._set_read_set_status(read_set, "PROCESSING_UPLOAD", at)
        return read_set

    def _set_read_set_status(self, read_set: ReadSet, status: str, at: float) -> None:
        read_set.status = status
        arn = ev.read_set_arn(self.region, self.account, read_set.store_id, read_set.read_set_id)
        self.emit(
            ev.READ_SET_STATUS_CHANGE,
            at,
            arn,
            ev.read_set_status_detail(
                arn=arn,
                store_id=read_set.store_id,
                read_set_id=read_set.read_set_id,
                status=status,
                creation_job_id=read_set.job_id,
                status_message=read_set.status_message if status == "UPLOAD_FAILED" else None,
            ),
        )

    def random_sources(self, count: int) -> list[Source]:
        """Realistic sources for an internally generated import job."""
        rng = self.rng
        sources: list[Source] = []
        for _ in range(count):
            sample = f"{rng.choice(SAMPLES)}-{rng.randint(1, 9999):04d}"
            subject = f"SUBJ-{rng.randint(1, 999):03d}"
            kind = rng.choices(("FASTQ", "BAM", "CRAM", "UBAM"), weights=(6, 2, 1, 1))[0]
            prefix = f"s3://{self.input_bucket}/incoming/{sample}"
            if kind == "FASTQ":
                source1, source2 = f"{prefix}_R1.fastq.gz", f"{prefix}_R2.fastq.gz"
            else:
                source1, source2 = f"{prefix}.{kind.lower()}", None
            reference = (
                f"arn:aws:omics:{self.region}:{self.account}:referenceStore/"
                f"{self.sequence_store_id}/reference/{self.sequence_store_id}"
                if kind in {"BAM", "CRAM"}
                else None
            )
            sources.append(
                Source(
                    source1=source1,
                    source2=source2,
                    file_type=kind,
                    subject_id=subject,
                    sample_id=sample,
                    reference_arn=reference,
                    name=sample,
                    generated_from="ngs360-sim",
                    tags={"project": "ngs360-sim"},
                )
            )
        return sources
