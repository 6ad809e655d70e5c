"""The review page's inline style sheet (screen and print) and script (decisions, storage, export).

Kept apart from the page's HTML so each reads on its own; neither fetches anything.
"""

from __future__ import annotations

import json
import math

__all__ = ["CSS", "SCRIPT"]

CSS = """
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
SCRIPT = """
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
