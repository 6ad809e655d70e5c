"""Rulebook lint: checks beyond the schema that need the whole rulebook (``postcart check``).

Loading already refuses what cannot run (unknown fields, operators, values, citation keys, duplicate
ids, circular derived facts). ``lint`` adds what a rules committee wants to know before sign-off, and
reports every finding at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from postcart.errors import Problem
from postcart.rulebook import Ask, Rulebook, Suggest

__all__ = ["Findings", "lint"]


@dataclass
class Findings:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def lint(rulebook: Rulebook) -> Findings:
    """Every finding about a loaded rulebook: problems fail ``postcart check``, warnings do not."""
    findings = Findings()
    _uncited_references(rulebook, findings)
    return findings


def _uncited_references(rulebook: Rulebook, findings: Findings) -> None:
    cited = {key for rule in rulebook.rules if isinstance(rule.then, (Suggest, Ask)) for key in rule.then.citations}
    for key in sorted(set(rulebook.references) - cited):
        findings.warnings.append(Problem(f"references.yaml key {key}", "cited by no rule"))
