"""Unit tests of the core pieces against a real Redis (own server), with events faked."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from redis.asyncio import Redis

from opencode_relay.errors import InvalidEventId
from opencode_relay.fanout.hub import Hub, LiveEvent, Subscriber
from opencode_relay.fanout.stream import event_stream
from opencode_relay.ingest.ingestor import Backoff, Ingestor
from opencode_relay.ingest.routing import session_id_of
from opencode_relay.launch.embedded import EmbeddedRedis
from opencode_relay.store.keys import Keys
from opencode_relay.store.log import EventId, EventLog, LogEntry
from opencode_relay.store.staging import Staging
from opencode_relay.store.state import MessageRecord, StateStore
from opencode_relay.upstream.client import OpencodeClient, UpstreamError, UpstreamUnavailable

pytestmark = pytest.mark.unit

SID = "ses_unit0001"


def ev(kind: str, **props: object) -> dict:
    return {"directory": "/tmp/x", "payload": {"id": f"evt_{uuid.uuid4().hex}", "type": kind,
                                               "properties": props}}


def session_info(sid: str = SID, parent: str | None = None, created: int = 1000) -> dict:
    info = {"id": sid, "title": "t", "directory": "/tmp/x",
            "time": {"created": created, "updated": created}}
    if parent:
        info["parentID"] = parent
    return info


async def transcript(store: StateStore, sid: str = SID) -> list[MessageRecord]:
    return (await store.read_transcript(sid))[1]


async def logged_entries(log: EventLog, stream: str) -> list[LogEntry]:
    return [entry async for entry in log.read_entries_after(stream, EventId(0, 0))]


def text_part(pid: str, mid: str = "msg_a", text: str = "", sid: str = SID) -> dict:
    return {"id": pid, "messageID": mid, "sessionID": sid, "type": "text", "text": text}


@pytest.fixture()
def parts(redis: Redis, keys: Keys) -> tuple[StateStore, EventLog, Ingestor]:
    store = StateStore(redis, keys)
    log = EventLog(redis, keys, 10_000, 10_000)
    return store, log, Ingestor(redis, upstream=None, store=store, log=log)  # type: ignore[arg-type]


def test_every_session_key_shares_one_hash_tag() -> None:
    keys = Keys("p:")
    tagged = [*keys.fixed_session_keys(SID), keys.message(SID, "msg_1"),
              keys.message_parts(SID, "msg_1"), keys.part(SID, "prt_1")]
    for key in tagged:
        assert key.startswith("p:")
        assert key[key.index("{") + 1:key.index("}")] == SID
    # The removal and transcript scripts derive a message's part index from its key.
    assert keys.message_parts(SID, "msg_1") == keys.message(SID, "msg_1") + ":parts"


def test_event_ids_parse_and_order() -> None:
    assert EventId.parse("5-2") < EventId.parse("5-10") < EventId.parse("6-0")
    assert str(EventId.parse(b"7-3")) == "7-3"
    # "0" (or any bare millisecond time) is a valid resume point: "from there on".
    assert EventId.parse("0") == EventId(0, 0)
    assert EventId.parse("1700000000000") == EventId(1700000000000, 0)
    for bad in ["", "abc", "1-", "-1", "1-2-3", "1.5-2", "-", "0x1", "\u0663"]:
        with pytest.raises(InvalidEventId):
            EventId.parse(bad)


def test_backoff_is_capped_and_jittered() -> None:
    backoff = Backoff(0.1, 2.0)
    delays = [backoff.next_delay() for _ in range(20)]
    assert all(0 < d <= 2.0 for d in delays)
    assert max(delays[-5:]) > 0.9  # grew towards the cap
    backoff.reset()
    assert backoff.next_delay() <= 0.1


def test_routing_finds_the_session_and_skips_noise() -> None:
    assert session_id_of(ev("message.part.delta", sessionID=SID)["payload"]) == SID
    assert session_id_of(ev("session.updated", info=session_info())["payload"]) == SID
    assert session_id_of(ev("message.updated", info={"id": "msg_1", "role": "user",
                                                     "sessionID": SID})["payload"]) == SID
    assert session_id_of(ev("plugin.added", id="x", sessionID=SID)["payload"]) is None
    assert session_id_of(ev("project.updated", id="global")["payload"]) is None


def upstream_answering(handler) -> OpencodeClient:
    """An opencode client whose event stream is answered by `handler` (no network)."""
    return OpencodeClient("http://opencode.test", transport=httpx.MockTransport(handler))


async def test_upstream_events_are_decoded_and_what_is_not_json_is_skipped(caplog) -> None:
    body = (b': a comment\n\nid: 1\ndata: {"a":\r\ndata: 1}\n\ndata: not json\n\n'
            b'id: 2\n\nevent: x\ndata: {"b": 2}\n\n')
    client = upstream_answering(lambda request: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, content=body))
    async with client.global_events() as events:
        assert [e async for batch in events for e in batch] == [{"a": 1}, {"b": 2}]  # joined
    assert "not json" in caplog.text
    await client.aclose()


async def test_upstream_event_stream_failures_are_told_apart() -> None:
    async def never_answers(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        raise AssertionError("unreachable")

    def refuses(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def fails(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, json={"data": {"message": "opencode broke"}})

    def not_a_stream(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"an": "object"})

    for handler, open_timeout in [(never_answers, 0.2), (refuses, 10.0)]:
        client = upstream_answering(handler)
        with pytest.raises(UpstreamUnavailable, match="unreachable"):
            async with client.global_events(open_timeout=open_timeout):
                pass
        await client.aclose()
    client = upstream_answering(fails)
    with pytest.raises(UpstreamError, match="opencode broke") as failed:
        async with client.global_events():
            pass
    assert failed.value.status == 500
    await client.aclose()
    client = upstream_answering(not_a_stream)
    with pytest.raises(UpstreamUnavailable, match="event stream broke"):
        async with client.global_events() as events:
            [batch async for batch in events]
    await client.aclose()


async def test_deltas_build_the_stored_text_and_removals_take_data_away(parts) -> None:
    store, log, ingestor = parts
    message = {"id": "msg_a", "sessionID": SID, "role": "assistant", "time": {"created": 1}}
    await ingestor.apply([
        ev("session.created", sessionID=SID, info=session_info()),
        ev("message.updated", sessionID=SID, info=message),
        ev("message.part.updated", sessionID=SID, part=text_part("prt_2")),
        ev("message.part.updated", sessionID=SID, part=text_part("prt_1", text="first")),
    ])
    await ingestor.apply([ev("message.part.delta", sessionID=SID, messageID="msg_a",
                             partID="prt_2", field="text", delta=d) for d in ["Hel", "lo ", "!"]])
    records = await transcript(store)
    assert [json.loads(p)["id"] for p in records[0].parts] == ["prt_1", "prt_2"]  # by id
    assert json.loads(records[0].parts[1])["text"] == "Hello !"
    # A delta for a part the relay has not cached is applied from Redis.
    ingestor._parts.clear()
    await ingestor.apply([ev("message.part.delta", sessionID=SID, messageID="msg_a",
                             partID="prt_2", field="text", delta="?")])
    assert (await store.get_part(SID, "prt_2"))["text"] == "Hello !?"
    await ingestor.apply([ev("message.part.removed", sessionID=SID, messageID="msg_a",
                             partID="prt_1")])
    assert [json.loads(p)["id"] for p in await store.read_parts(SID, "msg_a")] == ["prt_2"]
    await ingestor.apply([ev("message.removed", sessionID=SID, messageID="msg_a")])
    assert await transcript(store) == []
    assert await store.session_of_message("msg_a") is None
    assert await store.get_part(SID, "prt_2") is None
    await ingestor.apply([ev("session.deleted", sessionID=SID, info=session_info())])
    assert await store.get_session(SID) is None
    assert await store.list_session_ids() == []
    leftovers = [k async for k in store.redis.scan_iter(f"{store.keys.prefix}*")]
    # Only the logs remain: the global one and the deleted session's, expiring.
    assert sorted(k.decode() for k in leftovers) == sorted(
        [store.keys.events, store.keys.session_events(SID)])
    assert 0 < await store.redis.ttl(store.keys.session_events(SID)) <= 3600


async def test_unknown_and_malformed_events_are_logged_not_dropped(parts) -> None:
    store, log, ingestor = parts
    await ingestor.apply([ev("brand.new.thing", sessionID=SID, anything=1),
                          ev("message.updated", sessionID=SID, info={"no": "id"}),
                          ev("server.heartbeat")])
    logged = [json.loads(e.data)["type"] for e in await logged_entries(log, store.keys.events)]
    assert logged == ["brand.new.thing", "message.updated"]
    session_logged = [json.loads(e.data)["type"]
                      for e in await logged_entries(log, store.keys.session_events(SID))]
    assert session_logged == ["brand.new.thing", "message.updated"]


async def test_child_events_reach_the_parent_stream_with_the_same_id(parts) -> None:
    store, log, ingestor = parts
    child = "ses_unit0002"
    await ingestor.apply([ev("session.created", sessionID=SID, info=session_info()),
                          ev("session.created", sessionID=child,
                             info=session_info(child, parent=SID)),
                          ev("permission.asked", id="per_1", sessionID=child, permission="bash",
                             patterns=[], metadata={}, always=[])])
    own = [e.id for e in await logged_entries(log, store.keys.session_events(child))]
    parent = [e.id for e in await logged_entries(log, store.keys.session_events(SID))]
    assert set(own) <= set(parent)
    assert await store.child_ids(SID) == [child]
    assert [r["id"] for r in await store.pending_requests([SID, child])] == ["per_1"]
    await ingestor.apply([ev("permission.replied", sessionID=child, requestID="per_1",
                             reply="once")])
    assert await store.pending_requests([SID, child]) == []


class CountingRedis(Redis):
    """Counts round trips: single commands and pipeline executions."""

    round_trips = 0

    async def execute_command(self, *args, **options):
        CountingRedis.round_trips += 1
        return await super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint=None):
        pipe = super().pipeline(transaction, shard_hint)
        original = pipe.execute

        async def execute(raise_on_error: bool = True):
            CountingRedis.round_trips += 1
            return await original(raise_on_error)

        pipe.execute = execute  # type: ignore[method-assign]
        return pipe


async def test_a_big_session_reads_in_a_handful_of_round_trips(redis_server: EmbeddedRedis,
                                                               keys: Keys) -> None:
    client = CountingRedis.from_url(redis_server.url)
    store = StateStore(client, keys)
    async with Staging(client) as stage:
        for m in range(1000):
            mid = f"msg_{m:05d}"
            store.put_message(stage, {"id": mid, "sessionID": SID, "role": "user"})
            for p in range(10):
                store.put_part(stage.on(SID),
                               text_part(f"prt_{m:05d}_{p:02d}", mid, f"text {m} {p}"))
        await stage.commit()
    # The transcript with its log position: one atomic round trip.
    await store.read_transcript(SID)  # the first call also loads the script into Redis
    CountingRedis.round_trips = 0
    cursor, records = await store.read_transcript(SID)
    assert CountingRedis.round_trips == 1
    assert cursor == b"0-0"
    assert len(records) == 1000 and all(len(r.parts) == 10 for r in records)
    assert json.loads(records[999].parts[9])["text"] == "text 999 9"
    await client.aclose()


async def test_slow_client_is_dropped_without_delaying_others(redis: Redis, keys: Keys) -> None:
    log = EventLog(redis, keys, 10_000, 10_000)
    hub = Hub(redis, keys, log, queue_size=5)
    slow = hub.subscribe(None)
    fast_stream = event_stream(hub, log, keys.events, None, None, heartbeat_seconds=5)
    assert (await fast_stream.__anext__()).startswith(b"retry:")
    assert await fast_stream.__anext__() == b": connected\n\n"
    received = []
    for n in range(1, 21):
        hub.dispatch(EventId(n, 0), b'{"n":%d}' % n, [])
        received.append(await asyncio.wait_for(fast_stream.__anext__(), 1))
    assert [r.split(b"\n")[0] for r in received] == [f"id: {n}-0".encode() for n in range(1, 21)]
    assert slow.overflowed.is_set() and slow.queued == 5  # held no more than its bound
    await fast_stream.aclose()
    assert hub.client_count == 1  # the closed stream unsubscribed; the slow one is still counted


class FakeOpencode:
    """The REST calls reconcile makes, answered from memory."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict] = {}
        self.transcripts: dict[str, list[dict]] = {}

    def add(self, sid: str, updated: int, text: str) -> None:
        info = session_info(sid, created=1000)
        info["time"]["updated"] = updated
        self.sessions[sid] = info
        message = {"id": f"msg_{sid}", "sessionID": sid, "role": "user", "time": {"created": 1}}
        self.transcripts[sid] = [{"info": message,
                                  "parts": [text_part(f"prt_{sid}", message["id"], text, sid)]}]

    async def list_all_sessions(self) -> list[dict]:
        return list(self.sessions.values())

    async def statuses(self, directory=None) -> dict:
        return {}

    async def pending_permissions(self, directory=None) -> list:
        return []

    async def pending_questions(self, directory=None) -> list:
        return []

    async def messages(self, sid, directory=None) -> list[dict]:
        return self.transcripts[sid]

    async def todos(self, sid, directory=None) -> list:
        return []

    async def diff(self, sid, directory=None) -> list:
        return []

    async def get_session(self, sid, directory=None) -> dict:
        from opencode_relay.upstream.client import UpstreamError
        if sid not in self.sessions:
            raise UpstreamError(404, "not found")
        return self.sessions[sid]


async def test_reconcile_imports_updates_removes_and_respects_pruning(redis: Redis,
                                                                      keys: Keys) -> None:
    from opencode_relay.retention import Retention

    fake = FakeOpencode()
    store = StateStore(redis, keys)
    ingestor = Ingestor(redis, fake, store, EventLog(redis, keys, 10_000, 10_000))  # type: ignore[arg-type]
    fake.add("ses_a", 2000, "first")
    fake.add("ses_b", 2000, "second")
    await ingestor.reconcile()
    assert sorted(await store.list_session_ids()) == ["ses_a", "ses_b"]
    assert json.loads((await transcript(store, "ses_a"))[0].parts[0])["text"] == "first"

    # What changed while away is re-read; what was deleted meanwhile goes.
    fake.add("ses_a", 3000, "first, edited")
    del fake.sessions["ses_b"]
    await ingestor.reconcile()
    assert await store.list_session_ids() == ["ses_a"]
    assert json.loads((await transcript(store, "ses_a"))[0].parts[0])["text"] == "first, edited"

    # Pruned for idleness: a reconnect does not bring it back until it changes again.
    retention = Retention(redis, keys, store, idle_seconds=1, log_max_age_seconds=0)
    await asyncio.sleep(1.2)  # idle: no change and no logged event for longer than a second
    assert (await retention.prune()).removed == ["ses_a"]
    await ingestor.reconcile()
    assert await store.list_session_ids() == []
    fake.add("ses_a", 4000, "woken up")
    await ingestor.reconcile()
    assert await store.list_session_ids() == ["ses_a"]
    assert json.loads((await transcript(store, "ses_a"))[0].parts[0])["text"] == "woken up"
    assert await redis.zscore(keys.pruned, "ses_a") is None


async def test_a_malformed_part_is_logged_and_does_not_poison_later_batches(parts) -> None:
    store, log, ingestor = parts
    await ingestor.apply([ev("message.part.updated", sessionID=SID,
                             part={"id": "prt_bad", "type": "text", "text": "no ids"})])
    await ingestor.apply([ev("session.updated", sessionID=SID, info=session_info())])
    logged = [json.loads(e.data)["type"] for e in await logged_entries(log, store.keys.events)]
    assert logged == ["message.part.updated", "session.updated"]
    assert await store.get_session(SID) is not None
    assert await store.get_part(SID, "prt_bad") is None


async def test_a_resume_point_trimmed_away_gets_a_reset_with_an_id_then_live(redis: Redis,
                                                                            keys: Keys) -> None:
    log = EventLog(redis, keys, max_events=10, session_max_events=10)
    async with Staging(redis) as stage:
        await log.commit(stage, [LogEntry(None, b'{"n":%d}' % n, ()) for n in range(1000)],
                         "default")
    first = EventId.parse((await redis.xrange(keys.events, count=1))[0][0])
    assert await log.has_gap_after(keys.events, EventId(0, 1))  # trimmed away
    assert not await log.has_gap_after(keys.events, first)  # everything after it is kept
    hub = Hub(redis, keys, log)
    newest = await log.last_id()
    stream = event_stream(hub, log, keys.events, None, EventId(0, 1), heartbeat_seconds=5)
    assert (await stream.__anext__()).startswith(b"retry:")
    reset = await stream.__anext__()
    assert reset.startswith(f"id: {newest}\n".encode()) and b'"relay.reset"' in reset
    hub.dispatch(EventId(newest.ms + 1, 0), b'{"n":"live"}', [])
    assert b'{"n":"live"}' in await asyncio.wait_for(stream.__anext__(), 1)
    await stream.aclose()


async def test_a_family_is_read_one_generation_per_round_trip(redis_server: EmbeddedRedis,
                                                              keys: Keys) -> None:
    client = CountingRedis.from_url(redis_server.url)
    store = StateStore(client, keys)
    tree = {"ses_r": ["ses_a", "ses_b"], "ses_a": ["ses_a1", "ses_a2"], "ses_b": ["ses_b1"],
            "ses_a1": ["ses_a1x"]}
    async with Staging(client) as stage:
        store.put_session(stage, session_info("ses_r"))
        for parent, children in tree.items():
            for child in children:
                store.put_session(stage, session_info(child, parent=parent))
        store.put_request(stage.on("ses_a1x"), "ses_a1x", {"id": "per_1", "sessionID": "ses_a1x"})
        await stage.commit()
    CountingRedis.round_trips = 0
    family = await store.family("ses_r")
    assert family == ["ses_r", "ses_b", "ses_b1", "ses_a", "ses_a2", "ses_a1", "ses_a1x"]
    assert CountingRedis.round_trips == 4  # r; a, b; a1, a2, b1; a1x (not one per session)
    assert await store.family("ses_a", limit=2) == ["ses_a", "ses_a2"]
    CountingRedis.round_trips = 0
    assert await store.pending_request(family, "per_1") == (
        "ses_a1x", {"id": "per_1", "sessionID": "ses_a1x"})
    assert CountingRedis.round_trips == 1
    assert await store.pending_request(family, "per_2") is None
    await client.aclose()


async def test_title_search_folds_case_and_looks_at_titles_only(redis: Redis, keys: Keys) -> None:
    store = StateStore(redis, keys)
    titles = {"ses_1": "Fix the Parser", "ses_2": "Straße bauen", "ses_3": 'say "Hi" \\ bye',
              "ses_4": "unrelated", "ses_5": "ПРИВЕТ мир", "ses_6": "parser, again"}
    async with Staging(redis) as stage:
        for sid, title in titles.items():
            info = session_info(sid)
            info.update(title=title, directory="/work/parser")  # the needle outside the title
            store.put_session(stage, info)
        await stage.commit()
    sids = list(titles)

    async def search(needle: str, limit: int = 10) -> list[str]:
        found = await store.sessions_titled(sids, needle, limit)
        assert all(json.loads(raw)["id"] == sid for sid, raw in found)
        return [sid for sid, _raw in found]

    assert await search("PARSER") == ["ses_1", "ses_6"]
    assert await search("parser", limit=1) == ["ses_1"]
    assert await search("STRASSE") == ["ses_2"]  # case folding, not just lowercasing
    assert await search('"hi" \\') == ["ses_3"]  # characters JSON escapes
    assert await search("привет") == ["ses_5"]
    assert await search("work") == []


def test_the_one_sse_encoder_writes_what_sse_readers_parse() -> None:
    from opencode_relay.fanout.sse import frame, notice

    assert frame(comment="heartbeat") == b": heartbeat\n\n"
    assert frame(retry_ms=2000) == b"retry: 2000\n\n"
    assert frame(b'{"a":1}\n{"b":2}', event_id=EventId(5, 1)) == \
        b'id: 5-1\ndata: {"a":1}\ndata: {"b":2}\n\n'
    assert json.loads(notice("relay.reset", reason="trimmed")) == \
        {"type": "relay.reset", "properties": {"reason": "trimmed"}}


def test_a_catalog_of_odd_shape_is_read_as_far_as_it_goes() -> None:
    from opencode_relay.session_service import read_catalog

    catalog = read_catalog(
        {"providers": [{"id": "p", "models": {"m": {"limit": {"context": 1000}}, "n": "odd"}},
                       "not a provider"]},
        [{"name": "build"}, "plan", {"mode": "primary"}])
    assert catalog.models == frozenset({"p/m", "p/n"})
    assert catalog.agents == frozenset({"build"})
    assert catalog.context == {"p/m": 1000}
    empty = read_catalog(["providers?"], {"agents": "?"})
    assert (empty.models, empty.agents, empty.context) == (frozenset(), frozenset(), {})


async def test_a_quiet_subscriber_is_woken_once_the_whole_quiet_time_has_passed() -> None:
    """One timer per subscriber, kept across waits: events in between push the quiet time on,
    the wait that stays quiet ends after its whole timeout, and closing leaves no timer."""
    sub = Subscriber(None)
    loop = asyncio.get_running_loop()
    loop.call_later(0.1, sub.put, [LiveEvent(EventId(1, 0), b"one")])
    started = loop.time()
    assert await sub.wait(0.3)  # the event, not the timer
    assert sub.take() == ([LiveEvent(EventId(1, 0), b"one")], False)
    # The timer set by the first wait fires at 0.3 s; this wait began at 0.1 s and lasts 0.3 s.
    waited_from = loop.time()
    assert not await sub.wait(0.3)
    assert loop.time() - waited_from >= 0.29 and loop.time() - started >= 0.39
    # A shorter wait than the timer pending from a longer one ends on time.
    long_wait = asyncio.ensure_future(sub.wait(30))
    await asyncio.sleep(0)
    sub.wake()
    await long_wait
    short_from = loop.time()
    assert not await sub.wait(0.1)
    assert loop.time() - short_from < 5
    quiet = asyncio.ensure_future(sub.wait(30))
    await asyncio.sleep(0)
    sub.close()
    assert sub._timer is None
    sub.wake()
    assert not await quiet
