"""postcart: decision support for the next step after CAR-T cell therapy failure.

>>> from postcart import evaluate
>>> assessment = evaluate(situation)          # doctest: +SKIP
>>> assessment.option("bispecific_antibody").verdict   # doctest: +SKIP
'recommended'

``Engine`` and ``evaluate`` load durable-rules' C extension; they are imported on first use, so that
importing the output contract or its renderings does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from postcart.assessment import Assessment
from postcart.errors import EvaluationError, InvalidSituation, PostcartError, RuleDefinitionError
from postcart.rulebook import Rulebook
from postcart.situation import PatientSituation, validate_situation

if TYPE_CHECKING:
    from postcart.engine import Engine
    from postcart.evaluation import evaluate

__all__ = [
    "Assessment",
    "Engine",
    "EvaluationError",
    "InvalidSituation",
    "PatientSituation",
    "PostcartError",
    "RuleDefinitionError",
    "Rulebook",
    "evaluate",
    "validate_situation",
]


def __getattr__(name: str) -> Any:
    if name == "Engine":
        from postcart.engine import Engine

        return Engine
    if name == "evaluate":
        from postcart.evaluation import evaluate

        return evaluate
    raise AttributeError(f"module 'postcart' has no attribute {name!r}")
