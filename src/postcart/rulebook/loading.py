"""Loading a rules directory: YAML files parsed safely, every rule checked against the input model.

Layout of a rules directory (see docs/rulebook-format.md):

- ``rulebook.yaml``: ``version``, ``description`` and ``unaddressed`` (disease x option cells deliberately
  left without rules, each with a reason);
- ``references.yaml``: the bibliography every rule cites from (its links' hosts: ``link_hosts.yaml``);
- every other ``*.yaml``: ``facts`` (declarations of derived facts) and ``rules``.

Everything is checked when the rulebook loads, and every problem is reported at once with its file,
line, rule id and field: the engine never meets a rule it cannot run.

It is one module because every check a rule meets at load (schema, fields, values, citations, derived-fact
graph, overrides, engine limits) reports into one list of located problems, all at once.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from postcart.documents import parse_yaml_with_node
from postcart.errors import Problem, RuleDefinitionError
from postcart.rulebook import conditions as cond
from postcart.rulebook.bibliography import _LinkHosts
from postcart.rulebook.model import (
    Ask,
    Derive,
    Evidence,
    FactDeclaration,
    Reference,
    Rule,
    Rulebook,
    Suggest,
    _RulebookMeta,
    _RuleSpec,
)
from postcart.rulebook.reviews import load_reviews, rule_content_hash
from postcart.situation import FieldSpec, field_catalogue

__all__ = ["load_rulebook"]


def load_rulebook(directory: Path, *, include_drafts: bool = False, today: dt.date | None = None) -> Rulebook:
    """Load and check every file of a rules directory (see :meth:`Rulebook.load`)."""
    return _Loader(directory, include_drafts, today or dt.date.today()).load()


class _Loader:
    def __init__(self, directory: Path, include_drafts: bool, today: dt.date) -> None:
        self.directory = directory
        self.include_drafts = include_drafts
        self.today = today
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def problem(self, file: str, line: int | None, rule_id: str | None, where: str, message: str,
                expected: str | None = None, got: str | None = None) -> None:
        location = f"{file}:{line}" if line else file
        if rule_id:
            location += f" rule {rule_id}"
        if where:
            location += f" field {where}"
        self.problems.append(Problem(location, message, expected, got))

    def load(self) -> Rulebook:
        if not self.directory.is_dir():
            raise RuleDefinitionError(Problem(str(self.directory), "not a directory of rule files",
                                              "a directory with rulebook.yaml", "nothing there"))
        files = sorted(self.directory.glob("*.yaml"))
        texts: dict[str, str] = {}
        for file in files:
            try:
                texts[file.name] = file.read_bytes().decode("utf-8")
            except UnicodeDecodeError as error:
                self.problem(file.name, None, None, "", "not UTF-8 text", "a UTF-8 encoded YAML file",
                             f"byte 0x{error.object[error.start]:02x} at offset {error.start}")
            except OSError as error:
                self.problem(file.name, None, None, "", f"cannot be read: {error.strerror or type(error).__name__}")
        digest = hashlib.sha256()
        for name, text in sorted(texts.items()):
            digest.update(name.encode() + b"\0" + text.encode() + b"\0")

        documents = {name: self.parse_yaml(name, text) for name, text in texts.items()}
        meta = self.load_meta(documents.pop("rulebook.yaml", None))
        hosts = self.load_link_hosts(documents.pop("link_hosts.yaml", None))
        references = self.load_references(documents.pop("references.yaml", None), hosts)
        raw_rules: list[tuple[str, int, dict[str, Any]]] = []
        facts: dict[str, FactDeclaration] = {}
        for name, (data, lines) in sorted(documents.items()):
            self.collect(name, data, lines, facts, raw_rules)

        rules = self.check_rules(raw_rules, facts, references)
        self.check_fact_names(rules, facts)
        self.check_fact_graph(rules, facts)
        self.check_overrides(rules)
        self.check_override_cycles(rules)
        reviews, problems = load_reviews(self.directory)
        self.problems.extend(problems)
        if self.problems:
            raise RuleDefinitionError(self.problems, str(self.directory))
        runnable = tuple(rule for rule in rules
                         if rule.status == "active" or (self.include_drafts and rule.status == "draft"))
        return Rulebook(
            version=meta.version if meta else "0",
            content_hash=digest.hexdigest(),
            rules=runnable,
            facts=facts,
            references=references,
            unaddressed=meta.unaddressed if meta else (),
            unknowns=meta.unknowns if meta else (),
            directory=str(self.directory),
            warnings=tuple(self.warnings),
            reviews=reviews,
            minimum_reviewers=meta.review.minimum_reviewers if meta else 1,
            evidence_reviewed=meta.evidence_reviewed if meta else None,
            evidence_max_age_years=meta.evidence_max_age_years if meta else 10,
        )

    # --- files

    def parse_yaml(self, name: str, text: str) -> tuple[Any, _Lines]:
        """The strict YAML reader of :mod:`postcart.documents` (no aliases: a 342-byte alias bomb hung
        ``check``; no duplicate keys; YAML 1.2-style scalars)."""
        try:
            data, node = parse_yaml_with_node(text, name, error=RuleDefinitionError)
        except RuleDefinitionError as error:
            self.problems.extend(error.problems)
            return None, _Lines(None)
        return data, _Lines(node)

    def load_meta(self, document: tuple[Any, _Lines] | None) -> _RulebookMeta | None:
        if document is None:
            self.problem("rulebook.yaml", None, None, "", "missing", "a rulebook.yaml with a version",
                         "no file")
            return None
        data, lines = document
        try:
            meta = _RulebookMeta.model_validate(data)
        except ValidationError as error:
            self.pydantic_problems("rulebook.yaml", lines, None, error, ())
            return None
        catalogue = field_catalogue()
        for index, item in enumerate(meta.unknowns):
            where = f"unknowns[{index}]"
            spec = catalogue.get(item.field)
            if spec is None:
                self.problem("rulebook.yaml", None, None, where, f"unknown situation field '{item.field}'",
                             "a situation field", item.field)
            elif item.unknown is None and not spec.optional:
                self.problem("rulebook.yaml", None, None, where, f"{item.field} is never absent",
                             "the value that means unknown (unknown:)", "nothing")
            elif item.unknown is not None and item.unknown not in spec.values:
                self.problem("rulebook.yaml", None, None, where, f"'{item.unknown}' is not a value of {item.field}",
                             spec.describe(), item.unknown)
        return meta

    def load_link_hosts(self, document: tuple[Any, _Lines] | None) -> frozenset[str]:
        if document is None:  # link_hosts.yaml: the official hosts a bibliography ``url`` may name
            self.problem("link_hosts.yaml", None, None, "", "missing", "the allow-list of link hosts", "no file")
            return frozenset()
        try:
            return frozenset(host.lower() for host in _LinkHosts.model_validate(document[0]).hosts)
        except ValidationError as error:
            self.pydantic_problems("link_hosts.yaml", document[1], None, error, ())
            return frozenset()

    def load_references(self, document: tuple[Any, _Lines] | None, hosts: frozenset[str]) -> dict[str, Reference]:
        references: dict[str, Reference] = {}
        works: dict[tuple[str, str], str] = {}  # ("doi", "10.…") -> the key that names that work
        if document is None:
            self.problem("references.yaml", None, None, "", "missing", "the bibliography", "no file")
            return references
        data, lines = document
        entries = data.get("references") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            self.problem("references.yaml", 1, None, "references", "must be a list of references", "a list",
                         type(entries).__name__)
            return references
        for index, entry in enumerate(entries):
            line = lines.line(("references", index))
            key = entry.get("key") if isinstance(entry, dict) else None
            try:
                reference = Reference.model_validate(entry)
            except ValidationError as error:
                self.pydantic_problems("references.yaml", lines, key, error, ("references", index))
                continue
            if reference.key in references:
                self.problem("references.yaml", line, None, "key", f"duplicate reference key '{reference.key}'")
            for kind, identifier in (("doi", (reference.doi or "").lower()), ("pmid", reference.pmid or "")):
                first = works.setdefault((kind, identifier), reference.key) if identifier else reference.key
                if first != reference.key:  # one work, two keys: rules citing either would disagree in time
                    self.problem("references.yaml", line, None, f"{reference.key}.{kind}",
                                 f"the same work as reference '{first}' ({kind} {identifier})",
                                 "one entry per work", f"a second key, '{reference.key}'")
            for where, message, *rest in reference.policy_problems(hosts):  # the policy: bibliography.py
                self.problem("references.yaml", lines.line(("references", index, where)), None, f"{key}.{where}",
                             message, *rest)
            references[reference.key] = reference
        return references

    def collect(self, name: str, data: Any, lines: _Lines, facts: dict[str, FactDeclaration],
                raw_rules: list[tuple[str, int, dict[str, Any]]]) -> None:
        if data is None:
            return
        if not isinstance(data, dict) or not set(data) <= {"facts", "rules"}:
            got = ", ".join(sorted(data)) if isinstance(data, dict) else type(data).__name__
            self.problem(name, 1, None, "", "a rule file holds only 'facts' and 'rules'", "facts, rules", got)
            return
        for fact_name, declaration in (data.get("facts") or {}).items():
            try:
                parsed = FactDeclaration.model_validate(declaration)
            except ValidationError as error:
                self.pydantic_problems(name, lines, None, error, ("facts", fact_name))
                continue
            if fact_name in facts:
                self.problem(name, lines.line(("facts", fact_name)), None, f"facts.{fact_name}",
                             "derived fact declared twice")
            if parsed.default is not None and parsed.default not in parsed.values:
                self.problem(name, lines.line(("facts", fact_name)), None, f"facts.{fact_name}.default",
                             "default is not one of the fact's values", _one_of(parsed.values),
                             repr(parsed.default))
            facts[fact_name] = parsed
        rules = data.get("rules") or []
        if not isinstance(rules, list):
            self.problem(name, lines.line(("rules",)), None, "rules", "must be a list", "a list",
                         type(rules).__name__)
            return
        for index, raw in enumerate(rules):
            raw_rules.append((name, lines.line(("rules", index)) or 0, raw))

    # --- rules

    def check_rules(self, raw_rules: list[tuple[str, int, dict[str, Any]]], facts: Mapping[str, FactDeclaration],
                    references: Mapping[str, Reference]) -> list[Rule]:
        rules: list[Rule] = []
        seen: dict[str, str] = {}
        catalogue = field_catalogue()
        for file, line, raw in raw_rules:
            rule_id = raw.get("id") if isinstance(raw, dict) else None
            if not isinstance(raw, dict):
                self.problem(file, line, None, "", "a rule must be a mapping", "id, title, diseases, when, then",
                             type(raw).__name__)
                continue
            try:
                spec = _RuleSpec.model_validate(raw)
            except ValidationError as error:
                self.pydantic_problems(file, _FixedLines(line), rule_id, error, ())
                continue
            if spec.id in seen:
                self.problem(file, line, spec.id, "id", f"duplicate rule id (first defined in {seen[spec.id]})")
            seen[spec.id] = f"{file}:{line}"

            def check_leaf(path: str, op: str, value: Any, where: str) -> list[cond.ParseProblem]:
                return _check_leaf(path, op, value, where, catalogue, facts)

            condition = None
            if spec.when is not None:
                condition, parse_problems = cond.parse(spec.when, check_leaf)
                for found in parse_problems:
                    self.problem(file, line, spec.id, found.where, found.message, found.expected, found.got)
            self.check_then(file, line, spec, facts, references, catalogue)
            if spec.review_by is not None and spec.review_by < self.today and spec.status == "active":
                self.warnings.append(Problem(f"{file}:{line} rule {spec.id} field review_by",
                                             f"review date {spec.review_by} has passed"))
            rules.append(Rule(
                id=spec.id, title=spec.title, diseases=spec.diseases, condition=condition, then=spec.then,
                status=spec.status, version=spec.version, file=file, line=line, author=spec.author,
                approved=spec.approved, review_by=spec.review_by, notes=spec.notes,
                content_hash=rule_content_hash(raw),
            ))
        return rules

    def check_then(self, file: str, line: int, spec: _RuleSpec, facts: Mapping[str, FactDeclaration],
                   references: Mapping[str, Reference], catalogue: Mapping[str, FieldSpec]) -> None:
        then = spec.then
        if isinstance(then, Derive):
            declaration = facts.get(then.derive)
            if declaration is None:
                self.problem(file, line, spec.id, "then.derive", f"undeclared derived fact '{then.derive}'",
                             _one_of(sorted(facts)) + _suggest(then.derive, facts), then.derive)
            elif then.value not in declaration.values:
                self.problem(file, line, spec.id, "then.value", f"not a value of derived fact '{then.derive}'",
                             _one_of(declaration.values), repr(then.value))
            return
        citations = then.citations
        if isinstance(then, Suggest) and then.verdict != "not_advised" and not citations:
            self.problem(file, line, spec.id, "then.citations", "a recommended or consider verdict must cite",
                         "at least one reference key", "none")
        if isinstance(then, Suggest) and not citations:
            self.problem(file, line, spec.id, "then.citations", "every suggestion cites its source",
                         "at least one reference key", "none")
        for key in citations:
            if key not in references:
                self.problem(file, line, spec.id, "then.citations", f"unknown citation key '{key}'",
                             "a key of references.yaml" + _suggest(key, references), key)
            elif references[key].status != "verified" and spec.status == "active":
                self.problem(file, line, spec.id, "then.citations", f"active rule cites unverified reference '{key}'",
                             "a verified reference (or drop the citation and any figure that rests on it)", key)
        if isinstance(then, Suggest) and spec.status != "retired" and (graded := then.evidence_problem()):
            self.problem(file, line, spec.id, "then.evidence", *graded)
        if isinstance(then, Ask) and then.ask not in catalogue:
            self.problem(file, line, spec.id, "then.ask", f"unknown situation field '{then.ask}'",
                         "a situation field" + _suggest(then.ask, catalogue), then.ask)

    def check_overrides(self, rules: list[Rule]) -> None:
        """``overrides`` names suggestion rules on the same option, never the rule itself."""
        by_id = {rule.id: rule for rule in rules}
        for rule in rules:
            if not isinstance(rule.then, Suggest):
                continue
            for other_id in rule.then.overrides:
                other = by_id.get(other_id)
                if other is None:
                    self.problem(rule.file, rule.line, rule.id, "then.overrides", f"unknown rule id '{other_id}'",
                                 "the id of a rule on the same option" + _suggest(other_id, by_id), other_id)
                elif other_id == rule.id:
                    self.problem(rule.file, rule.line, rule.id, "then.overrides", "a rule cannot override itself",
                                 "another rule's id", other_id)
                elif not isinstance(other.then, Suggest) or other.then.option != rule.then.option:
                    got = other.then.option if isinstance(other.then, Suggest) else "not a suggestion"
                    self.problem(rule.file, rule.line, rule.id, "then.overrides",
                                 f"rule '{other_id}' does not speak to {rule.then.option}",
                                 f"a rule suggesting {rule.then.option}", got)
                elif rule.id in other.then.overrides:
                    self.problem(rule.file, rule.line, rule.id, "then.overrides",
                                 f"rules '{rule.id}' and '{other_id}' override each other", "one direction only",
                                 "both")

    def check_fact_names(self, rules: list[Rule], facts: Mapping[str, FactDeclaration]) -> None:
        """A derived fact's name becomes an attribute of the engine's JSON fact: plain lower-case words only.

        A quote in a name once broke the fact the engine asserts, silently dropping a question.
        """
        for fact_name in facts:
            if _SAFE_FACT_NAME.fullmatch(fact_name):
                continue
            using = sorted(rule.id for rule in rules
                           if (isinstance(rule.then, Derive) and rule.then.derive == fact_name)
                           or f"derived.{fact_name}" in rule.reads)
            self.problem("(rulebook)", None, None, f"facts.{fact_name}",
                         "unsafe derived-fact name" + (f" (used by rules {', '.join(using)})" if using else ""),
                         "lower-case letters, digits and _ (starting with a letter), at most 60", repr(fact_name))

    def check_override_cycles(self, rules: list[Rule]) -> None:
        """``overrides`` may not go round in a circle of any length (two-rule circles are reported above)."""
        edges = {rule.id: [other for other in rule.then.overrides if other != rule.id]
                 for rule in rules if isinstance(rule.then, Suggest)}
        by_id = {rule.id: rule for rule in rules}
        state: dict[str, int] = {}  # 1: on the current path, 2: done
        reported: set[frozenset[str]] = set()

        def visit(rule_id: str, path: list[str]) -> None:
            state[rule_id] = 1
            path.append(rule_id)
            for other in edges.get(rule_id, ()):
                if state.get(other) == 1:
                    cycle = path[path.index(other):]
                    if len(cycle) > 2 and frozenset(cycle) not in reported:
                        reported.add(frozenset(cycle))
                        first = by_id[cycle[0]]
                        self.problem(first.file, first.line, first.id, "then.overrides",
                                     "overrides go round in a circle: " + " -> ".join([*cycle, cycle[0]]),
                                     "overrides that end (no rule overrides itself through others)",
                                     f"a circle of {len(cycle)} rules")
                elif state.get(other) is None and other in edges:
                    visit(other, path)
            path.pop()
            state[rule_id] = 2

        for rule_id in sorted(edges):
            if state.get(rule_id) is None:
                visit(rule_id, [])

    def check_fact_graph(self, rules: list[Rule], facts: Mapping[str, FactDeclaration]) -> None:
        """Derived facts may build on each other, but not in a circle."""
        depends: dict[str, set[str]] = {name: set() for name in facts}
        for rule in rules:
            if isinstance(rule.then, Derive) and rule.then.derive in depends:
                depends[rule.then.derive] |= {path.removeprefix("derived.") for path in rule.reads
                                              if path.startswith("derived.")}
        visiting: set[str] = set()
        done: set[str] = set()

        def visit(name: str, trail: tuple[str, ...]) -> None:
            if name in done:
                return
            if name in visiting:
                cycle = " -> ".join((*trail[trail.index(name):], name))
                self.problem("(rulebook)", None, None, f"derived.{name}", f"derived facts depend on each other in a "
                             f"circle: {cycle}")
                return
            visiting.add(name)
            for other in sorted(depends.get(name, ())):
                visit(other, (*trail, name))
            visiting.discard(name)
            done.add(name)

        for name in sorted(depends):
            visit(name, ())

    def pydantic_problems(self, file: str, lines: _Lines, rule_id: str | None, error: ValidationError,
                          prefix: tuple[Any, ...]) -> None:
        for item in error.errors(include_url=False):
            loc = tuple(item["loc"])
            # union branches of `then` show up as separate errors; name them by their key
            where = ".".join(str(part) for part in loc if not str(part)[0].isupper())
            kind = item["type"]
            if kind == "extra_forbidden":
                message = "unknown key"
                suggestion = difflib.get_close_matches(str(loc[-1]), list(_KNOWN_KEYS), n=1)
                if suggestion:
                    message += f" (did you mean '{suggestion[0]}'?)"
            elif kind == "missing":
                message = "required key is missing"
            else:
                message = item["msg"]
            got = "nothing" if kind == "missing" else repr(item.get("input"))[:60]
            expected = _expected(item)
            self.problem(file, lines.line((*prefix, *loc)), rule_id, where, message, expected, got)


_KNOWN_KEYS = (set(_RuleSpec.model_fields) | set(Derive.model_fields) | set(Suggest.model_fields)
               | set(Ask.model_fields) | set(Reference.model_fields) | set(FactDeclaration.model_fields)
               | set(Evidence.model_fields))


def _expected(item: Mapping[str, Any]) -> str | None:
    ctx = item.get("ctx") or {}
    if "expected" in ctx:
        return str(ctx["expected"])
    if "pattern" in ctx:
        return f"text matching {ctx['pattern']}"
    return None


def _one_of(values: Iterable[Any]) -> str:
    return "one of " + ", ".join(str(value) for value in values)


def _suggest(name: str, known: Iterable[str]) -> str:
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def _check_leaf(path: str, op: str, value: Any, where: str, catalogue: Mapping[str, FieldSpec],
                facts: Mapping[str, FactDeclaration]) -> list[cond.ParseProblem]:
    problems: list[cond.ParseProblem] = []
    if path.startswith("derived."):
        name = path.removeprefix("derived.")
        declaration = facts.get(name)
        if declaration is None:
            return [cond.ParseProblem(f"{where}.field", f"unknown derived fact '{name}'",
                                      "a fact declared under 'facts'" + _suggest(name, facts), path)]
        allowed: tuple[Any, ...] = declaration.values
        kind: Literal["bool", "enum"] = "bool" if all(isinstance(v, bool) for v in allowed) else "enum"
        spec = FieldSpec(path, kind, name, tuple(str(v) for v in allowed) if kind == "enum" else ())
    else:
        found = catalogue.get(path)
        if found is None or path == "patient_id":
            return [cond.ParseProblem(f"{where}.field", f"unknown field '{path}'",
                                      "a situation field or derived.<fact>" + _suggest(path, catalogue), path)]
        spec = found
    if op == "known":
        if not isinstance(value, bool):
            problems.append(cond.ParseProblem(f"{where}.known", "must be true or false", "true or false", repr(value)))
        return problems
    if spec.kind == "set":
        if op != "contains":
            return [cond.ParseProblem(f"{where}.{op}", f"'{path}' is a list: use 'contains'", "contains", op)]
        if value not in spec.values:
            problems.append(cond.ParseProblem(f"{where}.contains", f"value outside the enumeration of '{path}'",
                                              _one_of(spec.values), repr(value)))
        return problems
    if op == "contains":
        return [cond.ParseProblem(f"{where}.contains", f"'contains' needs a list field; '{path}' is not",
                                  "eq, ne, in, not_in, lt, le, gt, ge or known", "contains")]
    values = value if op in ("in", "not_in") else [value]
    if op in ("in", "not_in") and (not isinstance(value, list) or not value):
        return [cond.ParseProblem(f"{where}.{op}", "must be a non-empty list", "a list of values", repr(value))]
    if op in ("lt", "le", "gt", "ge") and spec.kind not in ("int", "float"):
        return [cond.ParseProblem(f"{where}.{op}", f"ordering comparison on non-numeric field '{path}'",
                                  "eq, ne, in or not_in", op)]
    for item in values:
        if spec.kind == "enum" and item not in spec.values:
            problems.append(cond.ParseProblem(f"{where}.{op}", f"value outside the enumeration of '{path}'",
                                              _one_of(spec.values) + _suggest(str(item), spec.values), repr(item)))
        elif spec.kind == "bool" and not isinstance(item, bool):
            problems.append(cond.ParseProblem(f"{where}.{op}", f"'{path}' is true or false", "true or false",
                                              repr(item)))
        elif spec.kind in ("int", "float"):
            if isinstance(item, bool) or not isinstance(item, (int, float)):
                problems.append(cond.ParseProblem(f"{where}.{op}", f"'{path}' is a number", spec.describe(),
                                                  repr(item)))
            elif (spec.minimum is not None and item < spec.minimum) or (
                    spec.maximum is not None and item > spec.maximum):
                problems.append(cond.ParseProblem(f"{where}.{op}", f"value outside the range of '{path}'",
                                                  spec.describe(), repr(item)))
        elif spec.kind == "str":
            problems.append(cond.ParseProblem(f"{where}.field", f"rules may not read '{path}'",
                                              "a clinical field", path))
    return problems


_SAFE_FACT_NAME = re.compile(r"[a-z][a-z0-9_]{0,59}")


class _Lines:
    """Line numbers of YAML nodes by path, from ``yaml.compose`` (safe; no objects are built)."""

    def __init__(self, node: yaml.Node | None) -> None:
        self.node = node

    def line(self, path: tuple[Any, ...]) -> int | None:
        node = self.node
        best = node.start_mark.line + 1 if node is not None else None
        for part in path:
            if isinstance(node, yaml.MappingNode):
                match = next((value for key, value in node.value if key.value == str(part)), None)
                if match is None:
                    break
                node = match
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
            else:
                break
            best = node.start_mark.line + 1
        return best


class _FixedLines(_Lines):
    def __init__(self, line: int) -> None:
        super().__init__(None)
        self._line = line

    def line(self, path: tuple[Any, ...]) -> int | None:
        return self._line
