"""Situation signatures: which situations no rule of a rulebook can tell apart.

Every rule condition compares a field with constants (``=``, ``<``, ``≤``, membership, ``known``,
``includes``). So whether a rule fires depends only on the *class* of each field it reads:

- enumerations, booleans, text: the value itself (or unknown);
- numbers: the interval the value falls in between the thresholds the disease's rules compare that field
  with, and whether it sits exactly on one (``bisect`` over the sorted thresholds), or unknown;
- lists (``history.prior_bispecific``): the set of members;
- a derived fact: its value (derived facts are computed in an earlier stratum than the rules reading them).

Rules are grouped: the rules deriving one fact form a group, the other rules are grouped by the fields
and derived facts they read. A group's *key* is their classes and values, so two situations of the same
disease with equal keys for a group fire the same rules of that group; the value of a derived fact
follows from its group's key. Within a group, a field's classes are merged down to the distinctions the
group's own comparisons on that field make. The rulesets are per disease, and so are the fields, thresholds and groups here. All of it is computed from
the rulebook, so it stays right as rules are added; ``postcart.batch.evaluator`` uses it to run durable-rules only
for situations whose outcome it has not seen, and a test compares that against direct evaluation.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from operator import attrgetter, getitem, itemgetter
from typing import Any

from postcart.rulebook import Derive, Rule, Rulebook
from postcart.rulebook import conditions as cond
from postcart.situation import PatientSituation, field_catalogue
from postcart.vocabulary import DISEASES

__all__ = ["RuleGroup", "SignatureScheme"]

_NUMERIC = ("int", "float")


@dataclass(frozen=True)
class RuleGroup:
    """Rules whose firing depends on the same slots: a derived fact's rules, or rules reading one slot set.

    ``key`` maps the disease's slots (the field classes, then the derived facts' values) to this group's
    key; ``derives`` names the fact the group's rules derive, and ``slot`` where its value goes.
    """

    name: str
    rule_ids: frozenset[str]
    fields: tuple[str, ...]
    key: Callable[[Any], Hashable]
    derives: str | None = None
    slot: int | None = None


class SignatureScheme:
    """Field classes and rule groups of one rulebook, per disease."""

    def __init__(self, rulebook: Rulebook) -> None:
        catalogue = field_catalogue()
        self.fields: dict[str, tuple[str, ...]] = {}
        self.thresholds: dict[str, dict[str, tuple[float, ...]]] = {}
        self.groups: dict[str, tuple[RuleGroup, ...]] = {}
        self.facts: dict[str, tuple[str, ...]] = {}
        self._getters: dict[str, tuple[tuple[Callable[[Any], Any], tuple[float, ...] | None, bool], ...]] = {}
        for disease in DISEASES:
            rules = list(rulebook.rules_for(disease))
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
            self.groups[disease], self.facts[disease] = _groups(rules, fields, self.thresholds[disease])

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


def _groups(rules: list[Rule], fields: tuple[str, ...], thresholds: dict[str, tuple[float, ...]]
            ) -> tuple[tuple[RuleGroup, ...], tuple[str, ...]]:
    """The groups in evaluation order, and the derived facts whose values follow the fields in the slots.

    A derived fact's rules form one group, keyed by the input fields and the derived facts (values) they
    read; groups of facts that read other facts come after them. The other rules are grouped by the
    slots (input fields and derived facts) they read; a group whose slots are a subset of another's
    joins it. Slots: ``fields`` first, then each derived fact, in order of derivation.
    """
    deriving: dict[str, list[Rule]] = {}
    for rule in rules:
        if isinstance(rule.then, Derive):
            deriving.setdefault(rule.then.derive, []).append(rule)
    levels: dict[str, int] = {}

    def level(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name not in levels:
            if name in seen:  # the loader refuses cycles; this only guards the recursion
                return 0
            reads = {path.removeprefix("derived.") for rule in deriving.get(name, ()) for path in rule.reads
                     if path.startswith("derived.")}
            levels[name] = 1 + max((level(other, seen | {name}) for other in reads), default=-1)
        return levels[name]

    facts = tuple(sorted(deriving, key=lambda name: (level(name), name)))
    slots = {name: index for index, name in enumerate(fields)}
    slots.update({f"derived.{name}": len(fields) + index for index, name in enumerate(facts)})

    def reads_of(rule_list: list[Rule]) -> frozenset[str]:
        # a derived fact no rule of this disease derives is always unknown: it needs no slot
        return frozenset(path for rule in rule_list for path in rule.reads if path in slots)

    derivations = [(name, reads_of(deriving[name]), deriving[name]) for name in facts]
    members: dict[frozenset[str], list[Rule]] = {}
    for rule in rules:
        if not isinstance(rule.then, Derive):
            members.setdefault(reads_of([rule]), []).append(rule)
    kept: dict[frozenset[str], list[Rule]] = {}
    for reads, rule_list in sorted(members.items(), key=lambda item: -len(item[0])):
        host = next((other for other in kept if reads <= other), None)
        if host is None:
            kept[reads] = list(rule_list)
        else:
            kept[host].extend(rule_list)
    groups = [_group(f"derived:{name}", rule_list, reads, slots, name, thresholds)
              for name, reads, rule_list in derivations]
    groups += [_group("reads:" + ",".join(sorted(reads)), rule_list, reads, slots, None, thresholds)
               for reads, rule_list in kept.items()]
    return tuple(groups), facts


def _group(name: str, rule_list: list[Rule], reads: frozenset[str], slots: dict[str, int],
           derives: str | None, thresholds: dict[str, tuple[float, ...]]) -> RuleGroup:
    ordered = tuple(sorted(reads, key=slots.__getitem__))
    indices = [slots[path] for path in ordered]
    maps = [_coarsen(path, rule_list, thresholds) for path in ordered]
    plain = [index for index, table in zip(indices, maps, strict=False) if table is None]
    coarse = [(index, table) for index, table in zip(indices, maps, strict=False) if table is not None]
    key: Callable[[Any], Hashable]
    if not indices:
        key = _constant
    elif not coarse:
        key = itemgetter(plain[0]) if len(plain) == 1 else itemgetter(*plain)
    else:
        key = _key(plain, coarse)
    slot = slots[f"derived.{derives}"] if derives is not None else None
    return RuleGroup(name, frozenset(rule.id for rule in rule_list), ordered, key, derives, slot)


class _Classes(dict[Hashable, Hashable]):
    """A class table; a value it does not list keeps a class of its own (never merged with another)."""

    def __missing__(self, value: Hashable) -> Hashable:
        return ("unlisted", value)


def _key(plain: list[int], coarse: list[tuple[int, _Classes]]) -> Callable[[Any], Hashable]:
    """A key over slots: plain ones as they are, coarsened ones through their class tables."""
    plain_get = itemgetter(*plain) if plain else None
    if len(coarse) == 1:
        (index, table), = coarse
        if plain_get is None:
            return lambda slots: table[slots[index]]
        return lambda slots: (plain_get(slots), table[slots[index]])
    coarse_get = itemgetter(*(index for index, _ in coarse))
    tables = [table for _, table in coarse]
    if plain_get is None:
        return lambda slots: tuple(map(getitem, tables, coarse_get(slots)))
    return lambda slots: (plain_get(slots), tuple(map(getitem, tables, coarse_get(slots))))


def _coarsen(path: str, rule_list: list[Rule], thresholds: dict[str, tuple[float, ...]]) -> _Classes | None:
    """The group's own classes of one input field, as a table from the disease's classes; None: the same.

    The disease's classes separate values that some rule of the disease tells apart; a group needs only
    the distinctions its own comparisons on the field make: two values are in one class when every one of
    them gives the same answer (``Comparison.holds`` on a representative value of each disease class).
    """
    spec = field_catalogue().get(path)
    if spec is None:
        return None  # a derived fact: its few values are its classes
    leaves = [leaf for rule in rule_list if rule.condition is not None
              for leaf in cond.leaves(rule.condition) if leaf.field == path]
    representatives: dict[Hashable, Any] = {None: None}
    if spec.kind in _NUMERIC:
        cuts = thresholds.get(path, ())
        for index in range(len(cuts) + 1):
            if not cuts:
                between: float = 0
            elif index == 0:
                between = cuts[0] - 1
            elif index == len(cuts):
                between = cuts[-1] + 1
            else:
                between = (cuts[index - 1] + cuts[index]) / 2
            representatives[(index, False)] = between
        for index, cut in enumerate(cuts):
            representatives[(index, True)] = cut
    elif spec.kind == "enum":
        representatives.update({value: value for value in spec.values})
    elif spec.kind == "bool":
        representatives.update({True: True, False: False})
    elif spec.kind == "set":
        members = spec.values
        for mask in range(2 ** len(members)):
            chosen = tuple(member for bit, member in enumerate(members) if mask >> bit & 1)
            representatives[frozenset(chosen)] = chosen
    else:
        return None
    table = _Classes({cls: tuple(leaf.holds({path: value}) for leaf in leaves)
                      for cls, value in representatives.items()})
    if len(set(table.values())) == len(table):
        return None  # nothing to merge: keep the disease's classes
    return table


def _constant(classes: tuple[Hashable, ...]) -> Hashable:
    return ()
