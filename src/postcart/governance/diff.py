"""Change impact: run two rulebooks over the same situations and report every assessment that changed.

This is the report a rules committee reads before approving a change: which situations change, for
which option, from which verdict to which, and the rules responsible on each side; counts per option;
and the rules that were added, removed or modified (with a note when a rule changed without a version
bump). Either rulebook can be a directory or, for the old side, ``rules/`` at a git revision.

Situations come from scenario files (``scenarios:``), YAML/JSON lists of situations (a list, or a
mapping with ``situations:``), single situation files and JSON Lines (one situation per line). A bad
situation is reported with its location and the others are still compared.
"""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from postcart.assessment import Assessment
from postcart.documents import MAX_DOCUMENT_BYTES, parse_document, parse_json, read_text
from postcart.engine import Engine
from postcart.errors import EvaluationError, InvalidSituation, Problem, RuleDefinitionError
from postcart.evaluation import assess
from postcart.rulebook import Rule, Rulebook
from postcart.scenarios import Scenario, load_scenarios
from postcart.scenarios import check as check_scenario
from postcart.situation import PatientSituation, validate_situation
from postcart.vocabulary import OPTIONS

__all__ = [
    "OptionChange",
    "RuleChange",
    "RulebookDiff",
    "SituationChange",
    "compare_rulebooks",
    "default_scenarios_dir",
    "load_situations",
    "rules_at_revision",
    "to_json",
    "to_markdown",
]

Outcome = Literal["recommended", "consider", "not_advised", "not_addressed"]
_SUFFIXES = (".yaml", ".yml", ".json", ".jsonl")


def default_scenarios_dir() -> Path:
    """The bundled scenarios, shipped inside the package (``postcart/scenarios``)."""
    return Path(str(resources.files("postcart") / "scenarios"))


# --------------------------------------------------------------------------------------------------
# the report


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class OptionChange(_Out):
    """One option of one situation whose verdict, or the rules behind it, changed."""

    option: str
    old: Outcome
    new: Outcome
    old_rules: list[str]
    new_rules: list[str]

    @property
    def verdict_changed(self) -> bool:
        return self.old != self.new


class SituationChange(_Out):
    id: str
    source: str
    options: list[OptionChange]
    missing_added: list[str] = Field(default_factory=list, description="Information newly asked for.")
    missing_removed: list[str] = Field(default_factory=list, description="Information no longer asked for.")
    expectations_broken: list[str] = Field(
        default_factory=list, description="For a scenario: expectations the new rulebook no longer meets.")
    expectations_fixed: list[str] = Field(
        default_factory=list, description="For a scenario: expectations the new rulebook now meets.")


class RuleChange(_Out):
    rule: str
    change: Literal["added", "removed", "modified"]
    what: list[str] = Field(default_factory=list, description="For a modified rule, the parts that differ.")
    old_version: int | None = None
    new_version: int | None = None
    note: str | None = None


class Side(_Out):
    version: str
    content_hash: str
    source: str
    rules: int


class RulebookDiff(_Out):
    old: Side
    new: Side
    situations: int = Field(description="Situations compared (valid ones).")
    changed: list[SituationChange]
    counts: dict[str, dict[str, int]] = Field(
        description="Per option, how many situations made each change ('consider → not_addressed'; "
        "'consider (rules changed)' when only the rules behind the same verdict changed).")
    rules: list[RuleChange]
    invalid: list[str] = Field(default_factory=list, description="Situations that could not be compared, and why.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def expectations_broken(self) -> list[str]:
        """Ids of the scenarios whose expectations the new rulebook no longer meets."""
        return [change.id for change in self.changed if change.expectations_broken]


# --------------------------------------------------------------------------------------------------
# situations


@dataclass
class Situations:
    items: list[tuple[str, str, PatientSituation]] = field(default_factory=list)  # (id, source, situation)
    invalid: list[Problem] = field(default_factory=list)
    scenarios: dict[str, Scenario] = field(default_factory=dict)  # id -> scenario, for its expectations
    unreadable: list[str] = field(default_factory=list)  # inputs that could not be read at all


def load_situations(*paths: str | Path) -> Situations:
    """Every situation under the given files or directories; bad ones become problems, never a crash."""
    out = Situations()
    for root in paths:
        root = Path(root)
        if root.is_dir():
            files = sorted(path for path in root.rglob("*") if path.is_file() and path.suffix in _SUFFIXES)
        elif root.is_file():
            files = [root]
        else:
            out.invalid.append(Problem(str(root), "no such file or directory", "a scenario or situation file",
                                       str(root)))
            out.unreadable.append(str(root))
            continue
        for file in files:
            _load_file(file, out)
    return out


def _load_file(file: Path, out: Situations) -> None:
    name = str(file)
    if file.suffix in (".csv", ".parquet"):
        out.invalid.append(Problem(name, "cohort tables are not read here yet", "scenario, YAML/JSON or JSONL "
                                   "situations", file.suffix))
        out.unreadable.append(name)
        return
    try:
        text, _ = read_text(file, limit=8 * MAX_DOCUMENT_BYTES if file.suffix == ".jsonl" else MAX_DOCUMENT_BYTES)
    except InvalidSituation as error:
        out.invalid.extend(Problem(problem.location, f"unreadable: {problem.message}", problem.expected, problem.got)
                           for problem in error.problems)
        out.unreadable.append(name)
        return
    if file.suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    data = parse_json(line, name, line=number)
                except InvalidSituation as error:
                    out.invalid.extend(error.problems)
                    continue
                _add(out, f"{name}:{number}", name, data)
        return
    try:
        data = parse_document(text, name, json_only=file.suffix == ".json")
    except InvalidSituation as error:
        out.invalid.extend(error.problems)
        out.unreadable.append(name)
        return
    if isinstance(data, dict) and isinstance(data.get("scenarios"), list):
        loaded = load_scenarios(file)
        out.items += [(scenario.id, name, scenario.situation) for scenario in loaded.scenarios]
        out.scenarios.update((scenario.id, scenario) for scenario in loaded.scenarios)
        out.invalid += [problem for _, _, problem in loaded.invalid]
    elif isinstance(data, dict) and isinstance(data.get("situations"), list):
        for index, entry in enumerate(data["situations"], 1):
            _add(out, f"{name}#{index}", name, entry)
    elif isinstance(data, list):
        for index, entry in enumerate(data, 1):
            _add(out, f"{name}#{index}", name, entry)
    else:
        _add(out, name, name, data)


def _add(out: Situations, situation_id: str, source: str, data: Any) -> None:
    try:
        out.items.append((situation_id, source, validate_situation(data)))
    except InvalidSituation as error:
        out.invalid += [Problem(f"{situation_id} {problem.location}", problem.message, problem.expected,
                                problem.got) for problem in error.problems]


# --------------------------------------------------------------------------------------------------
# rulebooks


@contextmanager
def rules_at_revision(revision: str, rules_dir: str | Path) -> Iterator[Path]:
    """The rules directory as it was at a git revision, extracted (``git archive``) into a temp dir.

    Raises:
        RuleDefinitionError: not in a git repository, or the revision or directory does not exist there.
    """
    rules_dir = Path(rules_dir).resolve()
    top = _git(rules_dir if rules_dir.is_dir() else rules_dir.parent, "rev-parse", "--show-toplevel",
               revision=revision).decode().strip()
    relative = rules_dir.relative_to(Path(top).resolve()).as_posix()
    archive = _git(Path(top), "archive", "--format=tar", revision, "--", relative, revision=revision)
    with tempfile.TemporaryDirectory(prefix="postcart-rules-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp) / relative


def _git(where: Path, *args: str, revision: str) -> bytes:
    try:
        done = subprocess.run(["git", "-C", str(where), *args], capture_output=True, check=False, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuleDefinitionError(Problem(f"--old-rev {revision}", f"git could not run: {error}")) from None
    if done.returncode != 0:
        raise RuleDefinitionError(Problem(f"--old-rev {revision}", "git could not read the rules at this revision",
                                          "a revision of this repository where the rules directory exists",
                                          done.stderr.decode(errors="replace").strip()[:200]))
    return done.stdout


def compare_rulebooks(old: Rulebook, new: Rulebook, situations: Situations, *, old_source: str | None = None,
                      new_source: str | None = None) -> RulebookDiff:
    """Assess every situation with both rulebooks (two engines side by side) and collect the differences."""
    changed: list[SituationChange] = []
    invalid = [str(problem) for problem in situations.invalid]
    counts: dict[str, dict[str, int]] = {}
    compared = 0
    with Engine(old) as old_engine, Engine(new) as new_engine:
        for situation_id, source, situation in situations.items:
            try:
                before = assess(old_engine, situation)
                after = assess(new_engine, situation)
            except EvaluationError as error:
                invalid.append(f"{situation_id}: evaluation failed: {error}")
                continue
            compared += 1
            change = _compare(situation_id, source, before, after, situations.scenarios.get(situation_id))
            if change is None:
                continue
            changed.append(change)
            for item in change.options:
                key = (f"{item.old} → {item.new}" if item.verdict_changed else f"{item.old} (rules changed)")
                per_option = counts.setdefault(item.option, {})
                per_option[key] = per_option.get(key, 0) + 1
    ordered = {option: dict(sorted(counts[option].items())) for option in OPTIONS if option in counts}
    return RulebookDiff(
        old=_side(old, old_source), new=_side(new, new_source), situations=compared, changed=changed,
        counts=ordered, rules=_rule_changes(old, new), invalid=invalid,
    )


def _side(rulebook: Rulebook, source: str | None) -> Side:
    return Side(version=rulebook.version, content_hash=rulebook.content_hash,
                source=source or str(rulebook.directory), rules=len(rulebook.rules))


def _compare(situation_id: str, source: str, before: Assessment, after: Assessment,
             scenario: Scenario | None) -> SituationChange | None:
    options: list[OptionChange] = []
    for name in OPTIONS:
        old, new = before.option(name), after.option(name)
        old_verdict = old.verdict if old else "not_addressed"
        new_verdict = new.verdict if new else "not_addressed"
        old_rules = list(old.rules) if old else []
        new_rules = list(new.rules) if new else []
        if old_verdict != new_verdict or sorted(old_rules) != sorted(new_rules):
            options.append(OptionChange(option=name, old=old_verdict, new=new_verdict,
                                        old_rules=old_rules, new_rules=new_rules))
    asked_before = [item.field for item in before.missing_information]
    asked_after = [item.field for item in after.missing_information]
    added = [name for name in asked_after if name not in asked_before]
    removed = [name for name in asked_before if name not in asked_after]
    if not (options or added or removed):
        return None
    broken: list[str] = []
    fixed: list[str] = []
    if scenario is not None:
        old_misses = [str(item) for item in check_scenario(scenario, before)]
        new_misses = [str(item) for item in check_scenario(scenario, after)]
        broken = [item for item in new_misses if item not in old_misses]
        fixed = [item for item in old_misses if item not in new_misses]
    return SituationChange(id=situation_id, source=source, options=options, missing_added=added,
                           missing_removed=removed, expectations_broken=broken, expectations_fixed=fixed)


_COMPARED_PARTS = ("title", "diseases", "condition", "then", "status")


def _rule_changes(old: Rulebook, new: Rulebook) -> list[RuleChange]:
    before: dict[str, Rule] = {rule.id: rule for rule in old.rules}
    after: dict[str, Rule] = {rule.id: rule for rule in new.rules}
    out: list[RuleChange] = []
    for rule_id in sorted(before.keys() | after.keys()):
        if rule_id not in after:
            out.append(RuleChange(rule=rule_id, change="removed", old_version=before[rule_id].version))
        elif rule_id not in before:
            out.append(RuleChange(rule=rule_id, change="added", new_version=after[rule_id].version))
        else:
            a, b = before[rule_id], after[rule_id]
            what = [part for part in _COMPARED_PARTS if getattr(a, part) != getattr(b, part)]
            if a.version != b.version:
                what.append("version")
            if what:
                note = ("changed without a version bump" if "version" not in what
                        else None)
                out.append(RuleChange(rule=rule_id, change="modified", what=what, old_version=a.version,
                                      new_version=b.version, note=note))
    return out


# --------------------------------------------------------------------------------------------------
# renderings


def to_json(diff: RulebookDiff) -> str:
    return json.dumps(diff.model_dump(mode="json"), indent=2, ensure_ascii=False)


def to_markdown(diff: RulebookDiff) -> str:
    """The change-impact report as Markdown."""
    from postcart.vocabulary import option_name

    def rules(ids: Sequence[str]) -> str:
        return ", ".join(f"`{rule}`" for rule in ids) or "none"

    out = ["# Rulebook change impact", "",
           (f"- Old: rulebook {diff.old.version} (`{diff.old.content_hash[:12]}`), {diff.old.rules} rules, "
            f"from {diff.old.source}"),
           (f"- New: rulebook {diff.new.version} (`{diff.new.content_hash[:12]}`), {diff.new.rules} rules, "
            f"from {diff.new.source}"),
           f"- Situations compared: {diff.situations}; changed: {len(diff.changed)}"
           + (f"; not compared: {len(diff.invalid)}" if diff.invalid else ""),
           f"- Scenarios whose expectations now fail: {len(diff.expectations_broken)}"
           + (f" ({', '.join(diff.expectations_broken)})" if diff.expectations_broken else ""), ""]
    out += ["## Rule changes", ""]
    if diff.rules:
        out += ["| rule | change | what | version |", "|---|---|---|---|"]
        for item in diff.rules:
            version = f"{item.old_version or ''} → {item.new_version or ''}".strip(" →")
            what = ", ".join(item.what) + (f" ({item.note})" if item.note else "")
            out.append(f"| `{item.rule}` | {item.change} | {what} | {version} |")
    else:
        out.append("No rule was added, removed or modified.")
    out.append("")
    out += ["## Changes per option", ""]
    if diff.counts:
        out += ["| option | change | situations |", "|---|---|---|"]
        for option, counts in diff.counts.items():
            for change, count in counts.items():
                out.append(f"| {option_name(option)} | {change.replace('_', ' ')} | {count} |")
    else:
        out.append("No option changed for any situation.")
    out.append("")
    if diff.changed:
        out += ["## Situations that changed", ""]
        for situation in diff.changed:
            out += [f"### {situation.id}", ""]
            if situation.options:
                out += ["| option | old → new | rules before | rules after |", "|---|---|---|---|"]
                for option_change in situation.options:
                    out.append(f"| {option_name(option_change.option)} | {option_change.old.replace('_', ' ')} → "
                               f"{option_change.new.replace('_', ' ')} | {rules(option_change.old_rules)} | "
                               f"{rules(option_change.new_rules)} |")
                out.append("")
            if situation.missing_added:
                out += [f"Now also asks for: {', '.join(f'`{name}`' for name in situation.missing_added)}", ""]
            if situation.missing_removed:
                out += [f"No longer asks for: {', '.join(f'`{name}`' for name in situation.missing_removed)}", ""]
            out += [f"- **Scenario expectation now fails**: {item}" for item in situation.expectations_broken]
            out += [f"- Scenario expectation now met: {item}" for item in situation.expectations_fixed]
            if situation.expectations_broken or situation.expectations_fixed:
                out.append("")
    if diff.invalid:
        out += ["## Not compared", ""] + [f"- {item}" for item in diff.invalid] + [""]
    return "\n".join(out)
