"""The bundled clinical scenarios: every one loads, and the engine's answer matches what the evidence expects."""

from __future__ import annotations

from collections import Counter

import pytest

from postcart import Engine, evaluate
from postcart.scenarios import Expectation, Scenario, check, load_scenarios

from .conftest import SCENARIOS

LOADED = load_scenarios(SCENARIOS)
BY_ID = {scenario.id: scenario for scenario in LOADED.scenarios}


def test_every_scenario_file_is_valid() -> None:
    """No scenario under scenarios/ is invalid (each problem is listed with its file, id and field)."""
    problems = [f"{file} {scenario_id}: {problem}" for file, scenario_id, problem in LOADED.invalid]
    assert problems == []


def test_at_least_five_scenarios_per_disease() -> None:
    """Each of the six diseases has at least five scenarios, thirty or more in all."""
    counts = Counter(str(scenario.situation.disease) for scenario in LOADED.scenarios)
    assert {disease: counts[disease] for disease in ("LBCL", "FL", "MCL", "B_ALL", "MM", "CLL")
            if counts[disease] < 5} == {}
    assert sum(counts.values()) >= 30


def test_readme_scenario_comes_first_in_its_file() -> None:
    """The README runs the first scenario of scenarios/lbcl.yaml: it stays lbcl-late-relapse-fit-donor."""
    first = load_scenarios(SCENARIOS / "lbcl.yaml").scenarios[0]
    assert first.id == "lbcl-late-relapse-fit-donor"


@pytest.mark.parametrize("scenario_id", sorted(BY_ID))
def test_scenario_matches_the_evidence(scenario_id: str, engine: Engine) -> None:
    """The assessment gives each option an allowed verdict, cites, asks and derives what the scenario expects."""
    scenario = BY_ID[scenario_id]
    mismatches = check(scenario, evaluate(scenario.situation, engine))
    assert not mismatches, f"{scenario_id} ({scenario.file}):\n" + "\n".join(f"  - {m}" for m in mismatches)


def test_a_wrong_expectation_is_reported(engine: Engine) -> None:
    """The scenario check fails, naming the option, when an expectation contradicts the rules."""
    original = BY_ID["lbcl-late-relapse-fit-donor"]
    wrong = Scenario(original.id, original.description, original.situation,
                     Expectation(options={"bispecific_antibody": ["not_advised"]},
                                 citations=["rotz2024_survivorship_hct_cellular", "no_such_key"],
                                 missing_information=["failure.cd20"]),
                     original.file)
    mismatches = [str(item) for item in check(wrong, evaluate(wrong.situation, engine))]
    assert any(text.startswith("option bispecific_antibody: expected not_advised, got recommended")
               for text in mismatches)
    assert "citation no_such_key: expected cited, got not cited" in mismatches
    assert "missing information failure.cd20: expected asked for, got not asked for" in mismatches
    assert not any("rotz2024" in text for text in mismatches)


@pytest.mark.parametrize("scenario_id", sorted(BY_ID))
def test_every_suggestion_carries_its_evidence_grade_in_every_rendering(scenario_id: str, engine: Engine) -> None:
    """Each recommended/consider option of a scenario has an evidence grade, shown in text, Markdown and JSON."""
    from postcart.render import to_markdown, to_text

    assessment = evaluate(BY_ID[scenario_id].situation, engine)
    text, markdown, data = to_text(assessment), to_markdown(assessment), assessment.model_dump(mode="json")
    for index, item in enumerate(assessment.options):
        if item.verdict == "not_advised":
            continue
        assert item.evidence is not None, item.option
        assert item.evidence.token in text and item.evidence.token in markdown
        assert data["options"][index]["evidence"]["level"] == item.evidence.level


def test_the_review_report_shows_each_grade_beside_its_verdict(engine: Engine) -> None:
    """The batch HTML report puts the evidence token in the verdict cell of every graded option."""
    from postcart.batch.suite import run_suite, to_html

    suite = run_suite([SCENARIOS], engine)
    page = to_html(suite)
    for result in suite.results:
        for item in (result.assessment.options if result.assessment else []):
            if item.evidence is not None:
                assert f"{item.verdict} {item.evidence.token}" in page
