"""The ``postcart`` command line: thin, no clinical logic. Exit codes: 0 fine, 2 invalid input or
rules (the message names the field, what was expected and what arrived), 1 internal error.

It is one module because it is the program's one surface: each command is a short function that parses
its options and hands over to the module that does the work; splitting it would scatter the options a
user reads in ``postcart -h`` (reference: docs/cli.md, generated)."""

from __future__ import annotations

import functools
import json
import logging
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from enum import Enum, StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from postcart.errors import InvalidSituation, PostcartError, Problem, RuleDefinitionError

app = typer.Typer(
    name="postcart",
    help="Decision support after CAR-T cell therapy failure. Supports, never replaces, clinical judgement.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish and PowerShell
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        from postcart.assessment import package_version

        typer.echo(f"postcart {package_version('postcart')} (durable-rules {package_version('durable-rules')})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", "-V", help="Print postcart's version and exit.",
                                          callback=_version_callback, is_eager=True)] = False,
) -> None:
    """Decision support after CAR-T cell therapy failure. Supports, never replaces, clinical judgement."""

RulesOption = Annotated[
    Path | None,
    typer.Option("--rules", help="Rules directory (default: $POSTCART_RULES or the bundled rules/).",
                 file_okay=False),
]


class Format(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


def _fail(error: PostcartError) -> NoReturn:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2 if isinstance(error, ValueError) else 1)


def _emit(result: Any, output_format: Format, as_text: Callable[[Any], str],
          as_markdown: Callable[[Any], str]) -> None:
    """Print a result model as JSON, Markdown or the readable text report."""
    if output_format is Format.json:
        typer.echo(json.dumps(result.model_dump(mode="json"), indent=2, ensure_ascii=False))
    elif output_format is Format.markdown:
        typer.echo(as_markdown(result), nl=False)
    else:
        typer.echo(as_text(result), nl=False)


def read_document(source: str) -> Any:
    """Read a YAML or JSON document from a path or ``-`` (standard input) with the strict reader."""
    from postcart.documents import read_document as read_strictly

    return read_strictly(source)


def situation_from_document(data: Any, scenario: str | None, name: str) -> Any:
    """A situation mapping, or the situation of one scenario of a scenario file."""
    if not (isinstance(data, dict) and isinstance(data.get("scenarios"), list)):
        return data
    entries = [entry for entry in data["scenarios"] if isinstance(entry, dict)]
    ids = [str(entry.get("id")) for entry in entries]
    chosen: dict[str, Any] | None
    if scenario is None and len(entries) == 1:
        chosen = entries[0]
    else:
        chosen = next((entry for entry in entries if str(entry.get("id")) == scenario), None)
        if chosen is None:
            got = scenario if scenario is not None else "no --scenario"
            raise InvalidSituation(Problem(f"{name} --scenario", "choose one scenario of the file",
                                           "one of " + ", ".join(ids), got))
    situation = chosen.get("situation")
    if not isinstance(situation, dict):
        raise InvalidSituation(Problem(f"{name} {chosen.get('id')} situation", "missing or not a mapping",
                                       "a patient situation", type(situation).__name__))
    return situation


def _load_rulebook(rules: Path | None, include_drafts: bool = False) -> Any:
    from postcart.rulebook import Rulebook

    return Rulebook.load(rules, include_drafts=include_drafts)


@app.command()
def evaluate(
    file: Annotated[str, typer.Argument(help="Patient situation, YAML or JSON; '-' reads standard input.")],
    output_format: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = Format.text,
    rules: RulesOption = None,
    include_drafts: Annotated[bool, typer.Option(help="Also run rules whose status is draft.")] = False,
    scenario: Annotated[str | None, typer.Option(help="In a scenario file with several, the id to assess.")] = None,
    detail: Annotated[bool, typer.Option(
        help="Add the detail: each rule's id, title and rationale, the full survivorship follow-up.")] = False,
) -> None:
    """Assess one patient's situation and print the sourced options.

    FILE is a situation, or a scenario file (its situation is assessed; --scenario picks one of several).
    The report opens with a three-line summary; rule ids are in --detail and in the JSON.
    """
    from postcart.engine import Engine
    from postcart.evaluation import evaluate as run_evaluation
    from postcart.render import to_markdown, to_text

    try:
        data = situation_from_document(read_document(file), scenario, file)
        rulebook = _load_rulebook(rules, include_drafts)
        with Engine(rulebook) as engine:
            assessment = run_evaluation(data, engine)
    except PostcartError as error:
        _fail(error)
    _emit(assessment, output_format, functools.partial(to_text, detail=detail),
          functools.partial(to_markdown, detail=detail))


@app.command()
def check(
    rules: RulesOption = None,
    require_lifecycle: Annotated[bool, typer.Option(
        help="Fail when an active rule lacks author, approved or review_by (default: warn).")] = False,
    max_evidence_age: Annotated[int | None, typer.Option(
        min=1, help="Warn for a rule whose newest citation is older than this many years before the "
        "evidence_reviewed date (default: evidence_max_age_years in rulebook.yaml).")] = None,
    require_review: Annotated[bool, typer.Option(
        help="Fail when an active rule's current version is not approved by a recorded review (by enough "
             "reviewers, not past review_by): for release builds (default: warn).")] = False,
) -> None:
    """Check the rulebook and report every problem at once."""
    from postcart.governance.check import lint, review_findings

    try:
        rulebook = _load_rulebook(rules, include_drafts=True)
    except RuleDefinitionError as error:
        _fail(error)
    findings = lint(rulebook, require_lifecycle=require_lifecycle, max_evidence_age=max_evidence_age)
    review_findings(rulebook, findings, require=require_review)
    for warning in (*rulebook.warnings, *findings.warnings):
        typer.echo(f"warning: {warning}", err=True)
    if findings.problems:
        _fail(RuleDefinitionError(findings.problems, rulebook.directory))
    typer.echo(f"rulebook {rulebook.version} ({rulebook.content_hash[:12]}): {len(rulebook.rules)} rules, "
               f"{len(rulebook.references)} references: OK")


def _option_enum() -> type[Enum]:
    from postcart.vocabulary import OPTIONS

    return Enum("OptionName", {name: name for name in OPTIONS}, type=str)  # type: ignore[return-value]


OptionName = _option_enum()


@app.command()
def explain(
    file: Annotated[str, typer.Argument(help="Patient situation, YAML or JSON; '-' reads standard input.")],
    option: Annotated[OptionName | None, typer.Option(  # type: ignore[valid-type]
        help="The option to explain (default: every option the disease's rules address).")] = None,
    output_format: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = Format.text,
    rules: RulesOption = None,
    include_drafts: Annotated[bool, typer.Option(help="Also run rules whose status is draft.")] = False,
    scenario: Annotated[str | None, typer.Option(help="In a scenario file with several, the id to explain.")] = None,
) -> None:
    """Why each option got its verdict, why not a stronger one, and what would change it.

    Every "would change" is found by re-running the rules on the changed situation.
    """
    from postcart.engine import Engine
    from postcart.explain import explain as run_explain
    from postcart.explain import to_markdown, to_text

    try:
        data = situation_from_document(read_document(file), scenario, file)
        rulebook = _load_rulebook(rules, include_drafts)
        with Engine(rulebook) as engine:
            explanation = run_explain(data, option.value if option else None, engine)  # type: ignore[attr-defined]
    except PostcartError as error:
        _fail(error)
    _emit(explanation, output_format, to_text, to_markdown)


@app.command()
def diff(
    paths: Annotated[list[str] | None, typer.Argument(
        help="OLD_RULES NEW_RULES [SCENARIOS|SITUATIONS ...]; with --old-rev: [NEW_RULES] [SCENARIOS ...]. "
        "Situations default to the bundled scenarios/.", show_default=False)] = None,
    old_rev: Annotated[str | None, typer.Option(
        "--old-rev", help="Compare against the rules directory at this git revision (e.g. main, HEAD~1).")] = None,
    output_format: Annotated[Format, typer.Option(
        "--format", "-f", help="Report format (text is the Markdown report).")] = Format.markdown,
    include_drafts: Annotated[bool, typer.Option(help="Also run rules whose status is draft.")] = False,
) -> None:
    """Run two rulebooks over the same situations and report every assessment that changed."""
    from postcart.governance.diff import (
        compare_rulebooks,
        default_scenarios_dir,
        load_situations,
        rules_at_revision,
        to_json,
        to_markdown,
    )
    from postcart.rulebook import default_rules_dir

    args = list(paths or [])
    try:
        if old_rev is None:
            if len(args) < 2:
                raise typer.BadParameter("needs the old and the new rules directories: OLD_RULES NEW_RULES "
                                         f"[SCENARIOS ...], or --old-rev REV; got: {' '.join(args) or 'nothing'}")
            old_dir, new_dir, inputs = Path(args[0]), Path(args[1]), args[2:]
        elif args and (Path(args[0]) / "rulebook.yaml").is_file():
            old_dir, new_dir, inputs = None, Path(args[0]), args[1:]
        else:
            old_dir, new_dir, inputs = None, default_rules_dir(), args
        situations = load_situations(*(inputs or [str(default_scenarios_dir())]))
        new = _load_rulebook(new_dir, include_drafts)
        if old_dir is None:
            with rules_at_revision(old_rev or "HEAD", new_dir) as extracted:
                old = _load_rulebook(extracted, include_drafts)
                report = compare_rulebooks(old, new, situations, old_source=f"{new_dir} at {old_rev}",
                                           new_source=str(new_dir))
        else:
            old = _load_rulebook(old_dir, include_drafts)
            report = compare_rulebooks(old, new, situations, old_source=str(old_dir), new_source=str(new_dir))
    except PostcartError as error:
        _fail(error)
    typer.echo(to_json(report) if output_format is Format.json else to_markdown(report))
    if situations.unreadable:
        typer.echo("error: could not read " + ", ".join(situations.unreadable) + " (see 'Not compared'); the "
                   "comparison is incomplete", err=True)
        raise typer.Exit(2)


def _check_writable(option: str, path: Path | None) -> None:
    """Refuse, before any work is done, an output path whose directory is missing or not writable."""
    if path is None:
        return
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        problem = "is a directory, not a file"
    elif not parent.is_dir():
        problem = f"directory {parent} does not exist"
    elif not os.access(parent, os.W_OK | os.X_OK):
        problem = f"directory {parent} is not writable"
    else:
        return
    typer.echo(f"error: {option} {path}: {problem}", err=True)
    raise typer.Exit(2)


@app.command()
def catalogue(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the Markdown here (e.g. "
                                                "docs/rules.md) instead of standard output.", dir_okay=False)] = None,
    rules: RulesOption = None,
) -> None:
    """Generate the rule catalogue a clinician reads: rules by disease and option, coverage, references."""
    from postcart.governance.catalogue import render_catalogue

    _check_writable("--output", output)
    try:
        rulebook = _load_rulebook(rules, include_drafts=True)
    except RuleDefinitionError as error:
        _fail(error)
    text = render_catalogue(rulebook)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output} ({len(rulebook.rules)} rules)")


review_app = typer.Typer(
    help="The clinicians' review: the review page (--output) and recording completed reviews (import).",
    no_args_is_help=False, add_completion=False, pretty_exceptions_enable=False)
app.add_typer(review_app, name="review")


@review_app.callback(invoke_without_command=True)
def review(
    ctx: typer.Context,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The HTML review page to write.",
                                                dir_okay=False)] = None,
    markdown: Annotated[Path | None, typer.Option(help="Markdown copy (default: OUTPUT with .md).")] = None,
    cucumber_json: Annotated[Path | None, typer.Option(
        "--cucumber-json", help="Cucumber JSON (default: OUTPUT with .cucumber.json).")] = None,
    features: Annotated[Path | None, typer.Option(
        help="Feature directory (default: the feature files shipped with postcart).", file_okay=False)] = None,
    rules: RulesOption = None,
) -> None:
    """Run the clinicians' feature specifications and write the review page (HTML, Markdown, Cucumber JSON).

    The page lets a reviewer mark each scenario and rule and export one review file; `postcart review
    import FILE` records it. Exit code 0 when every scenario passes and every rule was exercised; 1
    otherwise (the report is still written) or when the features cannot be read or run.
    """
    if ctx.invoked_subcommand is not None:
        return
    if output is None:
        typer.echo("error: give --output FILE.html to write the review page, or `postcart review import FILE` "
                   "to record a completed review", err=True)
        raise typer.Exit(2)
    from postcart.governance.review import run_review

    try:
        result = run_review(output, markdown=markdown, cucumber_json=cucumber_json, features_dir=features,
                            rules_dir=rules)
    except PostcartError as error:
        _fail(error)
    typer.echo(f"{result.passed} of {len(result.scenarios)} scenarios pass; {result.summary}")
    for path in result.written:
        typer.echo(f"written: {path}")
    if not result.ok:
        raise typer.Exit(1)


@review_app.command("import")
def review_import(
    file: Annotated[Path, typer.Argument(help="The review file the review page exported (JSON).", dir_okay=False)],
    rules: RulesOption = None,
) -> None:
    """Record a completed review under reviews/ of the rules directory, if it is for the rules there now.

    Refused (exit code 2, saying why) when the file was altered after export or was made for other rules:
    a review of an earlier rulebook names the rules changed since.
    """
    from postcart.governance.signoff import import_review
    from postcart.rulebook import Rulebook

    try:
        recorded = import_review(file, rules)
        book = Rulebook.load(rules)
    except PostcartError as error:
        _fail(error)
    review = next(r for r in book.reviews if r.file == recorded.name)
    approved = sum(1 for entry in review.rules if entry.decision == "approve")
    changes = sum(1 for entry in review.rules if entry.decision == "request_change")
    typer.echo(f"recorded: {recorded} ({review.reviewer.name}, {review.reviewer.role}, {review.date}): "
               f"{approved} rules approved, {changes} changes requested, "
               f"{len(review.rules) - approved - changes} undecided")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the patient situation (generated from the model)."""
    from postcart.situation import PatientSituation

    typer.echo(json.dumps(PatientSituation.model_json_schema(), indent=2))


_TABLE_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet")
_SCENARIO_SUFFIXES = (".yaml", ".yml", ".json")


@app.command()
def batch(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files or directories (a suite), or one cohort "
                                                "table (.csv, .jsonl, .parquet).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Cohort results file (.csv, .jsonl, "
                                                ".parquet); written atomically.")] = None,
    output_format: Annotated[Format, typer.Option("--format", "-f", help="text, or json for the full "
                                                  "results.")] = Format.text,
    junit: Annotated[Path | None, typer.Option(help="Suite: also write JUnit XML here.")] = None,
    report: Annotated[Path | None, typer.Option(help="Suite: also write a self-contained HTML report.")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Cohort: worker processes on this machine.")] = 1,
    dask: Annotated[str | None, typer.Option("--dask", help="Cohort: evaluate on this dask.distributed "
                                              "scheduler (e.g. tcp://host:8786).")] = None,
    chunk_size: Annotated[int, typer.Option(min=1, help="Cohort: rows per chunk (unit of work and of "
                                            "resuming).")] = 5000,
    restart: Annotated[bool, typer.Option(help="Cohort: discard an interrupted run instead of resuming "
                                          "it.")] = False,
    rules: RulesOption = None,
    include_drafts: Annotated[bool, typer.Option(help="Also run rules whose status is draft.")] = False,
) -> None:
    """Run a scenario suite (a regression gate) or evaluate a cohort table.

    Suite: prints a diff per mismatch and a summary; exit 0 all passed, 1 a scenario failed its
    expectation, 2 an invalid scenario (or none found). Cohort: one result row per patient in OUTPUT;
    invalid rows get their error there and are counted; an interrupted run resumes when rerun.
    """
    tables = [path for path in paths if path.suffix.lower() in _TABLE_SUFFIXES]
    accepted = "cohort tables are .csv, .jsonl, .ndjson or .parquet; scenario files are .yaml, .yml or .json"
    if not tables:
        if output is not None:
            typer.echo(f"error: --output is for a cohort table, and {' '.join(map(str, paths))} is not one "
                       f"({accepted}); a scenario suite writes --junit or --report instead", err=True)
            raise typer.Exit(2)
        odd = [path for path in paths if path.is_file() and path.suffix.lower() not in _SCENARIO_SUFFIXES]
        if odd:
            typer.echo(f"error: {', '.join(map(str, odd))}: neither a cohort table nor a scenario file ({accepted})",
                       err=True)
            raise typer.Exit(2)
    elif len(paths) != 1 or output is None:
        typer.echo("error: a cohort run takes one table and --output FILE (.csv, .jsonl or .parquet)", err=True)
        raise typer.Exit(2)
    for option, path in (("--output", output), ("--junit", junit), ("--report", report)):
        _check_writable(option, path)
    try:
        rulebook = _load_rulebook(rules, include_drafts)
    except PostcartError as error:
        _fail(error)
    if tables and output is not None:  # (a table without --output was refused above)
        _batch_cohort(paths[0], output, rulebook, output_format, workers, dask, chunk_size, restart)
    else:
        _batch_suite(paths, rulebook, output_format, junit, report)


def _progress() -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=console, transient=True, disable=not console.is_terminal)


def _exit_after_interrupt(status: int) -> NoReturn:
    """End an interrupted cohort run with ``status`` (130 Ctrl-C, 143 SIGTERM) in bounded time.

    The run has already reaped its workers and removed its temporary files. A thread a library left
    behind (a process pool's management thread whose workers were killed) would make the interpreter's
    exit wait on it for ever: give such threads a few seconds, then leave without waiting.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(5)
            if thread.is_alive():
                os._exit(status)
    raise typer.Exit(status)


def _batch_suite(paths: list[Path], rulebook: Any, output_format: Format, junit: Path | None,
                 report: Path | None) -> None:
    from postcart.batch.suite import run_suite, to_html, to_json_text, to_junit, to_text
    from postcart.engine import Engine

    with Engine(rulebook) as engine, _progress() as bar:
        task = bar.add_task("scenarios", total=None)
        suite = run_suite(list(paths), engine, lambda done, total: bar.update(task, completed=done, total=total))
    # the summary first: a file that cannot be written (checked up front, but disks fill) must not lose it
    typer.echo(to_json_text(suite) if output_format is Format.json else to_text(suite), nl=False)
    for option, path, render in (("--junit", junit, to_junit), ("--report", report, to_html)):
        if path is not None:
            try:
                path.write_text(render(suite), encoding="utf-8")
            except OSError as error:
                typer.echo(f"error: {option} {path}: cannot write: {error.strerror or type(error).__name__}",
                           err=True)
                raise typer.Exit(2) from None
    if suite.invalid or not suite.results:
        raise typer.Exit(2)
    if suite.failed:
        raise typer.Exit(1)


def _batch_cohort(source: Path, output: Path, rulebook: Any, output_format: Format, workers: int,
                  dask: str | None, chunk_size: int, restart: bool) -> None:
    from postcart.batch.cohort import run_cohort

    with _progress() as bar:
        task = bar.add_task("rows", total=None)
        try:
            summary = run_cohort(source, output, rulebook, workers=workers, dask_address=dask,
                                 chunk_size=chunk_size, restart=restart,
                                 progress=lambda done: bar.update(task, completed=done))
        except ValueError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt as interrupt:
            typer.echo(f"interrupted: finished chunks are kept in {output}.parts; rerun the same command to "
                       "resume", err=True)
            _exit_after_interrupt(128 + getattr(interrupt, "signal", signal.SIGINT))
    if output_format is Format.json:
        typer.echo(json.dumps({"output": summary.output, "records_read": summary.records_read,
                               "rows": summary.rows, "ok": summary.ok,
                               "invalid": summary.invalid, "error": summary.error,
                               "resumed_rows": summary.resumed_rows, "evaluated_rows": summary.evaluated_rows,
                               "seconds": round(summary.seconds, 3),
                               "invalid_fields": dict(summary.invalid_fields.most_common())}, indent=2))
    else:
        typer.echo(summary.text())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (default: loopback only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=1, max=65535)] = 8080,
    database_url: Annotated[str | None, typer.Option(
        help="SQLAlchemy URL for feedback (default: $POSTCART_DATABASE_URL or sqlite:///postcart-feedback.sqlite3).")] = None,
    max_body_bytes: Annotated[int | None, typer.Option(help="Largest request body accepted (bytes).", min=1)] = None,
    rules: RulesOption = None,
    trusted_issuers: Annotated[Path | None, typer.Option(
        help="YAML/JSON file {issuers: [{iss, jwks} | {iss, jku}]}: the CDS Clients allowed to call.")] = None,
    public_url: Annotated[str | None, typer.Option(
        help="The URL clients call, e.g. https://cds.example.org (the JWT's aud; base of assessment links).")] = None,
    insecure_no_auth: Annotated[bool, typer.Option(
        "--insecure-no-auth", help="Local development only: accept calls without a JWT.")] = False,
    ssl_certfile: Annotated[Path | None, typer.Option(help="TLS certificate (PEM) to serve HTTPS.")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    cors_origin: Annotated[list[str] | None, typer.Option(
        help="A browser origin allowed to call (repeat for several), e.g. https://sandbox.cds-hooks.org.")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes (one per core; they share the JWT replay cache).",
                                         min=1, max=64)] = 1,
) -> None:
    """Run the CDS Hooks 2.0 service (needs the optional 'service' extra of postcart)."""
    try:
        import uvicorn

        from postcart.cds_hooks.service import Settings, create_app
    except ImportError as error:
        typer.echo(f"error: the service needs the 'service' extra ({error.name} is missing): "
                   "pip install 'postcart[service]'", err=True)
        raise typer.Exit(2) from None
    from postcart.cds_hooks.auth import load_trusted_issuers

    if (ssl_certfile is None) != (ssl_keyfile is None):
        typer.echo("error: give both --ssl-certfile and --ssl-keyfile, or neither", err=True)
        raise typer.Exit(2)
    if not insecure_no_auth and (trusted_issuers is None or public_url is None):
        typer.echo("error: authentication is on: give --trusted-issuers FILE and --public-url URL "
                   "(or --insecure-no-auth for local development only)", err=True)
        raise typer.Exit(2)
    scheme = "https" if ssl_certfile else "http"
    try:
        issuers = tuple(load_trusted_issuers(trusted_issuers)) if trusted_issuers and not insecure_no_auth else ()
        settings = Settings.from_env(database_url=database_url, max_body_bytes=max_body_bytes,
                                     rules_dir=str(rules) if rules else None, trusted_issuers=issuers,
                                     public_url=public_url or f"{scheme}://{host}:{port}",
                                     insecure_no_auth=insecure_no_auth or None,
                                     cors_origins=tuple(cors_origin) if cors_origin else None)
    except ValueError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    if insecure_no_auth:
        typer.echo("WARNING: --insecure-no-auth: no caller is authenticated; any client gets cards and can post "
                   "feedback. For local development only, never with patient data.", err=True)
    if ssl_certfile is None and host not in ("127.0.0.1", "::1", "localhost"):
        typer.echo(f"warning: listening on {host}, beyond this machine, without TLS: give --ssl-certfile and "
                   "--ssl-keyfile, or put a TLS-terminating proxy in front", err=True)
    try:
        application = create_app(settings)
    except PostcartError as error:
        _fail(error)
    # postcart's own log lines (status and kind of each refusal, fault references): never request content
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    certfile = str(ssl_certfile) if ssl_certfile else None
    keyfile = str(ssl_keyfile) if ssl_keyfile else None
    if workers == 1:
        uvicorn.run(application, host=host, port=port, log_level="info", ssl_certfile=certfile, ssl_keyfile=keyfile)
        return
    import dataclasses
    import os
    import tempfile

    from cryptography.fernet import Fernet

    # the workers build their own app from these settings, sharing the link key and the JWT replay cache
    with tempfile.TemporaryDirectory(prefix="postcart-serve-") as shared:
        shared_settings = dataclasses.replace(settings, link_key=settings.link_key or Fernet.generate_key().decode(),
                                              replay_database=settings.replay_database or f"{shared}/seen-jti.sqlite3")
        os.environ["POSTCART_SERVICE_SETTINGS"] = shared_settings.to_env()
        uvicorn.run("postcart.cds_hooks.service:app_from_env", factory=True, workers=workers, host=host, port=port,
                    log_level="info", ssl_certfile=certfile, ssl_keyfile=keyfile)


@app.command("feedback-report")
def feedback_report(
    database_url: Annotated[str | None, typer.Option(
        help="SQLAlchemy URL of the feedback database (default: $POSTCART_DATABASE_URL or the service's default).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Override rate per rule from clinicians' feedback on the service's cards."""
    import os

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from postcart.cds_hooks.feedback import DEFAULT_DATABASE_URL, FeedbackStore

    url = database_url or os.environ.get("POSTCART_DATABASE_URL") or DEFAULT_DATABASE_URL
    try:
        parsed = make_url(url)
    except ArgumentError:
        typer.echo("error: --database-url: not a database URL; expected a SQLAlchemy URL such as "
                   "sqlite:///postcart-feedback.sqlite3", err=True)
        raise typer.Exit(2) from None
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        if not path or path == ":memory:" or not Path(path).is_file():
            typer.echo(f"error: no feedback database at {path or 'an in-memory database'}: the report reads the "
                       "database the service writes (give it with --database-url or $POSTCART_DATABASE_URL)",
                       err=True)
            raise typer.Exit(2)
    try:
        store = FeedbackStore(url)
    except Exception as error:
        typer.echo(f"error: cannot open the feedback database ({type(error).__name__})", err=True)
        raise typer.Exit(2) from None
    try:
        rates = store.override_rates()
        reasons = store.override_reasons()
    finally:
        store.close()
    if as_json:
        typer.echo(json.dumps({"rules": [rate.as_json() for rate in rates], "override_reasons": reasons}, indent=2))
        return
    typer.echo(f"{'rule':<48} {'shown':>6} {'accepted':>9} {'overridden':>11} {'override rate':>14}")
    for rate in rates:
        shown = "-" if rate.override_rate is None else f"{rate.override_rate:.0%}"
        typer.echo(f"{rate.rule:<48} {rate.cards_shown:>6} {rate.accepted:>9} {rate.overridden:>11} {shown:>14}")
    if reasons:
        typer.echo("override reasons: " + ", ".join(f"{code} {count}" for code, count in reasons.items()))


def main() -> None:
    """Console entry point: unexpected faults exit 1 with a one-line message, never a patient's data."""
    try:
        app()
    except SystemExit:
        raise
    except Exception as error:
        # the message of an unexpected error may quote a patient's data: print only its type and a reference
        reference = uuid.uuid4().hex[:12]
        typer.echo(f"internal error: {type(error).__name__} (reference {reference}); this is a bug in postcart: "
                   "please report it to the postcart maintainers with the command you ran (not the patient data)",
                   err=True)
        sys.exit(1)
