"""Session usage totals, kept in Redis as assistant messages change (store/state.py)."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from opencode_relay.store.keys import Keys
from opencode_relay.store.staging import Staging
from opencode_relay.store.state import StateStore

pytestmark = pytest.mark.unit

SID = "ses_usage1"


def _assistant(mid: str, output: int, cost: float = 0.5, model: str = "m") -> dict:
    return {"id": mid, "sessionID": SID, "role": "assistant", "providerID": "p",
            "modelID": model, "cost": cost,
            "tokens": {"input": 100, "output": output, "reasoning": 1,
                       "cache": {"read": 7, "write": 3}}}


async def _stage(store: StateStore, redis: Redis, *infos: dict,
                 remove: tuple[str, ...] = ()) -> None:
    async with Staging(redis) as stage:
        for info in infos:
            store.put_message(stage, info)
            await store.stage_usage(stage.on(SID), info)
        for mid in remove:
            await store.stage_remove_message(stage, SID, mid)
        await stage.commit()


async def test_totals_follow_updates_and_removals(redis: Redis, keys: Keys) -> None:
    store = StateStore(redis, keys)
    totals, last = await store.read_usage(SID)
    assert totals["messages"] == 0 and last is None
    user = {"id": "msg_0", "sessionID": SID, "role": "user"}
    # A message's later versions replace its earlier ones in the totals.
    await _stage(store, redis, user, _assistant("msg_1", 0), _assistant("msg_1", 20),
                 _assistant("msg_2", 5, model="m2"))
    totals, last = await store.read_usage(SID)
    assert totals == {"input": 200, "output": 25, "reasoning": 2, "cacheRead": 14,
                      "cacheWrite": 6, "cost": 1.0, "messages": 2}
    assert last is not None and last["messageID"] == "msg_2" and last["modelID"] == "m2"
    # An answer still being written (no tokens yet) is not the newest one yet.
    empty = {**_assistant("msg_3", 0), "tokens": {"input": 0, "output": 0}}
    await _stage(store, redis, empty)
    assert (await store.read_usage(SID))[1]["messageID"] == "msg_2"  # type: ignore[index]
    # Nor when the newest is removed: the one before it with tokens takes its place.
    await _stage(store, redis, remove=("msg_2",))
    assert (await store.read_usage(SID))[1]["messageID"] == "msg_1"  # type: ignore[index]
    await _stage(store, redis, _assistant("msg_2", 5, model="m2"), remove=("msg_3",))
    # Removing the newest makes the one before it the newest; removing a user message or an
    # unknown one changes nothing.
    await _stage(store, redis, remove=("msg_2", "msg_0", "msg_9"))
    totals, last = await store.read_usage(SID)
    assert totals["output"] == 20 and totals["messages"] == 1
    assert last is not None and last["messageID"] == "msg_1"
    await _stage(store, redis, remove=("msg_1",))
    totals, last = await store.read_usage(SID)
    assert totals["messages"] == 0 and totals["output"] == 0 and last is None
    await redis.delete(keys.usage(SID))


async def test_removing_a_session_removes_its_usage(redis: Redis, keys: Keys) -> None:
    store = StateStore(redis, keys)
    await _stage(store, redis, _assistant("msg_1", 4))
    async with Staging(redis) as stage:
        await store.stage_remove_session(stage, SID, None)
        await stage.commit()
    assert not await redis.exists(keys.usage(SID))
