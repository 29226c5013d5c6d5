"""The retry guard (ingest/retry_guard.py) and the setup readiness rule, in-process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from opencode_relay import events as event_types
from opencode_relay.api.providers import _entry, _is_usable
from opencode_relay.cli import opencode_home
from opencode_relay.config import Settings
from opencode_relay.ingest.retry_guard import RetryGuard, failure_message
from opencode_relay.store.keys import Keys
from opencode_relay.store.log import EventLog

pytestmark = pytest.mark.unit

SID = "ses_retryguard0000000000001"


class FakeClient:
    name = "default"  # the opencode server, which owns the notice's log until published

    def __init__(self) -> None:
        self.aborted: list[tuple[str, str | None]] = []

    async def abort(self, sid: str, directory: str | None = None) -> bool:
        self.aborted.append((sid, directory))
        return True


async def until(check: Any, timeout: float = 10.0) -> None:
    """Waits for the guard's background abort (a loaded machine may take a while)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


def event(kind: str, **props: Any) -> dict[str, Any]:
    return {"directory": "/work/p", "payload": {"type": kind, "properties": props}}


def retry(attempt: int, message: str = "Cannot connect to API: refused") -> dict[str, Any]:
    return event(event_types.SESSION_STATUS_CHANGED, sessionID=SID, status={
        "type": "retry", "attempt": attempt, "message": message, "next": 0})


async def test_the_guard_aborts_once_at_the_limit_and_logs_a_notice(redis: Redis,
                                                                    keys: Keys) -> None:
    client = FakeClient()
    log = EventLog(redis, keys, 1000, 1000)
    told: list[tuple[str, str]] = []
    guard = RetryGuard(client, log, limit=2,  # type: ignore[arg-type]
                       on_stopping=lambda sid: told.append(("stopping", sid)),
                       on_failed=lambda sid, _message: told.append(("failed", sid)))
    guard.observe(event(event_types.MESSAGE_UPDATED, sessionID=SID, info={
        "id": "msg_1", "sessionID": SID, "role": "assistant", "providerID": "down"}))
    guard.observe(retry(1))
    await asyncio.sleep(0.05)
    assert client.aborted == []
    guard.observe(retry(2))
    # Said before the abort is even sent (its idle may come before the abort's answer).
    assert told == [("stopping", SID)] and client.aborted == []
    guard.observe(retry(3))  # already stopping: no second abort
    await until(lambda: client.aborted)
    await until(lambda: not guard._tasks)  # the notice is logged after the abort
    assert client.aborted == [(SID, "/work/p")]
    assert told == [("stopping", SID), ("failed", SID)]
    logged = await redis.xrange(keys.session_events(SID))
    notices = [json.loads(fields[b"e"]) for _id, fields in logged]
    assert [n["type"] for n in notices] == [event_types.RELAY_SESSION_FAILED]
    props = notices[0]["properties"]
    assert props["sessionID"] == SID and props["provider"] == "down"
    assert "'down'" in props["message"] and "2 attempts" in props["message"]
    # Idle again: a later prompt's retries are stopped too.
    guard.observe(event(event_types.SESSION_IDLE, sessionID=SID))
    guard.observe(retry(2))
    await until(lambda: len(client.aborted) == 2)
    await guard.close()


async def test_limit_zero_lets_opencode_retry(redis: Redis, keys: Keys) -> None:
    client = FakeClient()
    guard = RetryGuard(client, EventLog(redis, keys, 10, 10), limit=0)  # type: ignore[arg-type]
    for attempt in range(1, 6):
        guard.observe(retry(attempt))
    await asyncio.sleep(0.05)
    assert client.aborted == []


async def test_rate_limits_and_overload_are_left_to_opencode(redis: Redis, keys: Keys) -> None:
    client = FakeClient()
    guard = RetryGuard(client, EventLog(redis, keys, 10, 10), limit=1)  # type: ignore[arg-type]
    for attempt in range(1, 6):
        guard.observe(retry(attempt, "Rate limited: too many requests"))
        guard.observe(retry(attempt, "Provider is overloaded"))
    await asyncio.sleep(0.05)
    assert client.aborted == []


def test_the_message_names_the_provider_and_what_to_do() -> None:
    text = failure_message("anthropic", "Unauthorized", 1)
    assert "'anthropic'" in text and "API key" in text and "base URL" in text
    assert "1 attempt." in text
    assert "the model provider" in failure_message(None, "", 3)


def test_only_the_built_in_online_provider_is_not_ready() -> None:
    assert not _is_usable({"id": "opencode", "source": "custom"})
    assert _is_usable({"id": "opencode", "source": "api"})
    assert _is_usable({"id": "anthropic", "source": "env"})
    entry = _entry({"id": "x", "name": "X", "env": ["X_KEY"], "models": {"a": {}}}, {"x"},
                   [{"type": "api", "label": "key", "prompts": [{"key": "accountId"}]}])
    assert entry["connected"] and entry["models"] == 1 and entry["accepts_key"] is False


def test_the_embedded_opencode_gets_its_own_home_by_default(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RELAY_OPENCODE_HOME", raising=False)
    assert opencode_home(Settings(data_dir=tmp_path)) == (tmp_path / "opencode-home").resolve()
    elsewhere = tmp_path / "oc"
    assert opencode_home(Settings(data_dir=tmp_path, opencode_home=elsewhere)) == elsewhere
    monkeypatch.setenv("RELAY_OPENCODE_HOME", str(Path.home()))
    assert opencode_home(Settings(data_dir=tmp_path)) is None  # the user's own, on request
