"""The documentation generated from the settings: the README's configuration table
(``omics-events config table``) and ``.env.example`` (``omics-events config env-example``).

A test fails when the README drifts from :func:`settings_table`, so the documentation cannot lie
about the code.
"""

from __future__ import annotations

from typing import Any

from schemas.settings.fields import env_name
from schemas.settings.model import Settings


def settings_table() -> str:
    """The Markdown configuration table of the README, generated from :class:`Settings`."""
    rows = ["| variable | default | what it does |", "|---|---|---|"]
    for field in Settings.model_fields.values():
        if field.default_factory is not None:
            default: Any = field.default_factory()  # type: ignore[call-arg]
        else:
            default = field.default
        if isinstance(default, list):
            default = ",".join(default)
        if hasattr(default, "value"):
            default = default.value
        shown = f"`{default}`" if default not in (None, "") else "(unset)"
        rows.append(f"| `{env_name(field)}` | {shown} | {field.description} |")
    return "\n".join(rows)


#: Variables botocore reads itself; the deployment files may set them.
BOTOCORE_VARIABLES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_SNS",
    "AWS_ENDPOINT_URL_CLOUDWATCH",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_OMICS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
)


def env_example() -> str:
    """The ``.env.example`` file: every variable, its default and its documentation."""
    lines = [
        "# HealthOmics Event Workers: every environment variable, with its default.",
        "# Generated from schemas/settings/ by `omics-events config env-example`.",
        "# Copy to .env and uncomment what you change.",
        "",
    ]
    for field in Settings.model_fields.values():
        if field.default_factory is not None:
            default: Any = field.default_factory()  # type: ignore[call-arg]
        else:
            default = field.default
        if isinstance(default, list):
            default = ",".join(default)
        if hasattr(default, "value"):
            default = default.value
        text = " ".join(str(field.description).split()).replace("`", "")
        lines.append(f"# {text}")
        lines.append(f"# {env_name(field)}={'' if default is None else default}")
        lines.append("")
    lines.append("# AWS endpoints and credentials are botocore's own variables, e.g. for the")
    lines.append("# local profile of docker-compose (moto and the HealthOmics simulator):")
    lines.append("# AWS_ENDPOINT_URL=http://moto:5000")
    lines.append("# AWS_ENDPOINT_URL_OMICS=http://simulator:8080")
    lines.append("# AWS_ACCESS_KEY_ID=testing")
    lines.append("# AWS_SECRET_ACCESS_KEY=testing")
    lines.append("")
    lines.append("# docker-compose only: the PostgreSQL passwords of the bundled database, of")
    lines.append("# the tables' owner (migrations) and of the role every other process uses")
    lines.append("# (eventlog/roles.sql; no spaces)")
    lines.append("# POSTGRES_PASSWORD=omics")
    lines.append("# POSTGRES_APP_PASSWORD=omics-app")
    return "\n".join(lines) + "\n"
