"""The audit record on every assessment, reproducibility, and rule lifecycle (draft/active/retired, review)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from postcart import Engine, Rulebook, evaluate
from postcart.assessment import audit_key_path, situation_hash
from postcart.cli import app
from postcart.governance.check import lint
from postcart.scenarios import load_scenarios
from postcart.situation import validate_situation

from ._rulebooks import write_rulebook

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def test_every_assessment_carries_a_complete_audit(engine: Engine, rulebook: Rulebook,
                                                   baseline: dict[str, Any]) -> None:
    """Input hash, rulebook version and hash, versions, UTC evaluation time and every fired rule."""
    before = dt.datetime.now(dt.UTC)
    assessment = evaluate(baseline, engine)
    audit = assessment.audit
    assert re.fullmatch(r"[0-9a-f]{64}", audit.input_hash)
    assert (audit.rulebook_version, audit.rulebook_hash) == (rulebook.version, rulebook.content_hash)
    assert audit.durable_rules_version == "2.0.28"
    assert audit.postcart_version not in ("", "unknown")
    assert audit.evaluated_at.utcoffset() == dt.timedelta(0)
    assert before <= audit.evaluated_at <= dt.datetime.now(dt.UTC)
    spoken = {rule for option in assessment.options for rule in option.rules}
    assert spoken <= set(audit.rules_fired)
    assert "follow_up.everyone" in audit.rules_fired


def test_same_input_and_rulebook_give_the_same_assessment(rulebook: Rulebook, engine: Engine) -> None:
    """Every bundled scenario, assessed twice (a second, separate engine too), is identical but for the time."""
    scenarios = load_scenarios(SCENARIOS).scenarios
    assert scenarios
    with Engine(rulebook) as other:
        for scenario in scenarios:
            first = evaluate(scenario.situation, engine)
            again = evaluate(scenario.situation, engine)
            elsewhere = evaluate(scenario.situation, other)
            assert first.reproducible() == again.reproducible() == elsewhere.reproducible(), scenario.id
            assert first.model_dump(mode="json")["audit"]["evaluated_at"]  # the one part left out


def test_input_hash_identifies_clinical_input_not_the_label(engine: Engine, baseline: dict[str, Any]) -> None:
    """The label does not change the hash, a clinical field does, and the hash is of canonical JSON."""
    first = evaluate(baseline, engine).audit.input_hash
    relabelled = dict(baseline, patient_id="someone-else")
    assert evaluate(relabelled, engine).audit.input_hash == first
    older = dict(baseline, age=baseline["age"] + 1)
    assert evaluate(older, engine).audit.input_hash != first
    canonical = validate_situation(baseline).model_dump(mode="json", exclude={"patient_id"})
    key = audit_key_path().read_text().strip().encode()
    expected = hmac.new(key, json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode(),
                        hashlib.sha256).hexdigest()
    assert situation_hash(validate_situation(baseline)) == expected
    plain = hashlib.sha256(json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert first != plain  # not the unkeyed hash anyone could recompute by enumeration


def test_audit_key_is_made_once_owner_only_and_another_key_gives_another_hash(
        tmp_path: Path, baseline: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The key is created on first use with mode 0600 at $POSTCART_AUDIT_KEY; another site's key differs."""
    situation = validate_situation(baseline)
    here = situation_hash(situation)
    assert situation_hash(situation) == here
    other = tmp_path / "site-b" / "audit.key"
    monkeypatch.setenv("POSTCART_AUDIT_KEY", str(other))
    elsewhere = situation_hash(situation)
    assert other.is_file() and stat.S_IMODE(other.stat().st_mode) == 0o600
    assert elsewhere != here and re.fullmatch(r"[0-9a-f]{64}", elsewhere)
    assert audit_key_path() == other


def test_audit_holds_no_patient_data(engine: Engine, baseline: dict[str, Any]) -> None:
    """The audit has only its own fields; the label and the input's fields and values are not in it."""
    baseline["patient_id"] = "label-7f3q-zz"
    audit = evaluate(baseline, engine).audit.model_dump(mode="json")
    assert set(audit) == {"input_hash", "rulebook_version", "rulebook_hash", "postcart_version",
                          "durable_rules_version", "evaluated_at", "rules_fired", "approving_reviews"}
    text = json.dumps(audit)
    for leak in ("label-7f3q-zz", '"age"', '"patient_id"', "matched_unrelated", '"car_t"'):
        assert leak not in text


# --- lifecycle

LIFECYCLE_RULES = """
rules:
  - id: t.active
    title: An active rule
    diseases: [all]
    status: active
    version: 3
    author: Test Author
    approved: 2026-01-10
    review_by: 2099-01-10
    then: {option: clinical_trial, verdict: consider, rationale: "Test rule: active and approved.", citations: [CITE]}
  - id: t.draft
    title: A draft rule
    diseases: [all]
    status: draft
    then: {option: radiotherapy, verdict: consider, rationale: "Test rule: still a draft proposal.", citations: [CITE]}
  - id: t.retired
    title: A retired rule
    diseases: [all]
    status: retired
    then: {option: quality_of_life_focus, verdict: consider, rationale: "Test rule: retired from use.", citations: [CITE]}
  - id: t.overdue
    title: An active rule past its review date
    diseases: [all]
    author: Test Author
    approved: 2020-01-01
    review_by: 2021-01-01
    then: {option: long_term_follow_up, verdict: recommended, rationale: "Test rule: overdue for review.", citations: [CITE]}
"""


#: The options the active lifecycle rules address (for every disease).
LIFECYCLE_COVERS = ("clinical_trial", "long_term_follow_up")


@pytest.fixture
def lifecycle_rules(tmp_path: Path) -> Path:
    return write_rulebook(tmp_path / "rules", LIFECYCLE_RULES, covered=LIFECYCLE_COVERS)


def _options(rules: Path, situation: dict[str, Any], include_drafts: bool = False) -> dict[str, str]:
    with Engine(Rulebook.load(rules, include_drafts=include_drafts)) as engine:
        return {item.option: item.verdict for item in evaluate(situation, engine).options}


def test_only_active_rules_run_by_default(lifecycle_rules: Path, baseline: dict[str, Any]) -> None:
    """Draft and retired rules do not run; the active ones do."""
    assert _options(lifecycle_rules, baseline) == {"long_term_follow_up": "recommended", "clinical_trial": "consider"}


def test_include_drafts_runs_drafts_but_never_retired(lifecycle_rules: Path, baseline: dict[str, Any]) -> None:
    """With drafts included the draft rule runs; the retired rule still never does."""
    options = _options(lifecycle_rules, baseline, include_drafts=True)
    assert options.get("radiotherapy") == "consider"
    assert "quality_of_life_focus" not in options


def test_cli_include_drafts(tmp_path: Path, lifecycle_rules: Path, baseline: dict[str, Any]) -> None:
    """`postcart evaluate --include-drafts` runs the draft rule; without the flag it does not."""
    file = tmp_path / "patient.json"
    file.write_text(json.dumps(baseline), encoding="utf-8")
    runner = CliRunner()
    plain = runner.invoke(app, ["evaluate", str(file), "--rules", str(lifecycle_rules), "-f", "json"])
    drafts = runner.invoke(app, ["evaluate", str(file), "--rules", str(lifecycle_rules), "-f", "json",
                                 "--include-drafts"])
    assert plain.exit_code == drafts.exit_code == 0, plain.output + drafts.output
    assert "t.draft" not in json.loads(plain.output)["audit"]["rules_fired"]
    assert "t.draft" in json.loads(drafts.output)["audit"]["rules_fired"]
    assert "t.retired" not in json.loads(drafts.output)["audit"]["rules_fired"]


def test_check_warns_on_past_review_date_and_missing_metadata(lifecycle_rules: Path) -> None:
    """`postcart check` passes but warns about the overdue rule and the rules without lifecycle metadata."""
    result = CliRunner().invoke(app, ["check", "--rules", str(lifecycle_rules)])
    assert result.exit_code == 0, result.output
    assert "rule t.overdue field review_by: review date 2021-01-01 has passed" in result.output
    assert "t.active" not in result.output  # complete metadata, review in the future
    findings = lint(Rulebook.load(lifecycle_rules, include_drafts=True))
    missing = [str(warning) for warning in findings.warnings if "lifecycle metadata" in str(warning)]
    assert missing == []  # drafts need no sign-off; the active rules carry theirs


def test_active_rule_without_metadata_is_warned(tmp_path: Path) -> None:
    """An active rule without lifecycle metadata is warned about, and fails `check --require-lifecycle`."""
    rules = write_rulebook(tmp_path / "rules", LIFECYCLE_RULES + """
  - id: t.unsigned
    title: An active rule nobody signed
    diseases: [all]
    then: {option: radiotherapy, verdict: consider, rationale: "Test rule: no lifecycle metadata.", citations: [CITE]}
""", covered=(*LIFECYCLE_COVERS, "radiotherapy"))
    findings = lint(Rulebook.load(rules, include_drafts=True))
    assert any("rule t.unsigned" in str(w) and "author, approved, review_by" in str(w) for w in findings.warnings)
    assert findings.problems == []
    strict = CliRunner().invoke(app, ["check", "--rules", str(rules), "--require-lifecycle"])
    assert strict.exit_code == 2
    assert "rule t.unsigned: active rule without lifecycle metadata: author, approved, review_by" in strict.output


def test_review_before_approval_fails_check(tmp_path: Path) -> None:
    """A review date before the approval date is a problem: `postcart check` exits 2 naming the rule."""
    rules = write_rulebook(tmp_path / "rules", LIFECYCLE_RULES.replace("review_by: 2099-01-10", "review_by: 2025-01-10"),
                           covered=LIFECYCLE_COVERS)
    result = CliRunner().invoke(app, ["check", "--rules", str(rules)])
    assert result.exit_code == 2
    assert "rule t.active field review_by: review date before approval date" in result.output


def test_bundled_rulebook_carries_lifecycle_metadata_on_every_active_rule() -> None:
    """The bundled rules pass `postcart check --require-lifecycle`: every active rule has author and dates."""
    result = CliRunner().invoke(app, ["check", "--require-lifecycle"])
    assert result.exit_code == 0, result.output
    assert "lifecycle metadata" not in result.output  # (past review dates only warn: no calendar time bomb)
