"""The clinical content of rules/: targeted behaviours of real rules, each checked by verdict and source."""

from __future__ import annotations

import copy
import re
from typing import Any

from postcart import Engine, Rulebook, evaluate
from postcart.assessment import Assessment, OptionAssessment
from postcart.rulebook import Suggest

from .conftest import BASELINE


def patient(**changes: Any) -> dict[str, Any]:
    """The baseline LBCL patient with nested changes, e.g. ``patient(failure={"target_antigen": "lost"})``."""
    data = copy.deepcopy(BASELINE)
    for key, value in changes.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return data


def option(assessment: Assessment, name: str) -> OptionAssessment:
    found = assessment.option(name)
    assert found is not None, f"{name} not addressed; options: {[o.option for o in assessment.options]}"
    return found


def cited(found: OptionAssessment) -> set[str]:
    return {citation.key for citation in found.citations}


def test_cd19_loss_rules_out_a_second_cd19_infusion(engine: Engine) -> None:
    """CD19 lost on the failure biopsy: a second infusion is contraindicated, citing the antigen-escape data."""
    result = option(evaluate(patient(failure={"target_antigen": "lost"}), engine), "second_car_t_infusion")
    assert result.verdict == "not_advised"
    assert result.rules[0] == "safety.antigen_lost.second_infusion"
    assert result.reasons[0].contraindication is True
    assert "spiegel2021_cd19_cd22_car_natmed" in cited(result)


def test_cd19_loss_points_to_a_cd22_car_t(engine: Engine) -> None:
    """After CD19 loss in LBCL, a CD22-directed CAR-T is offered for consideration, citing the CD22 meta-analysis."""
    result = option(evaluate(patient(failure={"target_antigen": "lost"}), engine), "alternate_target_car_t")
    assert result.verdict == "consider"
    assert "fergusson2023_cd22_meta" in cited(result)


def test_cd20_negative_rules_out_cd20xcd3_bispecific(engine: Engine) -> None:
    """CD20 negative in LBCL: the CD20xCD3 bispecific is contraindicated, citing glofitamab."""
    result = option(evaluate(patient(failure={"cd20": "negative"}), engine), "bispecific_antibody")
    assert result.verdict == "not_advised"
    assert result.rules[0] == "lbcl.bispecific.cd20_negative"
    assert "dickinson2022_glofitamab" in cited(result)


def test_ecog_4_puts_quality_of_life_first_and_rules_out_transplant(engine: Engine) -> None:
    """ECOG 4: quality of life recommended (end-of-life data), transplant and second infusion contraindicated."""
    assessment = evaluate(patient(fitness={"ecog": 4}), engine)
    qol = option(assessment, "quality_of_life_focus")
    assert qol.verdict == "recommended" and "johnson2021_eol_cart_jnccn" in cited(qol)
    allo = option(assessment, "allogeneic_hct")
    assert allo.verdict == "not_advised" and allo.rules[0] == "safety.poor_performance.allo_hct"
    assert option(assessment, "second_car_t_infusion").verdict == "not_advised"


def test_quality_of_life_goal_is_recommended(engine: Engine) -> None:
    """A patient whose goal is quality of life gets quality_of_life_focus recommended, citing the seed article."""
    result = option(evaluate(patient(goals="quality_of_life"), engine), "quality_of_life_focus")
    assert result.verdict == "recommended"
    assert result.rules[0] == "qol.patient_goal"
    assert "seed_sermo_cart_failure" in cited(result)


def test_very_early_failure_moves_trials_up(engine: Engine) -> None:
    """Failure within a month is very early: a poor prognosis, and an available trial is recommended (DESCAR-T)."""
    assessment = evaluate(patient(failure={"months_since_infusion": 0.8}), engine)
    assert assessment.derived["failure_timing"] == "very_early"
    assert assessment.derived["poor_prognosis"] is True
    trial = option(assessment, "clinical_trial")
    assert trial.verdict == "recommended" and "dibasi2022_descart" in cited(trial)


def test_severe_icans_weighs_against_a_second_infusion(engine: Engine) -> None:
    """Grade 3 ICANS with the first CAR-T: a second infusion is not advised, citing ASTCT grading."""
    assessment = evaluate(patient(car_t={"max_icans_grade": 3}), engine)
    assert assessment.derived["severe_prior_toxicity"] is True
    result = option(assessment, "second_car_t_infusion")
    assert result.verdict == "not_advised"
    assert result.rules == ["safety.severe_toxicity.second_infusion"]
    assert "lee2019_astct_crs_icans" in cited(result)


def test_localized_relapse_gets_radiotherapy(engine: Engine) -> None:
    """A localized LBCL relapse gets comprehensive radiotherapy recommended, citing the salvage RT series."""
    result = option(evaluate(patient(failure={"localized": True}), engine), "radiotherapy")
    assert result.verdict == "recommended"
    assert "saifi2023_salvage_rt" in cited(result)


def test_unknown_cd19_asks_for_a_rebiopsy(engine: Engine) -> None:
    """With CD19 status unknown, the assessment asks for a re-biopsy and cites the antigen-escape data."""
    assessment = evaluate(patient(failure={"target_antigen": "unknown"}), engine)
    asked = {item.field: item for item in assessment.missing_information}
    assert "failure.target_antigen" in asked
    assert "Re-biopsy" in asked["failure.target_antigen"].why
    assert "spiegel2021_cd19_cd22_car_natmed" in {c.key for c in asked["failure.target_antigen"].citations}


B_ALL = {"age": 24, "disease": "B_ALL",
         "car_t": {"product": "tisa-cel", "best_response": "CR", "max_crs_grade": 1, "max_icans_grade": 0},
         "failure": {"kind": "relapse", "months_since_infusion": 6, "target_antigen": "retained",
                     "car_t_persistence": "undetectable"},
         "fitness": {"ecog": 1, "hct_ci": 1, "organ_function_adequate": True},
         "donor": "matched_related", "goals": "disease_control", "trial_access": "available"}


def test_b_all_lost_persistence_allows_reinfusion(engine: Engine) -> None:
    """B-ALL relapse with CD19 retained after loss of CAR-T persistence: reinfusion considered (reinfusion series)."""
    result = option(evaluate(B_ALL, engine), "second_car_t_infusion")
    assert result.verdict == "consider"
    assert result.rules == ["b_all.second_infusion.lost_persistence"]
    assert "cart_reinfusion_ball_bloodadv2024" in cited(result)


def test_b_all_cd19_loss_switches_to_inotuzumab(engine: Engine) -> None:
    """CD19-negative B-ALL relapse: blinatumomab contraindicated, inotuzumab recommended (INO-VATE)."""
    data = copy.deepcopy(B_ALL)
    data["failure"]["target_antigen"] = "lost"
    assessment = evaluate(data, engine)
    assert option(assessment, "bispecific_antibody").verdict == "not_advised"
    inotuzumab = option(assessment, "other_systemic_therapy")
    assert inotuzumab.verdict == "recommended"
    assert "kantarjian2016_inovate_inotuzumab" in cited(inotuzumab)


def test_myeloma_after_bcma_bispecific_switches_to_gprc5d(engine: Engine) -> None:
    """Myeloma after BCMA CAR-T and a BCMA bispecific: a GPRC5D bispecific is recommended (talquetamab)."""
    data = {"age": 62, "disease": "MM", "car_t": {"product": "cilta-cel", "best_response": "CR"},
            "failure": {"kind": "relapse", "months_since_infusion": 10, "target_antigen": "retained"},
            "fitness": {"ecog": 1}, "history": {"prior_bispecific": ["BCMAxCD3"]}}
    result = option(evaluate(data, engine), "bispecific_antibody")
    assert result.verdict == "recommended"
    assert result.rules == ["mm.bispecific.gprc5d"]
    assert "chari2022_talquetamab" in cited(result)


# --- the content's own hygiene


def test_every_rule_carries_lifecycle_metadata(rulebook: Rulebook) -> None:
    """Every rule has version, active status, author, approval and review dates."""
    missing = [rule.id for rule in rulebook.rules
               if not (rule.version >= 1 and rule.status == "active" and rule.author and rule.approved
                       and rule.review_by)]
    assert missing == []


def test_every_reference_is_cited(rulebook: Rulebook) -> None:
    """rules/references.yaml holds only entries some rule cites."""
    cited_keys = {key for rule in rulebook.rules if hasattr(rule.then, "citations") for key in rule.then.citations}
    assert set(rulebook.references) - cited_keys == set()


FIGURE = re.compile(r"\d+(\.\d+)?%|\d+(\.\d+)? months")


def test_figures_rest_on_verified_sources(rulebook: Rulebook) -> None:
    """A rationale quoting a figure cites at least one verified, partially verified or seed source."""
    trusted = {"verified", "partially_verified", "seed_document"}
    offenders = [rule.id for rule in rulebook.rules if isinstance(rule.then, Suggest)
                 and FIGURE.search(rule.then.rationale)
                 and not any(rulebook.references[key].confidence in trusted for key in rule.then.citations)]
    assert offenders == []
