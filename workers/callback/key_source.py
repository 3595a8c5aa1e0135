"""The ``X-Internal-API-Key``: from ``NGS360_API_KEY``, or a Secrets Manager secret.

Why: the key is the one secret of the callback contract (``docs/reference/ngs360-callback.md``).
Read from Secrets Manager it is fetched once per process and cached (not one call per
callback), and fetched again after a 403 (:meth:`ApiKey.refresh`: the key may have been
rotated).  A secret that is missing, unreadable or empty is :class:`KeyUnavailable` (the
callback is dead-lettered); a throttled or unreachable Secrets Manager is left to the stage to
retry.  The key never appears in a repr, a log line, an event or a dead letter.
"""

from __future__ import annotations

import json
import threading

from botocore.exceptions import ClientError

from workers.runtime import Runtime

#: Secrets Manager answers that waiting will not fix.
SECRET_PERMANENT = frozenset(
    {
        "ResourceNotFoundException",
        "AccessDeniedException",
        "DecryptionFailure",
        "InvalidRequestException",
        "InvalidParameterException",
    }
)


class KeyUnavailable(Exception):
    """No API key could be had (not configured, or the secret cannot be read)."""


class ApiKey:
    """The shared secret: from settings, or from Secrets Manager (cached, refreshable)."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._lock = threading.Lock()
        self._cached: str | None = None

    @classmethod
    def of(cls, runtime: Runtime) -> ApiKey:
        return runtime.resource("ngs360-api-key", cls)

    @property
    def refreshable(self) -> bool:
        settings = self._runtime.settings
        return settings.ngs360_api_key is None and bool(settings.ngs360_api_key_secret)

    def get(self) -> str:
        settings = self._runtime.settings
        if settings.ngs360_api_key is not None and settings.ngs360_api_key.get_secret_value():
            return settings.ngs360_api_key.get_secret_value()
        if not settings.ngs360_api_key_secret:
            raise KeyUnavailable("no API key: set NGS360_API_KEY or NGS360_API_KEY_SECRET")
        with self._lock:
            if self._cached is None:
                self._cached = self._fetch()
            return self._cached

    def refresh(self) -> str:
        """Read the secret again (after a 403: the key may have been rotated)."""
        with self._lock:
            self._cached = self._fetch()
            return self._cached

    def _fetch(self) -> str:
        settings = self._runtime.settings
        client = self._runtime.aws.get("secretsmanager")
        try:
            response = client.get_secret_value(SecretId=settings.ngs360_api_key_secret)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code not in SECRET_PERMANENT:
                raise  # throttled or unavailable: the stage retries
            raise KeyUnavailable(
                f"cannot read secret {settings.ngs360_api_key_secret}: {code}"
            ) from None
        text = response.get("SecretString")
        if text is None and response.get("SecretBinary") is not None:
            text = bytes(response["SecretBinary"]).decode("utf-8", "replace")
        text = (text or "").strip()
        if text.startswith("{"):
            try:
                document = json.loads(text)
            except ValueError:
                document = None
            if isinstance(document, dict):
                value = document.get(settings.ngs360_api_key_secret_field)
                if not isinstance(value, str) or not value:
                    raise KeyUnavailable(
                        f"secret {settings.ngs360_api_key_secret} has no "
                        f"{settings.ngs360_api_key_secret_field!r} field"
                    )
                return value
        if not text:
            raise KeyUnavailable(f"secret {settings.ngs360_api_key_secret} is empty")
        return text

    def __repr__(self) -> str:  # never show the key
        return "<ApiKey ********>"


__all__ = ["SECRET_PERMANENT", "ApiKey", "KeyUnavailable"]
