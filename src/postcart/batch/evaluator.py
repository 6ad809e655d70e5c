"""The cohort evaluator: records -> output rows, with one process-local engine and learned shortcuts.

Whether a rule fires depends only on the classes of the fields it reads (:mod:`postcart.signature`). The
evaluator learns from real durable-rules runs which rules of each rule group fire for each key, the
verdict of each option for the set of its rules that fired, and the questions for the set of question
rules that fired; a situation for which all of that is known gets its row composed without running the
engine again, anything new runs durable-rules. The row is then completed over its unknown inputs by
the same resolver ``evaluate()`` uses (:mod:`postcart.unknowns`), so its option columns and missing
information are ``evaluate()``'s. The caches are bounded. Every row equals a direct evaluation (``tests/test_cohort.py`` compares them over generated situations, with the bundled rules, a
rulebook using every operator on every numeric field, and 150 generated rules).

Records arrive as :class:`~postcart.batch.tables.Chunk` rows. Text cells of typed fields are converted
strictly (:func:`~postcart.batch.tables.cell_value`); a JSON Lines record is read by the strict JSON
reader; a record the table reader could not read (:class:`~postcart.batch.tables.BadRecord`) becomes an
``invalid`` row with the reason and its line.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from postcart.assessment import Assessment, build_assessment, missing_asked
from postcart.batch.tables import LIST_SEPARATOR, BadRecord, Chunk, cell_kinds, cell_value, encode_part, output_columns
from postcart.documents import parse_json
from postcart.engine import Engine, EngineResult
from postcart.errors import EvaluationError, InvalidSituation
from postcart.rulebook import Ask, Rulebook, Suggest
from postcart.signature import RuleGroup, SignatureScheme
from postcart.situation import field_catalogue, validate_situation
from postcart.unknowns import Unknowns, resolver_for
from postcart.vocabulary import OPTIONS

__all__ = ["ChunkResult", "Evaluator"]

_CACHE_LIMIT = 20_000  # entries per cache; bounded so memory does not grow with the cohort


@dataclass
class ChunkResult:
    """One chunk's encoded output part and its counts."""

    index: int
    payload: bytes
    counts: dict[str, int]
    invalid_fields: dict[str, int]


class Evaluator:
    """Turns records into output rows with one process-local engine. Not shared across processes.

    Args:
        rulebook: the rules to apply.
        cache: reuse what earlier engine runs showed (per rule group, see ``_fragment``) (default);
            ``False`` runs durable-rules and builds the assessment for every row (the reference the
            cache is tested against).
    """

    def __init__(self, rulebook: Rulebook, cache: bool = True) -> None:
        self.rulebook = rulebook
        self.engine = Engine(rulebook)
        self.scheme = SignatureScheme(rulebook)
        self._resolver = resolver_for(self.engine)  # the completion of unknown inputs, as evaluate() does
        self._completed: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.cache = cache
        self.columns = output_columns(rulebook)
        self._facts = tuple(sorted(rulebook.facts))
        self._plans: dict[str, list[tuple[RuleGroup, dict[Any, tuple[tuple[str, ...], Any]]]]] = {
            disease: [(group, {}) for group in groups] for disease, groups in self.scheme.groups.items()}
        self._lookups = {disease: [(group.key, cache, group.slot) for group, cache in plan]
                         for disease, plan in self._plans.items()}
        self._derived_slots = {disease: [(group.slot, group.derives) for group, _ in plan
                                         if group.slot is not None and group.derives is not None]
                               for disease, plan in self._plans.items()}
        self._unknown_facts = {disease: [None] * len(facts) for disease, facts in self.scheme.facts.items()}
        self._position = {disease: {rule_id: (level, index) for level, stratum in enumerate(strata)
                                    for index, rule_id in enumerate(stratum.rule_ids)}
                          for disease, strata in self.engine.compiled.strata.items()}
        self._role: dict[str, tuple[str, str]] = {}
        for rule in rulebook.rules:
            then = rule.then
            if isinstance(then, Suggest):
                self._role[rule.id] = ("option", then.option)
            elif isinstance(then, Ask):
                self._role[rule.id] = ("ask", then.ask)
            else:
                self._role[rule.id] = ("derive", then.derive)
        self._composable = True
        self._verdicts: dict[tuple[str, tuple[str, ...]], str] = {}
        self._questions: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._by_result: dict[Any, dict[str, Any]] = {}
        self._lock = threading.Lock()  # caches are per evaluator; Dask may call from several threads
        self.engine_runs = 0
        self.records = 0
        catalogue = field_catalogue()
        self._list_fields = frozenset(path for path, spec in catalogue.items() if spec.kind == "set")
        self._kinds = cell_kinds()

    def close(self) -> None:
        self.engine.close()

    # --- one record

    def row(self, number: int, data: Any, line: int | None = None) -> dict[str, Any]:
        """The output row of one record (a nested situation mapping, or an error message string); ``line``
        is the file line the record starts on (CSV and JSON Lines), ``number`` its place among the records."""
        self.records += 1
        out: dict[str, Any] = dict.fromkeys(self.columns)
        out["row"] = number
        out["line"] = line
        out.update(rules=[], missing_information=[], error_fields=[])
        if isinstance(data, str):
            out.update(status="invalid", error=data, error_fields=["(record)"])
            return out
        if isinstance(data, Mapping) and isinstance(data.get("patient_id"), str):
            out["patient_id"] = data["patient_id"]
        try:
            situation = validate_situation(data)
        except InvalidSituation as error:
            out.update(status="invalid", error="; ".join(str(problem) for problem in error.problems),
                       error_fields=list(dict.fromkeys(problem.location for problem in error.problems)))
            return out
        try:
            fragment = self._fragment(situation)
        except EvaluationError as error:
            out.update(status="error", error=str(error))
            return out
        out.update(fragment)
        out["status"] = "ok"
        return out

    def _fragment(self, situation: Any) -> dict[str, Any]:
        """The row's verdicts, rules, questions and derived facts; durable-rules runs only when needed.

        What earlier engine runs showed is reused: per rule group (:mod:`postcart.signature`), which of
        its rules fire for a key (and the fact a derivation group derives); per option, the verdict for
        the set of its rules that fired; the questions for the set of question rules that fired. When all
        of that is known, the rules that fire are the union over the groups, in the engine's order (a
        stratum's rules fire in definition order: checked on every engine run; composing stops if ever
        not). Anything not seen before runs durable-rules on this situation.
        """
        if not self.cache:
            self.engine_runs += 1
            result = self.engine.run(situation)
            return self._from_assessment(build_assessment(self.rulebook, situation, result,
                                                          self._resolve(situation, result)))
        disease = situation.disease
        classes = self.scheme.classes(situation)
        slots = [*classes, *self._unknown_facts[disease]]  # derived facts' values fill in group by group
        fired: list[str] = []
        for group_key, cache, slot in self._lookups[disease]:
            entry = cache.get(group_key(slots))
            if entry is None:
                return self._run(situation, classes)
            fired.extend(entry[0])
            if slot is not None:
                slots[slot] = entry[1]
        derived: dict[str, Any] = {name: slots[slot] for slot, name in self._derived_slots[disease]}
        key = (disease, frozenset(fired))
        fragment = self._by_result.get(key)
        if fragment is None:
            fragment = self._compose(disease, fired, derived) if self._composable else None
            if fragment is None:
                return self._run(situation, classes)
            _bounded_put(self._by_result, key, fragment)
        ordered = tuple(sorted(fired, key=self._position[disease].__getitem__))
        return self._complete(situation, fragment, EngineResult(ordered, MappingProxyType(derived), _NO_FACTS))

    def _resolve(self, situation: Any, result: EngineResult) -> Unknowns:
        runs = self._resolver.engine_runs
        unknowns = self._resolver.resolve(situation, result)
        self.engine_runs += self._resolver.engine_runs - runs
        return unknowns

    def _complete(self, situation: Any, fragment: dict[str, Any], result: EngineResult) -> dict[str, Any]:
        """The two-valued fragment completed over the row's unknown inputs as ``evaluate()`` does: an option
        no rule addresses today but a plausible answer would gets its pending verdict, and the missing
        information is ranked by the options waiting on it (``Assessment.options``/``missing_information``).
        """
        unknowns = self._resolve(situation, result)
        key = (situation.disease, frozenset(result.fired),
               tuple((name, found.verdict, tuple(item.field for item in found.pending))
                     for name, found in unknowns.options.items()))
        completed = self._completed.get(key)
        if completed is None:
            completed = dict(fragment)
            for name in OPTIONS:
                found = unknowns.options.get(name)
                if completed.get(name) is None and found is not None and found.verdict is not None:
                    completed[name] = found.verdict
            present = {name for name in OPTIONS if completed.get(name) is not None}
            asked = missing_asked(self.rulebook, map(self.rulebook.rule, result.fired))
            completed["missing_information"] = [
                item.field for item in unknowns.rank_missing(self.rulebook, asked, present)]
            _bounded_put(self._completed, key, completed)
        return completed

    def _by_role(self, rule_ids: Iterable[str]) -> tuple[dict[str, list[str]], list[str]]:
        """Fired rules split into those per option and the missing-information ones, order kept."""
        by_option: dict[str, list[str]] = {}
        asks: list[str] = []
        for rule_id in rule_ids:
            kind, name = self._role[rule_id]
            if kind == "option":
                by_option.setdefault(name, []).append(rule_id)
            elif kind == "ask":
                asks.append(rule_id)
        return by_option, asks

    def _compose(self, disease: str, fired: list[str], derived: Mapping[str, Any]) -> dict[str, Any] | None:
        """The row part for rules known to fire, from what earlier runs showed; None when something is new."""
        ordered = sorted(fired, key=self._position[disease].__getitem__)
        by_option, asks = self._by_role(ordered)
        fragment: dict[str, Any] = {}
        for option, rule_ids in by_option.items():
            verdict = self._verdicts.get((option, tuple(rule_ids)))
            if verdict is None:
                return None
            fragment[option] = verdict
        missing = self._questions.get(tuple(asks))
        if missing is None:
            return None
        fragment["rules"] = ordered
        fragment["missing_information"] = list(missing)
        for name in self._facts:
            fragment[f"derived.{name}"] = _text(derived.get(name))
        return fragment

    def _run(self, situation: Any, classes: tuple[Any, ...]) -> dict[str, Any]:
        """Run durable-rules on the situation and learn from the result."""
        self.engine_runs += 1
        disease = situation.disease
        result = self.engine.run(situation)
        fired = result.fired
        position = self._position[disease]
        if self._composable and list(fired) != sorted(fired, key=position.__getitem__):
            self._composable = False  # the engine's order is not definition order: never compose
        slots = [*classes, *(result.derived.get(name) for name in self.scheme.facts[disease])]
        for group, cache in self._plans[disease]:
            members = tuple(rule for rule in fired if rule in group.rule_ids)
            value = result.derived.get(group.derives) if group.derives is not None else None
            _bounded_put(cache, group.key(slots), (members, value))
        key = (disease, frozenset(fired))
        fragment = self._by_result.get(key)
        if fragment is None and self._composable:
            fragment = self._compose(disease, list(fired), result.derived)
        if fragment is None:
            fragment = self._from_assessment(build_assessment(self.rulebook, situation, result))
        _bounded_put(self._by_result, key, fragment)
        by_option, asks = self._by_role(fired)
        for option, rule_ids in by_option.items():
            _bounded_put(self._verdicts, (option, tuple(rule_ids)), fragment[option])
        _bounded_put(self._questions, tuple(asks), tuple(fragment["missing_information"]))
        return self._complete(situation, fragment, result)

    def _from_assessment(self, assessment: Assessment) -> dict[str, Any]:
        """The patient-independent part of a row: verdicts, rules, missing information, derived facts."""
        fragment: dict[str, Any] = {option.option: option.verdict for option in assessment.options}
        fragment["rules"] = list(assessment.audit.rules_fired)
        fragment["missing_information"] = [item.field for item in assessment.missing_information]
        for name in self._facts:
            value = assessment.derived.get(name)
            fragment[f"derived.{name}"] = _text(value)
        return fragment

    # --- one chunk

    def evaluate_chunk(self, chunk: Chunk, output_format: str) -> ChunkResult:
        """Evaluate every record of a chunk and encode the rows as an output part."""
        with self._lock:
            runs_before = self.engine_runs
            rows = [self.row(number, data, line) for number, line, data in self._records(chunk)]
            engine_runs = self.engine_runs - runs_before
        counts = Counter(row["status"] for row in rows)
        invalid_fields: Counter[str] = Counter()
        for row in rows:
            if row["status"] == "invalid":
                invalid_fields.update(_field_name(name) for name in row["error_fields"])
        return ChunkResult(chunk.index, encode_part(rows, self.columns, output_format),
                           {"ok": counts["ok"], "invalid": counts["invalid"], "error": counts["error"],
                            "rows": len(rows), "engine_runs": engine_runs}, dict(invalid_fields))

    def _records(self, chunk: Chunk) -> Iterator[tuple[int, int | None, Any]]:
        """(record number, file line or None, nested record or error text) of each record of a chunk."""
        if chunk.kind == "jsonl":
            for offset, line in enumerate(chunk.rows):
                number = chunk.first_row + offset
                yield number, number, str(line) if isinstance(line, BadRecord) else self._json_record(line, number)
            return
        assert chunk.columns is not None
        columns = chunk.columns
        if chunk.kind == "arrow":
            rows: list[Any] = list(zip(*(column.to_pylist() for column in chunk.rows.columns), strict=False))
            repeated = sorted({column for column in columns if columns.count(column) > 1})
        else:
            rows = chunk.rows
            repeated = []
        paths = [tuple(column.split(".")) for column in columns]
        is_list = [column in self._list_fields for column in columns]
        kinds = [self._kinds.get(column) for column in columns]
        width = len(paths)
        plan: list[tuple[str, str | None, bool, str | None]] | None = None
        if all(len(path) <= 2 for path in paths):
            plan = [(path[0], path[1] if len(path) == 2 else None, listed, kind)
                    for path, listed, kind in zip(paths, is_list, kinds, strict=True)]
        lines = chunk.lines or (None,) * len(rows)
        for offset, (values, line) in enumerate(zip(rows, lines, strict=True)):
            number = chunk.first_row + offset
            if isinstance(values, BadRecord):
                yield number, line, str(values)
            elif repeated:
                yield number, line, f"column {repeated[0]} is given twice"
            elif len(values) != width:
                yield number, line, f"expected {width} cells (one per column), got {len(values)}"
            elif plan is not None:
                yield number, line, _nest_two_levels(plan, values)
            else:
                yield number, line, _nest(paths, is_list, kinds, values)

    def _json_record(self, line: str, number: int) -> Any:
        if not line.strip():
            return f"line {number}: empty line"
        try:
            data = parse_json(line, "record")
        except InvalidSituation as error:
            problem = error.problems[0]
            detail = f"; expected {problem.expected}" if problem.expected else ""
            return f"line {number}: {problem.message}{detail}"
        if not isinstance(data, dict):
            return f"line {number}: a JSON Lines record is an object, got {type(data).__name__}"
        if any("." in key for key in data):
            keys = list(data)
            return _nest([tuple(key.split(".")) for key in keys], [key in self._list_fields for key in keys],
                         [None] * len(keys), [data[key] for key in keys])
        return data


def _bounded_put(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        del cache[next(iter(cache))]  # oldest first: a bounded FIFO is enough for a hit-rate cache
    cache[key] = value


def _nest(paths: list[tuple[str, ...]], is_list: list[bool], kinds: list[str | None],
          values: Any) -> dict[str, Any] | str:
    """Flattened cells -> a nested situation mapping; empty/None/NaN cells are left out (not given)."""
    data: dict[str, Any] = {}
    for parts, listed, kind, value in zip(paths, is_list, kinds, values, strict=False):
        if value is None:
            continue
        if isinstance(value, str):
            value = value.strip()
            if not value:
                continue
            if listed:
                value = [item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()]
            elif kind is not None:
                value = cell_value(kind, value)
        elif isinstance(value, float) and math.isnan(value):
            continue
        target = data
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                return f"column {'.'.join(parts)} conflicts with column {part}"
        if parts[-1] in target:
            return f"column {'.'.join(parts)} is given twice"
        target[parts[-1]] = value
    return data


def _nest_two_levels(plan: list[tuple[str, str | None, bool, str | None]], values: Any) -> dict[str, Any] | str:
    """:func:`_nest` for the usual table (no column deeper than ``section.field``), made cheap per row."""
    data: dict[str, Any] = {}
    for (top, sub, listed, kind), value in zip(plan, values, strict=False):
        if value is None or value == "":
            continue
        if type(value) is str:
            value = value.strip()
            if not value:
                continue
            if listed:
                value = [item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()]
            elif kind is not None:
                value = cell_value(kind, value)
        elif type(value) is float and math.isnan(value):  # a missing number in Parquet or pandas
            continue
        if sub is None:
            if top in data:
                return f"column {top} conflicts with the columns {top}.*"
            data[top] = value
            continue
        section = data.get(top)
        if section is None:
            section = data[top] = {}
        elif type(section) is not dict:
            return f"column {top}.{sub} conflicts with column {top}"
        section[sub] = value
    return data


_NO_FACTS: Mapping[str, Any] = MappingProxyType({})


def _field_name(location: str) -> str:
    return location.split(" ", maxsplit=1)[0]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------------------------------
# encoding output parts and reading them back
