"""The clinical step library and the rule-coverage bookkeeping of the feature suite.

The features and steps ship in the package (``postcart/governance/features/``); steps live in
``clinical_steps/`` (patient: Given; outcome: When/Then); importing them here makes them
available to every feature. The hooks below name the step being run (for error messages), record each
scenario's assessment for the coverage report and the clinicians' review report, and write both at the
end of the session.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from postcart.governance.features import FEATURES_DIR
from postcart.governance.features.clinical_steps.case import ClinicalStepError, PatientCase, StepRef
from postcart.governance.features.clinical_steps.coverage import (
    ScenarioRecord,
    Tracker,
    assessment_evidence,
    output_dir,
)
from postcart.governance.features.clinical_steps.outcome import *
from postcart.governance.features.clinical_steps.patient import *
from postcart.governance.features.clinical_steps.registry import unknown_step
from postcart.governance.review import read_features

FEATURES = FEATURES_DIR
_TRACKER = pytest.StashKey[Tracker]()
_RECORD = pytest.StashKey[ScenarioRecord]()


def tracker(config: pytest.Config) -> Tracker | None:
    """The session's coverage tracker, once a scenario has needed it."""
    return config.stash.get(_TRACKER, None)


def expected_scenarios() -> int:
    """How many scenarios the feature files hold, each example of an outline counted."""
    return sum(len(feature.scenarios) for feature in read_features(FEATURES))


@pytest.fixture
def case(request: pytest.FixtureRequest, engine: Any) -> Iterator[PatientCase]:
    """The scenario's patient; on teardown its assessment goes into the coverage record."""
    patient = PatientCase()
    if _TRACKER not in request.config.stash:
        request.config.stash[_TRACKER] = Tracker(engine.rulebook)
    yield patient
    record = request.node.stash.get(_RECORD, None)
    if record is not None:
        if patient.assessment is not None:
            record.rules_fired = list(patient.assessment.audit.rules_fired)
            record.assessment = assessment_evidence(patient.assessment)
        record.asserted_rules = sorted(patient.asserted_rules)
        record.checks = list(patient.checks)


@pytest.fixture
def feature_tracker(request: pytest.FixtureRequest) -> Tracker | None:
    """The coverage tracker of this session (None when no scenario ran)."""
    return tracker(request.config)


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    request.getfixturevalue("case")  # creates the session's tracker on first use
    callspec = getattr(request.node, "callspec", None)
    example = callspec.params.get("_pytest_bdd_example") if callspec else None
    record = ScenarioRecord(
        nodeid=request.node.nodeid, item_name=request.node.name, feature_file=Path(feature.filename).name,
        feature=feature.name, scenario=scenario.name, line=scenario.line_number,
        rule=scenario.rule.name if scenario.rule else None,
        tags=sorted(scenario.tags | feature.tags | (scenario.rule.tags if scenario.rule else set())),
        example=dict(example) if example else None,
    )
    request.node.stash[_RECORD] = record
    found = tracker(request.config)
    if found is not None:
        found.records[record.nodeid] = record


def pytest_bdd_before_step(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                           step_func: Any) -> None:
    case: PatientCase = request.getfixturevalue("case")
    case.current = StepRef(step.keyword, step.name, step.line_number)


def pytest_bdd_step_func_lookup_error(request: pytest.FixtureRequest, feature: Any, scenario: Any, step: Any,
                                      exception: Exception) -> None:
    """An unknown phrase: say which step, and the known phrases closest to it."""
    raise ClinicalStepError(unknown_step(step.type, step.keyword, step.name, step.line_number,
                                         Path(feature.filename).name, scenario.name))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    record = item.stash.get(_RECORD, None)
    if record is not None and (report.when == "call" or report.failed):
        if report.failed:
            record.outcome = "failed"
            record.failure = _failure_text(report)
        elif report.when == "call":
            record.outcome = "passed" if report.passed else report.outcome
    return report


def _failure_text(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return text[:2000]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The rule-coverage check runs after every feature scenario."""
    last = [item for item in items if item.path.name == "test_rule_coverage.py"]
    if last:
        items[:] = [item for item in items if item not in last] + last


def pytest_sessionfinish(session: pytest.Session) -> None:
    found = tracker(session.config)
    if found is None or not found.records:
        return
    complete = len(found.records) >= expected_scenarios()
    paths = found.write(output_dir(Path(session.config.rootpath)), complete)
    session.config.stash[_REPORT_PATHS] = paths
    session.config.stash[_COMPLETE] = complete


_REPORT_PATHS = pytest.StashKey[list[Path]]()
_COMPLETE = pytest.StashKey[bool]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    found = tracker(config)
    if found is None or not found.records:
        return
    terminalreporter.write_sep("-", found.summary())
    uncovered = found.uncovered()
    if not config.stash.get(_COMPLETE, False):
        terminalreporter.write_line(f"partial run ({len(found.records)} of {expected_scenarios()} scenarios): "
                                    f"coverage not enforced; {len(uncovered)} rules did not fire in these")
    elif uncovered:
        terminalreporter.write_line("rules that never fired: " + ", ".join(uncovered))
    for path in config.stash.get(_REPORT_PATHS, []):
        terminalreporter.write_line(f"written: {path}")
