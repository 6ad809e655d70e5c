"""Every scenario of every bundled feature file (postcart/governance/features/), run by pytest-bdd with the
clinical step library."""

from pytest_bdd import scenarios

from postcart.governance.features import FEATURES_DIR

scenarios(str(FEATURES_DIR))
