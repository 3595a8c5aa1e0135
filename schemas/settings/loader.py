"""Reading the settings at start: a bad value stops a process with one line naming the
variable (and never repeating a secret it holds)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from schemas.settings.fields import env_name
from schemas.settings.masking import MASK, is_secret, mask_secrets
from schemas.settings.model import Settings


class ConfigurationError(SystemExit):
    """Raised at start on a bad setting; its message is the one line an operator sees."""


def load_settings(**overrides: Any) -> Settings:
    """Read settings from the environment, or stop with one line naming the bad variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = str(error["loc"][0]) if error["loc"] else "?"
        # pydantic-settings names the environment variable, a keyword override the field
        by_variable = {env_name(field): field for field in Settings.model_fields.values()}
        field = Settings.model_fields.get(where) or by_variable.get(where)
        variable = env_name(field) if field is not None else where
        message = mask_secrets(str(error["msg"]).removeprefix("Value error, "))
        value = error.get("input")
        if field is not None and is_secret(field):
            if isinstance(value, str) and value:
                message = message.replace(value, MASK)
            shown = repr(MASK)
        else:
            shown = repr(mask_secrets(value) if isinstance(value, str) else value)
            shown = mask_secrets(shown)
        raise ConfigurationError(f"configuration error: {variable}={shown}: {message}") from None
