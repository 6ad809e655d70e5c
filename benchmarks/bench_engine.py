"""Engine benchmark: latency of evaluate(), throughput, the plain-Python floor, and memory over time.

Run:  .venv/bin/python benchmarks/bench_engine.py            (full: about a minute or two)
      .venv/bin/python benchmarks/bench_engine.py --quick    (smaller counts, for a smoke run)

Reports, in one run:
- median and p99 latency of ``evaluate()`` on one situation (validation + durable-rules + assessment);
- throughput of ``evaluate()`` over 10,000 generated situations;
- the same 10,000 through ``Engine.run`` (durable-rules only) and through a plain-Python evaluation of
  the same compiled strata and conditions (the floor; a yardstick here, never used by postcart), and
  their ratio;
- resident memory before and after 200,000 evaluations;
- ``evaluate()`` per situation over generated situations with the generator's unknown rates (each
  optional input absent or ``unknown`` as often as in ``postcart.testing.random_situation``), after a
  warm-up on other situations (the steady state of a long-running process) and from a fresh engine
  (cold): median for situations with up to two unknown inputs, p99 over all, and the durable-rules
  re-runs the completion of unknowns needed (``postcart.unknowns``); wall-clock and this thread's CPU time
  (on a shared machine the wall clock includes other processes' turns).
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
from postcart.unknowns import resolver_for


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


def open_inputs(engine: Engine, situation: Any) -> int:
    """How many of the rulebook's catalogued unknown inputs this situation leaves unknown."""
    count = 0
    for item in engine.rulebook.unknowns:
        value: Any = situation
        for part in item.field.split("."):
            value = getattr(value, part)
        count += value == item.unknown
    return count


def unknowns_latency(rulebook: Rulebook, count: int, warm: int) -> dict[str, Any]:
    """evaluate() latency per situation by number of unknown inputs, cold and after a warm-up."""
    out: dict[str, Any] = {}
    cases = situations(count, seed=20261206)
    for label, warm_up in (("cold", 0), ("warm", warm)):
        engine = Engine(rulebook)
        for case in situations(warm_up, seed=7):
            evaluate(case, engine)
        resolver = resolver_for(engine)
        runs_before = resolver.engine_runs
        by_open: dict[int, list[float]] = {}
        every: list[float] = []
        cpu: list[float] = []
        cpu_few: list[float] = []
        for case in cases:
            situation = validate_situation(case)
            start, start_cpu = time.perf_counter(), time.thread_time()
            evaluate(case, engine)
            elapsed_cpu = (time.thread_time() - start_cpu) * 1e3
            elapsed = (time.perf_counter() - start) * 1e3
            every.append(elapsed)
            cpu.append(elapsed_cpu)
            unknown = open_inputs(engine, situation)
            by_open.setdefault(unknown, []).append(elapsed)
            if unknown <= 2:
                cpu_few.append(elapsed_cpu)
        few = sorted(value for key, values in by_open.items() if key <= 2 for value in values)
        every.sort()
        cpu.sort()
        out[label] = {
            "cpu_median_ms_up_to_two_unknowns": round(statistics.median(cpu_few), 3) if cpu_few else None,
            "cpu_median_ms_all": round(statistics.median(cpu), 3),
            "cpu_p99_ms_all": round(cpu[int(len(cpu) * 0.99) - 1], 3),
            "situations": len(every),
            "with_up_to_two_unknowns": len(few),
            "median_ms_up_to_two_unknowns": round(statistics.median(few), 3) if few else None,
            "p99_ms_up_to_two_unknowns": round(few[int(len(few) * 0.99) - 1], 3) if few else None,
            "median_ms_all": round(statistics.median(every), 3),
            "p99_ms_all": round(every[int(len(every) * 0.99) - 1], 3),
            "max_ms": round(every[-1], 3),
            "median_ms_by_unknowns": {key: round(statistics.median(values), 3)
                                      for key, values in sorted(by_open.items())},
            "reruns_per_evaluation": round((resolver.engine_runs - runs_before) / len(every), 3),
        }
        engine.close()
    return out


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
    unknown_n, warm_n = (1000, 1000) if args.quick else (10_000, 10_000)

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

    unknowns = unknowns_latency(rulebook, unknown_n, warm_n)

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
        "unknowns": unknowns,
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
    for label, found in unknowns.items():
        print(f"evaluate() with unknown inputs, {label} ({found['situations']} generated situations"
              f"{f', after {warm_n} others' if label == 'warm' else ', fresh engine'}): "
              f"up to two unknowns ({found['with_up_to_two_unknowns']}) median "
              f"{found['median_ms_up_to_two_unknowns']} ms, p99 {found['p99_ms_up_to_two_unknowns']} ms; "
              f"all: median {found['median_ms_all']} ms, p99 {found['p99_ms_all']} ms, max {found['max_ms']} ms; "
              f"{found['reruns_per_evaluation']} durable-rules re-runs per evaluation")
        print(f"    median ms by number of unknown inputs: {found['median_ms_by_unknowns']}")
        print(f"    CPU time of this thread (what other processes on the machine do not inflate): up to two "
              f"unknowns median {found['cpu_median_ms_up_to_two_unknowns']} ms; all: median "
              f"{found['cpu_median_ms_all']} ms, p99 {found['cpu_p99_ms_all']} ms")


if __name__ == "__main__":
    main()
