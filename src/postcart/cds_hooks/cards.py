"""An ``Assessment`` as CDS Hooks 2.0 cards: one per option, one for missing information, one for the
parts of the record that were not read. Presentation only: the verdicts come from the rules.

Every card carries the decision-support disclaimer in its Markdown detail.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from postcart.assessment import Assessment, Citation, OptionAssessment
from postcart.cds_hooks.feedback import IssuedCard
from postcart.cds_hooks.fhir import Note, describe_notes
from postcart.render import ordered_options
from postcart.vocabulary import option_name

__all__ = ["OPTION_SYSTEM", "OVERRIDE_REASONS", "OVERRIDE_REASON_SYSTEM", "CardSet", "build_cards"]

OVERRIDE_REASON_SYSTEM = "https://postcart.example/fhir/CodeSystem/override-reason"
OPTION_SYSTEM = "https://postcart.example/fhir/CodeSystem/option"

#: The reasons a clinician can pick when overriding a card (project-local codes).
OVERRIDE_REASONS: dict[str, str] = {
    "patient-preference": "Patient's preference",
    "clinical-judgement": "Clinical judgement differs",
    "not-eligible": "Not eligible for reasons not captured here",
    "record-incomplete": "Record incomplete or out of date",
    "not-available": "Option not available here",
}

_VERDICT_WORDS = {"recommended": "Recommended", "consider": "Consider", "not_advised": "Not advised"}
_SUMMARY_LIMIT = 139  # CDS Hooks: summary SHOULD be under 140 characters
_MAX_NOTE_LINES = 40


@dataclass(frozen=True)
class CardSet:
    """The JSON cards and what to remember about each for feedback."""

    cards: list[dict[str, Any]]
    issued: list[IssuedCard]


def _summary(text: str) -> str:
    return text if len(text) <= _SUMMARY_LIMIT else text[: _SUMMARY_LIMIT - 1].rstrip() + "…"


def _link(citation: Citation) -> str | None:
    return citation.url


def _references(citations: Sequence[Citation]) -> list[str]:
    lines = ["**References**", ""]
    for number, citation in enumerate(citations, 1):
        link = _link(citation)
        extra = []
        if citation.doi:
            extra.append(f"doi:{citation.doi}")
        if citation.pmid:
            extra.append(f"PMID {citation.pmid}")
        text = f"{number}. {citation.label}" + (f" ({', '.join(extra)})" if extra else "")
        lines.append(f"{text} — <{link}>" if link else text)
    return lines


def _footer(assessment: Assessment) -> list[str]:
    return ["", "---", "", f"*{assessment.disclaimer}*", "",
            f"postcart rulebook {assessment.rulebook.version} (`{assessment.rulebook.content_hash[:12]}`)"]


def _source(assessment: Assessment, citations: Sequence[Citation], option: str | None) -> dict[str, Any]:
    source: dict[str, Any] = {"label": f"postcart rulebook {assessment.rulebook.version}"}
    linked = next((citation for citation in citations if _link(citation)), None)
    if linked is not None:
        source["label"] = _summary(f"postcart {assessment.rulebook.version}: {linked.label}")
        source["url"] = _link(linked)
    if option is not None:
        source["topic"] = {"system": OPTION_SYSTEM, "code": option, "display": option_name(option)}
    return source


def _option_card(assessment: Assessment, option: OptionAssessment, card_id: str) -> dict[str, Any]:
    verdict = _VERDICT_WORDS[option.verdict]
    name = option_name(option.option)
    lines = [f"**{verdict}: {name}**", "", option.rationale]
    if option.because:
        lines += ["", "**Because:** " + "; ".join(option.because) + "."]
    if len(option.reasons) > 1:
        lines += ["", "**Other rules on this option:**"]
        lines += [f"- {reason.title} ({_VERDICT_WORDS[reason.verdict].lower()})" for reason in option.reasons[1:]]
    lines += ["", "Rules: " + ", ".join(f"`{rule}`" for rule in option.rules), ""]
    lines += _references(option.citations)
    lines += _footer(assessment)
    card: dict[str, Any] = {
        "uuid": card_id,
        "summary": _summary(f"{verdict}: {name} (decision support; see sources)"),
        "detail": "\n".join(lines),
        "indicator": "warning" if option.verdict == "not_advised" else "info",
        "source": _source(assessment, option.citations, option.option),
        "overrideReasons": [{"system": OVERRIDE_REASON_SYSTEM, "code": code, "display": display}
                            for code, display in OVERRIDE_REASONS.items()],
    }
    if option.verdict != "not_advised":
        card["selectionBehavior"] = "at-most-one"
        card["suggestions"] = [{
            "label": _summary(f"Discuss {name.lower()} with the treating team"),
            "uuid": str(uuid.uuid5(uuid.UUID(card_id), "discuss")),
            "isRecommended": option.verdict == "recommended",
        }]
    links = [{"label": _summary(citation.label), "url": _link(citation), "type": "absolute"}
             for citation in option.citations if _link(citation)]
    if links:
        card["links"] = links
    return card


def build_cards(assessment: Assessment, notes: Sequence[Note], service_id: str) -> CardSet:
    """The cards for an assessment and the FHIR mapping's notes, each with a fresh uuid."""
    cards: list[dict[str, Any]] = []
    issued: list[IssuedCard] = []
    version = assessment.rulebook.version
    for option in ordered_options(assessment):
        card_id = str(uuid.uuid4())
        cards.append(_option_card(assessment, option, card_id))
        issued.append(IssuedCard(card_id, service_id, "option", option.option, option.verdict,
                                 tuple(option.rules), version))
    if assessment.missing_information:
        card_id = str(uuid.uuid4())
        count = len(assessment.missing_information)
        citations = list({c.key: c for m in assessment.missing_information for c in m.citations}.values())
        lines = ["**Information that would change the advice**", ""]
        lines += [f"- `{missing.field}`: {missing.why}" for missing in assessment.missing_information]
        lines += ["", *_references(citations)] if citations else []
        lines += _footer(assessment)
        cards.append({
            "uuid": card_id,
            "summary": _summary(f"Missing information: {count} item{'s' if count != 1 else ''} would change "
                                "the advice"),
            "detail": "\n".join(lines),
            "indicator": "warning",
            "source": _source(assessment, citations, None),
        })
        issued.append(IssuedCard(card_id, service_id, "missing_information", None, None,
                                 tuple(rule for m in assessment.missing_information for rule in m.rules), version))
    if notes:
        card_id = str(uuid.uuid4())
        described = describe_notes(notes)
        shown = described[:_MAX_NOTE_LINES]
        lines = ["**Parts of the record postcart did not use**", "",
                 ("Nothing below was guessed: a field not documented keeps the input contract's default "
                  "(unknown, or false for yes/no facts), which may change the advice. Record it in the EHR with "
                  "the codes of postcart's FHIR guide to have it taken into account."), ""]
        lines += [f"- {line}" for line in shown]
        if len(described) > len(shown):
            lines.append(f"- … and {len(described) - len(shown)} more")
        lines += _footer(assessment)
        cards.append({
            "uuid": card_id,
            "summary": _summary(f"Record not fully read: {len(notes)} item{'s' if len(notes) != 1 else ''} "
                                "not found or not used"),
            "detail": "\n".join(lines),
            "indicator": "warning",
            "source": _source(assessment, [], None),
        })
        issued.append(IssuedCard(card_id, service_id, "record_not_read", None, None, (), version))
    return CardSet(cards, issued)
