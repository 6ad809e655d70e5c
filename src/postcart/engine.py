"""The engine: runs a compiled rulebook on durable-rules' Rete core. No other module touches durable-rules.

How durable-rules is driven, and why (measurements in shared/notes/durable-rules.md):

- Through its C extension (``durable_rules_engine``), the same calls ``durable.engine.Ruleset`` makes,
  without ``durable.engine.Host``: the Host starts background dispatcher threads that were measured
  taking other callers' actions and touching deleted sessions (error 307, lost outputs, segfaults).
  Without a Host there are no threads, and no Python action callbacks: a fired rule is recorded by
  its name from the action message, which also skips the state re-serialisation after every action.
- The C core is not thread-safe: every call into it is serialised by one process-wide lock. Threads
  gain nothing here anyway (the C calls hold the GIL); processes scale (see ``postcart.batch.suite``).
- One fresh session per stratum per evaluation, always deleted in ``finally`` (the 1,025th live
  session raises ``MemoryError``).
- Every ruleset carries one extra rule that matches every situation and is never reported, so every
  assertion is "handled": a fact no rule matched left a session behind whose ``delete_state``
  corrupted the C core's heap (``free(): invalid pointer``, segfaults), found independently by three
  of us while testing.
- Ruleset definitions are deep-copied before registration (durable mutates them) and registered under
  names unique to this Engine; :meth:`Engine.close` deletes them from the core.
- The compiler keeps every ruleset inside the C core's fixed tables (``postcart.compiler.LIMITS``). Should
  the core still answer an error for a session, that session is *not* deleted: deleting a session the
  core reported broken corrupted its heap (SIGABRT/SIGSEGV). It is left behind (a leak, not a crash).
- Fork: ``fork()`` waits until no thread is inside an evaluation (:data:`FORK_GATE`) and the lock is made
  anew in a forked child (``os.register_at_fork``), because the parent may fork
  while another of its threads holds it. An Engine belongs to the process that created it: a child that
  inherits one gets :class:`EvaluationError` and creates its own (the C core's state for the parent's
  sessions may be half-updated at the moment of the fork).
"""

from __future__ import annotations

import contextlib
import copy
import decimal
import itertools
import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

try:
    import durable_rules_engine as _core
except ImportError as _import_error:  # e.g. Python 3.13 with a build made without the compatibility flag
    _core = None
    _CORE_IMPORT_ERROR: str | None = (
        f"durable-rules' C extension does not import ({_import_error}); reinstall it with: "
        "CPPFLAGS=-DPyEval_CallObject=PyObject_CallObject pip install --no-cache-dir --force-reinstall "
        "--no-deps durable-rules==2.0.28")
else:
    _CORE_IMPORT_ERROR = None

from postcart.compiler import KIND_KEY, KIND_VALUE, CompiledRulebook, compile_rulebook, fact_key, to_engine_fact
from postcart.errors import EvaluationError
from postcart.rulebook import Derive, Rulebook
from postcart.situation import PatientSituation, flatten

__all__ = ["FORK_GATE", "Engine", "EngineResult"]

_CORE_LOCK = threading.Lock()


def _new_lock_after_fork() -> None:
    global _CORE_LOCK  # noqa: PLW0603 - the one lock of the C core, renewed in a forked child
    _CORE_LOCK = threading.Lock()  # the parent's may be held by a thread that does not exist here


os.register_at_fork(after_in_child=_new_lock_after_fork)


class _ForkGate:
    """Makes ``fork()`` wait until no thread is inside an evaluation, and evaluations wait during a fork.

    Renewing our own lock in the child is not enough: a thread of the parent may be inside pydantic-core
    (validating or dumping a situation) when another thread forks, and the child then deadlocks on a lock
    the vanished thread held (measured: 2 of 6 children hung in ``model_dump``). Evaluations are many
    readers; a fork is the one writer. Re-entrant per thread (``evaluate`` enters, then ``Engine.run``).
    """

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._active = 0
        self._local = threading.local()

    def __enter__(self) -> None:
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        if depth == 0:
            with self._condition:
                self._active += 1

    def __exit__(self, *exc: object) -> None:
        self._local.depth -= 1
        if self._local.depth == 0:
            with self._condition:
                self._active -= 1
                if self._active == 0:
                    self._condition.notify_all()

    def before_fork(self) -> None:
        self._condition.acquire()
        own = getattr(self._local, "depth", 0) > 0  # a thread forking from inside an evaluation
        while self._active > (1 if own else 0):
            self._condition.wait()

    def after_fork_in_parent(self) -> None:
        self._condition.release()

    def after_fork_in_child(self) -> None:
        self.__init__()  # type: ignore[misc]  # the parent's threads do not exist here


FORK_GATE = _ForkGate()
os.register_at_fork(before=FORK_GATE.before_fork, after_in_parent=FORK_GATE.after_fork_in_parent,
                    after_in_child=FORK_GATE.after_fork_in_child)
_ENGINE_IDS = itertools.count(1)
_SESSION_IDS = itertools.count(1)

# durable_rules_engine.assert_fact result codes (see durable/engine.py Ruleset._handle_result)
_HANDLED, _NOT_HANDLED, _OBSERVED = 0, 1, 2

# A rule registered in every ruleset that matches every situation, so durable-rules always *handles*
# the fact. A fact no rule matches leaves a session behind that `delete_state` then corrupts the heap
# on ("free(): invalid pointer", segfaults within a few evaluations) and that leaks when not deleted
# (measured: about 80 MB per 1,000 evaluations, then a crash). Its activations are not recorded.
_SEEN_RULE = "postcart:seen"
_SEEN = {_SEEN_RULE: {"all": [{"m": {KIND_KEY: KIND_VALUE}}]}}


@dataclass(frozen=True)
class EngineResult:
    """What the rules said about one situation: the rules that fired and the facts they derived."""

    fired: tuple[str, ...]
    derived: Mapping[str, Any]
    facts: Mapping[str, Any]


class Engine:
    """A rulebook registered in durable-rules, ready to evaluate situations.

    Thread-safe: calls into durable-rules are serialised. Close it (or use it as a context manager) to
    free its rulesets in the C core; an unclosed Engine holds them until the process ends.
    """

    def __init__(self, rulebook: Rulebook | None = None) -> None:
        if _CORE_IMPORT_ERROR is not None:
            raise EvaluationError(_CORE_IMPORT_ERROR)
        self.rulebook = rulebook if rulebook is not None else Rulebook.load()
        prefix = f"postcart{next(_ENGINE_IDS)}"
        self.compiled: CompiledRulebook = compile_rulebook(self.rulebook, prefix)
        self._handles: dict[str, int] = {}
        self._closed = False
        self._pid = os.getpid()
        with _CORE_LOCK:
            try:
                for strata in self.compiled.strata.values():
                    for stratum in strata:
                        definition = json.dumps({**copy.deepcopy(dict(stratum.definition)), **_SEEN})
                        self._handles[stratum.name] = _core.create_ruleset(stratum.name, definition)
            except Exception as error:
                self._delete_rulesets()
                raise EvaluationError(f"durable-rules refused the compiled rulebook: {error}") from error
        self._derives = {rule.id: rule.then for rule in self.rulebook.rules if isinstance(rule.then, Derive)}

    # --- lifecycle

    def close(self) -> None:
        """Delete this engine's rulesets from durable-rules. Idempotent.

        An evaluation running in another thread meanwhile ends with :class:`EvaluationError`. In a forked
        child, closing a parent's engine only marks it closed (its rulesets are the parent's).
        """
        if self._closed:
            return
        if self._pid != os.getpid():
            self._closed = True
            return
        with _CORE_LOCK:
            self._closed = True
            self._delete_rulesets()

    def _delete_rulesets(self) -> None:
        for handle in self._handles.values():
            with contextlib.suppress(Exception):
                _core.delete_ruleset(handle)
        self._handles.clear()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- evaluation

    def run(self, situation: PatientSituation) -> EngineResult:
        """Run every stratum for the situation's disease; return fired rule ids and derived facts."""
        with FORK_GATE:
            self._check_usable()
            facts = flatten(situation)
            return self.run_facts(facts, situation.disease)

    def _check_usable(self) -> None:
        if self._closed:
            raise EvaluationError("this Engine is closed")
        if self._pid != os.getpid():
            raise EvaluationError(f"this Engine was created in process {self._pid} and this is process "
                                  f"{os.getpid()} (a fork): create a new Engine in this process")

    def run_facts(self, facts: Mapping[str, Any], disease: str) -> EngineResult:
        """Run on already-flattened facts (dotted path -> value). Used by batch and explanations."""
        with FORK_GATE:
            return self._run_facts(facts, disease)

    def _run_facts(self, facts: Mapping[str, Any], disease: str) -> EngineResult:
        self._check_usable()
        facts = dict(facts)
        # The situation is encoded once; each stratum appends the facts derived so far and its session id.
        body = _positional_numbers(json.dumps(to_engine_fact(facts)))[:-1]
        derived_json = ""
        fired: list[str] = []
        derived: dict[str, Any] = {}
        derived_by: dict[str, str] = {}
        for stratum in self.compiled.strata[disease]:
            for rule_id in self._run_stratum(stratum.name, body + derived_json):
                fired.append(rule_id)
                then = self._derives.get(rule_id)
                if then is None:
                    continue
                previous = derived.get(then.derive)
                if previous is not None and previous != then.value:
                    raise EvaluationError(
                        f"rules {derived_by[then.derive]} and {rule_id} derive different values for "
                        f"'{then.derive}' ({previous!r} and {then.value!r}): the rulebook is inconsistent")
                derived[then.derive] = then.value
                derived_by[then.derive] = rule_id
            for name in stratum.derives:
                if name not in derived and self.rulebook.facts[name].default is not None:
                    derived[name] = self.rulebook.facts[name].default
            for name, value in derived.items():
                facts[f"derived.{name}"] = value
            derived_json = "".join(_derived_json(name, value) for name, value in derived.items())
        return EngineResult(tuple(fired), MappingProxyType(derived), MappingProxyType(facts))

    def _run_stratum(self, name: str, fact_json: str) -> list[str]:
        """Assert the situation (JSON without its closing brace) in a fresh session of one ruleset.

        Returns the rules that fired, in firing order, each once.
        """
        sid = str(next(_SESSION_IDS))
        payload = f'{fact_json}, "sid": "{sid}", "id": "situation"}}'
        fired: list[str] = []
        with _CORE_LOCK:
            handle = self._handles.get(name)
            if handle is None or self._closed:
                raise EvaluationError("this Engine was closed during the evaluation")
            broken = False
            try:
                try:
                    result = _core.assert_fact(handle, payload)
                except Exception:
                    broken = True  # the core refused the session half-way: never delete_state it
                    raise
                if result[0] == _NOT_HANDLED:
                    return fired
                if result[0] != _HANDLED:
                    raise EvaluationError(f"durable-rules answered {result[0]} to a new session's fact")
                state = result[1]
                action = _core.start_action_for_state(handle, state)
                text = action[1] if action else None
                while text:
                    rule_id = _action_name(text)
                    if rule_id != _SEEN_RULE and rule_id not in fired:  # `$or` activates once per true branch
                        fired.append(rule_id)
                    try:
                        text = _core.complete_and_start_action(handle, state)
                    except Exception:
                        broken = True
                        raise
            except EvaluationError:
                raise
            except Exception as error:
                raise EvaluationError(f"durable-rules failed in ruleset {name}: {error}; the session is left "
                                      "in the core (deleting a broken session corrupts its heap)") from error
            finally:
                if not broken:
                    with contextlib.suppress(Exception):
                        _core.delete_state(handle, sid)
        return fired


# durable-rules' JSON parser refuses numbers in exponent form ("1e-05": error 204), which json.dumps
# writes for small floats such as 0.00001 months; such numbers are rewritten in positional form.
_EXPONENT_NUMBER = re.compile(r"(?<=: )-?\d+(?:\.\d+)?e[-+]\d+(?=[,}])")


def _positional_numbers(payload: str) -> str:
    if "e-" not in payload and "e+" not in payload:
        return payload
    return _EXPONENT_NUMBER.sub(lambda match: format(decimal.Decimal(match.group()), "f"), payload)


_DERIVED_JSON: dict[tuple[str, type, Any], str] = {}


def _derived_json(name: str, value: Any) -> str:
    """A derived fact as a JSON member (``, "key": value``); derived values are few, so each is encoded once.
    The value's type is in the key: ``True`` and ``1`` are equal as keys but not as JSON."""
    key = (name, type(value), value)
    try:
        text = _DERIVED_JSON.get(key)
    except TypeError:  # an unhashable value (a list): encoded every time
        return f', "{fact_key(f"derived.{name}")}": {json.dumps(value)}'

    if text is None:
        if len(_DERIVED_JSON) >= 10_000:
            _DERIVED_JSON.clear()
        text = _DERIVED_JSON[key] = f', "{fact_key(f"derived.{name}")}": {json.dumps(value)}'
    return text


def _action_name(message: str) -> str:
    """The rule name of an action message ``{"<rule id>": {"m": {...}}}``, without parsing the fact."""
    if not message.startswith('{"'):
        raise EvaluationError(f"unexpected action message from durable-rules: {message[:40]!r}")
    return message[2:message.index('"', 2)]
