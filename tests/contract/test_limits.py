"""One behaviour for every limits backend: the same tests on memory and on real Redis.

Each test takes ``medium``: a :class:`~workers.limits.LimitBackend` with a clock.  Memory runs
on a fake clock that ``sleep`` moves (nothing waits); Redis runs on its own clock, so there
``sleep`` really sleeps, and keys live under this test's own prefix.  Nothing asserts that
something happened *within* a time: a bound is asserted only where a slow machine can only make
the measure larger (time a correct limiter must take at least), or is checked by counts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
import redis as redis_lib

from schemas.settings import Settings
from workers.limits import (
    ConcurrencyLimiter,
    GlobalRateLimiter,
    LimitBackend,
    MemoryBackend,
    Rate,
    RateLimitTimeout,
    RedisBackend,
    backend_for,
)


class FakeClock:
    """Time that passes only when told to (thread-safe: several limiters may sleep on it)."""

    def __init__(self) -> None:
        self._now = 1000.0
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds


@dataclass
class Medium:
    backend: LimitBackend
    now: Callable[[], float]
    sleep: Callable[[float], None]
    #: the clock moves only by ``sleep``: "not yet expired" can be asserted too
    exact: bool

    def rate_limiter(self, rates: dict[str, float], **options: float) -> GlobalRateLimiter:
        windows = self.backend.rate_windows()
        return GlobalRateLimiter(windows, rates, clock=self.now, sleep=self.sleep, **options)


@pytest.fixture(params=["memory", "redis"])
def medium(request: pytest.FixtureRequest) -> Iterator[Medium]:
    if request.param == "memory":
        clock = FakeClock()
        yield Medium(MemoryBackend(clock=clock.now), clock.now, clock.sleep, exact=True)
        return
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    client = redis_lib.Redis.from_url(url)
    yield Medium(RedisBackend(client, prefix), time.monotonic, time.sleep, exact=False)
    client.close()


# --- rate windows -----------------------------------------------------------------------------


def test_a_window_grants_its_limit_then_refuses_without_counting(medium: Medium) -> None:
    windows = medium.backend.rate_windows()
    assert [windows.acquire("GetRun", 3, 60) for _ in range(3)] == [0.0, 0.0, 0.0]
    refusals = [windows.acquire("GetRun", 3, 60) for _ in range(5)]
    assert all(0 < pause <= 60 for pause in refusals)  # the wait until the oldest grant leaves
    assert windows.acquire("ListRuns", 3, 60) == 0.0  # another key, another window


def test_a_grant_leaves_its_window_after_window_seconds(medium: Medium) -> None:
    windows = medium.backend.rate_windows()
    assert windows.acquire("k", 1, 0.2) == 0.0
    if medium.exact:
        medium.sleep(0.15)
        assert windows.acquire("k", 1, 0.2) > 0  # refusals were not counted: still one grant
    medium.sleep(0.25)
    assert windows.acquire("k", 1, 0.2) == 0.0


def test_two_limiters_on_one_backend_share_the_budget(medium: Medium) -> None:
    limiters = [medium.rate_limiter({"GetRun": 5}) for _ in range(2)]
    granted = [sum(lim.try_acquire("GetRun") for _ in range(10)) for lim in limiters]
    assert sum(granted) == 5  # one account-wide window, not 5 per worker


def test_unlisted_operations_are_not_limited(medium: Medium) -> None:
    limiter = medium.rate_limiter({"GetRun": 1})
    assert all(limiter.try_acquire("GetWorkflow") for _ in range(100))


def test_wait_gives_up_when_the_next_slot_is_past_its_bound(medium: Medium) -> None:
    limiter = medium.rate_limiter({"StartReadSetImportJob": 0.01}, max_wait=0.2)  # 1 per 100 s
    limiter.wait("StartReadSetImportJob")
    with pytest.raises(RateLimitTimeout, match="StartReadSetImportJob"):
        limiter.wait("StartReadSetImportJob")


def test_threads_waiting_on_two_limiters_take_at_least_the_padded_windows(medium: Medium) -> None:
    """12 grants at 4 per (1 s + 0.3 s margin) need two full padded windows after the first."""
    limiters = [medium.rate_limiter({"GetRunTask": 4}, margin=0.3) for _ in range(2)]
    granted: list[int] = []
    lock = threading.Lock()

    def worker(limiter: GlobalRateLimiter) -> None:
        for _ in range(4):
            limiter.wait("GetRunTask")
            with lock:
                granted.append(1)

    threads = [threading.Thread(target=worker, args=(limiters[i % 2],)) for i in range(3)]
    started = medium.now()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(granted) == 12
    assert medium.now() - started >= 2 * 1.3 - 0.01


def test_rates_are_whole_calls_per_whole_seconds() -> None:
    assert Rate.per_second(10) == Rate(10, 1)
    assert Rate.per_second(2.5) == Rate(2, 1)
    assert Rate.per_second(0.5) == Rate(1, 2)
    assert Rate.per_second(0.01) == Rate(1, 100)


# --- leased slots -----------------------------------------------------------------------------


def test_slots_permit_their_limit_and_refuse_others(medium: Medium) -> None:
    one = ConcurrencyLimiter(medium.backend.slots("jobs"), limit=2, ttl=30)
    two = ConcurrencyLimiter(medium.backend.slots("jobs"), limit=2, ttl=30)  # another worker
    assert one.acquire("a") and two.acquire("b")
    assert not one.acquire("c") and not two.acquire("c")
    assert two.acquire("a")  # renewing one's own slot never takes a second one
    assert sorted(one.holders()) == sorted(two.holders()) == ["a", "b"]
    other = ConcurrencyLimiter(medium.backend.slots("other"), limit=1, ttl=30)
    assert other.acquire("c") and other.holders() == ["c"]  # another name, other slots


def test_a_released_slot_is_free_and_releasing_none_is_harmless(medium: Medium) -> None:
    one = ConcurrencyLimiter(medium.backend.slots("jobs"), limit=1, ttl=30)
    two = ConcurrencyLimiter(medium.backend.slots("jobs"), limit=1, ttl=30)
    assert one.acquire("a") and not two.acquire("b")
    two.release("b")  # holds nothing: a no-op
    assert one.holders() == ["a"]
    one.release("a")
    assert two.holders() == [] and two.acquire("b") and two.holders() == ["b"]


def test_an_expired_lease_frees_its_slot(medium: Medium) -> None:
    limiter = ConcurrencyLimiter(medium.backend.slots("short"), limit=1, ttl=0.2)
    assert limiter.acquire("lost-event")  # its terminal event never comes
    if medium.exact:
        medium.sleep(0.15)
        assert not limiter.acquire("next") and limiter.holders() == ["lost-event"]
    medium.sleep(0.25)
    assert limiter.holders() == []
    assert limiter.acquire("next") and limiter.holders() == ["next"]


def test_renewing_a_lease_restarts_its_ttl(medium: Medium) -> None:
    limiter = ConcurrencyLimiter(medium.backend.slots("renew"), limit=1, ttl=0.4)
    assert limiter.acquire("a")
    medium.sleep(0.25)
    assert limiter.acquire("a")  # renewed (the first lease has 0.15 s or less left)
    medium.sleep(0.25)  # past the first lease, within the renewed one when nothing stalls
    if medium.exact:
        assert limiter.holders() == ["a"]
    medium.sleep(0.2)
    assert limiter.holders() == []


def test_a_limit_below_one_is_refused(medium: Medium) -> None:
    with pytest.raises(ValueError, match="limit must be >= 1"):
        ConcurrencyLimiter(medium.backend.slots("x"), limit=0, ttl=1)


# --- the one switch ---------------------------------------------------------------------------


def test_the_backend_is_redis_exactly_when_redis_url_is_set(
    make_settings: Callable[..., Settings], redis_url: str, redis_prefix: str
) -> None:
    assert isinstance(backend_for(make_settings(redis_url=None)), MemoryBackend)
    backend = backend_for(make_settings(redis_url=redis_url, redis_key_prefix=redis_prefix))
    assert isinstance(backend, RedisBackend) and backend.prefix == redis_prefix
    limiter = ConcurrencyLimiter.from_settings(
        make_settings(redis_url=redis_url, redis_key_prefix=redis_prefix), "jobs", limit=1, ttl=30
    )
    assert limiter.acquire("a")
    assert backend.client.zscore(f"{redis_prefix}concurrency:jobs", "a") is not None
    rate = GlobalRateLimiter.from_settings(
        make_settings(redis_url=redis_url, redis_key_prefix=redis_prefix), {"GetRun": 1}
    )
    assert rate.try_acquire("GetRun")
    assert backend.client.exists(f"{redis_prefix}ratelimit:padded:omics:GetRun")
