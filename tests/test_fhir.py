"""FHIR R4 -> PatientSituation: what the record says is read, what it does not say is never guessed."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings

from postcart import InvalidSituation, evaluate
from postcart.cds_hooks.fhir import (
    DISEASE_CODES,
    DISEASE_STATUS_LOINC,
    DISEASE_STATUS_VALUES,
    ECOG_LOINC,
    LOCAL_FIELD_SYSTEM,
    LOCAL_FIELDS,
    LOCAL_VALUE_SYSTEM,
    PRODUCT_CODES,
    NoCarTFailure,
    bundle_from_situation,
    situation_from_fhir,
)
from postcart.scenarios import load_scenarios
from postcart.situation import PatientSituation, validate_situation

from .fhir_strategies import mangled_bundles, stray_resources
from .strategies import patient_situations

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fhir" / "lbcl-late-relapse-fit-donor.json"
PATIENT = "demo-lbcl-01"


@pytest.fixture
def bundle() -> dict[str, Any]:
    """The shipped example bundle (equivalent of scenarios/lbcl.yaml lbcl-late-relapse-fit-donor)."""
    return json.loads(EXAMPLE.read_text(encoding="utf-8"))


def _without(bundle: dict[str, Any], *ids: str) -> dict[str, Any]:
    trimmed = copy.deepcopy(bundle)
    trimmed["entry"] = [entry for entry in trimmed["entry"] if entry["resource"].get("id") not in ids]
    return trimmed


def _resource(bundle: dict[str, Any], resource_id: str) -> dict[str, Any]:
    return next(entry["resource"] for entry in bundle["entry"] if entry["resource"].get("id") == resource_id)


def _observation(resource_id: str, path: str, date: str, **value: Any) -> dict[str, Any]:
    return {"resource": {"resourceType": "Observation", "id": resource_id, "status": "final",
                         "subject": {"reference": f"Patient/{PATIENT}"},
                         "code": {"coding": [{"system": LOCAL_FIELD_SYSTEM, "code": path}]},
                         "effectiveDateTime": date, **value}}


def _coded(value: str) -> dict[str, Any]:
    return {"valueCodeableConcept": {"coding": [{"system": LOCAL_VALUE_SYSTEM, "code": value}]}}


def _problems(error: pytest.ExceptionInfo[InvalidSituation]) -> dict[str, str]:
    return {problem.location: str(problem) for problem in error.value.problems}


def _scenario_situation(scenario_id: str) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "scenarios" / "lbcl.yaml").read_text(encoding="utf-8"))
    return next(entry["situation"] for entry in data["scenarios"] if entry["id"] == scenario_id)


def _same(mapped: PatientSituation, expected: PatientSituation) -> None:
    got, want = mapped.model_dump(), expected.model_dump()
    got["patient_id"] = want["patient_id"] = None
    for data in (got, want):  # a set in meaning: order and repeats do not matter
        data["history"]["prior_bispecific"] = sorted(set(data["history"]["prior_bispecific"]))
    assert got["failure"].pop("months_since_infusion") == pytest.approx(
        want["failure"].pop("months_since_infusion"), abs=0.05)
    assert got == want


def test_example_bundle_maps_to_the_equivalent_scenario(bundle: dict[str, Any]) -> None:
    """The shipped example bundle maps to the situation of its YAML scenario, field for field."""
    mapping = situation_from_fhir({"bundle": bundle}, PATIENT)
    _same(mapping.situation, validate_situation(_scenario_situation("lbcl-late-relapse-fit-donor")))
    assert mapping.reference_date == dt.date(2025, 12, 15)


def test_example_bundle_gives_the_scenario_verdicts(bundle: dict[str, Any], engine: Any) -> None:
    """Assessing the mapped bundle gives the same verdicts as assessing the YAML scenario."""
    from_fhir = evaluate(situation_from_fhir({"bundle": bundle}, PATIENT).situation, engine)
    from_yaml = evaluate(_scenario_situation("lbcl-late-relapse-fit-donor"), engine)
    assert {o.option: o.verdict for o in from_fhir.options} == {o.option: o.verdict for o in from_yaml.options}
    assert from_fhir.option("bispecific_antibody").verdict == "recommended"


def test_every_scenario_survives_the_round_trip_through_fhir(engine: Any) -> None:
    """Each bundled scenario, written as FHIR and read back, is the same situation with the same verdicts."""
    load = load_scenarios(ROOT / "scenarios")
    assert load.scenarios, "no scenarios found"
    for scenario in load.scenarios:
        bundle = bundle_from_situation(scenario.situation, dt.date(2025, 6, 30), "p1")
        mapped = situation_from_fhir({"bundle": bundle}, "p1").situation
        _same(mapped, scenario.situation)
        assert ({o.option: o.verdict for o in evaluate(mapped, engine).options}
                == {o.option: o.verdict for o in evaluate(scenario.situation, engine).options}), scenario.id


@settings(max_examples=150, deadline=None)
@given(situation=patient_situations())
def test_mapping_loses_nothing_the_record_states(situation: PatientSituation) -> None:
    """Any valid situation (every disease and product), written as FHIR, reads back unchanged (months to a day)."""
    bundle = bundle_from_situation(situation, dt.date(2024, 2, 29), "p7")
    _same(situation_from_fhir({"bundle": bundle}, "p7").situation, situation)


def test_missing_ecog_is_refused_naming_the_loinc_code(bundle: dict[str, Any]) -> None:
    """Without an ECOG observation the bundle is refused, naming fitness.ecog and LOINC 89247-1."""
    with pytest.raises(InvalidSituation) as error:
        situation_from_fhir({"bundle": _without(bundle, "ecog")}, PATIENT)
    assert "fitness.ecog" in _problems(error)
    assert ECOG_LOINC in _problems(error)["fitness.ecog"]


def test_missing_patient_condition_and_infusion_are_each_named(bundle: dict[str, Any]) -> None:
    """A bundle without Patient, disease or CAR-T infusion lists all three problems at once."""
    with pytest.raises(InvalidSituation) as error:
        situation_from_fhir({"bundle": _without(bundle, PATIENT, "dlbcl", "car-t-1")}, PATIENT)
    assert {"age", "disease", "car_t.product"} <= set(_problems(error))


def test_partial_birth_date_is_not_turned_into_an_age(bundle: dict[str, Any]) -> None:
    """A year-only birthDate is refused rather than rounded to an age."""
    _resource(bundle, PATIENT)["birthDate"] = "1967"
    with pytest.raises(InvalidSituation) as error:
        situation_from_fhir({"bundle": bundle}, PATIENT)
    assert "partial date" in _problems(error)["age"]


def test_age_is_computed_on_the_bundle_timestamp(bundle: dict[str, Any]) -> None:
    """The age is the age on Bundle.timestamp: one day before the birthday it is one year less."""
    bundle["timestamp"] = "2025-05-19T12:00:00Z"
    assert situation_from_fhir({"bundle": bundle}, PATIENT).situation.age == 57
    bundle["timestamp"] = "2025-05-20T12:00:00Z"
    assert situation_from_fhir({"bundle": bundle}, PATIENT).situation.age == 58


def test_an_ambiguous_disease_code_is_not_matched(bundle: dict[str, Any]) -> None:
    """ICD-10-CM C91.0 (ALL, B or T lineage) is not read as B-ALL: the disease is reported missing."""
    _resource(bundle, "dlbcl")["code"] = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C91.00"}]}
    with pytest.raises(InvalidSituation) as error:
        situation_from_fhir({"bundle": bundle}, PATIENT)
    assert "no Condition with a disease" in _problems(error)["disease"]


def test_icd10cm_subcode_is_read_by_its_verified_prefix(bundle: dict[str, Any]) -> None:
    """ICD-10-CM C83.38 (DLBCL, multiple sites) is read as LBCL."""
    _resource(bundle, "dlbcl")["code"] = {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "C83.38"}]}
    assert situation_from_fhir({"bundle": bundle}, PATIENT).situation.disease == "LBCL"


def test_two_diseases_are_refused(bundle: dict[str, Any]) -> None:
    """A record with both LBCL and multiple myeloma is refused: postcart does not pick one."""
    bundle["entry"].append({"resource": {"resourceType": "Condition", "id": "mm",
                                         "code": {"coding": [{"system": "http://snomed.info/sct", "code": "109989006"}]},
                                         "subject": {"reference": f"Patient/{PATIENT}"}}})
    with pytest.raises(InvalidSituation) as error:
        situation_from_fhir({"bundle": bundle}, PATIENT)
    assert "several active diseases" in _problems(error)["disease"]


def test_an_undocumented_optional_field_stays_unknown_and_is_noted(bundle: dict[str, Any]) -> None:
    """Without a CD20 observation, CD20 is unknown (not assumed positive) and the card notes say so."""
    mapping = situation_from_fhir({"bundle": _without(bundle, "cd20")}, PATIENT)
    assert mapping.situation.failure.cd20 == "unknown"
    assert any(note.field == "failure.cd20" and note.kind == "not_found" for note in mapping.notes)


def test_the_latest_observation_wins(bundle: dict[str, Any]) -> None:
    """Of two ECOG scores the most recent is used."""
    later = copy.deepcopy(_resource(bundle, "ecog"))
    later.update(id="ecog-later", effectiveDateTime="2025-12-14", valueInteger=3)
    bundle["entry"].append({"resource": later})
    assert situation_from_fhir({"bundle": bundle}, PATIENT).situation.fitness.ecog == 3


def test_conflicting_values_on_one_date(bundle: dict[str, Any]) -> None:
    """Two CD20 results on the same date leave CD20 unknown (noted); two ECOG scores are refused."""
    bundle["entry"].append(_observation("cd20-b", "failure.cd20", "2025-12-10", **_coded("negative")))
    mapping = situation_from_fhir({"bundle": bundle}, PATIENT)
    assert mapping.situation.failure.cd20 == "unknown"
    assert any(note.kind == "conflict" and note.field == "failure.cd20" for note in mapping.notes)
    rival = copy.deepcopy(_resource(bundle, "ecog"))
    rival.update(id="ecog-b", valueInteger=2)
    bundle["entry"].append({"resource": rival})
    with pytest.raises(InvalidSituation) as error:
        situation_from_fhir({"bundle": bundle}, PATIENT)
    assert "conflicting values" in _problems(error)["fitness.ecog"]


def test_resources_about_another_patient_are_not_read(bundle: dict[str, Any]) -> None:
    """An observation about another patient is ignored and noted, not mixed in."""
    other = _observation("cd20-other", "failure.cd20", "2025-12-13", **_coded("negative"))
    other["resource"]["subject"] = {"reference": "Patient/someone-else"}
    bundle["entry"].append(other)
    mapping = situation_from_fhir({"bundle": bundle}, PATIENT)
    assert mapping.situation.failure.cd20 == "positive"
    assert any("another patient" in note.message for note in mapping.notes)


def test_entered_in_error_observations_are_not_read(bundle: dict[str, Any]) -> None:
    """An observation entered in error does not count."""
    _resource(bundle, "cd20")["status"] = "entered-in-error"
    mapping = situation_from_fhir({"bundle": bundle}, PATIENT)
    assert mapping.situation.failure.cd20 == "unknown"
    assert any("entered-in-error" in note.message for note in mapping.notes)


def test_unread_resources_and_codes_are_listed(bundle: dict[str, Any]) -> None:
    """Resource types and observation codes postcart does not read are counted and listed, never silently dropped."""
    bundle["entry"].append({"resource": {"resourceType": "AllergyIntolerance", "id": "a1",
                                         "patient": {"reference": f"Patient/{PATIENT}"}}})
    bundle["entry"].append({"resource": {"resourceType": "Observation", "id": "hb", "status": "final",
                                         "subject": {"reference": f"Patient/{PATIENT}"}, "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                                         "valueQuantity": {"value": 11.2}}})
    bundle["entry"].append({"resource": {"resourceType": "Observation", "id": "hb2", "status": "final",
                                         "subject": {"reference": f"Patient/{PATIENT}"}, "code": {"coding": [{"system": "http://loinc.org", "code": "718-7"}]},
                                         "valueQuantity": {"value": 10.9}}})
    messages = [note.message for note in situation_from_fhir({"bundle": bundle}, PATIENT).notes]
    assert "1 resources of a type postcart does not read, not used: AllergyIntolerance" in messages
    assert "2 Observations with a code postcart does not read, not used: http://loinc.org|718-7" in messages


def test_a_value_outside_the_contract_is_refused(bundle: dict[str, Any]) -> None:
    """A CD20 value that is not one of the contract's values is refused, naming expected and got."""
    _resource(bundle, "cd20")["valueCodeableConcept"]["coding"][0]["code"] = "weak"
    with pytest.raises(InvalidSituation) as error:
        situation_from_fhir({"bundle": bundle}, PATIENT)
    text = _problems(error)["failure.cd20 (Observation/cd20)"]
    assert "positive, negative, unknown" in text and "weak" in text


def test_invalid_fhir_is_refused_naming_the_entry(bundle: dict[str, Any]) -> None:
    """An Observation with an invalid status is not valid FHIR R4: refused, naming the prefetch entry."""
    _resource(bundle, "ecog")["valueInteger"] = "one"
    with pytest.raises(InvalidSituation) as error:
        situation_from_fhir({"bundle": bundle}, PATIENT)
    (location, text), = _problems(error).items()
    assert location.startswith("prefetch.bundle") and "valueInteger" in text


def test_prefetch_values_that_are_not_resources_are_refused() -> None:
    """A prefetch value that is not a resource (a list, a typeless object) is refused, each named."""
    with pytest.raises(InvalidSituation) as error:
        situation_from_fhir({"a": [1], "b": {"id": "x"}, "c": {"resourceType": "NotAThing"}}, PATIENT)
    assert set(_problems(error)) == {"prefetch.a", "prefetch.b"}


def test_an_unknown_resource_type_is_listed_not_refused(bundle: dict[str, Any]) -> None:
    """A resource type postcart does not know is left out and listed; the call is still answered."""
    mapping = situation_from_fhir({"bundle": bundle, "odd": {"resourceType": "NotAThing", "id": "n"}}, PATIENT)
    assert "1 resources of a type postcart does not read, not used: NotAThing" in [n.message for n in mapping.notes]


def test_contradictory_record_is_refused_naming_the_fields(bundle: dict[str, Any]) -> None:
    """A relapse after a best response of progressive disease breaks the input contract: refused."""
    _resource(bundle, "best-response")["valueCodeableConcept"]["coding"][0]["code"] = "PD"
    with pytest.raises(InvalidSituation) as error:
        situation_from_fhir({"bundle": bundle}, PATIENT)
    assert "failure.kind" in _problems(error)


def test_infusions_after_the_failure_are_not_counted(bundle: dict[str, Any]) -> None:
    """Months are counted from the last infusion before the failure; later infusions are not counted."""
    later = copy.deepcopy(_resource(bundle, "car-t-1"))
    later.update(id="car-t-2", effectiveDateTime="2026-01-20")
    bundle["entry"].append({"resource": later})
    situation = situation_from_fhir({"bundle": bundle}, PATIENT).situation
    assert situation.car_t.infusions == 1
    assert situation.failure.months_since_infusion == pytest.approx(334 / (365.25 / 12))


def test_one_infusion_recorded_twice_counts_once(bundle: dict[str, Any]) -> None:
    """The same infusion as a MedicationAdministration and a Procedure, or in two prefetch keys, counts once."""
    procedure = {"resourceType": "Procedure", "id": "car-t-procedure", "status": "completed",
                 "subject": {"reference": f"Patient/{PATIENT}"}, "performedDateTime": "2025-01-10",
                 "code": {"coding": [{"system": LOCAL_FIELD_SYSTEM, "code": "car-t-infusion"}]},
                 "usedCode": [{"coding": [{"system": "https://postcart.example/fhir/CodeSystem/car-t-product",
                                           "code": "axi-cel"}]}]}
    administration = _resource(bundle, "car-t-1")
    mapping = situation_from_fhir({"bundle": bundle, "procedures": procedure, "again": administration}, PATIENT)
    assert mapping.situation.car_t.infusions == 1 and mapping.situation.car_t.product == "axi-cel"


def test_a_second_infusion_before_the_failure_is_counted(bundle: dict[str, Any]) -> None:
    """Two infusions on different dates before the failure count as two; months run from the later one."""
    second = copy.deepcopy(_resource(bundle, "car-t-1"))
    second.update(id="car-t-2", effectiveDateTime="2025-06-10")
    bundle["entry"].append({"resource": second})
    situation = situation_from_fhir({"bundle": bundle}, PATIENT).situation
    assert situation.car_t.infusions == 2
    assert situation.failure.months_since_infusion == pytest.approx(183 / (365.25 / 12))


def test_a_prefetch_the_ehr_could_not_fetch_is_noted(bundle: dict[str, Any]) -> None:
    """An OperationOutcome in place of a prefetch (CDS Hooks 2.0) is noted as data the EHR could not fetch."""
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    mapping = situation_from_fhir({"bundle": bundle, "procedures": outcome}, PATIENT)
    assert any("prefetch.procedures: the EHR reported" in note.message for note in mapping.notes)


def test_docs_list_every_code_read() -> None:
    """docs/fhir.md names every code the mapping reads, so the documentation cannot drift from the code."""
    text = (ROOT / "docs" / "fhir.md").read_text(encoding="utf-8")
    missing = [code for _, code in DISEASE_CODES if code not in text]
    missing += [path for path in LOCAL_FIELDS if f"`{path}`" not in text]
    missing += [code for code in (ECOG_LOINC, DISEASE_STATUS_LOINC, *DISEASE_STATUS_VALUES) if code not in text]
    missing += [code for system, code in PRODUCT_CODES if system != LOCAL_FIELD_SYSTEM and code not in text]
    assert not missing


@settings(max_examples=150, deadline=None)
@given(bundle=mangled_bundles())
def test_any_mangled_bundle_maps_or_is_refused_with_located_problems(bundle: dict[str, Any]) -> None:
    """Whatever the bundle holds, the mapping returns a situation or an InvalidSituation naming where: never a crash."""
    problems: list[Any] = []
    reason = "mapped"
    try:
        mapping = situation_from_fhir({"bundle": bundle}, PATIENT)
    except NoCarTFailure as nothing:  # the infusion or the failure was dropped: no guidance applies, it says why
        reason = nothing.reason
    except InvalidSituation as error:
        problems = error.problems
        assert problems, "an InvalidSituation must list its problems"
    else:
        assert isinstance(mapping.situation, PatientSituation)
    assert all(problem.location for problem in problems) and reason


# ---- patient safety: only this patient's data, nothing dropped silently --------------------------------

def _condition(resource_id: str, code: str, onset: str, clinical: str = "active", verification: str = "confirmed",
               system: str = "http://snomed.info/sct") -> dict[str, Any]:
    return {"resource": {"resourceType": "Condition", "id": resource_id, "subject": {"reference": f"Patient/{PATIENT}"},
                         "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                        "code": clinical}]},
                         "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                                            "code": verification}]},
                         "code": {"coding": [{"system": system, "code": code}]}, "onsetDateTime": onset}}


def test_an_observation_by_identifier_or_without_subject_is_not_read(bundle: dict[str, Any]) -> None:
    """Another patient's ECOG 4, given by identifier or without any subject, is left out and listed."""
    for index, subject in enumerate([{"identifier": {"system": "https://mrn.example", "value": "123"}}, None]):
        ecog = copy.deepcopy(_resource(bundle, "ecog"))
        ecog.update(id=f"ecog-stray-{index}", effectiveDateTime="2025-12-14", valueInteger=4)
        ecog.pop("subject")
        if subject:
            ecog["subject"] = subject
        bundle["entry"].append({"resource": ecog})
    mapping = situation_from_fhir({"bundle": bundle}, PATIENT)
    assert mapping.situation.fitness.ecog == 1
    messages = [note.message for note in mapping.notes]
    assert "Observation/ecog-stray-0: a subject given by identifier only, not by reference; not read, as it cannot " \
           "be tied to the patient in context" in messages
    assert any(message.startswith("Observation/ecog-stray-1: no subject") for message in messages)


def test_urn_uuid_subjects_resolve_to_the_patient_or_not(bundle: dict[str, Any]) -> None:
    """A subject urn:uuid that is the fullUrl of this Patient is read; one that resolves to nothing is not."""
    ecog = _resource(bundle, "ecog")
    ecog["subject"] = {"reference": "urn:uuid:patient-demo-lbcl-01"}  # the Patient entry's fullUrl
    assert situation_from_fhir({"bundle": bundle}, PATIENT).situation.fitness.ecog == 1
    ecog["subject"] = {"reference": "urn:uuid:somebody-else"}
    with pytest.raises(InvalidSituation) as error:
        situation_from_fhir({"bundle": bundle}, PATIENT)
    assert "fitness.ecog" in _problems(error)


def test_a_prior_bispecific_in_a_nested_bundle_or_a_contained_resource_is_read(bundle: dict[str, Any]) -> None:
    """A prior bispecific inside a nested Bundle, and one contained in another resource, both count."""
    nested = _observation("bispecific-nested", "history.prior_bispecific", "2024-06-01", **_coded("CD20xCD3"))
    contained = _observation("bispecific-contained", "history.prior_bispecific", "2024-07-01", **_coded("CD19xCD3"))
    bundle["entry"].append({"resource": {"resourceType": "Bundle", "type": "collection", "entry": [nested]}})
    bundle["entry"].append({"resource": {"resourceType": "DiagnosticReport", "id": "report", "status": "final",
                                         "code": {"text": "history"}, "contained": [contained["resource"]]}})
    situation = situation_from_fhir({"bundle": bundle}, PATIENT).situation
    assert sorted(situation.history.prior_bispecific) == ["CD19xCD3", "CD20xCD3"]


@pytest.mark.parametrize("status", ["provisional", "differential", "refuted", "entered-in-error"])
def test_an_unconfirmed_diagnosis_is_not_read(bundle: dict[str, Any], status: str) -> None:
    """A second disease that is provisional, differential, refuted or entered in error does not count."""
    bundle["entry"].append(_condition("mm", "109989006", "2025-10-01", verification=status))
    mapping = situation_from_fhir({"bundle": bundle}, PATIENT)
    assert mapping.situation.disease == "LBCL"
    assert any(f"verification status {status}" in note.message for note in mapping.notes)


def test_transformed_follicular_lymphoma_is_read_as_lbcl(bundle: dict[str, Any]) -> None:
    """FL (older, still active) and LBCL (newer): a transformation, assessed as LBCL, and noted; so with FL inactive."""
    bundle["entry"].append(_condition("fl", "308121000", "2018-03-01"))
    mapping = situation_from_fhir({"bundle": bundle}, PATIENT)
    assert mapping.situation.disease == "LBCL"
    assert any("FL transformed to LBCL" in note.message for note in mapping.notes)
    _resource(bundle, "fl")["clinicalStatus"]["coding"][0]["code"] = "resolved"
    mapping = situation_from_fhir({"bundle": bundle}, PATIENT)
    assert mapping.situation.disease == "LBCL" and any("FL with an inactive" in n.message for n in mapping.notes)


def test_cll_with_richter_transformation_is_read_as_lbcl(bundle: dict[str, Any]) -> None:
    """CLL (ICD-10-CM C91.10, older) with a newer DLBCL is a Richter transformation: assessed as LBCL."""
    bundle["entry"].append(_condition("cll", "C91.10", "2016-01-01", system="http://hl7.org/fhir/sid/icd-10-cm"))
    assert situation_from_fhir({"bundle": bundle}, PATIENT).situation.disease == "LBCL"


def test_lbcl_older_than_cll_is_still_two_diseases(bundle: dict[str, Any]) -> None:
    """A CLL diagnosed after the LBCL is not a transformation of it: refused as two active diseases."""
    bundle["entry"].append(_condition("cll", "92814006", "2025-11-01"))
    with pytest.raises(InvalidSituation) as error:
        situation_from_fhir({"bundle": bundle}, PATIENT)
    assert "several active diseases" in _problems(error)["disease"]


def _mcode(bundle: dict[str, Any], *statuses: tuple[str, str]) -> dict[str, Any]:
    """The example with its local best-response and failure observations replaced by mCODE disease statuses."""
    trimmed = _without(bundle, "best-response", "failure")
    for index, (date, code) in enumerate(statuses):
        trimmed["entry"].append({"resource": {
            "resourceType": "Observation", "id": f"status-{index}", "status": "final",
            "subject": {"reference": f"Patient/{PATIENT}"}, "effectiveDateTime": date,
            "code": {"coding": [{"system": "http://loinc.org", "code": DISEASE_STATUS_LOINC}]},
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": code}]}}})
    return trimmed


def test_mcode_disease_status_gives_response_and_failure(bundle: dict[str, Any]) -> None:
    """Full remission then worsening after the infusion: CR and relapse, months counted to the worsening."""
    mapping = situation_from_fhir({"bundle": _mcode(bundle, ("2024-12-01", "271299001"), ("2025-03-01", "103338009"),
                                                    ("2025-12-10", "271299001"))}, PATIENT)
    situation = mapping.situation
    assert (situation.car_t.best_response, situation.failure.kind) == ("CR", "relapse")
    assert situation.failure.months_since_infusion == pytest.approx(334 / (365.25 / 12))
    assert any(note.kind == "derived" and note.field == "car_t.best_response" for note in mapping.notes)


def test_progression_at_the_first_status_is_primary_refractory(bundle: dict[str, Any]) -> None:
    """Worsening as the first status after the infusion: best response PD, primary refractory."""
    situation = situation_from_fhir({"bundle": _mcode(bundle, ("2025-02-10", "271299001"))}, PATIENT).situation
    assert (situation.car_t.best_response, situation.failure.kind) == ("PD", "primary_refractory")


def test_no_progression_after_the_infusion_is_no_car_t_failure(bundle: dict[str, Any]) -> None:
    """A CAR-T in remission (improved, no worsening after it): no failure on record, no guidance applies."""
    with pytest.raises(NoCarTFailure, match="no progression"):
        situation_from_fhir({"bundle": _mcode(bundle, ("2025-03-01", "268910001"))}, PATIENT)


def test_no_car_t_on_record_is_no_car_t_failure(bundle: dict[str, Any]) -> None:
    """Without any CAR-T infusion and no failure observation, no guidance applies (not a refusal)."""
    with pytest.raises(NoCarTFailure, match="no completed, dated CAR-T infusion"):
        situation_from_fhir({"bundle": _without(bundle, "car-t-1", "failure")}, PATIENT)


@pytest.mark.parametrize(("system", "code", "product"), [
    ("http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "Q2054", "liso-cel"),
    ("http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "Q2042", "tisa-cel"),
])
def test_the_product_is_read_from_hcpcs(bundle: dict[str, Any], system: str, code: str, product: str) -> None:
    """A MedicationAdministration coded in HCPCS names the product."""
    _resource(bundle, "car-t-1")["medicationCodeableConcept"] = {"coding": [{"system": system, "code": code}]}
    assert situation_from_fhir({"bundle": bundle}, PATIENT).situation.car_t.product == product


def test_the_product_is_read_from_an_icd10pcs_procedure(bundle: dict[str, Any]) -> None:
    """A Procedure coded ICD-10-PCS XW033H7 (axi-cel) is the infusion; a generic XW033C3 needs the product elsewhere."""
    procedure = {"resourceType": "Procedure", "id": "car-t-pcs", "status": "completed",
                 "subject": {"reference": f"Patient/{PATIENT}"}, "performedDateTime": "2025-01-10",
                 "code": {"coding": [{"system": "http://www.cms.gov/Medicare/Coding/ICD10", "code": "XW033H7"}]}}
    trimmed = _without(bundle, "car-t-1")
    trimmed["entry"].append({"resource": procedure})
    assert situation_from_fhir({"bundle": trimmed}, PATIENT).situation.car_t.product == "axi-cel"
    procedure["code"]["coding"][0]["code"] = "XW033C3"
    with pytest.raises(InvalidSituation) as error:
        situation_from_fhir({"bundle": trimmed}, PATIENT)
    assert "does not name its product" in _problems(error)["car_t.product"]
    bundle["entry"].append({"resource": procedure})  # with the administration of the same day, the product is known
    assert situation_from_fhir({"bundle": bundle}, PATIENT).situation.car_t.infusions == 1


def test_a_medication_reference_resolves_by_fullurl_and_contained(bundle: dict[str, Any]) -> None:
    """medicationReference to a contained Medication (#id) or a Bundle entry's urn:uuid gives the product."""
    administration = _resource(bundle, "car-t-1")
    administration.pop("medicationCodeableConcept")
    administration["contained"] = [{"resourceType": "Medication", "id": "med",
                                    "code": {"coding": [{"system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                                                         "code": "Q2054"}]}}]
    administration["medicationReference"] = {"reference": "#med"}
    assert situation_from_fhir({"bundle": bundle}, PATIENT).situation.car_t.product == "liso-cel"
    administration.pop("contained")
    administration["medicationReference"] = {"reference": "urn:uuid:med-1"}
    bundle["entry"].append({"fullUrl": "urn:uuid:med-1", "resource": {
        "resourceType": "Medication", "code": {"coding": [{"system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
                                                           "code": "Q2041"}]}}})
    assert situation_from_fhir({"bundle": bundle}, PATIENT).situation.car_t.product == "axi-cel"


@settings(max_examples=80, deadline=None)
@given(strays=stray_resources())
def test_resources_not_tied_to_the_patient_never_change_the_situation(strays: list[dict[str, Any]]) -> None:
    """Whatever is added about someone else (or no one), the situation is the one of the patient's own record,
    and every addition is listed."""
    bundle = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    plain = situation_from_fhir({"bundle": bundle}, PATIENT).situation
    bundle["entry"] += strays
    mapping = situation_from_fhir({"bundle": bundle}, PATIENT)
    assert mapping.situation == plain
    listed = " ".join(note.message for note in mapping.notes)
    assert all(f"/{entry['resource']['id']}:" in listed for entry in strays)


def test_an_absolute_subject_on_another_server_is_not_read(bundle: dict[str, Any]) -> None:
    """Patient/<same id> on another FHIR server is another patient: read only on the hook's fhirServer."""
    _resource(bundle, "ecog")["subject"] = {"reference": f"https://ehr.example/fhir/Patient/{PATIENT}/_history/3"}
    assert situation_from_fhir({"bundle": bundle}, PATIENT, fhir_server="https://ehr.example/fhir/").situation.fitness.ecog == 1
    with pytest.raises(InvalidSituation) as error:
        situation_from_fhir({"bundle": bundle}, PATIENT, fhir_server="https://other-hospital.example/fhir")
    assert "fitness.ecog" in _problems(error)
