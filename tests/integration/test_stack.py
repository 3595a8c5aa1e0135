"""``devtools.stack``: the process handle the benchmarks and the fault drills stand on.

If it passed the wrong settings, missed a process's children or reported a restart it did not
do, every figure and every drill built on it would be wrong without anyone noticing.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest
import redis as redis_lib

from devtools.stack import ProcessStack, RedisServer, settings_environment
from schemas.settings import Settings, env_name, load_settings
from simulator.local_aws import free_port


def test_settings_environment_round_trips_secrets_lists_and_enums(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        database_url="postgresql://u:pw@db:5432/log",
        ngs360_api_key="the-real-key",
        omics_rate_limits="GetRun=5,ListRunTasks=3",
        log_format="json",
        metrics_enabled=False,
    )
    env = settings_environment(settings)
    # a SecretStr must be passed as the secret, not as its mask
    assert env["NGS360_API_KEY"] == "the-real-key"
    assert env["OMICS_RATE_LIMITS"] == "GetRun=5,ListRunTasks=3"
    assert env["LOG_FORMAT"] == "json"
    assert "REDIS_URL" not in env  # defaults are left out
    for spec in Settings.model_fields.values():  # only what the function produced counts
        monkeypatch.delenv(env_name(spec), raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    again = load_settings()
    assert again == settings
    assert again.ngs360_api_key is not None
    assert again.ngs360_api_key.get_secret_value() == "the-real-key"


@pytest.mark.slow
def test_kill_restart_measure_a_real_sweeper(pg_url: str, tmp_path: Path) -> None:
    settings = Settings(database_url=pg_url, sweep_interval=0.2)
    with ProcessStack(settings, tmp_path, sample_interval=0.1) as stack:
        name = stack.start_sweeper(every=0.2)
        stack.wait_ready(timeout=60)
        pid = stack._managed[name].process.pid
        assert stack.kill(name) == -signal.SIGKILL
        assert not stack.running(name) and not stack.ready(name)
        stack.restart(name)
        stack.wait_ready(timeout=60)
        assert stack._managed[name].process.pid != pid
        usage = stack.usage()[name]
        assert usage.restarts == 1 and usage.cpu_seconds > 0 and usage.peak_rss_mb > 10
    assert not stack.running(name)  # close() stopped it
    assert not psutil.pid_exists(stack._managed[name].process.pid)
    assert "Traceback" not in stack.log(name)


@pytest.mark.slow
def test_a_process_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    settings = Settings(database_url="postgresql://nobody@127.0.0.1:1/none")
    with ProcessStack(settings, tmp_path) as stack:
        stack.start("bad", ["no-such-command"])
        with pytest.raises(RuntimeError, match="bad exited"):
            stack.wait_ready(timeout=60)


def test_private_redis_comes_back_empty_on_the_same_port(tmp_path: Path) -> None:
    with RedisServer(free_port(), tmp_path / "redis.log") as server:
        client = redis_lib.Redis.from_url(server.url)
        client.set("k", "v")
        server.restart()
        assert client.get("k") is None  # data lost, same URL still works
        client.close()
    with pytest.raises(redis_lib.ConnectionError):
        redis_lib.Redis.from_url(server.url, socket_connect_timeout=1).ping()


@pytest.mark.slow
def test_supervisor_restarts_a_crash_but_not_a_kill(pg_url: str, tmp_path: Path) -> None:
    """As the containers' restart policy: what dies on its own comes back, what the drill
    killed stays down until it is restarted."""
    settings = Settings(database_url=pg_url, sweep_interval=0.2)
    with ProcessStack(settings, tmp_path, supervise=True) as stack:
        name = stack.start_sweeper(every=0.2)
        stack.wait_ready(timeout=60)
        os.killpg(stack._managed[name].process.pid, signal.SIGKILL)  # a crash, not our kill
        deadline = time.monotonic() + 60
        while stack.usage()[name].crashes < 1:
            assert time.monotonic() < deadline, "the supervisor did not restart the sweeper"
            time.sleep(0.1)
        stack.wait_ready(timeout=60)
        stack.kill(name)
        time.sleep(2.5)  # more than the supervisor's round: it must leave the process down
        assert not stack.running(name) and stack.usage()[name].crashes == 1
        stack.restart(name)
        stack.wait_ready(timeout=60)
        assert stack.usage()[name].restarts == 2
