"""Explanations: why, why not (near misses and failed conditions), what would change it, missing information."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from postcart import Engine, InvalidSituation, Rulebook, RuleDefinitionError, evaluate
from postcart.cli import app
from postcart.explain import Change, ChangeablePolicy, RuleCheck, explain, load_policy, to_markdown, to_text

from ._rulebooks import write_rulebook

TEST_RULES = """
facts:
  failure_timing:
    title: failure timing
    description: Early or late failure after the infusion (test rules).
    values: [early, late]
rules:
  - id: t.timing.early
    title: Failure within three months is early
    diseases: [all]
    when: {field: failure.months_since_infusion, le: 3}
    then: {derive: failure_timing, value: early}
  - id: t.timing.late
    title: Failure after three months is late
    diseases: [all]
    when: {field: failure.months_since_infusion, gt: 3}
    then: {derive: failure_timing, value: late}
  - id: t.second_infusion
    title: Second infusion after a late relapse with the target retained
    diseases: [LBCL]
    when:
      all:
        - {field: failure.target_antigen, eq: retained}
        - {field: derived.failure_timing, eq: late}
        - {field: fitness.ecog, le: 2}
    then: {option: second_car_t_infusion, verdict: consider, rationale: "Test rule: a second infusion may be considered.", citations: [CITE]}
  - id: t.second_infusion.young_no_persistence
    title: Second infusion, young, CAR-T gone, target retained
    diseases: [LBCL]
    when:
      all:
        - {field: failure.car_t_persistence, eq: undetectable}
        - {field: failure.target_antigen, eq: retained}
        - {field: age, le: 50}
    then: {option: second_car_t_infusion, verdict: recommended, rationale: "Test rule: a second infusion is recommended.", citations: [CITE]}
  - id: t.second_infusion.mm
    title: A rule of another disease is never a candidate
    diseases: [MM]
    when: {field: failure.target_antigen, eq: retained}
    then: {option: second_car_t_infusion, verdict: recommended, rationale: "Test rule for multiple myeloma only.", citations: [CITE]}
  - id: t.bispecific.fit
    title: Bispecific when fit enough
    diseases: [LBCL]
    when: {field: fitness.ecog, le: 2}
    then: {option: bispecific_antibody, verdict: recommended, rationale: "Test rule: bispecific when fit enough.", citations: [CITE]}
  - id: t.bispecific.unfit
    title: No bispecific when ECOG is poor
    diseases: [LBCL]
    when: {field: fitness.ecog, gt: 2}
    then: {option: bispecific_antibody, verdict: not_advised, contraindication: true, rationale: "Test rule: too unfit for a bispecific.", citations: [CITE]}
  - id: t.trial.no_severe_icans
    title: Trial without severe neurotoxicity
    diseases: [LBCL]
    when:
      all:
        - {field: trial_access, eq: available}
        - not: {field: car_t.max_icans_grade, ge: 3}
    then: {option: clinical_trial, verdict: recommended, rationale: "Test rule: a trial when one is reachable.", citations: [CITE]}
  - id: t.ask.antigen
    title: Ask for the target antigen
    diseases: [LBCL]
    when: {field: failure.target_antigen, eq: unknown}
    then: {ask: failure.target_antigen, why: "Re-biopsy to assess CD19 before a second infusion."}
  - id: t.ask.hct_ci
    title: Ask for the comorbidity index (changes nothing here)
    diseases: [LBCL]
    when: {field: fitness.hct_ci, known: false}
    then: {ask: fitness.hct_ci, why: "Score comorbidities (HCT-CI) before any transplant discussion."}
"""

PATIENT: dict[str, Any] = {
    "patient_id": "explain-01",
    "age": 60,
    "disease": "LBCL",
    "car_t": {"product": "axi-cel", "best_response": "CR", "max_icans_grade": 1},
    "failure": {"kind": "relapse", "months_since_infusion": 9},
    "fitness": {"ecog": 1},
    "trial_access": "available",
}


@pytest.fixture(scope="module")
def test_rules(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_rulebook(tmp_path_factory.mktemp("rules"), TEST_RULES)


@pytest.fixture(scope="module")
def test_engine(test_rules: Path) -> Iterator[Engine]:
    with Engine(Rulebook.load(test_rules)) as engine:
        yield engine


def _with(data: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """A copy of a situation with one dotted field set."""
    changed = copy.deepcopy(data)
    node = changed
    *parents, leaf = field.split(".")
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
    return changed


def patient(**changes: Any) -> dict[str, Any]:
    """The test patient with dotted-path changes, e.g. ``patient(**{"fitness.ecog": 3})``."""
    data = copy.deepcopy(PATIENT)
    for path, value in changes.items():
        node = data
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return data


def test_near_miss_names_the_failed_condition_and_the_flip_value_is_verified(test_engine: Engine) -> None:
    """An unknown target antigen is the one failed comparison; 'retained' on re-biopsy makes it 'consider'."""
    explanation = explain(patient(), "second_car_t_infusion", test_engine)
    item = explanation.option("second_car_t_infusion")
    assert item is not None and item.verdict == "not_addressed"
    # nearest first; the multiple-myeloma rule is not a candidate for an LBCL patient
    assert [(check.rule, check.distance) for check in item.near_misses] == [
        ("t.second_infusion", 1), ("t.second_infusion.young_no_persistence", 3)]
    near = item.near_misses[0]
    assert [failed.field for failed in near.failed] == ["failure.target_antigen"]
    assert near.failed[0].text == "CAR target on the failure biopsy unknown (needs = retained)"
    assert "ECOG performance status 1 (≤ 2)" in near.held
    (change,) = item.changes
    assert (change.field, change.values, change.verdict) == ("failure.target_antigen", ["retained"], "consider")
    assert change.text.startswith("if CAR target on the failure biopsy is retained on re-biopsy, "
                                  "second CAR-T infusion becomes 'consider'")
    # the claim, checked independently through the public API
    flipped = evaluate(patient(**{"failure.target_antigen": "retained"}), test_engine).option("second_car_t_infusion")
    assert flipped is not None and flipped.verdict == "consider"
    assert evaluate(patient(**{"failure.target_antigen": "lost"}), test_engine).option("second_car_t_infusion") is None


def test_failed_derived_fact_shows_the_upstream_rule_and_its_input(test_engine: Engine) -> None:
    """An early relapse fails `failure_timing = late`; the explanation points to the derivation and its months."""
    item = explain(patient(**{"failure.months_since_infusion": 2, "failure.target_antigen": "retained"}),
                   "second_car_t_infusion", test_engine).option("second_car_t_infusion")
    assert item is not None
    near = item.near_misses[0]
    assert near.rule == "t.second_infusion"
    (failed,) = near.failed
    assert failed.field == "derived.failure_timing" and failed.text == "failure timing early (needs = late)"
    (upstream,) = failed.upstream
    assert upstream.rule == "t.timing.late" and upstream.verdict == "late"
    assert upstream.failed[0].text == "months from infusion to failure 2 (needs > 3)"
    assert near.inputs == ["failure.months_since_infusion"]
    assert item.changes == []  # months since infusion is history, not something that could change


def test_near_misses_are_ordered_by_distance(test_engine: Engine) -> None:
    """With ECOG 3, the consider rule (2 changes) still comes before the recommended one (4 changes)."""
    item = explain(patient(**{"fitness.ecog": 3}), "second_car_t_infusion",
                   test_engine).option("second_car_t_infusion")
    assert item is not None
    assert [(check.rule, check.distance) for check in item.near_misses] == [
        ("t.second_infusion", 2), ("t.second_infusion.young_no_persistence", 3)]
    assert {failed.field for failed in item.near_misses[0].failed} == {"failure.target_antigen", "fitness.ecog"}
    assert item.changes == []  # no single input flips it


def test_known_result_is_not_offered_as_changeable(test_engine: Engine) -> None:
    """A target antigen already reported lost is not re-tested: no 'what would change it' for it."""
    item = explain(patient(**{"failure.target_antigen": "lost"}), "second_car_t_infusion",
                   test_engine).option("second_car_t_infusion")
    assert item is not None and item.near_misses[0].distance == 1
    assert item.changes == []


def test_contraindication_and_ecog_after_recovery(test_engine: Engine) -> None:
    """ECOG 3 contraindicates the bispecific; a lower ECOG after recovery flips it, verified by re-running."""
    item = explain(patient(**{"fitness.ecog": 3}), "bispecific_antibody", test_engine).option("bispecific_antibody")
    assert item is not None and item.verdict == "not_advised"
    assert item.because == ["ECOG 3"]  # the patient's value; the threshold is in the near misses
    assert [check.rule for check in item.contraindications] == ["t.bispecific.unfit"]
    assert item.near_misses[0].failed[0].text == "ECOG performance status 3 (needs ≤ 2)"
    (change,) = item.changes
    assert change.field == "fitness.ecog" and change.values == [2, 1, 0]  # never a worse ECOG
    assert change.verdict == "recommended" and "after recovery" in change.text
    recovered = evaluate(patient(**{"fitness.ecog": 2}), test_engine).option("bispecific_antibody")
    assert recovered is not None and recovered.verdict == "recommended"


def test_why_words_a_negated_comparison_as_the_patients_value(test_engine: Engine) -> None:
    """A comparison under `not` is given as the patient's value, in clinical words, without the threshold."""
    item = explain(patient(), "clinical_trial", test_engine).option("clinical_trial")
    assert item is not None and item.verdict == "recommended"
    assert item.because == ["a suitable clinical trial is open", "worst ICANS grade 1"]


def test_missing_information_is_ranked_by_verdicts_it_changes(test_engine: Engine) -> None:
    """The target antigen changes one verdict, the comparison index none: antigen first, with its count."""
    explanation = explain(patient(), None, test_engine)
    ranked = [(item.field, item.verdicts_changed, item.options) for item in explanation.missing_information]
    assert ranked == [("failure.target_antigen", 1, ["second_car_t_infusion"]), ("fitness.hct_ci", 0, [])]


def test_without_option_every_addressable_option_is_explained(test_engine: Engine) -> None:
    """Every option a rule of the disease speaks to is explained, the audit is attached."""
    explanation = explain(patient(), None, test_engine)
    assert [item.option for item in explanation.options] == [
        "second_car_t_infusion", "bispecific_antibody", "clinical_trial"]
    assert explanation.audit.rulebook_version == "test-1"
    assert "t.ask.antigen" in explanation.audit.rules_fired


def test_unknown_option_is_refused(test_engine: Engine) -> None:
    """An option name outside the contract is an InvalidSituation naming the valid options."""
    with pytest.raises(InvalidSituation, match=r"unknown option 'allo'.*allogeneic_hct"):
        explain(patient(), "allo", test_engine)


def test_policy_is_data_and_checked(tmp_path: Path) -> None:
    """The bundled policy opens re-biopsy results while unknown; a policy naming no real field is refused."""
    policy = load_policy()
    entry = policy.entry("failure.target_antigen")
    assert entry is not None and entry.open_at("unknown") and not entry.open_at("lost")
    assert policy.entry("fitness.ecog").direction == "lower"  # type: ignore[union-attr]
    (tmp_path / "policy").mkdir()
    (tmp_path / "policy" / "changeable.yaml").write_text(
        "changeable:\n  - {field: fitness.ecgo, resolved_by: after recovery}\n", encoding="utf-8")
    with pytest.raises(RuleDefinitionError, match=r"unknown situation field 'fitness\.ecgo'"):
        load_policy(tmp_path)


def test_empty_policy_offers_no_change(test_engine: Engine) -> None:
    """With nothing changeable, the near miss is still explained but no change is claimed."""
    item = explain(patient(), "second_car_t_infusion", test_engine,
                   policy=ChangeablePolicy()).option("second_car_t_infusion")
    assert item is not None and item.near_misses and item.changes == []


# --- real rules (the bundled rulebook). Written against what the knowledge base states (transplant
# needs ECOG <= 1 and a donor; CD20 loss contraindicates a CD20xCD3 bispecific), not against rule ids,
# so they hold whether the rule reads the input directly or through derived facts.


def _texts(check: RuleCheck) -> list[str]:
    """Every failed comparison of a rule check, through its upstream derivations."""
    out: list[str] = []
    for failed in check.failed:
        out.append(failed.text)
        for upstream in failed.upstream:
            out += _texts(upstream)
    return out


def _verified(engine: Engine, data: dict[str, Any], option: str, change: Change) -> None:
    for value in change.values:
        after = evaluate(_with(data, change.field, value), engine).option(option)
        assert (after.verdict if after else "not_addressed") == change.verdict, change.text


def test_real_rules_donor_search_makes_allogeneic_transplant_possible(engine: Engine,
                                                                      baseline: dict[str, Any]) -> None:
    """Real rules: with the donor unknown, transplant is a pending consider, the recommending rule is one
    comparison away and a donor flips it (salvage has given a complete response, which recommending needs)."""
    baseline["donor"] = "unknown"
    baseline["disease_status"] = {"response_to_salvage": "CR"}
    item = explain(baseline, "allogeneic_hct", engine).option("allogeneic_hct")
    assert item is not None and item.verdict == "consider"
    near = [check for check in item.near_misses if check.inputs == ["donor"]]
    assert near and near[0].distance == 1
    assert any(text.startswith("best available donor unknown (needs one of") for text in _texts(near[0]))
    changes = [change for change in item.changes if change.field == "donor"]
    assert any(change.verdict in ("recommended", "consider") and "haploidentical" in change.values
               and "after a donor search" in change.text for change in changes)
    for change in changes:
        _verified(engine, baseline, "allogeneic_hct", change)


def test_real_rules_ecog_near_miss_for_transplant(engine: Engine, baseline: dict[str, Any]) -> None:
    """Real rules: ECOG 2 fails 'ECOG ≤ 1' for transplant; ECOG 1 after recovery is verified to flip it."""
    baseline["fitness"]["ecog"] = 2
    baseline["disease_status"] = {"response_to_salvage": "CR"}
    item = explain(baseline, "allogeneic_hct", engine).option("allogeneic_hct")
    assert item is not None
    near = [check for check in item.near_misses if check.inputs == ["fitness.ecog"]]
    assert near and near[0].distance == 1
    assert "ECOG performance status 2 (needs ≤ 1)" in _texts(near[0])
    (change,) = [change for change in item.changes if change.field == "fitness.ecog"]
    assert change.values == [1, 0] and change.verdict in ("recommended", "consider")
    assert "after recovery" in change.text
    _verified(engine, baseline, "allogeneic_hct", change)


def test_real_rules_cd20_unknown_ranks_as_changing_the_bispecific(engine: Engine, baseline: dict[str, Any]) -> None:
    """Real rules: an unknown CD20 is missing information whose 'negative' makes the bispecific not advised."""
    baseline["failure"]["cd20"] = "unknown"
    explanation = explain(baseline, "bispecific_antibody", engine)
    cd20 = next(item for item in explanation.missing_information if item.field == "failure.cd20")
    assert cd20.verdicts_changed >= 1 and "bispecific_antibody" in cd20.options
    counts = [item.verdicts_changed for item in explanation.missing_information]
    assert counts == sorted(counts, reverse=True)
    change = next(change for change in explanation.options[0].changes if change.field == "failure.cd20")
    assert change.values == ["negative"] and change.verdict == "not_advised"
    _verified(engine, baseline, "bispecific_antibody", change)


# --- renderings and the CLI


def test_text_and_markdown_renderings_carry_near_miss_change_and_disclaimer(test_engine: Engine) -> None:
    """Both renderings show the failed condition, the verified change and the disclaimer."""
    explanation = explain(patient(), "second_car_t_infusion", test_engine)
    for rendered in (to_text(explanation), to_markdown(explanation)):
        assert "CAR target on the failure biopsy unknown (needs = retained)" in rendered
        assert "second CAR-T infusion becomes 'consider'" in rendered
        assert "Decision support only" in rendered


def test_cli_explain_option_from_file_and_stdin(tmp_path: Path, test_rules: Path) -> None:
    """`postcart explain FILE --option` and `-` (stdin) print the why-not and the change; JSON parses."""
    file = tmp_path / "patient.json"
    file.write_text(json.dumps(patient()), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["explain", str(file), "--option", "second_car_t_infusion", "--rules", str(test_rules)])
    assert result.exit_code == 0, result.output
    assert "t.second_infusion" in result.output and "on re-biopsy" in result.output
    result = runner.invoke(app, ["explain", "-", "--option", "second_car_t_infusion", "--rules", str(test_rules),
                                 "--format", "json"], input=json.dumps(patient()))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["options"][0]["changes"][0]["verdict"] == "consider"
    assert data["audit"]["evaluated_at"]


def test_cli_explain_refuses_bad_option_and_bad_input(tmp_path: Path, test_rules: Path) -> None:
    """A bad option name or an invalid situation exits 2 with the reason."""
    runner = CliRunner()
    file = tmp_path / "patient.json"
    file.write_text(json.dumps(patient(**{"fitness.ecog": 7})), encoding="utf-8")
    result = runner.invoke(app, ["explain", str(file), "--rules", str(test_rules)])
    assert result.exit_code == 2 and "fitness.ecog" in result.output
    result = runner.invoke(app, ["explain", str(file), "--option", "transplant"])
    assert result.exit_code == 2 and "transplant" in result.output


# --- property: every "would change" claim holds when checked independently


@st.composite
def lbcl_situations(draw: st.DrawFn) -> dict[str, Any]:
    """LBCL situations over the inputs the rules and the policy care about (others at their defaults)."""
    response = draw(st.sampled_from(["CR", "PR", "SD", "PD"]))
    data: dict[str, Any] = {
        "age": draw(st.integers(18, 85)),
        "disease": "LBCL",
        "car_t": {"product": draw(st.sampled_from(["axi-cel", "tisa-cel", "liso-cel"])), "best_response": response},
        "failure": {
            "kind": "relapse" if response in ("CR", "PR") else "primary_refractory",
            "months_since_infusion": draw(st.sampled_from([0.5, 2, 3, 3.5, 9, 24])),
            "target_antigen": draw(st.sampled_from(["retained", "lost", "unknown"])),
            "cd20": draw(st.sampled_from(["positive", "negative", "unknown"])),
        },
        "fitness": {"ecog": draw(st.integers(0, 4)), "active_infection": draw(st.booleans())},
        "donor": draw(st.sampled_from(["matched_related", "haploidentical", "none", "unknown"])),
        "trial_access": draw(st.sampled_from(["available", "not_available", "unknown"])),
    }
    if draw(st.booleans()):
        data["car_t"]["max_icans_grade"] = draw(st.integers(0, 4))
    return data


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=lbcl_situations())
def test_every_claimed_change_is_reproduced_by_evaluate(data: dict[str, Any], engine: Engine,
                                                        test_engine: Engine) -> None:
    """For real and test rules, each claimed value gives the claimed verdict; near misses are unfired, nearest first."""
    for current_engine in (engine, test_engine):
        explanation = explain(data, None, current_engine)
        fired = set(explanation.audit.rules_fired)
        for item in explanation.options:
            distances = [check.distance for check in item.near_misses]
            assert distances == sorted(distances)
            assert all(not check.fired and check.rule not in fired and check.failed for check in item.near_misses)
            assert all(check.rule in fired for check in item.contraindications)
            for change in item.changes:
                assert change.verdict != item.verdict
                for value in change.values:
                    after = evaluate(_with(data, change.field, value), current_engine).option(item.option)
                    assert (after.verdict if after else "not_addressed") == change.verdict, change.text


def test_rulebook_defect_on_a_hypothetical_is_reported_not_raised(tmp_path: Path) -> None:
    """Two derivations that disagree only for a changed value leave a note; the explanation still completes."""
    rules = write_rulebook(tmp_path / "rules", TEST_RULES + """
  - id: t.timing.clash
    title: A faulty derivation that clashes at ECOG 0
    diseases: [all]
    when: {field: fitness.ecog, eq: 0}
    then: {derive: failure_timing, value: early}
""")
    with Engine(Rulebook.load(rules)) as engine:
        explanation = explain(patient(**{"fitness.ecog": 3}), "bispecific_antibody", engine)
    item = explanation.option("bispecific_antibody")
    assert item is not None and item.changes[0].values == [2, 1]  # ECOG 0 could not be evaluated
    assert len(explanation.notes) == 1 and explanation.notes[0].startswith("with fitness.ecog = 0 the rules could not be evaluated")
    assert "t.timing.clash" in explanation.notes[0]
