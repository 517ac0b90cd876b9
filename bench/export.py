"""Seconds and peak memory of `learnbot export events` on a database at scale.

    .venv/bin/python bench/export.py [--runs 5] [--baseline [REV]] [--database URL]
                                     [--learners 100000] [--events 1000000]

Each run is a fresh process running the real command, `learnbot export events --as <admin>
--output <file>` (`bot.cli.main`: settings, migration check, role check, then
`export_events_csv` writing to the file through `_output`). The parent measures the
command's wall time and its peak resident set size (`ru_maxrss` of that child, from
`os.wait4`: real memory, not only Python objects); the child also reports the seconds
spent inside `export_events_csv` alone and its RSS just before the export started, so
the growth during the export reads as peak minus start.

The data: `bench/dataset.py` builds it (SQLite file at /tmp/learnbot-bench-<events>.db
by default, kept and reused between invocations; `--database URL` for PostgreSQL, built
there when its event log is empty).

`--baseline [REV]` also runs the previous implementation in the same invocation,
interleaved with the current one: `bot/analytics/export.py` as it was at REV (default
the last commit before the streaming rewrite) is loaded in place of the current module
before the CLI starts. The ratio of the medians is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ADMIN = "admin@training.example"  # the admin bench/dataset.py creates
BASELINE_REV = "43a9bd2"  # bot/analytics/export.py before the streaming rewrite
REPORT_PREFIX = "BENCH-EXPORT "


@dataclass(frozen=True)
class Run:
    """One export's figures."""

    implementation: str
    command_s: float
    export_s: float
    rows: int
    start_rss_mb: float
    peak_rss_mb: float
    output_mb: float


def _vm_hwm_mb() -> float:
    """This process's peak RSS so far (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(baseline_file: str | None, cli_args: list[str]) -> None:
    """In the measured process: run the CLI, timing the export function inside it."""
    if baseline_file is not None:
        spec = importlib.util.spec_from_file_location("bot.analytics.export", baseline_file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["bot.analytics.export"] = module
        spec.loader.exec_module(module)
    import bot.analytics.export as export_module
    from bot import cli

    real = export_module.export_events_csv
    report: dict[str, Any] = {}

    async def timed(*args: Any, **kwargs: Any) -> int:
        report["start_rss_mb"] = _vm_hwm_mb()
        started = time.perf_counter()
        count = await real(*args, **kwargs)
        report["export_s"] = time.perf_counter() - started
        report["rows"] = count
        return int(count)

    export_module.export_events_csv = timed  # type: ignore[assignment]
    try:
        cli.main(cli_args, standalone_mode=False)
    finally:
        print(REPORT_PREFIX + json.dumps(report), file=sys.stderr)


def measure(
    implementation: str, url: str, baseline_file: str | None, out: Path, options: Sequence[str]
) -> Run:
    """Run one export in a fresh process and collect its figures."""
    command = [sys.executable, __file__, "--child"]
    if baseline_file is not None:
        command += ["--baseline-file", baseline_file]
    command += ["--", "export", "events", "--as", ADMIN, "--output", str(out), *options]
    env = {**os.environ, "LEARNBOT_DATABASE_URL": url, "LEARNBOT_SECRET_KEY": "bench-" * 8}
    env["PYTHONPATH"] = str(ROOT)
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stderr is not None
    stderr = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{implementation} export failed ({process.returncode}):\n{stderr}")
    line = next(x for x in stderr.splitlines() if x.startswith(REPORT_PREFIX))
    report = json.loads(line.removeprefix(REPORT_PREFIX))
    run = Run(
        implementation=implementation,
        command_s=elapsed,
        export_s=report["export_s"],
        rows=report["rows"],
        start_rss_mb=report["start_rss_mb"],
        peak_rss_mb=usage.ru_maxrss / 1024,  # KB on Linux
        output_mb=out.stat().st_size / 1e6,
    )
    out.unlink()
    return run


def prepare(url: str | None, learners: int, events: int) -> str:
    """The database URL to export from, built with bench/dataset.py when it is missing."""
    from bench.dataset import build

    if url is None:
        path = Path(tempfile.gettempdir()) / f"learnbot-bench-{events}.db"
        url = f"sqlite+aiosqlite:///{path}"
        if path.exists():
            return url
    elif asyncio.run(_logged_events(url)):
        return url
    print(f"building the data set ({learners:,} learners, {events:,} events) ...", flush=True)
    print(asyncio.run(build(url, learners=learners, events=events)), flush=True)
    return url


async def _logged_events(url: str) -> int:
    from sqlalchemy import func, inspect, select

    from bench.dataset import ensure_database
    from bot.store.db import create_engine
    from bot.store.tables import events

    await ensure_database(url)
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            has_table = await conn.run_sync(lambda sync: inspect(sync).has_table("events"))
            if not has_table:
                return 0
            return int((await conn.execute(select(func.count()).select_from(events))).scalar_one())
    finally:
        await engine.dispose()


def baseline_source(rev: str, directory: Path) -> str:
    """bot/analytics/export.py at `rev`, written to a file the child can load."""
    source = subprocess.run(
        ["git", "show", f"{rev}:bot/analytics/export.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = directory / "baseline_export.py"
    path.write_text(source)
    return str(path)


def report(runs: Sequence[Run]) -> dict[str, float]:
    """Print each run and the medians; return the median export seconds per implementation."""
    print(
        f"{'implementation':<14} {'command s':>9} {'export s':>9} {'rows':>10} "
        f"{'start MB':>9} {'peak MB':>8} {'output MB':>9}"
    )
    for r in runs:
        print(
            f"{r.implementation:<14} {r.command_s:>9.2f} {r.export_s:>9.2f} {r.rows:>10,} "
            f"{r.start_rss_mb:>9.1f} {r.peak_rss_mb:>8.1f} {r.output_mb:>9.1f}"
        )
    medians: dict[str, float] = {}
    for name in dict.fromkeys(r.implementation for r in runs):
        mine = [r for r in runs if r.implementation == name]
        medians[name] = statistics.median(r.export_s for r in mine)
        print(
            f"median {name}: export {medians[name]:.2f} s, command "
            f"{statistics.median(r.command_s for r in mine):.2f} s, peak RSS "
            f"{statistics.median(r.peak_rss_mb for r in mine):.1f} MB (start "
            f"{statistics.median(r.start_rss_mb for r in mine):.1f} MB), "
            f"{statistics.median(r.rows / r.export_s for r in mine):,.0f} rows/s"
        )
    return medians


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the options; build the data if needed; run and report the exports."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--child":
        rest = argv[1:]
        baseline_file = None
        if rest[:1] == ["--baseline-file"]:
            baseline_file, rest = rest[1], rest[2:]
        child(baseline_file, rest[1:] if rest[:1] == ["--"] else rest)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database", default=None, help="a database URL (default: SQLite file)")
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--options",
        default="",
        help="more options for `learnbot export events`, e.g. '--include-free-text' "
        "or '--as trainer1@training.example' (a trainer's cohorts)",
    )
    parser.add_argument(
        "--baseline",
        nargs="?",
        const=BASELINE_REV,
        default=None,
        metavar="REV",
        help=f"also run bot/analytics/export.py as at REV [default: {BASELINE_REV}]",
    )
    args = parser.parse_args(argv)
    url = prepare(args.database, args.learners, args.events)
    print(f"database: {url}; options: {args.options or '(none)'}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        implementations: list[tuple[str, str | None]] = [("current", None)]
        if args.baseline is not None:
            implementations.insert(
                0, (f"baseline@{args.baseline}", baseline_source(args.baseline, directory))
            )
        runs = []
        for n in range(args.runs):
            for name, baseline_file in implementations:
                out = directory / f"events-{n}.csv"
                run = measure(name, url, baseline_file, out, shlex.split(args.options))
                print(
                    f"run {n + 1} {name}: {run.export_s:.2f} s, peak RSS {run.peak_rss_mb:.0f} MB",
                    flush=True,
                )
                runs.append(run)
    medians = report(runs)
    if args.baseline is not None:
        before, after = medians[implementations[0][0]], medians["current"]
        print(f"speed-up (median baseline / median current): {before / after:.1f}x")


if __name__ == "__main__":
    main()
