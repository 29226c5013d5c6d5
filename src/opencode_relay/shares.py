"""Read-only share links of a session: a token that opens its transcript and live events only.

The token is `<session id>.<256 random bits>`: the session id says where to look (every key of a
share lives in its session's hash slot, and goes with the session), the random part is what makes
it unguessable. Only its SHA-256 digest is stored (as API tokens are, security/tokens.py), so a
copy of Redis opens no share. A share may expire; revoking deletes it. Expired shares are
dropped when their session's shares are next listed or resolved.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import asdict, dataclass

from redis.asyncio import Redis

from .errors import ShareNotFound
from .ids import id_pattern
from .security.tokens import digest
from .store.connect import transaction
from .store.keys import Keys
from .store.replies import text

# Whole-token shape: a session id, a dot, 43 characters of base64url (32 random bytes).
_TOKEN = re.compile(id_pattern("ses")[:-1] + r"\.[A-Za-z0-9_-]{43}$")
MAX_SHARES_PER_SESSION = 50


@dataclass(frozen=True)
class Share:
    id: str
    session_id: str
    created: float  # seconds since the epoch
    expires: float | None  # seconds since the epoch; None: until revoked
    created_by: str  # the principal that made it

    def expired(self, now: float) -> bool:
        return self.expires is not None and now >= self.expires

    def public(self) -> dict[str, object]:
        """As the API lists it (never with the token: that is shown once, at creation)."""
        return {"id": self.id, "sessionID": self.session_id,
                "createdAt": int(self.created * 1000),
                "expiresAt": int(self.expires * 1000) if self.expires is not None else None,
                "createdBy": self.created_by}


def token_session(token: str) -> str | None:
    """The session a well-formed token names, else None."""
    return token.partition(".")[0] if _TOKEN.match(token) else None


class ShareStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def create(self, sid: str, created_by: str,
                     expires_in: float | None) -> tuple[Share, str]:
        """A new share of `sid`; the token is returned once and never stored."""
        now = time.time()
        await self._drop_expired(sid, now)
        share = Share(f"shr_{secrets.token_hex(8)}", sid, now,
                      now + expires_in if expires_in is not None else None, created_by)
        token = f"{sid}.{secrets.token_urlsafe(32)}"
        async with transaction(self.redis, self.keys.shares(sid)) as pipe:
            pipe.hset(self.keys.shares(sid), share.id, json.dumps(asdict(share)))
            pipe.hset(self.keys.share_digests(sid), digest(token), share.id)
            await pipe.execute()
        return share, token

    async def count(self, sid: str) -> int:
        return int(await self.redis.hlen(self.keys.shares(sid)))

    async def list(self, sid: str) -> list[Share]:
        """The session's live shares, oldest first."""
        now = time.time()
        await self._drop_expired(sid, now)
        raw = await self.redis.hvals(self.keys.shares(sid))
        return sorted((Share(**json.loads(r)) for r in raw), key=lambda s: s.created)

    async def revoke(self, sid: str, share_id: str) -> bool:
        """Deletes a share; False when the session has no share of that id."""
        digests = await self.redis.hgetall(self.keys.share_digests(sid))
        async with transaction(self.redis, self.keys.shares(sid)) as pipe:
            pipe.hdel(self.keys.shares(sid), share_id)
            for hashed, owner in digests.items():
                if text(owner) == share_id:
                    pipe.hdel(self.keys.share_digests(sid), hashed)
            removed, *_ = await pipe.execute()
        return bool(removed)

    async def resolve(self, token: str) -> Share:
        """The live share a token opens; ShareNotFound for a malformed, unknown, revoked or
        expired one (one answer for all, so a probe learns nothing)."""
        sid = token_session(token)
        if sid is None:
            raise ShareNotFound()
        share_id = await self.redis.hget(self.keys.share_digests(sid), digest(token))
        if share_id is None:
            raise ShareNotFound()
        raw = await self.redis.hget(self.keys.shares(sid), text(share_id))
        if raw is None:
            raise ShareNotFound()
        share = Share(**json.loads(raw))
        if share.expired(time.time()):
            await self.revoke(sid, share.id)
            raise ShareNotFound()
        return share

    async def _drop_expired(self, sid: str, now: float) -> None:
        for raw in await self.redis.hvals(self.keys.shares(sid)):
            share = Share(**json.loads(raw))
            if share.expired(now):
                await self.revoke(sid, share.id)
