from __future__ import annotations

import ast
from pathlib import Path

from ktrdr.async_infrastructure.status import ACTIVE, STATUSES, TERMINAL, is_terminal

PACKAGE = Path(__file__).resolve().parents[3] / "ktrdr"


def test_the_vocabulary_splits_into_active_and_terminal() -> None:
    assert STATUSES == ("pending", "running", "completed", "failed", "cancelled")
    assert ACTIVE == ("pending", "running")
    assert TERMINAL == ("completed", "failed", "cancelled")
    assert [s for s in STATUSES if is_terminal(s)] == list(TERMINAL)


def test_no_module_spells_the_vocabulary_out_again() -> None:
    """A tuple (or Literal) of two or more status names anywhere else is a second definition."""
    names = set(STATUSES)
    copies = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "status.py" and path.parent.name == "async_infrastructure":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            elements = node.elts if isinstance(node, ast.Tuple | ast.List | ast.Set) else []
            words = [e.value for e in elements if isinstance(e, ast.Constant)]
            if len(words) >= 2 and len(words) == len(elements) and set(words) <= names:
                copies.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {words}")
    assert not copies, "use ktrdr.async_infrastructure.status instead:\n" + "\n".join(copies)
