"""Write docs/strategy-reference.md from the indicator registry and the strategy schema."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ktrdr.config.reference import render_reference  # noqa: E402

if __name__ == "__main__":
    target = ROOT / "docs" / "strategy-reference.md"
    target.write_text(render_reference(), encoding="utf-8")
    print(f"wrote {target}")
