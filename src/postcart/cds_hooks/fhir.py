"""FHIR R4 -> ``PatientSituation``: read the resources an EHR sends and map what can be mapped, never guess.

The codes read are documented in ``docs/fhir.md``; the tables below are the single source of them.
Standard codes are used where one exists and could be verified (LOINC 89247-1 for ECOG, SNOMED CT and
ICD-10-CM for the diseases); every other fact is read from an Observation coded in postcart's own
CodeSystem (``LOCAL_FIELD_SYSTEM``, one code per situation field, its dotted path) with a value coded in
``LOCAL_VALUE_SYSTEM`` (the contract's enumeration values), an integer or a boolean.

What the bundle does not say becomes missing information: a required field that cannot be mapped is an
``InvalidSituation`` naming the field and the FHIR data expected; an optional one keeps the input
contract's default ("unknown", "false", none) and is listed in :attr:`FhirMapping.notes`, with every
resource or code that was not read. Patient data is never logged here.

Requires the ``service`` extra (``fhir.resources``, using its R4B package for R4 data).

It is one module because the code tables and the walk that reads them are one mapping, kept together so
that docs/fhir.md and the code cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from postcart.errors import InvalidSituation, Problem
from postcart.situation import FieldSpec, PatientSituation, field_catalogue, validate_situation

__all__ = [
    "CAR_T_PRODUCT_SYSTEM",
    "DISEASE_CODES",
    "ECOG_LOINC",
    "LOCAL_FIELDS",
    "LOCAL_FIELD_SYSTEM",
    "LOCAL_VALUE_SYSTEM",
    "FhirMapping",
    "Note",
    "bundle_from_situation",
    "collect_resources",
    "situation_from_fhir",
]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"

#: Project-local CodeSystems: no standard code exists (or none could be verified) for these concepts.
LOCAL_FIELD_SYSTEM = "https://postcart.example/fhir/CodeSystem/situation-field"
LOCAL_VALUE_SYSTEM = "https://postcart.example/fhir/CodeSystem/situation-value"
CAR_T_PRODUCT_SYSTEM = "https://postcart.example/fhir/CodeSystem/car-t-product"
CAR_T_INFUSION_CODE = "car-t-infusion"  # Procedure.code in LOCAL_FIELD_SYSTEM

#: ECOG performance status score (LOINC; the mCODE ECOG profile uses it with an integer value).
ECOG_LOINC = "89247-1"

#: Condition codes read as the disease: (system, code or ICD-10-CM prefix) -> disease. Verified codes
#: only; a code not listed here is reported, never matched by its text.
DISEASE_CODES: dict[tuple[str, str], tuple[str, str]] = {
    (SNOMED, "109969005"): ("LBCL", "Diffuse large B-cell malignant lymphoma (disorder)"),
    (SNOMED, "444910004"): ("LBCL", "Primary mediastinal (thymic) large B-cell lymphoma (disorder)"),
    (SNOMED, "308121000"): ("FL", "Follicular non-Hodgkin's lymphoma (disorder)"),
    (SNOMED, "443487006"): ("MCL", "Mantle cell lymphoma (disorder)"),
    (SNOMED, "277571004"): ("B_ALL", "B-cell acute lymphoblastic leukemia (disorder)"),
    (SNOMED, "109989006"): ("MM", "Multiple myeloma (disorder)"),
    (SNOMED, "92814006"): ("CLL", "Chronic lymphoid leukemia, disease (disorder)"),
    (SNOMED, "277473004"): ("CLL", "B-cell chronic lymphocytic leukemia (disorder)"),
    (ICD10CM, "C83.3"): ("LBCL", "Diffuse large B-cell lymphoma (C83.3x)"),
    (ICD10CM, "C90.0"): ("MM", "Multiple myeloma (C90.0x)"),
    (ICD10CM, "C91.1"): ("CLL", "Chronic lymphocytic leukemia of B-cell type (C91.1x)"),
}

#: Fields read from a FHIR element other than a LOCAL_FIELD_SYSTEM Observation.
_SPECIAL = {"patient_id", "age", "disease", "car_t.product", "car_t.infusions", "failure.months_since_infusion",
            "fitness.ecog"}

#: Situation fields read from Observations coded in LOCAL_FIELD_SYSTEM (code = the dotted field path).
LOCAL_FIELDS: tuple[str, ...] = tuple(path for path in field_catalogue() if path not in _SPECIAL)

_READ_STATUSES = {"final", "amended", "corrected"}
_MAX_CODES_SHOWN = 10
_DAYS_PER_MONTH = 365.25 / 12


@dataclass(frozen=True)
class Note:
    """Something in (or missing from) the record that postcart did not use, and what it did instead."""

    kind: Literal["not_read", "not_found", "conflict"]
    message: str
    field: str | None = None

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


@dataclass(frozen=True)
class FhirMapping:
    """The situation mapped from FHIR, and every item that could not be mapped."""

    situation: PatientSituation
    notes: tuple[Note, ...]
    reference_date: dt.date


@dataclass
class _Value:
    value: Any
    when: dt.date | None
    source: str


@dataclass
class _Reader:
    patient_id: str | None
    notes: list[Note] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    observations: dict[str, list[_Value]] = field(default_factory=dict)
    diseases: list[_Value] = field(default_factory=list)
    infusions: list[_Value] = field(default_factory=list)
    patients: list[Any] = field(default_factory=list)
    medications: dict[str, Any] = field(default_factory=dict)
    unread: dict[str, dict[str, int]] = field(default_factory=dict)  # what -> code -> count

    def skip(self, what: str, code: str) -> None:
        """Count a resource whose type or code postcart does not read (summarised in one note per kind)."""
        counts = self.unread.setdefault(what, {})
        counts[code] = counts.get(code, 0) + 1


def collect_resources(prefetch: Mapping[str, Any]) -> tuple[list[tuple[str, Any]], list[dt.datetime]]:
    """Parse every resource of a CDS Hooks prefetch (resources or Bundles) with ``fhir.resources`` R4B.

    Returns ``(where, resource)`` pairs and the timestamps of the Bundles.

    Raises:
        InvalidSituation: a prefetch value is not a FHIR resource, naming the prefetch key and entry.
    """
    resources: list[tuple[str, Any]] = []
    timestamps: list[dt.datetime] = []
    problems: list[Problem] = []
    for key, value in prefetch.items():
        if value is None:
            continue  # CDS Hooks: a prefetch the EHR could not satisfy is null
        where = f"prefetch.{key}"
        entries = value.get("entry") if isinstance(value, Mapping) and value.get("resourceType") == "Bundle" else None
        if isinstance(entries, list):
            # each entry's resource is validated on its own, so that a problem names its entry
            shell = dict(value)
            shell["entry"] = [{k: v for k, v in entry.items() if k != "resource"} if isinstance(entry, Mapping)
                              else entry for entry in entries]
            parsed = _parse(where, shell, problems)
            if parsed is None:
                continue
            if parsed.timestamp is not None:
                timestamps.append(parsed.timestamp)
            for index, entry in enumerate(entries):
                if isinstance(entry, Mapping) and entry.get("resource") is not None:
                    resource = _parse(f"{where}.entry[{index}]", entry["resource"], problems)
                    if resource is not None:
                        resources.append((f"{where}.entry[{index}]", resource))
            continue
        parsed = _parse(where, value, problems)
        if parsed is None:
            continue
        if parsed.__resource_type__ == "Bundle":
            if parsed.timestamp is not None:
                timestamps.append(parsed.timestamp)
        else:
            resources.append((where, parsed))
    if problems:
        raise InvalidSituation(problems, "FHIR prefetch")
    return resources, timestamps


def _parse(where: str, value: Any, problems: list[Problem]) -> Any:
    if not isinstance(value, Mapping):
        problems.append(Problem(where, "not a FHIR resource", "a JSON object with a resourceType",
                                type(value).__name__))
        return None
    kind = value.get("resourceType")
    if not isinstance(kind, str):
        problems.append(Problem(where, "missing resourceType", "a FHIR R4 resource", "no resourceType"))
        return None
    try:
        model = get_fhir_model_class(kind)
    except (ValueError, KeyError, AttributeError, TypeError):
        problems.append(Problem(where, "unknown FHIR resource type", "a FHIR R4 resource type", _short(kind)))
        return None
    try:
        return model.model_validate(dict(value))
    except ValidationError as error:
        first = error.errors(include_url=False)
        shown = "; ".join(f"{'.'.join(str(p) for p in item['loc'])}: {item['msg']}" for item in first[:3])
        more = f" (and {len(first) - 3} more)" if len(first) > 3 else ""
        problems.append(Problem(where, f"invalid FHIR R4 {kind}: {shown}{more}"))
    except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as error:
        problems.append(Problem(where, f"invalid FHIR R4 {kind}: {type(error).__name__}"))
    return None


def situation_from_fhir(prefetch: Mapping[str, Any], patient_id: str | None = None,
                        today: dt.date | None = None) -> FhirMapping:
    """Map a CDS Hooks prefetch (FHIR R4 resources or Bundles) to a validated ``PatientSituation``.

    Args:
        prefetch: prefetch key -> a FHIR resource or Bundle (JSON objects).
        patient_id: the hook context's patient id; resources about another patient are not read.
        today: the date ages are computed on; default, the latest Bundle.timestamp, else today (UTC).

    Raises:
        InvalidSituation: a resource is not valid FHIR, required data is missing or contradictory, or the
            mapped situation breaks the input contract; each problem names the field and the FHIR expected.
    """
    resources, timestamps = collect_resources(prefetch)
    if today is None:
        today = max(timestamps).date() if timestamps else dt.datetime.now(dt.UTC).date()
    reader = _Reader(patient_id)
    resources = _unique(resources)
    for _where, resource in resources:
        if resource.__resource_type__ == "Medication" and resource.id:
            reader.medications[f"Medication/{resource.id}"] = resource
    for where, resource in resources:
        _read(reader, where, resource)
    for what, counts in reader.unread.items():
        listed = sorted(counts, key=lambda code: (-counts[code], code))
        shown = ", ".join(listed[:_MAX_CODES_SHOWN]) + (f", and {len(listed) - _MAX_CODES_SHOWN} more codes"
                                                        if len(listed) > _MAX_CODES_SHOWN else "")
        reader.notes.append(Note("not_read", f"{sum(counts.values())} {what}, not used: {shown}"))
    data = _assemble(reader, today)
    if reader.problems:
        raise InvalidSituation(reader.problems, "FHIR prefetch")
    try:
        situation = validate_situation(data)
    except InvalidSituation as error:
        raise InvalidSituation(error.problems, "FHIR prefetch (mapped situation)") from None
    return FhirMapping(situation, tuple(reader.notes), today)


def _unique(resources: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """One copy of each resource (type and id): prefetch keys may overlap, e.g. a Patient in two of them."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for where, resource in resources:
        identity = getattr(resource, "id", None)
        if identity:
            key = (resource.__resource_type__, str(identity))
            if key in seen:
                continue
            seen.add(key)
        unique.append((where, resource))
    return unique


def _label(where: str, resource: Any) -> str:
    kind = resource.__resource_type__
    return f"{kind}/{resource.id}" if getattr(resource, "id", None) else f"{kind} at {where}"


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _codings(concept: Any) -> list[Any]:
    return list(getattr(concept, "coding", None) or []) if concept is not None else []


def _code_text(concept: Any) -> str:
    return _short(", ".join(f"{c.system}|{c.code}" for c in _codings(concept)) or "no coding")


def _about_other_patient(reader: _Reader, resource: Any) -> bool:
    subject = getattr(resource, "subject", None) or getattr(resource, "patient", None)
    reference = getattr(subject, "reference", None) if subject is not None else None
    if reader.patient_id is None or not reference:
        return False
    return str(reference).split("/_history")[0].rstrip("/").split("/")[-1] != reader.patient_id


def _date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return None


def _read(reader: _Reader, where: str, resource: Any) -> None:
    kind = resource.__resource_type__
    label = _label(where, resource)
    if kind == "Patient":
        if reader.patient_id is None or resource.id in (None, reader.patient_id):
            reader.patients.append((label, resource))
        else:
            reader.notes.append(Note("not_read", f"{label}: another patient than the hook's context; not read"))
        return
    if kind in ("Medication", "Bundle"):
        return
    if kind == "OperationOutcome":  # CDS Hooks 2.0: what the EHR sends for a prefetch it could not fetch
        reader.notes.append(Note("not_read", f"{where}: the EHR reported that it could not fetch this data "
                                 "(OperationOutcome)"))
        return
    if kind not in ("Observation", "Condition", "MedicationAdministration", "Procedure"):
        reader.skip("resources of a type postcart does not read", kind)
        return
    if _about_other_patient(reader, resource):
        reader.notes.append(Note("not_read", f"{label}: about another patient than the hook's context; not read"))
        return
    {"Observation": _read_observation, "Condition": _read_condition,
     "MedicationAdministration": _read_administration, "Procedure": _read_procedure}[kind](reader, label, resource)


def _read_condition(reader: _Reader, label: str, resource: Any) -> None:
    verification = [c.code for c in _codings(resource.verificationStatus)]
    if any(code in ("refuted", "entered-in-error") for code in verification):
        reader.notes.append(Note("not_read", f"{label}: verification status {verification[0]}; not read"))
        return
    for coding in _codings(resource.code):
        disease = _disease(str(coding.system or ""), str(coding.code or ""))
        if disease is not None:
            when = _date(resource.onsetDateTime) or _date(resource.recordedDate)
            reader.diseases.append(_Value(disease, when, label))
            return
    reader.skip("Conditions with a code that is not one of postcart's diseases", _code_text(resource.code))


def _disease(system: str, code: str) -> str | None:
    exact = DISEASE_CODES.get((system, code))
    if exact is not None:
        return exact[0]
    if system == ICD10CM:
        for (known_system, prefix), (disease, _) in DISEASE_CODES.items():
            if known_system == ICD10CM and code.startswith(prefix):
                return disease
    return None


def _product_of(reader: _Reader, concept: Any) -> str | None:
    allowed = field_catalogue()["car_t.product"].values
    for coding in _codings(concept):
        if coding.system == CAR_T_PRODUCT_SYSTEM and coding.code in allowed:
            return str(coding.code)
    return None


def _read_administration(reader: _Reader, label: str, resource: Any) -> None:
    concept = resource.medicationCodeableConcept
    if concept is None and resource.medicationReference is not None:
        medication = reader.medications.get(str(resource.medicationReference.reference or ""))
        concept = getattr(medication, "code", None)
    product = _product_of(reader, concept)
    if product is None:
        reader.skip(f"medication administrations that are not CAR-T (coded in {CAR_T_PRODUCT_SYSTEM})",
                    _code_text(concept))
        return
    when = _date(resource.effectiveDateTime) or _date(getattr(resource.effectivePeriod, "start", None))
    _record_infusion(reader, label, "CAR-T administration", resource.status, product, when)


def _read_procedure(reader: _Reader, label: str, resource: Any) -> None:
    if not any(c.system == LOCAL_FIELD_SYSTEM and c.code == CAR_T_INFUSION_CODE for c in _codings(resource.code)):
        reader.skip("Procedures with a code postcart does not read", _code_text(resource.code))
        return
    product = None
    for used in resource.usedCode or []:
        product = product or _product_of(reader, used)
    if product is None:
        reader.notes.append(Note("not_read", f"{label}: CAR-T infusion without a product in usedCode "
                                 f"({CAR_T_PRODUCT_SYSTEM}); not read", "car_t.product"))
        return
    when = _date(resource.performedDateTime) or _date(getattr(resource.performedPeriod, "start", None))
    _record_infusion(reader, label, "CAR-T infusion", resource.status, product, when)


def _record_infusion(reader: _Reader, label: str, kind: str, status: Any, product: str, when: Any) -> None:
    """Count a CAR-T infusion only when it was completed; note any other status as not read."""
    if status != "completed":
        reader.notes.append(Note("not_read", f"{label}: {kind} with status {status}; only completed infusions count"))
        return
    reader.infusions.append(_Value(product, when, label))


def _read_observation(reader: _Reader, label: str, resource: Any) -> None:
    path = None
    for coding in _codings(resource.code):
        if coding.system == LOINC and coding.code == ECOG_LOINC:
            path = "fitness.ecog"
        elif coding.system == LOCAL_FIELD_SYSTEM and coding.code in LOCAL_FIELDS:
            path = str(coding.code)
        if path:
            break
    if path is None:
        reader.skip("Observations with a code postcart does not read", _code_text(resource.code))
        return
    if resource.status not in _READ_STATUSES:
        reader.notes.append(Note("not_read", f"{label}: status {resource.status}; only final, amended or "
                                 "corrected observations are read", path))
        return
    spec = field_catalogue()[path]
    value = _observation_value(reader, label, path, spec, resource)
    if value is not None:
        when = _date(resource.effectiveDateTime) or _date(getattr(resource.effectivePeriod, "start", None))
        reader.observations.setdefault(path, []).append(_Value(value, when, label))


def _observation_value(reader: _Reader, label: str, path: str, spec: FieldSpec, resource: Any) -> Any:
    where = f"{path} ({label})"
    if spec.kind in ("enum", "set"):
        codes = [c.code for c in _codings(resource.valueCodeableConcept) if c.system == LOCAL_VALUE_SYSTEM]
        if not codes:
            reader.problems.append(Problem(where, "no coded value", f"valueCodeableConcept with a coding in "
                                           f"{LOCAL_VALUE_SYSTEM}: one of {', '.join(spec.values)}",
                                           _value_kind(resource)))
            return None
        if codes[0] not in spec.values:
            reader.problems.append(Problem(where, "value outside the field's values",
                                           "one of " + ", ".join(spec.values), _short(codes[0])))
            return None
        return codes[0]
    if spec.kind == "bool":
        if resource.valueBoolean is None:
            reader.problems.append(Problem(where, "no boolean value", "valueBoolean true or false",
                                           _value_kind(resource)))
            return None
        return bool(resource.valueBoolean)
    number: Any = resource.valueInteger
    if number is None and resource.valueQuantity is not None:
        number = resource.valueQuantity.value
    if isinstance(number, Decimal) and number == number.to_integral_value():
        number = int(number)
    if not isinstance(number, int) or isinstance(number, bool):
        reader.problems.append(Problem(where, "no integer value", "valueInteger (or a whole valueQuantity) "
                                       + spec.describe(), _value_kind(resource)))
        return None
    return number


def _value_kind(resource: Any) -> str:
    for name in ("valueCodeableConcept", "valueBoolean", "valueInteger", "valueQuantity", "valueString",
                 "valueDateTime", "valuePeriod", "valueRange", "valueRatio"):
        if getattr(resource, name, None) is not None:
            return name
    return "no value"


def _latest(reader: _Reader, path: str, values: list[_Value], required: bool) -> Any:
    """The most recent value; a tie between different values on the latest date is a conflict."""
    ordered = sorted(values, key=lambda item: item.when or dt.date.min)
    last = ordered[-1]
    rivals = {repr(item.value) for item in ordered if item.when == last.when}
    if len(rivals) > 1:
        sources = ", ".join(item.source for item in ordered if item.when == last.when)
        message = f"conflicting values recorded on the same date ({sources})"
        if required:
            reader.problems.append(Problem(path, message, "one value, or a most recent one", "several"))
        else:
            reader.notes.append(Note("conflict", message + "; left unknown", path))
        return None
    return last.value


def _assemble(reader: _Reader, today: dt.date) -> dict[str, Any]:
    data: dict[str, Any] = {}
    catalogue = field_catalogue()

    def put(path: str, value: Any) -> None:
        head, _, tail = path.partition(".")
        if tail:
            data.setdefault(head, {})[tail] = value
        else:
            data[head] = value

    # age, from Patient.birthDate on the reference date
    if not reader.patients:
        reader.problems.append(Problem("age", "no Patient resource for the hook's patient",
                                       "a Patient with birthDate (YYYY-MM-DD)", "nothing"))
    else:
        label, patient = reader.patients[0]
        birth = patient.birthDate
        if not isinstance(birth, dt.date):
            got = "a partial date" if birth else "nothing"
            reader.problems.append(Problem("age", f"{label}: birthDate missing or not a full date",
                                           "Patient.birthDate as YYYY-MM-DD", got))
        else:
            age = today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))
            put("age", age)

    # disease, from Condition
    diseases = {item.value for item in reader.diseases}
    if not diseases:
        reader.problems.append(Problem("disease", "no Condition with a disease postcart reads",
                                       "a Condition coded with one of the SNOMED CT / ICD-10-CM codes in "
                                       "docs/fhir.md", "nothing"))
    elif len(diseases) > 1:
        reader.problems.append(Problem("disease", "several diseases recorded ("
                                       + ", ".join(item.source for item in reader.diseases) + ")",
                                       "one disease the CAR-T treated", ", ".join(sorted(diseases))))
    else:
        put("disease", diseases.pop())

    # observations, latest value per field (union for list fields)
    for path in ("fitness.ecog", *LOCAL_FIELDS):
        spec = catalogue[path]
        values = reader.observations.get(path)
        required = not spec.optional and path in ("fitness.ecog", "car_t.best_response", "failure.kind")
        if values:
            value = (sorted({item.value for item in values}) if spec.kind == "set"
                     else _latest(reader, path, values, required))
            if value is not None:
                put(path, value)
                continue
            if required:
                continue
        elif required:
            system, code = (LOINC, ECOG_LOINC) if path == "fitness.ecog" else (LOCAL_FIELD_SYSTEM, path)
            reader.problems.append(Problem(path, "not found in the record", f"an Observation coded "
                                           f"{system}|{code} ({spec.title})", "nothing"))
            continue
        if path == "car_t.target":
            continue  # derived from the product by the input contract
        reader.notes.append(Note("not_found", "not documented in the record; "
                                 + _default_text(path), path))

    # CAR-T product, infusions and timing, from MedicationAdministration / Procedure and the failure date
    failures = reader.observations.get("failure.kind") or []
    failure_dates = [item.when for item in failures if item.when is not None]
    failure_date = max(failure_dates) if failure_dates else None
    if failures and failure_date is None:
        reader.problems.append(Problem("failure.months_since_infusion", "the failure observation has no date",
                                       "Observation.effectiveDateTime on the failure.kind observation",
                                       "nothing"))
    infusions = [item for item in reader.infusions
                 if item.when is not None and (failure_date is None or item.when <= failure_date)]
    undated = [item.source for item in reader.infusions if item.when is None]
    if undated:
        reader.notes.append(Note("not_read", "CAR-T infusion without a date, not counted: " + ", ".join(undated),
                                 "car_t.infusions"))
    if not infusions:
        reader.problems.append(Problem("car_t.product", "no completed, dated CAR-T infusion before the failure",
                                       "a MedicationAdministration (or Procedure) coded in "
                                       f"{CAR_T_PRODUCT_SYSTEM} with its date", "nothing"))
    else:
        infusions.sort(key=lambda item: item.when or dt.date.min)
        last = infusions[-1]
        same_day = {item.value for item in infusions if item.when == last.when}
        if len(same_day) > 1:
            reader.problems.append(Problem("car_t.product", "different CAR-T products on the same date",
                                           "one product", ", ".join(sorted(same_day))))
        else:
            put("car_t.product", last.value)
            # one infusion per date: an EHR may record the same infusion as a MedicationAdministration and a Procedure
            put("car_t.infusions", len({item.when for item in infusions}))
            if failure_date is not None and last.when is not None:
                put("failure.months_since_infusion", (failure_date - last.when).days / _DAYS_PER_MONTH)
    return data


def _default_text(path: str) -> str:
    spec = field_catalogue()[path]
    if spec.kind == "set":
        return "none assumed (empty list, the input contract's default)"
    if spec.optional:
        return "left unknown"
    if spec.kind == "bool":
        return "the input contract's default (false) was used"
    return "left unknown" if "unknown" in spec.values or "undecided" in spec.values else "the default was used"


def describe_notes(notes: Iterable[Note]) -> list[str]:
    """Notes as lines for a clinician, grouped: conflicts, not documented, not read."""
    order = {"conflict": 0, "not_found": 1, "not_read": 2}
    return [str(note) for note in sorted(notes, key=lambda note: order[note.kind])]


def bundle_from_situation(situation: PatientSituation, reference_date: dt.date, patient_id: str = "example",
                          disease_code: tuple[str, str] | None = None) -> dict[str, Any]:
    """A FHIR R4 collection Bundle that :func:`situation_from_fhir` maps back to ``situation``.

    For example bundles, tests and benchmarks: the dates are synthetic (failure five days before
    ``reference_date``, the infusion ``months_since_infusion`` earlier, to the day), so the months read back
    agree to within a day. Fields at the input contract's default are left out, as a record would.
    """
    subject = {"reference": f"Patient/{patient_id}"}
    failure_date = reference_date - dt.timedelta(days=5)
    infusion_date = failure_date - dt.timedelta(days=round(situation.failure.months_since_infusion * _DAYS_PER_MONTH))
    # a birthday on or before the reference date's day of the month: the age on that date is exact
    birth = dt.date(reference_date.year - situation.age, reference_date.month, min(reference_date.day, 28))
    system, code = disease_code or next(key for key, (name, _) in DISEASE_CODES.items()
                                        if name == situation.disease and key[0] == SNOMED)
    entries: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": patient_id, "birthDate": birth.isoformat()},
        {"resourceType": "Condition", "id": "disease", "subject": subject,
         "code": {"coding": [{"system": system, "code": code, "display": DISEASE_CODES[(system, code)][1]}]}},
    ]
    for number in range(situation.car_t.infusions):
        # earlier infusions of the same product, a year apart, before the one that failed
        when = infusion_date - dt.timedelta(days=365 * (situation.car_t.infusions - 1 - number))
        entries.append({"resourceType": "MedicationAdministration", "id": f"car-t-{number + 1}",
                        "status": "completed", "subject": subject, "effectiveDateTime": when.isoformat(),
                        "medicationCodeableConcept": {"coding": [{"system": CAR_T_PRODUCT_SYSTEM,
                                                                  "code": situation.car_t.product}]}})
    data = situation.model_dump(mode="json")
    defaults = PatientSituation.model_validate({
        "age": situation.age, "disease": situation.disease, "car_t": {"product": situation.car_t.product,
        "best_response": situation.car_t.best_response, "target": situation.car_t.target},
        "failure": {"kind": situation.failure.kind, "months_since_infusion": 0}, "fitness": {"ecog": 0},
    }).model_dump(mode="json")
    for path in ("fitness.ecog", *LOCAL_FIELDS):
        head, _, tail = path.partition(".")
        value = data[head][tail] if tail else data[head]
        default = defaults[head][tail] if tail else defaults[head]
        required = path in ("fitness.ecog", "car_t.best_response", "failure.kind")
        if path == "car_t.target":  # derived from an approved product; stated for an investigational one
            required = situation.car_t.product == "investigational"
            if not required:
                continue
        if value is None or (value == default and not required):
            continue
        code_system, code_value = (LOINC, ECOG_LOINC) if path == "fitness.ecog" else (LOCAL_FIELD_SYSTEM, path)
        spec = field_catalogue()[path]
        values = value if spec.kind == "set" else [value]
        for index, item in enumerate(values):
            observation: dict[str, Any] = {
                "resourceType": "Observation", "id": f"{path.replace('.', '-').replace('_', '-')}-{index}",
                "status": "final", "subject": subject, "code": {"coding": [{"system": code_system, "code": code_value}]},
                "effectiveDateTime": (failure_date if path == "failure.kind" else reference_date).isoformat(),
            }
            if spec.kind in ("enum", "set"):
                observation["valueCodeableConcept"] = {"coding": [{"system": LOCAL_VALUE_SYSTEM, "code": item}]}
            elif spec.kind == "bool":
                observation["valueBoolean"] = item
            else:
                observation["valueInteger"] = item
            entries.append(observation)
    return {"resourceType": "Bundle", "type": "collection",
            "timestamp": f"{reference_date.isoformat()}T09:00:00Z",
            "entry": [{"fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, repr(entry))}", "resource": entry}
                      for entry in entries]}
