"""The CDS Hooks 2.0 service: FHIR in, cards out, feedback stored. Thin: no clinical logic here.

- ``GET /cds-services``: discovery, one ``patient-view`` service with its prefetch templates.
- ``POST /cds-services/{id}``: a hook call; the prefetch (FHIR R4, or what is fetched from ``fhirServer`` with
  ``fhirAuthorization`` when prefetch keys are missing) is mapped to a situation (``postcart.cds_hooks.fhir``),
  assessed (``postcart.evaluate``) and answered as cards (``postcart.cds_hooks.cards``); a patient with no
  CAR-T failure on record gets ``{"cards": []}``.
- ``POST /cds-services/{id}/feedback``: accepted / overridden outcomes, once per card and outcome, from the
  client the card was issued to.
- ``GET /reports/override-rates``: each rule's override rate.
- ``GET /assessments/{token}``: the full assessment behind a call's cards, for one hour (the link carries the
  situation, sealed; nothing is stored).

Every call but discovery needs the client's JWT (``postcart.cds_hooks.auth``), unless the service runs with
``insecure_no_auth`` for local development. Bad input gets a 4xx naming the reason (400 malformed request or
wrong hook, 401 no or bad JWT, 404 unknown service or card, 412 prefetch keys missing and the FHIR server not
reachable, 413 body too large, 422 FHIR data that cannot be mapped, with what the record held); an unexpected
fault gets a 500 with a reference id and no internals, and the service keeps serving. Recording cards and
feedback never fails a hook call. Logs carry the status and the kind of problem, never the request's
content: patient data is not logged.

Run with ``postcart serve`` (needs the ``service`` extra).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from cryptography.fernet import Fernet, InvalidToken
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postcart.assessment import DISCLAIMER, Assessment
from postcart.cds_hooks.auth import AuthenticationFailed, Authenticator, SqliteReplayCache, TrustedIssuer
from postcart.cds_hooks.cards import OVERRIDE_REASON_SYSTEM, OVERRIDE_REASONS, build_cards
from postcart.cds_hooks.feedback import DEFAULT_DATABASE_URL, CardRecorder, FeedbackStore
from postcart.cds_hooks.fhir import NoCarTFailure, collect_resources, situation_from_fhir
from postcart.cds_hooks.models import (
    HOOK,
    CardsResponse,
    ErrorOut,
    FeedbackRequest,
    HookRequest,
    OverrideReport,
    ProblemOut,
)
from postcart.cds_hooks.prefetch import PrefetchUnavailable, fetch_missing, missing_keys, prefetch_templates
from postcart.documents import parse_json
from postcart.engine import Engine
from postcart.errors import InvalidSituation, PostcartError, Problem
from postcart.evaluation import evaluate
from postcart.render import to_markdown
from postcart.rulebook import Rulebook
from postcart.situation import PatientSituation, validate_situation

__all__ = ["SERVICE_ID", "Settings", "create_app"]

log = logging.getLogger("postcart.cds_hooks.service")

SERVICE_ID = "postcart-after-car-t"
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024

Evaluator = Callable[[PatientSituation], Assessment]


@dataclass(frozen=True)
class Settings:
    """Service configuration; :meth:`from_env` reads ``POSTCART_DATABASE_URL``, ``POSTCART_MAX_BODY_BYTES``
    and ``POSTCART_RULES``."""

    database_url: str = DEFAULT_DATABASE_URL
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    rules_dir: str | None = None
    #: The URL clients call (the JWT's aud), e.g. https://cds.example.org; also the base of assessment links.
    public_url: str = "http://127.0.0.1:8080"
    #: Clients allowed to call (``postcart.cds_hooks.auth.load_trusted_issuers``); empty: nobody, unless insecure.
    trusted_issuers: tuple[TrustedIssuer, ...] = ()
    #: Local development only: no JWT is required (a warning is logged on every start).
    insecure_no_auth: bool = False
    #: Browser origins allowed to call (CORS), e.g. the CDS Hooks sandbox.
    cors_origins: tuple[str, ...] = ()
    #: Seconds allowed for all requests to the EHR's FHIR server during one hook call.
    fhir_timeout_seconds: float = 10.0
    #: Fetch from a plain-http FHIR server (tests, a closed network); https only otherwise.
    allow_http_fhir_server: bool = False
    #: Fernet key sealing the assessment links (shared by worker processes); default, a new one per start.
    link_key: str | None = None
    #: SQLite file of the JWT ids seen, shared by worker processes; default, this process's memory.
    replay_database: str | None = None

    def to_env(self) -> str:
        """These settings as JSON, for worker processes started by uvicorn (:func:`app_from_env`)."""
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["trusted_issuers"] = [{"iss": i.iss, "jwks": i.jwks, "jku": i.jku} for i in self.trusted_issuers]
        data["cors_origins"] = list(self.cors_origins)
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Settings:
        data = json.loads(text)
        data["trusted_issuers"] = tuple(TrustedIssuer(**item) for item in data["trusted_issuers"])
        data["cors_origins"] = tuple(data["cors_origins"])
        return cls(**data)

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        raw_limit = os.environ.get("POSTCART_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES))
        if not raw_limit.strip().isdigit() or int(raw_limit) < 1:
            raise ValueError(f"POSTCART_MAX_BODY_BYTES must be a positive whole number of bytes, got {raw_limit!r}")
        values: dict[str, Any] = {
            "database_url": os.environ.get("POSTCART_DATABASE_URL", DEFAULT_DATABASE_URL),
            "max_body_bytes": int(raw_limit),
            "rules_dir": os.environ.get("POSTCART_RULES"),
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)


# ---- errors -------------------------------------------------------------------------------------------

class _ClientError(HTTPException):
    def __init__(self, status: int, error: str, message: str, problems: list[Problem] | None = None,
                 present: dict[str, int] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, headers=headers)
        self.error = error
        self.problems = problems or []
        self.present = present


class _TooLarge(_ClientError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "body_too_large", f"request body larger than {limit} bytes")


def _error_response(status: int, error: str, message: str, problems: list[Problem] | None = None,
                    present: dict[str, int] | None = None, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = ErrorOut(error=error, message=message, problems=[ProblemOut(**vars(p)) for p in problems or []],
                    present=present)
    log.info("answered %s %s (%d problems)", status, error, len(problems or []))
    data = body.model_dump()
    if present is None:
        data.pop("present")
    return JSONResponse(data, status_code=status, headers=headers)


class _Guard:
    """Outermost app layer: caps the body size and turns any unexpected fault into a bare 500."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _error_response(400, "bad_request", "Content-Length is not a number")(scope, receive, send)
                return
            if int(declared) > self.limit:
                await _too_large_response(self.limit)(scope, receive, send)
                return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge(self.limit)
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except _TooLarge:
            if not started:
                await self._drain(receive)
                await _too_large_response(self.limit)(scope, receive, send)
        except Exception as error:
            reference = uuid.uuid4().hex[:12]
            # The type only: an exception's message may carry patient data.
            log.error("internal error %s: %s", reference, type(error).__name__)
            if not started:
                response = JSONResponse({"error": "internal_error", "message": "internal error; the service is "
                                         f"still running (reference {reference})", "problems": []},
                                        status_code=500)
                await response(scope, receive, send)


    async def _drain(self, receive: Receive) -> None:
        """Read (and drop) the rest of a streamed body, up to a bound, so the client can read the 413."""
        drained = 0
        while drained <= _DRAIN_LIMIT:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                return
            drained += len(message.get("body", b""))


_DRAIN_LIMIT = 8 * 1024 * 1024


def _too_large_response(limit: int) -> JSONResponse:
    return _error_response(413, "body_too_large", f"request body larger than the limit of {limit} bytes")


# ---- the app ------------------------------------------------------------------------------------------

def discovery_document() -> dict[str, Any]:
    """The CDS Hooks discovery response: one patient-view service with minimal prefetch templates."""
    return {"services": [{
        "hook": HOOK,
        "id": SERVICE_ID,
        "title": "postcart: next steps after CAR-T cell therapy failure",
        "description": "Suggests next steps after CAR-T failure (verdicts, rationale, citations) from the "
                       "patient's FHIR record. " + DISCLAIMER,
        "prefetch": prefetch_templates(),
        "usageRequirements": "Send the prefetch, or fhirServer with fhirAuthorization (read access to Patient, "
                             "Condition, Observation, MedicationAdministration, Procedure) for the keys not sent.",
    }]}


class _Links:
    """Links to the full assessment: the situation, compressed and sealed (Fernet: AES + HMAC, with its time).

    Nothing is kept on the server: the link carries the situation, readable only with the key, for one
    hour; the page re-runs the assessment. Worker processes share the key, so any of them can open it.
    """

    ttl_seconds = 3600

    def __init__(self, key: str | None) -> None:
        self._fernet = Fernet(key.encode() if key else Fernet.generate_key())

    def seal(self, situation: PatientSituation) -> str:
        return self._fernet.encrypt(zlib.compress(situation.model_dump_json().encode(), 6)).decode()

    def open(self, token: str) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(zlib.decompress(self._fernet.decrypt(token, ttl=self.ttl_seconds)))
        except (InvalidToken, ValueError, zlib.error):
            return None
        return data


def _open_store(url: str) -> FeedbackStore | None:
    try:
        return FeedbackStore(url)
    except Exception as error:  # the hooks still answer: cards are given, feedback cannot be kept
        log.error("feedback store unavailable (%s): hook calls are answered, cards and feedback are not recorded",
                  type(error).__name__)
        return None


def create_app(settings: Settings | None = None, evaluator: Evaluator | None = None) -> FastAPI:
    """The FastAPI application. ``evaluator`` replaces ``postcart.evaluate`` (tests inject faults)."""
    settings = settings or Settings.from_env()
    store = _open_store(settings.database_url)
    recorder = CardRecorder(store)
    links = _Links(settings.link_key)
    public_url = settings.public_url.rstrip("/")
    replay = SqliteReplayCache(settings.replay_database) if settings.replay_database else None
    authenticator = (None if settings.insecure_no_auth
                     else Authenticator(list(settings.trusted_issuers), public_url, replay=replay))
    if evaluator is None:
        engine = Engine(Rulebook.load(settings.rules_dir))

        def evaluator(situation: PatientSituation) -> Assessment:
            return evaluate(situation, engine)
    else:
        engine = None
    run = evaluator

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.insecure_no_auth:
            log.warning("INSECURE: running without authentication (--insecure-no-auth); any caller gets cards and "
                        "can post feedback. For local development only.")
        yield
        recorder.close()
        if store is not None:
            store.close()
        if engine is not None:
            engine.close()

    app = FastAPI(
        lifespan=lifespan,
        title="postcart CDS Hooks service",
        version="0.1.0",
        description="CDS Hooks 2.0 decision support after CAR-T failure. " + DISCLAIMER,
    )
    app.state.store = store
    app.state.recorder = recorder
    app.state.authenticator = authenticator
    app.state.settings = settings

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        items = error.errors()
        if any(item.get("type") == "json_invalid" for item in items):
            detail = next(item for item in items if item.get("type") == "json_invalid")
            where = (detail.get("ctx") or {}).get("error", "")
            return _error_response(400, "malformed_json", f"the body is not valid JSON ({where})".replace(" ()", ""))
        problems = []
        for item in items:
            loc = [str(part) for part in item.get("loc", ()) if part != "body"]
            expected = None
            ctx = item.get("ctx") or {}
            if "expected" in ctx:
                expected = str(ctx["expected"])
            problems.append(Problem(".".join(loc) or "(body)", str(item.get("msg", "invalid")), expected))
        return _error_response(400, "invalid_request", "the request does not match the CDS Hooks 2.0 "
                               "format", problems)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, error: HTTPException) -> JSONResponse:
        if isinstance(error, _ClientError):
            return _error_response(error.status_code, error.error, str(error.detail), error.problems, error.present,
                                   error.headers)
        if error.status_code == 400:  # FastAPI could not read the body (not UTF-8, or JSON nested too deeply)
            return _error_response(400, "malformed_json", "the body could not be read as JSON (not UTF-8, or "
                                   "nested too deeply)")
        names = {404: "not_found", 405: "method_not_allowed"}
        return _error_response(error.status_code, names.get(error.status_code, "http_error"), str(error.detail))

    def _check_service(service_id: str) -> None:
        if service_id != SERVICE_ID:
            raise _ClientError(404, "unknown_service", f"no CDS service {service_id!r}; this server offers "
                               f"{SERVICE_ID!r}")

    @app.get("/cds-services", summary="CDS Hooks discovery")
    def discovery() -> dict[str, Any]:
        return discovery_document()

    @app.post("/cds-services/{service_id}", response_model=CardsResponse, summary="Call the service",
              responses={400: {"model": ErrorOut}, 401: {"model": ErrorOut}, 404: {"model": ErrorOut},
                         412: {"model": ErrorOut}, 413: {"model": ErrorOut}, 422: {"model": ErrorOut}})
    def call_service(service_id: str, request: HookRequest, caller: StrictCaller) -> JSONResponse:
        _check_service(service_id)
        if request.hook != HOOK:
            raise _ClientError(400, "wrong_hook", f"service {SERVICE_ID!r} answers the {HOOK!r} hook, not "
                               f"{request.hook[:64]!r}")
        prefetch = dict(request.prefetch or {})
        missing = missing_keys(prefetch, request.fhirAuthorization is not None)
        if missing:
            try:
                prefetch.update(fetch_missing(missing, request.context.patientId, request.fhirServer,
                                              request.fhirAuthorization, settings.fhir_timeout_seconds,
                                              settings.allow_http_fhir_server))
            except PrefetchUnavailable as error:
                raise _ClientError(412, error.error, error.message, error.problems) from None
        try:
            mapping = situation_from_fhir(prefetch, request.context.patientId, fhir_server=request.fhirServer)
        except NoCarTFailure:
            return JSONResponse({"cards": []})  # CDS Hooks: no decision support for this patient: no cards
        except PostcartError as error:
            problems = getattr(error, "problems", [])
            raise _ClientError(422, "unusable_fhir_data", "the FHIR data cannot be mapped to a patient "
                               "situation: required data is missing, invalid or contradictory", problems,
                               _present(prefetch)) from None
        assessment = run(mapping.situation)
        link = f"{public_url}/assessments/{links.seal(mapping.situation)}"
        cards = build_cards(assessment, mapping.notes, SERVICE_ID, link)
        recorder.record(cards.issued, caller)
        # returned as is: the cards are built by this service, validating them again costs each call
        return JSONResponse({"cards": cards.cards})

    @app.get("/assessments/{token}", summary="The full assessment behind a call's cards (one hour)",
             response_class=PlainTextResponse, responses={404: {"model": ErrorOut}})
    def assessment_page(token: str) -> PlainTextResponse:
        data = links.open(token)
        if data is None:
            raise _ClientError(404, "unknown_assessment", "no such assessment: links expire after one hour")
        text = to_markdown(run(validate_situation(data)))
        return PlainTextResponse(text, media_type="text/markdown; charset=utf-8",
                                 headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    @app.post("/cds-services/{service_id}/feedback", summary="Feedback on cards",
              responses={400: {"model": ErrorOut}, 401: {"model": ErrorOut}, 404: {"model": ErrorOut},
                         503: {"model": ErrorOut}})
    def feedback(service_id: str, request: FeedbackRequest, caller: StrictCaller) -> dict[str, int]:
        _check_service(service_id)
        problems: list[Problem] = []
        rows: list[dict[str, Any]] = []
        for index, item in enumerate(request.feedback):
            where = f"feedback[{index}]"
            code = None
            if item.outcome == "accepted" and item.overrideReason is not None:
                problems.append(Problem(f"{where}.overrideReason", "only an overridden card has an override "
                                        "reason", "no overrideReason with outcome accepted", "an overrideReason"))
            if item.overrideReason is not None and item.overrideReason.reason is not None:
                reason = item.overrideReason.reason
                if reason.system in (None, OVERRIDE_REASON_SYSTEM) and reason.code not in OVERRIDE_REASONS:
                    problems.append(Problem(f"{where}.overrideReason.reason", "not one of the card's override "
                                            "reasons", f"{OVERRIDE_REASON_SYSTEM} code one of "
                                            + ", ".join(OVERRIDE_REASONS), f"{reason.system}|{reason.code}"[:100]))
                # CDS Hooks 2.0.1: a client MAY add its own override reasons; kept as 'ehr:' + its code
                code = reason.code if reason.system in (None, OVERRIDE_REASON_SYSTEM) else f"ehr:{reason.code}"[:64]
            rows.append({"card": item.card, "outcome": item.outcome, "override_reason": code,
                         "accepted_suggestions": len(item.acceptedSuggestions),
                         "outcome_at": item.outcomeTimestamp})
        if problems:
            raise _ClientError(400, "invalid_feedback", "the feedback cannot be stored", problems)
        if store is None:
            raise _ClientError(503, "feedback_unavailable", "the feedback store is unavailable; feedback is not kept")
        recorder.flush()
        cards = [item.card for item in request.feedback]
        try:
            known = store.known_cards(cards, SERVICE_ID, caller)
            unknown = [card for card in cards if card not in known]
            if unknown:
                raise _ClientError(404, "unknown_card", "feedback on cards this service did not issue to this "
                                   "client", [Problem("feedback.card", "unknown card uuid", "the uuid of a card this "
                                                      "service returned to the caller", card[:64])
                                              for card in dict.fromkeys(unknown)])
            return {"stored": store.record_feedback(rows)}
        except _ClientError:
            raise
        except Exception as error:
            log.error("feedback not recorded (%s)", type(error).__name__)
            raise _ClientError(503, "feedback_unavailable", "the feedback could not be stored; try again later") from None

    @app.get("/reports/override-rates", response_model=OverrideReport, summary="Override rate per rule",
             responses={401: {"model": ErrorOut}, 503: {"model": ErrorOut}})
    def override_report(caller: Caller) -> dict[str, Any]:
        if store is None:
            raise _ClientError(503, "feedback_unavailable", "the feedback store is unavailable")
        recorder.flush()
        return {"rules": [rate.as_json() for rate in store.override_rates()],
                "override_reasons": store.override_reasons(), "disclaimer": DISCLAIMER}

    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
    app.add_middleware(_Guard, max_body_bytes=settings.max_body_bytes)
    return app


def app_from_env() -> FastAPI:
    """The app of one worker process: settings from ``POSTCART_SERVICE_SETTINGS`` (``postcart serve --workers``)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    return create_app(Settings.from_json(os.environ["POSTCART_SERVICE_SETTINGS"]))


def _authenticated(request: Request) -> str | None:
    """The verified issuer of the caller's JWT (None when the service runs without authentication)."""
    authenticator: Authenticator | None = request.app.state.authenticator
    if authenticator is None:
        return None
    try:
        return authenticator.verify(request.headers.get("authorization"), request.url.path)
    except AuthenticationFailed as error:
        raise _ClientError(401, "unauthorized", str(error),
                           headers={"WWW-Authenticate": 'Bearer realm="postcart"'}) from None


Caller = Annotated[str | None, Depends(_authenticated)]


async def _read_strictly(request: Request, caller: Caller) -> str | None:
    """The caller (authenticated first), once the body has passed the strict JSON reader that reads every
    patient document (:func:`postcart.documents.parse_json`): a key given twice, NaN or Infinity, an
    integer of more than 18 digits or nesting past 32 levels is refused with 400 naming the place, where a
    plain JSON parser would keep the last value or read a number no record holds."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _ClientError(400, "malformed_json", "the body is not UTF-8 text") from None
    try:
        parse_json(text, "body")
    except InvalidSituation as error:
        raise _ClientError(400, "malformed_json", "the body is not JSON postcart can read unambiguously: "
                           + "; ".join(str(problem) for problem in error.problems), error.problems) from None
    return caller


#: The caller of a route that takes a JSON body: authenticated, then the body read strictly.
StrictCaller = Annotated[str | None, Depends(_read_strictly)]


def _present(prefetch: Mapping[str, Any]) -> dict[str, int]:
    """How many resources of each type the prefetch held: what a 422 says was there (no content)."""
    try:
        entries, _ = collect_resources(prefetch)
    except InvalidSituation:
        return {}
    counts: dict[str, int] = {}
    for entry in entries:
        kind = entry.kind[:64]
        counts[kind] = counts.get(kind, 0) + 1
    return dict(sorted(counts.items()))
