"""Change impact: two rulebooks over the same situations, every changed assessment reported exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from postcart import Assessment, Engine, Rulebook, evaluate
from postcart.cli import app
from postcart.governance.diff import compare_rulebooks, load_situations, to_markdown
from postcart.scenarios import load_scenarios

from ._rulebooks import write_rulebook

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
SCENARIOS = ROOT / "scenarios"

#: The rule holding the transplant age limit (age ≤ 70): in the first slice the transplant rule itself,
#: in the full knowledge base the derivation of transplant fitness. The first one present is used.
AGE_RULES = ("derived.transplant_fitness.fit", "lbcl.allo_hct.fit_with_donor")


def age_rule() -> str:
    ids = {rule.id for rule in Rulebook.load(RULES).rules}
    return next(rule_id for rule_id in AGE_RULES if rule_id in ids)


def set_threshold(rules: Path, rule_id: str, field: str, value: Any, version: int | None = None) -> Any:
    """Change the threshold of one comparison of one rule in a rules directory; return the old one."""
    for file in sorted(rules.glob("*.yaml")):
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
        for rule in (data or {}).get("rules", []) if isinstance(data, dict) else []:
            if rule.get("id") != rule_id:
                continue
            old = _replace(rule["when"], field, value)
            if version is not None:
                rule["version"] = version
            file.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
            return old
    raise AssertionError(f"rule {rule_id} not found in {rules}")


def _replace(condition: Any, field: str, value: Any) -> Any:
    if isinstance(condition, dict) and condition.get("field") == field:
        (op,) = set(condition) - {"field"}
        old, condition[op] = condition[op], value
        return old
    children = condition.get("all") or condition.get("any") or [condition.get("not")] if isinstance(condition, dict) else []
    for child in children or []:
        if child is not None:
            found = _replace(child, field, value)
            if found is not None:
                return found
    return None


def copy_rules(tmp_path: Path, name: str = "new") -> Path:
    target = tmp_path / name
    shutil.copytree(RULES, target)
    return target


def situation(age: int, donor: str, **extra: Any) -> dict[str, Any]:
    return {
        "age": age, "disease": "LBCL",
        "car_t": {"product": "axi-cel", "best_response": "CR"},
        "failure": {"kind": "relapse", "months_since_infusion": 11, "target_antigen": "retained", "cd20": "positive"},
        "fitness": {"ecog": 1, "hct_ci": 1, "organ_function_adequate": True},
        "donor": donor, "goals": "disease_control", "trial_access": "available", **extra,
    }


@pytest.fixture
def crafted(tmp_path: Path) -> Path:
    """Four LBCL scenarios around the transplant rule's age limit."""
    file = tmp_path / "crafted.yaml"
    file.write_text(yaml.safe_dump({"scenarios": [
        {"id": "age-65-fit-donor", "situation": situation(65, "matched_unrelated")},
        {"id": "age-58-fit-donor", "situation": situation(58, "matched_unrelated")},
        {"id": "age-75-fit-donor", "situation": situation(75, "matched_unrelated")},
        {"id": "age-65-no-donor", "situation": situation(65, "none")},
    ]}), encoding="utf-8")
    return file


def test_lowered_age_limit_reports_exactly_the_affected_scenario(tmp_path: Path, crafted: Path) -> None:
    """Age limit 70 -> 60 for transplant changes only the 65-year-old with a donor, for that option only."""
    rule_id = age_rule()
    new_rules = copy_rules(tmp_path)
    assert set_threshold(new_rules, rule_id, "age", 60) == 70
    report = compare_rulebooks(Rulebook.load(RULES), Rulebook.load(new_rules), load_situations(crafted))
    assert report.situations == 4 and report.invalid == []
    assert [change.id for change in report.changed] == ["age-65-fit-donor"]
    assert report.expectations_broken == []  # these scenarios state no expectations
    (option,) = report.changed[0].options
    assert option.option == "allogeneic_hct" and option.old in ("recommended", "consider")
    assert option.new in ("not_addressed", "not_advised") and option.old_rules
    assert report.counts == {"allogeneic_hct": {f"{option.old} → {option.new}": 1}}
    (rule,) = report.rules
    assert (rule.rule, rule.change, rule.what, rule.note) == (rule_id, "modified", ["condition"],
                                                              "changed without a version bump")


def test_threshold_change_on_the_bundled_scenario_suite(tmp_path: Path, rulebook: Rulebook,
                                                        engine: Engine) -> None:
    """Age limit 70 -> 55 over scenarios/ reports exactly the scenarios whose assessment differs."""
    new_rules = copy_rules(tmp_path)
    set_threshold(new_rules, age_rule(), "age", 55)
    scenarios = load_scenarios(SCENARIOS).scenarios
    with Engine(Rulebook.load(new_rules)) as new_engine:  # the oracle: each scenario assessed both ways
        expected = sorted(scenario.id for scenario in scenarios
                          if _answer(evaluate(scenario.situation, engine))
                          != _answer(evaluate(scenario.situation, new_engine)))
    assert "lbcl-late-relapse-fit-donor" in expected  # 58 years old, fit, with a donor
    report = compare_rulebooks(rulebook, Rulebook.load(new_rules), load_situations(SCENARIOS))
    assert report.situations == len(scenarios)
    assert sorted(change.id for change in report.changed) == expected
    for change in report.changed:
        assert [item.option for item in change.options] == ["allogeneic_hct"]
    # the bundled scenario expects transplant to be at least considered: the committee sees it break
    assert "lbcl-late-relapse-fit-donor" in report.expectations_broken
    assert "expected recommended or consider" in to_markdown(report)


def _answer(assessment: Assessment) -> tuple[Any, ...]:
    """What a clinician reads: each option's verdict and rules, and the information asked for."""
    return ({item.option: (item.verdict, sorted(item.rules)) for item in assessment.options},
            sorted(item.field for item in assessment.missing_information))


def test_identical_rulebooks_report_nothing(crafted: Path) -> None:
    """The same rulebook on both sides changes no situation and no rule."""
    report = compare_rulebooks(Rulebook.load(RULES), Rulebook.load(RULES), load_situations(crafted))
    assert (report.changed, report.counts, report.rules, report.situations) == ([], {}, [], 4)


def test_rule_added_removed_and_version_bump(tmp_path: Path, crafted: Path) -> None:
    """An added rule, a removed rule and a bumped version are listed as such; the added rule's effect shows."""
    rules = """
rules:
  - id: t.keep
    title: A rule kept across versions
    diseases: [all]
    version: 1
    when: {field: age, le: 70}
    then: {option: clinical_trial, verdict: consider, rationale: "Test rule: kept between versions.", citations: [CITE]}
  - id: t.gone
    title: A rule removed in the new version
    diseases: [all]
    then: {option: radiotherapy, verdict: consider, rationale: "Test rule: removed in the new book.", citations: [CITE]}
"""
    old = write_rulebook(tmp_path / "old", rules)
    new_text = rules.replace("version: 1\n    when: {field: age, le: 70}", "version: 2\n    when: {field: age, le: 60}")
    new_text = new_text[:new_text.index("  - id: t.gone")] + """  - id: t.new
    title: A rule added in the new version
    diseases: [LBCL]
    when: {field: donor, eq: none}
    then: {option: quality_of_life_focus, verdict: consider, rationale: "Test rule: added in the new book.", citations: [CITE]}
"""
    new = write_rulebook(tmp_path / "new", new_text)
    report = compare_rulebooks(Rulebook.load(old), Rulebook.load(new), load_situations(crafted))
    assert [(r.rule, r.change, r.what, r.note) for r in report.rules] == [
        ("t.gone", "removed", [], None), ("t.keep", "modified", ["condition", "version"], None),
        ("t.new", "added", [], None)]
    by_id = {change.id: {item.option: (item.old, item.new) for item in change.options} for change in report.changed}
    assert by_id == {
        "age-65-fit-donor": {"clinical_trial": ("consider", "not_addressed"),
                             "radiotherapy": ("consider", "not_addressed")},
        "age-58-fit-donor": {"radiotherapy": ("consider", "not_addressed")},
        "age-75-fit-donor": {"radiotherapy": ("consider", "not_addressed")},
        "age-65-no-donor": {"clinical_trial": ("consider", "not_addressed"),
                            "radiotherapy": ("consider", "not_addressed"),
                            "quality_of_life_focus": ("not_addressed", "consider")},
    }
    assert report.counts["radiotherapy"] == {"consider → not_addressed": 4}


def test_situation_lists_and_jsonl_with_bad_rows(tmp_path: Path) -> None:
    """JSONL and YAML lists are read; a bad row is reported with its place and the good ones are compared."""
    jsonl = tmp_path / "cohort.jsonl"
    rows = [situation(65, "matched_related", patient_id="a"), situation(50, "matched_related"),
            situation(65, "matched_related", fitness={"ecog": 9})]
    jsonl.write_text("\n".join(json.dumps(row) for row in rows) + "\n{not json\n", encoding="utf-8")
    listed = tmp_path / "list.yaml"
    listed.write_text(yaml.safe_dump([situation(66, "haploidentical")]), encoding="utf-8")
    loaded = load_situations(jsonl, listed)
    assert [item[0] for item in loaded.items] == [f"{jsonl}:1", f"{jsonl}:2", f"{listed}#1"]
    problems = [str(problem) for problem in loaded.invalid]
    assert any(text.startswith(f"{jsonl}:3 fitness.ecog") for text in problems)
    assert any(text.startswith(f"{jsonl}:4:") and "not valid JSON" in text for text in problems)
    new_rules = copy_rules(tmp_path)
    set_threshold(new_rules, age_rule(), "age", 60)
    report = compare_rulebooks(Rulebook.load(RULES), Rulebook.load(new_rules), loaded)
    assert report.situations == 3 and len(report.invalid) == 2
    assert [change.id for change in report.changed] == [f"{jsonl}:1", f"{listed}#1"]


def test_cli_diff_markdown_and_json(tmp_path: Path, crafted: Path) -> None:
    """`postcart diff OLD NEW SCENARIOS` prints the Markdown report; --format json the same data."""
    rule_id = age_rule()
    new_rules = copy_rules(tmp_path)
    set_threshold(new_rules, rule_id, "age", 60)
    runner = CliRunner()
    result = runner.invoke(app, ["diff", str(RULES), str(new_rules), str(crafted)])
    assert result.exit_code == 0, result.output
    assert "### age-65-fit-donor" in result.output and "### age-58-fit-donor" not in result.output
    assert "| Allogeneic stem cell transplant | " in result.output and " → not addressed |" in result.output
    assert f"| `{rule_id}` | modified | condition (changed without a version bump) |" in result.output
    result = runner.invoke(app, ["diff", str(RULES), str(new_rules), str(crafted), "--format", "json"])
    data = json.loads(result.output)
    assert [change["id"] for change in data["changed"]] == ["age-65-fit-donor"]
    assert data["new"]["content_hash"] != data["old"]["content_hash"]


def test_cli_diff_needs_two_rulebooks() -> None:
    """Without --old-rev, one directory is a usage error (exit 2) saying what is needed."""
    result = CliRunner().invoke(app, ["diff", str(RULES)])
    words = " ".join(result.output.replace("│", " ").split())  # typer boxes and wraps usage errors
    assert result.exit_code == 2 and "needs the old and the new rules directories: OLD_RULES NEW_RULES" in words


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.org",
                    "-c", "commit.gpgsign=false", *args], check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_cli_diff_against_a_git_revision(tmp_path: Path, crafted: Path) -> None:
    """`--old-rev HEAD` compares the committed rules with the working copy; a bad revision exits 2."""
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copytree(RULES, repo / "rules")
    _git(repo, "init", "-q")
    _git(repo, "add", "rules")
    _git(repo, "commit", "-q", "-m", "rules")
    set_threshold(repo / "rules", age_rule(), "age", 60)
    runner = CliRunner()
    result = runner.invoke(app, ["diff", "--old-rev", "HEAD", str(repo / "rules"), str(crafted), "-f", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [change["id"] for change in data["changed"]] == ["age-65-fit-donor"]
    assert data["old"]["source"].endswith("at HEAD")
    result = runner.invoke(app, ["diff", "--old-rev", "no-such-rev", str(repo / "rules"), str(crafted)])
    assert result.exit_code == 2 and "git could not read the rules at this revision" in result.output


def test_markdown_report_lists_counts_and_rules() -> None:
    """The Markdown rendering states both rulebooks and, with no change, says so."""
    report = compare_rulebooks(Rulebook.load(RULES), Rulebook.load(RULES), load_situations(SCENARIOS))
    text = to_markdown(report)
    assert "No option changed for any situation." in text and "No rule was added, removed or modified." in text
    assert f"Situations compared: {report.situations}; changed: 0" in text
