"""The terminal panel in the browser, against the real opencode: type a command, see its output,
reload and find the same shell."""

from __future__ import annotations

import httpx
import pytest

from tests.browser.helpers import new_session, open_session, shot

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
    # A line that is exactly "hello": the shell's answer, not the typed command (with quotes).
    _wait_line(page, "hello")
    assert 'echo "hel""lo"' in "".join(_lines(page))  # wrapped rows, joined
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
