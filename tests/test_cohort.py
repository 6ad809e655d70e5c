"""Cohort evaluation: formats, bad rows, resume, atomic output, the signature cache, parallel runs."""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from typer.testing import CliRunner

from postcart import Engine, Rulebook, evaluate, validate_situation
from postcart.assessment import build_assessment
from postcart.batch.cohort import run_cohort
from postcart.batch.evaluator import Evaluator
from postcart.batch.tables import read_results
from postcart.cli import app
from postcart.signature import SignatureScheme
from postcart.testing import COLUMNS, flat_row, random_situation, synthetic_rules
from postcart.vocabulary import OPTIONS

from .conftest import BASELINE, RULES
from .strategies import situations

# Test-only rules (never shipped) that compare every numeric field with several thresholds and every
# operator, so the signature cache is tested on more than the first slice of the bundled rulebook.
SYNTHETIC_RULES = """
rules:
  - id: zz.age.old
    title: Synthetic age threshold
    diseases: [all]
    when: {field: age, ge: 70}
    then: {option: quality_of_life_focus, verdict: consider, rationale: synthetic rule for cache tests only,
           citations: [cartron2025_bicar_glofitamab_post_cart],
           evidence: {level: C, basis: off_label}}
  - id: zz.age.young_fit
    title: Synthetic young and fit
    diseases: [LBCL, FL]
    when: {all: [{field: age, lt: 40}, {field: fitness.ecog, le: 1}]}
    then: {option: clinical_trial, verdict: consider, rationale: synthetic rule for cache tests only,
           citations: [cartron2025_bicar_glofitamab_post_cart],
           evidence: {level: C, basis: off_label}}
  - id: zz.hct_ci.high
    title: Synthetic comorbidity threshold
    diseases: [all]
    when: {field: fitness.hct_ci, gt: 3}
    then: {option: allogeneic_hct, verdict: not_advised, contraindication: true,
           rationale: synthetic rule for cache tests only, citations: [cartron2025_bicar_glofitamab_post_cart],
           evidence: {level: C, basis: off_label}}
  - id: zz.hct_ci.unknown
    title: Synthetic ask for comorbidity
    diseases: [all]
    when: {field: fitness.hct_ci, known: false}
    then: {ask: fitness.hct_ci, why: synthetic question for cache tests}
  - id: zz.crs.exactly_three
    title: Synthetic equality on a grade
    diseases: [all]
    when: {field: car_t.max_crs_grade, eq: 3}
    then: {option: second_car_t_infusion, verdict: not_advised, contraindication: true,
           rationale: synthetic rule for cache tests only, citations: [cartron2025_bicar_glofitamab_post_cart],
           evidence: {level: C, basis: off_label}}
  - id: zz.icans.some
    title: Synthetic membership on a grade
    diseases: [MM, B_ALL]
    when: {field: car_t.max_icans_grade, in: [2, 4]}
    then: {option: second_car_t_infusion, verdict: consider, rationale: synthetic rule for cache tests only,
           citations: [cartron2025_bicar_glofitamab_post_cart],
           evidence: {level: C, basis: off_label}}
  - id: zz.lines.not_two
    title: Synthetic inequality on lines
    diseases: [all]
    when: {field: history.prior_lines, ne: 2}
    then: {option: other_systemic_therapy, verdict: consider, rationale: synthetic rule for cache tests only,
           citations: [cartron2025_bicar_glofitamab_post_cart],
           evidence: {level: C, basis: off_label}}
  - id: zz.months.window
    title: Synthetic window on a float field
    diseases: [all]
    when: {any: [{field: failure.months_since_infusion, lt: 6}, {field: failure.months_since_infusion, gt: 12.5}]}
    then: {option: radiotherapy, verdict: consider, rationale: synthetic rule for cache tests only,
           citations: [cartron2025_bicar_glofitamab_post_cart],
           evidence: {level: C, basis: off_label}}
  - id: zz.bispecific.prior
    title: Synthetic list membership
    diseases: [all]
    when: {all: [{field: history.prior_bispecific, contains: CD20xCD3},
                 {not: {field: history.prior_bispecific, contains: BCMAxCD3}}]}
    then: {option: bispecific_antibody, verdict: not_advised, contraindication: true,
           rationale: synthetic rule for cache tests only, citations: [cartron2025_bicar_glofitamab_post_cart],
           evidence: {level: C, basis: off_label}}
  - id: zz.infusions.second
    title: Synthetic count threshold
    diseases: [all]
    when: {all: [{field: car_t.infusions, ge: 2}, {field: derived.failure_timing, eq: early}]}
    then: {option: alternate_target_car_t, verdict: consider, rationale: synthetic rule for cache tests only,
           citations: [cartron2025_bicar_glofitamab_post_cart],
           evidence: {level: C, basis: off_label}}
"""


@pytest.fixture(scope="module")
def synthetic_rulebook(tmp_path_factory: pytest.TempPathFactory) -> Rulebook:
    directory = tmp_path_factory.mktemp("rules")
    shutil.copytree(RULES, directory, dirs_exist_ok=True)
    (directory / "zz_synthetic.yaml").write_text(SYNTHETIC_RULES, encoding="utf-8")
    return Rulebook.load(directory)


@pytest.fixture(scope="module")
def generated_rulebook(tmp_path_factory: pytest.TempPathFactory) -> Rulebook:
    """The bundled rules plus 150 generated ones (random fields, operators and thresholds; not clinical)."""
    return Rulebook.load(synthetic_rules(tmp_path_factory.mktemp("generated") / "rules", 150))


def _situations(count: int, seed: int = 7, invalid_rate: float = 0.0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [random_situation(rng, index, invalid_rate) for index in range(count)]


def _write_csv(path: Path, situations: list[dict[str, Any]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for situation in situations:
            row = flat_row(situation)
            writer.writerow(["" if row[column] is None else row[column] for column in COLUMNS])
    return path


def _write_jsonl(path: Path, situations: list[dict[str, Any]]) -> Path:
    with open(path, "w", encoding="utf-8") as handle:
        for index, situation in enumerate(situations):
            # alternate nested records and flat dotted ones (with the list as a real list)
            record = situation if index % 2 else {k: v for k, v in flat_row(situation).items() if v is not None}
            if not index % 2 and "history.prior_bispecific" in record:
                record["history.prior_bispecific"] = record["history.prior_bispecific"].split(";")
            handle.write(json.dumps(record) + "\n")
    return path


def _write_parquet(path: Path, situations: list[dict[str, Any]]) -> Path:
    rows = [flat_row(situation) for situation in situations]
    for column in COLUMNS:  # a column with a broken cell ('bad' among integers) is stored as text
        kinds = {type(row[column]) for row in rows if row[column] is not None}
        if len(kinds - {int, float}) and len(kinds) > 1:
            for row in rows:
                row[column] = None if row[column] is None else str(row[column])
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


# --------------------------------------------------------------------------------------------------
# the cache against direct evaluation


@pytest.mark.parametrize(("which", "count"), [("bundled", 4000), ("synthetic", 4000), ("generated", 1500)])
def test_cached_rows_equal_direct_evaluation(which: str, count: int, request: pytest.FixtureRequest) -> None:
    """Rows built from what earlier engine runs showed equal a direct evaluation, rule order included."""
    chosen: Rulebook = request.getfixturevalue({"bundled": "rulebook", "synthetic": "synthetic_rulebook",
                                                "generated": "generated_rulebook"}[which])
    cached, direct = Evaluator(chosen), Evaluator(chosen, cache=False)
    try:
        situations = _situations(count, seed=11)
        for number, situation in enumerate(situations, start=1):
            assert cached.row(number, situation) == direct.row(number, situation), situation
        # direct: one run per row, plus the completions of unknown inputs evaluate() makes
        assert direct.engine_runs >= len(situations)
        assert cached.engine_runs < direct.engine_runs  # the cache really was used (hits are checked equal)
    finally:
        cached.close()
        direct.close()


_PROPERTY_EVALUATORS: dict[str, Evaluator] = {}


@given(situation=situations())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_cached_rows_equal_direct_on_boundary_values(situation: dict[str, Any], rulebook: Rulebook) -> None:
    """On Hypothesis situations (numbers on and around the rules' thresholds) cached rows equal direct ones."""
    if not _PROPERTY_EVALUATORS:  # one pair for all examples, so that later examples meet a warm cache
        _PROPERTY_EVALUATORS.update(cached=Evaluator(rulebook), direct=Evaluator(rulebook, cache=False))
    assert _PROPERTY_EVALUATORS["cached"].row(1, situation) == _PROPERTY_EVALUATORS["direct"].row(1, situation)


@pytest.mark.parametrize("cache", [False, True], ids=["direct", "cached"])
def test_rows_match_evaluate_unknowns_included(cache: bool, rulebook: Rulebook) -> None:
    """A row says what `evaluate()` says (verdicts, rules, missing information in its order), unknown inputs
    included: an option pending on an unknown input is `consider` in its column, not empty."""
    evaluator = Evaluator(rulebook, cache=cache)
    engine = Engine(rulebook)
    pending_seen = 0
    try:
        for situation in _situations(400, seed=3):
            row = evaluator.row(1, situation)
            assessment = evaluate(situation, engine)
            assert {option.option: option.verdict for option in assessment.options} == {
                name: row[name] for name in OPTIONS if row[name] is not None}, situation
            assert row["rules"] == assessment.audit.rules_fired
            assert row["missing_information"] == [item.field for item in assessment.missing_information]
            validated = validate_situation(situation)
            two_valued = build_assessment(rulebook, validated, engine.run(validated))
            pending_seen += len(assessment.options) > len(two_valued.options)
    finally:
        evaluator.close()
        engine.close()
    assert pending_seen > 0  # the comparison met options that exist only because of unknown inputs


def test_signature_separates_thresholds_and_ignores_unread_fields(synthetic_rulebook: Rulebook) -> None:
    """Values on either side of a rule threshold get different signatures; fields no rule reads do not count."""
    from postcart import validate_situation

    scheme = SignatureScheme(synthetic_rulebook)
    assert scheme.thresholds["LBCL"]["failure.months_since_infusion"] == (1, 3, 6, 12.5)

    def signature(**changes: Any) -> Any:
        situation = json.loads(json.dumps(BASELINE))
        for path, value in changes.items():
            *parents, leaf = path.split("__")
            target = situation
            for part in parents:
                target = target.setdefault(part, {})
            target[leaf] = value
        return scheme.of(validate_situation(situation))

    group_of = {rule_id: group for group in scheme.groups["LBCL"] for rule_id in group.rule_ids}
    # a rule reading a derived fact is keyed by its value, which the fact's own group determines
    assert group_of["zz.infusions.second"].fields == ("car_t.infusions", "derived.failure_timing")
    assert group_of["derived.failure_timing.early"].fields == ("failure.months_since_infusion",)
    lbcl_rules = [rule.id for rule in synthetic_rulebook.rules if "LBCL" in rule.diseases or "all" in rule.diseases]
    assert sorted(group_of) == sorted(lbcl_rules)  # every rule of the disease in exactly one group
    assert sum(len(group.rule_ids) for group in scheme.groups["LBCL"]) == len(lbcl_rules)
    assert group_of["derived.failure_timing.early"].derives == "failure_timing"
    assert group_of["zz.hct_ci.high"] is group_of["zz.hct_ci.unknown"]  # same fields read: one group
    assert group_of["follow_up.everyone"].derives is None  # reads nothing: joined another group
    assert "zz.icans.some" not in group_of  # an MM/B-ALL rule
    assert signature(failure__months_since_infusion=7) == signature(failure__months_since_infusion=12)
    assert signature(failure__months_since_infusion=12.5) != signature(failure__months_since_infusion=12.6)
    assert signature(failure__months_since_infusion=12.5) != signature(failure__months_since_infusion=12.4)
    assert signature(patient_id="other") == signature()
    assert signature(age=39) != signature(age=40)


# --------------------------------------------------------------------------------------------------
# formats


def test_cohort_round_trips_through_csv_jsonl_and_parquet(tmp_path: Path, rulebook: Rulebook) -> None:
    """The same cohort read from CSV, JSON Lines or Parquet and written to any of them gives the same rows."""
    situations = _situations(300, seed=5, invalid_rate=0.05)
    inputs = [_write_csv(tmp_path / "in.csv", situations), _write_jsonl(tmp_path / "in.jsonl", situations),
              _write_parquet(tmp_path / "in.parquet", situations)]
    results = []
    for source, suffix in zip(inputs, ["csv", "jsonl", "parquet"], strict=False):
        for target_suffix in (suffix, "csv"):
            target = tmp_path / f"out-{source.suffix[1:]}.{target_suffix}"
            summary = run_cohort(source, target, rulebook, chunk_size=64)
            assert summary.rows == 300
            results.append(read_results(target))
    def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # an error quotes the value as it arrived: '150' from a CSV cell, 150 from JSON or Parquet
        # and the file line is a line of the input: header + record in CSV, the record in JSON Lines, none in Parquet
        return [{**row, "line": None, "error": row["error"].split(":")[0] if row["error"] else None} for row in rows]

    for other in results[1:]:
        assert comparable(other) == comparable(results[0])
    rows = results[0]
    assert [row["row"] for row in rows] == list(range(1, 301))
    assert [[row["line"] for row in result] for result in results[::2]] == [
        list(range(2, 302)), list(range(1, 301)), [None] * 300]
    assert [row["patient_id"] for row in rows] == [s["patient_id"] for s in situations]
    direct = Evaluator(rulebook, cache=False)
    try:
        for row, situation in zip(rows, situations, strict=False):
            assert comparable([row]) == comparable([direct.row(row["row"], situation)])
    finally:
        direct.close()


def test_bad_rows_are_reported_counted_and_do_not_stop_the_run(tmp_path: Path, rulebook: Rulebook) -> None:
    """Invalid rows get their error with the field name in the output and in the summary; good rows are done."""
    good = flat_row(json.loads(json.dumps(BASELINE)))
    source = tmp_path / "bad.csv"
    with open(source, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        cells = ["" if good[column] is None else good[column] for column in COLUMNS]
        writer.writerow(cells)
        writer.writerow([150 if column == "age" else cell for column, cell in zip(COLUMNS, cells, strict=False)])
        writer.writerow(["ide-cel" if column == "car_t.product" else cell for column, cell in zip(COLUMNS, cells, strict=False)])
        writer.writerow(["" if column == "fitness.ecog" else cell for column, cell in zip(COLUMNS, cells, strict=False)])
        writer.writerow(cells[:5])
        writer.writerow(cells)
    summary = run_cohort(source, tmp_path / "out.jsonl", rulebook)
    rows = read_results(tmp_path / "out.jsonl")
    assert [row["status"] for row in rows] == ["ok", "invalid", "invalid", "invalid", "invalid", "ok"]
    assert (summary.rows, summary.ok, summary.invalid) == (6, 2, 4)
    assert "age" in rows[1]["error"] and "less than or equal to 120" in rows[1]["error"]
    assert rows[2]["error_fields"] == ["car_t.product"] and "ide-cel is not used for LBCL" in rows[2]["error"]
    assert rows[3]["error"].startswith("fitness.ecog: required field is missing")  # empty cell = not given
    assert "expected 27 cells" in rows[4]["error"]
    assert summary.invalid_fields == {"age": 1, "car_t.product": 1, "fitness.ecog": 1, "(record)": 1}
    assert "invalid rows by field: " in summary.text() and "age (1)" in summary.text()
    assert rows[5]["bispecific_antibody"] == evaluate(BASELINE).option("bispecific_antibody").verdict


def test_list_column_is_semicolon_separated(tmp_path: Path, rulebook: Rulebook) -> None:
    """`history.prior_bispecific` given as `CD20xCD3; CD19xCD3` is read as the list of both classes."""
    source = tmp_path / "list.csv"
    row = flat_row(json.loads(json.dumps(BASELINE)))
    row["history.prior_bispecific"] = "CD20xCD3; CD19xCD3"
    row["history.prior_lines"] = "2"
    with open(source, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerow(["" if row[column] is None else row[column] for column in COLUMNS])
    evaluator = Evaluator(rulebook)
    try:
        from postcart.batch.tables import read_chunks

        (chunk,) = read_chunks(source, 10)
        ((_, line, data),) = list(evaluator._records(chunk))
        assert line == 2
        assert data["history"] == {"prior_bispecific": ["CD20xCD3", "CD19xCD3"], "prior_lines": 2}  # converted
    finally:
        evaluator.close()


def test_csv_records_with_quoted_newlines_blank_lines_and_bad_quotes(tmp_path: Path, rulebook: Rulebook) -> None:
    """Quoted cells may hold commas and newlines; blank lines are skipped; a broken record is an invalid row."""
    good = flat_row(json.loads(json.dumps(BASELINE)))
    cells = ["" if good[column] is None else str(good[column]) for column in COLUMNS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerow(["case, with\na newline" if column == "patient_id" else cell for column, cell in zip(COLUMNS, cells, strict=False)])
    text = buffer.getvalue() + "\r\n" + ",".join(cells) + "\r\n" + '"unbalanced,' + ",".join(cells[1:]) + "\r\n"
    source = tmp_path / "quoted.csv"
    source.write_text(text, encoding="utf-8", newline="")
    summary = run_cohort(source, tmp_path / "out.jsonl", rulebook, chunk_size=2)
    rows = read_results(tmp_path / "out.jsonl")
    assert [row["status"] for row in rows] == ["ok", "ok", "invalid"]
    assert rows[0]["patient_id"] == "case, with\na newline"
    assert rows[0]["bispecific_antibody"] == rows[1]["bispecific_antibody"] is not None
    assert rows[2]["error"] == "line 6: expected 27 cells (one per column), got 1"  # the open quote ran to the end
    assert summary.invalid_fields == {"(record)": 1}


# --------------------------------------------------------------------------------------------------
# resume and atomic output


class _Stop(KeyboardInterrupt):
    pass


def test_interrupted_run_leaves_no_output_and_resumes_without_redoing_rows(
        tmp_path: Path, rulebook: Rulebook, monkeypatch: pytest.MonkeyPatch) -> None:
    """After an interruption the output does not exist; the rerun evaluates only the unfinished rows."""
    source = _write_csv(tmp_path / "in.csv", _situations(300, seed=9, invalid_rate=0.02))
    reference = tmp_path / "reference.csv"
    run_cohort(source, reference, rulebook, chunk_size=50)

    evaluated: list[int] = []
    original = Evaluator.row

    def counting(self: Evaluator, number: int, data: Any, line: int | None = None) -> dict[str, Any]:
        evaluated.append(number)
        return original(self, number, data, line)

    monkeypatch.setattr(Evaluator, "row", counting)
    target = tmp_path / "out.csv"

    def stop_after_two_chunks(done: int) -> None:
        if done >= 100:
            raise _Stop

    with pytest.raises(_Stop):
        run_cohort(source, target, rulebook, chunk_size=50, progress=stop_after_two_chunks)
    assert not target.exists()
    assert len(list((tmp_path / "out.csv.parts").glob("part-*.csv"))) == 2
    assert sorted(evaluated) == list(range(1, 101))

    evaluated.clear()
    summary = run_cohort(source, target, rulebook, chunk_size=50)
    assert sorted(evaluated) == list(range(101, 301))
    assert (summary.resumed_rows, summary.evaluated_rows, summary.rows) == (100, 200, 300)
    assert target.read_bytes() == reference.read_bytes()
    assert not (tmp_path / "out.csv.parts").exists()
    assert summary.invalid == sum(row["status"] == "invalid" for row in read_results(reference))


def test_interruption_keeps_an_existing_output_whole(tmp_path: Path, rulebook: Rulebook) -> None:
    """An interrupted rerun never truncates or half-writes an output file that is already there."""
    source = _write_csv(tmp_path / "in.csv", _situations(120, seed=2))
    target = tmp_path / "out.parquet"
    run_cohort(source, target, rulebook, chunk_size=40)
    before = target.read_bytes()

    def stop(done: int) -> None:
        if done >= 40:
            raise _Stop

    with pytest.raises(_Stop):
        run_cohort(source, target, rulebook, chunk_size=40, progress=stop)
    assert target.read_bytes() == before
    assert not list(tmp_path.glob(".out.parquet*.tmp"))


def test_parts_from_a_different_input_are_discarded(tmp_path: Path, rulebook: Rulebook) -> None:
    """Leftover parts of a run over another input are not mixed into the output: the run starts over."""
    first = _write_csv(tmp_path / "in.csv", _situations(100, seed=1))
    target = tmp_path / "out.csv"

    def stop(done: int) -> None:
        if done >= 50:
            raise _Stop

    with pytest.raises(_Stop):
        run_cohort(first, target, rulebook, chunk_size=50, progress=stop)
    _write_csv(first, _situations(100, seed=2))  # the input changed
    summary = run_cohort(first, target, rulebook, chunk_size=50)
    assert summary.resumed_rows == 0 and summary.evaluated_rows == 100
    assert "started over" in summary.text()
    assert [row["patient_id"] for row in read_results(target)] == [f"p{i:07d}" for i in range(100)]


# --------------------------------------------------------------------------------------------------
# parallel runs


def test_workers_and_dask_give_the_sequential_output(tmp_path: Path, rulebook: Rulebook) -> None:
    """`--workers 2` and a Dask cluster write byte-identical output to a sequential run."""
    from distributed import Client, LocalCluster

    source = _write_csv(tmp_path / "in.csv", _situations(1500, seed=4, invalid_rate=0.03))
    run_cohort(source, tmp_path / "sequential.csv", rulebook, chunk_size=200)
    run_cohort(source, tmp_path / "processes.csv", rulebook, chunk_size=200, workers=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        summary = run_cohort(source, tmp_path / "dask.csv", rulebook, chunk_size=200,
                             dask_address=cluster.scheduler_address)
        assert client.status == "running"
    expected = (tmp_path / "sequential.csv").read_bytes()
    assert (tmp_path / "processes.csv").read_bytes() == expected
    assert (tmp_path / "dask.csv").read_bytes() == expected
    assert summary.rows == 1500 and summary.invalid > 0


def test_cli_cohort_writes_output_and_summary(tmp_path: Path) -> None:
    """`postcart batch COHORT --output FILE` writes one row per patient and prints the counts."""
    source = _write_csv(tmp_path / "in.csv", _situations(50, seed=8, invalid_rate=0.1))
    result = CliRunner().invoke(app, ["batch", str(source), "--output", str(tmp_path / "out.parquet"),
                                      "--rules", str(RULES), "--format", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    rows = read_results(tmp_path / "out.parquet")
    assert summary["rows"] == len(rows) == 50
    assert summary["invalid"] == sum(row["status"] == "invalid" for row in rows) > 0


def test_cli_cohort_without_output_is_refused(tmp_path: Path) -> None:
    """A cohort table without --output exits 2 with a message saying what is needed."""
    source = _write_csv(tmp_path / "in.csv", _situations(3))
    result = CliRunner().invoke(app, ["batch", str(source)])
    assert result.exit_code == 2
    assert "--output" in result.output


def test_non_utf8_bytes_make_an_invalid_row_with_its_line_and_the_rest_is_read(tmp_path: Path,
                                                                              rulebook: Rulebook) -> None:
    """A latin-1 byte is reported in its own row (line, byte, column) when read; the next rows are evaluated."""
    good = flat_row(json.loads(json.dumps(BASELINE)))
    cells = ["" if good[column] is None else str(good[column]) for column in COLUMNS]
    text = ",".join(COLUMNS) + "\n" + ",".join(cells) + "\n"
    latin = ",".join("Jos\xe9" if column == "patient_id" else cell for column, cell in zip(COLUMNS, cells, strict=True))
    source = tmp_path / "latin1.csv"
    source.write_bytes(text.encode() + latin.encode("latin-1") + b"\n" + ",".join(cells).encode() + b"\n")
    summary = run_cohort(source, tmp_path / "out.csv", rulebook)
    rows = read_results(tmp_path / "out.csv")
    assert [row["status"] for row in rows] == ["ok", "invalid", "ok"]
    assert rows[1]["error"] == "line 3: not UTF-8 text (byte 0xe9 in column patient_id)"
    assert (summary.records_read, summary.rows) == (3, 3)
    result = CliRunner().invoke(app, ["batch", str(source), "--output", str(tmp_path / "out2.csv")])
    assert result.exit_code == 0 and "records read 3 = rows written 3" in result.output
