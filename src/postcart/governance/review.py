"""The clinicians' review report: run the feature files and show, per scenario, what the engine said.

``postcart review --output FILE.html`` runs the Gherkin features of ``tests/features/`` with pytest-bdd
in a subprocess (with ``--cucumberjson``), reads the evidence the feature suite records (verdicts,
citations, rules fired, rule coverage) and writes a self-contained HTML page, the same content as
Markdown, and the Cucumber JSON. The report is for reading, annotating and signing off; it holds only the
synthetic patients of the feature files, never a real patient's data.

The feature files are read with the official Gherkin parser (``gherkin-official``), so the report shows
each scenario as written (outline examples filled in, Background steps included).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postcart.assessment import DISCLAIMER
from postcart.errors import PostcartError
from postcart.vocabulary import option_name

__all__ = [
    "GherkinFeature",
    "GherkinScenario",
    "ReviewError",
    "ReviewResult",
    "default_features_dir",
    "read_features",
    "render_html",
    "render_markdown",
    "run_review",
]


class ReviewError(PostcartError, RuntimeError):
    """The review report could not be produced (features missing, unreadable, or the run broke)."""


@dataclass(frozen=True)
class GherkinScenario:
    """One runnable scenario (one example row of an outline) as the clinician wrote it."""

    feature_file: str
    name: str
    line: int
    rule: str | None
    tags: tuple[str, ...]
    steps: tuple[tuple[str, str], ...]
    example: tuple[tuple[str, str], ...] | None = None

    @property
    def key(self) -> tuple[str, int, tuple[str, ...] | None]:
        """Matches the evidence the feature suite records: file, scenario line, example values."""
        values = tuple(value for _, value in self.example) if self.example else None
        return (self.feature_file, self.line, values)


@dataclass(frozen=True)
class GherkinFeature:
    file: str
    name: str
    description: str
    tags: tuple[str, ...]
    scenarios: tuple[GherkinScenario, ...]


def _dedent(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines())


def _example_text(scenario: GherkinScenario) -> str:
    return ", ".join(f"{key} = {value}" for key, value in scenario.example) if scenario.example else ""


def default_features_dir() -> Path:
    """``tests/features`` of this source checkout."""
    return Path(__file__).resolve().parents[3] / "tests" / "features"


def read_features(directory: str | os.PathLike[str]) -> list[GherkinFeature]:
    """Parse every ``*.feature`` file of a directory with the official Gherkin parser.

    Raises:
        ReviewError: a file does not parse (the message names the file and the parser's line and reason).
    """
    from gherkin.errors import CompositeParserException, ParserException
    from gherkin.parser import Parser
    from gherkin.pickles.compiler import Compiler

    features = []
    for path in sorted(Path(directory).glob("*.feature")):
        try:
            parsed = Parser().parse(path.read_text(encoding="utf-8"))
        except (CompositeParserException, ParserException) as error:
            raise ReviewError(f"{path.name}: not valid Gherkin: {error}") from None
        document: dict[str, Any] = dict(parsed)
        document["uri"] = path.name
        feature = document.get("feature")
        if feature is None:
            continue
        pickles: list[dict[str, Any]] = list(Compiler().compile(document))  # type: ignore[arg-type]
        features.append(_feature(path.name, dict(feature), pickles))
    return features


def _feature(file: str, feature: dict[str, Any], pickles: list[dict[str, Any]]) -> GherkinFeature:
    nodes: dict[str, tuple[dict[str, Any], str | None]] = {}   # scenario or row id -> (node, rule name)
    rows: dict[str, tuple[list[str], list[str]]] = {}          # example row id -> (header, values)
    keywords: dict[str, str] = {}                              # step id -> keyword as written

    def visit(children: list[dict[str, Any]], rule: str | None) -> None:
        for child in children:
            if "rule" in child:
                visit(child["rule"]["children"], child["rule"]["name"])
            for kind in ("background", "scenario"):
                if kind in child:
                    node = child[kind]
                    nodes[node["id"]] = (node, rule)
                    for step in node.get("steps", []):
                        keywords[step["id"]] = step["keyword"].strip()
                    for examples in node.get("examples", []):
                        header = [cell["value"] for cell in examples["tableHeader"]["cells"]]
                        for row in examples["tableBody"]:
                            rows[row["id"]] = (header, [cell["value"] for cell in row["cells"]])

    visit(feature["children"], None)
    scenarios = []
    for pickle in pickles:
        scenario, rule = nodes[pickle["astNodeIds"][0]]
        example = None
        if len(pickle["astNodeIds"]) > 1:
            header, values = rows[pickle["astNodeIds"][1]]
            example = tuple(zip(header, values, strict=True))
        steps = tuple((keywords.get(step["astNodeIds"][0], step.get("type", "")), step["text"])
                      for step in pickle["steps"])
        scenarios.append(GherkinScenario(
            feature_file=file, name=pickle["name"], line=scenario["location"]["line"], rule=rule,
            tags=tuple(tag["name"] for tag in pickle["tags"]), steps=steps, example=example,
        ))
    return GherkinFeature(file=file, name=feature["name"], description=_dedent(feature.get("description") or ""),
                          tags=tuple(tag["name"] for tag in feature["tags"]), scenarios=tuple(scenarios))


# --------------------------------------------------------------------------------------------------
# running the features


@dataclass
class ScenarioView:
    """A scenario as the report shows it: the Gherkin, the outcome and what the engine said."""

    gherkin: GherkinScenario
    anchor: str
    outcome: str = "not run"
    failure: str | None = None
    step_status: list[str] = field(default_factory=list)
    evidence: dict[str, Any] | None = None


@dataclass
class ReviewResult:
    """What one review run produced."""

    features: list[GherkinFeature]
    scenarios: dict[tuple[str, int, tuple[str, ...] | None], ScenarioView]
    rules: list[dict[str, Any]]
    rulebook: dict[str, Any]
    summary: str
    uncovered: list[str]
    exit_code: int
    generated: str
    written: list[Path] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(1 for view in self.scenarios.values() if view.outcome == "passed")

    @property
    def failed(self) -> int:
        return sum(1 for view in self.scenarios.values() if view.outcome != "passed")

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.failed == 0 and not self.uncovered


def run_review(output: str | os.PathLike[str], *, markdown: str | os.PathLike[str] | None = None,
               cucumber_json: str | os.PathLike[str] | None = None,
               features_dir: str | os.PathLike[str] | None = None) -> ReviewResult:
    """Run the feature suite and write the HTML report, its Markdown twin and the Cucumber JSON.

    Args:
        output: the HTML file to write.
        markdown: the Markdown file (default: ``output`` with suffix ``.md``).
        cucumber_json: the Cucumber JSON file (default: ``output`` with suffix ``.cucumber.json``).
        features_dir: the feature files (default: ``tests/features`` of this checkout).

    Raises:
        ReviewError: the features are missing or the test run itself broke (not: a scenario failed,
            which the report shows).
    """
    features_path = Path(features_dir) if features_dir is not None else default_features_dir()
    if not (features_path / "conftest.py").is_file():
        raise ReviewError(f"{features_path}: no feature suite here (expected tests/features of a postcart "
                          "source checkout, with its conftest.py)")
    features = read_features(features_path)
    html_path = Path(output)
    md_path = Path(markdown) if markdown is not None else html_path.with_suffix(".md")
    cucumber_path = (Path(cucumber_json) if cucumber_json is not None
                     else html_path.with_name(html_path.stem + ".cucumber.json"))
    with tempfile.TemporaryDirectory(prefix="postcart-review-") as scratch:
        exit_code = _run_pytest(features_path, Path(scratch))
        evidence_file = Path(scratch) / "scenarios.json"
        if not evidence_file.is_file():
            raise ReviewError(f"the feature run (pytest exit code {exit_code}) recorded no scenario; run "
                              f"`pytest {features_path}` to see why")
        evidence = json.loads(evidence_file.read_text(encoding="utf-8"))
        cucumber_text = (Path(scratch) / "cucumber.json").read_text(encoding="utf-8")
    result = _combine(features, evidence, json.loads(cucumber_text), exit_code)
    for path, text in ((html_path, render_html(result)), (md_path, render_markdown(result)),
                       (cucumber_path, cucumber_text)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        result.written.append(path)
    return result


def _run_pytest(features_path: Path, scratch: Path) -> int:
    root = features_path.resolve().parents[1]
    env = dict(os.environ)
    env["POSTCART_FEATURE_OUT"] = str(scratch)
    source = str(Path(__file__).resolve().parents[2])  # the directory postcart is imported from
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    command = [sys.executable, "-m", "pytest", str(features_path), "-q", "-p", "no:cacheprovider",
               f"--cucumberjson={scratch / 'cucumber.json'}"]
    completed = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, check=False)
    if completed.returncode not in (0, 1):
        tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-15:])
        raise ReviewError(f"the feature run failed to run (pytest exit code {completed.returncode}):\n{tail}")
    return completed.returncode


def _combine(features: list[GherkinFeature], evidence: dict[str, Any], cucumber: list[dict[str, Any]],
             exit_code: int) -> ReviewResult:
    statuses: dict[tuple[str, str], list[str]] = {}
    for feature in cucumber:
        for element in feature.get("elements", []):
            statuses[(Path(feature["uri"]).name, element["id"])] = [
                step["result"]["status"] for step in element.get("steps", [])]
    records = {}
    for record in evidence["scenarios"]:
        values = tuple(record["example"].values()) if record["example"] else None
        records[(record["feature_file"], record["line"], values)] = record
    views = {}
    for gherkin_feature in features:
        for index, scenario in enumerate(gherkin_feature.scenarios, start=1):
            anchor = f"{Path(gherkin_feature.file).stem}-{index}"
            view = ScenarioView(scenario, anchor)
            record = records.get(scenario.key)
            if record is not None:
                view.outcome = record["outcome"]
                view.failure = record["failure"]
                view.evidence = record
                view.step_status = statuses.get((record["feature_file"], record["item_name"]), [])
            views[scenario.key] = view
    return ReviewResult(
        features=features, scenarios=views, rules=evidence["rules"], rulebook=evidence["rulebook"],
        summary=evidence["summary"], uncovered=list(evidence["uncovered"]), exit_code=exit_code,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )


# --------------------------------------------------------------------------------------------------
# rendering

_VERDICT = {"recommended": "recommended", "consider": "to be considered", "not_advised": "not advised"}
_CSS = """
body{font-family:Georgia,'Times New Roman',serif;max-width:62rem;margin:2rem auto;padding:0 1rem;color:#1d1d1d;
line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:2px solid #345;padding-bottom:.2rem;margin-top:2.5rem}
h3{color:#345;margin-top:1.8rem}h4{margin:.2rem 0}
.meta,.small{color:#555;font-size:.9rem}
.scenario{border:1px solid #ccd;border-radius:6px;padding:.8rem 1rem;margin:1rem 0;page-break-inside:avoid}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:4px;font:bold .8rem sans-serif;color:#fff}
.passed{background:#2e7d32}.failed,.not-run{background:#c62828}
.gherkin{background:#f6f7f9;border-left:4px solid #99a;padding:.5rem .8rem;font:.92rem/1.5 Menlo,Consolas,monospace;
white-space:pre-wrap;margin:.6rem 0}
.kw{font-weight:bold;color:#345}.bad{color:#c62828}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.92rem}
th,td{border:1px solid #ccd;padding:.3rem .5rem;vertical-align:top;text-align:left}th{background:#eef}
.v-recommended{color:#1b5e20;font-weight:bold}.v-consider{color:#8a6d00;font-weight:bold}
.v-not_advised{color:#b71c1c;font-weight:bold}
.notes{border:1px dashed #99a;min-height:3rem;padding:.4rem;margin-top:.5rem;background:#fffdf3}
.notes:empty:before{content:'Reviewer notes (click to type; print to keep)';color:#999}
.signoff td{height:2rem}.failure{background:#fdecea;padding:.5rem;white-space:pre-wrap;font-size:.85rem}
code{font-size:.88em}
@media print{.notes:empty:before{content:''}a{color:inherit;text-decoration:none}}
"""


def _e(text: Any) -> str:
    return html.escape(str(text))


def _tags(tags: tuple[str, ...] | list[str]) -> str:
    return " ".join(f"<code>{_e(tag)}</code>" for tag in tags)


def render_html(result: ReviewResult) -> str:
    """The self-contained HTML review page (inline styles, no scripts, nothing fetched)."""
    book = result.rulebook
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>postcart: clinical review of the feature specifications</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>postcart: clinical review of the feature specifications</h1>",
        (f"<p class='meta'>Generated {_e(result.generated)} · rulebook version <b>{_e(book['version'])}</b> · "
         f"content hash <code>{_e(book['content_hash'])}</code> · {book['rules']} rules</p>"),
        (f"<p><b>{result.passed} of {len(result.scenarios)} scenarios pass.</b> {_e(result.summary)}."
         + (f" <span class='bad'>Rules never exercised: {_e(', '.join(result.uncovered))}.</span>"
            if result.uncovered else " Every rule was exercised by at least one scenario.") + "</p>"),
        ("<p class='small'>Each scenario below is a clinical statement written in plain words (the grey box), "
         "checked against the engine on every run. Under it: what postcart said for that patient: each "
         "option's verdict, rationale and sources (✔ marks the options the scenario checks), the "
         "information it asked for, and the rules that fired. Please read each scenario, note "
         "disagreements in its notes box, and sign off at the end.</p>"),
        "<h2>Contents</h2><ul>",
    ]
    for feature in result.features:
        views = [result.scenarios[s.key] for s in feature.scenarios]
        failed = sum(1 for v in views if v.outcome != "passed")
        flag = f" <span class='bad'>({failed} failing)</span>" if failed else ""
        out.append(f"<li><a href='#f-{_e(Path(feature.file).stem)}'>{_e(feature.name)}</a> "
                   f"· {len(views)} scenarios{flag}</li>")
    out.append("<li><a href='#coverage'>Rule coverage</a></li><li><a href='#signoff'>Sign-off</a></li></ul>")
    for feature in result.features:
        out.append(f"<h2 id='f-{_e(Path(feature.file).stem)}'>{_e(feature.name)}</h2>")
        out.append(f"<p class='meta'>{_e(feature.file)} · {_tags(feature.tags)}</p>")
        if feature.description:
            out.append(f"<p>{_e(feature.description)}</p>")
        current_rule: str | None = None
        for scenario in feature.scenarios:
            if scenario.rule != current_rule:
                current_rule = scenario.rule
                if current_rule:
                    out.append(f"<h3>Rule: {_e(current_rule)}</h3>")
            out.append(_scenario_html(result.scenarios[scenario.key]))
    out.append(_coverage_html(result))
    out.append(_SIGNOFF)
    out.append(f"<p class='small'>{_e(DISCLAIMER)} These specifications describe what the rulebook does for "
               "synthetic example patients, not what must be done for a given patient.</p>")
    out.append("</body></html>")
    return "\n".join(out)


def _scenario_html(view: ScenarioView) -> str:
    scenario = view.gherkin
    css = view.outcome.replace(" ", "-")
    parts = [f"<section class='scenario' id='{_e(view.anchor)}'>",
             f"<h4>{_e(scenario.name)} <span class='badge {css}'>{_e(view.outcome.upper())}</span></h4>",
             f"<div class='small'>line {scenario.line}"
             + (" · example: " + ", ".join(f"{_e(k)} = <b>{_e(v)}</b>" for k, v in scenario.example)
                if scenario.example else "") + f" · {_tags(scenario.tags)}</div>"]
    lines = []
    for index, (keyword, text) in enumerate(scenario.steps):
        status = view.step_status[index] if index < len(view.step_status) else ""
        mark = " <span class='bad'>✗</span>" if status == "failed" else ""
        lines.append(f"<span class='kw'>{_e(keyword)}</span> {_e(text)}{mark}")
    parts.append("<div class='gherkin'>" + "\n".join(lines) + "</div>")
    if view.failure:
        parts.append(f"<div class='failure'>{_e(view.failure)}</div>")
    evidence = (view.evidence or {}).get("assessment")
    if evidence:
        parts.append("<table><tr><th>Option</th><th>Verdict</th><th>Rationale</th><th>Sources</th>"
                     "<th>Rules</th></tr>")
        checked = {check.split(" ")[0] for check in (view.evidence or {}).get("checks", [])}
        for option in evidence["options"]:
            mark = " <span title='checked by this scenario'>✔</span>" if option["option"] in checked else ""
            sources = "<br>".join(
                (f"<a href='{_e(c['url'])}'>{_e(c['label'])}</a>" if c.get("url") else _e(c["label"]))
                for c in option["citations"])
            rules = "<br>".join(f"<a href='#r-{_e(r)}'><code>{_e(r)}</code></a>" for r in option["rules"])
            parts.append(f"<tr><td>{_e(option_name(option['option']))}{mark}</td>"
                         f"<td class='v-{_e(option['verdict'])}'>{_e(_VERDICT[option['verdict']])}</td>"
                         f"<td>{_e(option['rationale'])}</td><td>{sources}</td><td>{rules}</td></tr>")
        parts.append("</table>")
        if evidence["missing_information"]:
            asked = "".join(f"<li><code>{_e(m['field'])}</code>: {_e(m['why'])}</li>"
                            for m in evidence["missing_information"])
            parts.append(f"<div class='small'>postcart asked for:<ul>{asked}</ul></div>")
        if evidence["derived"]:
            derived = ", ".join(f"{_e(k)} = <b>{_e(v)}</b>" for k, v in evidence["derived"].items())
            parts.append(f"<div class='small'>Derived: {derived}</div>")
        fired = ", ".join(f"<a href='#r-{_e(r)}'><code>{_e(r)}</code></a>"
                          for r in (view.evidence or {}).get("rules_fired", []))
        parts.append(f"<div class='small'>Rules fired: {fired}</div>")
    parts.append("<div class='notes' contenteditable='true'></div></section>")
    return "\n".join(parts)


def _scenario_names(result: ReviewResult) -> dict[str, tuple[str, str]]:
    names = {}
    for view in result.scenarios.values():
        if view.evidence:
            names[view.evidence["nodeid"]] = (view.anchor, view.gherkin.name)
    return names


def _coverage_html(result: ReviewResult) -> str:
    names = _scenario_names(result)
    rows = ["<h2 id='coverage'>Rule coverage</h2>",
            (f"<p>{_e(result.summary)}. A rule <i>fired</i> when the engine applied it to a scenario's "
             "patient; it was <i>checked</i> when a Then step asserted the verdict, question or derived fact "
             "it produces.</p>"),
            "<table><tr><th>Rule</th><th>What it does</th><th>Fired in</th><th>Checked in</th></tr>"]
    for rule in result.rules:
        fired = ", ".join(f"<a href='#{_e(names[n][0])}'>{_e(names[n][1])}</a>"
                          for n in rule["fired_in"][:4] if n in names)
        if len(rule["fired_in"]) > 4:
            fired += f" and {len(rule['fired_in']) - 4} more"
        fired = fired or "<span class='bad'>never fired</span>"
        rows.append(f"<tr id='r-{_e(rule['id'])}'><td><code>{_e(rule['id'])}</code><br>"
                    f"<span class='small'>{_e(rule['file'])}:{rule['line']}</span></td>"
                    f"<td>{_e(rule['title'])}<br><span class='small'>{_e(rule['kind'])}</span></td>"
                    f"<td>{fired}</td><td>{len(rule['asserted_in']) or '-'}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


_SIGNOFF = """
<h2 id='signoff'>Sign-off</h2>
<p>I have read the scenarios above and the verdicts, rationales and sources postcart gave for them.</p>
<table class='signoff'>
<tr><th style='width:30%'>Reviewer (name, role)</th><td></td></tr>
<tr><th>Decision</th><td>☐ approved &nbsp; ☐ approved with the changes noted &nbsp; ☐ not approved</td></tr>
<tr><th>Scenarios to change or add (in plain words)</th><td class='notes' contenteditable='true'></td></tr>
<tr><th>Date</th><td></td></tr><tr><th>Signature</th><td></td></tr>
</table>
"""


def render_markdown(result: ReviewResult) -> str:
    """The review report as Markdown, for the repository's ``docs/``."""
    book = result.rulebook
    out = ["# postcart: clinical review of the feature specifications", "",
           (f"Generated {result.generated} · rulebook version **{book['version']}** · content hash "
            f"`{book['content_hash']}` · {book['rules']} rules"), "",
           f"**{result.passed} of {len(result.scenarios)} scenarios pass.** {result.summary}."
           + (f" Rules never exercised: {', '.join(result.uncovered)}." if result.uncovered
              else " Every rule was exercised by at least one scenario."), ""]
    out += [("Written by `postcart review --output review.html --markdown docs/feature-review.md`; a snapshot "
             "for the rulebook hash above: regenerate it after any change to the rules or features. "
             "✔ marks the options a scenario checks; their rationale follows the table."), ""]
    cited: dict[str, str | None] = {}
    for feature in result.features:
        out += [f"## {feature.name}", "", f"`{feature.file}` · " + " ".join(f"`{t}`" for t in feature.tags), ""]
        if feature.description:
            out += [feature.description, ""]
        current_rule: str | None = None
        for scenario in feature.scenarios:
            if scenario.rule != current_rule:
                current_rule = scenario.rule
                if current_rule:
                    out += [f"### Rule: {current_rule}", ""]
            view = result.scenarios[scenario.key]
            example = f" [{_example_text(scenario)}]" if scenario.example else ""
            out += [f"#### {scenario.name}{example} ({view.outcome.upper()})", "", "```gherkin"]
            out += [f"{keyword} {text}" for keyword, text in scenario.steps]
            out += ["```", ""]
            if view.failure:
                out += ["> " + line for line in view.failure.splitlines()] + [""]
            evidence = (view.evidence or {}).get("assessment")
            if evidence:
                checked = {check.split(" ")[0] for check in (view.evidence or {}).get("checks", [])}
                out += ["| option | verdict | sources | rules |", "|---|---|---|---|"]
                for option in evidence["options"]:
                    name = option_name(option["option"])
                    mark = " ✔" if option["option"] in checked else ""
                    sources = "; ".join(c["label"] for c in option["citations"])
                    for citation in option["citations"]:
                        cited.setdefault(citation["label"], citation.get("url"))
                    out.append(f"| {name}{mark} | {_VERDICT[option['verdict']]} | {sources} | "
                               + ", ".join(f"`{r}`" for r in option["rules"]) + " |")
                out.append("")
                out += [f"- **{option_name(o['option'])}, {_VERDICT[o['verdict']]}**: {o['rationale']}"
                        for o in evidence["options"] if o["option"] in checked]
                out.append("")
                if evidence["missing_information"]:
                    out.append("Asked for: " + "; ".join(f"`{m['field']}` ({m['why']})"
                                                         for m in evidence["missing_information"]))
                    out.append("")
                fired = (view.evidence or {}).get("rules_fired", [])
                out += ["Rules fired: " + ", ".join(f"`{r}`" for r in fired), ""]
    names = _scenario_names(result)
    out += ["## Sources cited", ""]
    out += [f"- [{label}]({url})" if url else f"- {label}" for label, url in sorted(cited.items())]
    out += ["", "## Rule coverage", "", "| rule | what it does | fired in | checked in |", "|---|---|---|---|"]
    for rule in result.rules:
        fired = "; ".join(names[n][1] for n in rule["fired_in"][:3] if n in names) or "**never fired**"
        if len(rule["fired_in"]) > 3:
            fired += f" (+{len(rule['fired_in']) - 3} more)"
        out.append(f"| `{rule['id']}` | {rule['title']} ({rule['kind']}) | {fired} | "
                   f"{len(rule['asserted_in']) or '-'} |")
    out += ["", f"*{DISCLAIMER}*", "", "## Sign-off", "", "Reviewer (name, role): ____________________  Date: ____________", "",
            "Decision: ☐ approved ☐ approved with the changes noted ☐ not approved", ""]
    return "\n".join(out)
