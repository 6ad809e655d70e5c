"""Step registration: typed ``cfparse`` phrases, with example phrases kept to suggest when a phrase is unknown.

Numbers are typed by the format (``{age:d}``, ``{months:g}``); the small closed word sets of the
phrases (``{unit:Months}``, ``{who:Who}``, ``{verdict:Verdict}``...) are the types in ``TYPES``. Open
clinical words (disease, product, option) are plain ``{text}`` converted in the step, so an unknown
word fails with the known alternatives instead of "no step matches".
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import parse  # type: ignore[import-untyped]
from parse_type import cfparse  # type: ignore[import-untyped]

__all__ = ["PARSERS", "PHRASES", "STEPS", "TYPES", "Phrase", "StepDefinition", "closest_phrases", "step", "unknown_step"]

F = TypeVar("F", bound=Callable[..., object])
Kind = Literal["given", "when", "then"]


class Phrase:
    """A step's typed ``cfparse`` phrase (the same matching as pytest-bdd's ``parsers.cfparse``)."""

    def __init__(self, name: str, extra_types: dict[str, Callable[[str], object]]) -> None:
        self.name = name
        self.parser = cfparse.Parser(name, extra_types)

    def is_matching(self, text: str) -> bool:
        """Whether the whole step text reads like this phrase."""
        try:
            return bool(self.parser.parse(text))
        except ValueError:
            return False

    def parse_arguments(self, text: str) -> dict[str, Any]:
        """The phrase's fields in the text, typed by their format."""
        return cast(dict[str, Any], self.parser.parse(text).named)


@dataclass(frozen=True)
class StepDefinition:
    """One step of the library: its phrase and the function that carries it out."""

    kind: str
    phrase: Phrase
    func: Callable[..., object]


#: Example phrases of every step, by kind, in the order they were defined.
PHRASES: dict[str, list[str]] = {"given": [], "when": [], "then": []}
#: The parser of every step, by kind.
PARSERS: dict[str, list[Phrase]] = {"given": [], "when": [], "then": []}
#: Every step definition, by kind (what the review runner matches step texts against).
STEPS: dict[str, list[StepDefinition]] = {"given": [], "when": [], "then": []}


def _pytest_bdd() -> Any:
    """pytest-bdd when it is installed (the test suite), else None (an installed postcart making the review)."""
    try:
        return importlib.import_module("pytest_bdd")
    except ImportError:
        return None


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

    The step is recorded in ``STEPS`` (for the review runner) and, when pytest-bdd is installed,
    registered with it too: its step-definition fixture lands in the module that applies the decorator,
    like pytest-bdd's own.
    """
    PHRASES[kind].extend(examples)
    parser = Phrase(phrase, TYPES)
    PARSERS[kind].append(parser)
    bdd = _pytest_bdd()
    register = (getattr(bdd, kind)(bdd.parsers.cfparse(phrase, extra_types=TYPES), stacklevel=2)
                if bdd is not None else None)

    def decorate(func: F) -> F:
        STEPS[kind].append(StepDefinition(kind, parser, func))
        return cast(F, register(func)) if register is not None else func

    return decorate


def closest_phrases(kind: str, text: str, n: int = 3) -> list[str]:
    """The known example phrases closest to an unknown step text."""
    pool = PHRASES.get(kind) or [p for phrases in PHRASES.values() for p in phrases]
    return difflib.get_close_matches(text, pool, n=n, cutoff=0.3)


def unknown_step(kind: str, keyword: str, text: str, line: int, file: str, scenario: str) -> str:
    """What a feature author reads when a step matches no phrase: which step, and the closest phrases."""
    close = closest_phrases(kind, text)
    hint = ("; closest known phrases: " + " | ".join(f'"{p}"' for p in close)) if close else ""
    return (f'step "{keyword} {text}" (line {line} of {file}, scenario "{scenario}"): no step of the clinical '
            f"step library reads like this{hint}. See docs/clinician-guide.md for the phrases postcart understands.")
