"""Rule conditions: the small language a rule's ``when`` is written in.

A condition is ``{all: [...]}``, ``{any: [...]}``, ``{not: ...}`` or a comparison
``{field: fitness.ecog, le: 2}``. Fields are dotted situation paths or ``derived.<fact>``.

Semantics (two-valued, stated once here and in docs/rulebook-format.md): a comparison on an unknown
field is false; ``not`` is true exactly when its operand is false; ``known`` tests whether a field has
a value. The compiler turns conditions into durable-rules patterns with the same meaning; the Python
evaluator here exists to *explain* results (which comparisons held, which failed) and as the
benchmark's yardstick, never to decide verdicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "OPERATORS",
    "All",
    "Any_",
    "Comparison",
    "Condition",
    "Not",
    "evaluate",
    "leaves",
    "parse",
    "render",
]

Op = Literal["eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "known", "contains"]

#: Operators and the words a clinician reads for them.
OPERATORS: dict[str, str] = {
    "eq": "=", "ne": "≠", "lt": "<", "le": "≤", "gt": ">", "ge": "≥",
    "in": "one of", "not_in": "none of", "known": "known", "contains": "includes",
}

_NEGATED: dict[str, str] = {"eq": "ne", "ne": "eq", "lt": "ge", "ge": "lt", "le": "gt", "gt": "le",
                            "in": "not_in", "not_in": "in"}


@dataclass(frozen=True)
class Comparison:
    """``field op value``; for ``in``/``not_in`` the value is a tuple, for ``known`` a bool."""

    field: str
    op: str
    value: Any

    def holds(self, facts: Mapping[str, Any]) -> bool:
        actual = facts.get(self.field)
        if self.op == "known":
            return (actual is not None) is bool(self.value)
        if actual is None:
            return False
        return _COMPARE[self.op](actual, self.value)


@dataclass(frozen=True)
class All:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Any_:
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    item: Condition


Condition = Comparison | All | Any_ | Not

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
    "contains": lambda a, b: b in a,
}


def evaluate(condition: Condition, facts: Mapping[str, Any]) -> bool:
    """Evaluate a condition over flat facts (dotted path -> value; unknown = absent or None)."""
    if isinstance(condition, Comparison):
        return condition.holds(facts)
    if isinstance(condition, All):
        return all(evaluate(item, facts) for item in condition.items)
    if isinstance(condition, Any_):
        return any(evaluate(item, facts) for item in condition.items)
    return not evaluate(condition.item, facts)


def leaves(condition: Condition) -> Iterator[Comparison]:
    """Every comparison in a condition, depth first."""
    if isinstance(condition, Comparison):
        yield condition
    elif isinstance(condition, Not):
        yield from leaves(condition.item)
    else:
        for item in condition.items:
            yield from leaves(item)


def negate(comparison: Comparison) -> Condition:
    """The comparison's negation under the two-valued semantics (unknown compares false)."""
    if comparison.op == "known":
        return Comparison(comparison.field, "known", not comparison.value)
    if comparison.op == "contains":
        return Not(comparison)
    flipped = Comparison(comparison.field, _NEGATED[comparison.op], comparison.value)
    return Any_((Comparison(comparison.field, "known", False), flipped))


def push_negations(condition: Condition, negated: bool = False) -> Condition:
    """Rewrite so that ``Not`` only wraps ``contains`` comparisons (durable-rules has no general not)."""
    if isinstance(condition, Not):
        return push_negations(condition.item, not negated)
    if isinstance(condition, Comparison):
        return negate(condition) if negated else condition
    items = tuple(push_negations(item, negated) for item in condition.items)
    if isinstance(condition, All):
        return Any_(items) if negated else All(items)
    return All(items) if negated else Any_(items)


def render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list, frozenset, set)):
        return ", ".join(render_value(item) for item in value)
    return str(value)


def render(condition: Condition, label: Callable[[str], str] = lambda field: field) -> str:
    """The condition in words, e.g. ``ECOG performance status ≤ 2 and CD20 at failure ≠ negative``."""
    if isinstance(condition, Comparison):
        name = label(condition.field)
        if condition.op == "known":
            return f"{name} is {'known' if condition.value else 'unknown'}"
        return f"{name} {OPERATORS[condition.op]} {render_value(condition.value)}"
    if isinstance(condition, Not):
        return f"not ({render(condition.item, label)})"
    joiner = " and " if isinstance(condition, All) else " or "
    parts = [render(item, label) for item in condition.items]
    if len(parts) == 1:
        return parts[0]
    return joiner.join(f"({part})" if isinstance(item, (All, Any_)) else part
                       for part, item in zip(parts, condition.items, strict=False))


# --------------------------------------------------------------------------------------------------
# parsing: YAML data -> Condition, collecting every problem with its path inside the rule


@dataclass(frozen=True)
class ParseProblem:
    where: str
    message: str
    expected: str | None = None
    got: str | None = None


def parse(data: Any, check_leaf: Callable[[str, str, Any, str], list[ParseProblem]],
          where: str = "when") -> tuple[Condition | None, list[ParseProblem]]:
    """Parse a condition; ``check_leaf(field, op, value, where)`` validates each comparison."""
    problems: list[ParseProblem] = []
    condition = _parse(data, check_leaf, where, problems)
    return condition, problems


def _parse(data: Any, check_leaf: Callable[[str, str, Any, str], list[ParseProblem]], where: str,
           problems: list[ParseProblem]) -> Condition | None:
    if not isinstance(data, dict):
        problems.append(ParseProblem(where, "a condition must be a mapping", "all/any/not or field + operator",
                                     repr(data)))
        return None
    keys = set(data)
    if keys in ({"all"}, {"any"}):
        (key,) = keys
        items = data[key]
        if not isinstance(items, list) or not items:
            problems.append(ParseProblem(f"{where}.{key}", "must be a non-empty list of conditions",
                                         "a list", repr(items)))
            return None
        parsed = [_parse(item, check_leaf, f"{where}.{key}[{index}]", problems) for index, item in enumerate(items)]
        if any(item is None for item in parsed):
            return None
        return All(tuple(parsed)) if key == "all" else Any_(tuple(parsed))  # type: ignore[arg-type]
    if keys == {"not"}:
        item = _parse(data["not"], check_leaf, f"{where}.not", problems)
        return None if item is None else Not(item)
    if "field" in keys:
        ops = keys - {"field"}
        if len(ops) != 1 or not ops <= set(OPERATORS):
            unknown = sorted(ops - set(OPERATORS))
            problems.append(ParseProblem(
                where, f"a comparison needs exactly one operator (unknown: {', '.join(unknown) or 'none'})",
                "one of " + ", ".join(OPERATORS), ", ".join(sorted(ops)) or "no operator"))
            return None
        (op,) = ops
        field, value = data["field"], data[op]
        if not isinstance(field, str):
            problems.append(ParseProblem(f"{where}.field", "must be a field path", "text", repr(field)))
            return None
        found = check_leaf(field, op, value, where)
        problems.extend(found)
        if found:
            return None
        if op in ("in", "not_in"):
            value = tuple(value)
        return Comparison(field, op, value)
    problems.append(ParseProblem(where, "not a condition", "all, any, not, or field with an operator",
                                 ", ".join(sorted(map(str, keys))) or "an empty mapping"))
    return None
