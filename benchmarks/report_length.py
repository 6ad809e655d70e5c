"""Length of the text report in lines over the bundled scenarios: median and longest.

Runs ``postcart evaluate FILE --scenario NAME`` (the page a clinician reads) for every scenario in
scenarios/*.yaml and prints the median and the longest report, in lines. Extra arguments are passed to
``postcart evaluate`` (e.g. ``--detail``).

    python benchmarks/report_length.py [--per-scenario] [-- EXTRA EVALUATE ARGS]
    PYTHONPATH=/path/to/other/checkout/src python benchmarks/report_length.py   # another version's reports
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def report_lengths(extra: list[str]) -> dict[str, tuple[int, int]]:
    """Lines of the text report for each scenario id: in all, and before the reference list."""
    command = [sys.executable, "-m", "postcart"]  # PYTHONPATH=<other checkout>/src measures another version
    lengths: dict[str, tuple[int, int]] = {}
    for file in sorted((ROOT / "scenarios").glob("*.yaml")):
        for entry in yaml.safe_load(file.read_text(encoding="utf-8"))["scenarios"]:
            run = subprocess.run([*command, "evaluate", str(file), "--scenario", entry["id"], *extra],
                                 capture_output=True, text=True, check=True)
            lines = run.stdout.splitlines()
            lengths[entry["id"]] = (len(lines), lines.index("REFERENCES") if "REFERENCES" in lines else len(lines))
    return lengths


def main(argv: list[str]) -> None:
    per_scenario = "--per-scenario" in argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    lengths = report_lengths(extra)
    if per_scenario:
        for name, (count, clinical) in lengths.items():
            print(f"{count:4d} {clinical:4d}  {name}")
    totals = {name: count for name, (count, _) in lengths.items()}
    clinical = {name: before for name, (_, before) in lengths.items()}
    longest = max(totals, key=totals.__getitem__)
    print(f"{len(lengths)} scenarios: median {statistics.median(totals.values()):g} lines, "
          f"longest {totals[longest]} lines ({longest}); before the references: median "
          f"{statistics.median(clinical.values()):g}, longest {max(clinical.values())}")


if __name__ == "__main__":
    main(sys.argv[1:])
