"""Loading the rulebook: a broken rule file is refused with file, line, rule id and field, all at once."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from postcart import Rulebook, RuleDefinitionError
from postcart.rulebook import Derive, Suggest

from .conftest import RULES


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A copy of the bundled rules to break."""
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def add_rules(directory: Path, text: str, name: str = "zz_test.yaml") -> None:
    (directory / name).write_text(textwrap.dedent(text), encoding="utf-8")


def load_problems(directory: Path) -> list[str]:
    with pytest.raises(RuleDefinitionError) as caught:
        Rulebook.load(directory)
    return [str(problem) for problem in caught.value.problems]


GOOD_RULE = """
  - id: test.good
    title: A valid test rule
    diseases: [LBCL]
    when: {field: fitness.ecog, le: 2}
    then:
      option: clinical_trial
      verdict: consider
      rationale: A valid rationale long enough to pass the schema.
      citations: [seed_sermo_cart_failure]
"""


def test_bundled_rulebook_loads(rulebook: Rulebook) -> None:
    """The bundled rulebook loads, with a version, a content hash and resolvable citations."""
    assert rulebook.version
    assert len(rulebook.content_hash) == 64
    for rule in rulebook.rules:
        if isinstance(rule.then, Suggest):
            assert rule.then.citations and all(key in rulebook.references for key in rule.then.citations)


def test_unknown_field_names_file_line_rule_and_suggestion(rules_dir: Path) -> None:
    """A misspelt field is refused with file:line, rule id, the condition path and a 'did you mean'."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("fitness.ecog", "fitness.ecgo"))
    (problem,) = load_problems(rules_dir)
    assert problem.startswith("zz_test.yaml:2 rule test.good field when.field")
    assert "unknown field 'fitness.ecgo'" in problem
    assert "did you mean 'fitness.ecog'" in problem


def test_bad_operator(rules_dir: Path) -> None:
    """An operator that does not exist is refused, listing the ones that do."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("le: 2", "lessthan: 2"))
    (problem,) = load_problems(rules_dir)
    assert "rule test.good" in problem and "unknown: lessthan" in problem and "one of eq, ne" in problem


def test_value_outside_enumeration(rules_dir: Path) -> None:
    """A comparison with a value the field cannot take is refused with the allowed values."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("{field: fitness.ecog, le: 2}",
                                                      "{field: failure.target_antigen, eq: absent}"))
    (problem,) = load_problems(rules_dir)
    assert "field when.eq" in problem
    assert "one of retained, lost, unknown" in problem and "got 'absent'" in problem


def test_value_outside_range(rules_dir: Path) -> None:
    """A threshold outside the field's range cannot ever be met and is refused."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("le: 2", "le: 7"))
    (problem,) = load_problems(rules_dir)
    assert "value outside the range of 'fitness.ecog'" in problem and "an integer 0-4" in problem


def test_unknown_citation_key(rules_dir: Path) -> None:
    """A citation key missing from the bibliography is refused with a suggestion."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("seed_sermo_cart_failure", "seed_sermo_cart_failur"))
    (problem,) = load_problems(rules_dir)
    assert "field then.citations" in problem and "unknown citation key 'seed_sermo_cart_failur'" in problem
    assert "did you mean 'seed_sermo_cart_failure'" in problem


def test_duplicate_id(rules_dir: Path) -> None:
    """Two rules with one id are refused, naming where the first one is."""
    add_rules(rules_dir, "rules:" + GOOD_RULE + GOOD_RULE)
    (problem,) = load_problems(rules_dir)
    assert "duplicate rule id (first defined in zz_test.yaml:2)" in problem


def test_suggestion_without_citation(rules_dir: Path) -> None:
    """A recommended or consider verdict without a citation is refused."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("citations: [seed_sermo_cart_failure]", "citations: []"))
    problems = load_problems(rules_dir)
    assert any("must cite" in problem for problem in problems)


def test_unknown_option_and_key_in_then(rules_dir: Path) -> None:
    """An option outside the contract and a misspelt key are both reported."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("option: clinical_trial", "option: chemo"))
    problems = load_problems(rules_dir)
    assert any("then" in problem and "'chemo'" in problem for problem in problems)


def test_all_problems_reported_at_once(rules_dir: Path) -> None:
    """Several broken rules in several files are all reported in one error."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("fitness.ecog", "fitness.ecgo"), "zz_one.yaml")
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("test.good", "test.other").replace("LBCL", "AML"),
              "zz_two.yaml")
    problems = load_problems(rules_dir)
    assert any(problem.startswith("zz_one.yaml:2 rule test.good") for problem in problems)
    assert any(problem.startswith("zz_two.yaml:2 rule test.other field diseases") for problem in problems)


def test_invalid_yaml_names_line(rules_dir: Path) -> None:
    """A file that is not YAML is refused with its line."""
    (rules_dir / "zz_bad.yaml").write_text("rules:\n  - id: [unclosed\n", encoding="utf-8")
    (problem,) = load_problems(rules_dir)
    assert problem.startswith("zz_bad.yaml:") and "not valid YAML" in problem


def test_no_python_in_rule_files(rules_dir: Path) -> None:
    """A YAML tag that would build a Python object is refused (safe loading only)."""
    (rules_dir / "zz_bad.yaml").write_text("rules: !!python/object/apply:os.system ['true']\n", encoding="utf-8")
    (problem,) = load_problems(rules_dir)
    assert "not valid YAML" in problem


def test_undeclared_derived_fact(rules_dir: Path) -> None:
    """Deriving or reading an undeclared fact is refused."""
    add_rules(rules_dir, """
        rules:
          - id: test.derive
            title: Derive an undeclared fact
            diseases: [all]
            then: {derive: nonsense, value: true}
          - id: test.read
            title: Read an undeclared fact
            diseases: [all]
            when: {field: derived.nonsense, eq: true}
            then: {ask: fitness.hct_ci, why: Needed for the test rule.}
        """)
    problems = load_problems(rules_dir)
    assert any("rule test.derive field then.derive" in p and "undeclared derived fact" in p for p in problems)
    assert any("rule test.read" in p and "unknown derived fact 'nonsense'" in p for p in problems)


def test_circular_derived_facts_refused(rules_dir: Path) -> None:
    """Derived facts that depend on each other in a circle are refused."""
    add_rules(rules_dir, """
        facts:
          fact_a: {description: first test fact, values: [true, false]}
          fact_b: {description: second test fact, values: [true, false]}
        rules:
          - id: test.a
            title: A from B
            diseases: [all]
            when: {field: derived.fact_b, eq: true}
            then: {derive: fact_a, value: true}
          - id: test.b
            title: B from A
            diseases: [all]
            when: {field: derived.fact_a, eq: true}
            then: {derive: fact_b, value: true}
        """)
    problems = load_problems(rules_dir)
    assert any("circle" in p and "fact_a -> fact_b -> fact_a" in p for p in problems)


def test_draft_and_retired_rules(rules_dir: Path) -> None:
    """Draft rules run only when asked; retired rules never do."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("title:", "status: draft\n    title:")
              + GOOD_RULE.replace("test.good", "test.old").replace("title:", "status: retired\n    title:"))
    ids = {rule.id for rule in Rulebook.load(rules_dir).rules}
    assert "test.good" not in ids and "test.old" not in ids
    ids = {rule.id for rule in Rulebook.load(rules_dir, include_drafts=True).rules}
    assert "test.good" in ids and "test.old" not in ids


def test_content_hash_changes_with_content(rules_dir: Path) -> None:
    """The content hash identifies the rule text exactly."""
    before = Rulebook.load(rules_dir).content_hash
    add_rules(rules_dir, "rules:" + GOOD_RULE)
    assert Rulebook.load(rules_dir).content_hash != before


def test_derive_rules_parse(rulebook: Rulebook) -> None:
    """Derived facts in the bundled rulebook are declared and derived."""
    derived = {rule.then.derive for rule in rulebook.rules if isinstance(rule.then, Derive)}
    assert derived and derived <= set(rulebook.facts)


def test_short_rationale_reports_only_the_suggestion_variant(rules_dir: Path) -> None:
    """A too-short rationale gives one located problem about the rationale, not errors for every `then` variant."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("A valid rationale long enough to pass the schema.", "Too short."))
    (problem,) = load_problems(rules_dir)
    assert problem.startswith("zz_test.yaml:2 rule test.good field then.rationale")
    assert "at least 20 characters" in problem


def test_derive_and_ask_errors_name_their_own_variant(rules_dir: Path) -> None:
    """A `then` with `derive` or `ask` is checked as that variant only: its own missing key, nothing else."""
    add_rules(rules_dir, """
        rules:
          - id: test.derive
            title: A derive without value
            diseases: [LBCL]
            then: {derive: failure_timing}
          - id: test.ask
            title: An ask with a short why
            diseases: [LBCL]
            then: {ask: fitness.hct_ci, why: short}
        """)
    problems = load_problems(rules_dir)
    assert len(problems) == 2, problems
    assert "rule test.derive field then.value: required key is missing" in problems[0]
    assert "rule test.ask field then.why" in problems[1] and "at least 10 characters" in problems[1]


def test_non_utf8_rule_file_is_a_located_problem(rules_dir: Path) -> None:
    """A rule file that is not UTF-8 is reported by name, alongside the other files' problems."""
    (rules_dir / "aa_latin1.yaml").write_bytes("rules: []\n# caf\xe9\n".encode("latin-1"))
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("fitness.ecog", "fitness.ecgo"))
    problems = load_problems(rules_dir)
    assert any(problem.startswith("aa_latin1.yaml: not UTF-8 text") for problem in problems), problems
    assert any("unknown field 'fitness.ecgo'" in problem for problem in problems)
