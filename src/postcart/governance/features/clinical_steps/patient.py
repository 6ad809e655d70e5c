"""Given steps: the patient as a hematologist describes them, turned into a ``PatientSituation``.

Each step sets one or a few fields of the situation on top of the baseline (see ``case.py``). A word the
library does not know fails the step with the known alternatives; a value the input contract refuses
fails at "When postcart assesses the situation", naming the step that gave it.
"""

from __future__ import annotations

from postcart.governance.features.clinical_steps.case import PatientCase
from postcart.governance.features.clinical_steps.registry import step
from postcart.governance.features.clinical_steps.vocabulary import (
    ANTIBODY_DRUGS,
    DISEASES,
    DONORS,
    GOALS,
    HISTOLOGIES,
    PRODUCTS,
    RESPONSES,
    THERAPY_CLASSES,
    UnknownTerm,
    lookup,
)


def _term(case: PatientCase, kind: str, phrase: str, table: dict[str, str]) -> str:
    try:
        return lookup(kind, phrase, table)
    except UnknownTerm as error:
        raise case.fail(str(error)) from None


def _new_patient(case: PatientCase, age: int, disease: str, product: str) -> None:
    case.start_patient()
    case.set("age", age)
    case.set("disease", _term(case, "disease", disease, DISEASES))
    case.set("car_t.product", _term(case, "CAR-T product", product, PRODUCTS))


@step("given", "{a:A} {age:d}-year-old with {disease} who relapsed {months:g} {unit:Months} after {product}",
      "a 58-year-old with large B-cell lymphoma who relapsed 11 months after axi-cel")
def relapsed_after(case: PatientCase, age: int, disease: str, months: float, product: str) -> None:
    """A relapse after a response (complete response unless a later step says otherwise)."""
    _new_patient(case, age, disease, product)
    case.set("car_t.best_response", "CR")
    case.set("failure.kind", "relapse")
    case.set("failure.months_since_infusion", months)


@step("given", "{a:A} {age:d}-year-old with {disease} refractory to {product}, progressing {months:g} {unit:Months} "
      "after infusion",
      "a 64-year-old with large B-cell lymphoma refractory to axi-cel, progressing 1 month after infusion")
def refractory_to(case: PatientCase, age: int, disease: str, product: str, months: float) -> None:
    """Primary refractory disease: no response (progressive disease unless a later step says otherwise)."""
    _new_patient(case, age, disease, product)
    case.set("car_t.best_response", "PD")
    case.set("failure.kind", "primary_refractory")
    case.set("failure.months_since_infusion", months)


@step("given", "the best response to CAR-T was {response}",
      "the best response to CAR-T was a partial response")
def best_response(case: PatientCase, response: str) -> None:
    case.set("car_t.best_response", _term(case, "response", response, RESPONSES))


@step("given", "the investigational CAR-T targets {target:Marker}", "the investigational CAR-T targets CD22")
def investigational_target(case: PatientCase, target: str) -> None:
    case.set("car_t.target", target)


@step("given", "{who:Who} has received {count:d} CAR-T {word:Infusions}", "she has received 2 CAR-T infusions")
def infusions(case: PatientCase, count: int) -> None:
    case.set("car_t.infusions", count)


@step("given", "the worst {kind:Toxicity} was grade {grade:d}", "the worst ICANS was grade 3")
def worst_toxicity(case: PatientCase, kind: str, grade: int) -> None:
    case.set(f"car_t.max_{kind.lower()}_grade", grade)


@step("given", "there was no CRS or ICANS", "there was no CRS or ICANS")
def no_toxicity(case: PatientCase) -> None:
    case.set("car_t.max_crs_grade", 0)
    case.set("car_t.max_icans_grade", 0)


def _car_target(case: PatientCase) -> str | None:
    product = case.get("car_t.product")
    from postcart.situation import PRODUCT_TARGET

    return case.get("car_t.target") or PRODUCT_TARGET.get(product or "")


_ANTIGEN_STATUS = {"retained": "retained", "lost": "lost", "not known": "unknown", "unknown": "unknown",
                   "not yet assessed": "unknown"}
_CD20_STATUS = {"retained": "positive", "lost": "negative", "not known": "unknown", "unknown": "unknown",
                "not yet assessed": "unknown", "positive": "positive", "negative": "negative"}


@step("given", "{antigen:Marker} is {status:AntigenStatus} on {biopsy:Biopsy}",
      "CD19 is retained on re-biopsy", "CD19 is lost on re-biopsy", "CD20 is negative on re-biopsy")
def antigen_on_biopsy(case: PatientCase, antigen: str, status: str) -> None:
    """The CAR's target (CD19, BCMA...), or CD20, CD22 or GPRC5D as second antigens, on the failure biopsy."""
    target = _car_target(case)
    if antigen.upper() == "CD20":
        case.set("failure.cd20", _term(case, "CD20 status", status, _CD20_STATUS))
        return
    if antigen.upper() in ("CD22", "GPRC5D") and (target or "").upper() != antigen.upper():
        case.set(f"failure.{antigen.lower()}", _term(case, f"{antigen} status", status, _CD20_STATUS))
        return
    if target is None:
        raise case.fail("say who the patient is (the 'a N-year-old with ...' step) before the antigen status")
    if antigen.upper() != target.upper():
        raise case.fail(f"{antigen} is not the target of this patient's CAR-T ({target}); postcart records the "
                        f"CAR target's status (say '{target} is {status}') and CD20 separately")
    if status in ("positive", "negative"):
        raise case.fail(f"say whether {antigen} is 'retained' or 'lost' on the failure biopsy")
    case.set("failure.target_antigen", _ANTIGEN_STATUS[status])


_PERSISTENCE = {
    "still detectable": "detectable", "no longer detectable": "undetectable", "not measured": "unknown",
}


@step("given", "CAR-T cells are {state:Persistence}",
      "CAR-T cells are no longer detectable")
def persistence(case: PatientCase, state: str) -> None:
    case.set("failure.car_t_persistence", _PERSISTENCE[state])


@step("given", "B-cell recovery shows the CAR-T cells have been lost",
      "B-cell recovery shows the CAR-T cells have been lost")
def b_cell_recovery(case: PatientCase) -> None:
    """In B-ALL, B-cell recovery implies loss of CAR-T persistence."""
    case.set("failure.car_t_persistence", "undetectable")


@step("given", "the {what:RelapseOrDisease} is {extent:Extent}",
      "the relapse is localized to a single site")
def extent(case: PatientCase, extent: str) -> None:
    case.set("failure.localized", extent != "widespread")


@step("given", "the central nervous system is involved", "the central nervous system is involved")
def cns(case: PatientCase) -> None:
    case.set("failure.cns_involvement", True)


@step("given", "ECOG performance status is {ecog:d}", "ECOG performance status is 1")
def ecog(case: PatientCase, ecog: int) -> None:
    case.set("fitness.ecog", ecog)


@step("given", "the HCT-CI is {score:d}", "the HCT-CI is 2")
def hct_ci(case: PatientCase, score: int) -> None:
    case.set("fitness.hct_ci", score)


@step("given", "organ function is {state:Adequacy} for intensive therapy",
      "organ function is adequate for intensive therapy")
def organ_function(case: PatientCase, state: str) -> None:
    case.set("fitness.organ_function_adequate", state == "adequate")


@step("given", "there is an active uncontrolled infection", "there is an active uncontrolled infection")
def infection(case: PatientCase) -> None:
    case.set("fitness.active_infection", True)


@step("given", "{who:Who} is {age:d} years old", "the patient is 72 years old")
def age(case: PatientCase, age: int) -> None:
    case.set("age", age)


@step("given", "{who:Who} had {lines:d} prior {word:Lines} of therapy before CAR-T",
      "she had 3 prior lines of therapy before CAR-T")
def prior_lines(case: PatientCase, lines: int) -> None:
    case.set("history.prior_lines", lines)


@step("given", "{who:Who} had {a:A} {kind:Transplant} transplant before",
      "he had an autologous transplant before")
def prior_transplant(case: PatientCase, kind: str) -> None:
    case.set("history.prior_allo_hct" if kind == "allogeneic" else "history.prior_auto_hct", True)


@step("given", "{who:Who} has already received {drug}", "she has already received glofitamab",
      "he has already received ibrutinib")
def prior_bispecific(case: PatientCase, drug: str) -> None:
    """A prior bispecific antibody (to history.prior_bispecific) or another drug class (history.prior_therapies)."""
    try:
        therapy = lookup("therapy", drug, THERAPY_CLASSES)
    except UnknownTerm:
        therapy = None
    if therapy is not None:
        received = list(case.get("history.prior_therapies", []))
        case.set("history.prior_therapies", [*received, therapy] if therapy not in received else received)
        return
    drug_class = _term(case, "bispecific antibody or drug (name or class)", drug, {**ANTIBODY_DRUGS, **THERAPY_CLASSES})
    received = list(case.get("history.prior_bispecific", []))
    if drug_class not in received:
        received.append(drug_class)
    case.set("history.prior_bispecific", received)


@step("given", "{a:A} {donor} donor is available", "a matched unrelated donor is available")
def donor(case: PatientCase, donor: str) -> None:
    case.set("donor", _term(case, "donor type", donor, DONORS))


@step("given", "no donor is available", "no donor is available")
def no_donor(case: PatientCase) -> None:
    case.set("donor", "none")


@step("given", "the patient's priority is {goal}", "the patient's priority is quality of life")
def goal(case: PatientCase, goal: str) -> None:
    case.set("goals", _term(case, "goal", goal, GOALS))


@step("given", "a suitable clinical trial {state:TrialState}",
      "a suitable clinical trial is available")
def trial(case: PatientCase, state: str) -> None:
    case.set("trial_access", "available" if state == "is available" else "not_available")


@step("given", "the disease was refractory to {drug}", "the disease was refractory to venetoclax")
def refractory_to_drug(case: PatientCase, drug: str) -> None:
    """A drug class the disease progressed on (counts as received)."""
    therapy = _term(case, "drug (name or class)", drug, THERAPY_CLASSES)
    refractory = list(case.get("history.refractory_to", []))
    case.set("history.refractory_to", [*refractory, therapy] if therapy not in refractory else refractory)


@step("given", "a biopsy confirms Richter transformation", "a biopsy confirms Richter transformation")
def richter(case: PatientCase) -> None:
    case.set("disease_status.richter_transformation", True)


_SALVAGE = {"complete response": "CR", "complete remission": "CR", "partial response": "PR",
            "partial remission": "PR", "stable disease": "SD", "progression": "PD", "progressive disease": "PD"}


@step("given", "salvage therapy since the CAR-T has given {response}",
      "salvage therapy since the CAR-T has given a complete response")
def salvage_response(case: PatientCase, response: str) -> None:
    """The best response to the therapy given since the CAR-T failed."""
    case.set("disease_status.response_to_salvage", _term(case, "response to salvage", response, _SALVAGE))


@step("given", "no salvage therapy has been given yet", "no salvage therapy has been given yet")
def no_salvage(case: PatientCase) -> None:
    case.set("disease_status.response_to_salvage", "not_given")


@step("given", "the poor performance status is caused by the disease itself",
      "the poor performance status is caused by the disease itself")
def ecog_disease_related(case: PatientCase) -> None:
    case.set("fitness.ecog_disease_related", True)


@step("given", "the histology is {histology}", "the histology is primary mediastinal B-cell lymphoma")
def histology(case: PatientCase, histology: str) -> None:
    case.set("histology", _term(case, "histology", histology, HISTOLOGIES))


@step("given", "there is extramedullary disease", "there is extramedullary disease")
def extramedullary(case: PatientCase) -> None:
    case.set("disease_status.extramedullary_disease", True)


@step("given", "measurable residual disease is {status:AntigenStatus}",
      "measurable residual disease is positive")
def mrd(case: PatientCase, status: str) -> None:
    case.set("disease_status.mrd", _term(case, "MRD status", status, {"positive": "positive", "negative": "negative"}))


@step("given", "the leukemia is Philadelphia chromosome-positive", "the leukemia is Philadelphia chromosome-positive")
def ph_positive(case: PatientCase) -> None:
    case.set("disease_status.ph_positive", True)


@step("given", "there is a TP53 aberration", "there is a TP53 aberration")
def tp53(case: PatientCase) -> None:
    case.set("disease_status.tp53_aberration", True)


@step("given", "FISH shows high-risk cytogenetics", "FISH shows high-risk cytogenetics")
def high_risk_cytogenetics(case: PatientCase) -> None:
    case.set("disease_status.high_risk_cytogenetics", True)


@step("given", "the CNS disease is {site}", "the CNS disease is leptomeningeal")
def cns_site(case: PatientCase, site: str) -> None:
    """Where the CNS disease is (implies CNS involvement)."""
    case.set("failure.cns_involvement", True)
    case.set("failure.cns_site", _term(case, "CNS site", site, {"leptomeningeal": "leptomeningeal",
                                                                "parenchymal": "parenchymal"}))
