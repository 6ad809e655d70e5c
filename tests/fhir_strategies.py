"""Hypothesis strategies for FHIR input, shared by the mapping tests and the service's HTTP fuzzing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "fhir" / "lbcl-late-relapse-fit-donor.json"

_JSON = st.recursive(st.none() | st.booleans() | st.integers(-10, 10**6) | st.text(max_size=12),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                     max_leaves=6)


@st.composite
def mangled_bundles(draw: st.DrawFn) -> dict[str, Any]:
    """The example bundle with entries dropped and one element of one resource replaced by arbitrary JSON."""
    bundle = json.loads(EXAMPLE.read_text(encoding="utf-8"))
    keep = draw(st.lists(st.booleans(), min_size=len(bundle["entry"]), max_size=len(bundle["entry"])))
    bundle["entry"] = [entry for entry, kept in zip(bundle["entry"], keep, strict=True) if kept] or bundle["entry"][:1]
    resource = draw(st.sampled_from(bundle["entry"]))["resource"]
    key = draw(st.sampled_from([*sorted(resource), "valueInteger", "effectiveDateTime", "status", "subject"]))
    resource[key] = draw(_JSON)
    return bundle
