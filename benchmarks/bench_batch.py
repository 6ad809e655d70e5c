"""Cohort throughput and memory: `postcart batch COHORT --output FILE`, end to end.

Generates a cohort of synthetic situations (CSV, 1% invalid rows), then times whole runs (read,
validate, evaluate on durable-rules, write, atomic rename) sequentially, with 2 worker processes and on
a local Dask cluster (2 worker processes), and measures peak resident memory of a sequential run over
10,000 and 100,000 rows, each in a fresh process. Reports medians of ``--repeat`` runs.

    .venv/bin/python benchmarks/bench_batch.py              # 100,000 rows
    .venv/bin/python benchmarks/bench_batch.py --rows 20000 --repeat 1
    .venv/bin/python benchmarks/bench_batch.py --rules path/to/rules

Targets (issue 4, 2-core machine): >= 10,000 rows/s with 2 workers; 2 workers >= 1.6x one; peak memory
of 100,000 rows within 50 MB of 10,000 rows.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from postcart import Engine, Rulebook, validate_situation
from postcart.batch.cohort import run_cohort
from postcart.testing import COLUMNS, flat_row, random_situation, synthetic_rules

_MEMORY_PROBE = """
import resource, sys
from postcart import Rulebook
from postcart.batch.cohort import run_cohort
rulebook = Rulebook.load(sys.argv[3] if sys.argv[3] != "-" else None)
run_cohort(sys.argv[1], sys.argv[2], rulebook, chunk_size=int(sys.argv[4]))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_cohort(path: Path, rows: int, seed: int = 20261121) -> None:
    rng = random.Random(seed)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for index in range(rows):
            row = flat_row(random_situation(rng, index, invalid_rate=0.01))
            writer.writerow(["" if row[column] is None else row[column] for column in COLUMNS])


def engine_microseconds(rulebook: Rulebook, samples: int = 2000) -> float:
    """Median cost of one `Engine.run` on generated situations (no cache), in µs."""
    rng = random.Random(1)
    situations = [validate_situation(random_situation(rng, index)) for index in range(samples)]
    with Engine(rulebook) as engine:
        timings = []
        for _ in range(3):
            started = time.perf_counter()
            for situation in situations:
                engine.run(situation)
            timings.append((time.perf_counter() - started) / samples * 1e6)
    return statistics.median(timings)


def peak_rss_mb(source: Path, target: Path, rules: str, chunk_size: int) -> float:
    out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, str(source), str(target), rules, str(chunk_size)],
                         check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--rules", default=None, help="rules directory (default: the bundled rules/)")
    parser.add_argument("--synthetic-rules", type=int, default=0, metavar="N",
                        help="add N generated rules to the rulebook (benchmark only) to see how speed follows "
                        "a growing rulebook")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="postcart-bench-"))
    if args.synthetic_rules:
        args.rules = str(synthetic_rules(work / "rules", args.synthetic_rules))
    rulebook = Rulebook.load(args.rules)
    big, small = work / "cohort.csv", work / "small.csv"
    write_cohort(big, args.rows)
    write_cohort(small, args.rows // 10)
    results: dict[str, object] = {"rows": args.rows, "rules": len(rulebook.rules),
                                  "engine_run_us": round(engine_microseconds(rulebook), 1)}

    def timed(label: str, source: Path = big, dask: bool = False, **options: object) -> None:
        rates, runs = [], 0
        for _ in range(args.repeat):
            if dask:  # a fresh cluster each time: its workers' caches start cold, like the other runs
                from distributed import Client, LocalCluster

                with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, Client(cluster):
                    summary = run_cohort(source, work / "out.csv", rulebook, chunk_size=args.chunk_size,
                                         restart=True, dask_address=cluster.scheduler_address)
            else:
                summary = run_cohort(source, work / "out.csv", rulebook, chunk_size=args.chunk_size,
                                     restart=True, **options)  # type: ignore[arg-type]
            rates.append(summary.rows / summary.seconds)
            runs = summary.engine_runs
        results[label] = {"rows_per_s_median": round(statistics.median(rates)),
                          "rows_per_s_all": [round(rate) for rate in rates], "engine_runs": runs}
        print(f"{label:>22}: {statistics.median(rates):>9,.0f} rows/s (median of {args.repeat}; "
              f"durable-rules ran {runs:,} times)", flush=True)

    print(f"{args.rows:,} rows, {len(rulebook.rules)} rules; Engine.run {results['engine_run_us']} µs "
          "per situation (median)", flush=True)
    timed(f"1 worker, no cache ({args.rows // 10:,} rows)", small, cache=False)
    timed("1 worker")
    timed("2 workers", workers=2)

    timed("dask, 2 worker procs", dask=True)

    one = results["1 worker"]["rows_per_s_median"]  # type: ignore[index]
    two = results["2 workers"]["rows_per_s_median"]  # type: ignore[index]
    results["speedup_2_workers"] = round(two / one, 2)
    print(f"{'2 workers / 1':>22}: {two / one:.2f}x")

    if not args.skip_memory:
        rules = args.rules or "-"
        small_mb = peak_rss_mb(small, work / "small-out.csv", rules, args.chunk_size)
        big_mb = peak_rss_mb(big, work / "big-out.csv", rules, args.chunk_size)
        results["peak_rss_mb"] = {str(args.rows // 10): round(small_mb, 1), str(args.rows): round(big_mb, 1)}
        print(f"{'peak RSS (sequential)':>22}: {args.rows // 10:,} rows {small_mb:.1f} MB, {args.rows:,} rows "
              f"{big_mb:.1f} MB (difference {big_mb - small_mb:+.1f} MB)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
