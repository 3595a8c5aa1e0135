"""A dead peer never holds a worker thread: Redis clients of locks and limiters and the
PostgreSQL engine of every process have timeouts, and hitting one is an error, not a hang."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import pytest
import redis as redis_lib
import sqlalchemy as sa

from eventlog.db import engine_for
from eventlog.dialect import lift_statement_timeout
from schemas.settings import Settings
from workers.concurrency import ConcurrencyLimiter
from workers.ratelimit import GlobalRateLimiter
from workers.redis_clients import redis_client


@pytest.fixture
def silent_peer() -> Iterator[str]:
    """A port that accepts connections (the kernel's backlog) and never says a word."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"127.0.0.1:{listener.getsockname()[1]}"


def test_every_redis_client_of_locks_and_limiters_has_the_timeouts(
    make_settings: Callable[..., Settings], redis_url: str, redis_prefix: str
) -> None:
    settings = make_settings(
        redis_url=redis_url,
        redis_key_prefix=redis_prefix,
        redis_socket_timeout=7.5,
        redis_connect_timeout=2.5,
    )
    limiter = GlobalRateLimiter.from_settings(settings)
    slots = ConcurrencyLimiter.from_settings(settings, "t", limit=1, ttl=5)
    pools = [
        redis_client(settings).connection_pool,
        limiter._windows._client.connection_pool,  # type: ignore[attr-defined]
        slots._slots._client.connection_pool,  # type: ignore[attr-defined]
    ]
    for pool in pools:
        assert pool.connection_kwargs["socket_timeout"] == 7.5
        assert pool.connection_kwargs["socket_connect_timeout"] == 2.5
    assert redis_client(settings).ping()


@pytest.mark.timeout(60)  # before the timeouts, these calls waited forever
def test_a_silent_redis_fails_the_call_instead_of_hanging(
    make_settings: Callable[..., Settings], silent_peer: str
) -> None:
    settings = make_settings(
        redis_url=f"redis://{silent_peer}/0",
        redis_socket_timeout=0.5,
        omics_rate_margin=0,
    )
    with pytest.raises(redis_lib.exceptions.TimeoutError):
        redis_client(settings).ping()
    with pytest.raises(redis_lib.exceptions.TimeoutError):
        GlobalRateLimiter.from_settings(settings).wait("GetRun")
    with pytest.raises(redis_lib.exceptions.TimeoutError):
        ConcurrencyLimiter.from_settings(settings, "imports", limit=1, ttl=5).acquire("job-1")


def test_a_statement_longer_than_the_timeout_is_cancelled(
    make_settings: Callable[..., Settings], pg_url: str
) -> None:
    engine = engine_for(make_settings(database_url=pg_url, database_statement_timeout=0.2))
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar_one() == "200ms"
        with (
            pytest.raises(sa.exc.OperationalError, match="statement timeout"),
            engine.connect() as connection,
        ):
            connection.exec_driver_sql("SELECT pg_sleep(5)")
        # long work lifts it for its own transaction only (a rebuild, a migration)
        with engine.begin() as connection:
            lift_statement_timeout(connection)
            connection.exec_driver_sql("SELECT pg_sleep(0.5)")
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SHOW statement_timeout").scalar_one() == "200ms"
    finally:
        engine.dispose()


@pytest.mark.timeout(60)
def test_a_silent_postgresql_fails_the_connection_instead_of_hanging(
    make_settings: Callable[..., Settings], silent_peer: str
) -> None:
    settings = make_settings(
        database_url=f"postgresql://postgres@{silent_peer}/test", database_connect_timeout=2
    )
    engine = engine_for(settings)
    try:
        with pytest.raises(sa.exc.OperationalError, match="timeout"):
            engine.connect()
    finally:
        engine.dispose()
