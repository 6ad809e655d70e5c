"""Rulebook lint: checks beyond the schema that need the whole rulebook (``postcart check``).

Loading already refuses what cannot run (unknown fields, operators, values, citation keys, duplicate
ids, circular derived facts). ``lint`` adds what a rules committee wants to know before sign-off, and
reports every finding at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from postcart.errors import Problem
from postcart.rulebook import Ask, Rulebook, Suggest

__all__ = ["Findings", "lint"]


@dataclass
class Findings:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def lint(rulebook: Rulebook, require_lifecycle: bool = False) -> Findings:
    """Every finding about a loaded rulebook: problems fail ``postcart check``, warnings do not.

    With ``require_lifecycle``, an active rule without author, approval and review dates is a problem.
    """
    findings = Findings()
    _uncited_references(rulebook, findings)
    _lifecycle(rulebook, findings, require=require_lifecycle)
    return findings


#: Lifecycle metadata an active rule should carry before a rules committee signs it off.
LIFECYCLE_FIELDS = ("author", "approved", "review_by")


def _lifecycle(rulebook: Rulebook, findings: Findings, today: dt.date | None = None, require: bool = False) -> None:
    """Active rules without author/approval/review dates are warned about (or fail, with ``require``);
    impossible dates fail."""
    today = today or dt.date.today()
    for rule in rulebook.rules:
        where = f"{rule.file}:{rule.line} rule {rule.id}"
        if rule.approved is not None and rule.review_by is not None and rule.review_by < rule.approved:
            findings.problems.append(Problem(f"{where} field review_by", "review date before approval date",
                                             f"a date after {rule.approved}", str(rule.review_by)))
        if rule.approved is not None and rule.approved > today:
            findings.problems.append(Problem(f"{where} field approved", "approval date in the future",
                                             f"a date up to {today}", str(rule.approved)))
        if rule.status != "active":
            continue
        missing = [name for name in LIFECYCLE_FIELDS if getattr(rule, name) is None]
        if missing:
            target = findings.problems if require else findings.warnings
            target.append(Problem(where, "active rule without lifecycle metadata: " + ", ".join(missing)))


def _uncited_references(rulebook: Rulebook, findings: Findings) -> None:
    cited = {key for rule in rulebook.rules if isinstance(rule.then, (Suggest, Ask)) for key in rule.then.citations}
    for key in sorted(set(rulebook.references) - cited):
        findings.warnings.append(Problem(f"references.yaml key {key}", "cited by no rule"))
