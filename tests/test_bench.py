"""The benchmark suite runs end to end on its tiny size and reports every figure.

Benchmarks are not tests: nothing here checks a time, only that `python -m bench` works and its
JSON holds every figure, each with its baseline (browser figures may be skipped with a note).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.bench

ROOT = Path(__file__).resolve().parents[1]

FIGURES = [
    "ingest.synthetic_eps", "ingest.parse_only_eps", "ingest.apply_eps",
    "ingest.real_opencode_eps", "ingest.real_opencode_lag_ms",
    "resume.replay_ms", "resume.replay_eps",
    *[f"fanout.c{n}.{stat}" for n in (1, 100, 1000)
      for stat in ("p50_ms", "p99_ms", "max_ms", "added_p99_ms", "delivered")],
    "memory.relay_rss_mb", "memory.part_bytes", "memory.event_bytes",
    "memory.event_bytes_all_logs",
    "history.read_ms", "history.speedup",
    "browser.first_paint_ms", "browser.delta_to_screen_ms",
    "terminal.echo_p50_ms", "terminal.echo_p99_ms", "terminal.added_p99_ms",
    "files.tree_relay_ms", "files.tree_paint_ms", "files.tree_paint_on_load_ms",
    "push.permission_p50_ms", "push.permission_p99_ms",
    "search.corpus_ingest_eps", "search.ingest_eps", "search.query_p50_ms", "search.query_p99_ms",
    *[f"{layout}.c{n}.{stat}" for layout in ("burst", "burst.split") for n in (1, 20)
      for stat in ("added_p50_ms", "added_p99_ms", "delivered")],
    "burst.relay_cpu_ms_per_answer", "burst.split.relay_cpu_ms_per_answer",
    "replicas.p50_ms", "replicas.p99_ms", "replicas.max_ms", "replicas.delivered",
    "replicas.cpu_us_per_frame", "replicas.beside_stalled_p99_ms", "replicas.rss_mb",
]
MAY_SKIP = {"browser.first_paint_ms", "browser.delta_to_screen_ms", "files.tree_paint_ms",
            "files.tree_paint_on_load_ms"}


@pytest.mark.timeout(600)
def test_bench_tiny_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "tmp.json"
    run = subprocess.run([sys.executable, "-m", "bench", "--size", "tiny", "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=580)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["size"] == "tiny"
    figures = result["figures"]
    missing = [name for name in FIGURES if name not in figures]
    assert not missing, f"figures missing from the JSON: {missing}"
    for name in FIGURES:
        figure = figures[name]
        if figure["value"] is None:
            assert name in MAY_SKIP and figure["note"], f"{name} has no value and no reason"
            assert not os.environ.get("CI"), f"{name} was skipped in CI: {figure['note']}"
            continue
        assert figure["baseline"] is not None, f"{name} has no baseline"
        assert figure["unit"] and figure["baseline_what"], name
    assert [row["clients"] for row in result["latency_curve"]] == [1, 100, 1000]
    assert out.with_name("tmp-latency.svg").read_text().startswith("<svg")
    assert "figure" in run.stdout and "ratio" in run.stdout  # the table was printed
