"""Batch runs: the scenario suite as a regression gate (``suite``) and patient cohorts (``cohort``)."""
