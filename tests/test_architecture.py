"""The house rules of the layout: data flows one way, wings do not import each other, the front door
is thin. See docs/architecture.md."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "postcart"

#: The floors, ground first. A module may import modules on its own floor or below, never above.
#: A module or wing not listed here fails the test: place it on a floor (and in docs/architecture.md).
FLOORS: dict[str, int] = {
    "errors": 0, "vocabulary": 0,
    "situation": 1, "documents": 1,
    "rulebook": 2,
    "compiler": 3, "signature": 3,
    "engine": 4,
    "assessment": 5,
    "unknowns": 6, "evaluation": 7,
    "render": 8, "explain": 8, "scenarios": 8, "testing": 8,
    "batch": 9, "governance": 9, "cds_hooks": 9,
    "cli": 10, "__main__": 11, "__init__": 11,
}
#: Wings on one floor that must not lean on each other.
WINGS = ("batch", "governance", "cds_hooks")


def _room(path: Path) -> str:
    """The floor-map name of a module: its wing for subpackages, else its own name."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "postcart":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("postcart."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names
                         if alias.name.startswith("postcart.") and alias.name.count(".") >= 1)
    return found


MODULES = sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_imports_flow_down(path: Path) -> None:
    """Every postcart import points to the same floor or a lower one; wings do not import each other."""
    room = _room(path)
    assert room in FLOORS, f"{path.relative_to(PACKAGE)}: place '{room}' on a floor in FLOORS (and in docs/architecture.md)"
    for target in _imports(path):
        if target == room:
            continue
        assert target in FLOORS, f"{path.name} imports postcart.{target}, which has no floor"
        assert FLOORS[target] <= FLOORS[room], (
            f"{path.relative_to(PACKAGE)} (floor {FLOORS[room]}) imports postcart.{target} (floor {FLOORS[target]}): "
            "data flows one way, down")
        if room in WINGS:
            assert target not in WINGS, f"wing {room} imports wing {target}"


def test_only_engine_imports_durable_rules() -> None:
    """durable-rules is touched by engine.py alone."""
    users = [path.relative_to(PACKAGE) for path in MODULES
             if "durable" in {name.split(".")[0].split("_")[0] for name in _all_imported(path)}]
    assert [str(path) for path in users] == ["engine.py"]


def _all_imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_renderers_do_not_load_the_engine() -> None:
    """Importing the output contract and its renderings does not load durable-rules' C extension."""
    code = ("import sys, postcart.assessment, postcart.render, postcart.vocabulary; "
            "print('durable_rules_engine' in sys.modules)")
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "False"


def test_no_module_outgrows_a_page_without_saying_why() -> None:
    """A module over about 500 lines states in its docstring why it is one module."""
    long = []
    for path in MODULES:
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 520:
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if "one module because" not in docstring:
                long.append(f"{path.relative_to(PACKAGE)} ({text.count(chr(10))} lines)")
    assert not long, "modules over ~500 lines without a stated reason ('one module because ...'): " + ", ".join(long)
