"""`postcart check` benchmark: time to lint a rulebook of a few hundred rules (reachability search,
contradictions, derivation conflicts, coverage, witnesses confirmed on durable-rules).

Run:  .venv/bin/python benchmarks/bench_checks.py [--rules DIR] [--target 250] [--repeat 5]

The bundled rulebook (or --rules) is scaled up to about --target rules by copying its option and prompt
rules once per disease under new ids (derived-fact rules are kept as they are, so chaining is real),
then linted --repeat times; the median and the spread are reported, with the finding counts.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from postcart import Rulebook
from postcart.governance.check import lint
from postcart.rulebook import default_rules_dir
from postcart.vocabulary import DISEASES


def scaled_copy(source: Path, target: Path, wanted: int) -> int:
    """Copy a rules directory, adding per-disease copies of option/prompt rules up to about `wanted` rules."""
    shutil.copytree(source, target)
    files = {path: yaml.safe_load(path.read_text(encoding="utf-8")) or {} for path in sorted(target.glob("*.yaml"))
             if path.name not in ("rulebook.yaml", "references.yaml")}
    count = sum(len(data.get("rules") or []) for data in files.values())
    copies = 0
    while count < wanted:
        copies += 1
        added = 0
        for data in files.values():
            originals = [rule for rule in data.get("rules") or [] if "derive" not in rule["then"]
                         and ".copy" not in rule["id"]]
            for index, rule in enumerate(originals):
                if count >= wanted:
                    break
                twin = copy.deepcopy(rule)
                twin["id"] = f"{rule['id']}.copy{copies}"
                twin["diseases"] = [DISEASES[(index + copies) % len(DISEASES)]]
                twin["then"].pop("overrides", None)
                data["rules"].append(twin)
                count += 1
                added += 1
        if not added:
            break
    for path, data in files.items():
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=Path, default=default_rules_dir())
    parser.add_argument("--target", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / "rules"
        scaled_copy(args.rules, directory, args.target)
        rulebook = Rulebook.load(directory, include_drafts=True)
        timings: list[float] = []
        findings: Any = None
        for _ in range(args.repeat):
            start = time.perf_counter()
            findings = lint(rulebook)
            timings.append(time.perf_counter() - start)
    print(f"rules: {len(rulebook.rules)} (from {args.rules}), facts: {len(rulebook.facts)}")
    print(f"lint median {statistics.median(timings):.3f} s, min {min(timings):.3f} s, max {max(timings):.3f} s "
          f"over {args.repeat} runs")
    print(f"findings: {len(findings.problems)} problems, {len(findings.warnings)} warnings")


if __name__ == "__main__":
    main()
