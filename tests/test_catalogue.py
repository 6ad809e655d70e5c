"""The generated rule catalogue (docs/rules.md): content a clinician needs, deterministic, never stale."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from postcart import Rulebook
from postcart.cli import app
from postcart.governance.catalogue import COMMAND, render_catalogue

from .conftest import ROOT, RULES
from .rulebooks import DERIVE_RULES, covering_rules, suggest, write_rulebook


def test_committed_catalogue_is_current() -> None:
    """docs/rules.md is exactly what the rulebook generates today."""
    expected = render_catalogue(Rulebook.load(RULES, include_drafts=True))
    committed = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    assert committed == expected, f"docs/rules.md is stale: run `{COMMAND}` and commit the result"


def _catalogue(tmp_path: Path, rules: list[dict], **kwargs: object) -> str:
    return render_catalogue(Rulebook.load(write_rulebook(tmp_path, rules, **kwargs), include_drafts=True))


def test_rule_entry_reads_in_words_with_verdict_rationale_and_reference(tmp_path: Path) -> None:
    """A disease rule appears under its disease and option with its condition in words and a linked source."""
    rule = suggest("lbcl.allo.fit", "allogeneic_hct", "recommended", diseases=["LBCL"],
                   when={"all": [{"field": "fitness.ecog", "le": 1}, {"field": "donor", "ne": "none"}]})
    rule.update(author="Lymphoma board", approved="2026-01-15", review_by="2027-01-15", version=2)
    text = _catalogue(tmp_path, [*covering_rules(), rule])
    section = text.split("## Large B-cell lymphoma (LBCL)")[1].split("## Follicular lymphoma")[0]
    entry = section.split("### Allogeneic stem cell transplant (LBCL)")[1]
    assert "- When: ECOG performance status ≤ 1 and best available donor ≠ none" in entry
    assert "- Verdict: **recommended**" in entry
    assert "- Rationale: Rationale of lbcl.allo.fit, long enough." in entry
    assert "[Test 2024](https://doi.org/10.1000/test.1)" in entry
    assert "status active, version 2, author Lymphoma board, approved 2026-01-15, review by 2027-01-15" in entry
    assert "lbcl.allo.fit" not in text.split("## Follicular lymphoma")[1].split("## References")[0]


def test_contraindication_and_overrides_are_stated(tmp_path: Path) -> None:
    """A contraindication says it wins; an overriding rule names the rules it overrides."""
    rules = [*covering_rules(skip=("allogeneic_hct",)),
             suggest("allo.infection", "allogeneic_hct", "not_advised", contraindication=True,
                     when={"field": "fitness.active_infection", "eq": True}),
             suggest("allo.unfit", "allogeneic_hct", "not_advised", when={"field": "fitness.ecog", "ge": 3},
                     overrides=["allo.fit"]),
             suggest("allo.fit", "allogeneic_hct", "consider", when={"field": "fitness.ecog", "le": 3})]
    text = _catalogue(tmp_path, rules)
    assert "- Verdict: **not advised (contraindication: wins over other verdicts)**" in text
    assert "- Overrides: `allo.fit`" in text


def test_coverage_table_shows_covered_unaddressed_and_gaps(tmp_path: Path) -> None:
    """The coverage table names verdicts per cell, numbers unaddressed reasons and marks gaps."""
    unaddressed = [{"disease": "MM", "option": "radiotherapy", "reason": "No myeloma data after CAR-T."}]
    text = _catalogue(tmp_path, covering_rules(skip=("radiotherapy",)), unaddressed=unaddressed)
    row = next(line for line in text.splitlines() if line.startswith("| Radiotherapy |"))
    assert row == "| Radiotherapy | **gap** | **gap** | **gap** | **gap** | unaddressed [1] | **gap** |"
    assert "1. MM x Radiotherapy: No myeloma data after CAR-T." in text
    trial = next(line for line in text.splitlines() if line.startswith("| Clinical trial |"))
    assert trial.count("consider (1 rule)") == 6


def test_derived_facts_and_prompts_are_listed(tmp_path: Path) -> None:
    """Derived facts show how each value is derived; prompts show the field, when and why."""
    ask = {"id": "ask.cd20", "title": "Ask for CD20", "diseases": ["FL"],
           "when": {"field": "failure.cd20", "eq": "unknown"},
           "then": {"ask": "failure.cd20", "why": "Re-biopsy to assess CD20 first.", "citations": ["test_source"]}}
    text = _catalogue(tmp_path, [*DERIVE_RULES, *covering_rules(), ask])
    assert "| very_early | months from infusion to failure ≤ 1 | all | `timing.very_early` |" in text
    assert "Values: yes, no; when no rule applies: no." in text
    fl = text.split("## Follicular lymphoma (FL)")[1].split("## Mantle")[0]
    assert "#### CD20 at failure (`failure.cd20`)" in fl
    assert "- When: CD20 at failure = unknown" in fl and "- Why: Re-biopsy to assess CD20 first." in fl


def test_rule_that_cannot_fire_for_a_disease_is_flagged(tmp_path: Path) -> None:
    """An all-disease rule needing a CD19 product says it cannot fire for myeloma."""
    rules = [*covering_rules(), suggest("bsab.cd19", "bispecific_antibody", when={
        "field": "car_t.product", "in": ["axi-cel", "tisa-cel", "liso-cel", "brexu-cel", "obe-cel"]})]
    text = _catalogue(tmp_path, rules)
    entry = text.split("`bsab.cd19`")[1].split("####")[0]
    assert "**Cannot fire for MM**" in entry


def test_catalogue_is_deterministic(tmp_path: Path) -> None:
    """Two renderings of one rulebook are identical (no dates, no ordering by chance)."""
    rulebook = Rulebook.load(write_rulebook(tmp_path, [*DERIVE_RULES, *covering_rules()]), include_drafts=True)
    assert render_catalogue(rulebook) == render_catalogue(rulebook)


def test_cli_writes_catalogue(tmp_path: Path) -> None:
    """`postcart catalogue --output FILE` writes the same Markdown the module renders."""
    rules_dir = write_rulebook(tmp_path / "rules", covering_rules())
    target = tmp_path / "rules.md"
    result = CliRunner().invoke(app, ["catalogue", "--rules", str(rules_dir), "--output", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == render_catalogue(Rulebook.load(rules_dir, include_drafts=True))


def test_cli_catalogue_refuses_broken_rules(tmp_path: Path) -> None:
    """A broken rulebook gives exit 2 and the located problem, not a catalogue."""
    rules = [*covering_rules(), suggest("bad.field", "radiotherapy", when={"field": "fitness.ecgo", "le": 1})]
    result = CliRunner().invoke(app, ["catalogue", "--rules", str(write_rulebook(tmp_path, rules))])
    assert result.exit_code == 2
    assert "bad.field" in result.output and "fitness.ecog" in result.output
