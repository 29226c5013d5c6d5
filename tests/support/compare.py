"""The check every scenario ends with: the relay's transcript equals opencode's own."""

from __future__ import annotations

import httpx

from .stack import wait_for


def relay_transcript(api: httpx.Client, sid: str) -> list[dict]:
    response = api.get(f"/api/sessions/{sid}/messages")
    assert response.status_code == 200, response.text
    return response.json()["messages"]


def assert_same_as_opencode(api: httpx.Client, oc: httpx.Client, sid: str,
                            timeout: float = 30) -> list[dict]:
    """Waits until the relay has ingested everything, then compares field for field."""
    def same() -> list[dict] | None:
        theirs = oc.get(f"/session/{sid}/message").json()
        ours = relay_transcript(api, sid)
        return ours if ours == theirs else None

    try:
        return wait_for(same, timeout, "the relay's transcript to equal opencode's")
    except AssertionError:
        theirs = oc.get(f"/session/{sid}/message").json()
        ours = relay_transcript(api, sid)
        assert ours == theirs  # shows the difference
        raise
