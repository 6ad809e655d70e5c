"""Cohorts: tables of patient situations evaluated in bulk, streaming, resumable, in parallel.

Input and output formats follow the file extension: ``.csv``, ``.jsonl`` (JSON Lines) or ``.parquet``.

Input columns are the situation's dotted field names (``age``, ``car_t.product``,
``failure.months_since_infusion`` ...); JSON Lines records may also be nested. An empty cell (or a null,
or a NaN) means *not given*. The list field ``history.prior_bispecific`` is written in a cell as its
members separated by ``;`` (``CD20xCD3;CD19xCD3``); Parquet and JSON may also hold a real list. CSV
cells are text: numbers and booleans (``true``/``false``, ``yes``/``no``, ``1``/``0``) are converted by
the situation model, so a bad cell gets the same error, naming the field, as any bad input.

One output row per input record, in input order, with the columns of :func:`output_columns`:
``row`` (1-based record number; for JSON Lines the line number), ``patient_id``, ``status``
(``ok``, ``invalid`` or ``error``), one column per option holding its verdict (empty: not addressed),
``rules`` (ids of every rule that fired), ``missing_information`` (fields asked for), one
``derived.<fact>`` column per derived fact, ``error`` (the validation error, naming each field) and
``error_fields``. In CSV, lists are ``;``-joined; in JSON Lines and Parquet they are lists.

How a run works. The input is read as a stream and cut into chunks of ``chunk_size`` records; each chunk
is evaluated (in this process, in ``--workers`` processes, or on a Dask cluster) and its encoded result
written atomically to ``OUTPUT.parts/``. A resumed run skips the chunks found there (when the input,
rulebook and settings are unchanged). At the end the parts are concatenated into a temporary file that
is renamed to ``OUTPUT``: the output file is never half-written. Memory is bounded by the chunks in
flight, not by the cohort.

Speed. Whether a rule fires depends only on the classes of the fields it reads
(:mod:`postcart.signature`). The evaluator learns from real durable-rules runs which rules of each rule
group fire for each key, the verdict of each option for the set of its rules that fired, and the questions
for the set of question rules that fired; a situation for which all of that is known gets its row
composed without running the engine again, anything new runs durable-rules. The caches are bounded. Every
row equals a direct evaluation (``tests/test_cohort.py`` compares them over generated situations, with
the bundled rules, a rulebook using every operator on every numeric field, and 150 generated rules).

It is one module because its readers, cache, parts and drivers are still intertwined; splitting it into
tables, evaluator and cohort is under way (issue 10).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postcart.assessment import Assessment, build_assessment
from postcart.engine import Engine
from postcart.errors import EvaluationError, InvalidSituation
from postcart.rulebook import Ask, Rulebook, Suggest
from postcart.signature import RuleGroup, SignatureScheme
from postcart.situation import field_catalogue, validate_situation
from postcart.vocabulary import OPTIONS

__all__ = [
    "FORMATS",
    "LIST_SEPARATOR",
    "ChunkResult",
    "CohortSummary",
    "Evaluator",
    "cohort_format",
    "output_columns",
    "read_results",
    "run_cohort",
]

FORMATS = ("csv", "jsonl", "parquet")
#: Separates the members of a list field in a CSV cell (``history.prior_bispecific``).
LIST_SEPARATOR = ";"
_LIST_OUTPUT = ("rules", "missing_information", "error_fields")
_CACHE_LIMIT = 20_000  # entries per cache; bounded so memory does not grow with the cohort


def cohort_format(path: str | os.PathLike[str]) -> str:
    """The table format of a path from its extension, or ValueError naming the allowed ones."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix in {"jsonl", "ndjson"}:
        return "jsonl"
    if suffix in ("csv", "parquet"):
        return suffix
    raise ValueError(f"{path}: unknown table format '.{suffix}'; expected .csv, .jsonl or .parquet")


def output_columns(rulebook: Rulebook) -> tuple[str, ...]:
    """The output columns for a rulebook (its derived facts each get a column)."""
    return ("row", "patient_id", "status", *OPTIONS, "rules", "missing_information",
            *(f"derived.{name}" for name in sorted(rulebook.facts)), "error", "error_fields")


# --------------------------------------------------------------------------------------------------
# evaluation of records (runs in whichever process holds the chunk)


@dataclass(frozen=True)
class Chunk:
    """Consecutive input records, as cheap to cut and to ship as possible; parsed where evaluated.

    ``kind`` says what ``rows`` holds: ``csv``, the raw text of each record (under ``columns``);
    ``jsonl``, raw lines; ``arrow``, a ``pyarrow.RecordBatch``; ``values``, value lists under ``columns``.
    """

    index: int
    first_row: int
    kind: str
    columns: tuple[str, ...] | None
    rows: Any

    def __len__(self) -> int:
        return self.rows.num_rows if self.kind == "arrow" else len(self.rows)


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

    def close(self) -> None:
        self.engine.close()

    # --- one record

    def row(self, number: int, data: Any) -> dict[str, Any]:
        """The output row of one record (a nested situation mapping, or an error message string)."""
        self.records += 1
        out: dict[str, Any] = dict.fromkeys(self.columns)
        out["row"] = number
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
            return self._from_assessment(build_assessment(self.rulebook, situation, result))
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
        return fragment

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
        return fragment

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
            rows = [self.row(number, data) for number, data in self._records(chunk)]
            engine_runs = self.engine_runs - runs_before
        counts = Counter(row["status"] for row in rows)
        invalid_fields: Counter[str] = Counter()
        for row in rows:
            if row["status"] == "invalid":
                invalid_fields.update(_field_name(name) for name in row["error_fields"])
        return ChunkResult(chunk.index, encode_part(rows, self.columns, output_format),
                           {"ok": counts["ok"], "invalid": counts["invalid"], "error": counts["error"],
                            "rows": len(rows), "engine_runs": engine_runs}, dict(invalid_fields))

    def _records(self, chunk: Chunk) -> Iterator[tuple[int, Any]]:
        if chunk.kind == "jsonl":
            for offset, line in enumerate(chunk.rows):
                yield chunk.first_row + offset, self._json_record(line)
            return
        assert chunk.columns is not None
        columns = chunk.columns
        if chunk.kind == "csv":
            rows: list[Any] = list(csv.reader(io.StringIO("".join(chunk.rows))))
            if len(rows) != len(chunk.rows):  # malformed quoting: parse record by record to keep numbering
                rows = [_parse_record(record) for record in chunk.rows]
        elif chunk.kind == "arrow":
            rows = list(zip(*(column.to_pylist() for column in chunk.rows.columns), strict=False))
        else:
            rows = chunk.rows
        repeated = sorted({column for column in columns if columns.count(column) > 1})
        paths = [tuple(column.split(".")) for column in columns]
        is_list = [column in self._list_fields for column in columns]
        width = len(paths)
        plan: list[tuple[str, str | None, bool]] | None = None
        if all(len(path) <= 2 for path in paths):
            plan = [(path[0], path[1] if len(path) == 2 else None, listed) for path, listed in zip(paths, is_list, strict=False)]
        for offset, values in enumerate(rows):
            number = chunk.first_row + offset
            if isinstance(values, str):
                yield number, values
            elif repeated:
                yield number, f"column {repeated[0]} is given twice"
            elif len(values) != width:
                yield number, f"expected {width} cells (one per column), got {len(values)}"
            elif plan is not None:
                yield number, _nest_two_levels(plan, values)
            else:
                yield number, _nest(paths, is_list, values)

    def _json_record(self, line: str) -> Any:
        if not line.strip():
            return "empty line"
        try:
            data = json.loads(line)
        except ValueError as error:
            return f"not valid JSON: {error}"
        if not isinstance(data, dict):
            return f"a JSON Lines record is an object, got {type(data).__name__}"
        if any("." in key for key in data):
            keys = list(data)
            return _nest([tuple(key.split(".")) for key in keys], [key in self._list_fields for key in keys],
                         [data[key] for key in keys])
        return data


def _bounded_put(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= _CACHE_LIMIT:
        del cache[next(iter(cache))]  # oldest first: a bounded FIFO is enough for a hit-rate cache
    cache[key] = value


def _nest(paths: list[tuple[str, ...]], is_list: list[bool], values: Any) -> dict[str, Any] | str:
    """Flattened cells -> a nested situation mapping; empty/None/NaN cells are left out (not given)."""
    data: dict[str, Any] = {}
    for parts, listed, value in zip(paths, is_list, values, strict=False):
        if value is None:
            continue
        if isinstance(value, str):
            value = value.strip()
            if not value:
                continue
            if listed:
                value = [item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()]
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


def _parse_record(record: str) -> list[str] | str:
    parsed = list(csv.reader(io.StringIO(record)))
    if len(parsed) != 1:
        return "malformed CSV record (unbalanced quotes)"
    return parsed[0]


def _nest_two_levels(plan: list[tuple[str, str | None, bool]], values: Any) -> dict[str, Any] | str:
    """:func:`_nest` for the usual table (no column deeper than ``section.field``), made cheap per row."""
    data: dict[str, Any] = {}
    for (top, sub, listed), value in zip(plan, values, strict=False):
        if value is None or value == "":
            continue
        if type(value) is str:
            value = value.strip()
            if not value:
                continue
            if listed:
                value = [item.strip() for item in value.split(LIST_SEPARATOR) if item.strip()]
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


def encode_part(rows: list[dict[str, Any]], columns: tuple[str, ...], output_format: str) -> bytes:
    """Rows -> bytes of one output part (CSV without header, JSON Lines, or a Parquet file)."""
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        join = LIST_SEPARATOR.join
        for row in rows:
            writer.writerow(["" if value is None else join(value) if type(value) is list else value
                             for value in map(row.__getitem__, columns)])
        return buffer.getvalue().encode("utf-8")
    if output_format == "jsonl":
        return "".join(json.dumps({column: row[column] for column in columns}, ensure_ascii=False) + "\n"
                       for row in rows).encode("utf-8")
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    table = pa.Table.from_pylist(rows, schema=_arrow_schema(columns))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _arrow_schema(columns: tuple[str, ...]) -> Any:
    import pyarrow as pa

    fields = []
    for column in columns:
        if column == "row":
            fields.append(pa.field(column, pa.int64()))
        elif column in _LIST_OUTPUT:
            fields.append(pa.field(column, pa.list_(pa.string())))
        else:
            fields.append(pa.field(column, pa.string()))
    return pa.schema(fields)


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read an output file back as rows (lists as lists, empty as None), whatever its format."""
    output_format = cohort_format(path)
    if output_format == "parquet":
        import pyarrow.parquet as pq

        return [dict(row) for row in pq.read_table(path).to_pylist()]
    rows: list[dict[str, Any]] = []
    with open(path, encoding="utf-8", newline="") as handle:
        if output_format == "jsonl":
            return [json.loads(line) for line in handle if line.strip()]
        for record in csv.DictReader(handle):
            row: dict[str, Any] = {}
            for column, value in record.items():
                if column == "row":
                    row[column] = int(value)
                elif column in _LIST_OUTPUT:
                    row[column] = value.split(LIST_SEPARATOR) if value else []
                else:
                    row[column] = value if value != "" else None
            rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------
# reading input as a stream of chunks


def read_chunks(path: Path, chunk_size: int) -> Iterator[Chunk]:
    """The input as consecutive chunks, read as a stream (never the whole table at once).

    Raises:
        ValueError: the text of a CSV or JSONL input is not UTF-8 (the message names the file).
    """
    try:
        yield from _read_chunks(path, chunk_size)
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (found byte 0x{error.object[error.start]:02x}); save the table "
                         "as UTF-8") from None


def _read_chunks(path: Path, chunk_size: int) -> Iterator[Chunk]:
    """The chunks of :func:`read_chunks`.

    CSV records are only cut here, not parsed (a record ends at a line end outside quotes: an even
    number of ``"`` so far), so that parsing happens in the workers.
    """
    input_format = cohort_format(path)
    index = 0
    first = 1
    if input_format == "csv":
        with open(path, encoding="utf-8-sig", newline="") as handle:
            records = _csv_records(handle)
            header = next(records, None)
            if header is None:
                return
            parsed = _parse_record(header)
            columns = tuple(name.strip() for name in parsed) if isinstance(parsed, list) else ()
            for rows in _batches(records, chunk_size):
                yield Chunk(index, first, "csv", columns, rows)
                index, first = index + 1, first + len(rows)
    elif input_format == "jsonl":
        with open(path, encoding="utf-8") as handle:
            for lines in _batches(handle, chunk_size):
                yield Chunk(index, first, "jsonl", None, lines)
                index, first = index + 1, first + len(lines)
    else:
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        for batch in parquet.iter_batches(batch_size=chunk_size):
            yield Chunk(index, first, "arrow", tuple(batch.schema.names), batch)
            index, first = index + 1, first + batch.num_rows


def _csv_records(handle: Any) -> Iterator[str]:
    """The raw text of each CSV record; empty lines are not records (as for ``csv.reader``)."""
    pending: list[str] = []
    inside = False
    for line in handle:
        if line.count('"') % 2:
            inside = not inside
        if inside:
            pending.append(line)
            continue
        if pending:
            pending.append(line)
            line = "".join(pending)
            pending = []
        if line not in ("\n", "\r\n", "\r"):
            yield line
    if pending:
        yield "".join(pending)


# --------------------------------------------------------------------------------------------------
# the run: chunks -> parts -> atomic output


@dataclass
class CohortSummary:
    """What a cohort run did: counts, speed, and where the invalid rows went wrong."""

    output: str
    rows: int = 0
    ok: int = 0
    invalid: int = 0
    error: int = 0
    resumed_rows: int = 0
    evaluated_rows: int = 0
    engine_runs: int = 0
    seconds: float = 0.0
    invalid_fields: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    @property
    def rows_per_second(self) -> float:
        return self.evaluated_rows / self.seconds if self.seconds else 0.0

    def text(self) -> str:
        lines = [f"{self.rows} rows -> {self.output}: {self.ok} ok, {self.invalid} invalid, {self.error} error"]
        if self.resumed_rows:
            lines.append(f"resumed: {self.resumed_rows} rows already done, {self.evaluated_rows} evaluated now")
        lines.append(f"{self.evaluated_rows} rows in {self.seconds:.1f} s ({self.rows_per_second:,.0f} rows/s; "
                     f"durable-rules ran {self.engine_runs} times: only for outcomes not seen before)")
        if self.invalid_fields:
            worst = ", ".join(f"{name} ({count})" for name, count in self.invalid_fields.most_common(10))
            lines.append(f"invalid rows by field: {worst}")
        lines.extend(self.notes)
        return "\n".join(lines)


Progress = Callable[[int], None]


def run_cohort(input_path: str | os.PathLike[str], output_path: str | os.PathLike[str], rulebook: Rulebook, *,
               workers: int = 1, dask_address: str | None = None, chunk_size: int = 5000,
               restart: bool = False, progress: Progress | None = None, cache: bool = True) -> CohortSummary:
    """Evaluate every record of a cohort table and write one result row per record.

    Args:
        workers: processes on this machine (1: in this process).
        dask_address: a ``dask.distributed`` scheduler address (or a ``Client``); chunks are evaluated
            on its workers. Overrides ``workers``.
        chunk_size: records per chunk (the unit of parallel work, of resuming and of memory).
        restart: discard the parts of an interrupted run instead of resuming it.
        progress: called with the number of rows finished after every chunk.
        cache: reuse engine results across equal signatures (default); ``False`` runs durable-rules and
            builds the assessment for every row (for comparisons and benchmarks).

    Raises:
        ValueError: an unknown table format, or an unreadable input (the message names the file).
    """
    source, target = Path(input_path), Path(output_path)
    output_format = cohort_format(target)
    cohort_format(source)
    if not source.is_file():
        raise ValueError(f"{source}: no such cohort file")
    parts = _Parts(target, output_format, _manifest(source, rulebook, output_format, chunk_size), restart)
    summary = CohortSummary(output=str(target))
    if parts.discarded:
        summary.notes.append("an earlier partial run did not match this input, rulebook or settings: "
                             "started over")
    for counts in parts.done.values():
        summary.resumed_rows += counts["counts"]["rows"]
    started = time.perf_counter()
    finished_rows = summary.resumed_rows
    if progress:
        progress(finished_rows)
    pending = (chunk for chunk in read_chunks(source, chunk_size) if chunk.index not in parts.done)

    def record(result: ChunkResult) -> None:
        nonlocal finished_rows
        parts.write(result)
        finished_rows += result.counts["rows"]
        summary.evaluated_rows += result.counts["rows"]
        summary.engine_runs += result.counts.get("engine_runs", 0)
        if progress:
            progress(finished_rows)

    if dask_address is not None:
        _run_dask(pending, rulebook, output_format, dask_address, workers, record, cache)
    elif workers > 1:
        _run_processes(pending, rulebook, output_format, workers, record, cache)
    else:
        evaluator = Evaluator(rulebook, cache)
        try:
            for chunk in pending:
                record(evaluator.evaluate_chunk(chunk, output_format))
        finally:
            evaluator.close()
    parts.merge(output_columns(rulebook))
    summary.seconds = time.perf_counter() - started
    for counts in parts.done.values():
        summary.rows += counts["counts"]["rows"]
        summary.ok += counts["counts"]["ok"]
        summary.invalid += counts["counts"]["invalid"]
        summary.error += counts["counts"]["error"]
        summary.invalid_fields.update(counts["invalid_fields"])
    parts.remove()
    return summary


def _manifest(source: Path, rulebook: Rulebook, output_format: str, chunk_size: int) -> dict[str, Any]:
    stat = source.stat()
    return {"input": str(source.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "rulebook": rulebook.content_hash, "rules": sorted(rule.id for rule in rulebook.rules),
            "format": output_format, "chunk_size": chunk_size}


class _Parts:
    """``OUTPUT.parts/``: one atomically written file per finished chunk, plus its counts."""

    def __init__(self, target: Path, output_format: str, manifest: dict[str, Any], restart: bool) -> None:
        self.target = target
        self.format = output_format
        self.directory = target.with_name(target.name + ".parts")
        self.done: dict[int, dict[str, Any]] = {}
        self.discarded = False
        manifest_file = self.directory / "manifest.json"
        if self.directory.exists():
            try:
                previous = json.loads(manifest_file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                previous = None
            if restart or previous != manifest:
                self.discarded = not restart
                shutil.rmtree(self.directory)
        if not self.directory.exists():
            self.directory.mkdir(parents=True)
            _atomic_write(manifest_file, json.dumps(manifest).encode())
        for counts_file in self.directory.glob("part-*.json"):
            index = int(counts_file.stem.removeprefix("part-"))
            if self._part(index).exists():
                self.done[index] = json.loads(counts_file.read_text(encoding="utf-8"))

    def _part(self, index: int) -> Path:
        return self.directory / f"part-{index:08d}.{self.format}"

    def write(self, result: ChunkResult) -> None:
        counts = {"counts": result.counts, "invalid_fields": result.invalid_fields}
        _atomic_write(self.directory / f"part-{result.index:08d}.json", json.dumps(counts).encode())
        _atomic_write(self._part(result.index), result.payload)  # its presence marks the chunk done
        self.done[result.index] = counts

    def merge(self, columns: tuple[str, ...]) -> None:
        """Concatenate the parts in order into a temporary file, then rename it onto the output."""
        temporary = self.target.with_name(f".{self.target.name}.{os.getpid()}.tmp")
        try:
            if self.format == "parquet":
                import pyarrow.parquet as pq

                with pq.ParquetWriter(temporary, _arrow_schema(columns)) as writer:
                    for index in sorted(self.done):
                        writer.write_table(pq.read_table(self._part(index)))
            else:
                with open(temporary, "wb") as out:
                    if self.format == "csv":
                        buffer = io.StringIO()
                        csv.writer(buffer, lineterminator="\n").writerow(columns)
                        out.write(buffer.getvalue().encode("utf-8"))
                    for index in sorted(self.done):
                        with open(self._part(index), "rb") as part:
                            shutil.copyfileobj(part, out)
                    out.flush()
                    os.fsync(out.fileno())
            os.replace(temporary, self.target)
        finally:
            if temporary.exists():
                temporary.unlink()

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _atomic_write(path: Path, payload: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


# --------------------------------------------------------------------------------------------------
# parallel drivers: processes on this machine, or a Dask cluster


_WORKER: dict[tuple[str, bool], Evaluator] = {}
_WORKER_LOCK = threading.Lock()


def _worker_evaluator(rulebook: Rulebook, cache: bool) -> Evaluator:
    """This process's evaluator for a rulebook (created once per process, reused by every chunk)."""
    key = (rulebook.content_hash + "|" + ",".join(rule.id for rule in rulebook.rules), cache)
    with _WORKER_LOCK:
        evaluator = _WORKER.get(key)
        if evaluator is None:
            evaluator = _WORKER[key] = Evaluator(rulebook, cache)
        return evaluator


def _process_chunk(rulebook: Rulebook, cache: bool, chunk: Chunk, output_format: str) -> ChunkResult:
    return _worker_evaluator(rulebook, cache).evaluate_chunk(chunk, output_format)


_PROCESS_RULEBOOK: list[Rulebook] = []


def _init_process(rulebook: Rulebook, cache: bool) -> None:
    _PROCESS_RULEBOOK[:] = [rulebook]  # sent once per process, not with every chunk
    _worker_evaluator(rulebook, cache)


def _process_local_chunk(cache: bool, chunk: Chunk, output_format: str) -> ChunkResult:
    return _process_chunk(_PROCESS_RULEBOOK[0], cache, chunk, output_format)


def _run_processes(chunks: Iterator[Chunk], rulebook: Rulebook, output_format: str, workers: int,
                   record: Callable[[ChunkResult], None], cache: bool) -> None:
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    # forkserver: workers never inherit this process's threads or durable-rules state
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["postcart.batch.cohort"])
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_process,
                             initargs=(rulebook, cache)) as pool:
        in_flight: set[Future[ChunkResult]] = set()
        try:
            for chunk in chunks:
                in_flight.add(pool.submit(_process_local_chunk, cache, chunk, output_format))
                if len(in_flight) >= 2 * workers:
                    finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in finished:
                        record(future.result())
            for future in in_flight:
                record(future.result())
        except BaseException:
            for future in in_flight:
                future.cancel()
            raise


def _run_dask(chunks: Iterator[Chunk], rulebook: Rulebook, output_format: str, address: Any, workers: int,
              record: Callable[[ChunkResult], None], cache: bool) -> None:
    from distributed import Client, as_completed

    client = address if isinstance(address, Client) else Client(address)  # type: ignore[no-untyped-call]
    try:
        shared = client.scatter(rulebook, broadcast=True)  # type: ignore[no-untyped-call]
        limit = 2 * max(workers, len(client.scheduler_info().get("workers", {})) or 1)
        futures = as_completed()  # type: ignore[no-untyped-call]
        for chunk in chunks:
            future = client.submit(_process_chunk, shared, cache, chunk, output_format, pure=False)
            futures.add(future)  # type: ignore[no-untyped-call]
            if futures.count() >= limit:  # type: ignore[no-untyped-call]
                record(next(futures).result())
        for future in futures:
            record(future.result())
    finally:
        if client is not address:
            client.close()  # type: ignore[no-untyped-call]


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Consecutive lists of ``size`` items (the last may be shorter); itertools.batched is 3.12+."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
