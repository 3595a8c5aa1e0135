"""The one :class:`Settings` class, composed of the groups of settings.

pydantic lists the fields of a class's bases from the last base to the first, so the groups are
named here in reverse: the fields (and so the README table and ``.env.example``) read storage
first and logging last.
"""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.settings.aws import AwsSettings
from schemas.settings.callbacks import CallbackSettings
from schemas.settings.enrichment import EnrichmentSettings
from schemas.settings.fields import env_name
from schemas.settings.flower import FlowerSettings
from schemas.settings.imports import ImportSettings
from schemas.settings.intake import IntakeSettings
from schemas.settings.logs import LogSettings
from schemas.settings.masking import MASK, mask_url
from schemas.settings.metrics import MetricsSettings
from schemas.settings.pipeline import PipelineSettings
from schemas.settings.storage import StorageSettings


class Settings(
    LogSettings,
    MetricsSettings,
    ImportSettings,
    FlowerSettings,
    CallbackSettings,
    EnrichmentSettings,
    AwsSettings,
    PipelineSettings,
    IntakeSettings,
    StorageSettings,
    BaseSettings,
):
    """The resolved configuration of one process."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", populate_by_name=True, frozen=True
    )

    def masked(self) -> dict[str, str]:
        """The configuration keyed by environment variable, safe to print."""
        shown: dict[str, str] = {}
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                text = MASK if value.get_secret_value() else ""
            elif isinstance(value, list):
                text = ",".join(mask_url(str(item)) for item in value)
            elif value is None:
                text = ""
            else:
                text = mask_url(str(value))
            shown[env_name(field)] = text
        return shown
