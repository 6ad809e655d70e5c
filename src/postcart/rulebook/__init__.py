"""The rulebook: conditions, the rule model with typed views, and loading rule files.

``postcart.rulebook.conditions`` is the condition language, ``postcart.rulebook.model`` the checked
rules and bibliography, ``postcart.rulebook.loading`` reads and checks a rules directory.
"""

from postcart.rulebook.model import (
    Ask,
    Derive,
    FactDeclaration,
    Reference,
    Rule,
    Rulebook,
    Suggest,
    Unaddressed,
    UnknownInput,
    default_rules_dir,
)

__all__ = [
    "Ask",
    "Derive",
    "FactDeclaration",
    "Reference",
    "Rule",
    "Rulebook",
    "Suggest",
    "Unaddressed",
    "UnknownInput",
    "default_rules_dir",
]
