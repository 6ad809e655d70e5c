"""The rule catalogue: the whole rulebook as a Markdown document a clinician reads (``docs/rules.md``).

Generated, never edited by hand: ``postcart catalogue --output docs/rules.md``. The output depends only on
the rulebook (no dates, no machine details), so a test can tell when the committed copy is stale.
Per disease and option it shows each rule's condition in words, verdict, rationale, references and
lifecycle; then the derived facts, the missing-information prompts, the disease x option coverage table
and the bibliography.
"""

from __future__ import annotations

from collections.abc import Iterable

from postcart.governance.check import Analysis
from postcart.rulebook import Ask, Derive, Rule, Rulebook, Suggest
from postcart.rulebook import conditions as cond
from postcart.vocabulary import DISEASES, OPTIONS, option_name

__all__ = ["COMMAND", "render_catalogue"]

#: The command that regenerates the committed catalogue.
COMMAND = "postcart catalogue --output docs/rules.md"

DISEASE_NAMES = {
    "LBCL": "Large B-cell lymphoma (LBCL)",
    "FL": "Follicular lymphoma (FL)",
    "MCL": "Mantle cell lymphoma (MCL)",
    "B_ALL": "B-cell acute lymphoblastic leukaemia (B-ALL)",
    "MM": "Multiple myeloma (MM)",
    "CLL": "Chronic lymphocytic leukaemia (CLL)",
}
_VERDICT_WORDS = {"recommended": "recommended", "consider": "consider", "not_advised": "not advised"}


def render_catalogue(rulebook: Rulebook) -> str:
    """The rule catalogue of a rulebook as Markdown (deterministic for a given rulebook).

    Which rules can fire for which disease comes from the reachability search of ``postcart check``
    (without the engine: the catalogue describes the rules, ``check`` confirms them on durable-rules).
    """
    return _Catalogue(rulebook, Analysis(rulebook, None)).render()


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def _anchor(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text.lower())


class _Catalogue:
    def __init__(self, rulebook: Rulebook, analysis: Analysis) -> None:
        self.rulebook = rulebook
        self.analysis = analysis
        self.lines: list[str] = []

    def out(self, *lines: str) -> None:
        self.lines.extend(lines)

    def render(self) -> str:
        rulebook = self.rulebook
        counts = {status: sum(rule.status == status for rule in rulebook.rules) for status in ("active", "draft")}
        self.out(
            "# postcart rule catalogue",
            "",
            f"<!-- Generated from rules/ by `{COMMAND}`. Do not edit by hand. -->",
            "",
            f"Rulebook version {rulebook.version} (content hash `{rulebook.content_hash[:12]}`): "
            f"{counts['active']} active rules, {counts['draft']} draft rules, {len(rulebook.references)} references.",
            "",
            "Decision support only: these rules summarise published evidence and expert guidance for the "
            "treating team; they do not replace clinical judgement. Every suggestion names its sources.",
            "",
            "## Contents",
            "",
            "- [How to read this catalogue](#how-to-read-this-catalogue)",
            "- [Coverage: disease x option](#coverage-disease-x-option)",
            "- [Derived facts](#derived-facts)",
            "- [Rules for all diseases](#rules-for-all-diseases)",
            *(f"- [{DISEASE_NAMES[d]}](#{self.disease_anchor(d)})" for d in DISEASES),
            "- [References](#references)",
            "",
        )
        self.how_to_read()
        self.coverage()
        self.derived_facts()
        self.section(None)
        for disease in DISEASES:
            self.section(disease)
        self.references()
        return "\n".join(self.lines).rstrip("\n") + "\n"

    @staticmethod
    def disease_anchor(disease: str) -> str:
        return f"disease-{disease.lower()}"

    # --- parts

    def how_to_read(self) -> None:
        self.out(
            "## How to read this catalogue",
            "",
            "Each rule gives one option a verdict (recommended, consider, not advised) when its condition "
            "holds, derives an intermediate fact, or asks for missing information. A condition on an unknown "
            "input is false: \"HCT-CI ≤ 3\" does not hold when the HCT-CI is not known.",
            "",
            "When several rules speak to one option: a rule named in another fired rule's *overrides* is set "
            "aside; then a *contraindication* (a not-advised verdict marked as such) wins; otherwise the "
            "strongest verdict wins. Every rule that spoke stays visible in the assessment.",
            "",
            "Rules for all diseases are described once, under [Rules for all diseases](#rules-for-all-diseases), "
            "and listed by name under each disease.",
            "",
        )

    def coverage(self) -> None:
        unaddressed = self.analysis.unaddressed()
        self.out("## Coverage: disease x option", "",
                 "Each cell names the verdicts the rules can give for that disease, or why the option is "
                 "deliberately left unaddressed. A **gap** is a cell neither covered nor explained.", "",
                 "| option | " + " | ".join(d.replace("_", "-") for d in DISEASES) + " |",
                 "|---|" + "---|" * len(DISEASES))
        notes: list[str] = []
        for option in OPTIONS:
            cells = []
            for disease in DISEASES:
                rules = self.analysis.covering(disease, option)
                if rules:
                    verdicts = [v for v in ("recommended", "consider", "not_advised")
                                if any(rule.then.verdict == v for rule in rules)]  # type: ignore[union-attr]
                    count = f"{len(rules)} rule{'s' if len(rules) != 1 else ''}"
                    cells.append(f"{', '.join(_VERDICT_WORDS[v] for v in verdicts)} ({count})")
                elif (disease, option) in unaddressed:
                    notes.append(f"{disease.replace('_', '-')} x {option_name(option)}: "
                                 f"{_cell(unaddressed[(disease, option)])}")
                    cells.append(f"unaddressed [{len(notes)}]")
                else:
                    cells.append("**gap**")
            self.out(f"| {option_name(option)} | " + " | ".join(cells) + " |")
        self.out("")
        if notes:
            self.out("Deliberately unaddressed:", "")
            self.out(*(f"{number}. {note}" for number, note in enumerate(notes, 1)))
            self.out("")

    def derived_facts(self) -> None:
        self.out("## Derived facts", "",
                 "Intermediate judgements the other rules build on. They are derived first, in order, from "
                 "the patient's data (and from each other, never in a circle).", "")
        for name, declaration in sorted(self.rulebook.facts.items()):
            title = declaration.title or name.replace("_", " ")
            values = ", ".join(cond.render_value(value) for value in declaration.values)
            default = ("when no rule applies: " + cond.render_value(declaration.default)
                       if declaration.default is not None else "unknown when no rule applies")
            self.out(f"### {title} (`{name}`)", "", _cell(declaration.description), "",
                     f"Values: {values}; {default}.", "",
                     "| value | derived when | diseases | rule |", "|---|---|---|---|")
            for rule in self.rulebook.rules:
                if isinstance(rule.then, Derive) and rule.then.derive == name:
                    self.out(f"| {cond.render_value(rule.then.value)} | {_cell(self.condition(rule))} | "
                             f"{self.diseases(rule)} | `{rule.id}`{self.status_mark(rule)} |")
            self.out("")

    def section(self, disease: str | None) -> None:
        if disease is None:
            self.out("## Rules for all diseases", "")
            rules = [rule for rule in self.rulebook.rules if rule.applies_to_all_diseases]
        else:
            self.out(f'<a id="{self.disease_anchor(disease)}"></a>', "", f"## {DISEASE_NAMES[disease]}", "")
            rules = [rule for rule in self.rulebook.rules if not rule.applies_to_all_diseases
                     and disease in rule.diseases]
        shared = [rule for rule in self.rulebook.rules if rule.applies_to_all_diseases] if disease else []
        for option in OPTIONS:
            own = [rule for rule in rules if isinstance(rule.then, Suggest) and rule.then.option == option]
            also = [rule for rule in shared if isinstance(rule.then, Suggest) and rule.then.option == option]
            if not own and not also:
                continue
            self.out(f"### {option_name(option)}" + (f" ({disease.replace('_', '-')})" if disease else ""), "")
            for rule in own:
                self.suggestion(rule, disease)
            if also:
                self.out("Rules for all diseases on this option: " + ", ".join(
                    f"[`{rule.id}`](#{self.rule_anchor(rule, None)}) "
                    f"({_VERDICT_WORDS[rule.then.verdict]})"  # type: ignore[union-attr]
                    + ("" if disease is None or self.analysis.reachable(rule.id, disease) else
                       ", cannot fire for this disease")
                    for rule in also) + ".", "")
        asks = [rule for rule in rules if isinstance(rule.then, Ask)]
        if asks:
            self.out("### Missing information" + (f" ({disease.replace('_', '-')})" if disease else ""), "",
                     "Inputs worth obtaining when they are unknown, because the answer would change.", "")
            for rule in asks:
                self.ask(rule, disease)
        if disease is not None and any(isinstance(rule.then, Ask) for rule in shared):
            self.out("Prompts for all diseases: " + ", ".join(
                f"[`{rule.id}`](#{self.rule_anchor(rule, None)})" for rule in shared
                if isinstance(rule.then, Ask)) + ".", "")

    def suggestion(self, rule: Rule, disease: str | None) -> None:
        then = rule.then
        assert isinstance(then, Suggest)
        verdict = _VERDICT_WORDS[then.verdict]
        if then.contraindication:
            verdict += " (contraindication: wins over other verdicts)"
        self.out(f'<a id="{self.rule_anchor(rule, disease)}"></a>', "", f"#### {rule.title}", "",
                 f"- Rule: `{rule.id}`{self.status_mark(rule)}; diseases: {self.diseases(rule)}",
                 f"- Verdict: **{verdict}**",
                 f"- When: {self.condition(rule)}")
        if then.overrides:
            self.out("- Overrides: " + ", ".join(f"`{other}`" for other in then.overrides))
        self.out(f"- Rationale: {' '.join(then.rationale.split())}",
                 f"- References: {self.citations(then.citations)}")
        self.lifecycle(rule, disease)

    def ask(self, rule: Rule, disease: str | None) -> None:
        then = rule.then
        assert isinstance(then, Ask)
        self.out(f'<a id="{self.rule_anchor(rule, disease)}"></a>', "",
                 f"#### {self.rulebook.label(then.ask)} (`{then.ask}`)", "",
                 f"- Rule: `{rule.id}`{self.status_mark(rule)}: {rule.title}; diseases: {self.diseases(rule)}",
                 f"- When: {self.condition(rule)}",
                 f"- Why: {' '.join(then.why.split())}")
        if then.citations:
            self.out(f"- References: {self.citations(then.citations)}")
        self.lifecycle(rule, disease)

    def review(self, rule: Rule) -> str:
        """The recorded reviews approving the rule's current version, by file name, reviewer and date."""
        approvals = self.rulebook.approvals(rule)
        if rule.status != "active":
            return f"{rule.status} (not reviewed for use)"
        if not approvals:
            return (f"**awaiting review**: no recorded review approves version {rule.version} "
                    f"(content `{rule.content_hash[:12]}`)")
        named = "; ".join(f"`reviews/{review.name}` ({review.reviewer.name}, {review.reviewer.role}, "
                          f"{review.date.isoformat()})" for review in approvals)
        return f"active, approved by {named}"

    def lifecycle(self, rule: Rule, disease: str | None) -> None:
        parts = [f"status {rule.status}", f"version {rule.version}"]
        if rule.author:
            parts.append(f"author {rule.author}")
        if rule.approved:
            parts.append(f"approved {rule.approved.isoformat()}")
        if rule.review_by:
            parts.append(f"review by {rule.review_by.isoformat()}")
        parts.append(f"source rules/{rule.file}")
        self.out(f"- Lifecycle: {', '.join(parts)}", f"- Review: {self.review(rule)}")
        if rule.notes:
            self.out(f"- Notes: {' '.join(rule.notes.split())}")
        if disease is not None and not self.analysis.reachable(rule.id, disease):
            self.out(f"- **Cannot fire for {disease.replace('_', '-')}** (no valid patient meets its condition).")
        elif disease is None:
            never = [d.replace("_", "-") for d in DISEASES if not self.analysis.reachable(rule.id, d)]
            if never:
                self.out(f"- **Cannot fire for {', '.join(never)}** (no valid patient meets its condition).")
        self.out("")

    def references(self) -> None:
        self.out("## References", "")
        for key, reference in sorted(self.rulebook.references.items(), key=lambda item: item[1].label.lower()):
            link = f" <{reference.link}>" if reference.link else ""
            ids = [f"DOI {reference.doi}" if reference.doi else "", f"PMID {reference.pmid}" if reference.pmid else ""]
            ident = "; ".join(part for part in ids if part)
            self.out(f'<a id="ref-{_anchor(key)}"></a>', "",
                     f"- **{reference.label}** (`{key}`). {reference.authors}. *{reference.title}*. "
                     f"{reference.source}." + (f" {ident}." if ident else "") + link
                     + f" Evidence status: {reference.confidence.replace('_', ' ')}.", "")

    # --- helpers

    def rule_anchor(self, rule: Rule, disease: str | None) -> str:
        suffix = f"-{disease.lower()}" if disease and len(rule.diseases) > 1 else ""
        return "rule-" + _anchor(rule.id) + suffix

    def condition(self, rule: Rule) -> str:
        if rule.condition is None:
            return "always"
        return cond.render(rule.condition, self.rulebook.label)

    @staticmethod
    def diseases(rule: Rule) -> str:
        return "all" if rule.applies_to_all_diseases else ", ".join(d.replace("_", "-") for d in rule.diseases)

    @staticmethod
    def status_mark(rule: Rule) -> str:
        return "" if rule.status == "active" else f" ({rule.status.upper()})"

    def citations(self, keys: Iterable[str]) -> str:
        parts = []
        for key in keys:
            reference = self.rulebook.references[key]
            target = reference.link or f"#ref-{_anchor(key)}"
            parts.append(f"[{reference.label}]({target})")
        return ", ".join(parts) if parts else "none"
