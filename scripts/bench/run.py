"""``make bench``: run every scripts/bench/bench_*.py, print a table, write bench-results.json.

Exits non-zero when any target is missed. Each benchmark compares with a baseline measured in the
same process, so the ratios hold on any machine.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from scripts.bench.harness import BenchResult  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--output", default=str(ROOT / "bench-results.json"))
    args = parser.parse_args()
    modules = sorted(p.stem for p in (ROOT / "scripts" / "bench").glob("bench_*.py"))
    if args.names:
        modules = [m for m in modules if any(name in m for name in args.names)]
    results: list[BenchResult] = []
    console = Console(width=max(Console().width, 140))
    for module_name in modules:
        console.print(f"running {module_name} ...")
        started = time.perf_counter()
        module = importlib.import_module(f"scripts.bench.{module_name}")
        results.extend(module.run())
        console.print(f"{module_name} took {time.perf_counter() - started:.0f} s")
    table = Table(title="ktrdr benchmarks")
    for column in (
        "benchmark",
        "value (min-max)",
        "baseline (min-max)",
        "ratio",
        "target",
        "result",
    ):
        table.add_column(column, justify="left" if column == "benchmark" else "right")
    for r in results:
        target = f"{r.target_on} {r.comparison} {r.target:,.3g}"
        table.add_row(
            r.name,
            f"{r.value:,.4g} {r.unit}" + _range(r.value_range),
            f"{r.baseline:,.4g} {r.unit}" + _range(r.baseline_range),
            f"{r.ratio:.3f}",
            target,
            "[green]pass[/green]" if r.passed else "[red]MISS[/red]",
        )
    console.print(table)
    for r in results:
        if r.note:
            console.print(f"  {r.name}: {r.note}")
    Path(args.output).write_text(json.dumps([r.to_dict() for r in results], indent=2) + "\n")
    console.print(f"wrote {args.output}")
    missed = [r.name for r in results if not r.passed]
    if missed:
        console.print(f"[red]missed targets: {', '.join(missed)}[/red]")
        return 1
    return 0


def _range(bounds: tuple[float, float] | None) -> str:
    return "" if bounds is None else f" ({bounds[0]:,.3g}-{bounds[1]:,.3g})"


if __name__ == "__main__":
    sys.exit(main())
