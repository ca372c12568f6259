"""Expand a sweep into its runs and validate every one before anything starts."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ktrdr.config import load_strategy_config
from ktrdr.errors import KtrdrError, StrategyConfigError
from ktrdr.sweep.spec import SweepSpec
from ktrdr.training.data_loading import check_run_request

# Above this many runs a sweep needs an explicit yes (--yes, or confirm=True).
CONFIRM_ABOVE = 256
MAX_RUNS = 100_000


@dataclass(frozen=True)
class SweepRun:
    """One member of a sweep: its id, data and overrides, and the validated strategy."""

    run_id: str
    index: int
    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    overrides: dict[str, Any]
    grid_values: dict[str, Any]
    strategy: dict[str, Any]

    @property
    def seed(self) -> int:
        return int(self.strategy["training"]["seed"])


def plan_runs(spec: SweepSpec, base: Path, confirm: bool = False) -> list[SweepRun]:
    """Every run of ``spec`` in order (symbol set, timeframe set, then the grid's product).

    Raises StrategyConfigError naming the run and the key for a value the strategy refuses, or
    when the sweep is empty or too large (over CONFIRM_ABOVE runs needs ``confirm``).
    """
    strategy_path = Path(spec.strategy)
    if not strategy_path.is_absolute():
        strategy_path = base / strategy_path
    try:
        plain = load_strategy_config(strategy_path, spec.fixed or None)
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
            strategy = load_strategy_config(strategy_path, overrides or None)
            checked_symbols, ordered = check_run_request(symbols, timeframes, spec.start, spec.end)
        except KtrdrError as exc:
            described = ", ".join(f"{k}={v!r}" for k, v in grid_values.items()) or "no grid values"
            raise StrategyConfigError(
                f"sweep {spec.name}, run {run_id} ({described}): {exc}"
            ) from exc
        runs.append(
            SweepRun(
                run_id=run_id,
                index=index,
                symbols=tuple(checked_symbols),
                timeframes=tuple(ordered),
                overrides=overrides,
                grid_values=grid_values,
                strategy=strategy,
            )
        )
    return runs
