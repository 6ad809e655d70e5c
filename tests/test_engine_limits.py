"""Rulebooks beyond durable-rules' fixed tables, fork and close: refused or evaluated, never a crash.

The crash cases run in subprocesses: before the compiler kept the limits, these rulebooks killed the
interpreter (error 303, then SIGABRT/SIGSEGV on the session cleanup).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from postcart import Engine, EvaluationError, Rulebook, RuleDefinitionError, evaluate
from postcart.compiler import LIMITS, compile_rulebook

from .conftest import BASELINE, ROOT
from .rulebooks import DERIVE_RULES, covering_rules, suggest, write_rulebook


def _run(code: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, check=False, env={**os.environ, "PYTHONFAULTHANDLER": "1"})


def _thresholds(directory: Path, count: int) -> Path:
    rules = [*DERIVE_RULES, *covering_rules(),
             *(suggest(f"threshold.{index:03d}", "clinical_trial", when={"field": "age", "gt": index})
               for index in range(count))]
    return write_rulebook(directory, rules)


def test_one_hundred_thresholds_on_one_field_evaluate_in_a_subprocess(tmp_path: Path) -> None:
    """100 rules comparing age with 100 thresholds: split into rulesets, every threshold rule fires."""
    directory = _thresholds(tmp_path / "rules", 100)
    result = _run(f"""
        from postcart import Engine, Rulebook, evaluate
        from postcart.governance.check import lint
        rulebook = Rulebook.load({str(directory)!r})
        with Engine(rulebook) as engine:
            fired = evaluate({BASELINE!r}, engine).audit.rules_fired
            print("strata", len(engine.compiled.strata["LBCL"]))
            print("fired", sum(rule.startswith("threshold.") for rule in fired))
            print("problems", len(lint(rulebook, engine).problems))
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = dict(line.split() for line in result.stdout.splitlines())
    assert int(lines["strata"]) > 2  # one derivation stratum and the option stratum, split in two or more
    assert lines["fired"] == "58"  # age 58 is above thresholds 0..57
    assert lines["problems"] == "0"


def test_two_thousand_generated_rules_evaluate_in_a_subprocess(tmp_path: Path) -> None:
    """A rulebook of 2,000 generated rules on top of the bundled ones loads and evaluates 200 patients."""
    result = _run(f"""
        import random
        from postcart import Engine, Rulebook, evaluate
        from postcart.testing import random_situation, synthetic_rules
        from pathlib import Path
        rulebook = Rulebook.load(synthetic_rules(Path({str(tmp_path / "rules")!r}), 2000))
        rng = random.Random(3)
        with Engine(rulebook) as engine:
            fired = sum(len(evaluate(random_situation(rng, i), engine).audit.rules_fired) for i in range(200))
        print(len(rulebook.rules), fired)
    """, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    rules, fired = map(int, result.stdout.split())
    assert rules > 2000 and fired > 200


def test_a_rule_too_big_for_any_ruleset_is_refused_with_its_id_and_the_limit(tmp_path: Path) -> None:
    """A rule of 20 nested any/all groups exceeds MAX_SEQUENCE_EXPRESSIONS alone: refused, not crashed."""
    condition: Any = {"all": [{"any": [{"field": "age", "gt": index}, {"field": "fitness.ecog", "le": 4 - index % 4}]}
                              for index in range(16)]}  # 18 groups with the marker: 36 entries
    rules = [*DERIVE_RULES, *covering_rules(), suggest("too.deep", "clinical_trial", when=condition)]
    rulebook = Rulebook.load(write_rulebook(tmp_path / "rules", rules))
    with pytest.raises(RuleDefinitionError) as caught:
        compile_rulebook(rulebook)
    text = str(caught.value)
    assert "rule too.deep" in text and "MAX_SEQUENCE_EXPRESSIONS 32" in text and "got 18" in text
    result = _run(f"""
        from postcart.cli import main
        import sys
        sys.argv = ["postcart", "check", "--rules", {str(tmp_path / "rules")!r}]
        main()
    """)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "too.deep" in result.stderr and "MAX_SEQUENCE_EXPRESSIONS" in result.stderr


def test_limits_name_the_c_constants() -> None:
    """Every limit kept is below the constant of durable-rules' C core it stands for."""
    import re

    for name, kept in LIMITS.items():
        constant = int(re.search(r"\(([A-Z_]+) (\d+)", name).group(2))  # type: ignore[union-attr]
        bound = constant // 2 if "two entries each" in name else constant
        assert kept < bound, name


def test_close_during_evaluation_raises_evaluation_error(rulebook: Rulebook) -> None:
    """Another thread closing the engine mid-evaluation gives EvaluationError, never a raw KeyError."""
    engine = Engine(rulebook)
    errors: list[BaseException] = []
    running = threading.Event()
    deadline = time.monotonic() + 60

    def evaluate_until_closed() -> None:
        while time.monotonic() < deadline:
            try:
                evaluate(BASELINE, engine)
            except BaseException as error:  # the test records whatever escapes
                errors.append(error)
                return
            running.set()

    thread = threading.Thread(target=evaluate_until_closed)
    thread.start()
    assert running.wait(30)
    engine.close()
    thread.join(60)
    assert errors, "the evaluating thread never saw the close"
    assert all(isinstance(error, EvaluationError) for error in errors), errors
    assert "closed" in str(errors[0])


def test_fork_while_another_thread_evaluates_neither_deadlocks_nor_reuses_the_parent_engine() -> None:
    """10 forks while a thread evaluates: each child evaluates with a new default engine and exits 0,
    and a parent's Engine used in a child says so."""
    result = _run(f"""
        import os, threading, sys
        from postcart import EvaluationError, evaluate
        from postcart.evaluation import default_engine
        situation = {BASELINE!r}
        parent = default_engine()
        stop = threading.Event()
        def busy():
            while not stop.is_set():
                evaluate(situation)
        thread = threading.Thread(target=busy); thread.start()
        statuses = []
        for _ in range(10):
            pid = os.fork()
            if pid == 0:
                try:
                    try:
                        parent.run  # the parent's engine, inherited
                        from postcart import validate_situation
                        parent.run(validate_situation(situation))
                        code = 3
                    except EvaluationError as error:
                        code = 0 if "create a new Engine" in str(error) else 4
                    evaluate(situation)
                except BaseException:
                    code = 5
                os._exit(code)
            statuses.append(pid)
        codes = []
        for pid in statuses:
            codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
        stop.set(); thread.join()
        print(codes)
    """, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == str([0] * 10)
