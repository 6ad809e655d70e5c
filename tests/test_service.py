"""The CDS Hooks service, over HTTP against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest

pytest.importorskip("fastapi")

import httpx
import jwt
import schemathesis
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from sqlalchemy import event
from typer.testing import CliRunner

from postcart import evaluate
from postcart.cds_hooks.auth import TrustedIssuer
from postcart.cds_hooks.cards import OVERRIDE_REASON_SYSTEM
from postcart.cds_hooks.feedback import FeedbackStore
from postcart.cds_hooks.service import SERVICE_ID, Settings, create_app
from postcart.cli import app as cli_app

from .fhir_strategies import mangled_bundles

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "fhir" / "lbcl-late-relapse-fit-donor.json"
PATIENT = "demo-lbcl-01"
SECRET = "Zyxwvut-Secret-Name"  # a patient detail that must never reach a log or an error body
VERDICT_WORDS = {"Recommended": "recommended", "Consider": "consider", "Not advised": "not_advised"}
ISSUER = "https://ehr.example/cds-client"
SIGNING_KEY = ec.generate_private_key(ec.SECP384R1())  # the test EHR's key pair (ES384)
SIGNING_JWK = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(SIGNING_KEY.public_key())), "kid": "ehr-1",
               "use": "sig", "alg": "ES384"}
SERVICE_PATH = f"/cds-services/{SERVICE_ID}"


def _token(audience: str, *, key: Any = SIGNING_KEY, algorithm: str = "ES384", issuer: str = ISSUER,
           lifetime: int = 300, issued: float | None = None, jti: str | None = None, kid: str = "ehr-1") -> str:
    """A CDS Client JWT as the EHR would sign it; every claim can be changed to make it wrong."""
    now = time.time() if issued is None else issued
    claims = {"iss": issuer, "aud": audience, "iat": int(now), "exp": int(now) + lifetime,
              "jti": jti or str(uuid.uuid4())}
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid, "typ": "JWT"})


def _issuers() -> tuple[TrustedIssuer, ...]:
    return (TrustedIssuer(ISSUER, {"keys": [SIGNING_JWK]}),)


class LiveServer:
    """A uvicorn server on a loopback socket, in a thread, for one test module.

    ``app`` is the application, or a function of the server's URL that makes it (its public URL for ``aud``).
    """

    def __init__(self, app: Any) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        app = app(self.url) if callable(app) and not hasattr(app, "router") else app
        # log_config=None: uvicorn leaves logging alone, so its records reach pytest's caplog
        config = uvicorn.Config(app, log_config=None, log_level="info", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.socket.close()


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('cds') / 'feedback.sqlite3'}"


def _settings(url: str, database: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {"database_url": database, "max_body_bytes": 256 * 1024, "public_url": url,
                              "trusted_issuers": _issuers(), "allow_http_fhir_server": True}  # the FHIR stub is http
    values.update(overrides)
    return Settings(**values)


class SignedClient(httpx.Client):
    """An httpx client that signs every request with a fresh JWT for the URL called, as a CDS Client must."""

    def __init__(self, base_url: str, **options: Any) -> None:
        super().__init__(base_url=base_url, timeout=30, **options)
        self.public_url = base_url

    def send(self, request: httpx.Request, **options: Any) -> httpx.Response:  # type: ignore[override]
        if "authorization" not in request.headers:
            request.headers["authorization"] = f"Bearer {_token(self.public_url + request.url.path)}"
        return super().send(request, **options)


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[LiveServer]:
    """The real service, authentication on (the test EHR trusted), with a temporary SQLite feedback database."""
    with LiveServer(lambda url: create_app(_settings(url, database))) as live:
        yield live


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with SignedClient(server.url) as http:
        yield http


@pytest.fixture(scope="module")
def anonymous(server: LiveServer) -> Iterator[httpx.Client]:
    """A client that sends no JWT."""
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


@pytest.fixture
def bundle() -> dict[str, Any]:
    """The example bundle equivalent to scenarios/lbcl.yaml lbcl-late-relapse-fit-donor, with a named patient."""
    data = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    data["entry"][0]["resource"]["name"] = [{"family": SECRET}]
    return data


def _call(bundle: dict[str, Any] | None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view", "hookInstance": str(uuid.uuid4()), "fhirServer": "http://127.0.0.1:1/fhir",
        "context": {"userId": "Practitioner/example", "patientId": PATIENT},
        "prefetch": {"patient_record": bundle} if bundle is not None else None,
    }
    body.update(overrides)
    return body


def _post(client: httpx.Client, body: Any, path: str = f"/cds-services/{SERVICE_ID}") -> httpx.Response:
    return client.post(path, json=body)


def _verdicts(cards: list[dict[str, Any]]) -> dict[str, str]:
    """Option -> verdict over all cards: an option's own card, or its heading in a grouped card's detail."""
    from postcart.vocabulary import OPTIONS, option_name

    names = {option_name(option): option for option in OPTIONS}
    out = {}
    for card in cards:
        for line in card["detail"].splitlines():
            if line.startswith("**") and line.endswith("**") and ": " in line:
                word, _, name = line.strip("*").partition(": ")
                if word in VERDICT_WORDS and name in names:
                    out[names[name]] = VERDICT_WORDS[word]
    return out


def _assert_no_patient_data(caplog: pytest.LogCaptureFixture) -> None:
    text = "\n".join(f"{record.getMessage()} {record.exc_text or ''}" for record in caplog.records)
    assert SECRET not in text and "Secret comment" not in text and PATIENT not in text


# ---- discovery ----------------------------------------------------------------------------------------

def test_discovery_lists_the_patient_view_service_with_prefetch(client: httpx.Client) -> None:
    """GET /cds-services lists one patient-view service whose prefetch asks for the patient's FHIR data."""
    response = client.get("/cds-services")
    assert response.status_code == 200
    (service,) = response.json()["services"]
    assert service["id"] == SERVICE_ID and service["hook"] == "patient-view"
    prefetch = service["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    assert "http://loinc.org|89247-1" in prefetch["observations"]
    assert prefetch["conditions"] == "Condition?patient={{context.patientId}}"
    assert {"medicationAdministrations", "procedures"} <= set(prefetch)
    assert "Decision support only" in service["description"]


# ---- patient-view -------------------------------------------------------------------------------------

def test_patient_view_gives_the_verdicts_of_postcart_evaluate(client: httpx.Client, bundle: dict[str, Any]) -> None:
    """The example bundle's cards carry the same verdicts as `postcart evaluate` on the equivalent YAML."""
    result = CliRunner().invoke(cli_app, ["evaluate", str(ROOT / "scenarios" / "lbcl.yaml"), "--scenario",
                                          "lbcl-late-relapse-fit-donor", "--format", "json"])
    assert result.exit_code == 0, result.output
    expected = {item["option"]: item["verdict"] for item in json.loads(result.stdout)["options"]}
    response = _post(client, _call(bundle))
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert _verdicts(cards) == expected
    assert expected["bispecific_antibody"] == "recommended"


def test_example_request_with_searchset_prefetch_gives_the_same_verdicts(client: httpx.Client) -> None:
    """The shipped CDS Hooks request (searchsets, ICD-10-CM, a Procedure, ECOG as a quantity) gives the same verdicts."""
    request = json.loads((ROOT / "examples" / "fhir" / "patient-view-request.json").read_text(encoding="utf-8"))
    expected = {o.option: o.verdict for o in evaluate(_yaml_situation()).options}
    response = _post(client, request)
    assert response.status_code == 200, response.text
    assert _verdicts(response.json()["cards"]) == expected


def test_cards_follow_the_cds_hooks_card_format(client: httpx.Client, bundle: dict[str, Any]) -> None:
    """One card per recommended option, one for those to consider; each with a short summary, Markdown detail
    (rationale, rules, references, disclaimer once), a source, override reasons and absolute links."""
    cards = _post(client, _call(bundle)).json()["cards"]
    assessment = evaluate(json.loads(json.dumps(_yaml_situation())))
    recommended = [o for o in assessment.options if o.verdict == "recommended"]
    grouped = {verdict for o in assessment.options if o.verdict != "recommended" for verdict in [o.verdict]}
    assert len(cards) == len(recommended) + len(grouped) < len(assessment.options)
    for card in cards:
        uuid.UUID(card["uuid"])
        assert len(card["summary"]) < 140 and "decision support" not in card["summary"].lower()
        assert card["indicator"] in ("info", "warning", "critical")
        assert card["source"]["label"]
        assert card["detail"].count(assessment.disclaimer) == 1
        assert {reason["code"] for reason in card["overrideReasons"]} >= {"patient-preference", "clinical-judgement"}
        assert all(reason["system"] == OVERRIDE_REASON_SYSTEM and reason["display"] for reason in card["overrideReasons"])
        assert card["links"][0]["type"] == "absolute" and card["links"][0]["url"].startswith("http://127.0.0.1:")
    by_option = {card["source"]["topic"]["code"]: card for card in cards if "topic" in card["source"]}
    assert set(by_option) == {option.option for option in recommended}
    assert [card["source"].get("topic", {}).get("code") for card in cards][:len(recommended)] == [
        option.option for option in recommended]  # most important first
    for option in recommended:
        card = by_option[option.option]
        assert card["indicator"] == "info" and card["summary"].startswith("Recommended: ")
        assert option.rationale in card["detail"]
        assert all(f"`{rule}`" in card["detail"] for rule in option.rules)
        assert all(citation.label in card["detail"] for citation in option.citations)
        linked = [citation for citation in option.citations if citation.url]
        assert card["links"][1:] == [{"label": c.label, "url": c.url, "type": "absolute"} for c in linked]
        assert card["source"]["url"] == linked[0].url
        assert card["suggestions"][0]["isRecommended"] is True and card["selectionBehavior"] == "at-most-one"
    # a DOI reference renders as such, with its link (issue 13: transplant is no longer recommended before a
    # complete response to salvage, so the bispecific card shows it)
    assert "doi:10.1182/blood.2024027044" in by_option["bispecific_antibody"]["detail"]


def test_the_link_opens_the_full_assessment(client: httpx.Client, bundle: dict[str, Any]) -> None:
    """Each card's first link is an absolute URL to the whole assessment behind the call, in Markdown."""
    cards = _post(client, _call(bundle)).json()["cards"]
    page = client.get(cards[0]["links"][0]["url"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/markdown")
    assert "Bispecific antibody" in page.text and "Second CAR-T infusion" in page.text
    assert client.get("/assessments/" + "0" * 32).status_code == 404


def _yaml_situation() -> dict[str, Any]:
    import yaml

    data = yaml.safe_load((ROOT / "scenarios" / "lbcl.yaml").read_text(encoding="utf-8"))
    return next(e["situation"] for e in data["scenarios"] if e["id"] == "lbcl-late-relapse-fit-donor")


def test_missing_information_and_unread_record_items_are_folded_into_the_cards(client: httpx.Client,
                                                                           bundle: dict[str, Any]) -> None:
    """Without CD20: the card of an option it concerns asks for it, the first card says it was not documented,
    and no card is only about postcart or the record."""
    bundle["entry"] = [entry for entry in bundle["entry"] if entry["resource"]["id"] != "cd20"]
    cards = _post(client, _call(bundle)).json()["cards"]
    assert not any(card["summary"].startswith(("Missing information", "Record not fully read")) for card in cards)
    asking = [card for card in cards if "**Information that would change this advice:**" in card["detail"]
              and "`failure.cd20`" in card["detail"]]
    assert asking
    assert "failure.cd20: not documented in the record; left unknown" in cards[0]["detail"]


# ---- feedback -----------------------------------------------------------------------------------------

def test_feedback_is_persisted_and_reported(client: httpx.Client, bundle: dict[str, Any], database: str,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """Accepted and overridden outcomes are stored in the database and give each rule its override rate."""
    caplog.set_level(logging.DEBUG)
    cards = _post(client, _call(bundle)).json()["cards"]
    by_option = {card["source"]["topic"]["code"]: card for card in cards if "topic" in card["source"]}
    # the overridden card: follow-up (transplant is not a card of its own since issue 13, see above)
    bispecific, allo = by_option["bispecific_antibody"], by_option["long_term_follow_up"]
    response = client.post(f"/cds-services/{SERVICE_ID}/feedback", json={"feedback": [
        {"card": bispecific["uuid"], "outcome": "accepted", "outcomeTimestamp": "2025-12-15T10:00:00Z",
         "acceptedSuggestions": [{"id": bispecific["suggestions"][0]["uuid"]}]},
        {"card": allo["uuid"], "outcome": "overridden", "outcomeTimestamp": "2025-12-15T10:01:00+01:00",
         "overrideReason": {"reason": {"system": OVERRIDE_REASON_SYSTEM, "code": "patient-preference"},
                            "userComment": "Secret comment"}},
    ]})
    assert response.status_code == 200, response.text
    assert response.json() == {"stored": 2}

    assessment = evaluate(_yaml_situation())
    allo_rules = assessment.option("long_term_follow_up").rules
    bispecific_rules = assessment.option("bispecific_antibody").rules
    report = client.get("/reports/override-rates").json()
    rates = {row["rule"]: row for row in report["rules"]}
    assert all(rates[rule]["overridden"] >= 1 and rates[rule]["override_rate"] > 0 for rule in allo_rules)
    assert all(rates[rule]["accepted"] >= 1 for rule in bispecific_rules)
    assert report["override_reasons"]["patient-preference"] >= 1

    store = FeedbackStore(database)  # a fresh connection: the outcome is in the database, not in memory
    try:
        stored = {rate.rule: rate for rate in store.override_rates()}
    finally:
        store.close()
    assert all(stored[rule].overridden == rates[rule]["overridden"] for rule in allo_rules)
    result = CliRunner().invoke(cli_app, ["feedback-report", "--database-url", database])
    assert result.exit_code == 0 and all(rule in result.stdout for rule in allo_rules)
    assert "patient-preference" in result.stdout
    _assert_no_patient_data(caplog)


def test_override_rate_is_overridden_over_answered(tmp_path: Path) -> None:
    """A rule overridden on 1 of 4 answered cards has an override rate of 0.25; unanswered cards do not count."""
    from postcart.cds_hooks.feedback import IssuedCard

    store = FeedbackStore(f"sqlite:///{tmp_path / 'rates.sqlite3'}")
    try:
        cards = [IssuedCard(f"c{i}", SERVICE_ID, "option", "radiotherapy", "consider", ("r.one",), "1") for i in range(5)]
        store.record_cards(cards)
        store.record_feedback([{"card": "c0", "outcome": "overridden"}] +
                              [{"card": f"c{i}", "outcome": "accepted"} for i in (1, 2, 3)])
        (rate,) = store.override_rates()
    finally:
        store.close()
    assert (rate.cards_shown, rate.accepted, rate.overridden, rate.override_rate) == (5, 3, 1, 0.25)


def test_feedback_on_an_unknown_card_is_refused(client: httpx.Client) -> None:
    """Feedback on a card the service never issued is a 404 naming the card."""
    response = client.post(f"/cds-services/{SERVICE_ID}/feedback", json={"feedback": [
        {"card": "no-such-card", "outcome": "accepted", "outcomeTimestamp": "2025-12-15T10:00:00Z"}]})
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_card" and response.json()["problems"][0]["got"] == "no-such-card"


def test_feedback_with_a_reason_not_offered_is_refused(client: httpx.Client, bundle: dict[str, Any]) -> None:
    """An override reason that is not one of the card's is a 400 listing the reasons offered."""
    card = _post(client, _call(bundle)).json()["cards"][0]
    response = client.post(f"/cds-services/{SERVICE_ID}/feedback", json={"feedback": [
        {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2025-12-15T10:00:00Z",
         "overrideReason": {"reason": {"system": OVERRIDE_REASON_SYSTEM, "code": "too-busy"}}}]})
    assert response.status_code == 400
    problem = response.json()["problems"][0]
    assert problem["location"] == "feedback[0].overrideReason.reason" and "patient-preference" in problem["expected"]


# ---- bad input ----------------------------------------------------------------------------------------

def test_malformed_json_is_a_400(client: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    """A body that is not JSON, or not UTF-8, gets 400 malformed_json."""
    caplog.set_level(logging.DEBUG)
    response = client.post(f"/cds-services/{SERVICE_ID}", content=b'{"hook": "patient-view", ' + SECRET.encode(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"] == "malformed_json"
    latin1 = client.post(f"/cds-services/{SERVICE_ID}", content='{"hook": "é"}'.encode("latin-1"),
                         headers={"content-type": "application/json"})
    assert latin1.status_code == 400 and latin1.json()["error"] == "malformed_json"
    _assert_no_patient_data(caplog)


def test_an_ambiguous_body_is_refused_not_guessed(client: httpx.Client, bundle: dict[str, Any],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The hook body goes through the strict reader of every patient document: a key given twice (a
    plain parser keeps the last), NaN, or a 19-digit integer is a 400 naming what and where."""
    caplog.set_level(logging.DEBUG)
    text = json.dumps(_call(bundle))
    twice = text.replace('"hook": "patient-view"', '"hook": "patient-view", "hook": "patient-view"', 1)
    response = client.post(f"/cds-services/{SERVICE_ID}", content=twice.encode(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"] == "malformed_json"
    assert "key 'hook' given twice in one object" in response.json()["message"]
    for odd, words in (('"x": NaN', "'NaN' is not a JSON number"), ('"x": 1' + "0" * 19, "integer too long")):
        body = text[:-1] + ", " + odd + "}"
        response = client.post(f"/cds-services/{SERVICE_ID}", content=body.encode(),
                               headers={"content-type": "application/json"})
        assert response.status_code == 400 and words in response.json()["message"], response.text
    _assert_no_patient_data(caplog)


def test_wrong_hook_is_a_400(client: httpx.Client, bundle: dict[str, Any]) -> None:
    """A hook other than patient-view gets 400 wrong_hook naming both hooks."""
    response = _post(client, _call(bundle, hook="order-select"))
    assert response.status_code == 400
    assert response.json()["error"] == "wrong_hook" and "order-select" in response.json()["message"]


def test_request_not_in_cds_hooks_shape_is_a_400_naming_the_field(client: httpx.Client, bundle: dict[str, Any]) -> None:
    """A call without context.patientId or with a hookInstance that is not a UUID is refused, each field named."""
    body = _call(bundle, hookInstance="not-a-uuid", context={"userId": "Practitioner/1"})
    response = _post(client, body)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"
    assert {"hookInstance", "context.patientId"} <= {p["location"] for p in response.json()["problems"]}


def test_missing_required_data_is_a_422_naming_the_field(client: httpx.Client, bundle: dict[str, Any],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    """A bundle without ECOG gets 422 naming fitness.ecog and the LOINC code expected; nothing is logged."""
    caplog.set_level(logging.DEBUG)
    bundle["entry"] = [entry for entry in bundle["entry"] if entry["resource"]["id"] != "ecog"]
    response = _post(client, _call(bundle))
    assert response.status_code == 422 and response.json()["error"] == "unusable_fhir_data"
    (problem,) = response.json()["problems"]
    assert problem["location"] == "fitness.ecog" and "89247-1" in problem["expected"]
    # the body says what the record held instead of 'nothing'
    assert problem["got"].startswith("11 Observations of this patient, none with the code expected")
    assert response.json()["present"]["Observation"] == 11 and response.json()["present"]["Condition"] == 1
    _assert_no_patient_data(caplog)


def test_invalid_fhir_is_a_422_naming_the_entry(client: httpx.Client, bundle: dict[str, Any]) -> None:
    """A resource that is not valid FHIR R4 gets 422 naming its place in the prefetch."""
    bundle["entry"][1]["resource"]["onsetDateTime"] = "yesterday"
    response = _post(client, _call(bundle))
    assert response.status_code == 422
    assert response.json()["problems"][0]["location"] == "prefetch.patient_record.entry[1]"


def test_no_prefetch_is_a_412(client: httpx.Client) -> None:
    """A call without prefetch gets 412: the service does not query the FHIR server."""
    response = _post(client, _call(None))
    assert response.status_code == 412 and response.json()["error"] == "prefetch_required"


def test_unknown_service_is_a_404(client: httpx.Client, bundle: dict[str, Any]) -> None:
    """A call to another service id gets 404 naming the service offered."""
    response = _post(client, _call(bundle), path="/cds-services/other")
    assert response.status_code == 404 and SERVICE_ID in response.json()["message"]


def test_oversized_bodies_are_a_413(client: httpx.Client, bundle: dict[str, Any]) -> None:
    """A body over the limit gets 413, whether its length is declared or it is streamed in chunks."""
    big = _call(bundle)
    big["prefetch"]["padding"] = {"resourceType": "Basic", "id": "x" * 300_000}
    payload = json.dumps(big).encode()
    declared = client.post(f"/cds-services/{SERVICE_ID}", content=payload, headers={"content-type": "application/json"})
    assert declared.status_code == 413 and declared.json()["error"] == "body_too_large"

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(payload), 16_384):
            yield payload[start:start + 16_384]

    streamed = client.post(f"/cds-services/{SERVICE_ID}", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert client.get("/cds-services").status_code == 200


def test_an_unexpected_fault_is_a_bare_500_and_the_service_keeps_serving(
        tmp_path: Path, bundle: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    """A fault inside the evaluation answers 500 with a reference only; the next call is answered normally."""
    caplog.set_level(logging.DEBUG)
    calls = {"n": 0}

    def flaky(situation: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError(f"boom while reading {SECRET}")
        return evaluate(situation)

    database = f"sqlite:///{tmp_path / 'fault.sqlite3'}"
    with LiveServer(lambda url: create_app(_settings(url, database), evaluator=flaky)) as live, \
            SignedClient(live.url) as http:
        failed = _post(http, _call(bundle))
        assert failed.status_code == 500
        assert failed.json()["error"] == "internal_error"
        assert SECRET not in failed.text and "RuntimeError" not in failed.text and "Traceback" not in failed.text
        recovered = _post(http, _call(bundle))
        assert recovered.status_code == 200 and _verdicts(recovered.json()["cards"])["bispecific_antibody"] == "recommended"
    _assert_no_patient_data(caplog)
    assert any("internal error" in record.getMessage() for record in caplog.records)


# ---- the command line ---------------------------------------------------------------------------------

def _serve(tmp_path: Path, *options: str, scheme: str = "http", verify: Any = True,
           headers: dict[str, str] | None = None) -> tuple[httpx.Response, str]:
    """Start `postcart serve` on a free loopback port, GET discovery, stop it; the answer and its stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    # The free port is only known free when probed: if another process takes it before the server binds,
    # the server exits with a bind error, and the test tries another port (a few times) within 60 s overall.
    deadline = time.monotonic() + 60
    for _attempt in range(3):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        process = subprocess.Popen(
            [sys.executable, "-m", "postcart", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--database-url", f"sqlite:///{tmp_path / 'serve.sqlite3'}", *options],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        response = None
        try:
            while response is None and process.poll() is None and time.monotonic() < deadline:
                try:
                    response = httpx.get(f"{scheme}://127.0.0.1:{port}/cds-services", timeout=2, verify=verify)
                except httpx.TransportError:
                    time.sleep(0.2)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=5)
        assert process.stderr is not None
        errors = process.stderr.read().decode(errors="replace")
        if response is not None:
            return response, errors
        if "address already in use" not in errors.lower() or time.monotonic() > deadline:
            raise AssertionError(f"postcart serve did not start: {errors[-500:]}")
    raise AssertionError("postcart serve could not bind a free port in 3 attempts")


def test_postcart_serve_starts_the_service(tmp_path: Path) -> None:
    """`postcart serve --insecure-no-auth` answers discovery and warns, on start, that nobody is authenticated."""
    response, errors = _serve(tmp_path, "--insecure-no-auth")
    assert response.status_code == 200 and response.json()["services"][0]["id"] == SERVICE_ID
    assert "WARNING: --insecure-no-auth" in errors and "INSECURE" in errors


def test_postcart_serve_needs_trusted_issuers_unless_told_otherwise(tmp_path: Path) -> None:
    """Authentication is on by default: without --trusted-issuers and --public-url, serve refuses to start."""
    result = CliRunner().invoke(cli_app, ["serve", "--database-url", f"sqlite:///{tmp_path / 'x.sqlite3'}"])
    assert result.exit_code == 2 and "--trusted-issuers" in result.output
    issuers = tmp_path / "issuers.yaml"
    issuers.write_text("issuers:\n  - iss: https://ehr.example\n", encoding="utf-8")
    result = CliRunner().invoke(cli_app, ["serve", "--trusted-issuers", str(issuers), "--public-url", "https://x"])
    assert result.exit_code == 2 and "give exactly one of jwks" in result.output


def test_postcart_serve_speaks_tls_with_trusted_issuers(tmp_path: Path) -> None:
    """`postcart serve --ssl-certfile/--ssl-keyfile --trusted-issuers FILE --public-url URL` answers over HTTPS."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    (tmp_path / "issuers.json").write_text(json.dumps({"issuers": [{"iss": ISSUER, "jwks": {"keys": [SIGNING_JWK]}}]}),
                                           encoding="utf-8")
    response, errors = _serve(tmp_path, "--trusted-issuers", str(tmp_path / "issuers.json"), "--public-url",
                              "https://cds.example.org", "--ssl-certfile", str(tmp_path / "cert.pem"),
                              "--ssl-keyfile", str(tmp_path / "key.pem"), scheme="https", verify=False)
    assert response.status_code == 200 and "INSECURE" not in errors


def test_worker_processes_share_the_replay_cache(tmp_path: Path) -> None:
    """Two authenticators on one SQLite replay file (two workers): a JWT used on one is refused on the other."""
    from postcart.cds_hooks.auth import AuthenticationFailed, Authenticator, SqliteReplayCache

    path = str(tmp_path / "seen.sqlite3")
    first, second = (Authenticator(list(_issuers()), "https://cds.example.org", replay=SqliteReplayCache(path))
                     for _ in range(2))
    token = f"Bearer {_token('https://cds.example.org' + SERVICE_PATH)}"
    assert first.verify(token, SERVICE_PATH) == ISSUER
    with pytest.raises(AuthenticationFailed, match="replayed"):
        second.verify(token, SERVICE_PATH)


# ---- fuzzing ------------------------------------------------------------------------------------------

def test_fuzzed_requests_never_get_a_server_error(server: LiveServer) -> None:
    """Requests generated from the OpenAPI schema, valid and invalid, never get a 5xx (bounded per operation)."""
    # Hypothesis drives schemathesis' strategies directly: its pytest plugin's fixture loader does not
    # run under pytest 9 ('Function' object has no attribute '_nodeid').
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "GET /cds-services", "POST /cds-services/{service_id}", "POST /cds-services/{service_id}/feedback",
        "GET /reports/override-rates"}
    seen: list[str] = []
    for operation in operations:
        # GET operations take no input: there is nothing to make invalid
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if operation.method.upper() == "POST" else [])
        for mode in modes:

            @settings(max_examples=25, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def no_server_error(case: Any) -> None:
                # signed as the trusted EHR would, so that the fuzzing reaches past authentication
                token = _token(server.url + case.formatted_path)
                response = case.call(base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token}"})
                seen.append(f"{case.method} {case.path}")
                assert response.status_code < 500, (case.method, case.formatted_path, response.status_code,
                                                     response.text[:300])

            no_server_error()
    assert len(seen) >= 40


@settings(max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(bundle=mangled_bundles())
def test_mangled_prefetch_gets_cards_or_a_4xx(client: httpx.Client, bundle: dict[str, Any]) -> None:
    """A patient-view call with an arbitrarily damaged bundle gets cards (none if the CAR-T or its failure was
    dropped) or a located 422, never a 5xx."""
    response = _post(client, _call(bundle))
    assert response.status_code in (200, 422), response.text[:300]
    if response.status_code == 422:
        assert response.json()["problems"]
    else:
        assert isinstance(response.json()["cards"], list)


# ---- authentication (CDS Hooks 2.0.1, "Trusting CDS Clients") -----------------------------------------

def _hmac_token(audience: str) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())},
                      "a-shared-secret-long-enough-for-sha-384-hmac-keys-0123456789", algorithm="HS384", headers={"kid": "ehr-1"})


def _none_token(audience: str) -> str:
    now = int(time.time())
    return jwt.encode({"iss": ISSUER, "aud": audience, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())},
                      None, algorithm="none", headers={"kid": "ehr-1"})


@pytest.mark.parametrize(("case", "make", "reason"), [
    ("no token", lambda aud: None, "no Authorization header"),
    ("alg none", _none_token, "'none' is not accepted"),
    ("HMAC", _hmac_token, "'HS384' is not accepted"),
    ("wrong aud", lambda aud: _token("https://someone-else.example/cds-services/x"), "audience"),
    ("unknown iss", lambda aud: _token(aud, issuer="https://unknown.example"), "not on this service's list"),
    ("expired", lambda aud: _token(aud, issued=time.time() - 900), "expired"),
    ("other key", lambda aud: _token(aud, key=ec.generate_private_key(ec.SECP384R1())), "signature"),
    ("garbage", lambda aud: "not.a.jwt", "not a JWT"),
])
def test_a_call_without_a_valid_client_jwt_is_a_401(anonymous: httpx.Client, server: LiveServer,
                                                     bundle: dict[str, Any], case: str,
                                                     make: Callable[[str], str | None], reason: str) -> None:
    """No token, alg none, HMAC, wrong aud, unknown iss, expired, another key, garbage: 401 saying which check failed."""
    token = make(server.url + SERVICE_PATH)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = anonymous.post(SERVICE_PATH, json=_call(bundle), headers=headers)
    assert response.status_code == 401, case
    assert response.json()["error"] == "unauthorized" and reason in response.json()["message"], case
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_replayed_jti_is_a_401(anonymous: httpx.Client, server: LiveServer, bundle: dict[str, Any]) -> None:
    """The same signed JWT accepted once is refused the second time (jti replay)."""
    headers = {"Authorization": f"Bearer {_token(server.url + SERVICE_PATH)}"}
    assert anonymous.post(SERVICE_PATH, json=_call(bundle), headers=headers).status_code == 200
    again = anonymous.post(SERVICE_PATH, json=_call(bundle), headers=headers)
    assert again.status_code == 401 and "replayed" in again.json()["message"]


def test_a_valid_es384_or_rs384_jwt_gets_cards(tmp_path: Path, bundle: dict[str, Any]) -> None:
    """A JWT signed ES384 by a trusted issuer, aud the service's public URL, gets cards; so does RS384."""
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_jwk = {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "rsa-1", "use": "sig"}
    issuers = (*_issuers(), TrustedIssuer("https://other-ehr.example", {"keys": [rsa_jwk]}))
    database = f"sqlite:///{tmp_path / 'auth.sqlite3'}"
    with LiveServer(lambda url: create_app(_settings(url, database, trusted_issuers=issuers))) as live, \
            httpx.Client(base_url=live.url, timeout=30) as http:
        for token in (_token(live.url), _token(live.url + SERVICE_PATH),
                      _token(live.url, key=rsa_key, algorithm="RS384", issuer="https://other-ehr.example", kid="rsa-1")):
            response = http.post(SERVICE_PATH, json=_call(bundle), headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200 and response.json()["cards"]


def test_analytics_and_feedback_need_a_jwt(anonymous: httpx.Client) -> None:
    """The override-rate report and the feedback endpoint answer 401 without a token; discovery stays open."""
    assert anonymous.get("/reports/override-rates").status_code == 401
    response = anonymous.post(f"{SERVICE_PATH}/feedback", json={"feedback": [
        {"card": "x", "outcome": "overridden", "outcomeTimestamp": "2025-12-15T10:00:00Z"}]})
    assert response.status_code == 401
    assert anonymous.get("/cds-services").status_code == 200


def test_feedback_is_kept_once_per_card_and_outcome_and_only_from_the_client_that_got_the_card(
        client: httpx.Client, server: LiveServer, bundle: dict[str, Any], tmp_path: Path) -> None:
    """Posting the same override 40 times counts once; another trusted client cannot give feedback on the card."""
    card = _post(client, _call(bundle)).json()["cards"][0]
    item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2025-12-15T10:00:00Z",
            "overrideReason": {"reason": {"system": OVERRIDE_REASON_SYSTEM, "code": "clinical-judgement"}}}
    stored = [client.post(f"{SERVICE_PATH}/feedback", json={"feedback": [item]}).json()["stored"] for _ in range(40)]
    assert stored == [1] + [0] * 39
    second_key = ec.generate_private_key(ec.SECP384R1())
    second_jwk = {**json.loads(jwt.algorithms.ECAlgorithm.to_jwk(second_key.public_key())), "kid": "b-1"}
    issuers = (*_issuers(), TrustedIssuer("https://ehr-b.example", {"keys": [second_jwk]}))
    database = f"sqlite:///{tmp_path / 'two-clients.sqlite3'}"
    with LiveServer(lambda url: create_app(_settings(url, database, trusted_issuers=issuers))) as live, \
            SignedClient(live.url) as mine, httpx.Client(base_url=live.url, timeout=30) as other:
        issued = mine.post(SERVICE_PATH, json=_call(bundle)).json()["cards"][0]
        feedback = {"feedback": [{**item, "card": issued["uuid"]}]}
        token = _token(live.url + SERVICE_PATH + "/feedback", key=second_key, issuer="https://ehr-b.example", kid="b-1")
        response = other.post(f"{SERVICE_PATH}/feedback", json=feedback, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 404 and response.json()["error"] == "unknown_card"
        assert mine.post(f"{SERVICE_PATH}/feedback", json=feedback).json() == {"stored": 1}


def test_an_override_reason_the_ehr_added_is_accepted(client: httpx.Client, bundle: dict[str, Any]) -> None:
    """CDS Hooks lets the client add its own override reasons: one in the EHR's code system is stored, not refused."""
    card = _post(client, _call(bundle)).json()["cards"][0]
    response = client.post(f"{SERVICE_PATH}/feedback", json={"feedback": [
        {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2025-12-15T10:00:00Z",
         "overrideReason": {"reason": {"system": "https://ehr.example/override", "code": "discussed-at-tumour-board",
                                       "display": "Discussed at tumour board"}}}]})
    assert response.status_code == 200 and response.json() == {"stored": 1}
    assert client.get("/reports/override-rates").json()["override_reasons"]["ehr:discussed-at-tumour-board"] >= 1


# ---- the feedback store is not in the hook's path ------------------------------------------------------

def _full_disk(store: FeedbackStore) -> None:
    """Make every write to the SQLite store fail as on a full disk (SQLITE_FULL: no page can be added)."""

    def no_room(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA page_count")
        (pages,) = cursor.fetchone()
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    event.listen(store.engine, "connect", no_room)
    store.engine.dispose()


@pytest.mark.parametrize("kind", ["full disk", "unwritable path", "in memory"])
def test_hook_calls_answer_200_whatever_happens_to_the_feedback_store(
        tmp_path: Path, bundle: dict[str, Any], kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """A full disk, an unwritable database path or sqlite:///:memory: under the feedback store: hooks answer 200."""
    caplog.set_level(logging.INFO)
    database = {"full disk": f"sqlite:///{tmp_path / 'full.sqlite3'}",
                "unwritable path": "sqlite:////proc/postcart-cannot-write-here/feedback.sqlite3",
                "in memory": "sqlite:///:memory:"}[kind]

    def make(url: str) -> Any:
        app = create_app(_settings(url, database))
        if kind == "full disk":
            _full_disk(app.state.store)
        return app

    with LiveServer(make) as live, SignedClient(live.url) as http:
        # enough calls that the full disk is met whatever the rulebook's cards weigh (a few fit in the
        # pages the database already has)
        for _ in range(40):
            response = _post(http, _call(bundle))
            assert response.status_code == 200 and response.json()["cards"], kind
        report = http.get("/reports/override-rates")
        assert report.status_code == (503 if kind == "unwritable path" else 200)
    if kind != "in memory":
        assert any("not recorded" in record.getMessage() or "unavailable" in record.getMessage()
                   for record in caplog.records)
    _assert_no_patient_data(caplog)


# ---- status codes: no CAR-T failure, missing prefetch, the FHIR server ---------------------------------

def _example(name: str) -> dict[str, Any]:
    return json.loads((ROOT / "examples" / "fhir" / name).read_text(encoding="utf-8"))


def test_a_patient_without_car_t_gets_no_cards(client: httpx.Client) -> None:
    """An ordinary chart open (a patient with DLBCL and no CAR-T on record) is answered 200 {"cards": []}."""
    response = _post(client, _example("no-car-t-request.json"))
    assert response.status_code == 200 and response.json() == {"cards": []}


def test_an_mcode_record_with_disease_status_and_a_coded_product_gets_cards(client: httpx.Client) -> None:
    """An outside-shaped mCODE record (disease status 97509-4, HCPCS Q2041, ICD-10-PCS XW033H7, inactive FL,
    urn:uuid subjects) is read: relapse after a partial response to axi-cel; the derivation is stated."""
    response = _post(client, _example("mcode-lbcl-disease-status-request.json"))
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert cards and _verdicts(cards)
    detail = cards[0]["detail"]
    assert "car_t.best_response: PR, read from mCODE cancer disease status" in detail
    assert "failure.kind: relapse" in detail
    assert "FL with an inactive" in detail and "AllergyIntolerance" in detail


def test_another_patients_observation_is_ignored_and_listed(client: httpx.Client) -> None:
    """ECOG 4 given for a subject by identifier, without subject, or for another patient changes nothing and is listed."""
    response = _post(client, _example("other-patients-observation-request.json"))
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    plain = _post(client, _call(json.loads(EXAMPLE.read_text(encoding="utf-8")))).json()["cards"]
    assert _verdicts(cards) == _verdicts(plain)
    detail = cards[0]["detail"]
    assert "Observation/ecog-other-patient: a subject given by identifier only" in detail
    assert "Observation/ecog-no-subject: no subject" in detail
    assert "Observation/ecog-patient-b: about another patient" in detail


def test_prefetch_without_the_needed_keys_and_no_fhir_access_is_a_412(client: httpx.Client) -> None:
    """The specification's example request (only a Patient under its own key) without fhirAuthorization: 412
    naming the missing keys."""
    request = _example("cds-hooks-2.0.1-example-request.json")
    del request["fhirAuthorization"]
    response = _post(client, request)
    assert response.status_code == 412 and response.json()["error"] == "prefetch_required"
    assert {p["location"] for p in response.json()["problems"]} >= {"prefetch.conditions", "prefetch.observations"}


class FhirStub:
    """A minimal FHIR REST server on 127.0.0.1: read Patient/<id>, search by type (patient=), paging by 'next'.

    Records the Authorization header of each request; answers 401 to a wrong token.
    """

    def __init__(self, resources: list[dict[str, Any]], token: str = "some-opaque-fhir-access-token") -> None:
        stub = self
        self.resources, self.token, self.seen = resources, token, []

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                stub.seen.append((self.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Bearer {stub.token}":
                    self._send(401, {"resourceType": "OperationOutcome"})
                    return
                path, _, query = self.path.partition("?")
                kind, _, ident = path.strip("/").removeprefix("fhir/").partition("/")
                params = dict(part.partition("=")[::2] for part in query.split("&") if part)
                if ident:
                    found = [r for r in stub.resources if r["resourceType"] == kind and r["id"] == ident]
                    self._send(200 if found else 404, found[0] if found else {"resourceType": "OperationOutcome"})
                    return
                matches = [r for r in stub.resources if r["resourceType"] == kind
                           and r.get("subject", {}).get("reference") == f"Patient/{params.get('patient')}"]
                page = int(params.get("_page", "0"))
                bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(matches),
                                          "entry": [{"fullUrl": f"{stub.url}/{r['resourceType']}/{r['id']}",
                                                     "resource": r} for r in matches[page * 3:page * 3 + 3]]}
                if len(matches) > page * 3 + 3:
                    bundle["link"] = [{"relation": "next", "url": f"{stub.origin}{path}?{query}&_page={page + 1}"}]
                self._send(200, bundle)

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.origin}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_missing_prefetch_is_fetched_from_the_fhir_server(client: httpx.Client) -> None:
    """With fhirServer and fhirAuthorization and no prefetch, the data is read from the FHIR server (searches
    paged) with the bearer token, and gives the same verdicts as the prefetched record."""
    record = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    resources = [entry["resource"] for entry in record["entry"]]
    request = _example("cds-hooks-2.0.1-example-request.json")
    with FhirStub(resources) as fhir:
        request.update(fhirServer=fhir.url, context={"userId": "Practitioner/example", "patientId": PATIENT})
        del request["prefetch"]
        response = _post(client, request)
        assert response.status_code == 200, response.text
        assert _verdicts(response.json()["cards"]) == _verdicts(_post(client, _call(record)).json()["cards"])
        assert any("_page=1" in path for path, _ in fhir.seen)  # the observations came in more than one page
        assert {auth for _, auth in fhir.seen} == {"Bearer some-opaque-fhir-access-token"}


def test_the_specifications_example_request_is_answered(client: httpx.Client) -> None:
    """The CDS Hooks 2.0.1 example call (patient 1288992, only the Patient prefetched, FHIR access given) is
    answered from the FHIR server: that patient has no CAR-T on record, so no cards."""
    request = _example("cds-hooks-2.0.1-example-request.json")
    with FhirStub([request["prefetch"]["patientToGreet"]]) as fhir:
        request["fhirServer"] = fhir.url
        response = _post(client, request)
    assert response.status_code == 200 and response.json() == {"cards": []}


def test_a_fhir_server_that_refuses_is_a_412_saying_so(client: httpx.Client) -> None:
    """A FHIR server that answers 401 to the token gives 412 naming the status, not 'not found'."""
    request = _example("cds-hooks-2.0.1-example-request.json")
    with FhirStub([], token="another-token") as fhir:
        request["fhirServer"] = fhir.url
        response = _post(client, request)
    assert response.status_code == 412 and response.json()["error"] == "fhir_server_error"
    assert "HTTP 401" in response.json()["message"]


def test_cors_lets_the_configured_origin_call(tmp_path: Path) -> None:
    """A preflight from a configured origin (e.g. the CDS Hooks sandbox) is allowed; another origin is not."""
    database = f"sqlite:///{tmp_path / 'cors.sqlite3'}"
    origin = "https://sandbox.cds-hooks.org"
    with LiveServer(lambda url: create_app(_settings(url, database, cors_origins=(origin,)))) as live, \
            httpx.Client(base_url=live.url, timeout=30) as http:
        headers = {"Origin": origin, "Access-Control-Request-Method": "POST",
                   "Access-Control-Request-Headers": "authorization,content-type"}
        allowed = http.options(SERVICE_PATH, headers=headers)
        assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == origin
        other = http.options(SERVICE_PATH, headers={**headers, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


def test_a_feedback_database_from_before_issuers_is_upgraded(tmp_path: Path) -> None:
    """A database whose issued_cards table has no issuer column gets it; its old cards keep no issuer."""
    import sqlite3

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE issued_cards (uuid VARCHAR(64) PRIMARY KEY, service_id VARCHAR(128) NOT NULL, "
                           "kind VARCHAR(32) NOT NULL, option VARCHAR(64), verdict VARCHAR(32), "
                           "rulebook_version VARCHAR(64) NOT NULL, issued_at DATETIME NOT NULL)")
        connection.execute("INSERT INTO issued_cards VALUES ('old', 's', 'option', NULL, NULL, '1', '2025-01-01')")
    store = FeedbackStore(f"sqlite:///{path}")
    try:
        assert store.known_cards(["old"], "s") == {"old"} and store.known_cards(["old"], "s", ISSUER) == set()
    finally:
        store.close()


def test_a_plain_http_fhir_server_is_not_read_unless_allowed(tmp_path: Path) -> None:
    """By default the service reads a FHIR server over https only: an http fhirServer gets 412 naming the scheme."""
    request = _example("cds-hooks-2.0.1-example-request.json")
    database = f"sqlite:///{tmp_path / 'https.sqlite3'}"
    with FhirStub([request["prefetch"]["patientToGreet"]]) as fhir, \
            LiveServer(lambda url: create_app(_settings(url, database, allow_http_fhir_server=False))) as live, \
            SignedClient(live.url) as http:
        request["fhirServer"] = fhir.url
        response = _post(http, request)
        assert response.status_code == 412 and response.json()["problems"][0]["location"] == "fhirServer"
        assert not fhir.seen  # nothing was sent to it, not even the token


def test_an_issuer_with_a_jku_is_trusted_through_its_key_set_url(tmp_path: Path, bundle: dict[str, Any]) -> None:
    """An issuer configured by jku: its key set is fetched from that URL; a JWT naming another jku is refused."""
    key_set = json.dumps({"keys": [SIGNING_JWK]}).encode()

    class Keys(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(key_set)))
            self.end_headers()
            self.wfile.write(key_set)

    keys = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=keys.serve_forever, daemon=True).start()
    jku = f"http://127.0.0.1:{keys.server_address[1]}/jwks.json"
    issuers_file = tmp_path / "issuers.yaml"
    issuers_file.write_text(f"issuers:\n  - iss: {ISSUER}\n    jku: {jku}\n", encoding="utf-8")
    from postcart.cds_hooks.auth import load_trusted_issuers

    database = f"sqlite:///{tmp_path / 'jku.sqlite3'}"
    try:
        with LiveServer(lambda url: create_app(_settings(url, database,
                                                         trusted_issuers=tuple(load_trusted_issuers(issuers_file))))) \
                as live, httpx.Client(base_url=live.url, timeout=30) as http:
            good = http.post(SERVICE_PATH, json=_call(bundle), headers={"Authorization": f"Bearer {_token(live.url)}"})
            assert good.status_code == 200 and good.json()["cards"]
            now = int(time.time())
            other = jwt.encode({"iss": ISSUER, "aud": live.url, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())},
                               SIGNING_KEY, algorithm="ES384",
                               headers={"kid": "ehr-1", "jku": "https://attacker.example/jwks.json"})
            refused = http.post(SERVICE_PATH, json=_call(bundle), headers={"Authorization": f"Bearer {other}"})
            assert refused.status_code == 401 and "jku" in refused.json()["message"]
    finally:
        keys.shutdown()
        keys.server_close()


def test_cards_show_each_suggestions_evidence_grade() -> None:
    """Every recommended or consider option's evidence grade stands in the card that carries it."""
    import copy as _copy

    from postcart.cds_hooks.cards import build_cards
    from postcart.render import evidence_token

    from .conftest import BASELINE

    assessment = evaluate(_copy.deepcopy(BASELINE))
    cards = build_cards(assessment, [], "postcart").cards
    text = "\n".join(card["detail"] for card in cards)
    graded = [o for o in assessment.options if o.verdict in ("recommended", "consider")]
    assert graded
    for option in graded:
        assert option.evidence is not None, option.option
        assert evidence_token(option).strip() in text, option.option
