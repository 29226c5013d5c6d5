"""Search across sessions against real opencode: found with a snippet and the message, only for
who may read the session, and gone with the session."""

from __future__ import annotations

import uuid

import httpx
import pytest

from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.compare import relay_transcript
from tests.support.secured import bearer, make_token
from tests.support.stack import RelayProcess, wait_for

pytestmark = pytest.mark.integration


def _word() -> str:
    return "quux" + uuid.uuid4().hex[:10]


def _exchange(api: httpx.Client, scripted: ScriptedProvider, answer: str,
              title: str = "search") -> tuple[str, str]:
    """A session with one scripted exchange; its id and the answer's message id."""
    created = api.post("/api/sessions", json={"title": title})
    assert created.status_code == 200, created.text
    sid = created.json()["id"]
    marker = scripted.script(f"srch{uuid.uuid4().hex[:8]}", [[{"text": answer}]])
    reply = api.post(f"/api/sessions/{sid}/messages", json={"text": marker})
    assert reply.status_code == 200, reply.text
    return sid, reply.json()["info"]["id"]


def _search(api: httpx.Client, q: str) -> list[dict]:
    found = api.get("/api/search", params={"q": q})
    assert found.status_code == 200, found.text
    return list(found.json()["results"])


def test_a_word_of_an_answer_is_found_with_its_message_and_goes_with_the_session(
        api: httpx.Client, scripted: ScriptedProvider) -> None:
    word = _word()
    sid, mid = _exchange(api, scripted, f"Here is the plan: <b>{word}</b> & then we rest.",
                         title=f"Title {word[:8]}")
    results = wait_for(lambda: _search(api, f"{word} "), 30, "the answer in the search index")
    assert len(results) == 1
    hit = results[0]
    assert hit["sessionID"] == sid and hit["messageID"] == mid and hit["title"].startswith("Title")
    part = next(p for m in relay_transcript(api, sid) if m["info"]["id"] == mid
                for p in m["parts"] if p["id"] == hit["partID"])
    assert word in part["text"]
    assert hit["snippet"] == f"Here is the plan: <b>{word}</b> & then we rest."  # plain text
    assert [hit["snippet"][a:b] for a, b in hit["ranges"]] == [word]
    # The start of a word (as typed) finds it too, and so do two words of the same part.
    assert [r["sessionID"] for r in _search(api, word[:9])] == [sid]
    assert [r["sessionID"] for r in _search(api, f"plan {word}")] == [sid]
    assert _search(api, f"{word} unrelatedword ") == []
    # The title matches on its own (no message).
    titled = _search(api, f"title {word[:8]} ")
    assert [(r["sessionID"], r["messageID"]) for r in titled] == [(sid, None)]

    assert api.delete(f"/api/sessions/{sid}").status_code == 200
    wait_for(lambda: _search(api, f"{word} ") == [], 30, "the deleted session out of results")
    assert _search(api, word[:9]) == []



def test_only_sessions_the_caller_may_read_are_searched(
        secured: RelayProcess, scripted: ScriptedProvider) -> None:
    tokens = {name: make_token(secured, f"{name}-{uuid.uuid4().hex[:6]}", admin=name == "root")
              for name in ("alice", "bob", "root")}
    clients = {name: httpx.Client(base_url=secured.url, headers=bearer(token), timeout=60)
               for name, token in tokens.items()}
    try:
        word = _word()
        alice_sid, _ = _exchange(clients["alice"], scripted, f"alice knows {word}")
        bob_sid, _ = _exchange(clients["bob"], scripted, f"bob knows {word} too")
        wait_for(lambda: len(_search(clients["root"], f"{word} ")) == 2, 30,
                 "both sessions indexed")
        assert [r["sessionID"] for r in _search(clients["alice"], f"{word} ")] == [alice_sid]
        assert [r["sessionID"] for r in _search(clients["bob"], f"{word} ")] == [bob_sid]
        assert _search(clients["bob"], f"alice {word}") == []
        assert {r["sessionID"] for r in _search(clients["root"], word)} == {alice_sid, bob_sid}
        anonymous = httpx.get(f"{secured.url}/api/search", params={"q": word})
        assert anonymous.status_code == 401 and word not in anonymous.text
    finally:
        for client in clients.values():
            client.close()
