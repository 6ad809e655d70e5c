"""The rulebook's model: rules, derived-fact declarations, references and the loaded ``Rulebook``.

A ``Rule`` has typed views of what it does (``suggestion``, ``derivation``, ``question``), so callers
never test ``isinstance(rule.then, ...)``; ``Rulebook.rules_for(disease)`` is the one per-disease filter.
Loading and checking the YAML files is :mod:`postcart.rulebook.loading`.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from postcart.errors import Problem
from postcart.rulebook import conditions as cond
from postcart.situation import field_catalogue
from postcart.vocabulary import DiseaseName, OptionName, VerdictName

__all__ = [
    "Ask",
    "Derive",
    "FactDeclaration",
    "Reference",
    "Rule",
    "Rulebook",
    "Suggest",
    "Unaddressed",
    "default_rules_dir",
]

RuleDiseases = Literal["LBCL", "FL", "MCL", "B_ALL", "MM", "CLL", "all"]
Status = Literal["draft", "active", "retired"]


def default_rules_dir() -> Path:
    """``$POSTCART_RULES`` if set, else the rulebook shipped inside the package (``postcart/rules``)."""
    env = os.environ.get("POSTCART_RULES")
    if env:
        return Path(env)
    return Path(str(resources.files("postcart") / "rules"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Derive(_Strict):
    """Derive a fact: ``derive: failure_timing, value: early``."""

    derive: str
    value: str | bool


class Suggest(_Strict):
    """Give an option a verdict, with a rationale a clinician reads and the sources behind it."""

    option: OptionName
    verdict: VerdictName
    rationale: str = Field(min_length=20)
    citations: tuple[str, ...] = ()
    contraindication: bool = False
    overrides: tuple[str, ...] = Field(
        default=(), description="Ids of rules on the same option whose verdict this rule's verdict replaces "
        "when both fire: the stated precedence between rules that would otherwise contradict.")


class Ask(_Strict):
    """Ask for a missing input that would change the answer."""

    ask: str
    why: str = Field(min_length=10)
    citations: tuple[str, ...] = ()


def _then_kind(value: Any) -> str:
    """Which variant a ``then`` is, by the key that names it: errors then speak of that variant only."""
    keys = value if isinstance(value, Mapping) else vars(value) if isinstance(value, BaseModel) else {}
    if "derive" in keys:
        return "Derive"
    if "ask" in keys:
        return "Ask"
    return "Suggest"


_Then = Annotated[
    Annotated[Derive, Tag("Derive")] | Annotated[Suggest, Tag("Suggest")] | Annotated[Ask, Tag("Ask")],
    Discriminator(_then_kind),
]


class _RuleSpec(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=80)
    title: str = Field(min_length=5)
    diseases: tuple[RuleDiseases, ...] = Field(min_length=1)
    when: Any = None
    then: _Then
    status: Status = "active"
    version: int = Field(default=1, ge=1)
    author: str | None = None
    approved: dt.date | None = None
    review_by: dt.date | None = None
    notes: str | None = None


class FactDeclaration(_Strict):
    """A derived fact: its meaning, the values it takes, and its value when no rule derives it."""

    description: str = Field(min_length=10)
    values: tuple[str | bool, ...] = Field(min_length=1)
    default: str | bool | None = None
    title: str | None = None
    #: How the fact is said in a "because" line, per value (see ``situation.FieldSpec.said``).
    said: dict[str, str] = Field(default_factory=dict)
    #: How a value is said inside another fact's words (default: the value, underscores as spaces).
    words: dict[str, str] = Field(default_factory=dict)


class Reference(_Strict):
    """One bibliography entry; every rule cites these by key."""

    key: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str = Field(min_length=3, description="How the reference is named in text, e.g. 'Dickinson 2022'.")
    authors: str
    title: str
    source: str = Field(description="Journal (year;volume:pages) or the document it is.")
    year: int | None = None
    doi: str | None = None
    pmid: str | None = None
    url: str | None = None
    confidence: Literal["verified", "partially_verified", "from_memory_unverified", "seed_document"]
    note: str | None = None
    findings: str | None = Field(
        default=None,
        description="The source's key findings as seen (copied from the evidence base, or the seed "
        "document's own sentences); every figure a rule quotes from it must appear here.",
    )

    @field_validator("doi")
    @classmethod
    def _doi_shape(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("10."):
            raise ValueError("a DOI starts with '10.'")
        return value

    @property
    def link(self) -> str | None:
        if self.doi:
            return f"https://doi.org/{self.doi}"
        if self.pmid:
            return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/"
        return self.url


class _RulebookMeta(_Strict):
    version: str
    description: str | None = None
    unaddressed: tuple[Unaddressed, ...] = ()


class Unaddressed(_Strict):
    """A disease x option cell left without rules on purpose, with the reason shown to clinicians."""

    disease: DiseaseName
    option: OptionName
    reason: str = Field(min_length=10)


_RulebookMeta.model_rebuild()


@dataclass(frozen=True)
class Rule:
    """A checked rule, ready to compile."""

    id: str
    title: str
    diseases: tuple[str, ...]
    condition: cond.Condition | None
    then: Derive | Suggest | Ask
    status: str
    version: int
    file: str
    line: int
    author: str | None = None
    approved: dt.date | None = None
    review_by: dt.date | None = None
    notes: str | None = None

    @property
    def applies_to_all_diseases(self) -> bool:
        return "all" in self.diseases

    def applies_to(self, disease: str) -> bool:
        """Whether the rule runs for patients with this disease."""
        return self.applies_to_all_diseases or disease in self.diseases

    @property
    def suggestion(self) -> Suggest | None:
        """What the rule says about an option, when it is an option rule."""
        return self.then if isinstance(self.then, Suggest) else None

    @property
    def derivation(self) -> Derive | None:
        """The fact the rule derives, when it is a derivation."""
        return self.then if isinstance(self.then, Derive) else None

    @property
    def question(self) -> Ask | None:
        """The missing input the rule asks for, when it is a question."""
        return self.then if isinstance(self.then, Ask) else None

    @property
    def full_condition(self) -> cond.Condition | None:
        """The rule's condition with its disease filter folded in."""
        if self.applies_to_all_diseases:
            return self.condition
        disease = cond.Comparison("disease", "in", tuple(self.diseases))
        if self.condition is None:
            return disease
        return cond.All((disease, self.condition))

    @property
    def reads(self) -> frozenset[str]:
        """Fields (situation paths and ``derived.*``) the rule's condition reads."""
        if self.condition is None:
            return frozenset()
        return frozenset(leaf.field for leaf in cond.leaves(self.condition))


@dataclass(frozen=True)
class Rulebook:
    """A loaded, checked rulebook. Immutable; share it freely."""

    version: str
    content_hash: str
    rules: tuple[Rule, ...]
    facts: Mapping[str, FactDeclaration]
    references: Mapping[str, Reference]
    unaddressed: tuple[Unaddressed, ...] = ()
    directory: str | None = None
    warnings: tuple[Problem, ...] = field(default_factory=tuple)

    @classmethod
    def load(cls, directory: str | os.PathLike[str] | None = None, *, include_drafts: bool = False,
             today: dt.date | None = None) -> Rulebook:
        """Load and check every file of a rules directory.

        Args:
            directory: the rules directory; default :func:`default_rules_dir`.
            include_drafts: also run rules whose status is ``draft`` (retired rules never run).
            today: the date review deadlines are checked against (default: today).

        Raises:
            RuleDefinitionError: listing every problem found, each with file, line, rule id and field.
        """
        from postcart.rulebook.loading import load_rulebook  # the loader builds Rulebooks: imported late

        path = Path(directory) if directory is not None else default_rules_dir()
        return load_rulebook(path, include_drafts=include_drafts, today=today or dt.date.today())

    def rules_for(self, disease: str) -> tuple[Rule, ...]:
        """The rules that run for patients with this disease, in rulebook order."""
        cached = self._per_disease.get(disease)
        if cached is None:
            cached = self._per_disease[disease] = tuple(rule for rule in self.rules if rule.applies_to(disease))
        return cached

    @functools.cached_property
    def _per_disease(self) -> dict[str, tuple[Rule, ...]]:
        return {}

    @functools.cached_property
    def _by_id(self) -> dict[str, Rule]:
        return {rule.id: rule for rule in self.rules}

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (KeyError if it is not in the rulebook)."""
        return self._by_id[rule_id]

    @functools.cached_property
    def _labels(self) -> dict[str, str]:
        return {}

    def label(self, field_path: str) -> str:
        """A field's name in words: its title in the input model or the derived fact's title."""
        known = self._labels.get(field_path)
        if known is None:
            known = self._labels[field_path] = self._label(field_path)
        return known

    def _label(self, field_path: str) -> str:
        if field_path.startswith("derived."):
            name = field_path.removeprefix("derived.")
            declaration = self.facts.get(name)
            return (declaration.title if declaration and declaration.title else name.replace("_", " "))
        spec = field_catalogue().get(field_path)
        return spec.title if spec else field_path
