"""`make fuzz`: the long run of the fuzzed surface, in one or more worker processes.

Each worker is ``pytest tests/handlers/test_fuzz.py::test_fuzzed_surface`` with the ``long``
profile, its own seed (the run's seed plus the worker's number), its share of the examples
and its own database (SQLite, in the worker's own temporary folder). A worker writes its
figures to ``<report>.<n>.json`` every 100 examples and its output to ``<report>.<n>.log``;
this merges them into ``<report>`` every half minute and at the end, so a run stopped early
still has its figures.

    python -m tests.support.fuzz_jobs --jobs 2 --examples 10000 --seed 13 --report var/fuzz.json

Worker ``n`` of a run is repeated alone with ``CADRE_FUZZ_SEED=<seed + n>`` and
``CADRE_FUZZ_EXAMPLES=<its share>`` (both are in its figures).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEST = "tests/handlers/test_fuzz.py::test_fuzzed_surface"
MERGE_EVERY = 30.0  # seconds between two merges of the workers' figures while they run


def shares(examples: int, jobs: int) -> list[int]:
    """``examples`` split over ``jobs`` workers, the first ones taking the remainder."""
    return [examples // jobs + (1 if n < examples % jobs else 0) for n in range(jobs)]


def _add(total: dict[str, int], part: dict[str, int]) -> dict[str, int]:
    for key, count in part.items():
        total[key] = total.get(key, 0) + count
    return total


def merge(parts: list[dict[str, Any]], wall: float, loads: list[float]) -> dict[str, Any]:
    """One report for the run from the workers' figures (tests/handlers/test_fuzz.py `_report`).
    Counts add up and what was reached is the union. The time per 1,000 examples is the
    time the workers ran examples side by side (the longest one's, without starting
    Python and the bot) over all examples; per worker, the workers' time over their own
    examples (what 1,000 examples cost one process on this machine). ``wall_seconds`` is
    the whole run, start-up included."""
    examples = sum(p["examples"] for p in parts)
    worker_seconds = sum(p["wall_seconds"] for p in parts)
    side_by_side = max((p["wall_seconds"] for p in parts), default=0.0)
    registered = max((p["handlers_registered"] for p in parts), default=0)
    not_reached = (
        set.intersection(*(set(p["handlers_not_reached"]) for p in parts)) if parts else set()
    )
    known: dict[str, int] = {}
    survey: dict[str, int] = {}
    known_examples: dict[str, str] = {}
    survey_examples: dict[str, str] = {}
    for part in parts:
        _add(known, part["known_defects_seen"])
        _add(survey, part["survey"])
        known_examples = part["known_defect_examples"] | known_examples
        survey_examples = part["survey_examples"] | survey_examples
    return {
        "profile": "long",
        "jobs": len(parts),
        "seeds": [p["seed"] for p in parts],
        "database": sorted({p["database"] for p in parts}),
        "examples": examples,
        "examples_per_worker": [p["examples"] for p in parts],
        "steps": sum(p["steps"] for p in parts),
        "wall_seconds": round(wall, 1),
        "seconds_per_1000_examples": round(1000 * side_by_side / max(examples, 1), 1),
        "worker_seconds_per_1000_examples": round(1000 * worker_seconds / max(examples, 1), 1),
        "setup_seconds": round(sum(p["setup_seconds"] for p in parts), 1),
        "load_average_1min": {"min": min(loads, default=0.0), "max": max(loads, default=0.0)},
        "scenarios": sorted(set().union(*(p["scenarios"] for p in parts))),
        "conversation_states": sorted(set().union(*(p["conversation_states"] for p in parts))),
        "handlers_reached": registered - len(not_reached),
        "handlers_registered": registered,
        "handlers_not_reached": sorted(not_reached),
        "input_kinds": sorted(set().union(*(p["input_kinds"] for p in parts))),
        "polling_errors": sum(p.get("polling_errors", 0) for p in parts),
        "known_defects_seen": known,
        "known_defect_examples": known_examples,
        "survey": survey,
        "survey_examples": survey_examples,
        "commands": max((p["commands"] for p in parts), default=0),
        "callback_prefixes": max((p["callback_prefixes"] for p in parts), default=0),
    }


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):  # not written yet, or being written
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0, help="0: a random one")
    parser.add_argument("--report", type=Path, default=Path("var/fuzz-report.json"))
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to each pytest")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.examples < args.jobs:
        parser.error("--jobs must be at least 1 and at most --examples")
    if args.jobs > 1 and os.environ.get("CADRE_TEST_DATABASE_URL"):
        parser.error("workers would share CADRE_TEST_DATABASE_URL: use --jobs 1 on PostgreSQL")
    seed = args.seed or random.randrange(1, 2**31 - args.jobs)
    report: Path = args.report
    report.parent.mkdir(parents=True, exist_ok=True)
    parts = [report.with_suffix(f".{n}.json") for n in range(args.jobs)]
    logs = [report.with_suffix(f".{n}.log") for n in range(args.jobs)]
    for path in parts:
        path.unlink(missing_ok=True)
    began = time.monotonic()
    workers = []
    for n, share in enumerate(shares(args.examples, args.jobs)):
        env = dict(
            os.environ,
            CADRE_FUZZ_PROFILE="long",
            CADRE_FUZZ_SEED=str(seed + n),
            CADRE_FUZZ_EXAMPLES=str(share),
            CADRE_FUZZ_REPORT=str(parts[n]),
        )
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", TEST]
        with logs[n].open("w") as log:
            workers.append(
                subprocess.Popen(
                    [*command, *args.pytest_args], cwd=ROOT, env=env, stdout=log, stderr=log
                )
            )
    print(
        f"fuzz: {args.jobs} worker(s), seeds {seed}..{seed + args.jobs - 1}, "
        f"{args.examples} examples; figures in {report}",
        flush=True,
    )
    loads: list[float] = []

    def write() -> dict[str, Any]:
        loads.append(round(os.getloadavg()[0], 2))
        found = [part for path in parts if (part := _read(path)) is not None]
        figures = merge(found, time.monotonic() - began, loads)
        figures["workers_reporting"] = len(found)
        report.write_text(json.dumps(figures, ensure_ascii=False, indent=1), "utf-8")
        return figures

    while running := [worker for worker in workers if worker.poll() is None]:
        try:
            running[0].wait(timeout=MERGE_EVERY)
        except subprocess.TimeoutExpired:
            pass
        write()
    codes = [worker.returncode for worker in workers]
    figures = write()
    figures["exit_codes"] = codes
    report.write_text(json.dumps(figures, ensure_ascii=False, indent=1), "utf-8")
    print(
        f"fuzz: {figures['examples']} examples, {figures['steps']} steps, "
        f"{len(figures['conversation_states'])} conversation states, "
        f"{figures['seconds_per_1000_examples']} s per 1,000 examples "
        f"({figures['worker_seconds_per_1000_examples']} s in one worker); exit codes {codes}"
    )
    for n, code in enumerate(codes):
        if code != 0:
            print(f"\nworker {n} (seed {seed + n}) failed; the end of {logs[n]}:")
            print("\n".join(logs[n].read_text(errors="replace").splitlines()[-60:]))
    return 0 if all(code == 0 for code in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
