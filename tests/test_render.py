"""The readable reports: one reading order, clinical words, follow-up last and short, detail on request."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from postcart import Assessment, Engine, evaluate
from postcart.cli import app
from postcart.render import (
    FOLLOW_UP,
    not_addressed,
    order_key,
    ordered_options,
    pending_text,
    summary_lines,
    to_markdown,
    to_text,
)
from postcart.vocabulary import OPTIONS, option_name

from .conftest import SCENARIOS

SECTIONS = ("RECOMMENDED", "CONSIDER", "NOT ADVISED", "NOT ADDRESSED", "STILL TO ESTABLISH", "LONG-TERM FOLLOW-UP",
            "REFERENCES")
SCENARIO_SITUATIONS = [(file.stem, entry["id"], entry["situation"])
                       for file in sorted(SCENARIOS.glob("*.yaml"))
                       for entry in yaml.safe_load(file.read_text(encoding="utf-8"))["scenarios"]]
#: Figures that carry evidence (a percentage, a decimal): each is said once per option.
FIGURE = re.compile(r"\b\d+\.\d+\b|\b\d+(?:\.\d+)?%")
#: An identifier as code writes it (snake_case): never in the clinical text.
IDENTIFIER = re.compile(r"\b[A-Za-z0-9]+(?:_[A-Za-z0-9]+)+\b")


@pytest.fixture(scope="module")
def assessments(engine: Engine) -> dict[str, Assessment]:
    return {name: evaluate(situation, engine) for _, name, situation in SCENARIO_SITUATIONS}


def _headings(text: str) -> list[str]:
    lines = text.splitlines()
    return [line for line, under in itertools.pairwise(lines) if under and set(under) == {"="}]


def _section(text: str, heading: str) -> list[str]:
    lines = text.splitlines()
    start = lines.index(heading) + 2
    end = next(i for i in range(start, len(lines)) if not lines[i])
    return lines[start:end]


def _main_text(text: str) -> str:
    """The report without its reference list (its links are the sources' own addresses)."""
    return text.split("\nREFERENCES\n", 1)[0]


def _option_blocks(text: str) -> dict[str, str]:
    """Each option's lines in the main text, by the option's name."""
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in _main_text(text).splitlines():
        if line.startswith("  * "):
            current = blocks.setdefault(line[4:].split(" [")[0].split(":")[0], [])
        elif not line.startswith("    "):
            current = None
        if current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in blocks.items()}


def test_sections_come_in_one_reading_order(assessments: dict[str, Assessment]) -> None:
    """Summary first, then recommended, consider, not advised, not addressed, to establish, follow-up last."""
    for name, assessment in assessments.items():
        text = to_text(assessment)
        lines = text.splitlines()
        assert lines[2:5] == summary_lines(assessment), name
        assert [line.split(":")[0] for line in lines[2:5]] == ["Recommended", "Consider", "Check first"]
        headings = _headings(text)
        assert headings == sorted(headings, key=SECTIONS.index), (name, headings)
        content = [heading for heading in headings if heading != "REFERENCES"]
        if assessment.option(FOLLOW_UP) is not None:
            assert content[-1] == "LONG-TERM FOLLOW-UP", (name, headings)


def test_follow_up_is_last_and_three_lines_at_most(assessments: dict[str, Assessment]) -> None:
    """Long-term follow-up closes the clinical text in at most three lines; its full detail is behind --detail."""
    seen = 0
    for name, assessment in assessments.items():
        option = assessment.option(FOLLOW_UP)
        if option is None:
            continue
        seen += 1
        text = to_text(assessment)
        body = _section(text, "LONG-TERM FOLLOW-UP")
        assert 1 <= len(body) <= 3, (name, body)
        assert "--detail" in body[-1]
        assert option_name(FOLLOW_UP) not in _option_blocks(text)  # not among the verdict sections
        for reason in option.reasons[1:]:
            assert reason.rationale not in " ".join(body)
        assert all(reason.rationale in " ".join(to_text(assessment, detail=True).split()) for reason in option.reasons)
    assert seen == len(assessments)


def test_text_has_no_operators_identifiers_or_rule_ids(assessments: dict[str, Assessment]) -> None:
    """The clinical text never shows ≠, a threshold double like (≥ 2), a snake_case id or a rule id."""
    for name, assessment in assessments.items():
        rule_ids = {rule for option in assessment.options for rule in option.rules}
        for text in (_main_text(to_text(assessment)), to_markdown(assessment).split("## References")[0]):
            assert "≠" not in text, name
            assert not re.search(r"\((?:not )?[≤≥<>=] ", text), name
            assert not IDENTIFIER.findall(text), (name, IDENTIFIER.findall(text))
            assert not [rule for rule in rule_ids if rule in text], name
            assert "Rules:" not in text and "Also:" not in text


def test_a_figure_appears_once_per_option(assessments: dict[str, Assessment]) -> None:
    """Within one option's text no evidence figure (a percentage or a decimal) is given twice.

    The one exception is a figure its own source gives twice for different things (one rule's rationale,
    e.g. "50% with an immunomodulatory drug ... alkylator combinations in 50%"): the report adds no repeat.
    """
    for name, assessment in assessments.items():
        blocks = _option_blocks(to_text(assessment))
        for option in assessment.options:
            assert option.rationale == option.reasons[0].rationale  # the deciding rule speaks, alone
            if option.option == FOLLOW_UP:
                continue
            block = blocks[option_name(option.option)]
            own = Counter(FIGURE.findall(option.rationale))
            repeated = [figure for figure, count in Counter(FIGURE.findall(" ".join(block.split()))).items()
                        if count > max(own[figure], 1)]
            assert not repeated, (name, option.option, repeated)


def test_the_disclaimer_closes_every_rendering(assessments: dict[str, Assessment]) -> None:
    """Text, Markdown and their detailed forms all carry the decision-support disclaimer."""
    for assessment in list(assessments.values())[:6]:
        for text in (to_text(assessment), to_text(assessment, detail=True), to_markdown(assessment),
                     to_markdown(assessment, detail=True)):
            assert " ".join(text.split()).rstrip("* \n").endswith(" ".join(assessment.disclaimer.split()))


def test_detail_shows_rule_ids_titles_and_every_rationale(assessments: dict[str, Assessment]) -> None:
    """--detail lists each option's rules by id and title with their own verdicts, and the rules fired."""
    assessment = assessments["lbcl-late-relapse-fit-donor"]
    for text in (to_text(assessment, detail=True), to_markdown(assessment, detail=True)):
        flat = " ".join(text.split())
        for option in assessment.options:
            for reason in option.reasons:
                assert reason.rule in flat and reason.title in flat
        assert "Rules fired:" in flat


def test_evaluate_detail_on_the_command_line() -> None:
    """`postcart evaluate --detail` adds the rule ids; without it they stay out of the text."""
    args = ["evaluate", str(SCENARIOS / "lbcl.yaml"), "--scenario", "lbcl-late-relapse-fit-donor"]
    plain, detailed = CliRunner().invoke(app, args), CliRunner().invoke(app, [*args, "--detail"])
    assert plain.exit_code == 0 and detailed.exit_code == 0, detailed.output
    assert "lbcl.bispecific.cd20xcd3" in detailed.output and "DETAIL" in detailed.output
    assert "lbcl.bispecific.cd20xcd3" not in plain.output
    assert plain.output.splitlines()[2].startswith("Recommended: Bispecific antibody")


def test_summary_names_the_leading_options_and_the_first_check(assessments: dict[str, Assessment]) -> None:
    """Three lines: the recommended options, those to consider (not follow-up), and the first thing to check."""
    assessment = assessments["lbcl-very-early-refractory"]
    recommended, consider, check = summary_lines(assessment)
    assert recommended == "Recommended: Bispecific antibody; Clinical trial."
    assert option_name(FOLLOW_UP) not in recommended
    assert consider.startswith("Consider: ") and "Quality-of-life focus" in consider
    assert check.startswith("Check first: ") and "CAR target on the failure biopsy" in check


def test_every_option_is_either_assessed_or_not_addressed(assessments: dict[str, Assessment]) -> None:
    """The nine options are all on the page: with a verdict, or under 'not addressed' with a reason."""
    for name, assessment in assessments.items():
        absent = not_addressed(assessment)
        assert {option for option, _ in absent} | {o.option for o in assessment.options} == set(OPTIONS), name
        assert all(reason for _, reason in absent)
        if absent:
            body = _section(to_text(assessment), "NOT ADDRESSED")
            assert len(body) == len(absent)  # one line each
            assert [line.split(":")[0].removeprefix("  * ") for line in body] == [option_name(o) for o, _ in absent]


def test_ordered_options_put_follow_up_last_then_strongest_first(assessments: dict[str, Assessment]) -> None:
    """The shared order other renderings use: recommended, consider, not advised; follow-up at the end."""
    for assessment in assessments.values():
        ordered = ordered_options(assessment)
        assert [o.option for o in ordered] == [o.option for o in sorted(
            assessment.options, key=lambda o: order_key(o.option, o.verdict))]
        if assessment.option(FOLLOW_UP) is not None:
            assert ordered[-1].option == FOLLOW_UP
        verdicts = [o.verdict for o in ordered if o.option != FOLLOW_UP]
        assert verdicts == sorted(verdicts, key=("recommended", "consider", "not_advised").index)


def test_pending_option_says_what_to_establish() -> None:
    """A pending option names the question and what each answer would make of it."""
    pending: Any = SimpleNamespace(pending=[{"field": "fitness.organ_function_adequate",
                                             "question": "Is organ function adequate for transplant?",
                                             "outcomes": [{"value": "adequate", "verdict": "recommended"},
                                                          {"value": "not adequate", "verdict": "not_advised"}]}])
    assert pending_text(pending) == ("Is organ function adequate for transplant? adequate: recommended; "
                                     "not adequate: not advised.")
    assert pending_text(SimpleNamespace(pending=[])) == ""  # type: ignore[arg-type]


def test_evidence_level_is_shown_next_to_the_option(assessments: dict[str, Assessment]) -> None:
    """When an option carries an evidence grade, the report shows it by the option's name."""
    assessment = assessments["lbcl-late-relapse-fit-donor"]
    option = assessment.options[0]
    graded: Any = SimpleNamespace(**{name: getattr(option, name) for name in type(option).model_fields},
                                  evidence={"level": "phase 2, single arm", "basis": "ELM-1 post-CAR-T cohort"})
    changed: Any = SimpleNamespace(**{name: getattr(assessment, name) for name in type(assessment).model_fields})
    changed.options = [graded, *assessment.options[1:]]
    changed.option = assessment.option
    text = to_text(changed, detail=True)
    assert f"  * {option_name(option.option)}" in text and "— evidence: phase 2, single arm" in text
    assert "ELM-1 post-CAR-T cohort" in text  # the basis, in the detail
    graded.evidence = SimpleNamespace(level="C", basis="off_label", detail=None, token="[evidence C · off-label]")
    text = to_markdown(changed, detail=True)
    assert f"### {option_name(option.option)} [evidence C · off-label]" in text  # the grade's own token
    assert "C; off label" in text


def test_batch_html_and_cds_cards_follow_the_same_order(engine: Engine) -> None:
    """The batch report lists each scenario's options in the reading order, then the not-addressed ones
    with their reasons; the CDS Hooks option cards come in the same order."""
    from postcart.batch.suite import run_suite, to_html
    from postcart.cds_hooks.cards import build_cards

    suite = run_suite([SCENARIOS / "lbcl.yaml"], engine)
    page = to_html(suite)
    for result in suite.results:
        assert result.assessment is not None
        start = page.index(f'id="{result.scenario.id}"')
        section = page[start:page.index("</section>", start)]
        expected = [o.option for o in ordered_options(result.assessment)]
        expected += [name for name, _ in not_addressed(result.assessment)]
        rows = re.findall(r"<tr><td>([a-z_]+)</td>", section)
        assert rows == expected, result.scenario.id
        assert summary_lines(result.assessment)[0] in section
        cards = build_cards(result.assessment, [], "postcart").issued
        carded = [card.option for card in cards if card.kind == "option"]
        order = [o.option for o in ordered_options(result.assessment)]
        assert carded, result.scenario.id
        # the cards (one per recommended or pending option) keep the report's reading order
        assert carded == [option for option in order if option in carded], result.scenario.id
