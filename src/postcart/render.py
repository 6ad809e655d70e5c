"""Readable renderings of an Assessment: plain text for the terminal, Markdown for documents."""

from __future__ import annotations

import textwrap

from postcart.assessment import Assessment, Citation
from postcart.vocabulary import VERDICT_WORDS, option_name

__all__ = ["to_markdown", "to_text"]

def _numbering(assessment: Assessment) -> dict[str, tuple[int, Citation]]:
    numbers: dict[str, tuple[int, Citation]] = {}
    for option in assessment.options:
        for citation in option.citations:
            numbers.setdefault(citation.key, (len(numbers) + 1, citation))
    for missing in assessment.missing_information:
        for citation in missing.citations:
            numbers.setdefault(citation.key, (len(numbers) + 1, citation))
    return numbers


def _reference_line(number: int, citation: Citation) -> str:
    link = citation.url or ""
    return f"[{number}] {citation.label}" + (f" — {link}" if link else "")


def to_text(assessment: Assessment, width: int = 100) -> str:
    """The assessment as a plain-text report: options by verdict, reasons, references, disclaimer."""
    numbers = _numbering(assessment)
    wrap = textwrap.TextWrapper(width=width, initial_indent="    ", subsequent_indent="    ")
    lines = [f"postcart assessment — {assessment.disease}"
             + (f" — {assessment.patient_id}" if assessment.patient_id else ""),
             f"rulebook {assessment.rulebook.version} ({assessment.rulebook.content_hash[:12]})", ""]
    for verdict, heading in VERDICT_WORDS.items():
        chosen = [option for option in assessment.options if option.verdict == verdict]
        if not chosen:
            continue
        lines += [heading.upper(), "=" * len(heading)]
        for option in chosen:
            refs = ", ".join(f"[{numbers[c.key][0]}]" for c in option.citations)
            grade = f" {option.evidence.token}" if option.evidence else ""
            lines.append(f"  * {option_name(option.option)}{grade} {refs}".rstrip())
            lines += wrap.wrap(option.rationale)
            if option.because:
                lines += wrap.wrap("Because: " + "; ".join(option.because) + ".")
            for reason in option.reasons[1:]:
                lines += wrap.wrap(f"Also: {reason.title} ({reason.verdict.replace('_', ' ')}).")
            lines.append(f"    Rules: {', '.join(option.rules)}")
        lines.append("")
    if assessment.missing_information:
        lines += ["MISSING INFORMATION", "==================="]
        for missing in assessment.missing_information:
            lines.append(f"  * {missing.field}")
            lines += wrap.wrap(missing.why)
        lines.append("")
    if numbers:
        lines += ["REFERENCES", "=========="]
        lines += [_reference_line(number, citation) for number, citation in numbers.values()]
        lines.append("")
    lines += textwrap.wrap(assessment.disclaimer, width=width)
    return "\n".join(lines) + "\n"


def to_markdown(assessment: Assessment) -> str:
    """The assessment as Markdown, with numbered references and DOI links."""
    numbers = _numbering(assessment)
    out = [f"# postcart assessment: {assessment.disease}"
           + (f" ({assessment.patient_id})" if assessment.patient_id else ""), "",
           f"Rulebook {assessment.rulebook.version}, content hash `{assessment.rulebook.content_hash[:12]}`.", ""]
    for verdict, heading in VERDICT_WORDS.items():
        chosen = [option for option in assessment.options if option.verdict == verdict]
        if not chosen:
            continue
        out += [f"## {heading}", ""]
        for option in chosen:
            refs = "".join(f"[^{numbers[c.key][0]}]" for c in option.citations)
            grade = f" {option.evidence.token}" if option.evidence else ""
            out += [f"### {option_name(option.option)}{grade}", "", f"{option.rationale} {refs}".rstrip(), ""]
            if option.because:
                out += ["Because: " + "; ".join(option.because) + ".", ""]
            for reason in option.reasons[1:]:
                out += [f"- Also: *{reason.title}* ({reason.verdict.replace('_', ' ')})"]
            out += [f"Rules: {', '.join(f'`{rule}`' for rule in option.rules)}", ""]
    if assessment.missing_information:
        out += ["## Missing information", ""]
        out += [f"- `{missing.field}`: {missing.why}" for missing in assessment.missing_information]
        out.append("")
    if numbers:
        out += ["## References", ""]
        for number, citation in numbers.values():
            link = f" <{citation.url}>" if citation.url else ""
            out.append(f"[^{number}]: {citation.label}.{link}")
        out.append("")
    out += ["---", "", f"*{assessment.disclaimer}*", ""]
    return "\n".join(out)
