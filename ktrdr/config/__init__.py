"""Strategy files: the schema, loading, validation and overrides (docs/strategy-reference.md)."""

from ktrdr.config.loader import load_strategy, load_strategy_config
from ktrdr.config.schema import StrategyConfig

__all__ = ["StrategyConfig", "load_strategy", "load_strategy_config"]
