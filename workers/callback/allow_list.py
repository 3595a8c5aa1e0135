"""Where a callback, and with it the API key, may go.

Why: the key is NGS360's shared secret, so a run's ``callback_url`` tag (set by whoever started
the run) must not be able to send it anywhere.  A tag is honoured only when it is https (http on
loopback, for tests) and its scheme, host and port (the scheme's default port when it names
none) are those of an entry of ``CALLBACK_ALLOWED_HOSTS`` or of ``NGS360_API_URL``: a bare
``api-host`` allows ``https://api-host:443``, not port 22.  Otherwise the callback goes to the
configured URL (:func:`resolve_target` says which tag was refused and why; the stage turns that
into a ``security`` dead letter).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from schemas.ngs360 import CALLBACK_PATH, Origin, callback_origin, show_origin
from schemas.settings import Settings


@dataclass(frozen=True)
class Target:
    """Where one callback goes, and why a run's ``callback_url`` tag was refused (if it was)."""

    url: str | None
    tag: str | None = None
    refused: str | None = None


def callback_endpoint(base_url: str) -> str:
    """The fixed callback path on the host of ``base_url`` (the path does not follow an API
    prefix; credentials in the URL are dropped)."""
    parts = urlsplit(base_url.strip())
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, CALLBACK_PATH, "", ""))


def allowed_hosts(settings: Settings) -> set[Origin]:
    """The origins a ``callback_url`` tag may name: ``CALLBACK_ALLOWED_HOSTS`` and always the
    configured API's own (a tag naming it changes nothing: the key goes there anyway)."""
    allowed = {callback_origin(item, entry=True) for item in settings.callback_allowed_hosts}
    if settings.ngs360_api_url:
        allowed.add(callback_origin(settings.ngs360_api_url))
    return allowed


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tag_problem(tag: str, allowed: Iterable[Origin | str]) -> str | None:
    """Why a ``callback_url`` tag may not receive the key, or None if it may.

    Scheme, host and port must match an allowed origin (entries given as text are read as
    ``CALLBACK_ALLOWED_HOSTS`` reads them): a bare host allows its https port, not every port.
    """
    try:
        parts = urlsplit(tag.strip())
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return "it is not a URL"
    if parts.scheme not in {"http", "https"} or not host:
        return "it is not an http(s) URL with a host"
    if parts.username is not None or parts.password is not None:
        return "it carries credentials"
    if parts.scheme == "http" and not _loopback(host):
        return "plain http is allowed on loopback only"
    origin = callback_origin(tag)
    origins = {callback_origin(a, entry=True) if isinstance(a, str) else a for a in allowed}
    if origin not in origins:
        return f"origin {show_origin(origin)} is not in CALLBACK_ALLOWED_HOSTS"
    return None


def resolve_target(settings: Settings, tag: str | None) -> Target:
    """Where the callback of a run tagged ``tag`` goes: the tag's host when it is allowed,
    else the configured API (with the reason the tag was refused)."""
    default = callback_endpoint(settings.ngs360_api_url) if settings.ngs360_api_url else None
    if not tag:
        return Target(default)
    problem = tag_problem(tag, allowed_hosts(settings))
    if problem is None:
        return Target(callback_endpoint(tag), tag)
    return Target(default, tag, problem)


__all__ = ["Target", "allowed_hosts", "callback_endpoint", "resolve_target", "tag_problem"]
