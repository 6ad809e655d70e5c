"""Loading the rulebook: a broken rule file is refused with file, line, rule id and field, all at once."""

from __future__ import annotations

import datetime as dt
import shutil
import textwrap
from pathlib import Path

import pytest

from postcart import Rulebook, RuleDefinitionError
from postcart.rulebook import Derive, Suggest

from .conftest import RULES


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A copy of the bundled rules to break."""
    target = tmp_path / "rules"
    shutil.copytree(RULES, target)
    return target


def add_rules(directory: Path, text: str, name: str = "zz_test.yaml") -> None:
    (directory / name).write_text(textwrap.dedent(text), encoding="utf-8")


def load_problems(directory: Path) -> list[str]:
    with pytest.raises(RuleDefinitionError) as caught:
        Rulebook.load(directory)
    return [str(problem) for problem in caught.value.problems]


GOOD_RULE = """
  - id: test.good
    title: A valid test rule
    diseases: [LBCL]
    when: {field: fitness.ecog, le: 2}
    then:
      option: clinical_trial
      verdict: consider
      rationale: A valid rationale long enough to pass the schema.
      citations: [zurko2023_allohct_after_cart]
      evidence: {level: C, basis: trial_only}
"""


def test_bundled_rulebook_loads(rulebook: Rulebook) -> None:
    """The bundled rulebook loads, with a version, a content hash and resolvable citations."""
    assert rulebook.version
    assert len(rulebook.content_hash) == 64
    for rule in rulebook.rules:
        if isinstance(rule.then, Suggest):
            assert rule.then.citations and all(key in rulebook.references for key in rule.then.citations)


def test_unknown_field_names_file_line_rule_and_suggestion(rules_dir: Path) -> None:
    """A misspelt field is refused with file:line, rule id, the condition path and a 'did you mean'."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("fitness.ecog", "fitness.ecgo"))
    (problem,) = load_problems(rules_dir)
    assert problem.startswith("zz_test.yaml:2 rule test.good field when.field")
    assert "unknown field 'fitness.ecgo'" in problem
    assert "did you mean 'fitness.ecog'" in problem


def test_bad_operator(rules_dir: Path) -> None:
    """An operator that does not exist is refused, listing the ones that do."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("le: 2", "lessthan: 2"))
    (problem,) = load_problems(rules_dir)
    assert "rule test.good" in problem and "unknown: lessthan" in problem and "one of eq, ne" in problem


def test_value_outside_enumeration(rules_dir: Path) -> None:
    """A comparison with a value the field cannot take is refused with the allowed values."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("{field: fitness.ecog, le: 2}",
                                                      "{field: failure.target_antigen, eq: absent}"))
    (problem,) = load_problems(rules_dir)
    assert "field when.eq" in problem
    assert "one of retained, lost, unknown" in problem and "got 'absent'" in problem


def test_value_outside_range(rules_dir: Path) -> None:
    """A threshold outside the field's range cannot ever be met and is refused."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("le: 2", "le: 7"))
    (problem,) = load_problems(rules_dir)
    assert "value outside the range of 'fitness.ecog'" in problem and "an integer 0-4" in problem


def test_unknown_citation_key(rules_dir: Path) -> None:
    """A citation key missing from the bibliography is refused with a suggestion."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("zurko2023_allohct_after_cart", "zurko2023_allohct_after_car"))
    (problem,) = load_problems(rules_dir)
    assert "field then.citations" in problem and "unknown citation key 'zurko2023_allohct_after_car'" in problem
    assert "did you mean 'zurko2023_allohct_after_cart'" in problem


def test_duplicate_id(rules_dir: Path) -> None:
    """Two rules with one id are refused, naming where the first one is."""
    add_rules(rules_dir, "rules:" + GOOD_RULE + GOOD_RULE)
    (problem,) = load_problems(rules_dir)
    assert "duplicate rule id (first defined in zz_test.yaml:2)" in problem


def test_suggestion_without_citation(rules_dir: Path) -> None:
    """A recommended or consider verdict without a citation is refused."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("citations: [zurko2023_allohct_after_cart]", "citations: []"))
    problems = load_problems(rules_dir)
    assert any("must cite" in problem for problem in problems)


def test_unknown_option_and_key_in_then(rules_dir: Path) -> None:
    """An option outside the contract and a misspelt key are both reported."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("option: clinical_trial", "option: chemo"))
    problems = load_problems(rules_dir)
    assert any("then" in problem and "'chemo'" in problem for problem in problems)


def test_all_problems_reported_at_once(rules_dir: Path) -> None:
    """Several broken rules in several files are all reported in one error."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("fitness.ecog", "fitness.ecgo"), "zz_one.yaml")
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("test.good", "test.other").replace("LBCL", "AML"),
              "zz_two.yaml")
    problems = load_problems(rules_dir)
    assert any(problem.startswith("zz_one.yaml:2 rule test.good") for problem in problems)
    assert any(problem.startswith("zz_two.yaml:2 rule test.other field diseases") for problem in problems)


def test_invalid_yaml_names_line(rules_dir: Path) -> None:
    """A file that is not YAML is refused with its line."""
    (rules_dir / "zz_bad.yaml").write_text("rules:\n  - id: [unclosed\n", encoding="utf-8")
    (problem,) = load_problems(rules_dir)
    assert problem.startswith("zz_bad.yaml:") and "not valid YAML" in problem


def test_no_python_in_rule_files(rules_dir: Path) -> None:
    """A YAML tag that would build a Python object is refused (safe loading only)."""
    (rules_dir / "zz_bad.yaml").write_text("rules: !!python/object/apply:os.system ['true']\n", encoding="utf-8")
    (problem,) = load_problems(rules_dir)
    assert "not valid YAML" in problem


def test_undeclared_derived_fact(rules_dir: Path) -> None:
    """Deriving or reading an undeclared fact is refused."""
    add_rules(rules_dir, """
        rules:
          - id: test.derive
            title: Derive an undeclared fact
            diseases: [all]
            then: {derive: nonsense, value: true}
          - id: test.read
            title: Read an undeclared fact
            diseases: [all]
            when: {field: derived.nonsense, eq: true}
            then: {ask: fitness.hct_ci, why: Needed for the test rule.}
        """)
    problems = load_problems(rules_dir)
    assert any("rule test.derive field then.derive" in p and "undeclared derived fact" in p for p in problems)
    assert any("rule test.read" in p and "unknown derived fact 'nonsense'" in p for p in problems)


def test_circular_derived_facts_refused(rules_dir: Path) -> None:
    """Derived facts that depend on each other in a circle are refused."""
    add_rules(rules_dir, """
        facts:
          fact_a: {description: first test fact, values: [true, false]}
          fact_b: {description: second test fact, values: [true, false]}
        rules:
          - id: test.a
            title: A from B
            diseases: [all]
            when: {field: derived.fact_b, eq: true}
            then: {derive: fact_a, value: true}
          - id: test.b
            title: B from A
            diseases: [all]
            when: {field: derived.fact_a, eq: true}
            then: {derive: fact_b, value: true}
        """)
    problems = load_problems(rules_dir)
    assert any("circle" in p and "fact_a -> fact_b -> fact_a" in p for p in problems)


def test_draft_and_retired_rules(rules_dir: Path) -> None:
    """Draft rules run only when asked; retired rules never do."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("title:", "status: draft\n    title:")
              + GOOD_RULE.replace("test.good", "test.old").replace("title:", "status: retired\n    title:"))
    ids = {rule.id for rule in Rulebook.load(rules_dir).rules}
    assert "test.good" not in ids and "test.old" not in ids
    ids = {rule.id for rule in Rulebook.load(rules_dir, include_drafts=True).rules}
    assert "test.good" in ids and "test.old" not in ids


def test_content_hash_changes_with_content(rules_dir: Path) -> None:
    """The content hash identifies the rule text exactly."""
    before = Rulebook.load(rules_dir).content_hash
    add_rules(rules_dir, "rules:" + GOOD_RULE)
    assert Rulebook.load(rules_dir).content_hash != before


def test_derive_rules_parse(rulebook: Rulebook) -> None:
    """Derived facts in the bundled rulebook are declared and derived."""
    derived = {rule.then.derive for rule in rulebook.rules if isinstance(rule.then, Derive)}
    assert derived and derived <= set(rulebook.facts)


def test_short_rationale_reports_only_the_suggestion_variant(rules_dir: Path) -> None:
    """A too-short rationale gives one located problem about the rationale, not errors for every `then` variant."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("A valid rationale long enough to pass the schema.", "Too short."))
    (problem,) = load_problems(rules_dir)
    assert problem.startswith("zz_test.yaml:2 rule test.good field then.rationale")
    assert "at least 20 characters" in problem


def test_derive_and_ask_errors_name_their_own_variant(rules_dir: Path) -> None:
    """A `then` with `derive` or `ask` is checked as that variant only: its own missing key, nothing else."""
    add_rules(rules_dir, """
        rules:
          - id: test.derive
            title: A derive without value
            diseases: [LBCL]
            then: {derive: failure_timing}
          - id: test.ask
            title: An ask with a short why
            diseases: [LBCL]
            then: {ask: fitness.hct_ci, why: short}
        """)
    problems = load_problems(rules_dir)
    assert len(problems) == 2, problems
    assert "rule test.derive field then.value: required key is missing" in problems[0]
    assert "rule test.ask field then.why" in problems[1] and "at least 10 characters" in problems[1]


def test_non_utf8_rule_file_is_a_located_problem(rules_dir: Path) -> None:
    """A rule file that is not UTF-8 is reported by name, alongside the other files' problems."""
    (rules_dir / "aa_latin1.yaml").write_bytes("rules: []\n# caf\xe9\n".encode("latin-1"))
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("fitness.ecog", "fitness.ecgo"))
    problems = load_problems(rules_dir)
    assert any(problem.startswith("aa_latin1.yaml: not UTF-8 text") for problem in problems), problems
    assert any("unknown field 'fitness.ecgo'" in problem for problem in problems)


# --- the reference policy (docs/rulebook-format.md): links, verification, what active rules may cite


def add_reference(directory: Path, **fields: object) -> None:
    """Append one bibliography entry (a verified test entry, changed by ``fields``) to the copied rules."""
    import yaml

    path = directory / "references.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    entry: dict[str, object] = {
        "key": "test_entry", "label": "Test 2025", "authors": "Tester T", "title": "A test entry",
        "source": "Test J 2025;1:1", "year": 2025, "published": "2025-01-02", "status": "verified",
        "verified_at": ["https://pubmed.ncbi.nlm.nih.gov/1/"], "checked": dt.date(2026, 12, 6), "pmid": "1"}
    entry.update(fields)
    data["references"].append(entry)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def test_reference_policy_holds_for_the_bundled_bibliography(rulebook: Rulebook) -> None:
    """Every bundled entry links to its DOI, PubMed record or an allow-listed page; verified ones say where and when."""
    hosts = frozenset(yaml_hosts())
    for key, reference in rulebook.references.items():
        assert reference.policy_problems(hosts) == [], key
        link = reference.link
        if reference.doi:
            assert link == f"https://doi.org/{reference.doi}"
        elif reference.pmid:
            assert link == f"https://pubmed.ncbi.nlm.nih.gov/{reference.pmid}/"
        if reference.status == "verified":
            assert link and reference.verified_at and reference.checked and reference.published, key


def yaml_hosts() -> list[str]:
    import yaml

    return list(yaml.safe_load((RULES / "link_hosts.yaml").read_text(encoding="utf-8"))["hosts"])


def test_a_mirror_url_is_refused(rules_dir: Path) -> None:
    """A link to a mirror of a journal (a host off the allow-list) fails the load, naming entry and host."""
    add_reference(rules_dir, pmid=None, url="http://ashpublications.net/blood/article/137/3/323/463850")
    (problem,) = load_problems(rules_dir)
    assert "references.yaml" in problem and "test_entry.url" in problem
    assert "a link is https" in problem or "not on the allow-list" in problem
    add_reference(rules_dir, key="test_entry2", pmid=None, url="https://fanyv88.com/pmc/articles/pmc8363505")
    assert any("host 'fanyv88.com' is not on the allow-list" in p for p in load_problems(rules_dir))


def test_one_work_under_two_keys_is_refused(rules_dir: Path) -> None:
    """Two bibliography keys for one DOI (or one PMID) are refused, naming both keys: rules citing either
    would drift apart (two Chari 2025 keys once carried different findings for the same paper)."""
    add_reference(rules_dir, pmid="1")
    add_reference(rules_dir, key="test_entry_again", pmid="1")
    (problem,) = load_problems(rules_dir)
    assert "test_entry_again.pmid" in problem and "the same work as reference 'test_entry' (pmid 1)" in problem
    add_reference(rules_dir, key="test_doi_twice", pmid=None, doi="10.1016/S2352-3026(24)00385-5",
                  verified_at=["https://pubmed.ncbi.nlm.nih.gov/40090350/"], doi_seen=True)
    assert any("the same work as reference 'chari2025_monumental1_lancethaematol' (doi 10.1016/s2352-3026(24)00385-5)"
               in problem for problem in load_problems(rules_dir))


def test_an_ip_host_is_refused(rules_dir: Path) -> None:
    """A link served from a raw IP address (a PubMed mirror) is never shown."""
    add_reference(rules_dir, pmid=None, url="https://47.251.13.51:8081/40181090")
    (problem,) = load_problems(rules_dir)
    assert "test_entry.url" in problem and "an IP address is never a link host" in problem


def test_a_doi_seen_on_the_page_must_be_given(rules_dir: Path) -> None:
    """An entry recording that its stored page shows a DOI, with no DOI given, is refused."""
    add_reference(rules_dir, doi_seen=True)
    (problem,) = load_problems(rules_dir)
    assert "test_entry.doi" in problem and "a stored page shows a DOI for this work but none is given" in problem


def test_a_verified_entry_needs_its_record(rules_dir: Path) -> None:
    """verified means a stored page, a check date, a publication date and something to link to."""
    add_reference(rules_dir, pmid=None, verified_at=[], checked=None, published=None)
    problems = load_problems(rules_dir)
    for field_name in ("status", "verified_at", "checked", "published"):
        assert any(f"test_entry.{field_name}" in p for p in problems), field_name


def test_an_active_rule_may_not_cite_an_unverified_entry(rules_dir: Path) -> None:
    """check refuses an active rule citing an unverified entry, naming rule and key; a retired one may."""
    add_reference(rules_dir, status="unverified")
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("[zurko2023_allohct_after_cart]", "[test_entry]"))
    (problem,) = load_problems(rules_dir)
    assert "rule test.good" in problem and "active rule cites unverified reference 'test_entry'" in problem
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("[zurko2023_allohct_after_cart]", "[test_entry]")
              .replace("title:", "status: retired\n    title:"))
    assert "test.good" not in {rule.id for rule in Rulebook.load(rules_dir).rules}


def test_the_bundled_bibliography_keeps_unverified_entries_uncited(rulebook: Rulebook) -> None:
    """Unverified entries (the seed articles, the from-memory ones) are in the bibliography but no active rule cites them."""
    unverified = {key for key, ref in rulebook.references.items() if ref.status == "unverified"}
    assert {"seed_sermo_cart_failure", "baird2021_cd22_car_lbcl", "wang2023_pirtobrutinib_mcl"} <= unverified
    cited = {key for rule in rulebook.rules if rule.status == "active" and hasattr(rule.then, "citations")
             for key in rule.then.citations}
    assert cited & unverified == set()


# --- evidence grades


def test_a_consider_verdict_needs_its_evidence_grade(rules_dir: Path) -> None:
    """A consider rule without ``evidence`` is refused."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("      evidence: {level: C, basis: trial_only}\n", ""))
    (problem,) = load_problems(rules_dir)
    assert "then.evidence" in problem and "a consider verdict carries its evidence grade" in problem


def test_recommended_needs_level_a_to_c_or_a_guideline(rules_dir: Path) -> None:
    """A recommended verdict on level E evidence without a guideline's endorsement is refused."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("verdict: consider", "verdict: recommended")
              .replace("{level: C, basis: trial_only}", "{level: E, basis: off_label}"))
    (problem,) = load_problems(rules_dir)
    assert "recommended needs evidence level A-C or a guideline's endorsement" in problem


def test_an_approved_basis_names_the_regulator(rules_dir: Path) -> None:
    """basis approved (or guideline) without ``detail`` is refused at load."""
    add_rules(rules_dir, "rules:" + GOOD_RULE.replace("basis: trial_only", "basis: approved"))
    (problem,) = load_problems(rules_dir)
    assert "names its source in 'detail'" in problem
