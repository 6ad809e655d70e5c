"""What the service asks the EHR for (the prefetch templates), and how it gets what was not sent.

CDS Hooks 2.0.1: a prefetch key the client did not send was not satisfied; the service reads it from the
client's FHIR server when ``fhirServer`` and ``fhirAuthorization`` were given, and answers 412 otherwise.
Searches are paged by their ``next`` links on the same server; https only, unless plain http is allowed
(tests, a closed network).
Nothing read here is logged.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from postcart.cds_hooks.fhir import DISEASE_STATUS_LOINC, ECOG_LOINC, LOCAL_FIELD_SYSTEM, LOCAL_FIELDS, LOINC
from postcart.errors import PostcartError, Problem

__all__ = ["PrefetchUnavailable", "fetch_missing", "missing_keys", "prefetch_templates"]

_MAX_PAGES = 20


class PrefetchUnavailable(PostcartError, LookupError):
    """The data the service needs was neither sent nor readable from the FHIR server (answered 412)."""

    def __init__(self, error: str, message: str, problems: list[Problem]) -> None:
        super().__init__(message)
        self.error = error
        self.message = message
        self.problems = problems


def prefetch_templates() -> dict[str, str]:
    """Prefetch templates by key: what the service reads, and nothing else (data minimisation)."""
    observation_codes = ",".join([f"{LOINC}|{ECOG_LOINC}", f"{LOINC}|{DISEASE_STATUS_LOINC}"]
                                 + [f"{LOCAL_FIELD_SYSTEM}|{path}" for path in LOCAL_FIELDS])
    return {
        "patient": "Patient/{{context.patientId}}",
        # no code filter: FHIR token search is exact, and ICD-10-CM sub-codes (C83.38) must reach postcart
        "conditions": "Condition?patient={{context.patientId}}",
        "observations": "Observation?patient={{context.patientId}}&code=" + observation_codes,
        # no code filter: the product may sit in a referenced or contained Medication
        "medicationAdministrations": "MedicationAdministration?patient={{context.patientId}}",
        "procedures": "Procedure?patient={{context.patientId}}",
    }


def missing_keys(prefetch: Mapping[str, Any], fhir_access: bool) -> list[str]:
    """The template keys not satisfied: absent ones, and (with FHIR access) those the EHR answered with an
    OperationOutcome. A Bundle under a key that is not a template key is the whole record: nothing missing."""
    templates = prefetch_templates()
    if any(key not in templates and isinstance(value, Mapping) and value.get("resourceType") == "Bundle"
           for key, value in prefetch.items()):
        return []
    missing = [key for key in templates if key not in prefetch]
    if fhir_access:
        missing += [key for key, value in prefetch.items() if key in templates and isinstance(value, Mapping)
                    and value.get("resourceType") == "OperationOutcome"]
    return missing


def fetch_missing(keys: list[str], patient_id: str, fhir_server: str | None,
                  authorization: Mapping[str, Any] | None, timeout_seconds: float = 10.0,
                  allow_http: bool = False) -> dict[str, Any]:
    """The missing prefetch keys, read from the client's FHIR server with its bearer access token.

    Raises:
        PrefetchUnavailable: no FHIR access was given, the server is not https, or it could not be read
            (naming the HTTP status or the error, and the keys).
    """
    templates = prefetch_templates()
    token = (authorization or {}).get("access_token")
    token_type = str((authorization or {}).get("token_type", ""))
    server = (fhir_server or "").rstrip("/")
    if not server or not isinstance(token, str) or not token or token_type.lower() != "bearer":
        raise PrefetchUnavailable("prefetch_required", "prefetch keys missing and no FHIR server access given: send "
                                  "them, or fhirServer with fhirAuthorization (a Bearer access_token)",
                                  [Problem(f"prefetch.{key}", "missing", templates[key], "not sent") for key in keys])
    parts = urlsplit(server)
    if parts.scheme != "https" and not (parts.scheme == "http" and allow_http):
        raise PrefetchUnavailable("prefetch_required", "prefetch keys missing and fhirServer is not an https URL: "
                                  "this service reads FHIR only over TLS",
                                  [Problem("fhirServer", "not https", "https://...", parts.scheme or "no scheme")])
    deadline = time.monotonic() + timeout_seconds
    fetched: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    try:
        with httpx.Client(timeout=timeout_seconds, headers=headers, follow_redirects=False) as http:
            for key in keys:
                url: str | None = f"{server}/{templates[key].replace('{{context.patientId}}', patient_id)}"
                pages: list[Any] = []
                while url is not None and len(pages) < _MAX_PAGES:
                    if time.monotonic() > deadline:
                        raise httpx.TimeoutException("the FHIR server took too long")
                    response = http.get(url)
                    if response.status_code == 404 and key == "patient":
                        break  # no such Patient: the record is empty, not unreachable
                    if response.status_code != 200:
                        raise PrefetchUnavailable(
                            "fhir_server_error", f"the FHIR server answered HTTP {response.status_code} when reading "
                            f"the {key!r} data", [Problem(f"prefetch.{key}", f"HTTP {response.status_code} from the "
                                                          "FHIR server", "HTTP 200 with FHIR JSON",
                                                          str(response.status_code))])
                    page = response.json()
                    pages.append(page)
                    url = _next_page(page, server)
                fetched[key] = (pages[0] if len(pages) == 1 else None if not pages else
                                {"resourceType": "Bundle", "type": "collection",
                                 "entry": [{"resource": page} for page in pages]})
    except PrefetchUnavailable:
        raise
    except (httpx.HTTPError, ValueError) as error:
        raise PrefetchUnavailable("fhir_server_unreachable", f"the FHIR server could not be read "
                                  f"({type(error).__name__}); prefetch keys missing: {', '.join(keys)}",
                                  [Problem(f"prefetch.{key}", "could not be fetched", templates[key],
                                           type(error).__name__) for key in keys]) from None
    return fetched


def _next_page(page: Any, server: str) -> str | None:
    """The searchset's next page, when it is on the same server (paging never leaves it)."""
    links = page.get("link") if isinstance(page, Mapping) else None
    for link in links if isinstance(links, list) else []:
        target = link.get("url") if isinstance(link, Mapping) else None
        if link.get("relation") == "next" and isinstance(target, str) and target.startswith(server + "/"):
            return target
    return None
