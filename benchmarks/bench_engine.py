"""Engine benchmark: latency of evaluate(), throughput, the plain-Python floor, and memory over time.

Run:  .venv/bin/python benchmarks/bench_engine.py            (full: about a minute or two)
      .venv/bin/python benchmarks/bench_engine.py --quick    (smaller counts, for a smoke run)

Reports, in one run:
- median and p99 latency of ``evaluate()`` on one situation (validation + durable-rules + assessment);
- throughput of ``evaluate()`` over 10,000 generated situations;
- the same 10,000 through ``Engine.run`` (durable-rules only) and through a plain-Python evaluation of
  the same compiled strata and conditions (the floor; a yardstick here, never used by postcart), and
  their ratio;
- resident memory before and after 200,000 evaluations.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import time
from typing import Any

from postcart import Engine, Rulebook, evaluate, validate_situation
from postcart.rulebook import Derive, conditions
from postcart.situation import flatten
from postcart.testing import random_situation


def situations(count: int, seed: int = 20261121) -> list[dict[str, Any]]:
    """Valid generated situations (the generator shared with the batch benchmark and tests)."""
    rng = random.Random(seed)
    return [random_situation(rng, index) for index in range(count)]


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * 4096 / 1e6


def floor_run(engine: Engine, facts: dict[str, Any], disease: str) -> list[str]:
    """Plain Python over the same compiled strata and conditions: the cost floor of the rule logic."""
    rulebook = engine.rulebook
    rules = {rule.id: rule for rule in rulebook.rules}
    fired: list[str] = []
    derived: dict[str, Any] = {}
    for stratum in engine.compiled.strata[disease]:
        for rule_id in stratum.rule_ids:
            rule = rules[rule_id]
            if rule.condition is None or conditions.evaluate(rule.condition, facts):
                fired.append(rule_id)
                if isinstance(rule.then, Derive):
                    derived[rule.then.derive] = rule.then.value
        for name in stratum.derives:
            if name not in derived and rulebook.facts[name].default is not None:
                derived[name] = rulebook.facts[name].default
        facts.update({f"derived.{name}": value for name, value in derived.items()})
    return fired


def timed(function: Any, items: list[Any]) -> float:
    start = time.perf_counter()
    for item in items:
        function(item)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    latency_runs, throughput_n, memory_n, passes = (300, 1000, 5000, 1) if args.quick else (5000, 10_000, 200_000, 3)

    rulebook = Rulebook.load()
    engine = Engine(rulebook)
    cases = situations(throughput_n)
    validated = [validate_situation(case) for case in cases]
    flat = [(flatten(s), s.disease) for s in validated]

    # correctness first: the floor and the engine must agree, or the ratio means nothing
    for (facts, disease), situation in zip(flat, validated, strict=False):
        assert set(floor_run(engine, dict(facts), disease)) == set(engine.run(situation).fired)

    one = cases[0]
    for _ in range(200):
        evaluate(one, engine)
    samples = []
    for _ in range(latency_runs):
        start = time.perf_counter()
        evaluate(one, engine)
        samples.append(time.perf_counter() - start)
    samples.sort()
    median_ms = statistics.median(samples) * 1e3
    p99_ms = samples[int(len(samples) * 0.99) - 1] * 1e3

    full = statistics.median(timed(lambda c: evaluate(c, engine), cases) for _ in range(passes))
    durable = statistics.median(timed(engine.run, validated) for _ in range(passes))
    floor = statistics.median(timed(lambda fd: floor_run(engine, dict(fd[0]), fd[1]), flat) for _ in range(passes))

    gc.collect()
    before = rss_mb()
    for index in range(memory_n):
        evaluate(cases[index % len(cases)], engine)
    gc.collect()
    after = rss_mb()

    figures = {
        "rules": len(rulebook.rules),
        "latency_median_ms": round(median_ms, 3),
        "latency_p99_ms": round(p99_ms, 3),
        "evaluate_per_s": round(throughput_n / full),
        "engine_run_us": round(durable / throughput_n * 1e6, 1),
        "floor_us": round(floor / throughput_n * 1e6, 1),
        "engine_over_floor": round(durable / floor, 2),
        "evaluations_for_memory": memory_n,
        "rss_before_mb": round(before, 1),
        "rss_after_mb": round(after, 1),
        "rss_growth_mb": round(after - before, 1),
    }
    engine.close()
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"rulebook: {figures['rules']} rules")
    print(f"evaluate() latency, one situation: median {median_ms:.3f} ms, p99 {p99_ms:.3f} ms ({latency_runs} runs)")
    print(f"evaluate() throughput over {throughput_n} generated situations: {figures['evaluate_per_s']}/s "
          f"(median of {passes} passes)")
    print(f"rules only: durable-rules {figures['engine_run_us']} us/situation, plain-Python floor "
          f"{figures['floor_us']} us/situation, ratio engine/floor {figures['engine_over_floor']}")
    print(f"resident memory: {before:.1f} MB before, {after:.1f} MB after {memory_n} evaluations "
          f"(growth {after - before:+.1f} MB)")


if __name__ == "__main__":
    main()
