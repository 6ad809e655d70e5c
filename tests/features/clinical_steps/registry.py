"""Step registration: typed ``cfparse`` phrases, with example phrases kept to suggest when a phrase is unknown.

Numbers are typed by the format (``{age:d}``, ``{months:g}``); the small closed word sets of the
phrases (``{unit:Months}``, ``{who:Who}``, ``{verdict:Verdict}``...) are the types in ``TYPES``. Open
clinical words (disease, product, option) are plain ``{text}`` converted in the step, so an unknown
word fails with the known alternatives instead of "no step matches".
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Literal, TypeVar

import parse
from pytest_bdd import given, parsers, then, when

__all__ = ["PARSERS", "PHRASES", "TYPES", "closest_phrases", "step"]

F = TypeVar("F", bound=Callable[..., object])
Kind = Literal["given", "when", "then"]

#: Example phrases of every step, by kind, in the order they were defined.
PHRASES: dict[str, list[str]] = {"given": [], "when": [], "then": []}
#: The parser of every step, by kind.
PARSERS: dict[str, list[parsers.cfparse]] = {"given": [], "when": [], "then": []}

_DECORATORS = {"given": given, "when": when, "then": then}


def _words(name: str, pattern: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        return text

    convert.__name__ = name
    return parse.with_pattern(pattern)(convert)  # type: ignore[no-any-return]


#: The closed word sets the phrases use, as cfparse types.
TYPES: dict[str, Callable[[str], object]] = {
    "A": _words("A", r"an?"),
    "Months": _words("Months", r"months?"),
    "Who": _words("Who", r"he|she|they|the patient"),
    "IsAre": _words("IsAre", r"is|are"),
    "No": parse.with_pattern(r"no ")(lambda text: True),
    "Verdict": _words("Verdict", r"recommended|to be considered|considered|worth considering|not advised"),
    "Marker": _words("Marker", r"[A-Za-z][A-Za-z0-9]*"),
    "AntigenStatus": _words("AntigenStatus", r"retained|lost|not yet assessed|not known|positive|negative"),
    "Biopsy": _words("Biopsy", r"re-biopsy|the re-biopsy|the failure biopsy|the relapse biopsy"),
    "Toxicity": _words("Toxicity", r"CRS|ICANS"),
    "Persistence": _words("Persistence", r"still detectable|no longer detectable|not measured"),
    "Extent": _words("Extent", r"localized to a single site|limited to one site|widespread"),
    "RelapseOrDisease": _words("RelapseOrDisease", r"relapse|disease"),
    "Adequacy": _words("Adequacy", r"adequate|inadequate|not adequate"),
    "Transplant": _words("Transplant", r"allogeneic|autologous"),
    "TrialState": _words("TrialState", r"is available|cannot be reached"),
    "Lines": _words("Lines", r"lines?"),
    "Infusions": _words("Infusions", r"infusions?"),
    "Quoted": _words("Quoted", r'[^"]+'),
}


def step(kind: Kind, phrase: str, *examples: str) -> Callable[[F], F]:
    """Define a step by a typed ``cfparse`` phrase (fields become arguments), with example phrases.

    The step-definition fixture lands in the module that applies the decorator, like pytest-bdd's own.
    """
    PHRASES[kind].extend(examples)
    parser = parsers.cfparse(phrase, extra_types=TYPES)
    PARSERS[kind].append(parser)
    register = _DECORATORS[kind](parser, stacklevel=2)

    def decorate(func: F) -> F:
        return register(func)  # type: ignore[return-value]

    return decorate


def closest_phrases(kind: str, text: str, n: int = 3) -> list[str]:
    """The known example phrases closest to an unknown step text."""
    pool = PHRASES.get(kind) or [p for phrases in PHRASES.values() for p in phrases]
    return difflib.get_close_matches(text, pool, n=n, cutoff=0.3)
