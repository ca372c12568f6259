"""Every shell and Python example in README.md and docs/ runs, on the sample bars.

A fenced block names its language. ``bash`` and ``python`` blocks run, in order, one workspace
per document (so a later block may use what an earlier one made), with ``ktrdr`` on the PATH,
``KTRDR_DATA_DIR`` holding the sample bars and an empty model store. A block that cannot run
here says why on the line before it: ``<!-- not run: REASON -->``. ``yaml`` blocks must parse;
``text``, ``json`` and ``mermaid`` blocks are not run. A block with no language fails the test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
RUN = ("bash", "python")
NOT_RUN = ("text", "json", "mermaid", "yaml")
_FENCE = re.compile(r"^```([^\n]*)\n(.*?)^```[ \t]*$", re.S | re.M)
_SKIP = re.compile(r"<!-- not run: (.+?) -->\s*$")
BLOCK_TIMEOUT_S = 300


@dataclass(frozen=True)
class Block:
    document: Path
    line: int
    language: str
    code: str
    skip_reason: str | None

    @property
    def where(self) -> str:
        return f"{self.document.relative_to(REPO_ROOT)}:{self.line}"


def blocks(document: Path) -> list[Block]:
    text = document.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = _SKIP.search(before)
        found.append(
            Block(
                document,
                line,
                match.group(1).strip().split(" ")[0],
                match.group(2),
                skip.group(1) if skip else None,
            )
        )
    return found


def test_every_block_names_its_language() -> None:
    unnamed = [b.where for doc in DOCUMENTS for b in blocks(doc) if b.language not in RUN + NOT_RUN]
    assert not unnamed, (
        f"fenced blocks without bash, python, yaml, text, json or mermaid: {unnamed}"
    )


def _workspace(root: Path, sample: Path) -> dict[str, str]:
    for name in ("strategies", "examples", "scripts", "docs", ".venv"):
        (root / name).symlink_to(REPO_ROOT / name)
    shutil.copytree(sample, root / "data")
    (root / "models").mkdir()
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "KTRDR_DATA_DIR": str(root / "data"),
        "KTRDR_MODELS_DIR": str(root / "models"),
        "KTRDR_STRATEGIES_DIR": str(REPO_ROOT / "strategies"),
        "KTRDR_TORCH_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }


def _has_examples(document: Path) -> bool:
    return any(b.language in RUN and b.skip_reason is None for b in blocks(document))


@pytest.mark.parametrize(
    "document", [d for d in DOCUMENTS if _has_examples(d)], ids=lambda p: p.name
)
def test_the_examples_run(document: Path, tmp_path: Path, _sample_store_template: Path) -> None:
    env = _workspace(tmp_path, _sample_store_template)
    for block in blocks(document):
        if block.language == "yaml":
            yaml.safe_load(block.code)
            continue
        if block.language not in RUN or block.skip_reason is not None:
            continue
        command = (
            ["bash", "-e", "-o", "pipefail", "-c", block.code]
            if block.language == "bash"
            else [sys.executable, "-c", block.code]
        )
        done = subprocess.run(
            command,
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, (
            f"{block.where} failed ({done.returncode}):\n{block.code}\n--- stdout\n"
            f"{done.stdout[-2000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )


def test_not_runnable_blocks_say_why() -> None:
    listed = [(b.where, b.skip_reason) for doc in DOCUMENTS for b in blocks(doc) if b.skip_reason]
    assert all(reason and len(reason) > 10 for _, reason in listed), listed
