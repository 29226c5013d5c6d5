"""The relay's side of OpenID Connect, talking to one identity provider.

Authlib builds and checks the protocol's pieces: the authorization request with its PKCE
challenge, the token request and its client authentication, and the ID token's claims (`iss`,
`aud`, `exp`, `iat`, `nonce`, `azp`, `at_hash`); joserfc checks the ID token's signature with the
provider's published keys. httpx carries the requests. The discovery document is fetched on
first use and kept for an hour (failures are not kept); the keys are fetched again once when an
ID token names a key the relay has not seen (the provider rotated them).

Every failure is a domain error (errors.py): the provider could not be reached
(ProviderUnavailable), answered against the protocol (ProviderFailed), or refused the sign-in, or
sent an ID token that is not for this relay (SignInRefused).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from ..errors import ProviderFailed, ProviderUnavailable, SignInRefused

DISCOVERY_PATH = "/.well-known/openid-configuration"
METADATA_SECONDS = 3600.0  # how long a discovery document (and its keys) is kept
LEEWAY_SECONDS = 60  # clock skew allowed between the provider and the relay
_REQUIRED_METADATA = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
# Errors the provider sends back to the redirect URI when the person, not the provider, is why
# there is no sign-in (OpenID Connect Core 3.1.2.6, RFC 6749 4.1.2.1).
REFUSALS = frozenset({"access_denied", "login_required", "consent_required",
                      "interaction_required", "account_selection_required"})
_CLAIM_REASONS = {"iss": "issuer_mismatch", "aud": "wrong_audience", "nonce": "nonce_mismatch",
                  "azp": "wrong_audience", "iat": "issued_in_future", "nbf": "not_yet_valid",
                  "at_hash": "access_token_mismatch"}


@dataclass(frozen=True)
class ClientConfig:
    issuer: str
    client_id: str
    client_secret: str | None  # None: a public client (PKCE alone)
    scopes: str


class OpenIdProvider:
    def __init__(self, config: ClientConfig, timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport,
                                       headers={"Accept": "application/json"})
        self._auth = ClientAuth(config.client_id, config.client_secret,
                                "client_secret_basic" if config.client_secret else "none")
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._fetched = 0.0
        self._lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ----- discovery ---------------------------------------------------------------------
    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached), checked against the configured issuer."""
        async with self._lock:
            if self._metadata is None or time.monotonic() - self._fetched > METADATA_SECONDS:
                self._metadata = await self._discover()
                self._keys = None
                self._fetched = time.monotonic()
            return self._metadata

    async def _discover(self) -> dict[str, Any]:
        issuer = self.config.issuer
        document = await self._get_json(issuer.rstrip("/") + DISCOVERY_PATH, "discovery document")
        missing = [name for name in _REQUIRED_METADATA if not isinstance(document.get(name), str)]
        if missing:
            raise ProviderFailed("bad_discovery", f"the identity provider's discovery document "
                                 f"lacks {', '.join(missing)}")
        if document["issuer"] != issuer:  # OpenID Connect Discovery 1.0, section 4.3
            raise ProviderFailed("issuer_mismatch", f"the identity provider calls itself "
                                 f"{document['issuer']!r}, but RELAY_OIDC_ISSUER is {issuer!r}; "
                                 "they must be the same string")
        if "code" not in document.get("response_types_supported", ["code"]):
            raise ProviderFailed("bad_discovery", "the identity provider does not offer the "
                                 "authorization-code flow")
        return document

    async def _key_set(self, refresh: bool = False) -> KeySet:
        metadata = await self.metadata()
        if self._keys is None or refresh:
            document = await self._get_json(metadata["jwks_uri"], "signing keys")
            try:
                self._keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise ProviderFailed("bad_keys", "the identity provider's signing keys cannot "
                                     f"be read ({exc})") from exc
        return self._keys

    # ----- the flow ----------------------------------------------------------------------
    async def authorization_url(self, redirect_uri: str, state: str, nonce: str,
                                verifier: str) -> str:
        """Where to send the browser: the provider's authorization endpoint, asking for a code
        bound to `state`, `nonce` and the PKCE challenge of `verifier`."""
        metadata = await self.metadata()
        url: str = prepare_grant_uri(
            metadata["authorization_endpoint"], client_id=self.config.client_id,
            response_type="code", redirect_uri=redirect_uri, scope=self.config.scopes,
            state=state, nonce=nonce, code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256")
        return url

    async def exchange(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        """The token response for an authorization code (it holds the ID token)."""
        metadata = await self.metadata()
        body = prepare_token_request("authorization_code", code=code, redirect_uri=redirect_uri,
                                     code_verifier=verifier)
        url, headers, body = self._auth.prepare(
            "POST", metadata["token_endpoint"],
            {"Content-Type": "application/x-www-form-urlencoded"}, body)
        try:
            response = await self._http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise _unreachable("token endpoint", exc) from exc
        answer = _json_of(response)
        if response.status_code == 400 and answer.get("error") == "invalid_grant":
            raise SignInRefused("code_refused", "the identity provider refused the sign-in "
                                "code: it was used already, has expired, or belongs to another "
                                "sign-in. Start again.")
        if response.status_code in (400, 401) and answer.get("error") == "invalid_client":
            raise ProviderFailed("client_refused", "the identity provider does not accept the "
                                 "relay's client (check RELAY_OIDC_CLIENT_ID and "
                                 "RELAY_OIDC_CLIENT_SECRET)")
        if response.status_code != 200 or not isinstance(answer.get("id_token"), str):
            error = answer.get("error") or f"HTTP {response.status_code}"
            raise ProviderFailed("token_failed", f"the identity provider's token endpoint "
                                 f"gave no ID token ({error})")
        return answer

    async def id_token_claims(self, id_token: str, nonce: str, access_token: str | None,
                              now: int | None = None) -> dict[str, Any]:
        """The claims of an ID token, once its signature and claims are checked."""
        metadata = await self.metadata()
        algorithms = [alg for alg in metadata.get("id_token_signing_alg_values_supported",
                                                  ["RS256"])
                      if alg != "none" and not alg.startswith("HS")]
        registry = JWSRegistry(algorithms=algorithms)
        try:
            try:
                token = jwt.decode(id_token, await self._key_set(), registry=registry)
            except InvalidKeyIdError:  # keys rotated since they were fetched
                token = jwt.decode(id_token, await self._key_set(refresh=True),
                                   registry=registry)
        except BadSignatureError as exc:
            raise SignInRefused("bad_signature", "the ID token's signature does not verify "
                                "with the identity provider's keys") from exc
        except JoseError as exc:
            raise SignInRefused("invalid_id_token", f"the ID token cannot be read ({exc})") from exc
        params: dict[str, Any] = {"nonce": nonce, "client_id": self.config.client_id}
        if access_token:
            params["access_token"] = access_token
        claims = CodeIDToken(
            token.claims, token.header,
            {"iss": {"essential": True, "value": self.config.issuer},
             "aud": {"essential": True, "value": self.config.client_id},
             "sub": {"essential": True}}, params)
        try:
            claims.validate(now=now, leeway=LEEWAY_SECONDS)
        except ExpiredTokenError as exc:
            raise SignInRefused("expired", "the ID token has expired (or the identity "
                                "provider's clock is far behind the relay's)") from exc
        except ClaimError as exc:
            reason = _CLAIM_REASONS.get(exc.claim, "invalid_id_token")
            raise SignInRefused(reason, _claim_message(exc.claim, token.claims,
                                                       self.config)) from exc
        return dict(claims)

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """The userinfo endpoint's claims, or {} when the provider has none."""
        endpoint = (await self.metadata()).get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return {}
        return await self._get_json(endpoint, "userinfo",
                                    {"Authorization": f"Bearer {access_token}"})

    async def _get_json(self, url: str, what: str,
                        headers: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            response = await self._http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise _unreachable(what, exc) from exc
        document = _json_of(response)
        if response.status_code != 200 or not document:
            raise ProviderFailed("bad_answer", f"the identity provider's {what} at {url} "
                                 f"answered HTTP {response.status_code} without a JSON object")
        return document


def _json_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _unreachable(what: str, exc: httpx.HTTPError) -> ProviderUnavailable:
    return ProviderUnavailable("provider_unreachable", f"the identity provider cannot be "
                               f"reached ({what}: {type(exc).__name__}); try again later")


def _claim_message(claim: str, claims: dict[str, Any], config: ClientConfig) -> str:
    if claim == "iss":
        return (f"the ID token was issued by {str(claims.get('iss'))[:200]!r}, not by "
                f"{config.issuer!r}")
    if claim in ("aud", "azp"):
        return (f"the ID token is meant for {str(claims.get(claim))[:200]!r}, not for this "
                f"relay ({config.client_id!r})")
    if claim == "nonce":
        return "the ID token does not belong to this sign-in (its nonce differs)"
    if claim in ("iat", "nbf"):
        return ("the ID token is not valid yet (the identity provider's clock is ahead of "
                "the relay's)")
    return f"the ID token's {claim!r} claim is missing or invalid"
