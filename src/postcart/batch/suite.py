"""Scenario suites: every scenario file evaluated and checked, with reports for people and CI systems.

``run_suite`` loads the scenarios (a bad one is kept as *invalid*, with its file, id and field, and the
others still run), evaluates each on the engine and checks it against its expectation
(:func:`postcart.scenarios.check`). The reports are plain functions of the result: a text summary with a
readable diff per mismatch (expected vs got, with the rules that fired), JUnit XML, a self-contained
HTML page and JSON. No clinical logic lives here.
"""

from __future__ import annotations

import html
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postcart.assessment import DISCLAIMER, Assessment
from postcart.engine import Engine
from postcart.errors import EvaluationError, Problem
from postcart.evaluation import evaluate
from postcart.render import evidence_token, not_addressed, ordered_options, summary_lines
from postcart.scenarios import Mismatch, Scenario, check, load_scenarios
from postcart.situation import flatten

__all__ = ["InvalidScenario", "ScenarioResult", "SuiteResult", "run_suite", "to_html", "to_json", "to_junit",
           "to_text"]


@dataclass(frozen=True)
class ScenarioResult:
    """One scenario's assessment and how it differs from the expectation (no mismatch: it passed)."""

    scenario: Scenario
    assessment: Assessment | None
    mismatches: tuple[Mismatch, ...]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.mismatches

    @property
    def status(self) -> str:
        return "passed" if self.passed else "failed"


@dataclass(frozen=True)
class InvalidScenario:
    """A scenario (or a whole file) that could not be loaded, with every problem found."""

    file: str
    id: str
    problems: tuple[Problem, ...]


@dataclass
class SuiteResult:
    results: list[ScenarioResult] = field(default_factory=list)
    invalid: list[InvalidScenario] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> int:
        return sum(result.passed for result in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def ok(self) -> bool:
        """True when every scenario loaded and passed (and there was at least one)."""
        return not self.failed and not self.invalid and bool(self.results)

    def summary(self) -> str:
        return (f"{len(self.results) + len(self.invalid)} scenarios: {self.passed} passed, {self.failed} failed, "
                f"{len(self.invalid)} invalid ({self.seconds:.2f} s)")


def run_suite(paths: list[str | Path], engine: Engine,
              progress: Callable[[int, int], None] | None = None) -> SuiteResult:
    """Load and run every scenario under the paths; ``progress(done, total)`` after each one."""
    started = time.perf_counter()
    load = load_scenarios(*paths)
    suite = SuiteResult()
    grouped: dict[tuple[str, str], list[Problem]] = {}
    for file, scenario_id, problem in load.invalid:
        grouped.setdefault((file, scenario_id), []).append(problem)
    suite.invalid = [InvalidScenario(file, scenario_id, tuple(problems))
                     for (file, scenario_id), problems in grouped.items()]
    total = len(load.scenarios)
    for done, scenario in enumerate(load.scenarios, start=1):
        began = time.perf_counter()
        try:
            done_assessment = evaluate(scenario.situation, engine)
            assessment: Assessment | None = done_assessment
            mismatches = tuple(check(scenario, done_assessment))
        except EvaluationError as error:
            assessment, mismatches = None, (Mismatch("evaluation", "an assessment", f"an error: {error}"),)
        suite.results.append(ScenarioResult(scenario, assessment, mismatches, time.perf_counter() - began))
        if progress:
            progress(done, total)
    suite.seconds = time.perf_counter() - started
    return suite


# --------------------------------------------------------------------------------------------------
# text


def diff(result: ScenarioResult) -> str:
    """A failed scenario as a reader wants it: what was expected, what came, which rules fired."""
    scenario = result.scenario
    lines = [f"FAIL {scenario.id} ({scenario.file})"]
    if scenario.description:
        lines.append(f"  {scenario.description.strip()}")
    for mismatch in result.mismatches:
        lines.append(f"  - {mismatch.what}")
        lines.append(f"      expected: {mismatch.expected}")
        lines.append(f"      got:      {mismatch.got}")
        if mismatch.rules:
            lines.append(f"      by rules: {', '.join(mismatch.rules)}")
    if result.assessment is not None:
        fired = result.assessment.audit.rules_fired
        lines.append(f"  rules fired: {', '.join(fired) if fired else '(none)'}")
        verdicts = ", ".join(f"{option.option}={option.verdict}" for option in result.assessment.options)
        lines.append(f"  verdicts: {verdicts or '(no option addressed)'}")
    return "\n".join(lines)


def invalid_text(invalid: InvalidScenario) -> str:
    name = invalid.id or "(file)"
    lines = [f"INVALID {name} ({invalid.file})"]
    lines += [f"  - {problem}" for problem in invalid.problems]
    return "\n".join(lines)


def to_text(suite: SuiteResult) -> str:
    """The diff of every failed or invalid scenario, then the summary line."""
    blocks = [diff(result) for result in suite.results if not result.passed]
    blocks += [invalid_text(invalid) for invalid in suite.invalid]
    if not suite.results and not suite.invalid:
        blocks.append("no scenarios found")
    blocks.append(suite.summary())
    return "\n\n".join(blocks) + "\n"


# --------------------------------------------------------------------------------------------------
# JUnit XML (the common Ant/Jenkins dialect CI systems read)


def to_junit(suite: SuiteResult) -> str:
    """JUnit XML: one testcase per scenario; mismatches are failures, invalid scenarios errors."""
    root = ET.Element("testsuites", name="postcart", tests=str(len(suite.results) + len(suite.invalid)),
                      failures=str(suite.failed), errors=str(len(suite.invalid)), time=f"{suite.seconds:.3f}")
    node = ET.SubElement(root, "testsuite", name="postcart scenarios",
                         tests=root.get("tests", "0"), failures=str(suite.failed),
                         errors=str(len(suite.invalid)), skipped="0", time=f"{suite.seconds:.3f}")
    for result in suite.results:
        case = ET.SubElement(node, "testcase", classname=_classname(result.scenario.file),
                             name=result.scenario.id, file=result.scenario.file, time=f"{result.seconds:.3f}")
        if not result.passed:
            failure = ET.SubElement(case, "failure", type="ExpectationMismatch",
                                    message="; ".join(str(mismatch) for mismatch in result.mismatches))
            failure.text = diff(result)
    for invalid in suite.invalid:
        case = ET.SubElement(node, "testcase", classname=_classname(invalid.file), name=invalid.id or "(file)",
                             file=invalid.file, time="0")
        error = ET.SubElement(case, "error", type="InvalidScenario",
                              message="; ".join(str(problem) for problem in invalid.problems))
        error.text = invalid_text(invalid)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _classname(file: str) -> str:
    path = Path(file)
    return ".".join((*path.parent.parts[-1:], path.stem)).replace(" ", "_")


# --------------------------------------------------------------------------------------------------
# JSON


def to_json(suite: SuiteResult) -> dict[str, Any]:
    """The full results: summary, and per scenario its status, mismatches and assessment."""
    return {
        "summary": {"scenarios": len(suite.results) + len(suite.invalid), "passed": suite.passed,
                    "failed": suite.failed, "invalid": len(suite.invalid), "seconds": round(suite.seconds, 3)},
        "scenarios": [
            {"id": result.scenario.id, "file": result.scenario.file, "description": result.scenario.description,
             "status": result.status,
             "mismatches": [{"what": m.what, "expected": m.expected, "got": m.got, "rules": list(m.rules)}
                            for m in result.mismatches],
             "expected": result.scenario.expected.model_dump(mode="json"),
             "assessment": result.assessment.model_dump(mode="json") if result.assessment else None}
            for result in suite.results
        ],
        "invalid": [
            {"id": invalid.id, "file": invalid.file, "status": "invalid",
             "problems": [{"location": p.location, "message": p.message, "expected": p.expected, "got": p.got}
                          for p in invalid.problems]}
            for invalid in suite.invalid
        ],
        "disclaimer": DISCLAIMER,
    }


def to_json_text(suite: SuiteResult) -> str:
    return json.dumps(to_json(suite), indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------------------------------
# HTML: one self-contained page (inline style, no script, nothing fetched)

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin:0}
.summary span{display:inline-block;margin-right:1.2em;font-weight:600}
section{border:1px solid #ccc;border-radius:6px;padding:.8em 1em;margin:1em 0}
section.failed{border-color:#c62828;background:#fff5f5}section.invalid{border-color:#ef6c00;background:#fff8ef}
.badge{display:inline-block;padding:0 .5em;border-radius:3px;color:#fff;font-size:.85em;margin-left:.5em}
.passed .badge{background:#2e7d32}.failed .badge{background:#c62828}.invalid .badge{background:#ef6c00}
table{border-collapse:collapse;margin:.5em 0;width:100%}td,th{border:1px solid #ddd;padding:.2em .5em;
text-align:left;vertical-align:top}th{background:#f3f3f3}.bad{color:#c62828;font-weight:600}
details{margin:.4em 0}code{font-size:.9em}.disclaimer{font-size:.9em;color:#555;border-top:1px solid #ccc;
padding-top:1em;margin-top:2em}
"""


def to_html(suite: SuiteResult, title: str = "postcart scenario report") -> str:
    """A page a reviewer can open offline: per scenario its situation, verdicts, citations and status."""
    esc = html.escape
    head = (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
            f"<style>{_STYLE}</style></head><body>")
    summary = (f"<p class=\"summary\"><span>passed: {suite.passed}</span><span>failed: {suite.failed}</span>"
               f"<span>invalid: {len(suite.invalid)}</span><span>{suite.seconds:.2f} s</span></p>")
    parts = [head, f"<h1>{esc(title)}</h1>", summary]
    for result in suite.results:
        parts.append(_scenario_html(result))
    for invalid in suite.invalid:
        problems = "".join(f"<li><code>{esc(p.location)}</code>: {esc(p.message)}"
                           + (f"; expected {esc(p.expected)}" if p.expected is not None else "")
                           + (f", got {esc(p.got)}" if p.got is not None else "") + "</li>"
                           for p in invalid.problems)
        parts.append(f"<section class=\"invalid\" id=\"{esc(invalid.id)}\"><h2>{esc(invalid.id or '(file)')}"
                     f"<span class=\"badge\">invalid</span></h2><p>{esc(invalid.file)}</p><ul>{problems}</ul>"
                     "</section>")
    parts.append(f"<p class=\"disclaimer\">{esc(DISCLAIMER)}</p></body></html>\n")
    return "\n".join(parts)


def _scenario_html(result: ScenarioResult) -> str:
    esc = html.escape
    scenario, assessment = result.scenario, result.assessment
    out = [f"<section class=\"{result.status}\" id=\"{esc(scenario.id)}\">",
           f"<h2>{esc(scenario.id)}<span class=\"badge\">{result.status}</span></h2>",
           f"<p>{esc(scenario.description)} <small>({esc(scenario.file)})</small></p>"]
    if result.mismatches:
        out.append("<ul>" + "".join(f"<li class=\"bad\">{esc(str(m))}</li>" for m in result.mismatches) + "</ul>")
    facts = flatten(scenario.situation)
    rows = "".join(f"<tr><td><code>{esc(path)}</code></td><td>{esc(_show(value))}</td></tr>"
                   for path, value in facts.items())
    out.append(f"<details><summary>situation</summary><table>{rows}</table></details>")
    if assessment is not None:
        expected = scenario.expected.options
        header = "<tr><th>option</th><th>verdict</th><th>expected</th><th>rules</th><th>citations</th></tr>"
        body = []
        for option in ordered_options(assessment):
            allowed = expected.get(option.option)
            bad = allowed is not None and option.verdict not in allowed
            citations = "<br>".join(_citation_html(c.label, c.doi, c.url) for c in option.citations)
            body.append(f"<tr><td>{esc(option.option)}</td><td class=\"{'bad' if bad else ''}\">"
                        f"{esc(option.verdict)}{esc(evidence_token(option))}</td>"
                        f"<td>{esc(' or '.join(allowed) if allowed else '')}</td>"
                        f"<td>{esc(', '.join(option.rules))}</td><td>{citations}</td></tr>")
        for name, reason in not_addressed(assessment):
            allowed = expected.get(name)
            bad = allowed is not None and "not_addressed" not in allowed
            body.append(f"<tr><td>{esc(name)}</td><td class=\"{'bad' if bad else ''}\">not addressed</td>"
                        f"<td>{esc(' or '.join(allowed) if allowed else '')}</td>"
                        f"<td colspan=\"2\">{esc(reason)}</td></tr>")
        summary = "<br>".join(esc(line) for line in summary_lines(assessment))
        out.append(f"<p class=\"summary-lines\">{summary}</p>")
        out.append(f"<table>{header}{''.join(body)}</table>")
        if assessment.missing_information:
            items = "".join(f"<li><code>{esc(m.field)}</code>: {esc(m.why)}</li>"
                            for m in assessment.missing_information)
            out.append(f"<p>missing information:</p><ul>{items}</ul>")
        out.append(f"<p><small>rules fired: {esc(', '.join(assessment.audit.rules_fired))}</small></p>")
    out.append("</section>")
    return "\n".join(out)


def _citation_html(label: str, doi: str | None, url: str | None) -> str:
    link = f"https://doi.org/{doi}" if doi else url
    if link:
        return f"<a href=\"{html.escape(link)}\">{html.escape(label)}</a>"
    return html.escape(label)


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return ", ".join(str(item) for item in value) or "(none)"
    return str(value)
