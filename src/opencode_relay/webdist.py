"""Where the built web UI lives (scripts/build-web.sh writes it; app.py, api/shared.py serve it)."""

from __future__ import annotations

from pathlib import Path

WEB_DIST = Path(__file__).parent / "web" / "dist"
