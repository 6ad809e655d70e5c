"""The clinicians' feature specifications (``*.feature``, Gherkin) and the step library that runs them.

They ship inside the package so that an installed postcart can produce the review page
(``postcart review``); the test suite collects the same files with pytest-bdd (``tests/features/``).
"""

from pathlib import Path

__all__ = ["FEATURES_DIR"]

#: The directory of the bundled feature files.
FEATURES_DIR = Path(__file__).parent
