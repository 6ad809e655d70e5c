"""postcart: decision support for the next step after CAR-T cell therapy failure.

>>> from postcart import evaluate
>>> assessment = evaluate(situation)          # doctest: +SKIP
>>> assessment.option("bispecific_antibody").verdict   # doctest: +SKIP
'recommended'
"""

from postcart.assessment import Assessment
from postcart.engine import Engine
from postcart.errors import EvaluationError, InvalidSituation, PostcartError, RuleDefinitionError
from postcart.evaluation import evaluate
from postcart.rulebook import Rulebook
from postcart.situation import PatientSituation, validate_situation

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
