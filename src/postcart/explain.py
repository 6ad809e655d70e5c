"""Explanations: why an option got its verdict, why another did not, and what would change it.

- **Why**: the rules that decided an option and the input facts that made them fire, with the patient's
  values and the rules' thresholds (from :func:`postcart.assessment.explain_true`).
- **Why not**: for an option that was not suggested, or not as strongly as it could have been, every
  rule of the patient's disease that could have suggested it, with the comparisons that failed (the
  patient's value against the threshold) and, for a failed derived fact, the rules upstream that derive
  it. Near misses (fewest comparisons to change, counted on the inputs) come first.
- **What would change it**: for each input the option hinges on that could plausibly still change (the
  policy in ``rules/policy/changeable.yaml``: an unknown a test would resolve, a fitness score after
  recovery, a donor search), the values that change the verdict, found by re-running the engine on the
  changed situation, never by reasoning about the rules.
- **Missing information** asked for by the assessment, ranked by how many options' verdicts its possible
  values change (again by re-running the engine).

Nothing here decides a verdict: the Python condition evaluator only says which comparisons held or
failed; every "would become" is an engine result.

It is one module because why, why-not and what-would-change share one walk over the patient's rules and
their comparisons; the renderings at the end are that walk's only readers.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from postcart.assessment import DISCLAIMER, Assessment, Audit, build_assessment, explain_true
from postcart.documents import parse_yaml, read_text
from postcart.engine import Engine
from postcart.errors import EvaluationError, InvalidSituation, Problem, RuleDefinitionError
from postcart.evaluation import assess, default_engine
from postcart.rulebook import Derive, Rule, Rulebook, Suggest, default_rules_dir
from postcart.rulebook import conditions as cond
from postcart.situation import PatientSituation, field_catalogue, set_path, validate_situation
from postcart.unknowns import resolver_for
from postcart.vocabulary import OPTIONS

__all__ = [
    "Change",
    "ChangeablePolicy",
    "Explanation",
    "FailedComparison",
    "MissingImpact",
    "OptionExplanation",
    "RuleCheck",
    "explain",
    "load_policy",
    "to_markdown",
    "to_text",
]

POLICY_FILE = Path("policy") / "changeable.yaml"

#: Outcome of an option, strongest first; ``not_addressed`` = no rule spoke to it.
OUTCOMES: tuple[str, ...] = ("recommended", "consider", "not_advised", "not_addressed")
Outcome = Literal["recommended", "consider", "not_advised", "not_addressed"]


# --------------------------------------------------------------------------------------------------
# the policy: which inputs could plausibly change


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChangeableField(_Strict):
    """One input that could still change, while it has one of the ``while`` values (None = unknown)."""

    field: str
    while_: tuple[str | bool | int | None, ...] | None = Field(default=None, alias="while")
    direction: Literal["any", "lower", "higher"] = "any"
    resolved_by: str = Field(min_length=3)

    def open_at(self, current: Any) -> bool:
        """Whether the field can still change from its current value."""
        return self.while_ is None or current in self.while_


class ChangeablePolicy(_Strict):
    """The inputs ``explain`` may vary to say what would change an answer (see rules/policy/)."""

    changeable: tuple[ChangeableField, ...] = ()

    def entry(self, field: str) -> ChangeableField | None:
        return next((item for item in self.changeable if item.field == field), None)


def load_policy(rules_dir: str | Path | None = None) -> ChangeablePolicy:
    """The policy beside a rulebook (``<rules>/policy/changeable.yaml``), else the bundled one.

    Raises:
        RuleDefinitionError: the file is not valid YAML or names an unknown field.
    """
    candidates = [Path(rules_dir) / POLICY_FILE] if rules_dir is not None else []
    candidates.append(default_rules_dir() / POLICY_FILE)
    path = next((candidate for candidate in candidates if candidate.is_file()), None)
    if path is None:
        return ChangeablePolicy()
    return _read_policy(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_policy(name: str, mtime_ns: int) -> ChangeablePolicy:
    """Parse and check a policy file (cached by path and modification time: the file is read once)."""
    path = Path(name)
    try:
        text, name = read_text(path, error=RuleDefinitionError)
        policy = ChangeablePolicy.model_validate(parse_yaml(text, name, error=RuleDefinitionError) or {})
    except ValidationError as error:
        raise RuleDefinitionError([Problem(f"{path} {'.'.join(map(str, item['loc']))}", item["msg"])
                                   for item in error.errors(include_url=False)]) from None
    catalogue = field_catalogue()
    unknown = [Problem(f"{path} field", f"unknown situation field '{item.field}'", "a situation field",
                       item.field) for item in policy.changeable if item.field not in catalogue]
    if unknown:
        raise RuleDefinitionError(unknown)
    return policy


# --------------------------------------------------------------------------------------------------
# the output


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class FailedComparison(_Out):
    """A comparison of a rule's condition that did not come out the way the rule needs."""

    field: str
    actual: str = Field(description="The patient's value in words ('unknown' when absent).")
    needs: str = Field(description="What the rule needs, e.g. '≤ 1'.")
    text: str = Field(description="E.g. 'ECOG performance status 3 (needs ≤ 1)'.")
    upstream: list[RuleCheck] = Field(default_factory=list,
                                      description="For a derived fact: the rules that could derive what is needed.")


class RuleCheck(_Out):
    """One rule checked against the patient: what held, what failed, how far it is from firing."""

    rule: str
    title: str
    verdict: str | None = Field(description="The rule's verdict (suggestions) or derived value (derivations).")
    fired: bool
    held: list[str]
    failed: list[FailedComparison]
    distance: int = Field(description="Input comparisons that would have to change for the rule to fire.")
    inputs: list[str] = Field(description="The input fields those comparisons read.")


class Change(_Out):
    """A value of one input that changes the option's verdict, found by re-running the rules."""

    field: str
    current: str
    values: list[str | bool | int | float] = Field(description="The input values that give this verdict.")
    verdict: Outcome
    rules: list[str] = Field(description="The rules that speak to the option in the changed situation.")
    text: str


class OptionExplanation(_Out):
    option: str
    verdict: Outcome
    because: list[str]
    rules: list[str]
    contraindications: list[RuleCheck] = Field(description="Fired contraindications that decide the verdict.")
    near_misses: list[RuleCheck] = Field(
        description="Rules that would have suggested it (recommended/consider) more strongly and did not fire, "
        "nearest first.")
    changes: list[Change]


class MissingImpact(_Out):
    field: str
    why: str
    verdicts_changed: int = Field(description="How many options' verdicts some value of this field changes.")
    options: list[str]


class Explanation(_Out):
    patient_id: str | None = None
    disease: str
    options: list[OptionExplanation]
    missing_information: list[MissingImpact]
    notes: list[str] = Field(default_factory=list,
                             description="Changed situations the engine could not evaluate (a rulebook defect).")
    audit: Audit
    disclaimer: str = DISCLAIMER

    def option(self, name: str) -> OptionExplanation | None:
        return next((item for item in self.options if item.option == name), None)


# --------------------------------------------------------------------------------------------------
# the work


def explain(situation: PatientSituation | Mapping[str, Any], option: str | None = None,
            engine: Engine | None = None, policy: ChangeablePolicy | None = None) -> Explanation:
    """Explain the assessment of a situation: one option, or every option the disease's rules address.

    Args:
        situation: a ``PatientSituation`` or a plain mapping.
        option: an option name; default, every option addressed or addressable for the disease.
        engine: the engine to use (default, the bundled rulebook's).
        policy: which inputs may change; default, the policy beside the engine's rulebook.

    Raises:
        InvalidSituation: the situation breaks the input contract, or ``option`` is not an option.
    """
    if option is not None and option not in OPTIONS:
        raise InvalidSituation(Problem("option", f"unknown option '{option}'", "one of " + ", ".join(OPTIONS),
                                       option))
    validated = validate_situation(situation)
    engine = engine or default_engine()
    policy = policy if policy is not None else load_policy(engine.rulebook.directory)
    return _Explainer(engine, validated, policy).explain(option)


class _Explainer:
    """One explanation's work: the base run, and re-runs of the situation with one input changed."""

    def __init__(self, engine: Engine, situation: PatientSituation, policy: ChangeablePolicy) -> None:
        self.engine = engine
        self.rulebook: Rulebook = engine.rulebook
        self.situation = situation
        self.policy = policy
        self.result = engine.run(situation)
        self.facts: Mapping[str, Any] = self.result.facts
        self.assessment = build_assessment(self.rulebook, situation, self.result,
                                           resolver_for(engine).resolve(situation, self.result))
        self.rules = list(self.rulebook.rules_for(situation.disease))
        self._reruns: dict[tuple[str, Any], Assessment | None] = {}
        self.notes: list[str] = []

    # --- top level

    def explain(self, option: str | None) -> Explanation:
        if option is not None:
            names = [option]
        else:
            addressable = {rule.then.option for rule in self.rules if isinstance(rule.then, Suggest)}
            names = [name for name in OPTIONS if name in addressable or self.assessment.option(name)]
        return Explanation(
            patient_id=self.situation.patient_id,
            disease=self.situation.disease,
            options=[self.explain_option(name) for name in names],
            missing_information=self.rank_missing(),
            notes=self.notes,
            audit=self.assessment.audit,
        )

    def explain_option(self, option: str) -> OptionExplanation:
        given = self.assessment.option(option)
        verdict = given.verdict if given else "not_addressed"
        rank = OUTCOMES.index(verdict)
        fired = set(self.result.fired)
        suggestions = [(rule, rule.then) for rule in self.rules
                       if isinstance(rule.then, Suggest) and rule.then.option == option]
        contraindications = [self.check(rule) for rule, then in suggestions
                             if rule.id in fired and verdict == "not_advised" and then.contraindication
                             and then.verdict == "not_advised"]
        near = [self.check(rule) for rule, then in suggestions  # rules that would *suggest* it, more strongly
                if rule.id not in fired and then.verdict != "not_advised" and OUTCOMES.index(then.verdict) < rank]
        near.sort(key=lambda check: (check.distance, OUTCOMES.index(check.verdict or "not_addressed"), check.rule))
        return OptionExplanation(
            option=option,
            verdict=verdict,
            because=list(given.because) if given else [],
            rules=list(given.rules) if given else [],
            contraindications=contraindications,
            near_misses=near,
            changes=self.changes(option, verdict, near, [self.rulebook.rule(rule_id) for rule_id in
                                                         (given.rules if given else [])]),
        )

    # --- why not

    def check(self, rule: Rule) -> RuleCheck:
        """The rule against the patient's facts: what held, the fewest comparisons that would make it fire."""
        fired = rule.id in self.result.fired
        if rule.condition is None or cond.evaluate(rule.condition, self.facts):
            held = explain_true(self.rulebook, rule, self.facts)
        else:
            held = _held_parts(self.rulebook, rule, self.facts)
        failed: list[FailedComparison] = []
        distance = 0
        inputs: list[str] = []
        if not fired and rule.condition is not None:
            for leaf, wanted in unmet(rule.condition, self.facts, True):
                comparison, cost, fields = self.failed_comparison(leaf, wanted)
                failed.append(comparison)
                distance += cost
                inputs += [field for field in fields if field not in inputs]
        then = rule.then
        verdict = (then.verdict if isinstance(then, Suggest)
                   else cond.render_value(then.value) if isinstance(then, Derive) else None)
        return RuleCheck(rule=rule.id, title=rule.title, verdict=verdict, fired=fired, held=held, failed=failed,
                         distance=distance, inputs=inputs)

    def failed_comparison(self, leaf: cond.Comparison, wanted: bool) -> tuple[FailedComparison, int, list[str]]:
        label = self.rulebook.label(leaf.field)
        actual = self.facts.get(leaf.field)
        shown = "unknown" if actual is None else cond.render_value(actual)
        needs = _needs(leaf, wanted)
        upstream: list[RuleCheck] = []
        cost, fields = 1, [leaf.field]
        if leaf.field.startswith("derived."):
            name = leaf.field.removeprefix("derived.")
            for rule in self.rules:
                if isinstance(rule.then, Derive) and rule.then.derive == name and \
                        leaf.holds({leaf.field: rule.then.value}) is wanted:
                    upstream.append(self.check(rule))
            upstream.sort(key=lambda check: (check.distance, check.rule))
            if upstream and upstream[0].distance > 0:
                cost, fields = upstream[0].distance, list(upstream[0].inputs)
        text = f"{label} {shown} (needs {needs})" if leaf.op not in ("known", "contains") else f"{label} {needs}"
        return (FailedComparison(field=leaf.field, actual=shown, needs=needs, text=text, upstream=upstream),
                cost, fields)

    # --- what would change it

    def changes(self, option: str, verdict: str, near: list[RuleCheck], deciding: list[Rule]) -> list[Change]:
        """Values of changeable inputs that change the option's verdict, each verified by a re-run."""
        fields: list[str] = []
        for check in near:
            if len(check.inputs) == 1 and check.inputs[0] not in fields:
                fields.append(check.inputs[0])
        for rule in deciding:
            for field in self.input_fields(rule):
                if field not in fields:
                    fields.append(field)
        out: list[Change] = []
        for field in fields:
            entry = self.policy.entry(field)
            current = self.situation_value(field)
            if entry is None or not entry.open_at(current):
                continue
            by_outcome: dict[Outcome, list[Any]] = {}
            rules_for: dict[Outcome, list[str]] = {}
            for value in self.candidate_values(field, current, entry.direction):
                rerun = self.rerun(field, value)
                if rerun is None:
                    continue
                given = rerun.option(option)
                outcome: Outcome = given.verdict if given else "not_addressed"
                if outcome != verdict:
                    by_outcome.setdefault(outcome, []).append(value)
                    rules_for.setdefault(outcome, list(given.rules) if given else [])
            label = self.rulebook.label(field)
            for outcome, values in sorted(by_outcome.items(), key=lambda item: OUTCOMES.index(item[0])):
                shown = _or(cond.render_value(value) for value in values)
                out.append(Change(
                    field=field, current=_shown(current), values=values,
                    verdict=outcome,
                    rules=rules_for[outcome],
                    text=f"if {label} is {shown} {entry.resolved_by}, {_option_words(option)} becomes "
                         f"'{outcome.replace('_', ' ')}'" + (f" ({', '.join(rules_for[outcome])})"
                                                             if rules_for[outcome] else ""),
                ))
        return out

    def input_fields(self, rule: Rule) -> list[str]:
        """The situation fields a rule reads, through the rules that derive the facts it reads."""
        out: list[str] = []
        for field in sorted(rule.reads):
            if field.startswith("derived."):
                name = field.removeprefix("derived.")
                for other in self.rules:
                    if isinstance(other.then, Derive) and other.then.derive == name:
                        out += [item for item in self.input_fields(other) if item not in out]
            elif field not in out:
                out.append(field)
        return out

    def candidate_values(self, field: str, current: Any, direction: str = "any") -> list[Any]:
        """The values worth trying for a field: every enumerated value, or the numbers around thresholds."""
        spec = field_catalogue()[field]
        if spec.kind == "enum":
            values: list[Any] = [value for value in spec.values if value != "unknown"]
        elif spec.kind == "bool":
            values = [True, False]
        elif spec.kind in ("int", "float"):
            values = self.numbers(field, spec.kind, spec.minimum, spec.maximum)
            if direction == "lower" and current is not None:
                values = sorted((value for value in values if value < current), reverse=True)
            elif direction == "higher" and current is not None:
                values = [value for value in values if value > current]
        else:
            return []
        return [value for value in values if value != current]

    def numbers(self, field: str, kind: str, minimum: float | None, maximum: float | None) -> list[Any]:
        if kind == "int" and minimum is not None and maximum is not None and maximum - minimum <= 10:
            return list(range(int(minimum), int(maximum) + 1))
        step = 1 if kind == "int" else 0.5
        points: set[float] = {value for value in (minimum, maximum) if value is not None}
        for rule in self.rulebook.rules:
            for leaf in cond.leaves(rule.condition) if rule.condition is not None else ():
                if leaf.field == field and isinstance(leaf.value, (int, float)) and not isinstance(leaf.value, bool):
                    points |= {leaf.value - step, leaf.value, leaf.value + step}
        inside = sorted(point for point in points if (minimum is None or point >= minimum)
                        and (maximum is None or point <= maximum))
        return [int(point) for point in inside] if kind == "int" else inside

    def situation_value(self, field: str) -> Any:
        data: Any = self.situation.model_dump(mode="json")
        for part in field.split("."):
            data = data.get(part) if isinstance(data, dict) else None
        return data

    def rerun(self, field: str, value: Any) -> Assessment | None:
        """The assessment of the situation with one field changed (None: that situation is invalid)."""
        key = (field, value)
        if key not in self._reruns:
            data = self.situation.model_dump(mode="json")
            set_path(data, field, value)
            try:
                changed = validate_situation(data)
                self._reruns[key] = assess(self.engine, changed)
            except InvalidSituation:  # e.g. a value the rest of the situation does not allow
                self._reruns[key] = None
            except EvaluationError as error:  # a rulebook defect on this hypothetical: say so, go on
                self.notes.append(f"with {field} = {cond.render_value(value)} the rules could not be evaluated: "
                                  f"{error}")
                self._reruns[key] = None
        return self._reruns[key]

    # --- missing information

    def rank_missing(self) -> list[MissingImpact]:
        """The assessment's missing information, most verdicts changed first (ties keep their order)."""
        before = _verdicts(self.assessment)
        ranked: list[MissingImpact] = []
        for missing in self.assessment.missing_information:
            if missing.field not in field_catalogue():
                continue
            changed: list[str] = []
            current = self.situation_value(missing.field)
            for value in self.candidate_values(missing.field, current):
                rerun = self.rerun(missing.field, value)
                if rerun is None:
                    continue
                after = _verdicts(rerun)
                changed += [name for name in OPTIONS
                            if before.get(name) != after.get(name) and name not in changed]
            ranked.append(MissingImpact(field=missing.field, why=missing.why, verdicts_changed=len(changed),
                                        options=[name for name in OPTIONS if name in changed]))
        ranked.sort(key=lambda item: -item.verdicts_changed)
        return ranked


def unmet(condition: cond.Condition, facts: Mapping[str, Any], wanted: bool) -> list[tuple[cond.Comparison, bool]]:
    """The fewest comparisons that must change for ``condition`` to come out ``wanted``, each with the
    value it must take. Empty when it already does."""
    if isinstance(condition, cond.Comparison):
        return [] if condition.holds(facts) is wanted else [(condition, wanted)]
    if isinstance(condition, cond.Not):
        return unmet(condition.item, facts, not wanted)
    parts = [unmet(item, facts, wanted) for item in condition.items]
    if isinstance(condition, cond.All) is wanted:  # all items must come out `wanted`
        return [pair for part in parts for pair in part]
    return min(parts, key=len)


def _held_parts(rulebook: Rulebook, rule: Rule, facts: Mapping[str, Any]) -> list[str]:
    """For a rule that did not fire, the comparisons that already hold (for context)."""
    if rule.condition is None:
        return []
    texts = []
    for leaf, wanted in _leaves_with_polarity(rule.condition, True):
        if leaf.holds(facts) is wanted:
            label, actual = rulebook.label(leaf.field), _shown(facts.get(leaf.field))
            if leaf.op in ("known", "contains"):
                texts.append(f"{label} {_needs(leaf, wanted)}")
            elif wanted and leaf.op in ("eq", "in"):
                texts.append(f"{label}: {actual}")
            else:
                texts.append(f"{label} {actual} ({_needs(leaf, wanted)})")
    return list(dict.fromkeys(texts))


def _leaves_with_polarity(condition: cond.Condition, wanted: bool) -> Iterable[tuple[cond.Comparison, bool]]:
    if isinstance(condition, cond.Comparison):
        yield condition, wanted
    elif isinstance(condition, cond.Not):
        yield from _leaves_with_polarity(condition.item, not wanted)
    else:
        for item in condition.items:
            yield from _leaves_with_polarity(item, wanted)


_NEGATED_WORDS = {"eq": "≠", "ne": "=", "lt": "≥", "le": ">", "gt": "≤", "ge": "<", "in": "none of",
                  "not_in": "one of"}


def _needs(leaf: cond.Comparison, wanted: bool) -> str:
    """What a comparison needs of the field, in words: '≤ 1', 'one of a, b', 'known'."""
    if leaf.op == "known":
        return "known" if bool(leaf.value) is wanted else "unknown"
    if leaf.op == "contains":
        return f"{'includes' if wanted else 'does not include'} {cond.render_value(leaf.value)}"
    operator = cond.OPERATORS[leaf.op] if wanted else _NEGATED_WORDS[leaf.op]
    return f"{operator} {cond.render_value(leaf.value)}"


def _verdicts(assessment: Assessment) -> dict[str, str]:
    return {item.option: item.verdict for item in assessment.options}


def _shown(value: Any) -> str:
    return "unknown" if value is None else cond.render_value(value)


def _or(values: Iterable[str]) -> str:
    items = list(values)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def _option_words(option: str) -> str:
    from postcart.vocabulary import option_name

    return option_name(option).lower().replace("car-t", "CAR-T")


# --------------------------------------------------------------------------------------------------
# renderings


def to_text(explanation: Explanation) -> str:
    """The explanation as plain text."""
    return _render(explanation, markdown=False)


def to_markdown(explanation: Explanation) -> str:
    """The explanation as Markdown."""
    return _render(explanation, markdown=True)


def _render(explanation: Explanation, markdown: bool) -> str:
    from postcart.vocabulary import option_name

    def heading(text: str, level: int) -> list[str]:
        if markdown:
            return ["#" * level + " " + text, ""]
        return [text, ("=" if level <= 1 else "-") * len(text)]

    def code(text: str) -> str:
        return f"`{text}`" if markdown else text

    title = f"postcart explanation: {explanation.disease}"
    out = heading(title + (f" ({explanation.patient_id})" if explanation.patient_id else ""), 1)
    audit = explanation.audit
    out += [(f"Rulebook {audit.rulebook_version} ({audit.rulebook_hash[:12]}), evaluated "
             f"{audit.evaluated_at.isoformat(timespec='seconds')}."), ""]
    for item in explanation.options:
        out += heading(f"{option_name(item.option)}: {item.verdict.replace('_', ' ')}", 2)
        if item.because:
            out += [f"Why: {'; '.join(item.because)} ({', '.join(code(rule) for rule in item.rules)}).", ""]
        for check in item.contraindications:
            out += [f"Not advised because {code(check.rule)} ({check.title}) holds: {'; '.join(check.held)}.", ""]
        if item.near_misses:
            out += [("Why not: the rules that could have suggested it, nearest first:"
                     if item.verdict == "not_addressed" else
                     "Why not stronger: the rules that could have given a stronger verdict, nearest first:")]
            for check in item.near_misses:
                out += _render_check(check, code)
            out.append("")
        elif item.verdict != "recommended":
            out += ["No rule for this disease could give it a stronger verdict.", ""]
        if item.changes:
            out += ["What would change it (each re-evaluated by the engine):"]
            out += [f"- {change.text}" for change in item.changes]
            out.append("")
    for note in explanation.notes:
        out += [f"Note: {note}", ""]
    if explanation.missing_information:
        out += heading("Missing information, by verdicts it could change", 2)
        for missing in explanation.missing_information:
            changed = ", ".join(option_name(name) for name in missing.options) or "none"
            out.append(f"- {code(missing.field)}: {missing.verdicts_changed} verdict(s) ({changed}). {missing.why}")
        out.append("")
    out += [f"*{explanation.disclaimer}*"] if markdown else textwrap.wrap(explanation.disclaimer, width=100)
    out.append("")
    return "\n".join(out)


def _render_check(check: RuleCheck, code: Any, depth: int = 0, lead: str = "") -> list[str]:
    pad = "  " * depth
    verdict = f" → {check.verdict.replace('_', ' ')}" if check.verdict else ""
    lines = [f"{pad}- {lead}{code(check.rule)} ({check.title}{verdict}): {check.distance} comparison(s) from firing"]
    for failed in check.failed:
        lines.append(f"{pad}  - failed: {failed.text}")
        for upstream in failed.upstream:
            lines += _render_check(upstream, code, depth + 2, "derived by ")
    if check.held:
        lines.append(f"{pad}  - held: {'; '.join(check.held)}")
    return lines


FailedComparison.model_rebuild()
