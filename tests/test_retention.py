"""Retention against a real Redis: exactly the idle sessions go, with every key they had."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from opencode_relay.retention import Retention
from opencode_relay.store.keys import Keys
from opencode_relay.store.staging import Staging
from opencode_relay.store.state import StateStore
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.redis_under_test import sync_redis_client
from tests.support.stack import RelayProcess, wait_for

pytestmark = pytest.mark.integration

HOUR_MS = 3_600_000


async def _now_ms(redis: Redis) -> int:
    seconds, micros = await redis.time()
    return seconds * 1000 + micros // 1000


async def _session(redis: Redis, keys: Keys, name: str, updated_ms: int,
                   parent: str | None = None, status: str | None = None,
                   pending: bool = False, event_ms: int | None = None) -> str:
    store = StateStore(redis, keys)
    sid = f"ses_{name}_{uuid.uuid4().hex[:6]}"
    info = {"id": sid, "title": name, "time": {"created": updated_ms - 1000, "updated": updated_ms}}
    if parent:
        info["parentID"] = parent
    mid, pid = f"msg_{uuid.uuid4().hex[:8]}", f"prt_{uuid.uuid4().hex[:8]}"
    async with Staging(redis) as stage:
        pipe = stage.on(sid)
        store.put_session(stage, info)
        store.put_message(stage, {"id": mid, "sessionID": sid, "role": "user"})
        store.put_part(pipe, {"id": pid, "sessionID": sid, "messageID": mid, "type": "text",
                              "text": "hi"})
        store.put_json(pipe, keys.diff(sid), [])
        store.put_json(pipe, keys.todos(sid), [])
        pipe.set(keys.session_owner(sid), "tok_someone")
        if status:
            store.put_json(pipe, keys.status(sid), {"type": status})
        if pending:
            store.put_request(pipe, sid, {"id": "per_1", "sessionID": sid})
        await stage.commit()
    stamp = event_ms if event_ms is not None else updated_ms
    entry_id = f"{stamp}-{uuid.uuid4().int % 1000}"
    await redis.xadd(keys.session_events(sid), {"e": b"{}"}, id=entry_id)
    return sid


async def _keys_of(redis: Redis, keys: Keys, sid: str) -> list[bytes]:
    # Sorted: SCAN visits a cluster's nodes in no fixed order, and its order changes when
    # Redis rehashes (other tests write meanwhile).
    return sorted([k async for k in redis.scan_iter(f"{keys.prefix}*{sid}*")])


async def _build(redis: Redis, keys: Keys) -> tuple[set[str], set[str]]:
    now = await _now_ms(redis)
    old = now - 2 * HOUR_MS
    gone, kept = set(), set()
    gone.add(await _session(redis, keys, "old", old))
    kept.add(await _session(redis, keys, "busy", old, status="busy"))
    kept.add(await _session(redis, keys, "retry", old, status="retry"))
    gone.add(await _session(redis, keys, "idlestatus", old, status="idle"))
    kept.add(await _session(redis, keys, "asking", old, pending=True))
    kept.add(await _session(redis, keys, "recent", now - 10 * 60_000))
    kept.add(await _session(redis, keys, "recentevent", old, event_ms=now - 5 * 60_000))
    parent = await _session(redis, keys, "parent", old)
    kept |= {parent, await _session(redis, keys, "childbusy", old, parent=parent, status="busy")}
    parent2 = await _session(redis, keys, "parenttwo", old)
    gone |= {parent2, await _session(redis, keys, "childtwo", old, parent=parent2)}
    return gone, kept


async def test_prune_removes_exactly_the_idle_sessions_and_all_their_keys(redis: Redis) -> None:
    keys = Keys(f"ret-{uuid.uuid4().hex[:8]}:")
    gone, kept = await _build(redis, keys)
    before = {sid: await _keys_of(redis, keys, sid) for sid in gone | kept}
    assert all(len(found) >= 6 for found in before.values())
    retention = Retention(redis, keys, StateStore(redis, keys), idle_seconds=3600,
                          log_max_age_seconds=0)

    dry = await retention.prune(dry_run=True)
    assert set(dry.removed) == gone
    assert {sid: await _keys_of(redis, keys, sid) for sid in gone | kept} == before

    owned = sorted(gone)[0]
    await redis.set(keys.session_owner(owned), "p_alice")
    report = await retention.prune()
    assert set(report.removed) == gone
    for sid in gone:
        # Only who owns it survives (opencode still has it; a read-through re-imports it).
        left = await _keys_of(redis, keys, sid)
        assert [k.decode() for k in left if k.decode() != keys.session_owner(sid)] == [], sid
        assert await redis.zscore(keys.pruned, sid) is not None
        assert await redis.zscore(keys.session_list, sid) is None
    assert await redis.get(keys.session_owner(owned)) == b"p_alice"
    for sid in kept:
        assert sorted(await _keys_of(redis, keys, sid)) == sorted(before[sid]), sid
    remaining = {v.decode() for v in await redis.hvals(keys.message_index)}
    assert remaining == kept
    # Nothing left behind that names a removed session.
    for key in [k async for k in redis.scan_iter(f"{keys.prefix}*")]:
        if await redis.type(key) == b"set":
            members = {m.decode() for m in await redis.smembers(key)}
            assert not members & gone
    assert (await retention.prune()).removed == []


async def test_a_session_that_wakes_up_during_the_prune_is_kept(redis: Redis) -> None:
    keys = Keys(f"ret-{uuid.uuid4().hex[:8]}:")
    now = await _now_ms(redis)
    sid = await _session(redis, keys, "waking", now - 2 * HOUR_MS)
    retention = Retention(redis, keys, StateStore(redis, keys), 3600, 0)
    real_read = retention._read_all
    calls = 0

    async def read_then_wake(sids: list[str]):
        # The second read is the re-check under WATCH: it still sees the session idle, and the
        # session turns busy right after, so only the WATCH can save it.
        nonlocal calls
        calls += 1
        seen = await real_read(sids)
        if calls == 2:
            await redis.set(keys.status(sid), json.dumps({"type": "busy"}))
        return seen

    retention._read_all = read_then_wake  # type: ignore[method-assign]
    assert (await retention.prune()).removed == []
    assert await redis.exists(keys.session(sid))


async def test_event_logs_lose_entries_older_than_the_max_age(redis: Redis) -> None:
    keys = Keys(f"ret-{uuid.uuid4().hex[:8]}:")
    now = await _now_ms(redis)
    sid = await _session(redis, keys, "logged", now - 10_000, event_ms=now - 3 * HOUR_MS)
    await redis.xadd(keys.session_events(sid), {"e": b"{}"}, id=f"{now - 1000}-0")
    for i, ms in enumerate((now - 3 * HOUR_MS, now - 2 * HOUR_MS, now - 1000)):
        await redis.xadd(keys.events, {"e": b"{}", "s": sid}, id=f"{ms}-{i}")
    retention = Retention(redis, keys, StateStore(redis, keys), 0, log_max_age_seconds=3600)
    report = await retention.prune()
    assert report.trimmed_events == 3
    assert [e[0] for e in await redis.xrange(keys.events)] == [f"{now - 1000}-2".encode()]
    assert [e[0] for e in await redis.xrange(keys.session_events(sid))] == \
        [f"{now - 1000}-0".encode()]


async def test_prune_command_dry_run_shows_what_would_go(redis: Redis,
                                                         redis_server: EmbeddedRedis,
                                                         tmp_path: Path) -> None:
    keys = Keys(f"ret-{uuid.uuid4().hex[:8]}:")
    gone, kept = await _build(redis, keys)
    env = {"REDIS_URL": redis_server.url, "RELAY_KEY_PREFIX": keys.prefix,
           "RELAY_SESSION_IDLE_SECONDS": "3600", "PATH": "/usr/bin:/bin"}
    run = [sys.executable, "-m", "opencode_relay.cli", "prune"]
    dry = await asyncio.to_thread(subprocess.run, [*run, "--dry-run"], env=env,
                                  capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert set(json.loads(dry.stdout)["would_remove"]) == gone
    assert all([await redis.exists(keys.session(sid)) for sid in gone])
    done = await asyncio.to_thread(subprocess.run, run, env=env, capture_output=True, text=True,
                                   timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)["removed"]) == gone
    assert not any([await redis.exists(keys.session(sid)) for sid in gone])
    assert all([await redis.exists(keys.session(sid)) for sid in kept])


def test_the_periodic_task_prunes_a_finished_session_of_a_running_relay(
        redis_server: EmbeddedRedis, opencode: EmbeddedOpencode, scripted: ScriptedProvider,
        tmp_path: Path) -> None:
    relay = RelayProcess(redis_server.url, opencode.url, tmp_path / "relay.log",
                         extra_env={"RELAY_SESSION_IDLE_SECONDS": "2",
                                    "RELAY_PRUNE_INTERVAL_SECONDS": "1"}).start()
    try:
        api = httpx.Client(base_url=relay.url, timeout=60)
        sid = api.post("/api/sessions", json={"title": "short-lived"}).json()["id"]
        marker = scripted.script(f"p{uuid.uuid4().hex[:8]}", [[{"text": "done"}]])
        assert api.post(f"/api/sessions/{sid}/messages", json={"text": marker}).status_code == 200
        client = sync_redis_client(redis_server.url)
        keys = Keys(relay.prefix)
        owner = keys.session_owner(sid).encode()
        wait_for(lambda: [k for k in client.scan_iter(f"{relay.prefix}*{sid}*") if k != owner]
                 == [], 60, "the idle session's keys to go (but who owns it)")
        assert client.zscore(keys.pruned, sid) is not None

        def counted() -> bool:
            return any(line.startswith("relay_sessions_pruned_total ")
                       and float(line.split()[1]) >= 1
                       for line in api.get("/metrics").text.splitlines())

        # Counted once the prune's pass is over, a round trip or two after its commit (its
        # pipelines' UNWATCH and resets): the keys can be seen gone a moment before.
        wait_for(counted, 10, "the prune to be counted")
    finally:
        relay.stop()
