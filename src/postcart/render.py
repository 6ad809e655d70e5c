"""Readable renderings of an Assessment: plain text for the terminal, Markdown for documents.

Every rendering follows one order, read in half a minute: a three-line summary (the leading options and
the first thing to check), then recommended -> consider (pending ones with what to establish) -> not
advised -> not addressed (one line each, with its reason), what is still to establish, and long-term
follow-up last in three lines at most. Rule ids, the other rules' rationales and the full survivorship
detail sit in a detail section (``detail=True``, ``postcart evaluate --detail``); the JSON keeps all of
it. The decision-support disclaimer closes every rendering.

:func:`ordered_options`, :func:`order_key`, :func:`summary_lines` and :func:`not_addressed` are the
shared helpers other renderings (batch HTML, review report, CDS Hooks cards) call to keep that order.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable, Sequence
from typing import Any, cast

from postcart.assessment import Assessment, Citation, OptionAssessment
from postcart.situation import field_catalogue
from postcart.vocabulary import OPTIONS, VERDICTS, OptionName, disease_name, option_name, verdict_name

__all__ = [
    "FOLLOW_UP",
    "evidence_token",
    "follow_up_brief",
    "not_addressed",
    "order_key",
    "ordered_options",
    "pending_text",
    "summary_lines",
    "to_markdown",
    "to_text",
]

#: The option shown last, in brief: it applies to every CAR-T recipient, whatever else is decided.
FOLLOW_UP = "long_term_follow_up"

_WIDTH = 100


def order_key(option: str, verdict: str) -> tuple[int, int, int]:
    """Where an option is listed: follow-up last, then strongest verdict first, then the options' order.

    >>> sorted([("long_term_follow_up", "recommended"), ("radiotherapy", "consider"),
    ...         ("bispecific_antibody", "recommended")], key=lambda pair: order_key(*pair))[0]
    ('bispecific_antibody', 'recommended')
    """
    rank = VERDICTS.index(verdict) if verdict in VERDICTS else len(VERDICTS)
    place = OPTIONS.index(option) if option in OPTIONS else len(OPTIONS)
    return (option == FOLLOW_UP, rank, place)


def ordered_options(assessment: Assessment) -> list[OptionAssessment]:
    """The assessed options in reading order: recommended, consider, not advised; follow-up last."""
    return sorted(assessment.options, key=lambda item: order_key(item.option, item.verdict))


def not_addressed(assessment: Assessment) -> list[tuple[OptionName, str]]:
    """Each of the nine options without a verdict, with the reason given for it.

    Uses ``Assessment.not_addressed`` when the assessment carries it; otherwise every option absent from
    ``options`` is listed with the plain fact that no rule addressed it.
    """
    given = getattr(assessment, "not_addressed", None)
    if given is not None:
        return [(_get(item, "option"), _get(item, "reason")) for item in given]
    present = {item.option for item in assessment.options}
    return [(cast("OptionName", name), "no rule addressed it with the information given")
            for name in OPTIONS if name not in present]


def pending_text(option: OptionAssessment) -> str:
    """What is still to establish for an option and what each answer would make of it ('' when nothing).

    E.g. ``Is organ function adequate for transplant? adequate: recommended; not adequate: not advised.``
    """
    parts = []
    for pending in getattr(option, "pending", None) or []:
        question = _get(pending, "question") or _get(pending, "field")
        outcomes = "; ".join(f"{_get(outcome, 'value')}: {_verdict_word(_get(outcome, 'verdict'))}"
                             for outcome in _get(pending, "outcomes") or [])
        parts.append(_joined(str(question), outcomes) + ("." if outcomes else ""))
    return " ".join(parts)


def summary_lines(assessment: Assessment) -> list[str]:
    """Three lines: the recommended options, those to consider, and the first thing to check."""
    shown = [item for item in ordered_options(assessment) if item.option != FOLLOW_UP]

    def names(verdict: str) -> str:
        chosen = [option_name(item.option) + (" (pending)" if getattr(item, "pending", None) else "")
                  for item in shown if item.verdict == verdict]
        return "; ".join(chosen) or "none on the information given"

    return [f"Recommended: {names('recommended')}.", f"Consider: {names('consider')}.",
            f"Check first: {_first_check(assessment)}"]


def follow_up_brief(option: OptionAssessment, width: int = _WIDTH) -> list[str]:
    """The long-term follow-up in two lines at most: the deciding rule's opening words."""
    return _brief(option.rationale, width, 2)


def to_text(assessment: Assessment, width: int = _WIDTH, detail: bool = False) -> str:
    """The assessment as a plain-text report in the reading order; ``detail`` adds rules and full reasons."""
    ordered = ordered_options(assessment)
    numbers = _numbering(assessment, ordered, detail)
    wrap = textwrap.TextWrapper(width=width, initial_indent="    ", subsequent_indent="    ")
    lines = [f"postcart assessment — {disease_name(assessment.disease)}"
             + (f" — {assessment.patient_id}" if assessment.patient_id else ""), ""]
    lines += summary_lines(assessment)  # one line each, whatever their length: the summary is three lines
    lines.append("")
    for verdict in VERDICTS:
        chosen = [item for item in ordered if item.verdict == verdict and item.option != FOLLOW_UP]
        if not chosen:
            continue
        heading = verdict_name(verdict).upper()
        lines += [heading, "=" * len(heading)]
        for option in chosen:
            lines.append(f"  * {option_name(option.option)} {_refs(option.citations, numbers)}"
                         f"{evidence_token(option)}".rstrip())
            lines += wrap.wrap(option.rationale)
            if option.because:
                lines += wrap.wrap("Because: " + "; ".join(option.because) + ".")
            pending = pending_text(option)
            if pending:
                lines += wrap.wrap("To establish: " + pending)
        lines.append("")
    absent = not_addressed(assessment)
    if absent:
        lines += ["NOT ADDRESSED", "============="]
        lines += [f"  * {option_name(name)}: {reason}" for name, reason in absent]
        lines.append("")
    if assessment.missing_information:
        lines += ["STILL TO ESTABLISH", "=================="]
        for missing in assessment.missing_information:
            wrapped = wrap.wrap(_joined(_missing_name(missing), missing.why))
            lines += ["  * " + wrapped[0].lstrip(), *wrapped[1:]]
        lines.append("")
    follow_up = next((item for item in ordered if item.option == FOLLOW_UP), None)
    if follow_up is not None:
        lines += ["LONG-TERM FOLLOW-UP", "==================="]
        lines += ["    " + line for line in follow_up_brief(follow_up, width - 4)]
        deciding = [c for c in follow_up.citations if c.key in _deciding_keys(follow_up)]
        lines.append(f"    {verdict_name(follow_up.verdict)} {_refs(deciding, numbers)}; the survivorship detail "
                     + ("is in DETAIL below." if detail else "with --detail."))
        lines.append("")
    if detail:
        lines += _text_detail(assessment, ordered, numbers, wrap)
    if numbers:
        lines += ["REFERENCES", "=========="]
        lines += [_reference_line(number, citation) for number, citation in numbers.values()]
        lines.append("")
    lines += textwrap.wrap(assessment.disclaimer, width=width)
    return "\n".join(lines) + "\n"


def to_markdown(assessment: Assessment, detail: bool = False) -> str:
    """The assessment as Markdown in the reading order, with numbered references and DOI links."""
    ordered = ordered_options(assessment)
    numbers = _numbering(assessment, ordered, detail)
    out = [f"# postcart assessment: {disease_name(assessment.disease)}"
           + (f" ({assessment.patient_id})" if assessment.patient_id else ""), ""]
    out += [f"- {line}" for line in summary_lines(assessment)]
    out.append("")
    for verdict in VERDICTS:
        chosen = [item for item in ordered if item.verdict == verdict and item.option != FOLLOW_UP]
        if not chosen:
            continue
        out += [f"## {verdict_name(verdict)}", ""]
        for option in chosen:
            refs = "".join(f"[^{numbers[c.key][0]}]" for c in option.citations if c.key in numbers)
            out += [f"### {option_name(option.option)}{evidence_token(option)}", "", f"{option.rationale} {refs}".rstrip(), ""]
            if option.because:
                out += ["Because: " + "; ".join(option.because) + ".", ""]
            pending = pending_text(option)
            if pending:
                out += [f"To establish: {pending}", ""]
    absent = not_addressed(assessment)
    if absent:
        out += ["## Not addressed", ""]
        out += [f"- **{option_name(name)}**: {reason}" for name, reason in absent]
        out.append("")
    if assessment.missing_information:
        out += ["## Still to establish", ""]
        out += ["- " + _joined(f"**{_missing_name(missing)}**", missing.why)
                for missing in assessment.missing_information]
        out.append("")
    follow_up = next((item for item in ordered if item.option == FOLLOW_UP), None)
    if follow_up is not None:
        out += ["## Long-term follow-up", ""]
        out += [" ".join(follow_up_brief(follow_up)) + " " + "".join(
            f"[^{numbers[key][0]}]" for key in _deciding_keys(follow_up) if key in numbers), ""]
    if detail:
        out += ["## Detail", ""]
        for option in ordered:
            grade = _evidence_basis(option)
            out += [f"### {option_name(option.option)}: {verdict_name(option.verdict)}"
                    + (f" (evidence: {grade})" if grade else ""), ""]
            for reason in option.reasons:
                out += [f"- `{reason.rule}` {reason.title} ({verdict_name(reason.verdict)}): {reason.rationale}"]
            out.append("")
        out += [f"Rules fired: {', '.join(f'`{rule}`' for rule in assessment.audit.rules_fired)}",
                f"Rulebook {assessment.rulebook.version}, content hash `{assessment.rulebook.content_hash[:12]}`.",
                ""]
    if numbers:
        out += ["## References", ""]
        for number, citation in numbers.values():
            link = f" <{citation.url}>" if citation.url else ""
            out.append(f"[^{number}]: {citation.label}.{link}")
        out.append("")
    out += ["---", "", f"*{assessment.disclaimer}*", ""]
    return "\n".join(out)


def _text_detail(assessment: Assessment, ordered: Sequence[OptionAssessment],
                 numbers: dict[str, tuple[int, Citation]], wrap: textwrap.TextWrapper) -> list[str]:
    lines = ["DETAIL", "======"]
    for option in ordered:
        lines.append(f"  * {option_name(option.option)}: {verdict_name(option.verdict)}"
                     + (f" (evidence: {_evidence_basis(option)})" if _evidence_basis(option) else ""))
        for reason in option.reasons:
            refs = _refs([c for c in option.citations if c.key in reason.citations], numbers)
            lines += wrap.wrap(f"{reason.rule} — {reason.title} ({verdict_name(reason.verdict)}"
                               f"{', contraindication' if reason.contraindication else ''}): "
                               f"{reason.rationale} {refs}".rstrip())
    lines += [""]
    lines += wrap.wrap("Rules fired: " + ", ".join(assessment.audit.rules_fired))
    lines += wrap.wrap(f"Rulebook {assessment.rulebook.version} ({assessment.rulebook.content_hash[:12]}).")
    lines.append("")
    return lines


def _numbering(assessment: Assessment, ordered: Iterable[OptionAssessment],
               detail: bool) -> dict[str, tuple[int, Citation]]:
    """Reference numbers in reading order; follow-up counts only its deciding rule's sources unless detail."""
    numbers: dict[str, tuple[int, Citation]] = {}
    for option in ordered:
        keys = set(_deciding_keys(option)) if option.option == FOLLOW_UP and not detail else None
        for citation in option.citations:
            if keys is None or citation.key in keys:
                numbers.setdefault(citation.key, (len(numbers) + 1, citation))
    for missing in assessment.missing_information:
        for citation in missing.citations:
            numbers.setdefault(citation.key, (len(numbers) + 1, citation))
    return numbers


def _deciding_keys(option: OptionAssessment) -> list[str]:
    return list(option.reasons[0].citations) if option.reasons else [c.key for c in option.citations]


def _refs(citations: Sequence[Citation], numbers: dict[str, tuple[int, Citation]]) -> str:
    return "".join(f"[{numbers[c.key][0]}]" for c in citations if c.key in numbers)


def _reference_line(number: int, citation: Citation) -> str:
    link = citation.url or ""
    return f"[{number}] {citation.label}" + (f" — {link}" if link else "")


def _get(item: Any, name: str) -> Any:
    """A field of an output model, or of its JSON form (fields that other branches add arrive either way)."""
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def _joined(head: str, text: str) -> str:
    """``head: text``, or ``head text`` when the head is a question."""
    if not text:
        return head
    return f"{head} {text}" if head.rstrip("*").endswith("?") else f"{head}: {text}"


def _verdict_word(verdict: str) -> str:
    return "not addressed" if verdict == "not_addressed" else verdict_name(verdict).lower()


def evidence_token(option: OptionAssessment) -> str:
    """The evidence grade shown beside an option, with a leading space ('' without one)."""
    evidence = getattr(option, "evidence", None)
    if evidence is None:
        return ""
    token = getattr(evidence, "token", None)
    if isinstance(token, str) and token:
        return f" {token}"
    level = _get(evidence, "level")
    return f" — evidence: {level}" if level else ""


def _evidence_basis(option: OptionAssessment) -> str:
    """The evidence grade in full, for the detail: level, basis and the grade's own detail."""
    evidence = getattr(option, "evidence", None)
    if evidence is None:
        return ""
    parts = (_get(evidence, "level"), _get(evidence, "basis"), _get(evidence, "detail"))
    return "; ".join(str(part).replace("_", " ") for part in parts if part)


def _missing_name(missing: Any) -> str:
    """The question a missing input asks, else the input's title (never its dotted id)."""
    question = getattr(missing, "question", "") or ""
    if question:
        return str(question)
    spec = field_catalogue().get(missing.field)
    return spec.title if spec else str(missing.field).rsplit(".", 1)[-1].replace("_", " ")


def _first_check(assessment: Assessment) -> str:
    """The first thing to establish: the top-ranked missing input, else the first pending question."""
    if assessment.missing_information:
        missing = assessment.missing_information[0]
        question = getattr(missing, "question", "") or ""
        return str(question) if question else f"{_missing_name(missing)} (see Still to establish)."
    for option in ordered_options(assessment):
        for pending in getattr(option, "pending", None) or []:
            return str(_get(pending, "question") or _get(pending, "field"))
    return "nothing outstanding on the information given."


def _brief(text: str, width: int, lines: int) -> list[str]:
    """Whole sentences of ``text`` that fit in ``lines`` wrapped lines, else its opening clause."""
    sentences = re.split(r"(?<=[.])\s+(?=[A-Z])", text.strip())
    chosen: list[str] = []
    for sentence in sentences:
        if len(textwrap.wrap(" ".join([*chosen, sentence]), width)) > lines:
            break
        chosen.append(sentence)
    if not chosen:
        clause = re.split(r"[:;]\s", sentences[0], maxsplit=1)[0].rstrip(".") + "."
        chosen = [textwrap.shorten(clause, width * lines)]
    return textwrap.wrap(" ".join(chosen), width)
