"""The relay's domain errors: what went wrong, in the relay's terms.

Raised anywhere below the API (look-ups, access checks, the gate, the store). Only `api/errors.py`
turns them into HTTP answers, so no other module knows about status codes.
"""

from __future__ import annotations


class RelayError(Exception):
    """A failure the caller should be told about. `code` is stable; `message` is for people."""

    code = "relay_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(RelayError):
    """The request names something malformed or unknown (an id, a model, a directory)."""

    code = "bad_request"


class InvalidEventId(InvalidInput):
    """A resume position that is not an event-log id."""

    code = "bad_event_id"


class NotFound(RelayError):
    """No such thing, or the caller may not know it exists (never distinguished)."""

    code = "not_found"

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident!r} was not found")


class PushDisabled(NotFound):
    """Web Push is turned off on this relay (RELAY_PUSH=false)."""

    code = "push_disabled"

    def __init__(self) -> None:
        RelayError.__init__(self, "Web Push is turned off on this relay (RELAY_PUSH=false)")


class ShareNotFound(NotFound):
    """A share link that never existed, was revoked, or has expired (never distinguished)."""

    code = "share_not_found"

    def __init__(self) -> None:
        RelayError.__init__(self, "this share link does not exist, was revoked or has expired; "
                            "ask the session's owner for a new one")


class SearchDisabled(NotFound):
    """Search across sessions is turned off on this relay (RELAY_SEARCH=false)."""

    code = "search_disabled"

    def __init__(self) -> None:
        RelayError.__init__(self, "search is turned off on this relay (RELAY_SEARCH=false)")


class Busy(RelayError):
    """The session is working, and opencode refuses the action until it is idle."""

    code = "session_busy"


class MessageIdTaken(RelayError):
    """A new message's id (`messageID`) that a message of another session has: opencode
    fails on it with a bare 500."""

    code = "message_id_taken"


class Unauthenticated(RelayError):
    code = "unauthorized"

    def __init__(self, message: str = "a valid API token or login is required") -> None:
        super().__init__(message)


class Forbidden(RelayError):
    code = "forbidden"


class TerminalNotGranted(Forbidden):
    """Terminals are for admins and principals granted `terminal`."""

    code = "terminal_not_granted"

    def __init__(self) -> None:
        super().__init__("opening a terminal needs an admin token or one created with "
                         "`opencode-relay token create --terminal`")


class RoleRefused(Forbidden):
    """A teammate's role does not allow this action on a team's session (a viewer's prompt)."""

    code = "role_refused"


class CrossOrigin(Forbidden):
    """A browser request from a page of another origin (not in RELAY_CORS_ORIGINS)."""

    code = "cross_origin"


class LoopbackOnly(Forbidden):
    """Auth was left unset, so the relay serves this machine only."""

    code = "loopback_only"

    def __init__(self) -> None:
        super().__init__(
            "this relay has no authentication turned on, so it answers only requests from this "
            "machine; set RELAY_AUTH=true (and create a token) to serve others, "
            "or RELAY_AUTH=false to serve everyone without one")


class RateLimited(RelayError):
    code = "rate_limited"

    def __init__(self, what: str, retry_after_seconds: int) -> None:
        super().__init__(f"too many {what}; retry in {retry_after_seconds}s")
        self.retry_after_seconds = retry_after_seconds


class BodyTooLarge(RelayError):
    code = "body_too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body exceeds {limit} bytes")


class AttachmentTooLarge(RelayError):
    """A file attached to a prompt is larger than RELAY_MAX_ATTACHMENT_BYTES."""

    code = "attachment_too_large"

    def __init__(self, name: str, limit: int) -> None:
        super().__init__(f"the attachment {name!r} exceeds {limit} bytes")


class UnsupportedMediaType(RelayError):
    """An attachment whose type the relay does not pass on (images, PDF and text only)."""

    code = "unsupported_media_type"


class InputRefused(RelayError):
    """A terminal's input broke a bound (frame size or rate): the terminal is closed."""

    code = "terminal_input_refused"

    def __init__(self, message: str, too_big: bool) -> None:
        super().__init__(message)
        self.too_big = too_big


class SessionEnded(RelayError):
    """The login or token that opened a long-lived connection ended (logout, revoke, expiry)."""

    code = "credential_ended"


class SignInFailed(RelayError):
    """Single sign-on (OpenID Connect) did not sign the browser in. `reason` is a stable word
    for the audit log; the message is for the person at the browser."""

    code = "sign_in_failed"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SignInStateInvalid(SignInFailed):
    """The callback's state is missing, unknown, used already, expired, or from another
    browser: nothing was asked of the identity provider."""

    code = "sign_in_state_invalid"


class SignInRefused(SignInFailed):
    """The identity provider, or the relay's checks of what it sent, refused this sign-in: the
    person declined, the code was replayed, or the ID token is not for this relay."""

    code = "sign_in_refused"


class ProviderFailed(SignInFailed):
    """The identity provider answered, but not as OpenID Connect says it must."""

    code = "identity_provider_error"


class ProviderUnavailable(SignInFailed):
    """The identity provider could not be reached (refused, timed out)."""

    code = "identity_provider_unavailable"


class SignInOff(NotFound):
    """Single sign-on is not configured, or RELAY_AUTH is off (nobody signs in)."""

    code = "sign_in_off"

    def __init__(self) -> None:
        RelayError.__init__(self, "single sign-on is not turned on for this relay "
                            "(RELAY_OIDC_ISSUER and RELAY_OIDC_CLIENT_ID, with RELAY_AUTH on)")


class Starting(RelayError):
    code = "starting"

    def __init__(self) -> None:
        super().__init__("the relay is starting")


class Stopping(RelayError):
    code = "stopping"

    def __init__(self) -> None:
        super().__init__("the relay is shutting down")


class UpstreamUnavailable(RelayError):
    """opencode could not be reached (connection refused, timeout, broken stream)."""

    code = "opencode_unavailable"


class UpstreamError(RelayError):
    """opencode answered with an error status."""

    code = "opencode_error"

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ConfigurationError(Exception):
    """A setting that cannot work (a Redis that cannot be reached, a Sentinel that names no
    primary): the relay refuses to start and says, in one line, what to fix. Not a RelayError:
    it never reaches a route."""
