"""Properties of the assessment over valid situations drawn by Hypothesis (tests/strategies.py).

They hold for any rulebook the project ships; each failure names the drawn situation. The last
property cross-checks the compiler: durable-rules fires exactly the rules whose conditions hold.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, note, settings

from postcart import Engine, Rulebook, evaluate, validate_situation
from postcart import conditions as cond

from .strategies import situations


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
