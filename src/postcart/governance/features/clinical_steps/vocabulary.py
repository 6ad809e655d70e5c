"""The clinical words the feature files use, and what each means in the input and output contracts.

A phrase is looked up case-insensitively with its article ("a", "an", "the") dropped, so "a bispecific
antibody" and "Bispecific antibody" are the same option. An unknown phrase raises ``UnknownTerm``, whose
message lists the phrases that are known (closest first) so the step that used it can say why it failed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping

__all__ = [
    "ANTIBODY_DRUGS",
    "DISEASES",
    "DONORS",
    "GOALS",
    "HISTOLOGIES",
    "INFORMATION",
    "OPTIONS",
    "PRODUCTS",
    "RESPONSES",
    "THERAPY_CLASSES",
    "VERDICTS",
    "UnknownTerm",
    "lookup",
    "normalise",
]


class UnknownTerm(ValueError):
    """A phrase a step does not know, with the known alternatives closest to it."""

    def __init__(self, kind: str, phrase: str, table: Mapping[str, object]) -> None:
        known = sorted(set(table))
        close = difflib.get_close_matches(normalise(phrase), known, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        listed = "; ".join(known) if len(known) <= 25 else "; ".join(known[:25]) + "; ..."
        super().__init__(f"unknown {kind} {phrase!r}{hint}; the step library knows: {listed}")


def normalise(phrase: str) -> str:
    """Lower-case, single spaces, no leading article, no trailing full stop."""
    text = re.sub(r"\s+", " ", phrase.strip().lower()).rstrip(".")
    return re.sub(r"^(a|an|the) ", "", text)


def lookup(kind: str, phrase: str, table: Mapping[str, str]) -> str:
    """The contract value of a clinical phrase, or ``UnknownTerm`` naming what is known."""
    key = normalise(phrase)
    if key in table:
        return table[key]
    raise UnknownTerm(kind, phrase, table)


DISEASES: dict[str, str] = {
    "large b-cell lymphoma": "LBCL", "diffuse large b-cell lymphoma": "LBCL", "dlbcl": "LBCL", "lbcl": "LBCL",
    "high-grade b-cell lymphoma": "LBCL", "primary mediastinal b-cell lymphoma": "LBCL",
    "transformed follicular lymphoma": "LBCL",
    "follicular lymphoma": "FL", "fl": "FL",
    "mantle cell lymphoma": "MCL", "mantle-cell lymphoma": "MCL", "mcl": "MCL",
    "b-cell acute lymphoblastic leukemia": "B_ALL", "b-cell acute lymphoblastic leukaemia": "B_ALL",
    "b-all": "B_ALL", "b-cell all": "B_ALL",
    "multiple myeloma": "MM", "myeloma": "MM", "mm": "MM",
    "chronic lymphocytic leukemia": "CLL", "chronic lymphocytic leukaemia": "CLL", "cll": "CLL",
}

PRODUCTS: dict[str, str] = {
    "axi-cel": "axi-cel", "axicabtagene ciloleucel": "axi-cel", "yescarta": "axi-cel",
    "tisa-cel": "tisa-cel", "tisagenlecleucel": "tisa-cel", "kymriah": "tisa-cel",
    "liso-cel": "liso-cel", "lisocabtagene maraleucel": "liso-cel", "breyanzi": "liso-cel",
    "brexu-cel": "brexu-cel", "brexucabtagene autoleucel": "brexu-cel", "tecartus": "brexu-cel",
    "obe-cel": "obe-cel", "obecabtagene autoleucel": "obe-cel", "aucatzyl": "obe-cel",
    "ide-cel": "ide-cel", "idecabtagene vicleucel": "ide-cel", "abecma": "ide-cel",
    "cilta-cel": "cilta-cel", "ciltacabtagene autoleucel": "cilta-cel", "carvykti": "cilta-cel",
    "an investigational car-t": "investigational", "investigational car-t": "investigational",
    "investigational product": "investigational",
}

RESPONSES: dict[str, str] = {
    "complete response": "CR", "complete remission": "CR", "cr": "CR",
    "partial response": "PR", "partial remission": "PR", "pr": "PR",
    "stable disease": "SD", "sd": "SD",
    "progressive disease": "PD", "progression": "PD", "pd": "PD",
    "not evaluable": "not_evaluable",
}

DONORS: dict[str, str] = {
    "matched related": "matched_related", "matched sibling": "matched_related",
    "matched unrelated": "matched_unrelated", "haploidentical": "haploidentical",
    "mismatched unrelated": "mismatched_unrelated", "cord blood": "cord_blood",
}

GOALS: dict[str, str] = {
    "quality of life": "quality_of_life", "disease control": "disease_control",
    "undecided": "undecided", "not yet decided": "undecided",
}

#: Drug or class names a clinician uses for a prior bispecific antibody, to the contract's class.
ANTIBODY_DRUGS: dict[str, str] = {
    "cd20xcd3 bispecific antibody": "CD20xCD3", "cd20-directed bispecific antibody": "CD20xCD3",
    "glofitamab": "CD20xCD3", "epcoritamab": "CD20xCD3", "mosunetuzumab": "CD20xCD3",
    "odronextamab": "CD20xCD3",
    "cd19xcd3 bispecific antibody": "CD19xCD3", "blinatumomab": "CD19xCD3",
    "bcmaxcd3 bispecific antibody": "BCMAxCD3", "bcma-directed bispecific antibody": "BCMAxCD3",
    "teclistamab": "BCMAxCD3", "elranatamab": "BCMAxCD3", "linvoseltamab": "BCMAxCD3",
    "gprc5dxcd3 bispecific antibody": "GPRC5DxCD3", "talquetamab": "GPRC5DxCD3",
    "fcrh5xcd3 bispecific antibody": "FcRH5xCD3", "cevostamab": "FcRH5xCD3",
}

#: Drug or class names for earlier non-bispecific therapy, to the contract's agent class.
THERAPY_CLASSES: dict[str, str] = {
    "ibrutinib": "covalent_btk_inhibitor", "acalabrutinib": "covalent_btk_inhibitor",
    "zanubrutinib": "covalent_btk_inhibitor", "a covalent btk inhibitor": "covalent_btk_inhibitor",
    "covalent btk inhibitor": "covalent_btk_inhibitor", "pirtobrutinib": "pirtobrutinib",
    "venetoclax": "venetoclax", "idelalisib": "pi3k_inhibitor", "duvelisib": "pi3k_inhibitor",
    "a pi3k inhibitor": "pi3k_inhibitor", "chemoimmunotherapy": "chemoimmunotherapy",
    "inotuzumab": "inotuzumab", "inotuzumab ozogamicin": "inotuzumab",
    "imatinib": "tki", "dasatinib": "tki", "ponatinib": "tki", "a tyrosine kinase inhibitor": "tki",
    "polatuzumab": "polatuzumab", "loncastuximab": "loncastuximab", "tafasitamab": "tafasitamab",
    "lenalidomide": "lenalidomide", "daratumumab": "anti_cd38", "isatuximab": "anti_cd38",
    "an anti-cd38 antibody": "anti_cd38", "belantamab": "belantamab", "belantamab mafodotin": "belantamab",
}

#: Histologies as a pathologist reports them, to the contract's subtype.
HISTOLOGIES: dict[str, str] = {
    "diffuse large b-cell lymphoma, not otherwise specified": "DLBCL_NOS", "dlbcl nos": "DLBCL_NOS",
    "high-grade b-cell lymphoma with myc and bcl2 rearrangements": "HGBL_double_hit",
    "double-hit lymphoma": "HGBL_double_hit",
    "primary mediastinal b-cell lymphoma": "PMBCL", "transformed follicular lymphoma": "transformed_FL",
    "follicular lymphoma grade 1-2": "FL_grade_1_2", "follicular lymphoma grade 3a": "FL_grade_3A",
    "classic mantle cell lymphoma": "MCL_classic", "blastoid mantle cell lymphoma": "MCL_blastoid",
    "pleomorphic mantle cell lymphoma": "MCL_blastoid",
}

OPTIONS: dict[str, str] = {
    "second car-t infusion": "second_car_t_infusion", "second infusion of the same car-t": "second_car_t_infusion",
    "re-infusion of the same car-t": "second_car_t_infusion",
    "car-t against another target": "alternate_target_car_t",
    "car-t against a different target": "alternate_target_car_t",
    "alternate-target car-t": "alternate_target_car_t",
    "bispecific antibody": "bispecific_antibody", "bispecific antibodies": "bispecific_antibody",
    "t-cell-engaging bispecific antibody": "bispecific_antibody",
    "clinical trial": "clinical_trial", "enrolment in a clinical trial": "clinical_trial",
    "allogeneic transplant": "allogeneic_hct", "allogeneic hct": "allogeneic_hct",
    "allogeneic stem cell transplantation": "allogeneic_hct",
    "focus on quality of life": "quality_of_life_focus", "care focused on quality of life": "quality_of_life_focus",
    "quality-of-life focus": "quality_of_life_focus",
    "radiotherapy": "radiotherapy", "radiotherapy to the relapsing site": "radiotherapy",
    "other systemic therapy": "other_systemic_therapy", "another systemic therapy": "other_systemic_therapy",
    "long-term follow-up": "long_term_follow_up", "lifelong follow-up": "long_term_follow_up",
}

VERDICTS: dict[str, str] = {
    "recommended": "recommended",
    "to be considered": "consider", "considered": "consider", "worth considering": "consider",
    "not advised": "not_advised",
}

#: Missing information as a clinician names it, to the situation field postcart asks for.
INFORMATION: dict[str, str] = {
    "cd20 status": "failure.cd20", "cd20 on the failure biopsy": "failure.cd20",
    "target antigen status": "failure.target_antigen", "re-biopsy for the car target": "failure.target_antigen",
    "cd19 status": "failure.target_antigen", "bcma status": "failure.target_antigen",
    "re-biopsy for cd19": "failure.target_antigen", "re-biopsy for bcma": "failure.target_antigen",
    "car-t persistence": "failure.car_t_persistence",
    "hct-ci": "fitness.hct_ci", "comorbidity index": "fitness.hct_ci",
    "organ function": "fitness.organ_function_adequate",
    "donor search": "donor", "donor": "donor", "donor availability": "donor",
    "patient's goals": "goals", "patient's priorities": "goals", "goals of care": "goals",
    "trial access": "trial_access", "clinical trial availability": "trial_access",
    "worst crs grade": "car_t.max_crs_grade", "worst icans grade": "car_t.max_icans_grade",
    "prior lines of therapy": "history.prior_lines", "number of prior lines": "history.prior_lines",
    "cd22 status": "failure.cd22", "cd22 on the blasts": "failure.cd22",
    "histology": "histology", "biopsy to exclude transformation": "histology",
    "mrd": "disease_status.mrd", "measurable residual disease": "disease_status.mrd",
    "cns site": "failure.cns_site", "site of the cns disease": "failure.cns_site",
}
