"""The HealthOmics operations, as plain functions from request parameters to response dicts.

Why apart from the HTTP layer: the response shapes and the validation rules are the part that
must match botocore's ``omics`` model (2022-11-28), and they are easier to read and to test
without Starlette in the way.  :mod:`.api` only parses HTTP and serialises what these return.
This module is the face of three: :mod:`.operation_rules` (errors, validation, tokens),
:mod:`.run_operations` and :mod:`.import_operations`.

Conventions copied from the real service and the model:

* timestamps are ``iso8601`` strings with milliseconds (the model's ``timestampFormat``);
* absent optional members are omitted, never ``null``;
* errors are :class:`ApiError` with the model's code and HTTP status; validation messages follow
  the AWS "1 validation error detected: Value … at '…' failed to satisfy constraint: …" style;
* list operations page with an opaque token (``startingToken`` → ``nextToken`` for
  ListRunTasks, ``nextToken`` both ways for ListReadSetImportJobs), so boto3 paginators work.
"""

from __future__ import annotations

from simulator.import_operations import (
    get_read_set_import_job,
    list_read_set_import_jobs,
    parse_sources,
    start_read_set_import_job,
)
from simulator.operation_rules import (
    ERROR_STATUS,
    FILE_TYPES,
    JOB_STATUSES,
    TASK_STATUSES,
    ApiError,
)
from simulator.run_operations import (
    get_run,
    get_run_task,
    list_run_tasks,
    list_runs,
    list_tags_for_resource,
    run_view,
)

__all__ = [
    "ERROR_STATUS",
    "FILE_TYPES",
    "JOB_STATUSES",
    "TASK_STATUSES",
    "ApiError",
    "get_read_set_import_job",
    "get_run",
    "get_run_task",
    "list_read_set_import_jobs",
    "list_run_tasks",
    "list_runs",
    "list_tags_for_resource",
    "parse_sources",
    "run_view",
    "start_read_set_import_job",
]
