"""The table reader and the batch's safety: no record lost, a bad record reported with its line, the
input never overwritten, resume keyed on content, workers reaped on SIGTERM, write errors named."""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postcart import Rulebook
from postcart.batch import cohort
from postcart.batch.cohort import run_cohort
from postcart.batch.evaluator import Evaluator
from postcart.batch.tables import read_results
from postcart.testing import COLUMNS, flat_row, random_situation

from .conftest import ROOT

_COMPARED = ("status", "bispecific_antibody", "allogeneic_hct", "clinical_trial", "rules", "missing_information",
             "error")


def _cells(situation: dict[str, Any]) -> list[str]:
    row = flat_row(situation)
    return ["" if row[column] is None else str(row[column]).lower() if isinstance(row[column], bool)
            else str(row[column]) for column in COLUMNS]


def _csv_line(cells: list[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(cells)
    return buffer.getvalue()


_CORRUPTIONS = ("stray_quote_inside", "stray_quote_opening", "quoted_newline", "bare_newline", "latin1_byte",
                "missing_cell", "extra_cell")


def _corrupt_csv(cells: list[str], kind: str, rng: random.Random) -> bytes:
    cells = list(cells)
    column = rng.randrange(1, len(cells))
    if kind == "stray_quote_inside":
        cells[column] = cells[column] + '5\'11"'
        return (",".join(cells) + "\n").encode()
    if kind == "stray_quote_opening":
        cells[column] = '"' + cells[column]
        return (",".join(cells) + "\n").encode()
    if kind == "quoted_newline":
        cells[column] = cells[column] + "\nmore"
        return _csv_line(cells).encode()
    if kind == "bare_newline":
        cells[column] = cells[column] + "\nmore"
        return (",".join(cells) + "\n").encode()
    if kind == "latin1_byte":
        return (",".join(cells) + "\n").encode().replace(b"p", b"\xe9p", 1)
    if kind == "missing_cell":
        return (",".join(cells[:-1]) + "\n").encode()
    return (",".join([*cells, "extra"]) + "\n").encode()


def _corrupt_jsonl(record: dict[str, Any], kind: str, rng: random.Random) -> bytes:
    text = json.dumps(record)
    if kind.startswith("stray_quote"):
        return (text[:-1] + ', "ecog"' + "}\n").encode()
    if kind.endswith("newline"):
        cut = rng.randrange(1, len(text) - 1)
        return (text[:cut] + "\n" + text[cut:] + "\n").encode()
    if kind == "latin1_byte":
        return (text + "\n").encode().replace(b"p", b"\xe9p", 1)
    if kind == "missing_cell":
        return (json.dumps({k: v for k, v in record.items() if k != "fitness"}) + "\n").encode()
    return (json.dumps({**record, "extra": 1}) + "\n").encode()


@pytest.fixture(scope="module")
def direct(rulebook: Rulebook) -> Any:
    evaluator = Evaluator(rulebook, cache=False)
    yield evaluator
    evaluator.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), count=st.integers(3, 25), table=st.sampled_from(["csv", "jsonl"]),
       corruptions=st.lists(st.tuples(st.integers(0, 24), st.sampled_from(_CORRUPTIONS)), max_size=4),
       bom=st.booleans(), newline=st.sampled_from(["\n", "\r\n", "\r"]))
def test_broken_tables_lose_no_record_and_keep_every_untouched_row(
        tmp_path: Path, rulebook: Rulebook, direct: Evaluator, seed: int, count: int, table: str,
        corruptions: list[tuple[int, str]], bom: bool, newline: str) -> None:
    """Stray quotes, line breaks, BOM, CRLF or bare-CR lines (CSV), undecodable bytes, missing and extra
    cells: records read = rows written; every untouched record is evaluated exactly as directly, and its
    ``line`` is the file line it starts on; cached rows = direct rows."""
    if table == "jsonl" and newline == "\r":
        newline = "\n"  # JSON Lines separates records with LF (CRLF tolerated); bare CR is CSV-only
    rng = random.Random(seed)
    situations = [random_situation(rng, index) for index in range(count)]
    broken = {index: kind for index, kind in corruptions if index < count}
    body = b""
    starts: dict[str, int] = {}
    line = 2 if table == "csv" else 1
    for index, situation in enumerate(situations):
        if table == "csv":
            piece = _corrupt_csv(_cells(situation), broken[index], rng) if index in broken else \
                (",".join(_cells(situation)) + "\n").encode()
        else:
            piece = _corrupt_jsonl(situation, broken[index], rng) if index in broken else \
                (json.dumps(situation) + "\n").encode()
        starts[situation["patient_id"]] = line
        line += piece.count(b"\n")
        body += piece
    if table == "csv":
        body = (",".join(COLUMNS) + "\n").encode() + body
    if newline != "\n":
        body = body.replace(b"\n", newline.encode())
    if bom:
        body = b"\xef\xbb\xbf" + body
    source = tmp_path / f"in-{seed}-{count}.{table}"
    source.write_bytes(body)
    cached_out, direct_out = tmp_path / f"cached-{seed}.jsonl", tmp_path / f"direct-{seed}.jsonl"
    summary = run_cohort(source, cached_out, rulebook, chunk_size=7)
    run_cohort(source, direct_out, rulebook, chunk_size=7, cache=False)
    rows = read_results(cached_out)
    assert summary.records_read == summary.rows == len(rows) == summary.ok + summary.invalid + summary.error
    assert rows == read_results(direct_out)
    assert count - len(broken) <= len(rows)
    by_id: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_id.setdefault(str(row["patient_id"]), []).append(row)
    for index, situation in enumerate(situations):
        if index in broken:
            continue
        (row,) = by_id[situation["patient_id"]]
        expected = direct.row(row["row"], situation)
        assert row["status"] == "ok", row["error"]
        assert row["line"] == starts[situation["patient_id"]], (row, newline)
        assert {key: row[key] for key in _COMPARED} == {key: expected[key] for key in _COMPARED}


def test_a_stray_quote_costs_one_row_not_the_rest_of_the_file(tmp_path: Path, rulebook: Rulebook) -> None:
    """One cell opening a quote that never closes (with 200 KiB after it) in 3,000 rows: 3,000 rows out,
    the bad one reported with its line (it once glued every following line into one record, or crashed)."""
    rng = random.Random(4)
    situations = [random_situation(rng, index) for index in range(3000)]
    lines = [",".join(COLUMNS)] + [",".join(_cells(situation)) for situation in situations]
    lines[11] = lines[11].replace(",LBCL,", ',"LBCL,', 1) if ",LBCL," in lines[11] else '"' + lines[11]
    source = tmp_path / "quote.csv"
    source.write_text("\n".join(lines) + "\n")
    summary = run_cohort(source, tmp_path / "out.csv", rulebook)
    rows = read_results(tmp_path / "out.csv")
    assert (summary.records_read, summary.rows, len(rows)) == (3000, 3000, 3000)
    assert [row["row"] for row in rows if row["status"] != "ok"] == [11]
    assert rows[10]["error"].startswith("line 12: ")
    assert [row["line"] for row in rows[:13]] == list(range(2, 15))
    assert "records read 3000 = rows written 3000" in summary.text()


def test_a_file_with_bare_cr_line_breaks_reads_as_its_lf_twin(tmp_path: Path, rulebook: Rulebook) -> None:
    """Old spreadsheets end lines with a bare CR: every record is read (it once ended in an internal error),
    with the same verdicts and lines as the same table with LF line breaks."""
    rng = random.Random(9)
    text = "\n".join([",".join(COLUMNS)] + [",".join(_cells(random_situation(rng, index))) for index in range(40)])
    (tmp_path / "lf.csv").write_text(text + "\n")
    (tmp_path / "cr.csv").write_bytes((text + "\n").replace("\n", "\r").encode())
    summaries = [run_cohort(tmp_path / f"{name}.csv", tmp_path / f"{name}.jsonl", rulebook) for name in ("lf", "cr")]
    assert [summary.records_read for summary in summaries] == [40, 40]
    lf, cr = (read_results(tmp_path / f"{name}.jsonl") for name in ("lf", "cr"))
    assert cr == lf and [row["line"] for row in cr] == list(range(2, 42))


def test_output_equal_to_the_input_or_a_hard_link_is_refused(tmp_path: Path, rulebook: Rulebook) -> None:
    """--output the input (same path, another spelling, or a hard link) is refused before anything is written."""
    source = tmp_path / "in.csv"
    source.write_text(",".join(COLUMNS) + "\n" + ",".join(_cells(random_situation(random.Random(1)))) + "\n")
    before = source.read_bytes()
    link = tmp_path / "link.csv"
    os.link(source, link)
    for target in (source, tmp_path / "." / "in.csv", link):
        with pytest.raises(ValueError, match="the output is the input"):
            run_cohort(source, target, rulebook)
    assert source.read_bytes() == before


def test_resume_is_keyed_on_content_not_size_and_time(tmp_path: Path, rulebook: Rulebook,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A corrected row of the same size and modification time discards the stale parts."""
    rng = random.Random(2)
    situations = [random_situation(rng, index) for index in range(20)]
    source = tmp_path / "in.csv"
    text = ",".join(COLUMNS) + "\n" + "".join(",".join(_cells(s)) + "\n" for s in situations)
    source.write_text(text)
    target = tmp_path / "out.jsonl"

    def stop(done: int) -> None:
        if done >= 10:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_cohort(source, target, rulebook, chunk_size=10, progress=stop)
    stat = source.stat()
    ages = f",{situations[0]['age']},"
    corrected = text.replace(ages, f",{99 if situations[0]['age'] != 99 else 98},", 1)
    assert len(corrected) == len(text)
    source.write_text(corrected)
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    summary = run_cohort(source, target, rulebook, chunk_size=10)
    assert summary.resumed_rows == 0 and "started over" in summary.text()


def test_a_failed_write_names_the_path(tmp_path: Path, rulebook: Rulebook, monkeypatch: pytest.MonkeyPatch) -> None:
    """Disk full while writing a part: ValueError with the file's path and the reason (exit 2), no traceback."""
    source = tmp_path / "in.csv"
    source.write_text(",".join(COLUMNS) + "\n" + ",".join(_cells(random_situation(random.Random(1)))) + "\n")
    original = cohort._atomic_write

    def full(path: Path, payload: bytes) -> None:
        if path.name.startswith("part-"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        original(path, payload)

    monkeypatch.setattr(cohort, "_atomic_write", full)
    with pytest.raises(ValueError, match=r"out\.csv\.parts/part-00000000\.json: cannot write: No space left"):
        run_cohort(source, tmp_path / "out.csv", rulebook)
    from typer.testing import CliRunner

    from postcart.cli import app

    result = CliRunner().invoke(app, ["batch", str(source), "--output", str(tmp_path / "out.csv")])
    assert result.exit_code == 2 and "No space left on device" in result.output


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def test_sigterm_with_two_workers_reaps_them_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    """SIGTERM during a 2-worker run: exit soon, no worker left behind, no temporary file, parts kept."""
    rng = random.Random(5)
    source = tmp_path / "in.csv"
    with open(source, "w") as handle:
        handle.write(",".join(COLUMNS) + "\n")
        for index in range(40_000):
            handle.write(",".join(_cells(random_situation(rng, index))) + "\n")
    target = tmp_path / "out.csv"
    process = subprocess.Popen([sys.executable, "-m", "postcart", "batch", str(source), "--output", str(target),
                                "--workers", "2", "--chunk-size", "500"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    parts = tmp_path / "out.csv.parts"
    while time.time() < deadline and len(list(parts.glob("part-*.csv"))) < 2:
        time.sleep(0.2)
    descendants = set()
    for child in _children(process.pid):
        descendants |= {child} | _children(child)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 128 + signal.SIGTERM, err  # 143: the conventional status for SIGTERM
    assert "interrupted" in err
    time.sleep(1.5)
    alive = {pid for pid in descendants if Path(f"/proc/{pid}").exists()
             and "Z" not in (Path(f"/proc/{pid}") / "stat").read_text().rsplit(")", 1)[1].split()[0]}
    assert not alive, f"left behind: {alive}"
    assert not list(tmp_path.glob(".*.tmp")) and not list(parts.glob(".*.tmp"))
    assert not target.exists() and list(parts.glob("part-*.csv"))


def test_workers_exit_when_the_parent_is_killed(tmp_path: Path) -> None:
    """kill -9 of the parent: its worker processes notice and exit (no orphans holding memory)."""
    rng = random.Random(6)
    source = tmp_path / "in.csv"
    with open(source, "w") as handle:
        handle.write(",".join(COLUMNS) + "\n")
        for index in range(40_000):
            handle.write(",".join(_cells(random_situation(rng, index))) + "\n")
    process = subprocess.Popen([sys.executable, "-m", "postcart", "batch", str(source), "--output",
                                str(tmp_path / "out.csv"), "--workers", "2", "--chunk-size", "500"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / "out.csv.parts"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(parts.glob("part-*.csv"))) < 2:
        time.sleep(0.2)
    descendants = set()
    for child in _children(process.pid):
        descendants |= {child} | _children(child)
    process.kill()
    process.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in descendants):
        time.sleep(0.3)
    alive = {pid for pid in descendants if Path(f"/proc/{pid}").exists()}
    assert descendants and not alive, f"orphans: {alive}"
