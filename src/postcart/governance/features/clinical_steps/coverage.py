"""Rule coverage of the feature suite: which rules fired (and were checked) in which scenarios.

The tracker collects one record per scenario run; at the end of the session it writes
``scenarios.json`` (every scenario with the engine's verdicts, citations and rules: the evidence the
review report is built from) and ``rule-coverage.md`` into ``$POSTCART_FEATURE_OUT`` (default
``out/features/`` under the repository). A rule "fired" in a scenario when the engine fired it for
that scenario's patient; it was "asserted" when a Then step checked the option, question or derived fact
it spoke to.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from postcart.assessment import Assessment
from postcart.rulebook import Ask, Derive, Rulebook, Suggest

__all__ = ["ScenarioRecord", "Tracker", "output_dir"]


def output_dir(rootdir: Path) -> Path:
    """Where the coverage report and scenario evidence go."""
    configured = os.environ.get("POSTCART_FEATURE_OUT")
    return Path(configured) if configured else rootdir / "out" / "features"


@dataclass
class ScenarioRecord:
    """One scenario as run: where it is, what it checked, what the engine said."""

    nodeid: str
    item_name: str
    feature_file: str
    feature: str
    scenario: str
    line: int
    rule: str | None
    tags: list[str]
    example: dict[str, str] | None
    outcome: str = "not run"
    failure: str | None = None
    rules_fired: list[str] = field(default_factory=list)
    asserted_rules: list[str] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    assessment: dict[str, Any] | None = None


def assessment_evidence(assessment: Assessment) -> dict[str, Any]:
    """What a reviewer needs from an assessment: verdicts, citations, rules, questions, derived facts."""
    return {
        "disease": assessment.disease,
        "options": [
            {"option": o.option, "verdict": o.verdict, "rationale": o.rationale, "rules": list(o.rules),
             "because": list(o.because),
             "citations": [{"key": c.key, "label": c.label, "url": c.url} for c in o.citations]}
            for o in assessment.options
        ],
        "missing_information": [{"field": m.field, "why": m.why, "rules": list(m.rules)}
                                for m in assessment.missing_information],
        "derived": dict(assessment.derived.items()),
    }


class Tracker:
    """Scenario records of one pytest session, and the coverage they add up to."""

    def __init__(self, rulebook: Rulebook) -> None:
        self.rulebook = rulebook
        self.records: dict[str, ScenarioRecord] = {}

    def fired_in(self) -> dict[str, list[str]]:
        """Rule id -> node ids of the scenarios it fired in (every rule of the rulebook is a key)."""
        table: dict[str, list[str]] = {rule.id: [] for rule in self.rulebook.rules}
        for record in self.records.values():
            for rule_id in record.rules_fired:
                table.setdefault(rule_id, []).append(record.nodeid)
        return table

    def asserted_in(self) -> dict[str, list[str]]:
        table: dict[str, list[str]] = {rule.id: [] for rule in self.rulebook.rules}
        for record in self.records.values():
            for rule_id in record.asserted_rules:
                table.setdefault(rule_id, []).append(record.nodeid)
        return table

    def uncovered(self) -> list[str]:
        return [rule_id for rule_id, nodes in self.fired_in().items() if not nodes]

    def summary(self) -> str:
        total = len(self.rulebook.rules)
        fired = total - len(self.uncovered())
        asserted = sum(1 for nodes in self.asserted_in().values() if nodes)
        return (f"rule coverage: {fired}/{total} rules fired in {len(self.records)} feature scenarios "
                f"({asserted} checked by a Then step)")

    def rules_table(self) -> list[dict[str, Any]]:
        """Every rule of the rulebook with where it is, what it does and the scenarios it fired in."""
        fired, asserted = self.fired_in(), self.asserted_in()
        return [
            {"id": rule.id, "title": rule.title, "diseases": list(rule.diseases), "kind": _kind(rule.then),
             "file": rule.file, "line": rule.line, "fired_in": fired[rule.id], "asserted_in": asserted[rule.id]}
            for rule in self.rulebook.rules
        ]

    def evidence(self, complete: bool) -> dict[str, Any]:
        """What the review page is built from: the rulebook, every scenario record, every rule's coverage."""
        return {
            "rulebook": {"version": self.rulebook.version, "content_hash": self.rulebook.content_hash,
                         "rules": len(self.rulebook.rules)},
            "complete_run": complete,
            "summary": self.summary(),
            "uncovered": self.uncovered(),
            "scenarios": [asdict(record) for record in self.records.values()],
            "rules": self.rules_table(),
        }

    def write(self, directory: Path, complete: bool) -> list[Path]:
        """Write scenarios.json and rule-coverage.md; return their paths."""
        directory.mkdir(parents=True, exist_ok=True)
        evidence = self.evidence(complete)
        json_path = directory / "scenarios.json"
        json_path.write_text(json.dumps(evidence, indent=1, ensure_ascii=False), encoding="utf-8")
        md_path = directory / "rule-coverage.md"
        md_path.write_text(self.markdown(evidence["rules"], complete), encoding="utf-8")
        return [json_path, md_path]

    def markdown(self, rules: list[dict[str, Any]], complete: bool) -> str:
        names = {record.nodeid: f"{record.feature_file}: {record.scenario}" for record in self.records.values()}
        lines = [
            "# Rule coverage of the feature scenarios", "",
            f"Rulebook {self.rulebook.version} (`{self.rulebook.content_hash[:12]}`). {self.summary()}.",
            "" if complete else "\n**Partial run**: only some scenarios ran; coverage is not enforced.", "",
            "| rule | title | fired in | checked in |", "|---|---|---|---|",
        ]
        for rule in rules:
            fired = "; ".join(names[n] for n in rule["fired_in"][:3]) or "**never fired**"
            if len(rule["fired_in"]) > 3:
                fired += f" (+{len(rule['fired_in']) - 3} more)"
            checked = str(len(rule["asserted_in"])) if rule["asserted_in"] else "-"
            lines.append(f"| `{rule['id']}` | {rule['title']} | {fired} | {checked} |")
        return "\n".join(lines) + "\n"


def _kind(then: object) -> str:
    if isinstance(then, Suggest):
        return f"{then.option}: {then.verdict}"
    if isinstance(then, Derive):
        return f"derives {then.derive} = {then.value}"
    if isinstance(then, Ask):
        return f"asks for {then.ask}"
    return "?"
