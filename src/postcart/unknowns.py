"""Unknown inputs: what each option would be once they are known, found by re-running durable-rules.

An unknown input is unknown, not false. The rules themselves are two-valued (a comparison on an unknown
field does not hold, ``docs/rulebook-format.md``), so for the inputs still open (``unknowns`` in
``rules/rulebook.yaml``: HCT-CI, organ function, donor, CAR target on the biopsy, ...) the resolver
*completes* the situation: for each option, every combination of one plausible value per class of each
open input its rules read (through the derived facts they read) is given to the engine, and the
option's verdict in each completion is the engine's, combined by the assessment's own policy
(:func:`postcart.assessment.decide`). Nothing here evaluates a rule condition: the only Python reading
of a comparison is the one that merges an input's values into the classes the option's rules tell apart
(as :mod:`postcart.signature` does for the cohort cache).

From the completions (see docs/unknowns.md):

- an option the rules address today keeps its verdict, and lists as ``pending`` each open input whose
  answer would change it, with the verdict each answer leads to (the strongest over the other open
  inputs' answers);
- an option no rule addresses today becomes ``consider`` when some completion makes it recommended or
  consider, its rationale saying what to establish first; ``not_advised`` when every completion makes it
  not advised; otherwise it stays not addressed;
- a contraindication that holds on known inputs alone decides: its option is not completed.

Speed. A completion differs from the situation in one or two signature classes, so whether each rule
group fires is usually known from earlier engine runs (per group and key, as in the cohort evaluator);
durable-rules runs only for a completion with a group key not seen before, and what it shows is kept
(bounded caches). Thread-tolerant (dict operations only); one resolver per engine.
"""

from __future__ import annotations

import itertools
import math
import threading
import weakref
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from postcart.assessment import MissingInformation, Pending, PendingOutcome, decide
from postcart.engine import Engine, EngineResult
from postcart.errors import EvaluationError
from postcart.rulebook import Derive, Rule, Rulebook, Suggest, UnknownInput
from postcart.rulebook import conditions as cond
from postcart.signature import SignatureScheme
from postcart.situation import PatientSituation, field_catalogue, flatten
from postcart.vocabulary import DISEASES, OPTIONS, option_name

__all__ = ["OptionUnknowns", "UnknownResolver", "Unknowns", "resolver_for"]

#: Outcomes, strongest first (``not_addressed``: no rule would speak to the option).
RANK: tuple[str, ...] = ("recommended", "consider", "not_advised", "not_addressed")
#: At most this many completions per option; beyond it the least urgent open inputs stay open.
MAX_COMPLETIONS = 64
_CACHE_LIMIT = 20_000


@dataclass(frozen=True)
class _Answer:
    """One class of values of an input: its class in the signature, a value to run, its words."""

    slot_class: Hashable
    value: Any
    words: str


@dataclass(frozen=True)
class OptionUnknowns:
    """What the completions showed for one option."""

    option: str
    today: str
    pending: tuple[Pending, ...]
    verdict: str | None = None
    rationale: str = ""
    rules: tuple[Rule, ...] = ()
    because: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class Unknowns:
    """The open inputs of one situation and, per option, what their answers would make of it."""

    inputs: Mapping[str, UnknownInput]
    options: Mapping[str, OptionUnknowns] = field(default_factory=dict)

    def pending(self, option: str) -> list[Pending]:
        found = self.options.get(option)
        return list(found.pending) if found is not None else []

    def not_addressed_note(self, option: str) -> str:
        found = self.options.get(option)
        return found.note if found is not None and found.verdict is None else ""

    def rank_missing(self, rulebook: Rulebook, missing: list[MissingInformation],
                     present: set[str]) -> list[MissingInformation]:
        """The missing information with each question and the options waiting on it; inputs an option waits
        on that no rule asked for are added. Ranked by options waiting, then urgency, then rule order."""
        waiting: dict[str, list[str]] = {}
        for name in OPTIONS:
            found = self.options.get(name)
            if found is None or (found.verdict is None and name not in present):
                continue
            for asked_for in found.pending:
                waiting.setdefault(asked_for.field, []).append(name)
        entries = list(missing)
        asked = {item.field for item in entries}
        for path, names in waiting.items():
            if path not in asked:
                words = ", ".join(option_name(name).lower().replace("car-t", "CAR-T") for name in names)
                entries.append(MissingInformation(field=path, why=f"The answer decides: {words}.", rules=[]))
        out = []
        for item in entries:
            options = waiting.get(item.field, [])
            key = (rulebook.memo_key, item.field, tuple(item.rules), tuple(options))
            ready = _MISSING.get(key)
            if ready is None:
                spec = self.inputs.get(item.field)
                words = spec.question if spec is not None else f"What is the {rulebook.label(item.field)}?"
                ready = item.model_copy(update={"question": words, "options": options})
                _bounded_put(_MISSING, key, ready)
            out.append(ready)
        order = {item.field: index for index, item in enumerate(out)}
        out.sort(key=lambda item: (-len(item.options), self.inputs[item.field].urgency
                                   if item.field in self.inputs else 10, order[item.field]))
        return out


#: Missing-information entries depend only on the rulebook, the rules asking and the options waiting.
_MISSING: dict[tuple[Any, ...], MissingInformation] = {}


class UnknownResolver:
    """Completes situations over their open inputs with one engine; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        rulebook = self.rulebook = engine.rulebook
        self.scheme = SignatureScheme(rulebook)
        self.inputs: dict[str, UnknownInput] = {item.field: item for item in rulebook.unknowns}
        catalogue = field_catalogue()
        self._getters = {path: _getter(path) for path in self.inputs}
        self._slots = {disease: {path: index for index, path in enumerate(self.scheme.fields[disease])}
                       for disease in DISEASES}
        self._suggest: dict[str, dict[str, tuple[Rule, ...]]] = {}
        self._reads: dict[str, dict[str, frozenset[str]]] = {}
        self._answers: dict[tuple[str, str, str], tuple[_Answer, ...]] = {}
        self._rule_inputs: dict[str, dict[str, frozenset[str]]] = {}
        self._rule_ids: dict[tuple[str, str], frozenset[str]] = {}
        for disease in DISEASES:
            rules = rulebook.rules_for(disease)
            deriving: dict[str, list[Rule]] = {}
            for rule in rules:
                if isinstance(rule.then, Derive):
                    deriving.setdefault(rule.then.derive, []).append(rule)
            per_option: dict[str, list[Rule]] = {}
            for rule in rules:
                if isinstance(rule.then, Suggest):
                    per_option.setdefault(rule.then.option, []).append(rule)
            self._suggest[disease] = {name: tuple(items) for name, items in per_option.items()}
            self._rule_ids.update({(disease, name): frozenset(rule.id for rule in items)
                                   for name, items in per_option.items()})
            self._rule_inputs.setdefault(disease, {})
            for rule in rules:
                self._rule_inputs[disease][rule.id] = frozenset(
                    leaf.field for item in _upstream([rule], deriving) if item.condition is not None
                    for leaf in cond.leaves(item.condition) if not leaf.field.startswith("derived."))
            self._reads[disease] = {}
            for name, items in per_option.items():
                upstream = _upstream(items, deriving)
                self._reads[disease][name] = frozenset(
                    leaf.field for rule in upstream if rule.condition is not None
                    for leaf in cond.leaves(rule.condition) if not leaf.field.startswith("derived."))
                for path in self.inputs:
                    if path in self._reads[disease][name] and path in self._slots[disease]:
                        leaves = [leaf for rule in upstream if rule.condition is not None
                                  for leaf in cond.leaves(rule.condition) if leaf.field == path]
                        self._answers[(disease, name, path)] = self._classes(
                            disease, path, leaves, catalogue[path].kind)
        # what earlier engine runs showed, per rule group and key (as in the cohort evaluator)
        self._plans: dict[str, list[tuple[Callable[[Any], Hashable], dict[Hashable, tuple[frozenset[str], Any]],
                                          int | None, frozenset[str], str | None]]] = {disease: [(group.key, {}, group.slot, group.rule_ids, group.derives) for group in groups]
                       for disease, groups in self.scheme.groups.items()}
        self._facts = self.scheme.facts
        self._outcomes: dict[tuple[Any, ...], OptionUnknowns | None] = {}
        self._group_of = {disease: {rule_id: index for index, group in enumerate(groups) for rule_id in group.rule_ids}
                          for disease, groups in self.scheme.groups.items()}
        # per option, only the groups holding its rules and those deriving the facts they read
        self._option_plans: dict[tuple[str, str], list[Any]] = {}
        for disease, groups in self.scheme.groups.items():
            by_fact = {group.derives: index for index, group in enumerate(groups) if group.derives is not None}
            for name, option_rules in self._suggest[disease].items():
                ids = {rule.id for rule in option_rules}
                needed = {index for index, group in enumerate(groups) if group.rule_ids & ids}
                todo = list(needed)
                while todo:
                    for path in groups[todo.pop()].fields:
                        source = by_fact.get(path.removeprefix("derived.")) if path.startswith("derived.") else None
                        if source is not None and source not in needed:
                            needed.add(source)
                            todo.append(source)
                self._option_plans[(disease, name)] = [self._plans[disease][index] for index in sorted(needed)]
        self._verdicts: dict[tuple[str, frozenset[str]], tuple[str, tuple[Rule, ...]]] = {}
        self.engine_runs = 0

    # --- answers

    def _classes(self, disease: str, path: str, leaves: list[cond.Comparison], kind: str) -> tuple[_Answer, ...]:
        """The classes of an input's values that the option's rules tell apart, each with a value to run."""
        spec = field_catalogue()[path]
        entry = self.inputs[path]
        candidates: list[tuple[Hashable, Any, tuple[int, int] | None]] = []
        if kind == "enum":
            candidates = [(value, value, None) for value in spec.values if value != entry.unknown]
        elif kind == "bool":
            candidates = [(True, True, None), (False, False, None)]
        elif kind == "int" and spec.minimum is not None and spec.maximum is not None:
            cuts = self.scheme.thresholds[disease].get(path, ())
            low, high = int(spec.minimum), int(spec.maximum)
            for index in range(len(cuts) + 1):
                start = low if index == 0 else math.floor(cuts[index - 1]) + 1
                stop = high if index == len(cuts) else math.ceil(cuts[index]) - 1
                start, stop = max(start, low), min(stop, high)
                if start <= stop:
                    candidates.append(((index, False), start, (start, stop)))
                if index < len(cuts) and float(cuts[index]).is_integer() and low <= cuts[index] <= high:
                    candidates.append(((index, True), int(cuts[index]), (int(cuts[index]), int(cuts[index]))))
            candidates.sort(key=lambda item: item[1])
        groups: dict[tuple[bool, ...], list[tuple[Hashable, Any, tuple[int, int] | None]]] = {}
        for candidate in candidates:
            groups.setdefault(tuple(leaf.holds({path: candidate[1]}) for leaf in leaves), []).append(candidate)
        answers = []
        for members in groups.values():
            slot_class, value, _ = members[0]
            if kind == "int":
                words = _ranges([member[2] for member in members if member[2] is not None], int(spec.maximum or 0))
            else:
                words = " or ".join(dict.fromkeys(entry.words(member[1]) for member in members))
            answers.append(_Answer(slot_class, value, words))
        return tuple(answers)

    # --- one situation

    def resolve(self, situation: PatientSituation, result: EngineResult) -> Unknowns:
        """What the open inputs' answers would make of each option of this situation."""
        disease = situation.disease
        slots_of = self._slots[disease]
        open_fields = [path for path, entry in self.inputs.items()
                       if path in slots_of and self._getters[path](situation) == entry.unknown]
        if not open_fields:
            return Unknowns(self.inputs)
        classes = self.scheme.classes(situation)
        context = _Context(self, situation, classes, result)
        fired_today = frozenset(result.fired)
        base_slots = [*classes, *(result.derived.get(name) for name in self._facts[disease])]
        outcomes: dict[str, OptionUnknowns] = {}
        for name, rules in self._suggest[disease].items():
            reads = self._reads[disease][name]
            asked = [path for path in open_fields if path in reads and len(self._answers[(disease, name, path)]) > 1]
            if not asked:
                continue
            # what the completions show depends only on the keys of the option's rule groups (the classes
            # of what they read, merged to the distinctions their comparisons make) and on what is open
            key = (disease, name, tuple(asked),
                   tuple(plan[0](base_slots) for plan in self._option_plans[(disease, name)]))
            if key in self._outcomes:
                known = self._outcomes[key]
            else:
                known = self._option(context, name, rules, asked, fired_today, open_fields)
                _bounded_put(self._outcomes, key, known)
            if known is not None:
                outcomes[name] = known
        return Unknowns(self.inputs, outcomes)

    def _option(self, context: _Context, name: str, rules: tuple[Rule, ...], asked: list[str],
                fired_today: frozenset[str], open_fields: list[str]) -> OptionUnknowns | None:
        """One option of one situation: its verdict today, then its completions unless a known
        contraindication decides."""
        today, deciding = self._verdict(name, frozenset(rule.id for rule in rules if rule.id in fired_today))
        if today == "not_advised" and any(
                rule.suggestion is not None and rule.suggestion.contraindication
                and not (self._inputs_of(context.disease, rule) & set(open_fields)) for rule in deciding):
            return None  # a contraindication on known inputs wins whatever the unknowns
        return self._complete(context, name, rules, asked, today)

    def _complete(self, context: _Context, name: str, rules: tuple[Rule, ...], asked: list[str],
                  today: str) -> OptionUnknowns | None:
        disease = context.disease
        asked = sorted(asked, key=lambda path: self.inputs[path].urgency)
        domains = [self._answers[(disease, name, path)] for path in asked]
        while len(domains) > 1 and math.prod(len(domain) for domain in domains) > MAX_COMPLETIONS:
            asked, domains = asked[:-1], domains[:-1]  # the least urgent stay open
        rule_ids = self._rule_ids[(disease, name)]
        slots = [self._slots[disease][path] for path in asked]
        seen: list[tuple[tuple[_Answer, ...], str, tuple[Rule, ...]]] = []
        for combination in itertools.product(*domains):
            fired = context.fired(name, list(zip(slots, combination, asked, strict=True)))
            if fired is None:
                continue  # the engine refused this hypothetical (a rulebook defect): not counted
            verdict, deciding = self._verdict(name, frozenset(fired & rule_ids))
            seen.append((combination, verdict, deciding))
        if not seen or all(verdict == today for _, verdict, _ in seen):
            return None  # no answer changes the verdict: nothing pending
        pending: list[tuple[int, int, Pending]] = []
        for index, path in enumerate(asked):
            outcomes = []
            for answer in domains[index]:
                reached = [verdict for combination, verdict, _ in seen if combination[index] is answer]
                if reached:
                    outcomes.append(PendingOutcome(value=answer.words, verdict=min(reached, key=RANK.index)))  # type: ignore[arg-type]
            verdicts = {outcome.verdict for outcome in outcomes}
            if verdicts != {today}:
                entry = self.inputs[path]
                pending.append((-len(verdicts), entry.urgency,
                                Pending(field=path, question=entry.question, outcomes=outcomes)))
        pending.sort(key=lambda item: (item[0], item[1]))
        items = tuple(item for _, _, item in pending)
        if today != "not_addressed" or not items:
            return OptionUnknowns(name, today, items)
        best = min((verdict for _, verdict, _ in seen), key=RANK.index)
        order = {path: index for index, path in enumerate(asked)}
        if best in ("recommended", "consider"):
            combination, _, deciding = next(item for item in seen if item[1] == best)
            shown = [item.field for item in items]
            checks = _and(self.inputs[path].check for path in shown)
            conditions = _and(f"{self.inputs[path].label} {combination[order[path]].words}" for path in shown)
            text = " ".join(then.rationale.strip() for rule in deciding
                            for then in [rule.suggestion] if then is not None)
            rationale = f"Consider, pending {checks}: {best.replace('_', ' ')} if {conditions}. {text}"
            because = tuple(f"{self.inputs[path].label} not yet known" for path in shown)
            return OptionUnknowns(name, today, items, "consider", rationale, deciding, because)
        if all(verdict == "not_advised" for _, verdict, _ in seen):
            _, _, deciding = seen[0]
            text = " ".join(then.rationale.strip() for rule in deciding
                            for then in [rule.suggestion] if then is not None)
            rationale = f"Not advised whatever the answers to the open questions. {text}"
            because = tuple(f"{self.inputs[path].label} not yet known" for path in asked)
            return OptionUnknowns(name, today, (), "not_advised", rationale, deciding, because)
        against = [f"{self.inputs[item.field].label} {outcome.value}" for item in items
                   for outcome in item.outcomes if outcome.verdict == "not_advised"]
        note = f"; not advised if {_or(against)}" if against else ""
        return OptionUnknowns(name, today, items, None, note=note)

    def _verdict(self, option: str, rule_ids: frozenset[str]) -> tuple[str, tuple[Rule, ...]]:
        """The option's verdict for the set of its rules that fired (the assessment's policy), cached."""
        key = (option, rule_ids)
        known = self._verdicts.get(key)
        if known is None:
            if not rule_ids:
                known = ("not_addressed", ())
            else:
                rules = [self.rulebook.rule(rule_id) for rule_id in sorted(rule_ids)]
                verdict, deciding = decide([(rule, rule.then) for rule in rules if isinstance(rule.then, Suggest)])
                known = (verdict, tuple(rule for rule, _ in deciding))
            _bounded_put(self._verdicts, key, known)
        return known

    def _inputs_of(self, disease: str, rule: Rule) -> frozenset[str]:
        """The input fields a rule reads, through the derived facts it reads."""
        return self._rule_inputs[disease][rule.id]

    # --- engine results, per rule group

    def learn(self, disease: str, classes: list[Hashable], result: EngineResult) -> None:
        """Keep, per rule group and key, which of its rules fired (and the fact it derived)."""
        slots = [*classes, *(result.derived.get(name) for name in self._facts[disease])]
        plan = self._plans[disease]
        members: list[list[str]] = [[] for _ in plan]
        group_of = self._group_of[disease]
        for rule_id in result.fired:
            index = group_of.get(rule_id)
            if index is not None:
                members[index].append(rule_id)
        for index, (key, cache, _, _, derives) in enumerate(plan):
            cache_key = key(slots)
            if cache_key not in cache:
                value = result.derived.get(derives) if derives is not None else None
                _bounded_put(cache, cache_key, (frozenset(members[index]), value))

    def fired(self, disease: str, classes: list[Hashable], option: str | None = None) -> frozenset[str] | None:
        """The rules that fire for these signature classes, if earlier engine runs showed every group's.

        With ``option``, only the groups that decide that option are composed (its rules are all there).
        """
        slots: list[Any] = [*classes, *([None] * len(self._facts[disease]))]
        fired: set[str] = set()
        plan = self._plans[disease] if option is None else self._option_plans[(disease, option)]
        for key, cache, slot, _, _ in plan:
            entry = cache.get(key(slots))
            if entry is None:
                return None
            fired |= entry[0]
            if slot is not None:
                slots[slot] = entry[1]
        return frozenset(fired)

    def run(self, disease: str, classes: list[Hashable], facts: Mapping[str, Any]) -> frozenset[str] | None:
        """Run durable-rules on completed facts and learn from it; None when the engine refuses them."""
        self.engine_runs += 1
        try:
            result = self.engine.run_facts(facts, disease)
        except EvaluationError:
            return None
        self.learn(disease, classes, result)
        return frozenset(result.fired)


class _Context:
    """One situation's completions: its classes, its facts (made on the first engine run) and a memo."""

    def __init__(self, resolver: UnknownResolver, situation: PatientSituation, classes: tuple[Hashable, ...],
                 result: EngineResult) -> None:
        self.resolver = resolver
        self.result: EngineResult | None = result  # taught to the group caches on the first miss
        self.situation = situation
        self.disease = situation.disease
        self.classes = classes
        self._facts: dict[str, Any] | None = None
        self._memo: dict[tuple[tuple[int, Hashable], ...], frozenset[str] | None] = {}

    def fired(self, option: str, assignment: list[tuple[int, _Answer, str]]) -> frozenset[str] | None:
        """The rules deciding ``option`` that fire in this completion (a superset: callers keep the option's)."""
        key = tuple(sorted((slot, answer.slot_class) for slot, answer, _ in assignment))
        ran = self._memo.get(key)
        if ran is not None:
            return ran
        classes = list(self.classes)
        for slot, answer, _ in assignment:
            classes[slot] = answer.slot_class
        fired = self.resolver.fired(self.disease, classes, option)
        if fired is None and self.result is not None:  # the situation's own run may hold what is missing
            self.resolver.learn(self.disease, list(self.classes), self.result)
            self.result = None
            fired = self.resolver.fired(self.disease, classes, option)
        if fired is None and key not in self._memo:
            if self._facts is None:
                self._facts = flatten(self.situation)
            facts = dict(self._facts)
            for _, answer, path in assignment:
                facts[path] = answer.value
            fired = self._memo[key] = self.resolver.run(self.disease, classes, facts)  # every rule: shared
        return fired


_RESOLVERS: weakref.WeakKeyDictionary[Engine, UnknownResolver] = weakref.WeakKeyDictionary()
_RESOLVERS_LOCK = threading.Lock()


def resolver_for(engine: Engine) -> UnknownResolver:
    """The resolver of an engine, made on first use and dropped with the engine."""
    with _RESOLVERS_LOCK:
        resolver = _RESOLVERS.get(engine)
        if resolver is None:
            resolver = _RESOLVERS[engine] = UnknownResolver(engine)
        return resolver


def _upstream(rules: Iterable[Rule], deriving: Mapping[str, list[Rule]]) -> list[Rule]:
    """The rules and, transitively, the rules deriving the facts they read."""
    out: list[Rule] = []
    todo = list(rules)
    seen: set[str] = set()
    while todo:
        rule = todo.pop()
        if rule.id in seen:
            continue
        seen.add(rule.id)
        out.append(rule)
        for path in rule.reads:
            if path.startswith("derived."):
                todo.extend(deriving.get(path.removeprefix("derived."), ()))
    return out


def _getter(path: str) -> Callable[[PatientSituation], Any]:
    parts = path.split(".")

    def get(situation: PatientSituation) -> Any:
        value: Any = situation
        for part in parts:
            value = getattr(value, part)
        return value

    return get


def _ranges(spans: list[tuple[int, int]], maximum: int) -> str:
    """Integer spans merged and worded: [(0, 2)] -> '0-2', [(5, 30)] -> '5 or more'."""
    merged: list[list[int]] = []
    for start, stop in sorted(spans):
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], stop)
        else:
            merged.append([start, stop])
    words = []
    for start, stop in merged:
        if start == stop:
            words.append(str(start))
        elif stop == maximum and stop - start > 2:
            words.append(f"{start} or more")
        else:
            words.append(f"{start}-{stop}")
    return " or ".join(words)


def _and(items: Iterable[str]) -> str:
    parts = list(dict.fromkeys(items))
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _or(items: Iterable[str]) -> str:
    parts = list(dict.fromkeys(items))
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _bounded_put(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value

