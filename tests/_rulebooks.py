"""Small rulebooks written to a temporary directory, for tests that must not depend on the bundled rules."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from postcart.vocabulary import DISEASES, OPTIONS

RULES = Path(__file__).resolve().parents[1] / "rules"


def citation_key() -> str:
    """A key of the real bibliography (preferring a verified entry), so test rules cite a real source."""
    entries = yaml.safe_load((RULES / "references.yaml").read_text(encoding="utf-8"))["references"]
    verified = [entry["key"] for entry in entries if entry.get("status") == "verified"]
    return (verified or [entries[0]["key"]])[0]


def write_rulebook(directory: Path, rules: str, version: str = "test-1",
                   covered: tuple[str, ...] | None = None) -> Path:
    """A rules directory with the real bibliography and the given rule file (``CITE`` = a verified key).

    With ``covered`` (the options the active rules address for every disease), every other disease x
    option cell is listed as deliberately unaddressed, so that ``postcart check`` passes its coverage test.
    """
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(RULES / "references.yaml", directory / "references.yaml")
    shutil.copy(RULES / "link_hosts.yaml", directory / "link_hosts.yaml")
    meta: dict[str, object] = {"version": version}
    if covered is not None:
        meta["unaddressed"] = [{"disease": disease, "option": option, "reason": "Not addressed by this test rulebook."}
                               for disease in DISEASES for option in OPTIONS if option not in covered]
    (directory / "rulebook.yaml").write_text(yaml.safe_dump(meta, sort_keys=False), encoding="utf-8")
    # every test rule carries an evidence grade (required for recommended/consider, harmless on not_advised)
    graded = rules.replace("citations: [CITE]}", "citations: [CITE], evidence: {level: C, basis: off_label}}")
    (directory / "test_rules.yaml").write_text(graded.replace("CITE", citation_key()), encoding="utf-8")
    return directory
