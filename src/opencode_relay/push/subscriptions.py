"""Each principal's push subscriptions: one per browser, several browsers each, capped.

A subscription is what the browser's `PushSubscription.toJSON()` gives: the push service's
endpoint (an unguessable URL) and the keys to encrypt for that browser. Its id is a digest of
the endpoint, so subscribing again replaces it, and a browser belongs to one principal at a
time (signing in as someone else there moves it). Past the cap the oldest one goes.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec
from redis.asyncio import Redis

from ..errors import InvalidInput
from ..hosts import is_loopback
from ..store.keys import Keys
from ..store.replies import text
from .vapid import b64url_decode


@dataclass(frozen=True)
class Subscription:
    id: str
    endpoint: str
    p256dh: str  # the browser's ECDH public key (uncompressed P-256 point, base64url)
    auth: str    # its 16-byte auth secret (base64url)
    added: float
    expires: float | None = None  # the browser's expirationTime, in seconds; None: never

    @property
    def origin(self) -> str:
        """The push service's origin: the `aud` of the VAPID token, and what logs may name."""
        parts = urlsplit(self.endpoint)
        return f"{parts.scheme}://{parts.netloc}"


def subscription_id(endpoint: str) -> str:
    return "psub_" + hashlib.sha256(endpoint.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class EndpointRule:
    """Which push services the relay sends to: https hosts that are, or end in, one of
    `services` ("*": any https host), and http on this machine only when allowed (tests).
    The relay POSTs to whatever a browser subscribed, so an open list would let any user make
    it call addresses on its own network."""

    services: tuple[str, ...]
    allow_loopback_http: bool = False

    def allows_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return any(service == "*" or host == service or host.endswith("." + service)
                   for service in self.services)


def check_endpoint(endpoint: str, rule: EndpointRule) -> None:
    """An https URL of a known push service (or, when allowed, http on this machine)."""
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError as exc:
        raise InvalidInput(f"endpoint is not a URL: {exc}") from None
    if not host or parts.username is not None or parts.password is not None:
        raise InvalidInput("endpoint must be an absolute URL with a host and no user info")
    if parts.scheme == "https":
        if rule.allows_host(host):
            return
        raise InvalidInput(f"{host} is not a push service this relay sends to "
                           "(RELAY_PUSH_SERVICES lists them)")
    if parts.scheme == "http" and is_loopback(host):
        if rule.allow_loopback_http:
            return
        raise InvalidInput("an http:// endpoint on this machine is allowed only with "
                           "RELAY_PUSH_ALLOW_LOOPBACK_HTTP=true (a push service for tests)")
    raise InvalidInput("endpoint must be an https:// URL of a push service")


def check_keys(p256dh: str, auth: str) -> None:
    """The browser's P-256 public key (65 bytes, on the curve) and 16-byte auth secret."""
    try:
        point = b64url_decode(p256dh)
        secret = b64url_decode(auth)
    except ValueError:
        raise InvalidInput("keys.p256dh and keys.auth must be base64url") from None
    if len(point) != 65 or point[0] != 4:
        raise InvalidInput("keys.p256dh must be an uncompressed P-256 point (65 bytes)")
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise InvalidInput("keys.p256dh is not a point on P-256") from None
    if len(secret) != 16:
        raise InvalidInput("keys.auth must be 16 bytes")


class Subscriptions:
    def __init__(self, redis: Redis, keys: Keys, cap: int) -> None:
        self.redis = redis
        self.keys = keys
        self.cap = cap

    async def add(self, principal_id: str, endpoint: str, p256dh: str, auth: str,
                  expiration_ms: float | None = None) -> str:
        sid = subscription_id(endpoint)
        sub = Subscription(sid, endpoint, p256dh, auth, time.time(),
                           expiration_ms / 1000 if expiration_ms else None)
        found = await self.redis.hget(self.keys.push_endpoints, sid)
        previous = text(found) if found is not None else None
        # Each principal's hash and the endpoint index lie in their own hash slots: one round
        # trip, not one transaction (a sender reads a subscription from its principal's hash).
        async with self.redis.pipeline(transaction=False) as pipe:
            if previous is not None and previous != principal_id:
                pipe.hdel(self.keys.push_subscriptions(previous), sid)
            pipe.hset(self.keys.push_subscriptions(principal_id), sid, json.dumps(asdict(sub)))
            pipe.hset(self.keys.push_endpoints, sid, principal_id)
            await pipe.execute()
        await self._keep_cap(principal_id)
        return sid

    async def _keep_cap(self, principal_id: str) -> None:
        subs = await self.of(principal_id)
        extra = sorted(subs, key=lambda s: s.added)[:max(0, len(subs) - self.cap)]
        for sub in extra:
            await self.drop(principal_id, sub.id)

    async def remove(self, principal_id: str, endpoint: str) -> bool:
        """Unsubscribes a browser of this principal's; False when it was not theirs."""
        return await self.drop(principal_id, subscription_id(endpoint))

    async def drop(self, principal_id: str, sid: str) -> bool:
        removed = await self.redis.hdel(self.keys.push_subscriptions(principal_id), sid)
        if removed:  # it was this principal's, so the endpoint index names them
            await self.redis.hdel(self.keys.push_endpoints, sid)
        return bool(removed)

    async def of(self, principal_id: str) -> list[Subscription]:
        found = await self.redis.hgetall(self.keys.push_subscriptions(principal_id))
        return [Subscription(**json.loads(raw)) for raw in found.values()]

    async def clear_all(self) -> int:
        """Drops every subscription of every principal (a key rotation); returns how many."""
        owners = await self.redis.hgetall(self.keys.push_endpoints)
        principals = {text(owner) for owner in owners.values()}
        async with self.redis.pipeline(transaction=False) as pipe:  # several hash slots
            for principal_id in principals:
                pipe.delete(self.keys.push_subscriptions(principal_id))
            pipe.delete(self.keys.push_endpoints)
            await pipe.execute()
        return len(owners)
