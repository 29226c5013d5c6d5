"""Search across sessions: query latency over a big corpus, and what indexing costs ingest.

The corpus (full: 10,000 sessions x 20 messages, one text part each) is ingested in-process
through `Ingestor.apply` twice, interleaved batch by batch: under a key prefix with the search
index on and under one with it off (the same events, copied). A relay process (its ingest off)
then serves `GET /api/search` over the indexed prefix. The realistic stream mix (bench/synth.py,
~90% deltas) is ingested the same way, on and off, for the cost on a normal stream.
"""

from __future__ import annotations

import random
import string
import time
import uuid
from typing import Any

import httpx
import orjson

from opencode_relay.ingest.ingestor import Ingestor
from opencode_relay.search.index import SearchIndex
from opencode_relay.store.keys import Keys
from opencode_relay.store.log import EventLog
from opencode_relay.store.state import StateStore
from tests.support.stack import RelayProcess, workspace_env

from . import synth
from .harness import Bench, median, percentile

# sessions, messages per session, queries
CORPUS = {"tiny": (300, 10, 60), "small": (2_000, 20, 200), "full": (10_000, 20, 400)}
_VOCABULARY = 20_000
_WORDS_PER_TEXT = 30


def _vocabulary(rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < _VOCABULARY:
        words.add("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9))))
    return sorted(words, key=lambda _w: rng.random())


def corpus(sessions: int, messages: int, seed: int = 11) -> tuple[list[dict[str, Any]],
                                                                  list[str]]:
    """The events of `sessions` finished conversations (titles, messages, their final text
    parts), word frequencies Zipf-like as in prose; and the vocabulary by rank."""
    rng = random.Random(seed)
    vocabulary = _vocabulary(rng)
    weights = [1 / (rank + 1) for rank in range(len(vocabulary))]
    ids = synth.Ids(seed)
    now = int(time.time() * 1000)
    events: list[dict[str, Any]] = []

    def wrap(kind: str, props: dict[str, Any]) -> dict[str, Any]:
        return {"directory": synth.DIRECTORY,
                "payload": {"id": ids("evt"), "type": kind, "properties": props}}

    for _ in range(sessions):
        sid = ids("ses")
        title = " ".join(rng.choices(vocabulary, weights, k=4))
        events.append(wrap("session.updated", {"sessionID": sid,
                                               "info": synth.session_info(sid, title, now)}))
        for m in range(messages):
            mid = ids("msg")
            role = "user" if m % 2 == 0 else "assistant"
            events.append(wrap("message.updated", {"sessionID": sid, "info": {
                "id": mid, "sessionID": sid, "role": role, "time": {"created": now + m}}}))
            text = " ".join(rng.choices(vocabulary, weights, k=_WORDS_PER_TEXT))
            events.append(wrap("message.part.updated", {"sessionID": sid, "part": {
                "id": ids("prt"), "messageID": mid, "sessionID": sid, "type": "text",
                "text": text, "time": {"start": now + m, "end": now + m + 1}}}))
    return events, vocabulary


def _ingestor(bench: Bench, prefix: str, search: bool) -> Ingestor:
    redis = bench.redis_client()
    keys = Keys(prefix)
    store = StateStore(redis, keys, SearchIndex(redis, keys) if search else None)
    return Ingestor(redis, None, store, EventLog(redis, keys, 200_000, 50_000))  # type: ignore[arg-type]


async def ingest_both(bench: Bench, events: list[dict[str, Any]], on_prefix: str,
                      off_prefix: str) -> tuple[float, float]:
    """Seconds to apply `events` in batches of 500 with indexing on, and off; interleaved batch
    by batch (which goes first alternates), each side on its own copy of the events."""
    encoded = orjson.dumps(events)
    copies = {True: orjson.loads(encoded), False: orjson.loads(encoded)}
    ingestors = {True: _ingestor(bench, on_prefix, True), False: _ingestor(bench, off_prefix,
                                                                           False)}
    spent = {True: 0.0, False: 0.0}
    for n, start in enumerate(range(0, len(events), 500)):
        for search in ((True, False) if n % 2 == 0 else (False, True)):
            batch = copies[search][start:start + 500]
            began = time.perf_counter()
            await ingestors[search].apply(batch)
            spent[search] += time.perf_counter() - began
    for ingestor in ingestors.values():
        await ingestor.redis.aclose()
    return spent[True], spent[False]


def _queries(vocabulary: list[str], count: int, seed: int = 5) -> list[str]:
    """Typed queries: a common word, a rare word, two words, the start of a word (as typed)."""
    rng = random.Random(seed)
    common, middle, rare = vocabulary[:50], vocabulary[50:2000], vocabulary[2000:]
    shapes = [lambda: rng.choice(common) + " ", lambda: rng.choice(rare) + " ",
              lambda: f"{rng.choice(common)} {rng.choice(middle)} ",
              lambda: rng.choice(middle)[:4]]
    return [shapes[i % len(shapes)]() for i in range(count)]


async def run(bench: Bench) -> None:
    sessions, messages, query_count = CORPUS[bench.size.name]
    print(f"search: corpus of {sessions} sessions x {messages} messages", flush=True)
    events, vocabulary = corpus(sessions, messages)
    tag = uuid.uuid4().hex[:6]
    on_prefix, off_prefix = f"bench-search-on-{tag}:", f"bench-search-off-{tag}:"
    on_s, off_s = await ingest_both(bench, events, on_prefix, off_prefix)
    n = len(events)
    bench.add("search.corpus_ingest_eps", f"Ingestor.apply of the corpus ({n} events, half "
              "of them final text parts), search index on", n / on_s, "events/s", n / off_s,
              "the same events, index off, interleaved in the same run",
              note=f"{sessions} sessions x {messages} messages x {_WORDS_PER_TEXT} words")
    mix = synth.stream(min(bench.size.ingest_events, 50_000), seed=9)
    mix_on, mix_off = await ingest_both(bench, mix, f"bench-mix-on-{tag}:",
                                        f"bench-mix-off-{tag}:")
    bench.add("search.ingest_eps", "Ingestor.apply of the realistic stream mix (synth.py), "
              "search index on", len(mix) / mix_on, "events/s", len(mix) / mix_off,
              "the same events, index off, interleaved in the same run",
              target="slowed by <= 20% (ratio >= 0.8)", met=lambda v, b: b is not None
              and v >= 0.8 * b)

    # A relay over the indexed prefix; its ingest is off (nothing must reconcile the corpus away).
    relay = RelayProcess(bench.redis.url, bench.upstream.url, bench.workdir / "relay-search.log",
                         prefix=on_prefix, extra_env={
                             "RELAY_INGEST": "false", "RELAY_DATA_DIR": str(bench.workdir / "var"),
                             **workspace_env(bench.workdir / "opencode" / "project")})
    relay.start(wait_synced=False, ready=False)
    bench.stack.callback(relay.stop)
    queries = _queries(vocabulary, query_count)
    timings: list[float] = []
    scans: list[float] = []
    found = 0
    async with httpx.AsyncClient(base_url=relay.url, timeout=60) as client:
        for q in queries[:10]:  # warm-up: connections, scripts loaded
            await client.get("/api/search", params={"q": q})
        for q in queries:
            began = time.perf_counter()
            answer = await client.get("/api/search", params={"q": q, "limit": 20})
            timings.append((time.perf_counter() - began) * 1000)
            assert answer.status_code == 200, answer.text
            found += bool(answer.json()["results"])
            began = time.perf_counter()
            titled = await client.get("/api/sessions", params={"search": q.split()[0],
                                                               "limit": 20})
            scans.append((time.perf_counter() - began) * 1000)
            assert titled.status_code == 200, titled.text
    note = (f"{len(queries)} queries over {sessions} sessions: common word, rare word, two "
            f"words, a word's first 4 letters; {found} found something")
    bench.add("search.query_p50_ms", "GET /api/search (limit 20), p50", percentile(timings, 50),
              "ms", median(scans), "GET /api/sessions?search= (title scan), p50",
              target="<= 50 ms", met=lambda v, _b: v <= 50, note=note)
    bench.add("search.query_p99_ms", "GET /api/search (limit 20), p99", percentile(timings, 99),
              "ms", percentile(scans, 99), "GET /api/sessions?search= (title scan), p99",
              target="<= 200 ms", met=lambda v, _b: v <= 200, note=note)
