"""The feature files (shipped in postcart/governance/features/) are valid Gherkin for the official parser and follow the suite's conventions."""

from __future__ import annotations

from pathlib import Path

import pytest
from gherkin.parser import Parser

from postcart.governance.features import FEATURES_DIR
from postcart.governance.review import ReviewError, read_features

FEATURES = FEATURES_DIR
FILES = sorted(FEATURES.glob("*.feature"))
DISEASE_TAGS = {"@lbcl", "@fl", "@mcl", "@b_all", "@mm", "@cll"}
OPTION_TAGS = {"@second_car_t_infusion", "@alternate_target_car_t", "@bispecific_antibody", "@clinical_trial",
               "@allogeneic_hct", "@quality_of_life_focus", "@radiotherapy", "@other_systemic_therapy",
               "@long_term_follow_up"}


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_feature_file_parses_with_official_gherkin_parser(path: Path) -> None:
    """gherkin-official parses the file into one feature with at least one scenario."""
    document = Parser().parse(path.read_text(encoding="utf-8"))
    feature = document["feature"]
    assert feature["name"], f"{path.name} has no feature name"
    children = [child for child in feature["children"] if "scenario" in child or "rule" in child]
    assert children, f"{path.name} has no scenario"


def test_every_scenario_names_a_disease_and_an_option() -> None:
    """Each scenario carries (itself or via its feature or Rule) one disease tag and at least one option tag."""
    untagged = []
    for feature in read_features(FEATURES):
        for scenario in feature.scenarios:
            tags = set(scenario.tags)
            if not tags & DISEASE_TAGS or not tags & OPTION_TAGS:
                untagged.append(f"{feature.file}:{scenario.line} {scenario.name}")
    assert not untagged, "scenarios without a disease or option tag:\n" + "\n".join(untagged)


def test_the_suite_has_one_feature_per_disease_and_the_cross_cutting_ones() -> None:
    """One feature file per disease plus the cross-cutting themes the clinicians asked for."""
    names = {path.stem for path in FILES}
    expected = {"lbcl", "fl", "mcl", "b_all", "mm", "cll", "antigen_loss", "prior_toxicity",
                "fitness_and_transplant", "patient_goals", "missing_information"}
    assert expected <= names, f"missing feature files: {sorted(expected - names)}"


def test_invalid_gherkin_is_refused_with_the_file_name(tmp_path: Path) -> None:
    """A feature file the official parser rejects is reported by name, not skipped."""
    (tmp_path / "broken.feature").write_text("Feature: broken\n  Scenario: one\n    Given a step\nFeature: a second feature\n")
    with pytest.raises(ReviewError, match=r"broken\.feature: not valid Gherkin"):
        read_features(tmp_path)


def test_clinician_guide_documents_every_phrase() -> None:
    """Each step of the clinical step library appears, by its example phrase, in docs/clinician-guide.md."""
    from postcart.governance.features.clinical_steps.registry import PHRASES

    guide = (Path(__file__).resolve().parents[2] / "docs" / "clinician-guide.md").read_text(encoding="utf-8")
    undocumented = [phrase for phrases in PHRASES.values() for phrase in phrases if f"`{phrase}`" not in guide]
    assert not undocumented, f"phrases missing from the clinician guide: {undocumented}"
