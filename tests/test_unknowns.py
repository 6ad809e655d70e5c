"""Unknown inputs (postcart.unknowns): pending verdicts from engine re-runs, not-addressed reasons, questions."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from postcart import Engine, Rulebook, evaluate, validate_situation
from postcart.assessment import _TEXTS as _WORDS
from postcart.situation import flatten
from postcart.unknowns import resolver_for
from postcart.vocabulary import OPTIONS

from .strategies import situations

#: The issue's example: organ function not yet assessed in a fit 62-year-old with a matched related donor.
ORGAN_PENDING: dict[str, Any] = {
    "age": 62, "disease": "LBCL",
    "car_t": {"product": "axi-cel", "best_response": "CR", "max_crs_grade": 1, "max_icans_grade": 0},
    "failure": {"kind": "relapse", "months_since_infusion": 9, "target_antigen": "retained", "cd20": "positive"},
    "fitness": {"ecog": 0, "hct_ci": 1},
    "donor": "matched_related", "goals": "disease_control", "trial_access": "available",
    "disease_status": {"response_to_salvage": "CR"},  # the late-failure transplant rule consolidates a response
}


def _blank(situation: dict[str, Any], path: str, unknown: str | None) -> dict[str, Any] | None:
    """The situation with one known input set to unknown; None when it is unknown already."""
    out = copy.deepcopy(situation)
    *parents, leaf = path.split(".")
    node = out
    for part in parents:
        node = node.setdefault(part, {})
    if node.get(leaf, unknown) == unknown:
        return None
    if unknown is None:
        del node[leaf]
    else:
        node[leaf] = unknown
    return out


def _partition_holds(assessment: Any) -> None:
    given = [item.option for item in assessment.options]
    absent = [item.option for item in assessment.not_addressed]
    assert sorted(given + absent) == sorted(OPTIONS), (given, absent)
    assert all(item.reason.strip() for item in assessment.not_addressed)


def test_pending_organ_function_makes_transplant_a_consider(engine: Engine) -> None:
    """The issue's example: transplant is 'consider, pending organ-function assessment', recommended if adequate."""
    assessment = evaluate(ORGAN_PENDING, engine)
    option = assessment.option("allogeneic_hct")
    assert option is not None and option.verdict == "consider"
    assert option.rationale.startswith(
        "Consider, pending organ-function assessment: recommended if organ function adequate.")
    (pending,) = option.pending
    assert pending.field == "fitness.organ_function_adequate"
    assert "organ function" in pending.question
    assert {(item.value, item.verdict) for item in pending.outcomes} == {
        ("adequate", "recommended"), ("inadequate", "not_advised")}
    assert option.citations and option.rules == ["lbcl.allo_hct.late_failure_candidate"]
    missing = assessment.missing_information[0]
    assert missing.field == "fitness.organ_function_adequate" and missing.options == ["allogeneic_hct"]
    assert missing.question == pending.question
    _partition_holds(assessment)


def test_every_answer_is_what_evaluate_gives_once_known(engine: Engine) -> None:
    """Each pending outcome is the verdict evaluate() gives with that answer filled in (other unknowns none)."""
    for value, verdict in ((True, "recommended"), (False, "not_advised")):
        known = copy.deepcopy(ORGAN_PENDING)
        known["fitness"]["organ_function_adequate"] = value
        option = evaluate(known, engine).option("allogeneic_hct")
        assert option is not None and option.verdict == verdict and option.pending == []


def test_contraindication_on_known_facts_wins_whatever_the_unknowns(engine: Engine) -> None:
    """An active infection rules transplant out now: no pending questions on it, whatever organ function is."""
    situation = copy.deepcopy(ORGAN_PENDING)
    situation["fitness"]["active_infection"] = True
    option = evaluate(situation, engine).option("allogeneic_hct")
    assert option is not None and option.verdict == "not_advised" and option.pending == []
    assert "safety.active_infection.allo_hct" in option.rules


def test_two_unknowns_are_completed_together(engine: Engine) -> None:
    """With HCT-CI and organ function both unknown, each question lists the verdict its answers reach."""
    situation = copy.deepcopy(ORGAN_PENDING)
    del situation["fitness"]["hct_ci"]
    option = evaluate(situation, engine).option("allogeneic_hct")
    assert option is not None and option.verdict == "consider"
    by_field = {item.field: {outcome.value: outcome.verdict for outcome in item.outcomes} for item in option.pending}
    assert by_field["fitness.hct_ci"] == {"0-2": "recommended", "3-4": "consider", "5 or more": "not_advised"}
    assert by_field["fitness.organ_function_adequate"] == {"adequate": "recommended", "inadequate": "not_advised"}
    assert "recommended if" in option.rationale and "HCT-CI 0-2" in option.rationale


def test_not_addressed_carries_the_rulebook_reason_or_the_deciding_facts(engine: Engine) -> None:
    """Radiotherapy in CLL has the rulebook's reason; B-ALL radiotherapy (addressed for CNS relapse) and an
    LBCL option no rule reaches name the facts that kept their rules silent."""
    leukemia = {"age": 40, "disease": "CLL", "car_t": {"product": "liso-cel", "best_response": "CR"},
                "failure": {"kind": "relapse", "months_since_infusion": 9}, "fitness": {"ecog": 1}}
    reasons = {item.option: item.reason for item in evaluate(leukemia, engine).not_addressed}
    assert reasons["radiotherapy"].startswith("CLL is rarely a localized disease")
    leukemia.update(disease="B_ALL", car_t={"product": "brexu-cel", "best_response": "CR"})
    reasons = {item.option: item.reason for item in evaluate(leukemia, engine).not_addressed}
    assert reasons["radiotherapy"] == "no rule applies: no CNS involvement"
    lymphoma = {item.option: item.reason for item in evaluate(ORGAN_PENDING, engine).not_addressed}
    assert lymphoma["radiotherapy"].startswith("no rule applies: ")
    assert "no localized disease" in lymphoma["radiotherapy"]


def test_resolver_group_cache_agrees_with_the_engine(engine: Engine) -> None:
    """What the resolver composes from earlier runs, per rule group, is what durable-rules fires."""
    resolver = resolver_for(engine)
    situation = validate_situation(ORGAN_PENDING)
    resolver.resolve(situation, engine.run(situation))
    disease = situation.disease
    classes = list(resolver.scheme.classes(situation))
    slot = resolver.scheme.fields[disease].index("fitness.organ_function_adequate")
    for value in (True, False):
        classes[slot] = value
        composed = resolver.fired(disease, classes)
        facts = {**flatten(situation), "fitness.organ_function_adequate": value}
        assert composed == frozenset(engine.run_facts(facts, disease).fired)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None,
          phases=(Phase.explicit, Phase.generate, Phase.shrink))
@given(situations(), st.integers(min_value=0, max_value=99))
def test_blanking_one_known_input_never_silences_an_option(engine: Engine, situation: dict[str, Any],
                                                            pick: int) -> None:
    """Setting any one known input to unknown keeps every recommended/consider option recommended or consider
    (possibly pending), every other option present or not addressed with a reason; every option is always in
    exactly one of options and not_addressed."""
    inputs = {item.field: item.unknown for item in engine.rulebook.unknowns}
    before = evaluate(situation, engine)
    _partition_holds(before)
    candidates = [path for path, unknown in inputs.items() if _blank(situation, path, unknown) is not None]
    if not candidates:
        return
    path = candidates[pick % len(candidates)]
    note(f"blanked: {path}")
    after = evaluate(_blank(situation, path, inputs[path]), engine)  # type: ignore[arg-type]
    _partition_holds(after)
    for option in before.options:
        now = after.option(option.option)
        if option.verdict in ("recommended", "consider"):
            assert now is not None and now.verdict in ("recommended", "consider"), (option.option, now)


RELAPSED_LYMPHOID = (("LBCL", "axi-cel"), ("FL", "axi-cel"), ("MCL", "brexu-cel"), ("B_ALL", "tisa-cel"),
                     ("CLL", "liso-cel"))


def test_transplant_is_addressed_across_relapsed_lymphoid_patients(engine: Engine) -> None:
    """Over 1,440 relapsed lymphoid patients (age 24-74, ECOG 0-2, HCT-CI, organ function and donor known or not),
    allogeneic transplant is addressed in at least 95%, and every absence carries a reason."""
    grid = itertools.product(RELAPSED_LYMPHOID, (24, 45, 62, 68, 72, 74), (0, 1, 2), (None, 1, 4, 6),
                             (None, True), ("unknown", "matched_unrelated"))
    total = addressed = 0
    for (disease, product), age, ecog, hct_ci, organ, donor in grid:
        fitness: dict[str, Any] = {"ecog": ecog}
        if hct_ci is not None:
            fitness["hct_ci"] = hct_ci
        if organ is not None:
            fitness["organ_function_adequate"] = organ
        assessment = evaluate({"age": age, "disease": disease, "car_t": {"product": product, "best_response": "CR"},
                               "failure": {"kind": "relapse", "months_since_infusion": 8}, "fitness": fitness,
                               "donor": donor}, engine)
        total += 1
        if assessment.option("allogeneic_hct") is not None:
            addressed += 1
        else:
            (reason,) = [item.reason for item in assessment.not_addressed if item.option == "allogeneic_hct"]
            assert reason.strip()
    assert total == 1440
    assert addressed / total >= 0.95, f"transplant addressed in {addressed} of {total}"


def test_cached_completions_equal_fresh_ones(rulebook: Rulebook) -> None:
    """The caches (the resolver's per rule group and per option's group keys, the words for facts) never
    change an answer: 400 generated
    situations assessed by a warm engine and each by a fresh one give the same options, pending questions,
    not-addressed reasons and missing information."""
    import random

    from postcart.testing import random_situation

    rng = random.Random(11)
    cases = [random_situation(rng, index) for index in range(400)]
    with Engine(rulebook) as warm:
        for case in cases:
            evaluate(case, warm)
        answers = [evaluate(case, warm) for case in cases]
    for case, answer in zip(cases[:20], answers[:20], strict=True):  # a fresh engine per case is slow
        _WORDS.clear()  # the words for facts are cached per rule and values too
        with Engine(rulebook) as fresh:
            again = evaluate(case, fresh)
        for field in ("options", "not_addressed", "missing_information"):
            assert getattr(again, field) == getattr(answer, field), (case, field)
    with Engine(rulebook) as fresh:  # one fresh engine, cases in reverse order: other cache contents
        _WORDS.clear()
        for case, answer in zip(reversed(cases), reversed(answers), strict=True):
            again = evaluate(case, fresh)
            assert (again.options, again.not_addressed, again.missing_information) == (
                answer.options, answer.not_addressed, answer.missing_information), case
