"""Browser login: an API token in, an HttpOnly session cookie out (single sign-on makes the same
login: sso_routes.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from ..api.schemas import GATED, OTHER_CLIENT_ERRORS, Done, Identity, LoginOptions, errors, ok
from ..audit import audited, note
from ..config import Settings
from ..errors import Unauthenticated
from ..relay import Relay
from .gate import COOKIE, Guard, _cookies, _headers
from .principal import LOCAL, current_principal
from .sso import PRINCIPAL_PREFIX
from .tokens import digest

router = APIRouter(prefix="/api")


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=200)


def _guard(request: Request) -> Guard:
    guard: Guard = request.state.guard  # put there by the lifespan (app.State)
    return guard


@router.post("/login", openapi_extra=audited("auth.login"),
             responses={**ok(Identity, description="Logged in: the cookie is set"),
                        **errors(401, 413, 422, 502, 503), **OTHER_CLIENT_ERRORS})
async def login(body: Login, request: Request) -> JSONResponse:
    guard = _guard(request)
    if not guard.settings.auth_enabled:
        return JSONResponse({"principal": LOCAL.public(), "auth": False})
    made = await guard.tokens.login(body.token, guard.settings.login_ttl_seconds)
    if made is None:
        note(principal=None)  # who tried is unknown; the token given is never recorded
        raise Unauthenticated("the API token is not valid")
    principal, cookie = made
    note(principal=principal.id)
    response = JSONResponse({"principal": principal.public(), "auth": True})
    set_login_cookie(response, cookie, guard.settings)
    return response


def set_login_cookie(response: Response, cookie: str, settings: Settings) -> None:
    """The browser login's cookie, whichever way the login was made (token or single sign-on):
    HttpOnly, SameSite=Strict, Secure unless RELAY_COOKIE_SECURE is off."""
    response.set_cookie(COOKIE, cookie, max_age=int(settings.login_ttl_seconds), path="/",
                        secure=settings.cookie_secure, httponly=True, samesite="strict")


@router.get("/login", responses={**ok(LoginOptions), **errors(413, 502, 503),
                                 **OTHER_CLIENT_ERRORS})
async def login_options(request: Request) -> Any:
    """How a browser may sign in here (the sign-in page asks before it shows itself)."""
    relay: Relay = request.state.relay
    auth = relay.settings.auth_enabled
    return {"auth": auth, "sso": auth and relay.sso is not None}


@router.post("/logout", openapi_extra=audited("auth.logout"),
             responses={**ok(Done, description="The login cookie is revoked and cleared"),
                        **errors(413, 502, 503), **OTHER_CLIENT_ERRORS})
async def logout(request: Request) -> JSONResponse:
    guard = _guard(request)
    cookie = _cookies(_headers(request.scope)).get(COOKIE)
    if cookie:
        ended = None
        if guard.settings.auth_enabled:  # whose login ends (logout is a public path)
            ended = await guard.tokens.resolve_login(cookie)
            note(principal=ended.id if ended else None)
        await guard.tokens.logout(cookie)
        if ended is not None and ended.id.startswith(PRINCIPAL_PREFIX):
            # A single sign-on's groups were recorded for as long as its login lasts.
            await guard.access.teams.groups.signed_out(ended.id, digest(cookie))
    response = JSONResponse({"ok": True})
    response.delete_cookie(COOKIE, path="/", secure=guard.settings.cookie_secure, httponly=True,
                           samesite="strict")
    return response


@router.get("/me", responses={**ok(Identity), **GATED})
async def me(request: Request) -> Any:
    principal = current_principal() or LOCAL
    return {"principal": principal.public(), "auth": _guard(request).settings.auth_enabled}
