"""Every scenario of every feature file in this directory, run by pytest-bdd with the clinical step library."""

from pytest_bdd import scenarios

scenarios(".")
