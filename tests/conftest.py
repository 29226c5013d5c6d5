"""Fixtures for the real stack. Each test run starts its own Redis, opencode and relay."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from opencode_relay.launch.embedded import EmbeddedOpencode, EmbeddedRedis
from opencode_relay.store.keys import Keys
from opencode_relay.testing.scripted_provider import ScriptedProvider
from tests.support.redis_under_test import RedisServer, redis_client, start_redis
from tests.support.stack import RelayProcess, start_opencode


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session", autouse=True)
def workspace_roots(tmp_path_factory: pytest.TempPathFactory, stack_dir: Path) -> Iterator[Path]:
    """Every relay of this run (they inherit the environment) takes the run's whole temporary
    folder as its workspace root, so the stack's project (the default directory) and the
    sibling project folders tests make (under `opencode.directory.parent`, or `tmp_path`) are
    all allowed."""
    root = tmp_path_factory.getbasetemp()
    project = stack_dir / "opencode" / "project"
    project.mkdir(parents=True, exist_ok=True)  # also for in-process relays without opencode
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RELAY_WORKSPACE_ROOTS", str(root))
        patch.setenv("OPENCODE_DEFAULT_DIRECTORY", str(project))
        yield root


@pytest.fixture(scope="session")
def redis_server(stack_dir: Path) -> Iterator[RedisServer]:
    """One redis-server, or a 3-primary Redis Cluster with RELAY_TEST_REDIS=cluster."""
    server = start_redis(stack_dir / "redis")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def scripted() -> Iterator[ScriptedProvider]:
    provider = ScriptedProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def opencode(stack_dir: Path, scripted: ScriptedProvider) -> Iterator[EmbeddedOpencode]:
    server = start_opencode(stack_dir / "opencode", scripted)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def relay(stack_dir: Path, redis_server: EmbeddedRedis,
          opencode: EmbeddedOpencode) -> Iterator[RelayProcess]:
    process = RelayProcess(redis_server.url, opencode.url, stack_dir / "relay.log").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def secured(request: pytest.FixtureRequest, stack_dir: Path, redis_server: EmbeddedRedis,
            opencode: EmbeddedOpencode) -> Iterator[RelayProcess]:
    """A relay with RELAY_AUTH on, one per test module (its log named after the module); a
    module adds settings of its own with a module-level `SECURED_ENV = {...}`."""
    env = {"RELAY_AUTH": "true", **getattr(request.module, "SECURED_ENV", {})}
    name = request.module.__name__.rsplit(".", 1)[-1]
    process = RelayProcess(redis_server.url, opencode.url, stack_dir / f"{name}-secured.log",
                           extra_env=env).start()
    yield process
    process.stop()


@pytest.fixture()
def api(relay: RelayProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=relay.url, timeout=60) as client:
        yield client


@pytest.fixture()
def oc(opencode: EmbeddedOpencode) -> Iterator[httpx.Client]:
    """A client straight to opencode, to compare against."""
    with httpx.Client(base_url=opencode.url, timeout=60,
                      params={"directory": str(opencode.directory)}) as client:
        yield client


@pytest.fixture()
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A client of the test Redis, the cluster client on a cluster (tests keep to their own
    `keys`)."""
    client = redis_client(redis_server.url)
    await client.initialize()  # a cluster client learns the slots (store/connect.transaction)
    yield client
    await client.aclose()


@pytest.fixture()
def keys() -> Keys:
    """A key prefix of this test's own."""
    return Keys(f"unit-{uuid.uuid4().hex[:8]}:")


@pytest.fixture()
def script_key() -> str:
    return f"s{uuid.uuid4().hex[:10]}"


LAYERS = ("unit", "integration", "browser", "bench")
# The longest files (each one long test with a stack of its own) start first, so parallel
# workers (make test) do not wait for them at the end.
LONGEST_FIRST = ("tests/test_contract.py", "tests/test_bench.py",
                 "tests/test_cluster_failover.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test says which layer it is (`pytestmark = pytest.mark.unit`, …), so `-m unit`
    (make check) runs exactly the fast layer and nothing slips between layers."""
    items.sort(key=lambda item: not item.nodeid.startswith(LONGEST_FIRST))
    unmarked = [item.nodeid for item in items
                if sum(1 for layer in LAYERS if item.get_closest_marker(layer)) != 1]
    if unmarked:
        raise pytest.UsageError("tests without exactly one layer marker "
                                f"({', '.join(LAYERS)}): {unmarked[:10]}")
