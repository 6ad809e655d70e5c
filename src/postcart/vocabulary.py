"""The clinical vocabulary, written once: diseases, options and verdicts, their order and the words shown.

Every other module takes these names from here; adding an option is one entry in ``OPTION_WORDS`` (and
its rules). The order of ``OPTIONS`` is the order options are listed in; ``VERDICTS`` runs strongest
first, the order suggestions combine in.

>>> option_name("allogeneic_hct")
'Allogeneic stem cell transplant'
>>> VERDICTS.index("recommended") < VERDICTS.index("not_advised")
True
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "DISEASES",
    "DISEASE_WORDS",
    "OPTIONS",
    "OPTION_WORDS",
    "VERDICTS",
    "VERDICT_WORDS",
    "DiseaseName",
    "OptionName",
    "VerdictName",
    "disease_name",
    "option_name",
    "verdict_name",
]

DiseaseName = Literal["LBCL", "FL", "MCL", "B_ALL", "MM", "CLL"]
OptionName = Literal[
    "second_car_t_infusion", "alternate_target_car_t", "bispecific_antibody", "clinical_trial",
    "allogeneic_hct", "quality_of_life_focus", "radiotherapy", "other_systemic_therapy", "long_term_follow_up",
]
VerdictName = Literal["recommended", "consider", "not_advised"]

#: The diseases, as clinicians name them.
DISEASE_WORDS: dict[str, str] = {
    "LBCL": "large B-cell lymphoma",
    "FL": "follicular lymphoma",
    "MCL": "mantle cell lymphoma",
    "B_ALL": "B-cell acute lymphoblastic leukaemia",
    "MM": "multiple myeloma",
    "CLL": "chronic lymphocytic leukaemia",
}

#: The nine options, in the order they are listed, with the words shown for each.
OPTION_WORDS: dict[str, str] = {
    "second_car_t_infusion": "Second CAR-T infusion",
    "alternate_target_car_t": "CAR-T against another target",
    "bispecific_antibody": "Bispecific antibody",
    "clinical_trial": "Clinical trial",
    "allogeneic_hct": "Allogeneic stem cell transplant",
    "quality_of_life_focus": "Quality-of-life focus",
    "radiotherapy": "Radiotherapy",
    "other_systemic_therapy": "Other systemic therapy",
    "long_term_follow_up": "Long-term follow-up",
}

#: Strongest first, with the heading each is shown under.
VERDICT_WORDS: dict[str, str] = {
    "recommended": "Recommended",
    "consider": "Consider",
    "not_advised": "Not advised",
}

DISEASES: tuple[str, ...] = tuple(DISEASE_WORDS)
OPTIONS: tuple[str, ...] = tuple(OPTION_WORDS)
VERDICTS: tuple[str, ...] = tuple(VERDICT_WORDS)


def option_name(option: str) -> str:
    """The words shown for an option id (the id itself when it is not one of the nine)."""
    return OPTION_WORDS.get(option, option)


def disease_name(disease: str) -> str:
    """The words shown for a disease id."""
    return DISEASE_WORDS.get(disease, disease)


def verdict_name(verdict: str) -> str:
    """The heading shown for a verdict."""
    return VERDICT_WORDS.get(verdict, verdict)
