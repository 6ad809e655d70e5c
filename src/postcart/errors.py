"""The exceptions postcart raises: one root, three branches, each also the built-in it really is."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EvaluationError", "InvalidSituation", "PostcartError", "Problem", "RuleDefinitionError"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where it is, what was expected, what arrived.

    ``location`` is a dotted field path for a situation (``car_t.product``) or
    ``file:line rule-id field`` for a rule file.
    """

    location: str
    message: str
    expected: str | None = None
    got: str | None = None

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}"
        if self.expected is not None:
            text += f"; expected {self.expected}"
        if self.got is not None:
            text += f", got {self.got}"
        return text


class PostcartError(Exception):
    """Root of every error postcart raises on purpose."""


class _ProblemsError(PostcartError, ValueError):
    """An error made of one or more located problems; ``str()`` lists them all."""

    headline = "invalid input"

    def __init__(self, problems: list[Problem] | Problem, source: str | None = None) -> None:
        self.problems: list[Problem] = problems if isinstance(problems, list) else [problems]
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f" in {self.source}" if self.source else ""
        count = len(self.problems)
        lines = [f"{self.headline}{where}: {count} problem{'s' if count != 1 else ''}"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)


class InvalidSituation(_ProblemsError):
    """A patient situation that does not satisfy the input contract."""

    headline = "invalid patient situation"


class RuleDefinitionError(_ProblemsError):
    """A rule file or bibliography that does not satisfy the rulebook schema."""

    headline = "invalid rulebook"


class EvaluationError(PostcartError, RuntimeError):
    """The engine failed while evaluating a valid situation against a valid rulebook."""
