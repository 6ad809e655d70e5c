"""Building the assessment: verdict precedence, ordering, citations, reasons and the disclaimer."""

from __future__ import annotations

import copy
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from postcart import Engine, Rulebook, evaluate
from postcart.assessment import DISCLAIMER
from postcart.vocabulary import VERDICTS

from .conftest import RULES

SUGGEST = """
  - id: {id}
    title: Test rule {id}
    diseases: [LBCL]
    when: {{field: fitness.ecog, le: 2}}
    then:
      option: radiotherapy
      verdict: {verdict}
      contraindication: {contraindication}
      rationale: Rationale of {id}, long enough for the schema.
      citations: [{citation}]
      evidence: {{level: {level}, basis: off_label}}
"""


@pytest.fixture
def precedence_engine(tmp_path: Path) -> Any:
    """Three rules on one option: recommended, consider, and a plain (non-contraindication) not_advised."""

    def build(*specs: tuple[str, str, bool]) -> Engine:
        directory = tmp_path / f"rules{len(list(tmp_path.iterdir()))}"
        shutil.copytree(RULES, directory)
        text = "rules:" + "".join(
            SUGGEST.format(id=rule_id, verdict=verdict, contraindication=str(contra).lower(),
                           citation="cartron2025_bicar_glofitamab_post_cart" if contra else "zurko2023_allohct_after_cart",
                           level={"recommended": "B", "consider": "C"}.get(verdict, "D"))
            for rule_id, verdict, contra in specs)
        (directory / "zz_precedence.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
        return Engine(Rulebook.load(directory))

    return build


def test_strongest_suggestion_wins_and_every_reason_stays(precedence_engine: Any, baseline: dict[str, Any]) -> None:
    """Without a contraindication the strongest verdict wins; all rules' reasons stay visible."""
    with precedence_engine(("t.rec", "recommended", False), ("t.con", "consider", False),
                           ("t.no", "not_advised", False)) as engine:
        option = evaluate(baseline, engine).option("radiotherapy")
    assert option is not None
    assert option.verdict == "recommended"
    assert option.rules[0] == "t.rec" and set(option.rules) == {"t.rec", "t.con", "t.no"}
    assert option.rationale.startswith("Rationale of t.rec")
    assert next(reason.rule for reason in option.reasons) == "t.rec"
    assert {reason.verdict for reason in option.reasons} == {"recommended", "consider", "not_advised"}
    assert option.evidence is not None and option.evidence.level == "B"  # the deciding rule's grade, not another's


def test_contraindication_wins_over_recommendation(precedence_engine: Any, baseline: dict[str, Any]) -> None:
    """A not_advised from a contraindication wins over any recommendation, whose reason stays listed."""
    with precedence_engine(("t.rec", "recommended", False), ("t.stop", "not_advised", True)) as engine:
        option = evaluate(baseline, engine).option("radiotherapy")
    assert option is not None
    assert option.verdict == "not_advised"
    assert option.rules == ["t.stop", "t.rec"]
    assert option.rationale.startswith("Rationale of t.stop")
    assert [c.key for c in option.citations] == ["cartron2025_bicar_glofitamab_post_cart", "zurko2023_allohct_after_cart"]
    assert option.evidence is not None and option.evidence.level == "D"  # the deciding (contraindication) rule's grade


def test_options_ordered_by_verdict(baseline: dict[str, Any], engine: Engine) -> None:
    """Options are listed recommended, then consider, then not advised."""
    baseline["failure"]["cd20"] = "negative"
    options = evaluate(baseline, engine).options
    ranks = [VERDICTS.index(option.verdict) for option in options]
    assert ranks == sorted(ranks)


def test_recommended_and_consider_options_cite_resolvable_references(baseline: dict[str, Any], engine: Engine,
                                                                      rulebook: Rulebook) -> None:
    """Every recommended/consider option carries citations that resolve to bibliography entries."""
    assessment = evaluate(baseline, engine)
    suggested = [option for option in assessment.options if option.verdict != "not_advised"]
    assert suggested
    for option in suggested:
        assert option.citations
        for citation in option.citations:
            reference = rulebook.references[citation.key]
            assert citation.label == reference.label
            assert citation.doi == reference.doi and citation.url == reference.link


def test_because_says_the_patients_facts_in_clinical_words(baseline: dict[str, Any], engine: Engine) -> None:
    """The 'because' text gives the patient's values as a clinician says them, each fact once per option."""
    baseline["disease_status"] = {"response_to_salvage": "CR"}  # the late-failure transplant rule reads timing
    assessment = evaluate(baseline, engine)
    texts = [text for option in assessment.options for text in option.because]
    assert "ECOG 1" in texts
    assert "relapse 11 months after axi-cel (late)" in texts  # months and the derived timing, said once
    for option in assessment.options:
        assert len(option.because) == len(set(option.because))
        assert not any(mark in text for text in option.because for mark in ("≠", "≤", "≥", "_"))


def test_assessment_echoes_label_and_carries_rulebook_and_disclaimer(baseline: dict[str, Any],
                                                                     engine: Engine) -> None:
    """The assessment echoes the pseudonymous label and names the rulebook; the disclaimer is always there."""
    assessment = evaluate(baseline, engine)
    assert assessment.patient_id == "test-001"
    assert assessment.rulebook.content_hash == engine.rulebook.content_hash
    assert assessment.disclaimer == DISCLAIMER and "does not replace clinical judgement" in DISCLAIMER
    dumped = assessment.model_dump(mode="json")
    assert {"options", "missing_information", "derived", "rulebook", "disclaimer"} <= set(dumped)
    assert dumped["derived"]["failure_timing"] == "late"


def test_long_term_follow_up_for_every_disease(engine: Engine, baseline: dict[str, Any]) -> None:
    """Long-term follow-up is recommended whatever the disease."""
    products = {"LBCL": "axi-cel", "FL": "axi-cel", "MCL": "brexu-cel", "B_ALL": "obe-cel", "MM": "cilta-cel",
                "CLL": "liso-cel"}
    for disease, product in products.items():
        baseline["disease"] = disease
        baseline["car_t"]["product"] = product
        option = evaluate(baseline, engine).option("long_term_follow_up")
        assert option is not None and option.verdict == "recommended", disease
        assert "fda2024_boxed_warning_tcell_malignancy" in [c.key for c in option.citations]


def test_because_words_follow_the_patients_own_values_whatever_was_evaluated_before(
        baseline: dict[str, Any], engine: Engine) -> None:
    """The words quote this patient's months and product even when an earlier patient of the same class
    (late relapse, another month) was worded first: the cache keys on every fact the words quote."""
    baseline["disease_status"] = {"response_to_salvage": "CR"}  # the late-failure transplant rule reads timing
    earlier = copy.deepcopy(baseline)
    earlier["failure"]["months_since_infusion"] = 8
    evaluate(earlier, engine)
    texts = [text for option in evaluate(baseline, engine).options for text in option.because]
    assert "relapse 11 months after axi-cel (late)" in texts
    assert not any("8 months" in text for text in texts)
