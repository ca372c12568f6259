"""``make bench-compare BASE=<git ref>``: the plan's regression guard.

Runs each benchmark on a worktree of BASE and on the current tree, alternating module by module
so both see the same machine state, and fails when any figure of the current tree is worse than
BASE's by more than 10% beyond the spread measured for it. Figures are matched by name; one that
exists on one side only is listed, not judged.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 0.10


def _modules(tree: Path) -> set[str]:
    return {p.stem for p in (tree / "scripts" / "bench").glob("bench_*.py")}


def _run(tree: Path, module: str, output: Path) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the tree's own ktrdr, not the installed one
    subprocess.run(
        [sys.executable, "scripts/bench/run.py", module, "--output", str(output)],
        cwd=tree,
        env=env,
        check=False,
        capture_output=True,
    )
    if not output.exists():
        raise SystemExit(f"bench {module} produced no results in {tree}")
    return list(json.loads(output.read_text()))


def _spread(figure: dict[str, Any]) -> float:
    bounds = figure.get("value_range")
    if not bounds or not figure["value"]:
        return 0.0
    return abs(bounds[1] - bounds[0]) / 2 / abs(figure["value"])


def _worse_by(base: dict[str, Any], current: dict[str, Any]) -> float:
    """How much worse ``current`` is than ``base`` (0.2: 20% worse), by the figure's direction."""
    higher_is_better = current.get("comparison") == ">=" and current.get("target_on") == "value"
    if current.get("target_on") == "ratio":
        higher_is_better = current.get("comparison") == ">="
    b, c = float(base["value"]), float(current["value"])
    if b == 0:
        return 0.0
    return (b - c) / b if higher_is_better else (c - b) / b


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base", help="git ref to compare against, e.g. HEAD~1")
    parser.add_argument("names", nargs="*", help="benchmark modules (default: all in both)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        worktree = Path(scratch) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(worktree), args.base],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            modules = sorted(_modules(worktree) & _modules(ROOT))
            if args.names:
                modules = [m for m in modules if any(n in m for n in args.names)]
            base: dict[str, dict[str, Any]] = {}
            current: dict[str, dict[str, Any]] = {}
            for module in modules:
                print(f"running {module} on {args.base} and on the working tree ...", flush=True)
                for figure in _run(worktree, module, Path(scratch) / f"{module}-base.json"):
                    base[figure["name"]] = figure
                for figure in _run(ROOT, module, Path(scratch) / f"{module}-current.json"):
                    current[figure["name"]] = figure
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(worktree)],
                cwd=ROOT,
                check=False,
                capture_output=True,
            )
    regressions = []
    print(f"{'benchmark':60s} {'base':>14s} {'current':>14s} {'worse by':>9s} {'allowed':>8s}")
    for name in sorted(set(base) | set(current)):
        if name not in base or name not in current:
            side = "base" if name in base else "current tree"
            print(f"{name[:60]:60s} only on the {side}")
            continue
        worse = _worse_by(base[name], current[name])
        allowed = TOLERANCE + _spread(base[name]) + _spread(current[name])
        flag = "  REGRESSION" if worse > allowed else ""
        print(
            f"{name[:60]:60s} {base[name]['value']:14.4g} {current[name]['value']:14.4g} "
            f"{worse:9.1%} {allowed:8.1%}{flag}"
        )
        if worse > allowed:
            regressions.append(name)
    if regressions:
        print(f"regressed by more than {TOLERANCE:.0%} beyond the spread: {', '.join(regressions)}")
        return 1
    print("no regression")
    return 0


if __name__ == "__main__":
    sys.exit(main())
