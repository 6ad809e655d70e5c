"""Situation signatures: which situations no rule of a rulebook can tell apart.

Every rule condition compares a field with constants (``=``, ``<``, ``≤``, membership, ``known``,
``includes``). Two validated situations of the same disease therefore make exactly the same rules fire,
and derive exactly the same facts, when for every field a rule reads they agree on

- enumerations, booleans, text: the value itself (or both unknown);
- numbers: the interval the value falls in between the thresholds the rulebook compares that field with,
  and whether it sits exactly on one (``bisect`` over the sorted thresholds), or both unknown;
- lists (``history.prior_bispecific``): the set of members.

Fields no rule reads are left out. The signature is computed from the rulebook alone, so it stays right
as rules are added; batch evaluation uses it to run durable-rules once per signature
(``postcart.cohort``), and a test compares that against direct evaluation over generated situations.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Hashable
from typing import Any

from postcart import conditions as cond
from postcart.rulebook import DISEASES, Rulebook
from postcart.situation import PatientSituation, field_catalogue

__all__ = ["SignatureScheme"]

_NUMERIC = ("int", "float")


class SignatureScheme:
    """The signature of situations under one rulebook: equal signatures, equal engine results.

    Built per disease: the rulesets are per disease, so a field only other diseases' rules read does not
    split the situations of this one.
    """

    def __init__(self, rulebook: Rulebook) -> None:
        catalogue = field_catalogue()
        self.fields: dict[str, tuple[str, ...]] = {}
        self.thresholds: dict[str, dict[str, tuple[float, ...]]] = {}
        self._getters: dict[str, tuple[tuple[tuple[str, ...], tuple[float, ...] | None, bool], ...]] = {}
        for disease in DISEASES:
            thresholds: dict[str, set[float]] = {}
            read: set[str] = set()
            for rule in rulebook.rules:
                if rule.condition is None or not (rule.applies_to_all_diseases or disease in rule.diseases):
                    continue
                for leaf in cond.leaves(rule.condition):
                    if leaf.field.startswith("derived."):
                        continue  # derived facts are functions of the input fields their rules read
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
                (tuple(name.split(".")), self.thresholds[disease].get(name),
                 name in catalogue and catalogue[name].kind == "set")
                for name in fields)

    def of(self, situation: PatientSituation) -> tuple[Hashable, ...]:
        """The signature of a validated situation (read straight from the model, no flattening)."""
        key: list[Hashable] = [situation.disease]
        for path, cuts, is_set in self._getters[situation.disease]:
            value: Any = situation
            for part in path:
                value = getattr(value, part)
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
