"""Every document, file and test the project points a reader to exists in the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

# Paths into the repository as code and docs write them: docs/x.md, tests/.../test_y.py, ...
_PATH = re.compile(
    r"(?<![\w./-])((?:docs|tests|scripts|ktrdr|examples|strategies|\.ci)/[\w./-]*\w"
    r"\.(?:md|py|yaml|sh))"
)
_MARKDOWN = re.compile(r"(?<![\w./-])([\w-]+(?:/[\w.-]+)*\.md)\b")
_OUTSIDE = re.compile(r"DESIGN\.md|\.\./shared|STYLE\.md|implementation-plan")


def _tracked() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    wanted = (".py", ".md", ".toml", ".sh", ".yaml", ".yml", ".cfg")
    return [
        REPO_ROOT / name
        for name in listed
        if (name.endswith(wanted) or name in ("Makefile", ".ci/run"))
        and (REPO_ROOT / name).is_file()
    ]


def _exists(reference: str, source: Path) -> bool:
    candidates = [REPO_ROOT / reference, source.parent / reference, REPO_ROOT / "docs" / reference]
    return any(candidate.exists() for candidate in candidates)


def test_no_reference_points_outside_the_repository() -> None:
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()[:90]}"
        for path in _tracked()
        if path.name != "test_references.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if _OUTSIDE.search(line)
    ]
    assert not offenders, "references to documents outside the repository:\n" + "\n".join(offenders)


def test_every_referenced_file_exists() -> None:
    missing = []
    for path in _tracked():
        if path.name == "test_references.py":  # its own examples of bad references
            continue
        text = path.read_text(encoding="utf-8")
        for pattern in (_PATH, _MARKDOWN):
            for match in pattern.finditer(text):
                reference = match.group(1)
                if not _exists(reference, path):
                    line = text.count("\n", 0, match.start()) + 1
                    missing.append(f"{path.relative_to(REPO_ROOT)}:{line}: {reference}")
    assert not missing, "references to files that do not exist:\n" + "\n".join(sorted(set(missing)))


def test_the_checker_catches_a_missing_reference(tmp_path: Path) -> None:
    source = tmp_path / "x.md"
    assert not _exists("docs/no-such-page.md", source)
    assert _exists("docs/architecture.md", source)
    assert _PATH.search("see docs/nowhere.md for more").group(1) == "docs/nowhere.md"  # type: ignore[union-attr]
    assert _OUTSIDE.search("as DESIGN.md §3 says")
