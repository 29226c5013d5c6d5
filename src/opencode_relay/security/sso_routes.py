"""Single sign-on's two pages: `/sso/login` sends the browser to the identity provider,
`/sso/callback` takes it back and makes the relay's browser login (the same cookie as a token
login). Browser navigations, not API calls: they answer redirects, and failures as HTML pages
(api.errors.error_page), each with its status: 400 for a state that is missing, used, expired or
from another browser; 401 when the provider or the ID token's checks refuse; 502 when the
provider answers against the protocol; 503 when it cannot be reached.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from redis.exceptions import RedisError

from ..api.errors import error_page
from ..audit import audited, note
from ..errors import RelayError, SignInFailed, SignInOff
from ..relay import Relay
from .routes import set_login_cookie
from .sso import SingleSignOn

router = APIRouter(prefix="/sso", include_in_schema=False)

BINDING_COOKIE = "ocr_sso"  # ties a sign-in to the browser that started it
CALLBACK = "/sso/callback"
_NO_STORE = {"Cache-Control": "no-store"}  # answers that set cookies are nobody's to keep


def _sso(relay: Relay) -> SingleSignOn:
    if relay.sso is None or not relay.settings.auth_enabled:
        raise SignInOff()
    return relay.sso


def redirect_uri(request: Request, relay: Relay) -> str:
    """Where the provider sends the browser back: under RELAY_PUBLIC_URL, or else under the
    address the browser used (the provider must have it registered either way)."""
    base = relay.settings.public_url or str(request.base_url)
    return base.rstrip("/") + CALLBACK


@router.get("/login")
async def sign_in(request: Request) -> Response:
    relay: Relay = request.state.relay
    try:
        started = await _sso(relay).begin(redirect_uri(request, relay))
    except (RelayError, RedisError, OSError) as exc:
        return error_page(exc)
    response = RedirectResponse(started.url, status_code=303, headers=_NO_STORE)
    # Lax, not Strict: the provider's redirect back is a cross-site navigation.
    response.set_cookie(BINDING_COOKIE, started.binding,
                        max_age=int(relay.settings.oidc_login_seconds), path="/sso",
                        secure=relay.settings.cookie_secure, httponly=True, samesite="lax")
    return response


@router.get("/callback", openapi_extra=audited("auth.login"))
async def callback(request: Request) -> Response:
    relay: Relay = request.state.relay
    try:
        principal, cookie = await _sso(relay).finish(dict(request.query_params),
                                                      request.cookies.get(BINDING_COOKIE))
    except SignInFailed as exc:  # the binding cookie stays: a forged callback must not end a
        note(principal=None, method="sso", reason=exc.reason)  # sign-in this browser began
        return error_page(exc)
    except (RelayError, RedisError, OSError) as exc:
        note(principal=None, method="sso")
        return error_page(exc)
    note(principal=principal.id, method="sso")
    # The app's page loads without a credential; its own (same-site) requests then carry the
    # SameSite=Strict cookie, which this cross-site-initiated redirect itself would not.
    response = RedirectResponse("/", status_code=303, headers=_NO_STORE)
    set_login_cookie(response, cookie, relay.settings)
    response.delete_cookie(BINDING_COOKIE, path="/sso", secure=relay.settings.cookie_secure,
                           httponly=True, samesite="lax")
    return response
