"""The CDS Hooks 2.0 service: FHIR in, cards out, feedback stored. Thin: no clinical logic here.

- ``GET /cds-services``: discovery, one ``patient-view`` service with its prefetch templates.
- ``POST /cds-services/{id}``: a hook call; the prefetch (FHIR R4) is mapped to a situation
  (``postcart.cds_hooks.fhir``), assessed (``postcart.evaluate``) and answered as cards (``postcart.cds_hooks.cards``).
- ``POST /cds-services/{id}/feedback``: accepted / overridden outcomes with their coded reasons.
- ``GET /reports/override-rates``: each rule's override rate.

Bad input gets a 4xx naming the reason (400 malformed request or wrong hook, 404 unknown service or card,
412 no prefetch, 413 body too large, 422 FHIR data that cannot be mapped); an unexpected fault gets a 500
with a reference id and no internals, and the service keeps serving. Logs carry the status and the kind of
problem, never the request's content: patient data is not logged.

Run with ``postcart serve`` (needs the ``service`` extra).
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from postcart.assessment import DISCLAIMER, Assessment
from postcart.cds_hooks.cards import OVERRIDE_REASON_SYSTEM, OVERRIDE_REASONS, build_cards
from postcart.cds_hooks.feedback import DEFAULT_DATABASE_URL, FeedbackStore
from postcart.cds_hooks.fhir import (
    ECOG_LOINC,
    LOCAL_FIELD_SYSTEM,
    LOCAL_FIELDS,
    LOINC,
    situation_from_fhir,
)
from postcart.engine import Engine
from postcart.errors import PostcartError, Problem
from postcart.evaluation import evaluate
from postcart.rulebook import Rulebook
from postcart.situation import PatientSituation

__all__ = ["SERVICE_ID", "Settings", "create_app"]

log = logging.getLogger("postcart.cds_hooks.service")

SERVICE_ID = "postcart-after-car-t"
HOOK = "patient-view"
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024

Evaluator = Callable[[PatientSituation], Assessment]


@dataclass(frozen=True)
class Settings:
    """Service configuration; :meth:`from_env` reads ``POSTCART_DATABASE_URL``, ``POSTCART_MAX_BODY_BYTES``
    and ``POSTCART_RULES``."""

    database_url: str = DEFAULT_DATABASE_URL
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    rules_dir: str | None = None

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


# ---- request and response models (they make the OpenAPI schema) ----------------------------------------

class PatientViewContext(BaseModel):
    """CDS Hooks patient-view context."""

    model_config = ConfigDict(extra="allow")
    userId: str = Field(min_length=1, max_length=256, description="Who is viewing, e.g. Practitioner/123.")
    patientId: str = Field(min_length=1, max_length=64, description="FHIR id of the patient in context.")
    encounterId: str | None = Field(default=None, max_length=64)


class HookRequest(BaseModel):
    """A CDS Hooks 2.0 call."""

    model_config = ConfigDict(extra="allow")
    hook: str = Field(max_length=64, description=f"The hook; this service answers {HOOK!r}.")
    hookInstance: uuid.UUID = Field(description="UUID of this hook call.")
    fhirServer: str | None = Field(default=None, max_length=2048)
    fhirAuthorization: dict[str, Any] | None = None
    context: PatientViewContext
    prefetch: dict[str, Any] | None = Field(
        default=None, description="FHIR R4 resources or Bundles, by prefetch key (see discovery).")


class Coding(BaseModel):
    model_config = ConfigDict(extra="allow")
    system: str | None = Field(default=None, max_length=512)
    code: str = Field(max_length=128)
    display: str | None = Field(default=None, max_length=512)


class OverrideReason(BaseModel):
    model_config = ConfigDict(extra="allow")
    reason: Coding | None = None
    userComment: str | None = Field(default=None, max_length=4096, description="Not stored.")


class AcceptedSuggestion(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str = Field(max_length=64)


class FeedbackItem(BaseModel):
    model_config = ConfigDict(extra="allow")
    card: str = Field(max_length=64, description="uuid of the card.")
    outcome: Literal["accepted", "overridden"]
    acceptedSuggestions: list[AcceptedSuggestion] = Field(default_factory=list, max_length=20)
    overrideReason: OverrideReason | None = None
    outcomeTimestamp: AwareDatetime


class FeedbackRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    feedback: list[FeedbackItem] = Field(min_length=1, max_length=100)


class CardsResponse(BaseModel):
    cards: list[dict[str, Any]]


class RuleRateOut(BaseModel):
    rule: str
    cards_shown: int
    accepted: int
    overridden: int
    override_rate: float | None


class OverrideReport(BaseModel):
    rules: list[RuleRateOut]
    override_reasons: dict[str, int]
    disclaimer: str


class ProblemOut(BaseModel):
    location: str
    message: str
    expected: str | None = None
    got: str | None = None


class ErrorOut(BaseModel):
    error: str
    message: str
    problems: list[ProblemOut] = []


# ---- errors -------------------------------------------------------------------------------------------

class _ClientError(HTTPException):
    def __init__(self, status: int, error: str, message: str, problems: list[Problem] | None = None) -> None:
        super().__init__(status, message)
        self.error = error
        self.problems = problems or []


class _TooLarge(_ClientError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, "body_too_large", f"request body larger than {limit} bytes")


def _error_response(status: int, error: str, message: str, problems: list[Problem] | None = None) -> JSONResponse:
    body = ErrorOut(error=error, message=message, problems=[ProblemOut(**vars(p)) for p in problems or []])
    log.info("answered %s %s (%d problems)", status, error, len(problems or []))
    return JSONResponse(body.model_dump(), status_code=status)


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
    observation_codes = ",".join([f"{LOINC}|{ECOG_LOINC}"] + [f"{LOCAL_FIELD_SYSTEM}|{path}" for path in LOCAL_FIELDS])
    return {"services": [{
        "hook": HOOK,
        "id": SERVICE_ID,
        "title": "postcart: next steps after CAR-T cell therapy failure",
        "description": "Suggests next steps after CAR-T failure (verdicts, rationale, citations) from the "
                       "patient's FHIR record. " + DISCLAIMER,
        "prefetch": {
            "patient": "Patient/{{context.patientId}}",
            # no code filter: FHIR token search is exact, and ICD-10-CM sub-codes (C83.38) must reach postcart
            "conditions": "Condition?patient={{context.patientId}}",
            "observations": "Observation?patient={{context.patientId}}&code=" + observation_codes,
            "medicationAdministrations": "MedicationAdministration?patient={{context.patientId}}",
            "procedures": "Procedure?patient={{context.patientId}}",
        },
        "usageRequirements": "Send the prefetch: this service never queries the FHIR server itself.",
    }]}


def create_app(settings: Settings | None = None, evaluator: Evaluator | None = None) -> FastAPI:
    """The FastAPI application. ``evaluator`` replaces ``postcart.evaluate`` (tests inject faults)."""
    settings = settings or Settings.from_env()
    store = FeedbackStore(settings.database_url)
    if evaluator is None:
        engine = Engine(Rulebook.load(settings.rules_dir))

        def evaluator(situation: PatientSituation) -> Assessment:
            return evaluate(situation, engine)
    else:
        engine = None
    run = evaluator

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
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
            return _error_response(error.status_code, error.error, str(error.detail), error.problems)
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
              responses={400: {"model": ErrorOut}, 404: {"model": ErrorOut}, 412: {"model": ErrorOut},
                         413: {"model": ErrorOut}, 422: {"model": ErrorOut}})
    def call_service(service_id: str, request: HookRequest) -> dict[str, Any]:
        _check_service(service_id)
        if request.hook != HOOK:
            raise _ClientError(400, "wrong_hook", f"service {SERVICE_ID!r} answers the {HOOK!r} hook, not "
                               f"{request.hook[:64]!r}")
        if not request.prefetch:
            raise _ClientError(412, "prefetch_required", "no prefetch: send the FHIR data named by the "
                               "discovery's prefetch templates (this service does not query the FHIR server)")
        try:
            mapping = situation_from_fhir(request.prefetch, request.context.patientId)
        except PostcartError as error:
            problems = getattr(error, "problems", [])
            raise _ClientError(422, "unusable_fhir_data", "the FHIR data cannot be mapped to a patient "
                               "situation: required data is missing, invalid or contradictory", problems) from None
        assessment = run(mapping.situation)
        cards = build_cards(assessment, mapping.notes, SERVICE_ID)
        store.record_cards(cards.issued)
        return {"cards": cards.cards}

    @app.post("/cds-services/{service_id}/feedback", summary="Feedback on cards",
              responses={400: {"model": ErrorOut}, 404: {"model": ErrorOut}})
    def feedback(service_id: str, request: FeedbackRequest) -> dict[str, int]:
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
                if reason.system not in (None, OVERRIDE_REASON_SYSTEM) or reason.code not in OVERRIDE_REASONS:
                    problems.append(Problem(f"{where}.overrideReason.reason", "not one of the card's override "
                                            "reasons", f"{OVERRIDE_REASON_SYSTEM} code one of "
                                            + ", ".join(OVERRIDE_REASONS), f"{reason.system}|{reason.code}"[:100]))
                code = reason.code
            rows.append({"card": item.card, "outcome": item.outcome, "override_reason": code,
                         "accepted_suggestions": len(item.acceptedSuggestions),
                         "outcome_at": item.outcomeTimestamp})
        if problems:
            raise _ClientError(400, "invalid_feedback", "the feedback cannot be stored", problems)
        cards = [item.card for item in request.feedback]
        known = store.known_cards(cards, SERVICE_ID)
        unknown = [card for card in cards if card not in known]
        if unknown:
            raise _ClientError(404, "unknown_card", "feedback on cards this service did not issue",
                               [Problem("feedback.card", "unknown card uuid", "the uuid of a card this service "
                                        "returned", card[:64]) for card in dict.fromkeys(unknown)])
        return {"stored": store.record_feedback(rows)}

    @app.get("/reports/override-rates", response_model=OverrideReport, summary="Override rate per rule")
    def override_report() -> dict[str, Any]:
        return {"rules": [rate.as_json() for rate in store.override_rates()],
                "override_reasons": store.override_reasons(), "disclaimer": DISCLAIMER}

    app.add_middleware(_Guard, max_body_bytes=settings.max_body_bytes)
    return app

