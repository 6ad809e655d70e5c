"""The sign-off: the paper document printed from the review page, and recording a completed review.

``print_document`` is the part of the page shown only on paper (per disease, each rule in words with its
verdict, evidence, references with DOIs in print, the scenarios that exercise it, and a signature block).
``import_review`` records a review file exported by the page under ``reviews/`` of the rules directory,
only for the rules it was made for (``postcart review import FILE``).
"""

from __future__ import annotations

import os
from pathlib import Path

from postcart.assessment import DISCLAIMER
from postcart.documents import parse_json
from postcart.errors import RuleDefinitionError
from postcart.governance.review import _VERDICT, ReviewError, ReviewResult, _book, _e, _scenario_names
from postcart.rulebook import Rule, Rulebook
from postcart.rulebook import conditions as cond
from postcart.rulebook.model import RecordedReview, review_checksum
from postcart.rulebook.reviews import REVIEWS_DIR
from postcart.vocabulary import DISEASES, disease_name, option_name

__all__ = ["ReviewRefused", "import_review", "print_document"]


def _reference_text(book: Rulebook, key: str) -> str:
    """A reference as printed: label and the DOI (or PMID, or address) in plain text, not only a link."""
    reference = book.references[key]
    if reference.doi:
        where = f"doi:<span class='doi'>{_e(reference.doi)}</span>"
    elif reference.pmid:
        where = f"PMID {_e(reference.pmid)}"
    elif reference.url:
        where = f"<span class='doi'>{_e(reference.url)}</span>"
    else:
        where = _e(reference.source)
    return f"{_e(reference.label)}, {where}"


def _what_it_does(book: Rulebook, rule: Rule) -> str:
    if rule.suggestion is not None:
        suggestion = rule.suggestion
        verdict = _VERDICT[suggestion.verdict] + (" (contraindication)" if suggestion.contraindication else "")
        return (f"{_e(option_name(suggestion.option))}: <span class='p-mark v-{_e(suggestion.verdict)}'>"
                f"{_e(verdict)}</span>")
    if rule.derivation is not None:
        return f"derives {_e(book.label('derived.' + rule.derivation.derive))} = <b>{_e(rule.derivation.value)}</b>"
    if rule.question is not None:
        return f"asks for <b>{_e(book.label(rule.question.ask))}</b>"
    return ""


def _evidence_grade(evidence: object) -> str:
    """A rule's evidence grade in words (its level and basis), '' for a rule without ``evidence``."""
    if evidence is None or isinstance(evidence, str):
        return evidence or ""
    fields = evidence if isinstance(evidence, dict) else vars(evidence) if hasattr(evidence, "__dict__") else {}
    words = [str(fields.get(name)).replace("_", " ") for name in ("level", "basis") if fields.get(name)]
    return "; ".join(words) or str(evidence)


def _print_rule(book: Rulebook, rule: Rule, scenarios: list[str]) -> str:
    when = "always" if rule.condition is None else cond.render(rule.condition, book.label)
    parts = [f"<div class='p-rule'><span class='p-box' data-mirror='rules|{_e(rule.id)}' "
             "data-empty='☐ approve ☐ change'>☐ approve ☐ change</span>",
             f"<p><span class='p-head'>{_e(rule.title)}</span> <span class='p-id'>{_e(rule.id)} v{rule.version}"
             f" · {_e(rule.content_hash[:8])}</span></p>",
             f"<p>When {_e(when)}, then {_what_it_does(book, rule)}.</p>"]
    because = rule.suggestion.rationale if rule.suggestion else rule.question.why if rule.question else None
    if because:
        parts.append(f"<p class='p-why'>{_e(' '.join(because.split()))}</p>")
    grade = _evidence_grade(getattr(rule, "evidence", None))
    if grade:
        parts.append(f"<p>Evidence: {_e(grade)}</p>")
    then = rule.suggestion or rule.question
    citations = then.citations if then is not None else ()
    if citations:
        parts.append("<p class='p-refs'>References: " + "; ".join(_reference_text(book, key) for key in citations)
                     + "</p>")
    if scenarios:
        shown = "; ".join(_e(name) for name in scenarios[:3])
        more = f" and {len(scenarios) - 3} more" if len(scenarios) > 3 else ""
        parts.append(f"<p class='p-scen'>Exercised by {len(scenarios)} scenario(s): {shown}{more}</p>")
    parts.append("</div>")
    return "".join(parts)


def print_document(result: ReviewResult) -> str:
    """The paper sign-off document (shown only when printed): rules per disease, then a signature block."""
    book = _book(result)
    names = _scenario_names(result)
    exercised = {rule["id"]: list(dict.fromkeys(names[n][1] for n in rule["fired_in"] if n in names))
                 for rule in result.rules}
    out = ["<div class='print-only' id='signoff-document'>",
           "<h1>postcart rulebook sign-off</h1>",
           (f"<p>Rulebook version <b>{_e(book.version)}</b>, content hash <span class='doi'>{_e(book.content_hash)}"
            f"</span>; {len(book.rules)} rules, exercised by {len(result.scenarios)} feature scenarios "
            f"({result.passed} pass). Generated {_e(result.generated)}. Each rule: its condition and what it "
            "does, its sources (DOIs in full) and the scenarios that exercise it; the box on the right shows the "
            "reviewer's decision, or is ticked by hand.</p>"),
           "<p id='p-summary'></p>"]
    sections: list[tuple[str, list[Rule]]] = [
        (disease_name(disease), [rule for rule in book.rules if not rule.applies_to_all_diseases
                                 and disease in rule.diseases]) for disease in DISEASES]
    sections.append(("Every disease (shared rules)", [rule for rule in book.rules if rule.applies_to_all_diseases]))
    seen: set[str] = set()
    for title, rules in sections:
        if not rules:
            continue
        out.append(f"<h2>{_e(title)}</h2>")
        for rule in rules:
            if rule.id in seen:  # a rule of several diseases is printed once, under its first
                out.append(f"<p class='p-scen'>{_e(rule.title)} (<span class='p-id'>{_e(rule.id)}</span>): "
                           "see above.</p>")
                continue
            seen.add(rule.id)
            out.append(_print_rule(book, rule, exercised.get(rule.id, [])))
    out.append(
        "<div class='p-sign'><h2>Signature</h2><p>I have reviewed the rules above at this rulebook hash and the "
        "scenarios that exercise them; my decision on each rule is shown beside it.</p><table>"
        "<tr><th>Reviewer</th><td data-mirror='meta|name'></td></tr>"
        "<tr><th>Role</th><td data-mirror='meta|role'></td></tr>"
        "<tr><th>Date</th><td data-mirror='meta|date'></td></tr>"
        "<tr><th>To be reviewed again by</th><td data-mirror='meta|review_by'></td></tr>"
        "<tr><th>Comments</th><td data-mirror='meta|comment'></td></tr>"
        "<tr><th>Decision</th><td>☐ approved &nbsp; ☐ approved with the changes noted &nbsp; ☐ not approved</td></tr>"
        "<tr><th>Signature</th><td></td></tr></table>"
        f"<p class='p-scen'>{_e(DISCLAIMER)}</p></div>")
    out.append("</div>")
    return "\n".join(out)


class ReviewRefused(ReviewError, ValueError):
    """A review file cannot be recorded: not a review file, altered after export, or for other rules."""


def import_review(file: str | os.PathLike[str], rules_dir: str | os.PathLike[str] | None = None) -> Path:
    """Record a review file exported by the review page under ``reviews/`` of the rules directory.

    The file must be a valid review file whose checksum matches its content, for the rulebook the
    directory holds now (same content hash, and the same rules at the same versions and hashes).

    Returns:
        The path of the recorded copy (``reviews/<date>-<reviewer>-<checksum>.json``).

    Raises:
        ReviewRefused: saying why; for a review of an earlier rulebook, which rules changed since.
        RuleDefinitionError: the rules directory itself does not load.
    """
    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8")
        data = parse_json(text, str(path), error=RuleDefinitionError)  # strict: no key given twice
    except (OSError, UnicodeDecodeError) as error:
        raise ReviewRefused(f"{path}: not a readable JSON review file ({error})") from None
    except RuleDefinitionError as error:
        raise ReviewRefused(f"refused: not a valid JSON review file: {error}") from None
    try:
        review = RecordedReview.model_validate(data)
    except ValueError as error:
        raise ReviewRefused(f"{path}: not a postcart review file: {error}") from None
    if review_checksum(data) != review.checksum:
        raise ReviewRefused(f"{path}: refused: the file was altered after the review page exported it (its checksum "
                            f"{review.checksum[:12]} does not match its content {review_checksum(data)[:12]})")
    book = Rulebook.load(rules_dir)
    if review.rulebook.content_hash != book.content_hash:
        raise ReviewRefused(f"{path}: refused: the review is of rulebook {review.rulebook.version} "
                            f"({review.rulebook.content_hash[:12]}), the rules directory now holds "
                            f"{book.version} ({book.content_hash[:12]}); changed since the review: "
                            + _changes_since(review, book) + ". Generate the review page again and review "
                            "the changed rules.")
    mismatched = _changes_since(review, book, none="")
    if mismatched:
        raise ReviewRefused(f"{path}: refused: the file names rulebook {book.content_hash[:12]} but its rules do "
                            f"not match that rulebook ({mismatched}): it was not produced by the review page "
                            "for these rules")
    if not any(entry.decision for entry in review.rules):
        raise ReviewRefused(f"{path}: refused: the review decides no rule (approve or request a change on "
                            "the review page, then export again)")
    target_dir = Path(book.directory or ".") / REVIEWS_DIR
    who = "".join(ch if ch.isalnum() else "-" for ch in review.reviewer.name.lower()).strip("-") or "reviewer"
    target = target_dir / f"{review.date.isoformat()}-{who}-{review.checksum[:8]}.json"
    if target.exists():
        raise ReviewRefused(f"{path}: refused: already recorded as {target}")
    target_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    try:  # the recorded copy must load with the rulebook: a review the loader refuses is not kept
        Rulebook.load(rules_dir)
    except RuleDefinitionError:
        target.unlink()
        raise
    return target


def _changes_since(review: RecordedReview, book: Rulebook, none: str = "no rule (the references, derived facts "
                   "or rulebook metadata changed)") -> str:
    """Which rules differ between a review and a rulebook: changed (with versions), added, removed."""
    seen = {entry.id: entry for entry in review.rules}
    changed, added = [], []
    for rule in book.rules:
        entry = seen.pop(rule.id, None)
        if entry is None:
            added.append(rule.id)
        elif entry.content_hash != rule.content_hash or entry.version != rule.version:
            changed.append(f"{rule.id} (version {entry.version} -> {rule.version})" if entry.version != rule.version
                           else f"{rule.id} (version {rule.version}, content changed)")
    parts = []
    if changed:
        parts.append("changed: " + ", ".join(changed))
    if added:
        parts.append("added: " + ", ".join(added))
    if seen:
        parts.append("removed: " + ", ".join(seen))
    return "; ".join(parts) if parts else none
