"""Sends one Web Push message (RFC 8030), encrypted for the browser (RFC 8291, aes128gcm) and
signed with the relay's VAPID key (RFC 8292).

Built from `http_ece` (the encryption) and `py_vapid` (the JWT), sent with httpx: the relay's
one async HTTP client, with its timeouts and connection pooling. pywebpush would do the same
two steps but sends with requests (blocking) or aiohttp (a second HTTP stack).
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import http_ece
import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from .subscriptions import Subscription
from .vapid import b64url_decode

_TOKEN_SECONDS = 12 * 3600  # a VAPID token's lifetime (RFC 8292 allows at most 24 h)


class Outcome(enum.Enum):
    SENT = "sent"        # the push service took it (201, or 200/202 from older services)
    GONE = "gone"        # 404/410: the subscription expired or was revoked; drop it
    RETRY = "retry"      # 429, 5xx, a timeout or no connection: may work a little later
    FAILED = "failed"    # any other answer (400, 401/403 = VAPID refused, 413): never will


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    reason: str  # short, for the log
    retry_after: float | None = None  # seconds the push service asked to wait (Retry-After)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """A `Retry-After` header (RFC 9110: delay-seconds or an HTTP date) in seconds from now;
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC).timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


def encrypt(payload: bytes, sub: Subscription) -> bytes:
    """The aes128gcm body for this browser: an ephemeral ECDH key per message."""
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(payload, private_key=ephemeral, dh=b64url_decode(sub.p256dh),
                                   auth_secret=b64url_decode(sub.auth), version="aes128gcm")
    return body


def authorization(vapid: Vapid02, audience: str, subject: str) -> str:
    """`vapid t=<JWT>, k=<public key>` for the push service at `audience`."""
    claims = {"aud": audience, "sub": subject, "exp": int(time.time()) + _TOKEN_SECONDS}
    header: str = vapid.sign(claims)["Authorization"]
    return header


class PushSender:
    def __init__(self, subject: str, ttl_seconds: int, timeout_seconds: float,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.subject = subject
        self.ttl_seconds = ttl_seconds
        # Never follows redirects: the endpoint the browser gave is the only place it posts.
        self.client = httpx.AsyncClient(timeout=timeout_seconds, follow_redirects=False,
                                        transport=transport)

    async def send(self, sub: Subscription, payload: bytes, vapid: Vapid02, *,
                   urgent: bool = False, topic: str | None = None) -> Result:
        """Posts one message (encrypted afresh: a retry is the same message, a new body)."""
        headers = {"Authorization": authorization(vapid, sub.origin, self.subject),
                   "Content-Encoding": "aes128gcm",
                   "Content-Type": "application/octet-stream",
                   "TTL": str(self.ttl_seconds),
                   "Urgency": "high" if urgent else "normal"}
        if topic:
            headers["Topic"] = topic  # replaces an undelivered message with the same topic
        try:
            response = await self.client.post(sub.endpoint, content=encrypt(payload, sub),
                                              headers=headers)
        except httpx.TransportError as exc:  # timed out, refused, reset: try again later
            return Result(Outcome.RETRY, type(exc).__name__)
        except httpx.HTTPError as exc:
            return Result(Outcome.FAILED, type(exc).__name__)
        status = response.status_code
        if status in (200, 201, 202):
            return Result(Outcome.SENT, str(status))
        if status in (404, 410):
            return Result(Outcome.GONE, str(status))
        reason = f"{status} {response.text[:200]}".strip()
        if status == 429 or status >= 500:
            return Result(Outcome.RETRY, reason, retry_after(response.headers.get("retry-after")))
        return Result(Outcome.FAILED, reason)

    async def aclose(self) -> None:
        await self.client.aclose()
