"""Hiding secrets whenever the configuration is printed.

Secrets (:class:`pydantic.SecretStr`), passwords inside URLs and password-like URL query
parameters (``?password=``, ``&token=``…) are masked in :meth:`Settings.masked
<schemas.settings.model.Settings.masked>` and in the line a bad value stops a process with: the
line must name the variable, never repeat a secret it holds.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

#: What is printed in place of a secret.
MASK = "********"
#: Query parameters whose values are secrets: ``?password=``, ``&auth_token=``, AWS presigned
#: ``X-Amz-Signature``/``X-Amz-Credential``/``X-Amz-Security-Token``, ``sslpassword``, ``apikey``…
#: Matching too much costs a masked harmless value; too little, a leaked secret.
SECRET_PARAMETER = re.compile(r"pass|pwd|secret|token|key|sig|credential|auth", re.IGNORECASE)
_QUERY_PAIR = re.compile(r"(?P<name>[^&;=]*)=(?P<value>[^&;]*)")
#: A URL inside free text (an error message): scheme, ``://``, then up to a space or a quote.
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def mask_url(value: str) -> str:
    """``value`` with the secrets a URL can carry hidden: the password of
    ``scheme://user:password@host`` and the values of password-like query parameters
    (:data:`SECRET_PARAMETER`).  Anything that is not a URL comes back as it is."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return _mask_unparsed(value)
    if not parts.scheme:
        return value
    masked = value
    userinfo, at, host = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if at and colon and password:
        start = masked.index("//") + 2  # a netloc is what follows the first //
        masked = f"{masked[:start]}{user}:{MASK}@{host}{masked[start + len(parts.netloc) :]}"
    query = _QUERY_PAIR.sub(_mask_pair, parts.query)
    if query != parts.query:
        # spliced into the text, not re-joined by urlunsplit, which drops an empty netloc's //
        start = masked.index("?") + 1
        masked = f"{masked[:start]}{query}{masked[start + len(parts.query) :]}"
    return masked


def _mask_pair(match: re.Match[str]) -> str:
    if SECRET_PARAMETER.search(match["name"]) and match["value"]:
        return f"{match['name']}={MASK}"
    return match.group()


def _mask_unparsed(url: str) -> str:
    """A URL urlsplit refuses (a bad IPv6 host): hide what looks secret all the same."""
    url = re.sub(r"(://[^/@:]*:)[^/@]*@", rf"\g<1>{MASK}@", url)
    _, mark, query = url.partition("?")
    if not mark:
        return url
    return url[: -len(query) or None] + _QUERY_PAIR.sub(_mask_pair, query)


def mask_secrets(text: str) -> str:
    """Free text (an error message) with every URL in it passed through :func:`mask_url`."""
    return _URL_IN_TEXT.sub(lambda match: mask_url(match.group()), text)


def is_secret(field: Any) -> bool:
    """Whether a settings field holds a secret (typed :class:`pydantic.SecretStr`)."""
    annotation = field.annotation
    return annotation is SecretStr or SecretStr in getattr(annotation, "__args__", ())
