"""API tokens and browser logins, kept in Redis as SHA-256 digests only.

Tokens carry 256 bits of randomness, so a fast hash is enough: there is nothing to brute-force
that a slow hash would protect. A login (cookie) points at the token it was made from, so
revoking the token ends its logins too; a single sign-on login holds its principal instead
(there is no token), and ends with logout or its TTL.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import asdict, dataclass

from redis.asyncio import Redis

from ..store.keys import Keys
from ..store.replies import text
from .principal import Principal

TOKEN_PREFIX = "ocr_"
TOKEN_ID = re.compile(r"^tok_[0-9a-f]{12}$")  # a token's public id (never its secret)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    admin: bool
    created: float
    revoked: float | None = None
    terminal: bool = False  # may open a terminal (admins always may)

    def principal(self) -> Principal:
        return Principal(self.id, self.name, self.admin, self.terminal)


def principal_of_record(record: str) -> Principal:
    """The principal a single sign-on login record holds (`TokenStore.login_as`)."""
    fields = json.loads(record)
    return Principal(**{**fields, "groups": tuple(fields.get("groups", ()))})


class TokenStore:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def create(self, name: str, admin: bool = False,
                     terminal: bool = False) -> tuple[TokenInfo, str]:
        """A new token; the secret is returned once and never stored."""
        info = TokenInfo(f"tok_{secrets.token_hex(6)}", name, admin, time.time(),
                         terminal=terminal)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        # The two hashes lie in different hash slots (a cluster): in order, not atomic. A
        # secret's hash is written after its token (until then it resolves to nothing), and
        # revoking marks the token before the hashes go (`_active` refuses a revoked one).
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.keys.auth_tokens, info.id, json.dumps(asdict(info)))
            pipe.hset(self.keys.auth_token_hashes, digest(secret), info.id)
            await pipe.execute()
        return info, secret

    async def list(self) -> list[TokenInfo]:
        raw = await self.redis.hvals(self.keys.auth_tokens)
        return sorted((TokenInfo(**json.loads(r)) for r in raw), key=lambda t: t.created)

    async def get(self, token_id: str) -> TokenInfo | None:
        raw = await self.redis.hget(self.keys.auth_tokens, token_id)
        return TokenInfo(**json.loads(raw)) if raw is not None else None

    async def revoke(self, token_id: str) -> bool:
        info = await self.get(token_id)
        if info is None:
            return False
        revoked = TokenInfo(**{**asdict(info), "revoked": info.revoked or time.time()})
        hashes = await self.redis.hgetall(self.keys.auth_token_hashes)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.keys.auth_tokens, token_id, json.dumps(asdict(revoked)))
            for hashed, owner in hashes.items():
                if text(owner) == token_id:
                    pipe.hdel(self.keys.auth_token_hashes, hashed)
            await pipe.execute()
        return True

    async def resolve(self, secret: str) -> Principal | None:
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
            return None
        token_id = await self.redis.hget(self.keys.auth_token_hashes, digest(secret))
        return await self._active(token_id)

    async def login(self, secret: str, ttl_seconds: float) -> tuple[Principal, str] | None:
        principal = await self.resolve(secret)
        if principal is None:
            return None
        return principal, await self._new_login(principal.id, ttl_seconds)

    async def login_as(self, principal: Principal, ttl_seconds: float) -> str:
        """A login for a principal vouched for elsewhere (single sign-on): the record holds
        the principal itself, as signed in, for the login's lifetime. Returns the cookie."""
        return await self._new_login(json.dumps(asdict(principal)), ttl_seconds)

    async def _new_login(self, record: str, ttl_seconds: float) -> str:
        cookie = secrets.token_urlsafe(32)
        await self.redis.set(self.keys.auth_login(digest(cookie)), record,
                             px=int(ttl_seconds * 1000))
        return cookie

    async def resolve_login(self, cookie: str) -> Principal | None:
        if not cookie or len(cookie) > 200:
            return None
        record = await self.redis.get(self.keys.auth_login(digest(cookie)))
        if record is not None and text(record).startswith("{"):
            return principal_of_record(text(record))
        return await self._active(record)

    async def logout(self, cookie: str) -> None:
        if cookie and len(cookie) <= 200:
            await self.redis.delete(self.keys.auth_login(digest(cookie)))

    async def _active(self, token_id: bytes | str | None) -> Principal | None:
        if token_id is None:
            return None
        info = await self.get(token_id.decode() if isinstance(token_id, bytes) else token_id)
        if info is None or info.revoked is not None:
            return None
        return info.principal()
