"""The clinicians' review report: run the feature files and show, per scenario, what the engine said.

``postcart review --output FILE.html`` runs the Gherkin features of ``tests/features/`` with pytest-bdd
in a subprocess (with ``--cucumberjson``), reads the evidence the feature suite records (verdicts,
citations, rules fired, rule coverage) and writes a self-contained HTML page, the same content as
Markdown, and the Cucumber JSON. The report is for reading, annotating and signing off; it holds only the
synthetic patients of the feature files, never a real patient's data.

The feature files are read with the official Gherkin parser (``gherkin-official``), so the report shows
each scenario as written (outline examples filled in, Background steps included).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from postcart.errors import PostcartError

__all__ = [
    "GherkinFeature",
    "GherkinScenario",
    "ReviewError",
    "ReviewResult",
    "default_features_dir",
    "read_features",
    "render_html",
    "render_markdown",
    "run_review",
]


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


def default_features_dir() -> Path:
    """``tests/features`` of this source checkout."""
    return Path(__file__).resolve().parents[2] / "tests" / "features"


def read_features(directory: str | os.PathLike[str]) -> list[GherkinFeature]:
    """Parse every ``*.feature`` file of a directory with the official Gherkin parser.

    Raises:
        ReviewError: a file does not parse (the message names the file and the parser's line and reason).
    """
    from gherkin.errors import CompositeParserException, ParserException  # type: ignore[import-untyped]
    from gherkin.parser import Parser  # type: ignore[import-untyped]
    from gherkin.pickles.compiler import Compiler  # type: ignore[import-untyped]

    features = []
    for path in sorted(Path(directory).glob("*.feature")):
        try:
            document = Parser().parse(path.read_text(encoding="utf-8"))
        except (CompositeParserException, ParserException) as error:
            raise ReviewError(f"{path.name}: not valid Gherkin: {error}") from None
        document["uri"] = path.name
        feature = document.get("feature")
        if feature is None:
            continue
        features.append(_feature(path.name, feature, Compiler().compile(document)))
    return features


def _feature(file: str, feature: dict[str, Any], pickles: list[dict[str, Any]]) -> GherkinFeature:
    nodes: dict[str, tuple[dict[str, Any], str | None]] = {}   # scenario or row id -> (node, rule name)
    rows: dict[str, tuple[list[str], list[str]]] = {}          # example row id -> (header, values)
    keywords: dict[str, str] = {}                              # step id -> keyword as written

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
        ))
    return GherkinFeature(file=file, name=feature["name"], description=(feature.get("description") or "").strip(),
                          tags=tuple(tag["name"] for tag in feature["tags"]), scenarios=tuple(scenarios))
