"""The web UI's list of event types (web/src/events.js) agrees with the relay's (events.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from opencode_relay import events

pytestmark = pytest.mark.unit

EVENTS_JS = Path(__file__).resolve().parents[1] / "web" / "src" / "events.js"
LOAD = """
import(process.argv[1]).then((m) => {
  process.stdout.write(JSON.stringify({
    STATEFUL: [...m.STATEFUL], RELAY_NOTICES: [...m.RELAY_NOTICES],
  }));
});
"""


@pytest.fixture(scope="module")
def ui_events() -> dict[str, list[str]]:
    node = shutil.which("node")
    assert node, "node is needed to read web/src/events.js (the web UI is built with it)"
    done = subprocess.run([node, "--input-type=module", "-e", LOAD, EVENTS_JS.as_uri()],
                          capture_output=True, text=True, timeout=30, check=True)
    return json.loads(done.stdout)


def test_the_ui_applies_exactly_the_stateful_events(ui_events: dict[str, list[str]]) -> None:
    assert len(ui_events["STATEFUL"]) == len(set(ui_events["STATEFUL"]))
    assert set(ui_events["STATEFUL"]) == events.STATEFUL


def test_the_ui_knows_every_relay_notice(ui_events: dict[str, list[str]]) -> None:
    assert set(ui_events["RELAY_NOTICES"]) == events.RELAY_NOTICES
