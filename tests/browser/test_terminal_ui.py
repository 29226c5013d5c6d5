"""The terminal panel in the browser, against the real opencode: type a command, see its output,
reload and find the same shell."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from tests.browser.helpers import new_session, open_session, shot
from tests.support.proxy import CuttableProxy
from tests.support.secured import bearer, make_token, relay_cli, token_id
from tests.support.stack import RelayProcess

pytestmark = pytest.mark.browser

ROWS = "[data-testid=terminal] .xterm-rows"


def _lines(page) -> list[str]:
    return page.evaluate(f"""() => [...document.querySelectorAll('{ROWS} > div')]
        .map(row => row.textContent.replace(/\\u00a0/g, ' ').trimEnd())""")


def _wait_line(page, line: str) -> None:
    page.wait_for_function(f"""(line) => [...document.querySelectorAll('{ROWS} > div')]
        .some(row => row.textContent.replace(/\\u00a0/g, ' ').trimEnd() === line)""",
                           arg=line, timeout=20_000)


def test_echo_in_the_terminal_shows_its_output_and_a_reload_reattaches(
        ui: str, api: httpx.Client, new_page) -> None:
    sid = new_session(api, "terminal in the browser")
    page = new_page()
    open_session(page, ui, sid)
    page.get_by_test_id("terminal-open").click()
    screen = page.get_by_test_id("terminal")
    screen.wait_for(state="visible")
    page.wait_for_selector("[data-testid=terminal][data-state=open]")
    pty_id = screen.get_attribute("data-pty-id")
    assert pty_id and pty_id.startswith("pty")
    page.locator("[data-testid=terminal] .xterm").click()
    page.keyboard.type('echo "hel""lo"')
    page.keyboard.press("Enter")
    # A line that is exactly "hello": the shell's answer, not the typed command (with quotes),
    # so the keystrokes reached the shell and its output came back. (How the typed line itself
    # is drawn may change while the panel settles: a resize makes bash redraw it.)
    _wait_line(page, "hello")
    # The shell's size is the panel's: fitted below xterm's default 80 columns (the side panel
    # is narrower), and the shell was told (stty reads the PTY's size).
    page.keyboard.type("stty size")
    page.keyboard.press("Enter")
    page.wait_for_function(f"""() => [...document.querySelectorAll('{ROWS} > div')]
        .some(row => /^\\d+ \\d+$/.test(row.textContent.replace(/\\u00a0/g, ' ').trim()))""")
    size = next(line for line in _lines(page) if line.replace(" ", "").isdigit())
    rows, cols = map(int, size.split())
    assert 20 <= cols < 80 and rows >= 5, size
    shot(page, "terminal-open")

    page.reload()
    page.wait_for_selector("[data-testid=terminal][data-state=open]")
    assert page.get_by_test_id("terminal").get_attribute("data-pty-id") == pty_id
    _wait_line(page, "hello")  # the same shell's output, replayed
    page.locator("[data-testid=terminal] .xterm").click()
    page.keyboard.type("echo again-$((40+2))")
    page.keyboard.press("Enter")
    _wait_line(page, "again-42")
    shot(page, "terminal-reattached")

    # Ending it closes the shell: the panel offers a new one.
    page.get_by_test_id("terminal-end").click()
    page.get_by_test_id("terminal-open").wait_for(state="visible")
    assert "exited" in page.get_by_test_id("terminal-status").inner_text()
    page.errors.check()


def test_a_dropped_connection_reconnects_where_it_left_off(
        proxy: CuttableProxy, api: httpx.Client, new_page) -> None:
    sid = new_session(api, "terminal through a cuttable proxy")
    page = new_page()
    open_session(page, proxy.url, sid)
    page.get_by_test_id("terminal-open").click()
    page.wait_for_selector("[data-testid=terminal][data-state=open]")
    page.locator("[data-testid=terminal] .xterm").click()
    page.keyboard.type("echo before-$((6*7))")
    page.keyboard.press("Enter")
    _wait_line(page, "before-42")
    page.wait_for_timeout(300)  # the prompt after it has arrived too
    assert proxy.cut() >= 1
    page.wait_for_selector("[data-testid=terminal][data-state=closed]")
    page.wait_for_selector("[data-testid=terminal][data-state=open]", timeout=15_000)
    page.locator("[data-testid=terminal] .xterm").click()
    page.keyboard.type("echo after-$((6*7))")
    page.keyboard.press("Enter")
    _wait_line(page, "after-42")
    # Resumed from its cursor: nothing replayed twice.
    assert _lines(page).count("before-42") == 1, _lines(page)
    page.errors.check()


@pytest.fixture(scope="module")
def secured_ui(web_built: Path, stack_dir: Path, redis_server: EmbeddedRedis,
               opencode: EmbeddedOpencode) -> Iterator[RelayProcess]:
    """A relay with RELAY_AUTH on (plain http here, so the cookie is not `Secure`)."""
    process = RelayProcess(redis_server.url, opencode.url, stack_dir / "terminal-ui.log",
                           extra_env={"RELAY_AUTH": "true", "RELAY_COOKIE_SECURE": "false",
                                      "RELAY_TERMINAL_RECHECK_SECONDS": "0.5"}).start()
    yield process
    process.stop()


def _sign_in(page, base: str, token: str, sid: str) -> None:
    page.goto(f"{base}/?session={sid}")
    page.get_by_test_id("login-token").fill(token)
    page.get_by_test_id("login-submit").click()
    page.wait_for_selector("[data-testid=principal]")
    page.wait_for_selector("[data-testid=session-title]:not(:text('Loading…'))")


def test_the_panel_is_hidden_without_the_grant_and_a_revoked_token_ends_the_terminal(
        secured_ui: RelayProcess, new_page) -> None:
    granted = make_token(secured_ui, "gina", terminal=True)
    plain = make_token(secured_ui, "nora")
    sessions = {}
    for name, token in (("gina", granted), ("nora", plain)):
        made = httpx.post(f"{secured_ui.url}/api/sessions", headers=bearer(token),
                          json={"title": f"{name}'s session"}, timeout=60)
        assert made.status_code == 200, made.text
        sessions[name] = made.json()["id"]

    page = new_page()
    _sign_in(page, secured_ui.url, plain, sessions["nora"])
    page.wait_for_selector("[data-testid=todo-list]")
    # /api/me has answered (the principal is shown): the panel stays hidden for nora.
    assert page.evaluate("() => document.querySelector('[data-testid=terminal-open]')"
                         ".closest('section').hidden") is True
    assert not page.get_by_test_id("terminal-open").is_visible()
    shot(page, "terminal-not-granted")
    page.errors.check()

    page = new_page()
    _sign_in(page, secured_ui.url, granted, sessions["gina"])
    page.get_by_test_id("terminal-open").click()
    page.wait_for_selector("[data-testid=terminal][data-state=open]")
    page.locator("[data-testid=terminal] .xterm").click()
    page.keyboard.type("echo signed-in")
    page.keyboard.press("Enter")
    _wait_line(page, "signed-in")
    done = relay_cli(secured_ui, "token", "revoke", token_id(secured_ui, "gina"))
    assert done.returncode == 0, done.stderr
    page.wait_for_selector("[data-testid=terminal][data-state=closed]", timeout=10_000)
    status = page.get_by_test_id("terminal-status")
    status.wait_for(state="visible")
    assert "ended" in status.inner_text()
    shot(page, "terminal-revoked")
