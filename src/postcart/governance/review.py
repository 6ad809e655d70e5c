"""The clinicians' review: run the feature files, show per scenario what the engine said, record sign-offs.

``postcart review --output FILE.html`` runs the Gherkin features shipped in ``postcart/governance/features/``
in this process with the clinical step library (the same files and steps the test suite runs with
pytest-bdd), collects the evidence (verdicts, citations, rules fired, rule coverage) and writes a
self-contained HTML page, the same content as Markdown, and a Cucumber JSON report. On the page a
clinician marks each scenario and each rule and exports one review file; printed, it is the paper
sign-off document. ``postcart review import FILE`` records a review file under ``reviews/`` of the rules
directory, only for the rules it was made for. The page holds only the synthetic patients of the
feature files, never a real patient's data.

The feature files are read with the official Gherkin parser (``gherkin-official``), so the report shows
each scenario as written (outline examples filled in, Background steps included).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postcart.assessment import DISCLAIMER
from postcart.engine import Engine
from postcart.governance._review_assets import CSS, SCRIPT
from postcart.governance.features import FEATURES_DIR
from postcart.governance.features.gherkin import (
    GherkinFeature,
    GherkinScenario,
    ReviewError,
    _example_text,
    read_features,
)
from postcart.rulebook import Rulebook
from postcart.rulebook import conditions as cond
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


def default_features_dir() -> Path:
    """The feature files shipped in the package (``postcart/governance/features``)."""
    return FEATURES_DIR



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
    book: Rulebook | None = None

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
               features_dir: str | os.PathLike[str] | None = None,
               rules_dir: str | os.PathLike[str] | None = None) -> ReviewResult:
    """Run the feature scenarios and write the review page, its Markdown twin and a Cucumber JSON report.

    The scenarios run in this process with the clinical step library (no pytest, no subprocess).

    Args:
        output: the HTML file to write.
        markdown: the Markdown file (default: ``output`` with suffix ``.md``).
        cucumber_json: the Cucumber JSON file (default: ``output`` with suffix ``.cucumber.json``).
        features_dir: the feature files (default: those shipped in the package).
        rules_dir: the rules the scenarios run on (default: ``$POSTCART_RULES`` or the bundled rules).

    Raises:
        ReviewError: the features are missing or unreadable, or the review tools are not installed (not:
            a scenario failed, which the report shows).
    """
    features_path = Path(features_dir) if features_dir is not None else default_features_dir()
    if not sorted(features_path.glob("*.feature")):
        raise ReviewError(f"{features_path}: no feature files here (expected *.feature files, like those of "
                          f"{default_features_dir()})")
    try:
        from postcart.governance.features.runner import run_features
    except ImportError as error:
        raise ReviewError(f"the review needs {error.name or 'a package'} to run the feature files: "
                          "pip install 'postcart[review]'") from None
    features = read_features(features_path)
    html_path = Path(output)
    md_path = Path(markdown) if markdown is not None else html_path.with_suffix(".md")
    cucumber_path = (Path(cucumber_json) if cucumber_json is not None
                     else html_path.with_name(html_path.stem + ".cucumber.json"))
    book = Rulebook.load(rules_dir)
    with Engine(book) as engine:
        run = run_features(features, engine)
    complete = len(run.tracker.records) == sum(len(feature.scenarios) for feature in features)
    result = _combine(features, run.tracker.evidence(complete), run.cucumber, 1 if run.failed else 0)
    result.book = book
    cucumber_text = json.dumps(run.cucumber, indent=1, ensure_ascii=False)
    for path, text in ((html_path, render_html(result)), (md_path, render_markdown(result)),
                       (cucumber_path, cucumber_text)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        result.written.append(path)
    return result


def _reviewed_rulebook(content_hash: str) -> Rulebook:
    """The rulebook the scenarios ran on, when a result was made without it (default rules directory)."""
    book = Rulebook.load()
    if book.content_hash != content_hash:
        raise ReviewError(f"the features ran on rulebook {content_hash[:12]} but {book.directory} holds "
                          f"{book.content_hash[:12]}: pass the rules the features ran on")
    return book


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

def _e(text: Any) -> str:
    return html.escape(str(text))


def _tags(tags: tuple[str, ...] | list[str]) -> str:
    return " ".join(f"<code>{_e(tag)}</code>" for tag in tags)


def _review_data(result: ReviewResult) -> dict[str, Any]:
    """What the page's script needs: the rulebook identity, each rule's version and hash, each scenario."""
    book = _book(result)
    return {
        "rulebook": {"version": book.version, "content_hash": book.content_hash},
        "rules": [{"id": rule.id, "version": rule.version, "content_hash": rule.content_hash}
                  for rule in book.rules],
        "scenarios": [{"id": view.gherkin.review_id, "name": view.gherkin.name} for view in result.scenarios.values()],
    }


def _book(result: ReviewResult) -> Rulebook:
    if result.book is None:
        result.book = _reviewed_rulebook(result.rulebook["content_hash"])
    return result.book


def render_html(result: ReviewResult) -> str:
    """The self-contained review page: inline styles and script, nothing fetched, no server.

    On screen: the scenarios with what postcart said, each with agree/disagree and a comment, and the
    rule coverage table with approve/request change per rule; what is typed is kept in the browser
    (localStorage, per rulebook hash) and exported as one review file. Printed: the sign-off document
    (per disease, each rule in words with verdict, evidence and references, its scenarios, a signature).
    """
    book = result.rulebook
    data = json.dumps(_review_data(result), ensure_ascii=False).replace("</", "<\\/")
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>postcart: clinical review of the feature specifications</title>",
        f"<style>{CSS}</style></head><body>",
        "<div class='screen-only'>",
        "<h1>postcart: clinical review of the feature specifications</h1>",
        (f"<p class='meta'>Generated {_e(result.generated)} · rulebook version <b>{_e(book['version'])}</b> · "
         f"content hash <code>{_e(book['content_hash'])}</code> · {book['rules']} rules</p>"),
        (f"<p><b>{result.passed} of {len(result.scenarios)} scenarios pass.</b> {_e(result.summary)}."
         + (f" <span class='bad'>Rules never exercised: {_e(', '.join(result.uncovered))}.</span>"
            if result.uncovered else " Every rule was exercised by at least one scenario.") + "</p>"),
        ("<p class='small'>Each scenario below is a clinical statement written in plain words (the grey box), "
         "checked against the engine on every run. Under it: what postcart said for that patient: each "
         "option's verdict, rationale and sources (✔ marks the options the scenario checks), the "
         "information it asked for, and the rules that fired. Please mark each scenario (agree or "
         "disagree, with a comment), approve each rule or request a change in the "
         "<a href='#coverage'>rule table</a>, then export your review at the <a href='#signoff'>sign-off</a>. "
         "What you type stays in this browser until you export it; printing gives the paper sign-off "
         "document.</p>"),
        "<p id='review-status'></p>",
        "<h2>Contents</h2><ul>",
    ]
    for feature in result.features:
        views = [result.scenarios[s.key] for s in feature.scenarios]
        failed = sum(1 for v in views if v.outcome != "passed")
        flag = f" <span class='bad'>({failed} failing)</span>" if failed else ""
        out.append(f"<li><a href='#f-{_e(Path(feature.file).stem)}'>{_e(feature.name)}</a> "
                   f"· {len(views)} scenarios{flag}</li>")
    out.append("<li><a href='#coverage'>Rules: coverage and decisions</a></li>"
               "<li><a href='#signoff'>Sign-off and export</a></li></ul>")
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
    out.append("</div>")
    from postcart.governance.signoff import print_document  # the sign-off builds on this module

    out.append(print_document(result))
    out.append(f"<script type='application/json' id='review-data'>{data}</script>")
    out.append(f"<script>{SCRIPT}</script>")
    out.append("</body></html>")
    return "\n".join(out)


def _decision_box(kind: str, item_id: str, choices: tuple[tuple[str, str], ...], prompt: str) -> str:
    name = _e(f"{kind}|{item_id}")
    radios = "".join(f"<label><input type='radio' name='{name}' value='{value}' data-kind='{kind}' "
                     f"data-id='{_e(item_id)}' data-field='decision'> {words}</label>" for value, words in choices)
    return (f"<div class='decide screen-only' data-box='{name}'>{radios}"
            f"<textarea data-kind='{kind}' data-id='{_e(item_id)}' data-field='comment' "
            f"placeholder='{_e(prompt)}'></textarea></div>")


_SCENARIO_CHOICES = (("agree", "I agree"), ("disagree", "I disagree"))
_RULE_CHOICES = (("approve", "Approve"), ("request_change", "Request a change"))


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
    parts.append(_decision_box("scenarios", scenario.review_id, _SCENARIO_CHOICES,
                               "Comment on this scenario (what you would expect instead, what is missing)"))
    parts.append("</section>")
    return "\n".join(parts)


def _scenario_names(result: ReviewResult) -> dict[str, tuple[str, str]]:
    names = {}
    for view in result.scenarios.values():
        if view.evidence:
            names[view.evidence["nodeid"]] = (view.anchor, view.gherkin.name)
    return names


def _coverage_html(result: ReviewResult) -> str:
    names = _scenario_names(result)
    book = _book(result)
    rows = ["<h2 id='coverage'>Rules: coverage and decisions</h2>",
            (f"<p>{_e(result.summary)}. A rule <i>fired</i> when the engine applied it to a scenario's "
             "patient; it was <i>checked</i> when a Then step asserted the verdict, question or derived fact "
             "it produces. Approve each rule at its current version, or request a change and say which.</p>"),
            "<table><tr><th>Rule</th><th>What it does</th><th>Fired in</th><th>Checked in</th></tr>"]
    for rule in result.rules:
        fired = ", ".join(f"<a href='#{_e(names[n][0])}'>{_e(names[n][1])}</a>"
                          for n in rule["fired_in"][:4] if n in names)
        if len(rule["fired_in"]) > 4:
            fired += f" and {len(rule['fired_in']) - 4} more"
        fired = fired or "<span class='bad'>never fired</span>"
        loaded = book.rule(rule["id"])
        when = "always" if loaded.condition is None else cond.render(loaded.condition, book.label)
        rows.append(f"<tr id='r-{_e(rule['id'])}'><td><code>{_e(rule['id'])}</code> v{loaded.version}<br>"
                    f"<span class='small'>{_e(rule['file'])}:{rule['line']}</span></td>"
                    f"<td>{_e(rule['title'])}<br><span class='small'>{_e(rule['kind'])}; when {_e(when)}</span></td>"
                    f"<td>{fired}</td><td>{len(rule['asserted_in']) or '-'}</td></tr>"
                    f"<tr class='screen-only'><td colspan='4'>"
                    f"{_decision_box('rules', rule['id'], _RULE_CHOICES, 'What should change, and why')}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


_SIGNOFF = """
<h2 id='signoff'>Sign-off and export</h2>
<p>I have read the scenarios above and the verdicts, rationales and sources postcart gave for them, and
marked my decision on each rule.</p>
<table class='signoff'>
<tr><th style='width:30%'><label for='reviewer-name'>Reviewer name</label></th>
<td><input id='reviewer-name' data-kind='meta' data-field='name' autocomplete='name'></td></tr>
<tr><th><label for='reviewer-role'>Role</label></th>
<td><input id='reviewer-role' data-kind='meta' data-field='role' placeholder='e.g. consultant haematologist'></td></tr>
<tr><th><label for='review-date'>Date</label></th><td><input id='review-date' type='date' data-kind='meta' data-field='date'></td></tr>
<tr><th><label for='review-by'>Approvals to be reviewed again by</label></th>
<td><input id='review-by' type='date' data-kind='meta' data-field='review_by'></td></tr>
<tr><th><label for='review-comment'>General comments, scenarios to change or add (in plain words)</label></th>
<td><textarea id='review-comment' data-kind='meta' data-field='comment' rows='4'></textarea></td></tr>
</table>
<p><button type='button' id='export-review'>Export my review (JSON file)</button>
<button type='button' id='start-over'>Start over</button> <span id='export-message'></span></p>
<p class='small'>The file names this rulebook's version and content hash and each rule's version and hash, so
it cannot be recorded against rules that changed after you read them. The rules committee records it with
<code>postcart review import FILE</code>.</p>
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
    out += [("Written by `postcart review --output review.html` beside the HTML page, for the rulebook hash "
             "above. ✔ marks the options a scenario checks; their rationale follows the table."), ""]
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

