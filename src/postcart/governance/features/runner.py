"""Run the feature scenarios in this process, with the clinical step library, for the review page.

The test suite runs the same feature files with pytest-bdd (``tests/features/``); this runner needs
neither pytest nor a subprocess, so an installed postcart can produce the review page. Both match a
step's text against the same typed phrases (``clinical_steps.registry``) and call the same step
functions, and ``tests/features/test_rule_coverage.py`` checks that they agree on every scenario.

A step's kind is its keyword's (``And``/``But``/``*`` take the kind of the step before), as in
pytest-bdd. Not thread-safe: the step library's registry is module state.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from postcart.engine import Engine
from postcart.governance.features.clinical_steps import outcome, patient  # noqa: F401  (defines the steps)
from postcart.governance.features.clinical_steps.case import PatientCase, StepRef
from postcart.governance.features.clinical_steps.coverage import ScenarioRecord, Tracker, assessment_evidence
from postcart.governance.features.clinical_steps.registry import STEPS, StepDefinition, unknown_step
from postcart.governance.features.gherkin import GherkinFeature, GherkinScenario

__all__ = ["FeatureRun", "run_features"]

_KINDS = {"Given": "given", "When": "when", "Then": "then"}


@dataclass
class FeatureRun:
    """What a run produced: the coverage tracker (scenario records) and a Cucumber JSON report."""

    tracker: Tracker
    cucumber: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(1 for record in self.tracker.records.values() if record.outcome != "passed")


def run_features(features: list[GherkinFeature], engine: Engine) -> FeatureRun:
    """Run every scenario of the parsed feature files against the engine's rulebook."""
    run = FeatureRun(Tracker(engine.rulebook))
    for feature in features:
        elements = [_run_scenario(feature, scenario, engine, run.tracker) for scenario in feature.scenarios]
        run.cucumber.append({"uri": feature.file, "id": feature.file, "keyword": "Feature", "name": feature.name,
                             "line": 1, "description": feature.description,
                             "tags": [{"name": tag.lstrip("@"), "line": 1} for tag in feature.tags],
                             "elements": elements})
    return run


def _run_scenario(feature: GherkinFeature, scenario: GherkinScenario, engine: Engine,
                  tracker: Tracker) -> dict[str, Any]:
    record = ScenarioRecord(
        nodeid=scenario.review_id, item_name=scenario.review_id, feature_file=feature.file, feature=feature.name,
        scenario=scenario.name, line=scenario.line, rule=scenario.rule,
        tags=sorted(tag.lstrip("@") for tag in scenario.tags), example=dict(scenario.example or ()) or None,
    )
    tracker.records[record.nodeid] = record
    case = PatientCase()
    steps: list[dict[str, Any]] = []
    kind = "given"
    failed = False
    for index, (keyword, text) in enumerate(scenario.steps):
        kind = _KINDS.get(keyword, kind)
        line = scenario.step_lines[index] if index < len(scenario.step_lines) else scenario.line
        result: dict[str, Any] = {"status": "skipped"}
        if not failed:
            case.current = StepRef(keyword, text, line)
            try:
                _call(_definition(kind, keyword, text, line, feature.file, scenario.name), text, case, engine)
                result = {"status": "passed"}
            except Exception as error:
                failed = True
                record.failure = f"{type(error).__name__}: {error}"[:2000]
                result = {"status": "failed", "error_message": record.failure}
        steps.append({"keyword": keyword, "name": text, "line": line, "match": {"location": ""}, "result": result})
    record.outcome = "failed" if failed else "passed"
    if case.assessment is not None:
        record.rules_fired = list(case.assessment.audit.rules_fired)
        record.assessment = assessment_evidence(case.assessment)
    record.asserted_rules = sorted(case.asserted_rules)
    record.checks = list(case.checks)
    return {"id": scenario.review_id, "keyword": "Scenario", "name": scenario.name, "line": scenario.line,
            "description": "", "type": "scenario", "tags": [{"name": tag.lstrip("@"), "line": scenario.line}
                                                          for tag in scenario.tags], "steps": steps}


class _UnknownStep(AssertionError):
    """No phrase of the step library reads like this step."""


def _definition(kind: str, keyword: str, text: str, line: int, file: str, scenario: str) -> StepDefinition:
    found = [definition for definition in STEPS[kind] if definition.phrase.is_matching(text)]
    if not found:
        raise _UnknownStep(unknown_step(kind, keyword, text, line, file, scenario))
    if len(found) > 1:
        raise _UnknownStep(f'step "{keyword} {text}" (line {line} of {file}): reads like several phrases: '
                           + " | ".join(f'"{definition.phrase.name}"' for definition in found))
    return found[0]


def _call(definition: StepDefinition, text: str, case: PatientCase, engine: Engine) -> None:
    arguments = definition.phrase.parse_arguments(text)
    available = {"case": case, "engine": engine, **arguments}
    names = inspect.signature(definition.func).parameters
    definition.func(**{name: available[name] for name in names})
