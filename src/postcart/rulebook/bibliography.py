"""The bibliography's entries and the reference policy they are held to (docs/rulebook-format.md).

A ``Reference`` records where its identifiers were read (``verified_at``), when (``checked``) and when the
work was published; :meth:`Reference.policy_problems` says what breaks the policy (a link host off the
allow-list of ``link_hosts.yaml``, an IP address, a DOI seen but not given, a verified entry without its
record). Loading the bibliography is :mod:`postcart.rulebook.loading`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["Reference", "url_problem"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PublishedDate = Annotated[str, Field(pattern=r"^\d{4}(-\d{2}(-\d{2})?)?$")]


class Reference(_Strict):
    """One bibliography entry; every rule cites these by key.

    The reference policy (docs/rulebook-format.md, checked when the rulebook loads): a ``verified`` entry
    was seen on a stored page (``verified_at``, checked on ``checked``) showing its DOI or PMID, or, for what
    has neither, its official page on a host of ``link_hosts.yaml``. The link shown is the DOI, else the
    PubMed record, else that page. An ``unverified`` entry stays for the record; no active rule cites it.
    """

    key: str = Field(pattern=r"^[a-z0-9_]+$")
    label: str = Field(min_length=3, description="How the reference is named in text, e.g. 'Dickinson 2022'.")
    authors: str
    title: str
    source: str = Field(description="Journal (year;volume:pages) or the document it is.")
    year: int | None = None
    published: PublishedDate | None = Field(
        default=None, description="Publication date as the stored page gives it: YYYY, YYYY-MM or YYYY-MM-DD "
        "(online first when shown).", examples=["2022-12-11"])
    doi: str | None = None
    pmid: str | None = Field(default=None, pattern=r"^[0-9]{1,9}$")
    url: str | None = Field(default=None, description="Only for what has neither DOI nor PMID (a regulator's notice, "
                            "a guideline body's page, a trial record): an https page on an allow-listed host.")
    status: Literal["verified", "unverified"] = Field(
        description="verified: a stored page showed the identifiers (or the official page); unverified: kept for "
        "the record, never cited by an active rule.")
    verified_at: tuple[str, ...] = Field(
        default=(), description="The stored pages that showed the identifiers or record (where they were read; "
        "never shown as links).")
    checked: dt.date | None = Field(default=None, description="When the entry was last checked against those pages.")
    doi_seen: bool = Field(default=False, description="A stored page shows a DOI for this work: then `doi` must "
                           "carry it.")
    note: str | None = None
    findings: str | None = Field(
        default=None,
        description="The source's key findings as seen (copied from the evidence base, or the seed "
        "document's own sentences); every figure a rule quotes from it must appear here.",
    )

    @field_validator("doi")
    @classmethod
    def _doi_shape(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("10."):
            raise ValueError("a DOI starts with '10.'")
        return value

    @field_validator("published", mode="before")
    @classmethod
    def _published_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 2022-12-11 as a date, 2022 as an int
        if isinstance(value, (dt.date, int)):
            return str(value) if isinstance(value, int) else value.isoformat()
        return value

    @property
    def link(self) -> str | None:
        """The link a clinician clicks: https://doi.org/<doi>, else the PubMed record, else the official page."""
        if self.doi:
            return f"https://doi.org/{self.doi}"
        if self.pmid:
            return f"https://pubmed.ncbi.nlm.nih.gov/{self.pmid}/"
        return self.url

    @property
    def published_year(self) -> int | None:
        """The publication year, from ``published`` (else ``year``)."""
        return int(self.published[:4]) if self.published else self.year

    def policy_problems(self, allowed_hosts: frozenset[str]) -> list[tuple[str, str, str | None, str | None]]:
        """What breaks the reference policy: (field, message, expected, got) for each finding."""
        found: list[tuple[str, str, str | None, str | None]] = []
        if self.doi_seen and not self.doi:
            found.append(("doi", "a stored page shows a DOI for this work but none is given",
                          "the DOI as the page shows it", "nothing"))
        if self.url is not None:
            problem = url_problem(self.url, allowed_hosts)
            if problem:
                found.append(("url", problem, "an https page on a host of link_hosts.yaml", self.url))
        if self.status == "verified":
            if not (self.doi or self.pmid or self.url):
                found.append(("status", "a verified entry has a DOI, a PMID or an official page",
                              "doi, pmid or url", "none"))
            if not self.verified_at:
                found.append(("verified_at", "a verified entry names the stored pages that showed it",
                              "at least one page address", "none"))
            if self.checked is None:
                found.append(("checked", "a verified entry says when it was checked", "a date", "nothing"))
            if self.published is None:
                found.append(("published", "a verified entry has its publication date", "YYYY[-MM[-DD]]",
                              "nothing"))
        return found


def url_problem(url: str, allowed_hosts: frozenset[str]) -> str | None:
    """Why a link may not be shown (IP host, not https, host off the allow-list), or None if it may.

    >>> url_problem("https://www.fda.gov/x", frozenset({"www.fda.gov"})) is None
    True
    >>> url_problem("http://47.251.13.51:8081/40181090", frozenset({"www.fda.gov"}))
    'an IP address is never a link host'
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".") if parts.hostname else ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return "an IP address is never a link host"
    if parts.scheme != "https":
        return "a link is https"
    if parts.port is not None or parts.hostname is None or parts.hostname.endswith("."):
        return f"host '{parts.netloc}' is not an official host as written"
    if host not in allowed_hosts:
        return f"host '{host}' is not on the allow-list of official hosts"
    return None


class _LinkHosts(_Strict):
    hosts: tuple[str, ...] = Field(min_length=1)
