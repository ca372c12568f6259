"""Expand a sweep into its runs and validate every one before anything starts."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktrdr.config import load_strategy_config
from ktrdr.config.loader import read_strategy
from ktrdr.errors import KtrdrError, StrategyConfigError
from ktrdr.sweep.spec import SweepSpec
from ktrdr.training.run_spec import RunSpec, build_run_spec

# Above this many runs a sweep needs an explicit yes (--yes, or confirm=True).
CONFIRM_ABOVE = 256
MAX_RUNS = 100_000


@dataclass(frozen=True)
class SweepRun:
    """One member of a sweep: its place, its grid values and its checked run spec."""

    index: int
    grid_values: dict[str, Any]
    spec: RunSpec

    @property
    def run_id(self) -> str:
        return self.spec.run_id

    @property
    def symbols(self) -> tuple[str, ...]:
        return self.spec.symbols

    @property
    def timeframes(self) -> tuple[str, ...]:
        return self.spec.timeframes

    @property
    def overrides(self) -> dict[str, Any]:
        return self.spec.overrides

    @property
    def seed(self) -> int:
        return self.spec.seed


def plan_runs(
    spec: SweepSpec,
    base: Path,
    confirm: bool = False,
    data_dir: str | Path | None = None,
) -> list[SweepRun]:
    """Every run of ``spec`` in order (symbol set, timeframe set, then the grid's product), each
    with its run spec (``save`` off: only the driver writes the store).

    Raises StrategyConfigError naming the run and the key for a value the strategy refuses, or
    when the sweep is empty or too large (over CONFIRM_ABOVE runs needs ``confirm``).
    """
    strategy_path = Path(spec.strategy)
    if not strategy_path.is_absolute():
        strategy_path = base / strategy_path
    # Read and parsed once: every run validates its own copy with its overrides, and a sweep
    # of 10,000 runs does not parse the same YAML 10,000 times.
    strategy = read_strategy(strategy_path)
    try:
        plain = load_strategy_config(strategy, spec.fixed or None)
    except StrategyConfigError as exc:
        raise StrategyConfigError(f"sweep {spec.name} (fixed overrides): {exc}") from exc
    symbol_sets = spec.symbol_sets or [plain["training_data"]["symbols"]]
    timeframe_sets = spec.timeframe_sets or [plain["training_data"]["timeframes"]]
    keys = list(spec.grid)
    combos = list(itertools.product(*(spec.grid[k] for k in keys))) if keys else [()]
    total = len(symbol_sets) * len(timeframe_sets) * len(combos)
    if total > MAX_RUNS:
        raise StrategyConfigError(f"sweep {spec.name}: {total:,} runs; at most {MAX_RUNS:,}")
    if total > CONFIRM_ABOVE and not confirm:
        raise StrategyConfigError(
            f"sweep {spec.name} has {total:,} runs; run it with --yes (confirm=True) if you "
            "mean it, or narrow the grid"
        )
    width = max(3, len(str(total)))
    runs = []
    for index, (symbols, timeframes, combo) in enumerate(
        itertools.product(symbol_sets, timeframe_sets, combos), start=1
    ):
        run_id = f"r{index:0{width}d}"
        grid_values = dict(zip(keys, combo, strict=True))
        overrides = {**spec.fixed, **grid_values}
        try:
            run_spec = build_run_spec(
                strategy,
                symbols,
                timeframes,
                spec.start,
                spec.end,
                overrides=overrides,
                save=False,
                threads=spec.threads_per_run,
                data_dir=data_dir,
                run_id=run_id,
            )
        except KtrdrError as exc:
            described = ", ".join(f"{k}={v!r}" for k, v in grid_values.items()) or "no grid values"
            raise StrategyConfigError(
                f"sweep {spec.name}, run {run_id} ({described}): {exc}"
            ) from exc
        runs.append(SweepRun(index=index, grid_values=grid_values, spec=run_spec))
    return runs
