"""The input contract: a patient's situation after CAR-T failure, validated by Pydantic.

Field names are a public contract (batch, specifications and the EHR interface are written against
them): add fields, never rename. Every field documents its units and grading system; the JSON Schema
is generated from these models (``postcart schema``).

It is one module because the input contract is one schema: every field sits beside its siblings with its
description, units and grading system, and the JSON Schema, the field catalogue rules are checked against
and the flattening into facts all come from that one place.
"""

from __future__ import annotations

import difflib
import operator
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from postcart.errors import InvalidSituation, Problem

__all__ = [
    "FIELD_DISEASES",
    "HISTOLOGY_DISEASE",
    "PRODUCT_DISEASES",
    "PRODUCT_TARGET",
    "FieldSpec",
    "PatientSituation",
    "field_catalogue",
    "flatten",
    "nest",
    "set_path",
    "validate_situation",
]

Disease = Literal["LBCL", "FL", "MCL", "B_ALL", "MM", "CLL"]
Product = Literal[
    "axi-cel", "tisa-cel", "liso-cel", "brexu-cel", "obe-cel", "ide-cel", "cilta-cel", "investigational"
]
Target = Literal["CD19", "BCMA", "CD22", "CD19_CD22", "GPRC5D", "other"]
Response = Literal["CR", "PR", "SD", "PD", "not_evaluable"]
FailureKind = Literal["primary_refractory", "relapse"]
AntigenStatus = Literal["retained", "lost", "unknown"]
Persistence = Literal["detectable", "undetectable", "unknown"]
Cd20Status = Literal["positive", "negative", "unknown"]
Bispecific = Literal["CD20xCD3", "CD19xCD3", "BCMAxCD3", "GPRC5DxCD3", "FcRH5xCD3"]
Donor = Literal[
    "matched_related", "matched_unrelated", "haploidentical", "mismatched_unrelated", "cord_blood",
    "none", "unknown",
]
Goal = Literal["disease_control", "quality_of_life", "undecided"]
TrialAccess = Literal["available", "not_available", "unknown"]
MarkerStatus = Literal["positive", "negative", "unknown"]
CnsSite = Literal["parenchymal", "leptomeningeal", "unknown"]
SalvageResponse = Literal["CR", "PR", "SD", "PD", "not_given", "unknown"]
MrdStatus = Literal["negative", "positive", "unknown"]
Histology = Literal[
    "DLBCL_NOS", "HGBL_double_hit", "PMBCL", "transformed_FL", "FL_grade_1_2", "FL_grade_3A",
    "MCL_classic", "MCL_blastoid", "unknown",
]
AgentClass = Literal[
    "covalent_btk_inhibitor", "pirtobrutinib", "venetoclax", "pi3k_inhibitor", "chemoimmunotherapy",
    "blinatumomab", "inotuzumab", "tki", "polatuzumab", "loncastuximab", "tafasitamab", "lenalidomide",
    "anti_cd38", "belantamab", "gprc5d_directed",
]

#: The disease each histology belongs to (``unknown`` fits every disease).
HISTOLOGY_DISEASE: dict[str, str] = {
    "DLBCL_NOS": "LBCL", "HGBL_double_hit": "LBCL", "PMBCL": "LBCL", "transformed_FL": "LBCL",
    "FL_grade_1_2": "FL", "FL_grade_3A": "FL", "MCL_classic": "MCL", "MCL_blastoid": "MCL",
}

#: Inputs that describe only some diseases: given for another disease, they are refused.
FIELD_DISEASES: dict[str, frozenset[str]] = {
    "disease_status.mrd": frozenset({"B_ALL", "MM"}),
    "disease_status.richter_transformation": frozenset({"CLL"}),
    "disease_status.ph_positive": frozenset({"B_ALL"}),
    "disease_status.tp53_aberration": frozenset({"CLL", "MCL"}),
    "disease_status.high_risk_cytogenetics": frozenset({"MM"}),
    "disease_status.extramedullary_disease": frozenset({"MM", "B_ALL"}),
    "failure.cd22": frozenset({"LBCL", "FL", "MCL", "B_ALL", "CLL"}),
    "failure.gprc5d": frozenset({"MM"}),
}

_FIELD_DISEASE_GETTERS = tuple((path, diseases, operator.attrgetter(path)) for path, diseases in FIELD_DISEASES.items())

#: Approved indications of each product (the input contract); ``investigational`` is allowed for any.
PRODUCT_DISEASES: dict[str, frozenset[str]] = {
    "axi-cel": frozenset({"LBCL", "FL"}),
    "tisa-cel": frozenset({"LBCL", "FL", "B_ALL"}),
    "liso-cel": frozenset({"LBCL", "FL", "MCL", "CLL"}),
    "brexu-cel": frozenset({"MCL", "B_ALL"}),
    "obe-cel": frozenset({"B_ALL"}),
    "ide-cel": frozenset({"MM"}),
    "cilta-cel": frozenset({"MM"}),
}

#: The antigen each approved product targets.
PRODUCT_TARGET: dict[str, str] = {
    "axi-cel": "CD19", "tisa-cel": "CD19", "liso-cel": "CD19", "brexu-cel": "CD19", "obe-cel": "CD19",
    "ide-cel": "BCMA", "cilta-cel": "BCMA",
}


class _Model(BaseModel):
    """Numbers and booleans strict (no ``true`` for 1, no ``1.0`` for an int); text cells are converted before."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class CarT(_Model):
    """The CAR-T therapy that failed."""

    product: Product = Field(
        title="CAR-T product",
        description="The CAR-T product infused (generic short name); must be one used for the disease.",
        examples=["axi-cel"],
    )
    target: Target | None = Field(
        default=None,
        title="CAR target antigen",
        json_schema_extra={"x-said": {"*": "{value} CAR-T"}},
        description="Antigen the CAR recognises. Derived from the product when absent; if given it must "
        "agree with the product. Required for an investigational product.",
        examples=["CD19"],
    )
    best_response: Response = Field(
        title="best response to CAR-T",
        json_schema_extra={"x-said": {
            "CR": "complete response to CAR-T", "PR": "partial response to CAR-T",
            "SD": "stable disease at best after CAR-T", "PD": "no response to CAR-T",
            "not_evaluable": "response to CAR-T not evaluable"}},
        description="Best response to the CAR-T by the disease's standard response criteria: complete (CR), "
        "partial (PR), stable (SD), progressive disease (PD) or not evaluable.",
        examples=["PR"],
    )
    infusions: int = Field(strict=True,
        default=1, ge=1, title="CAR-T infusions received",
        json_schema_extra={"x-said": {"*": "CAR-T infusions so far: {value}"}},
        description="Number of CAR-T infusions received so far (count).", examples=[1],
    )
    max_crs_grade: int | None = Field(strict=True,
        default=None, ge=0, le=5, title="worst CRS grade",
        description="Worst cytokine release syndrome grade after CAR-T, ASTCT consensus grading (0-5); "
        "absent means unknown.", examples=[2],
    )
    max_icans_grade: int | None = Field(strict=True,
        default=None, ge=0, le=5, title="worst ICANS grade",
        description="Worst immune effector cell-associated neurotoxicity syndrome grade after CAR-T, ASTCT "
        "consensus grading (0-5); absent means unknown.", examples=[1],
    )


class Failure(_Model):
    """How and when the CAR-T failed."""

    kind: FailureKind = Field(
        title="kind of failure",
        json_schema_extra={"x-words": {"primary_refractory": "progression without response"},
                           "x-said": {"relapse": "relapse", "primary_refractory": "progression without response"}},
        description="primary_refractory: no response (best response SD/PD/not evaluable); relapse: "
        "progression after a CR or PR.", examples=["relapse"],
    )
    months_since_infusion: float = Field(strict=True,
        ge=0, le=600, title="months from infusion to failure",
        # worded as the derived failure timing is, so the figure is said once
        json_schema_extra={"x-said": {
            "*": "{failure.kind} {value} months after {car_t.product} ({derived.failure_timing})"}},
        description="Time from CAR-T infusion to documented failure, in months.", examples=[4.5],
    )
    target_antigen: AntigenStatus = Field(
        default="unknown", title="CAR target on the failure biopsy",
        json_schema_extra={"x-said": {
            "retained": "{car_t.target} retained on the failure biopsy",
            "lost": "{car_t.target} lost on the failure biopsy",
            "unknown": "{car_t.target} not yet tested on a failure biopsy"}},
        description="Expression of the CAR's target antigen (CD19, BCMA, ...) on the biopsy at failure.",
        examples=["retained"],
    )
    car_t_persistence: Persistence = Field(
        default="unknown", title="CAR-T persistence",
        json_schema_extra={"x-said": {
            "detectable": "CAR-T cells still detectable", "undetectable": "CAR-T cells no longer detectable",
            "unknown": "CAR-T persistence not yet tested"}},
        description="Whether CAR-T cells are still detectable at failure (flow cytometry or transgene PCR; "
        "in B-ALL, B-cell recovery implies loss of persistence).", examples=["undetectable"],
    )
    cd20: Cd20Status = Field(
        default="unknown", title="CD20 at failure",
        json_schema_extra={"x-said": {
            "positive": "CD20 positive at failure", "negative": "CD20 negative at failure",
            "unknown": "CD20 not yet tested at failure"}},
        description="CD20 expression at failure, for CD20-directed options in B-cell lymphomas.",
        examples=["positive"],
    )
    localized: bool = Field(strict=True,
        default=False, title="localized disease",
        description="Limited-site disease at failure, amenable to radiotherapy.", examples=[False],
    )
    cns_involvement: bool = Field(strict=True,
        default=False, title="CNS involvement", description="Central nervous system involvement at failure.",
        examples=[False],
    )
    cns_site: CnsSite = Field(
        default="unknown", title="CNS site",
        description="Where the CNS disease is, when cns_involvement is true: brain or spinal cord parenchyma "
        "(MRI), or leptomeninges (cerebrospinal fluid cytology or flow, meningeal enhancement). Must stay "
        "unknown without CNS involvement.", examples=["parenchymal"],
    )
    cd22: MarkerStatus = Field(
        default="unknown", title="CD22 at failure",
        description="CD22 expression on the failure sample (flow cytometry in B-ALL, immunohistochemistry "
        "or flow in lymphoma), for CD22-directed options (inotuzumab ozogamicin, CD22 CAR-T). B-cell "
        "diseases only.", examples=["positive"],
    )
    gprc5d: MarkerStatus = Field(
        default="unknown", title="GPRC5D at failure",
        description="GPRC5D expression on the relapsed myeloma (marrow or plasmacytoma), for GPRC5D-directed "
        "options (talquetamab, GPRC5D CAR-T). Myeloma only.", examples=["positive"],
    )


class Fitness(_Model):
    """Performance status and comorbidity."""

    ecog: int = Field(strict=True,
        ge=0, le=4, title="ECOG performance status",
        json_schema_extra={"x-said": {"*": "ECOG {value}"}},
        description="ECOG performance status, 0 (fully active) to 4 (completely disabled).", examples=[1],
    )
    hct_ci: int | None = Field(strict=True,
        default=None, ge=0, le=30, title="HCT-CI",
        description="Hematopoietic cell transplantation-specific comorbidity index (Sorror score, points); "
        "absent means unknown.", examples=[2],
    )
    organ_function_adequate: bool | None = Field(strict=True,
        default=None, title="adequate organ function",
        json_schema_extra={"x-said": {
            "true": "organ function adequate", "false": "organ function not adequate",
            "unknown": "organ function not yet assessed"}},
        description="Cardiac, pulmonary, hepatic and renal function adequate for intensive therapy; absent "
        "means unknown.", examples=[True],
    )
    active_infection: bool = Field(strict=True,
        default=False, title="active infection",
        description="Uncontrolled active infection at assessment.", examples=[False],
    )
    ecog_disease_related: bool = Field(
        default=False, title="poor performance status caused by the disease",
        description="True when the current ECOG performance status is reduced mainly by the lymphoma, "
        "leukemia or myeloma itself (and so may improve if it responds), not by fixed comorbidity or frailty.",
        examples=[False],
    )


class History(_Model):
    """Treatment history."""

    prior_lines: int | None = Field(strict=True,
        default=None, ge=0, le=30, title="prior lines of therapy",
        description="Lines of systemic therapy before the CAR-T (count). Recorded for the audit record; no rule "
        "reads it yet (no verified source ties the count to a verdict after CAR-T failure).", examples=[2],
    )
    prior_allo_hct: bool = Field(strict=True,
        default=False, title="prior allogeneic HCT", description="Allogeneic transplant received before.",
        examples=[False],
    )
    prior_auto_hct: bool = Field(strict=True,
        default=False, title="prior autologous HCT", description="Autologous transplant received before. Recorded for "
        "the audit record; no rule reads it yet (no verified source ties it to a verdict after CAR-T failure).",
        examples=[False],
    )
    prior_bispecific: list[Bispecific] = Field(
        default_factory=list, title="prior bispecific antibodies",
        description="T-cell-engaging bispecific antibody classes received before (by targets).",
        examples=[["CD20xCD3"]],
    )
    prior_therapies: list[AgentClass] = Field(
        default_factory=list, title="prior therapies by class",
        description="Drug classes received before or since the CAR-T: covalent_btk_inhibitor (ibrutinib, "
        "acalabrutinib, zanubrutinib), pirtobrutinib, venetoclax, pi3k_inhibitor (idelalisib, duvelisib), "
        "chemoimmunotherapy, blinatumomab, inotuzumab (ozogamicin), tki (imatinib, dasatinib, ponatinib...), "
        "polatuzumab, loncastuximab, tafasitamab, lenalidomide, anti_cd38 (daratumumab, isatuximab), "
        "belantamab, gprc5d_directed (talquetamab or a GPRC5D CAR-T). Also accepted as a list of "
        "{agent_class, refractory} pairs, which fill this list and history.refractory_to.",
        examples=[["covalent_btk_inhibitor", "venetoclax"]],
    )
    refractory_to: list[AgentClass] = Field(
        default_factory=list, title="refractory to",
        description="Drug classes (as in prior_therapies) the disease was refractory to: progression on the "
        "therapy or soon after stopping it, as the treating team judges it. A class listed here counts as received (it is added to "
        "prior_therapies).", examples=[["covalent_btk_inhibitor"]],
    )

    @model_validator(mode="before")
    @classmethod
    def _from_pairs(cls, data: Any) -> Any:
        """``prior_therapies`` given as ``{agent_class, refractory}`` pairs becomes the two class lists."""
        if not isinstance(data, Mapping) or not isinstance(data.get("prior_therapies"), list):
            return data
        pairs = data["prior_therapies"]
        if not any(isinstance(item, Mapping) for item in pairs):
            return data
        received: list[Any] = []
        refractory: list[Any] = list(data.get("refractory_to") or [])
        for item in pairs:
            agent = item.get("agent_class") if isinstance(item, Mapping) else item
            received.append(agent)
            if isinstance(item, Mapping) and item.get("refractory") is True:
                refractory.append(agent)
        return {**data, "prior_therapies": received, "refractory_to": refractory}

    @model_validator(mode="after")
    def _refractory_counts_as_received(self) -> History:
        # sets in meaning: one sorted order, so that every interface (FHIR, cohorts) round-trips them
        self.prior_therapies = sorted({*self.prior_therapies, *self.refractory_to})
        self.refractory_to = sorted(set(self.refractory_to))
        return self


class DiseaseStatus(_Model):
    """The disease now: its response to salvage since the CAR-T failed, residual disease and biology."""

    response_to_salvage: SalvageResponse = Field(
        default="unknown", title="response to salvage",
        description="Best response to the therapy given since the CAR-T failed (bridging or salvage), by the "
        "disease's standard criteria; not_given when no therapy has been given yet.", examples=["PR"],
    )
    mrd: MrdStatus = Field(
        default="unknown", title="measurable residual disease",
        description="Measurable residual disease while in morphologic remission (B-ALL: flow cytometry or "
        "NGS, 10^-4; myeloma: NGS or next-generation flow, 10^-5); unknown when not measured or with overt "
        "disease. B-ALL and myeloma only.", examples=["positive"],
    )
    richter_transformation: bool | None = Field(
        default=None, title="Richter transformation",
        description="Biopsy-proven transformation of CLL to an aggressive lymphoma (usually DLBCL). CLL only; "
        "absent means not assessed.", examples=[False],
    )
    ph_positive: bool | None = Field(
        default=None, title="Philadelphia chromosome-positive",
        description="t(9;22) / BCR::ABL1 detected. B-ALL only; absent means unknown.", examples=[False],
    )
    tp53_aberration: bool | None = Field(
        default=None, title="TP53 aberration",
        description="del(17p) or a TP53 mutation. CLL and mantle cell lymphoma only; absent means unknown.",
        examples=[True],
    )
    high_risk_cytogenetics: bool | None = Field(
        default=None, title="high-risk myeloma cytogenetics",
        description="del(17p), t(4;14), t(14;16) or 1q gain/amplification by FISH (IMWG). Myeloma only; "
        "absent means unknown.", examples=[True],
    )
    extramedullary_disease: bool | None = Field(
        default=None, title="extramedullary disease",
        description="Disease outside the marrow not contiguous with bone (soft-tissue plasmacytoma in "
        "myeloma; extramedullary, non-CNS leukemic masses in B-ALL). Myeloma and B-ALL only; absent means "
        "unknown.", examples=[False],
    )


class PatientSituation(_Model):
    """A patient whose CAR-T therapy has failed, as the treating team describes them."""

    model_config = ConfigDict(
        extra="forbid",
        validate_default=True,
        json_schema_extra={"title": "PatientSituation", "$comment": "Generated by `postcart schema`."},
    )

    patient_id: str | None = Field(
        default=None, max_length=128, title="patient label",
        description="A pseudonymous label, echoed back in the assessment and never logged.",
        examples=["case-017"],
    )
    age: int = Field(strict=True, ge=0, le=120, title="age", description="Age in years.", examples=[58])
    disease: Disease = Field(
        title="disease",
        description="LBCL (covers DLBCL, HGBL, PMBCL and transformed FL), FL, MCL, B_ALL, MM or CLL.",
        examples=["LBCL"],
    )
    histology: Histology = Field(
        default="unknown", title="histology",
        description="The subtype within the disease: for LBCL DLBCL_NOS, HGBL_double_hit (MYC and BCL2 "
        "rearranged), PMBCL or transformed_FL; for FL FL_grade_1_2 or FL_grade_3A; for MCL MCL_classic or "
        "MCL_blastoid (blastoid or pleomorphic). Must belong to the disease.", examples=["DLBCL_NOS"],
    )
    car_t: CarT
    failure: Failure
    fitness: Fitness
    history: History = Field(default_factory=History)
    disease_status: DiseaseStatus = Field(default_factory=DiseaseStatus)
    donor: Donor = Field(
        default="unknown", title="best available donor",
        json_schema_extra={"x-said": {
            "*": "{value} donor", "none": "no donor identified", "unknown": "no donor identified yet"}},
        description="Best available allogeneic donor.", examples=["matched_unrelated"],
    )
    goals: Goal = Field(
        default="undecided", title="patient's goal",
        json_schema_extra={"x-said": {
            "disease_control": "the patient's goal is disease control",
            "quality_of_life": "the patient's goal is quality of life",
            "undecided": "the patient's goals not yet discussed"}},
        description="The patient's stated priority.", examples=["disease_control"],
    )
    trial_access: TrialAccess = Field(
        default="unknown", title="clinical trial access",
        json_schema_extra={"x-said": {
            "available": "a suitable clinical trial is open", "not_available": "no suitable clinical trial",
            "unknown": "trial access not yet checked"}},
        description="Whether a suitable clinical trial can be reached.", examples=["available"],
    )

    @model_validator(mode="after")
    def _consistent(self) -> PatientSituation:
        problems: list[tuple[str, str, str, str]] = []
        product, disease = self.car_t.product, self.disease
        if product != "investigational" and disease not in PRODUCT_DISEASES[product]:
            used_for = ", ".join(sorted(PRODUCT_DISEASES[product]))
            problems.append(("car_t.product", f"{product} is not used for {disease}",
                             f"a product used for {disease}", f"{product} (used for {used_for})"))
        if product == "investigational":
            if self.car_t.target is None:
                problems.append(("car_t.target", "required for an investigational product",
                                 "one of CD19, BCMA, CD22, CD19_CD22, GPRC5D, other", "nothing"))
        else:
            expected = PRODUCT_TARGET[product]
            if self.car_t.target is None:
                self.car_t.target = expected  # type: ignore[assignment]
            elif self.car_t.target != expected:
                problems.append(("car_t.target", f"{product} targets {expected}", expected,
                                 str(self.car_t.target)))
        response = self.car_t.best_response
        if self.failure.kind == "primary_refractory" and response in ("CR", "PR"):
            problems.append(("failure.kind", "primary refractory disease cannot follow a response "
                             f"(car_t.best_response is {response})", "relapse, or a best response of "
                             "SD, PD or not_evaluable", "primary_refractory"))
        if self.failure.kind == "relapse" and response not in ("CR", "PR"):
            problems.append(("failure.kind", f"a relapse needs a prior response (car_t.best_response is "
                             f"{response})", "primary_refractory, or a best response of CR or PR",
                             "relapse"))
        if self.histology != "unknown" and HISTOLOGY_DISEASE[self.histology] != disease:
            problems.append(("histology", f"{self.histology} is a subtype of {HISTOLOGY_DISEASE[self.histology]}",
                             f"a {disease} subtype or unknown", self.histology))
        for path, diseases, value_of in _FIELD_DISEASE_GETTERS:
            value = value_of(self)
            if value is not None and value != "unknown" and disease not in diseases:
                problems.append((path, f"describes {', '.join(sorted(diseases))} only", "unknown (not given)",
                                 str(tuple(value) if isinstance(value, list) else value)))
        if self.failure.cns_site != "unknown" and not self.failure.cns_involvement:
            problems.append(("failure.cns_site", "a CNS site needs failure.cns_involvement: true",
                             "unknown, or cns_involvement true", self.failure.cns_site))
        if problems:
            raise PydanticCustomError(
                "inconsistent_fields",
                "{summary}",
                {"summary": "; ".join(f"{p[0]}: {p[1]}" for p in problems), "problems": problems},
            )
        return self


def validate_situation(data: PatientSituation | Mapping[str, Any], source: str | None = None) -> PatientSituation:
    """Validate a mapping (or pass through a model) into a ``PatientSituation``.

    Raises:
        InvalidSituation: listing every problem with its dotted field path, what was expected and what
            arrived, and a "did you mean" for a misspelt field.

    >>> validate_situation({"age": 130}).__class__  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    postcart.errors.InvalidSituation: invalid patient situation: 6 problems
    """
    if isinstance(data, PatientSituation):
        return data
    if not isinstance(data, Mapping):
        raise InvalidSituation(Problem("(situation)", "must be a mapping of fields", "a mapping",
                                       type(data).__name__), source)
    try:
        return PatientSituation.model_validate(dict(data))
    except ValidationError as error:
        raise InvalidSituation(_problems(error), source) from None


def _problems(error: ValidationError) -> list[Problem]:
    problems: list[Problem] = []
    for item in error.errors(include_url=False):
        loc = tuple(str(part) for part in item["loc"])
        path = ".".join(loc) or "(situation)"
        kind = item["type"]
        ctx = item.get("ctx") or {}
        if kind == "inconsistent_fields":
            for field, message, expected, got in ctx["problems"]:
                problems.append(Problem(field, message, expected, got))
        elif kind == "extra_forbidden":
            message = "unknown field"
            suggestion = _did_you_mean(loc)
            if suggestion:
                message += f" (did you mean '{suggestion}'?)"
            problems.append(Problem(path, message, f"one of the fields of {_parent_name(loc)}", _show(item["input"])))
        elif kind == "missing":
            problems.append(Problem(path, "required field is missing", _expected_for(loc), "nothing"))
        else:
            problems.append(Problem(path, item["msg"], _expected_for(loc), _show(item.get("input"))))
    return problems


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _parent_name(loc: tuple[str, ...]) -> str:
    return ".".join(loc[:-1]) or "the situation"


def _model_at(loc: tuple[str, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = PatientSituation
    for part in loc:
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return None
    return model


def _did_you_mean(loc: tuple[str, ...]) -> str | None:
    parent = _model_at(loc[:-1])
    if parent is None:
        return None
    matches = difflib.get_close_matches(loc[-1], list(parent.model_fields), n=1, cutoff=0.6)
    if matches:
        return ".".join((*loc[:-1], matches[0]))
    # a field given at the wrong level (e.g. "ecog" at the top): point to where it lives
    for path, _spec in field_catalogue().items():
        if path.rsplit(".", 1)[-1] == loc[-1]:
            return path
    return None


def _expected_for(loc: tuple[str, ...]) -> str | None:
    path = ".".join(part for part in loc if not part.isdigit())
    spec = field_catalogue().get(path)
    return spec.describe() if spec else None


@dataclass(frozen=True)
class FieldSpec:
    """What a rule may say about one situation field: its kind, allowed values and range."""

    path: str
    kind: Literal["enum", "int", "float", "bool", "str", "set"]
    title: str
    values: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False
    #: How each value is said inside another fact's words (default: the value, underscores as spaces).
    words: tuple[tuple[str, str], ...] = ()
    #: How the fact is said on its own, per value ("*": any other; "unknown": not known); ``{value}`` is
    #: the value's word, ``{label}`` the title, ``{<dotted path>}`` another fact's word.
    said: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        if self.kind in ("enum", "set"):
            prefix = "a list of " if self.kind == "set" else ""
            return prefix + "one of " + ", ".join(self.values)
        if self.kind in ("int", "float"):
            noun = "an integer" if self.kind == "int" else "a number"
            if self.minimum is not None and self.maximum is not None:
                return f"{noun} {self.minimum:g}-{self.maximum:g}"
            if self.minimum is not None:
                return f"{noun} >= {self.minimum:g}"
            return noun
        return {"bool": "true or false", "str": "text"}[self.kind]


_CATALOGUE: dict[str, FieldSpec] = {}


def field_catalogue() -> dict[str, FieldSpec]:
    """Every leaf field of ``PatientSituation`` by dotted path, as the rulebook sees it."""
    if not _CATALOGUE:
        _CATALOGUE.update(_walk(PatientSituation, ""))
    return _CATALOGUE


def _walk(model: type[BaseModel], prefix: str) -> dict[str, FieldSpec]:
    specs: dict[str, FieldSpec] = {}
    for name, field in model.model_fields.items():
        path = prefix + name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            specs.update(_walk(annotation, path + "."))
            continue
        optional = type(None) in typing.get_args(annotation)
        inner = [arg for arg in typing.get_args(annotation) if arg is not type(None)] if optional else [annotation]
        base = inner[0]
        minimum = maximum = None
        for meta in field.metadata:
            minimum = getattr(meta, "ge", minimum)
            maximum = getattr(meta, "le", maximum)
        title = field.title or name
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        words, said = _pairs(extra.get("x-words")), _pairs(extra.get("x-said"))
        if typing.get_origin(base) is list:
            (item,) = typing.get_args(base)
            specs[path] = FieldSpec(path, "set", title, tuple(typing.get_args(item)), words=words, said=said)
        elif typing.get_origin(base) is Literal:
            specs[path] = FieldSpec(path, "enum", title, tuple(typing.get_args(base)), optional=optional, words=words, said=said)
        elif base is bool:
            specs[path] = FieldSpec(path, "bool", title, optional=optional, words=words, said=said)
        elif base is int:
            specs[path] = FieldSpec(path, "int", title, (), minimum, maximum, optional, words=words, said=said)
        elif base is float:
            specs[path] = FieldSpec(path, "float", title, (), minimum, maximum, optional, words=words, said=said)
        else:
            specs[path] = FieldSpec(path, "str", title, optional=optional, words=words, said=said)
    return specs


def _pairs(mapping: Any) -> tuple[tuple[str, str], ...]:
    return tuple((str(key), str(value)) for key, value in mapping.items()) if isinstance(mapping, dict) else ()




def flatten(situation: PatientSituation) -> dict[str, Any]:
    """The situation as flat facts: dotted path -> value, unknowns omitted, lists as tuples.

    >>> s = validate_situation({"age": 60, "disease": "MM", "car_t": {"product": "ide-cel",
    ...     "best_response": "PR"}, "failure": {"kind": "relapse", "months_since_infusion": 9},
    ...     "fitness": {"ecog": 1}})
    >>> flatten(s)["car_t.target"], "fitness.hct_ci" in flatten(s)
    ('BCMA', False)
    """
    facts: dict[str, Any] = {}
    _flatten_into(situation.model_dump(exclude={"patient_id"}), "", facts)
    return facts


def _flatten_into(data: Mapping[str, Any], prefix: str, facts: dict[str, Any]) -> None:
    # model_dump gives plain dicts and lists: the concrete checks are several times cheaper than the ABCs'
    for key, value in data.items():
        path = prefix + key
        if isinstance(value, dict):
            _flatten_into(value, path + ".", facts)
        elif isinstance(value, list):
            facts[path] = tuple(value)
        elif value is not None:
            facts[path] = value


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted path in nested mappings, making the parents it needs (the inverse step of flatten).

    >>> data = {"fitness": {"ecog": 1}}
    >>> set_path(data, "fitness.hct_ci", 2); data
    {'fitness': {'ecog': 1, 'hct_ci': 2}}
    """
    *parents, leaf = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = list(value) if isinstance(value, tuple) else value


def nest(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Flat facts (dotted path -> value) back into the input contract's nested shape.

    >>> nest({"age": 60, "failure.kind": "relapse", "history.prior_bispecific": ("CD20xCD3",)})
    {'age': 60, 'failure': {'kind': 'relapse'}, 'history': {'prior_bispecific': ['CD20xCD3']}}
    """
    nested: dict[str, Any] = {}
    for path, value in facts.items():
        set_path(nested, path, value)
    return nested
