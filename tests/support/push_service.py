"""A Web Push service on loopback, for the tests: the real protocol, checked strictly.

It accepts RFC 8030 pushes at `POST /push/<id>`, checks the RFC 8292 VAPID header
(`vapid t=<JWT>, k=<key>`: an ES256 signature by that key, which must be the relay's public key,
`aud` = this service's origin, `exp` in the future and at most 24 h away, a mailto:/https: `sub`),
`Content-Encoding: aes128gcm` and `TTL`, and decrypts the RFC 8291 body with the subscription's
private key and auth secret, which a `Browser` made with `cryptography` as a browser would.
Endpoints can be told to answer 404 or 410 (a subscription the browser dropped), or to answer a
script of failures first (503, 429 with `Retry-After`…) before taking messages.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.support.stack import wait_for

SETTLE = 2.0  # seconds to wait for a notification that must not come


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """One browser's push subscription: its ECDH key pair and auth secret."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth: bytes = field(default_factory=lambda: os.urandom(16))

    def to_json(self) -> dict[str, Any]:
        """What `PushSubscription.toJSON()` gives."""
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": b64url(point), "auth": b64url(self.auth)}}


@dataclass
class Delivery:
    endpoint_id: str
    status: int
    headers: dict[str, str]
    message: dict[str, Any] | None = None  # the decrypted JSON, when accepted
    problem: str | None = None  # why it was refused
    reply_headers: dict[str, str] = field(default_factory=dict)  # e.g. Retry-After
    received: float = field(default_factory=time.time)  # wall clock, as it arrived


class PushService:
    def __init__(self) -> None:
        self.browsers: dict[str, Browser] = {}
        self.answers: dict[str, int] = {}  # endpoint id -> status to answer instead (404/410)
        # endpoint id -> answers to give first, one per push: (status, reply headers)
        self.scripts: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.deliveries: list[Delivery] = []
        self.vapid_key: str | None = None  # the relay's public key, once the test knows it
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> PushService:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    def browser(self, name: str) -> Browser:
        endpoint_id = f"{name}-{os.urandom(6).hex()}"
        made = Browser(f"{self.origin}/push/{endpoint_id}")
        with self._lock:
            self.browsers[endpoint_id] = made
        return made

    def messages(self, browser: Browser) -> list[dict[str, Any]]:
        endpoint_id = browser.endpoint.rsplit("/", 1)[1]
        with self._lock:
            return [d.message for d in self.deliveries
                    if d.endpoint_id == endpoint_id and d.message is not None]

    def script(self, browser: Browser, *answers: tuple[int, dict[str, str]]) -> None:
        """The next pushes to `browser` get these answers, in order; then it takes them."""
        with self._lock:
            self.scripts[browser.endpoint.rsplit("/", 1)[1]] = list(answers)

    def attempts(self, browser: Browser) -> list[Delivery]:
        """Every push to `browser`, whatever the answer, in the order they came."""
        endpoint_id = browser.endpoint.rsplit("/", 1)[1]
        with self._lock:
            return [d for d in self.deliveries if d.endpoint_id == endpoint_id]

    def problems(self) -> list[str]:
        with self._lock:
            return [f"{d.endpoint_id}: {d.problem}" for d in self.deliveries if d.problem]

    def wait_messages(self, browser: Browser, count: int,
                      timeout: float = 60) -> list[dict[str, Any]]:
        """The messages `browser` got, once it got `count`, and `SETTLE` seconds later (so a
        message that must not come had its time to)."""
        wait_for(lambda: len(self.messages(browser)) >= count, timeout,
                 f"{count} notification(s) (problems: {self.problems()})")
        time.sleep(SETTLE)  # and no more than that
        return self.messages(browser)

    def _receive(self, path: str, headers: dict[str, str], body: bytes) -> Delivery:
        endpoint_id = path.removeprefix("/push/")
        browser = self.browsers.get(endpoint_id)
        if not path.startswith("/push/") or browser is None:
            return Delivery(endpoint_id, 404, headers, problem="no such endpoint")
        if endpoint_id in self.answers:
            return Delivery(endpoint_id, self.answers[endpoint_id], headers)
        with self._lock:
            script = self.scripts.get(endpoint_id)
            scripted = script.pop(0) if script else None
        if scripted is not None:
            status, reply = scripted
            return Delivery(endpoint_id, status, headers, reply_headers=reply)
        try:
            self._check_headers(headers)
            plain = http_ece.decrypt(body, private_key=browser.private_key,
                                     auth_secret=browser.auth, version="aes128gcm")
            return Delivery(endpoint_id, 201, headers, message=json.loads(plain))
        except Exception as exc:  # every refusal is recorded for the test to show
            return Delivery(endpoint_id, 400, headers, problem=f"{type(exc).__name__}: {exc}")

    def _check_headers(self, headers: dict[str, str]) -> None:
        if headers.get("content-encoding") != "aes128gcm":
            raise ValueError(f"Content-Encoding {headers.get('content-encoding')!r}")
        if not headers.get("ttl", "").isdigit():
            raise ValueError(f"TTL {headers.get('ttl')!r}")
        if headers.get("urgency", "normal") not in ("very-low", "low", "normal", "high"):
            raise ValueError(f"Urgency {headers.get('urgency')!r}")
        scheme, _, params = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "vapid":
            raise ValueError("Authorization is not `vapid t=…, k=…`")
        fields = dict(p.strip().split("=", 1) for p in params.split(","))
        token, key = fields["t"], fields["k"]
        if self.vapid_key is not None and key != self.vapid_key:
            raise ValueError("signed with another key than GET /api/push/key gives")
        signed, _, signature = token.rpartition(".")
        raw = unb64url(signature)
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
        try:
            public.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"),
                                               int.from_bytes(raw[32:], "big")),
                          signed.encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise ValueError("the VAPID JWT's signature does not verify") from None
        header, claims = (json.loads(unb64url(p)) for p in signed.split("."))
        if header.get("alg") != "ES256":
            raise ValueError(f"JWT alg {header.get('alg')!r}")
        if claims.get("aud") != self.origin:
            raise ValueError(f"aud {claims.get('aud')!r} is not {self.origin}")
        if not time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600:
            raise ValueError(f"exp {claims.get('exp')!r} not within 24 h")
        if not str(claims.get("sub", "")).startswith(("mailto:", "https://")):
            raise ValueError(f"sub {claims.get('sub')!r}")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                delivery = service._receive(self.path, headers, body)
                with service._lock:
                    service.deliveries.append(delivery)
                self.send_response(delivery.status)
                for name, value in delivery.reply_headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        return Handler
