"""Changes on disk: the "files changed" notice the ingestor routes to working sessions, and the
changed files read from a session's tool parts (changes.py) where there is no git repository."""

from __future__ import annotations

import json

import pytest
from redis.asyncio import Redis

from opencode_relay.changes import changes_from_parts
from opencode_relay.ingest.ingestor import Ingestor
from opencode_relay.launch.embedded import EmbeddedRedis
from opencode_relay.store.keys import Keys
from opencode_relay.store.log import EventId, EventLog
from opencode_relay.store.state import StateStore
from tests.support.fake_opencode import FakeOpencode
from tests.test_api_inprocess import relay_client, relay_settings
from tests.test_unit_core import ev, session_info

pytestmark = pytest.mark.unit


def _in(directory: str, event: dict) -> dict:
    return {**event, "directory": directory}


async def _session_types(log: EventLog, keys: Keys, sid: str) -> list[tuple[str, dict]]:
    entries = [e async for e in log.read_entries_after(keys.session_events(sid), EventId(0, 0))]
    return [(p["type"], p["properties"]) for p in (json.loads(e.data) for e in entries)]


async def test_a_busy_session_hears_of_file_changes_in_its_directory_once_per_batch(
        redis: Redis, keys: Keys) -> None:
    store, log = StateStore(redis, keys), EventLog(redis, keys, 10_000, 10_000)
    ingestor = Ingestor(redis, None, store, log)  # type: ignore[arg-type]
    busy, idle, elsewhere = "ses_files_busy", "ses_files_idle", "ses_files_other"
    await ingestor.apply([
        _in("/p/a", ev("session.created", info=session_info(busy))),
        _in("/p/a", ev("session.created", info=session_info(idle))),
        _in("/p/b", ev("session.created", info=session_info(elsewhere))),
        _in("/p/a", ev("session.status", sessionID=busy, status={"type": "busy"})),
        _in("/p/b", ev("session.status", sessionID=elsewhere, status={"type": "busy"})),
    ])
    await ingestor.apply([
        _in("/p/a", ev("file.edited", file="/p/a/new.txt")),
        _in("/p/a", ev("file.watcher.updated", file="/p/a/new.txt", event="add")),
        _in("/p/a", ev("file.watcher.updated", file="/p/a/old.txt", event="change")),
    ])
    notices = [(t, p) for t, p in await _session_types(log, keys, busy)
               if t.startswith("relay.") or t.startswith("file.")]
    assert notices == [("relay.files.changed", {"sessionID": busy,
                                                "files": ["/p/a/new.txt", "/p/a/old.txt"],
                                                "more": 0})]
    for quiet in (idle, elsewhere):
        assert not [t for t, _ in await _session_types(log, keys, quiet)
                    if t.startswith(("relay.files", "file."))]
    # The file events themselves stay on the global log.
    logged = [json.loads(e.data)["type"]
              async for e in log.read_entries_after(keys.events, EventId(0, 0))]
    assert logged.count("file.watcher.updated") == 2 and "file.edited" in logged

    # Idle again: no more notices; a file event in the batch that makes it idle still counts.
    await ingestor.apply([_in("/p/a", ev("file.edited", file="/p/a/last.txt")),
                          _in("/p/a", ev("session.idle", sessionID=busy)),
                          _in("/p/a", ev("file.edited", file="/p/a/after.txt"))])
    await ingestor.apply([_in("/p/a", ev("file.edited", file="/p/a/later.txt"))])
    files = [p["files"] for t, p in await _session_types(log, keys, busy)
             if t == "relay.files.changed"]
    assert files == [["/p/a/new.txt", "/p/a/old.txt"], ["/p/a/last.txt"]]

    # After a reconnect, opencode's statuses say who is busy.
    ingestor.file_signal.reset({"/p/a": [idle]})
    await ingestor.apply([_in("/p/a", ev("file.edited", file="/p/a/x.txt"))])
    assert [p["files"] for t, p in await _session_types(log, keys, idle)
            if t == "relay.files.changed"] == [["/p/a/x.txt"]]


def _tool(tool: str, status: str = "completed", **state: object) -> dict:
    return {"id": f"prt_{tool}", "type": "tool", "tool": tool,
            "state": {"status": status, **state}}


def test_tool_parts_give_the_files_they_wrote_edited_and_patched() -> None:
    edit_patch = ("Index: /d/a.txt\n===\n--- /d/a.txt\n+++ /d/a.txt\n@@ -1,2 +1,2 @@\n"
                  "-one\n+ONE\n two\n")
    parts = [
        {"id": "prt_text", "type": "text", "text": "hello"},
        _tool("write", input={"filePath": "/d/a.txt", "content": "one\ntwo\n"},
              metadata={"filepath": "/d/a.txt", "exists": False}),
        _tool("edit", input={"filePath": "/d/a.txt", "oldString": "one", "newString": "ONE"},
              metadata={"diff": edit_patch, "filediff": {"file": "/d/a.txt", "patch": edit_patch,
                                                         "additions": 1, "deletions": 1}}),
        _tool("edit", status="error", input={"filePath": "/d/failed.txt"}),
        _tool("read", input={"filePath": "/d/read.txt"}),
        _tool("write", input={"filePath": "/d/old.txt", "content": "x\n"},
              metadata={"exists": True}),
        _tool("write", input={"filePath": "/elsewhere/b.txt", "content": "b\n"},
              metadata={"exists": False}),
        _tool("apply_patch", input={"patchText": "…"}, metadata={"files": [
            {"filePath": "/d/p.txt", "relativePath": "p.txt", "type": "update",
             "patch": "@@ -1 +1 @@\n-a\n+b\n", "additions": 1, "deletions": 1},
            {"filePath": "/d/gone.txt", "relativePath": "gone.txt", "type": "delete",
             "patch": "@@ -1 +0,0 @@\n-x\n", "additions": 0, "deletions": 1},
            {"filePath": "/d/from.txt", "movePath": "/d/to.txt", "relativePath": "to.txt",
             "type": "move", "patch": "@@ -1 +1 @@\n-m\n+n\n", "additions": 1,
             "deletions": 1}]}),
    ]
    found = {f.path: f for f in changes_from_parts(parts, "/d")}
    assert list(found) == ["a.txt", "old.txt", "/elsewhere/b.txt", "p.txt", "gone.txt",
                           "to.txt", "from.txt"]
    assert (found["to.txt"].status, found["from.txt"].status) == ("added", "deleted")
    a = found["a.txt"].with_patch()
    # Written new, then edited: still added; both calls' diffs, in order.
    assert (a["status"], a["additions"], a["deletions"]) == ("added", 3, 1)
    assert a["patch"].index("+one") < a["patch"].index("-one\n+ONE")
    assert "@@ -0,0 +1,2 @@" in a["patch"]
    old = found["old.txt"].with_patch()
    assert old["status"] == "modified" and "previous content was not recorded" in old["patch"]
    assert found["/elsewhere/b.txt"].status == "added"
    assert found["p.txt"].summary() == {"path": "p.txt", "status": "modified",
                                        "additions": 1, "deletions": 1}
    assert found["gone.txt"].status == "deleted"
    assert changes_from_parts([], "/d") == []


async def test_opencode_down_or_failing_while_reading_changes_is_a_502_or_503(
        redis_server: EmbeddedRedis) -> None:
    fake = FakeOpencode()
    async with relay_client(relay_settings(redis_server.url), fake) as api:
        sid = (await api.post("/api/sessions", json={})).json()["id"]
        fake.down = True
        for path in (f"/api/sessions/{sid}/changes", f"/api/sessions/{sid}/changes/diff?path=a"):
            down = await api.get(path)
            assert down.status_code == 503, down.text
            assert down.json()["error"]["code"] == "opencode_unavailable"
        fake.down, fake.broken = False, True
        broken = await api.get(f"/api/sessions/{sid}/changes")
        assert broken.status_code == 502
        assert broken.json()["error"]["message"] == "opencode answered 500: it broke"
