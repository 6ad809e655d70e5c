"""Small rulebooks written to a temporary directory, for tests of the rulebook tooling."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from postcart.vocabulary import OPTIONS

REFERENCE: dict[str, Any] = {
    "key": "test_source", "label": "Test 2024", "authors": "Tester T", "title": "A test source",
    "source": "Test J 2024;1:1-2", "year": 2024, "doi": "10.1000/test.1", "status": "verified",
    "published": "2024-01-02", "verified_at": ["https://example.org/stored-page"], "checked": "2026-12-06",
}

LINK_HOSTS: dict[str, Any] = {"hosts": ["doi.org", "pubmed.ncbi.nlm.nih.gov", "www.fda.gov"]}

FACTS: dict[str, Any] = {
    "failure_timing": {"title": "failure timing", "description": "Time from infusion to failure.",
                       "values": ["very_early", "early", "late"]},
    "severe_prior_toxicity": {"title": "severe toxicity", "description": "Grade >= 3 ICANS or grade 4 CRS.",
                              "values": [True, False], "default": False},
}

DERIVE_RULES: list[dict[str, Any]] = [
    {"id": "timing.very_early", "title": "Very early failure", "diseases": ["all"],
     "when": {"field": "failure.months_since_infusion", "le": 1},
     "then": {"derive": "failure_timing", "value": "very_early"}},
    {"id": "timing.early", "title": "Early failure", "diseases": ["all"],
     "when": {"all": [{"field": "failure.months_since_infusion", "gt": 1},
                      {"field": "failure.months_since_infusion", "le": 3}]},
     "then": {"derive": "failure_timing", "value": "early"}},
    {"id": "timing.late", "title": "Late failure", "diseases": ["all"],
     "when": {"field": "failure.months_since_infusion", "gt": 3},
     "then": {"derive": "failure_timing", "value": "late"}},
    {"id": "toxicity.severe", "title": "Severe toxicity", "diseases": ["all"],
     "when": {"any": [{"field": "car_t.max_icans_grade", "ge": 3}, {"field": "car_t.max_crs_grade", "ge": 4}]},
     "then": {"derive": "severe_prior_toxicity", "value": True}},
]


def suggest(rule_id: str, option: str, verdict: str = "consider", when: Any = None,
            diseases: list[str] | None = None, **then: Any) -> dict[str, Any]:
    """A suggestion rule citing the test source."""
    rule: dict[str, Any] = {
        "id": rule_id, "title": f"Rule {rule_id}", "diseases": diseases or ["all"],
        "then": {"option": option, "verdict": verdict, "rationale": f"Rationale of {rule_id}, long enough.",
                 "citations": ["test_source"],
                 **({"evidence": {"level": "C", "basis": "off_label"}} if verdict != "not_advised" else {}), **then},
    }
    if when is not None:
        rule["when"] = when
    return rule


def covering_rules(skip: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One unconditional `consider` per option for every disease, so coverage is complete."""
    return [suggest(f"cover.{option}", option) for option in OPTIONS if option not in skip]


def write_rulebook(directory: Path, rules: list[dict[str, Any]], *, facts: dict[str, Any] | None = None,
                   unaddressed: list[dict[str, str]] | None = None, version: str = "9.9") -> Path:
    """Write rulebook.yaml, references.yaml and rules.yaml (rules in the given order) into a directory."""
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"version": version, "description": "test rulebook", "unaddressed": unaddressed or []}
    (directory / "rulebook.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (directory / "references.yaml").write_text(yaml.safe_dump({"references": [REFERENCE]}, sort_keys=False))
    (directory / "link_hosts.yaml").write_text(yaml.safe_dump(LINK_HOSTS, sort_keys=False))
    body = {"facts": FACTS if facts is None else facts, "rules": rules}
    (directory / "rules.yaml").write_text(yaml.safe_dump(body, sort_keys=False))
    return directory
