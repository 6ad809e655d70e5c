"""An ``Assessment`` as CDS Hooks 2.0 cards a clinician wants to read. Presentation only: the verdicts come
from the rules.

- one card per option that is recommended or pending (waiting for information), most important first;
- one card for the options to consider, one for the options not advised (each listed with its reason);
- the information that would change the advice is folded into the cards of the options it concerns, the
  parts of the record not used into the first card; no card is about postcart itself;
- summaries under 140 characters with no boilerplate; the disclaimer once per card, in the detail; every
  card links to the full assessment (an absolute URL).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from postcart.assessment import Assessment, Citation, MissingInformation, OptionAssessment
from postcart.cds_hooks.feedback import IssuedCard
from postcart.cds_hooks.fhir import Note, describe_notes
from postcart.render import not_addressed, ordered_options
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

_VERDICT_WORDS = {"recommended": "Recommended", "consider": "Consider", "not_advised": "Not advised",
                  "pending": "Pending"}
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


def _is_pending(option: OptionAssessment) -> bool:
    return bool(getattr(option, "pending", False))


def _missing_for(missing: Sequence[MissingInformation], rules: Sequence[str]) -> list[MissingInformation]:
    wanted = set(rules)
    return [item for item in missing if wanted & set(item.rules)]


def _missing_lines(missing: Sequence[MissingInformation]) -> list[str]:
    if not missing:
        return []
    return ["", "**Information that would change this advice:**"] + [f"- `{item.field}`: {item.why}" for item in missing]


def _option_section(option: OptionAssessment, heading: bool) -> list[str]:
    name = option_name(option.option)
    lines = [f"**{_VERDICT_WORDS[option.verdict]}: {name}**", ""] if heading else []
    lines.append(option.rationale)
    if option.because:
        lines += ["", "**Because:** " + "; ".join(option.because) + "."]
    if len(option.reasons) > 1:
        lines += ["", "**Other rules on this option:**"]
        lines += [f"- {reason.title} ({_VERDICT_WORDS[reason.verdict].lower()})" for reason in option.reasons[1:]]
    lines += ["", "Rules: " + ", ".join(f"`{rule}`" for rule in option.rules)]
    return lines


def _option_summary(option: OptionAssessment) -> str:
    verdict = "Pending" if _is_pending(option) else _VERDICT_WORDS[option.verdict]
    head = f"{verdict}: {option_name(option.option)}"
    if option.because:
        fuller = f"{head} ({option.because[0]})"
        if len(fuller) <= _SUMMARY_LIMIT:
            return fuller
    return _summary(head)


def _links(citations: Sequence[Citation], assessment_url: str | None) -> list[dict[str, Any]]:
    links: list[dict[str, Any]] = [{"label": "Full assessment (postcart)", "url": assessment_url, "type": "absolute"}] if assessment_url else []
    links += [{"label": _summary(citation.label), "url": _link(citation), "type": "absolute"}
              for citation in citations if _link(citation)]
    return links


def _card(assessment: Assessment, card_id: str, summary: str, lines: list[str], indicator: str,
          citations: Sequence[Citation], option: str | None, assessment_url: str | None) -> dict[str, Any]:
    lines = [*lines, "", *_references(citations)] if citations else list(lines)
    card: dict[str, Any] = {
        "uuid": card_id,
        "summary": _summary(summary),
        "detail": "\n".join(lines + _footer(assessment)),
        "indicator": indicator,
        "source": _source(assessment, citations, option),
        "overrideReasons": [{"system": OVERRIDE_REASON_SYSTEM, "code": code, "display": display}
                            for code, display in OVERRIDE_REASONS.items()],
    }
    links = _links(citations, assessment_url)
    if links:
        card["links"] = links
    return card


def _record_lines(notes: Sequence[Note]) -> list[str]:
    if not notes:
        return []
    described = describe_notes(notes)
    shown = described[:_MAX_NOTE_LINES]
    lines = ["", "**Parts of the record postcart did not use, or read indirectly** (nothing was guessed: a field "
             "not documented keeps the input contract's default, which may change the advice):"]
    lines += [f"- {line}" for line in shown]
    if len(described) > len(shown):
        lines.append(f"- … and {len(described) - len(shown)} more")
    return lines


def build_cards(assessment: Assessment, notes: Sequence[Note], service_id: str,
                assessment_url: str | None = None) -> CardSet:
    """The cards for an assessment and the FHIR mapping's notes, each with a fresh uuid, most important first."""
    cards: list[dict[str, Any]] = []
    issued: list[IssuedCard] = []
    version = assessment.rulebook.version
    missing = list(assessment.missing_information)
    placed: set[str] = set()
    # the report's reading order (recommended, consider, not advised; follow-up last), pending ones up front
    options = sorted(ordered_options(assessment), key=lambda o: 0 if _is_pending(o) else 1)
    single = [o for o in options if o.verdict == "recommended" or _is_pending(o)]
    alone = {o.option for o in single}
    grouped = {verdict: [o for o in options if o.verdict == verdict and o.option not in alone]
               for verdict in ("consider", "not_advised")}
    for option in single:
        card_id = str(uuid.uuid4())
        concerns = _missing_for(missing, option.rules)
        placed.update(item.field for item in concerns)
        lines = [*_option_section(option, heading=True), *_missing_lines(concerns)]
        card = _card(assessment, card_id, _option_summary(option), lines,
                     "warning" if _is_pending(option) else "info", option.citations, option.option, assessment_url)
        card["selectionBehavior"] = "at-most-one"
        card["suggestions"] = [{
            "label": _summary(f"Discuss {option_name(option.option).lower()} with the treating team"),
            "uuid": str(uuid.uuid5(uuid.UUID(card_id), "discuss")),
            "isRecommended": option.verdict == "recommended",
        }]
        cards.append(card)
        issued.append(IssuedCard(card_id, service_id, "option", option.option, option.verdict, tuple(option.rules),
                                 version))
    titles = {"consider": ("Consider", "info"), "not_advised": ("Not advised", "warning")}
    for verdict, group in grouped.items():
        if not group:
            continue
        card_id = str(uuid.uuid4())
        word, indicator = titles[verdict]
        names = ", ".join(option_name(o.option) for o in group)
        rules = [rule for o in group for rule in o.rules]
        concerns = [item for item in _missing_for(missing, rules) if item.field not in placed]
        placed.update(item.field for item in concerns)
        section: list[str] = []
        for o in group:
            section += [*_option_section(o, heading=True), ""]
        section += _missing_lines(concerns)
        citations = list({c.key: c for o in group for c in o.citations}.values())
        card = _card(assessment, card_id, f"{word}: {names}", section, indicator, citations, None, assessment_url)
        if verdict == "consider":
            card["selectionBehavior"] = "any"
            card["suggestions"] = [{"label": _summary(f"Discuss {option_name(o.option).lower()} with the treating team"),
                                    "uuid": str(uuid.uuid5(uuid.UUID(card_id), o.option)), "isRecommended": False}
                                   for o in group]
        cards.append(card)
        issued.append(IssuedCard(card_id, service_id, f"options_{verdict}", None, verdict, tuple(rules), version))
    if not cards:  # no option addressed: one card says so, and what is missing
        card_id = str(uuid.uuid4())
        cards.append(_card(assessment, card_id, "No option addressed by postcart's rules for this record",
                           ["No rule addressed an option for this patient."], "info", [], None, assessment_url))
        issued.append(IssuedCard(card_id, service_id, "no_option", None, None, (), version))
    leftover = [item for item in missing if item.field not in placed]
    extra = _missing_lines(leftover) + _record_lines(notes)
    unaddressed = not_addressed(assessment)
    if unaddressed and getattr(assessment, "not_addressed", None) is not None:
        extra += ["", "**Not addressed by the rules for this record:**"]
        extra += [f"- {option_name(option)}: {reason}" for option, reason in unaddressed]
    if extra:
        first = cards[0]
        body, sep, footer = first["detail"].partition("\n---\n")
        first["detail"] = body.rstrip("\n") + "\n" + "\n".join(extra) + "\n" + sep + footer
    if leftover:  # feedback on the first card then also speaks to the rules that asked
        issued[0] = IssuedCard(issued[0].uuid, issued[0].service_id, issued[0].kind, issued[0].option, issued[0].verdict,
                               tuple(dict.fromkeys([*issued[0].rules, *(r for m in leftover for r in m.rules)])), version)
    return CardSet(cards, issued)
