"""The output contract: an ``Assessment`` built from the rules that fired, and the verdict policy.

``evaluate()`` (the front door) is :mod:`postcart.evaluation`; this module never runs the engine, so
renderers that import it do not load durable-rules.

Where several rules speak to one option: rules named in another fired rule's ``overrides`` are set aside
(the stated precedence); then a ``not_advised`` from a contraindication wins; otherwise the strongest
suggestion (recommended > consider > not_advised). Every rule's reason stays visible.

Completed unknowns (:mod:`postcart.unknowns`, read through the :class:`Unknowns` protocol) add pending
questions and pending options; every option not given a verdict is listed in ``not_addressed`` with its
reason. It is one module because the contract's models, the verdict policy and the words for the facts
behind each verdict and each silence are built together in one pass over the fired rules, and change
together when the contract does.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from postcart.errors import EvaluationError
from postcart.rulebook import Ask, Evidence, Rule, Rulebook, Suggest
from postcart.rulebook import conditions as cond
from postcart.situation import PatientSituation, field_catalogue
from postcart.vocabulary import OPTIONS, VERDICTS, DiseaseName, OptionName, VerdictName

if TYPE_CHECKING:
    from postcart.engine import EngineResult

__all__ = [
    "DISCLAIMER",
    "Assessment",
    "Citation",
    "MissingInformation",
    "NotAddressed",
    "OptionAssessment",
    "Pending",
    "PendingOutcome",
    "Reason",
    "build_assessment",
    "decide",
    "explain_false",
    "explain_true",
    "package_version",
    "say",
    "situation_hash",
]

DISCLAIMER = (
    "Decision support only. postcart summarises published evidence and expert guidance for the treating "
    "team; it does not replace clinical judgement, multidisciplinary review or the patient's own "
    "choices, and it may be incomplete or out of date. Verify every suggestion against the cited sources "
    "and current guidelines before acting."
)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Citation(_Out):
    """A source a clinician can check."""

    key: str = Field(description="The bibliography key (rules/references.yaml).")
    label: str = Field(description="How the source is named in text, e.g. 'Dickinson 2022 (glofitamab)'.")
    doi: str | None = Field(default=None, description="The publication's DOI, when it has one.")
    pmid: str | None = Field(default=None, description="The PubMed id, when it has one.")
    url: str | None = Field(default=None, description="The link shown: https://doi.org/<doi>, else the PubMed "
                            "record, else an official page.")


class Reason(_Out):
    """What one rule said about an option."""

    rule: str = Field(description="The rule's id.")
    title: str = Field(description="The rule's title, in words.")
    verdict: VerdictName = Field(description="The verdict this rule gives the option.")
    contraindication: bool = Field(description="Whether this rule states a contraindication (it then wins).")
    rationale: str = Field(description="The rule's rationale, in clinical language.")
    citations: list[str] = Field(description="Bibliography keys this rule cites.")


class PendingOutcome(_Out):
    """What one answer to a pending question would make of the option."""

    value: str = Field(description="The answer, in words ('adequate', '0-2', 'identified').")
    verdict: Literal["recommended", "consider", "not_advised", "not_addressed"] = Field(
        description="The option's strongest verdict once the input has this value, other unknowns still open "
        "(re-run by the engine); not_addressed: no rule would speak to it.")


class Pending(_Out):
    """An unknown input whose answer would change the option's verdict."""

    field: str = Field(description="The input's dotted path, e.g. 'fitness.organ_function_adequate'.")
    question: str = Field(description="The question in a clinician's words (rules/rulebook.yaml, unknowns).")
    outcomes: list[PendingOutcome] = Field(description="The verdict each plausible answer leads to.")


class NotAddressed(_Out):
    """An option the assessment does not give a verdict, and why."""

    option: OptionName = Field(description="The option's id.")
    reason: str = Field(description="The rulebook's reason for leaving it unaddressed in this disease, or "
                        "'no rule applies: ...' naming the facts that decided it.")


class OptionAssessment(_Out):
    """One next step with its verdict, rationale, the facts behind it and its sources."""

    option: OptionName = Field(description="The option's id (see postcart.vocabulary for the words shown).")
    verdict: VerdictName = Field(description="recommended, consider or not_advised, after the combination policy.")
    rationale: str = Field(description="Plain-language rationale of the deciding rule(s).")
    citations: list[Citation] = Field(description="The sources of every rule that spoke to this option.")
    rules: list[str] = Field(description="Ids of every rule that spoke to this option.")
    because: list[str] = Field(description="The input facts that made those rules fire, in words.")
    reasons: list[Reason] = Field(description="Each rule's own verdict and rationale, deciding ones first.")
    pending: list[Pending] = Field(
        default=[], description="Unknown inputs whose answers would change this verdict, most decisive first. "
        "An option no rule addresses on today's facts but that an answer would make recommended or consider "
        "is listed as consider with its pending questions (rules: the rules that would then decide).")
    evidence: Evidence | None = Field(
        default=None, description="The evidence grade of the deciding rule (level A-E and basis); always given for "
        "recommended and consider, when the deciding rule states one for not_advised.")


class MissingInformation(_Out):
    """An input not yet known that would change the answer."""

    field: str = Field(description="The input's dotted path in the input contract, e.g. 'fitness.hct_ci'.")
    why: str = Field(description="Why it matters, in clinical language.")
    rules: list[str] = Field(description="Ids of the rules that ask for it.")
    citations: list[Citation] = Field(default=[], description="Sources behind the question.")
    question: str = Field(default="", description="The question in a clinician's words.")
    options: list[OptionName] = Field(default=[], description="The options whose verdict waits on it.")


class RulebookInfo(_Out):
    """Which rulebook gave the answer."""

    version: str = Field(description="The rulebook's version (rules/rulebook.yaml).")
    content_hash: str = Field(description="SHA-256 over every rule file's name and content.")


class Audit(_Out):
    """Enough to reproduce the assessment, without the patient's data."""

    input_hash: str = Field(description="HMAC-SHA256 under this installation's audit key of the validated situation "
                            "(canonical JSON, without the patient label), not the data; the same input gives the same "
                            "hash on one installation only.")
    rulebook_version: str = Field(description="The rulebook's version.")
    rulebook_hash: str = Field(description="The rulebook's content hash.")
    postcart_version: str = Field(description="The postcart release that evaluated.")
    durable_rules_version: str = Field(description="The durable-rules release that ran the rules.")
    evaluated_at: dt.datetime = Field(
        default_factory=lambda: dt.datetime.now(dt.UTC),
        description="When the assessment was made (UTC). The only part that differs between reruns.")
    rules_fired: list[str] = Field(description="Every rule that fired, in firing order.")
    approving_reviews: dict[str, list[str]] | None = Field(
        default=None, description="For each rule that fired, the recorded reviews (file names under the rules "
        "directory's reviews/) approving its current version; an empty list names a rule awaiting review.")


class Assessment(_Out):
    """The answer for one patient: the options by verdict, what is missing, and how it was reached."""

    patient_id: str | None = Field(default=None, description="The pseudonymous label given with the input.")
    disease: DiseaseName = Field(description="The patient's disease, as given.")
    options: list[OptionAssessment] = Field(description="The options some rule addressed, strongest verdict first.")
    not_addressed: list[NotAddressed] = Field(
        default=[], description="Every one of the nine options not in `options`, each with its reason.")
    missing_information: list[MissingInformation] = Field(
        description="Inputs that would change the answer, most verdicts changed first, then clinical urgency.")
    derived: dict[str, Any] = Field(description="The intermediate judgements the rules derived (failure timing, ...).")
    rulebook: RulebookInfo = Field(description="The rulebook that gave the answer.")
    audit: Audit = Field(description="Enough to reproduce the assessment, without the patient's data.")
    disclaimer: str = Field(default=DISCLAIMER, description="The decision-support disclaimer.")

    def option(self, name: str) -> OptionAssessment | None:
        """The assessment of one option, or None when no rule addressed it."""
        return next((item for item in self.options if item.option == name), None)

    def reproducible(self) -> dict[str, Any]:
        """The JSON form without the evaluation time: identical for the same input and rulebook."""
        data = self.model_dump(mode="json")
        del data["audit"]["evaluated_at"]
        return data


class Unknowns(Protocol):
    """What re-running the rules over the unknown inputs showed (made by :mod:`postcart.unknowns`)."""

    @property
    def options(self) -> Mapping[str, Any]:
        """Per option: ``verdict`` (None: no verdict of its own), ``rationale``, ``rules``, ``because``, ``pending``."""
        ...

    def pending(self, option: str) -> list[Pending]:
        """The questions whose answers would change an option the rules address."""
        ...

    def not_addressed_note(self, option: str) -> str:
        """What to add to an unaddressed option's reason ('; not advised if ...'), or nothing."""
        ...

    def rank_missing(self, rulebook: Rulebook, missing: list[MissingInformation],
                     present: set[str]) -> list[MissingInformation]:
        """The missing information with its questions and waiting options, ranked."""
        ...


def build_assessment(rulebook: Rulebook, situation: PatientSituation, result: EngineResult,
                     unknowns: Unknowns | None = None) -> Assessment:
    """Turn the rules that fired into the clinician-facing assessment.

    Args:
        unknowns: what the engine's re-runs over the unknown inputs showed (:mod:`postcart.unknowns`);
            without it, an unknown input counts as not holding (the rules' two-valued reading).
    """
    fired = [rulebook.rule(rule_id) for rule_id in result.fired]
    by_option: dict[str, list[Rule]] = {}
    for rule in fired:
        if isinstance(rule.then, Suggest):
            by_option.setdefault(rule.then.option, []).append(rule)

    options = [_option(rulebook, name, rules, result.facts, unknowns) for name, rules in by_option.items()]
    if unknowns is not None:
        for name in OPTIONS:
            found = unknowns.options.get(name)
            if name not in by_option and found is not None and found.verdict is not None:
                options.append(_pending_option(rulebook, found))
    options.sort(key=lambda item: (VERDICTS.index(item.verdict), OPTIONS.index(item.option)))
    present: set[str] = {item.option for item in options}
    missing = missing_asked(rulebook, fired)
    if unknowns is not None:
        missing = unknowns.rank_missing(rulebook, missing, present)
    return Assessment(
        patient_id=situation.patient_id,
        disease=situation.disease,
        options=options,
        not_addressed=_not_addressed(rulebook, situation.disease, present, result.facts, unknowns),
        missing_information=missing,
        derived=dict(result.derived),
        rulebook=RulebookInfo(version=rulebook.version, content_hash=rulebook.content_hash),
        audit=Audit(
            input_hash=situation_hash(situation),
            rulebook_version=rulebook.version,
            rulebook_hash=rulebook.content_hash,
            postcart_version=package_version("postcart"),
            durable_rules_version=package_version("durable-rules"),
            evaluated_at=dt.datetime.now(dt.UTC),
            rules_fired=list(result.fired),
            approving_reviews={rule_id: list(rulebook.approving(rule_id)) for rule_id in result.fired},
        ),
    )


_MISSING: dict[tuple[str, str, tuple[str, ...]], MissingInformation] = {}


def missing_asked(rulebook: Rulebook, fired: Iterable[Rule]) -> list[MissingInformation]:
    """The missing information the question rules among the fired rules ask for, in firing order."""
    asks: dict[str, list[Rule]] = {}
    for rule in fired:
        if isinstance(rule.then, Ask):
            asks.setdefault(rule.then.ask, []).append(rule)
    return [_missing(rulebook, field, rules) for field, rules in asks.items()]


def _missing(rulebook: Rulebook, field: str, rules: list[Rule]) -> MissingInformation:
    """The question rules' entry for one field (it depends only on the rulebook and those rules)."""
    key = (rulebook.memo_key, field, tuple(rule.id for rule in rules))
    item = _MISSING.get(key)
    if item is None:
        if len(_MISSING) >= 10_000:
            _MISSING.clear()
        item = _MISSING[key] = MissingInformation(
            field=field,
            why=" ".join(dict.fromkeys(rule.then.why for rule in rules if isinstance(rule.then, Ask))),
            rules=[rule.id for rule in rules],
            citations=_citations(rulebook, [key for rule in rules if isinstance(rule.then, Ask)
                                            for key in rule.then.citations]),
        )
    return item


def decide(suggestions: list[tuple[Rule, Suggest]]) -> tuple[str, list[tuple[Rule, Suggest]]]:
    """The combination policy over the rules that spoke to one option: its verdict and the deciding rules.

    Rules named in another's ``overrides`` are set aside; then a contraindication's ``not_advised`` wins;
    otherwise the strongest verdict.
    """
    overridden = {other for _, then in suggestions for other in then.overrides}
    standing = [pair for pair in suggestions if pair[0].id not in overridden] or suggestions
    contraindications = [(rule, then) for rule, then in standing
                         if then.contraindication and then.verdict == "not_advised"]
    if contraindications:
        return "not_advised", contraindications
    verdict = min((then.verdict for _, then in standing), key=VERDICTS.index)
    return verdict, [(rule, then) for rule, then in standing if then.verdict == verdict]


@dataclasses.dataclass(frozen=True)
class _OptionParts:
    """Everything of an option's assessment but its pending answers: a function of the rules that spoke to
    it and of the facts their words show, so computed once per such combination."""

    verdict: str
    rationale: str
    citations: tuple[Citation, ...]
    rules: tuple[str, ...]
    because: tuple[str, ...]
    reasons: tuple[Reason, ...]
    evidence: Any


_OPTION_PARTS: dict[tuple[Any, ...], _OptionParts] = {}
_OPTION_FIELDS: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}


def _option(rulebook: Rulebook, name: str, rules: list[Rule], facts: Mapping[str, Any],
            unknowns: Unknowns | None = None) -> OptionAssessment:
    ids = tuple(rule.id for rule in rules)
    fields = _OPTION_FIELDS.get((rulebook.memo_key, ids))
    if fields is None:
        fields = _OPTION_FIELDS[(rulebook.memo_key, ids)] = tuple(sorted(
            {path for rule in rules for path in _text_fields(rulebook, rule)}))
    key = (rulebook.memo_key, name, ids, *(facts.get(path) for path in fields))
    parts = _OPTION_PARTS.get(key)
    if parts is None:
        if len(_OPTION_PARTS) >= 50_000:
            _OPTION_PARTS.clear()
        parts = _OPTION_PARTS[key] = _option_parts(rulebook, rules, facts)
    return OptionAssessment(
        option=name,  # type: ignore[arg-type]
        verdict=parts.verdict,  # type: ignore[arg-type]
        rationale=parts.rationale,
        citations=list(parts.citations),
        rules=list(parts.rules),
        because=list(parts.because),
        reasons=list(parts.reasons),
        pending=unknowns.pending(name) if unknowns is not None else [],
        evidence=parts.evidence,
    )


def _option_parts(rulebook: Rulebook, rules: list[Rule], facts: Mapping[str, Any]) -> _OptionParts:
    suggestions = [(rule, rule.then) for rule in rules if isinstance(rule.then, Suggest)]
    verdict, deciding = decide(suggestions)
    deciding_ids = {rule.id for rule, _ in deciding}
    ordered = deciding + [pair for pair in suggestions if pair[0].id not in deciding_ids]
    keys = [key for _, then in ordered for key in then.citations]
    because: list[str] = []
    for rule, _ in ordered:
        for text in explain_true(rulebook, rule, facts):
            if text not in because:
                because.append(text)
    return _OptionParts(
        verdict=verdict,
        # the first deciding rule speaks: several rationales run together repeat their figures (all stay in
        # reasons)
        rationale=deciding[0][1].rationale.strip(),
        citations=tuple(_citations(rulebook, keys)),
        rules=tuple(rule.id for rule, _ in ordered),
        because=tuple(because),
        reasons=tuple(_reason(rulebook, rule) for rule, _ in ordered),
        evidence=next((then.evidence for _, then in deciding if then.evidence is not None), None),
    )


def _pending_option(rulebook: Rulebook, found: Any) -> OptionAssessment:
    """An option no rule addresses on today's facts, with the verdict its pending answers lead to."""
    return OptionAssessment(
        option=found.option,
        verdict=found.verdict,
        rationale=found.rationale,
        citations=_citations(rulebook, [key for rule in found.rules for key in rule.then.citations]),
        rules=[rule.id for rule in found.rules],
        because=list(found.because),
        reasons=[_reason(rulebook, rule) for rule in found.rules],
        pending=list(found.pending),
        # the grade of the rule that would decide once the pending answers are in
        evidence=next((rule.suggestion.evidence for rule in found.rules
                       if rule.suggestion is not None and rule.suggestion.evidence is not None), None),
    )


def _not_addressed(rulebook: Rulebook, disease: str, present: set[str], facts: Mapping[str, Any],
                   unknowns: Unknowns | None) -> list[NotAddressed]:
    """Each option without a verdict, with the rulebook's reason or the facts that kept its rules silent."""
    listed, speaking = _option_rules(rulebook, disease)
    out: list[NotAddressed] = []
    for name in OPTIONS:
        if name in present:
            continue
        reason = listed.get(name)
        if reason is None:
            rules = speaking.get(name, [])
            # the facts that kept the rules offering it silent; those of the rules against it only if none
            offering = [rule for rule in rules if rule.then.verdict != "not_advised"]  # type: ignore[union-attr]
            facts_text: list[str] = []
            for rule in offering or rules:
                if len(facts_text) >= 4:
                    break
                for text in explain_false(rulebook, rule, facts):
                    if text not in facts_text:
                        facts_text.append(text)
            if not rules:
                reason = f"no rule applies: no rule for {disease} speaks to this option"
            else:
                reason = "no rule applies: " + "; ".join(facts_text[:4] or ["the rules' conditions do not hold"])
            if unknowns is not None:
                reason += unknowns.not_addressed_note(name)
        out.append(NotAddressed(option=name, reason=reason))  # type: ignore[arg-type]
    return out


_OPTION_RULES: dict[tuple[str, str], tuple[dict[str, str], dict[str, list[Rule]]]] = {}


def _option_rules(rulebook: Rulebook, disease: str) -> tuple[dict[str, str], dict[str, list[Rule]]]:
    """For one disease: the rulebook's reasons for the options it leaves unaddressed, and the rules that
    speak to each option (both depend only on the rulebook's content)."""
    key = (rulebook.memo_key, disease)
    found = _OPTION_RULES.get(key)
    if found is None:
        listed: dict[str, str] = {cell.option: cell.reason.strip() for cell in rulebook.unaddressed
                                  if cell.disease == disease}
        speaking: dict[str, list[Rule]] = {}
        for rule in rulebook.rules_for(disease):
            if isinstance(rule.then, Suggest):
                speaking.setdefault(rule.then.option, []).append(rule)
        found = _OPTION_RULES[key] = (listed, speaking)
    return found


# Citations and reasons depend only on the rulebook's content: built once per content hash and key.
_CITATIONS: dict[tuple[str, str], Citation] = {}
_REASONS: dict[tuple[str, str], Reason] = {}


def _reason(rulebook: Rulebook, rule: Rule) -> Reason:
    cache_key = (rulebook.memo_key, rule.id)
    reason = _REASONS.get(cache_key)
    if reason is None:
        then = rule.then
        assert isinstance(then, Suggest)
        reason = _REASONS[cache_key] = Reason(
            rule=rule.id, title=rule.title, verdict=then.verdict, contraindication=then.contraindication,
            rationale=then.rationale.strip(), citations=list(then.citations))
    return reason


# The words for a rule's deciding comparisons depend only on the values of the fields it reads.
_TEXTS: dict[tuple[Any, ...], tuple[str, ...]] = {}


_TEXT_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {}


def _text_fields(rulebook: Rulebook, rule: Rule) -> tuple[str, ...]:
    """Every fact the words for a rule's comparisons can show: what it reads and what their phrases name."""
    key = (rulebook.memo_key, rule.id)
    fields = _TEXT_FIELDS.get(key)
    if fields is None:
        named = set(rule.reads)
        for path in rule.reads:
            _, said, _ = _words_for(rulebook, path)
            named.update(name for template in said.values() for name in _PLACEHOLDER.findall(template)
                         if name not in ("value", "label"))
        fields = _TEXT_FIELDS[key] = tuple(sorted(named))
    return fields


def _cached_texts(kind: bool, rulebook: Rulebook, rule: Rule, facts: Mapping[str, Any]) -> list[str]:
    key = (rulebook.memo_key, rule.id, kind, *(facts.get(path) for path in _text_fields(rulebook, rule)))
    texts = _TEXTS.get(key)
    if texts is None:
        if len(_TEXTS) >= 50_000:
            _TEXTS.clear()
        texts = _TEXTS[key] = tuple((_explain_true if kind else _explain_false)(rulebook, rule, facts))
    return list(texts)


def explain_true(rulebook: Rulebook, rule: Rule, facts: Mapping[str, Any]) -> list[str]:
    """The facts that made a rule's condition true, each said once in a clinician's words.

    E.g. ``ECOG 1`` or ``relapse 11 months after axi-cel (late)``: the patient's value, not the rule's
    threshold (that is the rule's, shown with its id in the detail). The words come from the input
    model's field metadata and the derived facts' declarations (``said``), never from code per disease.
    A rule that applies to every patient has no facts to give.
    """
    return _cached_texts(True, rulebook, rule, facts)


def explain_false(rulebook: Rulebook, rule: Rule, facts: Mapping[str, Any]) -> list[str]:
    """The comparisons that kept a rule's condition false for these facts, in words with the actual values.

    E.g. ``localized disease: no``; a derived fact is named with its value.
    """
    return _cached_texts(False, rulebook, rule, facts)


def _explain_true(rulebook: Rulebook, rule: Rule, facts: Mapping[str, Any]) -> list[str]:
    """The comparisons that made a rule's condition true for these facts, in words with the actual values.

    E.g. ``ECOG performance status 3 (> 2)``. A comparison under ``not`` counts when it is false, and is
    worded with the threshold it missed (``worst ICANS grade 1 (not ≥ 3)``).
    """
    if rule.condition is None:
        return []
    fields = dict.fromkeys(leaf.field for leaf, _ in _deciding_leaves(rule.condition, facts, True))
    return list(dict.fromkeys(say(rulebook, field, facts) for field in fields))


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")
_ONE_MONTH = re.compile(r"(?<![\d.])1 months\b")


_WORDS: dict[tuple[str, str], tuple[Mapping[str, str], Mapping[str, str], str]] = {}


def _words_for(rulebook: Rulebook, field: str) -> tuple[Mapping[str, str], Mapping[str, str], str]:
    """A fact's value words, its phrases and its kind (``bool``, ``set``, ``number`` or ``enum``)."""
    cache_key = (rulebook.memo_key, field)
    found = _WORDS.get(cache_key)
    if found is None:
        found = _WORDS[cache_key] = _read_words(rulebook, field)
    return found


def _read_words(rulebook: Rulebook, field: str) -> tuple[Mapping[str, str], Mapping[str, str], str]:
    if field.startswith("derived."):
        declaration = rulebook.facts.get(field.removeprefix("derived."))
        if declaration is None:
            return {}, {}, "enum"
        kind = "bool" if all(isinstance(value, bool) for value in declaration.values) else "enum"
        return declaration.words, declaration.said, kind
    spec = field_catalogue().get(field)
    if spec is None:
        return {}, {}, "enum"
    kind = {"int": "number", "float": "number", "bool": "bool", "set": "set"}.get(spec.kind, "enum")
    return dict(spec.words), dict(spec.said), kind


def _key(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)) and not value:
        return "none"
    return cond.render_value(value)


def _word(rulebook: Rulebook, field: str, facts: Mapping[str, Any]) -> str:
    """How a fact's value is said inside other words: ``late``, ``matched unrelated``, ``11``."""
    value = facts.get(field)
    words, _, _ = _words_for(rulebook, field)
    key = _key(value)
    if key in words:
        return words[key]
    if value is None:
        return "not known"
    return cond.render_value(value).replace("_", " ")


def say(rulebook: Rulebook, field: str, facts: Mapping[str, Any]) -> str:
    """One fact in a clinician's words, with the patient's value: ``ECOG 1``, ``no donor identified yet``."""
    value = facts.get(field)
    _, said, kind = _words_for(rulebook, field)
    key = _key(value)
    if key in said:
        template = said[key]
    elif value is None:
        template = "{label} not known"
    elif kind == "bool":
        template = "{label}" if value else "no {label}"
    elif kind == "set" and key == "none":
        template = "no {label}"
    else:
        template = said.get("*", "{label} {value}" if kind == "number" else "{label}: {value}")
    others = tuple(name for name in _placeholders(template) if name not in ("value", "label"))
    # the words depend only on the rulebook, the template and the values it names: said once per process
    memo_key = (rulebook.memo_key, field, template, value, tuple(facts.get(name) for name in others))
    text = _SAID.get(memo_key)
    if text is None:
        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name == "value":
                return _word(rulebook, field, facts)
            if name == "label":
                return rulebook.label(field)
            return _word(rulebook, name, facts)

        text = _ONE_MONTH.sub("1 month", _PLACEHOLDER.sub(fill, template))
        if len(_SAID) > 50_000:  # a long cohort run: keep the memo bounded
            _SAID.clear()
        _SAID[memo_key] = text
    return text


_SAID: dict[tuple[Any, ...], str] = {}


@functools.lru_cache(maxsize=512)
def _placeholders(template: str) -> tuple[str, ...]:
    return tuple(_PLACEHOLDER.findall(template))


def _explain_false(rulebook: Rulebook, rule: Rule, facts: Mapping[str, Any]) -> list[str]:
    """The facts that kept a rule's condition false, each said as :func:`say` says it."""
    if rule.condition is None:
        return []
    fields = dict.fromkeys(leaf.field for leaf, _ in _deciding_leaves(rule.condition, facts, False))
    return list(dict.fromkeys(say(rulebook, field, facts) for field in fields))


def _deciding_leaves(condition: cond.Condition, facts: Mapping[str, Any],
                     wanted: bool) -> Iterator[tuple[cond.Comparison, bool]]:
    """The comparisons that give ``condition`` the value ``wanted``, each with the value it has."""
    if isinstance(condition, cond.Comparison):
        if condition.holds(facts) is wanted:
            yield condition, wanted
    elif isinstance(condition, cond.Not):
        yield from _deciding_leaves(condition.item, facts, not wanted)
    else:
        for item in condition.items:
            if cond.evaluate(item, facts) is wanted:
                yield from _deciding_leaves(item, facts, wanted)


def _citations(rulebook: Rulebook, keys: list[str]) -> list[Citation]:
    out = []
    for key in dict.fromkeys(keys):
        citation = _CITATIONS.get((rulebook.memo_key, key))
        if citation is None:
            reference = rulebook.references[key]
            citation = _CITATIONS[(rulebook.memo_key, key)] = Citation(
                key=key, label=reference.label, doi=reference.doi, pmid=reference.pmid, url=reference.link)
        out.append(citation)
    return out


def situation_hash(situation: PatientSituation) -> str:
    """HMAC-SHA256, under this installation's audit key, of the validated situation's canonical JSON.

    Keyed, because a plain hash of a low-entropy input is reversed by enumerating plausible situations
    (11 hidden fields were recovered in 41 s) and links one patient's records across sites: with a key
    per installation the same input still gives the same hash on one site (``reproducible()`` keeps its
    meaning) and nothing elsewhere. The key: :func:`audit_key_path`. The pseudonymous ``patient_id``
    label is left out: the same clinical input hashes the same whoever it is labelled as.
    """
    canonical = json.dumps(situation.model_dump(mode="json", exclude={"patient_id"}), sort_keys=True,
                           separators=(",", ":"))
    return hmac.new(_audit_key(), canonical.encode(), hashlib.sha256).hexdigest()


def audit_key_path() -> Path:
    """Where this installation's audit key lives: ``$POSTCART_AUDIT_KEY`` (a file path) if set, else
    ``$XDG_CONFIG_HOME/postcart/audit.key``, else ``~/.config/postcart/audit.key``. The key (32 random
    bytes, hex) is created there on first use, readable by its owner only (mode 0600). Keep it with the
    audit records: without it, an audit hash can no longer be recomputed; share it with no one."""
    explicit = os.environ.get("POSTCART_AUDIT_KEY")
    if explicit:
        return Path(explicit).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "postcart" / "audit.key"


_AUDIT_KEYS: dict[str, bytes] = {}


def _audit_key() -> bytes:
    # No lock: two threads reading the key at once both read the same file (its creation is O_EXCL), and
    # a lock held by another thread at fork() time would deadlock the child's first evaluation.
    # Keyed on the variables that decide the path, so that the path is not rebuilt on every evaluation.
    environ = os.environ
    where = f"{environ.get('POSTCART_AUDIT_KEY')}\0{environ.get('XDG_CONFIG_HOME')}\0{environ.get('HOME')}"
    key = _AUDIT_KEYS.get(where)
    if key is None:
        key = _AUDIT_KEYS[where] = _read_or_create_key(audit_key_path())
    return key


def _read_or_create_key(path: Path) -> bytes:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise EvaluationError(f"{path}: the audit key cannot be read or created "
                              f"({getattr(error, 'strerror', None) or type(error).__name__}); set POSTCART_AUDIT_KEY "
                              "to a writable file path") from None
    if len(text) < 32:
        raise EvaluationError(f"{path}: the audit key is too short (a file of at least 32 hex characters is "
                              "expected; delete it to have a new one made)")
    return text.encode("ascii")


@functools.cache
def package_version(package: str) -> str:
    """The installed version of a distribution (``+source`` when run from a checkout)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        pass
    if package == "postcart":  # running from a source checkout (PYTHONPATH=src): its pyproject says
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]) + "+source"
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            pass
    return "unknown"
