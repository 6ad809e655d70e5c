"""The strict reader: a document that could be read two ways is refused with its position, never guessed."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from postcart import InvalidSituation, validate_situation
from postcart.cli import app
from postcart.documents import MAX_DEPTH, parse_document, parse_json, parse_yaml, read_document
from postcart.errors import RuleDefinitionError
from postcart.rulebook import Rulebook
from postcart.scenarios import load_scenarios

from .conftest import BASELINE, RULES

runner = CliRunner()

BOMB = "".join(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9) if prev else 'lol, lol, lol'}]\n"
               for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=False))


def _problem(text: str, name: str = "case.yaml") -> str:
    with pytest.raises(InvalidSituation) as caught:
        parse_document(text, name)
    return str(caught.value.problems[0])


@pytest.mark.parametrize(("text", "value"), [
    ("age: 070", "070"), ("months: 1:30", "1:30"), ("flag: yes", "yes"), ("flag: off", "off"),
    ("count: 1_000", "1_000"), ("count: 0x1F", "0x1F"),
])
def test_yaml_1_1_surprises_stay_text(text: str, value: str) -> None:
    """YAML 1.1 octal, sexagesimal, yes/no/on/off, underscores and hex are read as the text written."""
    assert list(parse_yaml(text, "case.yaml").values()) == [value]


@pytest.mark.parametrize(("text", "value"), [
    ("a: 58", 58), ("a: -3", -3), ("a: 4.5", 4.5), ("a: .5", 0.5), ("a: 1e3", 1000.0), ("a: true", True),
    ("a: false", False), ("a: null", None), ("a: ~", None), ("a:", None),
])
def test_yaml_1_2_scalars_are_read(text: str, value: Any) -> None:
    """Decimal numbers, true/false and null are what they say."""
    assert parse_yaml(text, "case.yaml") == {"a": value}


def test_duplicate_keys_are_refused_in_json_and_yaml_with_their_position() -> None:
    """A key given twice is refused (JSON and YAML would keep the last), at the second occurrence."""
    assert _problem('{"fitness": {"ecog": 1, "ecog": 4}}', "case.json").startswith(
        "case.json:1:25: key 'ecog' given twice")
    assert _problem("fitness:\n  ecog: 1\n  ecog: 4\n").startswith("case.yaml:3:3: key 'ecog' given twice")


def test_alias_bomb_is_refused_quickly() -> None:
    """A 300-byte alias bomb (a billion values) is refused in well under a second, naming the limit."""
    started = time.perf_counter()
    message = _problem(BOMB)
    assert time.perf_counter() - started < 1.0
    assert "aliases expand the document beyond the limit" in message and "200,000 values" in message
    assert parse_yaml("a: &x {k: 1}\nb: *x\n", "ok.yaml") == {"a": {"k": 1}, "b": {"k": 1}}
    assert "recursive alias" in _problem("a: &x [1, *x]")


def test_deep_nesting_and_huge_integers_are_refused_not_crashed() -> None:
    """Nesting past the limit and integers of 4,300+ digits are refused (not a RecursionError/ValueError)."""
    deep = "[" * 600 + "]" * 600
    assert "nested too deeply" in _problem(deep, "case.json")
    assert "nested too deeply" in _problem("a:\n" + "".join("  " * i + "- \n" for i in range(1, MAX_DEPTH + 3)))
    assert "integer too long" in _problem('{"age": ' + "9" * 5000 + "}", "case.json")
    assert "integer too long" in _problem("age: " + "9" * 5000)
    assert "not a JSON number" in _problem('{"age": NaN}', "case.json")


def test_json_lines_positions_are_the_file_lines() -> None:
    """A record's problem is located on its own line of the file."""
    with pytest.raises(InvalidSituation) as caught:
        parse_json('{"a": 1, "a": 2}', "cohort.jsonl", line=7)
    assert str(caught.value.problems[0]).startswith("cohort.jsonl:7:10: key 'a' given twice")


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASELINE)
    *parents, last = path.split(".")
    target = data
    for part in parents:
        target = target[part]
    target[last] = value
    return data


@pytest.mark.parametrize(("path", "value"), [
    ("age", True), ("fitness.ecog", True), ("age", 58.0), ("age", "58"), ("age", "5_8"),
    ("car_t.infusions", 1.0), ("failure.localized", 1), ("failure.localized", "yes"),
    ("failure.months_since_infusion", "11"), ("fitness.hct_ci", False),
])
def test_clinical_types_are_strict(path: str, value: Any) -> None:
    """No bool for a number, no float or text for an integer, no 1 or 'yes' for a boolean: refused, named."""
    with pytest.raises(InvalidSituation) as caught:
        validate_situation(_with(path, value))
    assert [problem.location for problem in caught.value.problems] == [path]


def test_an_integer_is_a_valid_number_of_months() -> None:
    """11 (an integer) is a valid months_since_infusion."""
    assert validate_situation(_with("failure.months_since_infusion", 11)).failure.months_since_infusion == 11


@pytest.mark.parametrize(("text", "where"), [
    ("age: true\n", "age"), ("age: 070\n", "age"), ('{"age": 58, "age": 58}', "1:13"),
])
def test_cli_refuses_with_exit_2_and_names_the_field_or_position(tmp_path: Path, text: str, where: str) -> None:
    """`postcart evaluate` exits 2 naming the field or the file position, never a guessed answer."""
    document = json.loads(json.dumps(BASELINE))
    document.pop("age")
    body = json.dumps(document)[1:-1]
    path = tmp_path / ("case.json" if text.startswith("{") else "case.yaml")
    if text.startswith("{"):
        path.write_text(text[:-1] + ", " + body + "}")
    else:
        path.write_text(text + "\n".join(f"{key}: {json.dumps(value)}" for key, value in document.items()))
    result = runner.invoke(app, ["evaluate", str(path)])
    assert result.exit_code == 2, result.output
    assert where in result.output


def test_cli_refuses_an_alias_bomb_on_standard_input_quickly() -> None:
    """The bomb on stdin: exit 2 within seconds, in a subprocess (it once took 49 s and 3 GB)."""
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "postcart", "evaluate", "-"], input=BOMB, text=True,
                            capture_output=True, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert "aliases expand" in result.stderr and time.perf_counter() - started < 30


def test_oversized_and_undecodable_files_are_refused(tmp_path: Path) -> None:
    """A file over the size limit or not UTF-8 is refused with its name (and the line of the bad byte)."""
    big = tmp_path / "big.yaml"
    big.write_bytes(b"- 1\n" * (3 * 1024 * 1024))
    with pytest.raises(InvalidSituation, match="document too large"):
        read_document(big)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"age: 58\nname: Jos\xe9\n")
    with pytest.raises(InvalidSituation, match=r"latin\.yaml:2: not UTF-8 text \(byte 0xe9"):
        read_document(latin)


def test_scenario_files_use_the_strict_reader(tmp_path: Path) -> None:
    """A scenario file with a duplicate key is reported with its position; the others still load."""
    (tmp_path / "bad.yaml").write_text("scenarios:\n  - id: a\n    id: b\n")
    loaded = load_scenarios(tmp_path)
    assert [problem.location for _, _, problem in loaded.invalid] == [f"{tmp_path / 'bad.yaml'}:3:5"]


def test_a_rule_file_alias_bomb_is_refused_by_the_loader(tmp_path: Path) -> None:
    """`check` on a rules directory with an alias bomb answers at once (it used to hang)."""
    import shutil

    shutil.copytree(RULES, tmp_path / "rules")
    (tmp_path / "rules" / "zz_bomb.yaml").write_text(BOMB)
    with pytest.raises(RuleDefinitionError, match=r"zz_bomb\.yaml:6:4: aliases expand"):
        Rulebook.load(tmp_path / "rules")
