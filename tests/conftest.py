"""Shared fixtures: the bundled rulebook, one engine for the session, a baseline patient."""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from postcart import Engine, Rulebook

# the audit key (postcart.assessment.audit_key_path) of the test run: a temporary file, never the user's
if "POSTCART_AUDIT_KEY" not in os.environ or not os.environ["POSTCART_AUDIT_KEY"].startswith(tempfile.gettempdir()):
    os.environ["POSTCART_AUDIT_KEY"] = str(Path(tempfile.mkdtemp(prefix="postcart-audit-")) / "audit.key")

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "rules"
SCENARIOS = ROOT / "scenarios"

BASELINE: dict[str, Any] = {
    "patient_id": "test-001",
    "age": 58,
    "disease": "LBCL",
    "car_t": {"product": "axi-cel", "best_response": "CR", "max_crs_grade": 1, "max_icans_grade": 0},
    "failure": {"kind": "relapse", "months_since_infusion": 11, "target_antigen": "retained", "cd20": "positive"},
    "fitness": {"ecog": 1, "hct_ci": 2, "organ_function_adequate": True},
    "donor": "matched_unrelated",
    "goals": "disease_control",
    "trial_access": "available",
}


@pytest.fixture(scope="session")
def rulebook() -> Rulebook:
    return Rulebook.load(RULES)


@pytest.fixture(scope="session")
def engine(rulebook: Rulebook) -> Iterator[Engine]:
    with Engine(rulebook) as shared:
        yield shared


@pytest.fixture
def baseline() -> dict[str, Any]:
    """A fit LBCL patient with a late relapse after axi-cel; tests change only what they test."""
    return copy.deepcopy(BASELINE)


# Hypothesis: a fixed, reproducible run in CI (CI=true), a fresh random one elsewhere; no deadline because
# the shared 2-core machine makes single-example timings noisy.
settings.register_profile("ci", derandomize=True, max_examples=60, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile("ci" if os.environ.get("CI", "").lower() == "true" else os.environ.get("HYPOTHESIS_PROFILE", "dev"))
