"""Situation signatures: which situations no rule of a rulebook can tell apart.

Every rule condition compares a field with constants (``=``, ``<``, ``≤``, membership, ``known``,
``includes``). So whether a rule fires depends only on the *class* of each field it reads:

- enumerations, booleans, text: the value itself (or unknown);
- numbers: the interval the value falls in between the thresholds the disease's rules compare that field
  with, and whether it sits exactly on one (``bisect`` over the sorted thresholds), or unknown;
- lists (``history.prior_bispecific``): the set of members;
- a derived fact: the classes of the input fields its deriving rules read (transitively).

Rules are grouped: the rules deriving one fact form a group, the other rules are grouped by the set of
input fields they depend on. A group's *key* is the classes of those fields, so two situations of the
same disease with equal keys for a group fire the same rules of that group. The
rulesets are per disease, and so are the fields, thresholds and groups here. All of it is computed from
the rulebook, so it stays right as rules are added; ``postcart.cohort`` uses it to run durable-rules only
for situations whose outcome it has not seen, and a test compares that against direct evaluation.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any

from postcart import conditions as cond
from postcart.rulebook import DISEASES, Derive, Rule, Rulebook
from postcart.situation import PatientSituation, field_catalogue

__all__ = ["RuleGroup", "SignatureScheme"]

_NUMERIC = ("int", "float")


@dataclass(frozen=True)
class RuleGroup:
    """Rules whose firing depends on the same fields: a derived fact's rules, or rules reading one field set.

    ``key`` maps the disease's field classes to this group's key; ``derives`` names the fact the group's
    rules derive (its rules all derive it), else None.
    """

    name: str
    rule_ids: frozenset[str]
    fields: tuple[str, ...]
    key: Callable[[tuple[Hashable, ...]], Hashable]
    derives: str | None = None


class SignatureScheme:
    """Field classes and rule groups of one rulebook, per disease."""

    def __init__(self, rulebook: Rulebook) -> None:
        catalogue = field_catalogue()
        self.fields: dict[str, tuple[str, ...]] = {}
        self.thresholds: dict[str, dict[str, tuple[float, ...]]] = {}
        self.groups: dict[str, tuple[RuleGroup, ...]] = {}
        self._getters: dict[str, tuple[tuple[Callable[[Any], Any], tuple[float, ...] | None, bool], ...]] = {}
        for disease in DISEASES:
            rules = [rule for rule in rulebook.rules if rule.applies_to_all_diseases or disease in rule.diseases]
            thresholds: dict[str, set[float]] = {}
            read: set[str] = set()
            for rule in rules:
                for leaf in cond.leaves(rule.condition) if rule.condition is not None else ():
                    if leaf.field.startswith("derived."):
                        continue
                    read.add(leaf.field)
                    spec = catalogue.get(leaf.field)
                    if spec is not None and spec.kind in _NUMERIC:
                        bucket = thresholds.setdefault(leaf.field, set())
                        if leaf.op != "known":
                            bucket.update(leaf.value if isinstance(leaf.value, tuple) else (leaf.value,))
            fields = tuple(sorted(read))
            self.fields[disease] = fields
            self.thresholds[disease] = {name: tuple(sorted(values)) for name, values in thresholds.items()}
            self._getters[disease] = tuple(
                (attrgetter(name), self.thresholds[disease].get(name),
                 name in catalogue and catalogue[name].kind == "set")
                for name in fields)
            self.groups[disease] = _groups(rules, fields)

    def classes(self, situation: PatientSituation) -> tuple[Hashable, ...]:
        """The class of every field the situation's disease's rules read, in ``fields[disease]`` order."""
        key: list[Hashable] = []
        for get, cuts, is_set in self._getters[situation.disease]:
            value = get(situation)
            if value is None:
                key.append(None)
            elif cuts is not None:
                index = bisect_left(cuts, value)
                key.append((index, index < len(cuts) and cuts[index] == value))
            elif is_set:
                key.append(frozenset(value))
            else:
                key.append(value)
        return tuple(key)

    def of(self, situation: PatientSituation) -> tuple[Hashable, ...]:
        """The whole signature: situations with equal signatures make exactly the same rules fire."""
        return (situation.disease, *self.classes(situation))


def _groups(rules: list[Rule], fields: tuple[str, ...]) -> tuple[RuleGroup, ...]:
    """One group per derived fact (its deriving rules), and one per set of input fields read."""
    deriving: dict[str, list[Rule]] = {}
    for rule in rules:
        if isinstance(rule.then, Derive):
            deriving.setdefault(rule.then.derive, []).append(rule)
    expanded: dict[str, frozenset[str]] = {}

    def inputs_of(rule_list: list[Rule], seen: frozenset[str]) -> frozenset[str]:
        found: set[str] = set()
        for rule in rule_list:
            for path in rule.reads:
                if path.startswith("derived."):
                    found |= fact_inputs(path.removeprefix("derived."), seen)
                else:
                    found.add(path)
        return frozenset(found)

    def fact_inputs(name: str, seen: frozenset[str]) -> frozenset[str]:
        if name not in expanded:
            if name in seen:  # the loader refuses cycles; this only guards the recursion
                return frozenset()
            expanded[name] = inputs_of(deriving.get(name, []), seen | {name})
        return expanded[name]

    members: dict[tuple[str | None, frozenset[str]], list[Rule]] = {}
    for name, rule_list in deriving.items():
        members[(name, inputs_of(rule_list, frozenset()))] = rule_list
    for rule in rules:
        if not isinstance(rule.then, Derive):
            members.setdefault((None, inputs_of([rule], frozenset())), []).append(rule)
    # a group whose fields are a subset of another's joins it: its key is then determined anyway, and
    # every group costs a lookup per situation
    kept: dict[tuple[str | None, frozenset[str]], list[Rule]] = {}
    for (derives, reads_set), rule_list in sorted(members.items(), key=lambda item: -len(item[0][1])):
        host = None if derives is not None else next(
            (other for other in kept if other[0] is None and reads_set <= other[1]), None)
        if host is None:
            kept[(derives, reads_set)] = list(rule_list)
        else:
            kept[host].extend(rule_list)
    position = {name: index for index, name in enumerate(fields)}
    groups = []
    for (derives, reads_set), rule_list in kept.items():
        reads = tuple(sorted(reads_set, key=position.__getitem__))
        indices = [position[path] for path in reads]
        key: Callable[[tuple[Hashable, ...]], Hashable]
        if not indices:
            key = _constant
        elif len(indices) == 1:
            key = itemgetter(indices[0])
        else:
            key = itemgetter(*indices)
        name = f"derived:{derives}" if derives else "reads:" + ",".join(reads)
        groups.append(RuleGroup(name, frozenset(rule.id for rule in rule_list), reads, key, derives))
    return tuple(groups)


def _constant(classes: tuple[Hashable, ...]) -> Hashable:
    return ()
