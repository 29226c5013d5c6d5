"""The API contract: schemathesis against a live relay, auth off and on (scripts/contract_check.py).

A test of its own so `make test` runs it in parallel with the rest; `make contract` runs it alone.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration


@pytest.mark.timeout(2000)
def test_schemathesis_finds_nothing_with_auth_off_or_on() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "contract_check.py")],
                         cwd=ROOT, capture_output=True, text=True, timeout=1900)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert "contract: 2 passed, 0 failed" in run.stdout
