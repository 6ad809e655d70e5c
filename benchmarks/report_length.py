"""Length of the text report in lines over the bundled scenarios: median and longest.

Runs ``postcart evaluate FILE --scenario NAME`` (the page a clinician reads) for every scenario in
scenarios/*.yaml and prints the median and the longest report, in lines. Extra arguments are passed to
``postcart evaluate`` (e.g. ``--detail``).

    python benchmarks/report_length.py [--per-scenario] [-- EXTRA EVALUATE ARGS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def report_lengths(extra: list[str]) -> dict[str, int]:
    """Lines of the text report for each scenario id."""
    postcart = Path(sys.executable).with_name("postcart")
    command = [str(postcart)] if postcart.exists() else [sys.executable, "-m", "postcart"]
    lengths: dict[str, int] = {}
    for file in sorted((ROOT / "scenarios").glob("*.yaml")):
        for entry in yaml.safe_load(file.read_text(encoding="utf-8"))["scenarios"]:
            run = subprocess.run([*command, "evaluate", str(file), "--scenario", entry["id"], *extra],
                                 capture_output=True, text=True, check=True)
            lengths[entry["id"]] = len(run.stdout.splitlines())
    return lengths


def main(argv: list[str]) -> None:
    per_scenario = "--per-scenario" in argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    lengths = report_lengths(extra)
    if per_scenario:
        for name, count in lengths.items():
            print(f"{count:4d}  {name}")
    longest = max(lengths, key=lengths.__getitem__)
    print(f"{len(lengths)} scenarios: median {statistics.median(lengths.values()):g} lines, "
          f"longest {lengths[longest]} lines ({longest})")


if __name__ == "__main__":
    main(sys.argv[1:])
