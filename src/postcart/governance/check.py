"""Rulebook lint: checks beyond the schema that need the whole rulebook (``postcart check``).

Loading already refuses what cannot run (unknown fields, operators, values, citation keys, duplicate
ids, circular derived facts). ``lint`` adds what a rules committee wants to know before sign-off, and
reports every finding at once:

- **reachability**: every rule can fire for some *valid* patient situation of its diseases (the input
  contract's cross-field constraints respected, derived facts produced by their own rules);
- **contradictions**: no option gets a ``not_advised`` (not a contraindication) and a ``recommended`` or
  ``consider`` for the same patient, where the combination policy would let the stronger verdict win
  silently, unless one rule declares that it ``overrides`` the other;
- **conflicting derivations**: no two rules derive different values of one fact for the same patient
  (the engine would refuse to evaluate that patient);
- **coverage**: every disease x option cell is covered by a reachable active rule or listed under
  ``unaddressed`` in ``rulebook.yaml`` (and a listed cell is not in fact covered).

How the search works: a rule's condition is rewritten over input fields only (a ``derived.X`` test
becomes "some rule deriving that value of X fires", or the fact's default when none does), then a
backtracking search assigns candidate values field by field, pruning with three-valued evaluation
(a branch stops as soon as the condition is decided). Candidates are complete for the condition
language: every enumeration value, true/false, unknown for optional fields, and for numbers every
threshold the rulebook uses, a value between each pair of thresholds and the bounds. Product and
target, and failure kind and best response, are chosen jointly so that only valid situations are
searched. Every witness found is then run through the real :class:`~postcart.engine.Engine`; a rule the
search says fires but the engine does not is reported too, so the check reflects what actually runs.

This module sits beside the interfaces (it runs the engine); lower modules never import it.

It is one module because the findings share one search for valid witness situations (the solver at its
core); each finding is a short function over it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from postcart.engine import Engine
from postcart.errors import EvaluationError, Problem, RuleDefinitionError
from postcart.rulebook import Ask, Derive, Rule, Rulebook, Suggest
from postcart.rulebook import conditions as cond
from postcart.situation import (
    FIELD_DISEASES,
    HISTOLOGY_DISEASE,
    PRODUCT_DISEASES,
    PRODUCT_TARGET,
    field_catalogue,
    nest,
    validate_situation,
)
from postcart.vocabulary import DISEASES, OPTIONS

__all__ = ["Analysis", "Contradiction", "Findings", "describe_witness", "lint", "review_findings",
           "situation_from_facts"]

#: Search steps allowed per question before it is reported as undecided (a warning, not a pass).
STEP_BUDGET = 50_000

_TRUE: cond.Condition = cond.All(())
_FALSE: cond.Condition = cond.Any_(())

# Fields chosen together because the input contract constrains them together.
_JOINT = {"car_t.product": "car_t", "car_t.target": "car_t",
          "failure.kind": "response", "car_t.best_response": "response",
          "failure.cns_involvement": "cns", "failure.cns_site": "cns",
          "history.prior_therapies": "prior_therapies", "history.refractory_to": "prior_therapies"}
_RECEIVED, _REFRACTORY = "history.prior_therapies", "history.refractory_to"
_TYPICAL = {"age": 60, "failure.months_since_infusion": 6, "fitness.ecog": 1, "fitness.hct_ci": 2,
            "history.prior_lines": 2, "car_t.max_crs_grade": 1, "car_t.max_icans_grade": 1}
_RESPONSES = {"relapse": ("CR", "PR"), "primary_refractory": ("SD", "PD", "not_evaluable")}


@dataclass
class Findings:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class Contradiction:
    """Two rules whose verdicts on one option clash for the witness situation, with no precedence."""

    option: str
    weaker: str
    stronger: str
    disease: str
    witness: Mapping[str, Any]
    description: str


def lint(rulebook: Rulebook, engine: Engine | None = None, require_lifecycle: bool = False,
         max_evidence_age: int | None = None) -> Findings:
    """Every finding about a loaded rulebook: problems fail ``postcart check``, warnings do not.

    Args:
        rulebook: the loaded rulebook.
        engine: an engine for that rulebook to confirm witnesses on; default, a fresh one (closed after).
        require_lifecycle: an active rule without author, approval and review dates is a problem
            (default: a warning).
        max_evidence_age: years past which a rule whose newest citation is older is warned about
            (default: the rulebook's ``evidence_max_age_years``).

    The lifecycle the recorded reviews give is :func:`review_findings` (``postcart check`` runs both).
    """
    findings = Findings()
    _uncited_references(rulebook, findings)
    _evidence_age(rulebook, findings, max_evidence_age)
    _lifecycle(rulebook, findings, require=require_lifecycle)
    own = engine is None
    if engine is None:
        try:
            engine = Engine(rulebook)
        except RuleDefinitionError as error:  # a rule beyond durable-rules' fixed limits (postcart.compiler)
            findings.problems.extend(error.problems)
        except EvaluationError as error:
            findings.problems.extend(_refused_rules(rulebook, error))
    try:
        Analysis(rulebook, engine).report(findings)
    finally:
        if own and engine is not None:
            engine.close()
    return findings


#: Lifecycle metadata an active rule should carry before a rules committee signs it off.
LIFECYCLE_FIELDS = ("author", "approved", "review_by")


def _lifecycle(rulebook: Rulebook, findings: Findings, today: dt.date | None = None, require: bool = False) -> None:
    """Active rules without author/approval/review dates are warned about (or fail, with ``require``);
    impossible dates fail."""
    today = today or dt.date.today()
    for rule in rulebook.rules:
        where = f"{rule.file}:{rule.line} rule {rule.id}"
        if rule.approved is not None and rule.review_by is not None and rule.review_by < rule.approved:
            findings.problems.append(Problem(f"{where} field review_by", "review date before approval date",
                                             f"a date after {rule.approved}", str(rule.review_by)))
        if rule.approved is not None and rule.approved > today:
            findings.problems.append(Problem(f"{where} field approved", "approval date in the future",
                                             f"a date up to {today}", str(rule.approved)))
        if rule.status != "active":
            continue
        missing = [name for name in LIFECYCLE_FIELDS if getattr(rule, name) is None]
        if missing:
            target = findings.problems if require else findings.warnings
            target.append(Problem(where, "active rule without lifecycle metadata: " + ", ".join(missing)))


def review_findings(rulebook: Rulebook, findings: Findings, today: dt.date | None = None,
                    require: bool = False) -> None:
    """The lifecycle the recorded reviews give: rules not (or no longer) approved, approved by too few
    reviewers, changes requested, and reviews past their ``review_by`` date.

    A rule changed since its last approval is reported on its own; rules no review ever approved are
    one warning (one problem each with ``require``), so an unreviewed rulebook stays readable.

    Args:
        rulebook: the loaded rulebook, with the reviews recorded in its directory.
        findings: where the findings go.
        today: the date review deadlines are checked against (default: today).
        require: every finding is a problem (release builds), not a warning.
    """
    today = today or dt.date.today()
    target = findings.problems if require else findings.warnings
    never: list[Rule] = []
    too_few: list[tuple[Rule, int]] = []
    for rule in rulebook.rules:
        if rule.status != "active":
            continue
        approvals = rulebook.approvals(rule)
        for review in rulebook.reviews:
            decision = review.decision(rule)
            if decision is not None and decision.decision == "request_change":
                comment = f": {decision.comment}" if decision.comment else ""
                target.append(Problem(_where(rule), f"change requested by {review.reviewer.name} in review "
                                      f"{review.name}{comment}"))
        if not approvals:
            earlier = [review for review in rulebook.reviews for entry in review.rules
                       if entry.id == rule.id and entry.decision == "approve"]
            if earlier:
                last = earlier[-1]
                seen = next(entry for entry in last.rules if entry.id == rule.id)
                target.append(Problem(_where(rule), f"changed since its last approval (review {last.name} by "
                                      f"{last.reviewer.name} approved version {seen.version}, content "
                                      f"{seen.content_hash[:12]})", f"an approval of version {rule.version}, "
                                      f"content {rule.content_hash[:12]}", "none"))
            else:
                never.append(rule)
            continue
        reviewers = {review.reviewer.name.strip().casefold() for review in approvals}
        if len(reviewers) < rulebook.minimum_reviewers:
            too_few.append((rule, len(reviewers)))
    if never:
        if require:
            target.extend(Problem(_where(rule), "no recorded review approves this rule's current version")
                          for rule in never)
        else:
            target.append(Problem("(rulebook) reviews", f"{len(never)} active rules awaiting review: no recorded "
                                  "review approves their current version (postcart review, then postcart review "
                                  "import; postcart check --require-review lists them)"))
    if too_few:
        minimum = rulebook.minimum_reviewers
        if require:
            target.extend(Problem(_where(rule), f"approved by {count} reviewer(s), fewer than the minimum",
                                  f"at least {minimum} (rulebook.yaml review.minimum_reviewers)", str(count))
                          for rule, count in too_few)
        else:
            target.append(Problem("(rulebook) reviews", f"{len(too_few)} rules approved by fewer reviewers than "
                                  f"the minimum of {minimum} (rulebook.yaml review.minimum_reviewers): "
                                  f"{_ids([rule for rule, _ in too_few])}"))
    current = {id(review) for rule in rulebook.rules for review in rulebook.approvals(rule)}
    for review in rulebook.reviews:
        if review.review_by is not None and review.review_by < today and id(review) in current:
            target.append(Problem(f"reviews/{review.name}", f"review by {review.reviewer.name} is past its "
                                  f"review_by date {review.review_by.isoformat()}: its approvals are due for "
                                  "renewal", f"a date from {today.isoformat()}", review.review_by.isoformat()))


def _ids(rules: list[Rule], shown: int = 8) -> str:
    names = ", ".join(rule.id for rule in rules[:shown])
    return names + (f" and {len(rules) - shown} more" if len(rules) > shown else "")


def _refused_rules(rulebook: Rulebook, error: EvaluationError) -> list[Problem]:
    """The rules durable-rules refuses to compile, each tried alone (the refusal itself names none)."""
    problems = []
    for rule in rulebook.rules:
        try:
            Engine(dataclasses.replace(rulebook, rules=(rule,))).close()
        except EvaluationError as alone:
            problems.append(Problem(_where(rule), f"durable-rules refuses to compile this rule ({alone})",
                                    expected="a condition with fewer alternatives (any/not/in branches)"))
    return problems or [Problem("(rulebook)", str(error))]


def _evidence_age(rulebook: Rulebook, findings: Findings, max_age: int | None = None) -> None:
    """Warn for an active rule whose newest citation was published more than ``max_age`` years before the
    rulebook's ``evidence_reviewed`` date (today when it states none)."""
    limit = max_age if max_age is not None else rulebook.evidence_max_age_years
    reviewed = rulebook.evidence_reviewed or dt.date.today()
    for rule in rulebook.rules:
        if rule.status != "active" or not isinstance(rule.then, (Suggest, Ask)) or not rule.then.citations:
            continue
        years = [year for key in rule.then.citations
                 if (year := rulebook.references[key].published_year) is not None]
        if not years:
            findings.warnings.append(Problem(_where(rule), "no cited source has a publication date"))
        elif reviewed.year - max(years) > limit:
            findings.warnings.append(Problem(
                _where(rule), f"newest citation published {max(years)}, more than {limit} years before the evidence "
                f"review of {reviewed.isoformat()}", f"a source from {reviewed.year - limit} or later", str(max(years))))


def _uncited_references(rulebook: Rulebook, findings: Findings) -> None:
    cited = {key for rule in rulebook.rules if isinstance(rule.then, (Suggest, Ask)) for key in rule.then.citations}
    # unverified entries are kept for the record and may not be cited: only verified ones should be
    for key in sorted(set(rulebook.references) - cited):
        if rulebook.references[key].status == "verified":
            findings.warnings.append(Problem(f"references.yaml key {key}", "cited by no rule"))


def _where(rule: Rule) -> str:
    return f"{rule.file}:{rule.line} rule {rule.id}"


def _applies(rule: Rule, disease: str) -> bool:
    return rule.applies_to(disease)


def _diseases_of(rule: Rule) -> tuple[str, ...]:
    return DISEASES if rule.applies_to_all_diseases else tuple(d for d in DISEASES if d in rule.diseases)


def describe_witness(facts: Mapping[str, Any]) -> str:
    """A witness situation in one line: ``disease=LBCL, fitness.ecog=3, failure.cd20=negative``."""
    parts = []
    for path, value in facts.items():
        if value is None:
            parts.append(f"{path} unknown")
        else:
            shown = "[" + ", ".join(value) + "]" if isinstance(value, tuple) else cond.render_value(value)
            parts.append(f"{path}={shown}")
    return ", ".join(parts)


def situation_from_facts(facts: Mapping[str, Any]) -> dict[str, Any]:
    """A valid situation mapping holding these flat facts, required fields filled with neutral values.

    The search only returns facts whose condition is decided whatever the other fields hold, so the
    neutral fill never changes a witness's outcome.
    """
    disease = facts["disease"]
    filled: dict[str, Any] = {"age": 60, "fitness.ecog": 1, "failure.months_since_infusion": 6.0}
    if "car_t.product" not in facts:
        product = next(p for p, used in PRODUCT_DISEASES.items() if disease in used)
        filled["car_t.product"] = product
    if "failure.kind" not in facts:
        filled["failure.kind"], filled["car_t.best_response"] = "relapse", "CR"
    filled.update({path: value for path, value in facts.items() if value is not None})
    return nest(filled)


# --------------------------------------------------------------------------------------------------
# the candidate values of each input field


class _Space:
    """Candidate values per search variable; a candidate is a partial fact mapping (path -> value)."""

    def __init__(self, rulebook: Rulebook) -> None:
        self.catalogue = field_catalogue()
        self.thresholds: dict[str, set[float]] = {}
        self.members: dict[str, set[str]] = {}
        for rule in rulebook.rules:
            if rule.condition is None:
                continue
            for leaf in cond.leaves(rule.condition):
                spec = self.catalogue.get(leaf.field)
                if spec is None:
                    continue
                if spec.kind in ("int", "float") and leaf.op != "known":
                    values = leaf.value if isinstance(leaf.value, tuple) else (leaf.value,)
                    self.thresholds.setdefault(leaf.field, set()).update(float(v) for v in values)
                elif spec.kind == "set" and leaf.op == "contains":
                    self.members.setdefault(leaf.field, set()).add(leaf.value)
        self._cache: dict[tuple[str, str], tuple[dict[str, Any], ...]] = {}

    @staticmethod
    def variable(path: str) -> str:
        return _JOINT.get(path, path)

    def domain(self, variable: str, disease: str) -> tuple[dict[str, Any], ...]:
        key = (variable, disease)
        if key not in self._cache:
            self._cache[key] = tuple(self._domain(variable, disease))
        return self._cache[key]

    def _domain(self, variable: str, disease: str) -> Iterator[dict[str, Any]]:
        if variable == "car_t":
            for product, used in PRODUCT_DISEASES.items():
                if disease in used:
                    yield {"car_t.product": product, "car_t.target": PRODUCT_TARGET[product]}
            for target in self.catalogue["car_t.target"].values:
                yield {"car_t.product": "investigational", "car_t.target": target}
            return
        if variable == "response":
            for kind, responses in _RESPONSES.items():
                for response in responses:
                    yield {"failure.kind": kind, "car_t.best_response": response}
            return
        if variable == "cns":  # a CNS site only with CNS involvement
            yield {"failure.cns_involvement": False, "failure.cns_site": "unknown"}
            for site in self.catalogue["failure.cns_site"].values:
                yield {"failure.cns_involvement": True, "failure.cns_site": site}
            return
        if variable == "prior_therapies":
            yield from self._therapies()
            return
        spec = self.catalogue[variable]
        if variable in FIELD_DISEASES and disease not in FIELD_DISEASES[variable]:
            yield {variable: "unknown" if spec.kind == "enum" else None}
            return
        if variable == "histology":
            for value in spec.values:
                if HISTOLOGY_DISEASE.get(value, disease) == disease:
                    yield {variable: value}
            return
        if spec.kind == "enum":
            values: list[Any] = list(spec.values)
        elif spec.kind == "bool":
            values = [True, False]
        elif spec.kind == "set":
            members = sorted(self.members.get(variable, ()))
            if len(members) <= 6:
                values = [tuple(combo) for size in range(len(members) + 1)
                          for combo in itertools.combinations(members, size)]
            else:  # each member alone, none, all: enough for conditions that test members separately
                values = [(), *((member,) for member in members), tuple(members)]
        else:
            values = self._numbers(variable, spec.kind == "int", spec.minimum, spec.maximum)
        if spec.optional:
            values.append(None)
        for value in values:
            yield {variable: value}

    def _therapies(self) -> Iterator[dict[str, Any]]:
        """Prior therapy classes: each class rules name is absent, received, or received and refractory
        (refractory implies received); every combination for up to four classes, else pairs at most."""
        members = sorted(self.members.get(_RECEIVED, set()) | self.members.get(_REFRACTORY, set()))
        states = ("absent", "received", "refractory")
        if len(members) <= 4:
            combos: Iterator[tuple[tuple[str, str], ...]] = (
                tuple(zip(members, chosen, strict=True))
                for chosen in itertools.product(states, repeat=len(members)))
        else:
            combos = itertools.chain(
                [()],
                (((m, st),) for m in members for st in states[1:]),
                (((a, sa), (b, sb)) for a, b in itertools.combinations(members, 2)
                 for sa in states[1:] for sb in states[1:]),
                (tuple((m, st) for m in members) for st in states[1:]),
            )
        for combo in combos:
            received = tuple(m for m, st in combo if st != "absent")
            refractory = tuple(m for m, st in combo if st == "refractory")
            yield {_RECEIVED: received, _REFRACTORY: refractory}

    def _numbers(self, path: str, integer: bool, low: float | None, high: float | None) -> list[Any]:
        thresholds = sorted(self.thresholds.get(path, ()))
        low = low if low is not None else min([0.0, *thresholds])
        high = high if high is not None else max([low + 1, *(t + 1 for t in thresholds)])
        points: set[float] = {low, high}
        if low <= _TYPICAL.get(path, low) <= high:
            points.add(_TYPICAL.get(path, low))
        for t in thresholds:
            if integer:
                points.update({math.floor(t) - 1, math.floor(t), math.ceil(t), math.ceil(t) + 1})
            else:
                points.add(t)
        inside = sorted(p for p in points if low <= p <= high)
        if not integer:  # a value strictly between each pair of neighbours
            inside = sorted({*inside, *((a + b) / 2 for a, b in itertools.pairwise(inside))})
        # try ordinary values first, so that witnesses read like real patients
        typical = _TYPICAL.get(path, low)
        inside.sort(key=lambda p: (abs(p - typical), p))
        return [p if not integer else int(p) for p in inside]


# --------------------------------------------------------------------------------------------------
# rewriting conditions over input fields only, per disease


class _Rewriter:
    def __init__(self, rulebook: Rulebook) -> None:
        self.rulebook = rulebook
        self.derivers: dict[str, list[Rule]] = {}
        for rule in rulebook.rules:
            if isinstance(rule.then, Derive):
                self.derivers.setdefault(rule.then.derive, []).append(rule)
        self._memo: dict[tuple[Any, str], cond.Condition] = {}

    def fires(self, rule: Rule, disease: str) -> cond.Condition:
        """When the rule fires for a patient with this disease, over input fields only."""
        if not _applies(rule, disease):
            return _FALSE
        return _TRUE if rule.condition is None else self.rewrite(rule.condition, disease)

    def rewrite(self, condition: cond.Condition, disease: str) -> cond.Condition:
        key = (condition, disease)
        if key not in self._memo:
            self._memo[key] = self._rewrite(condition, disease)
        return self._memo[key]

    def _rewrite(self, condition: cond.Condition, disease: str) -> cond.Condition:
        if isinstance(condition, cond.All):
            return cond.All(tuple(self.rewrite(item, disease) for item in condition.items))
        if isinstance(condition, cond.Any_):
            return cond.Any_(tuple(self.rewrite(item, disease) for item in condition.items))
        if isinstance(condition, cond.Not):
            return cond.Not(self.rewrite(condition.item, disease))
        if condition.field == "disease":
            return _TRUE if condition.holds({"disease": disease}) else _FALSE
        if not condition.field.startswith("derived."):
            return condition
        name = condition.field.removeprefix("derived.")
        branches = [self.derives(name, value, disease) for value in self.rulebook.facts[name].values
                    if condition.holds({condition.field: value})]
        if condition.holds({}):
            branches.append(self.unknown(name, disease))
        return cond.Any_(tuple(branches))

    def derives(self, name: str, value: Any, disease: str) -> cond.Condition:
        """The fact ends up with this value (ignoring conflicts, which are checked on their own)."""
        key = (("derives", name, value), disease)
        if key not in self._memo:
            rules = [rule for rule in self.derivers.get(name, ()) if _applies(rule, disease)]
            positive = cond.Any_(tuple(self.fires(rule, disease) for rule in rules
                                       if rule.then.value == value))  # type: ignore[union-attr]
            if rules and self.rulebook.facts[name].default == value:
                silent = cond.Not(cond.Any_(tuple(self.fires(rule, disease) for rule in rules)))
                positive = cond.Any_((positive, silent))
            self._memo[key] = positive
        return self._memo[key]

    def unknown(self, name: str, disease: str) -> cond.Condition:
        rules = [rule for rule in self.derivers.get(name, ()) if _applies(rule, disease)]
        if not rules:
            return _TRUE
        if self.rulebook.facts[name].default is not None:
            return _FALSE
        return cond.Not(cond.Any_(tuple(self.fires(rule, disease) for rule in rules)))


# --------------------------------------------------------------------------------------------------
# the search


class _Undecided(Exception):
    """The step budget ran out before the search found a witness or exhausted the candidates."""


def _variables(condition: cond.Condition) -> list[str]:
    """Search order: fields every solution must decide (outside any `any`/`not`) first, then by depth of
    disjunction, then in order of appearance, so that contradictions are found before branching."""
    depth: dict[str, int] = {}

    def walk(node: cond.Condition, branching: int) -> None:
        if isinstance(node, cond.Comparison):
            variable = _Space.variable(node.field)
            depth[variable] = min(depth.get(variable, branching), branching)
        elif isinstance(node, cond.Not):
            walk(node.item, branching + 1)
        else:
            step = 0 if isinstance(node, cond.All) or len(node.items) == 1 else 1
            for item in node.items:
                walk(item, branching + step)

    walk(condition, 0)
    order = list(depth)
    return sorted(order, key=lambda variable: (depth[variable], order.index(variable)))


def _peval(condition: cond.Condition, facts: Mapping[str, Any], assigned: set[str],
           memo: dict[int, bool | None]) -> bool | None:
    """Three-valued evaluation: True/False when decided whatever unassigned fields hold, else None."""
    key = id(condition)
    if key in memo:
        return memo[key]
    result: bool | None
    if isinstance(condition, cond.Comparison):
        result = condition.holds(facts) if _Space.variable(condition.field) in assigned else None
    elif isinstance(condition, cond.Not):
        inner = _peval(condition.item, facts, assigned, memo)
        result = None if inner is None else not inner
    else:
        want = isinstance(condition, cond.Any_)  # the value that decides: True for any, False for all
        result = not want
        for item in condition.items:
            value = _peval(item, facts, assigned, memo)
            if value is want:
                result = want
                break
            if value is None:
                result = None
    memo[key] = result
    return result


def _open_variables(condition: cond.Condition, memo: Mapping[int, bool | None]) -> set[str]:
    """Fields read by the undecided part of a condition, after ``_peval`` filled ``memo``."""
    found: set[str] = set()
    stack = [condition]
    while stack:
        node = stack.pop()
        if memo.get(id(node), True) is not None:
            continue  # decided (or never reached because its parent was decided)
        if isinstance(node, cond.Comparison):
            found.add(_Space.variable(node.field))
        elif isinstance(node, cond.Not):
            stack.append(node.item)
        else:
            stack.extend(node.items)
    return found


def _solve(condition: cond.Condition, disease: str, space: _Space, budget: int = STEP_BUDGET
           ) -> dict[str, Any] | None:
    """Facts (only those that matter) of a valid situation satisfying the condition, or None if none.

    Raises:
        _Undecided: the budget ran out.
    """
    variables = _variables(condition)
    facts: dict[str, Any] = {"disease": disease}
    assigned: set[str] = set()
    steps = 0

    def search() -> bool:
        nonlocal steps
        steps += 1
        if steps > budget:
            raise _Undecided
        memo: dict[int, bool | None] = {}
        value = _peval(condition, facts, assigned, memo)
        if value is not None:
            return value
        # branch only on a field the still-undecided part of the condition reads
        open_variables = _open_variables(condition, memo)
        variable = next((v for v in variables if v in open_variables and v not in assigned), None)
        if variable is None:
            return False
        assigned.add(variable)
        for candidate in space.domain(variable, disease):
            facts.update(candidate)
            if search():
                return True
            for path in candidate:
                facts.pop(path, None)
        assigned.discard(variable)
        return False

    if not search():
        return None
    # keep only what decided it; unknown optional fields stay explicit
    return dict(facts.items())


# --------------------------------------------------------------------------------------------------
# the analysis


@dataclass(frozen=True)
class _Witness:
    facts: Mapping[str, Any]
    fired: tuple[str, ...] | None  # None: the engine refused the situation (or there is no engine)
    error: str | None = None
    derived: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        text = describe_witness(self.facts)
        if self.derived:
            text += " (derived: " + ", ".join(f"{name}={cond.render_value(value)}"
                                              for name, value in sorted(self.derived.items())) + ")"
        return text


class Analysis:
    """Reachability, contradictions, derivation conflicts and coverage of one rulebook.

    Reusable by the catalogue (coverage table) and by tests; every answer is computed once.
    """

    def __init__(self, rulebook: Rulebook, engine: Engine | None) -> None:
        self.rulebook = rulebook
        self.engine = engine
        self.space = _Space(rulebook)
        self.rewriter = _Rewriter(rulebook)
        self.undecided: list[tuple[str, str]] = []  # (what, disease)

    # --- primitives

    def witness(self, condition: cond.Condition, disease: str, what: str) -> _Witness | None:
        try:
            facts = _solve(condition, disease, self.space)
        except _Undecided:
            self.undecided.append((what, disease))
            return None
        if facts is None:
            return None
        if self.engine is None:  # the engine refused the rulebook (reported): witnesses stay unconfirmed
            return _Witness(facts, None)
        situation = validate_situation(situation_from_facts(facts))
        try:
            result = self.engine.run(situation)
        except EvaluationError as error:
            return _Witness(facts, None, str(error))
        return _Witness(facts, result.fired, derived=dict(result.derived))

    # --- reachability

    @cached_property
    def reach(self) -> dict[str, dict[str, _Witness]]:
        """Per rule id, the diseases it can fire for, each with a witness."""
        reach: dict[str, dict[str, _Witness]] = {}
        for rule in self.rulebook.rules:
            reach[rule.id] = {}
            for disease in _diseases_of(rule):
                found = self.witness(self.rewriter.fires(rule, disease), disease, f"rule {rule.id}")
                if found is not None:
                    reach[rule.id][disease] = found
        return reach

    def reachable(self, rule_id: str, disease: str) -> bool:
        return disease in self.reach.get(rule_id, {})

    # --- contradictions

    @cached_property
    def contradictions(self) -> list[Contradiction]:
        """Pairs (not_advised without contraindication, recommended/consider) that fire together with no
        contraindication on that option and no ``overrides`` between them."""
        found: list[Contradiction] = []
        suggestions = [rule for rule in self.rulebook.rules if isinstance(rule.then, Suggest)]
        for weak in suggestions:
            then = weak.then
            assert isinstance(then, Suggest)
            if then.verdict != "not_advised" or then.contraindication:
                continue
            for strong in suggestions:
                other = strong.then
                assert isinstance(other, Suggest)
                if other.option != then.option or other.verdict == "not_advised":
                    continue
                if strong.id in then.overrides or weak.id in other.overrides:
                    continue
                for disease in _diseases_of(weak):
                    if not (_applies(strong, disease) and self.reachable(weak.id, disease)
                            and self.reachable(strong.id, disease)):
                        continue
                    vetoes = [self.rewriter.fires(rule, disease) for rule in suggestions
                              if isinstance(rule.then, Suggest) and rule.then.option == then.option
                              and rule.then.contraindication and rule.then.verdict == "not_advised"]
                    both = cond.All((self.rewriter.fires(weak, disease), self.rewriter.fires(strong, disease),
                                     cond.Not(cond.Any_(tuple(vetoes)))))
                    witness = self.witness(both, disease, f"rules {weak.id} and {strong.id}")
                    if witness is not None:
                        found.append(Contradiction(then.option, weak.id, strong.id, disease, witness.facts,
                                                   witness.describe()))
                        break
        return found

    # --- derivation conflicts

    @cached_property
    def derivation_conflicts(self) -> list[tuple[Rule, Rule, str, Mapping[str, Any]]]:
        found = []
        for rules in self.rewriter.derivers.values():
            for first, second in itertools.combinations(rules, 2):
                if first.then.value == second.then.value:  # type: ignore[union-attr]
                    continue
                for disease in _diseases_of(first):
                    if not _applies(second, disease):
                        continue
                    both = cond.All((self.rewriter.fires(first, disease), self.rewriter.fires(second, disease)))
                    witness = self.witness(both, disease, f"rules {first.id} and {second.id}")
                    if witness is not None:
                        found.append((first, second, disease, witness.facts))
                        break
        return found

    # --- coverage

    def covering(self, disease: str, option: str) -> list[Rule]:
        """Active suggestion rules for this option that can fire for this disease."""
        return [rule for rule in self.rulebook.rules
                if isinstance(rule.then, Suggest) and rule.then.option == option and rule.status == "active"
                and self.reachable(rule.id, disease)]

    def unaddressed(self) -> dict[tuple[str, str], str]:
        return {(cell.disease, cell.option): cell.reason for cell in self.rulebook.unaddressed}

    # --- findings

    def report(self, findings: Findings) -> None:
        self._report_reachability(findings)
        for first, second, _disease, facts in self.derivation_conflicts:
            fact = first.then.derive  # type: ignore[union-attr]
            findings.problems.append(Problem(
                _where(first),
                f"derives {fact}={first.then.value!r} while rule {second.id} ({second.file}:{second.line}) "  # type: ignore[union-attr]
                f"derives {fact}={second.then.value!r} for the same patient; the engine refuses such a "  # type: ignore[union-attr]
                f"patient: make the conditions exclusive",
                got=f"both fire for {describe_witness(facts)}"))
        for item in self.contradictions:
            weak, strong = self.rulebook.rule(item.weaker), self.rulebook.rule(item.stronger)
            findings.problems.append(Problem(
                _where(weak),
                f"contradiction on {item.option}: not_advised here but {strong.then.verdict} from rule "  # type: ignore[union-attr]
                f"{strong.id} ({strong.file}:{strong.line}) for the same patient, and the stronger verdict "
                f"would win silently",
                expected="exclusive conditions, contraindication: true on the not_advised rule, or "
                         f"overrides: [{strong.id}] (or the reverse) to state the precedence",
                got=f"both fire for {item.description}"))
        self._report_coverage(findings)
        for what, disease in self.undecided:
            findings.warnings.append(Problem(f"{what} ({disease})", f"search gave up after {STEP_BUDGET} steps; "
                                             "reachability or contradiction not decided"))

    def _report_reachability(self, findings: Findings) -> None:
        for rule in self.rulebook.rules:
            reach = self.reach[rule.id]
            diseases = _diseases_of(rule)
            if not reach:
                if any(what == f"rule {rule.id}" for what, _ in self.undecided):
                    continue
                findings.problems.append(Problem(
                    _where(rule), "unreachable: no valid patient situation of its diseases "
                    f"({', '.join(diseases)}) makes its condition true, derived facts included",
                    expected="a condition some valid situation satisfies"))
                continue
            if not rule.applies_to_all_diseases:
                for disease in diseases:
                    if disease not in reach and (f"rule {rule.id}", disease) not in self.undecided:
                        findings.warnings.append(Problem(_where(rule), f"can never fire for {disease}"))
            for disease, witness in sorted(reach.items()):
                if witness.fired is None and witness.error is None:
                    continue
                if witness.fired is None:
                    findings.problems.append(Problem(
                        _where(rule), f"the engine fails on a situation where this rule fires ({disease}): "
                        f"{witness.error}", got=witness.describe()))
                elif rule.id not in witness.fired:
                    findings.problems.append(Problem(
                        _where(rule), "the engine did not fire this rule for a situation its condition "
                        f"accepts: the compiled rule and its condition disagree ({disease})",
                        got=witness.describe()))

    def _report_coverage(self, findings: Findings) -> None:
        unaddressed = self.unaddressed()
        seen: set[tuple[str, str]] = set()
        for cell in self.rulebook.unaddressed:
            if (cell.disease, cell.option) in seen:
                findings.warnings.append(Problem(f"rulebook.yaml unaddressed {cell.disease} x {cell.option}",
                                                 "listed twice"))
            seen.add((cell.disease, cell.option))
        for disease in DISEASES:
            for option in OPTIONS:
                rules = self.covering(disease, option)
                listed = (disease, option) in unaddressed
                if rules and listed:
                    findings.problems.append(Problem(
                        f"rulebook.yaml unaddressed {disease} x {option}",
                        "listed as deliberately unaddressed but covered by rule "
                        + ", ".join(rule.id for rule in rules),
                        expected="remove it from unaddressed, or retire those rules"))
                elif not rules and not listed:
                    drafts = [rule.id for rule in self.rulebook.rules if isinstance(rule.then, Suggest)
                              and rule.then.option == option and rule.status == "draft"
                              and self.reachable(rule.id, disease)]
                    note = f" (only draft rules: {', '.join(drafts)})" if drafts else ""
                    findings.problems.append(Problem(
                        f"coverage {disease} x {option}", "no active rule can give this option a verdict for "
                        f"this disease{note}",
                        expected="a reachable rule, or an entry under unaddressed in rulebook.yaml with a reason"))
