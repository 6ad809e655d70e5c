"""Runs after the feature scenarios: every rule of the rulebook fired in at least one of them.

Enforced only when the whole feature suite ran (a run of a few selected scenarios skips these checks,
and still writes the partial coverage report).
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import expected_scenarios
from postcart import Engine
from postcart.governance.features import FEATURES_DIR
from postcart.governance.features.clinical_steps.coverage import Tracker
from postcart.governance.features.runner import run_features
from postcart.governance.review import read_features
from postcart.rulebook import Suggest
from postcart.vocabulary import DISEASES, OPTIONS


def _complete(feature_tracker: Tracker | None) -> Tracker:
    expected = expected_scenarios()
    ran = len(feature_tracker.records) if feature_tracker else 0
    if feature_tracker is None or ran < expected:
        pytest.skip(f"rule coverage is enforced when the whole feature suite runs ({ran} of {expected} "
                    "scenarios ran)")
    return feature_tracker


def test_every_rule_fired_in_some_scenario(feature_tracker: Tracker | None) -> None:
    """Each rule of the rulebook fired for the patient of at least one feature scenario."""
    tracker = _complete(feature_tracker)
    rules = {rule.id: rule for rule in tracker.rulebook.rules}
    missing = [f"{rule_id} ({rules[rule_id].title}; {rules[rule_id].file}:{rules[rule_id].line})"
               for rule_id in tracker.uncovered()]
    assert not missing, f"{len(missing)} rules never fired in a feature scenario:\n  " + "\n  ".join(missing)


def test_features_cover_every_disease_and_option(feature_tracker: Tracker | None) -> None:
    """At least 40 scenarios; each disease is assessed and each option's verdict checked by some scenario."""
    tracker = _complete(feature_tracker)
    records = list(tracker.records.values())
    assert len(records) >= 40, f"only {len(records)} scenarios"
    diseases = {record.assessment["disease"] for record in records if record.assessment}
    assert set(DISEASES) <= diseases, f"no scenario for {sorted(set(DISEASES) - diseases)}"
    checked = {check.split(" ")[0] for record in records for check in record.checks}
    assert set(OPTIONS) <= checked, f"no scenario checks {sorted(set(OPTIONS) - checked)}"


def test_every_option_a_disease_has_rules_for_is_checked_for_that_disease(feature_tracker: Tracker | None) -> None:
    """For each disease, every option some rule speaks to is checked by a Then step of a scenario about it."""
    tracker = _complete(feature_tracker)
    addressed = {(disease, rule.then.option) for rule in tracker.rulebook.rules if isinstance(rule.then, Suggest)
                 for disease in (DISEASES if rule.applies_to_all_diseases else rule.diseases)}
    checked = {(record.assessment["disease"], check.split(" ")[0])
               for record in tracker.records.values() if record.assessment for check in record.checks}
    missing = sorted(addressed - checked)
    assert not missing, f"no scenario checks these (disease, option) pairs the rules address: {missing}"


def test_review_runner_agrees_with_pytest_bdd(feature_tracker: Tracker | None, engine: Engine) -> None:
    """The in-process runner of `postcart review` gives every scenario the same outcome, rules fired,
    checks and assessment as this pytest-bdd run of the same feature files and steps."""
    tracker = _complete(feature_tracker)
    ours = run_features(read_features(FEATURES_DIR), engine).tracker.records.values()

    def key(record: Any) -> tuple[Any, ...]:
        return (record.feature_file, record.line, tuple((record.example or {}).values()))

    theirs = {key(record): record for record in tracker.records.values()}
    assert len(theirs) == len(tracker.records) == len(list(ours))
    for record in ours:
        other = theirs[key(record)]
        assert (record.outcome, record.rules_fired, record.checks, record.asserted_rules, record.assessment) == (
            other.outcome, other.rules_fired, other.checks, other.asserted_rules, other.assessment), record.nodeid
