"""The patient of one scenario: a baseline situation that Given steps change, remembering which step set what.

The baseline is the contract's defaults plus ECOG 1 (the one required fitness input): no active
infection, no CNS disease, and everything else not yet known (target antigen, CD20, persistence, HCT-CI,
organ function, donor, trial access; goals undecided). A scenario states only what matters to it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from postcart.assessment import Assessment, OptionAssessment

__all__ = ["BASELINE", "ClinicalStepError", "PatientCase", "StepRef"]

BASELINE: dict[str, Any] = {
    "fitness": {"ecog": 1},
}


class ClinicalStepError(AssertionError):
    """A step of a feature could not be carried out: its message names the step and says why."""


@dataclass(frozen=True)
class StepRef:
    """A step as a clinician wrote it, for messages: keyword, text and line."""

    keyword: str
    text: str
    line: int

    def __str__(self) -> str:
        return f'step "{self.keyword} {self.text}" (line {self.line})'


@dataclass
class PatientCase:
    """The situation a scenario builds, the assessment postcart gave, and what the scenario checked."""

    data: dict[str, Any] = field(default_factory=lambda: copy.deepcopy(BASELINE))
    set_by: dict[str, StepRef] = field(default_factory=dict)
    current: StepRef | None = None
    assessment: Assessment | None = None
    focus: OptionAssessment | None = None
    asserted_rules: set[str] = field(default_factory=set)
    checks: list[str] = field(default_factory=list)

    def fail(self, why: str) -> ClinicalStepError:
        """An error naming the current step and why it failed (raise it)."""
        where = str(self.current) if self.current else "a step"
        return ClinicalStepError(f"{where}: {why}")

    def get(self, path: str, default: Any = None) -> Any:
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def set(self, path: str, value: Any) -> None:
        """Set a situation field by dotted path, remembering the step that set it."""
        *parents, leaf = path.split(".")
        node = self.data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
        if self.current is not None:
            self.set_by[path] = self.current

    def start_patient(self) -> None:
        """Forget any earlier patient of this scenario: back to the baseline."""
        self.data = copy.deepcopy(BASELINE)
        self.set_by = {}
        self.assessment = None
        self.focus = None

    def source_of(self, path: str) -> str:
        """Which step set a field, or where its value came from, for error messages."""
        for candidate in (path, *_parents(path)):
            if candidate in self.set_by:
                return str(self.set_by[candidate])
        if self.get(path) is not None:
            return "the baseline patient"
        return "no step (nothing said it)"


def _parents(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]
