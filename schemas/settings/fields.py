"""The helpers every group of settings declares its fields with.

A field names its environment variable through :func:`env_var` (its ``validation_alias``);
:func:`env_name` reads the name back, for the generated documentation, the masked configuration
and the line a bad value stops a process with.  List settings are typed :data:`CsvList` and
accept ``a,b`` as well as a JSON list (:func:`split_csv`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AliasChoices
from pydantic_settings import NoDecode


def env_var(name: str) -> AliasChoices:
    """The ``validation_alias`` of a field read from the environment variable ``name``."""
    return AliasChoices(name)


def split_csv(value: Any) -> Any:
    """Accept ``a,b`` or a JSON list for list settings: operators type the former."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [item.strip() for item in text.split(",") if item.strip()]
    return value


CsvList = Annotated[list[str], NoDecode]


def env_name(field: Any) -> str:
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return str(alias)
