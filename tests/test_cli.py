"""The command line: reports, formats, exit codes and error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from postcart.cli import app

from .conftest import ROOT, SCENARIOS

runner = CliRunner()
EXAMPLE = SCENARIOS / "lbcl.yaml"


def write(tmp_path: Path, data: Any, name: str = "case.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_evaluate_prints_sourced_report_with_disclaimer() -> None:
    """The default report lists options by verdict, numbered references with links, and the disclaimer."""
    result = runner.invoke(app, ["evaluate", str(EXAMPLE), "--scenario", "lbcl-late-relapse-fit-donor"])
    assert result.exit_code == 0, result.output
    out = result.output
    recommended = out.split("RECOMMENDED", 1)[1]
    for heading in ("CONSIDER", "NOT ADVISED", "REFERENCES"):
        recommended = recommended.split(heading, 1)[0]
    assert "Bispecific antibody" in recommended
    assert "REFERENCES" in out and "[1]" in out and "https://doi.org/" in out
    assert "Decision support only." in out


def test_evaluate_json_matches_the_contract(tmp_path: Path, baseline: dict[str, Any]) -> None:
    """--format json emits the Assessment contract."""
    result = runner.invoke(app, ["evaluate", str(write(tmp_path, baseline)), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["patient_id"] == "test-001"
    for option in data["options"]:
        assert set(option) >= {"option", "verdict", "rationale", "citations", "rules", "because"}
        if option["verdict"] in ("recommended", "consider"):
            assert option["citations"] and all({"key", "label"} <= set(c) for c in option["citations"])
    assert data["disclaimer"].startswith("Decision support only.")
    assert set(data["rulebook"]) == {"version", "content_hash"}


def test_evaluate_markdown(tmp_path: Path, baseline: dict[str, Any]) -> None:
    """--format markdown gives headings per verdict and footnoted references."""
    result = runner.invoke(app, ["evaluate", str(write(tmp_path, baseline)), "-f", "markdown"])
    assert result.exit_code == 0
    assert result.output.startswith("# postcart assessment: large B-cell lymphoma (test-001)")
    assert "## Recommended" in result.output and "[^1]:" in result.output


def test_evaluate_reads_json_from_stdin(baseline: dict[str, Any]) -> None:
    """'-' reads a JSON situation from standard input."""
    result = runner.invoke(app, ["evaluate", "-", "-f", "json"], input=json.dumps(baseline))
    assert result.exit_code == 0 and json.loads(result.output)["disease"] == "LBCL"


def test_invalid_situation_exits_2_naming_field_expected_and_got(tmp_path: Path, baseline: dict[str, Any]) -> None:
    """Invalid input exits 2 with the dotted field, what was expected and what arrived."""
    baseline["fitness"]["ecog"] = 7
    result = runner.invoke(app, ["evaluate", str(write(tmp_path, baseline))])
    assert result.exit_code == 2
    assert "fitness.ecog" in result.output and "expected an integer 0-4, got 7" in result.output


def test_unreadable_and_malformed_files_exit_2(tmp_path: Path) -> None:
    """A missing file or broken YAML exits 2 with a message, not a traceback."""
    missing = runner.invoke(app, ["evaluate", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "cannot read" in missing.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("age: [58\n", encoding="utf-8")
    result = runner.invoke(app, ["evaluate", str(broken)])
    assert result.exit_code == 2 and "not valid YAML or JSON" in result.output
    assert "Traceback" not in result.output


def test_scenario_file_with_several_scenarios_needs_a_choice(tmp_path: Path, baseline: dict[str, Any]) -> None:
    """A scenario file with several scenarios asks which one, listing the ids."""
    path = write(tmp_path, {"scenarios": [{"id": "a", "situation": baseline}, {"id": "b", "situation": baseline}]})
    result = runner.invoke(app, ["evaluate", str(path)])
    assert result.exit_code == 2 and "one of a, b" in result.output
    assert runner.invoke(app, ["evaluate", str(path), "--scenario", "b"]).exit_code == 0


def test_check_reports_ok_and_broken_rules_exit_2(tmp_path: Path) -> None:
    """`check` passes the bundled rules and exits 2 on a broken rules directory, listing problems."""
    result = runner.invoke(app, ["check"])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    broken = tmp_path / "rules"
    broken.mkdir()
    (broken / "rulebook.yaml").write_text("version: '1'\n", encoding="utf-8")
    result = runner.invoke(app, ["check", "--rules", str(broken)])
    assert result.exit_code == 2 and "references.yaml: missing" in result.output


def test_schema_is_the_models_json_schema() -> None:
    """`schema` prints the JSON Schema generated from PatientSituation."""
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    schema = json.loads(result.output)
    assert schema["title"] == "PatientSituation" and "fitness" in schema["properties"]


def test_console_script_runs_as_a_module() -> None:
    """`python -m postcart` works as the console script does (exit code 2 on bad input)."""
    process = subprocess.run([sys.executable, "-m", "postcart", "evaluate", "-"], input="age: 300\n",
                             capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert process.returncode == 2
    assert "age" in process.stderr and "got 300" in process.stderr


def test_catalogue_output_into_a_missing_directory_exits_2(tmp_path: Path) -> None:
    """`catalogue --output` into a directory that does not exist is refused up front, naming the option."""
    target = tmp_path / "missing" / "x.md"
    result = runner.invoke(app, ["catalogue", "--output", str(target)])
    assert result.exit_code == 2, result.output
    assert f"--output {target}: directory {target.parent} does not exist" in result.output
    assert not target.parent.exists()


def test_batch_output_files_into_missing_directories_exit_2_before_running(tmp_path: Path) -> None:
    """--junit, --report and --output into missing directories exit 2 naming the option, before any work."""
    for option, name in (("--junit", "j.xml"), ("--report", "r.html")):
        target = tmp_path / "missing" / name
        result = runner.invoke(app, ["batch", str(EXAMPLE), option, str(target)])
        assert result.exit_code == 2, result.output
        assert f"{option} {target}: directory {target.parent} does not exist" in result.output
    table = tmp_path / "cohort.csv"
    table.write_text("disease\nLBCL\n", encoding="utf-8")
    result = runner.invoke(app, ["batch", str(table), "--output", str(tmp_path / "missing" / "o.csv")])
    assert result.exit_code == 2 and "--output" in result.output and "does not exist" in result.output


def test_batch_suite_refuses_output_and_says_why() -> None:
    """--output on a scenario suite is refused (exit 2) rather than silently ignored."""
    result = runner.invoke(app, ["batch", str(SCENARIOS), "--output", "x.parquet"])
    assert result.exit_code == 2
    assert "--output is for a cohort table" in result.output and "--junit or --report" in result.output


def test_batch_unknown_extension_names_the_accepted_ones(tmp_path: Path) -> None:
    """A .txt input is neither a table nor a scenario file: the message lists the accepted extensions."""
    cohort = tmp_path / "cohort.txt"
    cohort.write_text("disease\nLBCL\n", encoding="utf-8")
    for extra in (["--output", str(tmp_path / "o.csv")], []):
        result = runner.invoke(app, ["batch", str(cohort), *extra])
        assert result.exit_code == 2, result.output
        assert ".csv, .jsonl, .ndjson or .parquet" in result.output and "cohort.txt" in result.output


def test_feedback_report_refuses_a_bad_url_and_a_missing_sqlite_file(tmp_path: Path) -> None:
    """A malformed database URL and a missing SQLite file exit 2 with a message; no empty database is made."""
    result = runner.invoke(app, ["feedback-report", "--database-url", "not a url"])
    assert result.exit_code == 2 and "not a database URL" in result.output
    missing = tmp_path / "none.sqlite3"
    result = runner.invoke(app, ["feedback-report", "--database-url", f"sqlite:///{missing}"])
    assert result.exit_code == 2 and f"no feedback database at {missing}" in result.output
    assert not missing.exists()


def test_diff_exits_2_when_an_input_cannot_be_read(tmp_path: Path) -> None:
    """`diff` with a missing situations file still reports the rest, then exits 2 naming the file."""
    rules = ROOT / "rules"
    missing = tmp_path / "missing.yaml"
    result = runner.invoke(app, ["diff", str(rules), str(rules), str(EXAMPLE), str(missing)])
    assert result.exit_code == 2, result.output
    assert "## Not compared" in result.output and f"could not read {missing}" in result.output
    assert runner.invoke(app, ["diff", str(rules), str(rules), str(EXAMPLE)]).exit_code == 0


def test_internal_error_prints_type_and_reference_only(monkeypatch: Any, capsys: Any) -> None:
    """An unexpected fault exits 1 with the exception type and a reference, never the message (patient data)."""
    import pytest

    from postcart import cli

    def boom() -> None:
        raise RuntimeError("patient MRN 123456 age 58")

    monkeypatch.setattr(cli, "app", boom)
    with pytest.raises(SystemExit) as caught:
        cli.main()
    assert caught.value.code == 1
    err = capsys.readouterr().err
    assert "internal error: RuntimeError (reference " in err and "report it" in err
    assert "123456" not in err and "MRN" not in err


def test_cli_reference_is_current() -> None:
    """docs/cli.md is the generated reference of every command and option (regenerate with the command below)."""
    import subprocess
    import sys
    from pathlib import Path

    reference = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    generated = subprocess.run([sys.executable, "-m", "typer", "postcart.cli", "utils", "docs", "--name", "postcart"],
                               capture_output=True, text=True, check=True).stdout
    assert generated.strip() == reference.read_text(encoding="utf-8").strip(), (
        "docs/cli.md is stale: python -m typer postcart.cli utils docs --name postcart --output docs/cli.md")


def test_version_and_short_help() -> None:
    """`postcart --version` names postcart's and durable-rules' versions; `-h` is help."""
    from typer.testing import CliRunner

    from postcart.cli import app

    runner = CliRunner()
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("postcart ") and "durable-rules 2.0.28" in version.output
    short = runner.invoke(app, ["evaluate", "-h"])
    assert short.exit_code == 0 and "--format" in short.output
