"""Who holds which identity-provider group, as each principal's last sign-in said.

Access checks need no such list: a single sign-on login carries its principal's groups
(`Principal.groups`, teams.py `roles_of`). Notifying does: a permission or question request of
a team's session is pushed to everyone who may answer it (push/notifier.py), and that includes
the holders of the team's group when its `group_role` may answer; the relay knows them only
from their sign-ins. So every single sign-on records the groups the provider named
(security/sso.py calls `record`), and the notifier reads a group's holders (`holders`).

**Policy: membership as of the principal's last sign-in, for as long as that sign-in's login
lasts.** Each holder is kept with an end time, that login's expiry (RELAY_LOGIN_TTL_SECONDS
after signing in); `holders` returns only those whose end is still ahead. A later sign-in
replaces the record: groups it no longer names are dropped at once, the others get the new end.
Signing out of that login (`signed_out`) drops them all; signing out of an older login changes
nothing (the newest sign-in's record stands). Someone who does not sign in again is no longer
notified as a group's holder once their login has ended: the relay cannot tell whether they
still hold it. Members named in a team (`team_members`) are not affected by any of this.

Keys (store/keys.py): `group_holders(group)`, a ZSET of principal id -> end (Unix seconds), one
per group, pruned of ended holders on every sign-in into it and expiring with its last holder;
`principal_groups(principal)`, a SET of the groups recorded, and `principal_groups_login`, the
digest of the login that recorded them, both expiring with that login. A group's set and a
principal's lie in different hash slots (a Redis Cluster runs no transaction over them), so a
sign-in writes in an order that is safe at every step: the principal's set names a group before
the group's set holds the principal, and stops naming it only after (names are only added
until then, so two sign-ins at once lose none), so the next sign-in or sign-out always finds
every group set to take the principal out of; and groups no longer held are left before the new
ones are joined (a sign-in cut short notifies fewer people, never one who lost the group).
"""

from __future__ import annotations

import time
from collections.abc import Collection

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from .store.connect import transaction
from .store.keys import Keys
from .store.replies import text, zset_members


class GroupHolders:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def holders(self, group: str) -> list[str]:
        """The principals holding `group` as of their last sign-in, whose login has not ended."""
        found = await self.redis.zrange(self.keys.group_holders(group), time.time(), "+inf",
                                        byscore=True)
        return sorted(zset_members(found))

    async def record(self, principal_id: str, groups: Collection[str], login: str,
                     until: float) -> None:
        """A sign-in: `principal_id` holds exactly `groups` until `until` (Unix seconds, the
        end of the login it made, whose cookie digest is `login`)."""
        named = self.keys.principal_groups(principal_id)
        held = set(groups)
        before = {text(g) for g in await self.redis.smembers(named)}
        ends = int(until) + 1
        if held - before:  # named first
            async with transaction(self.redis, named) as pipe:
                pipe.sadd(named, *held)
                _expire_at_least(pipe, named, ends)
                await pipe.execute()
        await self._leave(principal_id, before - held)
        if held:
            now = time.time()
            async with self.redis.pipeline(transaction=False) as pipe:  # several hash slots
                for group in held:
                    holders = self.keys.group_holders(group)
                    pipe.zadd(holders, {principal_id: until})
                    pipe.zremrangebyscore(holders, "-inf", f"({now}")  # ended logins
                    _expire_at_least(pipe, holders, ends)
                await pipe.execute()
        async with transaction(self.redis, named) as pipe:
            if before - held:
                pipe.srem(named, *(before - held))
            _expire_at_least(pipe, named, ends)  # as long as the group sets say it holds them
            pipe.set(self.keys.principal_groups_login(principal_id), login, exat=ends)
            await pipe.execute()

    async def signed_out(self, principal_id: str, login: str) -> None:
        """The login whose cookie digest is `login` ended: if its sign-in is the one that
        recorded the principal's groups, the principal holds none of them any more (as far as
        the relay knows); an older login's end changes nothing."""
        recorder = await self.redis.get(self.keys.principal_groups_login(principal_id))
        if recorder is None or text(recorder) != login:
            return
        named = self.keys.principal_groups(principal_id)
        await self._leave(principal_id,
                          {text(g) for g in await self.redis.smembers(named)})
        await self.redis.delete(named, self.keys.principal_groups_login(principal_id))

    async def _leave(self, principal_id: str, groups: Collection[str]) -> None:
        if not groups:
            return
        async with self.redis.pipeline(transaction=False) as pipe:  # several hash slots
            for group in groups:
                pipe.zrem(self.keys.group_holders(group), principal_id)
            await pipe.execute()


def _expire_at_least(pipe: Pipeline, key: str, when: int) -> None:
    """Stages an expiry at `when` (Unix seconds) unless the key expires later already."""
    pipe.expireat(key, when, nx=True)  # a key without one (just made)
    pipe.expireat(key, when, gt=True)  # or one that expires sooner
