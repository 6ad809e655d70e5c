"""Scenario suites: `postcart batch` as a regression gate, with text, JUnit, HTML and JSON reports."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from postcart import Engine, evaluate
from postcart.batch.suite import run_suite, to_html
from postcart.cli import app

from .conftest import BASELINE, RULES, SCENARIOS


def _scenario(scenario_id: str, situation: dict[str, Any], options: dict[str, list[str]],
              citations: list[str] | None = None) -> dict[str, Any]:
    return {"id": scenario_id, "description": f"test scenario {scenario_id}", "situation": situation,
            "expected": {"options": options, "citations": citations or []}}


@pytest.fixture
def suite_dir(tmp_path: Path) -> Path:
    """Two scenarios written from the engine's current answer for the baseline patient: both pass."""
    assessment = evaluate(BASELINE)
    options = {option.option: [option.verdict] for option in assessment.options}
    citations = [assessment.options[0].citations[0].key]
    older = copy.deepcopy(BASELINE) | {"age": 66, "patient_id": "test-002"}
    older_options = {option.option: [option.verdict] for option in evaluate(older).options}
    (tmp_path / "good.yaml").write_text(yaml.safe_dump({"scenarios": [
        _scenario("baseline-ok", copy.deepcopy(BASELINE), options, citations),
        _scenario("older-ok", older, older_options)]}), encoding="utf-8")
    return tmp_path


def _wrong(directory: Path) -> Path:
    """A scenario expecting bispecific_antibody to be not_advised for a patient it is advised for."""
    path = directory / "wrong.yaml"
    path.write_text(yaml.safe_dump({"scenarios": [
        _scenario("wrong-expectation", copy.deepcopy(BASELINE), {"bispecific_antibody": ["not_advised"]})]}),
        encoding="utf-8")
    return path


def _invalid(directory: Path) -> Path:
    """One scenario with an age out of range, next to a valid one in the same file."""
    bad = copy.deepcopy(BASELINE) | {"age": 150}
    path = directory / "invalid.yaml"
    path.write_text(yaml.safe_dump({"scenarios": [
        _scenario("bad-age", bad, {}), _scenario("fine-next-to-bad", copy.deepcopy(BASELINE), {})]}),
        encoding="utf-8")
    return path


def _run(*args: str) -> Any:
    return CliRunner().invoke(app, ["batch", *args, "--rules", str(RULES)])


def test_bundled_scenarios_pass() -> None:
    """`postcart batch scenarios/` passes on the bundled scenario files and says how many passed."""
    result = _run(str(SCENARIOS))
    assert result.exit_code == 0, result.output
    assert " passed, 0 failed, 0 invalid" in result.output


def test_good_suite_passes(suite_dir: Path) -> None:
    """A suite whose expectations hold exits 0 and prints no diff."""
    result = _run(str(suite_dir))
    assert result.exit_code == 0, result.output
    assert "2 scenarios: 2 passed, 0 failed, 0 invalid" in result.output
    assert "FAIL" not in result.output


def test_wrong_expectation_fails_loudly_with_a_diff(suite_dir: Path) -> None:
    """A wrong expectation exits 1 and shows expected vs got with the rules that fired."""
    _wrong(suite_dir)
    result = _run(str(suite_dir))
    assert result.exit_code == 1
    got = evaluate(BASELINE).option("bispecific_antibody")
    assert got is not None
    assert f"FAIL wrong-expectation ({suite_dir / 'wrong.yaml'})" in result.output
    assert "  - option bispecific_antibody\n      expected: not_advised\n" in result.output
    assert f"      got:      {got.verdict}\n      by rules: {', '.join(got.rules)}" in result.output
    assert "rules fired: " + ", ".join(evaluate(BASELINE).audit.rules_fired) in result.output
    assert "3 scenarios: 2 passed, 1 failed, 0 invalid" in result.output


def test_invalid_scenario_is_reported_and_the_rest_still_run(suite_dir: Path) -> None:
    """An invalid scenario is named with its file, id and field; exit 2; the other scenarios still pass."""
    path = _invalid(suite_dir)
    result = _run(str(suite_dir))
    assert result.exit_code == 2
    assert f"INVALID bad-age ({path})" in result.output
    assert f"{path} bad-age situation.age: Input should be less than or equal to 120" in result.output
    assert "4 scenarios: 3 passed, 0 failed, 1 invalid" in result.output


def test_no_scenarios_is_an_error(tmp_path: Path) -> None:
    """A directory without scenarios is not a passing suite."""
    result = _run(str(tmp_path))
    assert result.exit_code == 2
    assert "no scenarios found" in result.output


def test_junit_xml_has_the_failure_and_the_invalid_scenario(suite_dir: Path, tmp_path: Path) -> None:
    """The JUnit file parses, counts tests, and holds the mismatch as a failure and the invalid one as an error."""
    _wrong(suite_dir)
    _invalid(suite_dir)
    junit = tmp_path / "junit.xml"
    result = _run(str(suite_dir), "--junit", str(junit))
    assert result.exit_code == 2
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "1", "1")
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"baseline-ok", "older-ok", "wrong-expectation", "bad-age", "fine-next-to-bad"}
    failure = cases["wrong-expectation"].find("failure")
    assert failure is not None
    assert "option bispecific_antibody: expected not_advised" in failure.get("message", "")
    assert "rules fired:" in (failure.text or "")
    error = cases["bad-age"].find("error")
    assert error is not None and "situation.age" in error.get("message", "")
    assert cases["baseline-ok"].find("failure") is None


def test_html_report_shows_each_scenario_with_verdicts_citations_and_status(suite_dir: Path,
                                                                            tmp_path: Path) -> None:
    """The HTML report is one offline page with, per scenario, its status, verdicts, citations and situation."""
    _wrong(suite_dir)
    report = tmp_path / "report.html"
    result = _run(str(suite_dir), "--report", str(report))
    assert result.exit_code == 1
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for forbidden in ("<script", "<link", "src=", "@import"):
        assert forbidden not in page  # self-contained
    assessment = evaluate(BASELINE)
    for scenario_id, status in (("baseline-ok", "passed"), ("older-ok", "passed"), ("wrong-expectation", "failed")):
        start = page.index(f'<section class="{status}" id="{scenario_id}">')
        section = page[start:page.index("</section>", start)]
        assert f'<span class="badge">{status}</span>' in section
        for option in assessment.options if scenario_id != "older-ok" else ():
            assert f"<td>{option.option}</td>" in section
            assert option.verdict in section
            for citation in option.citations:
                assert citation.label in section
        assert "failure.months_since_infusion" in section  # the situation
    wrong = page[page.index('id="wrong-expectation"'):]
    assert '<td class="bad">' + assessment.option("bispecific_antibody").verdict in wrong  # type: ignore[union-attr]
    assert "Decision support only." in page


def test_json_format_has_full_results(suite_dir: Path) -> None:
    """`--format json` gives the summary and, per scenario, status, mismatches and the full assessment."""
    _wrong(suite_dir)
    result = _run(str(suite_dir), "--format", "json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["summary"] == {"scenarios": 3, "passed": 2, "failed": 1, "invalid": 0,
                               "seconds": data["summary"]["seconds"]}
    by_id = {entry["id"]: entry for entry in data["scenarios"]}
    wrong = by_id["wrong-expectation"]
    assert wrong["status"] == "failed"
    assert wrong["mismatches"][0]["what"] == "option bispecific_antibody"
    assert wrong["assessment"]["options"][0]["citations"]
    assert by_id["baseline-ok"]["status"] == "passed"


def test_progress_is_reported_per_scenario(suite_dir: Path, engine: Engine) -> None:
    """run_suite calls the progress callback once per scenario with the running count and the total."""
    calls: list[tuple[int, int]] = []
    suite = run_suite([suite_dir], engine, lambda done, total: calls.append((done, total)))
    assert calls == [(1, 2), (2, 2)]
    assert suite.ok and "Decision support only." in to_html(suite)


def test_junit_write_failure_keeps_the_summary_and_exits_2(suite_dir: Path, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A JUnit file that cannot be written after the run (disk full) exits 2 naming --junit, summary printed."""
    original = Path.write_text

    def full_disk(self: Path, *args: Any, **kwargs: Any) -> int:
        if self.name == "junit.xml":
            raise OSError(28, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full_disk)
    result = _run(str(suite_dir), "--junit", str(tmp_path / "junit.xml"))
    assert result.exit_code == 2, result.output
    assert "passed" in result.output
    assert f"--junit {tmp_path / 'junit.xml'}: cannot write: No space left on device" in result.output
