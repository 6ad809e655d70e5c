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
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postcart.assessment import DISCLAIMER
from postcart.engine import Engine
from postcart.errors import PostcartError, RuleDefinitionError
from postcart.governance.features import FEATURES_DIR
from postcart.rulebook import Rule, Rulebook
from postcart.rulebook import conditions as cond
from postcart.rulebook.loading import REVIEWS_DIR
from postcart.rulebook.model import RecordedReview, review_checksum
from postcart.vocabulary import DISEASES, disease_name, option_name

__all__ = [
    "GherkinFeature",
    "GherkinScenario",
    "ReviewError",
    "ReviewRefused",
    "ReviewResult",
    "default_features_dir",
    "import_review",
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
    step_lines: tuple[int, ...] = ()

    @property
    def review_id(self) -> str:
        """How a review file names the scenario: ``file:line``, plus the example row of an outline."""
        row = f" [{_example_text(self)}]" if self.example else ""
        return f"{self.feature_file}:{self.line}{row}"

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
    """The feature files shipped in the package (``postcart/governance/features``)."""
    return FEATURES_DIR


def read_features(directory: str | os.PathLike[str]) -> list[GherkinFeature]:
    """Parse every ``*.feature`` file of a directory with the official Gherkin parser.

    Raises:
        ReviewError: a file does not parse (the message names the file and the parser's line and reason).
    """
    try:
        from gherkin.errors import CompositeParserException, ParserException
        from gherkin.parser import Parser
        from gherkin.pickles.compiler import Compiler
    except ImportError:
        raise ReviewError("reading feature files needs gherkin-official: pip install 'postcart[review]'") from None

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
    step_lines: dict[str, int] = {}                            # step id -> line in the file

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
                        step_lines[step["id"]] = step["location"]["line"]
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
            step_lines=tuple(step_lines.get(step["astNodeIds"][0], 0) for step in pickle["steps"]),
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
_CSS = """
body{font-family:Georgia,'Times New Roman',serif;max-width:62rem;margin:2rem auto;padding:0 1rem;color:#1d1d1d;
line-height:1.45}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:2px solid #345;padding-bottom:.2rem;margin-top:2.5rem}
h3{color:#345;margin-top:1.8rem}h4{margin:.2rem 0}
.meta,.small{color:#555;font-size:.9rem}
.scenario{border:1px solid #ccd;border-radius:6px;padding:.8rem 1rem;margin:1rem 0}
.badge{display:inline-block;padding:.05rem .5rem;border-radius:4px;font:bold .8rem sans-serif;color:#fff}
.passed{background:#2e7d32}.failed,.not-run{background:#c62828}
.gherkin{background:#f6f7f9;border-left:4px solid #99a;padding:.5rem .8rem;font:.92rem/1.5 Menlo,Consolas,monospace;
white-space:pre-wrap;margin:.6rem 0}
.kw{font-weight:bold;color:#345}.bad{color:#c62828}
table{border-collapse:collapse;width:100%;margin:.5rem 0;font-size:.92rem}
th,td{border:1px solid #ccd;padding:.3rem .5rem;vertical-align:top;text-align:left}th{background:#eef}
.v-recommended{color:#1b5e20;font-weight:bold}.v-consider{color:#8a6d00;font-weight:bold}
.v-not_advised{color:#b71c1c;font-weight:bold}
.decide{border:1px dashed #99a;padding:.4rem .6rem;margin-top:.6rem;background:#fffdf3;font:.9rem sans-serif}
.decide label{margin-right:1rem}.decide textarea{width:100%;box-sizing:border-box;min-height:2.4rem;margin-top:.3rem}
.decide.agree{border-color:#2e7d32}.decide.disagree,.decide.request_change{border-color:#c62828;background:#fdecea}
.decide.approve{border-color:#2e7d32;background:#edf7ed}
.signoff input,.signoff textarea{width:100%;box-sizing:border-box;font:inherit}
#review-status{font:bold .95rem sans-serif;margin:.5rem 0}#export-message{font:.9rem sans-serif}
.failure{background:#fdecea;padding:.5rem;white-space:pre-wrap;font-size:.85rem}
code{font-size:.88em}
.print-only{display:none}
@media print{
@page{size:Letter;margin:12mm 13mm}
.screen-only{display:none!important}.print-only{display:block}
body{max-width:none;margin:0;padding:0;font-size:8.6pt;line-height:1.28}
h1{font-size:14pt;margin:0 0 2pt}h2{font-size:11pt;margin:8pt 0 3pt;border-bottom:1pt solid #345;
break-after:avoid}a{color:inherit;text-decoration:none}
.p-rule{break-inside:avoid;border-top:.5pt solid #bbb;padding:2.5pt 0 1.5pt}
.p-rule p{margin:0}.p-head{font-weight:bold}.p-id{font:7.5pt monospace;color:#444}
.p-box{float:right;font:8pt sans-serif}.p-mark{font-weight:bold}
.p-why{font-size:8pt;color:#333}.p-refs,.p-scen{font-size:7.8pt;color:#222}.doi{font-family:monospace}
.p-sign{break-inside:avoid}.p-sign td{height:16pt}.p-sign th{width:28%}
}
"""

#: SHA-256 round constants (fractional parts of the cube roots of the first 64 primes) and initial hash
#: (of the square roots of the first 8), computed exactly so the page can hash without a secure context.
_PRIMES = [p for p in range(2, 312) if all(p % d for d in range(2, int(p ** 0.5) + 1))][:64]


def _icbrt(n: int) -> int:
    x = int(float(n) ** (1 / 3))
    while x ** 3 > n:
        x -= 1
    while (x + 1) ** 3 <= n:
        x += 1
    return x


_SHA_K = [_icbrt(p << 96) & 0xFFFFFFFF for p in _PRIMES]
_SHA_H = [math.isqrt(p << 64) & 0xFFFFFFFF for p in _PRIMES[:8]]

#: The page's script: decisions kept in localStorage (keyed by the rulebook hash), the review file built,
#: checksummed (same canonical JSON and SHA-256 as :func:`postcart.rulebook.model.review_checksum`) and
#: downloaded. No network, no server.
_SCRIPT = """
(function () {
'use strict';
var data = JSON.parse(document.getElementById('review-data').textContent);
var storeKey = 'postcart-review:' + data.rulebook.content_hash;
var K = @K@, H0 = @H@;
function sha256(text) {
  var bytes = new TextEncoder().encode(text), n = bytes.length, size = ((n + 9 + 63) >> 6) << 6;
  var m = new Uint8Array(size); m.set(bytes); m[n] = 0x80;
  var view = new DataView(m.buffer);
  view.setUint32(size - 4, (n * 8) >>> 0); view.setUint32(size - 8, Math.floor(n / 0x20000000));
  var h = H0.slice(), w = new Array(64);
  function rotr(x, r) { return (x >>> r) | (x << (32 - r)); }
  for (var o = 0; o < size; o += 64) {
    for (var i = 0; i < 16; i++) { w[i] = view.getUint32(o + 4 * i); }
    for (i = 16; i < 64; i++) {
      var s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >>> 3);
      var s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    var a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (i = 0; i < 64; i++) {
      var t1 = (k + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i]) >>> 0;
      var t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) >>> 0;
      k = g; g = f; f = e; e = (d + t1) >>> 0; d = c; c = b; b = a; a = (t1 + t2) >>> 0;
    }
    h[0] = (h[0] + a) >>> 0; h[1] = (h[1] + b) >>> 0; h[2] = (h[2] + c) >>> 0; h[3] = (h[3] + d) >>> 0;
    h[4] = (h[4] + e) >>> 0; h[5] = (h[5] + f) >>> 0; h[6] = (h[6] + g) >>> 0; h[7] = (h[7] + k) >>> 0;
  }
  return h.map(function (x) { return ('00000000' + x.toString(16)).slice(-8); }).join('');
}
function canonical(v) {
  if (Array.isArray(v)) { return '[' + v.map(canonical).join(',') + ']'; }
  if (v !== null && typeof v === 'object') {
    return '{' + Object.keys(v).sort().map(function (key) {
      return JSON.stringify(key) + ':' + canonical(v[key]);
    }).join(',') + '}';
  }
  return JSON.stringify(v);
}
function blank() { return {meta: {}, rules: {}, scenarios: {}}; }
function load() {
  try { var s = JSON.parse(localStorage.getItem(storeKey)); return s && s.rules ? s : blank(); }
  catch (err) { return blank(); }
}
var state = load();
function slot(el) {
  var kind = el.dataset.kind, id = el.dataset.id;
  if (kind === 'meta') { return state.meta; }
  state[kind][id] = state[kind][id] || {};
  return state[kind][id];
}
function controls() { return document.querySelectorAll('[data-kind]'); }
function restore() {
  controls().forEach(function (el) {
    var value = slot(el)[el.dataset.field];
    if (el.type === 'radio') { el.checked = value === el.value; }
    else if (value !== undefined) { el.value = value; }
  });
  var meta = state.meta, today = new Date().toISOString().slice(0, 10);
  var date = document.getElementById('review-date'), due = document.getElementById('review-by');
  if (!meta.date) { meta.date = today; date.value = today; }
  if (!meta.review_by) {
    var next = new Date(); next.setFullYear(next.getFullYear() + 1);
    meta.review_by = next.toISOString().slice(0, 10); due.value = meta.review_by;
  }
}
function mark(kind, id) {
  var box = document.querySelector('.decide[data-box="' + kind + '|' + CSS.escape(id) + '"]');
  var entry = state[kind][id] || {};
  if (box) { box.className = 'decide screen-only ' + (entry.decision || ''); }
  var mirror = document.querySelector('[data-mirror="' + kind + '|' + CSS.escape(id) + '"]');
  if (mirror) {
    var words = {approve: '☒ approved', request_change: '☒ change requested', agree: 'agreed',
                 disagree: 'disagreed'};
    mirror.textContent = (words[entry.decision] || mirror.dataset.empty) +
      (entry.comment ? ' (' + entry.comment + ')' : '');
  }
}
function refresh() {
  data.rules.forEach(function (r) { mark('rules', r.id); });
  data.scenarios.forEach(function (s) { mark('scenarios', s.id); });
  var ruled = data.rules.filter(function (r) { return (state.rules[r.id] || {}).decision; }).length;
  var seen = data.scenarios.filter(function (s) { return (state.scenarios[s.id] || {}).decision; }).length;
  var approved = data.rules.filter(function (r) { return (state.rules[r.id] || {}).decision === 'approve'; }).length;
  document.getElementById('review-status').textContent = ruled + ' of ' + data.rules.length +
    ' rules decided (' + approved + ' approved), ' + seen + ' of ' + data.scenarios.length + ' scenarios marked';
  document.querySelectorAll('[data-mirror^="meta|"]').forEach(function (el) {
    el.textContent = state.meta[el.dataset.mirror.slice(5)] || '';
  });
  var summary = document.getElementById('p-summary');
  if (summary) { summary.textContent = document.getElementById('review-status').textContent; }
}
function save() {
  try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (err) { /* private mode: keep in page */ }
  refresh();
}
document.addEventListener('input', onChange); document.addEventListener('change', onChange);
function onChange(event) {
  var el = event.target;
  if (!el.dataset || !el.dataset.kind) { return; }
  if (el.type === 'radio' && !el.checked) { return; }
  slot(el)[el.dataset.field] = el.value;
  save();
}
function entry(kind, id) { return state[kind][id] || {}; }
function build() {
  var meta = state.meta;
  var review = {
    format: 'postcart-review/1',
    reviewer: {name: (meta.name || '').trim(), role: (meta.role || '').trim()},
    date: meta.date || null, review_by: meta.review_by || null,
    rulebook: data.rulebook,
    rules: data.rules.map(function (r) {
      var e = entry('rules', r.id);
      return {id: r.id, version: r.version, content_hash: r.content_hash, decision: e.decision || null,
              comment: (e.comment || '').trim()};
    }),
    scenarios: data.scenarios.map(function (s) {
      var e = entry('scenarios', s.id);
      return {id: s.id, name: s.name, decision: e.decision || null, comment: (e.comment || '').trim()};
    }),
    comment: (meta.comment || '').trim()
  };
  review.checksum = sha256(canonical(review));
  return review;
}
function exportReview() {
  var message = document.getElementById('export-message'), review = build();
  var missing = [];
  if (review.reviewer.name.length < 2) { missing.push('your name'); }
  if (review.reviewer.role.length < 2) { missing.push('your role'); }
  if (!review.date) { missing.push('the date'); }
  if (missing.length) { message.textContent = 'Please give ' + missing.join(', ') + ' before exporting.'; return; }
  var decided = review.rules.filter(function (r) { return r.decision; }).length;
  var blob = new Blob([JSON.stringify(review, null, 1) + '\\n'], {type: 'application/json'});
  var link = document.createElement('a');
  var who = review.reviewer.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  link.href = URL.createObjectURL(blob);
  link.download = 'postcart-review-' + review.date + '-' + who + '-' + data.rulebook.content_hash.slice(0, 8) + '.json';
  document.body.appendChild(link); link.click(); link.remove();
  message.textContent = 'Exported ' + link.download + ' (' + decided + ' of ' + review.rules.length +
    ' rules decided). Send it to the rules committee: postcart review import FILE records it.';
}
function startOver() {
  if (!window.confirm('Forget every decision and comment typed on this page for this rulebook?')) { return; }
  state = blank();
  controls().forEach(function (el) { if (el.type === 'radio') { el.checked = false; } else { el.value = ''; } });
  restore(); save();
}
window.postcartReview = {build: build, sha256: sha256, canonical: canonical};
document.getElementById('export-review').addEventListener('click', exportReview);
document.getElementById('start-over').addEventListener('click', startOver);
restore(); save();
})();
""".replace("@K@", json.dumps(_SHA_K)).replace("@H@", json.dumps(_SHA_H))


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
        f"<style>{_CSS}</style></head><body>",
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
    out.append(_print_document(result))
    out.append(f"<script type='application/json' id='review-data'>{data}</script>")
    out.append(f"<script>{_SCRIPT}</script>")
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
            "<table><tr><th>Rule</th><th>What it does</th><th>Fired in</th><th>Checked in</th>"
            "<th style='width:30%'>Your decision</th></tr>"]
    for rule in result.rules:
        fired = ", ".join(f"<a href='#{_e(names[n][0])}'>{_e(names[n][1])}</a>"
                          for n in rule["fired_in"][:4] if n in names)
        if len(rule["fired_in"]) > 4:
            fired += f" and {len(rule['fired_in']) - 4} more"
        fired = fired or "<span class='bad'>never fired</span>"
        version = book.rule(rule["id"]).version
        rows.append(f"<tr id='r-{_e(rule['id'])}'><td><code>{_e(rule['id'])}</code> v{version}<br>"
                    f"<span class='small'>{_e(rule['file'])}:{rule['line']}</span></td>"
                    f"<td>{_e(rule['title'])}<br><span class='small'>{_e(rule['kind'])}</span></td>"
                    f"<td>{fired}</td><td>{len(rule['asserted_in']) or '-'}</td>"
                    f"<td>{_decision_box('rules', rule['id'], _RULE_CHOICES, 'What should change, and why')}</td></tr>")
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


def _reference_text(book: Rulebook, key: str) -> str:
    """A reference as printed: label and the DOI (or PMID, or address) in plain text, not only a link."""
    reference = book.references[key]
    if reference.doi:
        where = f"doi:<span class='doi'>{_e(reference.doi)}</span>"
    elif reference.pmid:
        where = f"PMID {_e(reference.pmid)}"
    elif reference.url:
        where = f"<span class='doi'>{_e(reference.url)}</span>"
    else:
        where = _e(reference.source)
    return f"{_e(reference.label)}, {where}"


def _what_it_does(book: Rulebook, rule: Rule) -> str:
    if rule.suggestion is not None:
        suggestion = rule.suggestion
        verdict = _VERDICT[suggestion.verdict] + (" (contraindication)" if suggestion.contraindication else "")
        return (f"{_e(option_name(suggestion.option))}: <span class='p-mark v-{_e(suggestion.verdict)}'>"
                f"{_e(verdict)}</span>")
    if rule.derivation is not None:
        return f"derives {_e(book.label('derived.' + rule.derivation.derive))} = <b>{_e(rule.derivation.value)}</b>"
    if rule.question is not None:
        return f"asks for <b>{_e(book.label(rule.question.ask))}</b>"
    return ""


def _print_rule(book: Rulebook, rule: Rule, scenarios: list[str]) -> str:
    when = "always" if rule.condition is None else cond.render(rule.condition, book.label)
    parts = [f"<div class='p-rule'><span class='p-box' data-mirror='rules|{_e(rule.id)}' "
             "data-empty='☐ approve ☐ change'>☐ approve ☐ change</span>",
             f"<p><span class='p-head'>{_e(rule.title)}</span> <span class='p-id'>{_e(rule.id)} v{rule.version}"
             f" · {_e(rule.content_hash[:8])}</span></p>",
             f"<p>When {_e(when)}, then {_what_it_does(book, rule)}.</p>"]
    because = rule.suggestion.rationale if rule.suggestion else rule.question.why if rule.question else None
    if because:
        parts.append(f"<p class='p-why'>{_e(' '.join(because.split()))}</p>")
    evidence = getattr(rule, "evidence", None)
    if evidence:
        grade = getattr(evidence, "grade", evidence)
        parts.append(f"<p>Evidence: {_e(grade)}</p>")
    then = rule.suggestion or rule.question
    citations = then.citations if then is not None else ()
    if citations:
        parts.append("<p class='p-refs'>References: " + "; ".join(_reference_text(book, key) for key in citations)
                     + "</p>")
    if scenarios:
        shown = "; ".join(_e(name) for name in scenarios[:3])
        more = f" and {len(scenarios) - 3} more" if len(scenarios) > 3 else ""
        parts.append(f"<p class='p-scen'>Exercised by {len(scenarios)} scenario(s): {shown}{more}</p>")
    parts.append("</div>")
    return "".join(parts)


def _print_document(result: ReviewResult) -> str:
    """The paper sign-off document (shown only when printed): rules per disease, then a signature block."""
    book = _book(result)
    names = _scenario_names(result)
    exercised = {rule["id"]: list(dict.fromkeys(names[n][1] for n in rule["fired_in"] if n in names))
                 for rule in result.rules}
    out = ["<div class='print-only' id='signoff-document'>",
           "<h1>postcart rulebook sign-off</h1>",
           (f"<p>Rulebook version <b>{_e(book.version)}</b>, content hash <span class='doi'>{_e(book.content_hash)}"
            f"</span>; {len(book.rules)} rules, exercised by {len(result.scenarios)} feature scenarios "
            f"({result.passed} pass). Generated {_e(result.generated)}. Each rule: its condition and what it "
            "does, its sources (DOIs in full) and the scenarios that exercise it; the box on the right shows the "
            "reviewer's decision, or is ticked by hand.</p>"),
           "<p id='p-summary'></p>"]
    sections: list[tuple[str, list[Rule]]] = [
        (disease_name(disease), [rule for rule in book.rules if not rule.applies_to_all_diseases
                                 and disease in rule.diseases]) for disease in DISEASES]
    sections.append(("Every disease (shared rules)", [rule for rule in book.rules if rule.applies_to_all_diseases]))
    seen: set[str] = set()
    for title, rules in sections:
        if not rules:
            continue
        out.append(f"<h2>{_e(title)}</h2>")
        for rule in rules:
            if rule.id in seen:  # a rule of several diseases is printed once, under its first
                out.append(f"<p class='p-scen'>{_e(rule.title)} (<span class='p-id'>{_e(rule.id)}</span>): "
                           "see above.</p>")
                continue
            seen.add(rule.id)
            out.append(_print_rule(book, rule, exercised.get(rule.id, [])))
    out.append(
        "<div class='p-sign'><h2>Signature</h2><p>I have reviewed the rules above at this rulebook hash and the "
        "scenarios that exercise them; my decision on each rule is shown beside it.</p><table>"
        "<tr><th>Reviewer</th><td data-mirror='meta|name'></td></tr>"
        "<tr><th>Role</th><td data-mirror='meta|role'></td></tr>"
        "<tr><th>Date</th><td data-mirror='meta|date'></td></tr>"
        "<tr><th>To be reviewed again by</th><td data-mirror='meta|review_by'></td></tr>"
        "<tr><th>Comments</th><td data-mirror='meta|comment'></td></tr>"
        "<tr><th>Decision</th><td>☐ approved &nbsp; ☐ approved with the changes noted &nbsp; ☐ not approved</td></tr>"
        "<tr><th>Signature</th><td></td></tr></table>"
        f"<p class='p-scen'>{_e(DISCLAIMER)}</p></div>")
    out.append("</div>")
    return "\n".join(out)



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


# --------------------------------------------------------------------------------------------------
# recording a completed review


class ReviewRefused(ReviewError, ValueError):
    """A review file cannot be recorded: not a review file, altered after export, or for other rules."""


def import_review(file: str | os.PathLike[str], rules_dir: str | os.PathLike[str] | None = None) -> Path:
    """Record a review file exported by the review page under ``reviews/`` of the rules directory.

    The file must be a valid review file whose checksum matches its content, for the rulebook the
    directory holds now (same content hash, and the same rules at the same versions and hashes).

    Returns:
        The path of the recorded copy (``reviews/<date>-<reviewer>-<checksum>.json``).

    Raises:
        ReviewRefused: saying why; for a review of an earlier rulebook, which rules changed since.
        RuleDefinitionError: the rules directory itself does not load.
    """
    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReviewRefused(f"{path}: not a readable JSON review file ({error})") from None
    try:
        review = RecordedReview.model_validate(data)
    except ValueError as error:
        raise ReviewRefused(f"{path}: not a postcart review file: {error}") from None
    if review_checksum(data) != review.checksum:
        raise ReviewRefused(f"{path}: refused: the file was altered after the review page exported it (its checksum "
                            f"{review.checksum[:12]} does not match its content {review_checksum(data)[:12]})")
    book = Rulebook.load(rules_dir)
    if review.rulebook.content_hash != book.content_hash:
        raise ReviewRefused(f"{path}: refused: the review is of rulebook {review.rulebook.version} "
                            f"({review.rulebook.content_hash[:12]}), the rules directory now holds "
                            f"{book.version} ({book.content_hash[:12]}); changed since the review: "
                            + _changes_since(review, book) + ". Generate the review page again and review "
                            "the changed rules.")
    mismatched = _changes_since(review, book, none="")
    if mismatched:
        raise ReviewRefused(f"{path}: refused: the file names rulebook {book.content_hash[:12]} but its rules do "
                            f"not match that rulebook ({mismatched}): it was not produced by the review page "
                            "for these rules")
    if not any(entry.decision for entry in review.rules):
        raise ReviewRefused(f"{path}: refused: the review decides no rule (approve or request a change on "
                            "the review page, then export again)")
    target_dir = Path(book.directory or ".") / REVIEWS_DIR
    who = "".join(ch if ch.isalnum() else "-" for ch in review.reviewer.name.lower()).strip("-") or "reviewer"
    target = target_dir / f"{review.date.isoformat()}-{who}-{review.checksum[:8]}.json"
    if target.exists():
        raise ReviewRefused(f"{path}: refused: already recorded as {target}")
    target_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    try:  # the recorded copy must load with the rulebook: a review the loader refuses is not kept
        Rulebook.load(rules_dir)
    except RuleDefinitionError:
        target.unlink()
        raise
    return target


def _changes_since(review: RecordedReview, book: Rulebook, none: str = "no rule (the references, derived facts "
                   "or rulebook metadata changed)") -> str:
    """Which rules differ between a review and a rulebook: changed (with versions), added, removed."""
    seen = {entry.id: entry for entry in review.rules}
    changed, added = [], []
    for rule in book.rules:
        entry = seen.pop(rule.id, None)
        if entry is None:
            added.append(rule.id)
        elif entry.content_hash != rule.content_hash or entry.version != rule.version:
            changed.append(f"{rule.id} (version {entry.version} -> {rule.version})" if entry.version != rule.version
                           else f"{rule.id} (version {rule.version}, content changed)")
    parts = []
    if changed:
        parts.append("changed: " + ", ".join(changed))
    if added:
        parts.append("added: " + ", ".join(added))
    if seen:
        parts.append("removed: " + ", ".join(seen))
    return "; ".join(parts) if parts else none
