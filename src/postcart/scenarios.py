"""Scenario files: patient situations with the outcome a clinician expects, written from the evidence.

A scenario file (YAML, under ``scenarios/``) holds ``scenarios:``, a list of::

    - id: lbcl-late-relapse-fit            # unique across the suite
      description: 58-year-old, relapse 11 months after axi-cel, CD19 and CD20 retained, fit, donor.
      situation: {...}                       # the input contract, as for `postcart evaluate`
      expected:
        options:                             # allowed verdicts per option; `not_addressed` = no rule spoke
          bispecific_antibody: [recommended]
          allogeneic_hct: [recommended, consider]
          second_car_t_infusion: [not_addressed, not_advised]
        citations: [dickinson2022_glofitamab]         # each must be cited somewhere in the assessment
        missing_information: [failure.target_antigen] # each must be asked for
        derived: {failure_timing: late}               # optional

Files are read with the strict reader (:mod:`postcart.documents`: no YAML 1.1 surprises, no duplicate
keys, no aliases). Options not listed under ``expected.options`` are not checked. Loading never stops at a bad scenario:
each problem is reported with its file, scenario id and field, and the others still load.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from postcart.assessment import Assessment
from postcart.documents import read_document
from postcart.errors import InvalidSituation, Problem
from postcart.situation import PatientSituation, validate_situation

__all__ = ["Expectation", "Mismatch", "Scenario", "ScenarioLoad", "check", "load_scenarios"]

Outcome = Literal["recommended", "consider", "not_advised", "not_addressed"]
OptionName = Literal[
    "second_car_t_infusion", "alternate_target_car_t", "bispecific_antibody", "clinical_trial",
    "allogeneic_hct", "quality_of_life_focus", "radiotherapy", "other_systemic_therapy", "long_term_follow_up",
]


class Expectation(BaseModel):
    """What a clinician accepts as the right answer for a scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    options: dict[OptionName, list[Outcome]] = Field(default_factory=dict)
    citations: list[str] = Field(default_factory=list)
    missing_information: list[str] = Field(default_factory=list)
    derived: dict[str, str | bool] = Field(default_factory=dict)


class _ScenarioSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    situation: dict[str, Any]
    expected: Expectation = Field(default_factory=Expectation)
    tags: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Scenario:
    id: str
    description: str
    situation: PatientSituation
    expected: Expectation
    file: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Mismatch:
    """One way an assessment differs from a scenario's expectation."""

    what: str
    expected: str
    got: str
    rules: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.what}: expected {self.expected}, got {self.got}"
        if self.rules:
            text += f" (rules: {', '.join(self.rules)})"
        return text


@dataclass
class ScenarioLoad:
    scenarios: list[Scenario] = field(default_factory=list)
    invalid: list[tuple[str, str, Problem]] = field(default_factory=list)  # (file, scenario id, problem)


def _files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*.yaml") if p.is_file())
        yield from sorted(p for p in path.rglob("*.yml") if p.is_file())
    else:
        yield path


def load_scenarios(*paths: str | Path) -> ScenarioLoad:
    """Load every scenario under the given files or directories, keeping the bad ones as problems."""
    load = ScenarioLoad()
    seen: dict[str, str] = {}
    for root in paths:
        for file in _files(Path(root)):
            name = str(file)
            try:
                data = read_document(file)
            except InvalidSituation as error:
                for problem in error.problems:
                    load.invalid.append((name, "", Problem(problem.location, f"unreadable scenario file: "
                                                           f"{problem.message}", problem.expected, problem.got)))
                continue
            entries = data.get("scenarios") if isinstance(data, dict) else None
            if not isinstance(entries, list):
                load.invalid.append((name, "", Problem(name, "a scenario file holds a list under 'scenarios'",
                                                       "scenarios: [...]", type(data).__name__)))
                continue
            for index, entry in enumerate(entries):
                scenario_id = str(entry.get("id", f"#{index + 1}")) if isinstance(entry, dict) else f"#{index + 1}"
                try:
                    spec = _ScenarioSpec.model_validate(entry)
                except ValidationError as error:
                    for item in error.errors(include_url=False):
                        where = ".".join(str(part) for part in item["loc"])
                        load.invalid.append((name, scenario_id, Problem(f"{name} {scenario_id} {where}",
                                                                        item["msg"])))
                    continue
                try:
                    situation = validate_situation(spec.situation)
                except InvalidSituation as error:
                    for problem in error.problems:
                        load.invalid.append((name, spec.id, Problem(
                            f"{name} {spec.id} situation.{problem.location}", problem.message,
                            problem.expected, problem.got)))
                    continue
                if spec.id in seen:
                    load.invalid.append((name, spec.id, Problem(f"{name} {spec.id} id",
                                                                f"duplicate scenario id (also in {seen[spec.id]})")))
                    continue
                seen[spec.id] = name
                load.scenarios.append(Scenario(spec.id, spec.description, situation, spec.expected, name,
                                               tuple(spec.tags)))
    return load


def check(scenario: Scenario, assessment: Assessment) -> list[Mismatch]:
    """Every difference between the assessment and what the scenario expects (empty: it passes)."""
    mismatches: list[Mismatch] = []
    for option, allowed in scenario.expected.options.items():
        given = assessment.option(option)
        got = given.verdict if given else "not_addressed"
        if got not in allowed:
            mismatches.append(Mismatch(f"option {option}", " or ".join(allowed), got,
                                       tuple(given.rules) if given else ()))
    cited = {c.key for option in assessment.options for c in option.citations}
    cited |= {c.key for missing in assessment.missing_information for c in missing.citations}
    for key in scenario.expected.citations:
        if key not in cited:
            mismatches.append(Mismatch(f"citation {key}", "cited", "not cited"))
    asked = {missing.field for missing in assessment.missing_information}
    for name in scenario.expected.missing_information:
        if name not in asked:
            mismatches.append(Mismatch(f"missing information {name}", "asked for", "not asked for"))
    for name, value in scenario.expected.derived.items():
        got_value = assessment.derived.get(name)
        if got_value != value:
            mismatches.append(Mismatch(f"derived {name}", repr(value), repr(got_value)))
    return mismatches
