"""Checks that need the indicator registry: parameters, output columns and fuzzy set targets."""

from __future__ import annotations

from typing import Any

from ktrdr.config.schema import StrategyConfig
from ktrdr.indicators.registry import REGISTRY, get_spec, resolve_params
from ktrdr.messages import show


def indicator_columns(config: StrategyConfig) -> dict[str, int]:
    """Column name -> index of the indicator producing it (for a structurally valid config)."""
    columns: dict[str, int] = {}
    for i, indicator in enumerate(config.indicators):
        spec = get_spec(indicator.type)
        if spec is not None:
            for column in spec.output_columns(indicator.name):
                columns.setdefault(column, i)
    return columns


def check_semantics(config: StrategyConfig) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Resolve every indicator against the registry and check the fuzzy sets.

    Returns (resolved indicator dicts, errors as (key path, message) pairs).
    """
    errors: list[tuple[str, str]] = []
    resolved: list[dict[str, Any]] = []
    seen_names: dict[str, int] = {}
    column_owner: dict[str, int] = {}
    for i, indicator in enumerate(config.indicators):
        where = f"indicators[{i}]"
        if indicator.name in seen_names:
            errors.append(
                (
                    f"{where}.name",
                    f"{indicator.name!r} is already the name of "
                    f"indicators[{seen_names[indicator.name]}]",
                )
            )
        seen_names.setdefault(indicator.name, i)
        spec = get_spec(indicator.type)
        if spec is None:
            errors.append(
                (
                    f"{where}.type",
                    f"unknown indicator type {show(indicator.type)}; use one "
                    f"of {', '.join(sorted(REGISTRY))}",
                )
            )
            continue
        params, problems = resolve_params(spec, dict(indicator.model_extra or {}))
        errors.extend((f"{where}.{key}", message) for key, message in problems)
        resolved.append({"name": indicator.name, "type": indicator.type, **params})
        for column in spec.output_columns(indicator.name):
            if column in column_owner and column_owner[column] != i:
                errors.append(
                    (
                        f"{where}.name",
                        f"column {column!r} is also produced by "
                        f"indicators[{column_owner[column]}]; rename one",
                    )
                )
            column_owner.setdefault(column, i)

    used: set[int] = set()
    feature_names: dict[str, str] = {}
    for column, sets in config.fuzzy_sets.items():
        if column not in column_owner:
            errors.append(
                (
                    f"fuzzy_sets.{column}",
                    f"no indicator produces column {show(column)}; "
                    f"columns are {', '.join(column_owner) or 'none'}",
                )
            )
            continue
        used.add(column_owner[column])
        for set_name in sets:
            feature = f"{column}_{set_name}"
            if feature in feature_names:
                errors.append(
                    (
                        f"fuzzy_sets.{column}.{set_name}",
                        f"feature {feature!r} clashes with {feature_names[feature]}",
                    )
                )
            feature_names[feature] = f"fuzzy_sets.{column}.{set_name}"
    for i, indicator in enumerate(config.indicators):
        spec = get_spec(indicator.type)
        if spec is not None and i not in used:
            columns = ", ".join(spec.output_columns(indicator.name))
            errors.append(
                (
                    f"indicators[{i}]",
                    f"{indicator.name!r} is computed but no fuzzy set "
                    f"uses its column(s) ({columns}); add fuzzy sets "
                    "over it or remove it",
                )
            )
    return resolved, errors
