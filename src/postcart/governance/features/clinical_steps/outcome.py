"""When and Then steps: run postcart on the scenario's patient and check what it says, as a clinician reads it.

"Then <option> is <verdict>" makes that option the one the following "And the rationale ..." steps
speak about. Every check records the rules behind what it checked, so the coverage report can tell the
rules a scenario asserted from those that merely fired.
"""

from __future__ import annotations

from typing import Any

from postcart.assessment import OptionAssessment
from postcart.engine import Engine
from postcart.errors import InvalidSituation
from postcart.evaluation import assess as assess_situation
from postcart.governance.features.clinical_steps.case import PatientCase
from postcart.governance.features.clinical_steps.registry import step
from postcart.governance.features.clinical_steps.vocabulary import (
    INFORMATION,
    OPTIONS,
    VERDICTS,
    UnknownTerm,
    lookup,
    normalise,
)
from postcart.situation import validate_situation

_VERDICT_WORDS = {"recommended": "recommended", "consider": "to be considered", "not_advised": "not advised"}


@step("when", "postcart assesses the situation", "postcart assesses the situation")
def assess(case: PatientCase, engine: Engine) -> None:
    """Validate the situation (naming the step behind any refused value) and run the rules."""
    try:
        situation = validate_situation(case.data)
    except InvalidSituation as error:
        lines = [f"{problem}  [from {case.source_of(problem.location)}]" for problem in error.problems]
        raise case.fail("the patient described is not a valid situation:\n  - " + "\n  - ".join(lines)) from None
    case.assessment = assess_situation(engine, situation)  # what evaluate() answers, unknowns completed
    case.focus = None


def _assessment(case: PatientCase) -> Any:
    if case.assessment is None:
        raise case.fail("no assessment yet: a 'When postcart assesses the situation' step must come first")
    return case.assessment


def _option_id(case: PatientCase, phrase: str) -> str:
    try:
        return lookup("treatment option", phrase, OPTIONS)
    except UnknownTerm as error:
        raise case.fail(str(error)) from None


def _summary(case: PatientCase) -> str:
    assessment = _assessment(case)
    said = [f"{o.option}: {o.verdict}" for o in assessment.options]
    return "postcart said " + ("; ".join(said) if said else "nothing about any option")


@step("then", "{option} {be:IsAre} {verdict:Verdict}", "a bispecific antibody is recommended", "allogeneic transplant is to be considered",
      "a second CAR-T infusion is not advised")
def option_verdict(case: PatientCase, option: str, verdict: str) -> None:
    """The option got this verdict; it becomes the focus of the following rationale steps."""
    name = _option_id(case, option)
    expected = VERDICTS[normalise(verdict)]
    found = _assessment(case).option(name)
    if found is None:
        raise case.fail(f"expected {option} to be {verdict}, but no rule addressed it ({_summary(case)})")
    case.focus = found
    case.asserted_rules.update(found.rules)
    case.checks.append(f"{name} is {expected}")
    if found.verdict != expected:
        raise case.fail(f"expected {option} to be {verdict}, but it is {_VERDICT_WORDS[found.verdict]} "
                        f"(rules {', '.join(found.rules)}; rationale: {found.rationale})")


@step("then", "{option} {be:IsAre} not addressed", "a second CAR-T infusion is not addressed")
def option_silent(case: PatientCase, option: str) -> None:
    """No rule spoke to the option for this patient."""
    name = _option_id(case, option)
    found = _assessment(case).option(name)
    case.checks.append(f"{name} is not addressed")
    if found is not None:
        raise case.fail(f"expected no verdict on {option}, but it is {_VERDICT_WORDS[found.verdict]} "
                        f"(rules {', '.join(found.rules)})")


def _focus(case: PatientCase) -> OptionAssessment:
    if case.focus is None:
        raise case.fail("say which option first, e.g. 'Then a bispecific antibody is recommended'")
    return case.focus


@step("then", "the rationale cites {reference}", "the rationale cites Dickinson 2022")
def cites(case: PatientCase, reference: str) -> None:
    """The focused option cites a reference, named by its label (e.g. 'Dickinson 2022') or key."""
    option = _focus(case)
    wanted = normalise(reference)
    for citation in option.citations:
        label = normalise(citation.label)
        if wanted in (label, citation.key.lower()) or label.startswith(wanted):
            case.checks.append(f"{option.option} cites {citation.label}")
            return
    given = ", ".join(c.label for c in option.citations) or "nothing"
    raise case.fail(f"{option.option} does not cite {reference!r}; it cites {given}")


@step("then", 'the rationale mentions "{text:Quoted}"', 'the rationale mentions "CD20"')
def rationale_mentions(case: PatientCase, text: str) -> None:
    option = _focus(case)
    if text.lower() not in option.rationale.lower():
        raise case.fail(f"the rationale for {option.option} does not mention {text!r}: {option.rationale}")
    case.checks.append(f"{option.option} rationale mentions {text}")


@step("then", 'the reasons include "{text:Quoted}"', 'the reasons include "relapse"')
def reasons_include(case: PatientCase, text: str) -> None:
    """Some rule that spoke to the focused option (deciding or not) says this in its rationale or facts."""
    option = _focus(case)
    texts = [reason.rationale for reason in option.reasons] + list(option.because)
    if not any(text.lower() in item.lower() for item in texts):
        raise case.fail(f"no reason given for {option.option} mentions {text!r}: {texts}")
    case.checks.append(f"{option.option} reasons include {text}")


def _field(case: PatientCase, phrase: str) -> str:
    try:
        return lookup("piece of information", phrase, INFORMATION)
    except UnknownTerm as error:
        raise case.fail(str(error)) from None


@step("then", "postcart asks for {information}", "postcart asks for the CD20 status")
def asks_for(case: PatientCase, information: str) -> None:
    """postcart lists this field as missing information that would change the answer."""
    field = _field(case, information)
    missing = {item.field: item for item in _assessment(case).missing_information}
    case.checks.append(f"asks for {field}")
    if field not in missing:
        asked = ", ".join(missing) or "nothing"
        raise case.fail(f"expected postcart to ask for {field}; it asked for {asked}")
    case.asserted_rules.update(missing[field].rules)


@step("then", "postcart does not ask for {information}", "postcart does not ask for the donor search")
def does_not_ask_for(case: PatientCase, information: str) -> None:
    field = _field(case, information)
    case.checks.append(f"does not ask for {field}")
    for item in _assessment(case).missing_information:
        if item.field == field:
            raise case.fail(f"postcart asks for {field} ({item.why}; rules {', '.join(item.rules)})")


@step("then", "postcart classes the {fact} as {value}", "postcart classes the failure timing as early")
def derived_fact(case: PatientCase, engine: Engine, fact: str, value: str) -> None:
    """A derived fact (named by its title or name) has this value ('yes'/'no' for true/false facts)."""
    _check_fact(case, engine, fact, value)


@step("then", "postcart finds {negation:No?}{fact}",
      "postcart finds a poor prognosis after CAR-T failure", "postcart finds no severe toxicity with the first CAR-T",
      "postcart finds the patient a candidate for allogeneic transplant")
def finds(case: PatientCase, engine: Engine, negation: bool | None, fact: str) -> None:
    """A yes/no judgement postcart derived, e.g. a poor prognosis, or an allogeneic donor available."""
    _check_fact(case, engine, fact.removeprefix("the patient "), "no" if negation else "yes")


def _check_fact(case: PatientCase, engine: Engine, fact: str, value: str) -> None:
    declarations = engine.rulebook.facts
    names = {normalise(name.replace("_", " ")): name for name in declarations}
    names.update({normalise(d.title): name for name, d in declarations.items() if d.title})
    try:
        name = lookup("derived fact", fact, names)
    except UnknownTerm as error:
        raise case.fail(str(error)) from None
    wanted = _fact_value(case, declarations[name].values, value)
    actual = _assessment(case).derived.get(name, declarations[name].default)
    case.checks.append(f"{name} is {wanted}")
    if actual != wanted:
        raise case.fail(f"expected {fact} to be {value}, but postcart derived {actual!r}")
    case.asserted_rules.update(
        rule.id for rule in engine.rulebook.rules
        if getattr(rule.then, "derive", None) == name and rule.id in _assessment(case).audit.rules_fired
    )


def _fact_value(case: PatientCase, values: tuple[Any, ...], phrase: str) -> Any:
    """A derived fact's value from words: 'very early' -> very_early; 'yes'/'no' for true/false facts."""
    words = normalise(phrase)
    for value in values:
        if str(value).lower() in (words, words.replace(" ", "_")):
            return value
    boolean = {"yes": True, "no": False}.get(words)
    if boolean is not None and boolean in values:
        return boolean
    raise case.fail(f"{phrase!r} is not a value of this fact; its values are {', '.join(map(str, values))}")
