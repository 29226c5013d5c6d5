"""Unit tests of search: terms, the index written at ingest, matching, paging, removal."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis

from opencode_relay import events as event_types
from opencode_relay.ingest.ingestor import Ingestor
from opencode_relay.launch.embedded import EmbeddedRedis
from opencode_relay.retention import Retention
from opencode_relay.search.index import SearchIndex
from opencode_relay.search.reindex import reindex
from opencode_relay.search.tokens import MAX_TERMS_PER_TEXT, parse_query, snippet, terms
from opencode_relay.store.keys import Keys
from opencode_relay.store.log import EventLog
from opencode_relay.store.staging import Staging
from opencode_relay.store.state import StateStore
from tests.support.fake_opencode import FakeOpencode
from tests.test_api_inprocess import relay_client, relay_settings, workspace
from tests.test_retention import HOUR_MS, _now_ms, _session
from tests.test_unit_core import ev, session_info, text_part

pytestmark = pytest.mark.unit

__all__ = ["workspace"]  # a fixture (the in-process relay's workspace root)


def test_terms_fold_case_split_on_punctuation_and_skip_odd_lengths() -> None:
    assert terms("Hello, WORLD! snake_case x Ünïcode hello " + "z" * 41) == [
        "hello", "world", "snake", "case", "ünïcode"]
    # Each term once, where it first appears in any spelling; at most MAX_TERMS_PER_TEXT.
    assert terms("Bb aa AA bB cc Straße STRASSE") == ["bb", "aa", "cc", "strasse"]
    many = terms(" ".join(f"Word{n} word{n}" for n in range(MAX_TERMS_PER_TEXT + 10)))
    assert many == [f"word{n}" for n in range(MAX_TERMS_PER_TEXT)]
    assert parse_query("Foo bar") == parse_query("foo BAR")
    assert parse_query("foo bar").prefix == "bar" and parse_query("foo bar").exact == ("foo",)
    assert parse_query("foo bar ").prefix is None
    assert parse_query("foo bar ").exact == ("foo", "bar")
    assert parse_query("!! a ").empty


def test_snippets_are_plain_text_with_ranges_of_the_matches() -> None:
    text = "x " * 200 + "the <b>Needle</b> is here, a needle again" + " y" * 200
    cut, ranges = snippet(text, parse_query("needle "))
    assert cut.startswith("…") and cut.endswith("…") and "<b>Needle</b>" in cut
    assert [cut[a:b] for a, b in ranges] == ["Needle", "needle"]
    short, found = snippet("needles and pins", parse_query("need"))
    assert short == "needles and pins" and found == [(0, 7)]


def _setup(redis: Redis, keys: Keys) -> tuple[StateStore, SearchIndex, Ingestor]:
    index = SearchIndex(redis, keys)
    store = StateStore(redis, keys, index)
    log = EventLog(redis, keys, 10_000, 10_000)
    return store, index, Ingestor(redis, upstream=None, store=store, log=log)  # type: ignore[arg-type]


async def _everyone(sids: list[str]) -> list[str]:
    return sids


async def test_text_parts_and_titles_are_indexed_at_their_update_not_their_deltas(
        redis: Redis, keys: Keys) -> None:
    store, index, ingestor = _setup(redis, keys)
    info = dict(session_info("ses_a1"), title="Fix the flaky Parser")
    await ingestor.apply([
        ev("session.updated", info=info),
        ev(event_types.PART_UPDATED, part=text_part("prt_1", "msg_1", "", "ses_a1")),
        ev(event_types.PART_DELTA, sessionID="ses_a1", messageID="msg_1", partID="prt_1",
           field="text", delta="zebra crossing"),
        ev(event_types.PART_UPDATED, part={**text_part("prt_2", "msg_1", "", "ses_a1"),
                                           "type": "reasoning", "text": "thinking giraffe"}),
    ])
    assert (await index.search(parse_query("zebra "), 10, None, _everyone))[0] == []
    await ingestor.apply([ev(event_types.PART_UPDATED, part={
        **text_part("prt_1", "msg_1", "zebra crossing ahead", "ses_a1"),
        "time": {"start": 5, "end": 7}})])
    hits, following = await index.search(parse_query("zebra cross"), 10, None, _everyone)
    assert [(h.sid, h.field, h.mid, h.time) for h in hits] == [("ses_a1", "prt_1", "msg_1", 7)]
    assert following is None
    assert (await index.search(parse_query("giraffe "), 10, None, _everyone))[0] == []
    hits, _ = await index.search(parse_query("parser"), 10, None, _everyone)
    assert [(h.field, h.mid) for h in hits] == [("title", "")]
    # Every term must be in one part; a word the session never had matches nothing.
    assert (await index.search(parse_query("zebra parser "), 10, None, _everyone))[0] == []
    assert (await index.search(parse_query("zebra okapi "), 10, None, _everyone))[0] == []
    assert await redis.hlen(keys.search_postings("ses_a1")) == 2  # the text part and the title
    assert store.search is index


async def test_results_page_in_session_order_and_only_visible_sessions_are_checked(
        redis: Redis, keys: Keys) -> None:
    _store, index, ingestor = _setup(redis, keys)
    sids = [f"ses_p{i:02d}" for i in range(12)]
    await ingestor.apply([ev(event_types.PART_UPDATED, part=text_part(
        f"prt_{sid}", "msg_1", f"common word {'odd' if i % 2 else 'even'}", sid))
        for i, sid in enumerate(sids)])
    first, cursor = await index.search(parse_query("common "), 5, None, _everyone)
    second, cursor2 = await index.search(parse_query("common "), 5, cursor, _everyone)
    third, cursor3 = await index.search(parse_query("common "), 5, cursor2, _everyone)
    assert [h.sid for h in first + second + third] == sids and cursor3 is None
    odd, _ = await index.search(parse_query("common odd "), 10, None, _everyone)
    assert [h.sid for h in odd] == sids[1::2]
    asked: list[list[str]] = []

    async def mine(candidates: list[str]) -> list[str]:
        asked.append(candidates)
        return [sid for sid in candidates if sid.endswith(("03", "07"))]

    hits, _ = await index.search(parse_query("common"), 10, None, mine)
    assert [h.sid for h in hits] == ["ses_p03", "ses_p07"] and asked


async def test_removals_take_parts_messages_and_sessions_out_of_the_index(
        redis: Redis, keys: Keys) -> None:
    _store, index, ingestor = _setup(redis, keys)
    await ingestor.apply([
        ev("session.updated", info=dict(session_info("ses_r1"), title="quokka")),
        ev(event_types.MESSAGE_UPDATED, info={"id": "msg_1", "sessionID": "ses_r1",
                                              "role": "user"}),
        ev(event_types.PART_UPDATED, part=text_part("prt_1", "msg_1", "wombat one", "ses_r1")),
        ev(event_types.MESSAGE_UPDATED, info={"id": "msg_2", "sessionID": "ses_r1",
                                              "role": "user"}),
        ev(event_types.PART_UPDATED, part=text_part("prt_2", "msg_2", "wombat two", "ses_r1")),
        ev(event_types.PART_UPDATED, part=text_part("prt_3", "msg_2", "platypus", "ses_r1")),
    ])

    async def found(q: str) -> list[tuple[str, str]]:
        return [(h.sid, h.field) for h in (await index.search(parse_query(q), 10, None,
                                                              _everyone))[0]]

    assert await found("wombat ") == [("ses_r1", "prt_2")]  # the newest message's part
    await ingestor.apply([ev(event_types.PART_REMOVED, sessionID="ses_r1", messageID="msg_2",
                             partID="prt_3")])
    assert await found("platypus ") == []
    await ingestor.apply([ev(event_types.MESSAGE_REMOVED, sessionID="ses_r1",
                             messageID="msg_2")])
    assert await found("wombat ") == [("ses_r1", "prt_1")]
    assert await redis.zscore(keys.search_term("wombat"), "ses_r1") is not None
    await ingestor.apply([ev(event_types.SESSION_DELETED, info=session_info("ses_r1"))])
    # The session's hints went with it (checked before a query, which would drop them too).
    assert await redis.zscore(keys.search_term("wombat"), "ses_r1") is None
    assert await redis.zscore(keys.search_term("quokka"), "ses_r1") is None
    assert not await redis.exists(keys.search_postings("ses_r1"))
    assert await found("wombat ") == [] and await found("quokka ") == []
    # A hint left behind (a replica's race) goes at the first query that meets it.
    await redis.zadd(keys.search_term("wombat"), {"ses_r1": 0})
    assert await found("wombat ") == []
    assert await redis.zscore(keys.search_term("wombat"), "ses_r1") is None


async def test_with_search_off_nothing_is_indexed(redis: Redis, keys: Keys) -> None:
    store = StateStore(redis, keys)
    ingestor = Ingestor(redis, upstream=None, store=store,  # type: ignore[arg-type]
                        log=EventLog(redis, keys, 10_000, 10_000))
    await ingestor.apply([ev(event_types.PART_UPDATED, part=text_part("prt_1", "msg_1", "words"))])
    assert await redis.keys(keys.prefix + "search*") == []


async def test_the_route_refuses_bad_input_and_says_when_search_is_off(
        redis_server: EmbeddedRedis, workspace: Path) -> None:
    fake = FakeOpencode()
    async with relay_client(relay_settings(redis_server.url), fake) as http:
        empty = await http.get("/api/search", params={"q": "!! ?"})
        assert empty.status_code == 400 and "no word" in empty.json()["error"]["message"]
        assert (await http.get("/api/search", params={"q": "x", "after": "a b"})).status_code == 422
        assert (await http.get("/api/search", params={"q": "x" * 201})).status_code == 422
        assert (await http.get("/api/search")).status_code == 422
        none = await http.get("/api/search", params={"q": "nothing here"})
        assert none.status_code == 200 and none.json() == {"results": [], "next": None}
    async with relay_client(relay_settings(redis_server.url, search=False), fake) as http:
        off = await http.get("/api/search", params={"q": "anything"})
        assert off.status_code == 404
        assert off.json()["error"]["code"] == "search_disabled"
        assert "RELAY_SEARCH=false" in off.json()["error"]["message"]


async def test_pruning_a_session_takes_its_postings_and_hints_away(redis: Redis,
                                                                   keys: Keys) -> None:
    store, index, _ingestor = _setup(redis, keys)
    now = await _now_ms(redis)
    old = await _session(redis, keys, "old", now - 2 * HOUR_MS)
    kept = await _session(redis, keys, "kept", now)
    async with Staging(redis) as stage:
        for sid in (old, kept):
            index.stage_part(stage, text_part(f"prt_{sid}", "msg_1", "prunable words", sid))
        await stage.commit()

    async def found() -> list[str]:
        return [h.sid for h in (await index.search(parse_query("prunable "), 10, None,
                                                   _everyone))[0]]

    assert sorted(await found()) == sorted([old, kept])
    report = await Retention(redis, keys, store, 3600, 0).prune()
    assert report.removed == [old]
    # Checked before any query (a query would also drop a hint of a session that is gone).
    assert await redis.zscore(keys.search_term("prunable"), old) is None
    assert await redis.zscore(keys.search_term("prunable"), kept) is not None
    assert not await redis.exists(keys.search_postings(old))
    assert await found() == [kept]


async def test_reindex_indexes_sessions_stored_while_search_was_off(redis: Redis,
                                                                   keys: Keys) -> None:
    plain = StateStore(redis, keys)
    off = Ingestor(redis, upstream=None, store=plain,  # type: ignore[arg-type]
                   log=EventLog(redis, keys, 10_000, 10_000))
    await off.apply([
        ev("session.updated", info=dict(session_info("ses_x1"), title="legacy gadget")),
        ev(event_types.MESSAGE_UPDATED, info={"id": "msg_1", "sessionID": "ses_x1",
                                              "role": "user"}),
        ev(event_types.PART_UPDATED, part=text_part("prt_1", "msg_1", "old marmot", "ses_x1")),
        ev(event_types.PART_UPDATED, part={**text_part("prt_2", "msg_1", "", "ses_x1"),
                                           "type": "reasoning", "text": "hidden marmot"}),
    ])
    index = SearchIndex(redis, keys)
    assert (await index.search(parse_query("marmot "), 10, None, _everyone))[0] == []
    assert await reindex(StateStore(redis, keys, index), index) == (1, 1)
    hits, _ = await index.search(parse_query("marmot "), 10, None, _everyone)
    assert [(h.sid, h.field, h.mid) for h in hits] == [("ses_x1", "prt_1", "msg_1")]
    hits, _ = await index.search(parse_query("gadg"), 10, None, _everyone)
    assert [h.field for h in hits] == ["title"]
