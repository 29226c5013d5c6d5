"""Single sign-on: a browser signs in at the OpenID provider and comes back with a relay login.

`begin` makes a sign-in: a random `state`, `nonce` and PKCE verifier, kept in Redis (under the
state's digest, for `RELAY_OIDC_LOGIN_SECONDS`) with the redirect URI and the digest of a
binding secret the browser keeps in a cookie. `finish` takes the provider's answer: it reads the
state with GETDEL (a state works once), checks the binding (a sign-in started in one browser
cannot be finished in another), exchanges the code with the verifier, checks the ID token
(oidc.py) and makes the relay's ordinary browser login (`TokenStore.login_as`) for the principal:
issuer + `sub`, named by `name` or `email`, with the provider's groups. Those groups are also
recorded as the principal's, for as long as that login lasts (groups.py: who is notified of a
team's requests as a holder of its group).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from ..config import Settings
from ..errors import ProviderFailed, SignInRefused, SignInStateInvalid
from ..groups import GroupHolders
from ..store.keys import Keys
from .oidc import REFUSALS, ClientConfig, OpenIdProvider
from .principal import Principal
from .tokens import TokenStore, digest

PRINCIPAL_PREFIX = "oidc_"
MAX_GROUPS = 256  # groups kept per principal (the login record holds them)
MAX_GROUP_CHARS = 256
_MAX_PARAM_CHARS = 2048  # a callback parameter longer than this is not the provider's


@dataclass(frozen=True)
class Started:
    url: str  # the provider's authorization URL to send the browser to
    binding: str  # the secret the browser keeps (a cookie) until it comes back


def principal_id(issuer: str, subject: str) -> str:
    """The same id for the same person (issuer + `sub`) every time, safe in Redis key names."""
    return PRINCIPAL_PREFIX + hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()[:32]


def groups_of(claims: Mapping[str, Any], claim: str) -> tuple[str, ...]:
    """The group names in `claim` (a list of strings, or one string), bounded."""
    value = claims.get(claim)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return ()
    names = [g for g in value if isinstance(g, str) and 0 < len(g) <= MAX_GROUP_CHARS]
    return tuple(dict.fromkeys(names))[:MAX_GROUPS]


def principal_of(claims: Mapping[str, Any], issuer: str, groups_claim: str,
                 admin_group: str | None) -> Principal:
    subject = str(claims["sub"])
    name = next((str(claims[c]) for c in ("name", "email", "preferred_username")
                 if isinstance(claims.get(c), str) and claims[c].strip()), subject)
    groups = groups_of(claims, groups_claim)
    return Principal(principal_id(issuer, subject), name[:200],
                     admin=admin_group is not None and admin_group in groups, groups=groups)


class SingleSignOn:
    def __init__(self, provider: OpenIdProvider, redis: Redis, keys: Keys, tokens: TokenStore,
                 settings: Settings) -> None:
        self.provider = provider
        self.redis = redis
        self.keys = keys
        self.tokens = tokens
        self.settings = settings
        self.groups = GroupHolders(redis, keys)

    async def aclose(self) -> None:
        await self.provider.aclose()

    async def begin(self, redirect_uri: str) -> Started:
        state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        verifier, binding = secrets.token_urlsafe(64), secrets.token_urlsafe(32)
        # Discovery first: with the provider down nothing is stored.
        url = await self.provider.authorization_url(redirect_uri, state, nonce, verifier)
        record = {"nonce": nonce, "verifier": verifier, "redirect_uri": redirect_uri,
                  "binding": digest(binding)}
        await self.redis.set(self.keys.sso_state(digest(state)), json.dumps(record),
                             px=int(self.settings.oidc_login_seconds * 1000))
        return Started(url, binding)

    async def finish(self, params: Mapping[str, str],
                     binding: str | None) -> tuple[Principal, str]:
        """The principal signed in and its login cookie, from the provider's redirect back."""
        if any(len(value) > _MAX_PARAM_CHARS for value in params.values()):
            raise SignInStateInvalid("bad_callback", "this sign-in answer is malformed; "
                                     "start again")
        record = await self._take_state(params.get("state"))
        error = params.get("error")
        if error:
            described = f"{error}: {params.get('error_description', '')}".rstrip(": ")
            if error in REFUSALS:
                raise SignInRefused("provider_refused", "the identity provider did not sign "
                                    f"you in ({described[:300]})")
            raise ProviderFailed("provider_error", "the identity provider reported an error "
                                 f"({described[:300]})")
        if not binding or not hmac.compare_digest(digest(binding), record["binding"]):
            raise SignInStateInvalid("wrong_browser", "this sign-in was started in another "
                                     "browser (or its cookie was lost); start again here")
        code = params.get("code")
        if not code:
            raise SignInStateInvalid("missing_code", "the identity provider sent no "
                                     "authorization code; start again")
        token = await self.provider.exchange(code, record["verifier"], record["redirect_uri"])
        access_token = token.get("access_token")
        access_token = access_token if isinstance(access_token, str) else None
        claims = await self.provider.id_token_claims(token["id_token"], record["nonce"],
                                                     access_token)
        claims = await self._with_userinfo(claims, access_token)
        principal = principal_of(claims, self.provider.config.issuer,
                                 self.settings.oidc_groups_claim, self.settings.oidc_admin_group)
        ttl = self.settings.login_ttl_seconds
        cookie = await self.tokens.login_as(principal, ttl)
        await self.groups.record(principal.id, principal.groups, digest(cookie),
                                 time.time() + ttl)
        return principal, cookie

    async def _take_state(self, state: str | None) -> dict[str, str]:
        if not state:
            raise SignInStateInvalid("missing_state", "this sign-in answer carries no state; "
                                     "start again from the sign-in page")
        raw = await self.redis.getdel(self.keys.sso_state(digest(state)))
        if raw is None:
            raise SignInStateInvalid("unknown_state", "this sign-in was finished already, has "
                                     "expired, or was never started here; start again")
        record: dict[str, str] = json.loads(raw)
        return record

    async def _with_userinfo(self, claims: dict[str, Any],
                             access_token: str | None) -> dict[str, Any]:
        """Adds the userinfo endpoint's claims when the ID token lacks the profile or groups
        (providers put scope claims there); its `sub` must be the ID token's."""
        wanted = ("name", "email", self.settings.oidc_groups_claim)
        if access_token is None or all(claim in claims for claim in wanted):
            return claims
        extra = await self.provider.userinfo(access_token)
        if not extra:
            return claims
        if extra.get("sub") != claims["sub"]:
            raise SignInRefused("userinfo_mismatch", "the identity provider's userinfo is "
                                "about someone else than the ID token")
        return {**extra, **claims}


def build_sso(settings: Settings, redis: Redis, keys: Keys,
              tokens: TokenStore) -> SingleSignOn | None:
    """The single sign-on part, when RELAY_OIDC_ISSUER and RELAY_OIDC_CLIENT_ID are set."""
    issuer, client_id, secret = (settings.oidc_issuer, settings.oidc_client_id,
                                 settings.oidc_client_secret)
    if not (issuer and client_id):  # the settings have both or neither
        return None
    config = ClientConfig(issuer, client_id, secret.get_secret_value() if secret else None,
                          settings.oidc_scopes)
    return SingleSignOn(OpenIdProvider(config), redis, keys, tokens, settings)
