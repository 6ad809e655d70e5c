"""Properties of the assessment over valid situations drawn by Hypothesis (tests/strategies.py).

They hold for any rulebook the project ships; each failure names the drawn situation. The last
property cross-checks the compiler: durable-rules fires exactly the rules whose conditions hold.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, note, settings

from postcart import Engine, Rulebook, evaluate, validate_situation
from postcart.rulebook import conditions as cond

from .strategies import situations, target_lost_situations


@given(situations())
def test_evaluation_never_fails(engine: Engine, situation: dict[str, Any]) -> None:
    """Every valid situation is accepted and assessed, with the disclaimer and the rulebook's identity."""
    assessment = evaluate(situation, engine)
    assert assessment.disease == situation["disease"]
    assert assessment.disclaimer
    assert assessment.rulebook.content_hash == engine.rulebook.content_hash


@given(situations())
def test_every_recommended_or_consider_option_cites_a_resolvable_source(
        engine: Engine, rulebook: Rulebook, situation: dict[str, Any]) -> None:
    """A recommended or consider verdict always carries at least one citation from the bibliography."""
    for option in evaluate(situation, engine).options:
        if option.verdict in ("recommended", "consider"):
            assert option.citations, f"{option.option} is {option.verdict} without a citation"
            for citation in option.citations:
                assert citation.key in rulebook.references
                assert citation.label == rulebook.references[citation.key].label


@given(situations())
def test_lost_antigen_never_yields_a_second_infusion(engine: Engine, situation: dict[str, Any]) -> None:
    """When the CAR target is lost on the failure biopsy, a second infusion of the same product is never offered."""
    situation["failure"]["target_antigen"] = "lost"
    option = evaluate(situation, engine).option("second_car_t_infusion")
    assert option is None or option.verdict == "not_advised", option and option.rules


@given(situations())
def test_ecog_4_never_yields_recommended_transplant_or_second_infusion(
        engine: Engine, situation: dict[str, Any]) -> None:
    """A bed-bound patient (ECOG 4) is never recommended allogeneic transplant or a second CAR-T infusion."""
    situation["fitness"]["ecog"] = 4
    assessment = evaluate(situation, engine)
    for name in ("allogeneic_hct", "second_car_t_infusion"):
        option = assessment.option(name)
        assert option is None or option.verdict != "recommended", (name, option and option.rules)


@given(situations())
def test_quality_of_life_goal_yields_quality_of_life_focus_recommended(
        engine: Engine, situation: dict[str, Any]) -> None:
    """A patient whose stated goal is quality of life always gets quality-of-life focus recommended."""
    situation["goals"] = "quality_of_life"
    option = evaluate(situation, engine).option("quality_of_life_focus")
    assert option is not None, "quality_of_life_focus not addressed"
    assert option.verdict == "recommended", option.rules


@given(situations())
def test_long_term_follow_up_is_always_present(engine: Engine, situation: dict[str, Any]) -> None:
    """Every assessment includes long-term follow-up, recommended and cited."""
    option = evaluate(situation, engine).option("long_term_follow_up")
    assert option is not None, "long_term_follow_up not addressed"
    assert option.verdict == "recommended" and option.citations


@settings(max_examples=150)
@given(situations())
def test_engine_fires_exactly_the_rules_whose_conditions_hold(
        engine: Engine, rulebook: Rulebook, situation: dict[str, Any]) -> None:
    """durable-rules fires a rule if and only if the Python evaluator finds its full condition true."""
    result = engine.run(validate_situation(situation))
    note(f"derived: {dict(result.derived)}")
    expected = {rule.id for rule in rulebook.rules
                if rule.full_condition is None or cond.evaluate(rule.full_condition, result.facts)}
    fired = set(result.fired)
    assert fired == expected, {"fired only by the engine": sorted(fired - expected),
                               "missed by the engine": sorted(expected - fired)}
    assert len(result.fired) == len(fired), "a rule was recorded twice"


#: Positive rules whose option is directed at a given antigen (the drug or CAR named in the rule).
DIRECTED_AT: dict[str, frozenset[str]] = {
    "b_all.bispecific.blinatumomab": frozenset({"CD19"}),
    "b_all.bispecific.prior_blinatumomab": frozenset({"CD19"}),
    "b_all.bispecific.cd19_unknown": frozenset({"CD19"}),
    "b_all.second_infusion.lost_persistence": frozenset({"CD19"}),
    "car_t.second_cd19_infusion.relapse_retained": frozenset({"CD19"}),
    "cll.second_infusion.durable_responses": frozenset({"CD19"}),
    "lbcl.other_systemic.cd19_directed_retained": frozenset({"CD19"}),
    "b_all.other_systemic.inotuzumab": frozenset({"CD22"}),
    "b_all.other_systemic.inotuzumab_cd19_lost": frozenset({"CD22"}),
    "b_all.alternate_target.cd22": frozenset({"CD22"}),
    "lbcl.alternate_target.cd22": frozenset({"CD22"}),
    "car_t.alternate_target.cd22_indolent_mantle": frozenset({"CD22"}),
    "b_all.alternate_target.dual": frozenset({"CD19", "CD22"}),
    "mm.bispecific.bcma": frozenset({"BCMA"}),
    "mm.second_infusion.bcma_retreatment": frozenset({"BCMA"}),
    "mm.bispecific.gprc5d": frozenset({"GPRC5D"}),
}
#: Rules that quote CD19 or BCMA data and so must only fire after a CAR against that antigen.
CD19_ONLY = ("b_all.second_infusion.lost_persistence", "b_all.second_infusion.persisting_cells",
             "car_t.second_cd19_infusion.relapse_retained", "cll.second_infusion.durable_responses",
             "b_all.other_systemic.inotuzumab_cd19_lost", "b_all.alternate_target.cd22",
             "lbcl.alternate_target.cd22", "car_t.alternate_target.cd22_indolent_mantle")
BCMA_ONLY = ("mm.bispecific.gprc5d", "mm.bispecific.bcma", "mm.second_infusion.bcma_retreatment",
             "mm.trial.consider_early")
#: The antigens possibly lost when the biopsy shows the CAR target lost (a dual CAR: either).
LOST_WITH_TARGET = {"CD19": {"CD19"}, "BCMA": {"BCMA"}, "CD22": {"CD22"}, "CD19_CD22": {"CD19", "CD22"},
                    "GPRC5D": {"GPRC5D"}, "other": {"other"}}


def test_directed_at_names_real_rules(rulebook: Rulebook) -> None:
    """Every rule the antigen map names exists, so the property below cannot pass on stale ids."""
    assert set(DIRECTED_AT) - {rule.id for rule in rulebook.rules} == set()


@settings(max_examples=200)
@given(target_lost_situations())
def test_no_positive_suggestion_aims_at_a_lost_antigen(engine: Engine, situation: dict[str, Any]) -> None:
    """With the CAR target lost, no recommended or consider reason is for a drug or CAR aimed at that antigen."""
    assessment = evaluate(situation, engine)
    lost = LOST_WITH_TARGET[validate_situation(situation).car_t.target or ""]
    aimed = [(reason.rule, reason.verdict) for option in assessment.options for reason in option.reasons
             if reason.verdict != "not_advised" and DIRECTED_AT.get(reason.rule, frozenset()) & lost]
    note(f"target {situation['car_t']}, lost {lost}")
    assert aimed == []


@settings(max_examples=200)
@given(situations())
def test_cd19_and_bcma_data_fire_only_after_a_car_against_them(engine: Engine, situation: dict[str, Any]) -> None:
    """Rules quoting CD19 (or BCMA) CAR-T data fire only when the failed CAR targeted CD19 (or BCMA)."""
    target = validate_situation(situation).car_t.target
    fired = {reason.rule for option in evaluate(situation, engine).options for reason in option.reasons}
    if target != "CD19":
        assert fired & set(CD19_ONLY) == set()
    if target != "BCMA":
        assert fired & set(BCMA_ONLY) == set()


@settings(max_examples=300)
@given(situations())
def test_an_uncontrolled_infection_leaves_only_supportive_care_recommended(
        engine: Engine, situation: dict[str, Any]) -> None:
    """During an uncontrolled infection nothing but supportive care and follow-up is recommended, trials included."""
    situation = {**situation, "fitness": {**situation["fitness"], "active_infection": True}}
    recommended = {o.option for o in evaluate(situation, engine).options if o.verdict == "recommended"}
    assert recommended <= {"quality_of_life_focus", "long_term_follow_up"}


@given(situations())
def test_no_trial_within_reach_means_no_trial_only_route(engine: Engine, situation: dict[str, Any]) -> None:
    """With no trial within reach, a CAR-T against another target (trial-only) is never offered."""
    situation = {**situation, "trial_access": "not_available"}
    verdicts = {o.option: o.verdict for o in evaluate(situation, engine).options}
    assert verdicts.get("alternate_target_car_t") in (None, "not_advised")
    assert verdicts.get("clinical_trial") in (None, "not_advised")


@given(situations())
def test_quality_of_life_goal_puts_no_bispecific_above_it(engine: Engine, situation: dict[str, Any]) -> None:
    """When the patient's goal is quality of life, a bispecific antibody is never recommended."""
    situation = {**situation, "goals": "quality_of_life"}
    verdicts = {o.option: o.verdict for o in evaluate(situation, engine).options}
    assert verdicts.get("bispecific_antibody") != "recommended"
