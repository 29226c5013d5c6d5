"""Terminal input bounds and the close codes that end a terminal's WebSocket."""

from __future__ import annotations

import time

import pytest

from opencode_relay.api.errors import close_of
from opencode_relay.errors import (
    InputRefused,
    SessionEnded,
    Stopping,
    TerminalNotGranted,
    UpstreamUnavailable,
)
from opencode_relay.security.principal import LOCAL, Principal
from opencode_relay.terminal.limits import InputLimit

pytestmark = pytest.mark.unit


def test_a_frame_over_the_size_bound_is_refused_as_too_big() -> None:
    limit = InputLimit(max_bytes=10, per_second=100)
    limit.admit(10)
    with pytest.raises(InputRefused) as refused:
        limit.admit(11)
    assert refused.value.too_big and "10-byte limit" in refused.value.message
    assert close_of(refused.value)[0] == 1009


def test_the_rate_bound_allows_a_burst_then_refills() -> None:
    limit = InputLimit(max_bytes=100, per_second=20)
    for _ in range(20):
        limit.admit(1)
    with pytest.raises(InputRefused) as refused:
        limit.admit(1)
    assert not refused.value.too_big and "over 20 messages per second" in refused.value.message
    assert close_of(refused.value)[0] == 1008
    time.sleep(0.2)  # 4 frames' worth refilled
    for _ in range(3):
        limit.admit(1)


def test_close_codes_and_reasons_fit_a_close_frame() -> None:
    assert close_of(SessionEnded("the login ended")) == (1008, "the login ended")
    assert close_of(Stopping())[0] == 1001
    assert close_of(UpstreamUnavailable("opencode is gone"))[0] == 1014
    assert close_of(RuntimeError("boom")) == (1011, "the relay hit an unexpected error")
    assert close_of(TerminalNotGranted()) == (1008, TerminalNotGranted().message)
    long = close_of(SessionEnded("é" * 200))[1]  # 400 bytes: cut on a character boundary
    assert len(long.encode()) <= 123 and long.endswith("...") and long.startswith("éé")


def test_admins_always_may_open_terminals_others_only_with_the_grant() -> None:
    assert LOCAL.may_open_terminal and LOCAL.public()["terminal"] is True
    assert Principal("tok_a", "a", admin=True).may_open_terminal
    assert Principal("tok_b", "b", admin=False, terminal=True).may_open_terminal
    assert not Principal("tok_c", "c", admin=False).may_open_terminal
    assert Principal("tok_c", "c", admin=False).public()["terminal"] is False
