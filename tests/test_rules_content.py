"""The clinical content of rules/: targeted behaviours of real rules, each checked by verdict and source."""

from __future__ import annotations

import copy
import re
from typing import Any

from postcart import Engine, Rulebook, evaluate
from postcart.assessment import Assessment, OptionAssessment
from postcart.rulebook import Suggest
from postcart.rulebook import conditions as cond

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
    """CD20 negative in LBCL: the CD20xCD3 bispecific is contraindicated, citing the post-CAR-T glofitamab trial."""
    result = option(evaluate(patient(failure={"cd20": "negative"}), engine), "bispecific_antibody")
    assert result.verdict == "not_advised"
    assert result.rules[0] == "lbcl.bispecific.cd20_negative"
    assert "cartron2025_bicar_glofitamab_post_cart" in cited(result)


def test_ecog_4_puts_quality_of_life_first_and_rules_out_transplant(engine: Engine) -> None:
    """ECOG 4: quality of life recommended (end-of-life data), transplant and second infusion contraindicated."""
    assessment = evaluate(patient(fitness={"ecog": 4}), engine)
    qol = option(assessment, "quality_of_life_focus")
    assert qol.verdict == "recommended" and "johnson2021_eol_cart_jnccn" in cited(qol)
    allo = option(assessment, "allogeneic_hct")
    assert allo.verdict == "not_advised" and allo.rules[0] == "safety.poor_performance.allo_hct"
    assert option(assessment, "second_car_t_infusion").verdict == "not_advised"


def test_quality_of_life_goal_is_recommended(engine: Engine) -> None:
    """A patient whose goal is quality of life gets quality_of_life_focus recommended, citing end-of-life data (not the seed article's poll)."""
    result = option(evaluate(patient(goals="quality_of_life"), engine), "quality_of_life_focus")
    assert result.verdict == "recommended"
    assert result.rules[0] == "qol.patient_goal"
    assert "johnson2021_eol_cart_jnccn" in cited(result) and "seed_sermo_cart_failure" not in cited(result)


def test_very_early_failure_moves_trials_up(engine: Engine) -> None:
    """Failure within a month is very early: a poor prognosis, and an available trial is recommended (ZUMA-7 third line)."""
    assessment = evaluate(patient(failure={"months_since_infusion": 0.8}), engine)
    assert assessment.derived["failure_timing"] == "very_early"
    assert assessment.derived["poor_prognosis"] is True
    trial = option(assessment, "clinical_trial")
    assert trial.verdict == "recommended" and "ghobadi2024_zuma7_third_line" in cited(trial)


def test_severe_icans_weighs_against_a_second_infusion(engine: Engine) -> None:
    """Grade 3 ICANS with the first CAR-T: a second infusion is not advised, citing the second-infusion series."""
    assessment = evaluate(patient(car_t={"max_icans_grade": 3}), engine)
    assert assessment.derived["severe_prior_toxicity"] is True
    result = option(assessment, "second_car_t_infusion")
    assert result.verdict == "not_advised"
    assert result.rules == ["safety.severe_toxicity.second_infusion"]
    assert "gauthier2021_second_cd19_cart" in cited(result)


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
    """B-ALL relapse with CD19 retained after loss of CAR-T persistence: reinfusion considered (second CD19 infusion series)."""
    result = option(evaluate(B_ALL, engine), "second_car_t_infusion")
    assert result.verdict == "consider"
    assert result.rules == ["b_all.second_infusion.lost_persistence"]
    assert "gauthier2021_second_cd19_cart" in cited(result)


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
    assert "chari2025_monumental1_lancethaematol" in cited(result)


# --- the content's own hygiene


def test_every_rule_carries_lifecycle_metadata(rulebook: Rulebook) -> None:
    """Every rule has version, active status, author, approval and review dates."""
    missing = [rule.id for rule in rulebook.rules
               if not (rule.version >= 1 and rule.status == "active" and rule.author and rule.approved
                       and rule.review_by)]
    assert missing == []


def test_every_verified_reference_is_cited(rulebook: Rulebook) -> None:
    """Every verified entry of rules/references.yaml is cited by some rule (unverified ones stay for the record)."""
    cited_keys = {key for rule in rulebook.rules if hasattr(rule.then, "citations") for key in rule.then.citations}
    verified = {key for key, ref in rulebook.references.items() if ref.status == "verified"}
    assert verified - cited_keys == set()


#: Any number standing alone (not part of a name such as CD19 or FcRH5), with its percent sign if any.
NUMBER = re.compile(r"(?<![A-Za-z0-9.])\d+(?:\.\d+)?%?(?![A-Za-z0-9])")
#: "N of M" and "N/M" counts, compared as pairs.
COUNT = re.compile(r"(?<![A-Za-z0-9.])(\d+)(?: of |/)(\d+)(?![A-Za-z0-9])")
#: A range such as "73.8-80.7%": both ends are percentages.
PERCENT_RANGE = re.compile(r"(\d+(?:\.\d+)?)[-\u2013](\d+(?:\.\d+)?%)")
#: Clinical scale values restating a rule's threshold, not a source's finding: the only numbers exempt.
SCALE = re.compile(r"\b(?:ECOG|grade)\s+\d+(?:\s*(?:-|\u2013|or|to)\s*\d+)?", re.IGNORECASE)


def figures(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    """The numbers (with % where given) and N-of-M counts a text states, scale values left out."""
    text = PERCENT_RANGE.sub(r"\1% \2", SCALE.sub(" ", text))
    return set(NUMBER.findall(text)), set(COUNT.findall(text))


def test_figures_appear_in_the_cited_findings(rulebook: Rulebook) -> None:
    """Every figure of a rationale or ask is in the findings of a cited verified source."""
    offenders = {}
    for rule in rulebook.rules:
        then = rule.then
        text = then.rationale if isinstance(then, Suggest) else getattr(then, "why", None)
        if not text:
            continue
        numbers, counts = figures(text)
        seen_numbers: set[str] = set()
        seen_counts: set[tuple[str, str]] = set()
        for key in then.citations:
            reference = rulebook.references[key]
            if reference.status == "verified" and reference.findings:
                found_numbers, found_counts = figures(reference.findings)
                seen_numbers |= found_numbers
                seen_counts |= found_counts
        missing = sorted(numbers - seen_numbers) + sorted(f"{a} of {b}" for a, b in counts - seen_counts)
        if missing:
            offenders[rule.id] = missing
    assert offenders == {}


def test_the_figure_check_catches_an_invented_number() -> None:
    """The figure extraction finds percentages, ranges, counts and months, and exempts only scale values."""
    numbers, counts = figures("CR 73.8-80.7% (5 of 10; 0/8) over 11.5 months at ECOG 3-4 with grade 3 ICANS")
    assert numbers == {"73.8%", "80.7%", "5", "10", "0", "8", "11.5"}
    assert counts == {("5", "10"), ("0", "8")}


def test_every_cited_reference_records_its_findings(rulebook: Rulebook) -> None:
    """Every bibliography entry a figure could rest on carries the findings seen in its source."""
    assert [key for key, ref in rulebook.references.items() if ref.status == "verified" and not ref.findings] == []


# --- antigen loss is read for the antigen the CAR actually targeted

MM = {"age": 62, "disease": "MM", "car_t": {"product": "cilta-cel", "best_response": "CR"},
      "failure": {"kind": "relapse", "months_since_infusion": 10, "target_antigen": "lost"},
      "fitness": {"ecog": 1}, "trial_access": "available"}


def lost_after(base: dict[str, Any], target: str) -> dict[str, Any]:
    """``base`` with the CAR's target lost; an investigational product unless the target is the approved one."""
    data = copy.deepcopy(base)
    data["failure"]["target_antigen"] = "lost"
    if target not in ("CD19", "BCMA"):
        data["car_t"] = {**data["car_t"], "product": "investigational", "target": target}
    return data


def test_cd19_loss_in_b_all_keeps_cd22_options(engine: Engine) -> None:
    """CD19 CAR-T, CD19 lost (B-ALL): blinatumomab contraindicated, inotuzumab recommended, CD22 CAR-T considered."""
    assessment = evaluate(lost_after(B_ALL, "CD19"), engine)
    blinatumomab = option(assessment, "bispecific_antibody")
    assert blinatumomab.verdict == "not_advised" and blinatumomab.rules[0] == "b_all.bispecific.cd19_lost"
    assert option(assessment, "other_systemic_therapy").rules == ["b_all.other_systemic.inotuzumab_cd19_lost"]
    cd22 = option(assessment, "alternate_target_car_t")
    assert cd22.verdict == "consider" and cd22.rules == ["b_all.alternate_target.cd22"]
    assert "fergusson2023_cd22_meta" in cited(cd22)


def test_cd22_loss_in_b_all_rules_out_cd22_options(engine: Engine) -> None:
    """CD22 CAR-T, CD22 lost (B-ALL): inotuzumab contraindicated, no CD22 CAR-T, blinatumomab once CD19 is confirmed."""
    assessment = evaluate(lost_after(B_ALL, "CD22"), engine)
    inotuzumab = option(assessment, "other_systemic_therapy")
    assert inotuzumab.verdict == "not_advised" and inotuzumab.rules == ["b_all.other_systemic.cd22_lost"]
    assert inotuzumab.reasons[0].contraindication is True and "fry2018_cd22_car_ball" in cited(inotuzumab)
    other_target = option(assessment, "alternate_target_car_t")
    assert other_target.rules == ["car_t.alternate_target.after_non_cd19_target_loss"]
    assert other_target.verdict == "consider" and "fry2018_cd22_car_ball" in cited(other_target)
    blinatumomab = option(assessment, "bispecific_antibody")
    assert blinatumomab.verdict == "consider" and blinatumomab.rules == ["b_all.bispecific.cd19_unknown"]
    assert option(assessment, "second_car_t_infusion").verdict == "not_advised"


def test_dual_target_loss_in_b_all_rules_out_both_antigens(engine: Engine) -> None:
    """CD19/CD22 CAR-T, target lost (B-ALL): blinatumomab and inotuzumab both contraindicated; another antigen in a trial."""
    assessment = evaluate(lost_after(B_ALL, "CD19_CD22"), engine)
    assert option(assessment, "bispecific_antibody").rules[0] == "b_all.bispecific.cd19_lost"
    assert option(assessment, "bispecific_antibody").verdict == "not_advised"
    assert option(assessment, "other_systemic_therapy").rules == ["b_all.other_systemic.cd22_lost"]
    assert option(assessment, "other_systemic_therapy").verdict == "not_advised"
    assert option(assessment, "alternate_target_car_t").rules == ["car_t.alternate_target.after_non_cd19_target_loss"]


def test_cd22_loss_in_lbcl_offers_no_cd22_car_t(engine: Engine) -> None:
    """CD22 CAR-T, CD22 lost (LBCL): no CD22 CAR-T rule fires; another antigen is pointed to, and CD19 drugs are not ruled out."""
    assessment = evaluate(lost_after(BASELINE, "CD22"), engine)
    other_target = option(assessment, "alternate_target_car_t")
    assert other_target.rules == ["car_t.alternate_target.after_non_cd19_target_loss"]
    assert "lbcl.other_systemic.cd19_lost" not in option(assessment, "other_systemic_therapy").rules


def test_cd19_loss_in_lbcl_avoids_cd19_drugs(engine: Engine) -> None:
    """CD19 CAR-T, CD19 lost (LBCL): CD22 CAR-T considered and CD19-directed drugs avoided, citing LOTIS-2."""
    assessment = evaluate(lost_after(BASELINE, "CD19"), engine)
    assert option(assessment, "alternate_target_car_t").rules == ["lbcl.alternate_target.cd22"]
    other = option(assessment, "other_systemic_therapy")
    assert "lbcl.other_systemic.cd19_lost" in other.rules and "caimi2021_lotis2" in cited(other)


def test_bcma_loss_in_myeloma_switches_to_gprc5d(engine: Engine) -> None:
    """BCMA CAR-T, BCMA lost: the GPRC5D bispecific is recommended (talquetamab) and no BCMA re-treatment rule fires."""
    assessment = evaluate(lost_after(MM, "BCMA"), engine)
    bispecific = option(assessment, "bispecific_antibody")
    assert bispecific.verdict == "recommended" and bispecific.rules == ["mm.bispecific.gprc5d"]
    assert "chari2025_monumental1_lancethaematol" in cited(bispecific)
    assert option(assessment, "second_car_t_infusion").rules == ["safety.antigen_lost.second_infusion"]


def test_gprc5d_loss_in_myeloma_offers_no_gprc5d_bispecific(engine: Engine) -> None:
    """GPRC5D CAR-T, GPRC5D lost: no talquetamab rule fires; a BCMA bispecific is considered, citing MajesTEC-1."""
    assessment = evaluate(lost_after(MM, "GPRC5D"), engine)
    bispecific = option(assessment, "bispecific_antibody")
    assert bispecific.verdict == "consider" and bispecific.rules == ["mm.bispecific.after_gprc5d_car"]
    assert "moreau2022_majestec1_teclistamab" in cited(bispecific)
    assert option(assessment, "second_car_t_infusion").verdict == "not_advised"
    assert "mm.trial.consider_early" not in option(assessment, "clinical_trial").rules


def test_gprc5d_loss_after_a_bcma_bispecific_leaves_a_trial(engine: Engine) -> None:
    """GPRC5D CAR-T lost after a BCMA bispecific: both routes used, a trial is recommended (talquetamab data)."""
    data = lost_after(MM, "GPRC5D")
    data["history"] = {"prior_bispecific": ["BCMAxCD3"]}
    assessment = evaluate(data, engine)
    assert option(assessment, "bispecific_antibody").rules == ["mm.bispecific.both_targets_used"]
    trial = option(assessment, "clinical_trial")
    assert trial.verdict == "recommended" and "trials.mm_t_cell_engagers_used_up" in trial.rules


# --- evidence grades and guidelines per disease


def test_every_positive_verdict_is_graded_within_the_policy(rulebook: Rulebook) -> None:
    """recommended/consider rules carry a grade; recommended rests on level A-C or a guideline (docs/rulebook-format.md)."""
    offenders = {}
    for rule in rulebook.rules:
        then = rule.then
        if not isinstance(then, Suggest) or then.verdict == "not_advised":
            continue
        if then.evidence is None:
            offenders[rule.id] = "no grade"
        elif then.verdict == "recommended" and then.evidence.level in "DE" and then.evidence.basis != "guideline":
            offenders[rule.id] = f"recommended on level {then.evidence.level}, basis {then.evidence.basis}"
    assert offenders == {}


#: Guidelines that cover only some diseases: cited only for patients with those diseases.
DISEASE_GUIDELINES = {"nccn_bcell_lymphomas_post_cart": {"LBCL", "FL", "MCL"},
                      "vandedonk2025_emn_tcell_immunotherapy_mm": {"MM"}, "lokhorst2010_imwg_allo_mm": {"MM"}}


def test_a_disease_guideline_is_cited_only_for_its_disease(rulebook: Rulebook) -> None:
    """No lymphoma guideline reaches a myeloma or B-ALL patient, no myeloma guideline a lymphoma patient."""
    wrong = []
    for rule in rulebook.rules:
        diseases = {"LBCL", "FL", "MCL", "B_ALL", "MM", "CLL"} if rule.applies_to_all_diseases else set(rule.diseases)
        for key in getattr(rule.then, "citations", ()):
            covered = DISEASE_GUIDELINES.get(key)
            if covered is not None and not diseases <= covered:
                wrong.append((rule.id, key, sorted(diseases - covered)))
    assert wrong == []


def test_seed_articles_give_no_figure_and_no_verdict(rulebook: Rulebook) -> None:
    """The seed articles (a physician-community editorial and a patient FAQ) are kept for the record, cited by no active rule."""
    seeds = {"seed_sermo_cart_failure", "seed_faq_last_resort"}
    citing = [rule.id for rule in rulebook.rules if seeds & set(getattr(rule.then, "citations", ()))]
    assert citing == []
    assert "a breast-cancer poll, not practice after CAR-T failure" in (rulebook.references["seed_sermo_cart_failure"].findings or "")


def test_radiotherapy_local_control_is_not_credited_to_comprehensive_radiotherapy(rulebook: Rulebook) -> None:
    """The 84% 1-year local control is of all irradiated sites; comprehensive versus focal was compared for survival only."""
    for rule_id in ("lbcl.radiotherapy.localized", "fl.radiotherapy.localized", "mcl.radiotherapy.localized"):
        rationale = rulebook.rule(rule_id).then.rationale  # type: ignore[union-attr]
        assert "84% 1-year local control of the irradiated sites" in rationale
        assert "comprehensive radiotherapy gave 84%" not in rationale
    for rule_id in ("fl.radiotherapy.localized", "mcl.radiotherapy.localized"):
        assert "extrapolated from large B-cell lymphoma" in rulebook.rule(rule_id).then.rationale  # type: ignore[union-attr]


def test_talquetamab_figures_come_from_the_peer_reviewed_report(rulebook: Rulebook) -> None:
    """Talquetamab after T-cell redirection is cited to the Lancet Haematology MonumenTAL-1 paper with its own 67%."""
    for rule_id in ("mm.bispecific.gprc5d", "mm.bispecific.both_targets_used", "trials.mm_t_cell_engagers_used_up"):
        then = rulebook.rule(rule_id).then
        assert isinstance(then, Suggest)
        assert "chari2025_monumental1_lancethaematol" in then.citations and "67%" in then.rationale
        assert "72.2%" not in then.rationale and "44.4%" not in then.rationale


# --- every rationale fits the disease and product of the patient it is shown to

#: How a rationale names each disease (lower case).
DISEASE_WORDS = {
    "LBCL": ("large b-cell lymphoma", "large b-cell lymphomas"),
    "FL": ("follicular",),
    "MCL": ("mantle cell", "mantle-cell"),
    "B_ALL": ("b-all", "lymphoblastic"),
    "MM": ("myeloma",),
    "CLL": ("cll", "chronic lymphocytic"),
}
PRODUCTS = ("axi-cel", "tisa-cel", "liso-cel", "brexu-cel", "obe-cel", "ide-cel", "cilta-cel")


def _words(text: str, words: tuple[str, ...]) -> bool:
    return any(re.search(rf"(?<![a-z-]){re.escape(word)}(?![a-z])", text) for word in words)


def borrowed_data(rule: Any, disease: str) -> list[str]:
    """Other diseases whose data (a rationale with figures naming them) a rule shows to ``disease`` unflagged."""
    then = rule.then
    text = (then.rationale if isinstance(then, Suggest) else getattr(then, "why", "")) or ""
    lowered = text.lower()
    numbers, counts = figures(text)
    if not (numbers or counts) or "extrapolat" in lowered:
        return []
    return [other for other, words in DISEASE_WORDS.items() if other != disease and _words(lowered, words)]


def test_a_rationale_quoting_another_disease_says_extrapolated(rulebook: Rulebook) -> None:
    """A rationale shown for disease X that quotes figures from disease Y says 'extrapolated'."""
    offenders = {}
    for rule in rulebook.rules:
        for disease in DISEASE_WORDS:
            if rule.applies_to_all_diseases or disease in rule.diseases:
                borrowed = borrowed_data(rule, disease)
                if borrowed:
                    offenders[f"{rule.id} for {disease}"] = borrowed
    assert offenders == {}


def test_the_disease_check_catches_borrowed_figures(rulebook: Rulebook) -> None:
    """The check flags LBCL figures shown to a myeloma patient and accepts them once marked extrapolated."""
    rule = next(rule for rule in rulebook.rules if rule.id == "lbcl.bispecific.cd20xcd3")
    assert borrowed_data(rule, "LBCL") == []
    fake = type("Fake", (), {"then": Suggest(option="bispecific_antibody", verdict="consider", citations=["x"],
                rationale="In large B-cell lymphoma CR was 35%.")})()
    assert borrowed_data(fake, "MM") == ["LBCL"]
    fake.then = Suggest(option="bispecific_antibody", verdict="consider", citations=["x"],
                        rationale="Extrapolated from large B-cell lymphoma: CR was 35%.")
    assert borrowed_data(fake, "MM") == []


def test_a_rationale_naming_a_product_is_shown_only_after_that_product(rulebook: Rulebook) -> None:
    """A rationale quoting figures about a product (brexu-cel...) is shown only after it, unless extrapolated."""
    offenders = {}
    for rule in rulebook.rules:
        then = rule.then
        text = ((then.rationale if isinstance(then, Suggest) else getattr(then, "why", "")) or "").lower()
        numbers, counts = figures(text)
        if "extrapolat" in text or not (numbers or counts):
            continue
        pinned: set[str] = set()
        for leaf in cond.leaves(rule.condition) if rule.condition is not None else ():
            if leaf.field == "car_t.product" and leaf.op in ("eq", "in"):
                pinned |= set(leaf.value) if isinstance(leaf.value, tuple) else {leaf.value}
        named = {product for product in PRODUCTS if product in text}
        if named and not (pinned and pinned <= named):
            offenders[rule.id] = sorted(named)
    assert offenders == {}


def test_an_infection_defers_even_an_approved_oral_drug(engine: Engine) -> None:
    """CLL after a covalent BTK inhibitor: pirtobrutinib is considered (extrapolated, level E), not during an uncontrolled infection."""
    cll = {"age": 60, "disease": "CLL", "car_t": {"product": "liso-cel", "best_response": "CR"},
           "failure": {"kind": "relapse", "months_since_infusion": 9}, "fitness": {"ecog": 1},
           "history": {"prior_therapies": ["covalent_btk_inhibitor"]}}
    found = option(evaluate(cll, engine), "other_systemic_therapy")
    assert found.verdict == "consider"
    assert "bruin_cll321_fda2025_pirtobrutinib" in cited(found)
    cll["fitness"]["active_infection"] = True
    recommended = {o.option for o in evaluate(cll, engine).options if o.verdict == "recommended"}
    assert recommended <= {"quality_of_life_focus", "long_term_follow_up"}


def test_richter_transformation_follows_the_large_b_cell_advice(engine: Engine) -> None:
    """CLL with Richter transformation gets the CD20xCD3 route (extrapolated), not pirtobrutinib."""
    richter = {"age": 61, "disease": "CLL", "car_t": {"product": "liso-cel", "best_response": "PR"},
               "failure": {"kind": "relapse", "months_since_infusion": 5, "cd20": "positive"}, "fitness": {"ecog": 1},
               "history": {"prior_therapies": ["covalent_btk_inhibitor"]},
               "disease_status": {"richter_transformation": True}}
    assessment = evaluate(richter, engine)
    bispecific = option(assessment, "bispecific_antibody")
    assert bispecific.verdict == "consider" and "cll.richter.bispecific_cd20xcd3" in bispecific.rules
    # the PD-1/BTK rule is retired (its only source is unverified), so no other systemic therapy is offered
    assert all(o.option != "other_systemic_therapy" for o in assessment.options)
