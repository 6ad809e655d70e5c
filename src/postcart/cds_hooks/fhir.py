"""FHIR R4 -> ``PatientSituation``: read the resources an EHR sends and map what can be mapped, never guess.

The codes read are documented in ``docs/fhir.md`` (each with where it was verified); the tables below are
the single source of them. Standard codes are read where one exists and could be verified: LOINC 89247-1
for ECOG, the mCODE CancerDiseaseStatus (LOINC 97509-4) for response and progression, SNOMED CT and
ICD-10-CM for the diseases, HCPCS and ICD-10-PCS for the CAR-T product. Every other fact is read from an
Observation coded in postcart's own CodeSystem (``LOCAL_FIELD_SYSTEM``, one code per situation field, its
dotted path) with a value coded in ``LOCAL_VALUE_SYSTEM``, an integer or a boolean.

Patient safety first: a resource is read only when its ``subject`` is a reference to the patient in the
hook's context (``Patient/<id>``, an absolute URL ending so, or a ``urn:uuid`` fullUrl / contained reference
that resolves to that Patient). A subject given by identifier only, no subject, another patient, a resource
type or code postcart does not read: each is left out and listed in :attr:`FhirMapping.notes`, never a
reason to refuse the call and never mixed in. Nested Bundles and contained resources are walked.

Only the elements read are parsed (plain JSON, no full FHIR validation): an element read that is not what
FHIR R4 says it is (``valueInteger: "one"``) is a :class:`~postcart.errors.Problem` naming the entry.
A record with no CAR-T failure raises :class:`NoCarTFailure` (the service answers it with no cards).
Patient data is never logged here.

It is one module because the code tables and the walk that reads them are one mapping, kept together so
that docs/fhir.md and the code cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from postcart.errors import InvalidSituation, Problem
from postcart.situation import FieldSpec, PatientSituation, field_catalogue, validate_situation

__all__ = [
    "CAR_T_PRODUCT_SYSTEM",
    "DISEASE_CODES",
    "DISEASE_STATUS_LOINC",
    "DISEASE_STATUS_VALUES",
    "ECOG_LOINC",
    "LOCAL_FIELDS",
    "LOCAL_FIELD_SYSTEM",
    "LOCAL_VALUE_SYSTEM",
    "PRODUCT_CODES",
    "FhirMapping",
    "NoCarTFailure",
    "Note",
    "bundle_from_situation",
    "collect_resources",
    "situation_from_fhir",
]

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
ICD10PCS = "http://www.cms.gov/Medicare/Coding/ICD10"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

#: Project-local CodeSystems: no standard code exists (or none could be verified) for these concepts.
LOCAL_FIELD_SYSTEM = "https://postcart.example/fhir/CodeSystem/situation-field"
LOCAL_VALUE_SYSTEM = "https://postcart.example/fhir/CodeSystem/situation-value"
CAR_T_PRODUCT_SYSTEM = "https://postcart.example/fhir/CodeSystem/car-t-product"
CAR_T_INFUSION_CODE = "car-t-infusion"  # Procedure.code in LOCAL_FIELD_SYSTEM

#: ECOG performance status score (LOINC; the mCODE ECOG profile uses it with an integer value).
ECOG_LOINC = "89247-1"

#: mCODE CancerDiseaseStatus: Observation.code LOINC 97509-4, value from the condition status trend value
#: sets (SNOMED CT). The meaning postcart gives each value; "undetermined" and metastasis are not read.
DISEASE_STATUS_LOINC = "97509-4"
DISEASE_STATUS_VALUES: dict[str, tuple[str, str]] = {
    "268910001": ("improved", "Patient's condition improved (finding)"),
    "359746009": ("stable", "Patient's condition stable (finding)"),
    "271299001": ("worsened", "Patient's condition worsened (finding)"),
    "709137006": ("undetermined", "Patient condition undetermined (finding)"),
    "103338009": ("full_remission", "In full remission (qualifier value)"),
    "550991000124107": ("full_remission", "Malignant neoplasm in full remission (disorder)"),
    "103337004": ("partial_remission", "In partial remission (qualifier value)"),
    "551001000124108": ("partial_remission", "Malignant neoplasm in partial remission (disorder)"),
}
#: The best response a disease status stands for (after the infusion, before the failure), best first.
_STATUS_RESPONSE = {"full_remission": "CR", "partial_remission": "PR", "improved": "PR", "stable": "SD"}

#: Condition codes read as the disease: (system, code or ICD-10-CM prefix) -> disease. Verified codes
#: only; a code not listed here is reported, never matched by its text.
DISEASE_CODES: dict[tuple[str, str], tuple[str, str]] = {
    (SNOMED, "109969005"): ("LBCL", "Diffuse large B-cell malignant lymphoma (disorder)"),
    (SNOMED, "444910004"): ("LBCL", "Primary mediastinal (thymic) large B-cell lymphoma (disorder)"),
    (SNOMED, "1172704005"): ("LBCL", "High grade B-cell lymphoma with MYC and BCL2 and/or BCL6 rearrangements "
                                     "(disorder)"),
    (SNOMED, "308121000"): ("FL", "Follicular non-Hodgkin's lymphoma (disorder)"),
    (SNOMED, "443487006"): ("MCL", "Mantle cell lymphoma (disorder)"),
    (SNOMED, "277571004"): ("B_ALL", "B-cell acute lymphoblastic leukemia (disorder)"),
    (SNOMED, "109989006"): ("MM", "Multiple myeloma (disorder)"),
    (SNOMED, "94704006"): ("MM", "Multiple myeloma in remission (disorder)"),
    (SNOMED, "92814006"): ("CLL", "Chronic lymphoid leukemia, disease (disorder)"),
    (SNOMED, "277473004"): ("CLL", "B-cell chronic lymphocytic leukemia (disorder)"),
    (ICD10CM, "C83.3"): ("LBCL", "Diffuse large B-cell lymphoma (C83.3x)"),
    (ICD10CM, "C85.2"): ("LBCL", "Mediastinal (thymic) large B-cell lymphoma (C85.2x)"),
    (ICD10CM, "C83.1"): ("MCL", "Mantle cell lymphoma (C83.1x)"),
    (ICD10CM, "C90.0"): ("MM", "Multiple myeloma (C90.0x)"),
    (ICD10CM, "C91.1"): ("CLL", "Chronic lymphocytic leukemia of B-cell type (C91.1x)"),
}
#: Disease pairs read as a transformation when both are active and the second is the newer: transformed
#: FL and CLL with Richter transformation are assessed as the large B-cell lymphoma they became.
_TRANSFORMATIONS = {("FL", "LBCL"), ("CLL", "LBCL")}

#: Codes naming a CAR-T infusion: (system, code) -> the product (None: a CAR-T infusion, product not named).
#: HCPCS in MedicationAdministration / Medication.code / Procedure.code or usedCode; ICD-10-PCS in Procedure.code.
PRODUCT_CODES: dict[tuple[str, str], str | None] = {
    (HCPCS, "Q2041"): "axi-cel",
    (HCPCS, "Q2042"): "tisa-cel",
    (HCPCS, "Q2053"): "brexu-cel",
    (HCPCS, "Q2054"): "liso-cel",
    (HCPCS, "Q2055"): "ide-cel",
    (HCPCS, "Q2056"): "cilta-cel",
    (HCPCS, "Q2058"): "obe-cel",
    (ICD10PCS, "XW033H7"): "axi-cel", (ICD10PCS, "XW043H7"): "axi-cel",
    (ICD10PCS, "XW033J7"): "tisa-cel", (ICD10PCS, "XW043J7"): "tisa-cel",
    (ICD10PCS, "XW033K7"): "ide-cel", (ICD10PCS, "XW043K7"): "ide-cel",
    (ICD10PCS, "XW033M7"): "brexu-cel", (ICD10PCS, "XW043M7"): "brexu-cel",
    (ICD10PCS, "XW23346"): "brexu-cel", (ICD10PCS, "XW24346"): "brexu-cel",
    (ICD10PCS, "XW23376"): "liso-cel", (ICD10PCS, "XW24376"): "liso-cel",
    (ICD10PCS, "XW033A7"): "cilta-cel", (ICD10PCS, "XW043A7"): "cilta-cel",
    (ICD10PCS, "XW033C3"): None, (ICD10PCS, "XW043C3"): None,  # engineered autologous CAR-T, product not named
    (SNOMED, "1156961008"): None,  # Chimeric antigen receptor T-cell immunotherapy (procedure), product not named
    (LOCAL_FIELD_SYSTEM, CAR_T_INFUSION_CODE): None,
}

#: Fields read from a FHIR element other than a LOCAL_FIELD_SYSTEM Observation.
_SPECIAL = {"patient_id", "age", "disease", "car_t.product", "car_t.infusions", "failure.months_since_infusion",
            "fitness.ecog"}

#: Situation fields read from Observations coded in LOCAL_FIELD_SYSTEM (code = the dotted field path).
LOCAL_FIELDS: tuple[str, ...] = tuple(path for path in field_catalogue() if path not in _SPECIAL)

#: The resource types read; any other is listed and left out.
READ_TYPES = ("Patient", "Condition", "Observation", "MedicationAdministration", "Procedure", "Medication")

_READ_STATUSES = {"final", "amended", "corrected"}
_NOT_VERIFIED = {"unconfirmed", "provisional", "differential", "refuted", "entered-in-error"}
_INACTIVE = {"inactive", "remission", "resolved"}
_MAX_CODES_SHOWN = 10
_MAX_DEPTH = 6
_DAYS_PER_MONTH = 365.25 / 12
_DATE = re.compile(r"^(\d{4})(-(\d{2})(-(\d{2})(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$")


class NoCarTFailure(LookupError):
    """The record holds no CAR-T failure (no CAR-T infusion, or no failure after it): no guidance applies."""

    def __init__(self, reason: str, notes: tuple[Note, ...] = ()) -> None:
        super().__init__(reason)
        self.reason = reason
        self.notes = notes


@dataclass(frozen=True)
class Note:
    """Something in (or missing from) the record that postcart did not use, or read indirectly."""

    kind: Literal["not_read", "not_found", "conflict", "derived"]
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


@dataclass(frozen=True)
class Entry:
    """One resource of the prefetch: where it is, its JSON, its Bundle fullUrl and its container (if any)."""

    where: str
    resource: Mapping[str, Any]
    full_url: str | None = None
    container: Mapping[str, Any] | None = None

    @property
    def kind(self) -> str:
        return str(self.resource.get("resourceType"))

    @property
    def label(self) -> str:
        identity = self.resource.get("id")
        return f"{self.kind}/{_short(identity)}" if isinstance(identity, str) and identity else f"{self.kind} at {self.where}"


@dataclass
class _Value:
    value: Any
    when: dt.date | None
    source: str


@dataclass
class _Reader:
    patient_id: str | None
    full_urls: dict[str, Entry]
    servers: set[str]  # FHIR base URLs the prefetch comes from: absolute references elsewhere are not read
    notes: list[Note] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    observations: dict[str, list[_Value]] = field(default_factory=dict)
    disease_status: list[_Value] = field(default_factory=list)
    diseases: list[tuple[_Value, bool]] = field(default_factory=list)  # (disease, active)
    infusions: list[_Value] = field(default_factory=list)  # value: product or None
    patients: list[Entry] = field(default_factory=list)
    medications: dict[str, Entry] = field(default_factory=dict)
    unread: dict[str, dict[str, int]] = field(default_factory=dict)  # what -> code -> count
    present: dict[str, int] = field(default_factory=dict)  # resource type -> count, about this patient
    not_linked: list[str] = field(default_factory=list)

    def skip(self, what: str, code: str) -> None:
        """Count a resource whose type or code postcart does not read (summarised in one note per kind)."""
        counts = self.unread.setdefault(what, {})
        counts[code] = counts.get(code, 0) + 1

    def invalid(self, entry: Entry, element: str, expected: str) -> None:
        self.problems.append(Problem(entry.where, f"invalid FHIR R4 {entry.kind}: {element}: not {expected}",
                                     expected))


def collect_resources(prefetch: Mapping[str, Any]) -> tuple[list[Entry], list[dt.datetime]]:
    """Every resource of a CDS Hooks prefetch: Bundles walked (nested ones too), contained resources listed.

    Returns the entries and the timestamps of the Bundles.

    Raises:
        InvalidSituation: a prefetch value is not a FHIR resource, naming the prefetch key and entry.
    """
    entries: list[Entry] = []
    timestamps: list[dt.datetime] = []
    problems: list[Problem] = []
    for key, value in prefetch.items():
        if value is None:
            continue  # CDS Hooks: a prefetch the EHR could not satisfy is null
        _walk(f"prefetch.{key}", value, None, None, entries, timestamps, problems, 0)
    if problems:
        raise InvalidSituation(problems, "FHIR prefetch")
    return entries, timestamps


def _walk(where: str, value: Any, full_url: str | None, container: Mapping[str, Any] | None,
          entries: list[Entry], timestamps: list[dt.datetime], problems: list[Problem], depth: int) -> None:
    if not isinstance(value, Mapping):
        problems.append(Problem(where, "not a FHIR resource", "a JSON object with a resourceType",
                                type(value).__name__))
        return
    kind = value.get("resourceType")
    if not isinstance(kind, str) or not kind:
        problems.append(Problem(where, "missing resourceType", "a FHIR R4 resource", "no resourceType"))
        return
    if depth > _MAX_DEPTH:
        problems.append(Problem(where, f"Bundles or contained resources nested more than {_MAX_DEPTH} deep",
                                f"at most {_MAX_DEPTH} levels", "deeper"))
        return
    if kind == "Bundle":
        stamp = value.get("timestamp")
        if stamp is not None:
            when = _instant(stamp)
            if when is None:
                problems.append(Problem(where, "invalid FHIR R4 Bundle: timestamp: not an instant",
                                        "an instant such as 2025-12-15T09:00:00Z", _short(stamp)))
            else:
                timestamps.append(when)
        items = value.get("entry", [])
        if not isinstance(items, list):
            problems.append(Problem(where, "invalid FHIR R4 Bundle: entry: not a list", "a list of entries",
                                    type(items).__name__))
            return
        for index, item in enumerate(items):
            place = f"{where}.entry[{index}]"
            if not isinstance(item, Mapping):
                problems.append(Problem(place, "invalid FHIR R4 Bundle entry", "a JSON object", type(item).__name__))
                continue
            resource = item.get("resource")
            if resource is None:
                continue  # an entry without a resource (e.g. a search's OperationOutcome link) holds no data
            url = item.get("fullUrl")
            _walk(place, resource, url if isinstance(url, str) else None, None, entries, timestamps, problems,
                  depth + 1)
        return
    entries.append(Entry(where, value, full_url, container))
    contained = value.get("contained")
    if isinstance(contained, list):
        for index, item in enumerate(contained):
            _walk(f"{where}.contained[{index}]", item, None, value, entries, timestamps, problems, depth + 1)
    elif contained is not None:
        problems.append(Problem(where, f"invalid FHIR R4 {kind}: contained: not a list", "a list of resources",
                                type(contained).__name__))


def situation_from_fhir(prefetch: Mapping[str, Any], patient_id: str | None = None,
                        today: dt.date | None = None, fhir_server: str | None = None) -> FhirMapping:
    """Map a CDS Hooks prefetch (FHIR R4 resources or Bundles) to a validated ``PatientSituation``.

    Args:
        prefetch: prefetch key -> a FHIR resource or Bundle (JSON objects).
        patient_id: the hook context's patient id; only resources whose subject references this patient are
            read. Without it, the one Patient of the prefetch is the patient in context.
        today: the date ages are computed on; default, the latest Bundle.timestamp, else today (UTC).
        fhir_server: the hook's ``fhirServer``: an absolute subject reference is read only when it is on this
            server or on the server of a Bundle entry's fullUrl (another server's Patient/<id> is another patient).

    Raises:
        NoCarTFailure: no completed CAR-T infusion, or no failure after it, is on record.
        InvalidSituation: an element read is not valid FHIR, required data is missing or contradictory, or
            the mapped situation breaks the input contract; each problem names the field and the FHIR expected
            and says what the record held instead.
    """
    entries, timestamps = collect_resources(prefetch)
    if today is None:
        today = max(timestamps).date() if timestamps else dt.datetime.now(dt.UTC).date()
    entries = _unique(entries)
    if patient_id is None:
        ids = {str(e.resource.get("id")) for e in entries if e.kind == "Patient" and e.container is None}
        patient_id = ids.pop() if len(ids) == 1 else None
    full_urls = {entry.full_url: entry for entry in entries if entry.full_url}
    servers = {url.rstrip("/") for url in [fhir_server] if url}
    servers |= {url.rsplit("/", 2)[0] for url in full_urls if url.startswith(("http://", "https://"))}
    reader = _Reader(patient_id, full_urls, servers)
    for entry in entries:
        if entry.kind == "Medication":
            _register_medication(reader, entry)
    for entry in entries:
        _read(reader, entry)
    for what, counts in reader.unread.items():
        listed = sorted(counts, key=lambda code: (-counts[code], code))
        shown = ", ".join(listed[:_MAX_CODES_SHOWN]) + (f", and {len(listed) - _MAX_CODES_SHOWN} more codes"
                                                        if len(listed) > _MAX_CODES_SHOWN else "")
        reader.notes.append(Note("not_read", f"{sum(counts.values())} {what}, not used: {shown}"))
    if reader.problems:  # elements that are not valid FHIR: refused before anything is concluded
        raise InvalidSituation(reader.problems, "FHIR prefetch")
    data = _assemble(reader, today)
    if reader.problems:
        raise InvalidSituation(reader.problems, "FHIR prefetch")
    try:
        situation = validate_situation(data)
    except InvalidSituation as error:
        raise InvalidSituation(error.problems, "FHIR prefetch (mapped situation)") from None
    return FhirMapping(situation, tuple(reader.notes), today)


def _unique(entries: list[Entry]) -> list[Entry]:
    """One copy of each resource (type and id): prefetch keys may overlap, e.g. a Patient in two of them."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for entry in entries:
        identity = entry.resource.get("id")
        if isinstance(identity, str) and identity and entry.container is None:
            key = (entry.kind, identity)
            if key in seen:
                continue
            seen.add(key)
        unique.append(entry)
    return unique


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _codings(reader: _Reader, entry: Entry, element: str, concept: Any) -> list[tuple[str, str]]:
    """(system, code) pairs of a CodeableConcept; a malformed one is a problem, an absent one is empty."""
    if concept is None:
        return []
    if not isinstance(concept, Mapping):
        reader.invalid(entry, element, "a CodeableConcept")
        return []
    codings = concept.get("coding", [])
    if not isinstance(codings, list):
        reader.invalid(entry, f"{element}.coding", "a list of Codings")
        return []
    pairs = []
    for coding in codings:
        if not isinstance(coding, Mapping):
            reader.invalid(entry, f"{element}.coding", "a list of Codings")
            return []
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(system, str | None) or not isinstance(code, str | None):
            reader.invalid(entry, f"{element}.coding", "Codings with a string system and code")
            return []
        pairs.append((system or "", code or ""))
    return pairs


def _code_text(pairs: list[tuple[str, str]]) -> str:
    return _short(", ".join(f"{system}|{code}" for system, code in pairs) or "no coding")


def _date_of(reader: _Reader, entry: Entry, element: str, value: Any = None) -> dt.date | None:
    """A date or dateTime element as a date: None when absent or partial (a year, a month); a problem when invalid."""
    value = entry.resource.get(element) if value is None else value
    if value is None:
        return None
    match = _DATE.match(value) if isinstance(value, str) else None
    if match is None:
        reader.invalid(entry, element, "a FHIR date or dateTime")
        return None
    if match.group(5) is None:
        return None
    try:
        return dt.date(int(match.group(1)), int(match.group(3)), int(match.group(5)))
    except ValueError:
        reader.invalid(entry, element, "a FHIR date or dateTime")
        return None


def _period_start(reader: _Reader, entry: Entry, element: str) -> dt.date | None:
    period = entry.resource.get(element)
    if period is None:
        return None
    if not isinstance(period, Mapping):
        reader.invalid(entry, element, "a Period")
        return None
    return _date_of(reader, entry, f"{element}.start", period.get("start"))


def _instant(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or _DATE.match(value) is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _code(reader: _Reader, entry: Entry, element: str) -> str | None:
    value = entry.resource.get(element)
    if value is not None and not isinstance(value, str):
        reader.invalid(entry, element, "a code")
        return None
    return value


def _resolve(reader: _Reader, entry: Entry, reference: str) -> Entry | None:
    """The resource a reference points to inside the prefetch: contained (#id), fullUrl, or Type/id."""
    if reference.startswith("#"):
        for item in (entry.container or entry.resource).get("contained") or []:
            if isinstance(item, Mapping) and item.get("id") == reference[1:]:
                return Entry(entry.where, item, None, entry.container or entry.resource)
        return None
    return reader.full_urls.get(reference)


def _subject(reader: _Reader, entry: Entry) -> tuple[Literal["patient", "other", "unlinked"], str]:
    """Whether a resource's subject is the patient in context, another patient, or cannot be tied to one."""
    subject = entry.resource.get("subject")
    if subject is None:
        return "unlinked", "no subject"
    if not isinstance(subject, Mapping):
        reader.invalid(entry, "subject", "a Reference")
        return "unlinked", "an invalid subject"
    reference = subject.get("reference")
    if not isinstance(reference, str) or not reference:
        if subject.get("identifier") is not None:
            return "unlinked", "a subject given by identifier only, not by reference"
        return "unlinked", "a subject without a reference"
    if reader.patient_id is None:
        return "unlinked", "no patient in context"
    target = _resolve(reader, entry, reference)
    if target is not None:
        if target.kind != "Patient":
            return "unlinked", f"a subject that is a {target.kind}, not a Patient"
        if target.container is not None:
            return "unlinked", "a subject that is a contained Patient (it cannot be identified)"
        return ("patient", "") if target.resource.get("id") == reader.patient_id else ("other", "another patient")
    if reference.startswith(("#", "urn:")):
        return "unlinked", f"a subject reference that does not resolve in the prefetch ({_short(reference)})"
    parts = reference.split("/_history")[0].rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] != "Patient":
        return "unlinked", f"a subject that is not a Patient ({_short(reference)})"
    if parts[-1] != reader.patient_id:
        return "other", "another patient"
    if reference.startswith(("http://", "https://")) and "/".join(parts[:-2]) not in reader.servers:
        return "unlinked", f"a subject on another FHIR server ({_short(reference)})"
    return "patient", ""


def _register_medication(reader: _Reader, entry: Entry) -> None:
    identity = entry.resource.get("id")
    if entry.full_url:
        reader.medications[entry.full_url] = entry
    if isinstance(identity, str) and identity:
        key = f"#{identity}" if entry.container is not None else f"Medication/{identity}"
        reader.medications[key if entry.container is None else f"{id(entry.container)}{key}"] = entry


def _read(reader: _Reader, entry: Entry) -> None:
    kind = entry.kind
    if kind == "Patient":
        if entry.container is not None:
            return  # a contained Patient cannot be the patient in context
        if reader.patient_id is not None and entry.resource.get("id") == reader.patient_id:
            reader.patients.append(entry)
        else:
            reader.notes.append(Note("not_read", f"{entry.label}: another patient than the hook's context; not read"))
        return
    if kind == "Medication":
        return
    if kind == "OperationOutcome":  # what an EHR may send for a prefetch it could not fetch
        reader.notes.append(Note("not_read", f"{entry.where}: the EHR reported that it could not fetch this data "
                                 "(OperationOutcome)"))
        return
    if kind not in READ_TYPES:
        reader.skip("resources of a type postcart does not read", _short(kind))
        return
    link, why = _subject(reader, entry)
    if link == "other":
        reader.notes.append(Note("not_read", f"{entry.label}: about another patient than the hook's context; "
                                 "not read"))
        return
    if link == "unlinked":
        reader.not_linked.append(entry.label)
        reader.notes.append(Note("not_read", f"{entry.label}: {why}; not read, as it cannot be tied to the "
                                 "patient in context"))
        return
    reader.present[kind] = reader.present.get(kind, 0) + 1
    {"Observation": _read_observation, "Condition": _read_condition,
     "MedicationAdministration": _read_administration, "Procedure": _read_procedure}[kind](reader, entry)


def _read_condition(reader: _Reader, entry: Entry) -> None:
    verification = [code for system, code in _codings(reader, entry, "verificationStatus",
                                                      entry.resource.get("verificationStatus"))
                    if system in (CONDITION_VERIFICATION, "")]
    clinical = [code for system, code in _codings(reader, entry, "clinicalStatus", entry.resource.get("clinicalStatus"))
                if system in (CONDITION_CLINICAL, "")]
    pairs = _codings(reader, entry, "code", entry.resource.get("code"))
    when = _date_of(reader, entry, "onsetDateTime") or _date_of(reader, entry, "recordedDate")
    disease = next((found for found in (_disease(system, code) for system, code in pairs) if found), None)
    if disease is None:
        reader.skip("Conditions with a code that is not one of postcart's diseases", _code_text(pairs))
        return
    if any(code in _NOT_VERIFIED for code in verification):
        status = next(code for code in verification if code in _NOT_VERIFIED)
        reader.notes.append(Note("not_read", f"{entry.label}: {disease} with verification status {status}; "
                                 "only confirmed (or unstated) diagnoses are read", "disease"))
        return
    active = not any(code in _INACTIVE for code in clinical)
    reader.diseases.append((_Value(disease, when, entry.label), active))


def _disease(system: str, code: str) -> str | None:
    exact = DISEASE_CODES.get((system, code))
    if exact is not None:
        return exact[0]
    if system == ICD10CM:
        for (known_system, prefix), (disease, _) in DISEASE_CODES.items():
            if known_system == ICD10CM and code.startswith(prefix):
                return disease
    return None


def _products(pairs: list[tuple[str, str]]) -> tuple[bool, str | None]:
    """Whether these codings name a CAR-T infusion, and the product when one is named."""
    allowed = field_catalogue()["car_t.product"].values
    product, is_car_t = None, False
    for system, code in pairs:
        if system == CAR_T_PRODUCT_SYSTEM and code in allowed:
            return True, code
        if (system, code) in PRODUCT_CODES:
            is_car_t = True
            product = product or PRODUCT_CODES[(system, code)]
    return is_car_t, product


def _read_administration(reader: _Reader, entry: Entry) -> None:
    concept = entry.resource.get("medicationCodeableConcept")
    reference = entry.resource.get("medicationReference")
    if concept is None and isinstance(reference, Mapping) and isinstance(reference.get("reference"), str):
        target = str(reference["reference"])
        medication = (reader.medications.get(f"{id(entry.resource)}{target}") if target.startswith("#")
                      else reader.medications.get(target))
        if medication is not None:
            entry_code = medication.resource.get("code")
            pairs = _codings(reader, medication, "code", entry_code)
        else:
            pairs = []
    else:
        pairs = _codings(reader, entry, "medicationCodeableConcept", concept)
    is_car_t, product = _products(pairs)
    if not is_car_t:
        reader.skip("medication administrations that are not a CAR-T product postcart reads", _code_text(pairs))
        return
    when = _date_of(reader, entry, "effectiveDateTime") or _period_start(reader, entry, "effectivePeriod")
    _record_infusion(reader, entry, "CAR-T administration", product, when)


def _read_procedure(reader: _Reader, entry: Entry) -> None:
    pairs = _codings(reader, entry, "code", entry.resource.get("code"))
    is_car_t, product = _products(pairs)
    if not is_car_t:
        reader.skip("Procedures with a code postcart does not read", _code_text(pairs))
        return
    used = entry.resource.get("usedCode") or []
    if not isinstance(used, list):
        reader.invalid(entry, "usedCode", "a list of CodeableConcepts")
        used = []
    for index, concept in enumerate(used):
        product = product or _products(_codings(reader, entry, f"usedCode[{index}]", concept))[1]
    when = _date_of(reader, entry, "performedDateTime") or _period_start(reader, entry, "performedPeriod")
    _record_infusion(reader, entry, "CAR-T infusion", product, when)


def _record_infusion(reader: _Reader, entry: Entry, kind: str, product: str | None, when: dt.date | None) -> None:
    """Count a CAR-T infusion only when it was completed; note any other status as not read."""
    status = _code(reader, entry, "status")
    if status != "completed":
        reader.notes.append(Note("not_read", f"{entry.label}: {kind} with status {status}; only completed "
                                 "infusions count"))
        return
    reader.infusions.append(_Value(product, when, entry.label))


def _read_observation(reader: _Reader, entry: Entry) -> None:
    pairs = _codings(reader, entry, "code", entry.resource.get("code"))
    path = None
    for system, code in pairs:
        if system == LOINC and code == ECOG_LOINC:
            path = "fitness.ecog"
        elif system == LOINC and code == DISEASE_STATUS_LOINC:
            path = "disease_status"
        elif system == LOCAL_FIELD_SYSTEM and code in LOCAL_FIELDS:
            path = code
        if path:
            break
    if path is None:
        reader.skip("Observations with a code postcart does not read", _code_text(pairs))
        return
    status = _code(reader, entry, "status")
    if status not in _READ_STATUSES:
        reader.notes.append(Note("not_read", f"{entry.label}: status {status}; only final, amended or "
                                 "corrected observations are read", path))
        return
    when = _date_of(reader, entry, "effectiveDateTime") or _period_start(reader, entry, "effectivePeriod")
    if path == "disease_status":
        _read_disease_status(reader, entry, when)
        return
    value = _observation_value(reader, entry, path, field_catalogue()[path])
    if value is not None:
        reader.observations.setdefault(path, []).append(_Value(value, when, entry.label))


def _read_disease_status(reader: _Reader, entry: Entry, when: dt.date | None) -> None:
    pairs = _codings(reader, entry, "valueCodeableConcept", entry.resource.get("valueCodeableConcept"))
    meaning = next((DISEASE_STATUS_VALUES[code][0] for system, code in pairs
                    if system == SNOMED and code in DISEASE_STATUS_VALUES), None)
    if meaning is None or meaning == "undetermined":
        reader.notes.append(Note("not_read", f"{entry.label}: cancer disease status {_code_text(pairs)}; only "
                                 "improved, stable, worsened and remission are read", "car_t.best_response"))
        return
    if when is None:
        reader.notes.append(Note("not_read", f"{entry.label}: cancer disease status without a full date; not read",
                                 "car_t.best_response"))
        return
    reader.disease_status.append(_Value(meaning, when, entry.label))


def _observation_value(reader: _Reader, entry: Entry, path: str, spec: FieldSpec) -> Any:
    where = f"{path} ({entry.label})"
    resource = entry.resource
    if spec.kind in ("enum", "set"):
        pairs = _codings(reader, entry, "valueCodeableConcept", resource.get("valueCodeableConcept"))
        codes = [code for system, code in pairs if system == LOCAL_VALUE_SYSTEM]
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
        value = resource.get("valueBoolean")
        if not isinstance(value, bool):
            if value is not None:
                reader.invalid(entry, "valueBoolean", "a boolean")
                return None
            reader.problems.append(Problem(where, "no boolean value", "valueBoolean true or false",
                                           _value_kind(resource)))
            return None
        return value
    number: Any = resource.get("valueInteger")
    if number is not None and (not isinstance(number, int) or isinstance(number, bool)):
        reader.invalid(entry, "valueInteger", "an integer")
        return None
    quantity = resource.get("valueQuantity")
    if number is None and quantity is not None:
        if not isinstance(quantity, Mapping):
            reader.invalid(entry, "valueQuantity", "a Quantity")
            return None
        number = quantity.get("value")
        if isinstance(number, float) and number.is_integer():
            number = int(number)
    if not isinstance(number, int) or isinstance(number, bool):
        reader.problems.append(Problem(where, "no integer value", "valueInteger (or a whole valueQuantity) "
                                       + spec.describe(), _value_kind(resource)))
        return None
    return number


def _value_kind(resource: Mapping[str, Any]) -> str:
    for name in ("valueCodeableConcept", "valueBoolean", "valueInteger", "valueQuantity", "valueString",
                 "valueDateTime", "valuePeriod", "valueRange", "valueRatio"):
        if resource.get(name) is not None:
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


def _present(reader: _Reader, kind: str) -> str:
    """What the record held of a kind, for a problem's 'got': never 'nothing' when something was there."""
    count = reader.present.get(kind, 0)
    others = f"; {len(reader.not_linked)} resources not tied to the patient were left out" if reader.not_linked else ""
    if not count:
        return "nothing" + others
    codes = next((counts for what, counts in reader.unread.items() if what.startswith(kind)), {})
    shown = ", ".join(sorted(codes, key=lambda code: -codes[code])[:5])
    return f"{count} {kind}{'s' if count != 1 else ''} of this patient, none with the code expected" + (
        f" (codes: {shown})" if shown else "") + others


def _choose_disease(reader: _Reader) -> str | None:
    """The disease the CAR-T treated: active Conditions first; a transformation is read as what it became."""
    active = [value for value, is_active in reader.diseases if is_active]
    pool = active or [value for value, _ in reader.diseases]
    if active:
        for value, is_active in reader.diseases:
            if not is_active and value.value not in {item.value for item in active}:
                reader.notes.append(Note("not_read", f"{value.source}: {value.value} with an inactive, remission or "
                                         "resolved clinical status; not read as active disease", "disease"))
    kinds = {value.value for value in pool}
    if len(kinds) == 1:
        if not active:
            reader.notes.append(Note("derived", "read from a Condition whose clinical status is not active "
                                     "(inactive, remission or resolved)", "disease"))
        return str(kinds.pop())
    if len(kinds) == 2 and all(value.when is not None for value in pool):
        first = {kind: min(v.when for v in pool if v.value == kind and v.when is not None) for kind in kinds}
        older, newer = sorted(kinds, key=lambda kind: first[kind])
        if (older, newer) in _TRANSFORMATIONS and first[newer] > first[older]:
            reader.notes.append(Note("derived", f"{older} transformed to {newer} (diagnosed {first[newer]}, after "
                                     f"{older} in {first[older]}): assessed as {newer}", "disease"))
            return str(newer)
    reader.problems.append(Problem("disease", "several active diseases recorded ("
                                   + ", ".join(item.source for item in pool) + ")",
                                   "one disease the CAR-T treated (a transformation FL or CLL -> LBCL is read as "
                                   "LBCL when both Conditions are dated; an inactive or resolved one is not read "
                                   "as active disease)", ", ".join(sorted(kinds))))
    return None


def _assemble(reader: _Reader, today: dt.date) -> dict[str, Any]:
    data: dict[str, Any] = {}
    catalogue = field_catalogue()

    def put(path: str, value: Any) -> None:
        head, _, tail = path.partition(".")
        if tail:
            data.setdefault(head, {})[tail] = value
        else:
            data[head] = value

    # Is there a CAR-T failure on record at all? Without one, no guidance applies (and nothing is refused).
    infusions_dated = sorted((item for item in reader.infusions if item.when is not None),
                             key=lambda item: item.when or dt.date.min)
    undated = [item.source for item in reader.infusions if item.when is None]
    if undated:
        reader.notes.append(Note("not_read", "CAR-T infusion without a full date, not counted: " + ", ".join(undated),
                                 "car_t.infusions"))
    local_failures = reader.observations.get("failure.kind") or []
    failure_date: dt.date | None = None
    derived_response: str | None = None
    derived_kind: str | None = None
    if local_failures:
        failure_dates = [item.when for item in local_failures if item.when is not None]
        failure_date = max(failure_dates) if failure_dates else None
        if failure_date is None:
            reader.problems.append(Problem("failure.months_since_infusion", "the failure observation has no date",
                                           "Observation.effectiveDateTime on the failure.kind observation",
                                           "nothing"))
    elif not infusions_dated:
        raise NoCarTFailure("no completed, dated CAR-T infusion on record", tuple(reader.notes))
    else:
        failure_date, derived_response, derived_kind = _failure_from_disease_status(reader, infusions_dated)
        if failure_date is None:
            raise NoCarTFailure("no progression recorded after the last CAR-T infusion", tuple(reader.notes))

    # age, from Patient.birthDate on the reference date
    if not reader.patients:
        reader.problems.append(Problem("age", "no Patient resource for the hook's patient",
                                       "a Patient with birthDate (YYYY-MM-DD) and the id of context.patientId",
                                       "nothing"))
    else:
        patient = reader.patients[0]
        birth = patient.resource.get("birthDate")
        match = _DATE.match(birth) if isinstance(birth, str) else None
        if match is None and birth is not None:
            reader.invalid(patient, "birthDate", "a FHIR date")
        elif match is None or match.group(5) is None or match.group(6):
            got = "a partial date" if birth else "nothing"
            reader.problems.append(Problem("age", f"{patient.label}: birthDate missing or not a full date",
                                           "Patient.birthDate as YYYY-MM-DD", got))
        else:
            born = dt.date(int(match.group(1)), int(match.group(3)), int(match.group(5)))
            put("age", today.year - born.year - ((today.month, today.day) < (born.month, born.day)))

    # disease, from Condition
    if not reader.diseases:
        reader.problems.append(Problem("disease", "no Condition with a disease postcart reads",
                                       "a confirmed Condition coded with one of the SNOMED CT / ICD-10-CM codes in "
                                       "docs/fhir.md", _present(reader, "Condition")))
    else:
        disease = _choose_disease(reader)
        if disease is not None:
            put("disease", disease)

    # observations, latest value per field (union for list fields)
    derived = {"car_t.best_response": derived_response, "failure.kind": derived_kind}
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
        elif derived.get(path) is not None:
            put(path, derived[path])
            continue
        elif required:
            system, code = (LOINC, ECOG_LOINC) if path == "fitness.ecog" else (LOCAL_FIELD_SYSTEM, path)
            also = (f", or mCODE CancerDiseaseStatus ({LOINC}|{DISEASE_STATUS_LOINC}) after the infusion"
                    if path != "fitness.ecog" else "")
            reader.problems.append(Problem(path, "not found in the record", f"an Observation coded "
                                           f"{system}|{code} ({spec.title}){also}", _present(reader, "Observation")))
            continue
        if path == "car_t.target":
            continue  # derived from the product by the input contract
        reader.notes.append(Note("not_found", "not documented in the record; " + _default_text(path), path))

    # CAR-T product, infusions and timing
    infusions = [item for item in infusions_dated if failure_date is None or item.when <= failure_date]  # type: ignore[operator]
    if not infusions:
        reader.problems.append(Problem("car_t.product", "no completed, dated CAR-T infusion before the failure",
                                       "a MedicationAdministration or Procedure coded with a CAR-T product (HCPCS, "
                                       f"ICD-10-PCS or {CAR_T_PRODUCT_SYSTEM}, see docs/fhir.md) with its date",
                                       _present(reader, "MedicationAdministration")))
        return data
    last = infusions[-1]
    same_day = {item.value for item in infusions if item.when == last.when and item.value is not None}
    if len(same_day) > 1:
        reader.problems.append(Problem("car_t.product", "different CAR-T products on the same date",
                                       "one product", ", ".join(sorted(same_day))))
    elif not same_day:
        reader.problems.append(Problem("car_t.product", f"the CAR-T infusion of {last.when} does not name its product "
                                       f"({last.source})", "a product code (HCPCS, a product-specific ICD-10-PCS code, "
                                       f"or {CAR_T_PRODUCT_SYSTEM}) on the infusion or a record of the same date",
                                       "a CAR-T infusion without a product"))
    else:
        put("car_t.product", same_day.pop())
        # one infusion per date: an EHR may record the same infusion as a MedicationAdministration and a Procedure
        put("car_t.infusions", len({item.when for item in infusions}))
        if failure_date is not None and last.when is not None:
            put("failure.months_since_infusion", (failure_date - last.when).days / _DAYS_PER_MONTH)
    return data


def _failure_from_disease_status(reader: _Reader, infusions: list[_Value]) -> tuple[dt.date | None, str | None,
                                                                                     str | None]:
    """The failure after the last CAR-T infusion, read from mCODE CancerDiseaseStatus observations.

    The failure is the first "worsened" status after the last infusion that precedes a "worsened" status; the
    best response is the best status between that infusion and the failure (PD when none was recorded);
    the kind is a relapse after CR or PR, else primary refractory.
    """
    statuses = sorted(reader.disease_status, key=lambda item: item.when or dt.date.min)
    worsened = [item for item in statuses if item.value == "worsened"]
    last_infusion = None
    failure = None
    for item in reversed(infusions):
        after = [w for w in worsened if item.when is not None and w.when is not None and w.when > item.when]
        if after:
            last_infusion, failure = item, after[0]
            break
    if failure is None or last_infusion is None:
        return None, None, None
    between = [s for s in statuses if s.when is not None and last_infusion.when is not None
               and last_infusion.when < s.when < (failure.when or dt.date.max) and s.value in _STATUS_RESPONSE]
    responses = [_STATUS_RESPONSE[s.value] for s in between]
    best = min(responses, key=("CR", "PR", "SD").index) if responses else "PD"
    kind = "relapse" if best in ("CR", "PR") else "primary_refractory"
    reader.notes.append(Note("derived", f"{best}, read from mCODE cancer disease status after the infusion of "
                             f"{last_infusion.when} (" + (", ".join(f"{s.value} {s.when}" for s in between)
                                                          or "no status before the progression") + ")",
                             "car_t.best_response"))
    reader.notes.append(Note("derived", f"{kind}, from the status 'worsened' of {failure.when} ({failure.source})",
                             "failure.kind"))
    return failure.when, best, kind


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
    """Notes as lines for a clinician, grouped: conflicts, read indirectly, not documented, not read."""
    order = {"conflict": 0, "derived": 1, "not_found": 2, "not_read": 3}
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
