"""A large cohort end to end: `postcart batch COHORT.csv --output OUT.csv --workers 2`, timed.

Generates the cohort once (synthetic situations, 1% invalid rows; cached under --directory), then times
whole runs with 2 worker processes (read by pyarrow, validate, evaluate, write parts, merge, atomic
rename) and prints the median wall time, rows/s and the records-read = rows-written check.

    .venv/bin/python benchmarks/bench_cohort_large.py                  # 1,000,000 rows, target < 60 s
    .venv/bin/python benchmarks/bench_cohort_large.py --rows 100000 --repeat 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from postcart import Rulebook
from postcart.batch.cohort import run_cohort

sys.path.insert(0, str(Path(__file__).parent))
from bench_batch import write_cohort  # the same generator as the 100,000-row benchmark


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--directory", type=Path, default=Path(tempfile.gettempdir()) / "postcart-bench")
    args = parser.parse_args()
    args.directory.mkdir(parents=True, exist_ok=True)
    cohort = args.directory / f"cohort-{args.rows}.csv"
    if not cohort.exists():
        started = time.perf_counter()
        write_cohort(cohort, args.rows)
        print(f"generated {cohort} in {time.perf_counter() - started:.0f} s", flush=True)
    rulebook = Rulebook.load()
    timings = []
    for attempt in range(args.repeat):
        output = args.directory / f"out-{args.rows}-{attempt}.csv"
        started = time.perf_counter()
        summary = run_cohort(cohort, output, rulebook, workers=args.workers, chunk_size=args.chunk_size,
                             restart=True)
        timings.append(time.perf_counter() - started)
        print(f"run {attempt + 1}: {timings[-1]:.1f} s, {args.rows / timings[-1]:,.0f} rows/s; "
              f"records read {summary.records_read} = rows written {summary.rows}", flush=True)
        output.unlink()
    median = statistics.median(timings)
    print(f"{args.rows:,} rows, {args.workers} workers: median {median:.1f} s ({args.rows / median:,.0f} rows/s)")


if __name__ == "__main__":
    main()
