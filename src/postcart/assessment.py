"""The output contract: an ``Assessment`` built from the rules that fired, and the verdict policy.

``evaluate()`` (the front door) is :mod:`postcart.evaluation`; this module never runs the engine, so
renderers that import it do not load durable-rules.

Where several rules speak to one option: rules named in another fired rule's ``overrides`` are set aside
(the stated precedence); then a ``not_advised`` from a contraindication wins; otherwise the strongest
suggestion (recommended > consider > not_advised). Every rule's reason stays visible.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from postcart.errors import EvaluationError
from postcart.rulebook import Ask, Rule, Rulebook, Suggest
from postcart.rulebook import conditions as cond
from postcart.situation import PatientSituation, field_catalogue
from postcart.vocabulary import OPTIONS, VERDICTS, DiseaseName, OptionName, VerdictName

if TYPE_CHECKING:
    from postcart.engine import EngineResult

__all__ = [
    "DISCLAIMER",
    "Assessment",
    "Citation",
    "MissingInformation",
    "OptionAssessment",
    "Reason",
    "build_assessment",
    "package_version",
    "say",
    "situation_hash",
]

DISCLAIMER = (
    "Decision support only. postcart summarises published evidence and expert guidance for the treating "
    "team; it does not replace clinical judgement, multidisciplinary review or the patient's own "
    "choices, and it may be incomplete or out of date. Verify every suggestion against the cited sources "
    "and current guidelines before acting."
)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class Citation(_Out):
    """A source a clinician can check."""

    key: str = Field(description="The bibliography key (rules/references.yaml).")
    label: str = Field(description="How the source is named in text, e.g. 'Dickinson 2022 (glofitamab)'.")
    doi: str | None = Field(default=None, description="The publication's DOI, when it has one.")
    pmid: str | None = Field(default=None, description="The PubMed id, when it has one.")
    url: str | None = Field(default=None, description="The link shown: https://doi.org/<doi>, else the PubMed "
                            "record, else an official page.")


class Reason(_Out):
    """What one rule said about an option."""

    rule: str = Field(description="The rule's id.")
    title: str = Field(description="The rule's title, in words.")
    verdict: VerdictName = Field(description="The verdict this rule gives the option.")
    contraindication: bool = Field(description="Whether this rule states a contraindication (it then wins).")
    rationale: str = Field(description="The rule's rationale, in clinical language.")
    citations: list[str] = Field(description="Bibliography keys this rule cites.")


class OptionAssessment(_Out):
    """One next step with its verdict, rationale, the facts behind it and its sources."""

    option: OptionName = Field(description="The option's id (see postcart.vocabulary for the words shown).")
    verdict: VerdictName = Field(description="recommended, consider or not_advised, after the combination policy.")
    rationale: str = Field(description="Plain-language rationale of the deciding rule(s).")
    citations: list[Citation] = Field(description="The sources of every rule that spoke to this option.")
    rules: list[str] = Field(description="Ids of every rule that spoke to this option.")
    because: list[str] = Field(description="The input facts that made those rules fire, in words.")
    reasons: list[Reason] = Field(description="Each rule's own verdict and rationale, deciding ones first.")


class MissingInformation(_Out):
    """An input not yet known that would change the answer."""

    field: str = Field(description="The input's dotted path in the input contract, e.g. 'fitness.hct_ci'.")
    why: str = Field(description="Why it matters, in clinical language.")
    rules: list[str] = Field(description="Ids of the rules that ask for it.")
    citations: list[Citation] = Field(default=[], description="Sources behind the question.")


class RulebookInfo(_Out):
    """Which rulebook gave the answer."""

    version: str = Field(description="The rulebook's version (rules/rulebook.yaml).")
    content_hash: str = Field(description="SHA-256 over every rule file's name and content.")


class Audit(_Out):
    """Enough to reproduce the assessment, without the patient's data."""

    input_hash: str = Field(description="HMAC-SHA256 under this installation's audit key of the validated situation "
                            "(canonical JSON, without the patient label), not the data; the same input gives the same "
                            "hash on one installation only.")
    rulebook_version: str = Field(description="The rulebook's version.")
    rulebook_hash: str = Field(description="The rulebook's content hash.")
    postcart_version: str = Field(description="The postcart release that evaluated.")
    durable_rules_version: str = Field(description="The durable-rules release that ran the rules.")
    evaluated_at: dt.datetime = Field(
        default_factory=lambda: dt.datetime.now(dt.UTC),
        description="When the assessment was made (UTC). The only part that differs between reruns.")
    rules_fired: list[str] = Field(description="Every rule that fired, in firing order.")


class Assessment(_Out):
    """The answer for one patient: the options by verdict, what is missing, and how it was reached."""

    patient_id: str | None = Field(default=None, description="The pseudonymous label given with the input.")
    disease: DiseaseName = Field(description="The patient's disease, as given.")
    options: list[OptionAssessment] = Field(description="The options some rule addressed, strongest verdict first.")
    missing_information: list[MissingInformation] = Field(description="Inputs that would change the answer.")
    derived: dict[str, Any] = Field(description="The intermediate judgements the rules derived (failure timing, ...).")
    rulebook: RulebookInfo = Field(description="The rulebook that gave the answer.")
    audit: Audit = Field(description="Enough to reproduce the assessment, without the patient's data.")
    disclaimer: str = Field(default=DISCLAIMER, description="The decision-support disclaimer.")

    def option(self, name: str) -> OptionAssessment | None:
        """The assessment of one option, or None when no rule addressed it."""
        return next((item for item in self.options if item.option == name), None)

    def reproducible(self) -> dict[str, Any]:
        """The JSON form without the evaluation time: identical for the same input and rulebook."""
        data = self.model_dump(mode="json")
        del data["audit"]["evaluated_at"]
        return data


def build_assessment(rulebook: Rulebook, situation: PatientSituation, result: EngineResult) -> Assessment:
    """Turn the rules that fired into the clinician-facing assessment."""
    fired = [rulebook.rule(rule_id) for rule_id in result.fired]
    by_option: dict[str, list[Rule]] = {}
    asks: dict[str, list[Rule]] = {}
    for rule in fired:
        if isinstance(rule.then, Suggest):
            by_option.setdefault(rule.then.option, []).append(rule)
        elif isinstance(rule.then, Ask):
            asks.setdefault(rule.then.ask, []).append(rule)

    options = [_option(rulebook, name, rules, result.facts) for name, rules in by_option.items()]
    options.sort(key=lambda item: (VERDICTS.index(item.verdict), OPTIONS.index(item.option)))
    missing = [
        MissingInformation(
            field=field,
            why=" ".join(dict.fromkeys(rule.then.why for rule in rules if isinstance(rule.then, Ask))),
            rules=[rule.id for rule in rules],
            citations=_citations(rulebook, [key for rule in rules if isinstance(rule.then, Ask)
                                            for key in rule.then.citations]),
        )
        for field, rules in asks.items()
    ]
    return Assessment(
        patient_id=situation.patient_id,
        disease=situation.disease,
        options=options,
        missing_information=missing,
        derived=dict(result.derived),
        rulebook=RulebookInfo(version=rulebook.version, content_hash=rulebook.content_hash),
        audit=Audit(
            input_hash=situation_hash(situation),
            rulebook_version=rulebook.version,
            rulebook_hash=rulebook.content_hash,
            postcart_version=package_version("postcart"),
            durable_rules_version=package_version("durable-rules"),
            evaluated_at=dt.datetime.now(dt.UTC),
            rules_fired=list(result.fired),
        ),
    )


def _option(rulebook: Rulebook, name: str, rules: list[Rule], facts: Mapping[str, Any]) -> OptionAssessment:
    suggestions = [(rule, rule.then) for rule in rules if isinstance(rule.then, Suggest)]
    # a rule's stated precedence (`overrides`) sets the rules it names aside before the policy applies
    overridden = {other for _, then in suggestions for other in then.overrides}
    standing = [pair for pair in suggestions if pair[0].id not in overridden] or suggestions
    contraindications = [(rule, then) for rule, then in standing
                         if then.contraindication and then.verdict == "not_advised"]
    if contraindications:
        deciding = contraindications
        verdict = "not_advised"
    else:
        verdict = min((then.verdict for _, then in standing), key=VERDICTS.index)
        deciding = [(rule, then) for rule, then in standing if then.verdict == verdict]
    deciding_ids = {rule.id for rule, _ in deciding}
    ordered = deciding + [pair for pair in suggestions if pair[0].id not in deciding_ids]
    # the first deciding rule speaks: several rationales run together repeat their figures (all stay in reasons)
    rationale = deciding[0][1].rationale.strip()
    keys = [key for _, then in ordered for key in then.citations]
    because: list[str] = []
    for rule, _ in ordered:
        for text in explain_true(rulebook, rule, facts):
            if text not in because:
                because.append(text)
    return OptionAssessment(
        option=name,  # type: ignore[arg-type]
        verdict=verdict,  # type: ignore[arg-type]
        rationale=rationale,
        citations=_citations(rulebook, keys),
        rules=[rule.id for rule, _ in ordered],
        because=because,
        reasons=[_reason(rulebook, rule) for rule, _ in ordered],
    )


# Citations and reasons depend only on the rulebook's content: built once per content hash and key.
_CITATIONS: dict[tuple[str, str], Citation] = {}
_REASONS: dict[tuple[str, str], Reason] = {}


def _reason(rulebook: Rulebook, rule: Rule) -> Reason:
    cache_key = (rulebook.content_hash, rule.id)
    reason = _REASONS.get(cache_key)
    if reason is None:
        then = rule.then
        assert isinstance(then, Suggest)
        reason = _REASONS[cache_key] = Reason(
            rule=rule.id, title=rule.title, verdict=then.verdict, contraindication=then.contraindication,
            rationale=then.rationale.strip(), citations=list(then.citations))
    return reason


def explain_true(rulebook: Rulebook, rule: Rule, facts: Mapping[str, Any]) -> list[str]:
    """The facts that made a rule's condition true, each said once in a clinician's words.

    E.g. ``ECOG 1`` or ``relapse 11 months after axi-cel (late)``: the patient's value, not the rule's
    threshold (that is the rule's, shown with its id in the detail). The words come from the input
    model's field metadata and the derived facts' declarations (``said``), never from code per disease.
    A rule that applies to every patient has no facts to give.
    """
    if rule.condition is None:
        return []
    fields = dict.fromkeys(leaf.field for leaf, _ in _deciding_leaves(rule.condition, facts, True))
    return list(dict.fromkeys(say(rulebook, field, facts) for field in fields))


_PLACEHOLDER = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")
_ONE_MONTH = re.compile(r"(?<![\d.])1 months\b")


def _words_for(rulebook: Rulebook, field: str) -> tuple[Mapping[str, str], Mapping[str, str], str]:
    """A fact's value words, its phrases and its kind (``bool``, ``set``, ``number`` or ``enum``)."""
    if field.startswith("derived."):
        declaration = rulebook.facts.get(field.removeprefix("derived."))
        if declaration is None:
            return {}, {}, "enum"
        kind = "bool" if all(isinstance(value, bool) for value in declaration.values) else "enum"
        return declaration.words, declaration.said, kind
    spec = field_catalogue().get(field)
    if spec is None:
        return {}, {}, "enum"
    kind = {"int": "number", "float": "number", "bool": "bool", "set": "set"}.get(spec.kind, "enum")
    return dict(spec.words), dict(spec.said), kind


def _key(value: Any) -> str:
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)) and not value:
        return "none"
    return cond.render_value(value)


def _word(rulebook: Rulebook, field: str, facts: Mapping[str, Any]) -> str:
    """How a fact's value is said inside other words: ``late``, ``matched unrelated``, ``11``."""
    value = facts.get(field)
    words, _, _ = _words_for(rulebook, field)
    key = _key(value)
    if key in words:
        return words[key]
    if value is None:
        return "not known"
    return cond.render_value(value).replace("_", " ")


def say(rulebook: Rulebook, field: str, facts: Mapping[str, Any]) -> str:
    """One fact in a clinician's words, with the patient's value: ``ECOG 1``, ``no donor identified yet``."""
    value = facts.get(field)
    _, said, kind = _words_for(rulebook, field)
    key = _key(value)
    if key in said:
        template = said[key]
    elif value is None:
        template = "{label} not known"
    elif kind == "bool":
        template = "{label}" if value else "no {label}"
    elif kind == "set" and key == "none":
        template = "no {label}"
    else:
        template = said.get("*", "{label} {value}" if kind == "number" else "{label}: {value}")

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "value":
            return _word(rulebook, field, facts)
        if name == "label":
            return rulebook.label(field)
        return _word(rulebook, name, facts)

    return _ONE_MONTH.sub("1 month", _PLACEHOLDER.sub(fill, template))


def _deciding_leaves(condition: cond.Condition, facts: Mapping[str, Any],
                     wanted: bool) -> Iterator[tuple[cond.Comparison, bool]]:
    """The comparisons that give ``condition`` the value ``wanted``, each with the value it has."""
    if isinstance(condition, cond.Comparison):
        if condition.holds(facts) is wanted:
            yield condition, wanted
    elif isinstance(condition, cond.Not):
        yield from _deciding_leaves(condition.item, facts, not wanted)
    else:
        for item in condition.items:
            if cond.evaluate(item, facts) is wanted:
                yield from _deciding_leaves(item, facts, wanted)


def _citations(rulebook: Rulebook, keys: list[str]) -> list[Citation]:
    out = []
    for key in dict.fromkeys(keys):
        citation = _CITATIONS.get((rulebook.content_hash, key))
        if citation is None:
            reference = rulebook.references[key]
            citation = _CITATIONS[(rulebook.content_hash, key)] = Citation(
                key=key, label=reference.label, doi=reference.doi, pmid=reference.pmid, url=reference.link)
        out.append(citation)
    return out


def situation_hash(situation: PatientSituation) -> str:
    """HMAC-SHA256, under this installation's audit key, of the validated situation's canonical JSON.

    Keyed, because a plain hash of a low-entropy input is reversed by enumerating plausible situations
    (11 hidden fields were recovered in 41 s) and links one patient's records across sites: with a key
    per installation the same input still gives the same hash on one site (``reproducible()`` keeps its
    meaning) and nothing elsewhere. The key: :func:`audit_key_path`. The pseudonymous ``patient_id``
    label is left out: the same clinical input hashes the same whoever it is labelled as.
    """
    canonical = json.dumps(situation.model_dump(mode="json", exclude={"patient_id"}), sort_keys=True,
                           separators=(",", ":"))
    return hmac.new(_audit_key(), canonical.encode(), hashlib.sha256).hexdigest()


def audit_key_path() -> Path:
    """Where this installation's audit key lives: ``$POSTCART_AUDIT_KEY`` (a file path) if set, else
    ``$XDG_CONFIG_HOME/postcart/audit.key``, else ``~/.config/postcart/audit.key``. The key (32 random
    bytes, hex) is created there on first use, readable by its owner only (mode 0600). Keep it with the
    audit records: without it, an audit hash can no longer be recomputed; share it with no one."""
    explicit = os.environ.get("POSTCART_AUDIT_KEY")
    if explicit:
        return Path(explicit).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "postcart" / "audit.key"


_AUDIT_KEYS: dict[str, bytes] = {}


def _audit_key() -> bytes:
    # No lock: two threads reading the key at once both read the same file (its creation is O_EXCL), and
    # a lock held by another thread at fork() time would deadlock the child's first evaluation.
    path = str(audit_key_path())
    key = _AUDIT_KEYS.get(path)
    if key is None:
        key = _AUDIT_KEYS[path] = _read_or_create_key(Path(path))
    return key


def _read_or_create_key(path: Path) -> bytes:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(descriptor, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise EvaluationError(f"{path}: the audit key cannot be read or created "
                              f"({getattr(error, 'strerror', None) or type(error).__name__}); set POSTCART_AUDIT_KEY "
                              "to a writable file path") from None
    if len(text) < 32:
        raise EvaluationError(f"{path}: the audit key is too short (a file of at least 32 hex characters is "
                              "expected; delete it to have a new one made)")
    return text.encode("ascii")


@functools.cache
def package_version(package: str) -> str:
    """The installed version of a distribution (``+source`` when run from a checkout)."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        pass
    if package == "postcart":  # running from a source checkout (PYTHONPATH=src): its pyproject says
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]) + "+source"
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            pass
    return "unknown"
