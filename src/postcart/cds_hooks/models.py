"""The CDS Hooks 2.0 wire format as pydantic models: what a client sends and what the service answers.

They make the service's OpenAPI schema (``/openapi.json``); the service validates requests with them.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

__all__ = ["AcceptedSuggestion", "CardsResponse", "Coding", "ErrorOut", "FeedbackItem", "FeedbackRequest",
           "HookRequest", "OverrideReason", "OverrideReport", "PatientViewContext", "ProblemOut", "RuleRateOut"]

HOOK = "patient-view"


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
    present: dict[str, int] | None = Field(
        default=None, description="On a 422: how many resources of each type the record held (no content).")
