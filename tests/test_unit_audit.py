"""The audit log alone: the stream's filters, paging and age trimming, and what the app records
in-process (fake opencode, private Redis). The real stack's actions: tests/test_audit.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from redis.asyncio import Redis

from opencode_relay import audit
from opencode_relay.app import create_app
from opencode_relay.audit import AuditLog, AuditQuery
from opencode_relay.errors import InvalidInput
from opencode_relay.launch.embedded import EmbeddedRedis
from opencode_relay.retention import Retention
from opencode_relay.security.tokens import TokenStore
from opencode_relay.store.keys import Keys
from opencode_relay.store.state import StateStore
from tests.support.fake_opencode import FakeOpencode
from tests.test_api_inprocess import fake, relay_client, relay_settings, workspace

pytestmark = pytest.mark.unit
__all__ = ["fake", "workspace"]  # fixtures, used by name

HOUR_MS = 3_600_000


def _log(redis: Redis) -> AuditLog:
    return AuditLog(redis, Keys(f"audit-{uuid.uuid4().hex[:8]}:"), 1000)


async def _fill(log: AuditLog) -> list[str]:
    """Twelve entries: two principals, sessions a/b, three actions; returns ids, oldest first."""
    ids = []
    for i in range(12):
        ids.append(await log.record(
            ("session.create", "session.prompt", "permission.reply")[i % 3],
            principal=("tok_alice", "tok_bob")[i % 2], session=("ses_a", "ses_b")[i % 4 // 2],
            target=f"t{i}", outcome="refused" if i == 5 else "ok", status=200,
            request_id=f"req{i}"))
    return ids


async def test_entries_come_newest_first_with_their_whole_shape(redis: Redis) -> None:
    log = _log(redis)
    ids = await _fill(log)
    page = await log.page(AuditQuery())
    assert [e["id"] for e in page.entries] == ids[::-1] and page.next is None
    newest = page.entries[0]
    assert set(newest) == {"id", "time", "principal", "team", "action", "target", "session",
                           "request_id", "outcome", "status", "detail"}
    assert newest["team"] is None and newest["request_id"] == "req11"
    assert newest["time"].endswith("Z")
    assert page.entries[6]["outcome"] == "refused"


async def test_filters_by_principal_action_family_and_session(redis: Redis) -> None:
    log = _log(redis)
    await _fill(log)
    alice = await log.page(AuditQuery(principal="tok_alice"))
    assert [e["target"] for e in alice.entries] == ["t10", "t8", "t6", "t4", "t2", "t0"]
    prompts = await log.page(AuditQuery(action="session.prompt"))
    assert [e["target"] for e in prompts.entries] == ["t10", "t7", "t4", "t1"]
    family = await log.page(AuditQuery(action="session."))
    assert {e["action"] for e in family.entries} == {"session.create", "session.prompt"}
    assert len(family.entries) == 8
    assert (await log.page(AuditQuery(action="session"))).entries == []  # no partial names
    both = await log.page(AuditQuery(session="ses_b", principal="tok_bob"))
    assert [e["target"] for e in both.entries] == ["t11", "t7", "t3"]


async def test_pages_follow_the_cursor_without_gaps_or_repeats(redis: Redis) -> None:
    log = _log(redis)
    ids = await _fill(log)
    seen: list[str] = []
    query = AuditQuery(principal="tok_bob", limit=2)
    pages = 0
    while True:
        page = await log.page(query)
        pages += 1
        seen.extend(e["id"] for e in page.entries)
        if page.next is None:
            break
        query = AuditQuery(principal="tok_bob", limit=2, after=page.next)
    assert seen == ids[1::2][::-1]
    assert pages == 4  # three full pages, then an empty last one


async def test_since_and_until_bound_by_time(redis: Redis) -> None:
    log = _log(redis)
    now = int(datetime.now(UTC).timestamp() * 1000)
    for i, ms in enumerate((now - 3 * HOUR_MS, now - 2 * HOUR_MS, now - HOUR_MS)):
        await redis.xadd(log.keys.audit, {"e": json.dumps({"action": "session.abort",
                                                           "target": f"t{i}"})},
                         id=f"{ms}-0")
    window = await log.page(AuditQuery(since_ms=now - 2 * HOUR_MS - 1, until_ms=now - HOUR_MS - 1))
    assert [e["target"] for e in window.entries] == ["t1"]
    # A cursor past `until` still stops at `until`.
    later = await log.page(AuditQuery(until_ms=now - 2 * HOUR_MS, after=f"{now}-0"))
    assert [e["target"] for e in later.entries] == ["t1", "t0"]


async def test_a_page_scans_a_bounded_number_of_entries(redis: Redis,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "_SCAN_LIMIT", 4)
    monkeypatch.setattr(audit, "_BATCH", 2)
    log = _log(redis)
    ids = await _fill(log)
    page = await log.page(AuditQuery(action="no.such.action"))
    assert page.entries == [] and page.next == ids[-4]  # looked at four: go on from there
    rest = await log.page(AuditQuery(principal="tok_alice", after=page.next))
    assert [e["id"] for e in rest.entries] == [ids[6], ids[4]] and rest.next == ids[4]


async def test_entries_without_a_principal_are_kept_only_up_to_a_rate(
        redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_764_130_000.0]
    monkeypatch.setattr(audit, "time", SimpleNamespace(time=lambda: clock[0]))
    log = AuditLog(redis, Keys(f"audit-{uuid.uuid4().hex[:8]}:"), 1000, anonymous_per_minute=2)

    async def refused_login() -> bool:
        return await log.record("auth.login", principal=None, outcome="refused",
                                status=401) is not None

    written = [await refused_login() for _ in range(4)]
    assert written == [True, True, False, False]
    clock[0] += 60  # the next minute
    assert await refused_login()
    written.append(True)
    assert await log.record("auth.login", principal="tok_alice") is not None
    page = await log.page(AuditQuery())
    assert page.entries[0]["principal"] == "tok_alice"
    assert len(page.entries) == 1 + sum(written)


async def test_retention_trims_the_audit_log_by_age(redis: Redis) -> None:
    keys = Keys(f"audit-{uuid.uuid4().hex[:8]}:")
    seconds, micros = await redis.time()
    now = int(seconds) * 1000 + int(micros) // 1000
    for i, ms in enumerate((now - 30 * HOUR_MS, now - 25 * HOUR_MS, now - HOUR_MS)):
        await redis.xadd(keys.audit, {"e": "{}"}, id=f"{ms}-{i}")
    kept_all = Retention(redis, keys, StateStore(redis, keys), 0, 0)  # audit age 0: never
    assert (await kept_all.prune()).trimmed_audit == 0
    retention = Retention(redis, keys, StateStore(redis, keys), 0, 0,
                          audit_max_age_seconds=24 * 3600)
    assert (await retention.prune(dry_run=True)).trimmed_audit == 0
    report = await retention.prune()
    assert report.trimmed_audit == 2 and report.as_dict()["trimmed_audit"] == 2
    assert [e[0] for e in await redis.xrange(keys.audit)] == [f"{now - HOUR_MS}-2".encode()]


def test_times_parse_as_durations_iso_or_epoch_ms() -> None:
    now = 1_764_130_000.0
    assert audit.parse_when("90s", now) == int((now - 90) * 1000)
    assert audit.parse_when("1h", now) == int((now - 3600) * 1000)
    assert audit.parse_when("2w", now) == int((now - 14 * 86400) * 1000)
    assert audit.parse_when("2026-11-26T04:00:00Z") == 1_795_665_600_000
    assert audit.parse_when("2026-11-26T05:00:00+01:00") == 1_795_665_600_000
    assert audit.parse_when("2026-11-26T04:00:00") == 1_795_665_600_000  # UTC when unsaid
    assert audit.parse_when("1795665600000") == 1_795_665_600_000
    for bad in ("yesterday", "1y", "-1h", ""):
        with pytest.raises(InvalidInput):
            audit.parse_when(bad, now)
    with pytest.raises(InvalidInput):
        audit.check_cursor("12-3; DROP")
    with pytest.raises(ValueError):
        audit.audited("session.explode")


def test_every_state_changing_route_declares_an_action() -> None:
    """A new POST/PUT/PATCH/DELETE route is audited unless it changes nothing worth keeping."""
    spec = create_app(relay_settings("redis://127.0.0.1:1/0")).openapi()
    declared: dict[str, str] = {}
    undeclared = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in ("post", "put", "patch", "delete"):
                continue
            action = operation.get(audit.EXTENSION)
            if action is None:
                undeclared.append(path)
            else:
                declared[f"{method} {path}"] = action
    assert undeclared == ["/api/terminals/{pty_id}/size"]  # a resize changes nothing kept
    # Every action is declared by a route, or recorded by the CLI.
    by_cli = {"token.create", "token.revoke", "team.create", "team.delete",
              "team.upstream.set", "team.root.set"}
    assert audit.ACTIONS - set(declared.values()) - by_cli == set()


async def test_the_app_records_actions_and_only_admins_read_them(
        redis_server: EmbeddedRedis, fake: FakeOpencode) -> None:
    settings = relay_settings(redis_server.url, auth=True)
    redis = Redis.from_url(redis_server.url)
    tokens = TokenStore(redis, Keys(settings.key_prefix))
    alice_info, alice = await tokens.create("alice")
    _, root = await tokens.create("root", admin=True)
    async with relay_client(settings, fake) as api:
        me = {"Authorization": f"Bearer {alice}"}
        admin = {"Authorization": f"Bearer {root}"}
        created = await api.post("/api/sessions", json={"title": "t"},
                                 headers={**me, "X-Request-ID": "my-request-1"})
        assert created.headers["x-request-id"] == "my-request-1"
        sid = created.json()["id"]
        sent = await api.post(f"/api/sessions/{sid}/prompt", json={"text": "hush-hush words"},
                              headers=me)
        assert sent.status_code == 202
        missing = await api.post("/api/sessions/ses_nothing_here/abort", headers=me)
        assert missing.status_code == 404
        refused_login = await api.post("/api/login", json={"token": "ocr_wrong-guess-xyz"})
        assert refused_login.status_code == 401

        assert (await api.get("/api/audit", headers=me)).status_code == 403
        bad = await api.get("/api/audit", params={"since": "last week"}, headers=admin)
        assert bad.status_code == 400 and "since" in bad.json()["error"]["message"]
        assert (await api.get("/api/audit", params={"after": "x"}, headers=me)).status_code == 403
        page = await api.get("/api/audit", params={"since": "1h"}, headers=admin)
        assert page.status_code == 200, page.text
        entries = page.json()["entries"]
        assert [(e["action"], e["outcome"], e["status"]) for e in entries] == [
            ("auth.login", "refused", 401), ("session.abort", "refused", 404),
            ("session.prompt", "ok", 202), ("session.create", "ok", 200)]
        login, abort, prompt, create = entries
        assert login["principal"] is None
        assert abort["principal"] == alice_info.id and abort["target"] == "ses_nothing_here"
        assert prompt["detail"] == {"chars": len("hush-hush words"), "files": 0}
        assert prompt["session"] == sid and prompt["request_id"] == sent.headers["x-request-id"]
        assert create["target"] == sid and create["session"] == sid
        assert create["request_id"] == "my-request-1"
        raw = str(await redis.xrange(Keys(settings.key_prefix).audit))
        for secret in (alice, root, "ocr_wrong-guess-xyz", "hush-hush"):
            assert secret not in raw
        only = await api.get("/api/audit", params={"action": "session.", "limit": 1},
                             headers=admin)
        assert [e["action"] for e in only.json()["entries"]] == ["session.abort"]
        older = await api.get("/api/audit", params={"action": "session.", "limit": 5,
                                                    "after": only.json()["next"]},
                              headers=admin)
        assert [e["action"] for e in older.json()["entries"]] == ["session.prompt",
                                                                  "session.create"]
        assert older.json()["next"] is None
        fake.broken = True  # opencode answers 500: the relay's 502 is a failure, recorded
        failed = await api.patch(f"/api/sessions/{sid}", json={"title": "x"}, headers=me)
        assert failed.status_code == 502
        fake.broken = False
        last = (await api.get("/api/audit", params={"limit": 1}, headers=admin)).json()
        assert [(e["action"], e["outcome"], e["status"], e["request_id"])
                for e in last["entries"]] == [("session.rename", "failed", 502,
                                               failed.headers["x-request-id"])]
    await redis.aclose()


async def test_an_unexpected_error_is_recorded_as_failed(
        redis_server: EmbeddedRedis, fake: FakeOpencode, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = relay_settings(redis_server.url)  # auth off: the caller here is "local"
    async with relay_client(settings, fake) as api:
        sid = (await api.post("/api/sessions", json={"title": "t"})).json()["id"]

        def broken(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(StateStore, "put_session", broken)
        with pytest.raises(RuntimeError):  # the in-process transport re-raises after the 500
            await api.patch(f"/api/sessions/{sid}", json={"title": "x"},
                            headers={"X-Request-ID": "the-buggy-one"})
        monkeypatch.undo()
        entries = (await api.get("/api/audit")).json()["entries"]
    assert [(e["action"], e["principal"], e["outcome"], e["status"], e["request_id"])
            for e in entries] == [("session.rename", "local", "failed", 500, "the-buggy-one"),
                                  ("session.create", "local", "ok", 200, entries[1]["request_id"])]


async def test_the_audit_command_prints_oldest_first_and_refuses_a_bad_time(
        redis: Redis, redis_server: EmbeddedRedis) -> None:
    prefix = f"audit-{uuid.uuid4().hex[:8]}:"
    log = AuditLog(redis, Keys(prefix), 1000)
    await log.record("session.create", principal="tok_alice", target="ses_1", session="ses_1",
                     request_id="r1", status=200)
    await log.record("token.revoke", principal="cli", target="tok_bob")
    env = {**os.environ, "REDIS_URL": redis_server.url, "RELAY_KEY_PREFIX": prefix}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "opencode_relay.cli", "audit", *args],
                              env=env, capture_output=True, text=True, timeout=60)

    listed = run("--since", "1h")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [row[1:] for row in rows] == [
        ["tok_alice", "session.create", "ses_1", "ok", "200", "r1"],
        ["cli", "token.revoke", "tok_bob", "ok", "-", "-"]]
    only = run("--since", "1h", "--principal", "cli", "--json")
    assert [json.loads(line)["action"] for line in only.stdout.splitlines()] == ["token.revoke"]
    bad = run("--since", "a while")
    assert bad.returncode == 2 and "--since must be" in bad.stderr
