"""Recorded reviews of a rules directory (``reviews/*.json``) and the per-rule content hash they approve.

A review file is what the review page exports and ``postcart review import`` records; loading one checks
it strictly (no key given twice), against the review file model, and against its own checksum.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from postcart.documents import parse_json
from postcart.errors import Problem, RuleDefinitionError
from postcart.rulebook.model import RecordedReview, review_checksum

__all__ = ["REVIEWS_DIR", "load_reviews", "rule_content_hash"]

#: Rule keys that are bookkeeping, not clinical content: editing them does not undo a review's approval.
_BOOKKEEPING_KEYS = frozenset({"author", "approved", "review_by", "notes"})

#: Where recorded reviews live inside a rules directory (not part of the rulebook's content hash).
REVIEWS_DIR = "reviews"


def rule_content_hash(raw: Mapping[str, Any]) -> str:
    """SHA-256 of a rule's clinical content as written (canonical JSON of its YAML mapping)."""
    content = {key: value for key, value in raw.items() if key not in _BOOKKEEPING_KEYS}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_reviews(directory: Path) -> tuple[tuple[RecordedReview, ...], list[Problem]]:
    """``reviews/*.json`` of a rules directory, oldest first, and a problem for each file refused."""
    reviews = []
    problems: list[Problem] = []
    for path in sorted((directory / REVIEWS_DIR).glob("*.json")):
        name = f"{REVIEWS_DIR}/{path.name}"
        try:  # read strictly: a key given twice could say one thing to the page and another here
            data = parse_json(path.read_text(encoding="utf-8"), name, error=RuleDefinitionError)
            review = RecordedReview.model_validate(data)
        except (OSError, UnicodeDecodeError) as error:
            problems.append(Problem(name, f"not a readable JSON review file: {error}"))
            continue
        except RuleDefinitionError as error:
            problems.extend(error.problems)
            continue
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            problems.append(Problem(f"{name} field " + ".".join(str(part) for part in first["loc"]),
                                    f"not a postcart review file: {first['msg']}"))
            continue
        if review_checksum(data) != review.checksum:
            problems.append(Problem(f"{name} field checksum", "the file was altered after the review page "
                                    "exported it", review_checksum(data), review.checksum))
            continue
        reviews.append(review.model_copy(update={"file": path.name}))
    return tuple(sorted(reviews, key=lambda review: (review.date, review.name))), problems
