"""The examples in postcart's docstrings run and print what they say (doctests, one test per module)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import postcart

MODULES = sorted(info.name for info in pkgutil.walk_packages(postcart.__path__, "postcart.")
                 if not info.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    """Every example in the module's docstrings gives the output written beside it."""
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed in {name}"


def test_some_examples_exist() -> None:
    """The doctests are not vacuous: the vocabulary's examples at least are collected and run."""
    module = importlib.import_module("postcart.vocabulary")
    assert doctest.testmod(module).attempted >= 2
