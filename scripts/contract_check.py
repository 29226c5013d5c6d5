"""The API contract check: schemathesis against a live relay, with auth off and with auth on.

Starts a real stack in a temporary folder (Redis on a free port, `opencode serve` from
node_modules with the scripted LLM, the relay as `opencode-relay serve`) and runs
`schemathesis run` on /api/openapi.json twice: once with RELAY_AUTH off, once with it on and an
admin token made by `opencode-relay token create`. Any finding fails the run (exit 1).

Run with `make contract`, or `.venv/bin/python scripts/contract_check.py [--max-examples N]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from xml.etree import ElementTree

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from opencode_relay.launch.embedded import EmbeddedRedis  # noqa: E402
from opencode_relay.testing.scripted_provider import ScriptedProvider  # noqa: E402
from tests.support.stack import (  # noqa: E402
    RelayProcess,
    start_opencode,
    wait_for,
    workspace_env,
)

CHECKS = ("not_a_server_error", "status_code_conformance", "response_schema_conformance",
          "negative_data_rejection")
VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Budget:
    """What bounds one schemathesis run."""

    max_examples: int
    request_timeout: float  # seconds; a prompt waits for the scripted model's answer
    stream_seconds: float  # how long an event stream is read
    run_timeout: float  # seconds for the whole `schemathesis run`, killed after
    seed: int


@dataclass(frozen=True)
class Seeded:
    """Real ids for schemathesis to draw path parameters from, beside the ones it makes up."""

    idle: str  # a session with one exchange
    message: str  # the answer in it
    asking: str  # the session waiting on the permission request
    permission: str
    wondering: str  # the session waiting on the question
    question: str


def make_admin_token(relay: RelayProcess) -> str:
    done = subprocess.run([str(VENV_BIN / "opencode-relay"), "token", "create", "--name", "ci",
                           "--admin"], env=relay.env, capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"token create failed: {done.stderr}")
    return done.stdout.strip()


def _pending(api: httpx.Client, provider: ScriptedProvider, kind: str,
             tool: dict[str, object]) -> tuple[str, str]:
    """A session whose scripted model called `tool`, and the id of the request it waits on."""
    created = api.post("/api/sessions", json={"title": f"contract seed: {kind}"})
    created.raise_for_status()
    sid = created.json()["id"]
    marker = provider.script(f"contract-{kind}-{sid}", [[tool], [{"text": "Done."}]])
    api.post(f"/api/sessions/{sid}/prompt", json={"text": marker}).raise_for_status()
    pending = wait_for(lambda: api.get(f"/api/sessions/{sid}/requests").json()[kind], 60,
                       f"a pending {kind} request")
    return sid, pending[0]["id"]


def seed(api: httpx.Client, provider: ScriptedProvider) -> Seeded:
    """An idle session with one exchange, one waiting on a permission, one on a question."""
    idle = api.post("/api/sessions", json={"title": "contract seed"})
    idle.raise_for_status()
    sid = idle.json()["id"]
    answer = api.post(f"/api/sessions/{sid}/messages", json={"text": "hello"})
    answer.raise_for_status()
    asking, permission = _pending(api, provider, "permissions", {
        "tool": "bash", "args": {"command": "true", "description": "nothing"}})
    question = {"question": "Which colour?", "header": "Colour",
                "options": [{"label": "red", "description": "warm"},
                            {"label": "blue", "description": "cool"}]}
    wondering, question_id = _pending(api, provider, "questions", {
        "tool": "question", "args": {"questions": [question]}})
    return Seeded(sid, answer.json()["info"]["id"], asking, permission, wondering, question_id)


def write_config(path: Path, seeded: Seeded, budget: Budget) -> Path:
    """schemathesis.toml: seeded ids for half the path parameters, short reads of streams."""
    path.write_text(f"""\
[dictionaries]
sessions = {{ values = ["{seeded.idle}"] }}
messages = {{ values = ["{seeded.message}"] }}
asking = {{ values = ["{seeded.asking}"] }}
permissions = {{ values = ["{seeded.permission}"] }}
wondering = {{ values = ["{seeded.wondering}"] }}
questions = {{ values = ["{seeded.question}"] }}

[parameters]
"path.sid" = {{ dictionary = "sessions", probability = 0.5 }}
"path.mid" = {{ dictionary = "messages", probability = 0.5 }}

# The sessions waiting on a request only here: a prompt to them would wait for the answer.
[[operations]]
include-path-regex = "/permissions/"
[operations.parameters]
"path.sid" = {{ dictionary = "asking", probability = 0.5 }}
"path.request_id" = {{ dictionary = "permissions", probability = 0.5 }}

[[operations]]
include-path-regex = "/questions/"
[operations.parameters]
"path.sid" = {{ dictionary = "wondering", probability = 0.5 }}
"path.request_id" = {{ dictionary = "questions", probability = 0.5 }}

# An event stream never ends: read its first events, for at most {budget.stream_seconds}s.
[[operations]]
include-path-regex = "/events$"
request-timeout = {budget.stream_seconds}
max-stream-events = 2
""")
    return path


def schemathesis_command(relay_url: str, config: Path, budget: Budget,
                         headers: dict[str, str], junit: Path) -> list[str]:
    command = [str(VENV_BIN / "schemathesis"), "--config-file", str(config),
               "run", f"{relay_url}/api/openapi.json",
               "--checks", ",".join(CHECKS),
               "--phases", "examples,coverage,fuzzing,stateful",
               "--max-examples", str(budget.max_examples),
               "--seed", str(budget.seed),
               "--request-timeout", str(budget.request_timeout),
               "--generation-database", "none",
               # One worker thread: CPython 3.11.7's `ast.parse` is not thread-safe (its AST
               # builder keeps one recursion count per interpreter, python/cpython#106905), and
               # hypothesis parses source to describe its strategies. Two workers parsing at once
               # fail with "SystemError: AST constructor recursion depth mismatch" (seen in CI).
               "--workers", "1",
               "--report", "junit", "--report-junit-path", str(junit),
               "--no-color"]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    return command


def findings_and_errors(junit: Path) -> tuple[int, int]:
    """Check failures (the relay's fault) and errors (schemathesis' own, such as an internal
    error of its generator) in a JUnit report."""
    if not junit.is_file():
        return 0, 0
    root = ElementTree.parse(junit).getroot()
    return len(root.findall(".//failure")), len(root.findall(".//error"))


def run_schemathesis(label: str, relay: RelayProcess, provider: ScriptedProvider, budget: Budget,
                     headers: dict[str, str], workdir: Path) -> bool:
    with httpx.Client(base_url=relay.url, headers=headers, timeout=60) as api:
        seeded = seed(api, provider)
    config = write_config(workdir / f"schemathesis-{label.replace(' ', '-')}.toml", seeded, budget)
    for attempt in (1, 2):
        junit = workdir / f"junit-{label.replace(' ', '-')}-{attempt}.xml"
        command = schemathesis_command(relay.url, config, budget, headers, junit)
        shown = [part if "Bearer" not in part else "Authorization: Bearer ***" for part in command]
        print(f"\n=== contract check, {label}: {' '.join(shown)}", flush=True)
        started = time.monotonic()
        try:
            done = subprocess.run(command, cwd=workdir, timeout=budget.run_timeout)
        except subprocess.TimeoutExpired:
            # A slow machine (the whole suite runs beside it), not a finding: each request has
            # its own timeout, which schemathesis reports as an error of that request.
            print(f"=== {label}: schemathesis ran past {budget.run_timeout:.0f}s", flush=True)
            if attempt == 2:
                return False
            budget = replace(budget, seed=budget.seed + 1)
            continue
        print(f"=== {label}: exit {done.returncode} in {time.monotonic() - started:.0f}s",
              flush=True)
        if done.returncode == 0:
            return True
        findings, errors = findings_and_errors(junit)
        if findings or not errors or attempt == 2:
            return False
        # Nothing against the relay, but schemathesis itself broke: once more, next seed.
        print(f"=== {label}: {errors} schemathesis error(s) and no finding; running again",
              flush=True)
        budget = replace(budget, seed=budget.seed + 1)
    return False


def check(work: Path, budget: Budget) -> dict[str, bool]:
    """Runs schemathesis with auth off, then on; whether each run found nothing."""
    redis = EmbeddedRedis(work / "redis").start()
    provider = ScriptedProvider().start()
    opencode = start_opencode(work / "opencode", provider)
    results: dict[str, bool] = {}
    try:
        for auth in (False, True):
            label = "auth on" if auth else "auth off"
            relay = RelayProcess(redis.url, opencode.url, work / f"relay-auth-{auth}.log",
                                 extra_env={**workspace_env(opencode.directory),
                                            "RELAY_AUTH": str(auth).lower(),
                                            # A prompt that waits longer than this is a finding.
                                            "RELAY_PROMPT_TIMEOUT_SECONDS": "20"}).start()
            try:
                headers = {"Authorization": f"Bearer {make_admin_token(relay)}"} if auth else {}
                results[label] = run_schemathesis(label, relay, provider, budget, headers, work)
            finally:
                relay.stop()
            if not results[label]:
                print(f"relay log: {relay.log_path}", flush=True)
    finally:
        opencode.stop()
        provider.stop()
        redis.stop()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=10)
    parser.add_argument("--seed", type=int, default=int(os.environ.get("CONTRACT_SEED", "1")))
    parser.add_argument("--run-timeout", type=float, default=420,
                        help="seconds one schemathesis run may take (one more run is allowed)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    budget = Budget(args.max_examples, request_timeout=30, stream_seconds=2,
                    run_timeout=args.run_timeout, seed=args.seed)
    work = Path(tempfile.mkdtemp(prefix="ocr-contract-"))
    started = time.monotonic()
    results: dict[str, bool] = {}
    try:
        results = check(work, budget)
    finally:
        passed = len(results) == 2 and all(results.values())
        if args.keep or not passed:
            print(f"stack folder kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"contract check {'passed' if passed else 'FAILED'} in {time.monotonic() - started:.0f}s")
    failed = sum(not ok for ok in results.values())
    print(f"contract: {len(results) - failed} passed, {failed} failed")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
