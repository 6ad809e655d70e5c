"""`overrides`, the stated precedence between rules: checked at load, honoured when verdicts combine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from postcart import Engine, Rulebook, RuleDefinitionError, evaluate

from .rulebooks import covering_rules, suggest, write_rulebook

UNFIT = {"field": "fitness.ecog", "ge": 2}
FIT = {"field": "fitness.ecog", "le": 2}


def _situation(ecog: int) -> dict[str, Any]:
    return {"age": 60, "disease": "LBCL", "car_t": {"product": "axi-cel", "best_response": "CR"},
            "failure": {"kind": "relapse", "months_since_infusion": 8}, "fitness": {"ecog": ecog}}


def _verdict(directory: Path, rules: list[dict[str, Any]], ecog: int) -> tuple[str, list[str]]:
    with Engine(Rulebook.load(write_rulebook(directory, rules))) as engine:
        option = evaluate(_situation(ecog), engine).option("allogeneic_hct")
    assert option is not None
    return option.verdict, option.rules


def test_not_advised_that_overrides_a_recommendation_wins(tmp_path: Path) -> None:
    """A not_advised naming the recommended rule in `overrides` decides when both fire; both stay listed."""
    rules = [*covering_rules(skip=("allogeneic_hct",)),
             suggest("allo.unfit", "allogeneic_hct", "not_advised", when=UNFIT, overrides=["allo.fit"]),
             suggest("allo.fit", "allogeneic_hct", "recommended", when=FIT)]
    verdict, rule_ids = _verdict(tmp_path, rules, ecog=2)
    assert verdict == "not_advised"
    assert rule_ids == ["allo.unfit", "allo.fit"]


def test_without_overrides_the_stronger_verdict_wins(tmp_path: Path) -> None:
    """The same pair without `overrides` falls back to the strongest verdict (the contradiction check flags it)."""
    rules = [*covering_rules(skip=("allogeneic_hct",)),
             suggest("allo.unfit", "allogeneic_hct", "not_advised", when=UNFIT),
             suggest("allo.fit", "allogeneic_hct", "recommended", when=FIT)]
    assert _verdict(tmp_path, rules, ecog=2)[0] == "recommended"


def test_override_beats_a_contraindication(tmp_path: Path) -> None:
    """An explicit `overrides` is applied before the contraindication policy."""
    rules = [*covering_rules(skip=("allogeneic_hct",)),
             suggest("allo.unfit", "allogeneic_hct", "not_advised", when=UNFIT, contraindication=True),
             suggest("allo.fit", "allogeneic_hct", "consider", when=FIT, overrides=["allo.unfit"])]
    assert _verdict(tmp_path, rules, ecog=2)[0] == "consider"
    assert _verdict(tmp_path / "again", rules, ecog=3)[0] == "not_advised"


@pytest.mark.parametrize(("overrides", "message"), [
    (["allo.missing"], "unknown rule id 'allo.missing'"),
    (["allo.unfit"], "a rule cannot override itself"),
    (["cover.radiotherapy"], "does not speak to allogeneic_hct"),
    (["allo.fit"], "override each other"),
])
def test_bad_overrides_are_refused_at_load(tmp_path: Path, overrides: list[str], message: str) -> None:
    """`overrides` must name another rule on the same option, and not one that overrides back."""
    rules = [*covering_rules(skip=("allogeneic_hct",)),
             suggest("allo.unfit", "allogeneic_hct", "not_advised", when=UNFIT, overrides=overrides),
             suggest("allo.fit", "allogeneic_hct", "recommended", when=FIT, overrides=["allo.unfit"])]
    if overrides != ["allo.fit"]:
        rules[-1]["then"].pop("overrides")
    with pytest.raises(RuleDefinitionError) as caught:
        Rulebook.load(write_rulebook(tmp_path, rules))
    assert message in str(caught.value)
    assert "rule allo.unfit field then.overrides" in str(caught.value)


@pytest.mark.parametrize("length", [3, 5])
def test_an_overrides_circle_of_any_length_is_refused_with_its_rule_ids(tmp_path: Path, length: int) -> None:
    """a -> b -> c -> a (or longer) is refused at load and by `postcart check`, naming every rule of the circle."""
    ids = [f"allo.r{index}" for index in range(length)]
    rules = [*covering_rules(skip=("allogeneic_hct",)),
             *(suggest(rule_id, "allogeneic_hct", "consider", when=FIT, overrides=[ids[(index + 1) % length]])
               for index, rule_id in enumerate(ids))]
    with pytest.raises(RuleDefinitionError) as caught:
        Rulebook.load(write_rulebook(tmp_path / "rules", rules))
    text = str(caught.value)
    assert "overrides go round in a circle: " + " -> ".join([*ids, ids[0]]) in text
    assert text.count("go round in a circle") == 1
    from typer.testing import CliRunner

    from postcart.cli import app

    result = CliRunner().invoke(app, ["check", "--rules", str(tmp_path / "rules")])
    assert result.exit_code == 2 and "allo.r0" in result.output and "circle" in result.output


@pytest.mark.parametrize("name", ['timing"x', "timing x", "Timing", "timing\\"])
def test_an_unsafe_derived_fact_name_is_refused_with_the_rules_using_it(tmp_path: Path, name: str) -> None:
    """A fact name with a quote, space, capital or backslash is refused, naming the rules that derive it."""
    facts = {name: {"title": "odd", "description": "A fact with an unsafe name.", "values": [True, False]}}
    rules = [*covering_rules(),
             {"id": "derive.odd", "title": "Derive the odd fact", "diseases": ["all"],
              "when": {"field": "age", "gt": 50}, "then": {"derive": name, "value": True}}]
    with pytest.raises(RuleDefinitionError) as caught:
        Rulebook.load(write_rulebook(tmp_path, rules, facts=facts))
    assert "unsafe derived-fact name (used by rules derive.odd)" in str(caught.value)
