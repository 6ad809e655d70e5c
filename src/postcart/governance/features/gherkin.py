"""Reading feature files with the official Gherkin parser (``gherkin-official``): each scenario as written.

Outline examples are filled in and Background steps included, so the review page, the in-process runner
and the test suite all see the scenarios a clinician wrote.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from postcart.errors import PostcartError

__all__ = ["GherkinFeature", "GherkinScenario", "ReviewError", "read_features"]


class ReviewError(PostcartError, RuntimeError):
    """The review report could not be produced (features missing, unreadable, or the run broke)."""


@dataclass(frozen=True)
class GherkinScenario:
    """One runnable scenario (one example row of an outline) as the clinician wrote it."""

    feature_file: str
    name: str
    line: int
    rule: str | None
    tags: tuple[str, ...]
    steps: tuple[tuple[str, str], ...]
    example: tuple[tuple[str, str], ...] | None = None
    step_lines: tuple[int, ...] = ()

    @property
    def review_id(self) -> str:
        """How a review file names the scenario: ``file:line``, plus the example row of an outline."""
        row = f" [{_example_text(self)}]" if self.example else ""
        return f"{self.feature_file}:{self.line}{row}"

    @property
    def key(self) -> tuple[str, int, tuple[str, ...] | None]:
        """Matches the evidence the feature suite records: file, scenario line, example values."""
        values = tuple(value for _, value in self.example) if self.example else None
        return (self.feature_file, self.line, values)


@dataclass(frozen=True)
class GherkinFeature:
    file: str
    name: str
    description: str
    tags: tuple[str, ...]
    scenarios: tuple[GherkinScenario, ...]


def _dedent(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines())


def _example_text(scenario: GherkinScenario) -> str:
    return ", ".join(f"{key} = {value}" for key, value in scenario.example) if scenario.example else ""


def read_features(directory: str | os.PathLike[str]) -> list[GherkinFeature]:
    """Parse every ``*.feature`` file of a directory with the official Gherkin parser.

    Raises:
        ReviewError: a file does not parse (the message names the file and the parser's line and reason).
    """
    try:
        from gherkin.errors import CompositeParserException, ParserException
        from gherkin.parser import Parser
        from gherkin.pickles.compiler import Compiler
    except ImportError:
        raise ReviewError("reading feature files needs gherkin-official: pip install 'postcart[review]'") from None

    features = []
    for path in sorted(Path(directory).glob("*.feature")):
        try:
            parsed = Parser().parse(path.read_text(encoding="utf-8"))
        except (CompositeParserException, ParserException) as error:
            raise ReviewError(f"{path.name}: not valid Gherkin: {error}") from None
        document: dict[str, Any] = dict(parsed)
        document["uri"] = path.name
        feature = document.get("feature")
        if feature is None:
            continue
        pickles: list[dict[str, Any]] = list(Compiler().compile(document))  # type: ignore[arg-type]
        features.append(_feature(path.name, dict(feature), pickles))
    return features


def _feature(file: str, feature: dict[str, Any], pickles: list[dict[str, Any]]) -> GherkinFeature:
    nodes: dict[str, tuple[dict[str, Any], str | None]] = {}   # scenario or row id -> (node, rule name)
    rows: dict[str, tuple[list[str], list[str]]] = {}          # example row id -> (header, values)
    keywords: dict[str, str] = {}                              # step id -> keyword as written
    step_lines: dict[str, int] = {}                            # step id -> line in the file

    def visit(children: list[dict[str, Any]], rule: str | None) -> None:
        for child in children:
            if "rule" in child:
                visit(child["rule"]["children"], child["rule"]["name"])
            for kind in ("background", "scenario"):
                if kind in child:
                    node = child[kind]
                    nodes[node["id"]] = (node, rule)
                    for step in node.get("steps", []):
                        keywords[step["id"]] = step["keyword"].strip()
                        step_lines[step["id"]] = step["location"]["line"]
                    for examples in node.get("examples", []):
                        header = [cell["value"] for cell in examples["tableHeader"]["cells"]]
                        for row in examples["tableBody"]:
                            rows[row["id"]] = (header, [cell["value"] for cell in row["cells"]])

    visit(feature["children"], None)
    scenarios = []
    for pickle in pickles:
        scenario, rule = nodes[pickle["astNodeIds"][0]]
        example = None
        if len(pickle["astNodeIds"]) > 1:
            header, values = rows[pickle["astNodeIds"][1]]
            example = tuple(zip(header, values, strict=True))
        steps = tuple((keywords.get(step["astNodeIds"][0], step.get("type", "")), step["text"])
                      for step in pickle["steps"])
        scenarios.append(GherkinScenario(
            feature_file=file, name=pickle["name"], line=scenario["location"]["line"], rule=rule,
            tags=tuple(tag["name"] for tag in pickle["tags"]), steps=steps, example=example,
            step_lines=tuple(step_lines.get(step["astNodeIds"][0], 0) for step in pickle["steps"]),
        ))
    return GherkinFeature(file=file, name=feature["name"], description=_dedent(feature.get("description") or ""),
                          tags=tuple(tag["name"] for tag in feature["tags"]), scenarios=tuple(scenarios))
