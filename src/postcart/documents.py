"""Reading documents: the one place a patient document (or a rule file) becomes Python data, strictly.

Every patient document is read here: CLI files and standard input, scenario files, cohort JSON Lines
records; rule files use the same YAML reader. A document that could be read two ways is refused, never
guessed at; every refusal names the file position (``file:line:column``) and raises the caller's error
class (:class:`~postcart.errors.InvalidSituation` for patient documents, exit code 2).

JSON (:func:`parse_json`): a key given twice in one object is refused (``json`` would keep the last);
``NaN``/``Infinity`` are refused; integers longer than :data:`MAX_INTEGER_DIGITS` digits are refused.

YAML (:func:`parse_yaml`) is read with a YAML 1.2-style resolver instead of PyYAML's YAML 1.1 one:

==========================  ======================  ==================
text                         YAML 1.1 (PyYAML)       here
==========================  ======================  ==================
``070``                      56 (octal)              the text ``070``
``1:30``                     90 (sexagesimal)        the text ``1:30``
``yes`` / ``no`` / ``on``    true / false            the text
``1_000``                    1000                    the text
``0x1F``                     31                      the text
==========================  ======================  ==================

so that the input model, strict on clinical types, refuses them with the field named. Only ``true`` and
``false`` are booleans; integers are decimal digits without a leading zero; ``null``, ``~`` and an empty
value are null. Keys given twice are refused. Aliases (``*name``, which ``yaml.safe_dump`` writes for
repeated values) are bounded: a document whose aliases expand to more than :data:`MAX_EXPANDED_VALUES`
values is refused (an alias "bomb" of a few hundred bytes expands to billions), as is a recursive alias.
Nesting deeper than :data:`MAX_DEPTH` (counted through aliases) and documents larger than
:data:`MAX_DOCUMENT_BYTES` are refused before any work.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import yaml

from postcart.errors import InvalidSituation, Problem, _ProblemsError

__all__ = [
    "MAX_DEPTH",
    "MAX_DOCUMENT_BYTES",
    "MAX_INTEGER_DIGITS",
    "StrictYamlLoader",
    "parse_document",
    "parse_json",
    "parse_yaml",
    "read_document",
    "read_text",
]

#: The largest document read (bytes): a patient situation is a few kilobytes, a scenario file some hundreds.
MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
#: The deepest nesting of mappings and lists accepted (the input contract is three levels deep).
MAX_DEPTH = 32
#: The most values (scalars, mappings, lists) a YAML document may expand to through its aliases.
MAX_EXPANDED_VALUES = 200_000
#: The longest integer accepted, in digits (no clinical count or grade needs more; Python refuses 4,300+).
MAX_INTEGER_DIGITS = 18

ErrorClass = type[_ProblemsError]


def _refuse(error: ErrorClass, where: str, message: str, expected: str | None = None,
            got: str | None = None) -> NoReturn:
    raise error(Problem(where, message, expected, got))


def read_text(source: str | Path, *, error: ErrorClass = InvalidSituation,
              limit: int = MAX_DOCUMENT_BYTES) -> tuple[str, str]:
    """The UTF-8 text of a file, or of standard input for ``-``, and the name to report it by.

    Raises:
        error: unreadable, larger than ``limit`` bytes, or not UTF-8 (the byte offset is named).
    """
    name = "standard input" if str(source) == "-" else str(source)
    try:
        if str(source) == "-":
            raw = sys.stdin.buffer.read(limit + 1)
        else:
            with open(source, "rb") as handle:
                raw = handle.read(limit + 1)
    except OSError as failure:
        _refuse(error, name, f"cannot read: {failure.strerror or type(failure).__name__}",
                "a readable YAML or JSON file", str(source))
    if len(raw) > limit:
        _refuse(error, name, "document too large", f"at most {limit:,} bytes", f"more than {limit:,}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as failure:
        line = raw[:failure.start].count(b"\n") + 1
        _refuse(error, f"{name}:{line}", f"not UTF-8 text (byte 0x{raw[failure.start]:02x} at offset "
                f"{failure.start})", "UTF-8 YAML or JSON", "other bytes")
    return text.removeprefix("\ufeff"), name


def read_document(source: str | Path, *, error: ErrorClass = InvalidSituation) -> Any:
    """Read a YAML or JSON document from a path (``-``: standard input) strictly: see the module."""
    text, name = read_text(source, error=error)
    return parse_document(text, name, error=error, json_only=str(source).lower().endswith((".json", ".jsonl")))


def parse_document(text: str, name: str, *, error: ErrorClass = InvalidSituation, json_only: bool = False) -> Any:
    """JSON when it is JSON (or ``json_only``), else strict YAML."""
    if json_only or text.lstrip()[:1] in ("{", "["):
        try:
            return parse_json(text, name, error=error)
        except error:
            if json_only or _looks_like_json(text):
                raise
    return parse_yaml(text, name, error=error)


def _looks_like_json(text: str) -> bool:
    try:
        json.loads(text, object_pairs_hook=lambda pairs: None, parse_int=lambda s: 0)
    except (ValueError, RecursionError):
        return False
    return True


def _json_position(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"{line}:{offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


def parse_json(text: str, name: str, *, error: ErrorClass = InvalidSituation, line: int = 1) -> Any:
    """Parse JSON strictly: duplicate keys, non-finite numbers, huge integers and deep nesting refused.

    ``line`` is the file line the text starts on (a JSON Lines record), for the positions reported.
    """
    if line != 1:
        try:
            return parse_json(text, name, error=error)
        except error as failure:
            raise error([_shift(problem, name, line) for problem in failure.problems]) from None
    if len(text) > MAX_DOCUMENT_BYTES:
        _refuse(error, name, "document too large", f"at most {MAX_DOCUMENT_BYTES:,} bytes", f"{len(text):,}")
    depth = _json_depth(text)
    if depth > MAX_DEPTH:
        _refuse(error, name, "nested too deeply", f"at most {MAX_DEPTH} levels", f"{depth} levels")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key, value in items:
            if key in data:
                raise _Duplicate(key)
            data[key] = value
        return data

    def integer(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
            raise _Huge(digits)
        return int(digits)

    def constant(word: str) -> NoReturn:
        raise _NotFinite(word)

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_int=integer, parse_constant=constant)
    except _Duplicate as duplicate:
        where = _first_duplicate_position(text, duplicate.args[0])
        _refuse(error, f"{name}:{where}" if where else name, f"key '{duplicate.args[0]}' given twice in one "
                "object", "each key once", "two values")
    except _Huge as huge:
        _refuse(error, name, "integer too long", f"at most {MAX_INTEGER_DIGITS} digits",
                f"{len(huge.args[0])} digits")
    except _NotFinite as word:
        _refuse(error, name, f"'{word.args[0]}' is not a JSON number", "a finite number", word.args[0])
    except json.JSONDecodeError as failure:
        _refuse(error, f"{name}:{failure.lineno}:{failure.colno}", f"not valid JSON: {failure.msg}")
    except RecursionError:
        _refuse(error, name, "nested too deeply", f"at most {MAX_DEPTH} levels", "more")


def _shift(problem: Problem, name: str, line: int) -> Problem:
    """A problem located in a one-record text, moved to the record's line of its file."""
    where = problem.location.removeprefix(name)
    parts = where.lstrip(":").split(":") if where else []
    if len(parts) == 2 and all(part.isdigit() for part in parts):
        location = f"{name}:{int(parts[0]) + line - 1}:{parts[1]}"
    else:
        location = f"{name}:{line}"
    return Problem(location, problem.message, problem.expected, problem.got)


class _Duplicate(Exception):
    pass


class _Huge(Exception):
    pass


class _NotFinite(Exception):
    pass


_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def _json_depth(text: str) -> int:
    """The deepest bracket nesting of a JSON text (strings skipped), without recursion."""
    depth = deepest = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
        elif token in ("]", "}"):
            depth -= 1
    return deepest


def _first_duplicate_position(text: str, key: str) -> str | None:
    """line:column of the second occurrence of ``"key":`` (a good enough pointer for a person)."""
    pattern = re.compile(re.escape(json.dumps(key)) + r"\s*:")
    matches = list(pattern.finditer(text))
    return _json_position(text, matches[1].start()) if len(matches) > 1 else None


# --------------------------------------------------------------------------------------------------
# YAML


class _YamlRefusal(yaml.YAMLError):
    def __init__(self, message: str, mark: Any, expected: str | None = None, got: str | None = None) -> None:
        super().__init__(message)
        self.message, self.mark, self.expected, self.got = message, mark, expected, got


_INT = re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*))$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|(?:0|[1-9][0-9]*)\.[0-9]*|(?:0|[1-9][0-9]*)(?:\.[0-9]*)?[eE][-+]?[0-9]+)$")
_BOOL = re.compile(r"^(?:true|false)$")
_NULL = re.compile(r"^(?:~|null|)$")
_TIMESTAMP = re.compile(r"""^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}
    |[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?
    (?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$""", re.VERBOSE)


class StrictYamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2-style scalars, no duplicate keys, no aliases, bounded depth."""

    yaml_implicit_resolvers: dict[Any, list[tuple[str, re.Pattern[str]]]] = {}  # noqa: RUF012 - rebuilt below

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            if event.anchor not in self.anchors:
                raise _YamlRefusal(f"alias *{event.anchor} before its anchor is complete (a recursive alias)",
                                   event.start_mark, "an alias of an earlier, finished value", f"*{event.anchor}")
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _YamlRefusal("nested too deeply", mark, f"at most {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, Any] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                if key in seen:
                    raise _YamlRefusal(f"key '{key}' given twice in one mapping (first on line "
                                       f"{seen[key].line + 1})", key_node.start_mark, "each key once", "two values")
            except TypeError:
                raise _YamlRefusal("a mapping key must be a plain value", key_node.start_mark) from None
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: Any) -> int:
        text = self.construct_scalar(node)
        if len(text.lstrip("+-")) > MAX_INTEGER_DIGITS:
            raise _YamlRefusal("integer too long", node.start_mark, f"at most {MAX_INTEGER_DIGITS} digits",
                               f"{len(text)} digits")
        return int(text)

    def construct_yaml_float(self, node: Any) -> float:
        return float(self.construct_scalar(node))


for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", _BOOL, "tf"),
    ("tag:yaml.org,2002:int", _INT, "-+0123456789"),
    ("tag:yaml.org,2002:float", _FLOAT, "-+.0123456789"),
    ("tag:yaml.org,2002:null", _NULL, ["~", "n", None]),
    ("tag:yaml.org,2002:timestamp", _TIMESTAMP, "0123456789"),  # rule files' approval dates
):
    StrictYamlLoader.add_implicit_resolver(_tag, _pattern, list(_first))
StrictYamlLoader.add_constructor("tag:yaml.org,2002:int", StrictYamlLoader.construct_yaml_int)
StrictYamlLoader.add_constructor("tag:yaml.org,2002:float", StrictYamlLoader.construct_yaml_float)


def parse_yaml(text: str, name: str, *, error: ErrorClass = InvalidSituation) -> Any:
    """Parse one YAML document strictly (see the module)."""
    return parse_yaml_with_node(text, name, error=error)[0]


def parse_yaml_with_node(text: str, name: str, *, error: ErrorClass = InvalidSituation) -> tuple[Any, Any]:
    """The document and its composed node (for line numbers of what is inside)."""
    if len(text) > MAX_DOCUMENT_BYTES:
        _refuse(error, name, "document too large", f"at most {MAX_DOCUMENT_BYTES:,} bytes", f"{len(text):,}")
    loader = StrictYamlLoader(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_expansion(node)
        data = loader.construct_document(node) if node is not None else None
    except _YamlRefusal as refusal:
        _refuse(error, _where(name, refusal.mark), refusal.message, refusal.expected, refusal.got)
    except yaml.YAMLError as failure:
        mark = getattr(failure, "problem_mark", None)
        _refuse(error, _where(name, mark), f"not valid YAML or JSON: {getattr(failure, 'problem', None) or failure}")
    except (RecursionError, ValueError) as failure:
        _refuse(error, name, f"not a readable YAML document ({type(failure).__name__})")
    finally:
        loader.dispose()
    return data, node


def _check_expansion(root: Any) -> None:
    """Refuse a node graph whose aliases expand past :data:`MAX_EXPANDED_VALUES` values or
    :data:`MAX_DEPTH` levels (each node is visited once: the count is computed, never expanded)."""
    sizes: dict[int, int] = {}
    pending: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while pending:
        node, depth, children_done = pending.pop()
        if id(node) in sizes and not children_done:
            continue
        if depth > MAX_DEPTH:
            raise _YamlRefusal("nested too deeply (through aliases)", node.start_mark, f"at most {MAX_DEPTH} levels")
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        items = [part for pair in node.value for part in pair] if isinstance(node, yaml.MappingNode) else node.value
        if not children_done:
            if any(item is node or sizes.get(id(item)) == -1 for item in items):  # -1: on the current path
                raise _YamlRefusal("a recursive alias (a value that contains itself)", node.start_mark,
                                   "values that end")
            sizes[id(node)] = -1  # in progress
            pending.append((node, depth, True))
            pending.extend((item, depth + 1, False) for item in items if id(item) not in sizes)
            continue
        total = 1 + sum(sizes.get(id(item), 1) for item in items)
        if total > MAX_EXPANDED_VALUES:
            raise _YamlRefusal("aliases expand the document beyond the limit", node.start_mark,
                               f"at most {MAX_EXPANDED_VALUES:,} values", f"more than {MAX_EXPANDED_VALUES:,}")
        sizes[id(node)] = total


def _where(name: str, mark: Any) -> str:
    return f"{name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else name

