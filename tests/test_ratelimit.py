"""The global rate limiter: one budget shared by every process, in Redis or in memory."""

from __future__ import annotations

import threading
import time

from limits.storage import MemoryStorage, RedisStorage

from workers.ratelimit import GlobalRateLimiter, RateLimitTimeout


def test_two_limiters_on_one_redis_share_the_budget(redis_url: str, redis_prefix: str) -> None:
    limiters = [
        GlobalRateLimiter(RedisStorage(redis_url, key_prefix=redis_prefix), {"GetRun": 5})
        for _ in range(2)
    ]
    granted = [sum(lim.try_acquire("GetRun") for _ in range(10)) for lim in limiters]
    assert sum(granted) == 5  # one account-wide window, not 5 per worker


def test_wait_spreads_calls_so_no_second_exceeds_the_rate(redis_url: str, redis_prefix: str):
    storage = RedisStorage(redis_url, key_prefix=redis_prefix)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        limiter = GlobalRateLimiter(storage, {"GetRunTask": 4})
        for _ in range(6):
            limiter.wait("GetRunTask")
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    assert len(stamps) == 18
    # in any window of (a little under, for scheduling jitter) one second at most 4 calls
    assert all(sum(1 for t in stamps if start <= t < start + 0.8) <= 4 for start in stamps)


def test_wait_gives_up_after_its_bound() -> None:
    limiter = GlobalRateLimiter(MemoryStorage(), {"StartReadSetImportJob": 0.01}, max_wait=0.2)
    limiter.wait("StartReadSetImportJob")
    try:
        limiter.wait("StartReadSetImportJob")
    except RateLimitTimeout as error:
        assert "StartReadSetImportJob" in str(error)
    else:
        raise AssertionError("a second call within 100 s must not be granted")


def test_unlisted_operations_are_not_limited() -> None:
    limiter = GlobalRateLimiter(MemoryStorage(), {"GetRun": 1})
    assert all(limiter.try_acquire("GetWorkflow") for _ in range(100))
