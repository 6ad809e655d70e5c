"""Seeded generator of valid, clinically plausible patient situations for benchmarks (not for tests:
property tests use Hypothesis strategies in tests/strategies.py)."""

from __future__ import annotations

import random
from typing import Any

from postcart.situation import PRODUCT_DISEASES

_PRODUCTS = {disease: [p for p, ds in PRODUCT_DISEASES.items() if disease in ds]
             for disease in ("LBCL", "FL", "MCL", "B_ALL", "MM", "CLL")}


def situation(rng: random.Random, index: int = 0) -> dict[str, Any]:
    disease = rng.choice(list(_PRODUCTS))
    response = rng.choice(["CR", "PR", "SD", "PD", "not_evaluable"])
    data: dict[str, Any] = {
        "patient_id": f"synthetic-{index}",
        "age": rng.randint(18, 85),
        "disease": disease,
        "car_t": {
            "product": rng.choice(_PRODUCTS[disease]),
            "best_response": response,
            "infusions": rng.choice([1, 1, 1, 2]),
        },
        "failure": {
            "kind": "relapse" if response in ("CR", "PR") else "primary_refractory",
            "months_since_infusion": round(rng.uniform(0, 36), 1),
            "target_antigen": rng.choice(["retained", "lost", "unknown"]),
            "car_t_persistence": rng.choice(["detectable", "undetectable", "unknown"]),
            "cd20": rng.choice(["positive", "negative", "unknown"]),
            "localized": rng.random() < 0.2,
            "cns_involvement": rng.random() < 0.05,
        },
        "fitness": {"ecog": rng.choice([0, 1, 1, 2, 2, 3, 4]), "active_infection": rng.random() < 0.1},
        "history": {
            "prior_lines": rng.randint(1, 6),
            "prior_allo_hct": rng.random() < 0.1,
            "prior_auto_hct": rng.random() < 0.3,
            "prior_bispecific": rng.sample(["CD20xCD3", "CD19xCD3", "BCMAxCD3", "GPRC5DxCD3"], rng.choice([0, 0, 1])),
        },
        "donor": rng.choice(["matched_related", "matched_unrelated", "haploidentical", "mismatched_unrelated",
                             "cord_blood", "none", "unknown"]),
        "goals": rng.choice(["disease_control", "disease_control", "quality_of_life", "undecided"]),
        "trial_access": rng.choice(["available", "not_available", "unknown"]),
    }
    if rng.random() < 0.7:
        data["car_t"]["max_crs_grade"] = rng.choice([0, 1, 1, 2, 3, 4])
        data["car_t"]["max_icans_grade"] = rng.choice([0, 0, 1, 2, 3, 4])
    if rng.random() < 0.6:
        data["fitness"]["hct_ci"] = rng.randint(0, 8)
    if rng.random() < 0.7:
        data["fitness"]["organ_function_adequate"] = rng.random() < 0.8
    return data


def situations(count: int, seed: int = 20261121) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [situation(rng, index) for index in range(count)]
