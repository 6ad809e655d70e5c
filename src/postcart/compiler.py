"""The compiler: a checked rulebook -> durable-rules rulesets, as plain dicts (its JSON ruleset form).

Two measured traps of durable-rules shape this (shared/notes/durable-rules.md):

- negation does not retract queued activations, so derived facts are *stratified*: rules that derive
  facts from inputs run in one ruleset, rules that read those facts in a later one, and the engine merges
  the derived facts into the situation between strata. No rule ever sees a fact that could still change.
- ``$or`` fires once per true branch, so the engine records each rule at most once per evaluation.

Rulesets are also split by disease (each holds that disease's rules plus the all-disease rules), which
keeps every ruleset far below the C core's fixed table sizes and drops the disease test from patterns.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from postcart.rulebook import Derive, Rule, Rulebook
from postcart.rulebook import conditions as cond
from postcart.vocabulary import DISEASES

__all__ = ["CompiledRulebook", "Stratum", "compile_rulebook", "fact_key", "to_engine_fact"]

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
    """Compile every rule into durable-rules ruleset definitions, per disease and stratum."""
    levels = _levels(rulebook)
    top = max(levels.values(), default=-1) + 1
    strata: dict[str, tuple[Stratum, ...]] = {}
    for disease in DISEASES:
        rules = list(rulebook.rules_for(disease))
        ordered: list[Stratum] = []
        for level in range(top + 1):
            members = [rule for rule in rules if _level_of(rule, levels, top) == level]
            if not members:
                continue
            definition = {rule.id: {"all": [{"m": _pattern(rule)}]} for rule in members}
            derives = tuple(sorted({rule.then.derive for rule in members if isinstance(rule.then, Derive)}))
            ordered.append(Stratum(f"{prefix}_{disease}_{level}", definition,
                                   tuple(rule.id for rule in members), derives))
        strata[disease] = tuple(ordered)
    return CompiledRulebook(rulebook, strata)


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
