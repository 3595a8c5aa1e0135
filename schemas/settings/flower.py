"""Settings of Flower, the Celery monitor: its authentication and where it listens."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator

from schemas.settings.fields import env_var


class FlowerSettings(BaseModel):
    """How Flower is protected and bound."""

    flower_basic_auth: SecretStr | None = Field(
        default=None,
        validation_alias=env_var("FLOWER_BASIC_AUTH"),
        description="`user:password` Flower requires (comma-separate several). Flower refuses "
        "to start without it unless `FLOWER_UNAUTHENTICATED=1`.",
    )
    flower_unauthenticated: bool = Field(
        default=False,
        validation_alias=env_var("FLOWER_UNAUTHENTICATED"),
        description="Set to 1 to run Flower with no authentication (never on a shared network).",
    )
    flower_address: str = Field(
        default="127.0.0.1",
        validation_alias=env_var("FLOWER_ADDRESS"),
        description="Address Flower binds to. Loopback by default: its `/metrics` endpoint is "
        "not covered by its authentication.",
    )
    flower_port: int = Field(
        default=5555,
        ge=1,
        le=65535,
        validation_alias=env_var("FLOWER_PORT"),
        description="Port Flower listens on.",
    )

    @field_validator("flower_basic_auth")
    @classmethod
    def _basic_auth(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        for pair in value.get_secret_value().split(","):
            user, _, password = pair.partition(":")
            if not user or not password:
                raise ValueError("must be user:password (comma-separated for several)")
        return value
