"""A ``CALLBACK_ALLOWED_HOSTS`` entry allows one origin, not a host on every
port.  Why it matters: the key goes with the callback, and ``https://api-host:22/`` on a host
that serves NGS360 on 443 can be anyone's listener."""

from __future__ import annotations

import pytest

from schemas.ngs360 import callback_origin
from schemas.settings import ConfigurationError, Settings, load_settings
from workers.callback import allowed_hosts, resolve_target, tag_problem


@pytest.mark.parametrize(
    ("entry", "origin"),
    [
        ("api-host", ("https", "api-host", 443)),
        ("API-Host:8443", ("https", "api-host", 8443)),
        ("https://api-host", ("https", "api-host", 443)),
        ("https://api-host/", ("https", "api-host", 443)),
        ("http://127.0.0.1:8000", ("http", "127.0.0.1", 8000)),
        ("http://localhost", ("http", "localhost", 80)),
        ("[::1]:9000", ("https", "::1", 9000)),
    ],
)
def test_an_entry_is_scheme_host_and_port(entry: str, origin: tuple[str, str, int]) -> None:
    assert callback_origin(entry, entry=True) == origin


def test_a_bare_host_allows_its_https_port_only() -> None:
    settings = Settings(
        ngs360_api_url="https://wes.example.com/ga4gh/wes/v1", callback_allowed_hosts="api-host"
    )
    assert tag_problem("https://api-host/x", allowed_hosts(settings)) is None
    assert tag_problem("https://api-host:443/x", allowed_hosts(settings)) is None
    refused = resolve_target(settings, "https://api-host:22/")
    assert refused.refused == "origin https://api-host:22 is not in CALLBACK_ALLOWED_HOSTS"
    assert refused.url == "https://wes.example.com/internal/callbacks/omics-state-change"
    # the configured API's own origin stays allowed when a list is set, and only on its port
    assert resolve_target(settings, "https://wes.example.com/other").refused is None
    assert resolve_target(settings, "https://wes.example.com:8443/").refused


def test_the_default_allows_the_api_origin_only() -> None:
    settings = Settings(ngs360_api_url="http://127.0.0.1:8000/api")
    assert allowed_hosts(settings) == {("http", "127.0.0.1", 8000)}
    assert tag_problem("http://127.0.0.1:8000/", allowed_hosts(settings)) is None
    assert tag_problem("http://127.0.0.1:8001/", allowed_hosts(settings)) == (
        "origin http://127.0.0.1:8001 is not in CALLBACK_ALLOWED_HOSTS"
    )


@pytest.mark.parametrize(
    "entry", ["ftp://api-host", "https://api-host/callbacks", "api-host:99999", "user@api-host"]
)
def test_a_bad_entry_stops_the_process_at_start(entry: str) -> None:
    with pytest.raises(ConfigurationError, match=r"^configuration error: CALLBACK_ALLOWED_HOSTS="):
        load_settings(callback_allowed_hosts=entry)
