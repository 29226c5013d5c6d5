"""The OpenAPI document says what the routes take and give: checked on the document itself.

The live check (schemathesis against a running relay) is `make contract`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from opencode_relay.app import create_app
from opencode_relay.config import Settings
from opencode_relay.ids import check_id

pytestmark = pytest.mark.unit

ERROR_REF = "#/components/schemas/ErrorBody"
ID_PREFIXES = {"sid": "ses", "mid": "msg", "pty_id": "pty", "share_id": "shr"}
STREAMS = {"/api/events", "/api/sessions/{sid}/events"}


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return create_app(Settings(redis_url="redis://127.0.0.1:1/0")).openapi()


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def _prefix(path: str, name: str) -> str:
    if name == "request_id":
        return "per" if "/permissions/" in path else "que"
    return ID_PREFIXES[name]


def _accepted_by_relay(kind: str, value: str) -> bool:
    try:
        check_id(kind, kind, value)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("value", ["ses_abc", "ses", "sesX", "ses_" + "a" * 124, "ses_" + "a" * 125,
                                   "ses/x", "ses x", "msg_abc", "", "ses_ä"])
def test_session_id_pattern_agrees_with_check_id(spec: dict[str, Any], value: str) -> None:
    parameter = next(p for p in spec["paths"]["/api/sessions/{sid}"]["get"]["parameters"]
                     if p["name"] == "sid")
    documented = re.search(parameter["schema"]["pattern"], value) is not None
    assert documented == _accepted_by_relay("ses", value)


def test_every_path_id_has_its_prefix_pattern(spec: dict[str, Any]) -> None:
    seen = 0
    for _method, path, operation in _operations(spec):
        for parameter in operation.get("parameters", []):
            if parameter["in"] != "path":
                continue
            # opencode's provider ids have no prefix; team names are names (teams.NAME_PATTERN)
            if parameter["name"] in ("provider_id", "team"):
                assert parameter["schema"]["pattern"].startswith("^[A-Za-z0-9]"), path
                continue
            prefix = _prefix(path, parameter["name"])
            assert parameter["schema"]["pattern"] == rf"^{prefix}[A-Za-z0-9_-]{{1,125}}$", path
            seen += 1
    assert seen >= 18


def test_every_error_response_is_the_error_body(spec: dict[str, Any]) -> None:
    for method, path, operation in _operations(spec):
        statuses = set(operation["responses"])
        assert {"502", "503", "413"} <= statuses, (method, path)
        if path not in ("/api/login", "/api/logout"):
            assert "401" in statuses, (method, path)
        # A bad path id is a 400 (as ids.check_id answers); other bad input is a 422.
        if any(p["in"] == "path" for p in operation.get("parameters", [])):
            assert "400" in statuses, (method, path)
        if any(p["in"] != "path" for p in operation.get("parameters", [])) or (
                "requestBody" in operation):
            assert "422" in statuses, (method, path)
        assert "4XX" in statuses, (method, path)  # 405 and the like
        for status, response in operation["responses"].items():
            if status[0] not in "45":
                continue
            schema = response["content"]["application/json"]["schema"]
            refs = [schema.get("$ref")] + [s.get("$ref") for s in schema.get("anyOf", [])]
            assert ERROR_REF in refs, (method, path, status)


def test_every_success_has_a_schema(spec: dict[str, Any]) -> None:
    for method, path, operation in _operations(spec):
        (response,) = [r for s, r in operation["responses"].items() if s.startswith("2")]
        if path in STREAMS:
            assert list(response["content"]) == ["text/event-stream"], path
            assert response["content"]["text/event-stream"]["itemSchema"]["required"] == ["data"]
        else:
            assert response["content"]["application/json"]["schema"].get("$ref"), (method, path)


def test_every_reference_resolves(spec: dict[str, Any]) -> None:
    found = re.findall(r"'\$ref': '#/components/schemas/([^']+)'", str(spec))
    assert found
    assert set(found) <= set(spec["components"]["schemas"])


def test_links_name_real_operations(spec: dict[str, Any]) -> None:
    links = spec["paths"]["/api/sessions"]["post"]["responses"]["200"]["links"]
    assert len(links) >= 12
    for link in links.values():
        pointer = link["operationRef"].removeprefix("#/paths/")
        path, method = pointer.rsplit("/", 1)
        assert method in spec["paths"][path.replace("~1", "/").replace("~0", "~")]
