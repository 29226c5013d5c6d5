"""Unit tests of session ownership (security/access.py) against a real Redis (own server)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator

import pytest

from opencode_relay.launch.embedded import EmbeddedRedis
from opencode_relay.security.access import Access
from opencode_relay.security.principal import Principal, reset_principal, set_principal
from opencode_relay.store.keys import Keys
from opencode_relay.store.staging import Staging
from opencode_relay.store.state import StateStore
from tests.test_unit_core import CountingRedis, session_info

pytestmark = pytest.mark.unit

ALICE = Principal("alice", "Alice", admin=False)


@pytest.fixture()
async def counted(redis_server: EmbeddedRedis) -> AsyncIterator[tuple[Access, Keys]]:
    keys = Keys(f"unit-{uuid.uuid4().hex[:8]}:")
    client = CountingRedis.from_url(redis_server.url)
    store = StateStore(client, keys)
    now_ms = int(time.time() * 1000)
    async with Staging(client) as stage:
        for n in range(30):
            # Alice's sessions with a sub-agent and a sub-sub-agent each; old sessions of
            # nobody's; and young ones of nobody's, whose owner record may still be coming.
            store.put_session(stage, session_info(f"ses_alice{n}"))
            stage.on(f"ses_alice{n}").set(keys.session_owner(f"ses_alice{n}"), ALICE.id)
            store.put_session(stage, session_info(f"ses_sub{n}", parent=f"ses_alice{n}"))
            store.put_session(stage, session_info(f"ses_subsub{n}", parent=f"ses_sub{n}"))
            store.put_session(stage, session_info(f"ses_nobody{n}"))
            store.put_session(stage, session_info(f"ses_young{n}", created=now_ms))
        await stage.commit()
    yield Access(client, keys, enabled=True), keys
    await client.aclose()


async def test_visible_reads_owners_in_a_round_trip_per_generation(counted) -> None:
    access, keys = counted
    sids = [f"ses_{kind}{n}" for n in range(30)
            for kind in ("subsub", "nobody", "young", "alice")]
    token = set_principal(ALICE)
    try:
        CountingRedis.round_trips = 0
        visible = await access.visible(sids)
        # The sessions asked for, then the sub-sub-agents' parents (whose own parents, Alice's
        # sessions, were among those asked for): not a round trip per session and ancestor.
        assert CountingRedis.round_trips == 2
        assert visible == [sid for sid in sids if "alice" in sid or "subsub" in sid]
        assert await access.visible(sids, limit=3) == visible[:3]
        # Cached now, but for the young sessions without an owner record.
        CountingRedis.round_trips = 0
        assert await access.visible(sids) == visible
        assert CountingRedis.round_trips == 1
        assert await access.owner_of("ses_nobody0") is None
        await access.redis.set(keys.session_owner("ses_young0"), ALICE.id)
        assert await access.owner_of("ses_young0") == ALICE.id
    finally:
        reset_principal(token)


async def test_owner_filter_passes_events_of_owned_sessions_only(counted) -> None:
    access, _keys = counted
    assert not access.event_filter()(["ses_alice1"])  # no caller: nothing passes
    token = set_principal(ALICE)
    try:
        allowed = access.event_filter()
        await allowed.prepare(["ses_subsub1", "ses_nobody1"])
        assert allowed(["ses_subsub1", "ses_sub1", "ses_alice1"])
        assert not allowed(["ses_nobody1"])
    finally:
        reset_principal(token)
