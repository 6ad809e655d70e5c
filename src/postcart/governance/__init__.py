"""Governance of the rulebook: ``check`` (lint and proofs), ``catalogue`` (the rules in words),
``diff`` (what a rules change changes) and ``review`` (the clinicians' sign-off report)."""
