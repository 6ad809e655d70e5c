"""The engine on durable-rules: sessions always deleted, thread-safe, faithful to the rule conditions."""

from __future__ import annotations

import copy
import json
import shutil
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from postcart import Engine, EvaluationError, Rulebook, evaluate, validate_situation
from postcart.compiler import compile_rulebook

from .conftest import RULES


def variants(baseline: dict[str, Any]) -> list[dict[str, Any]]:
    """A spread of situations touching timing, antigen, fitness and toxicity."""
    out = []
    for months in (0.5, 1, 2.9, 3, 3.1, 11):
        for ecog in (0, 2, 3, 4):
            for cd20 in ("positive", "negative", "unknown"):
                for icans in (None, 2, 3):
                    case = copy.deepcopy(baseline)
                    case["failure"]["months_since_infusion"] = months
                    case["failure"]["cd20"] = cd20
                    case["fitness"]["ecog"] = ecog
                    case["car_t"]["max_icans_grade"] = icans
                    out.append(case)
    return out


def test_more_evaluations_than_durable_sessions(engine: Engine, baseline: dict[str, Any]) -> None:
    """3,000 evaluations pass the 1,024 live-session limit: every session is deleted."""
    situation = validate_situation(baseline)
    first = engine.run(situation)
    for _ in range(3000):
        assert engine.run(situation).fired == first.fired


def test_derived_facts_chain_into_later_rules(engine: Engine, baseline: dict[str, Any]) -> None:
    """Failure timing is derived first and visible to the option rules that run after it."""
    baseline["failure"]["months_since_infusion"] = 0.5
    result = engine.run(validate_situation(baseline))
    assert result.derived["failure_timing"] == "very_early"
    assert result.facts["derived.failure_timing"] == "very_early"
    assert "derived.failure_timing.very_early" in result.fired


def test_each_rule_recorded_once_even_when_or_branches_both_hold(engine: Engine, baseline: dict[str, Any]) -> None:
    """A rule whose `any` has two true branches is recorded once (durable fires once per branch)."""
    baseline["car_t"]["max_icans_grade"] = 4
    baseline["car_t"]["max_crs_grade"] = 4
    fired = engine.run(validate_situation(baseline)).fired
    assert fired.count("derived.severe_prior_toxicity") == 1
    assert len(fired) == len(set(fired))


def test_engine_fires_exactly_the_rules_whose_conditions_hold(engine: Engine, rulebook: Rulebook,
                                                              baseline: dict[str, Any]) -> None:
    """The compiled durable-rules patterns agree with the rule conditions on every variant."""
    from postcart.rulebook import conditions

    for case in variants(baseline):
        situation = validate_situation(case)
        result = engine.run(situation)
        facts = dict(result.facts, disease=situation.disease)
        expected = {rule.id for rule in rulebook.rules
                    if rule.full_condition is None or conditions.evaluate(rule.full_condition, facts)}
        assert set(result.fired) == expected, case


def test_eight_threads_give_the_same_results_as_sequential(engine: Engine, baseline: dict[str, Any]) -> None:
    """Eight threads evaluating at once give exactly the sequential results."""
    cases = variants(baseline) * 4
    sequential = [evaluate(case, engine).reproducible() for case in cases]
    barrier = threading.Barrier(8)

    def run(index: int) -> list[tuple[int, dict[str, Any]]]:
        barrier.wait()
        return [(i, evaluate(cases[i], engine).reproducible()) for i in range(index, len(cases), 8)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = [item for chunk in pool.map(run, range(8)) for item in chunk]
    assert len(results) == len(cases)
    for index, dumped in results:
        assert dumped == sequential[index]


def test_compiled_definitions_are_plain_json(rulebook: Rulebook) -> None:
    """The compiled rulesets are plain dicts that serialise to durable-rules' JSON form."""
    compiled = compile_rulebook(rulebook)
    for disease, strata in compiled.strata.items():
        assert strata, disease
        for stratum in strata:
            text = json.dumps(stratum.definition)
            assert json.loads(text) == stratum.definition
            assert set(stratum.definition) == set(stratum.rule_ids)


def test_registering_does_not_mutate_compiled_rulesets(rulebook: Rulebook) -> None:
    """durable-rules mutates what it is given; the engine hands it copies."""
    with Engine(rulebook) as first:
        before = copy.deepcopy({name: [dict(s.definition) for s in strata]
                                for name, strata in first.compiled.strata.items()})
        with Engine(rulebook):
            pass
        after = {name: [dict(s.definition) for s in strata] for name, strata in first.compiled.strata.items()}
    assert before == after


def test_two_engines_coexist_and_close(rulebook: Rulebook, baseline: dict[str, Any]) -> None:
    """Two engines on one rulebook run side by side; a closed engine refuses to run."""
    situation = validate_situation(baseline)
    with Engine(rulebook) as one, Engine(rulebook) as two:
        assert one.run(situation).fired == two.run(situation).fired
    with pytest.raises(EvaluationError, match="closed"):
        one.run(situation)
    one.close()  # idempotent


def test_conflicting_derivations_raise_evaluation_error(tmp_path: Path, baseline: dict[str, Any]) -> None:
    """Two rules deriving different values of one fact for the same patient is an evaluation error."""
    directory = tmp_path / "rules"
    shutil.copytree(RULES, directory)
    (directory / "zz_conflict.yaml").write_text(textwrap.dedent("""
        rules:
          - id: test.also_late
            title: Overlapping timing rule
            diseases: [all]
            when: {field: failure.months_since_infusion, gt: 2}
            then: {derive: failure_timing, value: early}
        """), encoding="utf-8")
    with Engine(Rulebook.load(directory)) as engine, pytest.raises(EvaluationError) as caught:
        engine.run(validate_situation(baseline))
    assert "derive different values for 'failure_timing'" in str(caught.value)
    assert "test.also_late" in str(caught.value)


def test_a_situation_no_rule_matches_is_not_an_error(tmp_path: Path, baseline: dict[str, Any]) -> None:
    """A fact that matches no rule (durable's 'not handled') just fires nothing."""
    directory = tmp_path / "rules"
    directory.mkdir()
    shutil.copy(RULES / "rulebook.yaml", directory)
    shutil.copy(RULES / "references.yaml", directory)
    (directory / "only.yaml").write_text(textwrap.dedent("""
        rules:
          - id: test.never_for_this_patient
            title: Only for ECOG 4
            diseases: [all]
            when: {field: fitness.ecog, eq: 4}
            then: {ask: fitness.hct_ci, why: A test prompt for ECOG 4 only.}
        """), encoding="utf-8")
    with Engine(Rulebook.load(directory)) as engine:
        result = engine.run(validate_situation(baseline))
    assert result.fired == ()


def test_strata_that_match_nothing_neither_crash_nor_leak(tmp_path: Path, baseline: dict[str, Any]) -> None:
    """A stratum no rule matches, evaluated 11,000 times, neither corrupts durable's heap nor keeps sessions."""
    import psutil

    directory = tmp_path / "rules"
    directory.mkdir()
    shutil.copy(RULES / "rulebook.yaml", directory)
    shutil.copy(RULES / "references.yaml", directory)
    (directory / "only.yaml").write_text(textwrap.dedent("""
        facts:
          fitness: {description: A fact no rule derives., values: [fit, unfit]}
          candidate: {description: Derived from an underived fact., values: [true, false]}
        rules:
          - id: test.candidate
            title: Needs a fact nobody derives
            diseases: [all]
            when:
              all:
                - {field: derived.fitness, eq: fit}
                - {field: history.prior_allo_hct, eq: false}
            then: {derive: candidate, value: true}
        """), encoding="utf-8")
    situation = validate_situation(baseline)
    process = psutil.Process()
    # A kept session costs ~80 MB per 1,000 evaluations. Warm up (allocator pools, caches), then measure
    # several blocks of 2,000: the median block growth ignores one noisy block but not a steady leak.
    growths: list[int] = []
    results: set[tuple[str, ...]] = set()
    with Engine(Rulebook.load(directory)) as engine:
        for _ in range(1000):
            engine.run(situation)
        for _ in range(5):
            before = process.memory_info().rss
            results |= {engine.run(situation).fired for _ in range(2000)}
            growths.append(process.memory_info().rss - before)
    assert results == {()}
    median = sorted(growths)[len(growths) // 2]
    assert median < 8 * 2**20, f"resident memory grew by {[g // 2**20 for g in growths]} MB per 2,000 runs"
    assert sum(growths) < 64 * 2**20, f"resident memory grew by {sum(growths) / 2**20:.0f} MB over 10,000 runs"


@pytest.mark.parametrize("months", [1e-05, 5e-324, 2.5e-7])
def test_tiny_numbers_reach_durable_in_a_form_it_parses(engine: Engine, baseline: dict[str, Any],
                                                        months: float) -> None:
    """A valid number that JSON writes in exponent form (1e-05 months) is evaluated, not refused (error 204)."""
    baseline["failure"]["months_since_infusion"] = months
    result = engine.run(validate_situation(baseline))
    assert result.derived["failure_timing"] == "very_early"


def test_a_durable_rules_that_does_not_import_is_one_line_saying_how_to_reinstall() -> None:
    """When the C extension cannot be imported (Python 3.13 without the build flag), the CLI says why and
    how to reinstall in one line, not a traceback."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['durable_rules_engine'] = None\n"
            "from postcart.cli import main\n"
            "sys.argv = ['postcart', 'evaluate', 'scenarios/lbcl.yaml', '--scenario', 'lbcl-late-relapse-fit-donor']\n"
            "main()\n")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                               cwd=str(Path(__file__).resolve().parents[1]))
    assert completed.returncode != 0
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    assert "durable-rules' C extension does not import" in lines[0]
    assert "CPPFLAGS=-DPyEval_CallObject=PyObject_CallObject pip install" in lines[0]
    assert "Traceback" not in completed.stderr
