"""The EHR interface: a CDS Hooks service reading FHIR R4 (``fhir``), answering cards (``cards``),
recording clinicians' feedback (``feedback``); ``service`` is the HTTP application."""
