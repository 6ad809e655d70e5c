"""The compiler: a checked rulebook -> durable-rules rulesets, as plain dicts (its JSON ruleset form).

Two measured traps of durable-rules shape this (shared/notes/durable-rules.md):

- negation does not retract queued activations, so derived facts are *stratified*: rules that derive
  facts from inputs run in one ruleset, rules that read those facts in a later one, and the engine merges
  the derived facts into the situation between strata. No rule ever sees a fact that could still change.
- ``$or`` fires once per true branch, so the engine records each rule at most once per evaluation.

Rulesets are also split by disease (each holds that disease's rules plus the all-disease rules), which
drops the disease test from patterns.

durable-rules' C core has fixed-size tables (durable-rules 2.0.28 sdist, ``src/rules/``). Exceeding one
makes the core answer an error for a half-built session whose cleanup corrupts the heap (SIGABRT/SIGSEGV),
so the compiler keeps every ruleset inside them, with a margin (:data:`LIMITS`):

- ``MAX_STACK_SIZE`` 64 (``events.c`` ``handleAlpha``): the alpha-network walk pushes every matching
  child of a node before descending; fifty rules comparing one field with different thresholds overflow it.
- ``NEXT_BUCKET_LENGTH`` 512 / ``NEXT_LIST_LENGTH`` 128 / ``BETA_LIST_LENGTH`` 256 (``rules.h``,
  ``rete.c`` ``linkAlpha``): children, negated children and rules ending on one alpha node.
- ``MAX_SEQUENCE_EXPRESSIONS`` 32 (``rete.h``): ``$and``/``$or`` groups of one rule (two entries each).
- ``MAX_ACTIONS`` 4096 (``rete.c``): rules per ruleset.

The compiler simulates how ``rete.c`` builds the alpha network of a ruleset (nodes shared by parent,
operator, field and value; one forward node per ``$or``) and bounds the walk's stack by assuming every
child that can match does (of the equality tests on one field at most one can). A stratum whose rules do
not fit one ruleset is split into several rulesets run one after the other (rules of one stratum never
read each other's facts, so the split changes no answer). A rule that does not fit alone is refused
with its id and the limit (:class:`~postcart.errors.RuleDefinitionError`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from postcart.errors import Problem, RuleDefinitionError
from postcart.rulebook import Derive, Rule, Rulebook
from postcart.rulebook import conditions as cond
from postcart.vocabulary import DISEASES

__all__ = ["LIMITS", "CompiledRulebook", "Stratum", "compile_rulebook", "fact_key", "to_engine_fact"]

#: Every situation fact carries this marker; patterns require it, so durable-rules' own session-state
#: object (which also reaches the rules) can never satisfy a pattern made only of negations.
KIND_KEY = "postcart_kind"
KIND_VALUE = "situation"


@functools.cache
def fact_key(path: str) -> str:
    """The durable-rules attribute name of a dotted field path (``car_t.product`` -> ``car_t__product``)."""
    return path.replace(".", "__")


def to_engine_fact(facts: Mapping[str, Any]) -> dict[str, Any]:
    """Flat dotted facts -> the attributes durable-rules matches on. Lists become one flag per member."""
    out: dict[str, Any] = {KIND_KEY: KIND_VALUE}
    for path, value in facts.items():
        if isinstance(value, tuple):
            for member in value:
                out[fact_key(f"{path}.{member}")] = True
        elif value is not None:
            out[fact_key(path)] = value
    return out


@dataclass(frozen=True)
class Stratum:
    """One ruleset: the rules that run together, after every stratum before them."""

    name: str
    definition: Mapping[str, Any]
    rule_ids: tuple[str, ...]
    derives: tuple[str, ...]


@dataclass(frozen=True)
class CompiledRulebook:
    """Per disease, the ordered strata to run. Definitions are fresh dicts: the engine may hand them over."""

    rulebook: Rulebook
    strata: Mapping[str, tuple[Stratum, ...]]


def compile_rulebook(rulebook: Rulebook, prefix: str = "postcart") -> CompiledRulebook:
    """Compile every rule into durable-rules ruleset definitions, per disease and stratum.

    Raises:
        RuleDefinitionError: a rule that alone exceeds one of durable-rules' fixed limits (rule id, limit).
    """
    levels = _levels(rulebook)
    top = max(levels.values(), default=-1) + 1
    strata: dict[str, tuple[Stratum, ...]] = {}
    patterns = {rule.id: _pattern(rule) for rule in rulebook.rules}
    refused = _refuse_oversized(rulebook, patterns)
    if refused:
        raise RuleDefinitionError(refused, rulebook.directory)
    for disease in DISEASES:
        rules = list(rulebook.rules_for(disease))
        ordered: list[Stratum] = []
        for level in range(top + 1):
            members = [rule for rule in rules if _level_of(rule, levels, top) == level]
            for part, chunk in enumerate(_fit(members, patterns)):
                definition = {rule.id: {"all": [{"m": patterns[rule.id]}]} for rule in chunk}
                derives = tuple(sorted({rule.then.derive for rule in chunk if isinstance(rule.then, Derive)}))
                suffix = f"_{part}" if part else ""
                ordered.append(Stratum(f"{prefix}_{disease}_{level}{suffix}", definition,
                                       tuple(rule.id for rule in chunk), derives))
        strata[disease] = tuple(ordered)
    return CompiledRulebook(rulebook, strata)


#: durable-rules 2.0.28's fixed limits as the compiler keeps them, each below the C constant (in brackets)
#: so that the engine's own catch-all rule and rounding in the estimate always fit.
LIMITS: Mapping[str, int] = {
    "alpha stack (MAX_STACK_SIZE 64)": 56,
    "children of one alpha node (NEXT_BUCKET_LENGTH 512)": 480,
    "negated children of one alpha node (NEXT_LIST_LENGTH 128)": 120,
    "rules ending on one alpha node (BETA_LIST_LENGTH 256)": 240,
    "any/all groups of one rule (MAX_SEQUENCE_EXPRESSIONS 32, two entries each)": 15,
    "rules in one ruleset (MAX_ACTIONS 4096)": 4000,
}
_STACK, _CHILDREN, _NEGATED, _BETA, _GROUPS, _RULES = LIMITS.values()


def _refuse_oversized(rulebook: Rulebook, patterns: Mapping[str, dict[str, Any]]) -> list[Problem]:
    """Every rule that exceeds a limit even in a ruleset of its own."""
    problems = []
    names = list(LIMITS)
    for rule in rulebook.rules:
        groups = _groups(patterns[rule.id])
        alone = _Network()
        alone.add(patterns[rule.id])
        over: list[tuple[str, int, int]] = []
        if groups > _GROUPS:
            over.append((names[4], groups, _GROUPS))
        over.extend(alone.over_limits())
        for name, got, limit in over:
            problems.append(Problem(f"{rule.file}:{rule.line} rule {rule.id}",
                                    f"the condition exceeds durable-rules' fixed limit on {name}",
                                    f"at most {limit}", str(got)))
    return problems


def _fit(rules: list[Rule], patterns: Mapping[str, dict[str, Any]]) -> list[list[Rule]]:
    """The rules cut, in order, into consecutive rulesets that each stay inside :data:`LIMITS`."""
    parts: list[list[Rule]] = []
    current: list[Rule] = []
    network = _Network()
    for rule in rules:
        network.add(patterns[rule.id])
        if current and (len(current) + 1 > _RULES or network.over_limits()):
            parts.append(current)
            current = []
            network = _Network()
            network.add(patterns[rule.id])
        current.append(rule)
    if current:
        parts.append(current)
    return parts


def _groups(pattern: Any) -> int:
    """The ``$and``/``$or`` groups of a pattern (durable-rules stores two expression entries for each)."""
    if isinstance(pattern, dict):
        own = sum(1 for key in pattern if key in ("$and", "$or"))
        return own + sum(_groups(value) for value in pattern.values())
    if isinstance(pattern, list):
        return sum(_groups(item) for item in pattern)
    return 0


@dataclass
class _Node:
    """An alpha node as ``rete.c`` builds it: children by (operator, field, value), negated ones apart."""

    children: dict[tuple[str, str, str], _Node] = field(default_factory=dict)
    negated: list[_Node] = field(default_factory=list)
    beta: int = 0


class _Network:
    """A simulation of one ruleset's alpha network, to bound durable-rules' tables and walk stack."""

    def __init__(self) -> None:
        # the root (type node), the marker node every pattern starts with and the engine's catch-all rule
        self.root = _Node()
        self.add({KIND_KEY: KIND_VALUE})

    def add(self, pattern: dict[str, Any]) -> None:
        self._create(pattern, self.root).beta += 1

    def _create(self, pattern: dict[str, Any], parent: _Node) -> _Node:
        ((key, value),) = pattern.items()
        if key == "$and":
            node = parent
            for item in value:
                node = self._create(item, node)
            return node
        if key == "$or":
            forward = _Node()  # rete.c createForwardAlpha: a fresh $nex node per $or, never shared
            for item in value:
                self._create(item, parent).negated.append(forward)
            return forward
        if key in ("$lt", "$lte", "$gt", "$gte", "$neq", "$ex", "$nex"):
            ((name, operand),) = value.items()
            operator = key
        else:
            name, operand, operator = key, value, "$eq"
        identity = (operator, name, json.dumps(operand))
        child = parent.children.get(identity)
        if child is None:
            child = parent.children[identity] = _Node()
            if operator == "$nex":
                parent.negated.append(child)
        return child

    def over_limits(self) -> list[tuple[str, int, int]]:
        """Each limit this network exceeds: (limit name, value, limit)."""
        names = list(LIMITS)
        over: list[tuple[str, int, int]] = []
        stack = self._peak(self.root, {})
        if stack > _STACK:
            over.append((names[0], stack, _STACK))
        seen: set[int] = set()
        pending = [self.root]
        widest = negated = beta = 0
        while pending:
            node = pending.pop()
            if id(node) in seen:
                continue
            seen.add(id(node))
            plain = sum(1 for identity in node.children if identity[0] != "$nex")
            widest, negated, beta = max(widest, plain), max(negated, len(node.negated)), max(beta, node.beta)
            pending.extend(node.children.values())
            pending.extend(node.negated)
        for index, got, limit in ((1, widest, _CHILDREN), (2, negated, _NEGATED), (3, beta, _BETA)):
            if got > limit:
                over.append((names[index], got, limit))
        return over

    def _peak(self, node: _Node, memo: dict[int, int]) -> int:
        """The most stack entries the walk below ``node`` can hold: every child that can match is pushed
        before the last pushed is descended into; of the equality tests on one field at most one matches."""
        known = memo.get(id(node))
        if known is not None:
            return known
        memo[id(node)] = 0  # the network is acyclic; this only guards recursion
        equal_fields = {identity[1] for identity in node.children if identity[0] == "$eq"}
        pushed = len(node.negated) + len(equal_fields) + sum(
            1 for identity in node.children if identity[0] not in ("$eq", "$nex"))
        below = [self._peak(child, memo) for child in (*node.children.values(), *node.negated)]
        peak = 0 if pushed == 0 else pushed - 1 + max(1, *below) if below else pushed
        memo[id(node)] = peak
        return peak


def _levels(rulebook: Rulebook) -> dict[str, int]:
    """The stratum of each derived fact: one past the deepest derived fact its rules read."""
    deriving: dict[str, list[Rule]] = {}
    for rule in rulebook.rules:
        if isinstance(rule.then, Derive):
            deriving.setdefault(rule.then.derive, []).append(rule)
    levels: dict[str, int] = {}

    def level(name: str) -> int:
        if name not in levels:
            levels[name] = 0  # the loader has refused cycles; this only guards recursion
            reads = {path.removeprefix("derived.") for rule in deriving.get(name, ()) for path in rule.reads
                     if path.startswith("derived.")}
            levels[name] = 1 + max((level(other) for other in reads), default=-1)
        return levels[name]

    for name in rulebook.facts:
        level(name)
    return levels


def _level_of(rule: Rule, levels: Mapping[str, int], top: int) -> int:
    if isinstance(rule.then, Derive):
        return levels[rule.then.derive]
    return top


def _pattern(rule: Rule) -> dict[str, Any]:
    marker = {KIND_KEY: KIND_VALUE}
    if rule.condition is None:
        return marker
    return {"$and": [marker, _expression(cond.push_negations(rule.condition))]}


def _expression(condition: cond.Condition) -> dict[str, Any]:
    if isinstance(condition, cond.All):
        return {"$and": [_expression(item) for item in condition.items]}
    if isinstance(condition, cond.Any_):
        return {"$or": [_expression(item) for item in condition.items]}
    if isinstance(condition, cond.Not):  # push_negations leaves Not only around `contains`
        assert isinstance(condition.item, cond.Comparison) and condition.item.op == "contains"
        return {"$nex": {fact_key(f"{condition.item.field}.{condition.item.value}"): 1}}
    return _comparison(condition)


_ORDERING = {"lt": "$lt", "le": "$lte", "gt": "$gt", "ge": "$gte", "ne": "$neq"}


def _comparison(leaf: cond.Comparison) -> dict[str, Any]:
    key = fact_key(leaf.field)
    if leaf.op == "eq":
        return {key: leaf.value}
    if leaf.op in _ORDERING:
        return {_ORDERING[leaf.op]: {key: leaf.value}}
    if leaf.op == "in":
        branches = [{key: value} for value in leaf.value]
        return branches[0] if len(branches) == 1 else {"$or": branches}
    if leaf.op == "not_in":
        branches = [{"$neq": {key: value}} for value in leaf.value]
        return branches[0] if len(branches) == 1 else {"$and": branches}
    if leaf.op == "known":
        return {("$ex" if leaf.value else "$nex"): {key: 1}}
    if leaf.op == "contains":
        return {fact_key(f"{leaf.field}.{leaf.value}"): True}
    raise ValueError(f"no durable-rules form for operator {leaf.op!r}")
