"""The relay's VAPID key pair (RFC 8292), kept in Redis so every replica signs with the same one.

Made on first use (the first replica to ask wins a SET NX); `opencode-relay push rotate-keys`
replaces it. Browsers subscribe with the public key, so a rotation drops every subscription:
they were bound to the old key, and the UI subscribes again when it sees the key change.
The private key is read from Redis only to sign; it is never logged or sent anywhere.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02
from redis.asyncio import Redis

from ..store.keys import Keys


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Decodes base64url with or without padding (browsers send it without)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_of(private: ec.EllipticCurvePrivateKey) -> str:
    """The uncompressed P-256 point, base64url: the `applicationServerKey` browsers take."""
    return b64url(private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def _new_private_key() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


class VapidKeys:
    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._cached: tuple[bytes, Vapid02] | None = None  # the raw key it was parsed from

    async def current(self) -> Vapid02:
        """The key pair in force, made now if there is none yet (one for all replicas)."""
        found = await self.redis.get(self.keys.push_vapid)
        if found is None:
            await self.redis.set(self.keys.push_vapid, _new_private_key(), nx=True)
            found = await self.redis.get(self.keys.push_vapid)
            if found is None:  # rotated away between the two commands: ask again
                return await self.current()
        raw = found if isinstance(found, bytes) else found.encode()
        cached = self._cached
        if cached is None or cached[0] != raw:
            cached = self._cached = (raw, Vapid02.from_raw(raw))
        return cached[1]

    async def public_key(self) -> str:
        vapid = await self.current()
        return public_key_of(vapid.private_key)

    async def rotate(self) -> str:
        """A new key pair replaces the old one; returns its public key."""
        await self.redis.set(self.keys.push_vapid, _new_private_key())
        return await self.public_key()
