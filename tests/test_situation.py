"""The input contract: valid situations pass, every kind of invalid one is refused by dotted path."""

from __future__ import annotations

import json
from typing import Any

import pytest

from postcart import InvalidSituation, PatientSituation, validate_situation
from postcart.situation import field_catalogue, flatten


def refuse(data: dict[str, Any]) -> InvalidSituation:
    with pytest.raises(InvalidSituation) as caught:
        validate_situation(data)
    return caught.value


def test_baseline_is_valid_and_target_is_derived_from_product(baseline: dict[str, Any]) -> None:
    """A valid situation validates, and the CAR target is filled in from the product."""
    situation = validate_situation(baseline)
    assert isinstance(situation, PatientSituation)
    assert situation.car_t.target == "CD19"
    assert situation.failure.car_t_persistence == "unknown"
    assert situation.history.prior_bispecific == []


def test_out_of_range_number_names_field_expected_and_got(baseline: dict[str, Any]) -> None:
    """An out-of-range ECOG names fitness.ecog, the allowed range and the value that arrived."""
    baseline["fitness"]["ecog"] = 5
    error = refuse(baseline)
    (problem,) = error.problems
    assert problem.location == "fitness.ecog"
    assert problem.expected == "an integer 0-4"
    assert problem.got == "5"
    assert "fitness.ecog" in str(error) and "an integer 0-4" in str(error)


def test_negative_months_refused(baseline: dict[str, Any]) -> None:
    """Time to failure cannot be negative."""
    baseline["failure"]["months_since_infusion"] = -1
    assert [p.location for p in refuse(baseline).problems] == ["failure.months_since_infusion"]


def test_wrong_enum_lists_allowed_values(baseline: dict[str, Any]) -> None:
    """A value outside an enumeration lists the allowed values."""
    baseline["car_t"]["best_response"] = "VGPR"
    (problem,) = refuse(baseline).problems
    assert problem.location == "car_t.best_response"
    assert problem.expected == "one of CR, PR, SD, PD, not_evaluable"
    assert problem.got == "'VGPR'"


@pytest.mark.parametrize(
    ("mutate", "location", "suggestion"),
    [
        (lambda s: s.update(agee=60), "agee", "age"),
        (lambda s: s["fitness"].update(hct_cii=2), "fitness.hct_cii", "fitness.hct_ci"),
        (lambda s: s.update(ecog=1), "ecog", "fitness.ecog"),
    ],
)
def test_unknown_key_refused_with_did_you_mean(baseline: dict[str, Any], mutate: Any, location: str,
                                               suggestion: str) -> None:
    """An unknown key is refused, with a 'did you mean' pointing at the real field."""
    mutate(baseline)
    (problem,) = refuse(baseline).problems
    assert problem.location == location
    assert f"did you mean '{suggestion}'" in problem.message


def test_wrong_types_refused(baseline: dict[str, Any]) -> None:
    """Wrong types are refused field by field, all at once."""
    baseline["age"] = "fifty"
    baseline["failure"]["localized"] = [1]
    baseline["history"] = {"prior_bispecific": "CD20xCD3"}
    locations = {p.location for p in refuse(baseline).problems}
    assert locations == {"age", "failure.localized", "history.prior_bispecific"}


def test_missing_required_fields_refused(baseline: dict[str, Any]) -> None:
    """Missing required fields are each named."""
    del baseline["disease"]
    del baseline["failure"]["kind"]
    problems = refuse(baseline).problems
    assert {p.location for p in problems} == {"disease", "failure.kind"}
    assert all(p.got == "nothing" for p in problems)


def test_product_not_used_for_disease(baseline: dict[str, Any]) -> None:
    """ide-cel with LBCL is refused on car_t.product, saying what the product is used for."""
    baseline["car_t"]["product"] = "ide-cel"
    problems = refuse(baseline).problems
    assert problems[0].location == "car_t.product"
    assert "ide-cel is not used for LBCL" in problems[0].message
    assert problems[0].got == "ide-cel (used for MM)"


def test_target_must_agree_with_product(baseline: dict[str, Any]) -> None:
    """A stated target that disagrees with the product is refused on car_t.target."""
    baseline["car_t"]["target"] = "BCMA"
    (problem,) = refuse(baseline).problems
    assert (problem.location, problem.expected, problem.got) == ("car_t.target", "CD19", "BCMA")


def test_investigational_product_needs_target(baseline: dict[str, Any]) -> None:
    """An investigational product needs its target stated."""
    baseline["car_t"]["product"] = "investigational"
    (problem,) = refuse(baseline).problems
    assert problem.location == "car_t.target"
    baseline["car_t"]["target"] = "CD22"
    assert validate_situation(baseline).car_t.target == "CD22"


@pytest.mark.parametrize(("kind", "response"), [("primary_refractory", "CR"), ("primary_refractory", "PR"),
                                                ("relapse", "PD"), ("relapse", "SD")])
def test_failure_kind_must_agree_with_best_response(baseline: dict[str, Any], kind: str, response: str) -> None:
    """Primary refractory cannot follow a response, and a relapse needs one."""
    baseline["failure"]["kind"] = kind
    baseline["car_t"]["best_response"] = response
    (problem,) = refuse(baseline).problems
    assert problem.location == "failure.kind"
    assert response in problem.message


def test_several_problems_reported_together(baseline: dict[str, Any]) -> None:
    """Independent problems are all reported in one error."""
    baseline["age"] = 150
    baseline["fitness"]["ecog"] = -1
    baseline["car_t"]["product"] = "cilta-cel"
    error = refuse(baseline)
    assert {p.location for p in error.problems} == {"age", "fitness.ecog"}
    assert "2 problems" in str(error)


def test_not_a_mapping_refused() -> None:
    """A list where a situation belongs is refused, not crashed on."""
    (problem,) = refuse([1, 2]).problems  # type: ignore[arg-type]
    assert problem.got == "list"


def test_error_is_a_value_error(baseline: dict[str, Any]) -> None:
    """Callers may catch the built-in it really is."""
    baseline["age"] = -3
    with pytest.raises(ValueError, match="age"):
        validate_situation(baseline)


def test_json_schema_is_generated_with_descriptions() -> None:
    """The JSON Schema comes from the model and documents units and grading systems."""
    schema = PatientSituation.model_json_schema()
    json.dumps(schema)
    defs = schema["$defs"]
    assert "ASTCT" in defs["CarT"]["properties"]["max_icans_grade"]["description"]
    assert "ECOG" in defs["Fitness"]["properties"]["ecog"]["description"]
    assert schema["additionalProperties"] is False


def test_catalogue_and_flatten_agree(baseline: dict[str, Any]) -> None:
    """Every flattened fact is a catalogued field; unknown optional fields are omitted."""
    baseline["fitness"].pop("hct_ci")
    facts = flatten(validate_situation(baseline))
    assert set(facts) <= set(field_catalogue())
    assert "fitness.hct_ci" not in facts and facts["fitness.ecog"] == 1
    assert "patient_id" not in facts


def test_new_inputs_default_to_unknown(baseline: dict[str, Any]) -> None:
    """Response to salvage, MRD, histology, second antigens and disease biology are unknown unless given."""
    situation = validate_situation(baseline)
    assert situation.disease_status.response_to_salvage == "unknown"
    assert situation.disease_status.mrd == "unknown"
    assert situation.histology == "unknown"
    assert (situation.failure.cd22, situation.failure.gprc5d, situation.failure.cns_site) == ("unknown",) * 3
    assert situation.disease_status.richter_transformation is None
    assert situation.fitness.ecog_disease_related is False
    assert situation.history.prior_therapies == [] and situation.history.refractory_to == []


def test_histology_must_belong_to_the_disease(baseline: dict[str, Any]) -> None:
    """An FL grade given for an LBCL patient is refused, naming histology and the disease it belongs to."""
    baseline["histology"] = "FL_grade_3A"
    (problem,) = refuse(baseline).problems
    assert problem.location == "histology"
    assert "subtype of FL" in problem.message
    baseline["histology"] = "PMBCL"
    assert validate_situation(baseline).histology == "PMBCL"


@pytest.mark.parametrize(("path", "value"), [
    (("disease_status", "ph_positive"), True), (("disease_status", "richter_transformation"), False),
    (("disease_status", "high_risk_cytogenetics"), True), (("disease_status", "mrd"), "positive"),
    (("failure", "gprc5d"), "negative"),
])
def test_disease_specific_inputs_refused_for_another_disease(baseline: dict[str, Any], path: tuple[str, str],
                                                            value: Any) -> None:
    """A finding that describes another disease (Ph+ for an LBCL patient...) is refused by dotted path."""
    baseline.setdefault(path[0], {})[path[1]] = value
    (problem,) = refuse(baseline).problems
    assert problem.location == ".".join(path)
    assert "only" in problem.message


def test_cns_site_needs_cns_involvement(baseline: dict[str, Any]) -> None:
    """A CNS site without CNS involvement is refused; with it, accepted."""
    baseline["failure"]["cns_site"] = "leptomeningeal"
    (problem,) = refuse(baseline).problems
    assert problem.location == "failure.cns_site"
    baseline["failure"]["cns_involvement"] = True
    assert validate_situation(baseline).failure.cns_site == "leptomeningeal"


def test_prior_therapies_as_pairs_fill_both_lists(baseline: dict[str, Any]) -> None:
    """{agent_class, refractory} pairs become the received and refractory lists; refractory counts as received."""
    baseline["history"] = {"prior_therapies": [{"agent_class": "covalent_btk_inhibitor", "refractory": True},
                                               {"agent_class": "venetoclax", "refractory": False}]}
    history = validate_situation(baseline).history
    assert history.prior_therapies == ["covalent_btk_inhibitor", "venetoclax"]  # sorted: a set in meaning
    assert history.refractory_to == ["covalent_btk_inhibitor"]
    baseline["history"] = {"refractory_to": ["polatuzumab"]}
    facts = flatten(validate_situation(baseline))
    assert facts["history.prior_therapies"] == ("polatuzumab",)
    assert facts["history.refractory_to"] == ("polatuzumab",)
