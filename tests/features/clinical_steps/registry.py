"""Step registration that also remembers one example phrase per step, to suggest when a phrase is unknown."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Literal, TypeVar

from pytest_bdd import given, parsers, then, when

__all__ = ["PHRASES", "closest_phrases", "step"]

F = TypeVar("F", bound=Callable[..., object])
Kind = Literal["given", "when", "then"]

#: Example phrases of every step, by kind, in the order they were defined.
PHRASES: dict[str, list[str]] = {"given": [], "when": [], "then": []}

_DECORATORS = {"given": given, "when": when, "then": then}


def step(kind: Kind, pattern: str, *examples: str) -> Callable[[F], F]:
    """Define a step by a regular expression (named groups become arguments), with example phrases.

    The step-definition fixture lands in the module that applies the decorator, like pytest-bdd's own.
    """
    PHRASES[kind].extend(examples)
    register = _DECORATORS[kind](parsers.re(pattern), stacklevel=2)

    def decorate(func: F) -> F:
        return register(func)  # type: ignore[return-value]

    return decorate


def closest_phrases(kind: str, text: str, n: int = 3) -> list[str]:
    """The known example phrases closest to an unknown step text."""
    pool = PHRASES.get(kind) or [p for phrases in PHRASES.values() for p in phrases]
    return difflib.get_close_matches(text, pool, n=n, cutoff=0.3)
