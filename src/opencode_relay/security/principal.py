"""The caller of the current request, as set by the gate."""

from __future__ import annotations

from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    id: str
    name: str
    admin: bool
    terminal: bool = False  # granted a shell on the opencode machine (`token create --terminal`)
    groups: tuple[str, ...] = ()  # the identity provider's group names (OIDC logins only)

    @property
    def may_open_terminal(self) -> bool:
        """Admins always may; others only with the `terminal` grant."""
        return self.admin or self.terminal

    def public(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "admin": self.admin,
                "terminal": self.may_open_terminal}


# With auth off, every caller is this one (it sees everything, like opencode itself would).
LOCAL = Principal("local", "local", True)

# A contextvar, not a parameter, so `Relay.session` can enforce ownership for every route at
# once. Unset means "no authenticated caller": access checks then deny.
_current: ContextVar[Principal | None] = ContextVar("opencode_relay_principal", default=None)


def current_principal() -> Principal | None:
    return _current.get()


def set_principal(principal: Principal | None) -> Token[Principal | None]:
    return _current.set(principal)


def reset_principal(token: Token[Principal | None]) -> None:
    _current.reset(token)
