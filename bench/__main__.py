"""`python -m bench [--size tiny|small|full] [--out FILE]`: every benchmark, one table, one JSON.

Every figure is paired with a baseline measured in the same run on the same machine, and given
as a ratio to it; nothing here asserts anything about time.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from .harness import ROOT, SIZES, Bench, dump

SECTIONS = ("ingest", "resume", "fanout", "burst", "history", "memory", "browser", "files",
            "terminal", "push", "search", "replicas")


async def run_sections(bench: Bench, only: set[str]) -> None:
    from . import (
        browser,
        burst,
        fanout,
        files,
        history,
        ingest,
        memory,
        push,
        replicas,
        resume,
        search,
        terminal,
    )

    modules = {"ingest": ingest, "resume": resume, "fanout": fanout, "burst": burst,
               "history": history,
               "memory": memory, "browser": browser, "files": files, "terminal": terminal,
               "push": push, "search": search, "replicas": replicas}
    for name in SECTIONS:
        if name in only:
            started = time.monotonic()
            await modules[name].run(bench)
            bench.extra.setdefault("section_seconds", {})[name] = round(
                time.monotonic() - started, 1)


def table(bench: Bench) -> str:
    rows = [("figure", "value", "unit", "baseline", "ratio", "target", "met")]
    for f in bench.figures.values():
        rows.append((f.name, _show(f.value), f.unit, _show(f.baseline), _show(f.ratio),
                     f.target or "", {True: "yes", False: "NO", None: ""}[f.met]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _show(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.4g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    workdir = Path(tempfile.mkdtemp(prefix="ocr-bench-"))
    bench = Bench(SIZES[args.size], workdir)
    started = time.monotonic()
    print(f"bench size={args.size} work folder={workdir}", flush=True)
    try:
        asyncio.run(run_sections(bench, only))
    finally:
        bench.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    result = {
        "size": args.size,
        "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "seconds": round(elapsed, 1),
        "section_seconds": bench.extra.get("section_seconds", {}),
        "figures": {name: f.as_json() for name, f in bench.figures.items()},
        "latency_curve": bench.extra.get("latency_curve", []),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    dump(args.out, result)
    if bench.extra.get("latency_curve"):
        from .plot import latency_svg
        svg = args.out.with_name(args.out.stem + "-latency.svg")
        svg.write_text(latency_svg(bench.extra["latency_curve"], args.size))
        print(f"latency plot: {svg}")
    print()
    print(table(bench))
    print(f"\n{len(bench.figures)} figures in {elapsed:.0f}s; JSON: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
