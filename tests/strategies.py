"""Hypothesis strategies for patient situations: one place, reused by property tests, fuzzing and benchmarks.

``situations()`` draws plain mappings in the input contract's shape that the contract accepts: every
disease, a product used for it (or an investigational one with its target), a failure kind consistent
with the best response, optional fields often left out (unknown) and numbers biased towards the
boundaries rules use.

>>> from hypothesis import find
>>> find(situations(diseases=("MM",)), lambda s: True)["disease"]
'MM'
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from postcart.situation import (
    FIELD_DISEASES,
    HISTOLOGY_DISEASE,
    PRODUCT_DISEASES,
    PRODUCT_TARGET,
    PatientSituation,
    field_catalogue,
    validate_situation,
)
from postcart.vocabulary import DISEASES

__all__ = ["patient_situations", "situations", "target_lost_situations"]

TARGETS = ("CD19", "BCMA", "CD22", "CD19_CD22", "GPRC5D", "other")
BISPECIFICS = ("CD20xCD3", "CD19xCD3", "BCMAxCD3", "GPRC5DxCD3", "FcRH5xCD3")
FAILURES = (("relapse", "CR"), ("relapse", "PR"), ("primary_refractory", "SD"),
            ("primary_refractory", "PD"), ("primary_refractory", "not_evaluable"))

#: Months from infusion around the timing strata (1 and 3 months) and beyond.
_MONTHS = st.one_of(st.sampled_from([0, 0.5, 1, 1.01, 2, 2.99, 3, 3.01, 6, 12, 24, 60]),
                    st.floats(min_value=0, max_value=600, allow_nan=False, allow_infinity=False))
_GRADE = st.integers(min_value=0, max_value=5)


def _car_t(disease: str) -> st.SearchStrategy[dict[str, Any]]:
    approved = [product for product, used in PRODUCT_DISEASES.items() if disease in used]

    def for_product(product: str) -> st.SearchStrategy[dict[str, Any]]:
        if product == "investigational":
            target: st.SearchStrategy[Any] = st.sampled_from(TARGETS)
            return st.fixed_dictionaries({"product": st.just(product), "target": target},
                                         optional=_car_t_optional())
        return st.fixed_dictionaries({"product": st.just(product)},
                                     optional={"target": st.just(PRODUCT_TARGET[product]), **_car_t_optional()})

    return st.sampled_from([*approved, "investigational"]).flatmap(for_product)


def _car_t_optional() -> dict[str, st.SearchStrategy[Any]]:
    return {"infusions": st.integers(min_value=1, max_value=3), "max_crs_grade": _GRADE, "max_icans_grade": _GRADE}


def _failure() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"months_since_infusion": _MONTHS},
        optional={
            "target_antigen": st.sampled_from(["retained", "lost", "unknown"]),
            "car_t_persistence": st.sampled_from(["detectable", "undetectable", "unknown"]),
            "cd20": st.sampled_from(["positive", "negative", "unknown"]),
            "localized": st.booleans(),
            "cns_involvement": st.booleans(),
        },
    )


def _fitness() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"ecog": st.integers(min_value=0, max_value=4)},
        optional={
            "hct_ci": st.one_of(st.integers(min_value=0, max_value=8), st.integers(min_value=0, max_value=30)),
            "organ_function_adequate": st.booleans(),
            "active_infection": st.booleans(),
            "ecog_disease_related": st.booleans(),
        },
    )


def _history() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={
        "prior_lines": st.integers(min_value=0, max_value=10),
        "prior_allo_hct": st.booleans(),
        "prior_auto_hct": st.booleans(),
        "prior_bispecific": st.lists(st.sampled_from(BISPECIFICS), unique=True, max_size=3),
        "prior_therapies": st.lists(st.sampled_from(AGENT_CLASSES), unique=True, max_size=3),
        "refractory_to": st.lists(st.sampled_from(AGENT_CLASSES), unique=True, max_size=2),
    })


AGENT_CLASSES = field_catalogue()["history.prior_therapies"].values


def _specific(disease: str) -> st.SearchStrategy[dict[str, Any]]:
    """The inputs that describe only some diseases, drawn only where the disease has them."""
    catalogue = field_catalogue()
    optional: dict[str, st.SearchStrategy[Any]] = {}
    for path, diseases in FIELD_DISEASES.items():
        if disease in diseases:
            spec = catalogue[path]
            optional[path] = st.sampled_from(spec.values) if spec.kind == "enum" else st.booleans()
    optional["disease_status.response_to_salvage"] = st.sampled_from(
        catalogue["disease_status.response_to_salvage"].values)
    optional["histology"] = st.sampled_from(
        [h for h in catalogue["histology"].values if HISTOLOGY_DISEASE.get(h, disease) == disease])
    return st.fixed_dictionaries({}, optional=optional)


def _assemble(disease: str, car_t: dict[str, Any], failure_pair: tuple[str, str], failure: dict[str, Any],
              rest: dict[str, Any], specific: dict[str, Any] | None = None) -> dict[str, Any]:
    kind, response = failure_pair
    situation = {"disease": disease, "car_t": {**car_t, "best_response": response},
                 "failure": {"kind": kind, **failure}, **rest}
    for path, value in (specific or {}).items():
        head, _, tail = path.partition(".")
        if tail:
            situation.setdefault(head, {})[tail] = value
        else:
            situation[head] = value
    return situation


def situations(diseases: tuple[str, ...] = DISEASES) -> st.SearchStrategy[dict[str, Any]]:
    """Valid patient situations as plain mappings (the form a user or a file gives)."""

    def for_disease(disease: str) -> st.SearchStrategy[dict[str, Any]]:
        rest = st.fixed_dictionaries(
            {"age": st.one_of(st.integers(min_value=18, max_value=85), st.integers(min_value=0, max_value=120)),
             "fitness": _fitness()},
            optional={
                "patient_id": st.from_regex(r"\Acase-[0-9]{3}\Z"),
                "history": _history(),
                "donor": st.sampled_from(["matched_related", "matched_unrelated", "haploidentical",
                                          "mismatched_unrelated", "cord_blood", "none", "unknown"]),
                "goals": st.sampled_from(["disease_control", "quality_of_life", "undecided"]),
                "trial_access": st.sampled_from(["available", "not_available", "unknown"]),
            },
        )
        return st.builds(_assemble, st.just(disease), _car_t(disease), st.sampled_from(FAILURES), _failure(), rest,
                         _specific(disease))

    return st.sampled_from(diseases).flatmap(for_disease)


def patient_situations(diseases: tuple[str, ...] = DISEASES) -> st.SearchStrategy[PatientSituation]:
    """Valid situations as validated ``PatientSituation`` models."""
    return situations(diseases).map(validate_situation)


def target_lost_situations(diseases: tuple[str, ...] = DISEASES) -> st.SearchStrategy[dict[str, Any]]:
    """Valid situations whose CAR target is lost on the failure biopsy, the CAR aimed at any target.

    Half keep the drawn product (an approved one targets CD19 or BCMA); the rest become an investigational
    CAR-T against a drawn target, so every target meets every disease.
    """

    def lost(situation: dict[str, Any], target: str | None) -> dict[str, Any]:
        result = copy.deepcopy(situation)
        if target is not None:
            result["car_t"] = {**result["car_t"], "product": "investigational", "target": target}
        result["failure"]["target_antigen"] = "lost"
        return result

    return st.builds(lost, situations(diseases), st.sampled_from([None, *TARGETS]))
