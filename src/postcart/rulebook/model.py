"""The rulebook's model: rules, derived-fact declarations, references and the loaded ``Rulebook``.

A ``Rule`` has typed views of what it does (``suggestion``, ``derivation``, ``question``), so callers
never test ``isinstance(rule.then, ...)``; ``Rulebook.rules_for(disease)`` is the one per-disease filter.
Loading and checking the YAML files is :mod:`postcart.rulebook.loading`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from postcart.errors import Problem
from postcart.rulebook import conditions as cond
from postcart.rulebook.bibliography import Reference
from postcart.situation import field_catalogue
from postcart.vocabulary import DiseaseName, OptionName, VerdictName

__all__ = [
    "Ask",
    "Derive",
    "Evidence",
    "FactDeclaration",
    "RecordedReview",
    "Reference",
    "Rule",
    "Rulebook",
    "Suggest",
    "Unaddressed",
    "UnknownInput",
    "default_rules_dir",
    "review_checksum",
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


EvidenceLevel = Literal["A", "B", "C", "D", "E"]
EvidenceBasis = Literal["approved", "guideline", "off_label", "trial_only"]


class Evidence(_Strict):
    """How strong the evidence behind a suggestion is, and on what footing the option stands.

    The scheme (docs/rulebook-format.md): ``level`` A = randomised or prospective trial in the post-CAR-T
    setting, B = prospective trial outside it or a large registry, C = retrospective series,
    D = guideline or expert consensus, E = extrapolated from another disease or setting.
    """

    level: EvidenceLevel = Field(description="A post-CAR-T prospective trial; B prospective trial outside the "
                                 "post-CAR-T setting or large registry; C retrospective series; D guideline or "
                                 "consensus; E extrapolated from another disease or setting.",
                                 examples=["C"])
    basis: EvidenceBasis = Field(description="approved (a regulator's approval for this use: say which and the "
                                 "year), guideline (a guideline endorses it: say which), off_label, or trial_only "
                                 "(available only within a clinical trial).", examples=["off_label"])
    detail: str | None = Field(default=None, min_length=3,
                               description="For approved: the regulator and year, e.g. 'FDA 2023'; for guideline: "
                               "which guideline.", examples=["FDA 2023", "EBMT/JACIE/EHA 2022"])

    @field_validator("detail")
    @classmethod
    def _detail_stripped(cls, value: str | None) -> str | None:
        return value.strip() if value is not None else None

    @model_validator(mode="after")
    def _detail_named(self) -> Evidence:
        if self.basis in ("approved", "guideline") and not self.detail:
            raise ValueError(f"basis '{self.basis}' names its source in 'detail' (regulator and year, or the guideline)")
        return self

    @property
    def token(self) -> str:
        """The grade in one short token, as shown beside a verdict (``detail`` is in the JSON and catalogue).

        >>> Evidence(level="C", basis="off_label").token
        '[evidence C · off-label]'
        """
        return f"[evidence {self.level} · {self.basis.replace('_', '-')}]"


class Suggest(_Strict):
    """Give an option a verdict, with a rationale a clinician reads and the sources behind it."""

    option: OptionName
    verdict: VerdictName
    rationale: str = Field(min_length=20)
    citations: tuple[str, ...] = ()
    evidence: Evidence | None = Field(
        default=None, description="The grade of the evidence behind the verdict: required for recommended and "
        "consider, optional for not_advised.")

    def evidence_problem(self) -> tuple[str, str, str] | None:
        """(message, expected, got) when the grade breaks the policy: recommended/consider carry one, and
        recommended needs level A-C or a guideline's endorsement (docs/rulebook-format.md)."""
        if self.verdict == "not_advised":
            return None
        if self.evidence is None:
            return (f"a {self.verdict} verdict carries its evidence grade",
                    "evidence: {level: A-E, basis: approved|guideline|off_label|trial_only}", "none")
        if self.verdict == "recommended" and self.evidence.level in "DE" and self.evidence.basis != "guideline":
            return ("recommended needs evidence level A-C or a guideline's endorsement",
                    "level A, B or C, or basis guideline", f"level {self.evidence.level}, basis {self.evidence.basis}")
        return None
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


class ReviewPolicy(_Strict):
    """How many clinicians must approve a rule's current version (``review:`` in ``rulebook.yaml``)."""

    minimum_reviewers: int = Field(default=1, ge=1, description="Distinct reviewers whose recorded reviews "
                                   "approve a rule's current version before it counts as reviewed.")


class _RulebookMeta(_Strict):
    version: str
    description: str | None = None
    evidence_reviewed: dt.date | None = None
    evidence_max_age_years: int = Field(default=10, ge=1)
    unaddressed: tuple[Unaddressed, ...] = ()
    review: ReviewPolicy = ReviewPolicy()
    unknowns: tuple[UnknownInput, ...] = ()


# --------------------------------------------------------------------------------------------------
# recorded reviews (``reviews/*.json`` of a rules directory, written by ``postcart review import``)

#: The format tag every review file carries.
REVIEW_FORMAT = "postcart-review/1"


def review_checksum(data: Mapping[str, Any]) -> str:
    """SHA-256 of a review file's content without its ``checksum``: canonical JSON (sorted keys, no spaces).

    The review page computes the same digest in the browser, so an edit made to the file after export
    (by hand or by a tool) no longer matches. It detects alteration, it does not authenticate the reviewer.
    """
    body = {key: value for key, value in data.items() if key != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Reviewer(_Strict):
    name: str = Field(min_length=2, description="The reviewer's name as they sign.")
    role: str = Field(min_length=2, description="Their role, e.g. 'consultant haematologist'.")


class ReviewedRulebook(_Strict):
    version: str
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class ReviewedRule(_Strict):
    """The reviewer's decision on one rule, at the version and content hash they read."""

    id: str
    version: int = Field(ge=1)
    content_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    decision: Literal["approve", "request_change"] | None = None
    comment: str = ""


class ReviewedScenario(_Strict):
    """The reviewer's view of one feature scenario (``file:line`` plus the example row of an outline)."""

    id: str
    name: str
    decision: Literal["agree", "disagree"] | None = None
    comment: str = ""


class RecordedReview(_Strict):
    """One clinician's completed review of a rulebook: exported by the review page, recorded by import."""

    format: Literal["postcart-review/1"]
    reviewer: Reviewer
    date: dt.date
    review_by: dt.date | None = Field(default=None, description="When the approvals given here are due for "
                                      "review again.")
    rulebook: ReviewedRulebook
    rules: tuple[ReviewedRule, ...]
    scenarios: tuple[ReviewedScenario, ...] = ()
    comment: str = ""
    checksum: str = Field(pattern=r"^[0-9a-f]{64}$")
    file: str | None = Field(default=None, exclude=True, description="Where it was loaded from (not in the file).")

    @property
    def name(self) -> str:
        """How catalogues and audit records name this review: its file name, else reviewer and date."""
        return self.file or f"{self.date.isoformat()} {self.reviewer.name}"

    def decision(self, rule: Rule) -> ReviewedRule | None:
        """This review's decision on the rule's current content, if it read that content."""
        return next((entry for entry in self.rules if entry.id == rule.id
                     and entry.content_hash == rule.content_hash and entry.version == rule.version), None)


class Unaddressed(_Strict):
    """A disease x option cell left without rules on purpose, with the reason shown to clinicians."""

    disease: DiseaseName
    option: OptionName
    reason: str = Field(min_length=10)


class UnknownInput(_Strict):
    """An input that may still be unknown, with the question a clinician asks to establish it.

    ``postcart.unknowns`` re-runs the rules over the plausible values of such an input; the words here
    are what the assessment shows (``rules/rulebook.yaml``, ``unknowns``).
    """

    field: str = Field(description="The input's dotted path.")
    unknown: str | None = Field(default=None, description="The value that means 'not known' (absent: none).")
    question: str = Field(min_length=10, description="The question, in a clinician's words.")
    check: str = Field(min_length=3, description="What establishes it, as it reads after 'pending'.")
    label: str = Field(min_length=2, description="The input's short name in a sentence ('organ function').")
    answers: dict[str, str] = Field(default_factory=dict,
                                    description="Words for enumerated answers (value -> words); default the value.")
    urgency: int = Field(ge=1, le=9, description="1 = establish first; ranks questions of equal weight.")

    def words(self, value: Any) -> str:
        """The words for one answer, e.g. 'adequate' for true."""
        key = str(value).lower() if isinstance(value, bool) else str(value)
        return self.answers.get(key, key.replace("_", " "))


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
    #: SHA-256 of the rule's clinical content (everything but author, approved, review_by and notes):
    #: what a recorded review approves.
    content_hash: str = ""

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
    unknowns: tuple[UnknownInput, ...] = ()
    directory: str | None = None
    warnings: tuple[Problem, ...] = field(default_factory=tuple)
    reviews: tuple[RecordedReview, ...] = ()
    minimum_reviewers: int = 1
    evidence_reviewed: dt.date | None = None
    evidence_max_age_years: int = 10

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
    def memo_key(self) -> str:
        """What a cache of anything computed from this rulebook keys on: the content hash and the rules that
        run (drafts included or not), which the content hash alone does not say."""
        return self.content_hash + "|" + ",".join(rule.id for rule in self.rules)

    @functools.cached_property
    def _per_disease(self) -> dict[str, tuple[Rule, ...]]:
        return {}

    @functools.cached_property
    def _by_id(self) -> dict[str, Rule]:
        return {rule.id: rule for rule in self.rules}

    def rule(self, rule_id: str) -> Rule:
        """The rule with this id (KeyError if it is not in the rulebook)."""
        return self._by_id[rule_id]

    def approvals(self, rule: Rule) -> tuple[RecordedReview, ...]:
        """The recorded reviews approving the rule's current version and content, oldest first."""
        return tuple(review for review in self.reviews
                     if (decision := review.decision(rule)) is not None and decision.decision == "approve")

    def approving(self, rule_id: str) -> tuple[str, ...]:
        """The file names of the reviews approving a rule's current version (cached: the rulebook is immutable)."""
        names = self._approving.get(rule_id)
        if names is None:
            names = self._approving[rule_id] = tuple(review.name for review in self.approvals(self.rule(rule_id)))
        return names

    @functools.cached_property
    def _approving(self) -> dict[str, tuple[str, ...]]:
        return {}

    def lifecycle(self, rule: Rule) -> str:
        """``active`` only when a recorded review approves the rule's current version; else ``awaiting
        review`` (a rule the file marks active), ``draft`` or ``retired``."""
        if rule.status != "active":
            return rule.status
        return "active" if self.approvals(rule) else "awaiting review"

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
