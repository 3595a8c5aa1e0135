"""Every setting of every process, declared once.

Each field carries its environment variable (``validation_alias``), its default and its
documentation (``description``).  The README's configuration table and ``.env.example`` are
generated from the fields (:mod:`schemas.settings.docs`), and a test fails when the README drifts
from them, so the documentation cannot lie about the code.

The fields are declared in groups, one pydantic model per group, composed into the one
:class:`Settings` class (the only one a process instantiates):

* :mod:`schemas.settings.fields` — :func:`env_var`, :func:`env_name`, :data:`CsvList` and
  :func:`split_csv`, the helpers every group declares its fields with;
* :mod:`schemas.settings.storage` — the database, Redis and the archive (:data:`EMBEDDED_HOME`,
  :class:`ServerSideEncryption`);
* :mod:`schemas.settings.intake` — which events are accepted (sources, accounts, size, depth,
  time);
* :mod:`schemas.settings.pipeline` — the outbox sweeper, Celery and its pools, the SQS poller,
  the health check;
* :mod:`schemas.settings.aws` — region, botocore retries, the shared HealthOmics rate limits;
* :mod:`schemas.settings.enrichment` — run enrichment and the reconciler;
* :mod:`schemas.settings.callbacks` — the NGS360 callbacks;
* :mod:`schemas.settings.flower` — Flower's authentication and address;
* :mod:`schemas.settings.imports` — the automatic read-set imports;
* :mod:`schemas.settings.metrics` — CloudWatch metrics and operational alerts;
* :mod:`schemas.settings.logs` — log level and format (:class:`LogFormat`);
* :mod:`schemas.settings.model` — :class:`Settings`, the groups composed (in the order of the
  generated documentation) and :meth:`Settings.masked`;
* :mod:`schemas.settings.masking` — hiding secrets (:class:`pydantic.SecretStr` values,
  passwords inside URLs, password-like query parameters) whenever the configuration is printed;
* :mod:`schemas.settings.loader` — :func:`load_settings`: a bad value stops a process at start
  with one line naming the variable (:class:`ConfigurationError`), never repeating a secret;
* :mod:`schemas.settings.docs` — :func:`settings_table` and :func:`env_example`, and
  :data:`BOTOCORE_VARIABLES`.

AWS endpoints are *not* settings of ours: botocore reads ``AWS_ENDPOINT_URL`` and
``AWS_ENDPOINT_URL_<SERVICE>`` itself (``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL_OMICS``, …), so
the same variables that work for the AWS CLI work here.

Every name below is re-exported here; callers import from ``schemas.settings``.
"""

from __future__ import annotations

from schemas.settings.docs import BOTOCORE_VARIABLES, env_example, settings_table
from schemas.settings.fields import CsvList, env_name, env_var, split_csv
from schemas.settings.loader import ConfigurationError, load_settings
from schemas.settings.logs import LogFormat
from schemas.settings.masking import MASK, SECRET_PARAMETER, is_secret, mask_secrets, mask_url
from schemas.settings.model import Settings
from schemas.settings.storage import EMBEDDED_HOME, ServerSideEncryption

__all__ = [
    "BOTOCORE_VARIABLES",
    "EMBEDDED_HOME",
    "MASK",
    "SECRET_PARAMETER",
    "ConfigurationError",
    "CsvList",
    "LogFormat",
    "ServerSideEncryption",
    "Settings",
    "env_example",
    "env_name",
    "env_var",
    "is_secret",
    "load_settings",
    "mask_secrets",
    "mask_url",
    "settings_table",
    "split_csv",
]
