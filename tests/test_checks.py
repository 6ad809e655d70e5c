"""Tests of the rulebook lint (`postcart check`): reachability, contradictions, derivations, coverage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from postcart import Engine, Rulebook
from postcart.cli import app
from postcart.errors import Problem
from postcart.governance.check import Findings, lint, situation_from_facts
from postcart.situation import validate_situation

from .rulebooks import DERIVE_RULES, covering_rules, suggest, write_rulebook


def _lint(directory: Path, rules: list[dict[str, Any]], **kwargs: Any) -> Findings:
    return lint(Rulebook.load(write_rulebook(directory, rules, **kwargs), include_drafts=True))


def _texts(problems: list[Problem]) -> list[str]:
    return [str(problem) for problem in problems]


def _only(problems: list[Problem], needle: str) -> list[str]:
    return [text for text in _texts(problems) if needle in text]


def test_clean_rulebook_has_no_problems(tmp_path: Path) -> None:
    """A rulebook whose rules can all fire, never clash and cover every cell passes the check."""
    rules = [*DERIVE_RULES, *covering_rules(),
             suggest("trial.very_early", "clinical_trial", "recommended",
                     when={"field": "derived.failure_timing", "eq": "very_early"})]
    findings = _lint(tmp_path, rules)
    assert findings.problems == []


def test_bundled_rulebook_passes_check(rulebook: Rulebook, engine: Engine) -> None:
    """The bundled rulebook is reachable, free of contradictions and covers every cell (the issue's bar)."""
    findings = lint(rulebook, engine)
    assert _texts(findings.problems) == []


def test_self_contradictory_condition_is_unreachable(tmp_path: Path) -> None:
    """A rule needing ECOG <= 1 and >= 3 at once is reported with its file, line and id."""
    rules = [*covering_rules(),
             suggest("allo.impossible", "allogeneic_hct", when={"all": [
                 {"field": "fitness.ecog", "le": 1}, {"field": "fitness.ecog", "ge": 3}]})]
    findings = _lint(tmp_path, rules)
    found = _only(findings.problems, "allo.impossible")
    assert len(found) == 1
    assert "unreachable" in found[0] and found[0].startswith("rules.yaml:")


def test_contract_constraints_make_rules_unreachable(tmp_path: Path) -> None:
    """Product vs disease and failure kind vs response are respected: such rules can never fire."""
    rules = [*covering_rules(),
             suggest("lbcl.ide_cel", "second_car_t_infusion", diseases=["LBCL"],
                     when={"field": "car_t.product", "eq": "ide-cel"}),
             suggest("refractory.after_cr", "clinical_trial", when={"all": [
                 {"field": "failure.kind", "eq": "primary_refractory"}, {"field": "car_t.best_response", "eq": "CR"}]}),
             suggest("mm.cd19_target", "bispecific_antibody", diseases=["MM"], when={"all": [
                 {"field": "car_t.product", "eq": "cilta-cel"}, {"field": "car_t.target", "eq": "CD19"}]}),
             suggest("relapse.after_pd", "radiotherapy", when={"all": [
                 {"field": "failure.kind", "eq": "relapse"}, {"field": "car_t.best_response", "eq": "PD"}]})]
    findings = _lint(tmp_path, rules)
    for rule_id in ("lbcl.ide_cel", "refractory.after_cr", "mm.cd19_target", "relapse.after_pd"):
        assert any("unreachable" in text for text in _only(findings.problems, rule_id)), rule_id


def test_valid_joint_values_are_reachable(tmp_path: Path) -> None:
    """An investigational CD22 CAR-T in B-ALL and a relapse after PR are valid, so their rules are reachable."""
    rules = [*covering_rules(),
             suggest("ball.cd22", "alternate_target_car_t", diseases=["B_ALL"], when={"all": [
                 {"field": "car_t.target", "eq": "CD22"}, {"field": "failure.kind", "eq": "relapse"},
                 {"field": "car_t.best_response", "eq": "PR"}]})]
    findings = _lint(tmp_path, rules)
    assert findings.problems == []


def test_unreachable_through_a_derived_fact(tmp_path: Path) -> None:
    """A rule reading a derived value its own inputs exclude is unreachable; the consistent one is not."""
    rules = [*DERIVE_RULES, *covering_rules(),
             suggest("trial.never", "clinical_trial", when={"all": [
                 {"field": "derived.failure_timing", "eq": "very_early"},
                 {"field": "failure.months_since_infusion", "ge": 2}]}),
             suggest("trial.early_and_recent", "clinical_trial", when={"all": [
                 {"field": "derived.failure_timing", "eq": "early"},
                 {"field": "failure.months_since_infusion", "lt": 2}]})]
    findings = _lint(tmp_path, rules)
    assert any("unreachable" in text for text in _only(findings.problems, "trial.never"))
    assert _only(findings.problems, "trial.early_and_recent") == []


def test_derived_fact_without_deriving_rule_is_unknown(tmp_path: Path) -> None:
    """A fact no rule derives is unknown (its default is never set), so a rule needing a value is unreachable."""
    facts = {"flag": {"description": "A fact nobody derives.", "values": ["a", "b"]}}
    rules = [*covering_rules(),
             suggest("reads.flag", "radiotherapy", when={"field": "derived.flag", "eq": "a"}),
             suggest("reads.flag_unknown", "radiotherapy", when={"field": "derived.flag", "known": False})]
    findings = _lint(tmp_path, rules, facts=facts)
    assert any("unreachable" in text for text in _only(findings.problems, "rule reads.flag:"))
    assert _only(findings.problems, "reads.flag_unknown") == []


def test_default_value_of_derived_fact_is_reachable(tmp_path: Path) -> None:
    """The default of a fact holds when no rule derives it, so a rule testing the default can fire."""
    rules = [*DERIVE_RULES, *covering_rules(),
             suggest("second.no_tox", "second_car_t_infusion", "recommended",
                     when={"field": "derived.severe_prior_toxicity", "eq": False})]
    findings = _lint(tmp_path, rules)
    assert findings.problems == []


def test_rule_that_cannot_fire_for_one_of_its_diseases_is_warned(tmp_path: Path) -> None:
    """A rule listing MM but reading a CD19 product target fires for LBCL only: a warning names MM."""
    rules = [*covering_rules(),
             suggest("cd19.only", "bispecific_antibody", diseases=["LBCL", "MM"],
                     when={"field": "car_t.product", "eq": "axi-cel"})]
    findings = _lint(tmp_path, rules)
    assert findings.problems == []
    assert any("cd19.only" in text and "can never fire for MM" in text for text in _texts(findings.warnings))


def test_contradiction_is_reported_with_witness(tmp_path: Path) -> None:
    """A plain not_advised and a recommended that fire together (ECOG 2) are reported with both ids."""
    rules = [*covering_rules(skip=("allogeneic_hct",)),
             suggest("allo.unfit", "allogeneic_hct", "not_advised", when={"field": "fitness.ecog", "ge": 2}),
             suggest("allo.fit", "allogeneic_hct", "recommended", when={"field": "fitness.ecog", "le": 2})]
    findings = _lint(tmp_path, rules)
    found = _only(findings.problems, "contradiction")
    assert len(found) == 1
    assert "allo.unfit" in found[0] and "allo.fit " in found[0] and "fitness.ecog=2" in found[0]


@pytest.mark.parametrize("resolution", ["exclusive", "contraindication", "overrides", "reverse_overrides"])
def test_contradiction_resolved_by_stated_precedence(tmp_path: Path, resolution: str) -> None:
    """Exclusive conditions, a contraindication, or `overrides` either way leave no contradiction."""
    unfit_when = {"field": "fitness.ecog", "ge": 3 if resolution == "exclusive" else 2}
    unfit_then = {"contraindication": True} if resolution == "contraindication" else {}
    if resolution == "overrides":
        unfit_then = {"overrides": ["allo.fit"]}
    fit_then = {"overrides": ["allo.unfit"]} if resolution == "reverse_overrides" else {}
    rules = [*covering_rules(skip=("allogeneic_hct",)),
             suggest("allo.unfit", "allogeneic_hct", "not_advised", when=unfit_when, **unfit_then),
             suggest("allo.fit", "allogeneic_hct", "recommended", when={"field": "fitness.ecog", "le": 2}, **fit_then)]
    findings = _lint(tmp_path, rules)
    assert _only(findings.problems, "contradiction") == []


def test_contradiction_masked_by_contraindication_is_not_reported(tmp_path: Path) -> None:
    """Where a contraindication on the option always fires with both rules, the clash never decides anything."""
    rules = [*covering_rules(skip=("allogeneic_hct",)),
             suggest("allo.infection", "allogeneic_hct", "not_advised", contraindication=True,
                     when={"field": "fitness.active_infection", "eq": True}),
             suggest("allo.unfit", "allogeneic_hct", "not_advised", when={"all": [
                 {"field": "fitness.ecog", "ge": 2}, {"field": "fitness.active_infection", "eq": True}]}),
             suggest("allo.fit", "allogeneic_hct", "consider", when={"field": "fitness.ecog", "le": 2})]
    findings = _lint(tmp_path, rules)
    assert _only(findings.problems, "contradiction") == []


def test_recommended_and_consider_together_are_not_a_contradiction(tmp_path: Path) -> None:
    """Two positive verdicts of different strength grade each other; only not_advised vs positive clashes."""
    rules = [*covering_rules(skip=("clinical_trial",)),
             suggest("trial.always", "clinical_trial", "consider"),
             suggest("trial.access", "clinical_trial", "recommended", when={"field": "trial_access", "eq": "available"})]
    findings = _lint(tmp_path, rules)
    assert findings.problems == []


def test_conflicting_derivations_are_reported(tmp_path: Path) -> None:
    """Two rules deriving different timing for 1 month are reported: the engine would refuse that patient."""
    clash = {"id": "timing.clash", "title": "Clashing timing", "diseases": ["all"],
             "when": {"field": "failure.months_since_infusion", "lt": 2},
             "then": {"derive": "failure_timing", "value": "late"}}
    findings = _lint(tmp_path, [*DERIVE_RULES, clash, *covering_rules()])
    found = _only(findings.problems, "timing.clash")
    assert any("derives" in text and "same patient" in text for text in found)


def test_coverage_gap_is_reported(tmp_path: Path) -> None:
    """An option no rule addresses is one gap per disease, each naming the cell."""
    findings = _lint(tmp_path, covering_rules(skip=("radiotherapy",)))
    gaps = _only(findings.problems, "x radiotherapy")
    assert len(gaps) == 6
    assert any("coverage MM x radiotherapy" in text for text in gaps)


def test_unaddressed_cells_close_the_gap(tmp_path: Path) -> None:
    """Cells listed under `unaddressed` with a reason are not gaps."""
    unaddressed = [{"disease": disease, "option": "radiotherapy", "reason": "No evidence speaks to it yet."}
                   for disease in ("LBCL", "FL", "MCL", "B_ALL", "MM", "CLL")]
    findings = _lint(tmp_path, covering_rules(skip=("radiotherapy",)), unaddressed=unaddressed)
    assert findings.problems == []


def test_unaddressed_cell_that_is_covered_is_reported(tmp_path: Path) -> None:
    """Listing a covered cell as unaddressed is a problem naming the rule that covers it."""
    unaddressed = [{"disease": "MM", "option": "clinical_trial", "reason": "Said to be unaddressed."}]
    findings = _lint(tmp_path, covering_rules(), unaddressed=unaddressed)
    found = _only(findings.problems, "MM x clinical_trial")
    assert len(found) == 1 and "cover.clinical_trial" in found[0]


def test_unreachable_rule_does_not_cover(tmp_path: Path) -> None:
    """A cell whose only rule can never fire for the disease (approved CD19 products, MM) is still a gap."""
    rules = [*covering_rules(skip=("bispecific_antibody",)),
             suggest("bsab.cd19", "bispecific_antibody", when={"field": "car_t.product", "in": [
                 "axi-cel", "tisa-cel", "liso-cel", "brexu-cel", "obe-cel"]})]
    findings = _lint(tmp_path, rules)
    gaps = _only(findings.problems, "x bispecific_antibody")
    assert gaps == [next(text for text in gaps if "coverage MM x bispecific_antibody" in text)]


def test_draft_rule_does_not_cover(tmp_path: Path) -> None:
    """A cell covered only by a draft rule is a gap that names the draft."""
    draft = suggest("draft.qol", "quality_of_life_focus")
    draft["status"] = "draft"
    findings = _lint(tmp_path, [*covering_rules(skip=("quality_of_life_focus",)), draft])
    gaps = _only(findings.problems, "x quality_of_life_focus")
    assert len(gaps) == 6 and all("draft.qol" in text for text in gaps)


def test_witness_situations_are_valid() -> None:
    """The neutral fill turns partial facts into a situation the input contract accepts."""
    situation = validate_situation(situation_from_facts({"disease": "MM", "history.prior_bispecific": ("BCMAxCD3",),
                                                         "fitness.hct_ci": None}))
    assert situation.car_t.target == "BCMA" and situation.history.prior_bispecific == ["BCMAxCD3"]


def test_cli_check_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    """`postcart check` prints every finding at once and exits 2 when there are problems."""
    rules = [*covering_rules(skip=("radiotherapy",)),
             suggest("allo.impossible", "allogeneic_hct", when={"all": [
                 {"field": "age", "lt": 18}, {"field": "age", "gt": 80}]})]
    result = CliRunner().invoke(app, ["check", "--rules", str(write_rulebook(tmp_path, rules))])
    assert result.exit_code == 2
    assert "allo.impossible" in result.output and "coverage CLL x radiotherapy" in result.output
    assert "7 problems" in result.output


def test_cli_check_passes_clean_rulebook(tmp_path: Path) -> None:
    """`postcart check` exits 0 and says OK for a clean rulebook."""
    result = CliRunner().invoke(app, ["check", "--rules", str(write_rulebook(tmp_path, covering_rules()))])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


_TEN = [("failure.cd20", "eq", "positive"), ("donor", "eq", "none"), ("goals", "eq", "quality_of_life"),
        ("trial_access", "eq", "available"), ("failure.target_antigen", "eq", "lost"),
        ("failure.car_t_persistence", "eq", "detectable"), ("fitness.hct_ci", "ge", 3), ("age", "gt", 70),
        ("history.prior_lines", "ge", 3), ("car_t.max_crs_grade", "ge", 3)]


def test_contradiction_behind_many_alternatives_is_found(tmp_path: Path) -> None:
    """Ten alternatives before an impossible ECOG range do not hide the contradiction (nor time out)."""
    alternatives = {"any": [{"field": field, op: value} for field, op, value in _TEN]}
    rules = [*covering_rules(), suggest("wide.impossible", "radiotherapy", when={"all": [
        alternatives, {"field": "fitness.ecog", "le": 1}, {"field": "fitness.ecog", "ge": 3}]})]
    findings = _lint(tmp_path, rules)
    assert any("unreachable" in text for text in _only(findings.problems, "wide.impossible"))
    assert [text for text in _texts(findings.warnings) if "lifecycle metadata" not in text] == []


def test_rule_durable_refuses_is_named_and_still_analysed(tmp_path: Path) -> None:
    """A rule too wide for durable-rules' tables is reported by id instead of crashing the check."""
    negated = {"not": {"all": [{"field": field, op: value} for field, op, value in _TEN]}}
    impossible = {"any": [{"all": [{"field": "age", "lt": 10}, {"field": "age", "gt": 90}]},
                          {"all": [{"field": "fitness.ecog", "le": 1}, {"field": "fitness.ecog", "ge": 3}]}]}
    rules = [*covering_rules(), suggest("too.wide", "radiotherapy", when={"all": [negated, impossible]})]
    findings = _lint(tmp_path, rules)
    found = _only(findings.problems, "too.wide")
    # the compiler names the limit before durable-rules is asked (postcart.compiler.LIMITS)
    assert any("durable-rules' fixed limit on any/all groups" in text and "got 16" in text for text in found)
    assert any("unreachable" in text for text in found)


class _SilentEngine:
    """An engine stand-in that fires nothing: what a compiler bug would look like."""

    def __init__(self, real: Engine) -> None:
        self.rulebook = real.rulebook
        self.real = real

    def run(self, situation: Any) -> Any:
        result = self.real.run(situation)
        return type(result)((), result.derived, result.facts)


def test_engine_disagreeing_with_a_condition_is_reported(tmp_path: Path) -> None:
    """A witness the engine does not fire the rule for is reported as compiler/condition disagreement."""
    rulebook = Rulebook.load(write_rulebook(tmp_path, covering_rules()))
    with Engine(rulebook) as real:
        findings = lint(rulebook, _SilentEngine(real))  # type: ignore[arg-type]
    found = _only(findings.problems, "cover.radiotherapy")
    assert found and all("compiled rule and its condition disagree" in text for text in found)
