"""The clinical step library: phrases become situation fields, and a bad phrase or value names its step."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from conftest import pytest_bdd_step_func_lookup_error
from postcart.governance.features import FEATURES_DIR
from postcart.governance.features.clinical_steps import outcome, patient
from postcart.governance.features.clinical_steps.case import ClinicalStepError, PatientCase, StepRef
from postcart.governance.features.clinical_steps.registry import PARSERS, PHRASES
from postcart.governance.features.clinical_steps.vocabulary import OPTIONS, UnknownTerm, lookup
from postcart.governance.review import read_features


def _case(*steps: tuple[Any, tuple[str, ...], str]) -> PatientCase:
    """A case built by calling step functions, each under its own step reference."""
    case = PatientCase()
    for line, (func, args, text) in enumerate(steps, start=1):
        case.current = StepRef("Given" if line == 1 else "And", text, line)
        func(case, *args)
    return case


def test_relapse_phrase_builds_the_situation_on_the_baseline() -> None:
    """'a 58-year-old with large B-cell lymphoma who relapsed 11 months after axi-cel' fills the contract."""
    case = _case((patient.relapsed_after, (58, "large B-cell lymphoma", 11.0, "axi-cel"), "..."))
    assert case.data == {
        "fitness": {"ecog": 1}, "age": 58, "disease": "LBCL",
        "car_t": {"product": "axi-cel", "best_response": "CR"},
        "failure": {"kind": "relapse", "months_since_infusion": 11.0},
    }


def test_refractory_phrase_sets_primary_refractory_progression() -> None:
    """'refractory to ..., progressing N months after infusion' is primary refractory with progressive disease."""
    case = _case((patient.refractory_to, (64, "DLBCL", "yescarta", 0.8), "..."))
    assert case.get("failure.kind") == "primary_refractory" and case.get("car_t.best_response") == "PD"
    assert case.get("car_t.product") == "axi-cel" and case.get("failure.months_since_infusion") == 0.8


def test_cd20_and_car_target_go_to_their_own_fields() -> None:
    """'CD20 is lost' sets failure.cd20; 'BCMA is retained' after cilta-cel sets failure.target_antigen."""
    case = _case((patient.relapsed_after, (60, "myeloma", 9.0, "cilta-cel"), "..."),
                 (patient.antigen_on_biopsy, ("BCMA", "retained"), "BCMA is retained on re-biopsy"))
    assert case.get("failure.target_antigen") == "retained"
    lymphoma = _case((patient.relapsed_after, (60, "follicular lymphoma", 9.0, "axi-cel"), "..."),
                     (patient.antigen_on_biopsy, ("CD20", "lost"), "CD20 is lost on re-biopsy"))
    assert lymphoma.get("failure.cd20") == "negative" and lymphoma.get("failure.target_antigen") is None


def test_antigen_that_is_not_the_car_target_fails_naming_the_step() -> None:
    """Saying CD19 for a BCMA CAR-T is refused, naming the step and the patient's real CAR target."""
    with pytest.raises(ClinicalStepError, match=r'step "And CD19 is lost on re-biopsy" \(line 2\): CD19 is not '
                                                r"the target of this patient's CAR-T \(BCMA\)"):
        _case((patient.relapsed_after, (60, "myeloma", 9.0, "ide-cel"), "..."),
              (patient.antigen_on_biopsy, ("CD19", "lost"), "CD19 is lost on re-biopsy"))


def test_unknown_disease_word_fails_with_suggestions() -> None:
    """An unknown disease name fails its step, listing close known names."""
    with pytest.raises(ClinicalStepError, match=r"unknown disease 'mantel cell lymphoma' \(did you mean "
                                                r"'mantle cell lymphoma'"):
        _case((patient.relapsed_after, (60, "mantel cell lymphoma", 9.0, "brexu-cel"), "a 60-year-old ..."))


def test_invalid_value_fails_at_assessment_naming_the_step_that_gave_it(engine: Any) -> None:
    """ECOG 7 passes its own step but the assessment refuses it, naming fitness.ecog and the step."""
    case = _case((patient.relapsed_after, (58, "large B-cell lymphoma", 11.0, "axi-cel"), "..."),
                 (patient.ecog, (7,), "ECOG performance status is 7"))
    case.current = StepRef("When", "postcart assesses the situation", 3)
    with pytest.raises(ClinicalStepError) as raised:
        outcome.assess(case, engine)
    message = str(raised.value)
    assert message.startswith('step "When postcart assesses the situation" (line 3)')
    assert "fitness.ecog" in message and "got 7" in message
    assert '[from step "And ECOG performance status is 7" (line 2)]' in message


def test_product_not_used_for_the_disease_is_refused_naming_the_first_step(engine: Any) -> None:
    """ide-cel for lymphoma is refused by the input contract and traced to the step that said it."""
    case = _case((patient.relapsed_after, (58, "large B-cell lymphoma", 11.0, "ide-cel"),
                  "a 58-year-old with large B-cell lymphoma who relapsed 11 months after ide-cel"))
    with pytest.raises(ClinicalStepError, match=r"car_t.product: ide-cel is not used for LBCL.*\[from step "
                                                r'"Given a 58-year-old'):
        outcome.assess(case, engine)


def test_verdict_mismatch_reports_what_postcart_said(engine: Any) -> None:
    """A wrong expected verdict fails with the verdict postcart gave and its rules."""
    case = _case((patient.relapsed_after, (58, "large B-cell lymphoma", 11.0, "axi-cel"), "..."))
    outcome.assess(case, engine)
    with pytest.raises(ClinicalStepError, match=r"expected long-term follow-up to be not advised, but it is "
                                                r"recommended \(rules .*follow_up\.everyone"):
        outcome.option_verdict(case, "long-term follow-up", "not advised")


def test_citation_check_lists_the_sources_actually_cited(engine: Any) -> None:
    """Asking for a source an option does not cite fails with the sources it does cite."""
    case = _case((patient.relapsed_after, (58, "large B-cell lymphoma", 11.0, "axi-cel"), "..."))
    outcome.assess(case, engine)
    outcome.option_verdict(case, "long-term follow-up", "recommended")
    outcome.cites(case, "FDA 2024 boxed warning")
    with pytest.raises(ClinicalStepError, match=r"does not cite 'Nobody 1999'; it cites FDA 2024"):
        outcome.cites(case, "Nobody 1999")


def test_then_before_when_says_the_assessment_step_is_missing() -> None:
    """A Then step before any assessment explains that the When step must come first."""
    case = _case((patient.relapsed_after, (58, "large B-cell lymphoma", 11.0, "axi-cel"), "..."))
    with pytest.raises(ClinicalStepError, match="When postcart assesses the situation' step must come first"):
        outcome.asks_for(case, "the CD20 status")


def test_unknown_phrase_names_the_step_and_the_closest_known_phrases() -> None:
    """A phrase no step reads fails with its line, scenario and the known phrases closest to it."""
    step = SimpleNamespace(type="given", name="ECOG is 2", keyword="And", line_number=9)
    feature = SimpleNamespace(filename="/x/lbcl.feature")
    scenario = SimpleNamespace(name="Frail patient")
    with pytest.raises(ClinicalStepError, match=r'step "And ECOG is 2" \(line 9 of lbcl.feature, scenario '
                                                r'"Frail patient"\): no step .*"ECOG performance status is 1"'):
        pytest_bdd_step_func_lookup_error(request=None, feature=feature, scenario=scenario, step=step,
                                          exception=Exception())


def test_option_vocabulary_is_case_and_article_insensitive() -> None:
    """'A Bispecific antibody' and 'bispecific antibodies' are the same option; a drug name is not an option."""
    assert lookup("option", "A Bispecific antibody", OPTIONS) == "bispecific_antibody"
    assert lookup("option", "bispecific antibodies", OPTIONS) == "bispecific_antibody"
    with pytest.raises(UnknownTerm, match="unknown option 'blinatumomab'"):
        lookup("option", "blinatumomab", OPTIONS)


def _matching(kind: str, text: str) -> list[str]:
    return [parser.name for parser in PARSERS[kind] if parser.is_matching(text)]


def test_each_example_phrase_matches_exactly_one_step() -> None:
    """Every documented example phrase is read by one step and one only (no ambiguous phrasing)."""
    for kind, phrases in PHRASES.items():
        for phrase in phrases:
            assert len(_matching(kind, phrase)) == 1, (kind, phrase, _matching(kind, phrase))


def test_each_step_of_the_feature_files_matches_exactly_one_step() -> None:
    """No step written in a feature file could be read two ways (outline rows filled in)."""

    types = {"Given": "given", "When": "when", "Then": "then"}
    for feature in read_features(FEATURES_DIR):
        for scenario in feature.scenarios:
            kind = "given"
            for keyword, text in scenario.steps:
                kind = types.get(keyword, kind)
                assert len(_matching(kind, text)) == 1, (feature.file, scenario.name, text, _matching(kind, text))


def test_numbers_arrive_typed() -> None:
    """Ages are integers and months decimals, as the phrase's format says."""
    parser = next(p for p in PARSERS["given"] if p.is_matching("a 58-year-old with FL who relapsed 2.9 months after axi-cel"))
    arguments = parser.parse_arguments("a 58-year-old with FL who relapsed 2.9 months after axi-cel")
    assert arguments["age"] == 58 and isinstance(arguments["age"], int) and arguments["months"] == 2.9
