"""Generated patient situations for tests and benchmarks (not clinical data, not a clinical model).

The values are drawn so that situations are valid by construction (product used for the disease,
failure kind consistent with the best response) unless ``invalid_rate`` asks for broken ones. The
distribution is deliberately broad, so that batch evaluation meets many distinct situations.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import yaml

from postcart.situation import PRODUCT_DISEASES

__all__ = ["COLUMNS", "flat_row", "random_situation", "synthetic_rules"]

_DISEASES = (("LBCL", 50), ("MM", 15), ("B_ALL", 10), ("FL", 8), ("MCL", 9), ("CLL", 8))
_TARGETS = ("CD19", "BCMA", "CD22", "CD19_CD22", "GPRC5D", "other")
_BISPECIFICS = ("CD20xCD3", "CD19xCD3", "BCMAxCD3", "GPRC5DxCD3", "FcRH5xCD3")

#: The flattened column names of a generated cohort table, in order.
COLUMNS: tuple[str, ...] = (
    "patient_id", "age", "disease", "car_t.product", "car_t.target", "car_t.best_response",
    "car_t.infusions", "car_t.max_crs_grade", "car_t.max_icans_grade", "failure.kind",
    "failure.months_since_infusion", "failure.target_antigen", "failure.car_t_persistence", "failure.cd20",
    "failure.localized", "failure.cns_involvement", "fitness.ecog", "fitness.hct_ci",
    "fitness.organ_function_adequate", "fitness.active_infection", "history.prior_lines",
    "history.prior_allo_hct", "history.prior_auto_hct", "history.prior_bispecific", "donor", "goals",
    "trial_access",
)


def _maybe(rng: random.Random, value: Any, known: float = 0.8) -> Any:
    return value if rng.random() < known else None


def random_situation(rng: random.Random, index: int = 0, invalid_rate: float = 0.0) -> dict[str, Any]:
    """One nested situation mapping (the input contract's shape); unknown fields are left out."""
    disease = rng.choices([d for d, _ in _DISEASES], [w for _, w in _DISEASES])[0]
    products = [p for p, diseases in PRODUCT_DISEASES.items() if disease in diseases]
    car_t: dict[str, Any] = {}
    if rng.random() < 0.05:
        car_t["product"] = "investigational"
        car_t["target"] = rng.choice(_TARGETS)
    else:
        car_t["product"] = rng.choice(products)
    relapse = rng.random() < 0.6
    car_t["best_response"] = rng.choice(("CR", "PR") if relapse else ("SD", "PD", "not_evaluable"))
    car_t["infusions"] = 1 if rng.random() < 0.9 else 2
    for grade in ("max_crs_grade", "max_icans_grade"):
        value = _maybe(rng, rng.choices(range(6), [30, 35, 18, 10, 5, 2])[0])
        if value is not None:
            car_t[grade] = value
    months = round(rng.uniform(0.3, 36.0) if relapse else rng.uniform(0.3, 4.0), 1)
    failure: dict[str, Any] = {"kind": "relapse" if relapse else "primary_refractory",
                               "months_since_infusion": months}
    for name, values in (("target_antigen", ("retained", "lost", "unknown")),
                         ("car_t_persistence", ("detectable", "undetectable", "unknown")),
                         ("cd20", ("positive", "negative", "unknown"))):
        if rng.random() < 0.8:
            failure[name] = rng.choice(values)
    failure["localized"] = rng.random() < 0.15
    if rng.random() < 0.5:
        failure["cns_involvement"] = rng.random() < 0.05
    fitness: dict[str, Any] = {"ecog": rng.choices(range(5), [25, 40, 20, 10, 5])[0]}
    hct_ci = _maybe(rng, rng.randint(0, 8))
    if hct_ci is not None:
        fitness["hct_ci"] = hct_ci
    organ = _maybe(rng, rng.random() < 0.8)
    if organ is not None:
        fitness["organ_function_adequate"] = organ
    fitness["active_infection"] = rng.random() < 0.1
    history: dict[str, Any] = {}
    lines = _maybe(rng, rng.randint(1, 6))
    if lines is not None:
        history["prior_lines"] = lines
    history["prior_allo_hct"] = rng.random() < 0.05
    history["prior_auto_hct"] = rng.random() < 0.25
    if rng.random() < 0.3:
        history["prior_bispecific"] = rng.sample(_BISPECIFICS, rng.randint(1, 2))
    situation: dict[str, Any] = {
        "patient_id": f"p{index:07d}",
        "age": rng.randint(18, 85),
        "disease": disease,
        "car_t": car_t,
        "failure": failure,
        "fitness": fitness,
        "history": history,
        "donor": rng.choice(("matched_related", "matched_unrelated", "haploidentical", "mismatched_unrelated",
                             "cord_blood", "none", "unknown")),
        "goals": rng.choice(("disease_control", "quality_of_life", "undecided")),
        "trial_access": rng.choice(("available", "not_available", "unknown")),
    }
    if invalid_rate and rng.random() < invalid_rate:
        broken = rng.randrange(3)
        if broken == 0:
            situation["age"] = 150
        elif broken == 1:
            situation["fitness"]["ecog"] = "bad"
        else:
            situation["car_t"]["product"] = "ide-cel" if disease != "MM" else "axi-cel"
    return situation


def flat_row(situation: dict[str, Any]) -> dict[str, Any]:
    """The situation as one table row: flattened dotted columns, unknown = None, lists ``;``-joined."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    for key, value in situation.items():
        if isinstance(value, dict):
            for inner, item in value.items():
                row[f"{key}.{inner}"] = ";".join(item) if isinstance(item, list) else item
        else:
            row[key] = value
    return row


def synthetic_rules(directory: Path, count: int, seed: int = 5) -> Path:
    """A copy of the bundled rules plus ``count`` generated rules (tests and benchmarks only: not clinical).

    The rulebook is expected to grow to some hundreds of rules; this shows how batch speed follows. Each
    generated rule compares 1-3 random fields (every operator, thresholds across each field's range).
    """
    from postcart.rulebook import default_rules_dir
    from postcart.situation import field_catalogue
    from postcart.vocabulary import DISEASES, OPTIONS

    rng = random.Random(seed)
    shutil.copytree(default_rules_dir(), directory, dirs_exist_ok=True)
    entries = yaml.safe_load((directory / "references.yaml").read_text())["references"]
    key = next(entry["key"] for entry in entries if entry.get("status") == "verified")  # active rules cite only these
    catalogue = {path: spec for path, spec in field_catalogue().items() if path != "patient_id"}
    optional = [path for path, spec in catalogue.items() if spec.optional]
    months = [1, 2, 3, 6, 9, 12, 18, 24]

    def comparison() -> dict[str, object]:
        path = rng.choice(list(catalogue))
        spec = catalogue[path]
        if spec.kind == "enum":
            values = list(spec.values)
            op = rng.choice(["eq", "ne", "in"])
            return {"field": path, op: rng.sample(values, 2) if op == "in" else rng.choice(values)}
        if spec.kind == "set":
            return {"field": path, "contains": rng.choice(spec.values)}
        if spec.kind == "bool":
            return {"field": path, "eq": rng.random() < 0.5}
        if spec.kind in ("int", "float"):
            if path == "failure.months_since_infusion":
                threshold: float = rng.choice(months)
            else:
                low, high = int(spec.minimum or 0), int(min(spec.maximum or 10, 90))
                threshold = rng.randint(low, high)
            return {"field": path, rng.choice(["lt", "le", "gt", "ge"]): threshold}
        return {"field": "derived.failure_timing", "eq": rng.choice(["very_early", "early", "late"])}

    rules = []
    for index in range(count):
        condition = [comparison() for _ in range(rng.randint(1, 3))]
        diseases = ["all"] if rng.random() < 0.2 else [rng.choice(DISEASES)]
        if rng.random() < 0.15 and optional:
            then: dict[str, object] = {"ask": rng.choice(optional), "why": "generated question for the benchmark"}
        else:
            verdict = rng.choice(["recommended", "consider", "not_advised"])
            then = {"option": rng.choice(OPTIONS), "verdict": verdict, "citations": [key],
                    "rationale": "generated rule for the batch benchmark, not clinical",
                    "contraindication": verdict == "not_advised" and rng.random() < 0.5,
                    "evidence": {"level": "B", "basis": "off_label"}}
        rules.append({"id": f"zz.bench.{index:04d}", "title": f"Generated benchmark rule {index}",
                      "diseases": diseases, "when": {"all": condition}, "then": then})
    (directory / "zz_benchmark.yaml").write_text(yaml.safe_dump({"rules": rules}, sort_keys=False))
    return directory
