"""Hypothesis strategies for FHIR input, shared by the mapping tests and the service's HTTP fuzzing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fhir" / "lbcl-late-relapse-fit-donor.json"

_JSON = st.recursive(st.none() | st.booleans() | st.integers(-10, 10**6) | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=6)


@st.composite
def mangled_bundles(draw: st.DrawFn) -> dict[str, Any]:
    """The example bundle with entries dropped and one element of one resource replaced by arbitrary JSON."""
    bundle = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    keep = draw(st.lists(st.booleans(), min_size=len(bundle["entry"]), max_size=len(bundle["entry"])))
    bundle["entry"] = [entry for entry, kept in zip(bundle["entry"], keep, strict=True) if kept] or bundle["entry"][:1]
    resource = draw(st.sampled_from(bundle["entry"]))["resource"]
    key = draw(st.sampled_from([*sorted(resource), "valueInteger", "effectiveDateTime", "status", "subject"]))
    resource[key] = draw(_JSON)
    return bundle


_READ_CODES = [("http://loinc.org", "89247-1"), ("http://loinc.org", "97509-4"),
               ("https://postcart.example/fhir/CodeSystem/situation-field", "failure.cd20"),
               ("https://postcart.example/fhir/CodeSystem/situation-field", "history.prior_bispecific"),
               ("https://postcart.example/fhir/CodeSystem/situation-field", "failure.kind")]
_NOT_THIS_PATIENT = st.sampled_from([
    None,  # no subject at all
    {"identifier": {"system": "https://mrn.example", "value": "MRN-1"}},
    {"display": "the patient in bed 4"},
    {"reference": "Patient/someone-else"},
    {"reference": "https://other-ehr.example/fhir/Patient/someone-else/_history/2"},
    {"reference": "urn:uuid:0f0e0d0c-0000-4000-8000-000000000001"},  # resolves to nothing in the prefetch
    {"reference": "Group/ward-4"},
    {"reference": "https://elsewhere.example/fhir/Patient/demo-lbcl-01"},  # the same id on another server
])


@st.composite
def stray_resources(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Bundle entries that must never be read as the patient's: a code postcart reads, with a value that would
    change the advice, but a subject that is not a reference to the patient in context."""
    entries = []
    for index in range(draw(st.integers(1, 4))):
        system, code = draw(st.sampled_from(_READ_CODES))
        kind = draw(st.sampled_from(["Observation", "Condition", "MedicationAdministration"]))
        resource: dict[str, Any] = {"resourceType": kind, "id": f"stray-{index}", "status": "final"}
        if kind == "Observation":
            resource.update(code={"coding": [{"system": system, "code": code}]}, effectiveDateTime="2025-12-14",
                            valueInteger=4)
        elif kind == "Condition":
            resource.update(code={"coding": [{"system": "http://snomed.info/sct", "code": "109989006"}]},
                            onsetDateTime="2025-12-01")
            resource.pop("status")
        else:
            resource.update(status="completed", effectiveDateTime="2025-11-01", medicationCodeableConcept={
                "coding": [{"system": "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "code": "Q2054"}]})
        subject = draw(_NOT_THIS_PATIENT)
        if subject is not None:
            resource["subject"] = subject
        entries.append({"resource": resource})
    return entries
