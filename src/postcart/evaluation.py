"""The front door: ``evaluate()`` validates a situation, runs the rules on durable-rules, builds the answer.

The default engine (the bundled rulebook's) is created on first use and owned here: ``close_default_engine``
frees it and ``reset_default_engine`` makes the next call load the rulebook again (after ``POSTCART_RULES``
changed, say).
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Mapping
from typing import Any

from postcart.assessment import Assessment, build_assessment
from postcart.engine import FORK_GATE, Engine
from postcart.rulebook import Rulebook
from postcart.situation import PatientSituation, validate_situation
from postcart.unknowns import resolver_for

__all__ = ["assess", "close_default_engine", "default_engine", "evaluate", "reset_default_engine"]

_DEFAULT: dict[str, Engine] = {}
_DEFAULT_LOCK = threading.Lock()


def _after_fork() -> None:
    global _DEFAULT_LOCK  # noqa: PLW0603 - renewed in a forked child
    _DEFAULT_LOCK = threading.Lock()
    _DEFAULT.clear()  # the parent's engine belongs to the parent (see postcart.engine): make a new one here


os.register_at_fork(after_in_child=_after_fork)


def default_engine() -> Engine:
    """The process's engine for the default rulebook, created on first use (and anew in a forked child)."""
    with _DEFAULT_LOCK:
        if "engine" not in _DEFAULT:
            _DEFAULT["engine"] = Engine(Rulebook.load())
        return _DEFAULT["engine"]


def close_default_engine() -> None:
    """Close the default engine, if one was made; the next ``evaluate()`` makes a new one."""
    with _DEFAULT_LOCK:
        engine = _DEFAULT.pop("engine", None)
    if engine is not None:
        engine.close()


reset_default_engine = close_default_engine
atexit.register(close_default_engine)


def evaluate(situation: PatientSituation | Mapping[str, Any], engine: Engine | None = None) -> Assessment:
    """Assess a patient's situation: validate it, run the rules on durable-rules, build the assessment.

    Inputs still unknown are completed over their plausible values by re-running the rules
    (:mod:`postcart.unknowns`): each option says what it would become once they are known.

    Args:
        situation: a ``PatientSituation`` or a plain mapping in the input contract's shape.
        engine: the engine to use; default, the bundled rulebook's (created on first use).

    Raises:
        InvalidSituation: the situation breaks the input contract (every problem is listed).
        EvaluationError: the engine failed.
    """
    with FORK_GATE:  # no fork() while this thread is inside pydantic-core (see postcart.engine)
        return assess(engine or default_engine(), validate_situation(situation))


def assess(engine: Engine, situation: PatientSituation) -> Assessment:
    """The assessment of a validated situation: the engine's run, completed over the unknown inputs."""
    with FORK_GATE:
        result = engine.run(situation)
        return build_assessment(engine.rulebook, situation, result, resolver_for(engine).resolve(situation, result))
